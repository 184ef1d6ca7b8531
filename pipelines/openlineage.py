"""OpenLineage events: one job per stage (`<dataset>.<stage>`), one run per MLflow stage run.

Emitted from one place, `pipelines.tracking.stage_run`, which every runner goes through (DVC, Airflow,
the CLI, the tests): START when a stage opens its MLflow run, COMPLETE with the stage's inputs and
outputs read from the run record it just wrote (each dataset carries its sha256 as a facet), FAIL with
the error. The pipeline run (MLflow parent run) is the job `<dataset>.pipeline`; every stage run names
it in a `parent` facet. OpenLineage run ids are the MLflow run ids (both are UUIDs), so a catalog and
MLflow point at the same runs.

Transport: when OpenLineage is configured the standard way (`OPENLINEAGE_URL`, `OPENLINEAGE_CONFIG`,
`OPENLINEAGE__TRANSPORT__*`, or an `openlineage.yml`), the openlineage-python client decides (HTTP to
Marquez/DataHub, Kafka, ...). Otherwise events are appended as JSON lines to
`logs/openlineage/<dataset>.jsonl`. `OPENLINEAGE_DISABLED=true` turns emission off. Emission never
fails a stage: a transport error is logged as a warning.
"""

from __future__ import annotations

import functools
import logging
import os
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipelines import __version__
from pipelines.errors import SynthgateError
from pipelines.gitinfo import code_version, runner_info
from pipelines.io import read_json
from pipelines.stage_files import FileRef, StaleRecordError, stage_files

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths
    from pipelines.tracking import StageRun

log = logging.getLogger("synthgate.openlineage")

NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"
"""Job namespace (the variable the OpenLineage integrations use); default `synthgate`."""
DATASET_NAMESPACE_ENV = "SYNTHGATE_OPENLINEAGE_DATASET_NAMESPACE"
"""When set (e.g. `s3://synthgate-data`), datasets are named by repo-relative path in this namespace;
otherwise they follow the local-file naming convention (namespace `file`, absolute path)."""
PRODUCER = f"https://github.com/synthgate/synthgate/tree/v{__version__}"
FACET_SCHEMA_BASE = "https://github.com/synthgate/synthgate/blob/main/tests/data/openlineage/facets/1-0-0"
"""Where the JSON schemas of our custom facets live (`tests/data/openlineage/facets/1-0-0/`)."""

STAGE_DOCS = {
    "pipeline": "One pipeline run of a dataset: ingest -> fit -> generate -> blend -> validate -> release.",
    "ingest": "Read the real source strictly, check the raw contract, snapshot it, split train/holdout.",
    "fit": "Fit the configured SDV synthesizer on the train split; save the model with its digest.",
    "generate": "Sample synthetic rows in seeded shards from the fitted synthesizer.",
    "blend": "Combine synthetic rows with real train rows per strategy, with a provenance column.",
    "validate": "Run every gate (GX release suite, quality, privacy, utility) and write the report.",
    "release": "Publish the release atomically when every gate passed (parquet, manifest, report).",
}


def job_namespace() -> str:
    """The OpenLineage job namespace."""
    return os.environ.get(NAMESPACE_ENV) or "synthgate"


def events_file(paths: DatasetPaths) -> Path:
    """The default (file transport) event log of a dataset."""
    return paths.openlineage_events


