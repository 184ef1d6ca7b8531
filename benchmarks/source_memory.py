"""Peak memory of reading a CSV source: the chunked reader against the whole-file reader it replaced.

Writes a CSV of about `--mb` MB made of HDMA rows (the bundled table repeated, the row-index column
counting on), then reads it with `pipelines.sources.read_source` in a fresh process per reader and
prints a table: peak RSS, RSS after the imports, seconds, and a digest of the frame (dtypes and
values), which must be the same for both readers. The baseline reader is `pipelines/sources.py`
as of `--baseline` (a git revision; default: the last commit that read sources whole).

    python benchmarks/source_memory.py --mb 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "a821cc4"
"""The last commit whose `read_source` read a CSV whole (bytes, then text, then one pandas parse)."""

_CHILD = r"""
import hashlib, importlib.util, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import pandas as pd
from pipelines.config.source import SourceConfig
module = sys.argv[2]
if module.endswith(".py"):
    spec = importlib.util.spec_from_file_location("baseline_sources", module)
    sources = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sources)
else:
    import pipelines.sources as sources
path = Path(sys.argv[3])
after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
df, info = sources.read_source(SourceConfig(path=str(path), format="csv"), path.parent, max_mb=4096)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
digest = hashlib.sha256(json.dumps([str(t) for t in df.dtypes]).encode())
digest.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
print(json.dumps({"peak_mb": peak / 1024, "imports_mb": after_imports / 1024, "seconds": seconds,
                  "rows": len(df), "frame_mb": df.memory_usage(deep=True).sum() / 2**20,
                  "frame": digest.hexdigest()[:16], "source_sha256": info["sha256"][:16]}))
"""


def make_csv(path: Path, mb: int) -> int:
    """A CSV of about `mb` MB of HDMA rows; return its size in bytes."""
    lines = (REPO / "sources" / "hdma.csv").read_text().splitlines()
    header, rows = lines[0], [line.split(",", 1)[1] for line in lines[1:]]
    n = 0
    with open(path, "w") as f:
        f.write(header + "\n")
        while f.tell() < mb * 2**20:
            for row in rows:
                n += 1
                f.write(f'"{n}",{row}\n')
    return path.stat().st_size


def measure(module: str, csv: Path) -> dict:
    """Read `csv` with the reader `module` (a file path for the baseline) in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(REPO), module, str(csv)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the CSV, measure both readers, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=256, help="size of the generated CSV in MB (default 256)")
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision of the whole-file reader (default {BASELINE})")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "big.csv"
        size = make_csv(csv, args.mb)
        old = Path(tmp) / "sources_baseline.py"
        old.write_bytes(
            subprocess.run(
                ["git", "show", f"{args.baseline}:pipelines/sources.py"], cwd=REPO, capture_output=True, check=True
            ).stdout
        )
        results = {
            f"whole file ({args.baseline})": measure(str(old), csv),
            "chunked (this tree)": measure("pipelines.sources", csv),
        }
    print(f"CSV: {size / 2**20:.0f} MB, {next(iter(results.values()))['rows']:,} rows")
    print(
        f"{'reader':<24} {'peak RSS MB':>11} {'after imports':>13} {'x file':>7} {'seconds':>8} {'frame MB':>9}"
        "  frame digest"
    )
    for name, r in results.items():
        print(
            f"{name:<24} {r['peak_mb']:>11.0f} {r['imports_mb']:>13.0f} {r['peak_mb'] * 2**20 / size:>7.1f} "
            f"{r['seconds']:>8.1f} {r['frame_mb']:>9.0f}  {r['frame']} (source sha256 {r['source_sha256']})"
        )
    same = len({(r["frame"], r["source_sha256"]) for r in results.values()}) == 1
    print("same frame and source digest: " + ("yes" if same else "NO"))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
