"""What a finished stage run read and wrote, as its typed run record (and its upstream records) name it.

OpenLineage events carry these files as their input and output datasets; no stage is special-cased
here: each record class knows its own inputs and outputs (`pipelines/records/`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines import STAGES
from pipelines.experiment import candidate_experiment, candidate_paths
from pipelines.io import sha256_file
from pipelines.records import RECORDS
from pipelines.records.base import FileRef, StageRecord
from pipelines.records.release import Manifest

if TYPE_CHECKING:
    from pipelines.paths import DatasetPaths


class StaleRecordError(RuntimeError):
    """The stage's record on disk is not the one this run wrote."""


def _upstream(paths: DatasetPaths, stage: str) -> dict[str, StageRecord]:
    """The records of the stages before `stage`, typed."""
    before = STAGES[: STAGES.index(stage)]
    return {s: RECORDS[s].read(paths.record(s)) for s in before if paths.record(s).is_file()}


def stage_files(stage: str, paths: DatasetPaths, run_id: str) -> tuple[list[FileRef], list[FileRef]]:
    """Inputs and outputs of a finished stage run, read from its record (and its upstream records).

    Raises StaleRecordError when the record on disk was not written by `run_id`.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    upstream = _upstream(paths, stage)
    if stage == "release":  # the release's record is its manifest (a DVC experiment's: its candidate's)
        experiment = candidate_experiment()
        where = paths if experiment is None else candidate_paths(paths, experiment)
        manifest = Manifest.model_validate_json(where.manifest.read_text(encoding="utf-8"))
        if manifest.mlflow.stage_runs.get("release") != run_id:
            raise StaleRecordError(f"{where.manifest} was not written by MLflow run {run_id}")
        blend, validate = upstream["blend"], upstream["validate"]
        inputs = [*blend.outputs(upstream), *validate.outputs(upstream)[:1]]
        outputs = [*manifest.outputs(), FileRef("manifest", where.rel(where.manifest), sha256_file(where.manifest))]
        return inputs, outputs
    record = RECORDS[stage].read(paths.record(stage))
    if record.mlflow.run_id != run_id:
        raise StaleRecordError(f"{paths.record(stage)} was not written by MLflow run {run_id}")
    return record.inputs(upstream), record.outputs(upstream)
