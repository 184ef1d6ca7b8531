"""MLflow records of a release: the pipeline and stage runs, the registered model version, the
manifest copy the release run logged and the run-record copies kept with each stage run."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipelines import STAGES
from pipelines.errors import TrackingUnavailable
from pipelines.io import read_json, sha256_bytes, sha256_file
from pipelines.lineage.checks import Findings
from pipelines.lineage.locate import Release, relpath
from pipelines.paths import paths_for
from pipelines.tracking import check_server, tracking_uri, use_store

_UPSTREAM = [s for s in STAGES if s != "release"]


class MlflowUnavailable(RuntimeError):
    """The tracking store cannot be read."""


def mlflow_client(root: Path) -> Any:
    """A client for the workspace's tracking store; never creates an empty local store."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise MlflowUnavailable(f"no MLflow store at {uri.removeprefix('sqlite:///')}")
    if uri.startswith(("http://", "https://")):
        try:
            check_server(uri)
        except TrackingUnavailable as err:
            raise MlflowUnavailable(str(err)) from None
    from mlflow.tracking import MlflowClient

    use_store(root)
    return MlflowClient(tracking_uri=uri)


def _artifact(client: Any, run_id: str, path: str) -> tuple[str, bytes] | None:
    """The sha256 and bytes of a run's artifact; None when it is missing."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(client.download_artifacts(run_id, path, tmp))
        except Exception:  # missing artifact: MLflow raises several types
            return None
        data = local.read_bytes()
    return sha256_bytes(data), data


def _run_summary(run: Any) -> dict[str, Any]:
    """The parts of an MLflow run lineage reports (its synthgate.* tags only)."""
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "tags": {k: v for k, v in tags.items() if k.startswith("synthgate.")},
    }


def _order(stage: str) -> int:
    """Pipeline order of a stage name (unknown names last)."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def check_mlflow(rel: Release, root: Path, rep: Findings) -> tuple[dict[str, Any], Any]:
    """The pipeline and stage runs the manifest names, checked against it; also the client (None if unreachable)."""
    m = rel.manifest.get("mlflow") or {}
    out: dict[str, Any] = {"experiment": m.get("experiment"), "run_id": m.get("run_id"), "available": False}
    try:
        client = mlflow_client(root)
    except MlflowUnavailable as err:
        rep.problem(f"MLflow: {err}; MLflow records could not be checked")
        return out, None
    out["available"] = True
    try:
        parent = client.get_run(m["run_id"])
    except Exception as err:  # RestException / MlflowException / KeyError
        rep.problem(f"MLflow: pipeline run {m.get('run_id')} not found ({type(err).__name__})")
        return out, client
    out["pipeline_run"] = summary = _run_summary(parent)
    tags = summary["tags"]
    if tags.get("synthgate.verdict") != "released":
        rep.problem(f"MLflow: pipeline run {m['run_id']} has verdict {tags.get('synthgate.verdict')!r}, not 'released'")
    if tags.get("synthgate.release_version") not in (None, str(rel.version)):
        rep.problem(
            f"MLflow: pipeline run {m['run_id']} is tagged release v{tags['synthgate.release_version']}, "
            f"the manifest is v{rel.version}"
        )
    if rel.manifest.get("git_commit") and tags.get("synthgate.git_commit") not in (None, rel.manifest["git_commit"]):
        rep.problem(
            f"MLflow: pipeline run was started at commit {tags['synthgate.git_commit']}, "
            f"the manifest records {rel.manifest['git_commit']}"
        )
    stages: dict[str, Any] = {}
    for stage, run_id in sorted((m.get("stage_runs") or {}).items(), key=lambda kv: _order(kv[0])):
        try:
            s = _run_summary(client.get_run(run_id))
        except Exception as err:  # missing run
            rep.problem(f"MLflow: {stage} run {run_id} not found ({type(err).__name__})")
            continue
        stages[stage] = s
        if s["parent_run_id"] != m["run_id"]:
            if stage != "release" and (s["start_time"] or 0) <= (parent.info.start_time or 0):
                s["reused_from"] = s["parent_run_id"]  # DVC skipped the stage: its inputs had not changed
                rep.notes.append(
                    f"{stage} was not re-run for this release: its outputs come from pipeline run "
                    f"{s['parent_run_id']} (DVC skips a stage whose inputs did not change)"
                )
            else:
                rep.problem(
                    f"MLflow: {stage} run {run_id} belongs to pipeline run {s['parent_run_id']}, not {m['run_id']}"
                )
        if s["status"] != "FINISHED":
            rep.problem(f"MLflow: {stage} run {run_id} is {s['status']}")
    out["stage_runs"] = stages
    missing = [s for s in STAGES if s not in (m.get("stage_runs") or {})]
    if missing:
        rep.problem(f"manifest names no MLflow run for stage(s) {', '.join(missing)}")
    release_run = (m.get("stage_runs") or {}).get("release")
    if release_run:
        artifact = _artifact(client, release_run, "release/manifest.json")
        logged = artifact[0] if artifact else None
        out["manifest_copy_sha256"] = logged
        if logged is None:
            rep.problem(f"MLflow: release run {release_run} has no release/manifest.json artifact")
        else:
            current = paths_for(rel.dataset, root).manifest
            checked = {rel.path, current} if rel.current and current.is_file() else {rel.path}
            for path in sorted(checked):
                if logged != sha256_file(path):
                    rep.tamper(
                        f"{relpath(root, path)}: differs from the copy logged to MLflow run {release_run} "
                        f"(sha256 {logged})"
                    )
    return out, client


