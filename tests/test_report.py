"""The HTML report's figure sections, drawn from real gate figures (HDMA's bundled split).

The fidelity, privacy and bias gates run on a stand-in release (the real holdout rows with `dir`
collapsed to its median; a row-number column added for the page); the page must list the worst
columns first (ten shown, the rest folded) with type and floor verdict, the ten worst pairs, each
`black` group's share and deny rate, each privacy measure next to its holdout baseline, the
association differences of numeric and categorical columns, and the row number as an id, not a plot.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from pipelines.tableset import split_frame
from tests.conftest import HDMA, REPO, small_block


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import yaml
    from sdv.metadata import Metadata

    from pipelines import report
    from pipelines.config import load_params
    from pipelines.contracts import PROVENANCE
    from pipelines.gates import GateContext, bias, privacy, quality
    from pipelines.io import read_json
    from pipelines.records.validation import ValidationReport
    from pipelines.tableset import layout
    from tests.conftest import defaults

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")
    ws = tmp_path_factory.mktemp("report")
    block = {**small_block(HDMA, "deny"), "sensitive": ["black"], "gates": {}}
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    cfg = load_params(ws / "params.yaml").dataset("hdma")
    metadata = Metadata.load_from_dict(read_json(REPO / "metadata" / "hdma.json"))
    released = holdout.assign(dir=holdout["dir"].median(), **{PROVENANCE: "synthetic"})
    ctx = GateContext(
        cfg=cfg,
        layout=layout(cfg),
        blended={"hdma": released},
        train={"hdma": train},
        holdout={"hdma": holdout},
        metadata=metadata,
        suite={},
    )
    gates, figures = [], {}
    for g in (quality.COLUMN_SHAPE, quality.PAIR_TREND, privacy.EXACT_COPIES, bias.BIAS):
        result, found = g.evaluate(ctx)
        gates.append(result)
        figures.update(found)
    dcr = {k: figures["privacy"].pop(k) for k in ("dcr_synthetic_train", "dcr_holdout_train")}
    validation = ValidationReport.of("hdma", gates, figures, False).to_json()
    ids = {"train": train.assign(row=train.index), "released": released.assign(row=range(len(released)))}
    page = report.render(cfg, validation, ids["released"], ids["train"], metadata, dcr)
    return page, validation["figures"]


def _table(html: str, table_id: str) -> list[list[str]]:
    """The body rows of one table, as cell texts without tags."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table_id
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", r, re.S)] for r in rows]


def test_worst_columns_first_ten_shown_the_rest_folded(page):
    html, figures = page
    shown, rest = _table(html, "column-shapes"), _table(html, "column-shapes-rest")
    assert len(shown) == 10 and len(shown) + len(rest) == len(figures["column_shapes"]) == 13
    worst = figures["column_shapes"][0]
    score, allowance = f"{worst['score']:.4f}", f"{worst['allowance']:.4f}"
    assert shown[0] == ["dir", "numerical", "KSComplement", score, allowance, "below 0.8"]
    assert [r[0] for r in shown + rest] == [c["column"] for c in figures["column_shapes"]]
    types = {r[0]: r[1] for r in shown + rest}
    assert types["comdominiom"] == "ordinal (whole numbers)" and types["deny"] == "categorical"
    assert {r[5] for r in shown[1:] + rest} <= {"ok", "within sampling noise of 0.8", "below 0.8"}
    assert "floor gates.column_shape_min = 0.8 less the sampling allowance" in html
    assert re.search(r"<details><summary>3 more column\(s\)</summary><table id=\"column-shapes-rest\"", html)


def test_the_ten_worst_pairs(page):
    html, figures = page
    pairs = _table(html, "pair-trends")
    assert len(pairs) == 10 and "of 78 column pairs" in html
    assert pairs[0][0] == " × ".join(figures["pair_trends"][0]["columns"]) and "dir" in pairs[0][0]


def test_bias_groups_share_and_target_rate_train_vs_synthetic(page):
    html, figures = page
    groups = figures["bias"]["columns"]["black"]["groups"]
    rows = {r[0]: r for r in _table(html, "bias-black")}
    assert set(rows) == {"yes", "no"}
    yes = groups["yes"]
    assert rows["yes"][3:5] == [f"{yes['share_real']:.3f}", f"{yes['share_synthetic']:.3f}"]
    assert rows["yes"][6:8] == [f"{yes['target_real']:.3f}", f"{yes['target_synthetic']:.3f}"]
    assert "share of &#x27;yes&#x27;" in html  # the target rate's definition


def test_privacy_measures_next_to_their_holdout_baselines(page):
    html, figures = page
    p = figures["privacy"]
    rows = _table(html, "privacy-baselines")
    copies, tail, protection = rows[0], rows[1], rows[2]
    assert copies[1:3] == [f"{p['exact_copy_share']:.4f}", f"{p['holdout_exact_copy_share']:.4f}"]
    assert tail[1:3] == [f"{p['dcr_low_tail_share']:.4f}", f"{p['holdout_dcr_low_tail_share']:.4f}"]
    assert protection[3] == f"{p['dcr_baseline_protection_ratio']:.4f} (ratio)"
    columns = re.search(r'<p id="privacy-columns">(.*?)</p>', html, re.S).group(1)
    assert f"on {len(p['columns'])} columns" in columns and "Left out: none" in columns
    assert 'id="figures-privacy"' not in html  # the flat table it replaces


def test_associations_of_categorical_pairs_too_and_the_row_number_listed_not_plotted(page):
    html, _ = page
    section = re.search(r'<div id="correlations">(.*?)</div>', html, re.S).group(1)
    assert {"deny", "black", "pbcr", "dir", "lvr"} <= set(re.findall(r"<!-- (.*?) -->", section))  # heatmap axes
    pairs = _table(html, "associations")
    measures = {r[1] for r in pairs}
    assert len(pairs) == 10 and "dir" in pairs[0][0].split(" × ")  # the collapsed column lost every link
    assert measures <= {"Pearson r", "Cramér&#x27;s V", "correlation ratio η"} and "correlation ratio η" in measures
    assert [float(r[4]) for r in pairs] == sorted((float(r[4]) for r in pairs), reverse=True)
    assert "row" not in re.findall(r"<!-- (.*?) -->", section)
    assert not re.search(r'aria-label="row: real vs synthetic"', html)
    note = "id-like (distinct whole numbers, densely packed): unique, 1905 values"  # the 1905 train rows' index
    assert _table(html, "id-columns") == [["row", note]]
