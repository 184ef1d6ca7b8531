"""Multi-table and sequence engines side by side on nycflights13 (docs/engines.md).

    python benchmarks/multitable.py [--engines hma,tabular_argn] [--argn-epochs 10] [--json out.json]
    python benchmarks/multitable.py --sequences [--engines par,tabular_argn] [--par-epochs 32]

Two tables of the repository's subset (`sources/nycflights13`: 1,140 planes; the flights of 1-3
January 2013 whose tail number names a plane, 2,259 of 2,699) linked by one foreign key
(flights.tailnum -> planes.tailnum), split 80/20 on flights, every engine on the same split and
metadata. Each engine runs ingest, fit, generate, blend and validate in its own temporary workspace;
the table prints the wall times, the key gates, the fidelity figures and the children per parent
(real train vs synthetic). Times depend on the machine and on what else runs on it.

`--sequences`: the same flights as one events table, a sequence per tail number ordered by
`time_hour`, `carrier` as the plane's context column; the sequence gates instead of the key gates.
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


def _sequence_block(src: Path, engine: str, params: dict[str, Any]) -> dict[str, Any]:
    columns = ["tailnum", "time_hour", "carrier", "origin", "dest", "dep_delay", "arr_delay", "air_time", "distance"]
    import pandas as pd

    events = src / "flights_events.csv"
    pd.read_csv(src / "flights.csv")[columns].to_csv(events, index=False)
    sequence = {"key": "tailnum", "index": "time_hour", "context_columns": ["carrier"]}
    return {
        "source": {"path": str(events), "format": "csv", "sequence": sequence},
        "target": None,
        "seed": 13,
        "ingest": {},
        "fit": {"synthesizer": engine, "params": params},
        "generate": {},
        "blend": {},
        "gates": {},
    }


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


def run_engine(root: Path, src: Path, engine: str, params: dict[str, Any], sequences: bool = False) -> dict[str, Any]:
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
    block = (_sequence_block if sequences else _block)(src, engine, params)
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
    out = {
        "engine": engine,
        "params": params,
        "fit_seconds": read_json(p.record("fit"))["fit_seconds"],
        "sample_seconds": sum(s["sample_seconds"] for s in read_json(p.record("generate"))["shards"]),
        "stage_seconds": seconds,
        "gates": {g["name"]: round(g["value"], 4) for g in validation["gates"]},
        "failed": [g["name"] for g in validation["gates"] if not g["passed"]],
    }
    if sequences:
        return {**out, "sequences": validation["figures"]["sequences"]["lengths"]}
    synthetic, train = read_folder(p.shard(0)), read_folder(p.train)

    def per_parent(tables: dict[str, Any]) -> dict[str, float]:
        counts = tables["flights"]["tailnum"].value_counts().reindex(tables["planes"]["tailnum"], fill_value=0)
        return {
            "mean": round(float(counts.mean()), 3),
            "max": int(counts.max()),
            "zero": round(float((counts == 0).mean()), 3),
        }

    return {
        **out,
        "rows": {t: len(df) for t, df in synthetic.items()},
        "train_rows": {t: len(df) for t, df in train.items()},
        "children_per_parent": {"train": per_parent(train), "synthetic": per_parent(synthetic)},
    }


def main() -> int:
    """Run the engines and print one row each."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", help="comma-separated engines (default: hma,tabular_argn; par,tabular_argn)")
    ap.add_argument("--sequences", action="store_true", help="flights per tail number as sequences")
    ap.add_argument("--argn-epochs", type=int, default=10, help="tabular_argn's max_epochs (reproducible limit)")
    ap.add_argument("--par-epochs", type=int, default=32, help="par's epochs")
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = ap.parse_args()
    import logging
    import warnings

    from pipelines.sources import ROOTS_ENV

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    params = {"tabular_argn": {"max_epochs": args.argn_epochs}, "par": {"epochs": args.par_epochs, "cuda": False}}
    engines = (args.engines or ("par,tabular_argn" if args.sequences else "hma,tabular_argn")).split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="synthgate-multitable-") as tmp:
        os.environ[ROOTS_ENV] = tmp  # the slice lives beside the workspaces, outside the repository
        src = _slice(Path(tmp) / "planes_flights")
        for engine in engines:
            results.append(run_engine(Path(tmp), src, engine, params.get(engine, {}), args.sequences))
    if args.sequences:
        shown = ("quality", "sequence_length", "sequence_order", "column_shape", "pair_trend", "exact_copies")
    else:
        shown = ("quality", "referential_integrity", "primary_keys", "column_shape", "pair_trend", "exact_copies")
    print(f"{'engine':<14} {'fit s':>7} {'sample s':>8} " + " ".join(f"{g:>21}" for g in shown))
    for r in results:
        gates = " ".join(f"{r['gates'].get(g, float('nan')):>21.4f}" for g in shown)
        if args.sequences:
            extra = f"lengths {r['sequences']}"
        else:
            cpp = r["children_per_parent"]
            extra = f"children/parent {cpp['synthetic']['mean']} (train {cpp['train']['mean']}); rows {r['rows']}"
        times = f"{r['fit_seconds']:>7.1f} {r['sample_seconds']:>8.1f}"
        print(f"{r['engine']:<14} {times} {gates}  {extra}; failed {r['failed']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
