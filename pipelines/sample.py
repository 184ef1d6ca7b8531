"""Sampling on demand from a released model, without making a release.

`synthgate sample hdma@3 --rows 5000 --seed 7 -o out.parquet` takes the model release v3 was
sampled from: its fit record and model file are taken from the workspace when they are still the
ones v3's manifest names, otherwise from MLflow (the fit run keeps its record, the registered model
version keeps the model); every digest is checked against the manifest and the registered version
before anything is unpickled. The sample gets the same treatment as a release shard (PII replaced,
source column order) and is recorded (`logs/samples/<ds>.jsonl` and an MLflow run tagged
`synthgate.role=sample`), but it is not gated and never touches `data/release/`.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import engines, ids, pii, tableset
from pipelines.errors import ConfigError, IntegrityError, InvalidInputError
from pipelines.io import atomic_path, read_json, sha256_file
from pipelines.records.stages import FitRecord

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


def _manifest(paths: DatasetPaths, version: int | None) -> dict[str, Any]:
    """The manifest of release `version` (None: the current one)."""
    if version is None:
        if not paths.manifest.is_file():
            raise InvalidInputError(paths.rel(paths.manifest), ["no release yet"], hint="Release the dataset first.")
        return read_json(paths.manifest)
    path = paths.manifests_dir / f"v{version:04d}.json"
    if not path.is_file():
        known = (
            sorted(int(p.stem[1:]) for p in paths.manifests_dir.glob("v*.json")) if paths.manifests_dir.is_dir() else []
        )
        raise InvalidInputError(
            f"{paths.name}@{version}", [f"no release v{version} (released: {known or 'none'})"],
            hint=f"List them with `synthgate releases {paths.name}`.",
        )  # fmt: skip
    return read_json(path)


def _fit_record(paths: DatasetPaths, manifest: dict[str, Any], scratch: Path) -> FitRecord:
    """The fit record the release was built from: the workspace's if unchanged, else MLflow's copy."""
    from mlflow.tracking import MlflowClient

    expected = manifest["records"]["fit"]
    local = paths.record("fit")
    if local.is_file() and sha256_file(local) == expected:
        return FitRecord.read(local)
    run_id = manifest["mlflow"]["stage_runs"]["fit"]
    try:
        fetched = Path(MlflowClient().download_artifacts(run_id, "records/fit.json", str(scratch)))
    except Exception as err:
        raise IntegrityError(
            f"the fit record of {paths.name} v{manifest['version']} is neither in the workspace nor in MLflow "
            f"(fit run {run_id}: {err}); sample a release whose records are kept"
        ) from err
    if sha256_file(fetched) != expected:
        raise IntegrityError(
            f"the fit record MLflow keeps for {paths.name} v{manifest['version']} does not have the sha256 the "
            "manifest names; refusing to use it"
        )
    return FitRecord.read(fetched)


def _model_file(paths: DatasetPaths, fit: FitRecord, scratch: Path) -> Path:
    """The model file: the workspace's if it is the recorded one, else the registered version's copy."""
    if paths.model.is_file() and sha256_file(paths.model) == fit.model.sha256:
        return paths.model
    name, version = fit.model.registered_model, fit.model.registered_version
    if not (name and version):
        raise IntegrityError(f"model of {paths.name}: not in the workspace any more and not registered in MLflow")
    import mlflow

    uri = f"models:/{name}/{version}"
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch)))
    candidates = [p for p in sorted(folder.rglob("*")) if p.is_file() and sha256_file(p) == fit.model.sha256]
    if not candidates:
        raise IntegrityError(
            f"registered model {name} v{version} holds no file with the model sha256 the fit record names; "
            "refusing to unpickle"
        )
    return candidates[0]


def _conditions_problems(cfg: DatasetConfig, fit: FitRecord, conditions: dict[str, Any]) -> list[str]:
    engine = engines.get(fit.synthesizer)
    problems = []
    if conditions and not engine.info.conditions:
        problems.append(f"--conditions: engine {fit.synthesizer!r} cannot sample on conditions")
    protected = set(pii.PiiPlan.from_dict(fit.pii).names)
    for column in conditions:
        if column in protected:
            problems.append(f"--conditions: {column!r} is a PII column (never learned)")
        elif column not in fit.learned_columns:
            problems.append(f"--conditions: {column!r} is not a learned column (learned: {fit.learned_columns})")
    return problems


def sample(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    version: int | None,
    rows: int,
    seed: int,
    out: Path,
    conditions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sample `rows` rows from the model of release `version` (None: current) into `out`; the record."""
    import mlflow

    from pipelines.generate import in_source_order, plan
    from pipelines.mlflow_model import verify_registered_digest
    from pipelines.tracking import experiment_name, use_store

    conditions = dict(conditions or {})
    lay = tableset.layout(cfg)
    problems = [] if 1 <= rows <= cfg.generate.max_rows else [f"--rows: {rows} is not in 1..{cfg.generate.max_rows}"]
    if not 0 <= seed < 2**32:
        problems.append(f"--seed: {seed} is not in 0..2**32-1")
    out = out.resolve()
    if out.is_relative_to(paths.release_dir.resolve().parent):
        problems.append(f"-o: {out} is inside data/release/; a sample is never a release: write it elsewhere")
    if lay.single and out.suffix not in (".parquet", ".csv"):
        problems.append(f"-o: {out.name} must end in .parquet or .csv")
    if lay.relational and out.suffix.lower() in (".parquet", ".csv"):
        problems.append(
            f"-o: {out.name}: a sample of a table set is a folder of one <table>.parquet per table, as a release's "
            "tables/ is; name a folder without .parquet (pandas reads a folder named .parquet as one mixed table)"
        )
    if problems:
        raise ConfigError(problems, "synthgate sample")
    use_store(paths.root)
    manifest = _manifest(paths, version)
    with tempfile.TemporaryDirectory(prefix="synthgate-sample-") as tmp:
        fit = _fit_record(paths, manifest, Path(tmp))
        if fit.model.sha256 != manifest["model"]["sha256"]:
            raise IntegrityError(f"the fit record of {paths.name} v{manifest['version']} names another model")
        problems = _conditions_problems(cfg, fit, conditions)
        if problems:
            raise ConfigError(problems, "synthgate sample")
        verify_registered_digest(fit, paths.root)
        engine = engines.get(fit.synthesizer)
        model = engine.load(_model_file(paths, fit, Path(tmp)), fit.model.sha256, fit.model.path)
        train_rows = tableset.rows_of(fit.train, lay)
        shards = plan(rows, cfg.generate.shard_rows, seed) if lay.shardable else plan(rows, rows, seed)
        parts: list[dict[str, pd.DataFrame]] = []
        avoid = pii.real_pii_values(paths, fit)
        plan_pii = pii.PiiPlan.from_dict(fit.pii)
        for shard in shards:
            request = engines.SampleRequest(shard.rows, shard.seed, lay.main, train_rows, conditions)
            tables = engine.sample(model, request)
            if fit.ids:  # as generate does: ids unique across shards
                first = shard.index * cfg.generate.shard_rows
                tables[lay.main] = ids.renumber(tables[lay.main], fit.ids, first, cfg.name)
            if plan_pii.columns:
                tables[lay.main] = pii.apply_plan(tables[lay.main], plan_pii, shard.seed, avoid, columns=fit.columns)
            parts.append({t: in_source_order(df, fit.tables.get(t, [])) for t, df in tables.items()})
    written = _write(out, parts, lay)
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.name,
        "release_version": manifest["version"],
        "model_sha256": fit.model.sha256,
        "registered_model": fit.model.registered_model,
        "registered_version": fit.model.registered_version,
        "rows": rows,
        "seed": seed,
        "conditions": conditions,
        "out": str(out),
        "sha256": written,
    }
    mlflow.set_experiment(experiment_name(cfg.name))
    with mlflow.start_run(run_name=f"sample v{manifest['version']}") as run:
        mlflow.set_tags({"synthgate.role": "sample", "synthgate.release_version": str(manifest["version"])})
        mlflow.log_params({k: json.dumps(v) if isinstance(v, dict) else v for k, v in entry.items() if k != "time"})
        entry["mlflow_run_id"] = run.info.run_id
    paths.samples_log.parent.mkdir(parents=True, exist_ok=True)
    with open(paths.samples_log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def _write(out: Path, parts: list[dict[str, pd.DataFrame]], lay: tableset.Layout) -> str:
    """Write the sample atomically (parquet or CSV for one table; a folder per table set); its sha256."""
    import pandas as pd

    tables = {t: pd.concat([p[t] for p in parts], ignore_index=True) for t in parts[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    if not lay.single:
        return str(tableset.write(out, tables, lay)["sha256"])
    df = tables[lay.main]
    with atomic_path(out) as tmp:
        if out.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return sha256_file(out)
