"""The validate stage's outputs as typed models: the report (`reports/<ds>/validation.json`, a DVC
metric) and the run record (`runs/<ds>/validate.json`).

Both serialise (`to_json`) to the JSON the stage has always written: release, lineage and
OpenLineage read it. `relational` is written only for a table set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.gates.base import GateResult
from pipelines.io import sha256_file


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    relational: bool = Field(default=False, description="a relational table set (written only when true)")

    def to_json(self) -> dict[str, Any]:
        """The JSON object the stage writes (plain Python values, keys as today)."""
        return self.model_dump(exclude=None if self.relational else {"relational"})


class FileDigest(BaseModel):
    """A workspace file (or table-set folder) and the sha256 it had when read or written."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="path relative to the workspace root")
    sha256: str = Field(description="sha256 of the file, or tree digest of a table-set folder")

    @classmethod
    def of(cls, root: Path, path: Path) -> FileDigest:
        """The digest of a file under `root`, now."""
        return cls(path=str(Path(path).relative_to(root)), sha256=sha256_file(path))


class ValidationReport(_Record):
    """Every gate's verdict and the figures behind them."""

    dataset: str = Field(description="the dataset's name in params.yaml")
    passed: bool = Field(description="every gate passed: release publishes only then")
    gates: list[GateResult] = Field(description="one result per applicable gate, in registry order")
    figures: dict[str, Any] = Field(
        description="figures behind the gates: rows, sdmetrics properties, privacy, utility, pii, integrity, ..."
    )

    @classmethod
    def of(cls, dataset: str, gates: list[GateResult], figures: dict[str, Any], relational: bool) -> ValidationReport:
        """A report whose verdict is the conjunction of its gates."""
        return cls(
            dataset=dataset, passed=all(g.passed for g in gates), gates=gates, figures=figures, relational=relational
        )


class GxRecord(BaseModel):
    """The release suite, its overall verdict and GX's full result."""

    model_config = ConfigDict(frozen=True)

    suite: str = Field(description="path of the release suite (expectations/<ds>.release.json)")
    suite_sha256: str = Field(description="sha256 of the suite file as run")
    success: bool = Field(description="every expectation of every table was met")
    result: str = Field(description="path of GX's result (reports/<ds>/gx_release.json)")
    result_sha256: str = Field(description="sha256 of GX's result")


class ValidateRecord(_Record):
    """The validate stage's run record: what it checked, what it wrote, its MLflow run."""

    stage: Literal["validate"] = Field(default="validate", description="the stage that wrote the record")
    dataset: str = Field(description="the dataset's name in params.yaml")
    passed: bool = Field(description="every gate passed")
    failed: list[str] = Field(description="names of the gates that failed")
    validation: FileDigest = Field(description="the validation report written (validation.json)")
    gx: GxRecord = Field(description="the release suite run")
    report: FileDigest = Field(description="the HTML report written (report.html)")
    blended_sha256: str = Field(description="digest of the blended table set that was validated")
    mlflow: dict[str, Any] = Field(description="the stage's MLflow run: run_id, parent_run_id, experiment")

    def inputs(self) -> list[FileDigest]:
        """The files whose digests this record pins as read: the blended table set and the suite.

        (The train and holdout splits are pinned by the ingest record; validate checks them against it.)
        """
        from pipelines.paths import DatasetPaths

        blended = DatasetPaths(Path(), self.dataset).blended
        suite = FileDigest(path=self.gx.suite, sha256=self.gx.suite_sha256)
        return [FileDigest(path=str(blended), sha256=self.blended_sha256), suite]

    def outputs(self) -> list[FileDigest]:
        """The files the stage wrote: the validation report, GX's result and the HTML report."""
        return [self.validation, FileDigest(path=self.gx.result, sha256=self.gx.result_sha256), self.report]
