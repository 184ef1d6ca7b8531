"""A disk that fills up for real and a tracking server that goes away, during a run and inside the
publish step: a typed error (exit 5 / 6), nothing published without its records, the last good
release intact, and the next run (or `synthgate recover`) completes what was cut short."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.paths import paths_for
from tests.faults.conftest import slice_workspace
from tests.faults.harness import Zygote, alive, tail, tree, version, wait_for_line, whole_release_problems


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A real, small filesystem (tmpfs) mounted at `path`; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs and mounting one needs root; tests/test_cli.py injects ENOSPC")
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if out.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}); tests/test_cli.py injects ENOSPC instead")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_bytes(fs: Path) -> int:
    """Bytes free on the filesystem of `fs`."""
    st = os.statvfs(fs)
    return st.f_bavail * st.f_frsize


def fill(fs: Path, leave: int) -> Path:
    """Write zeros to a file on `fs` until the disk is really full, then give `leave` bytes back."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 20, 1 << 12):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
        with pytest.raises(OSError) as err:
            os.write(fd, b"\0" * 4096)
        assert err.value.errno == errno.ENOSPC
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def _cmd(zygote: Zygote, ws: Path, logs: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    code = zygote.run(list(argv), ws, logs / argv[0], env)
    return code, tail(logs / argv[0], 4000)


@pytest.mark.slow
def test_a_full_disk_during_a_run_and_inside_publish_is_exit_5_and_publishes_nothing_unrecorded(
    tmp_path, zygote, tmp_path_factory
):
    logs = tmp_path_factory.mktemp("disk-full-logs")
    with tmpfs(tmp_path / "fs", 48) as fs:
        ws = slice_workspace(fs / "ws")
        p = paths_for("hdma", ws)
        assert _cmd(zygote, ws, logs, "run", "hdma")[0] == 0  # v1 (and the MLflow store created)
        start = free_bytes(fs)
        assert _cmd(zygote, ws, logs, "run", "hdma")[0] == 0  # v2, measuring what a run writes
        run_uses = start - free_bytes(fs)
        good = tree(p.release_dir)

        filler = fill(fs, leave=run_uses // 3)  # a third of what a run writes: it fails mid-way
        code, out = _cmd(zygote, ws, logs, "run", "hdma")
        assert code == 5 and "out of disk space" in out, out
        assert tree(p.release_dir) == good and not p.publish_journal.exists()
        filler.unlink()
        assert _cmd(zygote, ws, logs, "run", "hdma")[0] == 0  # the next run completes (v3)

        start = free_bytes(fs)
        assert _cmd(zygote, ws, logs, "release", "hdma")[0] == 0  # v4, measuring what a release writes
        release_uses = start - free_bytes(fs)
        good = tree(p.release_dir)
        filler = fill(fs, leave=release_uses // 3)
        code, out = _cmd(zygote, ws, logs, "release", "hdma")
        assert code == 5 and "out of disk space" in out, out
        after = tree(p.release_dir)
        assert after == good or not whole_release_problems(p, good, 5), "the release folder is neither v4 nor v5 whole"
        assert not list(p.release_dir.parent.glob(".hdma.*")), "a swap folder was left behind"
        filler.unlink()

        code, out = _cmd(zygote, ws, logs, "recover", "hdma")
        assert code == 0, out
        assert _cmd(zygote, ws, logs, "release", "hdma")[0] == 0
        for v in range(1, version(p) + 1):
            code, out = _cmd(zygote, ws, logs, "lineage", f"hdma@{v}")
            assert code == 0, out


class MlflowServer:
    """A real `mlflow server` (SQLite store) on a free local port."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        """Start it and wait until /health answers."""
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}", "--workers", "1"]
        cmd += ["--artifacts-destination", str(self.folder / "artifacts")]
        with open(self.folder / "server.log", "ab") as log:  # the server keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=self.folder, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            assert self.proc.poll() is None, (self.folder / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        pytest.fail("mlflow server did not start")

    def stop(self) -> None:
        """Stop it (its whole process group) and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


class Outage:
    """A TCP relay in front of the server, for outages without restarting it (a start costs 10-30 s):
    `cut()` resets every open connection and refuses new ones, as a stopped server does; `restore()`
    listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """End the outage: accept connections again."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Start the outage: refuse new connections, reset the open ones."""
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()  # linger 0: the peer gets a reset, as from a killed server

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.slow
def test_a_tracking_server_that_stops_during_a_run_or_inside_publish_is_exit_6(tmp_path, zygote, tmp_path_factory):
    logs = tmp_path_factory.mktemp("outage-logs")
    ws = slice_workspace(tmp_path / "ws")
    p = paths_for("hdma", ws)
    server = MlflowServer(tmp_path / "server")
    server.start()
    link = Outage(server.port)  # the clients talk to the server through it
    env = {"MLFLOW_TRACKING_URI": link.uri}
    try:
        assert _cmd(zygote, ws, logs, "run", "hdma", env=env)[0] == 0
        v1 = tree(p.release_dir)

        # during the run: the server goes away while validate computes its gates
        pid = zygote.start(["run", "hdma"], ws, logs / "run-outage", env)
        assert wait_for_line(logs / "run-outage", "validate hdma: started", pid), tail(logs / "run-outage")
        link.cut()
        stopped = time.monotonic()
        code = zygote.wait(pid)
        out = tail(logs / "run-outage")
        assert code == 6 and "tracking" in out, out
        assert time.monotonic() - stopped < 60, "minutes of client retries before failing"
        assert tree(p.release_dir) == v1 and not p.publish_journal.exists()

        # inside publish, before the swap: nothing published
        link.restore()
        assert _cmd(zygote, ws, logs, "validate", "hdma", env=env)[0] == 0
        for point, published in (("publish", False), ("records", True)):
            paused = {**env, "SYNTHGATE_PAUSE_AT": point, "SYNTHGATE_PAUSE_S": "3"}
            before, v0 = tree(p.release_dir), version(p)
            pid = zygote.start(["release", "hdma"], ws, logs / f"release-{point}", paused)
            assert wait_for_line(logs / f"release-{point}", f"paused at {point}", pid)
            link.cut()
            code = zygote.wait(pid)
            out = tail(logs / f"release-{point}")
            assert code == 6 and "tracking" in out, out
            if published:  # after the swap: the new version is whole; its records wait for recover
                assert not whole_release_problems(p, before, v0 + 1) and p.publish_journal.is_file()
            else:
                assert tree(p.release_dir) == before and not p.publish_journal.exists()
            link.restore()
            code, out = _cmd(zygote, ws, logs, "recover", "hdma", env=env)
            assert code == 0, out
            if published:
                assert f"completed the records of 'hdma' v{v0 + 1}" in out, out
            else:
                assert _cmd(zygote, ws, logs, "release", "hdma", env=env)[0] == 0
            assert not p.publish_journal.exists() and not alive(pid)
        for v in range(1, version(p) + 1):
            code, out = _cmd(zygote, ws, logs, "lineage", f"hdma@{v}", env=env)
            assert code == 0, out
    finally:
        link.cut()
        server.stop()
