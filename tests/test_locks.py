"""One run of a dataset at a time (CLI, DVC, Airflow), and no leftover temp files from a killed write."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines.errors import SynthgateError
from pipelines.locks import remove_temp_files, run_lock
from pipelines.paths import paths_for
from tests.conftest import HDMA, REPO, small_block


def _hold(ws: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the run lock of `hdma` for `seconds` (started once it holds it)."""
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pipelines.locks import run_lock
        from pipelines.paths import paths_for
        with run_lock(paths_for("hdma", __import__("pathlib").Path({str(ws)!r})), "synthgate run hdma"):
            print("held", flush=True)
            time.sleep({seconds})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    holder = _hold(tmp_path, 30)
    try:
        with pytest.raises(SynthgateError) as err:
            with run_lock(paths_for("hdma", tmp_path), "synthgate fit hdma", wait_s=0):
                pass
        text = str(err.value)
        assert f"another run of 'hdma' is in progress (pid {holder.pid}, synthgate run hdma, since" in text
        assert "SYNTHGATE_LOCK_WAIT_S" in text
        with run_lock(paths_for("diamonds", tmp_path), "synthgate fit diamonds", wait_s=0):
            pass  # other datasets are not blocked
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_run_starts_when_the_holder_ends(tmp_path, capsys):
    holder = _hold(tmp_path, 2)
    started = time.monotonic()
    with run_lock(paths_for("hdma", tmp_path), "synthgate fit hdma", wait_s=30):
        assert 1.0 < time.monotonic() - started < 30  # waited for the holder's 2 s
    assert "waiting up to 30 s for the run of 'hdma' in progress" in capsys.readouterr().err
    holder.wait()


def test_a_killed_holder_never_leaves_the_lock_held(tmp_path):
    holder = _hold(tmp_path, 60)
    holder.kill()  # SIGKILL: no cleanup runs
    holder.wait()
    with run_lock(paths_for("hdma", tmp_path), "synthgate fit hdma", wait_s=0):
        pass


def test_nested_requests_in_one_process_do_not_deadlock(tmp_path):
    p = paths_for("hdma", tmp_path)
    with run_lock(p, "synthgate run hdma", wait_s=0), run_lock(p, "synthgate fit hdma", wait_s=0):
        pass


def test_leftover_temp_files_are_removed_when_a_run_starts(tmp_path):
    p = paths_for("hdma", tmp_path)
    left = [
        p.train.parent / ".train.parquet.x1y2.tmp",
        p.model.parent / ".synthesizer.pkl.k3.tmp",
        p.record("fit").parent / ".fit.json.q.tmp",
        p.synthetic_dir.parent / ".hdma.abc.tmp",
    ]
    for f in left:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"half-written")
    (left[-1].with_name(".hdma.dir.tmp") / "part-00000.parquet").parent.mkdir()
    other = p.synthetic_dir.parent / ".diamonds.abc.tmp"  # another dataset's: not ours to remove
    other.write_bytes(b"x")
    kept = p.train  # a real output stays
    kept.write_bytes(b"data")
    with run_lock(p, "synthgate ingest hdma", wait_s=0):
        assert not any(f.exists() for f in left) and not left[-1].with_name(".hdma.dir.tmp").exists()
    assert other.exists() and kept.exists()
    assert remove_temp_files(p) == []


def test_cli_refuses_a_concurrent_run(make_workspace, monkeypatch, capsys):
    from pipelines.cli import main

    ws = make_workspace(hdma=small_block(HDMA, "deny"), init=False)
    monkeypatch.chdir(ws)
    holder = _hold(ws, 30)
    try:
        assert main(["ingest", "hdma"]) == 2
        assert "another run of 'hdma' is in progress" in capsys.readouterr().err
        assert not paths_for("hdma", ws).snapshot.exists()
    finally:
        holder.kill()
        holder.wait()
