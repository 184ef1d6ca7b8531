"""Exclusive file locks (fcntl): one writer per dataset, one DVC recording per repository."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import SynthgateError


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
