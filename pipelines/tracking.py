"""MLflow tracking: one parent run per pipeline run of a dataset, one nested run per stage.

Stages run in separate processes (DVC) or on separate workers (Airflow), so the parent run is
found, not held: `$SYNTHGATE_PARENT_RUN_ID` when a runner passes one (Airflow), else the open
(RUNNING) parent run of this dataset and runner, else a new one. The release stage closes it
(FINISHED, or FAILED when a gate blocks it); any stage that crashes closes it as FAILED, so the
next run starts a fresh parent.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.io import sha256_file

if TYPE_CHECKING:
    from mlflow.entities import Run

    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths

PARENT_ENV = "SYNTHGATE_PARENT_RUN_ID"
RUNNER_ENV = "SYNTHGATE_RUNNER"


def tracking_uri(root: Path) -> str:
    """$MLFLOW_TRACKING_URI, else the embedded default `sqlite:///<root>/mlflow.db`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def _artifact_location(root: Path) -> str | None:
    """Embedded default: artifacts under <root>/mlartifacts; a server decides its own."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (root / "mlartifacts").as_uri()


def experiment_name(dataset: str) -> str:
    """The MLflow experiment of a dataset."""
    return f"synthgate-{dataset}"


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_version(root: Path) -> dict[str, Any]:
    """The git commit of the code and whether the tree had uncommitted changes."""
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def runner_info() -> dict[str, str]:
    """Who runs this stage: dvc | airflow | cli, with Airflow's dag_id/run_id when present."""
    runner = os.environ.get(RUNNER_ENV) or ("dvc" if os.environ.get("DVC_ROOT") else "cli")
    info = {"runner": runner}
    for key, env in (("dag_id", "AIRFLOW_CTX_DAG_ID"), ("run_id", "AIRFLOW_CTX_DAG_RUN_ID")):
        if os.environ.get(env):
            info[f"airflow_{key}"] = os.environ[env]
    return info


@dataclass(frozen=True)
class StageRun:
    """Handles of the MLflow runs a stage logs to."""

    run_id: str
    parent_run_id: str
    experiment_id: str
    experiment_name: str


def _open_parent(client: Any, experiment_id: str, dataset: str, runner: str) -> str | None:
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            "tags.`synthgate.role` = 'pipeline' and attributes.status = 'RUNNING' "
            f"and tags.`synthgate.runner` = '{runner}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def _tags(cfg: DatasetConfig, root: Path, stage: str) -> dict[str, str]:
    tags = {"synthgate.dataset": cfg.name, "synthgate.stage": stage}
    for key, value in {**code_version(root), **runner_info()}.items():
        tags[f"synthgate.{key}"] = str(value)
    lock = root / "dvc.lock"
    if lock.is_file():
        tags["synthgate.dvc_lock_sha256"] = sha256_file(lock)
    return tags


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(value)[:6000]


def flatten(params: dict[str, Any]) -> dict[str, str]:
    """Nested params as dotted MLflow param names."""
    out: dict[str, str] = {}
    _flat("", params, out)
    return out


@contextlib.contextmanager
def stage_run(cfg: DatasetConfig, paths: DatasetPaths, stage: str) -> Iterator[StageRun]:
    """Open (or join) the pipeline's parent run and a nested run for `stage`.

    On an exception both runs end as FAILED and the exception propagates.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    root = paths.root
    mlflow.set_tracking_uri(tracking_uri(root))
    client = MlflowClient()
    exp_name = experiment_name(cfg.name)
    exp = client.get_experiment_by_name(exp_name)
    experiment_id = exp.experiment_id if exp else client.create_experiment(
        exp_name, artifact_location=_artifact_location(root)
    )
    tags = _tags(cfg, root, stage)
    runner = tags["synthgate.runner"]

    parent_id = os.environ.get(PARENT_ENV) or _open_parent(client, experiment_id, cfg.name, runner)
    if parent_id is None:
        parent_tags = {**tags, "synthgate.role": "pipeline", "synthgate.stage": "pipeline"}
        parent = client.create_run(experiment_id, run_name=f"{cfg.name}-pipeline", tags=parent_tags)
        parent_id = parent.info.run_id
        for key, value in flatten(cfg.to_params()).items():
            client.log_param(parent_id, key, value)
    child_tags = {**tags, "synthgate.role": "stage", "mlflow.parentRunId": parent_id}
    child = client.create_run(experiment_id, run_name=stage, tags=child_tags)
    handle = StageRun(child.info.run_id, parent_id, experiment_id, exp_name)
    try:
        with mlflow.start_run(run_id=handle.run_id):
            yield handle
    except BaseException:
        client.set_terminated(handle.parent_run_id, status="FAILED")
        raise


def end_pipeline(handle: StageRun, success: bool) -> None:
    """Close the parent run (release calls this: FINISHED when published, else FAILED)."""
    from mlflow.tracking import MlflowClient

    if os.environ.get(PARENT_ENV):
        return  # the runner that created the parent closes it
    MlflowClient().set_terminated(handle.parent_run_id, status="FINISHED" if success else "FAILED")


def get_run(run_id: str, root: Path) -> Run:
    """Fetch a run from the configured tracking store."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri(root))
    return MlflowClient().get_run(run_id)
