"""Contract gates: the release suite (GX) holds on every table, and there are rows to measure.

The release suite is one file for the whole table set: an expectation tagged `meta.table` belongs
to that table, an untagged one to the main table (a single table's suite, and the expectations
of business rules added after `expectations init`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.gates.base import Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    from pipelines.contracts import SetResult

MIN_SYNTHETIC_ROWS = 1
"""Fixed: a table without synthetic rows leaves nothing to measure (not a quality knob)."""


def suite_run(ctx: GateContext) -> SetResult:
    """The release suite (plus the business rules' expectations) run on the blended tables, once."""
    from pipelines.contracts import run_suites
    from pipelines.gates.constraints import suite_with_rules

    return ctx.memo(suite_run, lambda: run_suites(ctx.blended, suite_with_rules(ctx)[0], ctx.layout))


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
