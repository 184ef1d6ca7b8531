"""Fidelity gates: SDMetrics quality and diagnostic scores (through SDV), one scorer for all.

A single table is scored on up to `gates.sample_rows` rows per side; a table set is scored whole
(sampling rows would break its keys), with SDV's multi-table reports. A rebalanced release is
scored against train rows resampled to the release's class shares (the mix changed on purpose).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd


def scores(
    real: pd.DataFrame | Mapping[str, pd.DataFrame],
    synthetic: pd.DataFrame | Mapping[str, pd.DataFrame],
    metadata: Any,
) -> tuple[float, float, dict[str, float]]:
    """SDMetrics quality and diagnostic scores plus per-property scores, of one frame or a dict of them."""
    from sdv.evaluation import evaluate_quality, run_diagnostic

    if isinstance(real, Mapping):
        real, synthetic = dict(real), dict(synthetic)
    quality = evaluate_quality(real, synthetic, metadata, verbose=False)
    diagnostic = run_diagnostic(real, synthetic, metadata, verbose=False)
    props = {}
    for prefix, rep in (("quality", quality), ("diagnostic", diagnostic)):
        for _, row in rep.get_properties().iterrows():
            if row["Score"] == row["Score"]:  # NaN: the property does not apply (e.g. no constraints)
                props[f"{prefix}.{row['Property']}"] = float(row["Score"])
    return float(quality.get_score()), float(diagnostic.get_score()), props


def _compared(ctx: GateContext) -> tuple[Any, Any, Figures]:
    """The real reference and the synthetic rows to score, and a note on the reference."""
    train, synthetic = ctx.learned_only(ctx.train), ctx.learned_only(ctx.synthetic)
    if ctx.layout.relational:
        return train, synthetic, {}
    n, seed = ctx.cfg.gates.sample_rows, ctx.cfg.seed
    real, syn = train[ctx.main], synthetic[ctx.main]
    real_s = real.sample(n=min(len(real), n), random_state=seed)
    figures: Figures = {}
    rebalanced = ctx.blend_record.get("rebalance")
    if rebalanced and rebalanced["column"] in real.columns:
        from pipelines.rebalance import achieved, resample

        column = rebalanced["column"]
        real_s = resample(real, column, rebalanced["achieved"], min(n, max(len(real), len(syn))), seed)
        figures["quality_reference"] = (
            f"train rows resampled to the release's shares of '{column}' {achieved(real_s, column)}"
        )
    return real_s, syn.sample(n=min(len(syn), n), random_state=seed), figures


def _fidelity(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    real, synthetic, figures = _compared(ctx)
    started = time.perf_counter()
    q, d, props = scores(real, synthetic, ctx.metadata)
    figures["sdmetrics"] = props
    figures["sdmetrics_seconds"] = round(time.perf_counter() - started, 3)

    def names(prefix: str) -> str:
        return ", ".join(k.split(".", 1)[1] for k in props if k.startswith(f"{prefix}."))

    results = [
        gate(
            "quality",
            q,
            ctx.cfg.gates.quality_min,
            ">=",
            f"SDMetrics quality score ({names('quality')}) vs the real train rows",
        ),
        gate(
            "diagnostic",
            d,
            ctx.cfg.gates.diagnostic_min,
            ">=",
            f"SDMetrics diagnostic score ({names('diagnostic')})",
        ),
    ]
    return {r.name: r for r in results}, figures


QUALITY = FamilyGate("quality", "quality_min", _fidelity, lambda ctx: ctx.has_synthetic_rows)
DIAGNOSTIC = FamilyGate("diagnostic", "diagnostic_min", _fidelity, lambda ctx: ctx.has_synthetic_rows)
