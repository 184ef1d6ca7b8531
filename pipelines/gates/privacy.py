"""Privacy gates: no copied training rows, and synthetic rows no closer to train than to holdout.

Both compare the main table's learned, non-key columns (`GateContext.attributes`): keys are new
values in a synthetic set and PII is never learned. The figures are `pipelines.metrics.privacy`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import GatesConfig


def privacy_gates(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, gates: GatesConfig, seed: int
) -> tuple[list[GateResult], dict[str, Any]]:
    """Exact-copy and DCR-share gates (pure; used by tests to prove both can fail)."""
    from pipelines.metrics import privacy

    p = privacy(synthetic, train, holdout, gates.sample_rows, seed)
    results = [
        gate(
            "exact_copies",
            p.exact_copy_share,
            gates.exact_copies_max,
            "<=",
            f"share of {p.rows_compared} synthetic rows identical to a training row "
            f"(real holdout rows: {p.holdout_exact_copy_share:.4f})",
        ),
        gate(
            "dcr_share",
            p.dcr_share,
            gates.dcr_share_max,
            "<=",
            "share of synthetic rows closer to a training row than to a holdout row "
            "(equal-size references; about 0.5 when nothing is memorised)",
        ),
    ]
    return results, asdict(p)


def _privacy(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    cols, main = ctx.attributes(), ctx.main
    results, figures = privacy_gates(
        ctx.synthetic[main][cols], ctx.train[main][cols], ctx.holdout[main][cols], ctx.cfg.gates, ctx.cfg.seed
    )
    if ctx.layout.relational:
        figures["table"] = main
    return {r.name: r for r in results}, {"privacy": figures}


EXACT_COPIES = FamilyGate("exact_copies", "exact_copies_max", _privacy, lambda ctx: ctx.has_synthetic_rows)
DCR_SHARE = FamilyGate("dcr_share", "dcr_share_max", _privacy, lambda ctx: ctx.has_synthetic_rows)
