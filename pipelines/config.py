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
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.errors import ConfigError
from pipelines.rules import ConstraintRule
from pipelines.tableset import layout

SECTIONS = ("ingest", "fit", "generate", "blend", "gates")
"""Sections every dataset block must carry (DVC lists them as stage params)."""

DATASET_REQUIRED = ("source", "target", "seed", *SECTIONS)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSource(_Model):
    """One table of a relational dataset: its file (inside `source.path`) and primary key."""

    file: str = Field(description="file name inside the `source.path` folder (csv or parquet, per `format`)")
    primary_key: str | None = Field(default=None, description="the column that identifies a row")


class Relationship(_Model):
    """A foreign key: `child.child_key` refers to `parent.parent_key` (the parent's primary key)."""

    parent: str
    child: str
    parent_key: str
    child_key: str

    @property
    def label(self) -> str:
        """`child.child_key -> parent.parent_key`."""
        return f"{self.child}.{self.child_key} -> {self.parent}.{self.parent_key}"


class SourceConfig(_Model):
    """Where the real data comes from."""

    path: str = Field(description="CSV/parquet file, or for format=sql the file holding the query")
    format: Literal["csv", "parquet", "sql"] = "csv"
    url: str | None = Field(default=None, description="SQLAlchemy URL for format=sql; `env:VAR` reads it from VAR")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    tables: dict[str, TableSource] = Field(
        default_factory=dict, description="relational datasets: table name -> file and primary key"
    )
    relationships: tuple[Relationship, ...] = Field(
        default=(), description="relational datasets: foreign keys between the tables"
    )
    main_table: str | None = Field(
        default=None, description="relational datasets: the fact table (split, privacy and utility gates)"
    )

    @model_validator(mode="after")
    def _sql_needs_url(self) -> SourceConfig:
        if self.format == "sql" and not self.url:
            raise ValueError("format 'sql' needs `url` (a SQLAlchemy URL or env:VAR)")
        if self.format != "sql" and self.url:
            raise ValueError("`url` is only used with format 'sql'")
        return self

    @model_validator(mode="after")
    def _relational_schema(self) -> SourceConfig:
        if not self.tables:
            if self.relationships or self.main_table:
                raise ValueError("`relationships` and `main_table` need `tables` (a relational dataset)")
            return self
        problems = []
        if self.format == "sql":
            problems.append("relational datasets read csv or parquet files (format 'sql' is not supported)")
        bad_names = [t for t in self.tables if not _NAME.match(t)]
        if bad_names:
            problems.append(f"table names {bad_names} must be lowercase letters, digits and _")
        if self.main_table not in self.tables:
            problems.append(f"main_table {self.main_table!r} must name one of the tables {sorted(self.tables)}")
        for rel in self.relationships:
            for role, table in (("parent", rel.parent), ("child", rel.child)):
                if table not in self.tables:
                    problems.append(
                        f"relationship {rel.label}: {role} table '{table}' is not in `tables` ({sorted(self.tables)})"
                    )
            parent = self.tables.get(rel.parent)
            if parent is not None and parent.primary_key != rel.parent_key:
                problems.append(
                    f"relationship {rel.label}: '{rel.parent_key}' must be the primary key of "
                    f"'{rel.parent}' (declared: {parent.primary_key!r})"
                )
        if problems:
            raise ValueError("; ".join(problems))
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
    orphans: Literal["nullify", "drop", "error"] = Field(
        default="nullify",
        description="relational datasets: a foreign key with no parent row is set to null (nullify), "
        "its row is dropped (drop), or ingest fails (error)",
    )


PiiKind = Literal[
    "name",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "address",
    "street_address",
    "ssn",
    "credit_card",
    "iban",
    "ipv4",
    "id",
]
"""Kinds of personal identifier Synthgate detects and replaces (see pipelines/pii.py)."""

PII_KINDS: tuple[str, ...] = get_args(PiiKind)


def _no_yaml_booleans(value: Any, what: str) -> Any:
    """YAML 1.1 reads unquoted yes/no/on/off as booleans: say so instead of a type error."""
    if isinstance(value, Mapping):
        bad = [k for k in value if isinstance(k, bool)]
        if bad:
            raise ValueError(
                f"{what} key {bad[0]!r} is a boolean: YAML reads unquoted yes/no/on/off/true/false "
                'as booleans; quote the value ("yes")'
            )
    return value


