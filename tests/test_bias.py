"""Bias gates on real data: HDMA's `black` groups and their `deny` rates, diamonds' prices by cut.

Controls: the real holdout passes both gates; a release with the groups' outcome rates swapped
fails `bias`; one with a group nearly erased fails `bias_share`. Bad input: a sensitive column
that does not exist (ingest), that is the target or PII (config), or not learned (validate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import GatesConfig
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.gates.bias import MIN_GROUP_ROWS, bias_figures, bias_gates
from pipelines.tableset import split_frame
from tests.conftest import DIAMONDS, HDMA, load, run_stages, small_block

GATES = GatesConfig()


@pytest.fixture(scope="module")
def hdma_split():
    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")  # the bundled release's split
    return train, holdout


def _gates(synthetic: pd.DataFrame, train: pd.DataFrame, target: str | None = "deny", column: str = "black"):
    figures = bias_figures(train, synthetic, [column], target)
    return bias_gates(figures, GATES), figures


def test_holdout_rows_pass_both_bias_gates(hdma_split):
    train, holdout = hdma_split
    results, figures = _gates(holdout, train)
    assert results["bias"].passed and results["bias_share"].passed, figures
    groups = figures["columns"]["black"]["groups"]
    assert set(groups) == {"no", "yes"} and figures["target_rate"] == "share of 'yes'"
    assert groups["yes"]["target_real"] > 2 * groups["no"]["target_real"]  # the disparity auditors look at
    assert figures["columns"]["black"]["disparity_real"] == pytest.approx(
        groups["yes"]["target_real"] - groups["no"]["target_real"], abs=1e-6
    )
    assert figures["columns"]["black"]["disparity_synthetic"] > 0.1  # kept in the holdout


def test_swapped_group_outcome_rates_fail_bias(hdma_split):
    """Each group gets the other group's deny outcomes (drawn from them): shares unchanged."""
    train, _ = hdma_split
    rng = np.random.default_rng(0)
    swapped = train.copy()
    for group, other in (("yes", "no"), ("no", "yes")):
        rows = train["black"] == group
        swapped.loc[rows, "deny"] = rng.choice(train.loc[train["black"] == other, "deny"].to_numpy(), rows.sum())
    results, figures = _gates(swapped, train)
    assert not results["bias"].passed and results["bias"].value > 0.15
    assert results["bias_share"].passed and results["bias_share"].value == 0.0
    black = figures["columns"]["black"]
    assert black["disparity_groups"] == ["yes", "no"]
    assert black["disparity_real"] > 0.15 and black["disparity_synthetic"] < -0.15  # the disparity reversed
    assert "disparity yes-no of 'black'" in results["bias"].explanation


def test_a_nearly_erased_group_fails_bias_share(hdma_split):
    train, _ = hdma_split
    keep = pd.concat([train[train["black"] == "no"], train[train["black"] == "yes"].head(20)])  # 20 of 268 left
    results, figures = _gates(keep, train)
    assert not results["bias_share"].passed and results["bias_share"].value > 0.1
    row = figures["columns"]["black"]["groups"]["yes"]
    assert row["rows_synthetic"] < MIN_GROUP_ROWS and not row["compared"]  # too few rows for a rate
    assert results["bias"].passed  # the rate of the group left is not compared; its share is gated


def test_numeric_target_and_numeric_sensitive_column():
    """Price by carat quartile: means compared in train standard deviations."""
    df = pd.read_csv(DIAMONDS, nrows=6000).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.3, 1, None)
    results, figures = _gates(holdout, train, "price", "carat")
    assert results["bias"].passed and results["bias_share"].passed, figures
    assert len(figures["columns"]["carat"]["groups"]) == 4 and figures["target_rate"].startswith("mean")
    top = pd.cut(holdout["carat"], [-np.inf, *train["carat"].quantile([0.25, 0.5, 0.75]), np.inf]).cat.codes == 3
    cheaper = holdout.assign(price=holdout["price"].where(~top, holdout["price"] * 0.7))
    results, _ = _gates(cheaper, train, "price", "carat")
    assert not results["bias"].passed and results["bias_share"].passed


def test_without_a_target_only_shares_are_gated(hdma_split):
    train, holdout = hdma_split
    results, figures = _gates(holdout, train, target=None)
    assert set(results) == {"bias_share"} and "target_gap" not in figures


