"""Typed run records of the data stages: ingest, fit, generate, blend.

Each serialises to the JSON its stage has always written (`runs/<ds>/<stage>.json`, a DVC output),
and names its input and output files for lineage and OpenLineage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from pipelines.records.base import FileEntry, FileRef, MlflowRef, Model, StageRecord, TableSetEntry


class ContractRef(Model):
    """The raw GX contract ingest checked the source against."""

    suite: str = Field(description="path of the suite file")
    sha256: str = Field(description="sha256 of the suite file")
    success: bool = Field(description="whether every expectation was met (ingest fails otherwise)")
    evaluated: int = Field(description="expectations evaluated")


class SplitInfo(Model):
    """How the main table was split into train and holdout."""

    holdout_fraction: float = Field(description="share of the main table's rows held out")
    seed: int = Field(description="seed of the split")
    stratified_by: str | None = Field(description="class column the split kept proportional, if any")
    main_table: str = Field(description="the table whose rows were split (its descendants follow)")


class IngestRecord(StageRecord):
    """What ingest read, checked and wrote."""

    stage: ClassVar[str] = "ingest"
    relational: bool = Field(description="several tables with keys (a folder per table set)")
    source: dict[str, Any] = Field(description="path, format, sha256, rows, columns (and per table) of the source")
    normalisation: list[str] = Field(description="every change made while reading (types, whitespace, drops)")
    contract: ContractRef
    orphans: list[dict[str, Any]] = Field(description="foreign keys with no parent row, per relationship")
    snapshot: TableSetEntry = Field(description="the source as read, normalised")
    train: TableSetEntry = Field(description="the rows the engine may learn from")
    holdout: TableSetEntry = Field(description="the rows kept away from the engine (gates compare with them)")
    split: SplitInfo

    def inputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        src = self.source
        return [
            FileRef("source", src["path"], src["sha256"], src.get("rows")),
            FileRef("raw_contract", self.contract.suite, self.contract.sha256),
        ]

    def outputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        return [self.snapshot.ref("snapshot"), self.train.ref("train"), self.holdout.ref("holdout")]


class ModelEntry(FileEntry):
    """The fitted model file and its MLflow registration."""

    mlflow_model_uri: str | None = Field(default=None, description="the logged MLflow model")
    registered_model: str | None = Field(default=None, description="the registered model, `synth-<dataset>`")
    registered_version: str | None = Field(default=None, description="the registered model version")


class FitRecord(StageRecord):
    """Which engine learned what, from which data, into which model file."""

    stage: ClassVar[str] = "fit"
    relational: bool = Field(description="several tables with keys")
    synthesizer: str = Field(description="the engine's registry name (fit.synthesizer; under auto: the winner)")
    engine: dict[str, Any] = Field(description="the engine's name, family, licence and capabilities")
    params: dict[str, Any] = Field(description="fit.params given to the engine (under auto: the winner's epoch limit)")
    seed: int = Field(description="the seed of the fit")
    train: TableSetEntry = Field(description="the train table set (digest checked before fitting)")
    holdout: FileEntry = Field(description="the holdout (never shown to the engine; PII values are avoided)")
    metadata: FileEntry = Field(description="the committed SDV metadata file")
    model: ModelEntry
    fit_seconds: float = Field(description="wall time of the engine's fit")
    main_table: str = Field(description="the table that was split, protected and gated")
    columns: list[str] = Field(description="the main table's columns")
    learned_columns: list[str] = Field(description="the main table's columns the engine saw (PII removed)")
    tables: dict[str, list[str]] = Field(description="columns per table")
    relationships: list[dict[str, Any]] = Field(description="foreign keys of the table set")
    pii: dict[str, Any] = Field(description="the PII plan: protected columns, kinds, evidence, policy")
    constraints: list[dict[str, Any]] = Field(description="business rules given to the engine")
    domain: dict[str, Any] = Field(description="value domain of the learned columns (conditions are checked on it)")
    privacy: dict[str, Any] | None = Field(
        default=None,
        description="differential privacy: dp, target and spent epsilon/delta, the DP-SGD settings (dp_sgd: noise "
        "multiplier, batch size, calibration epochs), the dataset's ledger totals after this model (pipelines/dp.py); "
        "None in records written before DP was recorded",
    )
    selection: dict[str, Any] | None = Field(
        default=None,
        description="synthesizer auto: every candidate's epochs, seconds and figures, the winner and why",
        exclude_if=lambda v: v is None,
    )
    subsample: dict[str, Any] | None = Field(
        default=None,
        description="the train rows the engine saw (fit.max_rows): fit_rows, train_rows, max_rows, method (all rows, "
        "stratified by <target>, uniform, whole sequences by <key>) and positions_sha256, the sha256 of their "
        "0-based positions in the train split's main table as decimal lines (pipelines/fit_rows.py); None in "
        "records written before it was recorded",
        exclude_if=lambda v: v is None,
    )
    ids: dict[str, str | None] = Field(
        default_factory=dict,
        description="single tables: the id columns generated unique, which generate renumbers per shard "
        "(column -> the metadata's regex_format; None: whole numbers, or <dataset>_<n>) (pipelines/ids.py)",
        exclude_if=lambda v: not v,
    )

    def inputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        return [self.train.ref("train"), FileRef("metadata", self.metadata.path, self.metadata.sha256)]

    def outputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        return [FileRef("model", self.model.path, self.model.sha256)]


class ShardEntry(TableSetEntry):
    """One sampled shard."""

    index: int = Field(description="the shard's position")
    seed: int = Field(description="the shard's own seed, derived from the dataset seed and the index")
    conditions: dict[str, Any] = Field(description="column values every row of the shard has")
    requested_rows: int = Field(description="rows asked for (a multi-table engine samples about as many)")
    sample_seconds: float = Field(description="wall time of the sampling")


class GenerateRecord(StageRecord):
    """Which rows were sampled from which model, in which shards."""

    stage: ClassVar[str] = "generate"
    rows: int = Field(description="synthetic rows of the main table, all shards")
    seed: int = Field(description="the dataset seed the shard seeds derive from")
    shard_rows: int = Field(description="generate.shard_rows")
    shards: list[ShardEntry]
    workers: int | None = Field(
        default=None,
        description="processes that sampled the shards (generate.workers, at most one per shard); null: "
        "Airflow's mapped tasks, or a record older than the knob. Never changes a shard's bytes",
    )
    model: dict[str, Any] = Field(description="the sha256 of the model sampled from")
    pii: dict[str, Any] | None = Field(description="the PII plan applied to the sampled rows")
    columns: list[str] | None = Field(description="the main table's columns, in source order")
    conditions: dict[str, Any] = Field(description="generate.conditions")
    rebalance: dict[str, Any] | None = Field(description="rows sampled per class when rebalancing")

    def inputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        fit = upstream["fit"]
        assert isinstance(fit, FitRecord)
        return [FileRef("model", fit.model.path, self.model["sha256"])]

    def outputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        return [s.ref("synthetic_shard") for s in self.shards]


class BlendRecord(StageRecord):
    """How synthetic (and real) rows were combined into the release candidate."""

    stage: ClassVar[str] = "blend"
    relational: bool = Field(description="several tables with keys")
    strategy: str = Field(description="blend.strategy")
    real_ratio: float = Field(description="blend.real_ratio")
    rows: int = Field(description="rows of the blended table set")
    rows_by_provenance: dict[str, int] = Field(description="rows per `_provenance` value (synthetic, real)")
    blended: TableSetEntry
    rebalance: dict[str, Any] | None = Field(
        default=None, description="requested and achieved class shares", exclude_if=lambda v: v is None
    )

    def inputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        generate, ingest = upstream["generate"], upstream["ingest"]
        assert isinstance(generate, GenerateRecord) and isinstance(ingest, IngestRecord)
        return [*generate.outputs(upstream), ingest.train.ref("train")]

    def outputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        return [self.blended.ref("blended")]


__all__ = ["BlendRecord", "FitRecord", "GenerateRecord", "IngestRecord", "MlflowRef"]
