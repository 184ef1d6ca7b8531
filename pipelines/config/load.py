"""Reading params.yaml, merging each dataset block over `defaults`, and run-time overrides."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.config.base import DATASET_REQUIRED, NAME_PATTERN, SECTIONS
from pipelines.config.dataset import DatasetConfig, Params
from pipelines.errors import ConfigError


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `override` merged in, recursively for nested mappings."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _pydantic_problems(err: ValidationError, prefix: str) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params.yaml `defaults` for every knob)"
        problems.append(f"{loc}: {msg}")
    return problems


_DEFAULT_KEYS = {"seed", *SECTIONS}


def build_dataset(
    name: str, block: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "datasets"
) -> DatasetConfig:
    """Validate one dataset block merged over defaults; raise ConfigError naming key paths."""
    prefix = f"{where}.{name}"
    problems: list[str] = []
    if not NAME_PATTERN.match(name):
        problems.append(f"{prefix}: dataset names are lowercase letters, digits and _ (max 63)")
    if not isinstance(block, Mapping):
        raise ConfigError([f"{prefix}: must be a mapping, got {type(block).__name__}"])
    for key in DATASET_REQUIRED:
        if key not in block:
            hint = "`{}` inherits the defaults" if key in SECTIONS else "null if none"
            problems.append(f"{prefix}.{key}: missing (DVC tracks it as a stage param; {hint})")
    for key in SECTIONS:
        if key in block and not isinstance(block[key], Mapping):
            problems.append(f"{prefix}.{key}: must be a mapping (use {{}} to inherit defaults)")
    if problems:
        raise ConfigError(problems)
    merged = deep_merge({k: v for k, v in defaults.items() if k in _DEFAULT_KEYS}, block)
    merged["name"] = name
    try:
        return DatasetConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_pydantic_problems(err, prefix)) from None


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError(["(top level): must be a mapping with `defaults` and `datasets`"], source)
    problems = [f"{k}: unknown top-level key" for k in raw if k not in ("defaults", "datasets")]
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append("defaults: must be a mapping")
        defaults = {}
    problems += [f"defaults.{k}: unknown key" for k in defaults if k not in _DEFAULT_KEYS]
    datasets_raw = raw.get("datasets")
    if not isinstance(datasets_raw, Mapping) or not datasets_raw:
        problems.append("datasets: must map at least one dataset name to its block")
        datasets_raw = {}
    datasets: dict[str, DatasetConfig] = {}
    for name, block in datasets_raw.items():
        try:
            datasets[str(name)] = build_dataset(str(name), block, defaults)
        except ConfigError as err:
            problems += err.problems
    if problems:
        raise ConfigError(problems, source)
    return Params(defaults=dict(defaults), datasets=datasets)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate params.yaml (ConfigError names every bad key path)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{path}: file not found (run from the repository root)"], str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError([f"not valid YAML: {err}"], str(path)) from None
    return parse_params(raw, str(path))


OVERRIDABLE = ("seed", *SECTIONS)
"""Top-level keys of a dataset block that a run may override (Airflow conf, CLI)."""


def apply_overrides(params: Params, name: str, overrides: Mapping[str, Any] | None) -> DatasetConfig:
    """The dataset's config with run-time overrides merged in, validated like params.yaml."""
    base = params.dataset(name)
    if not overrides:
        return base
    if not isinstance(overrides, Mapping):
        raise ConfigError(["(overrides): must be a JSON object"], "run overrides")
    bad = [
        f"{k}: cannot be overridden per run (allowed: {', '.join(OVERRIDABLE)})"
        for k in overrides
        if k not in OVERRIDABLE
    ]
    allowed = {k: v for k, v in overrides.items() if k in OVERRIDABLE}
    merged = deep_merge(base.model_dump(exclude={"name"}), allowed)
    try:
        cfg = DatasetConfig.model_validate({**merged, "name": name})
    except ValidationError as err:
        raise ConfigError([*bad, *_pydantic_problems(err, "")], "run overrides") from None
    if bad:  # every problem at once: the keys that cannot be overridden and those whose values are wrong
        raise ConfigError(bad, "run overrides")
    return cfg


PARAM_KEYS = ("seed", *SECTIONS)
"""The effective params a release manifest records and lineage compares with the defaults."""


def recorded_defaults(cfg: DatasetConfig, root: Path) -> dict[str, Any] | None:
    """What `defaults` alone gives this dataset (params.yaml at release time), for the manifest.

    Lineage compares the effective params with these. None when params.yaml cannot be read.
    """
    try:
        params = load_params(root / "params.yaml")
        base: dict[str, Any] = {
            "source": cfg.source.model_dump(mode="json"),
            "target": cfg.target,
            "seed": params.defaults.get("seed", cfg.seed),
            **{s: {} for s in SECTIONS},
        }
        values = build_dataset(cfg.name, base, params.defaults).to_params()
    except (ConfigError, OSError):
        return None
    return {k: values[k] for k in PARAM_KEYS}
