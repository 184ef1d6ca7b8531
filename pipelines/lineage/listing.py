"""`synthgate releases <ds>`: every release attempt of a dataset, published or blocked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.lineage.checks import read_attempts
from pipelines.lineage.locate import find_releases
from pipelines.lineage.mlflow_store import mlflow_client
from pipelines.paths import paths_for, repo_root
from pipelines.tracking import experiment_name


def releases(dataset: str, root: Path | None = None, *, use_mlflow: bool = True) -> dict[str, Any]:
    """Every release attempt of a dataset, published or blocked, newest first.

    Joined from the attempts log, the manifests on disk and the MLflow pipeline runs (tagged
    `synthgate.verdict`); each row says which of these sources know it.
    """
    root = (root or repo_root()).resolve()
    paths = paths_for(dataset, root)
    rows: dict[str, dict[str, Any]] = {}
    problems: list[str] = []

    def row_for(key: str) -> dict[str, Any]:
        return rows.setdefault(
            key,
            {
                "version": None,
                "time": None,
                "verdict": None,
                "source_sha256": None,
                "release_sha256": None,
                "mlflow_run_id": None,
                "runner": None,
                "failed_gates": [],
                "seen_in": [],
            },
        )

    def key_of(version: Any, run_id: str | None, fallback: str) -> str:
        """Published rows are keyed by version (two versions never merge, even when they name the
        same MLflow run); blocked or failed attempts by their pipeline run."""
        return f"v{int(version)}" if version is not None else (f"run:{run_id}" if run_id else fallback)

    for e in read_attempts(paths.attempts_log):
        r = row_for(key_of(e.get("version"), e.get("mlflow_run_id"), f"log:{e.get('attempted_at')}"))
        r.update(
            version=e.get("version"),
            time=e.get("attempted_at"),
            verdict=e.get("verdict"),
            source_sha256=e.get("source_sha256"),
            release_sha256=e.get("release_sha256"),
            mlflow_run_id=e.get("mlflow_run_id"),
            runner=(e.get("runner") or {}).get("runner"),
            failed_gates=e.get("failed", []),
        )
        r["seen_in"].append("attempts log")
    for rel in find_releases(root, dataset):
        m = rel.manifest
        run_id = (m.get("mlflow") or {}).get("run_id")
        r = row_for(key_of(rel.version, run_id, f"manifest:{rel.version}"))
        r.update(
            version=rel.version,
            time=r["time"] or m.get("created_at"),
            verdict="released",
            source_sha256=(m.get("source") or {}).get("sha256"),
            release_sha256=(m.get("files") or [{}])[0].get("sha256"),
            mlflow_run_id=run_id,
            runner=(m.get("runner") or {}).get("runner"),
        )
        r["seen_in"].append("manifest")
    if use_mlflow:
        try:
            client = mlflow_client(root)
            exp = client.get_experiment_by_name(experiment_name(dataset))
            runs = (
                client.search_runs([exp.experiment_id], "tags.`synthgate.role` = 'pipeline'", max_results=5000)
                if exp
                else []
            )
            ingest_runs = (
                client.search_runs([exp.experiment_id], "tags.`synthgate.stage` = 'ingest'", max_results=5000)
                if exp
                else []
            )
        except Exception as err:  # MlflowUnavailable, or any error the tracking store raises
            problems.append(f"MLflow: {err}")
            runs, ingest_runs = [], []
        source_by_parent = {
            r.data.tags.get("mlflow.parentRunId"): r.data.params.get("source.sha256") for r in ingest_runs
        }
        for run in runs:
            tags = run.data.tags
            version = tags.get("synthgate.release_version")
            r = row_for(key_of(version, run.info.run_id, run.info.run_id))
            verdict = tags.get("synthgate.verdict") or {"FAILED": "failed", "RUNNING": "running"}.get(
                run.info.status, run.info.status.lower()
            )
            r.update(
                mlflow_run_id=run.info.run_id,
                verdict=r["verdict"] or verdict,
                version=r["version"] if r["version"] is not None else (int(version) if version else None),
                time=r["time"] or _iso(run.info.start_time),
                source_sha256=r["source_sha256"] or source_by_parent.get(run.info.run_id),
                runner=r["runner"] or tags.get("synthgate.runner"),
            )
            r["seen_in"].append("mlflow")
            if tags.get("synthgate.verdict") and r["verdict"] != tags["synthgate.verdict"]:
                problems.append(
                    f"run {run.info.run_id}: verdict {r['verdict']!r} in the log/manifest, "
                    f"{tags['synthgate.verdict']!r} in MLflow"
                )
    ordered = sorted(rows.values(), key=lambda r: r["time"] or "", reverse=True)
    by_run: dict[str, list[int]] = {}
    for r in ordered:
        if r["version"] is not None and r["mlflow_run_id"]:
            by_run.setdefault(r["mlflow_run_id"], []).append(r["version"])
    problems += [
        f"MLflow run {run_id} is the pipeline run of several versions ({', '.join(f'v{v}' for v in sorted(vs))}): "
        "each version should have its own"
        for run_id, vs in by_run.items()
        if len(vs) > 1
    ]
    for r in ordered:
        if r["verdict"] == "released" and "manifest" not in r["seen_in"]:
            problems.append(
                f"v{r['version']} (run {r['mlflow_run_id']}) was released, but its manifest "
                f"{paths.manifests_dir.relative_to(root)}/v{(r['version'] or 0):04d}.json is missing"
            )
    return {"dataset": dataset, "releases": ordered, "problems": problems}


def _iso(ms: int | None) -> str | None:
    """An MLflow timestamp (ms since the epoch) as ISO 8601 UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None
