"""Progress on a terminal, one line per step elsewhere, nothing with --quiet."""

from __future__ import annotations

import io
import logging
import os
import sys

from rich.console import Console

from pipelines import progress


def _steps(console: Console | None = None) -> None:
    with progress.step("generate hdma: 400 rows", total=3, console=console) as step:
        for shard in range(3):
            step.advance(note=f"shard {shard}")
    with progress.step("fit hdma: gaussian_copula on 320 rows", console=console):
        pass


def test_without_a_terminal_each_step_logs_one_line(capsys, caplog):
    assert not sys.stderr.isatty()  # pytest captures it
    with caplog.at_level(logging.INFO, logger="synthgate"):
        _steps()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # no spinner, no escape codes
    lines = [r.getMessage() for r in caplog.records if r.name == "synthgate"]
    assert len(lines) == 2
    assert lines[0].startswith("generate hdma: 400 rows: 3/3 done in ") and lines[0].endswith(" s")
    assert lines[1].startswith("fit hdma: gaussian_copula on 320 rows: done in ")


def test_quiet_shows_and_logs_nothing(capsys, caplog):
    buffer = io.StringIO()
    with progress.quieted(True), caplog.at_level(logging.INFO, logger="synthgate"):
        assert os.environ[progress.QUIET_ENV] == "1" and progress.quiet()
        _steps(Console(file=buffer, force_terminal=True))
    assert progress.QUIET_ENV not in os.environ  # put back as it was
    assert buffer.getvalue() == "" and capsys.readouterr().err == ""
    assert not [r for r in caplog.records if r.name == "synthgate"]


def test_a_terminal_gets_a_spinner_with_the_count(caplog):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with caplog.at_level(logging.INFO, logger="synthgate"):
        with progress.step("validate hdma: gates", total=4, console=console) as step:
            step.show("quality")
            step.advance(2, note="utility")
            step.advance(2, note="GX release suite")
    drawn = buffer.getvalue()
    assert "\x1b[" in drawn and "validate hdma: gates" in drawn and "0/4" in drawn  # drawn at once
    assert "validate hdma: gates: GX release suite" in drawn and "4/4" in drawn  # the last frame
    assert drawn.endswith("\x1b[2K")  # then erased: the spinner leaves nothing behind
    assert not [r for r in caplog.records if r.name == "synthgate"]  # the terminal showed it: no log line


def test_log_lines_go_to_the_current_stderr(monkeypatch):
    """While a spinner is drawn, rich swaps sys.stderr for a proxy: the handler must follow it."""
    handler = progress.StderrHandler()
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    handler.emit(logging.LogRecord("synthgate", logging.INFO, __file__, 1, "fit hdma: done", None, None))
    assert swapped.getvalue() == "fit hdma: done\n"


def test_the_cli_takes_quiet():
    from pipelines.cli import build_parser

    assert build_parser().parse_args(["--quiet", "datasets"]).quiet
    assert build_parser().parse_args(["-q", "datasets"]).quiet
