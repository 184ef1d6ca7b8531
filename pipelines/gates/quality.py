"""Fidelity gates: SDMetrics quality and diagnostic scores (through SDV), one scorer for all,
and the floors under their averages: the worst column's shape and the worst pair's trend.

A single table is scored on up to `gates.sample_rows` rows per side; a table set is scored whole
(sampling rows would break its keys), with SDV's multi-table reports, and its within-table pairs on
up to `gates.sample_rows` rows of each table. A rebalanced release is scored against train rows
resampled to the release's class shares (the mix changed on purpose). `pipelines.fidelity`
has the per-column and per-pair figures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Scores:
    """One SDMetrics run: the quality and diagnostic scores, each property's, and per-column shapes."""

    quality: float
    diagnostic: float
    properties: dict[str, float]
    shapes: pd.DataFrame


def scores(
    real: pd.DataFrame | Mapping[str, pd.DataFrame],
    synthetic: pd.DataFrame | Mapping[str, pd.DataFrame],
    metadata: Any,
) -> Scores:
    """SDMetrics quality and diagnostic scores, per-property scores and the Column Shapes details
    (one row per column: Table, Column, Metric, Score), of one frame or a dict of them."""
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
    shapes = quality.get_details("Column Shapes")
    return Scores(float(quality.get_score()), float(diagnostic.get_score()), props, shapes)


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


def _floors(ctx: GateContext, real: Any, synthetic: Any, shapes: pd.DataFrame) -> Figures:
    """Per-column shapes and every within-table pair's trend (a table set's tables sampled to
    `sample_rows` rows each), with their sampling allowances, worst first, and the id-like columns
    left out of both."""
    from pipelines.fidelity import column_shapes, left_out, pair_trends

    meta = ctx.metadata.to_dict()
    if ctx.layout.single:
        (table,) = meta["tables"]
        real, synthetic = {table: real}, {table: synthetic}
    skip = left_out(real, meta)
    figures: Figures = {"column_shapes": column_shapes(shapes, real, synthetic, skip), "floors_left_out": skip}
    if ctx.layout.relational:
        n, seed = ctx.cfg.gates.sample_rows, ctx.cfg.seed
        real, synthetic = (
            {t: df.sample(n=min(len(df), n), random_state=seed) for t, df in side.items()} for side in (real, synthetic)
        )
    figures["pair_trends"] = pair_trends(real, synthetic, meta, skip)
    return figures


def _floor(name: str, rows: list[dict[str, Any]], floor: float, what: str) -> GateResult:
    """The gate on `rows` (worst first): each score must reach `floor` less its sampling allowance.
    Judged on the lowest-scoring row that falls short, or on the lowest one when none does; 1.0
    when nothing was scored."""
    scored = [r for r in rows if r["score"] is not None]
    if not scored:
        return gate(name, 1.0, floor, ">=", f"no {what} to compare")
    short = [r for r in scored if r["score"] < floor - r["allowance"]]
    worst = (short or scored)[0]

    def label(r: dict[str, Any]) -> str:
        named = " x ".join(f"'{c}'" for c in r["columns"]) if "columns" in r else f"'{r['column']}'"
        return f"{named} {r['metric']} {r['score']:.3f}"

    nexts = [label(r) for r in (short or scored) if r is not worst][:2]
    return gate(
        name,
        worst["score"],
        floor,
        ">=",
        f"{what}: {len(short)} of {len(scored)} below the floor; judged: {label(worst)}, allowed {floor:g} - "
        f"{worst['allowance']:.3f} sampling noise" + (f"; next: {', '.join(nexts)}" if nexts else ""),
        allowance=-min(worst["allowance"], floor),
    )


def _fidelity(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    real, synthetic, figures = _compared(ctx)
    started = time.perf_counter()
    s = scores(real, synthetic, ctx.metadata)
    figures["sdmetrics"] = s.properties
    figures["sdmetrics_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    figures.update(_floors(ctx, real, synthetic, s.shapes))
    figures["floors_seconds"] = round(time.perf_counter() - started, 3)

    def names(prefix: str) -> str:
        return ", ".join(k.split(".", 1)[1] for k in s.properties if k.startswith(f"{prefix}."))

    g = ctx.cfg.gates
    results = [
        gate(
            "quality",
            s.quality,
            g.quality_min,
            ">=",
            f"SDMetrics quality score ({names('quality')}) vs the real train rows",
        ),
        gate("diagnostic", s.diagnostic, g.diagnostic_min, ">=", f"SDMetrics diagnostic score ({names('diagnostic')})"),
        _floor("column_shape", figures["column_shapes"], g.column_shape_min, "column shapes (SDMetrics Column Shapes)"),
        _floor("pair_trend", figures["pair_trends"], g.pair_trend_min, "trends of every column pair, weak ones too"),
    ]
    return {r.name: r for r in results}, figures


def _applies(ctx: GateContext) -> bool:
    return ctx.has_synthetic_rows


QUALITY = FamilyGate("quality", "quality_min", _fidelity, _applies)
DIAGNOSTIC = FamilyGate("diagnostic", "diagnostic_min", _fidelity, _applies)
COLUMN_SHAPE = FamilyGate("column_shape", "column_shape_min", _fidelity, _applies)
PAIR_TREND = FamilyGate("pair_trend", "pair_trend_min", _fidelity, _applies)
