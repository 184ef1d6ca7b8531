"""fit: SDV metadata (committed, editable) + synthesizer from params, saved with its digest."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, IntegrityError, InvalidInputError
from pipelines.io import atomic_path, read_json, read_parquet, sha256_file, write_json

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths

SYNTHESIZERS = {
    "gaussian_copula": "GaussianCopulaSynthesizer",
    "ctgan": "CTGANSynthesizer",
    "tvae": "TVAESynthesizer",
    "copulagan": "CopulaGANSynthesizer",
}


def detect_metadata(df: pd.DataFrame, table: str) -> dict[str, Any]:
    """SDV 2 metadata detected from a frame (written once to metadata/<ds>.json, then edited)."""
    import warnings

    from sdv.metadata import Metadata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Metadata.detect_from_dataframes({table: df}).to_dict()


def load_metadata(paths: DatasetPaths) -> Any:
    """The committed metadata file as an SDV Metadata object (the source of truth)."""
    from sdv.metadata import Metadata

    if not paths.metadata.is_file():
        raise InvalidInputError(
            str(paths.metadata.relative_to(paths.root)),
            ["SDV metadata file not found"],
            hint=f"Create it with `synthgate expectations init {paths.name}` and commit it.",
        )
    raw = read_json(paths.metadata)
    try:
        return Metadata.load_from_dict(raw)
    except Exception as err:  # SDV raises InvalidMetadataError and friends
        raise InvalidInputError(str(paths.metadata.relative_to(paths.root)), [str(err)]) from None


def check_metadata(metadata: Any, df: pd.DataFrame, table: str, where: str) -> None:
    """Every column of the data must be described, and the data must satisfy the metadata."""
    described = set(metadata.tables[table].columns) if table in metadata.tables else set()
    if table not in metadata.tables:
        raise InvalidInputError(where, [f"no table '{table}' in the metadata"])
    problems = [f"column '{c}' is not described in the metadata" for c in df.columns if c not in described]
    problems += [f"metadata describes column '{c}', which the data lacks" for c in described if c not in df.columns]
    if problems:
        raise InvalidInputError(
            where, problems, hint="Edit the metadata file or re-run `synthgate expectations init --force`."
        )
    try:
        metadata.validate_data({table: df})
    except Exception as err:  # sdv.errors.InvalidDataError lists every problem
        raise InvalidInputError(where, [str(err)]) from None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CTGAN/TVAE fits are only reproducible this way)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch ships with sdv
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_synthesizer(cfg: DatasetConfig, metadata: Any) -> Any:
    """The configured SDV synthesizer (class from fit.synthesizer, arguments from fit.params)."""
    import sdv.single_table as st

    cls = getattr(st, SYNTHESIZERS[cfg.fit.synthesizer])
    kwargs = dict(cfg.fit.params)
    if cfg.fit.synthesizer != "gaussian_copula":
        kwargs.setdefault("enable_gpu", _gpu_available())
    return cls(metadata, **kwargs)


def _gpu_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def strip_pii(train: pd.DataFrame, metadata: Any, plan: Any, table: str) -> tuple[pd.DataFrame, Any]:
    """The train frame and metadata without the plan's PII columns (they are never learned)."""
    if not plan.columns:
        return train, metadata
    learned = metadata.copy()
    if learned.tables[table].primary_key in plan.names:
        learned.remove_primary_key(table)
    for col in plan.names:
        learned.remove_column(col, table)
    return train.drop(columns=plan.names), learned


def fit(cfg: DatasetConfig, metadata: Any, train: pd.DataFrame) -> Any:
    """Fit the synthesizer on the train split, seeded."""
    import warnings

    seed_everything(cfg.seed)
    synth = build_synthesizer(cfg, metadata)
    if cfg.fit.constraints:
        from pipelines.constraints import to_sdv

        try:
            synth.add_constraints(to_sdv(cfg.fit.constraints))
        except Exception as err:  # SDV raises ConstraintNotMetError, ValueError, ...
            raise ConfigError([f"datasets.{cfg.name}.fit.constraints: SDV rejected the rules: {err}"]) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        synth.fit({cfg.name: train})
    return synth


