"""The sections of a dataset block: ingest, fit (with pii), generate, blend, gates."""

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
    """Differential privacy of the fit: the (epsilon, delta) the engine must train within."""

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
        description="differential privacy {epsilon, delta} for engines that support it (`synthgate engines`: dp); "
        "null: no DP guarantee (docs/engines.md 'Differential privacy')",
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


class GatesConfig(StrictModel):
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
    column_shape_min: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="lowest shape score of any single column (SDMetrics Column Shapes: KSComplement for numbers "
        "and dates, TVComplement for categories; 1 = same distribution); the column_shape gate passes when the "
        "worst column's score >= this, so one broken column blocks however good the average (docs/gates.md)",
    )
    pair_trend_min: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="lowest trend score of any pair of columns (CorrelationSimilarity for two numeric columns, "
        "ContingencySimilarity otherwise; every pair, not only the strongly correlated ones SDMetrics averages); "
        "the pair_trend gate passes when the worst pair's score >= this (docs/gates.md)",
    )
    exact_copies_max: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="highest excess share of synthetic rows identical to a training row over the share of real "
        "holdout rows identical to one (on the columns an attacker can match on: keys, id-like, PII and "
        "constant columns left out); the exact_copies gate passes when excess <= this plus three standard "
        "errors of sampling noise; default 0.01: at most 1 row in 100 more copies than fresh real data has",
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
    types_min: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="share of released columns that must keep the source's order, dtype kind, whole numbers "
        "(where 99% of train values are whole), categories and dates; the types gate passes when share >= "
        "this; default 1.0: every column (real holdout rows and GaussianCopula releases score 1.0)",
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
    sequence_length_min: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="sequence datasets: lowest KSComplement of the rows per entity, synthetic vs train (1 = the "
        "same distribution of sequence lengths); the sequence_length gate passes when score >= this",
    )
    minority_recall_ratio_min: float = Field(
        default=0.5,
        ge=0,
        description="lowest ratio of the rarest class's recall on the real holdout, a model trained on synthetic "
        "rows over one trained on real rows (class targets only); the minority_utility gate passes when ratio >= "
        "this; default 0.5: the synthetic-trained model finds at least half as many of the rare class (0: off)",
    )
    bias_rate_gap_max: float = Field(
        default=0.10,
        ge=0,
        description="highest difference, over the groups of each `sensitive` column, between a group's target "
        "rate in the synthetic rows and in the train split (share of the rarest class; for a numeric target "
        "the mean, in train standard deviations); the bias gate passes when gap <= this; default 0.10",
    )
    bias_share_gap_max: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="highest difference, over the groups of each `sensitive` column, between a group's share of "
        "the synthetic rows and of the train split; the bias_share gate passes when gap <= this; default 0.05",
    )
    dcr_low_tail_max: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="highest excess share of synthetic rows whose distance to the closest training record (DCR) "
        "is at or below the holdout rows' dcr_quantile DCR, over the holdout's own share there; the "
        "dcr_low_tail gate passes when excess <= this plus three standard errors of sampling noise; copies "
        "score about 1 - dcr_quantile at any table size; default 0.02 (docs/gates-privacy.md)",
    )
    dcr_quantile: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="the holdout DCR quantile that bounds the low tail the dcr_low_tail gate counts (default 0.05: "
        "the closest 5% of real unseen rows); not a threshold",
    )
    dcr_train_rows: int = Field(
        default=100_000,
        ge=100,
        description="training rows the DCRs are measured against (all when the train split is smaller; a row "
        "identical to a training row has DCR 0 either way); not a threshold: cost grows with it",
    )
    dcr_baseline_protection_min: float = Field(
        default=0.5,
        ge=0,
        description="lowest ratio of SDMetrics DCRBaselineProtection of synthetic rows to that of real holdout "
        "rows (about 1 for fresh real data, 0 for copies); the dcr_baseline_protection gate passes when "
        "ratio >= this; default 0.5: synthetic rows at least half as far from train as real unseen rows",
    )
    attack_rows: int = Field(
        default=100,
        ge=10,
        description="synthetic and holdout rows the dcr_baseline_protection gate scores with SDMetrics; not a "
        "threshold: SDMetrics compares row pairs in pandas, so cost is attack_rows x attack_train_rows",
    )
    attack_train_rows: int = Field(
        default=2_000,
        ge=100,
        description="training rows the dcr_baseline_protection gate compares with (plus each sampled row's "
        "identical training row, so copies are always found); not a threshold",
    )
    canaries: int = Field(
        default=0,
        ge=0,
        le=500,
        description="outlier records planted in the train split of a shadow fit (and as many kept back as "
        "controls) for the canaries gate; 0: off (the default: the shadow fit costs a second fit); single "
        "tables only",
    )
    privacy_budget_max: float | None = Field(
        default=None,
        gt=0,
        description="highest total epsilon spent on the dataset's data: the privacy ledger's sum over every DP model "
        "fitted on it (basic sequential composition, docs/engines.md); the privacy_budget gate passes when total <= "
        "this and blocks a model without DP; null (default): off",
    )
    canary_exposure_max: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="highest share of planted canaries a shadow fit's rows expose (equal on the compared columns, "
        "or within half the canary's distance to the closest training row) minus the share of the controls "
        "never planted; the canaries gate passes when excess <= this; default 0.1: one canary in ten "
        "(docs/gates.md)",
    )
