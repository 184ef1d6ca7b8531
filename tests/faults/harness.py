"""The random-kill harness: SIGKILL a `synthgate` command at a uniformly random point, then check
what is on disk and that the next run (or `synthgate recover`) repairs it.

A trial of stage S, in a workspace whose pipeline completed (release v0 in place):
1. run `synthgate S <ds>` in a forked child (tests/faults/zygote.py) and kill its process group
   after a delay drawn uniformly from [0, D], D the measured duration of S; for `publish` the
   clock starts when the release marks the start of its publish step, or the kill lands exactly
   at a pause point (before the swap, between its two renames, after it);
2. the release folder must be v0 byte for byte, or (release only) v0 + 1 whole: every file with
   its manifest's sha256, the versioned manifest copy equal to the manifest, nothing else;
   `synthgate lineage <ds>@v0` must exit 0;
3. repair: `synthgate recover <ds>` or straight the next run, then the stages S..release; every
   command exits 0, nothing is left (journal, `.old`/`.new-` folders, temp files) and
   `synthgate lineage` exits 0 on every version published since v0.

Draws come from `random.Random(f"{seed}:{stage}")`: a failure message names the seed, the trial,
the drawn fraction and the delay, so `SYNTHGATE_FAULT_SEED=<seed>` replays the same draws.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import STAGES, tableset
from pipelines.io import sha256_file
from pipelines.paths import DatasetPaths

PUBLISH_POINTS = ("swap", "renames", "records")
"""Pause points of the publish step (pipelines/release.py `hook`) a publish trial may kill at."""


class Zygote:
    """Client of tests/faults/zygote.py: forks pre-imported `synthgate` commands."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.zygote"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._ask(None)  # {"ready": true} once the imports are done

    def _ask(self, req: dict[str, Any] | None) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if req is not None:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote died (exit {self.proc.wait()})")
        return json.loads(line)

    def start(self, argv: list[str], cwd: Path, logs: Path, env: dict[str, str] | None = None) -> int:
        """Fork `synthgate <argv>` in `cwd`; its stdout/stderr go to `logs`.out/.err; return its pid."""
        req = {"op": "run", "argv": argv, "cwd": str(cwd), "env": env or {}}
        req |= {"out": f"{logs}.out", "err": f"{logs}.err"}
        return int(self._ask(req)["pid"])

    def wait(self, pid: int) -> int:
        """The exit code of a child (negative: killed by that signal)."""
        return int(self._ask({"op": "wait", "pid": pid})["code"])

    def run(self, argv: list[str], cwd: Path, logs: Path, env: dict[str, str] | None = None) -> int:
        """Run a command to its end; return its exit code."""
        return self.wait(self.start(argv, cwd, logs, env))

    def close(self) -> None:
        """Stop the zygote (its stdin closes, its loop ends)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tail(logs: Path, n: int = 1500) -> str:
    """The last `n` characters of a command's stderr and stdout."""
    out = []
    for ext in ("err", "out"):
        f = Path(f"{logs}.{ext}")
        if f.is_file():
            out.append(f.read_text(errors="replace")[-n:])
    return "\n".join(out)


def wait_for_line(logs: Path, marker: str, pid: int, timeout: float = 300) -> bool:
    """Poll the command's stderr (every 2 ms) until it prints `marker`; False if it exits first."""
    err = Path(f"{logs}.err")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if err.is_file() and marker in err.read_text(errors="replace"):
            return True
        if not alive(pid):
            return err.is_file() and marker in err.read_text(errors="replace")
        time.sleep(0.002)
    return False