class PiiConfig(_Model):
    """Personal identifiers: detected or declared, never learned, replaced or dropped."""

    detect: bool = Field(default=True, description="detect PII columns by name and value patterns")
    policy: Literal["replace", "drop"] = Field(
        default="replace", description="replace: Faker values (never a real one); drop: remove the column"
    )
    locale: str = Field(
        default="en_US",
        pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$",
        description="Faker locale of the replacement values, e.g. en_US, de_DE, fr_FR",
    )
    columns: dict[str, PiiKind] = Field(
        default_factory=dict, description="declared PII columns: column -> kind (name, email, ...)"
    )
    ignore: tuple[str, ...] = Field(default=(), description="columns detection must leave alone")

    @model_validator(mode="after")
    def _declared_not_ignored(self) -> PiiConfig:
        both = sorted(set(self.columns) & set(self.ignore))
        if both:
            raise ValueError(f"columns {both} are both declared PII (columns) and ignored (ignore)")
        return self


class FitConfig(_Model):
    """Which synthesizer, with which constructor arguments."""

    synthesizer: str = Field(
        default="gaussian_copula", description="the engine that fits the data (`synthgate engines` lists them)"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="constructor arguments of that engine")
    pii: PiiConfig = Field(default_factory=PiiConfig)
    constraints: tuple[ConstraintRule, ...] = Field(
        default=(), description="business rules enforced at fit time and gated before release"
    )

    @model_validator(mode="after")
    def _known_params(self) -> FitConfig:
        from pipelines import engines

        if self.synthesizer not in engines.REGISTRY:
            raise ValueError(
                f"synthesizer {self.synthesizer!r} is not a known engine (known: {', '.join(engines.REGISTRY)})"
            )
        accepted = engines.REGISTRY[self.synthesizer].info.params
        unknown = sorted(set(self.params) - accepted)
        if unknown:
            allowed = ", ".join(sorted(accepted))
            raise ValueError(f"params {unknown} are not arguments of {self.synthesizer} (allowed: {allowed})")
        labels = [r.label for r in self.constraints]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"constraints: rules {dupes} are listed twice")
        return self


class GenerateConfig(_Model):
    """How many rows to sample, in shards of how many rows."""

    rows: int | None = Field(default=None, ge=1, description="null: as many rows as the train split")
    shard_rows: int = Field(default=50_000, ge=100)
    conditions: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="conditional sampling: every generated row has these values, e.g. {deny: 'yes'}",
    )


class BlendConfig(_Model):
    """How synthetic rows are combined with real train rows."""

    strategy: Literal["synthetic_only", "augment", "rebalance"] = "synthetic_only"
    real_ratio: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="augment/rebalance: real rows added per synthetic row (rebalance: optional)",
    )
    column: str | None = Field(default=None, description="rebalance: the class column (null: the dataset's target)")
    shares: dict[str, float] = Field(
        default_factory=dict,
        description="rebalance: requested share per class, e.g. {'yes': 0.5}; unlisted classes "
        "share the rest in their real proportions",
    )

    @field_validator("shares", mode="before")
    @classmethod
    def _quoted_classes(cls, value: Any) -> Any:
        return _no_yaml_booleans(value, "class")

    @model_validator(mode="after")
    def _ratio_matches_strategy(self) -> BlendConfig:
        if self.strategy == "augment" and self.real_ratio <= 0:
            raise ValueError("strategy 'augment' needs real_ratio > 0")
        if self.strategy == "synthetic_only" and self.real_ratio != 0:
            raise ValueError("real_ratio is only used with strategy 'augment' or 'rebalance'")
        if self.strategy == "rebalance":
            if not self.shares:
                raise ValueError("strategy 'rebalance' needs `shares`, e.g. {'yes': 0.5}")
            bad = {k: v for k, v in self.shares.items() if not 0 < v <= 1}
            if bad:
                raise ValueError(f"shares must lie in (0, 1]; got {bad}")
            if sum(self.shares.values()) > 1 + 1e-9:
                raise ValueError(f"shares add up to {sum(self.shares.values()):g}, more than 1")
        # `shares`/`column` are ignored by other strategies (a run can switch rebalancing off with
        # {"blend": {"strategy": "synthetic_only"}}: an override cannot empty a mapping)
        return self