def run_uuid(mlflow_run_id: str) -> str:
    """The OpenLineage runId of an MLflow run: the same UUID (a stable UUIDv5 for other id formats)."""
    try:
        return str(uuid.UUID(hex=mlflow_run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlflow-run:{mlflow_run_id}"))


def _configured_by_environment() -> bool:
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return True
    if any(k.startswith("OPENLINEAGE__TRANSPORT") for k in os.environ):
        return True
    candidates = (Path.cwd() / "openlineage.yml", Path.home() / ".openlineage" / "openlineage.yml")
    return any(p.is_file() for p in candidates)


def make_client(paths: DatasetPaths) -> Any:
    """The OpenLineage client: environment/config transport when configured, else the JSONL file."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    quiet = logging.getLogger("openlineage.client.client")  # one INFO line per client otherwise
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true" or _configured_by_environment():
        return OpenLineageClient()
    target = events_file(paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(target), append=True)))


@functools.cache
def _custom_facets() -> tuple[type, type]:
    """Our two custom facet classes (built lazily: attrs + openlineage import only when emitting)."""
    import attr
    from openlineage.client.generated.base import DatasetFacet, RunFacet

    @attr.define
    class SynthgateDigestDatasetFacet(DatasetFacet):
        """The file's content digest as Synthgate recorded it (run record or manifest)."""

        digest: str
        algorithm: str = "sha256"
        path: str | None = None
        role: str | None = None
        rows: int | None = None

        @staticmethod
        def _get_schema() -> str:
            return f"{FACET_SCHEMA_BASE}/SynthgateDigestDatasetFacet.json#/$defs/SynthgateDigestDatasetFacet"

    @attr.define
    class SynthgateRunFacet(RunFacet):
        """Where to find this run in MLflow, which code ran it and who triggered it."""

        dataset: str
        stage: str
        mlflowExperiment: str
        mlflowRunId: str
        mlflowParentRunId: str | None = None
        gitCommit: str | None = None
        gitDirty: bool | None = None
        runner: str | None = None
        airflowDagId: str | None = None
        airflowRunId: str | None = None
        seed: int | None = None
        synthgateVersion: str = __version__

        @staticmethod
        def _get_schema() -> str:
            return f"{FACET_SCHEMA_BASE}/SynthgateRunFacet.json#/$defs/SynthgateRunFacet"

    return SynthgateDigestDatasetFacet, SynthgateRunFacet


def _dataset_id(ref: FileRef, paths: DatasetPaths, source: dict[str, Any] | None) -> tuple[str, str]:
    if source is not None and source.get("format") == "sql" and source.get("url"):
        parts = urlsplit(source["url"])
        host = parts.hostname or "localhost"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return f"{parts.scheme}://{netloc}", f"{parts.path.lstrip('/') or 'default'}.{ref.path}"
    if os.environ.get(DATASET_NAMESPACE_ENV):
        return os.environ[DATASET_NAMESPACE_ENV].rstrip("/"), ref.path
    path = Path(ref.path)
    return "file", str(path if path.is_absolute() else (paths.root / path).resolve())


def _schema_facet(file: Path) -> Any | None:
    if file.suffix != ".parquet" or not file.is_file():
        return None
    import pyarrow.parquet as pq
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    try:
        schema = pq.read_schema(file)
    except Exception:  # pyarrow raises several types for unreadable files: no schema facet then
        return None
    return SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=f.name, type=str(f.type)) for f in schema])


def _datasets(refs: list[FileRef], paths: DatasetPaths, output: bool, source: dict | None) -> list[Any]:
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )

    digest_facet, _ = _custom_facets()
    out = []
    for ref in refs:
        namespace, name = _dataset_id(ref, paths, source if ref.role == "source" else None)
        file = Path(ref.path) if Path(ref.path).is_absolute() else paths.root / ref.path
        facets: dict[str, Any] = {
            "version": DatasetVersionDatasetFacet(datasetVersion=ref.sha256),
            "synthgate_digest": digest_facet(
                digest=ref.sha256, path=ref.path, role=ref.role, rows=ref.rows, producer=PRODUCER
            ),
        }
        schema = _schema_facet(file)
        if schema is not None:
            facets["schema"] = schema
        if output:
            stats = {}
            if ref.rows is not None:
                size = file.stat().st_size if file.is_file() else None
                stats["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=int(ref.rows), size=size)
            out.append(OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=stats))
        else:
            out.append(InputDataset(namespace=namespace, name=name, facets=facets))
    return out


def _run_facets(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    stage: str,
    run_id: str,
    parent_run_id: str | None,
    experiment: str,
    error: BaseException | None,
) -> dict[str, Any]:
    import importlib.metadata as md

    from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
    from openlineage.client.generated.parent_run import Job as ParentJob
    from openlineage.client.generated.parent_run import ParentRunFacet
    from openlineage.client.generated.parent_run import Run as ParentRun
    from openlineage.client.generated.processing_engine_run import ProcessingEngineRunFacet

    _, run_facet = _custom_facets()
    code, runner = code_version(paths.root), runner_info()
    facets: dict[str, Any] = {
        "processing_engine": ProcessingEngineRunFacet(
            version=__version__, name="synthgate", openlineageAdapterVersion=md.version("openlineage-python")
        ),
        "synthgate": run_facet(
            dataset=cfg.name,
            stage=stage,
            mlflowExperiment=experiment,
            mlflowRunId=run_id,
            mlflowParentRunId=parent_run_id,
            gitCommit=code["git_commit"],
            gitDirty=code["git_dirty"],
            runner=runner.get("runner"),
            airflowDagId=runner.get("airflow_dag_id"),
            airflowRunId=runner.get("airflow_run_id"),
            seed=cfg.seed,
            producer=PRODUCER,
        ),
    }
    if parent_run_id:
        facets["parent"] = ParentRunFacet(
            run=ParentRun(runId=run_uuid(parent_run_id)),
            job=ParentJob(namespace=job_namespace(), name=f"{cfg.name}.pipeline"),
        )
    if error is not None:
        facets["errorMessage"] = ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}"[:4000],
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error))[-8000:],
        )
    return facets


