"""Auto-selection (`fit.synthesizer: auto`): fit every candidate engine within a budget, score each on
a validation slice carved from the train split, pick one by a documented composite score.

Deterministic by construction: the candidates, their epoch limits (`pipelines.engines.candidates`:
from `fit.budget_s`, the table's size and a measured cost model, never a wall-clock cap), the
validation slice (seeded) and every fit and sample (seeded) depend only on the inputs, so a rerun
picks the same engine. The platform's holdout is never touched: the gates keep it for themselves.
docs/engines.md "Auto-selection" has the composite score.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.engines.candidates import candidate_config, candidates, plan
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.tableset import Layout, Tables

VALIDATION_SEED_SALT = 0x5E1EC7
"""The validation slice is carved with seed `cfg.seed ^ VALIDATION_SEED_SALT` (not the split's own seed)."""


def carve(train: Tables, cfg: DatasetConfig, lay: Layout) -> tuple[Tables, Tables]:
    """(fit part, validation slice) of the train split: the same seeded split as ingest's
    (stratified by a class target; descendants follow their parent row), at
    `fit.validation_fraction`, with its own seed."""
    from pipelines.tableset import split

    seed = cfg.seed ^ VALIDATION_SEED_SALT
    carver = cfg.model_copy(
        update={"seed": seed, "ingest": cfg.ingest.model_copy(update={"holdout_fraction": cfg.fit.validation_fraction})}
    )
    fit_part, validation, _ = split(train, carver, lay)
    return fit_part, validation


def _spearman_error(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str]) -> list[float]:
    """|Spearman(real) - Spearman(synthetic)| of every pair of `columns` whose real correlation is
    defined (a constant synthetic column counts as no correlation)."""
    from itertools import combinations

    from pipelines.fidelity import _numeric

    r = {c: _numeric(real[c]) for c in columns}
    s = {c: _numeric(synthetic[c]) for c in columns}
    errors = []
    for a, b in combinations(columns, 2):
        rho_r = r[a].corr(r[b], method="spearman")
        if rho_r != rho_r:
            continue
        rho_s = s[a].corr(s[b], method="spearman")
        errors.append(abs(rho_r - (rho_s if rho_s == rho_s else 0.0)))
    return errors


def score(
    validation: Tables, synthetic: Tables, fit_part: Tables, metadata: Any, cfg: DatasetConfig, lay: Layout
) -> dict[str, Any]:
    """The candidate's figures on the validation slice and its composite score (docs/engines.md).

    quality_all_pairs: mean of (mean column shape, mean trend over every pair of columns), with the
    quality gates' computations (SDMetrics' Column Shapes through `floors.column_shapes`, and
    `floors.pair_trends`); worst_column: the lowest column shape;
    rank_corr_error: mean |Spearman real - synthetic| over pairs of numeric/date columns;
    utility_gap: TRTR - TSTR on the validation slice (the utility gate's computation; with a
    target). composite = mean of quality_all_pairs, worst_column, 1 - rank_corr_error and
    1 - clip(utility_gap, 0, 1), over those that apply.
    """
    from sdv.evaluation import evaluate_quality

    from pipelines.fidelity import CONTINUOUS, column_shapes, left_out, pair_trends
    from pipelines.keys import key_columns

    meta = metadata.to_dict()
    n, seed = cfg.gates.sample_rows, cfg.seed
    real = {t: df.sample(n=min(len(df), n), random_state=seed) for t, df in validation.items()}
    syn = {t: synthetic[t].sample(n=min(len(synthetic[t]), n), random_state=seed) for t in validation}
    real_q, syn_q = (real[lay.main], syn[lay.main]) if lay.single else (real, syn)
    report = evaluate_quality(real_q, syn_q, metadata, verbose=False)
    skip = left_out(real, meta)
    details = report.get_details("Column Shapes")
    shapes = [r["score"] for r in column_shapes(details, real, syn, skip) if r["score"] is not None]
    pairs = [r["score"] for r in pair_trends(real, syn, meta, skip) if r["score"] is not None]
    errors = []
    for table, frame in real.items():
        cols = [c for c, m in meta["tables"][table]["columns"].items() if m.get("sdtype") in CONTINUOUS and c in frame]
        errors += _spearman_error(frame, syn[table], cols)
    figures: dict[str, Any] = {
        "quality_sdmetrics": round(float(report.get_score()), 6),
        "column_shapes": round(sum(shapes) / len(shapes), 6) if shapes else None,
        "pair_trends_all": round(sum(pairs) / len(pairs), 6) if pairs else None,
        "worst_column": round(min(shapes), 6) if shapes else None,
        "rank_corr_error": round(sum(errors) / len(errors), 6) if errors else None,
        "utility_gap": None,
    }
    parts = [p for p in (figures["column_shapes"], figures["pair_trends_all"]) if p is not None]
    figures["quality_all_pairs"] = round(sum(parts) / len(parts), 6) if parts else None
    keys = set(key_columns(cfg.source, lay.main)) if lay.relational else set()
    attrs = [c for c in fit_part[lay.main].columns if c not in keys and c in synthetic[lay.main].columns]
    if cfg.target and cfg.target in attrs:
        from pipelines.metrics import utility

        u = utility(
            synthetic[lay.main][attrs],
            fit_part[lay.main][attrs],
            validation[lay.main][attrs],
            cfg.target,
            seed,
            sample_rows=max(cfg.gates.sample_rows, cfg.gates.utility_rows),
        )
        figures.update(
            utility_gap=round(u.gap, 6), utility_metric=u.metric, tstr=round(u.tstr, 6), trtr=round(u.trtr, 6)
        )
    terms = [
        figures["quality_all_pairs"],
        figures["worst_column"],
        None if figures["rank_corr_error"] is None else 1 - figures["rank_corr_error"],
        None if figures["utility_gap"] is None else 1 - min(max(figures["utility_gap"], 0.0), 1.0),
    ]
    used = [t for t in terms if t is not None]
    figures["composite"] = round(sum(used) / len(used), 6) if used else 0.0
    return figures


