"""Privacy gates: synthetic rows relate to the training rows no more closely than real unseen rows do.

Three gates on the main table, each judged against the holdout (`pipelines.privacy`): exact
copies and the DCR low tail as excess shares over the holdout's (allowed sampling noise on top of
the threshold), SDMetrics' DCRBaselineProtection as a ratio to the holdout's (not run on a table
where many real rows repeat: medians are ties there). They compare the columns an attacker can
match on: keys, the fit plan's PII columns, id-like and constant columns are left out, each named
with the reason in the `left_out` figure. docs/gates-privacy.md has the controls and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import GatesConfig
    from pipelines.privacy import PrivacyFigures


def _results(p: PrivacyFigures, gates: GatesConfig) -> list[GateResult]:
    results = [
        gate(
            "exact_copies",
            p.exact_copy_excess,
            gates.exact_copies_max,
            "<=",
            f"share of synthetic rows identical to a training row ({p.exact_copy_share:.4f}) minus that of real "
            f"holdout rows ({p.holdout_exact_copy_share:.4f}), on {len(p.columns)} columns; allowed "
            f"{gates.exact_copies_max:g} + {p.exact_copy_allowance:.4f} sampling noise",
            allowance=p.exact_copy_allowance,
        ),
        gate(
            "dcr_low_tail",
            p.dcr_low_tail_excess,
            gates.dcr_low_tail_max,
            "<=",
            f"share of {p.rows_compared} synthetic rows ({p.dcr_low_tail_share:.4f}) minus that of "
            f"{p.holdout_rows_compared} holdout rows ({p.holdout_dcr_low_tail_share:.4f}) at most "
            f"{p.dcr_threshold:.4f} from a training row (the holdout's {p.dcr_quantile:g} DCR quantile); allowed "
            f"{gates.dcr_low_tail_max:g} + {p.dcr_low_tail_allowance:.4f} sampling noise",
            allowance=p.dcr_low_tail_allowance,
        ),
    ]
    if p.dcr_baseline_protection_ratio is not None:  # None: too many natural duplicates to judge medians
        results.append(
            gate(
                "dcr_baseline_protection",
                p.dcr_baseline_protection_ratio,
                gates.dcr_baseline_protection_min,
                ">=",
                f"SDMetrics DCRBaselineProtection of {p.attack_rows_compared} synthetic rows "
                f"({p.dcr_baseline_protection:.4f}) over that of as many holdout rows "
                f"({p.holdout_dcr_baseline_protection:.4f})",
            )
        )
    return results


def privacy_gates(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    gates: GatesConfig,
    seed: int,
    excluded: Mapping[str, str] | None = None,
) -> tuple[list[GateResult], dict[str, Any]]:
    """The privacy gates and their figures (pure; `excluded`: columns to leave out, with the reason).

    `dcr_baseline_protection` is left out when too many holdout rows equal a training row for
    median distances to mean anything (`pipelines.privacy.attacks.TIES_MAX`).
    """
    from pipelines.privacy import privacy_figures

    p = privacy_figures(synthetic, train, holdout, excluded, gates, seed)
    return _results(p, gates), asdict(p)


def excluded_columns(ctx: GateContext) -> dict[str, str]:
    """The main table's keys and the fit plan's PII columns, with the reason each is left out."""
    from pipelines.keys import key_columns
    from pipelines.pii import PiiPlan

    plan = PiiPlan.from_dict(ctx.fit_record.get("pii"))
    done = {"replace": "replaced", "drop": "dropped"}.get(plan.policy, plan.policy)
    out = {c.column: f"PII ({c.kind}, {done})" for c in plan.columns}
    out.update({c: "key" for c in key_columns(ctx.cfg.source, ctx.main)})
    return out


def _privacy(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    main = ctx.main
    frames = (ctx.synthetic[main], ctx.train[main], ctx.holdout[main])
    results, figures = privacy_gates(*frames, ctx.cfg.gates, ctx.cfg.seed, excluded_columns(ctx))
    if ctx.layout.relational:
        figures["table"] = main
    return {r.name: r for r in results}, {"privacy": figures}


def _applies(ctx: GateContext) -> bool:
    return ctx.has_synthetic_rows


def _medians_judged(ctx: GateContext) -> bool:
    """Whether the family judged DCRBaselineProtection (not with many natural duplicates)."""
    return _applies(ctx) and "dcr_baseline_protection" in ctx.memo(_privacy, lambda: _privacy(ctx))[0]


EXACT_COPIES = FamilyGate("exact_copies", "exact_copies_max", _privacy, _applies)
DCR_LOW_TAIL = FamilyGate("dcr_low_tail", "dcr_low_tail_max", _privacy, _applies)
DCR_BASELINE_PROTECTION = FamilyGate(
    "dcr_baseline_protection", "dcr_baseline_protection_min", _privacy, _medians_judged
)
