"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME with a migrated SQLite metadata DB.

The variables are set when this file is imported, before any test module imports Airflow
(Airflow reads its configuration once, at import).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, small_hdma_repo

DAGS = REPO / "dags"
_HOME = Path(tempfile.mkdtemp(prefix="synthgate-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, True)
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
}
os.environ.update(AIRFLOW_ENV)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """`airflow db migrate` into the session's AIRFLOW_HOME (about 3 s)."""
    env = {**os.environ, **AIRFLOW_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, f"airflow db migrate failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    from airflow import settings

    used = settings.SQL_ALCHEMY_CONN
    assert used == AIRFLOW_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], (
        f"Airflow in this process uses {used}: it was imported before tests/dags/conftest.py set the "
        "test AIRFLOW_HOME; import Airflow inside tests, not at the top of other test modules"
    )
    return _HOME


def small_repo(dest: Path, shard_rows: int = 100) -> Path:
    """A git-committed copy of the repo whose params.yaml keeps only a small HDMA pipeline
    (`SMALL_HDMA_ROWS` rows in shards of `shard_rows`: the DAG maps them)."""
    return small_hdma_repo(dest, shard_rows=shard_rows)


@contextlib.contextmanager
def synthgate_root(root: Path) -> Iterator[None]:
    """Point the DAG file at `root` (its params.yaml, data and DVC state) for a while."""
    saved = os.environ.get("SYNTHGATE_ROOT")
    os.environ["SYNTHGATE_ROOT"] = str(root)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SYNTHGATE_ROOT", None)
        else:
            os.environ["SYNTHGATE_ROOT"] = saved


def load_dagbag(root: Path | None = None) -> Any:
    """Parse the dags folder (for `root` when given) like the DAG processor does."""
    from airflow.dag_processing.dagbag import DagBag

    with synthgate_root(root) if root else contextlib.nullcontext():
        return DagBag(dag_folder=str(DAGS))


def run_dag(root: Path, dag_id: str = "synth_hdma", conf: dict[str, Any] | None = None) -> tuple[Any, dict]:
    """`dag.test()` one run against `root`; return the DagRun and {task_id[map_index]: state}."""
    with synthgate_root(root):
        bag = load_dagbag(root)
        assert not bag.import_errors, bag.import_errors
        run = bag.dags[dag_id].test(run_conf=conf)
    states = {}
    for ti in run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[key] = str(ti.state.value if hasattr(ti.state, "value") else ti.state)
    for var in [v for v in os.environ if v.startswith("AIRFLOW_CTX_")]:  # tasks ran in this process
        os.environ.pop(var, None)
    return run, states
