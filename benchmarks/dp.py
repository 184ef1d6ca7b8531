"""Differential privacy on hdma: TabularARGN releases at several epsilons, with every gate's figure.

Usage: python benchmarks/dp.py [--epsilons 1 3 5] [--epochs N | --noise M [--max-epochs N]]
                               [--batch-size B] [--budget B] [--workdir DIR] [--reuse-fit]
(prints one Markdown table; docs/engines.md "Differential privacy" records the figures)

One scratch workspace holds hdma as params.yaml configures it (split, metadata, contracts, gate
thresholds, 2,000 synthetic rows) with `fit.synthesizer: tabular_argn` and `fit.privacy: {epsilon,
epochs}`. For each epsilon, in order, the six stages run in-process: fit (DP-SGD with the noise the
adapter calibrates to spend the epsilon in `--epochs` epochs, or the fixed `--noise`, until the
epsilon is reached or early stopping), generate, blend, validate, release. The fits share the
dataset's privacy ledger, so its total grows by each model's spent epsilon (sequential
composition) and, with `--budget`, the privacy_budget gate blocks the release that would exceed
it. A blocked release is reported with its failed gates, not raised. The noise and batch columns
are the fit record's `privacy.dp_sgd` (what the runner trained with).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from pipelines.engines.external import MANIFEST  # noqa: E402

GATES = (
    "quality",
    "column_shape",
    "pair_trend",
    "exact_copies",
    "dcr_low_tail",
    "dcr_baseline_protection",
    "utility",
    "minority_utility",
    "bias",
    "privacy_budget",
)


def workspace(root: Path, budget: float | None, params: dict[str, Any]) -> Path:
    """A scratch workspace with the repo's defaults, hdma's block, its contracts and metadata."""
    params_yaml = yaml.safe_load((REPO / "params.yaml").read_text())
    block = params_yaml["datasets"]["hdma"]
    block["source"] = {"path": str(REPO / "sources" / "hdma.csv"), "format": "csv"}
    block["fit"] = {"synthesizer": "tabular_argn", "params": params}
    block["gates"] = {**(block.get("gates") or {}), "privacy_budget_max": budget}
    datasets = {"hdma": block}
    (root / "params.yaml").write_text(yaml.safe_dump({"defaults": params_yaml["defaults"], "datasets": datasets}))
    for rel in ("expectations/hdma.raw.json", "expectations/hdma.release.json", "metadata/hdma.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, root / rel)
    return root


def release(root: Path, epsilon: float, fit: dict[str, Any], refit: bool = True) -> dict[str, Any]:
    """Fit at `epsilon` and run generate..release; the figures of the fit and of every gate.

    `fit`: the fit section's override besides the epsilon (`privacy.epochs`, `params`)."""
    from pipelines import STAGES
    from pipelines.cli import run_stage
    from pipelines.config import apply_overrides, load_params
    from pipelines.errors import GateFailed
    from pipelines.io import read_json
    from pipelines.paths import paths_for

    params, paths = load_params(root / "params.yaml"), paths_for("hdma", root)
    started, seconds = time.perf_counter(), {}
    if not paths.record("ingest").is_file():
        run_stage("ingest", params.dataset("hdma"), root)
    override = {**fit, "privacy": {**fit.get("privacy", {}), "epsilon": epsilon}}
    cfg = apply_overrides(params, "hdma", {"fit": override})
    verdict = "released"
    for stage in STAGES[1 if refit else 2 :]:
        t = time.perf_counter()
        try:
            run_stage(stage, cfg, root)
        except GateFailed as err:
            verdict = "blocked: " + ", ".join(g["name"] for g in err.failed)
        seconds[stage] = time.perf_counter() - t
    record = read_json(paths.record("fit"))
    with tarfile.open(paths.model) as tar:  # the model manifest: the engine's last-epoch figures
        training = json.loads(tar.extractfile(MANIFEST).read())["training"]
    validation = read_json(paths.validation)
    return {
        "epsilon": epsilon,
        "privacy": record["privacy"],
        "fit_seconds": record["fit_seconds"],
        "epochs": training.get("epoch"),
        "dp_sgd": record["privacy"].get("dp_sgd") or {},  # none in fit records from before calibration
        "seconds": time.perf_counter() - started,
        "stage_seconds": seconds,
        "gates": {g["name"]: g for g in validation["gates"]},
        "sdmetrics": validation["figures"].get("sdmetrics", {}),
        "utility": validation["figures"].get("utility", {}),
        "verdict": verdict,
    }


def _cell(gates: dict[str, Any], name: str) -> str:
    g = gates.get(name)
    if g is None:
        return "–"
    return f"{g['value']:.3f}" + ("" if g["passed"] else " FAIL")


def _noise(sgd: dict[str, Any]) -> str:
    if "noise_multiplier" not in sgd:
        return "?"
    return f"{sgd['noise_multiplier']:.4g}" + (f" ({sgd['epochs']} epochs)" if sgd.get("calibrated") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 5.0])
    parser.add_argument("--budget", type=float, default=None, help="gates.privacy_budget_max (default: none)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="fit.privacy.epochs: the adapter calibrates the DP-SGD noise to spend each epsilon in that many "
        "epochs (default: fit.privacy's default)",
    )
    how.add_argument(
        "--noise",
        type=float,
        default=None,
        help="a fixed DP-SGD noise multiplier instead (fit.params.differential_privacy.noise_multiplier; the "
        "engine's own default is 1.5): no calibration, training runs until the epsilon or early stopping",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="TabularARGN max_epochs with --noise (default: the engine's; a calibrated fit trains --epochs)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="TabularARGN batch_size (default: the engine's rule)"
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temp folder, removed)")
    parser.add_argument(
        "--reuse-fit", action="store_true", help="one epsilon: generate..release from the model --workdir holds"
    )
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ["SYNTHGATE_SOURCE_ROOTS"] = str(REPO)
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="synthgate-dp-")
    root = Path(args.workdir or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    root = workspace(root, args.budget, {"max_epochs": args.max_epochs} if args.max_epochs else {})
    os.environ["SYNTHGATE_ROOT"] = str(root)
    fit: dict[str, Any] = {"privacy": {"epochs": args.epochs} if args.epochs else {}, "params": {}}
    if args.batch_size:
        fit["params"]["batch_size"] = args.batch_size
    if args.noise is not None:
        fit["params"]["differential_privacy"] = {"noise_multiplier": args.noise}
    head = ["target ε", "noise", "batch", "spent ε (kept / last step)", "ledger ε", "epochs", "fit s", *GATES]
    head += ["TSTR (TRTR)", "verdict"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    for epsilon in args.epsilons:  # a row as soon as its release is done: fits take minutes each
        r = release(root, epsilon, fit, not args.reuse_fit)
        spent, u, sgd = r["privacy"]["spent"], r["utility"], r["dp_sgd"]
        tstr = f"{u.get('tstr', float('nan')):.3f} ({u.get('trtr', float('nan')):.3f})" if u else "–"
        cells = [
            f"{r['epsilon']:g}",
            _noise(sgd),
            f"{sgd.get('batch_size', '?')}",
            f"{spent['epsilon']:.3f} / {spent['epsilon_last_step']:.3f}",
            f"{r['privacy']['ledger']['totals']['epsilon']:.3f}",
            f"{r['epochs']:g}",
            f"{r['fit_seconds']:.0f}",
            *[_cell(r["gates"], g) for g in GATES],
            tstr,
            r["verdict"],
        ]
        print("| " + " | ".join(cells) + " |", flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
