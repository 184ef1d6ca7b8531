"""Privacy figures judged against the holdout, with controls on real data (HDMA, diamonds).

Must fail: training rows copied with fresh ids and replaced e-mail addresses, on HDMA and on a
table with natural duplicates, whatever the table's size. Must pass: real holdout rows, the
natural-duplicate table's holdout, GaussianCopula releases. Bad input: a column of another type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import GatesConfig
from pipelines.errors import InvalidInputError
from pipelines.gates.privacy import privacy_gates
from pipelines.privacy import allowance, privacy_figures
from pipelines.privacy.columns import conform, left_out
from pipelines.privacy.distances import low_tail
from pipelines.tableset import split_frame
from tests.conftest import DIAMONDS, HDMA

GATES = GatesConfig()
PII = {"email": "PII (email, replaced)"}
PROJECTION = ["cut", "color", "clarity", "carat"]
"""Diamonds on a few low-cardinality columns: real data with many repeated rows."""


def _passed(synthetic, train, holdout, excluded=None) -> dict[str, bool]:
    results, _ = privacy_gates(synthetic, train, holdout, GATES, seed=5, excluded=excluded)
    return {r.name: r.passed for r in results}


def _with_ids(df: pd.DataFrame, first_id: int, seed: int) -> pd.DataFrame:
    """A customer table: an integer id and an e-mail address per row (Faker, seeded)."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return df.assign(email=[fake.email() for _ in range(len(df))]).assign(id=range(first_id, first_id + len(df)))


