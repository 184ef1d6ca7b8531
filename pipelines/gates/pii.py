"""PII replay gate: no real identifier (train or holdout) appears anywhere in the release.

Table by table, the protected columns are the fit plan's plus whatever detection finds in the
real table now, minus `fit.pii.ignore` (`table.column`, or a bare column name, for a table set).
Detection runs whatever `fit.pii.detect` says, so turning protection off cannot turn the gate off.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.contracts import PROVENANCE
from pipelines.gates.base import Figures, GateContext, GateResult, gate
from pipelines.pii import PiiPlan, gate_columns, real_values, replay

PII_REPLAY_MAX = 0
"""Fixed: one real identifier in a release is a leak; no number of them is acceptable."""


def _plan(ctx: GateContext) -> PiiPlan:
    """The PII plan fit recorded (the columns it protected), with `fit.pii.ignore` from params.

    A table set's fit protects no column itself, so its record holds no `ignore`: params do.
    """
    return replace(PiiPlan.from_dict(ctx.fit_record.get("pii")), ignore=tuple(ctx.cfg.fit.pii.ignore))


def _table_plan(base: PiiPlan, table: str) -> PiiPlan:
    """The plan for one table: `table.column` entries of `ignore` apply to it as `column`."""
    prefix = f"{table}."
    return replace(base, ignore=(*base.ignore, *(e.removeprefix(prefix) for e in base.ignore if e.startswith(prefix))))


def protected_columns(ctx: GateContext) -> dict[str, list[str]]:
    """Per table with any, the columns whose real values the gate protects (left out of the report)."""

    def compute() -> dict[str, list[str]]:
        base = _plan(ctx)
        found = {t: gate_columns(df, _table_plan(base, t)) for t, df in ctx.train.items()}
        return {t: cols for t, cols in found.items() if cols}

    return ctx.memo(protected_columns, compute)


class PiiReplay:
    """Distinct real PII values found in the release (in its PII columns or any text column)."""

    name = "pii_replay"
    param = None

    def applies(self, ctx: GateContext) -> bool:
        """Only when some real table has PII columns."""
        return bool(protected_columns(ctx))

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """Replay each table's real values against its released rows."""
        found: dict[str, dict[str, Any]] = {}
        for table, columns in protected_columns(ctx).items():
            real = real_values([ctx.train[table], ctx.holdout.get(table, ctx.train[table].head(0))], columns)
            hit = replay(ctx.blended[table].drop(columns=[PROVENANCE], errors="ignore"), real, columns)
            found[table] = {**hit, "pii_columns": columns}
        named = (lambda t, c: c) if ctx.layout.single else (lambda t, c: f"{t}.{c}")
        columns = [named(t, c) for t, f in found.items() for c in f["pii_columns"]]
        leaked = sum(f["leaked_values"] for f in found.values())
        where = ", ".join(f"'{named(t, c)}' ({n})" for t, f in found.items() for c, n in f["by_column"].items())
        examples = [e for f in found.values() for e in f["examples"]][:3]
        result = gate(
            self.name,
            leaked,
            PII_REPLAY_MAX,
            "<=",
            f"distinct real PII values of columns {columns} found in the release"
            + (f": in {where}, e.g. {examples}" if leaked else ""),
        )
        return result, {"pii": found[ctx.main] if ctx.layout.single else found}
