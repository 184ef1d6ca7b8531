"""MLflow tracking: one parent run per pipeline run of a dataset, one nested run per stage.

Stages run in separate processes (DVC) or on separate workers (Airflow), so the parent run is
found, not held: `$SYNTHGATE_PARENT_RUN_ID` when a runner passes one (Airflow), else the open
(RUNNING) parent run of this dataset and runner, else a new one. The release stage closes it
(FINISHED, or FAILED when a gate blocks it); any stage that crashes closes it as FAILED, so the
next run starts a fresh parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import openlineage
from pipelines.gitinfo import code_version, runner_info
from pipelines.io import read_json, sha256_file
from pipelines.paths import mlflow_artifacts, mlflow_db

if TYPE_CHECKING:
    from mlflow.entities import Run

    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths

PARENT_ENV = "SYNTHGATE_PARENT_RUN_ID"


def tracking_uri(root: Path) -> str:
    """$MLFLOW_TRACKING_URI, else the embedded default `sqlite:///<root>/mlflow.db`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_db(root)}"


def check_server(uri: str, timeout_s: float = 5.0) -> None:
    """TrackingUnavailable unless an http(s) tracking server answers within `timeout_s`
    (the MLflow client would retry for minutes before failing)."""
    import base64
    import urllib.error
    import urllib.request

    from pipelines.errors import TrackingUnavailable
    from pipelines.redact import redact, split_credentials

    bare, credentials = split_credentials(uri)
    request = urllib.request.Request(f"{bare.rstrip('/')}/health")
    if credentials:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # it answered: reachable (a proxy or auth in front may refuse /health itself)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise TrackingUnavailable(
            redact(f"MLflow tracking server {uri} is not reachable ({err}): start it, or unset ")
            + "MLFLOW_TRACKING_URI to use the embedded store (mlflow.db)"
        ) from None


CLIENT_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
"""The MLflow client's retry settings unless the user set them: a server that stops during a run
fails the stage in seconds (MLflow's own defaults retry for minutes); the start-of-stage health
check already answers for a server that is down from the start."""


def use_store(root: Path) -> str:
    """Point this process's MLflow client at the store of `root`; return the URI.

    `mlflow.set_tracking_uri` also writes $MLFLOW_TRACKING_URI, which would make the *next*
    workspace in the same process (tests, Airflow's dag.test) log to this one's store: the
    variable is put back as it was, so it only ever holds what the user set.
    """
    import mlflow

    uri = tracking_uri(root)
    for key, value in CLIENT_RETRIES.items():
        os.environ.setdefault(key, value)
    _serve_embedded_artifacts()
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return uri


EMBEDDED_ARTIFACTS = "mlflow-artifacts:/"
"""The artifact location of the embedded store's experiments: relative to the store, not an
absolute path of the machine that created it, so a moved or cloned workspace keeps its artifacts.
This process reads it as `mlartifacts/` beside the store's database (`embedded_artifacts`), and
`mlflow ui --backend-store-uri sqlite:///mlflow.db` started in the workspace serves the same folder
(its default `--artifacts-destination ./mlartifacts`)."""


def _artifact_location(root: Path) -> str | None:
    """Embedded default: `EMBEDDED_ARTIFACTS`; a server decides its own."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return EMBEDDED_ARTIFACTS


def embedded_artifacts(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> Any:
    """The artifact repository of an `mlflow-artifacts:` URI: with a SQLite store, the folder
    `mlartifacts/<path>` beside its database file (no server needed); otherwise MLflow's own,
    proxied through the tracking server."""
    from urllib.parse import urlparse

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    uri = tracking_uri or mlflow.get_tracking_uri()
    parsed = urlparse(artifact_uri)
    if not uri.startswith("sqlite:///") or parsed.netloc:
        return MlflowArtifactsRepository(artifact_uri, tracking_uri=uri, registry_uri=registry_uri)
    base = mlflow_artifacts(Path(uri.removeprefix("sqlite:///").split("?")[0]).resolve().parent).resolve()
    target = (base / parsed.path.lstrip("/")).resolve()
    if not target.is_relative_to(base):
        raise MlflowException(f"artifact URI {artifact_uri} points outside {base}")
    return LocalArtifactRepository(target.as_uri(), tracking_uri=uri, registry_uri=registry_uri)


def _serve_embedded_artifacts() -> None:
    """Resolve `mlflow-artifacts:` URIs with `embedded_artifacts` in this process. MLflow offers no
    public hook short of an installed entry point (which would change every MLflow process of the
    environment, the tracking server's too); tests/test_tracking.py pins this one."""
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

    _artifact_repository_registry.register("mlflow-artifacts", embedded_artifacts)


def _experiment_id(client: Any, name: str, root: Path) -> str:
    """The id of experiment `name`, created (artifacts per `_artifact_location`) if missing."""
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name, artifact_location=_artifact_location(root))


