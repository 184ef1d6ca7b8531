"""The columns privacy compares, and the same types on every side.

Privacy is measured on the columns an attacker can match a real person on. Left out, each with
its reason (the `left_out` figure): keys and the fit plan's PII columns (given by the caller: a
synthetic set has new keys, and PII is replaced with fakes or dropped, never real), id-like
columns (text or integers, distinct in almost every row: fresh values make every row look new
and far away) and constant columns (they match everywhere and tell nothing).

Every side is then brought to the train split's kind per column (numbers, instants, text), so a
synthetic column stored with another type is compared by value; one that cannot be read as the
train's kind is an `InvalidInputError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipelines.contracts import type_family
from pipelines.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

ID_DISTINCT_SHARE = 0.95
"""A text or integer column with at least this share of distinct values (among non-null) is id-like."""


def _integral(s: pd.Series) -> bool:
    """Integers, or floats that are all whole numbers (an integer column with missing values)."""
    family = type_family(s.dtype)
    if family != "float":
        return family == "integer"
    values = s.dropna()
    return bool(len(values)) and bool((values == values.round()).all())


_KINDS = {"boolean": "text", "integer": "number", "float": "number", "datetime": "instant", "string": "text"}
"""How privacy compares each of the contracts' type families: booleans and categories as text."""


def _kind(s: pd.Series) -> str:
    """'number', 'instant' or 'text'."""
    return _KINDS[type_family(s.dtype)]


def left_out(train: pd.DataFrame, excluded: Mapping[str, str] | None = None) -> dict[str, str]:
    """Columns privacy leaves out, with the reason: `excluded` (keys, PII) plus id-like and constant ones."""
    out = {c: r for c, r in (excluded or {}).items() if c in train.columns}
    for col in train.columns:
        if col in out:
            continue
        s = train[col]
        if s.nunique(dropna=False) <= 1:
            out[col] = "constant"
            continue
        nonnull = s.dropna()
        distinct = nonnull.nunique() / len(nonnull) if len(nonnull) else 0.0
        if distinct >= ID_DISTINCT_SHARE and (_kind(s) == "text" or _integral(s)):
            out[col] = f"id-like: {distinct:.0%} of values distinct"
    return out


def _as_number(s: pd.Series) -> pd.Series:
    import pandas as pd

    if _kind(s) == "instant":
        return pd.Series(float("nan"), index=s.index)
    return pd.to_numeric(s if _kind(s) == "number" else s.astype(object), errors="coerce").astype(float)


def _as_seconds(s: pd.Series) -> pd.Series:
    import pandas as pd

    if _kind(s) == "number":
        return pd.Series(float("nan"), index=s.index)
    instants = pd.to_datetime(s, errors="coerce", utc=True)
    return instants.astype("int64").where(instants.notna()).astype(float) / 1e9


def conform(frame: pd.DataFrame, train: pd.DataFrame, columns: list[str], name: str) -> pd.DataFrame:
    """`frame[columns]` in canonical form: numbers and instants (seconds) as floats, the rest as text.

    Raises InvalidInputError naming every column `frame` lacks or holds values of another kind in.
    """
    import pandas as pd

    problems = [f"column '{c}' is missing" for c in columns if c not in frame.columns]
    if problems:
        raise InvalidInputError(name, problems)
    out = {}
    for col in columns:
        kind, s = _kind(train[col]), frame[col]
        if kind == "text":
            out[col] = s.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
            continue
        out[col] = _as_number(s) if kind == "number" else _as_seconds(s)
        bad = s.notna() & out[col].isna()
        if bad.any():
            examples = sorted({str(v) for v in s[bad].head(50)})[:3]
            problems.append(f"column '{col}' must hold {kind}s like the train split; found {examples}")
    if problems:
        raise InvalidInputError(name, problems, hint="Privacy compares each column by the train split's type.")
    return pd.DataFrame(out, index=frame.index)
