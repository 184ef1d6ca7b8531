"""Business rules (`fit.constraints` in params.yaml): enforced at fit, checked before release.

Each rule is passed to SDV's constraint-augmented generation at fit time (so the synthesizer
produces valid rows, not rows filtered afterwards), turned into Great Expectations expectations
in the release suite, and measured by the `constraints` gate (adherence per rule, 100% needed):

- ``range`` ``{type: range, column: humid, min: 0, max: 100}``: ScalarBounds at fit;
  GX ``expect_column_values_to_be_between``.
- ``positive`` ``{type: positive, column: pressure}``: ScalarBounds (> 0); GX ``..._to_be_between``
  with ``strict_min``.
- ``inequality`` ``{type: inequality, low: dewp, high: temp}``: ``sdv.cag.Inequality``; GX
  ``expect_column_pair_values_a_to_be_greater_than_b``.
- ``fixed_combinations`` ``{type: fixed_combinations, columns: [pbcr, dmi]}``:
  ``sdv.cag.FixedCombinations``; GX ``expect_column_pair_values_to_be_in_set`` for each pair.
- ``increments`` ``{type: increments, column: wind_dir, step: 10}``: ``sdv.cag.FixedIncrements``;
  no GX expectation (the gate checks it).

GX has no pandas expectation for "a multiple of n" nor for combinations of more than two
columns; for those the `constraints` gate (exact, every rule) is the check that blocks a release.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.rules import ConstraintRule

_NUMERIC_SDTYPES = ("numerical", "datetime")
_CATEGORY_SDTYPES = ("categorical", "ordinal", "boolean")
RULE_META = "synthgate_rule"
"""Key in an expectation's `meta` naming the rule it was derived from."""


def _required_sdtypes(rule: ConstraintRule) -> tuple[str, ...]:
    if rule.type in ("range", "positive", "increments"):
        return ("numerical",)
    if rule.type == "inequality":
        return _NUMERIC_SDTYPES
    return _CATEGORY_SDTYPES


def violations(rule: ConstraintRule, df: pd.DataFrame, combos: set[tuple] | None = None) -> pd.Series:
    """A boolean Series, True where a row breaks the rule (missing values never break one)."""
    import numpy as np
    import pandas as pd

    if rule.type == "range":
        x = df[rule.column]
        bad = pd.Series(False, index=df.index)
        if rule.min is not None:
            bad |= x < rule.min
        if rule.max is not None:
            bad |= x > rule.max
        return bad & x.notna()
    if rule.type == "positive":
        x = df[rule.column]
        return (x <= 0) & x.notna()
    if rule.type == "inequality":
        lo, hi = df[rule.low], df[rule.high]
        broken = (lo >= hi) if rule.strict else (lo > hi)
        return broken & lo.notna() & hi.notna()
    if rule.type == "increments":
        x = df[rule.column]
        return (
            x.notna()
            & ~np.isclose(np.mod(x.astype(float), rule.step), 0)
            & ~np.isclose(np.mod(x.astype(float), rule.step), rule.step)
        )
    # fixed_combinations: the combination must have been seen in the real data
    if combos is None:
        raise ValueError("fixed_combinations needs the real combinations")
    keys = _combo_keys(df, rule.columns)
    return ~keys.isin(combos)


