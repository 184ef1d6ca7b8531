"""Every path a stage reads or writes, in one place (dvc.yaml lists the same ones)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    """The project root: $SYNTHGATE_ROOT, else the current directory (DVC runs stages there)."""
    return Path(os.environ.get("SYNTHGATE_ROOT") or Path.cwd()).resolve()


@dataclass(frozen=True)
class DatasetPaths:
    """The on-disk layout of one dataset's artifacts under `root`."""

    root: Path
    name: str

    @property
    def raw_suite(self) -> Path:
        return self.root / "expectations" / f"{self.name}.raw.json"

    @property
    def release_suite(self) -> Path:
        return self.root / "expectations" / f"{self.name}.release.json"

    @property
    def metadata(self) -> Path:
        """The committed, editable SDV metadata (source of truth for fit)."""
        return self.root / "metadata" / f"{self.name}.json"

    @property
    def snapshot(self) -> Path:
        return self.root / "data" / "raw" / self.name / "snapshot.parquet"

    @property
    def train(self) -> Path:
        return self.root / "data" / "prepared" / self.name / "train.parquet"

    @property
    def holdout(self) -> Path:
        return self.root / "data" / "prepared" / self.name / "holdout.parquet"

    @property
    def model(self) -> Path:
        return self.root / "models" / self.name / "synthesizer.pkl"

    @property
    def model_metadata(self) -> Path:
        return self.root / "models" / self.name / "metadata.json"

    @property
    def synthetic_dir(self) -> Path:
        return self.root / "data" / "synthetic" / self.name

    def shard(self, index: int) -> Path:
        return self.synthetic_dir / f"part-{index:05d}.parquet"

    @property
    def blended(self) -> Path:
        return self.root / "data" / "blended" / self.name / "blended.parquet"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports" / self.name

    @property
    def validation(self) -> Path:
        """Typed gate results with every figure (release checks it against the validate record)."""
        return self.reports_dir / "validation.json"

    @property
    def metrics(self) -> Path:
        """The gate figures as one flat mapping (`dvc metrics show`): gates.<name>.value/passed, scores."""
        return self.reports_dir / "metrics.json"

    @property
    def plots_dir(self) -> Path:
        """Data of `dvc plots show`: per-column fidelity, distances to the closest record."""
        return self.reports_dir / "plots"

    @property
    def gx_result(self) -> Path:
        return self.reports_dir / "gx_release.json"

    @property
    def report_html(self) -> Path:
        return self.reports_dir / "report.html"

    @property
    def release_dir(self) -> Path:
        return releases_dir(self.root) / self.name

    @property
    def release_file(self) -> Path:
        """A single-table release: one parquet file."""
        return self.release_dir / f"{self.name}.parquet"

    @property
    def release_tables(self) -> Path:
        """A relational release: a plain folder of one `<table>.parquet` per table (never one folder
        named `.parquet`, which `pd.read_parquet` would read as one table mixing every schema)."""
        return self.release_dir / "tables"

    def release_data(self, single: bool) -> Path:
        """Where a release's data lives: `release_file` for one table, else `release_tables`."""
        return self.release_file if single else self.release_tables

    @property
    def manifest(self) -> Path:
        return self.release_dir / "manifest.json"

    @property
    def release_report(self) -> Path:
        return self.release_dir / "report.html"

    @property
    def history(self) -> Path:
        """Append-only log of every release attempt, published or blocked."""
        return self.release_dir / "history.jsonl"

    @property
    def manifests_dir(self) -> Path:
        """Every published manifest, by version (old releases stay traceable)."""
        return self.release_dir / "manifests"

    def record(self, stage: str) -> Path:
        """The stage's run record: digests, counts, MLflow run id."""
        return self.root / "runs" / self.name / f"{stage}.json"

    @property
    def samples_log(self) -> Path:
        """Append-only log of on-demand samples (`synthgate sample`): model, rows, seed, output digest."""
        return logs_dir(self.root) / "samples" / f"{self.name}.jsonl"

    @property
    def attempts_log(self) -> Path:
        """Append-only log of every release attempt, published or blocked (local audit trail)."""
        return logs_dir(self.root) / "releases" / f"{self.name}.jsonl"

    @property
    def reproduce_log(self) -> Path:
        """Append-only log of every `synthgate reproduce` of this dataset."""
        return logs_dir(self.root) / "reproduce" / f"{self.name}.jsonl"

    @property
    def openlineage_events(self) -> Path:
        """OpenLineage events of the file transport (the default)."""
        return logs_dir(self.root) / "openlineage" / f"{self.name}.jsonl"

    @property
    def lock(self) -> Path:
        """The per-dataset lock file: one writer of a dataset's release at a time."""
        return locks_dir(self.root) / f"{self.name}.lock"

    @property
    def publish_journal(self) -> Path:
        """What a release in progress still has to record once its version is swapped in."""
        return locks_dir(self.root).parent / "releases" / f"{self.name}.publishing.json"

    @property
    def run_lock(self) -> Path:
        """The per-dataset run lock: one run (any stage, any runner) of a dataset at a time."""
        return locks_dir(self.root) / f"{self.name}.run.lock"

    def output_dirs(self) -> list[Path]:
        """The dataset's own output folders (temp files of a killed write land there; the synthetic
        folder's own temp copy lands beside it, as `.<ds>.*.tmp`)."""
        return [
            self.snapshot.parent,
            self.train.parent,
            self.model.parent,
            self.synthetic_dir,
            self.blended.parent,
            self.reports_dir,
            self.record("ingest").parent,
        ]

    def rel(self, path: Path | str) -> str:
        """`path` relative to the workspace root, as records and manifests write it."""
        return str(Path(path).relative_to(self.root))


def releases_dir(root: Path) -> Path:
    """Where every dataset's release folder lives."""
    return Path(root) / "data" / "release"


def mlflow_db(root: Path) -> Path:
    """The embedded MLflow tracking store (SQLite), when no tracking server is configured."""
    return Path(root) / "mlflow.db"


def mlflow_artifacts(root: Path) -> Path:
    """The embedded MLflow artifact store, when no tracking server is configured."""
    return Path(root) / "mlartifacts"


def logs_dir(root: Path) -> Path:
    """Local logs (attempts, OpenLineage events, locks), git-ignored."""
    return Path(root) / "logs"


def locks_dir(root: Path) -> Path:
    """Lock files, one per dataset plus the repository-wide DVC recording lock."""
    return logs_dir(root) / "locks"


def dvc_record_lock(root: Path) -> Path:
    """The repository-wide lock of `dvc commit`/`dvc push` (all datasets share dvc.lock)."""
    return locks_dir(root) / "dvc-record.lock"


def paths_for(name: str, root: Path | None = None) -> DatasetPaths:
    """The layout for dataset `name` under `root` (default: the repo root)."""
    return DatasetPaths(root=(root or repo_root()).resolve(), name=name)
