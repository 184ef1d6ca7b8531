"""Canaries: outliers planted in a shadow fit, which a memorising engine gives back and GaussianCopula does not.

Must fail: an engine that samples its training rows (a toy engine registered here), and rows a
hair away from them. Must pass: GaussianCopula on hdma. Not run: `gates.canaries: 0` (the default);
refused: canaries on a table set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import engines
from pipelines.constraints import violations
from pipelines.contracts import PROVENANCE
from pipelines.engines import Engine, EngineInfo, SampleRequest
from pipelines.errors import ConfigError
from pipelines.gates.canaries import Canaries
from pipelines.privacy.canaries import exposure, make_canaries
from pipelines.rules import InequalityRule, PositiveRule
from pipelines.tableset import split_frame
from tests.conftest import HDMA, REPO, load, small_block

K = 10


class Memoriser(Engine):
    """A toy engine that learns nothing: it samples its training rows with replacement."""

    info = EngineInfo("memoriser", "copier", "Apache-2.0")

    def fit(self, train, metadata, cfg, lay):
        return train[lay.main].reset_index(drop=True)

    def sample(self, model, request: SampleRequest):
        return {request.main: model.sample(n=request.rows, replace=True, random_state=request.seed)}


@pytest.fixture(scope="module")
def hdma():
    """HDMA split like the pipeline does, with SDV metadata detected from the train split."""
    from sdv.metadata import Metadata

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")
    return train, holdout, Metadata.detect_from_dataframes({"hdma": train})


def _columns(metadata):
    return metadata.to_dict()["tables"]["hdma"]["columns"]


def _context(make_workspace, hdma, **block):
    from pipelines.gates import GateContext
    from pipelines.tableset import layout

    train, holdout, metadata = hdma
    cfg = load(make_workspace(init=False, hdma={**small_block(HDMA, "deny"), **block}), "hdma")
    return GateContext(
        cfg=cfg,
        layout=layout(cfg),
        blended={"hdma": holdout.assign(**{PROVENANCE: "synthetic"})},
        train={"hdma": train},
        holdout={"hdma": holdout},
        metadata=metadata,
        suite={},
    )


def test_canaries_are_valid_outliers_far_from_every_training_row(hdma):
    train, holdout, metadata = hdma
    c = make_canaries(train, _columns(metadata), K, 7)
    assert len(c.planted) == len(c.controls) == K and list(c.planted.columns) == list(train.columns)
    both = pd.concat([c.planted, c.controls])
    for col in ("dir", "lvr", "uria"):  # numbers beyond the train range
        assert (~both[col].between(train[col].min(), train[col].max())).all(), col
    assert both["comdominiom"].dtype == train["comdominiom"].dtype  # integers stay integers
    for col in ("deny", "black", "self"):  # categories are existing ones
        assert both[col].isin(train[col].dropna().unique()).all(), col
    # far from every real row: further than any holdout row is from its closest training row
    from pipelines.privacy.columns import conform
    from pipelines.privacy.distances import RowEncoder, nearest

    enc = RowEncoder(conform(train, train, c.columns, "t"))
    holdout_dcr = nearest(
        enc.transform(conform(holdout, train, c.columns, "h")), enc.transform(conform(train, train, c.columns, "t"))
    )
    assert min(c.nearest_real) > holdout_dcr.max()
    again = make_canaries(train, _columns(metadata), K, 7)
    pd.testing.assert_frame_equal(c.planted, again.planted)  # deterministic from the seed
    assert not c.planted.equals(make_canaries(train, _columns(metadata), K, 8).planted)


def test_canaries_keep_each_columns_grain():
    """Dates stay dates, whole seconds whole seconds, decimals and integers as declared; booleans exist."""
    rng = np.random.default_rng(0)
    n = 200
    real = pd.DataFrame(
        {
            "day": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "at": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
            "x": rng.normal(size=n).round(2),
            "count": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.3,
        }
    )
    meta = {"day": {"sdtype": "datetime"}, "at": {"sdtype": "datetime"}, "x": {"sdtype": "numerical"}}
    meta |= {"count": {"sdtype": "numerical"}, "flag": {"sdtype": "boolean"}}
    meta["x"]["decimal_places"] = 2
    c = make_canaries(real, meta, 5, 1)
    both = pd.concat([c.planted, c.controls])
    assert (both.dtypes == real.dtypes).all()
    assert (both["day"] == both["day"].dt.floor("D")).all() and (both["at"] == both["at"].dt.floor("s")).all()
    assert (both["x"] == both["x"].round(2)).all() and both["flag"].isin([True, False]).all()
    for col in ("day", "at", "x", "count"):
        assert (~both[col].between(real[col].min(), real[col].max())).all(), col


def test_canaries_obey_the_business_rules(hdma):
    train, _, metadata = hdma
    rules = (InequalityRule(type="inequality", low="hir", high="dir"), PositiveRule(type="positive", column="lvr"))
    c = make_canaries(train, _columns(metadata), K, 7, rules=rules)
    both = pd.concat([c.planted, c.controls])
    assert not any(violations(rule, both).any() for rule in rules)


def test_copies_and_near_copies_of_the_shadow_rows_expose_the_canaries(hdma):
    """Exposure, without a fit: rows drawn from train + the planted canaries, then nudged by 1%."""
    train, _, metadata = hdma
    c = make_canaries(train, _columns(metadata), K, 7)
    shadow = pd.concat([train, c.planted], ignore_index=True)
    copies = shadow.sample(n=len(shadow), replace=True, random_state=1)
    exact = exposure(c, copies, train)
    assert exact.exposed == exact.reproduced >= K // 2 and exact.control_exposed == 0
    nudged = copies.assign(dir=copies["dir"] * (1 + np.random.default_rng(0).normal(0, 0.01, len(copies))))
    near = exposure(c, nudged, train)
    assert near.reproduced == 0 and near.exposed == exact.exposed
    assert exposure(c, train, train).exposed == 0  # the real rows alone expose none


@pytest.fixture
def memoriser(monkeypatch):
    monkeypatch.setitem(engines.REGISTRY, "memoriser", Memoriser())


def test_a_memorising_engine_fails(memoriser, make_workspace, hdma):
    ctx = _context(make_workspace, hdma, fit={"synthesizer": "memoriser"}, gates={"canaries": K})
    result, figures = Canaries().evaluate(ctx)
    f = figures["canaries"]
    assert not result.passed and result.value >= 0.5, result
    assert f["exposed"] == f["reproduced"] and f["control_exposed"] == 0 and f["engine"] == "memoriser"
    assert f["synthetic_rows"] == len(hdma[0]) + K
    assert "canaries planted in a shadow memoriser fit exposed" in result.explanation


def test_the_shadow_fit_sees_the_fit_records_subsample(memoriser, make_workspace, hdma):
    """fit.max_rows: the shadow is fitted on the rows the model was (the fit record's max_rows) plus the canaries."""
    from dataclasses import replace

    ctx = _context(make_workspace, hdma, fit={"synthesizer": "memoriser"}, gates={"canaries": K})
    ctx = replace(ctx, fit_record={"synthesizer": "memoriser", "subsample": {"max_rows": 300}})
    f = Canaries().evaluate(ctx)[1]["canaries"]
    assert f["synthetic_rows"] == 300 + K and f["exposed"] == f["reproduced"]


def test_gaussian_copula_on_hdma_passes(make_workspace, hdma):
    ctx = _context(make_workspace, hdma, gates={"canaries": K})
    gate = Canaries()
    assert gate.applies(ctx)
    result, figures = gate.evaluate(ctx)
    f = figures["canaries"]
    assert result.passed and f["exposed"] == f["control_exposed"] == 0, f
    assert min(r["ratio"] for r in f["nearest"]["planted"]) > f["radius_share"]
    assert f["seconds"] > 0 and len(f["nearest"]["controls"]) == K


def test_off_by_default_and_refused_for_table_sets(make_workspace, hdma):
    from pipelines.config import apply_overrides, load_params
    from pipelines.gates import registry

    assert not Canaries().applies(_context(make_workspace, hdma))
    assert "canaries" in {g.name for g in registry.GATES}
    params = load_params(REPO / "params.yaml")
    with pytest.raises(ConfigError, match=r"gates\.canaries: single tables only"):
        apply_overrides(params, "nycflights13", {"gates": {"canaries": 5}})


def test_the_report_shows_the_canary_figures(hdma):
    """Copies of the shadow rows: the report's canary table carries the planted and control counts."""
    import re
    from dataclasses import asdict

    from pipelines import report_sections

    train, _, metadata = hdma
    c = make_canaries(train, _columns(metadata), K, 7)
    copies = pd.concat([train, c.planted], ignore_index=True).sample(frac=1.0, replace=True, random_state=1)
    f = {**asdict(exposure(c, copies, train)), "engine": "gaussian_copula", "seconds": 1.5}
    page = report_sections.canaries({"canaries": f})
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    assert cells[-2][:4] == ["planted in the shadow fit", str(K), str(f["exposed"]), str(f["reproduced"])]
    assert cells[-1][:3] == ["never planted (controls)", str(K), str(f["control_exposed"])]
    assert f"{f['exposure_excess']:.4f}" in page and "gaussian_copula" in page
    assert "Canaries are off" in report_sections.canaries({})