def _combo_keys(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    import pandas as pd

    parts = [df[c].astype(object).where(df[c].notna(), None).map(repr) for c in columns]
    return pd.Series(list(zip(*parts, strict=True)), index=df.index, dtype=object)


def real_combinations(rule: ConstraintRule, real: pd.DataFrame) -> set[tuple]:
    """The combinations of a fixed_combinations rule's columns that occur in the real data."""
    return set(_combo_keys(real, rule.columns).tolist())


def adapt_sdtypes(
    metadata: dict[str, Any], table: str, rules: Sequence[ConstraintRule], real: pd.DataFrame
) -> dict[str, Any]:
    """Detected SDV metadata (a dict) with the sdtypes the rules need.

    SDV may detect a numeric column with few values (wind_dir: 0, 10, ... 360) as categorical, or
    month/day as numerical: a rule says how the column is meant, so bootstrap follows it.
    """
    import copy

    import pandas as pd

    out = copy.deepcopy(metadata)
    cols = out["tables"][table]["columns"]
    for rule in rules:
        for col in rule.column_names():
            if col not in cols or col not in real.columns:
                continue
            current = cols[col].get("sdtype")
            wanted = _required_sdtypes(rule)
            if current in wanted:
                continue
            if "numerical" in wanted and pd.api.types.is_numeric_dtype(real[col]):
                cols[col] = {"sdtype": "numerical"}
            elif "categorical" in wanted and current == "numerical":
                cols[col] = {"sdtype": "categorical"}
    return out


def check_rules(
    rules: Sequence[ConstraintRule],
    real: pd.DataFrame,
    sdtypes: Mapping[str, str],
    where: str,
    protected: Sequence[str] = (),
) -> None:
    """Every rule must name existing, suitable, non-PII columns, and the real data must obey it.

    Raises ConfigError naming the rule's key path (an unknown or unsuitable column), or
    InvalidInputError when the real data breaks a rule (fix the data or the rule: a model cannot
    learn a rule its training data contradicts).
    """
    problems = []
    for i, rule in enumerate(rules):
        key = f"{where}.constraints[{i}] ({rule.label})"
        for col in rule.column_names():
            if col not in real.columns:
                problems.append(f"{key}: no column '{col}' (columns: {list(real.columns)})")
            elif col in protected:
                problems.append(f"{key}: '{col}' is a PII column (never learned, cannot be constrained)")
            elif sdtypes.get(col) not in _required_sdtypes(rule):
                problems.append(
                    f"{key}: column '{col}' has sdtype '{sdtypes.get(col)}' in the metadata; this rule "
                    f"needs one of {list(_required_sdtypes(rule))}"
                )
    if problems:
        raise ConfigError(problems)
    broken = []
    for i, rule in enumerate(rules):
        combos = real_combinations(rule, real) if rule.type == "fixed_combinations" else None
        bad = violations(rule, real, combos)
        if bad.any():
            sample = real.loc[bad, list(rule.column_names())].head(3).to_dict("records")
            broken.append(
                f"{where}.constraints[{i}] ({rule.label}): the real data breaks it in {int(bad.sum())} "
                f"of {len(real)} rows, e.g. {sample}"
            )
    if broken:
        raise InvalidInputError(
            "train split",
            broken,
            hint="A synthesizer cannot learn a rule its training data contradicts: fix those rows in the "
            "source (or drop them), or correct the rule in params.yaml.",
        )


def to_sdv(rules: Sequence[ConstraintRule], table: str | None = None) -> list[Any]:
    """SDV constraint objects for the rules (table_name set for multi-table metadata)."""
    from sdv.cag import FixedCombinations, FixedIncrements, Inequality

    from pipelines.constraint_bounds import ScalarBounds

    out: list[Any] = []
    for rule in rules:
        tname = rule.table or table
        if rule.type == "inequality":
            out.append(Inequality(rule.low, rule.high, strict_boundaries=rule.strict, table_name=tname))
        elif rule.type == "fixed_combinations":
            out.append(FixedCombinations(list(rule.columns), table_name=tname))
        elif rule.type == "increments":
            out.append(FixedIncrements(rule.column, rule.step, table_name=tname))
        elif rule.type == "positive":
            out.append(ScalarBounds(rule.column, low=0.0, strict_low=True, table_name=tname))
        else:
            out.append(ScalarBounds(rule.column, low=rule.min, high=rule.max, table_name=tname))
    return out


def adherence(rules: Sequence[ConstraintRule], release: pd.DataFrame, real: pd.DataFrame) -> dict[str, Any]:
    """Per rule: the share of release rows that obey it, and how many do not."""
    out: dict[str, Any] = {}
    for rule in rules:
        combos = real_combinations(rule, real) if rule.type == "fixed_combinations" else None
        missing = [c for c in rule.column_names() if c not in release.columns]
        if missing:
            out[rule.label] = {
                "adherence": 0.0,
                "violations": len(release),
                "rows": len(release),
                "note": f"columns {missing} missing from the release",
            }
            continue
        bad = violations(rule, release, combos)
        n = len(release)
        out[rule.label] = {
            "adherence": round(1 - float(bad.mean()), 6) if n else 1.0,
            "violations": int(bad.sum()),
            "rows": n,
        }
    return out


def rules_to_record(rules: Sequence[ConstraintRule]) -> list[dict[str, Any]]:
    """The rules as plain JSON for run records (each with its label)."""
    return [{**r.model_dump(mode="json"), "label": r.label} for r in rules]


def rules_from_record(raw: Sequence[Mapping[str, Any]] | None) -> list[ConstraintRule]:
    """Rules read back from a run record."""
    from pydantic import TypeAdapter

    from pipelines.rules import ConstraintRule

    adapter = TypeAdapter(ConstraintRule)
    return [adapter.validate_python({k: v for k, v in r.items() if k != "label"}) for r in raw or ()]


def _exp(kind: str, label: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {RULE_META: label}}


def expectations(rules: Sequence[ConstraintRule], real: pd.DataFrame) -> list[dict[str, Any]]:
    """GX expectations (suite JSON) for the rules; `increments` has no GX equivalent."""
    exps: list[dict[str, Any]] = []
    for rule in rules:
        if rule.type == "range":
            exps.append(
                _exp(
                    "expect_column_values_to_be_between",
                    rule.label,
                    column=rule.column,
                    min_value=rule.min,
                    max_value=rule.max,
                )
            )
        elif rule.type == "positive":
            exps.append(
                _exp("expect_column_values_to_be_between", rule.label, column=rule.column, min_value=0, strict_min=True)
            )
        elif rule.type == "inequality":
            exps.append(
                _exp(
                    "expect_column_pair_values_a_to_be_greater_than_b",
                    rule.label,
                    column_A=rule.high,
                    column_B=rule.low,
                    or_equal=not rule.strict,
                    ignore_row_if="either_value_is_missing",
                )
            )
        elif rule.type == "fixed_combinations":
            for a, b in itertools.combinations(rule.columns, 2):
                pairs = real[[a, b]].dropna().drop_duplicates().sort_values([a, b])
                exps.append(
                    _exp(
                        "expect_column_pair_values_to_be_in_set",
                        rule.label,
                        column_A=a,
                        column_B=b,
                        value_pairs_set=[[_plain(x), _plain(y)] for x, y in pairs.itertuples(index=False)],
                        ignore_row_if="either_value_is_missing",
                    )
                )
    return exps


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def with_rule_expectations(
    suite: dict[str, Any], rules: Sequence[ConstraintRule], real: pd.DataFrame
) -> tuple[dict[str, Any], list[str]]:
    """The suite plus the expectations of rules it does not hold yet (a rule added to params.yaml
    after `expectations init` is still checked by GX); returns the labels that were added."""
    present = {(e.get("meta") or {}).get(RULE_META) for e in suite["expectations"]}
    missing = [r for r in rules if r.label not in present and r.type != "increments"]
    if not missing:
        return suite, []
    added = expectations(missing, real)
    return {**suite, "expectations": [*suite["expectations"], *added]}, [r.label for r in missing]