def check_digest(path: Path, expected: str, root: Path, stage: str) -> None:
    """IntegrityError when a file no longer matches the digest a run record holds."""
    actual = sha256_file(path) if Path(path).is_file() else "missing"
    if actual != expected:
        raise IntegrityError(
            f"{Path(path).relative_to(root)}: sha256 {actual[:12]}… does not match the {stage} record "
            f"({expected[:12]}…); re-run `{stage}`."
        )


def load_model(paths: DatasetPaths, expected_sha256: str) -> Any:
    """Unpickle the synthesizer only if its digest matches the fit record."""
    import cloudpickle

    actual = sha256_file(paths.model)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{paths.model.relative_to(paths.root)}: sha256 {actual[:12]}… does not match the fit "
            f"record ({expected_sha256[:12]}…); refusing to unpickle. Re-run `fit`."
        )
    with open(paths.model, "rb") as f:
        return cloudpickle.load(f)


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The fit stage: metadata check, seeded fit, model + digest, MLflow model."""
    import mlflow

    from pipelines import pii, tracking
    from pipelines.constraints import check_rules, rules_to_record
    from pipelines.mlflow_model import log_synthesizer
    from pipelines.rebalance import domain

    if cfg.source.tables:  # a relational dataset: HMA on every table
        from pipelines.relational import run_fit

        return run_fit(cfg, paths)
    train = read_parquet(paths.train)
    metadata = load_metadata(paths)
    check_metadata(metadata, train, cfg.name, str(paths.metadata.relative_to(paths.root)))
    plan = pii.plan_for(train, cfg.fit.pii, cfg.target)
    learned_train, metadata = strip_pii(train, metadata, plan, cfg.name)
    sdtypes = {c: v.get("sdtype") for c, v in metadata.tables[cfg.name].columns.items()}
    check_rules(cfg.fit.constraints, train, sdtypes, f"datasets.{cfg.name}.fit", protected=plan.names)
    with tracking.stage_run(cfg, paths, "fit") as handle:
        started = time.perf_counter()
        synth = fit(cfg, metadata, learned_train)
        fit_seconds = time.perf_counter() - started
        with atomic_path(paths.model) as tmp:
            synth.save(str(tmp))
        model_sha = sha256_file(paths.model)
        write_json(paths.model_metadata, metadata.to_dict())
        mlflow.log_params(
            {
                "synthesizer": cfg.fit.synthesizer,
                "seed": cfg.seed,
                **{f"synthesizer.{k}": str(v) for k, v in cfg.fit.params.items()},
            }
        )
        mlflow.log_metrics({"fit_seconds": fit_seconds, "rows.train": len(train)})
        mlflow.log_artifact(str(paths.metadata), artifact_path="metadata")
        model_info = log_synthesizer(paths.model, model_sha, cfg.name)
        rel = lambda p: str(Path(p).relative_to(paths.root))  # noqa: E731
        record = {
            "stage": "fit",
            "dataset": cfg.name,
            "synthesizer": cfg.fit.synthesizer,
            "params": dict(cfg.fit.params),
            "seed": cfg.seed,
            "train": {"path": rel(paths.train), "sha256": sha256_file(paths.train), "rows": len(train)},
            "metadata": {"path": rel(paths.metadata), "sha256": sha256_file(paths.metadata)},
            "model": {"path": rel(paths.model), "sha256": model_sha, **model_info},
            "fit_seconds": round(fit_seconds, 3),
            "mlflow": handle.as_record(),
            "columns": list(train.columns),
            "learned_columns": list(learned_train.columns),
            "pii": plan.to_dict(),
            "constraints": rules_to_record(cfg.fit.constraints),
            "domain": domain(learned_train),
            "holdout": {"path": rel(paths.holdout), "sha256": sha256_file(paths.holdout)},
        }
        if plan.columns:
            mlflow.log_params(
                {"pii.policy": plan.policy, "pii.locale": plan.locale, "pii.columns": ",".join(plan.names)}
            )
        write_json(paths.record("fit"), record)
    return record
