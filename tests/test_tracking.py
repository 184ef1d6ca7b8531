"""The embedded MLflow store keeps artifact locations relative to itself: a moved or cloned
workspace still reads its models and records. MLflow keys built from user names (tables,
columns, classes) are keys MLflow accepts."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from pipelines import tracking
from pipelines.paths import paths_for
from tests._lineage_ws import clean_env, new_workspace, small_hdma
from tests.conftest import load, run_stages


def test_the_embedded_store_gets_a_relative_artifact_location(tmp_path, monkeypatch):
    assert tracking._artifact_location(tmp_path) == tracking.EMBEDDED_ARTIFACTS == "mlflow-artifacts:/"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert tracking._artifact_location(tmp_path) is None  # a server decides its own


def test_mlflow_artifacts_uris_resolve_beside_the_database(tmp_path):
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    tracking.use_store(tmp_path)  # registers the resolver, as every stage and command does
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    repo = get_artifact_repository("mlflow-artifacts:/abc/artifacts", tracking_uri=store)
    assert isinstance(repo, LocalArtifactRepository)
    assert Path(repo.artifact_dir) == (tmp_path / "mlartifacts" / "abc" / "artifacts").resolve()
    with pytest.raises(MlflowException, match="outside"):
        tracking.embedded_artifacts("mlflow-artifacts:/../../etc", store)
    server = get_artifact_repository("mlflow-artifacts:/abc", tracking_uri="http://127.0.0.1:5000")
    assert isinstance(server, MlflowArtifactsRepository)  # a tracking server proxies them itself


@pytest.fixture(scope="module")
def moved(tmp_path_factory) -> Path:
    """A workspace with release v1, copied to another folder; the original is deleted."""
    base = tmp_path_factory.mktemp("tracking")
    ws = new_workspace(base / "made-here", hdma=small_hdma(400))
    with clean_env():
        run_stages(ws, "hdma")
    dest = Path(shutil.copytree(ws, base / "moved-there", symlinks=True))
    shutil.rmtree(ws)
    return dest


def test_no_absolute_path_of_the_first_workspace_is_stored(moved):
    with sqlite3.connect(moved / "mlflow.db") as db:
        locations = [
            row[0] for row in db.execute("select artifact_location from experiments where name like 'synthgate-%'")
        ]
        runs = [row[0] for row in db.execute("select artifact_uri from runs")]
        models = [row[0] for row in db.execute("select storage_location from model_versions")]
    assert locations == ["mlflow-artifacts:/"]
    assert runs and models and all(u.startswith("mlflow-artifacts:/") for u in runs + models)
    assert not any("made-here" in u for u in locations + runs + models)


def test_lineage_and_sample_read_the_moved_artifacts(moved, tmp_path):
    """The fit record and the model come from MLflow's copies (removed from the workspace)."""
    from pipelines.lineage import lineage
    from pipelines.sample import sample

    p = paths_for("hdma", moved)
    p.record("fit").unlink()
    p.model.unlink()
    report = lineage("hdma@1", moved, use_dvc=False)
    assert report["mlflow"]["manifest_copy_sha256"] is not None, report["problems"]
    assert report["records"]["fit"]["source"].startswith("mlflow:"), report["records"]["fit"]
    assert report["ok"], report["problems"]
    entry = sample(load(moved, "hdma"), p, None, rows=50, seed=1, out=tmp_path / "s.parquet")
    assert entry["rows"] == 50 and entry["release_version"] == 1
    log = [json.loads(line) for line in p.samples_log.read_text().splitlines()]
    assert log[-1]["sha256"] == entry["sha256"]


def test_names_become_keys_mlflow_accepts():
    from mlflow.utils.validation import validate_param_and_metric_name

    assert tracking.mlflow_key("rows.train.Salary History") == "rows.train.Salary History"  # spaces are fine
    assert tracking.mlflow_key("orphans.Pay-Slips.Amount ($)") == "orphans.Pay-Slips.Amount ___"
    keys = tracking.flatten({"generate": {"conditions": {"n/a": "x", "ratio:1": 2, "Größe": 3}}})
    assert set(keys) == {"generate.conditions.n_a", "generate.conditions.ratio_1", "generate.conditions.Größe"}
    for key in [*keys, tracking.mlflow_key("a/../b"), tracking.mlflow_key("col (%)")]:
        assert validate_param_and_metric_name(key) and "/" not in key, key
