"""Every privacy figure of synthetic rows against the train split, judged against the holdout.

A generator that learned the distribution, not the rows, makes synthetic rows that relate to the
training rows the way real unseen (holdout) rows do. So each figure is the synthetic rows' value
minus the holdout rows' value against the same training rows:

- exact copies: the share of rows identical to a training row (on the compared columns). A table
  with natural duplicates has holdout rows equal to training rows too; only the excess counts.
- DCR low tail: the share of rows whose distance to the closest training record is at or below
  the holdout's `dcr_quantile` DCR (distances to every training row, or `dcr_train_rows` of
  them). Copies (DCR 0) and near copies land there whatever the table's size.
- SDMetrics' DCRBaselineProtection, synthetic over holdout (`pipelines.privacy.attacks`).

Each share comes with an `allowance` for sampling noise, which the gates add to their threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.config import GatesConfig


@dataclass(frozen=True)
class PrivacyFigures:
    """The privacy figures of one synthetic table (see the module docstring)."""

    columns: list[str]
    left_out: dict[str, str]
    exact_copy_share: float
    holdout_exact_copy_share: float
    exact_copy_excess: float
    exact_copy_allowance: float
    dcr_quantile: float
    dcr_threshold: float
    dcr_low_tail_share: float
    holdout_dcr_low_tail_share: float
    dcr_low_tail_excess: float
    dcr_low_tail_allowance: float
    dcr_synthetic_train_median: float
    dcr_holdout_train_median: float
    rows_compared: int
    holdout_rows_compared: int
    train_rows_referenced: int
    dcr_baseline_protection: float | None
    holdout_dcr_baseline_protection: float | None
    dcr_baseline_protection_ratio: float | None
    attack_rows_compared: int
    attack_train_rows_referenced: int
    dcr_synthetic_train: list[float] = field(repr=False)
    dcr_holdout_train: list[float] = field(repr=False)


SAMPLING_Z = 3.0
"""Standard errors of sampling noise allowed on top of a threshold (see `allowance`)."""


def allowance(synthetic_share: float, synthetic_rows: int, holdout_share: float, holdout_rows: int) -> float:
    """`SAMPLING_Z` standard errors of a difference of two shares measured on so many rows.

    A generator exactly as private as fresh real rows differs from the holdout by sampling noise
    alone; it exceeds this allowance about 0.1% of the time (with two standard errors, 1 in 20 such
    generators failed on a table with natural duplicates). 0 when both shares are 0 or 1.
    """
    import math

    variance = sum(p * (1 - p) / n for p, n in ((synthetic_share, synthetic_rows), (holdout_share, holdout_rows)) if n)
    return SAMPLING_Z * math.sqrt(variance)


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    import pandas as pd

    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def privacy_figures(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    excluded: Mapping[str, str] | None = None,
    settings: GatesConfig | None = None,
    seed: int = 0,
) -> PrivacyFigures:
    """Every privacy figure of `synthetic` against `train`, with `holdout` as the baseline.

    `excluded` maps columns to leave out (keys, PII) to the reason; id-like and constant columns
    are left out too (`pipelines.privacy.columns.left_out`). `settings` gives `sample_rows`
    (synthetic and holdout rows whose DCR is measured), `dcr_train_rows`, `dcr_quantile`,
    `attack_rows` and `attack_train_rows`; the defaults of `GatesConfig` when None. Raises
    InvalidInputError when a compared column of `synthetic` or `holdout` is missing or cannot be
    read as the train split's type.
    """
    import numpy as np

    from pipelines.config import GatesConfig
    from pipelines.privacy.attacks import TIES_MAX, baseline_protection
    from pipelines.privacy.columns import conform, left_out
    from pipelines.privacy.distances import DECIMALS, RowEncoder, low_tail, nearest

    s = settings or GatesConfig()
    dropped = left_out(train, excluded)
    cols = [c for c in train.columns if c not in dropped]
    tr = conform(train, train, cols, "train split")
    syn, ho = conform(synthetic, train, cols, "synthetic rows"), conform(holdout, train, cols, "holdout split")
    train_hashes = _hashes(tr) if cols else np.zeros(0)

    def copies(frame: pd.DataFrame) -> np.ndarray:
        return np.isin(_hashes(frame), train_hashes) if cols and len(frame) else np.zeros(len(frame), bool)

    reference = _sample(tr, s.dcr_train_rows, seed)
    enc = RowEncoder(tr)
    e_tr = enc.transform(reference)

    def dcr(frame: pd.DataFrame) -> np.ndarray:
        """DCRs of up to `sample_rows` rows; 0 for a row identical to any training row."""
        rows = _sample(frame, s.sample_rows, seed)
        if not cols or not len(rows):
            return np.zeros(len(rows))
        return np.round(np.where(copies(rows), 0.0, nearest(enc.transform(rows), e_tr)), DECIMALS)

    syn_copy, ho_copy = (float(copies(f).mean()) if len(f) else 0.0 for f in (syn, ho))
    d_syn, d_ho = dcr(syn), dcr(ho)
    tail = low_tail(d_syn, d_ho, s.dcr_quantile)
    judged = bool(cols) and len(syn) > 0 and len(ho) > 0 and ho_copy <= TIES_MAX
    attack = baseline_protection(syn, tr, ho, s.attack_rows, s.attack_train_rows, seed) if judged else None
    return PrivacyFigures(
        columns=cols,
        left_out=dropped,
        exact_copy_share=syn_copy,
        holdout_exact_copy_share=ho_copy,
        exact_copy_excess=syn_copy - ho_copy,
        exact_copy_allowance=allowance(syn_copy, len(syn), ho_copy, len(ho)),
        dcr_quantile=tail.quantile,
        dcr_threshold=tail.threshold,
        dcr_low_tail_share=tail.synthetic_share,
        holdout_dcr_low_tail_share=tail.holdout_share,
        dcr_low_tail_excess=tail.excess,
        dcr_low_tail_allowance=allowance(tail.synthetic_share, len(d_syn), tail.holdout_share, len(d_ho)),
        dcr_synthetic_train_median=float(np.median(d_syn)) if len(d_syn) else 0.0,
        dcr_holdout_train_median=float(np.median(d_ho)) if len(d_ho) else 0.0,
        rows_compared=len(d_syn),
        holdout_rows_compared=len(d_ho),
        train_rows_referenced=len(reference),
        dcr_baseline_protection=attack.synthetic if attack else None,
        holdout_dcr_baseline_protection=attack.holdout if attack else None,
        dcr_baseline_protection_ratio=attack.ratio if attack else None,
        attack_rows_compared=attack.rows if attack else 0,
        attack_train_rows_referenced=attack.train_rows if attack else 0,
        dcr_synthetic_train=[float(x) for x in d_syn],
        dcr_holdout_train=[float(x) for x in d_ho],
    )
