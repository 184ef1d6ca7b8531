"""Contract gates: the release suite (GX) holds on every table, and there are rows to measure.

The release suite is one file for the whole table set: an expectation tagged `meta.table` belongs
to that table, an untagged one to the main table (a single table's suite, and the expectations
of business rules added after `expectations init`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.gates.base import Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contracts import GxResult

MIN_SYNTHETIC_ROWS = 1
"""Fixed: a table without synthetic rows leaves nothing to measure (not a quality knob)."""


@dataclass(frozen=True)
class SuiteRun:
    """A release suite run over a table set: each table's GX result and their totals."""

    suite: str
    results: dict[str, GxResult]
    raw: dict[str, Any]
    """What `reports/<ds>/gx_release.json` holds: GX's result, or one per table for several."""

    @property
    def evaluated(self) -> int:
        """Expectations evaluated over every table."""
        return sum(r.evaluated for r in self.results.values())

    @property
    def successful(self) -> int:
        """Expectations met over every table."""
        return sum(r.successful for r in self.results.values())

    @property
    def success(self) -> bool:
        """Whether every expectation of every table was met."""
        return all(r.success for r in self.results.values())

    @property
    def failures(self) -> list[str]:
        """One line per failed expectation (prefixed by its table when there are several)."""
        several = len(self.results) > 1
        return [f"table '{t}': {f}" if several else f for t, r in self.results.items() for f in r.failures]


def _suite_for(suite: dict[str, Any], table: str, main: str, several: bool) -> dict[str, Any]:
    exps = [e for e in suite["expectations"] if (e.get("meta") or {}).get("table", main) == table]
    name = suite.get("name", "suite")
    return {**suite, "name": f"{name}.{table}" if several else name, "expectations": exps}


def run_release_suite(tables: Mapping[str, pd.DataFrame], suite: dict[str, Any], main: str) -> SuiteRun:
    """Run each table of a set against its expectations of the suite (GX Core)."""
    from pipelines.contracts import run_suite

    several = len(tables) > 1
    results = {t: run_suite(df, _suite_for(suite, t, main, several)) for t, df in tables.items()}
    raw = {t: r.raw for t, r in results.items()} if several else results[main].raw
    return SuiteRun(suite.get("name", "suite"), results, raw)


def suite_run(ctx: GateContext) -> SuiteRun:
    """The release suite (plus the business rules' expectations) run on the blended tables, once."""
    from pipelines.gates.constraints import suite_with_rules

    return ctx.memo(run_release_suite, lambda: run_release_suite(ctx.blended, suite_with_rules(ctx)[0], ctx.main))


class GxRelease:
    """The GX release suite: types, ranges, categories, row count, provenance, unique keys."""

    name = "gx_release"
    param = "gx_release_min"

    def applies(self, ctx: GateContext) -> bool:
        """Every release has a suite."""
        return True

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """Share of expectations met."""
        run = suite_run(ctx)
        share = run.successful / run.evaluated if run.evaluated else 0.0
        tables = f" over {len(run.results)} tables" if len(run.results) > 1 else ""
        explanation = f"{run.successful}/{run.evaluated} expectations of suite {run.suite} met{tables}" + (
            ": " + " | ".join(run.failures[:5]) if run.failures else ""
        )
        return gate(self.name, share, ctx.threshold(self), ">=", explanation), {}


class SyntheticRows:
    """Stops the release when a table has no synthetic rows (the figures below need some)."""

    name = "synthetic_rows"
    param = None

    def applies(self, ctx: GateContext) -> bool:
        """Only when some table is empty; otherwise the figure gates run."""
        return not ctx.has_synthetic_rows

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """The fewest synthetic rows of any table."""
        empty = [t for t, df in ctx.synthetic.items() if not len(df)]
        fewest = min(len(df) for df in ctx.synthetic.values())
        where = f" (empty: {', '.join(empty)})" if ctx.layout.relational else ""
        return gate(self.name, fewest, MIN_SYNTHETIC_ROWS, ">=", f"no synthetic rows to evaluate{where}"), {}
