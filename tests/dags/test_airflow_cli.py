"""The README's Airflow CLI block, run as written in a terminal set up the way the README says.

`eval "$(scripts/airflow-local.sh env)"` then the `airflow dags ...` commands of the README's
"Triggering with overrides" block: each must exit 0 (a queued run; no scheduler runs here), and
a conf that breaks a section's schema must be refused by `airflow dags trigger` itself.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _readme_block(heading: str) -> list[str]:
    """The commands of the first ```bash block after `heading` in the README."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block, f"no bash block after {heading!r} in README.md"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _shell(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNTHGATE_ROOT"))}
    env["AIRFLOW_HOME"] = str(home)
    full = f'set -e\ncd {REPO}\neval "$(scripts/airflow-local.sh env)"\ncd {home}\n{script}'
    return subprocess.run(["bash", "-c", full], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """An AIRFLOW_HOME with a migrated database and the DAGs serialized (what the scheduler does)."""
    home = tmp_path_factory.mktemp("airflow-cli")
    out = _shell("airflow db migrate >/dev/null\nairflow dags reserialize >/dev/null", home)
    assert out.returncode == 0, out.stderr[-3000:]
    return home


def test_env_line_points_the_cli_at_the_local_airflow(home):
    script = "airflow config get-value core dags_folder\nairflow config get-value database sql_alchemy_conn\n"
    out = _shell(script + "airflow dags list -o plain", home)
    assert out.returncode == 0, out.stderr[-3000:]
    dags_folder, database = out.stdout.splitlines()[:2]
    assert dags_folder == str(REPO / "dags") and database == f"sqlite:///{home / 'airflow.db'}"
    assert "synth_hdma" in out.stdout


def test_readme_trigger_commands_work_as_written(home):
    commands = [c for c in _readme_block("### Triggering with overrides") if c.startswith("airflow ")]
    assert len(commands) >= 3, commands
    for command in commands:
        out = _shell(command, home)
        assert out.returncode == 0, f"README command failed: {command}\n{out.stderr[-3000:]}"


def test_bad_conf_is_refused_by_the_trigger_command(home):
    out = _shell("""airflow dags trigger synth_hdma --conf '{"generate": {"rows": -5}}'""", home)
    assert out.returncode != 0
    assert "Invalid input for param generate: -5 is less than the minimum of 1" in out.stderr
    out = _shell("""airflow dags trigger synth_hdma --conf '{"gates": {"quality_mni": 0.5}}'""", home)
    assert out.returncode != 0 and "'quality_mni' was unexpected" in out.stderr
