"""Reuse of a stage's last outputs in an Airflow run, on the same terms as `dvc repro`.

DVC skips a stage whose deps and params are unchanged. An Airflow run re-runs every stage, so a
run that only changes gates (`{"gates": {"quality_min": 0.8}}`) used to re-ingest and refit. Here
the stage's inputs are what dvc.yaml declares for it (its dep files, code included, and its params,
taken from the run's effective config, overrides applied); after a stage succeeds in Airflow their
digest is written next to its record (`runs/<ds>/<stage>.inputs.json`), and a later run reuses the
stage when the digest, the record and every output the record names still match.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import DatasetConfig
from pipelines.io import dumps_json, read_json, sha256_bytes, sha256_file, write_json
from pipelines.paths import DatasetPaths
from pipelines.records import RECORDS
from pipelines.tableset import digest as data_digest

log = logging.getLogger("synthgate.airflow")

REUSABLE = ("ingest", "fit")
"""Stages an Airflow run may reuse (the costly ones whose inputs a gates-only change leaves alone)."""


def _declared(root: Path, stage: str, cfg: DatasetConfig) -> tuple[list[str], list[str]]:
    """The stage's deps (paths) and params (keys of a dataset block) from dvc.yaml, for `cfg`."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["do"]
    source_path = cfg.source.path

    def fill(text: str) -> str:
        return text.replace("${key}", cfg.name).replace("${item.source.path}", source_path)

    deps = [fill(d if isinstance(d, str) else next(iter(d))) for d in spec.get("deps", [])]
    keys = []
    for param in spec.get("params", []):
        key = fill(param if isinstance(param, str) else next(iter(param)))
        for prefix in ("defaults.", f"datasets.{cfg.name}."):
            if key.startswith(prefix):
                keys.append(key.removeprefix(prefix))
    return deps, sorted(set(keys))


def _path_digest(path: Path) -> str | None:
    """sha256 of a file, of a folder's files (no caches), or None when it does not exist."""
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sha256_bytes("\n".join(f"{p.relative_to(path)} {sha256_file(p)}" for p in files).encode())


def _value(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def inputs_digest(cfg: DatasetConfig, paths: DatasetPaths, stage: str) -> str:
    """The digest of what dvc.yaml says `stage` depends on, with this run's effective params."""
    deps, keys = _declared(paths.root, stage, cfg)
    config = cfg.to_params()
    inputs = {
        "deps": {d: _path_digest(paths.root / d) for d in deps},
        "params": {k: _value(config, k) for k in keys},
    }
    return sha256_bytes(dumps_json(inputs).encode())


def _sidecar(paths: DatasetPaths, stage: str) -> Path:
    return paths.record(stage).with_name(f"{stage}.inputs.json")


def remember(cfg: DatasetConfig, paths: DatasetPaths, stage: str, digest: str) -> None:
    """After `stage` succeeded: the digest of its inputs and of the record it wrote."""
    write_json(_sidecar(paths, stage), {"inputs_sha256": digest, "record_sha256": sha256_file(paths.record(stage))})


def reusable(cfg: DatasetConfig, paths: DatasetPaths, stage: str, digest: str) -> str | None:
    """Why `stage`'s last outputs can stand for this run, or None when it must run."""
    sidecar, record_path = _sidecar(paths, stage), paths.record(stage)
    if not sidecar.is_file() or not record_path.is_file():
        return None
    try:
        seen = read_json(sidecar)
        if seen.get("inputs_sha256") != digest or seen.get("record_sha256") != sha256_file(record_path):
            return None
        record = RECORDS[stage].read(record_path)
        outputs = record.outputs({})
    except Exception as err:  # an unreadable or foreign record: run the stage
        log.info("%s %s: last record not reusable (%s); running it", stage, cfg.name, err)
        return None
    for ref in outputs:
        path = paths.root / ref.path
        if not path.exists() or data_digest(path) != ref.sha256:
            return None
    return f"inputs unchanged since its last run (sha256 {digest[:12]}…), outputs verified"