@dataclass
class Candidate:
    """One candidate's fit on the fit part and its figures on the validation slice."""

    engine: str
    licence: str
    params: dict[str, Any]
    estimated_s: float
    skipped: str | None = None
    fit_seconds: float | None = None
    sample_seconds: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None

    @property
    def composite(self) -> float | None:
        """The composite score (None when skipped)."""
        return self.figures.get("composite")


@dataclass
class Selection:
    """Every candidate, the winner and why."""

    winner: str
    params: dict[str, Any]
    reason: str
    budget_s: float
    validation_fraction: float
    fit_rows: int
    validation_rows: int
    cells: int
    candidates: list[Candidate]

    def to_record(self) -> dict[str, Any]:
        """The fit record's (and manifest's) `selection` block."""
        out = asdict(self)
        out["selection_seconds"] = round(
            sum((c.fit_seconds or 0) + (c.sample_seconds or 0) for c in self.candidates), 3
        )
        return out


def _cells(tables: Tables) -> int:
    return sum(len(df) * len(df.columns) for df in tables.values())


def select(
    train: Tables,
    metadata: Any,
    cfg: DatasetConfig,
    lay: Layout,
    log: bool = False,
    on_fit: Callable[[Candidate, Any], None] | None = None,
) -> Selection:
    """Fit, sample and score every candidate on a validation slice of `train` (the learned
    columns); the highest composite (rounded to 3 decimals) wins, ties to the cheaper estimate.
    With `log`, each candidate gets a nested MLflow run under the active one (the fit stage's);
    `on_fit` is called with each scored candidate and its model (benchmarks/auto_select.py
    scores it on the holdout)."""
    from pipelines import engines
    from pipelines.engines import SampleRequest

    names = candidates(cfg)
    fit_part, validation = carve(train, cfg, lay)
    cells = _cells(fit_part)
    plans = plan(names, sum(len(df) for df in fit_part.values()), cells, cfg.fit.budget_s)
    done: list[Candidate] = []
    fit_rows = len(fit_part[lay.main])
    rows = min(fit_rows, cfg.gates.sample_rows)
    for p in plans:
        engine = engines.get(p.engine)
        cand = Candidate(p.engine, engine.info.licence, p.params, p.estimated_s, p.skipped)
        if p.skipped is None:
            ccfg = candidate_config(cfg, p.engine, p.params)
            started = time.perf_counter()
            model = engine.fit(fit_part, metadata, ccfg, lay)
            cand.fit_seconds = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            synthetic = engine.sample(model, SampleRequest(rows, cfg.seed, lay.main, fit_rows))
            cand.sample_seconds = round(time.perf_counter() - started, 3)
            cand.figures = score(validation, synthetic, fit_part, metadata, cfg, lay)
            if on_fit is not None:
                on_fit(cand, model)
        if log:
            cand.mlflow_run_id = _log_candidate(cfg, cand)
        done.append(cand)
    scored = [c for c in done if c.skipped is None]
    if not scored:
        why = "; ".join(f"{c.engine}: {c.skipped}" for c in done)
        raise ConfigError([f"datasets.{cfg.name}.fit.budget_s: {cfg.fit.budget_s:g} s fits no candidate ({why})"])
    ranked = sorted(scored, key=lambda c: (-round(c.composite or 0.0, 3), c.estimated_s, c.engine))
    best = ranked[0]
    return Selection(
        winner=best.engine,
        params=best.params,
        reason=_reason(ranked),
        budget_s=cfg.fit.budget_s,
        validation_fraction=cfg.fit.validation_fraction,
        fit_rows=fit_rows,
        validation_rows=len(validation[lay.main]),
        cells=cells,
        candidates=done,
    )


def _reason(ranked: list[Candidate]) -> str:
    """Why the first of `ranked` won, in one sentence."""
    best = ranked[0]
    if len(ranked) == 1:
        return f"{best.engine} is the only candidate fitted (composite {best.composite:.3f})"
    second = ranked[1]
    if round(best.composite or 0, 3) == round(second.composite or 0, 3):
        return (
            f"{best.engine} ties {second.engine} at composite {best.composite:.3f} and is cheaper "
            f"(estimated {best.estimated_s:.0f} s vs {second.estimated_s:.0f} s)"
        )
    return (
        f"{best.engine} has the highest composite score on the validation slice, {best.composite:.3f} "
        f"(next: {second.engine} {second.composite:.3f})"
    )


def _log_candidate(cfg: DatasetConfig, cand: Candidate) -> str:
    """One nested MLflow run for a candidate, under the active run: params, figures, seconds."""
    import mlflow

    tags = {"synthgate.dataset": cfg.name, "synthgate.role": "candidate", "synthgate.candidate": cand.engine}
    with mlflow.start_run(run_name=f"candidate-{cand.engine}", nested=True, tags=tags) as run:
        mlflow.log_params({"engine": cand.engine, **{f"params.{k}": v for k, v in cand.params.items()}})
        if cand.skipped:
            mlflow.set_tag("synthgate.skipped", cand.skipped)
        metrics = {k: v for k, v in cand.figures.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        metrics.update({k: v for k in ("fit_seconds", "sample_seconds") if (v := getattr(cand, k)) is not None})
        metrics["estimated_s"] = cand.estimated_s
        mlflow.log_metrics(metrics)
        return run.info.run_id
