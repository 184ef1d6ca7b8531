"""Sampling in a process pool: `generate.workers` 1 vs more on the diamonds GaussianCopula model.

Usage: python benchmarks/generate_workers.py [--rows 1000000] [--shard-rows 50000] [--workers 1,2]

In a scratch copy of the repo: ingest and fit diamonds once, then the generate stage, phase by
phase as `generate.run` runs them, in a fresh process per worker count. Prints a Markdown table:
- sampling s: `generate.sample_shards` (every shard sampled and written, the pool started and
  stopped; the model already loaded), its speedup over the first count, and its CPU seconds (the
  stage's process and its workers: what the pool adds, and, over the wall time, how many cores
  the run really got on a shared machine);
- stage s: the whole stage (plus loading the model, which imports sdv and checks MLflow, and the
  record and MLflow run);
- peak memory of the stage's process and its workers together, polled every 0.1 s: RSS summed
  (pages a forked worker shares with the parent count twice) and PSS summed (shared pages split).
Every count must write the same shards (their sha256s are compared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import copy_repo, git_init, venv_env  # noqa: E402  (the scratch copy the e2e tests use)

_CHILD = r"""
import json, resource, sys, time
from pipelines import generate
from pipelines.cli import _quiet_libraries, run_stage
from pipelines.config import apply_overrides, load_params
from pipelines.paths import paths_for
_quiet_libraries()
name, stages, overrides = sys.argv[1], sys.argv[2].split(","), json.loads(sys.argv[3])
cfg = apply_overrides(load_params("params.yaml"), name, overrides)
if stages != ["generate"]:
    for stage in stages:
        run_stage(stage, cfg)
    print(json.dumps({}))
    sys.exit(0)
paths = paths_for(name)  # generate.run, phase by phase
started = time.perf_counter()
context = generate.load_context(cfg, paths)
shards = generate.shards_for(cfg, paths)
workers = generate.worker_count(cfg, len(shards))
def cpu():  # this process and its ended workers (the pool joins them)
    own, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
sampling, cpu_before = time.perf_counter(), cpu()
results = generate.sample_shards(cfg, paths, shards, context, workers)
sampled, cpu_sampling = time.perf_counter(), cpu() - cpu_before
record = generate.finalize(cfg, paths, results, workers)
print(json.dumps({
    "sampling": sampled - sampling, "cpu": cpu_sampling, "stage": time.perf_counter() - started,
    "workers": record["workers"],
    "shards": [s["sha256"] for s in record["shards"]],
}))
"""


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """RSS and PSS, in bytes, of a process and its descendants (0 for any that just ended)."""
    rss = pss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss, pss = rss + info.rss, pss + info.pss
    return rss, pss


def _stages(repo: Path, stages: str, overrides: dict) -> dict:
    """Run stages of diamonds in a fresh process; its result and peak tree memory (MB)."""
    cmd = [sys.executable, "-c", _CHILD, "diamonds", stages, json.dumps(overrides)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=repo, env=venv_env(), stdout=out, stderr=log, text=True)
        watched, peak_rss, peak_pss = psutil.Process(proc.pid), 0, 0
        while proc.poll() is None:
            rss, pss = _tree_memory(watched)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.1)
        if proc.returncode:
            log.seek(0)
            raise SystemExit(f"{stages} failed ({proc.returncode}):\n{log.read()[-3000:]}")
        out.seek(0)
        result = json.loads(out.read().strip().splitlines()[-1])
    return {**result, "rss_mb": peak_rss / 2**20, "pss_mb": peak_pss / 2**20}


def main() -> None:
    """Fit once, generate once per worker count, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shard-rows", type=int, default=50_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        git_init(repo)
        subprocess.run(
            [sys.executable, "-m", "pipelines", "expectations", "init", "diamonds"],
            cwd=repo, env=venv_env(), check=True, capture_output=True,
        )  # fmt: skip
        _stages(repo, "ingest,fit", {})
        results = []
        for workers in counts:
            generate = {"rows": args.rows, "shard_rows": args.shard_rows, "workers": workers}
            results.append(_stages(repo, "generate", {"generate": generate}))
    base = results[0]
    for r in results:
        if r["shards"] != base["shards"]:
            raise SystemExit(f"workers={r['workers']} wrote other shards than workers={base['workers']}")
    shards = len(base["shards"])
    print(f"diamonds GaussianCopula, {args.rows:,} rows in {shards} shards of {args.shard_rows:,}; same shard bytes")
    print(
        "| workers | sampling s | speedup | sampling CPU s | stage s | stage speedup "
        "| peak RSS MB (sum) | peak PSS MB (sum) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['workers']} | {r['sampling']:.1f} | {base['sampling'] / r['sampling']:.2f}x | {r['cpu']:.1f} "
            f"| {r['stage']:.1f} | {base['stage'] / r['stage']:.2f}x | {r['rss_mb']:,.0f} | {r['pss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
