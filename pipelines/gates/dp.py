"""Privacy budget gate: the epsilon spent on a dataset's data, over every DP model, within a budget.

Opt-in per dataset (`gates.privacy_budget_max`; null: off). The figure is the privacy ledger's
total epsilon after the model being released was fitted (basic sequential composition over every
DP model fitted on the dataset's data, `pipelines/dp.py`), as the fit record holds it. A model
without a DP guarantee cannot be released on a dataset with a budget: its epsilon is unbounded.
"""

from __future__ import annotations

from typing import Any

from pipelines.gates.base import Figures, GateContext, GateResult, gate


def dp_figures(ctx: GateContext) -> Figures:
    """The `differential_privacy` figures (the fit's target, spent epsilon and ledger totals), or none
    for a fit record written before DP was recorded."""
    privacy = ctx.fit_record.get("privacy")
    if not privacy:
        return {}
    return {"differential_privacy": {**privacy, "budget": ctx.cfg.gates.privacy_budget_max}}


class PrivacyBudget:
    """Ledger epsilon total (DP models on the dataset's data) <= the dataset's budget."""

    name = "privacy_budget"
    param = "privacy_budget_max"

    def applies(self, ctx: GateContext) -> bool:
        """Only when the dataset has a budget."""
        return ctx.cfg.gates.privacy_budget_max is not None

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """Blocks when the total exceeds the budget, or when the model has no DP guarantee."""
        figures = dp_figures(ctx)
        privacy: dict[str, Any] = figures.get("differential_privacy") or {}
        totals = (privacy.get("ledger") or {}).get("totals") or {}
        total = float(totals.get("epsilon", 0.0))
        others = totals.get("non_dp_models", 0) - (0 if privacy.get("dp") else 1)
        listed = f"; {others} other model(s) without DP on the ledger (listed, not summed)" if others > 0 else ""
        if not privacy.get("dp"):
            why = (
                "this model was fitted without differential privacy (no fit.privacy): its epsilon is unbounded"
                if privacy
                else "the fit record has no privacy section (written before DP was recorded): re-run fit"
            )
            result = gate(self.name, total, ctx.threshold(self), "<=", f"{why}{listed}")
            return result.model_copy(update={"passed": False}), figures
        spent = privacy["spent"]
        result = gate(
            self.name,
            total,
            ctx.threshold(self),
            "<=",
            f"epsilon {total:.4f} spent on '{ctx.cfg.name}' over {totals['dp_models']} DP model(s) (sequential "
            f"composition, delta {totals['delta']:.1e}), of which this model {spent['epsilon']:.4f}{listed}",
        )
        return result, figures
