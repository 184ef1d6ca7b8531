"""Measured figures behind the defaults of the minority_utility and bias gates (README "Gates").

    python benchmarks/gate_thresholds.py [--json out.json]

On the real HDMA table (`deny`, 12% yes; sensitive column `black`): the controls of the tests
(real rows in place of synthetic ones, the rare class erased, the groups' deny rates swapped, a
group nearly erased), the spread of the figures when real rows stand in for synthetic ones over
many splits (what a threshold must let through), and the bundled release: params.yaml's `hdma`
block through validate in a temporary workspace (nothing in data/ is touched).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.gates.bias import bias_figures  # noqa: E402
from pipelines.metrics import utility  # noqa: E402
from pipelines.tableset import split_frame  # noqa: E402

ROWS = 20_000  # utility_rows: every model trains on all it is given


def _ratio(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> float:
    u = utility(synthetic, train, holdout, "deny", seed, ROWS)
    return round(float(u.minority_recall_tstr or 0) / float(u.minority_recall_trtr or 1), 3)


def _bias(synthetic: pd.DataFrame, train: pd.DataFrame) -> tuple[float, float]:
    f = bias_figures(train, synthetic, ["black"], "deny")
    return round(f["target_gap"], 3), round(f["share_gap"], 3)


def _spread(values: list[float]) -> dict[str, float]:
    return {k: round(float(np.percentile(values, q)), 3) for k, q in (("min", 0), ("p5", 5), ("median", 50))}


def controls(df: pd.DataFrame) -> dict[str, Any]:
    """The tests' controls on the bundled release's split (seed 7)."""
    train, holdout, _ = split_frame(df, 0.2, 7, "deny")
    erased = train.assign(deny="no")
    erased.loc[erased.sample(frac=0.01, random_state=0).index, "deny"] = "yes"
    rng = np.random.default_rng(0)
    swapped = train.copy()
    for group, other in (("yes", "no"), ("no", "yes")):
        rows = train["black"] == group
        swapped.loc[rows, "deny"] = rng.choice(train.loc[train["black"] == other, "deny"].to_numpy(), rows.sum())
    few = pd.concat([train[train["black"] == "no"], train[train["black"] == "yes"].head(20)])
    return {
        "minority_ratio": {
            "train": _ratio(train, train, holdout, 7),
            "holdout": _ratio(holdout, train, holdout, 7),
            "rare class erased": _ratio(erased, train, holdout, 7),
        },
        "bias (rate gap, share gap)": {
            "holdout": _bias(holdout, train),
            "rates swapped": _bias(swapped, train),
            "black=yes nearly erased": _bias(few, train),
        },
    }


def null_spread(df: pd.DataFrame, splits: int) -> dict[str, Any]:
    """Real rows in place of synthetic ones, over `splits` splits: what a threshold must pass."""
    ratios: dict[int, list[float]] = {400: [], 1000: [], 2000: []}
    rate, share = [], []
    for seed in range(splits):
        train, holdout, _ = split_frame(df, 0.2, seed, "deny")
        for n in ratios:
            ratios[n].append(_ratio(train.sample(n=n, replace=n > len(train), random_state=seed), train, holdout, seed))
        r, s = _bias(holdout, train)
        rate.append(r)
        share.append(s)
    return {
        "minority_ratio by real rows": {n: _spread(v) for n, v in ratios.items()},
        "holdout rate gap": {**_spread(rate), "p95": round(float(np.percentile(rate, 95)), 3), "max": max(rate)},
        "holdout share gap": {"p95": round(float(np.percentile(share, 95)), 3), "max": max(share)},
    }


def bundled() -> dict[str, Any]:
    """params.yaml's hdma block through validate; its gates and bias/minority figures."""
    from pipelines.bootstrap import init_contracts
    from pipelines.cli import run_stage
    from pipelines.config import load_params
    from pipelines.io import read_json
    from pipelines.paths import paths_for

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    block = params["datasets"]["hdma"]
    block["source"]["path"] = str(REPO / block["source"]["path"])
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": params["defaults"], "datasets": {"hdma": block}}))
        cfg = load_params(ws / "params.yaml").dataset("hdma")
        list(init_contracts(cfg, paths_for("hdma", ws)))
        for stage in ("ingest", "fit", "generate", "blend", "validate"):
            run_stage(stage, cfg, ws)
        v = read_json(paths_for("hdma", ws).validation)
    return {
        "gates": {g["name"]: [round(g["value"], 4), g["passed"]] for g in v["gates"]},
        "minority_utility": v["figures"]["minority_utility"],
        "bias groups": v["figures"]["bias"]["columns"],
    }


def main() -> None:
    """Print (and optionally write) every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=12, help="splits for the real-rows spread")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    df = pd.read_csv(REPO / "sources" / "hdma.csv").drop(columns=["Unnamed: 0"])
    out = {"controls": controls(df), "real rows": null_spread(df, args.splits), "bundled hdma": bundled()}
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
