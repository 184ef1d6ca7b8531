"""Canaries gate: does the generator give back records it saw once? (opt-in: `gates.canaries: k`)

`k` outlier canaries are planted in the train split of a shadow fit (the dataset's engine, params,
learned metadata, seed and `fit.max_rows` subsample, as `fit` uses them) and `k` more are kept back as controls
(`pipelines.privacy.canaries`). The shadow model samples as many rows as it was fitted on (at most
`dcr_train_rows`); the gate judges the share of planted canaries a synthetic row exposes minus the
share of controls one exposes: memorisation of single records, which no figure against the
holdout can show. It costs a second fit, so it is off by default; its seconds are a figure.
Single tables only (the config refuses it for table sets).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pipelines.gates.base import Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.privacy.canaries import CanarySet


def shadow_metadata(metadata: Any, table: str, columns: list[str]) -> Any:
    """The learned metadata without declared ranges on `columns` (canaries lie beyond them)."""
    from sdv.metadata import Metadata

    spec = metadata.to_dict()
    for col in columns:
        for bound in ("range_min", "range_max"):
            spec["tables"][table]["columns"][col].pop(bound, None)
    return Metadata.load_from_dict(spec)


def _keys(metadata: Any, table: str) -> list[str]:
    spec = metadata.to_dict()["tables"][table]
    return [k for k in [spec.get("primary_key"), *spec.get("alternate_keys", [])] if k]


def shadow_sample(ctx: GateContext, train: pd.DataFrame, canaries: CanarySet) -> pd.DataFrame:
    """Rows of the configured engine fitted on `train` plus the planted canaries."""
    import pandas as pd

    from pipelines import engines
    from pipelines.engines.candidates import fitted_config

    cfg, main = fitted_config(ctx.cfg, ctx.fit_record), ctx.main
    shadow = pd.concat([train, canaries.planted], ignore_index=True)
    engine = engines.get(cfg.fit.synthesizer)
    model = engine.fit({main: shadow}, shadow_metadata(ctx.metadata, main, canaries.columns), cfg, ctx.layout)
    rows = min(len(shadow), cfg.gates.dcr_train_rows)
    return engine.sample(model, engines.SampleRequest(rows, cfg.seed, main, len(shadow)))[main]


def canary_figures(ctx: GateContext) -> dict[str, Any]:
    """Plant, fit, sample and measure: the `canaries` figures, with the seconds it took."""
    from pipelines import fit_rows
    from pipelines.gates.privacy import excluded_columns
    from pipelines.privacy.canaries import exposure, make_canaries

    started = time.perf_counter()
    main = ctx.main
    learned = ctx.learned_only(ctx.train)
    max_rows = (ctx.fit_record.get("subsample") or {}).get("max_rows")
    train = fit_rows.apply(learned, fit_rows.choose(learned[main], ctx.cfg, ctx.layout, max_rows), ctx.layout)[main]
    columns = ctx.metadata.to_dict()["tables"][main]["columns"]
    canaries = make_canaries(
        train,
        columns,
        ctx.cfg.gates.canaries,
        ctx.cfg.seed,
        excluded_columns(ctx),
        ctx.cfg.fit.constraints,
        _keys(ctx.metadata, main),
    )
    found = exposure(canaries, shadow_sample(ctx, train, canaries), train)
    return {
        **asdict(found),
        "engine": ctx.fit_record.get("synthesizer", ctx.cfg.fit.synthesizer),
        "seconds": round(time.perf_counter() - started, 3),
    }


class Canaries:
    """Share of planted canaries exposed, minus that of the controls kept back."""

    name = "canaries"
    param = "canary_exposure_max"

    def applies(self, ctx: GateContext) -> bool:
        """Only when the dataset asks for canaries (`gates.canaries` > 0)."""
        return ctx.cfg.gates.canaries > 0 and ctx.has_synthetic_rows

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """One shadow fit and its exposure figures."""
        f = canary_figures(ctx)
        k = f["planted"]
        result = gate(
            self.name,
            f["exposure_excess"],
            ctx.threshold(self),
            "<=",
            f"{f['exposed']} of {k} canaries planted in a shadow {f['engine']} fit exposed "
            f"({f['reproduced']} reproduced) minus {f['control_exposed']} of {k} never planted, by "
            f"{f['synthetic_rows']} sampled rows: a row equal to the canary on {len(f['columns'])} columns or "
            f"within {f['radius_share']:g} of its distance to the closest training row ({f['seconds']:.0f} s)",
        )
        return result, {"canaries": f}
