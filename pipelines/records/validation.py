"""The validate stage's outputs as typed models: the report (`reports/<ds>/validation.json`, a DVC
metric) and the run record (`runs/<ds>/validate.json`).

Both serialise to the JSON the stage has always written: release, lineage and OpenLineage read it.
`relational` is written only for a table set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from pipelines.records.base import FileEntry, FileRef, Model, StageRecord


class GateResult(Model):
    """One gate's verdict: a figure compared with a threshold from params.yaml."""

    name: str = Field(description="the gate's name, e.g. quality or dcr_low_tail")
    value: float = Field(description="the measured figure (rounded to 6 decimals)")
    threshold: float = Field(description="the limit the figure is compared with")
    param: str | None = Field(
        default=None,
        description="the params.yaml `gates:` key the threshold comes from (None: a fixed threshold)",
        exclude_if=lambda v: v is None,
    )
    allowance: float = Field(
        default=0.0,
        description="sampling noise added to the params.yaml threshold (threshold = param + allowance)",
        exclude_if=lambda v: v == 0.0,
    )
    comparison: Literal[">=", "<="] = Field(description="how value must compare with threshold to pass")
    passed: bool = Field(description="whether the comparison holds")
    explanation: str = Field(description="what the figure means and what was compared")


def holds(value: float, threshold: float, comparison: str) -> bool:
    """Whether `value` passes `threshold` under `comparison` (">=" or "<=")."""
    return bool(value >= threshold if comparison == ">=" else value <= threshold)


def gate(
    name: str,
    value: float,
    threshold: float,
    comparison: Literal[">=", "<="],
    explanation: str,
    allowance: float = 0.0,
) -> GateResult:
    """Build a gate result, deciding `passed` from the comparison of the rounded value with
    `threshold + allowance` (the allowance is sampling noise on top of a params.yaml threshold)."""
    value, limit = round(float(value), 6), float(threshold) + float(allowance)
    return GateResult(
        name=name,
        value=value,
        threshold=limit,
        allowance=float(allowance),
        comparison=comparison,
        passed=holds(value, limit, comparison),
        explanation=explanation,
    )


def _only_when_true(value: bool) -> bool:
    return not value


class ValidationReport(Model):
    """Every gate's verdict and the figures behind them."""

    dataset: str = Field(description="the dataset's name in params.yaml")
    passed: bool = Field(description="every gate passed: release publishes only then")
    gates: list[GateResult] = Field(description="one result per applicable gate, in registry order")
    figures: dict[str, Any] = Field(
        description="figures behind the gates: rows, sdmetrics properties, privacy, utility, pii, integrity, ..."
    )
    relational: bool = Field(
        default=False, description="a table set with keys (written only when true)", exclude_if=_only_when_true
    )

    @classmethod
    def of(cls, dataset: str, gates: list[GateResult], figures: dict[str, Any], relational: bool) -> ValidationReport:
        """A report whose verdict is the conjunction of its gates."""
        return cls(
            dataset=dataset, passed=all(g.passed for g in gates), gates=gates, figures=figures, relational=relational
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object the stage writes."""
        return self.model_dump(mode="json")


class GxRecord(Model):
    """The release suite, its overall verdict and GX's full result."""

    suite: str = Field(description="path of the release suite (expectations/<ds>.release.json)")
    suite_sha256: str = Field(description="sha256 of the suite file as run")
    success: bool = Field(description="every expectation of every table was met")
    result: str = Field(description="path of GX's result (reports/<ds>/gx_release.json)")
    result_sha256: str = Field(description="sha256 of GX's result")


class ValidateRecord(StageRecord):
    """The validate stage's run record: what it checked, what it wrote, its MLflow run."""

    stage: ClassVar[str] = "validate"
    relational: bool = Field(
        default=False, description="a table set with keys (written only when true)", exclude_if=_only_when_true
    )
    passed: bool = Field(description="every gate passed")
    failed: list[str] = Field(description="names of the gates that failed")
    validation: FileEntry = Field(description="the validation report written (validation.json)")
    gx: GxRecord = Field(description="the release suite run")
    report: FileEntry = Field(description="the HTML report written (report.html)")
    blended_sha256: str = Field(description="digest of the blended table set that was validated")

    def inputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        blend, ingest = upstream["blend"], upstream["ingest"]
        return [
            FileRef("blended", blend.blended.path, self.blended_sha256),  # type: ignore[attr-defined]
            ingest.train.ref("train"),  # type: ignore[attr-defined]
            ingest.holdout.ref("holdout"),  # type: ignore[attr-defined]
            FileRef("release_contract", self.gx.suite, self.gx.suite_sha256),
        ]

    def outputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        return [
            FileRef("validation", self.validation.path, self.validation.sha256),
            FileRef("gx_result", self.gx.result, self.gx.result_sha256),
            FileRef("report", self.report.path, self.report.sha256),
        ]
