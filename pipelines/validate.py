"""validate: every registered gate, one typed result each, written as DVC metrics/plots and logged to MLflow.

One code path for a single table and a relational table set: the table sets are read with
`pipelines.tableset` (digests checked against the upstream records), every gate of
`pipelines.gates.registry` that applies to the release runs on one `GateContext`, and the
report, GX result, HTML page and run record are written. The stage itself succeeds whenever it
could compute the figures (so DVC records them); `release` refuses to publish unless every gate
passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines import progress
from pipelines.contracts import PROVENANCE

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.gates.base import GateContext
    from pipelines.paths import DatasetPaths


def run_gates(ctx: GateContext) -> dict[str, Any]:
    """Every applicable registered gate on one context: results (registry order), figures, GX run.

    A gate that fails with a TypeError or ValueError on a release whose column changed type (text
    where train has numbers, ...) raises a typed InvalidInputError naming the gate and the column.
    """
    from pipelines.gates import contract, registry
    from pipelines.gates.base import type_mismatch
    from pipelines.gates.dp import dp_figures

    results, figures = [], {"rows": ctx.row_counts(), **dp_figures(ctx)}
    with progress.step(f"validate {ctx.cfg.name}: gates", total=len(registry.GATES) + 1) as step:
        for g in registry.GATES:
            step.show(g.name)
            try:
                if g.applies(ctx):
                    result, found = g.evaluate(ctx)
                    results.append(result.model_copy(update={"param": g.param}))
                    figures.update(found)
            except (TypeError, ValueError) as err:
                typed = type_mismatch(ctx, g.name, cause=err)
                if typed is None:
                    raise  # not a type change: a bug to see whole
                raise typed from err
            step.advance()
        step.show("GX release suite")
        gx = contract.suite_run(ctx)
        step.advance()
    return {"gates": results, "figures": figures, "gx": gx}


def evaluate(
    cfg: DatasetConfig,
    blended: pd.DataFrame | Mapping[str, pd.DataFrame],
    train: pd.DataFrame | Mapping[str, pd.DataFrame],
    holdout: pd.DataFrame | Mapping[str, pd.DataFrame],
    metadata: Any,
    release_suite: dict[str, Any],
    fit_record: dict[str, Any] | None = None,
    blend_record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every gate on a blended table set (a DataFrame for a single table); pure apart from GX.

    Returns the gate results, the figures, the GX run and the `GateContext` they were computed on.

    `fit_record` (the fit stage's run record) gives the PII plan: PII columns are left out of the
    quality, privacy and utility figures (they are never learned) and checked by `pii_replay`;
    it also gives the business rules (the `constraints` gate). `blend_record` says whether the
    release was rebalanced: quality is then measured against the train rows resampled to the
    requested class shares (the class mix was changed on purpose).
    """
    from pipelines.gates import GateContext
    from pipelines.tableset import layout

    lay = layout(cfg)

    def as_set(tables: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        return dict(tables) if isinstance(tables, Mapping) else {lay.main: tables}

    ctx = GateContext(
        cfg=cfg,
        layout=lay,
        blended=as_set(blended),
        train=as_set(train),
        holdout=as_set(holdout),
        metadata=metadata,
        suite=release_suite,
        fit_record=fit_record or {},
        blend_record=blend_record or {},
    )
    return {**run_gates(ctx), "context": ctx}


def _plotted(ctx: GateContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The main table's blended and train rows the report shows (keys only counted): no real PII ever."""
    from pipelines.gates.pii import protected_columns

    hidden = set(protected_columns(ctx).get(ctx.main, ()))
    shown = [c for c in ctx.learned[ctx.main] if c not in hidden]
    return ctx.blended[ctx.main][[*shown, PROVENANCE]], ctx.train[ctx.main][shown]


def flat_metrics(validation: Mapping[str, Any]) -> dict[str, Any]:
    """What `dvc metrics show` prints: the verdict, the overall scores, then per gate its figure,
    threshold and verdict (`gates.<name>.value` / `.threshold` / `.passed`) as flat keys."""
    figures = validation.get("figures", {})
    sdm = figures.get("sdmetrics") or {}
    out: dict[str, Any] = {"passed": bool(validation["passed"]), "rows": figures.get("rows", {})}
    scores: dict[str, dict[str, float]] = {}
    for key, value in sdm.items():  # "quality.Column Shapes" -> scores.quality.column_shapes
        report, _, prop = str(key).partition(".")
        if isinstance(value, int | float):
            scores.setdefault(report, {})[prop.lower().replace(" ", "_")] = value
    out["scores"] = scores
    out["gates"] = {
        g["name"]: {"value": g["value"], "threshold": g["threshold"], "passed": bool(g["passed"])}
        for g in validation["gates"]
    }
    return out


def write_plots(paths: DatasetPaths, validation: Mapping[str, Any], dcr: Mapping[str, Any]) -> None:
    """The data of `dvc plots show`: per-column fidelity (worst first) and histograms of the distance
    to the closest train record, synthetic vs real holdout (same bins)."""
    import numpy as np
    import pandas as pd

    from pipelines.io import atomic_path

    paths.plots_dir.mkdir(parents=True, exist_ok=True)
    shapes = [c for c in validation.get("figures", {}).get("column_shapes", []) if c.get("score") is not None]
    columns = pd.DataFrame(shapes, columns=["column", "metric", "score"])
    with atomic_path(paths.plots_dir / "column_scores.csv") as tmp:
        columns.to_csv(tmp, index=False)
    series = {k: np.asarray(v, dtype=float) for k, v in dcr.items() if len(v)}
    finite = [v[np.isfinite(v)] for v in series.values()]
    top = max((float(v.max()) for v in finite if len(v)), default=0.0)
    edges = np.linspace(0.0, top if top > 0 else 1.0, 31)
    for key, name in (("dcr_synthetic_train", "dcr_synthetic"), ("dcr_holdout_train", "dcr_holdout")):
        values = series.get(key, np.array([]))
        values = values[np.isfinite(values)]
        counts, _ = np.histogram(values, bins=edges)
        share = np.round(counts / max(len(values), 1), 6)
        with atomic_path(paths.plots_dir / f"{name}.csv") as tmp:
            pd.DataFrame({"distance": np.round(edges[:-1], 6), "share": share}).to_csv(tmp, index=False)


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The validate stage: gates + report, written whatever the verdict."""
    import mlflow
    from sdv.metadata import Metadata

    from pipelines import report, tableset, tracking
    from pipelines.contracts import load_suite
    from pipelines.io import read_json, sha256_file, write_json
    from pipelines.records.base import FileEntry
    from pipelines.records.stages import BlendRecord, FitRecord, IngestRecord
    from pipelines.records.validation import GxRecord, ValidateRecord, ValidationReport

    lay = tableset.layout(cfg)
    ingest = IngestRecord.read(paths.record("ingest"))
    fit = FitRecord.read(paths.record("fit"))
    blend = BlendRecord.read(paths.record("blend"))
    blended = tableset.read(paths.blended, lay, blend.blended, "blend")
    train = tableset.read(paths.train, lay, ingest.train, "ingest")
    holdout = tableset.read(paths.holdout, lay, ingest.holdout, "ingest")
    metadata = Metadata.load_from_dict(read_json(paths.model_metadata))
    suite = load_suite(paths.release_suite)
    with tracking.stage_run(cfg, paths, "validate") as handle:
        outcome = evaluate(cfg, blended, train, holdout, metadata, suite, fit.to_json(), blend.to_json())
        privacy = outcome["figures"].get("privacy", {})
        dcr = {k: privacy.pop(k) for k in ("dcr_synthetic_train", "dcr_holdout_train") if k in privacy}
        validation = ValidationReport.of(cfg.name, outcome["gates"], outcome["figures"], lay.relational).to_json()
        write_json(paths.validation, validation)
        write_json(paths.metrics, flat_metrics(validation))
        write_plots(paths, validation, dcr)
        write_json(paths.gx_result, outcome["gx"].raw)
        with progress.step(f"validate {cfg.name}: report"):
            page = report.render(cfg, validation, *_plotted(outcome["context"]), metadata, dcr)
        report.write(paths.report_html, page)
        for g in validation["gates"]:
            mlflow.log_metric(f"gate.{g['name']}", g["value"])
            mlflow.log_metric(f"gate.{g['name']}.passed", float(g["passed"]))
        mlflow.log_metric("gates.passed", float(validation["passed"]))
        for path in (paths.validation, paths.gx_result, paths.report_html):
            mlflow.log_artifact(str(path), artifact_path="validation")

        def entry(path: Any) -> FileEntry:
            return FileEntry(path=paths.rel(path), sha256=sha256_file(path))

        record = ValidateRecord(
            dataset=cfg.name,
            relational=lay.relational,
            passed=validation["passed"],
            failed=[g["name"] for g in validation["gates"] if not g["passed"]],
            validation=entry(paths.validation),
            gx=GxRecord(
                suite=paths.rel(paths.release_suite),
                suite_sha256=sha256_file(paths.release_suite),
                success=outcome["gx"].success,
                result=paths.rel(paths.gx_result),
                result_sha256=sha256_file(paths.gx_result),
            ),
            report=entry(paths.report_html),
            blended_sha256=blend.blended.sha256,
            mlflow=handle.as_record(),
        )
        record.write(paths.record("validate"))
    return record.to_json()
