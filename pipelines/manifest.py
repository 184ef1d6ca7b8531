"""The release manifest: the records a release is built from (their chain checked) and what it says.

`release` publishes it; lineage and auditors read it back. One place builds it: the stage records
it names by digest, the model and gate verdicts, the params, the runner and the privacy section.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines import STAGES, __version__, tableset
from pipelines.errors import IntegrityError
from pipelines.gitinfo import code_version, runner_info
from pipelines.io import read_json, sha256_file
from pipelines.records.release import (
    BlendSummary,
    GateVerdict,
    Manifest,
    MlflowRuns,
    ModelSummary,
)
from pipelines.records.stages import BlendRecord, FitRecord, GenerateRecord, IngestRecord
from pipelines.records.validation import ValidateRecord

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths

UPSTREAM = [s for s in STAGES if s != "release"]
"""The stages whose records a release is built from."""


def current_version(paths: DatasetPaths) -> int:
    """The version of the published release (0 when none)."""
    if not paths.manifest.is_file():
        return 0
    return int(read_json(paths.manifest).get("version", 0))


def load_records(paths: DatasetPaths) -> dict[str, Any]:
    """Every upstream stage's run record, typed; checks they describe the same pipeline run."""
    records: dict[str, Any] = {
        "ingest": IngestRecord.read(paths.record("ingest")),
        "fit": FitRecord.read(paths.record("fit")),
        "generate": GenerateRecord.read(paths.record("generate")),
        "blend": BlendRecord.read(paths.record("blend")),
        "validate": ValidateRecord.read(paths.record("validate")),
    }
    blended = records["blend"].blended.sha256
    if tableset.digest(paths.blended) != blended:
        raise IntegrityError(f"{paths.rel(paths.blended)}: changed since blend recorded it; re-run blend")
    if records["validate"].blended_sha256 != blended:
        raise IntegrityError("validation report is for another blended file; re-run validate")
    problems = chain_problems(paths, records)
    if problems:
        raise IntegrityError(
            "the run records do not describe one pipeline run (a run cut short after some stages?):\n"
            + "\n".join(f"  - {x}" for x in problems)
            + f"\nRe-run the stages from the first one named (`synthgate run {paths.name}` or `dvc repro`); "
            "nothing was published."
        )
    return records


def chain_problems(paths: DatasetPaths, records: dict[str, Any]) -> list[str]:
    """Every file a stage read that is not what the upstream stage's record says it wrote (e.g. a
    generate record that sampled another model than the fit record's: fit re-ran, generate did not)."""
    produced: dict[tuple[str, str], tuple[str, str]] = {}
    problems = []
    upstream: dict[str, Any] = {}
    for stage, record in records.items():
        for ref in record.inputs(upstream):
            made = produced.get((ref.role, ref.path))
            if made is not None and made[0] != ref.sha256:
                problems.append(
                    f"{paths.rel(paths.record(stage))} read {ref.role} {ref.path} with sha256 {ref.sha256[:12]}…, "
                    f"but {paths.rel(paths.record(made[1]))} wrote {made[0][:12]}…: re-run {stage}"
                )
        upstream[stage] = record
        produced |= {(ref.role, ref.path): (ref.sha256, stage) for ref in record.outputs(upstream)}
    return problems


def build_manifest(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    records: dict[str, Any],
    validation: dict[str, Any],
    version: int,
    handle: Any,
) -> Manifest:
    """The release manifest: what, from where, by which code, params, engine, model and checks."""
    from pipelines.config import recorded_defaults

    ingest: IngestRecord = records["ingest"]
    fit: FitRecord = records["fit"]
    blend: BlendRecord = records["blend"]
    stage_runs = {s: r.mlflow.run_id for s, r in records.items()}
    return Manifest(
        dataset=cfg.name,
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        synthgate_version=__version__,
        files=[],
        rows=blend.rows,
        source={**ingest.source, "snapshot_sha256": ingest.snapshot.sha256},
        split={
            **ingest.split.model_dump(mode="json"),
            "train_rows": ingest.train.rows,
            "holdout_rows": ingest.holdout.rows,
            "train_sha256": ingest.train.sha256,
            "holdout_sha256": ingest.holdout.sha256,
        },
        **code_version(paths.root),
        params=cfg.to_params(),
        param_defaults=recorded_defaults(cfg, paths.root),
        mlflow=MlflowRuns(
            experiment=handle.experiment_name,
            run_id=handle.parent_run_id,
            stage_runs={**stage_runs, "release": handle.run_id},
        ),
        model=ModelSummary(
            synthesizer=fit.synthesizer,
            engine=fit.engine,
            uri=fit.model.mlflow_model_uri,
            sha256=fit.model.sha256,
            registered_model=fit.model.registered_model,
            registered_version=fit.model.registered_version,
            selection=fit.selection,
            subsample=fit.subsample,
        ),
        gates=[GateVerdict.model_validate(g) for g in validation["gates"]],
        gx=records["validate"].gx.model_dump(mode="json"),
        blend=BlendSummary(
            strategy=blend.strategy,
            rows_by_provenance=blend.rows_by_provenance,
            contains_real_rows=blend.rows_by_provenance.get("real", 0) > 0,
        ),
        records={s: sha256_file(paths.record(s)) for s in UPSTREAM},
        privacy=_privacy(cfg, fit),
        runner=runner_info(),
    )


def _privacy(cfg: DatasetConfig, fit: FitRecord) -> dict[str, Any] | None:
    """The manifest's `privacy`: the fit's DP section (without its ledger path) and the budget."""
    if fit.privacy is None:
        return None
    section = {k: v for k, v in fit.privacy.items() if k != "ledger"}
    return {
        **section,
        "ledger": (fit.privacy.get("ledger") or {}).get("totals"),
        "budget": cfg.gates.privacy_budget_max,
    }


def ledger_entry_of(records: dict[str, Any]) -> dict[str, Any] | None:
    """The model's privacy-ledger entry, for `_complete` to record the release against (None: no DP record)."""
    from pipelines.dp import ledger_entry

    fit: FitRecord = records["fit"]
    if fit.privacy is None:
        return None
    ingest: IngestRecord = records["ingest"]
    return ledger_entry(
        fit.privacy,
        fit.model.sha256,
        fit.engine.get("name", fit.synthesizer),
        ingest.source["sha256"],
        ingest.snapshot.sha256,
        fit.mlflow.run_id,
    )
