"""MOSTLY AI's TabularARGN (mostlyai-engine, Apache-2.0), in its own environment: one table, or a
parent table and one child table linked by one foreign key (`argn_sets`).

It trains from scratch on CPU (no model download). Training is reproducible with a fixed seed and
an epoch limit (`max_epochs`); a time cap (`max_training_time`) is not, so none is set by default.
It keeps 20% of the rows it is given for early stopping. Conditions become seed data: every row
generated has the conditioned values. `fit.privacy` (or the raw `differential_privacy` param)
trains with DP-SGD (opacus); with `fit.privacy` and no explicit `noise_multiplier`, the runner
calibrates the noise so that epsilon is spent in `fit.privacy.epochs` epochs (`dp_epochs`), and
`max_epochs` becomes that. The epsilon reached and the DP-SGD settings are in the model's manifest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.engines import argn_sets
from pipelines.engines.argn_sets import encodings
from pipelines.engines.base import EngineInfo, SampleRequest
from pipelines.engines.envs import EngineEnv
from pipelines.engines.external import ExternalEngine, ExternalModel
from pipelines.engines.sequences import length_stats
from pipelines.errors import InvalidInputError

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.config.sections import PrivacyConfig
    from pipelines.tableset import Layout, Tables

MODELS = ("MOSTLY_AI/Small", "MOSTLY_AI/Medium", "MOSTLY_AI/Large")
DEFAULTS: dict[str, Any] = {
    "model": "MOSTLY_AI/Medium",
    "max_epochs": 100,
    # "constant" would release a `_RARE_` category the real data never had
    "rare_category_replacement_method": "sample",
}
VALUE_PROTECTION_SHARE = 0.1
"""With `fit.privacy`, the share of epsilon the analysis spends on value protection (noisy column
bounds and categories) unless `differential_privacy.value_protection_epsilon` says otherwise; the
engine's own default (1.0) would spend all of epsilon 1 before training."""
DP_KEYS = frozenset({"max_epsilon", "delta", "noise_multiplier", "max_grad_norm", "value_protection_epsilon"})
PARAMS = frozenset(
    {
        *DEFAULTS,
        "max_training_time",
        "batch_size",
        "gradient_accumulation_steps",
        "enable_flexible_generation",
        "value_protection",
        "differential_privacy",
        "sampling_temperature",
        "sampling_top_p",
    }
)


