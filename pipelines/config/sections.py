"""The sections of a dataset block: ingest, fit (with pii, privacy), generate, blend (gates: gates.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from pipelines.config.base import StrictModel
from pipelines.rules import ConstraintRule


class IngestConfig(StrictModel):
    """Reading, normalising and splitting the real data."""

    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    drop_columns: tuple[str, ...] = Field(default=(), strict=False)
    min_rows: int = Field(default=50, ge=2)
    max_source_mb: int = Field(
        default=2048, ge=1, description="largest source read, in MB, after decompression (a .gz cannot blow up)"
    )
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


class PiiConfig(StrictModel):
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
    ignore: tuple[str, ...] = Field(default=(), strict=False, description="columns detection must leave alone")

    @model_validator(mode="after")
    def _declared_not_ignored(self) -> PiiConfig:
        both = sorted(set(self.columns) & set(self.ignore))
        if both:
            raise ValueError(f"columns {both} are both declared PII (columns) and ignored (ignore)")
        return self


class PrivacyConfig(StrictModel):
    """Differential privacy of the fit: the (epsilon, delta) the engine must train within, and the
    epochs a DP-SGD engine spends them in."""

    epsilon: float = Field(
        gt=0,
        description="the epsilon the engine may spend on this model (DP-SGD plus value protection for "
        "tabular_argn); smaller is more private; the spent epsilon is recorded per fit and per release",
    )
    delta: float = Field(
        default=1e-5,
        gt=0,
        lt=1,
        description="the delta of the guarantee (probability it fails); keep it well below 1 / rows",
    )
    epochs: int = Field(
        default=10,
        ge=1,
        description="DP-SGD engines (tabular_argn): the epochs in which training spends epsilon (less the value "
        "protection share): the noise multiplier is calibrated to it from the rows and batch size at fit time, "
        "and max_epochs becomes it; ignored when fit.params.differential_privacy.noise_multiplier is set. "
        "10: about where TabularARGN stops by itself without DP (epoch 11 on hdma); more epochs need more noise "
        "per step, fewer leave the model undertrained (docs/engines.md 'Differential privacy')",
    )


def _engine_names(schema: dict[str, Any]) -> None:
    """The JSON schema of `fit.synthesizer` lists the engines registered when it is generated."""
    from pipelines import engines
    from pipelines.engines.candidates import AUTO

    schema["enum"] = [*engines.REGISTRY, AUTO]


class FitConfig(StrictModel):
    """Which synthesizer, with which constructor arguments."""

    synthesizer: str = Field(
        default="gaussian_copula",
        description="the engine that fits the data (`synthgate engines` lists them), or `auto`: fit the "
        "candidates within budget_s and keep the best on a validation slice of train (docs/engines.md)",
        json_schema_extra=_engine_names,
    )
    params: dict[str, Any] = Field(default_factory=dict, description="constructor arguments of that engine")
    licences: tuple[str, ...] | None = Field(
        default=None,
        strict=False,
        description="SPDX licences the engine may be under, e.g. [Apache-2.0, MIT] for data shared with "
        "third parties (SDV is BUSL-1.1); null: any",
    )
    privacy: PrivacyConfig | None = Field(
        default=None,
        description="differential privacy {epsilon, delta, epochs} for engines that support it (`synthgate "
        "engines`: dp); null: no DP guarantee (docs/engines.md 'Differential privacy')",
    )
    candidates: tuple[str, ...] | None = Field(
        default=None,
        strict=False,
        description="synthesizer auto: the engines it tries (ignored otherwise); null: every registered engine "
        "allowed by licences that fits the dataset's kind (one table, or several with keys) and what it asks",
    )
    budget_s: float = Field(
        default=600,
        gt=0,
        description="synthesizer auto: seconds of fitting shared by the candidates, turned into fixed epoch limits "
        "by a measured cost model (never a time cap: the same inputs pick the same engine); the winner's "
        "refit on the whole train split comes on top",
    )
    validation_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=0.9,
        description="synthesizer auto: share of the train split carved off (seeded) to score the candidates on; "
        "the holdout stays the gates' own",
    )
    max_rows: int | None = Field(
        default=None,
        ge=1,
        description="most rows of the train split the engine is fitted on: a bigger split is cut to a seeded "
        "subsample (stratified by a class target, whole sequences for sequence datasets, else uniform; the same "
        "rows every run), recorded in the fit record and manifest; the gates still compare with the whole train "
        "split and the holdout, and generate.rows: null still means the train split's size; null: every train "
        "row; refused for relational datasets (docs/engines.md 'Fitting big tables')",
    )
    pii: PiiConfig = Field(default_factory=PiiConfig)
    constraints: tuple[ConstraintRule, ...] = Field(
        default=(), strict=False, description="business rules enforced at fit time and gated before release"
    )

    @model_validator(mode="after")
    def _known_params(self) -> FitConfig:
        from pipelines import engines
        from pipelines.engines.candidates import AUTO, candidate_problems

        if self.synthesizer == AUTO:
            bad = candidate_problems(self)
            if bad:
                raise ValueError("; ".join(bad))
            return self._unique_rules()
        if self.synthesizer not in engines.REGISTRY:
            raise ValueError(
                f"synthesizer {self.synthesizer!r} is not a known engine (known: {', '.join(engines.REGISTRY)})"
            )
        engine = engines.REGISTRY[self.synthesizer]
        accepted = engine.info.params
        unknown = sorted(set(self.params) - accepted)
        if unknown:
            allowed = ", ".join(sorted(accepted))
            raise ValueError(f"params {unknown} are not arguments of {self.synthesizer} (allowed: {allowed})")
        bad = engine.param_problems(self.params)
        if bad:
            raise ValueError(f"params of {self.synthesizer}: {'; '.join(bad)}")
        if self.licences is not None and engine.info.licence not in self.licences:
            raise ValueError(
                f"synthesizer {self.synthesizer!r} is under {engine.info.licence}, which is not in this dataset's "
                f"licences {list(self.licences)}: choose an engine under one of them (`synthgate engines`)"
            )
        return self._unique_rules()

    def _unique_rules(self) -> FitConfig:
        labels = [r.label for r in self.constraints]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"constraints: rules {dupes} are listed twice")
        return self


class GenerateConfig(StrictModel):
    """How many rows to sample, in shards of how many rows."""

    rows: int | None = Field(default=None, ge=1, description="null: as many rows as the train split")
    max_rows: int = Field(
        default=10_000_000, ge=1, description="upper bound on rows, checked before any stage runs (raise it on purpose)"
    )
    shard_rows: int = Field(default=50_000, ge=100)
    workers: int | None = Field(
        default=None,
        ge=1,
        description="processes sampling the shards in one run (CLI/DVC; at most one per shard); null: the "
        "machine's usable cores. Performance only: the shards' bytes are the same for any count",
    )
    conditions: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="conditional sampling: every generated row has these values, e.g. {deny: 'yes'}",
    )

    @model_validator(mode="after")
    def _bounded(self) -> GenerateConfig:
        if self.rows is not None and self.rows > self.max_rows:
            raise ValueError(
                f"rows {self.rows:,} exceeds max_rows {self.max_rows:,}: lower rows, or raise max_rows if you mean it"
            )
        return self


class BlendConfig(StrictModel):
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
