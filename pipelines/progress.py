"""Progress of the long steps (fit, sampling shards, gates, reproduce) on stderr.

On a terminal: a transient spinner with the step, its count (a bar when the total is known) and
the elapsed time, drawn by rich and gone when the step ends. Elsewhere (Airflow task logs, `dvc
repro` piped to a file, CI): nothing while the step runs and one log line when it ends. `synthgate
--quiet` or $SYNTHGATE_QUIET=1 turns both off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

QUIET_ENV = "SYNTHGATE_QUIET"
"""Set (to anything but 0/false/no) by `synthgate --quiet`; stage commands and their children inherit it."""

log = logging.getLogger("synthgate")


def quiet() -> bool:
    """Whether progress is off ($SYNTHGATE_QUIET set)."""
    return os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def quieted(on: bool) -> Iterator[None]:
    """$SYNTHGATE_QUIET set while the body runs when `on` (processes it starts inherit it), then
    put back as it was."""
    before = os.environ.get(QUIET_ENV)
    if on:
        os.environ[QUIET_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = before


class Step:
    """A running step: `advance` it as its parts end (`note` names the part now running)."""

    def __init__(self, label: str, total: int | None, update: Callable[[int, str], None] | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._update = update

    def advance(self, n: int = 1, note: str | None = None) -> None:
        """Count `n` more parts done; `note` (e.g. the next gate's name) is shown beside the label."""
        self.done += n
        self.show(note)

    def show(self, note: str | None = None) -> None:
        """Show `note` beside the label (on a terminal) without counting anything."""
        if self._update is not None:
            self._update(self.done, f"{self.label}: {note}" if note else self.label)


def _console() -> Console | None:
    """A console on stderr when stderr is a terminal and progress is on; else None."""
    if quiet() or not sys.stderr.isatty():
        return None
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def step(label: str, total: int | None = None, console: Console | None = None) -> Iterator[Step]:
    """Show `label` while the body runs (see the module doc); `console` replaces the stderr check
    (tests pass one that writes to a buffer).

    Without a terminal, a step that ends logs one line: `<label>: <done>/<total> done in 12.3 s`.
    """
    started = time.perf_counter()
    if console is None:
        console = _console()
    if console is None or quiet():
        current = Step(label, total)
        yield current
        if not quiet():
            count = f" {current.done}/{total}" if total else ""
            log.info("%s:%s done in %.1f s", label, count, time.perf_counter() - started)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        columns += [BarColumn(bar_width=24), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield Step(label, total, lambda done, text: progress.update(task, completed=done, description=text))


class StderrHandler(logging.StreamHandler):
    """A log handler writing to the *current* `sys.stderr`: while a spinner is drawn, rich puts a
    proxy there that prints lines above it; a handler holding the original stream would tear it."""

    @property
    def stream(self):  # type: ignore[override]
        """The current `sys.stderr`."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """Ignored: the handler always writes to the current `sys.stderr`."""
