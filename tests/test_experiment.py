"""DVC experiments write a candidate and leave the release; a blocked run says what DVC shows and what to do.

`dvc exp run` is simulated in-process with the variables DVC 3.67 sets for a stage command of an
experiment (dvc/repo/experiments/queue/base.py); tests/test_e2e_dvc.py runs the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.experiment import PUBLISH_ENV, blocked_next_steps, candidate_experiment, candidate_paths
from pipelines.gitinfo import dvc_experiment, runner_info
from pipelines.io import sha256_file
from pipelines.paths import paths_for
from tests._lineage_ws import clean_env, new_workspace, small_hdma
from tests.conftest import run_stages

EXP = {"DVC_EXP_NAME": "tuned-rows", "DVC_EXP_BASELINE_REV": "0123456789abcdef0123456789abcdef01234567"}


def _tree(path: Path) -> dict[str, str]:
    return {str(f.relative_to(path)): sha256_file(f) for f in sorted(path.rglob("*")) if f.is_file()}


def test_an_experiment_is_found_by_the_variables_dvc_sets(monkeypatch):
    assert dvc_experiment() is None and candidate_experiment() is None and "dvc_experiment" not in runner_info()
    for key, value in EXP.items():
        monkeypatch.setenv(key, value)
    assert dvc_experiment() == {"name": "tuned-rows", "baseline_rev": EXP["DVC_EXP_BASELINE_REV"]}
    assert candidate_experiment() == dvc_experiment() and runner_info()["dvc_experiment"] == "tuned-rows"
    monkeypatch.setenv(PUBLISH_ENV, "1")
    assert candidate_experiment() is None and dvc_experiment() is not None  # asked to publish
    monkeypatch.delenv("DVC_EXP_NAME")
    assert dvc_experiment()["name"] == "exp-0123456"  # a baseline alone still marks an experiment


def test_a_temp_or_queued_experiment_lands_in_the_workspace_it_came_from(tmp_path, monkeypatch):
    """`dvc exp run --temp`: the stage runs in a copy; $DVC_ROOT names the user's workspace."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "home"))
    where = candidate_paths(paths_for("hdma", tmp_path / "tmpcopy"), {"name": "a/b c", "baseline_rev": ""})
    assert where.release_dir == (tmp_path / "home" / "data" / "experiments" / "a-b-c" / "hdma").resolve()
    assert where.rel(where.release_file) == "data/experiments/a-b-c/hdma/hdma.parquet"
    assert where.blended == tmp_path / "tmpcopy" / "data" / "blended" / "hdma" / "blended.parquet"


@pytest.mark.parametrize(
    ("runner", "experiment", "says"),
    [
        ("dvc", None, ["release@hdma stays out of date", "run `dvc repro` again", "git checkout params.yaml dvc.lock"]),
        ("dvc", {"name": "x"}, ["DVC kept no experiment", "`dvc exp run -S …` with other values"]),
        ("cli", None, ["not recorded in dvc.lock", "`dvc checkout --force`"]),
        ("airflow", None, ["`record_dvc` did not run", "trigger the DAG again"]),
    ],
)
def test_a_blocked_run_says_what_dvc_shows_and_what_to_do(tmp_path, runner, experiment, says):
    paths = paths_for("hdma", tmp_path)
    text = blocked_next_steps(paths, 3, runner, experiment)
    assert text.startswith("The previous release (v3, data/release/hdma/) was left untouched.")
    assert "reports/hdma/report.html" in text and "Next: " in text
    for phrase in says:
        assert phrase in text, (phrase, text)
    assert blocked_next_steps(paths, 0, runner, experiment).startswith("Nothing was published ('hdma' has no release")


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A workspace with release v1 of a small HDMA pipeline."""
    ws = new_workspace(tmp_path_factory.mktemp("experiment") / "ws", git=False, hdma=small_hdma(400))
    with clean_env():
        run_stages(ws, "hdma")
    return ws


def test_an_experiment_writes_a_candidate_and_leaves_the_release(released, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    from pipelines.cli import main
    from pipelines.tracking import get_run

    p = paths_for("hdma", released)
    before = _tree(p.release_dir)
    v1 = json.loads(p.manifest.read_text())
    model = (v1["model"]["registered_model"], v1["model"]["registered_version"])
    tags_before = get_run(v1["mlflow"]["run_id"], released).data.tags
    for key, value in EXP.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(released)
    assert main(["release", "hdma"]) == 0
    out = capsys.readouterr().out
    assert "DVC experiment 'tuned-rows' candidate at data/experiments/tuned-rows/hdma/hdma.parquet" in out
    assert "release v1 stays published (data/release/hdma/)" in out and "dvc exp apply tuned-rows" in out

    assert _tree(p.release_dir) == before  # the release, its manifests and version untouched
    folder = released / "data" / "experiments" / "tuned-rows" / "hdma"
    names = ["datacard.json", "datacard.md", "hdma.parquet", "manifest.json", "report.html"]
    assert sorted(f.name for f in folder.iterdir()) == names
    m = json.loads((folder / "manifest.json").read_text())
    assert m["version"] == 0 and m["experiment"]["name"] == "tuned-rows" and m["experiment"]["published_version"] == 1
    assert m["files"][0] == {
        "path": "data/experiments/tuned-rows/hdma/hdma.parquet",
        "rows": 400,
        "sha256": sha256_file(folder / "hdma.parquet"),
    }
    assert m["runner"]["dvc_experiment"] == "tuned-rows"
    assert "candidate of DVC experiment tuned-rows (not published)" in (folder / "report.html").read_text()

    attempt = json.loads(p.attempts_log.read_text().splitlines()[-1])
    assert (attempt["verdict"], attempt["version"]) == ("candidate", None)
    assert attempt["candidate"] == "data/experiments/tuned-rows/hdma"
    parent = get_run(m["mlflow"]["run_id"], released)
    assert parent.info.status == "FINISHED" and parent.data.tags["synthgate.verdict"] == "candidate"
    assert "release.version" not in parent.data.metrics
    client = MlflowClient()
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "candidate")} == {
        "candidate/manifest.json",
        "candidate/report.html",
    }
    tags = client.get_model_version(*model).tags  # the model version still names v1 as its last release
    assert tags["synthgate.last_release"] == "1" and not any(k.startswith("synthgate.release.v2") for k in tags)
    assert get_run(v1["mlflow"]["run_id"], released).data.tags == tags_before


def test_an_experiment_publishes_when_asked(released, monkeypatch):
    p = paths_for("hdma", released)
    for key, value in {**EXP, "DVC_EXP_NAME": "publish-me", PUBLISH_ENV: "1"}.items():
        monkeypatch.setenv(key, value)
    manifest = run_stages(released, "hdma", ("release",))
    assert manifest["version"] == json.loads(p.manifest.read_text())["version"] >= 2
    assert manifest["runner"]["dvc_experiment"] == "publish-me" and "experiment" not in manifest
    assert not (released / "data" / "experiments" / "publish-me").exists()
