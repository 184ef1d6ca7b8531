"""release: publish only when every gate passed, atomically; otherwise keep the last release.

The new release is assembled in a temporary folder beside `data/release/<ds>/` and swapped in
with renames; a crash at any point leaves either the old or the new release, never a mix
(`recover` finishes an interrupted swap). Every attempt, published or blocked, is appended to
`logs/releases/<ds>.jsonl`. A `dvc exp run` publishes nothing unless asked: its result that passed
is a candidate in `data/experiments/<exp>/<ds>/` (pipelines/experiment.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import datacard, tableset
from pipelines.errors import GateFailed
from pipelines.experiment import blocked_next_steps, candidate_experiment, candidate_paths
from pipelines.gitinfo import dvc_experiment, runner_info
from pipelines.io import apply_umask, dumps_json, read_json, sha256_file, write_json
from pipelines.locks import file_lock
from pipelines.manifest import build_manifest, current_version, ledger_entry_of, load_records
from pipelines.records.release import (
    Manifest,
    ReleaseAttempt,
)
from pipelines.verdicts import verified_validation

DATACARD_MD, DATACARD_JSON = "datacard.md", "datacard.json"
"""The data card's files in the release folder (pipelines/datacard.py), listed in the manifest."""

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


@contextlib.contextmanager
def dataset_lock(paths: DatasetPaths) -> Iterator[None]:
    """Exclusive lock per dataset: two releases of one dataset never write at once."""
    with file_lock(paths.lock, f"another run is releasing '{paths.name}' right now; try again when it ends"):
        yield


def _old_dir(paths: DatasetPaths) -> Path:
    return paths.release_dir.with_name(f".{paths.name}.old")


def interrupted(paths: DatasetPaths) -> bool:
    """Whether a crash left something for `recover`: a swap cut between its renames or a publish journal."""
    return _old_dir(paths).exists() or paths.publish_journal.is_file()


