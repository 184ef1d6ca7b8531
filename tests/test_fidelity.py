"""Fidelity floors on real data: the worst column (`column_shape`) and the worst pair (`pair_trend`).

Controls on HDMA's bundled split: the real holdout passes both; a column collapsed to one value
fails `column_shape`; a column shuffled against the others (its relationships destroyed, its
shape kept) fails `pair_trend` alone. The pair figures cover every pair of compared columns, weak
trends too, and a small real sample is not failed for its sampling noise.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from pipelines.fidelity import COMPARED, left_out, pair_trends
from pipelines.gates.quality import COLUMN_SHAPE, PAIR_TREND
from pipelines.tableset import split_frame
from tests.conftest import DIAMONDS, HDMA, REPO, load, small_block


@pytest.fixture(scope="module")
def hdma():
    """The bundled release's split (seed 7) and the committed SDV metadata."""
    from sdv.metadata import Metadata

    from pipelines.io import read_json

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")
    return train, holdout, Metadata.load_from_dict(read_json(REPO / "metadata" / "hdma.json"))


@pytest.fixture
def evaluate(make_workspace, hdma):
    """The two floors (and the family's figures) of stand-in synthetic rows against the train split."""
    from pipelines.contracts import PROVENANCE
    from pipelines.gates import GateContext
    from pipelines.tableset import layout

    train, holdout, metadata = hdma
    cfg = load(make_workspace(init=False, hdma={**small_block(HDMA, "deny"), "gates": {}}), "hdma")

    def run(synthetic: pd.DataFrame):
        ctx = GateContext(
            cfg=cfg,
            layout=layout(cfg),
            blended={"hdma": synthetic.assign(**{PROVENANCE: "synthetic"})},
            train={"hdma": train},
            holdout={"hdma": holdout},
            metadata=metadata,
            suite={},
        )
        (shape, figures), (pair, _) = COLUMN_SHAPE.evaluate(ctx), PAIR_TREND.evaluate(ctx)
        return shape, pair, figures

    return run


def test_holdout_rows_pass_both_floors(evaluate, hdma):
    shape, pair, _ = evaluate(hdma[1])
    assert shape.passed and pair.passed, (shape, pair)
    # far above the floors; pairs with the 11-valued ordinal `uria` are contingency tables on 476 rows
    assert shape.value > 0.9 and pair.value > 0.85
    assert "0 of 13 below the floor" in shape.explanation


def test_a_collapsed_column_fails_column_shape(evaluate, hdma):
    """`dir` set to its median: the best a constant can do on KS (about half the rows on each side)."""
    collapsed = hdma[1].assign(dir=hdma[1]["dir"].median())
    shape, _, figures = evaluate(collapsed)
    assert not shape.passed and shape.value < 0.6 and "'dir' KSComplement" in shape.explanation
    assert figures["column_shapes"][0]["column"] == "dir"


def test_a_destroyed_pair_fails_pair_trend_not_column_shape(evaluate, hdma):
    """`dir` (debt-to-income) permuted: its shape is intact, its correlation with `hir` (0.77) gone."""
    shuffled = hdma[1].assign(dir=np.random.default_rng(0).permutation(hdma[1]["dir"].to_numpy()))
    shape, pair, figures = evaluate(shuffled)
    assert shape.passed
    assert not pair.passed and pair.value < 0.7 and "'dir' x 'hir' CorrelationSimilarity" in pair.explanation
    worst = figures["pair_trends"][0]
    assert worst["columns"] == ["dir", "hir"] and abs(worst["real_correlation"]) > 0.6
    assert abs(worst["synthetic_correlation"]) < 0.1


def test_pair_figures_cover_every_pair_worst_first(evaluate, hdma):
    """Every pair of compared columns: n(n-1)/2, weak trends too, each with its metric, worst first."""
    _, holdout, metadata = hdma
    _, _, figures = evaluate(holdout)
    columns = metadata.to_dict()["tables"]["hdma"]["columns"]
    compared = [c for c, m in columns.items() if m["sdtype"] in COMPARED]
    n = len(compared)
    pairs = figures["pair_trends"]
    assert len(pairs) == n * (n - 1) // 2 == len({tuple(sorted(p["columns"])) for p in pairs})
    assert {tuple(sorted(p["columns"])) for p in pairs} == {tuple(sorted(p)) for p in combinations(compared, 2)}
    numeric = {c for c in compared if columns[c]["sdtype"] == "numerical"}
    for p in pairs:
        both = set(p["columns"]) <= numeric
        assert p["metric"] == ("CorrelationSimilarity" if both else "ContingencySimilarity"), p
    scores = [p["score"] for p in pairs]
    assert scores == sorted(scores) and all(p["allowance"] > 0 for p in pairs)
    weak = [p for p in pairs if p["real_correlation"] is not None and abs(p["real_correlation"]) < 0.5]
    assert weak  # the pairs SDMetrics' quality report leaves out of its average
    shapes = figures["column_shapes"]
    assert len(shapes) == n and [s["score"] for s in shapes] == sorted(s["score"] for s in shapes)


def test_a_small_real_sample_is_not_failed_for_its_noise(evaluate, hdma):
    """100 real unseen rows: their worst column and pair score low by chance, within the allowance."""
    shape, pair, _ = evaluate(hdma[1].sample(n=100, random_state=3))
    assert shape.passed and pair.passed, (shape, pair)
    assert shape.threshold < 0.7 and pair.threshold < 0.7  # the floor less the noise of 100 rows


def test_table_sets_name_columns_by_table_and_leave_out_id_like_categories():
    """Pairs are taken within each table; a category naming every row (a name column) is left out."""
    df = pd.read_csv(DIAMONDS, nrows=600).drop(columns=["Unnamed: 0"])
    real = {"stones": df[["carat", "price", "cut"]], "makers": df[["x", "color"]].assign(name=df.index.astype(str))}
    sdtype = {"carat": "numerical", "price": "numerical", "x": "numerical"}
    metadata = {
        "tables": {t: {"columns": {c: {"sdtype": sdtype.get(c, "categorical")} for c in f}} for t, f in real.items()}
    }
    skip = left_out(real, metadata)
    assert skip == {"makers.name": "id-like: 100% of values distinct"}
    pairs = pair_trends(real, real, metadata, skip)
    assert sorted(tuple(p["columns"]) for p in pairs) == [
        ("makers.x", "makers.color"),
        ("stones.carat", "stones.cut"),
        ("stones.carat", "stones.price"),
        ("stones.price", "stones.cut"),
    ]
    assert all(p["score"] == 1.0 for p in pairs)
