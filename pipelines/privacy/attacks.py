"""Attack-based privacy from SDMetrics: DCRBaselineProtection, judged against the holdout.

SDMetrics' DCRBaselineProtection scores how far synthetic rows lie from the real training rows
against a baseline of random rows: the median distance to the closest training record (its own
range-scaled distance) of the synthetic rows over that of uniformly random rows, capped at 1.
Copies score 0. Real unseen rows lie close to training rows too (hdma's holdout scores about
0.02), so the figure the gate judges is the synthetic score over the holdout rows' score: about
1 for a generator as private as fresh real data, 0 for copies. Medians cannot judge a table with
many natural duplicates (`TIES_MAX`): the gate is not run there.

The other SDMetrics 0.32 privacy measures are left out (docs/gates-privacy.md has the controls):
DCROverfittingProtection compares training and holdout references of different sizes, and
DisclosureProtection (CAP) needs a sensitive column and tells copies from fresh rows only with
every row of both sides, which costs seconds per thousand rows.

Cost: SDMetrics compares every sampled row with every reference row in pandas (microseconds a
pair), so `attack_rows` synthetic and holdout rows are measured against at most
`attack_train_rows` training rows, plus, for each sampled row identical to a training row, one
such row: copies stay at distance 0 whatever the table's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


TIES_MAX = 0.25
"""Highest share of holdout rows identical to a training row at which the gate judges medians.

Rows identical to a training row have DCR 0; when about half the rows are, the median DCR of 100
sampled rows jumps between 0 and a distance, so fresh real rows scored a ratio of 0 in 2 of 20
draws (diamonds on four columns, 59% natural duplicates). Above this share the gate is not run:
`exact_copies` and `dcr_low_tail` handle such ties.
"""


@dataclass(frozen=True)
class BaselineProtection:
    """DCRBaselineProtection of synthetic and of holdout rows, and their ratio."""

    synthetic: float
    holdout: float
    rows: int
    train_rows: int

    @property
    def ratio(self) -> float:
        """Synthetic over holdout score; 1 when the holdout scores 0."""
        return self.synthetic / self.holdout if self.holdout > 0 else 1.0


def _reference(train: pd.DataFrame, queries: list[pd.DataFrame], rows: int, seed: int) -> pd.DataFrame:
    """Up to `rows` training rows, plus one training row identical to each query row that has one."""
    import pandas as pd

    hashes = pd.Series(pd.util.hash_pandas_object(train, index=False).to_numpy(), index=train.index)
    wanted = set().union(*(pd.util.hash_pandas_object(q, index=False).tolist() for q in queries))
    identical = hashes[hashes.isin(wanted)].drop_duplicates().index
    sampled = train.sample(n=rows, random_state=seed).index if len(train) > rows else train.index
    return train.loc[sampled.union(identical)]


def baseline_protection(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, rows: int, train_rows: int, seed: int
) -> BaselineProtection:
    """SDMetrics DCRBaselineProtection of `rows` synthetic and holdout rows (canonical frames).

    The holdout rows are scored against the synthetic call's random baseline (SDMetrics'
    `calculate_dcr`, the distance the metric uses). The seed fixes the random rows; numpy's global
    random state, which SDMetrics draws missing values from, is restored afterwards.
    """
    import warnings

    import numpy as np
    import pandas as pd
    from sdmetrics.single_table import DCRBaselineProtection
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    syn = synthetic.sample(n=rows, random_state=seed) if len(synthetic) > rows else synthetic
    ho = holdout.sample(n=rows, random_state=seed) if len(holdout) > rows else holdout
    reference = _reference(train, [syn, ho], train_rows, seed)
    metadata = {
        "columns": {
            c: {"sdtype": "numerical" if pd.api.types.is_float_dtype(train[c]) else "categorical"}
            for c in train.columns
        }
    }
    seeded = type("SeededDCRBaselineProtection", (DCRBaselineProtection,), {"_seed": seed})
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = seeded.compute_breakdown(reference, syn.reset_index(drop=True), metadata, None)
            random_median = float(found["median_DCR_to_real_data"]["random_data_baseline"])
            holdout_median = float(calculate_dcr(ho.reset_index(drop=True), reference, metadata).median())
    finally:
        np.random.set_state(state)
    if not random_median > 0:  # random rows sit on training rows: distance tells nothing here
        return BaselineProtection(1.0, 1.0, len(syn), len(reference))
    holdout = min(holdout_median / random_median, 1.0)
    return BaselineProtection(float(found["score"]), holdout, len(syn), len(reference))