def _job(cfg: DatasetConfig, stage: str) -> Any:
    from openlineage.client.event_v2 import Job
    from openlineage.client.generated.documentation_job import DocumentationJobFacet
    from openlineage.client.generated.job_type_job import JobTypeJobFacet

    kind = "DAG" if stage == "pipeline" else "TASK"
    return Job(
        namespace=job_namespace(),
        name=f"{cfg.name}.{stage}",
        facets={
            "jobType": JobTypeJobFacet(processingType="BATCH", integration="SYNTHGATE", jobType=kind),
            "documentation": DocumentationJobFacet(description=STAGE_DOCS.get(stage, stage)),
        },
    )


def build_event(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    stage: str,
    event_type: str,
    run_id: str,
    parent_run_id: str | None,
    experiment: str,
    error: BaseException | None = None,
    files: tuple[list[FileRef], list[FileRef]] | None = None,
) -> Any:
    """One OpenLineage RunEvent (pure apart from reading parquet schemas and git state)."""
    from openlineage.client.event_v2 import Run, RunEvent, RunState

    source = None
    if files is not None and stage == "ingest":
        source = read_json(paths.record("ingest")).get("source")
    inputs = _datasets(files[0], paths, False, source) if files else []
    outputs = _datasets(files[1], paths, True, None) if files else []
    return RunEvent(
        eventType=RunState[event_type],
        eventTime=datetime.now(UTC).isoformat(timespec="milliseconds"),
        run=Run(
            runId=run_uuid(run_id), facets=_run_facets(cfg, paths, stage, run_id, parent_run_id, experiment, error)
        ),
        job=_job(cfg, stage),
        inputs=inputs,
        outputs=outputs,
        producer=PRODUCER,
    )


def _emit(paths: DatasetPaths, make: Any, what: str) -> None:
    """Build and emit one event; any failure is a logged warning, never a failed stage."""
    try:
        event = make()
        client = make_client(paths)
        try:
            client.emit(event)
        finally:
            client.close(timeout=5.0)
    except Exception as err:  # a lineage backend outage must not fail the pipeline
        log.warning("OpenLineage: could not emit %s event for %s: %s: %s", what, paths.name, type(err).__name__, err)


class StageEvents:
    """START / COMPLETE / FAIL events of one stage run (used by `tracking.stage_run`)."""

    def __init__(self, cfg: DatasetConfig, paths: DatasetPaths, stage: str, handle: StageRun) -> None:
        self.cfg, self.paths, self.stage, self.handle = cfg, paths, stage, handle

    def _send(self, event_type: str, error: BaseException | None = None, with_files: bool = False) -> None:
        h = self.handle

        def make() -> Any:
            files = None
            if with_files:
                try:
                    files = stage_files(self.stage, self.paths, h.run_id)
                except (StaleRecordError, SynthgateError, KeyError, OSError) as err:
                    log.warning("OpenLineage: %s %s: no datasets in the event (%s)", self.stage, self.paths.name, err)
            return build_event(
                self.cfg, self.paths, self.stage, event_type, h.run_id, h.parent_run_id, h.experiment_name, error, files
            )

        _emit(self.paths, make, f"{self.stage} {event_type}")

    def start(self) -> None:
        """The stage run began."""
        self._send("START")

    def complete(self) -> None:
        """The stage run finished; its record names the datasets it read and wrote."""
        self._send("COMPLETE", with_files=True)

    def fail(self, error: BaseException) -> None:
        """The stage run raised `error` (a blocked release included)."""
        self._send("FAIL", error=error)


def pipeline_event(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    parent_run_id: str,
    experiment: str,
    event_type: str,
    error: BaseException | None = None,
) -> None:
    """START/COMPLETE/FAIL of the pipeline job (`<dataset>.pipeline`), keyed by the MLflow parent run."""
    _emit(
        paths,
        lambda: build_event(cfg, paths, "pipeline", event_type, parent_run_id, None, experiment, error),
        f"pipeline {event_type}",
    )
