"""The `gates` section of a dataset block: every release threshold, with its reason."""

from __future__ import annotations

from pydantic import Field

from pipelines.config.base import StrictModel


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
