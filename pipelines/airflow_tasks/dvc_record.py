"""Recording an Airflow run's outputs in DVC: `dvc commit -f` and `dvc push`, one run at a time.

After `record_dvc`, dvc.lock, the DVC cache and the remote hold what the run made, so
`dvc status` is clean. DVC runs in a subprocess (nothing of DVC is imported here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipelines import STAGES
from pipelines.airflow_tasks.runtime import RunContext, airflow_errors, runner_env, set_parent_tags
from pipelines.errors import InvalidInputError, SynthgateError
from pipelines.locks import file_lock
from pipelines.paths import dvc_record_lock

log = logging.getLogger("synthgate.airflow")

DVC_LOCK_TIMEOUT_S = 900
"""How long `record_dvc` waits for another run's DVC commit before failing (and retrying)."""


def _repo_lock(root: Path, timeout_s: float = DVC_LOCK_TIMEOUT_S) -> contextlib.AbstractContextManager[None]:
    """One DVC recording at a time per repository (all datasets share dvc.lock)."""
    busy = f"another run has been recording in DVC for {timeout_s:.0f} s; the task will retry"
    return file_lock(dvc_record_lock(root), busy, wait_s=timeout_s)


def _dvc(root: Path, *args: str, timeout_s: float = DVC_LOCK_TIMEOUT_S) -> str:
    """Run `dvc <args>` in `root` and return its stdout; SynthgateError (retried) when it fails."""
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet"}
    try:
        out = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        raise SynthgateError(f"`dvc {' '.join(args)}` did not finish in {timeout_s:.0f} s") from None
    if out.returncode != 0:
        raise SynthgateError(
            f"`dvc {' '.join(args)}` failed in {root} (exit {out.returncode}):\n"
            f"{(out.stderr or out.stdout).strip()[-3000:]}"
        )
    return out.stdout


def dvc_targets(dataset: str) -> list[str]:
    """This dataset's dvc.yaml stages (`ingest@hdma` … `release@hdma`)."""
    return [f"{stage}@{dataset}" for stage in STAGES]


def record_in_dvc(root: Path, dataset: str) -> dict[str, Any]:
    """`dvc commit -f` this dataset's stages and `dvc push` their outputs, one run at a time."""
    if not (root / ".dvc").is_dir() or not (root / "dvc.yaml").is_file():
        raise InvalidInputError(
            str(root),
            ["not a DVC project (no .dvc/ or dvc.yaml)"],
            hint="Run the DAG against the repository root (SYNTHGATE_ROOT).",
        )
    targets = dvc_targets(dataset)
    with _repo_lock(root):
        _dvc(root, "commit", "-f", *targets)
        remote = os.environ.get("SYNTHGATE_DVC_REMOTE")
        pushed = _dvc(root, "push", *(["--remote", remote] if remote else []), *targets)
    return {"committed": targets, "push": pushed.strip().splitlines()[-1:] or [""]}


@airflow_errors
def record_dvc(ctx: RunContext) -> dict[str, Any]:
    """Record the run's outputs in DVC (dvc.lock + cache + remote): `dvc status` is clean after."""
    root = Path(ctx["root"])
    if ctx.get("overrides"):
        log.warning(
            "%s: this run had overrides %s; dvc.lock records params.yaml's values, the "
            "release manifest and MLflow the effective ones",
            ctx["dataset"],
            ctx["overrides"],
        )
    with runner_env(ctx):
        result = record_in_dvc(root, ctx["dataset"])
    log.info("%s: dvc commit %s; dvc push: %s", ctx["dataset"], " ".join(result["committed"]), result["push"][0])
    set_parent_tags(ctx, {"synthgate.dvc": "committed+pushed"})
    return result
