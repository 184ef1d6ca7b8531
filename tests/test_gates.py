"""Every gate can fail: copies fail the privacy gates, holdout rows pass them, and so on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import GatesConfig
from pipelines.contracts import PROVENANCE, build_suite, run_suite
from pipelines.gates import gate
from pipelines.gates.privacy import privacy_gates
from pipelines.gates.utility import utility_gate
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


def test_copied_training_rows_fail_both_privacy_gates(hdma_split):
    train, holdout = hdma_split
    fake = train.sample(n=500, random_state=0)
    gates, _ = privacy_gates(fake, train, holdout, GATES, seed=1)
    g = _by_name(gates)
    assert not g["exact_copies"].passed and g["exact_copies"].value == 1.0
    # equal-size references (mostlyai-qa): only |holdout|/|train| of the copies are in the train
    # reference, so full copying scores 0.43 * 1 + 0.57 * 0.5 here, not 1.0
    assert not g["dcr_share"].passed and g["dcr_share"].value > 0.65
    assert "identical to a training row" in g["exact_copies"].explanation


def test_holdout_rows_pass_the_privacy_gates(hdma_split):
    train, holdout = hdma_split
    gates, _ = privacy_gates(holdout, train, holdout, GATES, seed=1)
    g = _by_name(gates)
    assert g["exact_copies"].passed, g["exact_copies"]
    assert g["dcr_share"].passed and g["dcr_share"].value < 0.1


def test_lightly_perturbed_copies_still_fail_dcr(hdma_split):
    train, holdout = hdma_split
    fake = train.sample(n=500, random_state=0).copy()
    fake["dir"] = fake["dir"] * (1 + np.random.default_rng(0).normal(0, 0.001, len(fake)))
    g = _by_name(privacy_gates(fake, train, holdout, GATES, seed=1)[0])
    assert g["exact_copies"].passed  # no longer byte-identical...
    assert not g["dcr_share"].passed  # ...but still far closer to train than to holdout


def test_utility_gate_fails_when_labels_are_noise(hdma_split):
    train, holdout = hdma_split
    fake = train.copy()
    fake["deny"] = np.random.default_rng(0).permutation(fake["deny"].to_numpy())
    result, figures = utility_gate(fake, train, holdout, "deny", GATES, seed=1)
    assert not result.passed
    assert figures["trtr"] > 0.7 and figures["tstr"] < 0.62
    good, _ = utility_gate(train, train, holdout, "deny", GATES, seed=1)
    assert good.passed and good.value == pytest.approx(0.0, abs=1e-9)


def test_utility_handles_regression_targets():
    from tests.conftest import DIAMONDS

    df = pd.read_csv(DIAMONDS, nrows=3000).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.3, 1, None)
    result, figures = utility_gate(train, train, holdout, "price", GATES, seed=1)
    assert figures["task"] == "regression" and figures["trtr"] > 0.9 and result.passed


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