def _gaussian_copula(train: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A GaussianCopula release of `train` (SDV, default settings)."""
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    sdtypes = {c: "numerical" if pd.api.types.is_numeric_dtype(train[c]) else "categorical" for c in train}
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {c: {"sdtype": t} for c, t in sdtypes.items()}}}})
    synth = GaussianCopulaSynthesizer(metadata)
    synth.fit({"t": train})
    out = synth.sample(rows)
    return out["t"] if isinstance(out, dict) else out


@pytest.fixture(scope="module")
def hdma() -> tuple[pd.DataFrame, pd.DataFrame]:
    """HDMA split like the pipeline does (20% holdout), as a customer table with ids and e-mails."""
    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")
    return _with_ids(train, 0, 1), _with_ids(holdout, len(train), 2)


@pytest.fixture(scope="module")
def duplicated() -> tuple[pd.DataFrame, pd.DataFrame]:
    """3,000 diamonds on `PROJECTION`: about a third of holdout rows equal a training row."""
    df = pd.read_csv(DIAMONDS, usecols=PROJECTION).sample(n=3000, random_state=0)
    train, holdout, _ = split_frame(df, 0.2, 7, None)
    return train, holdout


# --- must fail ----------------------------------------------------------------------------------


def test_copies_with_fresh_ids_and_replaced_pii_fail(hdma):
    train, holdout = hdma
    copies = _with_ids(train.drop(columns=["id", "email"]), 10**6, 3)  # new id, new e-mail, same person
    p = privacy_figures(copies, train, holdout, PII, GATES, seed=5)
    assert p.left_out == {"email": "PII (email, replaced)", "id": "id-like: 100% of values distinct"}
    assert "id" not in p.columns and "deny" in p.columns
    assert p.exact_copy_share == 1.0 and p.holdout_exact_copy_share == 0.0
    assert p.dcr_low_tail_share == 1.0 and p.dcr_baseline_protection == 0.0
    verdicts = _passed(copies, train, holdout, PII)
    assert set(verdicts) == {"exact_copies", "dcr_low_tail", "dcr_baseline_protection"}
    assert not any(verdicts.values())
    # without the fit plan the e-mail column is still left out: unique text is id-like
    assert left_out(train)["email"].startswith("id-like")
    assert not any(_passed(copies, train, holdout).values())


def test_copies_fail_on_a_table_with_natural_duplicates(duplicated):
    train, holdout = duplicated
    p = privacy_figures(train, train, holdout, None, GATES, seed=5)
    assert 0.2 < p.holdout_exact_copy_share < 0.5  # natural duplicates: the baseline is far from 0
    assert p.exact_copy_excess == pytest.approx(1 - p.holdout_exact_copy_share)
    assert p.dcr_threshold == 0.0 and p.dcr_low_tail_excess > 0.5
    # medians of DCRs are ties here: SDMetrics' DCRBaselineProtection is not judged
    assert p.dcr_baseline_protection_ratio is None and p.attack_rows_compared == 0
    verdicts = _passed(train, train, holdout)
    assert set(verdicts) == {"exact_copies", "dcr_low_tail"} and not any(verdicts.values())


@pytest.mark.parametrize("train_rows", [2_000, 40_000])
def test_copy_control_fails_at_every_table_size(train_rows):
    """Distances go to the whole train split, so a copy's DCR is 0 however large it is; with a
    sampled reference (`dcr_train_rows`) copies are still found by hashing."""
    df = pd.read_csv(DIAMONDS).drop(columns=["Unnamed: 0"]).sample(n=train_rows + 2_000, random_state=1)
    train, holdout = df.iloc[:train_rows], df.iloc[train_rows:]
    copies = train.sample(n=2_000, random_state=2)
    for settings in (GATES, GatesConfig(dcr_train_rows=500, attack_train_rows=500)):
        p = privacy_figures(copies, train, holdout, None, settings, seed=5)
        assert p.dcr_low_tail_excess > 0.9 and p.exact_copy_excess > 0.99, settings
        assert p.dcr_baseline_protection_ratio == 0.0


# --- must pass ----------------------------------------------------------------------------------


def test_holdout_rows_pass(hdma):
    train, holdout = hdma
    p = privacy_figures(holdout, train, holdout, PII, GATES, seed=5)
    assert (p.exact_copy_excess, p.dcr_low_tail_excess, p.dcr_baseline_protection_ratio) == (0.0, 0.0, 1.0)
    assert all(_passed(holdout, train, holdout, PII).values())


def test_natural_duplicate_table_holdout_and_gaussian_copula_pass(duplicated):
    train, holdout = duplicated
    assert all(_passed(holdout, train, holdout).values())
    release = _gaussian_copula(train, len(train))
    p = privacy_figures(release, train, holdout, None, GATES, seed=5)
    assert p.exact_copy_share > 0.05  # repeats of real rows happen by chance here...
    assert p.exact_copy_excess < 0  # ...less often than among real unseen rows
    assert all(_passed(release, train, holdout).values())


def test_gaussian_copula_release_of_hdma_passes(hdma):
    train, holdout = (df.drop(columns=["id", "email"]) for df in hdma)
    release = _gaussian_copula(train, 2_000)
    p = privacy_figures(release, train, holdout, None, GATES, seed=5)
    assert p.dcr_low_tail_excess < 0 and p.dcr_baseline_protection_ratio > 2
    assert all(_passed(release, train, holdout).values())


# --- columns, types, figures --------------------------------------------------------------------


def test_left_out_columns_and_their_reasons():
    n = 200
    df = pd.DataFrame(
        {
            "row": np.arange(n),  # integer, unique: id-like
            "code": [f"C{i:04d}" for i in range(n)],  # text, unique: id-like
            "ratio": np.linspace(0, 1, n),  # a unique measurement, not an id
            "country": ["NL"] * n,  # constant
            "parent": np.arange(n) % 7,
            "score": [float(i % 50) for i in range(n)],
        }
    )
    assert left_out(df, {"parent": "key"}) == {
        "parent": "key",
        "row": "id-like: 100% of values distinct",
        "code": "id-like: 100% of values distinct",
        "country": "constant",
    }


def test_other_types_compare_by_value_or_fail_naming_the_column(hdma):
    train, holdout = (df.drop(columns=["id", "email"]) for df in hdma)
    as_text = train.head(300).astype({"dir": str, "comdominiom": str})
    p = privacy_figures(as_text, train, holdout, None, GATES, seed=5)
    assert p.exact_copy_share == 1.0  # the same values, stored as text
    bad = as_text.assign(dir=["n/a", *as_text["dir"].iloc[1:]])
    with pytest.raises(InvalidInputError, match=r"(?s)synthetic rows.*column 'dir' must hold numbers.*'n/a'"):
        privacy_figures(bad, train, holdout, None, GATES, seed=5)
    with pytest.raises(InvalidInputError, match=r"column 'deny' is missing"):
        conform(train.drop(columns=["deny"]), train, list(train.columns), "synthetic rows")
    stamps = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    with pytest.raises(InvalidInputError, match=r"column 't' must hold instants"):
        conform(pd.DataFrame({"t": [1.5, 2.5]}), stamps, ["t"], "synthetic rows")
    assert conform(pd.DataFrame({"t": ["2024-01-02"]}), stamps, ["t"], "x")["t"].iloc[0] == 1704153600.0


def test_low_tail_counts_ties_at_a_zero_threshold():
    holdout = np.array([0.0] * 30 + [0.5] * 70)
    tail = low_tail(np.array([0.0] * 10 + [0.4] * 90), holdout, 0.05)
    assert (tail.threshold, tail.holdout_share, tail.synthetic_share) == (0.0, 0.3, 0.1)
    assert tail.excess == pytest.approx(-0.2)
    assert allowance(0.0, 100, 0.0, 100) == 0.0 and allowance(1.0, 100, 0.3, 100) == pytest.approx(3 * 0.21**0.5 / 10)


def test_figures_are_deterministic_and_leave_numpy_alone(hdma):
    train, holdout = (df.drop(columns=["id", "email"]) for df in hdma)
    synthetic = holdout.sample(frac=1.0, random_state=3)
    np.random.seed(123)
    first = privacy_figures(synthetic, train, holdout, None, GATES, seed=5)
    after = np.random.rand()
    np.random.seed(123)
    assert privacy_figures(synthetic, train, holdout, None, GATES, seed=5) == first
    assert np.random.rand() == after
