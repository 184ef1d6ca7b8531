"""Synthgate benchmarks: wall time and peak memory of the pipeline on real tables.

Usage: python benchmarks/run.py [--quick]   (prints a Markdown table; see docs/benchmarks.md)

Scenarios (each in its own process, in a scratch copy of the repo, so figures are cold and
independent):
  demo-repro     `dvc repro release@hdma` from nothing (what `make demo` runs after setup)
  noop-repro     `dvc repro release@hdma` again (nothing changed: must do nothing)
  stages-<ds>    every stage in-process for a dataset, per-stage seconds, peak RSS
  generate-1M    sampling 1,000,000 diamonds rows in 50k-row shards (bounded memory)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import copy_repo, git_init  # noqa: E402  (the same scratch copy the e2e tests use)


def _scratch(root: Path) -> Path:
    dest = copy_repo(root / "repo")
    (dest / "dvc.lock").unlink(missing_ok=True)
    git_init(dest)
    return dest


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SYNTHGATE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def _timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


_CHILD = r"""
import json, resource, sys, time
from pipelines.config import apply_overrides, load_params
from pipelines.paths import paths_for
from pipelines.cli import _quiet_libraries
import importlib
_quiet_libraries()
name, stages, overrides = sys.argv[1], sys.argv[2].split(","), json.loads(sys.argv[3])
cfg = apply_overrides(load_params("params.yaml"), name, overrides)
times = {}
for stage in stages:
    t = time.perf_counter()
    importlib.import_module(f"pipelines.{stage}").run(cfg, paths_for(name))
    times[stage] = round(time.perf_counter() - t, 2)
print(json.dumps({"times": times, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def _stages(repo: Path, name: str, stages: list[str], overrides: dict) -> dict:
    subprocess.run(
        [sys.executable, "-m", "pipelines", "expectations", "init", name],
        cwd=repo,
        env=_env(),
        check=True,
        capture_output=True,
    )
    _, out = _timed([sys.executable, "-c", _CHILD, name, ",".join(stages), json.dumps(overrides)], repo)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Run the scenarios and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 1M-row generate scenario")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = _scratch(Path(tmp))
        t, _ = _timed(["dvc", "repro", "release@hdma"], repo)
        rows.append(("demo-repro", "hdma 2,381 rows -> 2,000 synthetic", f"{t:.1f}", "-"))
        t, out = _timed(["dvc", "repro", "release@hdma"], repo)
        assert "Running stage" not in out, out
        rows.append(("noop-repro", "hdma, nothing changed", f"{t:.1f}", "-"))
        all_stages = ["ingest", "fit", "generate", "blend", "validate", "release"]
        for name, overrides in (("hdma", {}), ("diamonds", {"generate": {"rows": 53940}})):
            r = _stages(repo, name, all_stages, overrides)
            detail = ", ".join(f"{k} {v}" for k, v in r["times"].items())
            rows.append((f"stages-{name}", detail, f"{sum(r['times'].values()):.1f}", str(r["peak_rss_mb"])))
        if not args.quick:
            r = _stages(repo, "diamonds", ["generate"], {"generate": {"rows": 1_000_000, "shard_rows": 50_000}})
            rows.append(
                (
                    "generate-1M",
                    "diamonds, 20 shards of 50k rows",
                    f"{r['times']['generate']:.1f}",
                    str(r["peak_rss_mb"]),
                )
            )
    print("| scenario | what | wall s | peak RSS MB |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
