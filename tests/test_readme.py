"""The README's commands, run as written in a released workspace (issue: "walk the README").

Every `synthgate`/`dvc` command of the README's quick-start block ("Then, from the repo ...") and of
its console examples runs, in order, in a copy of a small-HDMA repository that one `dvc repro` has
released (tests/conftest.py `dvc_released`), and must exit 0. A command the walk does not run must
be listed in SKIPPED with the test that covers it, so a new README command fails here until it is
either run or accounted for. The Airflow block has its own walk (tests/dags/test_airflow_cli.py).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_released, venv_env

pytestmark = pytest.mark.slow

SKIPPED = {
    "synthgate reproduce hdma@1": "re-runs a whole release in a scratch workspace: tests/test_reproduce.py",
    "mlflow ui --backend-store-uri sqlite:///mlflow.db": "a server: tests/test_tracking.py reads the same store",
}
"""README commands the walk leaves out, and where they are tested."""


def _without_comment(line: str) -> str:
    return re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()


def readme_commands() -> list[str]:
    """`make demo`'s command, then every synthgate/dvc/mlflow command of the README's bash block after
    "Then, from the repo" and of its console examples (`$ ...` lines), in README order."""
    text = (REPO / "README.md").read_text()
    demo = re.search(r"^demo:.*\n\t\$\(BIN\)/(.+)$", (REPO / "Makefile").read_text(), re.M)
    assert demo, "the Makefile has no demo recipe"
    commands = [demo.group(1).strip()]
    after = text[text.index("Then, from the repo") :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block, "README: no bash block after 'Then, from the repo'"
    commands += [
        _without_comment(line) for line in block.group(1).splitlines() if re.match(r"(dvc|synthgate|mlflow) ", line)
    ]
    for console in re.findall(r"```console\n(.*?)```", text, re.S):
        commands += [_without_comment(line[2:]) for line in console.splitlines() if line.startswith("$ synthgate ")]
    return commands


def test_every_readme_command_is_walked_or_accounted_for():
    commands = readme_commands()
    assert commands[0] == "synthgate demo" and "dvc repro" in commands and "synthgate summary hdma" in commands
    stale = set(SKIPPED) - set(commands)
    assert not stale, f"SKIPPED names commands the README no longer has: {sorted(stale)}"


def test_the_readme_commands_work_as_written(dvc_released, tmp_path):
    repo = copy_released(dvc_released, tmp_path / "repo")
    ran: list[str] = []
    for command in readme_commands():
        if command in SKIPPED:
            continue
        proc = subprocess.run(
            shlex.split(command), cwd=repo, env=venv_env(), capture_output=True, text=True, timeout=900
        )
        said = proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]
        assert proc.returncode == 0, f"README command `{command}` exited {proc.returncode}:\n{said}"
        ran.append(command)
        out = proc.stdout
        if command == "synthgate demo":
            assert "hdma: release v1 at data/release/hdma/hdma.parquet" in out and "[PASS] quality" in out, out
        elif command == "dvc status":
            assert "Data and pipelines are up to date" in out, out
        elif command.startswith("dvc exp run"):
            assert re.search(r"candidate at data/experiments/[^/]+/hdma/hdma\.parquet", out), out
        elif command == "dvc metrics show":
            assert "gates.quality.value" in out, out
        elif command.startswith("synthgate lineage"):
            assert "integrity: every recorded digest checks out" in out, out
    assert "dvc exp run -S 'datasets.hdma.generate.rows=5000'" in ran and "synthgate releases hdma" in ran
    assert Path(repo / "dvc_plots" / "index.html").is_file()  # `dvc plots show` wrote its page