def check_model(rel: Release, client: Any, rep: Findings) -> dict[str, Any]:
    """The manifest's model block, with the registry entry it names (which the fit run must have logged)."""
    model = dict(rel.manifest.get("model") or {})
    name, version = model.get("registered_model"), model.get("registered_version")
    if client is None or not name or not version:
        if not name or not version:
            rep.problem("manifest names no registered model version")
        return model
    try:
        mv = client.get_model_version(name, str(version))
    except Exception as err:  # RestException: not found
        rep.problem(f"MLflow: registered model {name} v{version} not found ({type(err).__name__})")
        return model
    model["registry"] = {
        "status": mv.status,
        "run_id": mv.run_id,
        "source": mv.source,
        "created": mv.creation_timestamp,
    }
    fit_run = (rel.manifest.get("mlflow") or {}).get("stage_runs", {}).get("fit")
    if fit_run and mv.run_id and mv.run_id != fit_run:
        rep.problem(f"MLflow: {name} v{version} was logged by run {mv.run_id}, the manifest's fit run is {fit_run}")
    return model


def check_records(rel: Release, root: Path, client: Any, rep: Findings) -> dict[str, dict[str, Any]]:
    """Each upstream run record, verified by its manifest digest: on disk, else the copy kept in MLflow."""
    paths = paths_for(rel.dataset, root)
    digests = rel.manifest.get("records") or {}
    stage_runs = (rel.manifest.get("mlflow") or {}).get("stage_runs") or {}
    out: dict[str, dict[str, Any]] = {}
    for stage in _UPSTREAM:
        want = digests.get(stage)
        row: dict[str, Any] = {"sha256": want, "status": "unverified", "record": None}
        out[stage] = row
        if want is None:
            rep.problem(f"manifest records no digest for the {stage} run record")
            continue
        disk = paths.record(stage)
        on_disk = read_json(disk) if disk.is_file() else None
        if on_disk is not None and sha256_file(disk) == want:
            row.update(status="ok", source=relpath(root, disk), record=on_disk)
            continue
        if on_disk is not None and on_disk.get("mlflow", {}).get("run_id") == stage_runs.get(stage):
            rep.tamper(
                f"{relpath(root, disk)}: same MLflow run as v{rel.version} but its sha256 differs from the manifest's"
            )
        copy = (
            _artifact(client, stage_runs[stage], f"records/{stage}.json")
            if client is not None and stage in stage_runs
            else None
        )
        if copy is not None and copy[0] == want:
            record = json.loads(copy[1].decode("utf-8"))
            row.update(status="ok", source=f"mlflow:{stage_runs[stage]}/records/{stage}.json", record=record)
            continue
        if copy is not None:
            rep.tamper(
                f"MLflow copy of the {stage} record (run {stage_runs[stage]}) has sha256 {copy[0]}, "
                f"the manifest records {want}"
            )
        reason = (
            "missing on disk"
            if on_disk is None
            else f"{relpath(root, disk)} belongs to a later run ({on_disk.get('mlflow', {}).get('run_id')})"
        )
        row["status"] = f"unverified: {reason}; no matching copy in MLflow"
        rep.problem(
            f"{stage} run record of v{rel.version} cannot be verified: {reason}, "
            "and MLflow holds no copy with the recorded digest"
        )
    return out
