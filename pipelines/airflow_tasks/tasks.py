"""The bodies of the Airflow tasks of the `synth_<dataset>` DAGs (dags/synth_datasets.py wires them).

Every task runs the same stage code as DVC (`pipelines.<stage>.run`, or for the fanned-out
generate stage `pipelines.generate.run_shard` per shard and `finalize` to combine) on the
config resolved once by the first task. What travels between tasks through XCom is a small dict
(`RunContext`: dataset, root, effective params, MLflow parent run id), never data.

The DAG processor imports this module on every parse: keep its top-level imports light
(no pandas, SDV, torch, MLflow or GX here; they are imported inside the functions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipelines.airflow_tasks.form import resolve_config
from pipelines.airflow_tasks.runtime import (
    RunContext,
    airflow_errors,
    config_of,
    run_stage,
    runner_env,
    set_parent_tags,
)
from pipelines.config import DatasetConfig, load_params
from pipelines.errors import IntegrityError
from pipelines.io import read_json, sha256_file
from pipelines.paths import DatasetPaths, paths_for

log = logging.getLogger("synthgate.airflow")


def _stage_task(stage: str) -> Callable[[RunContext], RunContext]:
    """The task body of a stage that needs nothing but its `run`: run it, hand the context on."""

    def body(ctx: RunContext) -> RunContext:
        run_stage(ctx, stage)
        return ctx

    body.__name__ = body.__qualname__ = stage
    body.__doc__ = f"The {stage} stage."
    return airflow_errors(body)


@airflow_errors
def start(
    dataset: str,
    root: Path | str,
    conf: Mapping[str, Any] | None,
    form: Mapping[str, Any] | None,
    dag_id: str,
    run_id: str,
) -> RunContext:
    """Validate the run's overrides and what they say of the source's columns and values (nothing
    else happens when they are bad), open the MLflow run.

    Returns the run context every later task receives.
    """
    from pipelines.preflight import check
    from pipelines.tracking import start_pipeline

    root = Path(root).resolve()
    params = load_params(root / "params.yaml")
    cfg, overrides, force = resolve_config(params, dataset, conf, form)
    check(cfg, root)
    log.info("%s: overrides %s%s", dataset, overrides or "none", " (force)" if force else "")
    ctx: RunContext = {
        "dataset": dataset,
        "root": str(root),
        "config": cfg.to_params(),
        "overrides": overrides,
        "force": force,
        "dag_id": dag_id,
        "run_id": run_id,
        "parent_run_id": "",
    }
    with runner_env(ctx):
        ctx["parent_run_id"] = start_pipeline(cfg, paths_for(dataset, root))
    log.info("%s: MLflow parent run %s", dataset, ctx["parent_run_id"])
    return ctx


def source_digest(cfg: DatasetConfig, paths: DatasetPaths) -> str:
    """The source's digest, computed as ingest records it (a file's bytes, a query's rows, or the
    combined digest of a table set's files)."""
    from pipelines.sources import source_digest as digest

    return digest(cfg, paths.root)


def refresh_reason(cfg: DatasetConfig, paths: DatasetPaths, force: bool = False) -> str | None:
    """Why this run must rebuild, or None when the source and params match the last release."""
    from pipelines.tracking import flatten

    if force:
        return "forced (force=true)"
    if not paths.manifest.is_file():
        return "no release yet"
    manifest = read_json(paths.manifest)
    released = manifest.get("source", {}).get("sha256")
    digest = source_digest(cfg, paths)
    if digest != released:
        return f"source {cfg.source.path} changed: sha256 {str(released)[:12]}… -> {digest[:12]}…"
    old, new = flatten(manifest.get("params", {})), flatten(cfg.to_params())
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        return f"params changed since release v{manifest.get('version')}: {', '.join(changed)}"
    return None


@airflow_errors
def source_changed(ctx: RunContext) -> bool:
    """Short-circuit: False (skip every stage) when the source and params match the last release."""
    cfg, paths = config_of(ctx)
    reason = refresh_reason(cfg, paths, bool(ctx.get("force")))
    if reason is not None:
        log.info("%s: refreshing: %s", cfg.name, reason)
        return True
    version = read_json(paths.manifest).get("version")
    log.info(
        "%s: source and params unchanged since release v%s; nothing to do (no refit, no new "
        "release). Trigger with force=true to rebuild anyway.",
        cfg.name,
        version,
    )
    set_parent_tags(ctx, {"synthgate.verdict": "unchanged", "synthgate.unchanged_since_version": str(version)})
    return False


ingest = _stage_task("ingest")
fit = _stage_task("fit")


@airflow_errors
def plan_shards(ctx: RunContext) -> list[dict[str, Any]]:
    """The shard plan (the same `generate.shards_for` DVC uses): one mapped task per shard."""
    from pipelines.generate import shards_for

    cfg, paths = config_of(ctx)
    shards = [asdict(s) for s in shards_for(cfg, paths)]
    log.info(
        "%s: %d rows in %d shard(s) of at most %d",
        cfg.name,
        sum(s["rows"] for s in shards),
        len(shards),
        cfg.generate.shard_rows,
    )
    return shards


