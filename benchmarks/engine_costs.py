"""The SDV engines' fit cost on this machine: the measurements behind auto-selection's cost model.

Usage: python benchmarks/engine_costs.py [--datasets hdma] [--epochs 2,8]
(prints one JSON line per fit; pipelines/engines/candidates.py COSTS and docs/engines.md
"Auto-selection" hold the figures measured once)

Each SDV synthesizer is fitted on the whole source table (committed metadata, seeded) at two epoch
limits; the slope between them per cell (rows x columns) is the cost model's `epoch_s`, what is
left at zero epochs its `prep_s` (the data transformer) and `fixed_s`. GaussianCopula has no
epochs: its one fit gives `prep_s`. Run it on a quiet machine: the figures are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENGINES = {
    "gaussian_copula": "GaussianCopulaSynthesizer",
    "ctgan": "CTGANSynthesizer",
    "tvae": "TVAESynthesizer",
    "copulagan": "CopulaGANSynthesizer",
}


def main(argv: list[str] | None = None) -> int:
    """Fit each engine at each epoch limit and print the seconds."""
    import pandas as pd
    import sdv.single_table as st
    from sdv.metadata import Metadata

    from pipelines.engines.base import seed_everything

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="hdma")
    parser.add_argument("--epochs", default="2,8")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    epochs = [int(e) for e in args.epochs.split(",")]
    for name in args.datasets.split(","):
        md = Metadata.load_from_json(REPO / "metadata" / f"{name}.json")
        columns = list(md.tables[name].columns)
        df = pd.read_csv(REPO / "sources" / f"{name}.csv")[columns]
        cells = df.shape[0] * df.shape[1]
        for engine, cls in ENGINES.items():
            for n in [None] if engine == "gaussian_copula" else epochs:
                seed_everything(1)
                kwargs = {} if n is None else {"epochs": n, "enable_gpu": False}
                started = time.perf_counter()
                getattr(st, cls)(md, **kwargs).fit({name: df})
                seconds = time.perf_counter() - started
                print(
                    json.dumps(
                        {"dataset": name, "cells": cells, "engine": engine, "epochs": n, "fit_s": round(seconds, 2)}
                    )
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