def experiment_name(dataset: str) -> str:
    """The MLflow experiment of a dataset."""
    return f"synthgate-{dataset}"


@dataclass(frozen=True)
class StageRun:
    """Handles of the MLflow runs a stage logs to."""

    run_id: str
    parent_run_id: str
    experiment_id: str
    experiment_name: str

    def as_record(self) -> dict[str, str]:
        """The `mlflow` block of a stage's run record."""
        return {"run_id": self.run_id, "parent_run_id": self.parent_run_id, "experiment": self.experiment_name}


TOKEN_ENV = "SYNTHGATE_PIPELINE_TOKEN"
"""Set by `synthgate run` for its stages: they share one pipeline run."""


def _process(pid: int) -> tuple[int, list[str], str] | None:
    """(parent pid, argv, start time in clock ticks) of a process, from /proc (Linux); else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), argv, fields[19]


def pipeline_token(runner: str) -> str:
    """What identifies one pipeline run of this runner: `synthgate run`'s token; for DVC the
    `dvc repro`/`dvc exp run` process (pid and start time) every stage runs under; otherwise the
    invoking process (a shell running stages one by one)."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    parent = os.getppid()
    first = _process(parent)
    pid, info = parent, first
    while runner == "dvc" and info is not None and pid > 1:
        if any(Path(arg).name == "dvc" for arg in info[1][:2]):
            return f"dvc:{pid}:{info[2]}"
        pid, info = info[0], _process(info[0])
    return f"{runner}:{parent}:{first[2] if first else ''}"


def pipeline_key(cfg: DatasetConfig, runner: str) -> str:
    """The key a stage joins a pipeline (parent) run by: the run's token and its params' digest, so
    a later run never joins a dead run's parent, nor one with other params."""
    import hashlib

    params = hashlib.sha256(json.dumps(cfg.to_params(), sort_keys=True).encode()).hexdigest()[:16]
    return f"{pipeline_token(runner)}|{params}"


def _open_parent(client: Any, experiment_id: str, runner: str, key: str) -> str | None:
    """The RUNNING parent of this pipeline run, if a stage opened it; every other RUNNING parent of
    this runner (a killed run's, or one with other params) is closed as FAILED and tagged stale."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            "tags.`synthgate.role` = 'pipeline' and attributes.status = 'RUNNING' "
            f"and tags.`synthgate.runner` = '{runner}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=100,
    )
    joined = None
    for run in runs:
        if joined is None and run.data.tags.get("synthgate.pipeline_key") == key:
            joined = run.info.run_id
            continue
        client.set_tag(run.info.run_id, "synthgate.stale", "closed by a later pipeline run (killed, or other params)")
        client.set_terminated(run.info.run_id, status="FAILED")
    return joined


def _tags(cfg: DatasetConfig, root: Path, stage: str) -> dict[str, str]:
    tags = {"synthgate.dataset": cfg.name, "synthgate.stage": stage}
    for key, value in {**code_version(root), **runner_info()}.items():
        tags[f"synthgate.{key}"] = str(value)
    lock = root / "dvc.lock"
    if lock.is_file():
        tags["synthgate.dvc_lock_sha256"] = sha256_file(lock)
    return tags


_KEY_CHARACTER = re.compile(r"[^\w.\- ]")


def mlflow_key(name: str) -> str:
    """`name` as an MLflow param or metric key: each character MLflow refuses (anything but letters,
    digits, `_`, `-`, `.` and spaces; `/` and `:` too, which it reads as paths) becomes `_`, so a
    column or class named `Amount ($)` or `n/a` is logged, not an error."""
    return _KEY_CHARACTER.sub("_", name)


def flatten(params: dict[str, Any]) -> dict[str, str]:
    """Nested params as dotted MLflow param names (values as text, at most 6,000 characters)."""
    from pipelines.io import flatten as dotted

    return {mlflow_key(k): str(v)[:6000] for k, v in dotted(params).items()}


@contextlib.contextmanager
def stage_run(cfg: DatasetConfig, paths: DatasetPaths, stage: str) -> Iterator[StageRun]:
    """Open (or join) the pipeline's parent run and a nested run for `stage`.

    On an exception both runs end as FAILED and the exception propagates.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    root = paths.root
    uri = use_store(root)
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    client = MlflowClient()
    exp_name = experiment_name(cfg.name)
    experiment_id = _experiment_id(client, exp_name, root)
    tags = _tags(cfg, root, stage)
    runner = tags["synthgate.runner"]

    key = pipeline_key(cfg, runner)
    parent_id = os.environ.get(PARENT_ENV) or _open_parent(client, experiment_id, runner, key)
    if parent_id is None:
        parent_tags = {
            **tags,
            "synthgate.role": "pipeline",
            "synthgate.stage": "pipeline",
            "synthgate.pipeline_key": key,
        }
        parent = client.create_run(experiment_id, run_name=f"{cfg.name}-pipeline", tags=parent_tags)
        parent_id = parent.info.run_id
        for key, value in flatten(cfg.to_params()).items():
            client.log_param(parent_id, key, value)
        openlineage.pipeline_event(cfg, paths, parent_id, exp_name, "START")
    child_tags = {**tags, "synthgate.role": "stage", "mlflow.parentRunId": parent_id}
    child = client.create_run(experiment_id, run_name=stage, tags=child_tags)
    handle = StageRun(child.info.run_id, parent_id, experiment_id, exp_name)
    events = openlineage.StageEvents(cfg, paths, stage, handle)
    events.start()
    try:
        with mlflow.start_run(run_id=handle.run_id):
            yield handle
            _log_record(client, paths, stage, handle.run_id)
        events.complete()
        if stage == "release" and not os.environ.get(PARENT_ENV):
            openlineage.pipeline_event(cfg, paths, parent_id, exp_name, "COMPLETE")
    except BaseException as err:
        client.set_terminated(handle.parent_run_id, status="FAILED")
        events.fail(err)
        if not os.environ.get(PARENT_ENV):
            openlineage.pipeline_event(cfg, paths, parent_id, exp_name, "FAIL", err)
        raise


