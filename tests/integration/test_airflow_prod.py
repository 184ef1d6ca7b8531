"""The synth DAG on the production configuration, for real: REST trigger, scheduler, Celery worker.

`ProductionStack` (tests/integration/prodstack.py) runs Airflow with CeleryExecutor, metadata on
PostgreSQL and Redis as broker, plus an `mlflow server` on PostgreSQL. The DAG runs against a
git-committed temp copy of the repository on a small HDMA slice; the test checks the release,
the MLflow run on the server (tagged with dag_id and run_id), the DVC state, and that bad
overrides are refused before any work.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipelines import STAGES
from tests.conftest import copy_repo, git_init

from .prodstack import PgServer, ProductionStack, RedisServer, StackError

pytestmark = pytest.mark.integration

DAG_ID = "synth_hdma"
ROWS, SHARD_ROWS = 300, 150


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed repo copy whose params.yaml keeps a small, unscheduled HDMA pipeline."""
    dest = copy_repo(tmp_path_factory.mktemp("airflow-prod") / "repo")
    params = yaml.safe_load((dest / "params.yaml").read_text())
    hdma = params["datasets"]["hdma"]
    hdma["generate"] = {"rows": 400, "shard_rows": SHARD_ROWS}
    hdma["gates"] = {"sample_rows": 400, "utility_gap_max": 0.5, "minority_recall_ratio_min": 0.0}  # small slice
    hdma["sensitive"] = []  # small slice: noisy utility, rare-class and bias figures
    hdma["schedule"] = None  # unpausing an @daily DAG would also start a scheduled run
    params["datasets"] = {"hdma": hdma}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    git_init(dest)
    return dest


@pytest.fixture(scope="module")
def stack(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    pg, redis = PgServer.from_env(), RedisServer.from_env()
    missing = [
        f"{name} at {host}:{port}"
        for name, host, port in (("PostgreSQL", pg.host, pg.port), ("Redis", redis.host, redis.port))
        if not _reachable(host, port)
    ]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"not reachable: {', '.join(missing)} (CI must start them)")
        pytest.skip(f"not reachable: {', '.join(missing)}")
    work = tmp_path_factory.mktemp("airflow-prod-stack")
    with ProductionStack(repo / "dags", repo, work, {"SYNTHGATE_ROOT": str(repo)}) as prod:
        prod.wait_for_dag(DAG_ID, timeout=120)
        yield prod


def _fail_with_logs(stack: ProductionStack, run_id: str, state: str) -> None:
    tasks = stack.task_states(DAG_ID, run_id)
    bad = [t for t, s in tasks.items() if s not in ("success", "skipped")]
    logs = "\n".join(f"== {t} ==\n{stack.task_log(DAG_ID, run_id, t.split('[')[0])[-4000:]}" for t in bad[:3])
    pytest.fail(f"{run_id} ended {state}: {tasks}\n{logs}\n{stack.log_tails()}")


def test_triggered_run_releases_and_is_tracked_on_the_server(stack: ProductionStack, repo: Path) -> None:
    from mlflow.tracking import MlflowClient

    started = time.monotonic()
    run_id = stack.trigger(DAG_ID, {"generate": {"rows": ROWS}})
    state = stack.wait(DAG_ID, run_id, timeout=480)
    print(f"\n{DAG_ID}: trigger -> {state} in {time.monotonic() - started:.1f} s on the Celery worker")
    if state != "success":
        _fail_with_logs(stack, run_id, state)
    tasks = stack.task_states(DAG_ID, run_id)
    shards = [f"generate.sample_shard[{i}]" for i in range(ROWS // SHARD_ROWS)]
    assert tasks == {
        t: "success"
        for t in [
            "start",
            "source_changed",
            "ingest",
            "fit",
            "generate.plan_shards",
            *shards,
            "generate.combine_shards",
            "blend",
            "validate",
            "release",
            "record_dvc",
            "finish",
        ]
    }

    manifest = json.loads((repo / "data/release/hdma/manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["files"][0]["rows"] == ROWS
    assert manifest["params"]["generate"]["rows"] == ROWS
    assert manifest["runner"] == {"runner": "airflow", "airflow_dag_id": DAG_ID, "airflow_run_id": run_id}

    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    parent = client.get_run(manifest["mlflow"]["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["synthgate.airflow_dag_id"] == DAG_ID
    assert parent.data.tags["synthgate.airflow_run_id"] == run_id
    assert parent.data.tags["synthgate.verdict"] == "released"
    assert parent.data.params["generate.rows"] == str(ROWS)
    release = client.get_run(manifest["mlflow"]["stage_runs"]["release"])
    assert "release" in {a.path for a in client.list_artifacts(release.info.run_id)}

    targets = [f"{s}@hdma" for s in STAGES]
    for args in (["status", *targets], ["status", "--cloud", *targets]):
        out = subprocess.run(
            [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0 and re.search(r"up to date|in sync", out.stdout), out.stdout + out.stderr

    done = re.compile(r"Task execute_workload\[[0-9a-f-]+\] succeeded")
    deadline = time.monotonic() + 15
    while len(done.findall(stack.log_path("worker").read_text())) < len(tasks):
        assert time.monotonic() < deadline, "not every task ran on the Celery worker"
        time.sleep(0.5)


def test_bad_overrides_are_refused_before_any_work(stack: ProductionStack, repo: Path) -> None:
    # A bad form field: Airflow validates it against the Param schema and creates no run.
    with pytest.raises(StackError, match="rows"):
        stack.trigger(DAG_ID, {"rows": 0})
    # A bad nested key: the section's schema (from the pydantic model) refuses it; no run either.
    with pytest.raises(StackError, match="rowz"):
        stack.trigger(DAG_ID, {"generate": {"rowz": 5}})
    # A rule across fields (the target declared PII): the first task fails, naming the key path;
    # nothing downstream runs.
    run_id = stack.trigger(DAG_ID, {"fit": {"pii": {"columns": {"deny": "name"}}}})
    assert stack.wait(DAG_ID, run_id, timeout=180) == "failed"
    tasks = stack.task_states(DAG_ID, run_id)
    assert tasks.pop("start") == "failed"
    assert set(tasks.values()) <= {"upstream_failed", None}
    assert "fit.pii.columns: 'deny' is the target" in stack.task_log(DAG_ID, run_id, "start")