def _number(value: Any, low: float, high: float | None = None, integer: bool = False, zero: bool = False) -> bool:
    """A number above `low` (or equal to it with `zero`), at most `high`; an int with `integer`."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    return (value >= low if zero else value > low) and (high is None or value <= high)


def param_problems(params: dict[str, Any]) -> list[str]:
    """Values TabularARGN would reject or misread (the names are checked against PARAMS elsewhere)."""
    checks = {
        "model": lambda v: v in MODELS,
        "max_epochs": lambda v: _number(v, 0),
        "max_training_time": lambda v: _number(v, 0),
        "batch_size": lambda v: _number(v, 0, integer=True),
        "gradient_accumulation_steps": lambda v: _number(v, 0, integer=True),
        "enable_flexible_generation": lambda v: isinstance(v, bool),
        "value_protection": lambda v: isinstance(v, bool),
        "sampling_temperature": lambda v: _number(v, 0),
        "sampling_top_p": lambda v: _number(v, 0, 1),
        "rare_category_replacement_method": lambda v: v in ("constant", "sample"),
    }
    wants = {
        "model": f"one of {list(MODELS)}",
        "batch_size": "an integer >= 1",
        "gradient_accumulation_steps": "an integer >= 1",
        "enable_flexible_generation": "true or false",
        "value_protection": "true or false",
        "sampling_top_p": "a number in (0, 1]",
        "rare_category_replacement_method": "constant or sample",
    }
    problems = [
        f"{k}: {params[k]!r} is not {wants.get(k, 'a number > 0')}"
        for k, ok in checks.items()
        if k in params and not ok(params[k])
    ]
    dp = params.get("differential_privacy")
    if dp is not None:
        if not isinstance(dp, dict):
            problems.append(f"differential_privacy: a mapping of {sorted(DP_KEYS)} (or null), not {dp!r}")
        else:
            problems += [
                f"differential_privacy.{k}: not a DP setting ({sorted(DP_KEYS)})" for k in dp if k not in DP_KEYS
            ]
            problems += [
                f"differential_privacy.{k}: {v!r} is not a number >= 0" + (" and <= 1" if k == "delta" else "")
                for k, v in dp.items()
                if k in DP_KEYS and v is not None and not _number(v, 0, 1.0 if k == "delta" else None, zero=True)
            ]
    return problems


def dp_settings(params: dict[str, Any], privacy: PrivacyConfig | None, models: int = 1) -> dict[str, Any] | None:
    """The engine's `differential_privacy` block of each of `models` models: fit.privacy's epsilon and
    delta split evenly between them (basic composition: the models' epsilons and deltas add up to the
    target), each as `max_epsilon` (value protection's share included) and `delta`, over the other DP
    knobs of `fit.params`."""
    raw = params.get("differential_privacy")
    if privacy is None:
        return raw
    epsilon = privacy.epsilon / models
    dp = {**(raw or {}), "max_epsilon": round(epsilon, 9), "delta": privacy.delta / models}
    if dp.get("value_protection_epsilon") is None:
        dp["value_protection_epsilon"] = round(VALUE_PROTECTION_SHARE * epsilon, 6)
    return dp


def dp_epochs(params: dict[str, Any], privacy: PrivacyConfig | None) -> int | None:
    """The epochs the DP-SGD noise is calibrated to spend fit.privacy's epsilon in: `privacy.epochs`,
    unless the raw block sets `noise_multiplier` (then it wins and nothing is calibrated); None
    without fit.privacy."""
    if privacy is None or (params.get("differential_privacy") or {}).get("noise_multiplier") is not None:
        return None
    return privacy.epochs


def privacy_problems(params: dict[str, Any], privacy: PrivacyConfig | None) -> list[str]:
    """fit.params that contradict fit.privacy, or that would void the DP guarantee."""
    raw = params.get("differential_privacy")
    problems = []
    if privacy is not None and isinstance(raw, dict):
        for key, name, ours in (("max_epsilon", "epsilon", privacy.epsilon), ("delta", "delta", privacy.delta)):
            if raw.get(key) is not None and raw[key] != ours:
                problems.append(
                    f"params.differential_privacy.{key} is {raw[key]!r} but privacy.{name} is {ours!r}: give the "
                    "target once, in fit.privacy (the raw block may only add noise_multiplier, max_grad_norm, "
                    "value_protection_epsilon)"
                )
        vp = raw.get("value_protection_epsilon")
        if isinstance(vp, int | float) and vp >= privacy.epsilon:
            problems.append(
                f"params.differential_privacy.value_protection_epsilon {vp!r} is not below privacy.epsilon "
                f"{privacy.epsilon!r}: value protection would leave nothing for training"
            )
    if (privacy is not None or raw) and params.get("value_protection") is False:
        problems.append(
            "params.value_protection: false with differential privacy: the engine would take column bounds and "
            "categories from the real rows without noise, so the model would carry no DP guarantee; leave it true"
        )
    return problems


class TabularArgn(ExternalEngine):
    """TabularARGN on the main table, or on a parent table and one child table (`argn_sets`);
    the model is the folder generation needs, tarred."""

    def param_problems(self, params: dict[str, Any]) -> list[str]:
        return param_problems(params)

    def privacy_problems(self, params: dict[str, Any], privacy: PrivacyConfig | None) -> list[str]:
        return privacy_problems(params, privacy)

    def privacy_spent(self, model: ExternalModel) -> dict[str, Any] | None:
        """The kept weights' epsilon (`dp_eps_checkpoint`) and the last step's, with delta, from the
        training summary the runner wrote into the model manifest."""
        training = model.manifest.get("training") or {}
        if not model.manifest["params"].get("differential_privacy") or training.get("dp_eps") is None:
            return None
        return {
            "epsilon": training.get("dp_eps_checkpoint", training["dp_eps"]),
            "epsilon_last_step": training["dp_eps"],
            "delta": training["dp_delta"],
        }

    def privacy_settings(self, model: ExternalModel) -> dict[str, Any] | None:
        """The DP-SGD settings the runner trained with (`dp_sgd`: noise multiplier, calibrated or not,
        epochs, batch size, sample rate, ...); for a parent and a child model, one block per model."""
        training = model.manifest.get("training") or {}
        if "dp_sgd" in training:
            return training["dp_sgd"]
        parts = {k: v["dp_sgd"] for k, v in training.items() if isinstance(v, dict) and "dp_sgd" in v}
        return parts or None

    def relational_problems(self, cfg: DatasetConfig) -> list[str]:
        return argn_sets.shape_problems(cfg)

    def fit(self, train: Tables, metadata: Any, cfg: DatasetConfig, lay: Layout) -> ExternalModel:
        md = metadata.to_dict()["tables"]
        params = {**DEFAULTS, **cfg.fit.params}
        if lay.relational:
            parts = argn_sets.fit_parts(train, md, cfg)
        elif cfg.source.sequence:
            parts = argn_sets.sequence_parts(train[lay.main], md, cfg, lay.main)
        else:
            key = md[lay.main].get("primary_key")
            df = train[lay.main]
            parts = [argn_sets.Part("", lay.main, df, encodings(md[lay.main], df, {key}), key)]
        rare = argn_sets.all_rare_problems(parts, params)
        if rare:
            raise InvalidInputError(
                f"dataset '{cfg.name}'",
                rare,
                hint="Declare the column an identifier (`fit.pii.columns: {<column>: id}`: fresh values, never "
                "learned; `fit.pii.policy: drop` leaves it out), fit the dataset with 'gaussian_copula', or, "
                "without differential privacy, set `fit.params.value_protection: false` (real values may then "
                "be released).",
            )
        dp = dp_settings(params, cfg.fit.privacy, models=len(parts))
        if dp is not None:
            params["differential_privacy"] = dp
        epochs = dp_epochs(params, cfg.fit.privacy)
        if epochs is not None:  # the calibrated noise spends epsilon by then: a later epoch would be discarded
            params["max_epochs"] = epochs
        model_tmp = tempfile.TemporaryDirectory(prefix=f"{self.info.name}-model-")
        with tempfile.TemporaryDirectory(prefix=f"{self.info.name}-fit-") as tmp:
            work = Path(tmp)
            request = [part.request(work) for part in parts]
            fit = {"model_dir": model_tmp.name, "seed": cfg.seed, "params": params, "dp_epochs": epochs}
            response = self.call("fit", {**fit, "parts": request}, work)
        env = self.env.describe()
        manifest = {
            "engine": self.info.name,
            "environment": {k: env[k] for k in ("name", "lock", "lock_sha256")},
            "params": params,
            "seed": cfg.seed,
            "library": response["library"],
        }
        if lay.relational or cfg.source.sequence:
            manifest["tables"] = {part.dir: part.describe(md) for part in parts}
            manifest["training"] = argn_sets.training_summary(response["training"])
        if cfg.source.sequence:
            seq, df = cfg.source.sequence, train[lay.main]
            manifest["sequence"] = {
                "key": seq.key,
                "context_columns": list(seq.context_columns),
                "regex": md[lay.main]["columns"][seq.key].get("regex_format"),
                "stats": length_stats(df, seq.key),
                "columns": list(df.columns),
                "dtypes": {c: str(t) for c, t in df.dtypes.items()},
            }
        if not manifest.get("tables"):
            part = parts[0]
            manifest |= {
                "encoding_types": part.encodings,
                "primary_key": part.primary_key,
                "columns": list(part.frame.columns),
                "dtypes": {c: str(t) for c, t in part.frame.dtypes.items()},
                "training": response["training"][""],
            }
        return ExternalModel(Path(model_tmp.name), manifest, model_tmp)

    def sample(self, model: ExternalModel, request: SampleRequest) -> Tables:
        if "tables" not in model.manifest:
            return super().sample(model, request)
        sequences = "sequence" in model.manifest
        with tempfile.TemporaryDirectory(prefix=f"{self.info.name}-sample-") as tmp:
            work = Path(tmp)
            if sequences:
                parts = argn_sets.sequence_sample_parts(model.manifest, request, work)
            else:
                parts = argn_sets.sample_parts(model.manifest, request, work)
            folder, params = str(model.folder), model.manifest["params"]
            self.call("sample", {"model_dir": folder, "seed": request.seed, "params": params, "parts": parts}, work)
            if sequences:
                return argn_sets.read_sequences(model.manifest, work, request.main, request.first_key)
            return argn_sets.read_sampled(model.manifest, work)


ENGINE = TabularArgn(
    EngineInfo(
        "tabular_argn",
        "autoregressive",
        "Apache-2.0",
        PARAMS,
        multi_table=True,
        sequences=True,
        conditions=True,
        dp=True,
        environment="tabularargn",
        multi_table_limits=argn_sets.LIMITS,
        forkable=True,  # this side only writes requests and reads parquet; torch runs in the runner's process
    ),
    EngineEnv("tabularargn"),
    Path(__file__).with_name("argn_runner.py"),
)
