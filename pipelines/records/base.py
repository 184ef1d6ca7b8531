"""Building blocks of the typed records: file references and the stage-record base class.

Every stage writes one run record (`runs/<ds>/<stage>.json`); each record knows which files the
stage read and wrote (`inputs` / `outputs`), so lineage checks and OpenLineage events read the
records instead of knowing each stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from pipelines.io import read_json, write_json


@dataclass(frozen=True)
class FileRef:
    """A file a stage read or wrote, as its record names it (role, workspace path, digest)."""

    role: str
    path: str
    sha256: str
    rows: int | None = None


class Model(BaseModel):
    """Records accept keys they do not know (a newer or older writer), and are read-only."""

    model_config = ConfigDict(extra="allow", frozen=True)


class FileEntry(Model):
    """A file in the workspace and its sha256."""

    path: str = Field(description="path relative to the workspace root")
    sha256: str = Field(description="sha256 of the file's bytes")


class TableSetEntry(FileEntry):
    """A written table set: one parquet file, or a folder with one parquet file per table."""

    rows: int = Field(description="rows of the single table, or of all tables of a folder")
    tables: dict[str, Any] | None = Field(
        default=None,
        description="per table of a folder: path, rows, sha256 (absent for a single table)",
        exclude_if=lambda v: v is None,
    )
    sha256: str = Field(description="sha256 of the file, or the folder's tree digest (sorted `<name> <sha256>`)")

    def ref(self, role: str) -> FileRef:
        """This entry as an input/output reference."""
        return FileRef(role, self.path, self.sha256, self.rows)


class MlflowRef(Model):
    """The MLflow runs a stage logged to."""

    run_id: str = Field(description="the stage's nested run")
    parent_run_id: str = Field(description="the pipeline run (one per run of the six stages)")
    experiment: str = Field(description="the dataset's experiment, `synthgate-<dataset>`")


class StageRecord(Model):
    """What every stage record holds; subclasses add the stage's own facts."""

    stage: ClassVar[str]
    dataset: str = Field(description="the dataset's name in params.yaml")
    mlflow: MlflowRef = Field(description="the MLflow runs of this stage run")

    def inputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        """The files this stage read (`upstream`: the records of earlier stages, by stage)."""
        raise NotImplementedError

    def outputs(self, upstream: Mapping[str, StageRecord]) -> list[FileRef]:
        """The files this stage wrote."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The record as written to disk (with its `stage` key)."""
        return {"stage": self.stage, **self.model_dump(mode="json")}

    def write(self, path: Path) -> None:
        """Write the record atomically as stable JSON."""
        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: Path) -> Self:
        """Read and validate a record file (InvalidInputError naming the file when it is not one)."""
        from pydantic import ValidationError

        from pipelines.errors import InvalidInputError

        raw = read_json(path)
        try:
            return cls.model_validate({k: v for k, v in raw.items() if k != "stage"})
        except ValidationError as err:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
            raise InvalidInputError(str(path), problems, hint=f"Re-run `{cls.stage}`.") from None
