"""The TabularARGN runner: run as a script by the python of the engine's own environment.

`python argn_runner.py request.json` fits or samples with mostlyai-engine and writes the response
JSON the request names. It imports nothing from `pipelines` (that is the platform's environment);
pipelines/engines/argn.py builds the requests. Errors go to stderr with a non-zero exit code.

fit:    {action, model_dir, seed, params, dp_epochs, parts, response}; each part (one model, in
        `model_dir/<dir>`): {dir, train (parquet), encoding_types, primary_key, and for a child table
        fitted with its parent as context: context_key, context: {train, encoding_types, primary_key}}
sample: {action, model_dir, seed, params, parts, response}; each part: {dir, out (parquet), rows,
        conditions} or, for a child, {dir, out, context (the parquet of the sampled parents)}

A table set of a parent and one child is two parts: the parent fitted as a flat table, the child
as sequences of rows per parent row (mostlyai-engine's context); at sampling, the parents are
generated first and the children for every sampled parent.

DP-SGD (`params.differential_privacy`): each part trains with an explicit batch size (`batch_size`,
else the engine's own rule on the rows it trains on, `default_batch_size`), so the sample rate is
known before training; with `dp_epochs` (the adapter sends it when no `noise_multiplier` is given),
the noise multiplier is the one opacus' RDP accountant says spends `max_epsilon`, less the value
protection `analyze` spent, in exactly `dp_epochs` epochs of the engine's schedule (`schedule`,
`noise_multiplier`). The settings come back in the part's training summary (`dp_sgd`).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

MODEL_FILES = (
    "ModelStore/model-data/model-weights.pt",
    "ModelStore/model-data/model-configs.json",
    "ModelStore/tgt-stats/stats.json",
    "OriginalData/tgt-meta/encoding-types.json",
    "OriginalData/tgt-meta/keys.json",
)
"""What generation reads. Left behind: the training data copies, the optimizer state and the
progress log (it holds wall-clock times, so the model's bytes would differ run to run)."""

CONTEXT_FILES = (
    "ModelStore/ctx-stats/stats.json",
    "OriginalData/ctx-meta/encoding-types.json",
    "OriginalData/ctx-meta/keys.json",
)
"""What generation reads besides MODEL_FILES for a model fitted with a context table."""

TRAIN_KEYS = ("model", "max_epochs", "max_training_time", "batch_size", "gradient_accumulation_steps")
SAMPLE_KEYS = ("sampling_temperature", "sampling_top_p", "rare_category_replacement_method")
BATCH_MAX = 1024
"""The largest batch `default_batch_size` gives. mostlyai-engine caps its own choice by the machine's
memory and the model's size and width (1,024 to 4,096 for a Small or Medium model of a table like
hdma, less for wider tables); a fixed cap gives the same batch, so the same DP noise and the same
model, on any machine. It lowers the rule's batch only from 131,072 training rows on."""


def _dp(params: dict[str, Any]) -> Any:
    """A DifferentialPrivacyConfig object (mostlyai-engine 2.7.3 crashes on a plain dict)."""
    if not params.get("differential_privacy"):
        return None
    from mostlyai.engine.domain import DifferentialPrivacyConfig

    return DifferentialPrivacyConfig(**params["differential_privacy"])


def default_batch_size(rows: int) -> int:
    """mostlyai-engine 2.7.3's batch size for `rows` training rows when none is given (at least 64
    batches: 2^floor(log2(rows / 64)), 8 to BATCH_MAX, never more than the rows)."""
    batch = 2 ** math.floor(math.log2(rows / 64)) if rows >= 64 else 8
    return max(1, min(max(batch, 8), BATCH_MAX, rows))


def schedule(rows: int, batch_size: int, accumulation: int = 1) -> tuple[int, float, int]:
    """(logical batch, sample rate, steps per epoch) of the engine's DP-SGD on `rows` training rows:
    its clamping of batch size and accumulation steps, opacus' Poisson sample rate (1 / the batches of
    its data loader) and the engine's epoch (rows // logical batch steps)."""
    batch = max(1, min(batch_size, rows))
    accumulation = max(1, min(accumulation, rows // batch))
    logical = batch * accumulation
    return logical, 1 / math.ceil(rows / logical), max(1, rows // logical)


def noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The noise multiplier whose `steps` steps at `sample_rate` spend `epsilon` by opacus' RDP
    accountant (the engine's own): at most `epsilon`, and less by at most min(0.01, 1% of it)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import MAX_SIGMA, get_noise_multiplier

    try:
        return get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant="rdp",
            epsilon_tolerance=min(0.01, 0.01 * epsilon),
        )
    except ValueError:  # "The privacy budget is too low."
        floor = RDPAccountant()
        floor.history = [(MAX_SIGMA, sample_rate, steps)]
        raise ValueError(
            f"fit.privacy: no DP-SGD noise spends only epsilon {epsilon:g} (what is left after value protection): "
            f"the RDP accountant certifies no less than {floor.get_epsilon(delta):.3f} at delta {delta:g}, with "
            "any noise and epochs; raise fit.privacy.epsilon (or delta)"
        ) from None


def _dp_sgd(ws: Path, dp: Any, train_args: dict[str, Any], epochs: int | None) -> tuple[Any, dict[str, Any]]:
    """The part's DP config, with the calibrated noise multiplier when `epochs` is given, and its DP-SGD
    settings; sets the explicit batch size in `train_args` (read after `analyze`: the rows it trains on
    and the value protection it spent are in the stats)."""
    stats = json.loads((ws / "ModelStore" / "tgt-stats" / "stats.json").read_text())
    ctx_path = ws / "ModelStore" / "ctx-stats" / "stats.json"
    ctx = json.loads(ctx_path.read_text()) if ctx_path.is_file() else {}
    rows = int(stats["no_of_training_records"])
    spent = sum(s.get("value_protection_epsilon_spent") or 0.0 for s in (stats, ctx))
    settings: dict[str, Any] = {"calibrated": False, "epochs": None, "training_rows": rows}
    if rows > 0:  # no rows: the engine skips training
        train_args["batch_size"] = train_args.get("batch_size") or default_batch_size(rows)
        accumulation = train_args.get("gradient_accumulation_steps") or 1
        batch, rate, steps = schedule(rows, train_args["batch_size"], accumulation)
        settings |= {"batch_size": batch, "sample_rate": rate, "steps_per_epoch": steps}
        if epochs is not None:
            sigma = noise_multiplier(dp.max_epsilon - spent, dp.delta, rate, epochs * steps)
            dp = dp.model_copy(update={"noise_multiplier": sigma})
            settings |= {"calibrated": True, "epochs": epochs}
    settings |= {"noise_multiplier": dp.noise_multiplier, "max_grad_norm": dp.max_grad_norm}
    return dp, settings | {"value_protection_epsilon": spent}


def _training_summary(progress: Path) -> dict[str, Any]:
    """The last epoch's figures from the progress log, without its wall-clock columns.

    With DP, `dp_eps` is the epsilon after the last step trained and `dp_eps_checkpoint` that of
    the weights kept: the last validated checkpoint (the engine keeps only checkpoints within
    `max_epsilon`, or the weights it has when none was), else the last row.
    """
    with open(progress, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    last = rows[-1]
    keep = ("epoch", "steps", "samples", "trn_loss", "val_loss", "dp_eps", "dp_delta")
    summary = {k: float(last[k]) for k in keep if last.get(k) not in (None, "")}
    if summary.get("dp_eps") is not None:
        kept = [r for r in rows if r.get("is_checkpoint") in ("1", "True", "1.0") and r.get("val_loss")]
        summary["dp_eps_checkpoint"] = float((kept or rows)[-1]["dp_eps"])
    return summary


def _files(part: dict[str, Any]) -> tuple[str, ...]:
    return MODEL_FILES + (CONTEXT_FILES if part.get("context") or part.get("context_key") else ())


def _fit_part(
    part: dict[str, Any], params: dict[str, Any], seed: int, model_dir: Path, dp_epochs: int | None = None
) -> dict[str, Any]:
    """split, analyze, encode, train one model on a scratch workspace (with DP: calibrated, `_dp_sgd`);
    copy its files to `model_dir`."""
    import pandas as pd
    from mostlyai.engine import analyze, encode, set_random_state, split, train
    from mostlyai.engine.domain import ModelType

    dp = _dp(params)
    context = part.get("context") or {}
    with tempfile.TemporaryDirectory(prefix="argn-fit-") as tmp:
        ws = Path(tmp)
        set_random_state(seed)
        split(
            tgt_data=pd.read_parquet(part["train"]),
            tgt_primary_key=part.get("primary_key"),
            tgt_encoding_types=part["encoding_types"],
            tgt_context_key=part.get("context_key"),
            ctx_data=pd.read_parquet(context["train"]) if context else None,
            ctx_primary_key=context.get("primary_key"),
            ctx_encoding_types=context.get("encoding_types"),
            model_type=ModelType.tabular,
            workspace_dir=ws,
        )
        analyze(value_protection=params.get("value_protection", True), differential_privacy=dp, workspace_dir=ws)
        encode(workspace_dir=ws)
        train_args = {k: params[k] for k in TRAIN_KEYS if k in params}
        dp_sgd = None
        if dp is not None:
            dp, dp_sgd = _dp_sgd(ws, dp, train_args, dp_epochs)
        train(
            **train_args,
            enable_flexible_generation=params.get("enable_flexible_generation", True),
            differential_privacy=dp,
            device="cpu",
            workspace_dir=ws,
        )
        for rel in _files(part):
            (model_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ws / rel, model_dir / rel)
        summary = _training_summary(ws / "ModelStore" / "model-data" / "progress-messages.csv")
        return summary | ({"dp_sgd": dp_sgd} if dp_sgd else {})


def fit(request: dict[str, Any]) -> dict[str, Any]:
    """Fit every part in turn, each seeded with the request's seed plus its position."""
    out, params, epochs = Path(request["model_dir"]), request["params"], request.get("dp_epochs")
    training = {
        part["dir"]: _fit_part(part, params, (request["seed"] + i) % 2**32, out / part["dir"], epochs)
        for i, part in enumerate(request["parts"])
    }
    return {"training": training, "library": {p: version(p) for p in ("mostlyai-engine", "torch", "pandas")}}


def _sample_part(part: dict[str, Any], params: dict[str, Any], seed: int, model_dir: Path) -> int:
    """Generate one part's rows into `part['out']`: `rows` rows (every one with the `conditions`
    values), or for a child the rows of every parent row of `part['context']`."""
    with tempfile.TemporaryDirectory(prefix="argn-sample-") as tmp:
        ws = Path(tmp)
        for rel in _files(part):  # a fresh copy: generation writes into its workspace
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / rel, ws / rel)
        import pandas as pd  # after the cheap checks: importing mostlyai.engine takes seconds
        from mostlyai.engine import generate, set_random_state

        set_random_state(seed)
        conditions = part.get("conditions") or {}
        if part.get("context"):
            generate(ctx_data=pd.read_parquet(part["context"]), device="cpu", workspace_dir=ws, **params)
        elif conditions:
            seed_data = pd.DataFrame({c: [v] * part["rows"] for c, v in conditions.items()})
            generate(seed_data=seed_data, device="cpu", workspace_dir=ws, **params)
        else:
            generate(sample_size=part["rows"], device="cpu", workspace_dir=ws, **params)
        parts = sorted((ws / "SyntheticData").glob("*.parquet"))
        df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    df.to_parquet(part["out"], index=False)
    return len(df)


def sample(request: dict[str, Any]) -> dict[str, Any]:
    """Sample every part in turn (a child after the parents it reads), each seeded with the
    request's seed plus its position."""
    params = {k: v for k, v in request["params"].items() if k in SAMPLE_KEYS}
    if "rare_category_replacement_method" in params:
        from mostlyai.engine.domain import RareCategoryReplacementMethod

        # the engine compares with the enum, whose values are upper case: a plain "sample" was ignored,
        # so `_RARE_` came out of columns with rare categories (value protection, DP)
        method = params["rare_category_replacement_method"]
        params["rare_category_replacement_method"] = RareCategoryReplacementMethod(method.upper())
    model_dir = Path(request["model_dir"])
    rows = {
        part["dir"]: _sample_part(part, params, (request["seed"] + i) % 2**32, model_dir / part["dir"])
        for i, part in enumerate(request["parts"])
    }
    return {"rows": rows}


def main(argv: list[str]) -> int:
    """Read the request, run it, write the response."""
    request = json.loads(Path(argv[1]).read_text())
    action = {"fit": fit, "sample": sample}[request["action"]]
    response = action(request)
    Path(request["response"]).write_text(json.dumps(response, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