def alive(pid: int) -> bool:
    """Whether a child still runs (a zombie, not yet reaped, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def tree(path: Path) -> dict[str, str]:
    """sha256 of every file under `path`, by relative path."""
    if not path.is_dir():
        return {}
    return {str(f.relative_to(path)): sha256_file(f) for f in sorted(path.rglob("*")) if f.is_file()}


def whole_release_problems(paths: DatasetPaths, before: dict[str, str], version: int) -> list[str]:
    """What is wrong with the release folder as version `version` (empty: complete and verifiable)."""
    if not paths.manifest.is_file():
        return [f"{paths.rel(paths.manifest)} missing"]
    manifest = json.loads(paths.manifest.read_text())
    problems = []
    if manifest.get("version") != version:
        problems.append(f"manifest says v{manifest.get('version')}, expected v{version}")
    listed = {"manifest.json"}
    for entry in manifest.get("files", []):
        f = paths.root / entry["path"]
        listed.add(str(f.relative_to(paths.release_dir)))
        if not f.exists() or tableset.digest(f) != entry["sha256"]:
            problems.append(f"{entry['path']}: missing or not the manifest's sha256")
    copy = paths.manifests_dir / f"v{version:04d}.json"
    if not copy.is_file() or copy.read_bytes() != paths.manifest.read_bytes():
        problems.append(f"{paths.rel(copy)} missing or differs from manifest.json")
    now = tree(paths.release_dir)
    for key, digest in before.items():
        if key.startswith("manifests/") and now.get(key) != digest:
            problems.append(f"earlier manifest {key} changed or lost")
    extra = sorted(k for k in now if k not in listed and not k.startswith("manifests/"))
    if extra:
        problems.append(f"unexpected files in the release folder: {extra}")
    return problems


def leftovers(paths: DatasetPaths) -> list[str]:
    """What a completed run must not leave: a publish journal, swap folders, temp files."""
    found = [paths.publish_journal] if paths.publish_journal.exists() else []
    found += list(paths.release_dir.parent.glob(f".{paths.name}.*"))
    found += [t for d in paths.output_dirs() if d.is_dir() for t in d.glob(".*.tmp")]
    found += list(paths.synthetic_dir.parent.glob(f".{paths.name}.*.tmp"))
    return [paths.rel(p) for p in found]


def version(paths: DatasetPaths) -> int:
    """The version in place (0: none)."""
    return json.loads(paths.manifest.read_text())["version"] if paths.manifest.is_file() else 0


@dataclass
class Bench:
    """A workspace whose pipeline completed, the zygote, and each stage's measured duration."""

    ws: Path
    dataset: str
    zygote: Zygote
    logs: Path
    seed: int
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def paths(self) -> DatasetPaths:
        from pipelines.paths import paths_for

        return paths_for(self.dataset, self.ws)

    def cmd(self, *argv: str, env: dict[str, str] | None = None, name: str = "cmd") -> tuple[int, Path]:
        """Run `synthgate <argv>` to its end; (exit code, its log stem)."""
        logs = self.logs / name
        return self.zygote.run([*argv], self.ws, logs, env), logs

    def stages_from(self, stage: str) -> list[str]:
        """The stages from `stage` (publish: release) to release."""
        first = "release" if stage == "publish" else stage
        return list(STAGES[STAGES.index(first) :])

    def run_pipeline(self, stages: list[str], env: dict[str, str] | None = None) -> str | None:
        """Run stages one by one (each its own command, as DVC does); the first failure, or None."""
        for stage in stages:
            code, logs = self.cmd(stage, self.dataset, env=env, name=f"repair-{stage}")
            if code != 0:
                return f"`synthgate {stage}` exited {code}:\n{tail(logs)}"
        return None

    def measure(self) -> None:
        """Run the pipeline, measuring each stage (a whole command, fork to exit) and the publish step
        (its start marker to exit)."""
        for stage in STAGES:
            logs = self.logs / f"measure-{stage}"
            env = {"SYNTHGATE_PAUSE_AT": "publish", "SYNTHGATE_PAUSE_S": "0"} if stage == "release" else None
            started = time.monotonic()
            pid = self.zygote.start([stage, self.dataset], self.ws, logs, env)
            if stage == "release":
                assert wait_for_line(logs, "paused at publish", pid), tail(logs)
                marked = time.monotonic()
            code = self.zygote.wait(pid)
            assert code == 0, f"{stage} exited {code}:\n{tail(logs)}"
            self.durations[stage] = time.monotonic() - started
            if stage == "release":
                self.durations["publish"] = time.monotonic() - marked

    def lineage_problems(self, versions: list[int]) -> list[str]:
        """`synthgate lineage <ds>@<v>` for each version; what did not exit 0."""
        out = []
        for v in versions:
            code, logs = self.cmd("lineage", f"{self.dataset}@{v}", name=f"lineage-v{v}")
            if code != 0:
                out.append(f"`synthgate lineage {self.dataset}@{v}` exited {code}:\n{tail(logs, 3000)}")
        return out

    def trial(self, stage: str, i: int, rng: random.Random) -> tuple[str, str | None]:
        """One kill of `stage` and its repair: (what was done, the failure or None)."""
        p = self.paths
        before, v0 = tree(p.release_dir), version(p)
        logs = self.logs / f"{stage}-{i}"
        u = rng.random()
        point = rng.choice(("delay", *PUBLISH_POINTS)) if stage == "publish" else "delay"
        repair = rng.choice(("recover", "next run"))
        delay = u * self.durations[stage] if point == "delay" else 0.0
        what = f"seed {self.seed} trial {i}: kill {stage} " + (
            f"at {delay:.3f} s (u={u:.4f} of {self.durations[stage]:.3f} s)" if point == "delay" else f"at {point}"
        )
        env = None
        if stage == "publish":
            marker = "publish" if point == "delay" else point
            env = {"SYNTHGATE_PAUSE_AT": marker, "SYNTHGATE_PAUSE_S": "0" if point == "delay" else "3600"}
        pid = self.zygote.start(["release" if stage == "publish" else stage, self.dataset], self.ws, logs, env)
        if stage == "publish" and not wait_for_line(logs, f"paused at {env['SYNTHGATE_PAUSE_AT']}", pid):
            code = self.zygote.wait(pid)
            return what, f"{what}: release never reached its publish step (exit {code}):\n{tail(logs)}"
        time.sleep(delay)
        finished = not alive(pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.zygote.wait(pid)
        what += " (it had already finished)" if finished else ""
        if finished and code != 0:
            return what, f"{what}: it exited {code} on its own:\n{tail(logs)}"
        problems = self.check_after_kill(stage, before, v0)
        problems += self.lineage_problems([v0])
        if problems:
            return what, f"{what}: after the kill:\n" + "\n".join(problems)
        what += f"; repaired by {repair}"
        if repair == "recover":
            code, rlogs = self.cmd("recover", self.dataset, name="recover")
            if code != 0:
                return what, f"{what}: `synthgate recover` exited {code}:\n{tail(rlogs)}"
        failed = self.run_pipeline(self.stages_from(stage))
        if failed:
            return what, f"{what}: {failed}"
        v1 = version(p)
        problems = whole_release_problems(p, before, v1)
        if not v0 < v1 <= v0 + 2:
            problems.append(f"v{v1} in place after the repair, v{v0} before")
        problems += [f"left behind: {x}" for x in leftovers(p)]
        problems += self.lineage_problems(list(range(v0 + 1, v1 + 1)))
        return what, (f"{what}: after the repair:\n" + "\n".join(problems)) if problems else None

    def check_after_kill(self, stage: str, before: dict[str, str], v0: int) -> list[str]:
        """The release folder right after a kill: v0 byte for byte, or (release only) v0 + 1 whole."""
        p = self.paths
        now = tree(p.release_dir)
        if now == before:
            return []
        if stage not in ("release", "publish"):
            return [f"a kill in {stage} changed the release folder"]
        return whole_release_problems(p, before, v0 + 1)

    def trials(self, stage: str, n: int) -> dict[str, Any]:
        """`n` trials of `stage`; after a failed one the pipeline is re-run whole to go on."""
        rng = random.Random(f"{self.seed}:{stage}")
        started = time.monotonic()
        failures, done = [], []
        for i in range(n):
            what, failure = self.trial(stage, i, rng)
            done.append(what)
            if failure:
                failures.append(failure)
                broken = self.run_pipeline(list(STAGES))
                if broken:
                    failures.append(f"the workspace stayed broken after trial {i}: {broken}")
                    break
        return {
            "stage": stage,
            "trials": len(done),
            "finished_before_kill": sum("already finished" in w for w in done),
            "failures": failures,
            "seconds": time.monotonic() - started,
            "duration_s": self.durations[stage],
        }
