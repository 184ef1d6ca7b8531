"""Exclusive file locks (fcntl): one run and one release writer per dataset, one DVC recording per repository."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import SynthgateError

if TYPE_CHECKING:
    from pipelines.paths import DatasetPaths


@contextlib.contextmanager
def file_lock(path: Path, busy: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block.

    With `wait_s` 0 a held lock fails at once; otherwise it is retried every second for up to
    `wait_s` seconds. Either way the error is a SynthgateError with `busy` (what to do) in it.
    The kernel releases the lock when the holder dies, so a killed run never leaves it held.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with open(path, "w") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SynthgateError(f"{path}: {busy}") from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_HELD: set[Path] = set()
"""Run locks this process holds: a nested request (a `synthgate run` calling each stage) is a no-op."""

WAIT_ENV = "SYNTHGATE_LOCK_WAIT_S"
"""Seconds a run waits for another run of the same dataset (default 0: refuse at once)."""


@contextlib.contextmanager
def run_lock(paths: DatasetPaths, what: str, wait_s: float | None = None) -> Iterator[None]:
    """One run of a dataset at a time, whatever the runner; the holder (pid, what, since) is named.

    Held, the dataset's leftover temp files (of a write killed mid-way) are removed: no other
    run can be writing them.
    """
    import os
    import sys
    from datetime import UTC, datetime

    path = paths.run_lock.resolve()
    if path in _HELD:
        yield
        return
    wait = float(os.environ.get(WAIT_ENV, "0")) if wait_s is None else wait_s
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise SynthgateError(
                        f"{paths.rel(path)}: another run of '{paths.name}' is in progress ({holder}); "
                        f"wait for it to end (or set {WAIT_ENV}=<seconds> to wait), then run again"
                    ) from None
                if not told:
                    print(
                        f"waiting up to {wait:.0f} s for the run of '{paths.name}' in progress ({holder})",
                        file=sys.stderr,
                    )
                    told = True
                time.sleep(1.0)
        f.seek(0)
        f.truncate()
        since = datetime.now(UTC).isoformat(timespec="seconds")
        f.write(f"pid {os.getpid()}, {what}, since {since}\n")
        f.flush()
        _HELD.add(path)
        try:
            remove_temp_files(paths)
            yield
        finally:
            _HELD.discard(path)
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_temp_files(paths: DatasetPaths) -> list[Path]:
    """Remove the dataset's leftover `.*.tmp` files and folders (a killed atomic write); return them."""
    import shutil

    found = [t for d in paths.output_dirs() if d.is_dir() for t in d.glob(".*.tmp")]
    found += list(paths.synthetic_dir.parent.glob(f".{paths.name}.*.tmp"))
    for tmp in found:
        shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink(missing_ok=True)
    return found
