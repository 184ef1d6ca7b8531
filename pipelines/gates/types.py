"""Type fidelity gate: the release keeps the source's columns and their types.

Per table, every column of the train split must be in the release, in the source's order, with
nothing added (columns the PII plan drops are expected absent). Each column is then checked for
what its role allows:
- learned columns: the dtype kind (`type_family`: integer, float, string, boolean, datetime);
  whole numbers where train has them (`INTEGER_SHARE` of the values, in train and the release);
  no invented category in categorical, ordinal and boolean columns (sdtype of the metadata:
  every released value must be a real one, train or holdout); dates that stay dates;
- keys and id columns: the kind and whole numbers (their values are new by design);
- PII-replaced columns: the kind (a replacement keeps the column's type; the values are new).

The figure is the share of columns with no problem; every problem is named per column in the
figures. A value that cannot be compared is itself a problem named with its column: this gate
never stops validate on a type mismatch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.contracts import INTEGER_SHARE, type_family, whole_share
from pipelines.gates.base import Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

NAMED_VALUES = 3
"""Invented values named per column (the count says how many there are)."""

CATEGORY_SDTYPES = ("categorical", "ordinal", "boolean")
"""Metadata sdtypes whose released values must all be real ones."""


def _pct(share: float) -> str:
    return f"{100 * share:.4g}%"


def _specs(ctx: GateContext, table: str) -> dict[str, dict[str, Any]]:
    """The metadata's column specs of a table ({} without metadata)."""
    tables = getattr(ctx.metadata, "tables", None) or {}
    return dict(tables[table].columns) if table in tables else {}


def kind_problem(real: pd.Series, released: pd.Series) -> str | None:
    """The column's kind changed, or None.

    Integers released as floats pass only when train could hold missing values (NaN, a nullable
    integer dtype) and every released value is whole; floats released as integers only when every
    train value is whole (the float dtype carried nothing but missing values).
    """
    import pandas as pd

    was, now = type_family(real.dtype), type_family(released.dtype)
    if was == now:
        return None
    if {was, now} == {"integer", "float"}:
        if was == "integer":
            nullable = bool(real.isna().any()) or pd.api.types.is_extension_array_dtype(real.dtype)
            if nullable and whole_share(released) in (1.0, None):
                return None
        elif whole_share(real) in (1.0, None):
            return None
    return f"{was} in train ({real.dtype}), {now} in the release ({released.dtype})"


def whole_problem(real: pd.Series, released: pd.Series) -> tuple[str | None, dict[str, float] | None]:
    """An integer-valued train column whose released values are fractions, and the two shares."""
    was = whole_share(real)
    if was is None or was < INTEGER_SHARE:
        return None, None
    now = whole_share(released)
    if now is None:  # not numbers (the kind check names it) or no value to judge
        return None, None
    shares = {"train": round(was, 6), "release": round(now, 6)}
    if now >= INTEGER_SHARE:
        return None, shares
    return f"{_pct(was)} of train values are whole numbers, {_pct(now)} of released", shares


def category_problem(real: pd.Series, holdout: pd.Series | None, released: pd.Series) -> str | None:
    """Released values that are none of the real (train or holdout) values, up to `NAMED_VALUES` named."""
    import pandas as pd

    seen = pd.concat([real, holdout]) if holdout is not None else real
    present = released.dropna()
    invented = present[~present.isin(seen.dropna().unique())]
    if invented.empty:
        return None
    named = ", ".join(repr(v) for v in invented.drop_duplicates().head(NAMED_VALUES).tolist())
    return (
        f"{len(invented)} released values ({_pct(len(invented) / len(present))}) are not among the real "
        f"values, e.g. {named}"
    )


def date_problem(released: pd.Series, datetime_format: str | None) -> str | None:
    """Released text values that do not parse as dates (with the metadata's format)."""
    import warnings

    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(released.dtype):
        return None
    present = released.dropna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(present.astype(str), format=datetime_format or "mixed", errors="coerce")
    bad = int(parsed.isna().sum())
    if not bad:
        return None
    how = f"format {datetime_format!r}" if datetime_format else "any date format"
    return f"{bad} released values ({_pct(bad / len(present))}) are not dates in {how}"