# --- configuration ------------------------------------------------------------------------------


def test_sensitive_column_must_exist_at_ingest(make_workspace):
    ws = make_workspace(init=False, hdma={**small_block(HDMA, "deny"), "sensitive": ["race"]})
    with pytest.raises(InvalidInputError, match=r"sensitive column 'race' \(datasets.hdma.sensitive\)"):
        run_stages(ws, "hdma", ("ingest",))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sensitive": ["deny"]}, "sensitive: 'deny' is the target"),
        ({"sensitive": ["black", "black"]}, "sensitive: 'black' is listed twice"),
        ({"sensitive": ["black"], "fit": {"pii": {"columns": {"black": "id"}}}}, "'black' is a PII column"),
        ({"sensitive": ["black"], "ingest": {"drop_columns": ["black"]}}, "'black' is dropped"),
    ],
)
def test_sensitive_config_errors(make_workspace, extra, message):
    ws = make_workspace(init=False, hdma={**small_block(HDMA, "deny"), **extra})
    with pytest.raises(ConfigError, match=message):
        load(ws, "hdma")


def _context(cfg, synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, **records):
    from pipelines.contracts import PROVENANCE
    from pipelines.gates import GateContext
    from pipelines.tableset import layout

    return GateContext(
        cfg=cfg,
        layout=layout(cfg),
        blended={"hdma": synthetic.assign(**{PROVENANCE: "synthetic"})},
        train={"hdma": train},
        holdout={"hdma": holdout},
        metadata=None,
        suite={},
        **records,
    )


def test_rebalanced_and_conditioned_releases_are_compared_with_matching_train_rows(make_workspace, hdma_split):
    """A release rebalanced to 50% deny=yes has every group's deny rate raised on purpose: it is
    compared with train rows weighted to 50%; rows sampled with black=no with train's black=no rows."""
    from pipelines.gates.bias import BIAS, BIAS_SHARE

    train, holdout = hdma_split
    block = {**small_block(HDMA, "deny"), "sensitive": ["black"]}
    cfg = load(make_workspace(init=False, hdma=block), "hdma")
    half = pd.concat([train[train["deny"] == d].sample(n=600, replace=True, random_state=1) for d in ("yes", "no")])
    rebalanced = {"rebalance": {"column": "deny", "achieved": {"no": 0.5, "yes": 0.5}}}
    ctx = _context(cfg, half, train, holdout, blend_record=rebalanced)
    result, figures = BIAS.evaluate(ctx)
    assert result.passed and BIAS_SHARE.evaluate(ctx)[0].passed, figures["bias"]
    assert "weighted to the release's shares of 'deny'" in figures["bias"]["reference"]
    assert not BIAS.evaluate(_context(cfg, half, train, holdout))[0].passed  # against the plain train split

    cfg = load(make_workspace(init=False, hdma={**block, "generate": {"conditions": {"black": "no"}}}), "hdma")
    only_no = holdout[holdout["black"] == "no"]
    ctx = _context(cfg, only_no, train, holdout)
    assert BIAS.evaluate(ctx)[0].passed and BIAS_SHARE.evaluate(ctx)[0].passed
    assert "'black' in ['no'] (generate.conditions)" in BIAS.evaluate(ctx)[1]["bias"]["reference"]


def test_a_sensitive_column_that_is_not_learned_is_named_at_validate(make_workspace, hdma_split):
    """A column detected as PII after the params were written (here: declared in the fit record)."""
    from pipelines.gates.bias import BIAS_SHARE

    ws = make_workspace(init=False, hdma={**small_block(HDMA, None), "sensitive": ["black"]})
    train, holdout = hdma_split
    plan = {"policy": "replace", "locale": "en_US", "detect": True, "columns": [_pii("black")]}
    ctx = _context(load(ws, "hdma"), holdout, train, holdout, fit_record={"pii": plan})
    assert BIAS_SHARE.applies(ctx)
    with pytest.raises(InvalidInputError, match=r"sensitive column 'black' .* is not a learned column"):
        BIAS_SHARE.evaluate(ctx)


def _pii(column: str) -> dict:
    return {"column": column, "kind": "id", "source": "detected", "evidence": "test"}