@airflow_errors
def sample_shard(ctx: RunContext, shard: Mapping[str, Any]) -> dict[str, Any]:
    """Sample and write one shard (`generate.run_shard`; same shard, same bytes on any worker)."""
    from pipelines.generate import Shard, run_shard

    cfg, paths = config_of(ctx)
    with runner_env(ctx):
        result = run_shard(cfg, paths, Shard(**shard))
    log.info("%s: shard %d: %d rows -> %s", cfg.name, result["index"], result["rows"], result["path"])
    return result


@airflow_errors
def combine_shards(ctx: RunContext, results: Any) -> RunContext:
    """Check every planned shard is there, then write the generate record (`generate.finalize`)."""
    from pipelines.generate import finalize, shards_for

    cfg, paths = config_of(ctx)
    results = sorted((dict(r) for r in results), key=lambda r: r["index"])
    planned = [asdict(s) for s in shards_for(cfg, paths)]
    got = [{k: r.get(k) for k in plan} for r, plan in zip(results, planned, strict=False)]
    if len(results) != len(planned) or got != planned:
        raise IntegrityError(
            f"{cfg.name}: the sampled shards {[r['index'] for r in results]} do not match the plan of "
            f"{len(planned)} shard(s) (rows, seeds); clear the generate.sample_shard tasks and run them again"
        )
    for r in results:
        path = paths.root / r["path"]
        if not path.is_file() or sha256_file(path) != r["sha256"]:
            raise IntegrityError(f"{r['path']}: missing or changed since its shard task wrote it")
    with runner_env(ctx):
        finalize(cfg, paths, results)
    return ctx


blend = _stage_task("blend")


@airflow_errors
def validate(ctx: RunContext) -> RunContext:
    """The validate stage; logs one line per gate (release decides on them)."""
    record = run_stage(ctx, "validate")
    cfg, paths = config_of(ctx)
    for g in read_json(paths.validation)["gates"]:
        log.info(
            "gate %-14s %s %.4f %s %.4f",
            g["name"],
            "PASS" if g["passed"] else "FAIL",
            g["value"],
            g["comparison"],
            g["threshold"],
        )
    if record["failed"]:
        log.warning("%s: gate(s) failed: %s; release will refuse to publish", cfg.name, ", ".join(record["failed"]))
    return ctx


def released_by(ctx: Mapping[str, Any], paths: DatasetPaths) -> int | None:
    """The version this very Airflow run already published (a retried release task), else None."""
    from pipelines.manifest import UPSTREAM

    if not paths.manifest.is_file():
        return None
    manifest = read_json(paths.manifest)
    runner = manifest.get("runner", {})
    same_run = (
        runner.get("airflow_dag_id") == ctx["dag_id"]
        and runner.get("airflow_run_id") == ctx["run_id"]
        and manifest.get("mlflow", {}).get("run_id") == ctx["parent_run_id"]
    )
    if not same_run:
        return None
    records = manifest.get("records", {})
    for stage in UPSTREAM:
        record = paths.record(stage)
        if not record.is_file() or records.get(stage) != sha256_file(record):
            return None
    return int(manifest["version"])


@airflow_errors
def release(ctx: RunContext) -> RunContext:
    """The release stage: publishes, or fails with GateFailed's message (the old release stays).

    A retry after this run already published (e.g. MLflow failed after the swap) publishes nothing.
    """
    cfg, paths = config_of(ctx)
    version = released_by(ctx, paths)
    if version is not None:
        log.info("%s: v%s was already published by this run; not publishing it again", cfg.name, version)
        set_parent_tags(ctx, {"synthgate.verdict": "released", "synthgate.release_version": str(version)})
        return ctx
    manifest = run_stage(ctx, "release")
    log.info("%s: released v%s (%s)", ctx["dataset"], manifest["version"], manifest["files"][0]["path"])
    return ctx


def finish(ctx: RunContext) -> str:
    """Teardown: close the MLflow parent run (FINISHED when released or unchanged, else FAILED)."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import close_pipeline, use_store

    root = Path(ctx["root"])
    use_store(root)
    tags = MlflowClient().get_run(ctx["parent_run_id"]).data.tags
    verdict = tags.get("synthgate.verdict", "incomplete")
    success = verdict == "unchanged" or (verdict == "released" and "synthgate.dvc" in tags)
    cfg, paths = config_of(ctx)
    close_pipeline(ctx["parent_run_id"], root, success, cfg, paths)
    status = "FINISHED" if success else "FAILED"
    log.info(
        "%s: MLflow run %s closed as %s (verdict: %s, dvc: %s)",
        ctx["dataset"],
        ctx["parent_run_id"],
        status,
        verdict,
        tags.get("synthgate.dvc", "not recorded"),
    )
    return status
