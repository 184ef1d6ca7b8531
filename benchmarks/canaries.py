"""Controls of the canaries gate without a fit (docs/gates.md "Canaries").

    python benchmarks/canaries.py [--k 10 20]

On HDMA split like the pipeline does (seed 7) with its committed metadata: canaries made as the
gate makes them, then judged against rows that never saw a canary (holdout rows), rows drawn
from train + the planted canaries (what an engine that memorised gives back), the same rows with
every number nudged, and a mix of holdout rows with 10% drawn rows. Each row prints planted and
control canaries exposed and the gate's figure. The shadow fits themselves are measured with
`synthgate validate <ds> --overrides '{"gates": {"canaries": K}}'`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.config import GatesConfig  # noqa: E402
from pipelines.privacy.canaries import exposure, make_canaries  # noqa: E402
from pipelines.tableset import split_frame  # noqa: E402

NUMBERS = ["dir", "hir", "lvr", "ccs", "mcs", "uria"]


def controls(train: pd.DataFrame, holdout: pd.DataFrame, planted: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Synthetic-row stand-ins, as many as a shadow fit on train + `planted` samples."""
    shadow = pd.concat([train, planted], ignore_index=True)
    n = len(shadow)
    copies = shadow.sample(n=n, replace=True, random_state=1)
    rng = np.random.default_rng(0)

    def nudged(sd: float) -> pd.DataFrame:
        return copies.assign(**{c: copies[c] * (1 + rng.normal(0, sd, n)) for c in NUMBERS})

    mix = pd.concat(
        [holdout.sample(n=n - n // 10, replace=True, random_state=2), shadow.sample(n=n // 10, random_state=3)]
    )
    return {
        "holdout rows (no canary seen)": holdout.sample(n=n, replace=True, random_state=2),
        "train + canaries, sampled with replacement": copies,
        "same, numbers x (1 + N(0, 0.01))": nudged(0.01),
        "same, numbers x (1 + N(0, 0.10))": nudged(0.10),
        "same, numbers x (1 + N(0, 0.30))": nudged(0.30),
        "90% holdout rows + 10% train/canary rows": mix,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[10, 20])
    args = parser.parse_args()
    df = pd.read_csv(REPO / "sources" / "hdma.csv").drop(columns=["Unnamed: 0"])
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")
    columns = json.loads((REPO / "metadata" / "hdma.json").read_text())["tables"]["hdma"]["columns"]
    limit = GatesConfig().canary_exposure_max
    print("| k | control | planted exposed (reproduced) | controls exposed | figure | verdict |")
    print("|---|---|---|---|---|---|")
    for k in args.k:
        canaries = make_canaries(train, columns, k, 7)
        for name, rows in controls(train, holdout, canaries.planted).items():
            f = exposure(canaries, rows, train)
            verdict = "pass" if f.exposure_excess <= limit else "**fail**"
            cells = [k, name, f"{f.exposed} ({f.reproduced})", f.control_exposed, f"{f.exposure_excess:.2f}", verdict]
            print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
