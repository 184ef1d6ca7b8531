"""Fidelity floors: the worst column and the worst pair of columns, not only SDMetrics' averages.

`column_shape` reads the quality family's SDMetrics report (Column Shapes details: KSComplement
for numbers and dates, TVComplement for categories). `pair_trend` scores every pair of compared
columns of each table: SDMetrics 0.32's quality report averages only the pairs whose real
correlation (|r| > 0.5) or association (Cramér's V > 0.3) is strong, so a weak trend that is lost
goes unseen. As there: CorrelationSimilarity (Pearson) for two numeric or date columns,
ContingencySimilarity otherwise, a numeric column cut into 10 bins. The bins are the real
column's (outer edges open) on both sides, as SDMetrics' `discretize_column` cuts them; the
report's Column Pair Trends property cuts each side on its own range, so a synthetic column with
a narrower range lands in other bins than the same values in the real one.

Each score comes with its sampling allowance: how far below 1 two samples of these sizes from one
distribution may score (`NOISE_Z` standard errors, the KS test's 0.1% critical value for
KSComplement), so a small table is judged by what its size can show. A numeric pair whose
synthetic side is constant (its correlation undefined) is scored with ContingencySimilarity on the
binned values; a pair constant in the real rows has no trend to keep and no score. Id-like
categories (a name per row: at least `ID_DISTINCT_SHARE` of the real values distinct) are left
out of both floors and named: their only shape is "all distinct", kept only by copying rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CONTINUOUS = frozenset({"numerical", "datetime"})
COMPARED = CONTINUOUS | {"categorical", "boolean", "ordinal"}
"""The sdtypes SDMetrics compares (ids, PII and unknown columns are not)."""

ID_DISTINCT_SHARE = 0.95
"""A category column with at least this share of distinct real values (among non-null) is id-like."""

NOISE_Z = 3.0
"""Standard errors of sampling noise allowed below a correlation or contingency/category score."""

KS_CRITICAL = 1.95
"""Two-sample Kolmogorov-Smirnov coefficient at the 0.1% level: D <= 1.95 * sqrt((n + m) / (n m))."""


def _named(table: str, column: str, single: bool) -> str:
    return column if single else f"{table}.{column}"


def _round(value: float | None) -> float | None:
    return None if value is None or value != value else round(float(value), 6)


def tv_noise(shares: Any, n: int, m: int) -> float:
    """Mean plus `NOISE_Z` SDs of the total variation distance between samples of n and m rows
    drawn from one distribution with these cell `shares` (normal approximation per cell)."""
    import numpy as np

    var = np.asarray(shares, dtype=float) * (1 - np.asarray(shares, dtype=float)) * (1 / n + 1 / m)
    mean = 0.5 * math.sqrt(2 / math.pi) * float(np.sqrt(var).sum())
    return mean + NOISE_Z * 0.5 * math.sqrt((1 - 2 / math.pi) * float(var.sum()))


def ks_noise(n: int, m: int) -> float:
    """The KS distance two samples of n and m rows from one continuous distribution exceed 0.1% of the time."""
    return KS_CRITICAL * math.sqrt((n + m) / (n * m))


def corr_noise(r: float, n: int, m: int) -> float:
    """`NOISE_Z` standard errors of a CorrelationSimilarity score (1 - |r_real - r_synthetic| / 2)."""
    return NOISE_Z * (1 - r * r) * math.sqrt(1 / n + 1 / m) / 2


def left_out(real: Mapping[str, pd.DataFrame], metadata: dict[str, Any]) -> dict[str, str]:
    """Id-like category columns (named `table.column` for a table set), with the reason."""
    single, out = len(real) == 1, {}
    for table, frame in real.items():
        for col, meta in metadata["tables"][table]["columns"].items():
            if meta.get("sdtype") in COMPARED - CONTINUOUS and col in frame.columns:
                values = frame[col].dropna()
                distinct = values.nunique() / len(values) if len(values) > 1 else 0.0
                if distinct >= ID_DISTINCT_SHARE:
                    out[_named(table, col, single)] = f"id-like: {distinct:.0%} of values distinct"
    return out


def _worst_first(row: dict[str, Any]) -> tuple[bool, float, str]:
    """Order: lowest score first, unscored last."""
    score = row["score"]
    return score is None, 0.0 if score is None else score, str(row.get("column") or row.get("columns"))


def column_shapes(
    details: pd.DataFrame,
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    skip: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Per-column shape scores from SDMetrics' Column Shapes details (of `real` vs `synthetic`),
    with their sampling allowance, `skip`'s columns left out, worst first (unscored last)."""
    single, rows = len(real) == 1, []
    for _, r in details.iterrows():
        table, col = str(r["Table"]), str(r["Column"])
        if _named(table, col, single) in skip:
            continue
        values, other = real[table][col].dropna(), synthetic[table][col].dropna()
        n, m = max(len(values), 1), max(len(other), 1)
        if r["Metric"] == "KSComplement":
            allowance = ks_noise(n, m)
        else:
            allowance = tv_noise(values.value_counts(normalize=True).to_numpy(), n, m)
        score = _round(r["Score"])
        rows.append(
            {
                "column": _named(table, col, single),
                "metric": str(r["Metric"]),
                "score": score,
                "allowance": None if score is None else _round(allowance),
            }
        )
    return sorted(rows, key=_worst_first)


