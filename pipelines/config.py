"""params.yaml: loaded once into frozen, validated models; overrides go through the same checks.

Layout::

    defaults:            # every knob, with its default
      seed: 42
      ingest: {...}
      fit: {...}
      generate: {...}
      blend: {...}
      gates: {...}
    datasets:
      hdma:              # one block per dataset; sections are merged over `defaults`
        source: {path: sources/hdma.csv, format: csv}
        target: deny
        seed: 7
        ingest: {}       # every section is present (DVC tracks it as a param), `{}` inherits
        ...

An unknown key or a bad value is rejected with its full key path (`datasets.hdma.generate.rows`).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.errors import ConfigError

SECTIONS = ("ingest", "fit", "generate", "blend", "gates")
"""Sections every dataset block must carry (DVC lists them as stage params)."""

DATASET_REQUIRED = ("source", "target", "seed", *SECTIONS)

SYNTHESIZER_PARAMS: dict[str, frozenset[str]] = {
    "gaussian_copula": frozenset(
        {"enforce_min_max_values", "enforce_rounding", "numerical_distributions", "default_distribution"}
    ),
    "ctgan": frozenset(
        {
            "enforce_min_max_values", "enforce_rounding", "embedding_dim", "generator_dim",
            "discriminator_dim", "generator_lr", "generator_decay", "discriminator_lr",
            "discriminator_decay", "batch_size", "discriminator_steps", "log_frequency",
            "epochs", "pac", "enable_gpu",
        }
    ),
    "tvae": frozenset(
        {
            "enforce_min_max_values", "enforce_rounding", "embedding_dim", "compress_dims",
            "decompress_dims", "l2scale", "batch_size", "epochs", "loss_factor", "enable_gpu",
        }
    ),
    "copulagan": frozenset(
        {
            "enforce_min_max_values", "enforce_rounding", "embedding_dim", "generator_dim",
            "discriminator_dim", "generator_lr", "generator_decay", "discriminator_lr",
            "discriminator_decay", "batch_size", "discriminator_steps", "log_frequency",
            "epochs", "pac", "enable_gpu", "numerical_distributions", "default_distribution",
        }
    ),
}
"""Constructor arguments each SDV 2.0 synthesizer accepts (checked without importing SDV)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Model):
    """Where the real data comes from."""

    path: str = Field(description="CSV/parquet file, or for format=sql the file holding the query")
    format: Literal["csv", "parquet", "sql"] = "csv"
    url: str | None = Field(
        default=None, description="SQLAlchemy URL for format=sql; `env:VAR` reads it from VAR"
    )
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def _sql_needs_url(self) -> SourceConfig:
        if self.format == "sql" and not self.url:
            raise ValueError("format 'sql' needs `url` (a SQLAlchemy URL or env:VAR)")
        if self.format != "sql" and self.url:
            raise ValueError("`url` is only used with format 'sql'")
        return self

    def resolved_url(self) -> str:
        """The SQLAlchemy URL, reading `env:VAR` from the environment."""
        if self.url is None:
            raise ConfigError(["source.url: not set"])
        if self.url.startswith("env:"):
            var = self.url[4:]
            value = os.environ.get(var)
            if not value:
                raise ConfigError([f"source.url: environment variable {var} is not set"])
            return value
        return self.url


class IngestConfig(_Model):
    """Reading, normalising and splitting the real data."""

    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    drop_columns: tuple[str, ...] = ()
    min_rows: int = Field(default=50, ge=2)


class FitConfig(_Model):
    """Which synthesizer, with which constructor arguments."""

    synthesizer: Literal["gaussian_copula", "ctgan", "tvae", "copulagan"] = "gaussian_copula"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_params(self) -> FitConfig:
        unknown = sorted(set(self.params) - SYNTHESIZER_PARAMS[self.synthesizer])
        if unknown:
            allowed = ", ".join(sorted(SYNTHESIZER_PARAMS[self.synthesizer]))
            raise ValueError(
                f"params {unknown} are not arguments of {self.synthesizer} (allowed: {allowed})"
            )
        return self


class GenerateConfig(_Model):
    """How many rows to sample, in shards of how many rows."""

    rows: int | None = Field(default=None, ge=1, description="null: as many rows as the train split")
    shard_rows: int = Field(default=50_000, ge=100)


class BlendConfig(_Model):
    """How synthetic rows are combined with real train rows."""

    strategy: Literal["synthetic_only", "augment"] = "synthetic_only"
    real_ratio: float = Field(
        default=0.0, ge=0, le=10, description="augment: real rows added per synthetic row"
    )

    @model_validator(mode="after")
    def _ratio_matches_strategy(self) -> BlendConfig:
        if self.strategy == "augment" and self.real_ratio <= 0:
            raise ValueError("strategy 'augment' needs real_ratio > 0")
        if self.strategy == "synthetic_only" and self.real_ratio != 0:
            raise ValueError("real_ratio is only used with strategy 'augment'")
        return self


class GatesConfig(_Model):
    """Release thresholds; a release needs every gate to pass."""

    quality_min: float = Field(default=0.75, ge=0, le=1)
    diagnostic_min: float = Field(default=0.95, ge=0, le=1)
    exact_copies_max: float = Field(default=0.01, ge=0, le=1)
    dcr_share_max: float = Field(default=0.60, ge=0, le=1)
    utility_gap_max: float = Field(default=0.15, ge=0, le=1)
    sample_rows: int = Field(default=5_000, ge=100, description="rows compared per side by the privacy and utility gates")


class DatasetConfig(_Model):
    """One dataset's effective settings (its block merged over `defaults`)."""

    name: str
    source: SourceConfig
    target: str | None = None
    seed: int = Field(ge=0, lt=2**32)
    default: bool = True
    description: str = ""
    schedule: str | None = None
    tags: tuple[str, ...] = ()
    ingest: IngestConfig
    fit: FitConfig
    generate: GenerateConfig
    blend: BlendConfig
    gates: GatesConfig

    def to_params(self) -> dict[str, Any]:
        """The effective params as plain JSON (for MLflow and the manifest)."""
        return self.model_dump(mode="json")


class Params(_Model):
    """The whole params.yaml, validated."""

    defaults: dict[str, Any]
    datasets: dict[str, DatasetConfig]

    def dataset(self, name: str) -> DatasetConfig:
        """One dataset's config, or a ConfigError naming the datasets that exist."""
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(sorted(self.datasets)) or "none"
            raise ConfigError([f"datasets.{name}: no such dataset (configured: {known})"]) from None


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
    if not _NAME.match(name):
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
    bad = [f"{k}: cannot be overridden per run (allowed: {', '.join(OVERRIDABLE)})"
           for k in overrides if k not in OVERRIDABLE]
    if bad:
        raise ConfigError(bad, "run overrides")
    merged = deep_merge(base.model_dump(exclude={"name"}), overrides)
    try:
        return DatasetConfig.model_validate({**merged, "name": name})
    except ValidationError as err:
        raise ConfigError(_pydantic_problems(err, ""), "run overrides") from None
