"""fit: the configured engine fitted on the train table set, saved with its digest, logged to MLflow.

The committed metadata (`metadata/<ds>.json`) is the source of truth for column types and keys;
PII columns are never learned; business rules go to the engine as constraints.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipelines import dp, engines, fit_rows, ids, metadata, pii, preflight, progress, tableset
from pipelines.engines import candidates, selection
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import sha256_file, write_json
from pipelines.records.base import FileEntry
from pipelines.records.stages import FitRecord, IngestRecord

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The fit stage: metadata check, seeded fit, model + digest, MLflow model."""
    import mlflow

    from pipelines import tracking
    from pipelines.constraints import check_rules, rules_to_record
    from pipelines.mlflow_model import log_synthesizer
    from pipelines.rebalance import domain

    lay = tableset.layout(cfg)
    ingest = IngestRecord.read(paths.record("ingest"))
    train = tableset.read(paths.train, lay, ingest.train, "ingest")
    md = metadata.load(paths)
    metadata.check(md, train, cfg.source, paths.rel(paths.metadata))
    plan = pii.plan_for_set(train, cfg, lay)
    problems = pii.metadata_problems(md.to_dict(), lay.main, train[lay.main], plan)
    if problems:
        hint = "Edit the metadata file or re-run `synthgate expectations init --force`."
        raise InvalidInputError(paths.rel(paths.metadata), problems, hint=hint)
    learned = {**train, lay.main: train[lay.main].drop(columns=plan.names)}
    md = metadata.seen_only(metadata.without_columns(md, lay.main, plan.names), learned)
    sdtypes = {c: v.get("sdtype") for c, v in md.tables[lay.main].columns.items()}
    check_rules(cfg.fit.constraints, train[lay.main], sdtypes, f"datasets.{cfg.name}.fit", protected=plan.names)
    problems = preflight.frame_problems(cfg, learned[lay.main], "the train split", plan.names)
    if problems:  # generate's own check, before a model is fitted and registered for nothing
        raise ConfigError(problems)
    subsample = fit_rows.choose(learned[lay.main], cfg, lay, cfg.fit.max_rows)
    learned = fit_rows.apply(learned, subsample, lay)  # auto-selection too: no engine sees more rows
    auto = cfg.fit.synthesizer == candidates.AUTO
    if auto:
        candidates.candidates(cfg)  # a bad candidate list fails before any work
    else:
        engines.get(cfg.fit.synthesizer)
    with tracking.stage_run(cfg, paths, "fit") as handle:
        chosen = selection.select(learned, md, cfg, lay, log=True) if auto else None
        fit_cfg = candidates.candidate_config(cfg, chosen.winner, chosen.params) if chosen else cfg
        engine = engines.get(fit_cfg.fit.synthesizer)
        started = time.perf_counter()
        rows = sum(len(df) for df in learned.values())
        with progress.step(f"fit {cfg.name}: {engine.info.name} on {rows:,} rows"):
            model = engine.fit(learned, md, fit_cfg, lay)
        fit_seconds = time.perf_counter() - started
        model_sha = engine.save(model, paths.model)
        privacy = dp.fit_privacy(fit_cfg, engine, model)
        write_json(paths.model_metadata, md.to_dict())
        mlflow.log_params(
            {
                "synthesizer": fit_cfg.fit.synthesizer,
                "seed": cfg.seed,
                "tables": ",".join(sorted(train)),
                **{f"subsample.{k}": v for k, v in subsample.record().items() if k != "fit_rows"},
                **{f"synthesizer.{k}": str(v) for k, v in fit_cfg.fit.params.items()},
            }
        )
        if chosen:
            mlflow.log_params({"selection": candidates.AUTO, "selection.reason": chosen.reason[:6000]})
            mlflow.log_dict(chosen.to_record(), "selection.json")
        mlflow.log_metrics(
            {
                "fit_seconds": fit_seconds,
                "rows.train": len(train[lay.main]),
                "rows.fit": len(subsample.positions),
                **{f"rows.train.{t}": len(df) for t, df in train.items()},
            }
        )
        mlflow.log_artifact(str(paths.metadata), artifact_path="metadata")
        model_info = log_synthesizer(paths.model, model_sha, cfg.name)
        entry = dp.ledger_entry(
            privacy, model_sha, engine.info.name, ingest.source["sha256"], ingest.snapshot.sha256, handle.run_id
        )
        privacy["ledger"] = {"path": paths.rel(dp.ledger_path(paths)), "totals": dp.record(paths, entry)}
        mlflow.log_params(dp.mlflow_params(privacy))
        if privacy["spent"]:
            mlflow.log_metrics({f"privacy.{k}": v for k, v in privacy["spent"].items()})
        mlflow.log_metric("privacy.ledger.epsilon", privacy["ledger"]["totals"]["epsilon"])
        if plan.columns:
            mlflow.log_params(
                {"pii.policy": plan.policy, "pii.locale": plan.locale, "pii.columns": ",".join(plan.names)}
            )
        record = FitRecord(
            dataset=cfg.name,
            relational=lay.relational,
            synthesizer=fit_cfg.fit.synthesizer,
            engine=engine.info.describe(),
            params=dict(fit_cfg.fit.params),
            seed=cfg.seed,
            train=ingest.train,
            holdout=FileEntry(path=ingest.holdout.path, sha256=ingest.holdout.sha256),
            metadata={"path": paths.rel(paths.metadata), "sha256": sha256_file(paths.metadata)},
            model={"path": paths.rel(paths.model), "sha256": model_sha, **model_info},
            fit_seconds=round(fit_seconds, 3),
            mlflow=handle.as_record(),
            main_table=lay.main,
            columns=list(train[lay.main].columns),
            learned_columns=list(learned[lay.main].columns),
            tables={t: list(df.columns) for t, df in train.items()},
            relationships=[r.model_dump() for r in cfg.source.relationships],
            pii=plan.to_dict(),
            constraints=rules_to_record(cfg.fit.constraints),
            domain=domain(learned[lay.main]),
            privacy=privacy,
            selection=chosen.to_record() if chosen else None,
            subsample=subsample.record(),
            ids=ids.generated_unique(md.to_dict()["tables"][lay.main]) if lay.exact_rows else {},
        )
        record.write(paths.record("fit"))
    return record.to_json()
