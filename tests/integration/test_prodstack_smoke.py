"""Smoke test of the production configuration: a DAG runs on the Celery worker via REST.

Starts the real stack (``prodstack.ProductionStack``: Airflow api-server, scheduler,
dag-processor, triggerer, Celery worker, MLflow server) against the machine's
PostgreSQL and Redis, triggers a two-task TaskFlow DAG through the REST API and checks
its effects: a file written by the first task, an MLflow run (param, metric, artifact)
logged by the second through ``MLFLOW_TRACKING_URI``, and the Celery worker's log.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .prodstack import PgServer, ProductionStack, RedisServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "prodstack_smoke"
EXPERIMENT = "prodstack-smoke"

SMOKE_DAG = f'''
from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["smoke"],
)
def prodstack_smoke():
    @task
    def write_file() -> str:
        context = get_current_context()
        out = Path(context["dag_run"].conf["out_dir"]) / "smoke.txt"
        out.write_text(f"{{context['run_id']}} pid={{os.getpid()}}\\n")
        return str(out)

    @task
    def log_to_mlflow(path: str) -> str:
        import mlflow

        mlflow.set_experiment("{EXPERIMENT}")
        with mlflow.start_run() as run:
            mlflow.set_tag("airflow_run_id", get_current_context()["run_id"])
            mlflow.log_param("path", path)
            mlflow.log_metric("size_bytes", Path(path).stat().st_size)
            mlflow.log_artifact(path)
        return run.info.run_id

    log_to_mlflow(write_file())


prodstack_smoke()
'''


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    """Start the stack once for this module with a DAG folder holding the smoke DAG."""
    pg, redis = PgServer.from_env(), RedisServer.from_env()
    missing = [
        f"{name} at {host}:{port}"
        for name, host, port in (("PostgreSQL", pg.host, pg.port), ("Redis", redis.host, redis.port))
        if not _reachable(host, port)
    ]
    if missing:
        message = f"not reachable: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must start them)")
        pytest.skip(message)

    root = tmp_path_factory.mktemp("prodstack")
    dags = root / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(SMOKE_DAG)
    prod = ProductionStack(dags, REPO_ROOT, root / "work")
    with prod:
        yield prod
    assert not prod._res.pgids and not prod._res.databases and prod._res.redis_db is None
    with prod.pg.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (prod.airflow_db, prod.mlflow_db))
        assert cur.fetchall() == [], "databases were not dropped"


def test_environment_is_production_shaped(stack: ProductionStack) -> None:
    """Clients and tasks get the Celery/Postgres configuration and the MLflow URI."""
    env = stack.env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["MLFLOW_TRACKING_URI"] == stack.mlflow_uri
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{stack.api_url}/execution/"
    assert stack.startup_seconds is not None
    print(f"\nstack healthy after {stack.startup_seconds:.1f} s")


def test_dag_runs_on_celery_worker_and_logs_to_mlflow(
    stack: ProductionStack, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """Trigger through REST; the run succeeds on the worker and reaches MLflow."""
    stack.wait_for_dag(DAG_ID, timeout=60)
    started = time.monotonic()
    run_id = stack.trigger(DAG_ID, {"out_dir": str(tmp_path)})
    state = stack.wait(DAG_ID, run_id, timeout=120)
    elapsed = time.monotonic() - started
    record_property("trigger_to_success_s", round(elapsed, 1))
    print(f"\ntrigger -> {state} in {elapsed:.1f} s")

    tasks = stack.task_states(DAG_ID, run_id)
    if state != "success":
        logs = "\n".join(f"== {t} ==\n{stack.task_log(DAG_ID, run_id, t)}" for t in tasks)
        pytest.fail(f"run {run_id} ended {state}: {tasks}\n{logs}\n{stack.log_tails()}")
    assert tasks == {"write_file": "success", "log_to_mlflow": "success"}

    # First task: its file, written by a process other than this one.
    text = (tmp_path / "smoke.txt").read_text()
    assert text.startswith(run_id)
    assert f"pid={os.getpid()}" not in text

    # Second task: an MLflow run on the tracking server, with its proxied artifact.
    mlflow = httpx.Client(base_url=f"{stack.mlflow_uri}/api/2.0/mlflow", timeout=30)
    experiment = mlflow.get("/experiments/get-by-name", params={"experiment_name": EXPERIMENT})
    experiment.raise_for_status()
    search = mlflow.post(
        "/runs/search",
        json={
            "experiment_ids": [experiment.json()["experiment"]["experiment_id"]],
            "filter": f"tags.airflow_run_id = '{run_id}'",
        },
    )
    search.raise_for_status()
    (ml_run,) = search.json()["runs"]
    assert ml_run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in ml_run["data"]["params"]}
    assert params["path"] == str(tmp_path / "smoke.txt")
    metrics = {m["key"]: m["value"] for m in ml_run["data"]["metrics"]}
    assert metrics["size_bytes"] == len(text.encode())
    artifacts = mlflow.get("/artifacts/list", params={"run_id": ml_run["info"]["run_id"]})
    artifacts.raise_for_status()
    assert [f["path"] for f in artifacts.json()["files"]] == ["smoke.txt"]

    # Both tasks went through Celery (the worker logs after reporting state: poll).
    done = re.compile(r"Task execute_workload\[[0-9a-f-]+\] succeeded")
    deadline = time.monotonic() + 15
    while len(done.findall(stack.log_path("worker").read_text())) < 2:
        assert time.monotonic() < deadline, stack.log_tails()
        time.sleep(0.5)
