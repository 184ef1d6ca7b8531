"""The TabularARGN runner: run as a script by the python of the engine's own environment.

`python argn_runner.py request.json` fits or samples with mostlyai-engine and writes the response
JSON the request names. It imports nothing from `pipelines` (that is the platform's environment);
pipelines/engines/argn.py builds the requests. Errors go to stderr with a non-zero exit code.

fit:    {action, train (parquet), model_dir, seed, params, encoding_types, primary_key, response}
sample: {action, model_dir, rows, seed, conditions, params, out (parquet), response}
"""

from __future__ import annotations

import csv
import json
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

TRAIN_KEYS = ("model", "max_epochs", "max_training_time", "batch_size", "gradient_accumulation_steps")
SAMPLE_KEYS = ("sampling_temperature", "sampling_top_p", "rare_category_replacement_method")


def _dp(params: dict[str, Any]) -> Any:
    """A DifferentialPrivacyConfig object (mostlyai-engine 2.7.3 crashes on a plain dict)."""
    if not params.get("differential_privacy"):
        return None
    from mostlyai.engine.domain import DifferentialPrivacyConfig

    return DifferentialPrivacyConfig(**params["differential_privacy"])


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


def fit(request: dict[str, Any]) -> dict[str, Any]:
    """split, analyze, encode, train on a scratch workspace; copy the model files out."""
    import pandas as pd
    from mostlyai.engine import analyze, encode, set_random_state, split, train
    from mostlyai.engine.domain import ModelType

    params = request["params"]
    dp = _dp(params)
    with tempfile.TemporaryDirectory(prefix="argn-fit-") as tmp:
        ws = Path(tmp)
        set_random_state(request["seed"])
        split(
            tgt_data=pd.read_parquet(request["train"]),
            tgt_primary_key=request.get("primary_key"),
            tgt_encoding_types=request["encoding_types"],
            model_type=ModelType.tabular,
            workspace_dir=ws,
        )
        analyze(value_protection=params.get("value_protection", True), differential_privacy=dp, workspace_dir=ws)
        encode(workspace_dir=ws)
        train(
            **{k: params[k] for k in TRAIN_KEYS if k in params},
            enable_flexible_generation=params.get("enable_flexible_generation", True),
            differential_privacy=dp,
            device="cpu",
            workspace_dir=ws,
        )
        out = Path(request["model_dir"])
        for rel in MODEL_FILES:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ws / rel, out / rel)
        summary = _training_summary(ws / "ModelStore" / "model-data" / "progress-messages.csv")
    return {"training": summary, "library": {p: version(p) for p in ("mostlyai-engine", "torch", "pandas")}}


def sample(request: dict[str, Any]) -> dict[str, Any]:
    """`rows` rows from the model after seeding; every row has the `conditions` values."""
    params = {k: v for k, v in request["params"].items() if k in SAMPLE_KEYS}
    if "rare_category_replacement_method" in params:
        from mostlyai.engine.domain import RareCategoryReplacementMethod

        # the engine compares with the enum, whose values are upper case: a plain "sample" was ignored,
        # so `_RARE_` came out of columns with rare categories (value protection, DP)
        method = params["rare_category_replacement_method"]
        params["rare_category_replacement_method"] = RareCategoryReplacementMethod(method.upper())
    rows, conditions = request["rows"], request["conditions"]
    with tempfile.TemporaryDirectory(prefix="argn-sample-") as tmp:
        ws = Path(tmp)
        for rel in MODEL_FILES:  # a fresh copy: generation writes into its workspace
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(request["model_dir"]) / rel, ws / rel)
        import pandas as pd  # after the cheap checks: importing mostlyai.engine takes seconds
        from mostlyai.engine import generate, set_random_state

        set_random_state(request["seed"])
        if conditions:
            seed_data = pd.DataFrame({c: [v] * rows for c, v in conditions.items()})
            generate(seed_data=seed_data, device="cpu", workspace_dir=ws, **params)
        else:
            generate(sample_size=rows, device="cpu", workspace_dir=ws, **params)
        parts = sorted((ws / "SyntheticData").glob("*.parquet"))
        df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    df.to_parquet(request["out"], index=False)
    return {"rows": len(df)}


def main(argv: list[str]) -> int:
    """Read the request, run it, write the response."""
    request = json.loads(Path(argv[1]).read_text())
    action = {"fit": fit, "sample": sample}[request["action"]]
    response = action(request)
    Path(request["response"]).write_text(json.dumps(response, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
