"""`ScalarBounds`: SDV constraint-augmented generation for constant bounds (`range`, `positive`).

SDV 2.0 dropped its scalar range/positive constraints; this programmable constraint restores
them. It lives in its own module because it subclasses an SDV class (so importing it imports
SDV) and because a fitted synthesizer pickles a reference to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sdv.cag import SingleTableProgrammableConstraint


class ScalarBounds(SingleTableProgrammableConstraint):
    """`low (<|<=) column <= high` with constant bounds, learned in an unbounded space.

    The synthesizer models log(x - low), log(high - x) or logit((x - low) / (high - low)), so
    every sampled value maps back inside the bounds. The transformed column is described to SDV as
    plain numerical (SDV would otherwise round the log to the column's `decimal_places`); values
    are rounded to those places on the way back, inwards at the bounds.
    """

    def __init__(
        self,
        column_name: str,
        low: float | None = None,
        high: float | None = None,
        strict_low: bool = False,
        table_name: str | None = None,
    ) -> None:
        self.column_name = column_name
        self.low = low
        self.high = high
        self.strict_low = strict_low
        self.table_name = table_name
        self._digits: int | None = None
        self._eps = 1e-9

    def validate(self, metadata: Any) -> None:
        """The column must be numerical in the metadata."""
        table = self.table_name or next(iter(metadata.tables))
        sdtype = metadata.tables[table].columns[self.column_name]["sdtype"]
        if sdtype != "numerical":
            raise ValueError(f"column '{self.column_name}' must be numerical, not {sdtype}")

    def fit(self, data: pd.DataFrame, metadata: Any) -> None:
        """Learn the column's decimal places (the metadata's, else the data's) and its scale."""
        from rdt.transformers.utils import learn_rounding_digits

        x = data[self.column_name].dropna()
        spec = self._spec(metadata) if metadata is not None else {}
        self._digits = spec.get("decimal_places", learn_rounding_digits(x) if len(x) else None)
        span = float(x.max() - x.min()) if len(x) else 1.0
        self._eps = max(span, 1.0) * 1e-9

    def transform(self, data: pd.DataFrame) -> pd.DataFrame:
        """Map the bounded column to an unbounded one."""
        data = data.copy()
        x = data[self.column_name].astype(float)
        lo, hi, eps = self.low, self.high, self._eps
        if lo is not None and hi is not None:
            u = ((x - lo) / (hi - lo)).clip(eps, 1 - eps)
            data[self.column_name] = np.log(u) - np.log1p(-u)
        elif lo is not None:
            data[self.column_name] = np.log((x - lo).clip(lower=0) + eps)
        else:
            data[self.column_name] = np.log((hi - x).clip(lower=0) + eps)
        return data

    def _spec(self, metadata: Any) -> dict[str, Any]:
        table = self.table_name or next(iter(metadata.tables))
        return dict(metadata.tables[table].columns[self.column_name])

    def get_updated_metadata(self, metadata: Any) -> Any:
        """The column keeps its name; the model sees it as plain numerical (no range, no rounding)."""
        table = self.table_name or next(iter(metadata.tables))
        metadata.tables[table].columns[self.column_name] = {"sdtype": "numerical"}
        return metadata

    def reverse_transform(self, transformed_data: pd.DataFrame) -> pd.DataFrame:
        """Map sampled values back inside the bounds (rounded to the column's places, inwards at the bounds)."""
        data = transformed_data.copy()
        y = data[self.column_name].astype(float)
        lo, hi, eps = self.low, self.high, self._eps
        if lo is not None and hi is not None:
            x = lo + (hi - lo) / (1 + np.exp(-y))
        elif lo is not None:
            x = lo + np.exp(y) - eps
        else:
            x = hi - np.exp(y) + eps
        floor = -np.inf if lo is None else float(lo)
        ceiling = np.inf if hi is None else float(hi)
        if self._digits is not None:
            scale = 10**self._digits  # bounds in units of the last place, rounded inwards
            low_units = round(floor * scale, 6)
            floor = (np.floor(low_units) + 1 if self.strict_low else np.ceil(low_units)) / scale
            ceiling = np.floor(round(ceiling * scale, 6)) / scale
            x = x.round(self._digits)
        elif self.strict_low:
            floor = np.nextafter(floor, np.inf)
        data[self.column_name] = x.clip(floor, ceiling)
        return data

    def is_valid(self, synthetic_data: pd.DataFrame) -> pd.Series:
        """True where the value is missing or inside the bounds."""
        x = synthetic_data[self.column_name]
        ok = pd.Series(True, index=synthetic_data.index)
        if self.low is not None:
            ok &= x.isna() | ((x > self.low) if self.strict_low else (x >= self.low))
        if self.high is not None:
            ok &= x.isna() | (x <= self.high)
        return ok
