"""Business-rule gate: every rule of `fit.constraints` holds on the released rows.

The rules come from the fit record (what the generator was told). Their GX expectations are
added to the release suite when it lacks them, so a rule added after `expectations init` is
checked by GX too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.contracts import PROVENANCE
from pipelines.gates.base import Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    from pipelines.config import ConstraintRule


def rules(ctx: GateContext) -> list[ConstraintRule]:
    """The business rules the fit stage recorded."""
    from pipelines.constraints import rules_from_record

    return rules_from_record(ctx.fit_record.get("constraints"))


def suite_with_rules(ctx: GateContext) -> tuple[dict[str, Any], list[str]]:
    """The release suite plus the rules' missing expectations, and the labels of those added."""
    from pipelines.constraints import with_rule_expectations

    main = ctx.main
    return ctx.memo(
        suite_with_rules, lambda: with_rule_expectations(ctx.suite, rules(ctx), ctx.learned_only(ctx.train)[main])
    )


class Constraints:
    """The lowest adherence over the rules: every released row must obey every rule."""

    name = "constraints"
    param = "constraints_min"

    def applies(self, ctx: GateContext) -> bool:
        """Only when the dataset declares rules."""
        return bool(rules(ctx))

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """Adherence per rule on the main table's released rows (real rows included)."""
        from pipelines.constraints import adherence

        checked = rules(ctx)
        release = ctx.blended[ctx.main].drop(columns=[PROVENANCE], errors="ignore")
        per_rule = adherence(checked, release, ctx.learned_only(ctx.train)[ctx.main])
        worst = min(r["adherence"] for r in per_rule.values())
        detail = "; ".join(
            f"{label} {r['adherence']:.2%} ({r['violations']} rows break it)" for label, r in per_rule.items()
        )
        result = gate(
            self.name, worst, ctx.threshold(self), ">=", f"lowest adherence over {len(checked)} rules: {detail}"
        )
        return result, {"constraints": {"rules": per_rule, "expectations_added_to_suite": suite_with_rules(ctx)[1]}}