class GatesConfig(_Model):
    """Release thresholds; a release needs every gate to pass.

    Each field's `description` is the help text of its Airflow trigger-form field (the form
    lists every field of this model), so a new gate setting needs nothing more than its field.
    """

    quality_min: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="lowest SDMetrics quality score (0-1: column shapes and pair trends of the synthetic rows vs "
        "the train split); the quality gate passes when score >= this; default 0.75: close, not perfect, likeness",
    )
    diagnostic_min: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="lowest SDMetrics diagnostic score (0-1: valid ranges, categories, keys and column types); "
        "the diagnostic gate passes when score >= this; default 0.95: almost every value is a valid one",
    )
    exact_copies_max: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="highest share of synthetic rows identical to a training row; the exact_copies gate passes "
        "when share <= this; default 0.01: at most 1 row in 100 may be a copy",
    )
    dcr_share_max: float = Field(
        default=0.60,
        ge=0,
        le=1,
        description="highest share of synthetic rows closer to a training row than to a holdout row (DCR); the "
        "dcr_share gate passes when share <= this; about 0.5 when nothing is memorised, default 0.60 allows a "
        "little closeness",
    )
    utility_gap_max: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="highest TRTR - TSTR gap on the real holdout (a model trained on real vs on synthetic rows; "
        "datasets with a target only); the utility gate passes when gap <= this; default 0.15: the synthetic-"
        "trained model scores at most 0.15 lower",
    )
    sample_rows: int = Field(
        default=5_000,
        ge=100,
        description="rows sampled per side for the quality, diagnostic and privacy gates (the utility gate uses "
        "at least 20,000); not a threshold: more rows give steadier figures, more slowly",
    )
    utility_rows: int = Field(
        default=20_000,
        ge=100,
        description="rows per side the utility gate trains on at least (it uses the larger of this and sample_rows)",
    )
    gx_release_min: float = Field(
        default=1.0, ge=0, le=1, description="share of the release suite's expectations the release must meet"
    )
    constraints_min: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="share of released rows that must obey each business rule (fit.constraints)",
    )
    referential_integrity_min: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="relational: share of non-missing synthetic foreign keys that must match a parent row",
    )


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

    @model_validator(mode="after")
    def _cross_section_rules(self) -> DatasetConfig:
        problems = []
        pii = set(self.fit.pii.columns)
        if self.target and self.target in pii:
            problems.append(
                f"fit.pii.columns: '{self.target}' is the target; PII is never learned, so it cannot be "
                "predicted: choose another target or remove it from fit.pii.columns"
            )
        for col in sorted(set(self.generate.conditions) & pii):
            problems.append(f"generate.conditions: '{col}' is a PII column (never learned, cannot be a condition)")
        problems += self._engine_problems()
        if layout(self).relational:
            problems += self._relational_problems()
        if self.blend.strategy == "rebalance":
            column = self.blend.column or self.target
            if not column:
                problems.append("blend.column: strategy 'rebalance' needs `column` (or a dataset target)")
            elif column in pii:
                problems.append(f"blend.column: '{column}' is a PII column and cannot be rebalanced")
            elif column in self.generate.conditions:
                problems.append(f"blend.column: '{column}' is also fixed by generate.conditions; use one or the other")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _engine_problems(self) -> list[str]:
        """The engine must support the dataset's kind (one table, or several with keys)."""
        from pipelines import engines

        info = engines.REGISTRY[self.fit.synthesizer].info
        relational = layout(self).relational
        if relational and not info.multi_table:
            multi = [n for n, e in engines.REGISTRY.items() if e.info.multi_table]
            return [
                f"fit.synthesizer: '{info.name}' fits one table; relational datasets are fitted with one of {multi}"
            ]
        if not relational and not info.single_table:
            return [f"fit.synthesizer: '{info.name}' fits several tables; declare them in source.tables"]
        return []

    def _relational_problems(self) -> list[str]:
        unsupported = {
            "generate.conditions": bool(self.generate.conditions) and "not supported for relational datasets",
            "blend.strategy": self.blend.strategy != "synthetic_only"
            and "relational datasets are released synthetic_only",
            "fit.constraints": bool(self.fit.constraints) and "not supported for relational datasets yet",
            "fit.pii.columns": bool(self.fit.pii.columns)
            and "not supported for relational datasets yet (the pii_replay gate still checks detected PII)",
        }
        return [f"{key}: {why}" for key, why in unsupported.items() if why]

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
    bad = [
        f"{k}: cannot be overridden per run (allowed: {', '.join(OVERRIDABLE)})"
        for k in overrides
        if k not in OVERRIDABLE
    ]
    if bad:
        raise ConfigError(bad, "run overrides")
    merged = deep_merge(base.model_dump(exclude={"name"}), overrides)
    try:
        return DatasetConfig.model_validate({**merged, "name": name})
    except ValidationError as err:
        raise ConfigError(_pydantic_problems(err, ""), "run overrides") from None


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