def _numeric(s: pd.Series) -> pd.Series:
    """Dates as nanoseconds (missing stays missing), booleans and numbers as floats."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.Series(s.to_numpy("datetime64[ns]").astype("int64"), index=s.index).where(s.notna()).astype(float)
    return pd.to_numeric(s, errors="coerce").astype(float)


def _pair(
    real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, continuous: set[str]
) -> tuple[str, float | None, float | None, float | None, float | None]:
    """(metric, score, allowance, real r, synthetic r) of one pair; score None: no trend to keep."""
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.utils import discretize_column

    r, s = real[[a, b]].copy(), synthetic[[a, b]].copy()
    for col in continuous & {a, b}:
        r[col], s[col] = _numeric(r[col]), _numeric(s[col])
    if r.nunique(dropna=True).min() < 2:
        return "none (constant in the real rows)", None, None, None, None
    if {a, b} <= continuous and s.nunique(dropna=True).min() >= 2:
        out = CorrelationSimilarity.compute_breakdown(r, s)
        if out["score"] == out["score"]:
            n, m = len(r.dropna()), len(s.dropna())
            rr, sr = float(out["real"]), float(out["synthetic"])
            return "CorrelationSimilarity", float(out["score"]), corr_noise(rr, n, m), rr, sr
    for col in sorted(continuous & {a, b}):  # the real column's bins on both sides
        r[col], s[col] = discretize_column(r[col], s[col])
    shares = r.groupby([a, b], dropna=False).size().to_numpy() / len(r)
    score = ContingencySimilarity.compute(r, s)
    return "ContingencySimilarity", float(score), tv_noise(shares, len(r), len(s)), None, None


def pair_trends(
    real: Mapping[str, pd.DataFrame],
    synthetic: Mapping[str, pd.DataFrame],
    metadata: dict[str, Any],
    skip: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Every pair of compared columns of every table: trend score and sampling allowance, worst first.

    `metadata` is SDV's metadata dict (`{"tables": {name: {"columns": {...}}}}`); a table's compared
    columns are those of a compared sdtype present on both sides and not in `skip`, in metadata order.
    """
    import warnings

    single = len(real) == 1
    rows = []
    for table, frame in real.items():
        columns = metadata["tables"][table]["columns"]
        compared = [
            c
            for c, meta in columns.items()
            if meta.get("sdtype") in COMPARED
            and c in frame.columns
            and c in synthetic[table].columns
            and _named(table, c, single) not in skip
        ]
        continuous = {c for c in compared if columns[c]["sdtype"] in CONTINUOUS}
        for a, b in combinations(compared, 2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas' notes on SDMetrics' frame handling
                metric, score, allowance, r, s = _pair(frame, synthetic[table], a, b, continuous)
            rows.append(
                {
                    "columns": [_named(table, a, single), _named(table, b, single)],
                    "metric": metric,
                    "score": _round(score),
                    "allowance": _round(allowance),
                    "real_correlation": _round(r),
                    "synthetic_correlation": _round(s),
                }
            )
    return sorted(rows, key=_worst_first)
