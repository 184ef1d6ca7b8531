"""Locked environments for engines whose dependencies conflict with the platform's virtualenv.

Each one is a virtualenv under `.engines/<name>/` (or `$SYNTHGATE_ENGINES_DIR/<name>/`) built from
`engines/envs/<name>/requirements.lock` with `pip install --no-deps`: exactly the locked versions,
nothing resolved. `pip check` must be clean except for the requirements the lock's `# omitted:`
line names. A stamp holding the lock's sha256 marks a finished build; a changed lock rebuilds.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import EngineError
from pipelines.io import sha256_file

log = logging.getLogger("synthgate.engines")

CODE_ROOT = Path(__file__).resolve().parents[2]
"""The checkout holding `pipelines/` and `engines/envs/` (not the data workspace)."""

STAMP = ".synthgate-built"
BUILD_WAIT_S = 1800.0
"""How long a second process waits for another one's build of the same environment."""


def envs_dir() -> Path:
    """Where the environments are built: $SYNTHGATE_ENGINES_DIR, else `.engines/` in the checkout."""
    return Path(os.environ.get("SYNTHGATE_ENGINES_DIR") or CODE_ROOT / ".engines").resolve()


@dataclass(frozen=True)
class EngineEnv:
    """One engine's own locked environment (`name` is its folder under `engines/envs/`)."""

    name: str

    @property
    def lock(self) -> Path:
        return CODE_ROOT / "engines" / "envs" / self.name / "requirements.lock"

    @property
    def root(self) -> Path:
        return envs_dir() / self.name

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def lock_sha256(self) -> str:
        """The digest of the lock file the environment is (to be) built from."""
        return sha256_file(self.lock)

    def built(self) -> bool:
        """True when a build of the current lock finished here."""
        stamp = self.root / STAMP
        return stamp.is_file() and stamp.read_text().strip() == self.lock_sha256() and self.python.exists()

    def omitted(self) -> frozenset[str]:
        """Requirements left out on purpose (the lock's `# omitted: a b c` line)."""
        for line in self.lock.read_text().splitlines():
            if line.startswith("# omitted:"):
                return frozenset(n.lower() for n in line.removeprefix("# omitted:").split())
        return frozenset()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (`synthgate engines`, the model's manifest)."""
        return {
            "name": self.name,
            "lock": str(self.lock.relative_to(CODE_ROOT)),
            "lock_sha256": self.lock_sha256(),
            "path": str(self.root),
            "built": self.built(),
        }

    def ensure(self, engine: str) -> Path:
        """The environment's python, building the environment first when it is missing or stale."""
        if not self.built():
            log.warning(
                "engine %s: building its environment %s from %s (first use; about 2 minutes and 1.7 GB "
                "for tabular_argn; `make setup-engines` builds it ahead)",
                engine,
                self.root,
                self.lock.relative_to(CODE_ROOT),
            )
            self.build(engine)
        return self.python

    def build(self, engine: str, force: bool = False) -> float:
        """Build (or rebuild) the environment; return the seconds it took (0 when already built)."""
        from pipelines.locks import file_lock

        busy = f"another process is building the environment of {engine}; wait for it"
        with file_lock(self.root.parent / f"{self.name}.build-lock", busy, wait_s=BUILD_WAIT_S):
            if self.built() and not force:  # built by the process we waited for
                return 0.0
            started = time.perf_counter()
            shutil.rmtree(self.root, ignore_errors=True)
            self._run(engine, [sys.executable, "-m", "venv", str(self.root)])
            pip = [str(self.python), "-m", "pip", "--disable-pip-version-check"]
            self._run(engine, [*pip, "install", "-q", "--no-deps", "--only-binary", ":all:", "-r", str(self.lock)])
            check = subprocess.run([*pip, "check"], capture_output=True, text=True)
            problems = pip_check_problems(check.stdout, self.omitted())
            if problems:
                raise EngineError(engine, str(self.root), "pip check", "\n".join(problems), hint=self._hint())
            (self.root / STAMP).write_text(self.lock_sha256() + "\n")
            seconds = time.perf_counter() - started
            log.info("engine %s: environment %s built in %.0f s", engine, self.root, seconds)
            return seconds

    def _run(self, engine: str, cmd: list[str]) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            detail = tail(done.stdout + done.stderr)
            raise EngineError(engine, str(self.root), "building the environment", detail, hint=self._hint())

    def _hint(self) -> str:
        return f"Fix {self.lock.relative_to(CODE_ROOT)}, then run `make setup-engines`."


def pip_check_problems(output: str, omitted: frozenset[str]) -> list[str]:
    """`pip check`'s complaints, less "X requires Y, which is not installed." for Y in `omitted`."""
    problems = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith("No broken requirements"):
            continue
        if line.endswith(", which is not installed.") and " requires " in line:
            missing = line.split(" requires ", 1)[1].removesuffix(", which is not installed.")
            if missing.strip().lower() in omitted:
                continue
        problems.append(line)
    return problems


def tail(text: str, lines: int = 30) -> str:
    """The last lines of a process's output (the error is almost always there)."""
    kept = [line for line in text.strip().splitlines() if not line.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])
