"""kill -9 inside the publish step: the release folder is the old or the new version, and
`synthgate recover` (or the next run) leaves records that `synthgate lineage` verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.io import sha256_file
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, HDMA, REPO, clean_env, defaults, git_init, run_stages, small_block, venv_env


def _tree(path: Path) -> dict[str, str]:
    return {str(f.relative_to(path)): sha256_file(f) for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace with v1 of HDMA published and validate re-run (ready for v2)."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    root = tmp_path_factory.mktemp("faults")
    # a 300-row slice: the utility gap of GaussianCopula is noisy there (up to 0.38); gates are not tested here
    gates = {"sample_rows": 300, "minority_recall_ratio_min": 0.0, "utility_gap_max": 0.5, **FLOORS_OFF}
    block = small_block(HDMA, "deny", generate={"rows": 300}, gates=gates)
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(root / "params.yaml").dataset("hdma"), paths_for("hdma", root)))
    git_init(root)  # lineage names the commit that made a release
    with clean_env():
        run_stages(root, "hdma")
    return root


def _synthgate(ws: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=ws,
        env=venv_env(PYTHONPATH=str(REPO), **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _kill_release_at(ws: Path, point: str) -> None:
    """Run `synthgate release hdma` and SIGKILL it once it pauses at `point`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "release", "hdma"],
        cwd=ws,
        env=venv_env(PYTHONPATH=str(REPO), SYNTHGATE_PAUSE_AT=point),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip() == f"paused at {point}":
            break
    else:
        pytest.fail(f"release never reached {point} (exit {proc.wait()})")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _lineage(ws: Path, version: int) -> dict:
    """`synthgate lineage hdma@<version>` (no DVC: the workspace is not a DVC repository)."""
    from pipelines.lineage import lineage

    return lineage(f"hdma@{version}", ws, use_dvc=False)


def test_killed_after_the_swap_is_completed_by_recover(ws):
    p = paths_for("hdma", ws)
    before = json.loads(p.manifest.read_text())["version"]
    _kill_release_at(ws, "records")
    after = json.loads(p.manifest.read_text())
    assert after["version"] == before + 1  # the new version is in place, whole
    assert after["files"][0]["sha256"] == sha256_file(p.release_file)
    assert p.publish_journal.is_file()
    assert not _lineage(ws, after["version"])["ok"]  # its records are not complete yet
    out = _synthgate(ws, "recover", "hdma")
    assert out.returncode == 0 and f"completed the records of 'hdma' v{after['version']}" in out.stdout
    check = _lineage(ws, after["version"])
    assert check["ok"], check["problems"]
    assert not p.publish_journal.exists()
    assert _synthgate(ws, "recover", "hdma").stdout.strip() == "nothing to recover for 'hdma'"


def test_killed_before_the_swap_is_rolled_back_by_the_next_run(ws):
    p = paths_for("hdma", ws)
    before = _tree(p.release_dir)
    version = json.loads(p.manifest.read_text())["version"]
    run_stages(ws, "hdma", ("validate",))
    _kill_release_at(ws, "swap")
    assert _tree(p.release_dir) == before
    assert p.publish_journal.is_file()
    out = _synthgate(ws, "validate", "hdma")  # the next run recovers first
    assert out.returncode == 0, out.stderr
    assert "rolled back 'hdma'" in out.stderr
    assert not p.publish_journal.exists() and _tree(p.release_dir) == before
    log = [json.loads(x) for x in p.attempts_log.read_text().splitlines()]
    assert log[-1]["verdict"] == "interrupted" and log[-1]["version"] is None
    check = _lineage(ws, version)
    assert check["ok"], check["problems"]
