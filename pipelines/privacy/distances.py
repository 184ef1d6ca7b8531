"""Distances to the closest training record (DCR) and their low tail, on canonical rows.

Rows are encoded as numbers (`RowEncoder`), and each query row's DCR is its Euclidean distance
to the nearest training row. A row identical to a training row (found by hashing, in the whole
train split) has DCR 0 whatever training rows the distances were measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TOP_CATEGORIES = 30
"""Categories one-hot encoded per text column (the train's most frequent); the rest share one slot."""

DECIMALS = 6
"""DCRs are rounded to this many decimals, so floating-point noise is no distance."""


class RowEncoder:
    """Numeric rows for distances: numbers scaled to [0, 1] by the train range, text one-hot over
    the train's most frequent values, missing numbers as their own indicator.

    Takes canonical frames (`pipelines.privacy.columns.conform`): float or text columns.
    """

    def __init__(self, reference: pd.DataFrame) -> None:
        import pandas as pd

        self.numeric: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, list[Any]] = {}
        for col in reference.columns:
            s = reference[col]
            if pd.api.types.is_float_dtype(s):
                lo, hi = float(s.min()), float(s.max())
                lo = 0.0 if lo != lo else lo  # an all-missing column: any scale will do
                self.numeric[col] = (lo, hi - lo if hi > lo else 1.0)
            else:
                self.categories[col] = list(s.value_counts(dropna=False).index[:TOP_CATEGORIES])

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode rows of a canonical frame with the reference's columns."""
        import numpy as np

        parts = []
        for col, (lo, span) in self.numeric.items():
            scaled = ((df[col] - lo) / span).clip(-1, 2)
            parts.append(scaled.fillna(0).to_numpy()[:, None])
            parts.append(df[col].isna().to_numpy(dtype=float)[:, None])
        for col, cats in self.categories.items():
            s = df[col].fillna("\0missing")
            keys = ["\0missing" if c != c else c for c in cats]
            onehot = np.stack([(s == c).to_numpy() for c in keys] + [(~s.isin(keys)).to_numpy()], axis=1)
            parts.append(onehot.astype(float) / np.sqrt(2))
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(df), 0), np.float32)


def nearest(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each query row's distance to its nearest reference row."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    if not len(query):
        return np.zeros(0)
    nn = NearestNeighbors(n_neighbors=1, n_jobs=-1).fit(reference)
    return nn.kneighbors(query, return_distance=True)[0][:, 0]


@dataclass(frozen=True)
class LowTail:
    """How many synthetic rows sit as close to train as the closest real unseen rows do."""

    quantile: float
    threshold: float
    synthetic_share: float
    holdout_share: float

    @property
    def excess(self) -> float:
        """Synthetic minus holdout share at or below the threshold."""
        return self.synthetic_share - self.holdout_share


def low_tail(d_synthetic: np.ndarray, d_holdout: np.ndarray, quantile: float) -> LowTail:
    """Shares of synthetic and holdout DCRs at or below the holdout's `quantile` DCR.

    The threshold is a holdout DCR itself (the inverted CDF), so the holdout's own share is at
    least `quantile`, and more with ties: when natural duplicates give many holdout rows DCR 0,
    the threshold is 0 and the holdout share is the share of such rows.
    """
    import numpy as np

    if not len(d_synthetic) or not len(d_holdout):
        return LowTail(quantile, 0.0, 0.0, 0.0)
    tau = float(np.quantile(d_holdout, quantile, method="inverted_cdf"))
    return LowTail(quantile, tau, float(np.mean(d_synthetic <= tau)), float(np.mean(d_holdout <= tau)))