def _log_record(client: Any, paths: DatasetPaths, stage: str, run_id: str) -> None:
    """Keep the stage's run record with its MLflow run (`records/<stage>.json`), so lineage can
    verify the record digests of an old release after newer runs overwrote `runs/<ds>/`."""
    record = paths.record(stage)
    if record.is_file() and read_json(record).get("mlflow", {}).get("run_id") == run_id:
        client.log_artifact(run_id, str(record), artifact_path="records")


def end_pipeline(handle: StageRun, success: bool) -> None:
    """Close the parent run (release calls this: FINISHED when published, else FAILED)."""
    from mlflow.tracking import MlflowClient

    if os.environ.get(PARENT_ENV):
        return  # the runner that created the parent closes it
    MlflowClient().set_terminated(handle.parent_run_id, status="FINISHED" if success else "FAILED")


def start_pipeline(cfg: DatasetConfig, paths: DatasetPaths) -> str:
    """Open the parent run for a runner that manages it itself (Airflow); return its id.

    Tagged like every run (runner, Airflow dag_id/run_id from the environment). Idempotent per
    Airflow run: a retried first task finds the parent it created instead of opening another.
    The runner passes the id to every stage as $SYNTHGATE_PARENT_RUN_ID and closes it itself.
    """
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    root = paths.root
    uri = use_store(root)
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    client = MlflowClient()
    exp_name = experiment_name(cfg.name)
    experiment_id = _experiment_id(client, exp_name, root)
    tags = {**_tags(cfg, root, "pipeline"), "synthgate.role": "pipeline"}
    dag_id, run_id = tags.get("synthgate.airflow_dag_id"), tags.get("synthgate.airflow_run_id")
    if dag_id and run_id and "'" not in dag_id + run_id:
        found = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`synthgate.role` = 'pipeline' and tags.`synthgate.airflow_dag_id` = "
                f"'{dag_id}' and tags.`synthgate.airflow_run_id` = '{run_id}'"
            ),
            max_results=1,
        )
        if found:
            return found[0].info.run_id
    parent = client.create_run(experiment_id, run_name=f"{cfg.name}-pipeline", tags=tags)
    params = [Param(k, v) for k, v in flatten(cfg.to_params()).items()]
    for start in range(0, len(params), 100):
        client.log_batch(parent.info.run_id, params=params[start : start + 100])
    openlineage.pipeline_event(cfg, paths, parent.info.run_id, exp_name, "START")
    return parent.info.run_id


def close_pipeline(
    run_id: str, root: Path, success: bool, cfg: DatasetConfig | None = None, paths: DatasetPaths | None = None
) -> None:
    """Close a parent run opened with `start_pipeline` (FINISHED or FAILED).

    With `cfg` and `paths`, also emits the pipeline's OpenLineage COMPLETE/FAIL event.
    """
    from mlflow.tracking import MlflowClient

    use_store(root)
    MlflowClient().set_terminated(run_id, status="FINISHED" if success else "FAILED")
    if cfg is not None and paths is not None:
        openlineage.pipeline_event(cfg, paths, run_id, experiment_name(cfg.name), "COMPLETE" if success else "FAIL")


def get_run(run_id: str, root: Path) -> Run:
    """Fetch a run from the configured tracking store."""
    from mlflow.tracking import MlflowClient

    use_store(root)
    return MlflowClient().get_run(run_id)
