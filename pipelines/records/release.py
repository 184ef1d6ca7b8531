"""The release manifest and the release-attempt log entry.

The manifest (`data/release/<ds>/manifest.json`, and `manifests/vNNNN.json` per version) is what
an auditor starts from: the files and their digests, the source, split, code, params, engine and
model, every gate verdict, and the digests of the run records it was built from.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pipelines.records.base import FileRef, Model


class ReleaseFile(Model):
    """One released file (or table-set folder) and its digest."""

    path: str = Field(description="path relative to the workspace root")
    rows: int | None = Field(description="rows (None for the report)")
    sha256: str = Field(description="sha256 of the file, or the folder's tree digest")
    table: str | None = Field(
        default=None, description="the table, for a file inside a table-set folder", exclude_if=lambda v: v is None
    )


class GateVerdict(Model):
    """A gate's figure, threshold and verdict, as validate computed them."""

    name: str
    value: float
    threshold: float
    param: str | None = Field(default=None, exclude_if=lambda v: v is None)
    allowance: float = Field(default=0.0, exclude_if=lambda v: v == 0.0)
    comparison: Literal[">=", "<="]
    passed: bool


class MlflowRuns(Model):
    """Where the release's runs are in MLflow."""

    experiment: str = Field(description="the dataset's experiment")
    run_id: str = Field(description="the pipeline (parent) run")
    stage_runs: dict[str, str] = Field(description="the nested run of each stage")


class ModelSummary(Model):
    """The model the release was sampled from."""

    synthesizer: str = Field(description="the engine's registry name")
    engine: dict[str, Any] = Field(description="the engine's family, licence and capabilities")
    uri: str | None = Field(description="the logged MLflow model")
    sha256: str = Field(description="sha256 of the model file")
    registered_model: str | None = Field(description="the registered model")
    registered_version: str | None = Field(description="its version")
    selection: dict[str, Any] | None = Field(
        default=None,
        description="synthesizer auto: the candidates' figures, the winner and why (the fit record's selection)",
        exclude_if=lambda v: v is None,
    )
    subsample: dict[str, Any] | None = Field(
        default=None,
        description="the train rows the model was fitted on (fit.max_rows): the fit record's subsample block",
        exclude_if=lambda v: v is None,
    )


class BlendSummary(Model):
    """Whether the release holds real rows."""

    strategy: str
    rows_by_provenance: dict[str, int]
    contains_real_rows: bool


class Manifest(Model):
    """Everything a published release is, and where it came from."""

    dataset: str
    version: int = Field(description="1, 2, ... per dataset; never reused")
    created_at: str = Field(description="UTC time of publishing (ISO 8601)")
    synthgate_version: str
    files: list[ReleaseFile] = Field(description="the data (first), per-table files of a folder, the report")
    rows: int = Field(description="released rows (all tables of a set)")
    source: dict[str, Any] = Field(description="the source as ingest recorded it, plus the snapshot digest")
    split: dict[str, Any] = Field(description="how the main table was split, with row counts and digests")
    git_commit: str | None = Field(description="the code's commit")
    git_dirty: bool | None = Field(description="whether tracked code had uncommitted changes")
    git_dirty_paths: list[str] | None = Field(default=None, exclude_if=lambda v: v is None)
    params: dict[str, Any] = Field(description="the effective params of the run (overrides applied)")
    param_defaults: dict[str, Any] | None = Field(description="what `defaults` alone gives this dataset")
    mlflow: MlflowRuns
    model: ModelSummary
    gates: list[GateVerdict]
    gx: dict[str, Any] = Field(description="the release suite and its result, as validate recorded them")
    blend: BlendSummary
    records: dict[str, str] = Field(description="sha256 of each upstream run record")
    privacy: dict[str, Any] | None = Field(
        default=None,
        description="differential privacy of the model: dp, target and spent epsilon/delta, the DP-SGD settings "
        "(dp_sgd), the dataset's ledger totals and budget (pipelines/dp.py); None in manifests written before DP "
        "was recorded",
    )
    runner: dict[str, str] = Field(
        description="dvc | airflow | cli, with Airflow's dag_id/run_id and the DVC experiment's name"
    )
    experiment: dict[str, Any] | None = Field(
        default=None,
        description="a DVC experiment's candidate, not a release (version 0): the experiment's name, its "
        "baseline commit and the published version it left in place (pipelines/experiment.py)",
        exclude_if=lambda v: v is None,
    )

    def outputs(self) -> list[FileRef]:
        """The released files as lineage references."""
        return [FileRef("release", f.path, f.sha256, f.rows) for f in self.files]


class ReleaseAttempt(Model):
    """One line of `logs/releases/<ds>.jsonl`: a release attempt, published or blocked."""

    dataset: str
    attempted_at: str
    source_sha256: str
    mlflow_run_id: str
    runner: dict[str, str]
    gates: list[dict[str, Any]] = Field(description="name, value, threshold, passed of every gate")
    verdict: Literal["released", "blocked", "interrupted", "candidate"] = Field(
        description="released, blocked by a gate, interrupted before the new version was swapped in, or "
        "passed in a DVC experiment and written as a candidate (not published)"
    )
    version: int | None = Field(description="the published version (None when not published)")
    candidate: str | None = Field(
        default=None, description="where a DVC experiment's candidate was written", exclude_if=lambda v: v is None
    )
    failed: list[str] | None = Field(default=None, exclude_if=lambda v: v is None)
    release_sha256: str | None = Field(default=None, exclude_if=lambda v: v is None)