def column_problems(
    role: str, spec: dict[str, Any], real: pd.Series, holdout: pd.Series | None, released: pd.Series
) -> tuple[list[str], dict[str, float] | None]:
    """Problems of one column present in train and the release; `role` is learned, key or pii."""
    import pandas as pd

    problems = [p for p in [kind_problem(real, released)] if p]
    if role == "pii":
        return problems, None
    whole, shares = whole_problem(real, released)
    problems += [whole] if whole else []
    if role == "learned" and spec.get("sdtype") in CATEGORY_SDTYPES:
        problems += [p for p in [category_problem(real, holdout, released)] if p]
    dated = spec.get("sdtype") == "datetime" or pd.api.types.is_datetime64_any_dtype(real.dtype)
    if role == "learned" and dated and not problems:
        problems += [p for p in [date_problem(released, spec.get("datetime_format"))] if p]
    return problems, shares


def layout_problems(expected: list[str], released: list[str]) -> dict[str, list[str]]:
    """Per column: missing from the release, not in the source, or out of the source's order."""
    out: dict[str, list[str]] = {c: ["missing from the release"] for c in expected if c not in released}
    out.update({c: ["in the release but not in the source"] for c in released if c not in expected})
    source_order = [c for c in expected if c in released]
    release_order = [c for c in released if c in expected]
    for i, col in enumerate(source_order):
        j = release_order.index(col)
        if i != j:
            out.setdefault(col, []).append(f"column {j + 1} of the release, {i + 1} of the source")
    return out


def _roles(ctx: GateContext, table: str) -> tuple[dict[str, str], set[str]]:
    """Each train column's role (learned, key, pii) and the columns the PII plan drops."""
    from pipelines.keys import key_columns
    from pipelines.pii import PiiPlan

    plan = PiiPlan.from_dict(ctx.fit_record.get("pii")) if table == ctx.main else PiiPlan.from_dict(None)
    keys = set(key_columns(ctx.cfg.source, table))
    specs = _specs(ctx, table)
    roles = {}
    for col in ctx.train[table].columns:
        if col in plan.names:
            roles[col] = "pii"
        elif col in keys or specs.get(col, {}).get("sdtype") == "id":
            roles[col] = "key"
        else:
            roles[col] = "learned"
    return roles, set(plan.dropped)


def type_figures(ctx: GateContext) -> tuple[int, dict[str, list[str]], dict[str, dict[str, float]]]:
    """Columns compared, problems per column and whole-number shares per integer-valued column."""
    import pandas as pd

    problems: dict[str, list[str]] = {}
    shares: dict[str, dict[str, float]] = {}
    total = 0
    for table, real in ctx.train.items():
        released = ctx.synthetic.get(table, pd.DataFrame())
        holdout = ctx.holdout.get(table)
        roles, dropped = _roles(ctx, table)
        specs = _specs(ctx, table)
        expected = [c for c in real.columns if c not in dropped]
        found = layout_problems(expected, list(released.columns))
        for col in (c for c in expected if c in released.columns):
            try:
                col_problems, col_shares = column_problems(
                    roles[col],
                    specs.get(col, {}),
                    real[col],
                    holdout[col] if holdout is not None and col in holdout.columns else None,
                    released[col],
                )
            except (TypeError, ValueError) as err:  # values of kinds that cannot be compared at all
                col_problems, col_shares = [f"could not be compared ({type(err).__name__}: {err})"], None
            if col_problems:
                found.setdefault(col, []).extend(col_problems)
            if col_shares:
                shares[col if ctx.layout.single else f"{table}.{col}"] = col_shares
        total += len(expected) + sum(1 for c in released.columns if c not in expected)
        named = (lambda c: c) if ctx.layout.single else (lambda c, t=table: f"{t}.{c}")
        problems.update({named(c): p for c, p in found.items()})
    return total, problems, shares


class Types:
    """Share of the release's columns that keep the source's order, kind, whole numbers, categories and dates."""

    name = "types"
    param = "types_min"

    def applies(self, ctx: GateContext) -> bool:
        """Whenever there are synthetic rows to look at."""
        return ctx.has_synthetic_rows

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """Every column's problems; the figure is the share of columns without any."""
        total, problems, shares = type_figures(ctx)
        kept = total - len(problems)
        share = kept / total if total else 1.0
        detail = " | ".join(f"column '{c}': {'; '.join(p)}" for c, p in list(problems.items())[:5])
        more = f" (and {len(problems) - 5} more columns)" if len(problems) > 5 else ""
        kept_what = "keep the source's order, kind, whole numbers, categories and dates"
        explanation = f"{kept}/{total} columns {kept_what}" + (f": {detail}{more}" if problems else "")
        figures = {"columns": total, "kept": kept, "problems": problems, "whole_numbers": shares}
        return gate(self.name, share, ctx.threshold(self), ">=", explanation), {"types": figures}
