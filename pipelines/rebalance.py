"""Rare classes: conditional sampling and the `rebalance` blend strategy (pure functions).

`generate.conditions` fixes column values for every generated row ("10,000 rows where
deny=yes"). `blend.strategy: rebalance` asks for a class distribution of one column
(`blend.column`, default the target), e.g. `shares: {"yes": 0.5}`: `generate` plans one group of
shards per class, each sampled with SDV's conditional sampling, so the synthetic rows have the
requested shares; `blend` may add real train rows (`real_ratio`), drawn per class in the same
shares. Both are checked against the values the model was fitted on (the fit record's
`domain`), so a condition on a value that never occurs is an error, not an empty sample.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig

MAX_DOMAIN_VALUES = 1_000
"""Distinct values recorded per categorical column in the fit record."""

CLASS_LIKE_MAX = 50
"""Numeric columns with at most this many distinct values are treated as classes."""


def domain(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per column, what the model was fitted on: class values with counts, or a numeric range."""
    import pandas as pd

    out: dict[str, dict[str, Any]] = {}
    for col in df.columns:
        s = df[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = {"kind": "datetime"}
            continue
        counts = s.value_counts(dropna=True)
        if not numeric or len(counts) <= CLASS_LIKE_MAX:
            top = counts.head(MAX_DOMAIN_VALUES)
            out[col] = {
                "kind": "classes",
                "values": [_plain(v) for v in top.index],
                "counts": [int(c) for c in top.to_numpy()],
                "truncated": len(counts) > len(top),
            }
        if numeric and len(counts):
            out[col] = {
                **out.get(col, {}),
                "kind": out.get(col, {}).get("kind", "range"),
                "min": _plain(s.min()),
                "max": _plain(s.max()),
            }
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _match(col_domain: Mapping[str, Any], value: Any) -> tuple[bool, Any]:
    """(found, the domain's own value) for a condition/class value given in params or conf."""
    values = col_domain.get("values", [])
    for v in values:
        if v == value and type(v) is type(value):
            return True, v
    text = str(value).strip().lower()
    for v in values:
        if str(v).strip().lower() == text and not isinstance(value, bool):
            return True, v
    return False, None


def _few(values: list[Any]) -> list[Any]:
    """The first `SHOWN_VALUES` values, and '...' when there are more."""
    return [*values[:SHOWN_VALUES], "..."] if len(values) > SHOWN_VALUES else values


def _hint(value: Any) -> str:
    if isinstance(value, bool):
        return " (YAML reads unquoted yes/no/on/off as booleans: quote the value)"
    return ""


SHOWN_VALUES = 10
"""Values of a column an error about a condition or a class lists (the most frequent first)."""


def check_conditions(
    conditions: Mapping[str, Any],
    dom: Mapping[str, Mapping[str, Any]],
    protected: Collection[str],
    where: str = "generate.conditions",
    seen: str = "the train split",
) -> dict[str, Any]:
    """The conditions with values as the model knows them; ConfigError for an unknown column, a
    PII column, or a value that never occurs in `seen` (what `dom` was taken from)."""
    problems, out = [], {}
    for col, value in conditions.items():
        key = f"{where}.{col}"
        if col in protected:
            problems.append(f"{key}: '{col}' is a PII column (never learned, cannot be a condition)")
            continue
        if col not in dom:
            problems.append(f"{key}: no column '{col}' (columns: {sorted(dom)})")
            continue
        d = dom[col]
        if d.get("kind") == "datetime":
            problems.append(f"{key}: conditions on datetime columns are not supported")
            continue
        found, known = _match(d, value)
        if found:
            out[col] = known
        elif "min" in d and not isinstance(value, (bool, str)) and d["min"] <= value <= d["max"]:
            out[col] = value
        elif "values" in d:
            shown = _few(d["values"])
            tail = " (only the most frequent values were recorded)" if d.get("truncated") else ""
            problems.append(f"{key}: {value!r} never occurs in {seen}; values are {shown}{tail}{_hint(value)}")
        else:
            problems.append(f"{key}: {value!r} is outside the range of {seen} [{d['min']}, {d['max']}]")
    if problems:
        raise ConfigError(problems)
    return out


def class_shares(
    cfg: DatasetConfig, dom: Mapping[str, Mapping[str, Any]], protected: Collection[str]
) -> tuple[str, dict[Any, float]]:
    """The rebalanced column and the share of each of its classes (they add up to 1).

    Listed classes get their share; the others split the rest in their real proportions.
    """
    column = cfg.blend.column or cfg.target
    where = f"datasets.{cfg.name}.blend"
    if column is None:
        raise ConfigError([f"{where}.column: strategy 'rebalance' needs a column (or a dataset target)"])
    if column in protected:
        raise ConfigError([f"{where}.column: '{column}' is a PII column and cannot be rebalanced"])
    if column not in dom:
        raise ConfigError([f"{where}.column: no column '{column}' (columns: {sorted(dom)})"])
    d = dom[column]
    if "values" not in d:
        raise ConfigError(
            [
                f"{where}.column: '{column}' is not a class column (more than {CLASS_LIKE_MAX} "
                "distinct numbers); rebalance a categorical column"
            ]
        )
    counts = dict(zip(d["values"], d["counts"], strict=True))
    requested: dict[Any, float] = {}
    problems = []
    for key, share in cfg.blend.shares.items():
        found, known = _match(d, key)
        if not found:
            problems.append(
                f"{where}.shares.{key}: class {key!r} never occurs in column '{column}' (classes: {_few(d['values'])})"
            )
        else:
            requested[known] = share
    if problems:
        raise ConfigError(problems)
    rest = 1.0 - sum(requested.values())
    others = {v: c for v, c in counts.items() if v not in requested}
    if not others and rest > 1e-9:
        raise ConfigError(
            [
                f"{where}.shares: they add up to {1 - rest:g} and column '{column}' has no other "
                "class to take the rest; make them add up to 1"
            ]
        )
    total_other = sum(others.values())
    shares = dict(requested)
    for v, c in others.items():
        shares[v] = rest * c / total_other if total_other else 0.0
    return column, shares


def allocate(total: int, shares: Mapping[Any, float]) -> dict[Any, int]:
    """Integer counts per class that add up to `total` (largest remainder, ties by order)."""
    raw = {k: total * s for k, s in shares.items()}
    counts = {k: math.floor(v) for k, v in raw.items()}
    left = total - sum(counts.values())
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[:left]:
        counts[k] += 1
    return counts


def real_rows(train: pd.DataFrame, column: str, counts: Mapping[Any, int], seed: int, where: str) -> pd.DataFrame:
    """Real train rows drawn per class without replacement, `counts[class]` of each."""
    import pandas as pd

    parts, problems = [], []
    for value, n in counts.items():
        pool = train[train[column] == value]
        if n > len(pool):
            problems.append(
                f"{where}.real_ratio: needs {n} real rows of class {value!r}, the train split "
                f"has {len(pool)}; lower real_ratio"
            )
        elif n:
            parts.append(pool.sample(n=n, random_state=seed))
    if problems:
        raise ConfigError(problems)
    return pd.concat(parts) if parts else train.head(0)


def achieved(df: pd.DataFrame, column: str) -> dict[str, float]:
    """The class shares of a frame, as JSON-friendly {str(class): share}."""
    if not len(df):
        return {}
    return {str(k): round(float(v), 6) for k, v in df[column].value_counts(normalize=True).sort_index().items()}


def resample(real: pd.DataFrame, column: str, shares: Mapping[str, float], n: int, seed: int) -> pd.DataFrame:
    """`n` real rows in the requested class shares (classes keyed by their string form), drawn
    with replacement where a class is rarer than asked: the fair quality reference for a
    deliberately rebalanced release."""
    import pandas as pd

    keys = real[column].map(str)
    counts = allocate(n, {k: v for k, v in shares.items() if (keys == k).any()})
    parts = []
    for key, k in counts.items():
        pool = real[keys == key]
        if k:
            parts.append(pool.sample(n=k, replace=k > len(pool), random_state=seed))
    return pd.concat(parts, ignore_index=True) if parts else real.head(0)
