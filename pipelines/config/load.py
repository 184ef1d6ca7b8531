"""Reading params.yaml, merging each dataset block over `defaults`, and run-time overrides."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import ValidationError

from pipelines.config.base import DATASET_REQUIRED, NAME_PATTERN, SECTIONS, StrictModel
from pipelines.config.dataset import DatasetConfig, Params
from pipelines.config.gates import GatesConfig
from pipelines.config.governance import GovernanceConfig
from pipelines.config.sections import BlendConfig, FitConfig, GenerateConfig, IngestConfig
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


def _description(model: Any, loc: tuple[Any, ...]) -> str | None:
    """The description of the field at `loc` of a config model (None when it has none), through
    optional fields and the items of lists and mappings."""
    description = None
    for part in loc:
        args = [a for a in get_args(model) if a is not type(None)]
        if get_origin(model) in (Union, UnionType) and len(args) == 1:
            model = args[0]  # an optional field
        if get_origin(model) in (dict, tuple, list):  # `part` is an item's key or index
            model = get_args(model)[-1 if get_origin(model) is dict else 0]
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        description, model = fields[part].description, fields[part].annotation
    return description


def _problem(e: Mapping[str, Any], prefix: str, model: Any = None) -> str:
    """One pydantic error as `key.path: message`; an unknown key and a missing one say what to do."""
    loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see params.yaml `defaults` for every knob)"
    elif e["type"] == "missing":
        about = _description(model, e["loc"]) if model is not None else None
        msg = f"missing: required ({about})" if about else "missing: required (see README, Configuration)"
    return f"{loc}: {msg}"


def _pydantic_problems(err: ValidationError, prefix: str, model: Any = None) -> list[str]:
    return [_problem(e, prefix, model) for e in err.errors()]


_DEFAULT_KEYS = {"seed", "governance", *SECTIONS}

_SECTION_MODELS: dict[str, type[StrictModel]] = {
    "ingest": IngestConfig,
    "fit": FitConfig,
    "generate": GenerateConfig,
    "blend": BlendConfig,
    "gates": GatesConfig,
    "governance": GovernanceConfig,
}

_MISSING_HINTS = {
    "source": "say where the real data is, e.g. `source: {path: sources/<name>.csv, format: csv}` "
    "(csv | parquet | sql: README, Adding a dataset)",
    "target": "name the column to predict (it enables the utility gates and a stratified split), "
    "or write `target: null` for none",
    **{s: f"add `{s}: {{}}` (`{{}}` inherits the defaults)" for s in SECTIONS},
}
"""What to write when a key every block needs is missing (DVC lists each as a stage param)."""


def _unknown_default_keys(defaults: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Problems of `defaults` that are its own (a top-level key or a section key that does not
    exist, a section that is not a mapping), each named once at `defaults.<key>`, and a copy of
    `defaults` without them, so they are not reported again under every dataset."""
    problems = [
        f"defaults.{k}: unknown key (`defaults` holds `seed`, `governance` and the sections {', '.join(SECTIONS)})"
        for k in defaults
        if k not in _DEFAULT_KEYS
    ]
    clean = {k: copy.deepcopy(v) for k, v in defaults.items() if k in _DEFAULT_KEYS}
    for section, model in _SECTION_MODELS.items():
        if section not in clean:
            continue
        if not isinstance(clean[section], Mapping):
            problems.append(f"defaults.{section}: must be a mapping")
            del clean[section]
            continue
        try:
            model.model_validate(clean[section])
        except ValidationError as err:
            for e in err.errors():
                if e["type"] == "extra_forbidden":
                    problems.append(_problem(e, f"defaults.{section}"))
                    _drop(clean[section], e["loc"])
    return problems, clean


def _drop(mapping: dict[str, Any], loc: tuple[Any, ...]) -> None:
    """Remove the key at `loc` from nested mappings (a no-op when it is not there)."""
    *parents, last = loc
    for part in parents:
        mapping = mapping.get(part) if isinstance(mapping, dict) else None  # type: ignore[assignment]
    if isinstance(mapping, dict):
        mapping.pop(last, None)


def build_dataset(
    name: str, block: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "datasets"
) -> DatasetConfig:
    """Validate one dataset block merged over defaults; raise ConfigError naming key paths and
    what to write for a missing one."""
    prefix = f"{where}.{name}"
    problems: list[str] = []
    if not NAME_PATTERN.match(name):
        problems.append(f"{prefix}: dataset names are lowercase letters, digits and _ (max 63)")
    if not isinstance(block, Mapping):
        raise ConfigError([f"{prefix}: must be a mapping, got {type(block).__name__}"])
    for key in DATASET_REQUIRED:
        if key not in block:
            problems.append(f"{prefix}.{key}: missing: {_MISSING_HINTS[key]} (DVC tracks it as a stage param)")
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
        raise ConfigError(_pydantic_problems(err, prefix, DatasetConfig)) from None


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError(["(top level): must be a mapping with `defaults` and `datasets`"], source)
    problems = [f"{k}: unknown top-level key" for k in raw if k not in ("defaults", "datasets")]
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append("defaults: must be a mapping")
        defaults = {}
    default_problems, defaults = _unknown_default_keys(defaults)
    problems += default_problems
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
        text = path.read_text(encoding="utf-8")
        expanded = _expanded_size(yaml.compose(text, Loader=yaml.SafeLoader))
        if expanded > MAX_YAML_VALUES:
            raise ConfigError(
                [f"expands to {expanded:,} values through anchors and aliases (at most {MAX_YAML_VALUES:,})"], str(path)
            )
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError([f"not valid YAML: {err}"], str(path)) from None
    return parse_params(raw, str(path))


MAX_YAML_VALUES = 100_000
"""A params.yaml expanding to more values than this (a YAML alias bomb) is refused before use."""


def _expanded_size(node: yaml.Node | None) -> int:
    """How many values the YAML document holds once every alias is expanded (memoised per node,
    so a bomb is measured in linear time without being expanded)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = 1  # a node that refers to itself (a cycle) counts once while measured
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        sizes[id(n)] = min(total, 10 * MAX_YAML_VALUES)
        return sizes[id(n)]

    return size(node) if node is not None else 0


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
        raise ConfigError([*bad, *_pydantic_problems(err, "", DatasetConfig)], "run overrides") from None
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
