"""Every gate can fail: copies fail the privacy gates, holdout rows pass them, and so on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import GatesConfig
from pipelines.contracts import PROVENANCE, build_suite, run_suite
from pipelines.gates import gate
from pipelines.gates.privacy import privacy_gates
from pipelines.gates.utility import minority_gate, utility_gate
from pipelines.metrics import utility
from pipelines.tableset import split_frame

GATES = GatesConfig(sample_rows=2000)


@pytest.fixture(scope="module")
def hdma_split():
    from tests.conftest import HDMA

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.3, 1, "deny")
    return train, holdout


def _by_name(results):
    return {g.name: g for g in results}


def test_copied_training_rows_fail_every_privacy_gate(hdma_split):
    train, holdout = hdma_split
    fake = train.sample(n=500, random_state=0)
    gates, figures = privacy_gates(fake, train, holdout, GATES, seed=1)
    g = _by_name(gates)
    assert not g["exact_copies"].passed and g["exact_copies"].value == 1.0
    # every copy is at distance 0 from the whole train split, below the holdout's 5% DCR quantile
    assert not g["dcr_low_tail"].passed and g["dcr_low_tail"].value > 0.9
    assert figures["dcr_low_tail_share"] == 1.0 and figures["holdout_dcr_low_tail_share"] >= 0.05
    assert not g["dcr_baseline_protection"].passed and g["dcr_baseline_protection"].value == 0.0
    assert "identical to a training row" in g["exact_copies"].explanation


def test_holdout_rows_pass_the_privacy_gates(hdma_split):
    train, holdout = hdma_split
    gates, _ = privacy_gates(holdout, train, holdout, GATES, seed=1)
    g = _by_name(gates)
    assert g["exact_copies"].passed and g["exact_copies"].value == 0.0, g["exact_copies"]
    assert g["dcr_low_tail"].passed and g["dcr_low_tail"].value == 0.0
    assert g["dcr_baseline_protection"].passed and g["dcr_baseline_protection"].value == 1.0


def test_lightly_perturbed_copies_still_fail_dcr(hdma_split):
    train, holdout = hdma_split
    fake = train.sample(n=500, random_state=0).copy()
    fake["dir"] = fake["dir"] * (1 + np.random.default_rng(0).normal(0, 0.001, len(fake)))
    g = _by_name(privacy_gates(fake, train, holdout, GATES, seed=1)[0])
    assert g["exact_copies"].passed  # no longer byte-identical...
    assert not g["dcr_low_tail"].passed  # ...but far closer to train than real unseen rows
    assert not g["dcr_baseline_protection"].passed


def test_privacy_gates_leave_out_the_fit_plans_pii_and_id_like_columns(hdma_split, make_workspace, tmp_path):
    """Through the registry's gates: a customer table whose copied rows got fresh ids and fake
    e-mail addresses is still caught, the left-out columns named with the reason."""
    from pipelines.gates import GateContext
    from pipelines.gates.privacy import DCR_BASELINE_PROTECTION, DCR_LOW_TAIL, EXACT_COPIES
    from pipelines.pii import plan_for
    from pipelines.tableset import layout
    from tests.conftest import load, small_block

    train, holdout = (df.assign(id=range(i, i + len(df))) for i, df in ((0, hdma_split[0]), (10**5, hdma_split[1])))
    train["email"] = [f"client{i}@example.org" for i in train["id"]]
    holdout["email"] = [f"client{i}@example.org" for i in holdout["id"]]
    csv = tmp_path / "customers.csv"
    pd.concat([train, holdout]).to_csv(csv, index=False)
    cfg = load(make_workspace(init=False, customers=small_block(csv, "deny")), "customers")
    copies = train.sample(n=500, random_state=0).assign(id=lambda d: d["id"] + 10**6)
    copies["email"] = [f"someone{i}@example.com" for i in range(len(copies))]
    ctx = GateContext(
        cfg=cfg,
        layout=layout(cfg),
        blended={"customers": copies.assign(**{PROVENANCE: "synthetic"})},
        train={"customers": train},
        holdout={"customers": holdout},
        metadata=None,
        suite={},
        fit_record={"pii": plan_for(train, cfg.fit.pii, "deny").to_dict()},
    )
    results = {g.name: g.evaluate(ctx)[0] for g in (EXACT_COPIES, DCR_LOW_TAIL, DCR_BASELINE_PROTECTION)}
    assert not any(r.passed for r in results.values()), results
    figures = EXACT_COPIES.evaluate(ctx)[1]["privacy"]
    assert figures["left_out"] == {"email": "PII (email, replaced)", "id": "id-like: 100% of values distinct"}


def test_utility_gate_fails_when_labels_are_noise(hdma_split):
    train, holdout = hdma_split
    fake = train.copy()
    fake["deny"] = np.random.default_rng(0).permutation(fake["deny"].to_numpy())
    u = utility(fake, train, holdout, "deny", 1, GATES.utility_rows)
    assert not utility_gate(u, "deny", GATES).passed
    assert u.trtr > 0.7 and u.tstr < 0.62
    good = utility_gate(utility(train, train, holdout, "deny", 1, GATES.utility_rows), "deny", GATES)
    assert good.passed and good.value == pytest.approx(0.0, abs=1e-9)


def test_utility_handles_regression_targets():
    from tests.conftest import DIAMONDS

    df = pd.read_csv(DIAMONDS, nrows=3000).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.3, 1, None)
    u = utility(train, train, holdout, "price", 1, GATES.utility_rows)
    assert u.task == "regression" and u.trtr > 0.9 and utility_gate(u, "price", GATES).passed
    assert u.minority_class is None


def test_minority_utility_fails_when_the_rare_class_is_erased_but_auc_passes(hdma_split):
    """The user's case: a model trained on the synthetic rows never predicts deny=yes, yet ranks
    rows well enough for the AUC-based utility gate. Erasing the rare class from real train rows
    (its rows relabelled 'no') reproduces it; the real rows themselves and the holdout pass."""
    train, holdout = hdma_split
    erased = train.assign(deny="no")
    erased.loc[erased.sample(frac=0.01, random_state=0).index, "deny"] = "yes"  # a trace of the class
    u = utility(erased, train, holdout, "deny", 1, GATES.utility_rows)
    result, figures = minority_gate(u, GATES)
    assert figures["minority_class"] == "yes" and figures["recall_trtr"] > 0.3
    assert not result.passed and result.value == figures["recall_ratio"] < 0.1
    assert "'yes'" in result.explanation
    for real in (train, holdout):
        ok, figures = minority_gate(utility(real, train, holdout, "deny", 1, GATES.utility_rows), GATES)
        assert ok.passed and figures["recall_ratio"] >= 0.8, figures


def test_minority_utility_takes_the_rarest_of_several_classes():
    from tests.conftest import DIAMONDS

    df = pd.read_csv(DIAMONDS, nrows=4000).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.3, 1, "cut")
    u = utility(train, train, holdout, "cut", 1, GATES.utility_rows)
    assert u.metric == "macro_f1" and u.minority_class == "Fair"
    assert u.minority_recall_trtr == u.minority_recall_tstr > 0.5
    assert minority_gate(u, GATES)[0].passed
    no_fair = train.assign(cut=train["cut"].replace({"Fair": "Good"}))  # the class erased
    result, figures = minority_gate(utility(no_fair, train, holdout, "cut", 1, GATES.utility_rows), GATES)
    assert not result.passed and figures["recall_tstr"] == 0.0 and figures["recall_ratio"] == 0.0


def test_release_suite_fails_on_invented_categories_and_missing_provenance(hdma_split):
    train, _ = hdma_split
    suite = build_suite(train, "hdma", "release")
    ok = train.assign(**{PROVENANCE: "synthetic"})
    assert run_suite(ok, suite).success
    bad = ok.copy()
    bad.loc[bad.index[:3], "deny"] = "maybe"
    result = run_suite(bad, suite)
    assert not result.success and any("'deny'" in f and "maybe" in f for f in result.failures)
    assert not run_suite(train, suite).success  # no provenance column
    assert not run_suite(ok.iloc[:0], suite).success  # empty frame: row-count expectation


def test_gate_comparisons():
    assert gate("q", 0.8, 0.75, ">=", "").passed
    assert not gate("q", 0.7, 0.75, ">=", "").passed
    assert gate("p", 0.5, 0.6, "<=", "").passed
    assert not gate("p", 0.61, 0.6, "<=", "").passed