def recover(paths: DatasetPaths) -> str | None:
    """Finish or undo what a crash interrupted; return what was done (None: nothing to do).

    A swap cut between its two renames is finished (the old release is put back when the new one
    is not in place). A publish journal is completed when its version is the one in place
    (attempts log, MLflow tags and runs closed), else rolled back: the version was never swapped
    in, so it is logged as interrupted and its MLflow runs are closed FAILED.
    """
    done = None
    old = _old_dir(paths)
    if old.exists():
        if paths.release_dir.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, paths.release_dir)
            done = f"restored the previous release of '{paths.name}' (a swap was cut short)"
    for tmp in paths.release_dir.parent.glob(f".{paths.name}.new-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    if paths.publish_journal.is_file():
        journal = read_json(paths.publish_journal)
        in_place = paths.manifest.is_file() and sha256_file(paths.manifest) == journal["manifest_sha256"]
        _complete(paths, journal, swapped=in_place)
        done = (
            f"completed the records of '{paths.name}' v{journal['version']} (published, records were cut short)"
            if in_place
            else f"rolled back '{paths.name}' v{journal['version']} (interrupted before it was published)"
        )
    return done


def _complete(paths: DatasetPaths, journal: dict[str, Any], swapped: bool) -> None:
    """Write what a publish records after its swap (idempotent), close its MLflow runs, then drop
    the journal: a kill anywhere before the journal is gone leaves it for `recover`, so no published
    version keeps a RUNNING run that a later pipeline run could join (found by tests/faults)."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import use_store

    use_store(paths.root)
    client = MlflowClient()
    version, attempt = journal["version"], journal["attempt"]
    logged = {(e.get("mlflow_run_id"), e.get("version"), e.get("verdict")) for e in _attempts(paths)}
    if swapped:
        if (attempt["mlflow_run_id"], version, "released") not in logged:
            _append_attempt(paths, {**attempt, "verdict": "released", "version": version})
        if journal.get("ledger_entry"):
            from pipelines.dp import record

            record(paths, journal["ledger_entry"], version)
        for run_id in (journal["release_run_id"], journal["parent_run_id"]):
            client.set_tag(run_id, "synthgate.verdict", "released")
            client.set_tag(run_id, "synthgate.release_version", str(version))
        model = journal.get("model") or {}
        if model.get("name") and model.get("version"):  # which releases a registered model version made
            key = f"synthgate.release.v{version}"
            client.set_model_version_tag(model["name"], str(model["version"]), key, journal["manifest_sha256"])
            client.set_model_version_tag(model["name"], str(model["version"]), "synthgate.last_release", str(version))
    else:
        if (attempt["mlflow_run_id"], None, "interrupted") not in logged:
            _append_attempt(
                paths,
                {
                    **{k: v for k, v in attempt.items() if k != "release_sha256"},
                    "verdict": "interrupted",
                    "version": None,
                },
            )
        for run_id in (journal["release_run_id"], journal["parent_run_id"]):
            client.set_tag(run_id, "synthgate.verdict", "interrupted")
    status = "FINISHED" if swapped else "FAILED"
    for run_id in (
        journal["release_run_id"],
        *([] if journal.get("runner_closes_parent") else [journal["parent_run_id"]]),
    ):
        client.set_terminated(run_id, status=status)
    paths.publish_journal.unlink(missing_ok=True)


def _attempts(paths: DatasetPaths) -> list[dict[str, Any]]:
    if not paths.attempts_log.is_file():
        return []
    return [json.loads(line) for line in paths.attempts_log.read_text(encoding="utf-8").splitlines() if line.strip()]


def _append_attempt(paths: DatasetPaths, entry: dict[str, Any]) -> None:
    log = paths.attempts_log
    log.parent.mkdir(parents=True, exist_ok=True)
    line = ReleaseAttempt.model_validate(entry).model_dump(mode="json")
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def assemble(paths: DatasetPaths, manifest: dict[str, Any], report_page: str, lay: tableset.Layout) -> Path:
    """The new release in a temporary folder beside the old one (the manifest gets its files): the
    data as `<ds>.parquet`, or for a set of tables `tables/<table>.parquet`, the report and the data
    card (`datacard.md`, `datacard.json`); every file and folder with the modes the umask implies
    (the temporary folder itself is made 0700)."""
    from pipelines.datacard_render import markdown, with_card
    from pipelines.report import with_lineage

    parent = paths.release_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{paths.name}.new-", dir=parent))
    try:
        if paths.manifests_dir.is_dir():
            shutil.copytree(paths.manifests_dir, new / "manifests")
        target = paths.release_data(lay.single)
        data = new / target.relative_to(paths.release_dir)
        tableset.copy(paths.blended, data)
        manifest["files"] = tableset.manifest_files(data, paths.rel(target), int(manifest.get("rows", 0)))
        card = datacard.build(paths, manifest["params"], manifest)
        report = new / paths.release_report.name
        report.write_text(with_card(with_lineage(report_page, manifest), card), encoding="utf-8")
        manifest["files"].append({"path": paths.rel(paths.release_report), "rows": None, "sha256": sha256_file(report)})
        for name, text in ((DATACARD_MD, markdown(card)), (DATACARD_JSON, dumps_json(card))):
            (new / name).write_text(text, encoding="utf-8")
            rel = paths.rel(paths.release_dir / name)
            manifest["files"].append({"path": rel, "rows": None, "sha256": sha256_file(new / name)})
        text = dumps_json(Manifest.model_validate(manifest).model_dump(mode="json"))
        (new / "manifests").mkdir(exist_ok=True)
        (new / "manifests" / f"v{manifest['version']:04d}.json").write_text(text, encoding="utf-8")
        (new / paths.manifest.name).write_text(text, encoding="utf-8")
        apply_umask(new)
        for f in new.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return new


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where the
    system or the filesystem cannot, so the caller falls back to two renames."""
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a libc without it (glibc < 2.28, some musl builds)
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def swap(paths: DatasetPaths, new: Path) -> None:
    """Put the assembled release in place: one atomic exchange of the two folders, so a reader (or
    a crash) sees the old or the new release and never none; where the filesystem cannot exchange,
    two renames (a crash between them leaves the old release in `.<ds>.old`, which `recover` and
    the next run put back)."""
    if paths.release_dir.exists() and _exchange(new, paths.release_dir):
        hook("renames")  # `new` now holds the old release: `recover` removes it after a crash
        shutil.rmtree(new, ignore_errors=True)
        return
    old = _old_dir(paths)
    if paths.release_dir.exists():
        os.replace(paths.release_dir, old)
        hook("renames")
    os.replace(new, paths.release_dir)
    shutil.rmtree(old, ignore_errors=True)


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The release stage: publish when every gate passed, else raise GateFailed (saying what to do
    next). In a DVC experiment, write the candidate beside the release instead (pipelines/experiment.py)."""
    import mlflow

    from pipelines import tracking

    with dataset_lock(paths):
        recover(paths)
        records = load_records(paths)
        version = current_version(paths) + 1
        with tracking.stage_run(cfg, paths, "release") as handle:
            validation = verified_validation(cfg, paths, records["validate"])
            failed = [g for g in validation["gates"] if not g["passed"]]
            attempt = {
                "dataset": cfg.name,
                "attempted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "source_sha256": records["ingest"].source["sha256"],
                "mlflow_run_id": handle.parent_run_id,
                "runner": runner_info(),
                "gates": [{k: g[k] for k in ("name", "value", "threshold", "passed")} for g in validation["gates"]],
            }
            _log_verdict_on_parent(handle.parent_run_id, validation)
            if failed:
                _append_attempt(
                    paths, {**attempt, "verdict": "blocked", "version": None, "failed": [g["name"] for g in failed]}
                )
                mlflow.set_tags({"synthgate.verdict": "blocked"})
                mlflow.MlflowClient().set_tag(handle.parent_run_id, "synthgate.verdict", "blocked")
                tracking.end_pipeline(handle, success=False)
                steps = blocked_next_steps(paths, version - 1, attempt["runner"]["runner"], dvc_experiment())
                raise GateFailed(cfg.name, failed, steps)
            candidate = candidate_experiment()
            if candidate is not None:
                return _write_candidate(cfg, paths, records, validation, handle, attempt, candidate)
            hook("publish")
            manifest = build_manifest(cfg, paths, records, validation, version, handle).model_dump(mode="json")
            new = assemble(paths, manifest, paths.report_html.read_text(encoding="utf-8"), tableset.layout(cfg))
            try:  # everything uploaded before the swap; what follows it is journaled
                mlflow.log_artifact(str(new / paths.manifest.name), artifact_path="release")
                mlflow.log_artifact(str(new / paths.release_report.name), artifact_path="release")
                mlflow.log_metric("release.version", version)
                client = mlflow.MlflowClient()
                for name in (paths.manifest.name, paths.release_report.name):  # the run list compares releases
                    client.log_artifact(handle.parent_run_id, str(new / name), artifact_path="release")
                client.log_metric(handle.parent_run_id, "release.version", version)
                journal = {
                    "version": version,
                    "manifest_sha256": sha256_file(new / paths.manifest.name),
                    "release_run_id": handle.run_id,
                    "parent_run_id": handle.parent_run_id,
                    "runner_closes_parent": bool(os.environ.get(tracking.PARENT_ENV)),
                    "model": {
                        "name": records["fit"].model.registered_model,
                        "version": records["fit"].model.registered_version,
                    },
                    "attempt": {**attempt, "release_sha256": manifest["files"][0]["sha256"]},
                    "ledger_entry": ledger_entry_of(records),
                }
                write_json(paths.publish_journal, journal)
                hook("swap")
                swap(paths, new)
            finally:
                shutil.rmtree(new, ignore_errors=True)
            hook("records")
            _complete(paths, journal, swapped=True)
    return manifest


def _write_candidate(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    records: dict[str, Any],
    validation: dict[str, Any],
    handle: Any,
    attempt: dict[str, Any],
    experiment: dict[str, str],
) -> dict[str, Any]:
    """A DVC experiment's result that passed every gate: written to its own folder
    (`data/experiments/<exp>/<ds>/`: data, manifest, report) and logged to MLflow as `candidate/`;
    the published release, its version, the model-version tags and the privacy ledger are untouched."""
    import mlflow

    from pipelines import tracking

    where = candidate_paths(paths, experiment)
    manifest = build_manifest(cfg, paths, records, validation, 0, handle).model_dump(mode="json")
    manifest["experiment"] = {**experiment, "published_version": current_version(paths) or None}
    new = assemble(where, manifest, paths.report_html.read_text(encoding="utf-8"), tableset.layout(cfg))
    folder = where.rel(where.release_dir)
    try:
        shutil.rmtree(new / "manifests")  # a candidate has one manifest, no versions
        client = mlflow.MlflowClient()
        for run_id in (handle.run_id, handle.parent_run_id):
            for name in (where.manifest.name, where.release_report.name):
                client.log_artifact(run_id, str(new / name), artifact_path="candidate")
            client.set_tag(run_id, "synthgate.verdict", "candidate")
            client.set_tag(run_id, "synthgate.candidate", folder)
        swap(where, new)
    finally:
        shutil.rmtree(new, ignore_errors=True)
    sha = manifest["files"][0]["sha256"]
    _append_attempt(
        paths, {**attempt, "verdict": "candidate", "version": None, "release_sha256": sha, "candidate": folder}
    )
    tracking.end_pipeline(handle, success=True)
    return manifest


def _log_verdict_on_parent(parent_run_id: str, validation: Mapping[str, Any]) -> None:
    """Every gate's figure and verdict on the pipeline (parent) run, so runs compare in MLflow's list."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = [Metric("gates.passed", float(validation["passed"]), now, 0)]
    for g in validation["gates"]:
        metrics += [Metric(f"gate.{g['name']}", float(g["value"]), now, 0)]
        metrics += [Metric(f"gate.{g['name']}.passed", float(g["passed"]), now, 0)]
    MlflowClient().log_batch(parent_run_id, metrics=metrics)


def hook(point: str) -> None:
    """Pause at a named point of the publish step when $SYNTHGATE_PAUSE_AT names it (fault tests
    kill the process there); a no-op otherwise.

    The points: `publish` (gates passed, nothing assembled yet; with $SYNTHGATE_PAUSE_S=0 it only
    marks the start of the publish step on stderr), `swap` (assembled, uploaded and journaled),
    `renames` (inside the swap: the folders exchanged, the old one not yet removed; or, without an
    atomic exchange, between the two renames) and `records` (swapped in, records not yet written).
    """
    if os.environ.get("SYNTHGATE_PAUSE_AT") == point:
        import sys
        import time

        print(f"paused at {point}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("SYNTHGATE_PAUSE_S", "3600")))
