"""What a finished stage run read and wrote, as its run record (and its upstream records) name it.

OpenLineage events carry these files as their input and output datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines import STAGES
from pipelines.io import read_json, sha256_file

if TYPE_CHECKING:
    from pipelines.paths import DatasetPaths


@dataclass(frozen=True)
class FileRef:
    """A file a stage read or wrote, as its record names it."""

    role: str
    path: str
    sha256: str
    rows: int | None = None


class StaleRecordError(RuntimeError):
    """The stage's record on disk is not the one this run wrote."""


def _rec(paths: DatasetPaths, stage: str) -> dict[str, Any]:
    """A stage's run record as it is on disk."""
    return read_json(paths.record(stage))


def _own_record(paths: DatasetPaths, stage: str, run_id: str) -> dict[str, Any]:
    """A stage's run record, which must have been written by MLflow run `run_id`."""
    record = _rec(paths, stage)
    if record.get("mlflow", {}).get("run_id") != run_id:
        raise StaleRecordError(f"{paths.record(stage)} was not written by MLflow run {run_id}")
    return record


def _ref(role: str, entry: dict[str, Any]) -> FileRef:
    """A record's `{path, sha256, rows}` entry as a FileRef."""
    return FileRef(role, entry["path"], entry["sha256"], entry.get("rows"))


def stage_files(stage: str, paths: DatasetPaths, run_id: str) -> tuple[list[FileRef], list[FileRef]]:
    """Inputs and outputs of a finished stage run, read from its record (and its upstream records).

    Raises StaleRecordError when the record on disk was not written by `run_id`.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    rel = lambda p: str(p.relative_to(paths.root))  # noqa: E731
    if stage == "release":
        manifest = read_json(paths.manifest)
        if manifest.get("mlflow", {}).get("stage_runs", {}).get("release") != run_id:
            raise StaleRecordError(f"{paths.manifest} was not written by MLflow run {run_id}")
        blend, validate = _rec(paths, "blend"), _rec(paths, "validate")
        inputs = [_ref("blended", blend["blended"]), _ref("validation", validate["validation"])]
        outputs = [FileRef("release", f["path"], f["sha256"], f.get("rows")) for f in manifest["files"]]
        outputs.append(FileRef("manifest", rel(paths.manifest), sha256_file(paths.manifest)))
        return inputs, outputs
    record = _own_record(paths, stage, run_id)
    if stage == "ingest":
        src = record["source"]
        inputs = [
            FileRef("source", src["path"], src["sha256"], src.get("rows")),
            FileRef("raw_contract", record["contract"]["suite"], record["contract"]["sha256"]),
        ]
        outputs = [_ref(k, record[k]) for k in ("snapshot", "train", "holdout")]
    elif stage == "fit":
        inputs = [_ref("train", record["train"]), _ref("metadata", record["metadata"])]
        outputs = [_ref("model", record["model"])]
    elif stage == "generate":
        inputs = [FileRef("model", rel(paths.model), record["model"]["sha256"])]
        outputs = [FileRef("synthetic_shard", s["path"], s["sha256"], s["rows"]) for s in record["shards"]]
    elif stage == "blend":
        shards = _rec(paths, "generate")["shards"]
        inputs = [FileRef("synthetic_shard", s["path"], s["sha256"], s["rows"]) for s in shards]
        inputs.append(_ref("train", _rec(paths, "ingest")["train"]))
        outputs = [FileRef("blended", record["blended"]["path"], record["blended"]["sha256"], record["rows"])]
    else:  # validate
        ingest = _rec(paths, "ingest")
        inputs = [
            FileRef("blended", rel(paths.blended), record["blended_sha256"]),
            _ref("train", ingest["train"]),
            _ref("holdout", ingest["holdout"]),
            FileRef("release_contract", record["gx"]["suite"], record["gx"]["suite_sha256"]),
        ]
        outputs = [
            _ref("validation", record["validation"]),
            FileRef("gx_result", record["gx"]["result"], record["gx"]["result_sha256"]),
            _ref("report", record["report"]),
        ]
    return inputs, outputs
