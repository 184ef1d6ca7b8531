"""What every Airflow task body shares: the run context, error handling, the runner's environment.

Light at import (the DAG processor parses it): MLflow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypedDict, TypeVar

from pipelines.config import DatasetConfig
from pipelines.errors import ConfigError, GateFailed, IntegrityError, InvalidInputError
from pipelines.locks import run_lock
from pipelines.paths import DatasetPaths, paths_for

log = logging.getLogger("synthgate.airflow")

P = ParamSpec("P")
R = TypeVar("R")

_NOT_RETRIED = (ConfigError, InvalidInputError, IntegrityError, GateFailed)
"""Errors that a retry cannot fix: the task fails at once, with the error's message."""

_QUIET_LOGGERS = (
    "great_expectations",
    "great_expectations._docs_decorators",
    "mlflow",
    "alembic",
    "SingleTableSynthesizer",
    "sdv",
    "rdt",
    "copulas",
    "py.warnings",
)
"""Library loggers kept at ERROR in task logs."""


class RunContext(TypedDict):
    """What the first task resolves and every later task receives (through XCom)."""

    dataset: str
    root: str
    config: dict[str, Any]
    overrides: dict[str, Any]
    force: bool
    dag_id: str
    run_id: str
    parent_run_id: str


def airflow_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Errors a retry cannot fix fail the task at once (no retry), with their message logged."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _NOT_RETRIED as err:
            from airflow.sdk.exceptions import AirflowFailException

            log.error("%s", err)
            raise AirflowFailException(f"{type(err).__name__}: {err}") from err

    return wrapper


@contextlib.contextmanager
def runner_env(ctx: Mapping[str, Any]) -> Iterator[None]:
    """Set the variables the stage code reads (runner, parent run, Airflow ids), then restore."""
    values = {
        "SYNTHGATE_RUNNER": "airflow",
        "SYNTHGATE_ROOT": str(ctx["root"]),
        "AIRFLOW_CTX_DAG_ID": str(ctx["dag_id"]),
        "AIRFLOW_CTX_DAG_RUN_ID": str(ctx["run_id"]),
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    }
    if ctx.get("parent_run_id"):
        values["SYNTHGATE_PARENT_RUN_ID"] = str(ctx["parent_run_id"])
    saved = {k: os.environ.get(k) for k in (*values, "SYNTHGATE_PARENT_RUN_ID")}
    os.environ.update(values)
    if "SYNTHGATE_PARENT_RUN_ID" not in values:
        os.environ.pop("SYNTHGATE_PARENT_RUN_ID", None)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def config_of(ctx: Mapping[str, Any]) -> tuple[DatasetConfig, DatasetPaths]:
    """The run's pinned config and paths (as resolved by the first task)."""
    cfg = DatasetConfig.model_validate(ctx["config"])
    return cfg, paths_for(cfg.name, Path(ctx["root"]))


def run_stage(ctx: RunContext, stage: str) -> dict[str, Any]:
    """Run one stage's `run` exactly as DVC does, inside the runner's environment.

    Ingest and fit are reused, as `dvc repro` would skip them, when what dvc.yaml says they
    depend on is unchanged since their last run and their outputs verify (`reuse.py`); the MLflow
    parent run is tagged `synthgate.reused.<stage>` with the reused record's run.
    """
    from pipelines.airflow_tasks import reuse

    cfg, paths = config_of(ctx)
    started = time.perf_counter()
    with runner_env(ctx), run_lock(paths, f"airflow run {ctx['run_id']} {stage}"):
        digest = reuse.inputs_digest(cfg, paths, stage) if stage in reuse.REUSABLE else None
        why = reuse.reusable(cfg, paths, stage, digest) if digest else None
        if digest and why:
            from pipelines.io import read_json

            result = read_json(paths.record(stage))
            log.info("%s %s: reused, %s", stage, cfg.name, why)
            set_parent_tags(ctx, {f"synthgate.reused.{stage}": str(result["mlflow"]["run_id"])})
            return result
        result = importlib.import_module(f"pipelines.{stage}").run(cfg, paths)
        if digest:
            reuse.remember(cfg, paths, stage, digest)
    log.info("%s %s: done in %.1f s", stage, cfg.name, time.perf_counter() - started)
    return result


def set_parent_tags(ctx: Mapping[str, Any], tags: Mapping[str, str]) -> None:
    """Tag the run's MLflow parent run (verdict, DVC state)."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import use_store

    use_store(Path(ctx["root"]))
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(ctx["parent_run_id"], key, value)
