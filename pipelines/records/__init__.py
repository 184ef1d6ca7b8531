"""Typed run records, manifest and validation report; see each module.

`RECORDS` maps each stage that writes a run record (`runs/<ds>/<stage>.json`) to its model;
the release's record is its manifest (`records.release.Manifest`).
"""

from pipelines.records.base import StageRecord
from pipelines.records.stages import BlendRecord, FitRecord, GenerateRecord, IngestRecord
from pipelines.records.validation import ValidateRecord

RECORDS: dict[str, type[StageRecord]] = {
    "ingest": IngestRecord,
    "fit": FitRecord,
    "generate": GenerateRecord,
    "blend": BlendRecord,
    "validate": ValidateRecord,
}

__all__ = ["RECORDS", "StageRecord"]
