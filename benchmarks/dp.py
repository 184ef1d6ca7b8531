"""Differential privacy on hdma: TabularARGN releases at several epsilons, with every gate's figure.

Usage: python benchmarks/dp.py [--epsilons 1 3 5] [--budget B] [--max-epochs N] [--workdir DIR]
(prints one Markdown table; docs/engines.md "Differential privacy" records the figures)

One scratch workspace holds hdma as params.yaml configures it (split, metadata, contracts, gate
thresholds, 2,000 synthetic rows) with `fit.synthesizer: tabular_argn` and `fit.privacy: {epsilon}`.
For each epsilon, in order, the six stages run in-process: fit (DP-SGD until the epsilon is
reached or early stopping), generate, blend, validate, release. The fits share the dataset's
privacy ledger, so its total grows by each model's spent epsilon (sequential composition) and,
with `--budget`, the privacy_budget gate blocks the release that would exceed it. A blocked
release is reported with its failed gates, not raised.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
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


def noise_multiplier(epsilon: float, batch_size: int, epochs: int, train_rows: int) -> float:
    """The DP-SGD noise that spends `epsilon` (less value protection's 10%) in `epochs` epochs, by
    opacus' RDP accountant in the engine's environment (TabularARGN trains on 80% of the train split)."""
    from pipelines.engines.argn import ENGINE, VALUE_PROTECTION_SHARE

    code = (
        "from opacus.accountants.utils import get_noise_multiplier as g; "
        f"print(g(target_epsilon={epsilon * (1 - VALUE_PROTECTION_SHARE)}, target_delta=1e-5, "
        f"sample_rate={batch_size / int(0.8 * train_rows)}, epochs={epochs}, accountant='rdp'))"
    )
    done = subprocess.run([str(ENGINE.env.ensure("tabular_argn")), "-W", "ignore", "-c", code], capture_output=True)
    return round(float(done.stdout.decode().strip().splitlines()[-1]), 4)


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


def release(root: Path, epsilon: float, calibrate: tuple[int, int] | None = None, refit: bool = True) -> dict[str, Any]:
    """Fit at `epsilon` and run generate..release; the figures of the fit and of every gate.

    `calibrate` (batch size, epochs): DP-SGD noise set so that epsilon is spent in that many epochs."""
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
    fit: dict[str, Any] = {"privacy": {"epsilon": epsilon}}
    if calibrate:
        batch, epochs = calibrate
        sigma = noise_multiplier(epsilon, batch, epochs, read_json(paths.record("ingest"))["train"]["rows"])
        fit["params"] = {"batch_size": batch, "differential_privacy": {"noise_multiplier": sigma}}
    cfg = apply_overrides(params, "hdma", {"fit": fit})
    verdict = "released"
    for stage in STAGES[1 if refit else 2 :]:
        t = time.perf_counter()
        try:
            run_stage(stage, cfg, root)
        except GateFailed as err:
            verdict = "blocked: " + ", ".join(g["name"] for g in err.failed)
        seconds[stage] = time.perf_counter() - t
    fit = read_json(paths.record("fit"))
    with tarfile.open(paths.model) as tar:  # the model manifest: the engine's last-epoch figures
        training = json.loads(tar.extractfile(MANIFEST).read())["training"]
    validation = read_json(paths.validation)
    return {
        "epsilon": epsilon,
        "privacy": fit["privacy"],
        "fit_seconds": fit["fit_seconds"],
        "epochs": training.get("epoch"),
        "noise_multiplier": (cfg.fit.params.get("differential_privacy") or {}).get("noise_multiplier", 1.5),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 5.0])
    parser.add_argument("--budget", type=float, default=None, help="gates.privacy_budget_max (default: none)")
    parser.add_argument("--max-epochs", type=int, default=None, help="TabularARGN max_epochs (default: the engine's)")
    parser.add_argument(
        "--calibrate",
        type=int,
        nargs=2,
        metavar=("BATCH", "EPOCHS"),
        help="batch size, and the epochs in which DP-SGD noise is calibrated to spend each epsilon "
        "(default: the engine's batch size and noise multiplier 1.5)",
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
    head = ["target ε", "noise", "spent ε (kept / last step)", "ledger ε", "epochs", "fit s", *GATES]
    head += ["TSTR (TRTR)", "verdict"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    for epsilon in args.epsilons:  # a row as soon as its release is done: fits take minutes each
        r = release(root, epsilon, tuple(args.calibrate) if args.calibrate else None, not args.reuse_fit)
        spent, u = r["privacy"]["spent"], r["utility"]
        tstr = f"{u.get('tstr', float('nan')):.3f} ({u.get('trtr', float('nan')):.3f})" if u else "–"
        cells = [
            f"{r['epsilon']:g}",
            f"{r['noise_multiplier']:g}",
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
