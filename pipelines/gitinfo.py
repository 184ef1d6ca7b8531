"""Where a run comes from: git queries, the code version of a workspace and the runner's identity.

The one place that runs `git` (tracking tags, release manifests, lineage and reproduce use it) and
that reads who runs a stage (DVC, Airflow, the CLI), so that neither needs the MLflow tracking module.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

RUNNER_ENV = "SYNTHGATE_RUNNER"
"""Set by a runner that names itself (Airflow, reproduce); otherwise DVC or the CLI is assumed."""

_NOT_CODE = ("dvc.lock", ".gitignore")
"""Tracked files DVC itself rewrites during a run (they change no output): not counted as dirty."""


def git_bytes(root: Path, *args: str, timeout: float = 300) -> bytes | None:
    """The stdout of `git <args>` run in `root`, or None when git fails, is missing or times out."""
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=timeout, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def git(root: Path, *args: str, timeout: float = 30) -> str | None:
    """`git_bytes` decoded as UTF-8 text (undecodable bytes replaced)."""
    out = git_bytes(root, *args, timeout=timeout)
    return None if out is None else out.decode("utf-8", errors="replace")


def code_version(root: Path) -> dict[str, Any]:
    """The git commit of the code and whether the tree had uncommitted changes (and which)."""
    commit = git(root, "rev-parse", "HEAD")
    status = git(root, "status", "--porcelain", "--untracked-files=no")
    commit = commit.strip() if commit is not None else None
    if status is None:
        return {"git_commit": commit, "git_dirty": None}
    changed = [line.strip().split(maxsplit=1)[-1].split(" -> ")[-1] for line in status.splitlines() if line.strip()]
    dirty = sorted(p for p in changed if not p.endswith(_NOT_CODE))
    return {"git_commit": commit, "git_dirty": bool(dirty), "git_dirty_paths": dirty[:20]}


EXP_NAME_ENV, EXP_BASELINE_ENV = "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"
"""Set by `dvc exp run` for every stage command it runs (dvc 3.67: `run_env` in
dvc/repo/experiments/queue/base.py, in the workspace, `--temp` and queued runs alike), never by
`dvc repro`."""


def dvc_experiment() -> dict[str, str] | None:
    """The DVC experiment this stage runs in (`name`, `baseline_rev`); None outside `dvc exp run`."""
    name, baseline = os.environ.get(EXP_NAME_ENV, ""), os.environ.get(EXP_BASELINE_ENV, "")
    if not (name or baseline):
        return None
    return {"name": name or f"exp-{baseline[:7]}", "baseline_rev": baseline}


def runner_info() -> dict[str, str]:
    """Who runs this stage: dvc | airflow | cli, with Airflow's dag_id/run_id and the DVC
    experiment's name when present."""
    runner = os.environ.get(RUNNER_ENV) or ("dvc" if os.environ.get("DVC_ROOT") else "cli")
    info = {"runner": runner}
    experiment = dvc_experiment()
    if experiment:
        info["dvc_experiment"] = experiment["name"]
    for key, env in (("dag_id", "AIRFLOW_CTX_DAG_ID"), ("run_id", "AIRFLOW_CTX_DAG_RUN_ID")):
        if os.environ.get(env):
            info[f"airflow_{key}"] = os.environ[env]
    return info
