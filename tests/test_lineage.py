"""`synthgate lineage` / `releases`: real releases (in-process, Airflow-style and `dvc repro`), old
releases after newer ones, tamper detection, missing records, bad queries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import lineage
from pipelines.cli import main
from pipelines.errors import GateFailed, InvalidInputError
from pipelines.io import sha256_file
from pipelines.paths import paths_for
from tests._lineage_ws import BLOCKING, clean_env, new_workspace, release_as_airflow, small_hdma
from tests.conftest import HDMA, copy_released, git_init, run_stages, venv_env

STAGES = ("ingest", "fit", "generate", "blend", "validate", "release")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """v1 (in-process, seed 3), a blocked attempt, then v2 (Airflow-style runner, seed 5, 500 rows)."""
    root = new_workspace(tmp_path_factory.mktemp("lineage") / "ws", hdma=small_hdma(600))
    with clean_env():
        run_stages(root, "hdma")
        with pytest.raises(GateFailed):
            run_stages(root, "hdma", stages=("validate", "release"), overrides=BLOCKING)
    release_as_airflow(root, "hdma", overrides={"seed": 5, "generate": {"rows": 500}})
    return root


@pytest.fixture
def ws_copy(ws, tmp_path) -> Path:
    """A throwaway copy to tamper with (with its own copies of mlflow.db and mlartifacts/)."""
    return Path(shutil.copytree(ws, tmp_path / "copy", symlinks=True))


def _git_head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()


def test_lineage_of_the_current_release_file(ws):
    p = paths_for("hdma", ws)
    manifest = json.loads(p.manifest.read_text())
    r = lineage.lineage(str(p.release_file), ws)
    assert (r["dataset"], r["version"], r["current"]) == ("hdma", 2, True)
    assert r["ok"] and not r["tampered"] and r["problems"] == [], r["problems"]
    assert r["resolved"]["kind"] == "file" and r["resolved"]["matched_versions"] == [2]
    assert [(f["path"].rsplit("/", 1)[-1], f["status"]) for f in r["files"]] == [
        (name, "ok") for name in ("hdma.parquet", "report.html", "datacard.md", "datacard.json")
    ]
    assert r["files"][0]["sha256"] == sha256_file(p.release_file) and r["files"][0]["rows"] == 500
    assert [g["name"] for g in r["gates"]] == [g["name"] for g in manifest["gates"]]
    assert all(g["passed"] and "threshold" in g and "value" in g for g in r["gates"])
    assert r["gx"]["success"] is True and r["gx"]["suite"] == "expectations/hdma.release.json"
    # model: synthesizer, params, digest, registered version logged by the fit run of this pipeline
    fit = json.loads(p.record("fit").read_text())
    assert r["model"]["synthesizer"] == "gaussian_copula" and r["model"]["params"] == {}
    assert r["model"]["sha256"] == fit["model"]["sha256"] == sha256_file(p.model)
    assert r["model"]["registered_version"] == "2"
    assert r["model"]["registry"]["run_id"] == manifest["mlflow"]["stage_runs"]["fit"]
    # MLflow: the pipeline run and one finished stage run per stage, all children of it
    assert r["mlflow"]["pipeline_run"]["tags"]["synthgate.verdict"] == "released"
    assert set(r["mlflow"]["stage_runs"]) == set(STAGES)
    assert {s["parent_run_id"] for s in r["mlflow"]["stage_runs"].values()} == {manifest["mlflow"]["run_id"]}
    # records verified on disk, source/split/code/params/runner from the records
    assert {s: v["status"] for s, v in r["records"].items()} == dict.fromkeys(STAGES[:-1], "ok")
    assert r["source"]["sha256"] == sha256_file(HDMA) and r["source"]["rows"] == 2381
    assert r["split"]["train_rows"] + r["split"]["holdout_rows"] == 2381
    assert r["source"]["raw_contract"]["success"] is True
    assert r["code"]["git_commit"] == _git_head(ws) and r["code"]["git_dirty"] is False
    assert r["code"]["in_repository"] is True
    diffs = {d["key"]: (d["effective"], d["default"]) for d in r["params"]["differences"]}
    assert diffs["seed"] == (5, 42) and diffs["generate.rows"] == (500, None)
    assert diffs["gates.utility_gap_max"] == (0.5, 0.15)
    assert r["runner"] == {
        "runner": "airflow",
        "airflow_dag_id": "synth_hdma",
        "airflow_run_id": "manual__2026-11-25T00:00:00+00:00",
    }
    assert r["attempt"]["verdict"] == "released"


def test_lineage_of_an_old_release_after_a_newer_one(ws):
    v1 = json.loads((paths_for("hdma", ws).manifests_dir / "v0001.json").read_text())
    r = lineage.lineage("hdma@1", ws)
    assert (r["version"], r["current"], r["latest_version"]) == (1, False, 2)
    assert not r["tampered"] and r["ok"], r["problems"]
    assert r["files"][0]["sha256"] == v1["files"][0]["sha256"]
    assert r["files"][0]["status"].startswith("superseded by v2")
    # runs/hdma/*.json now belong to v2: v1's records are verified from the copies kept in MLflow
    for stage, rec in r["records"].items():
        assert rec["status"] == "ok" and rec["source"].startswith("mlflow:"), (stage, rec)
    assert r["records"]["ingest"]["record"]["split"]["seed"] == 3
    assert r["model"]["registered_version"] == "1" and r["model"]["seed"] == 3
    assert r["runner"]["runner"] == "cli"
    text = lineage.render(r)
    assert "hdma release v1" in text and "superseded (latest is v2)" in text


def test_lineage_by_digest_and_by_a_copy_of_an_old_file(ws, tmp_path):
    v1 = json.loads((paths_for("hdma", ws).manifests_dir / "v0001.json").read_text())
    digest = v1["files"][0]["sha256"]
    assert lineage.lineage(digest[:16], ws)["version"] == 1
    assert lineage.lineage(digest, ws)["resolved"]["kind"] == "sha256"
    v2_parquet = paths_for("hdma", ws).release_file
    downloaded = tmp_path / "downloaded.parquet"
    shutil.copyfile(v2_parquet, downloaded)
    r = lineage.lineage(str(downloaded), ws)
    assert r["version"] == 2 and r["resolved"]["matched_file"] == "data/release/hdma/hdma.parquet"


def test_tampered_release_file_is_reported_loudly(ws_copy, monkeypatch, capsys):
    p = paths_for("hdma", ws_copy)
    with open(p.release_file, "ab") as f:
        f.write(b"\0")
    r = lineage.lineage(str(p.release_file), ws_copy)
    assert r["tampered"] and not r["ok"]
    assert r["files"][0]["status"] == "TAMPERED"
    assert any("data/release/hdma/hdma.parquet" in t for t in r["tampered_items"])
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws_copy))
    assert main(["lineage", "data/release/hdma/hdma.parquet"]) == 4
    out = capsys.readouterr().out
    assert "integrity: TAMPERED" in out and "PROBLEMS" in out


def test_tampered_manifest_and_record_are_detected(ws_copy):
    p = paths_for("hdma", ws_copy)
    manifest = json.loads(p.manifest.read_text())
    manifest["gates"][1]["value"] = 0.99
    p.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    fit = json.loads(p.record("fit").read_text())
    fit["fit_seconds"] = 0.001
    p.record("fit").write_text(json.dumps(fit, indent=2, sort_keys=True) + "\n")
    r = lineage.lineage("hdma@2", ws_copy)
    items = " | ".join(r["tampered_items"])
    assert "manifest.json differs from data/release/hdma/manifests/v0002.json" in items
    assert "differs from the copy logged to MLflow" in items
    assert "runs/hdma/fit.json: same MLflow run as v2" in items
    # the genuine record is still verifiable from MLflow
    assert r["records"]["fit"]["status"] == "ok" and r["records"]["fit"]["source"].startswith("mlflow:")


def test_missing_records_are_reported_not_guessed(ws_copy, monkeypatch, capsys):
    (ws_copy / "mlflow.db").unlink()
    paths_for("hdma", ws_copy).record("blend").unlink()
    r = lineage.lineage("hdma@1", ws_copy)
    assert not r["tampered"] and not r["ok"]
    assert any("no MLflow store" in p for p in r["problems"])
    assert all(rec["status"].startswith("unverified") for rec in r["records"].values())
    assert any("blend run record of v1 cannot be verified: missing on disk" in p for p in r["problems"])
    assert r["model"].get("params") is None  # the fit record is not verified: nothing taken from it
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws_copy))
    assert main(["lineage", "hdma@2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["records"]["ingest"]["status"] == "ok" and report["records"]["blend"]["status"].startswith(
        "unverified"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("nope@1", "dataset 'nope' has no release"),
        ("hdma@7", r"no release v7 of 'hdma' \(there are: v1, v2\)"),
        ("0123456789abcdef", "no release file of any dataset has this sha256"),
        ("data/release/hdma/missing.parquet", "not a file or folder, a sha256"),
    ],
)
def test_bad_queries_are_typed_errors(ws, query, message):
    with pytest.raises(InvalidInputError, match=message):
        lineage.lineage(query, ws)


def test_cli_bad_query_exits_2(ws, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    assert main(["lineage", "hdma@7"]) == 2
    assert "no release v7" in capsys.readouterr().err


def test_an_unrelated_file_is_not_a_release(ws, tmp_path):
    stranger = tmp_path / "x.parquet"
    stranger.write_bytes(b"not a release")
    with pytest.raises(InvalidInputError, match="matches no file of any release"):
        lineage.lineage(str(stranger), ws)
    with pytest.raises(InvalidInputError, match="matches no file of any release"):
        lineage.lineage(str(tmp_path), ws)  # a folder: by the digest of its tables


def test_releases_lists_published_and_blocked_attempts(ws, monkeypatch, capsys):
    report = lineage.releases("hdma", ws)
    rows = report["releases"]
    assert [(r["version"], r["verdict"]) for r in rows] == [(2, "released"), (None, "blocked"), (1, "released")]
    assert rows[1]["failed_gates"] == ["quality"]
    assert all(r["source_sha256"] == sha256_file(HDMA) for r in rows)
    assert set(rows[0]["seen_in"]) == {"attempts log", "manifest", "mlflow"}
    assert set(rows[1]["seen_in"]) == {"attempts log", "mlflow"}
    assert report["problems"] == []
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    assert main(["releases", "hdma"]) == 0
    out = capsys.readouterr().out
    assert "2 released, 1 blocked, 3 attempts" in out and "quality" in out


def test_releases_without_mlflow_still_lists_from_the_log_and_manifests(ws_copy):
    (ws_copy / "mlflow.db").unlink()
    report = lineage.releases("hdma", ws_copy)
    assert [r["verdict"] for r in report["releases"]] == ["released", "blocked", "released"]
    assert any("no MLflow store" in p for p in report["problems"])


# -----------------------------------------------------------------------------------------------
# The DVC runner: `dvc repro` in a git copy of the repository
# -----------------------------------------------------------------------------------------------


def _run(repo: Path, *cmd: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), cwd=repo, env=venv_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _commit(repo: Path, message: str, *paths: str) -> str:
    _run(repo, "git", "add", *paths)
    _run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return _run(repo, "git", "rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="module")
def dvc_repo(dvc_released, tmp_path_factory) -> dict[str, Any]:
    """`dvc repro` v1 (400 rows: a copy of tests/conftest.py `dvc_released`), commit dvc.lock; change
    generate.rows (commit) and `dvc repro` v2, which re-runs generate..release only and rewrites the
    committed dvc.lock while it runs."""
    dest = copy_released(dvc_released, tmp_path_factory.mktemp("lineage-dvc") / "repo")
    params = yaml.safe_load((dest / "params.yaml").read_text())
    hdma = params["datasets"]["hdma"]
    commits = {"v1_code": _run(dest, "git", "rev-parse", "HEAD").stdout.strip()}
    _run(dest, "dvc", "push")
    commits["v1_lock"] = _commit(dest, "release hdma v1", "dvc.lock")
    hdma["generate"] = {"rows": 450}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commits["v2_code"] = _commit(dest, "hdma: 450 rows", "params.yaml")
    _run(dest, "dvc", "repro", "release@hdma")
    _run(dest, "dvc", "push")
    commits["v2_lock"] = _commit(dest, "release hdma v2", "dvc.lock")
    return {"root": dest, **commits}


def test_lineage_of_dvc_releases(dvc_repo, monkeypatch, capsys):
    root = dvc_repo["root"]
    r = lineage.lineage("data/release/hdma/hdma.parquet", root)
    assert r["ok"], r["problems"]
    assert (r["version"], r["rows"], r["runner"]["runner"]) == (2, 450, "dvc")
    # dvc rewrote the committed dvc.lock during the run: that is not uncommitted code
    assert (r["code"]["git_commit"], r["code"]["git_dirty"]) == (dvc_repo["v2_code"], False)
    assert r["source"]["path"] == "sources/hdma.csv" and r["source"]["sha256"] == sha256_file(HDMA)
    # ingest and fit were skipped by DVC (unchanged inputs): reused from v1's pipeline run, not an error
    reused = {s for s, run in r["mlflow"]["stage_runs"].items() if run.get("reused_from")}
    assert reused == {"ingest", "fit"} and r["model"]["registered_version"] == "1"
    dvc = r["dvc"]
    assert dvc["workspace_lock"]["records_version"] == 2
    assert [c["commit"] for c in dvc["git_commits"]] == [dvc_repo["v2_lock"]]
    assert dvc["restorable"] == {"cache": True, "local": True, "minio": "not checked"}
    old = lineage.lineage("hdma@1", root)
    assert old["ok"], old["problems"]
    assert (old["code"]["git_commit"], old["files"][0]["rows"]) == (dvc_repo["v1_code"], 400)
    assert [c["commit"] for c in old["dvc"]["git_commits"]] == [dvc_repo["v1_lock"]]
    assert old["dvc"]["workspace_lock"]["records_version"] == 2
    monkeypatch.setenv("SYNTHGATE_ROOT", str(root))
    assert main(["lineage", "hdma@latest"]) == 0
    out = capsys.readouterr().out
    assert "DVC: dvc.lock (release@hdma) records this release" in out and "recorded by git commit" in out
    assert "(reused from pipeline run" in out


def test_dvc_lock_and_gitignore_edits_are_not_dirty_code(tmp_path):
    from pipelines.gitinfo import code_version

    (tmp_path / "dvc.lock").write_text("a\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".gitignore").write_text("/x\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git_init(tmp_path)
    assert code_version(tmp_path)["git_dirty"] is False
    (tmp_path / "dvc.lock").write_text("b\n")
    (tmp_path / "data" / ".gitignore").write_text("/y\n")
    assert code_version(tmp_path) == {**code_version(tmp_path), "git_dirty": False, "git_dirty_paths": []}
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_version(tmp_path)["git_dirty_paths"] == ["code.py"]
    assert code_version(tmp_path / "nowhere")["git_dirty"] is None


def test_an_unreachable_tracking_server_is_reported_quickly(ws, monkeypatch):
    import time

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.perf_counter()
    r = lineage.lineage("hdma@2", ws)
    assert time.perf_counter() - started < 30
    assert any("tracking server http://127.0.0.1:9 is not reachable" in p for p in r["problems"])
    assert r["records"]["ingest"]["status"] == "ok" and not r["tampered"]  # the rest is still checked
    assert any("is not reachable" in p for p in lineage.releases("hdma", ws)["problems"])


def test_summary_checks_the_release_before_listing_verdicts(ws, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    assert main(["summary", "hdma"]) == 0
    out = capsys.readouterr().out
    assert "release v2 at data/release/hdma/hdma.parquet" in out
    assert "verified: release files, records and verdicts match" in out and "[PASS] quality" in out
    for path in ("data/release/hdma/hdma.parquet", "data/release/hdma"):  # the path it prints, or the folder
        assert main(["summary", path]) == 0 and capsys.readouterr().out == out
    assert main(["summary", "data/release/hdma/manifests/v0001.json"]) == 2
    assert "holds hdma v1, not its current release" in capsys.readouterr().err


def test_summary_after_a_blocked_run_checks_the_replaced_records_in_mlflow(ws_copy, monkeypatch, capsys):
    """A blocked run rewrites runs/<ds>/{generate,blend,validate}.json: the release is still verified,
    by the copies of its records in MLflow; with those gone too, it is reported as unverifiable."""
    with clean_env(), pytest.raises(GateFailed):
        run_stages(ws_copy, "hdma", stages=("generate", "blend", "validate", "release"), overrides=BLOCKING)
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws_copy))
    assert main(["summary", "hdma"]) == 0
    out = capsys.readouterr().out
    assert "release v2" in out and "checked against their MLflow copies" in out and "[PASS] quality" in out
    shutil.rmtree(ws_copy / "mlartifacts")
    assert main(["summary", "hdma"]) == 2
    err = capsys.readouterr().err
    assert "NOT VERIFIED" in err and "runs/hdma/validate.json belongs to a later run" in err


def test_summary_of_a_tampered_release_lists_no_verdicts(ws_copy, monkeypatch, capsys):
    p = paths_for("hdma", ws_copy)
    with open(p.release_file, "ab") as f:
        f.write(b"\0")
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws_copy))
    assert main(["summary", "hdma"]) == 4
    captured = capsys.readouterr()
    assert "TAMPERED: the release does not match its records" in captured.err
    assert "data/release/hdma/hdma.parquet" in captured.err and "[PASS]" not in captured.out + captured.err


def test_datasets_lists_release_and_last_attempt(ws, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    assert main(["datasets", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["dataset"] == "hdma" and row["release"] == "v2" and row["last_attempt"] == "released"
    assert row["path"] == "data/release/hdma/hdma.parquet"
    assert main(["datasets"]) == 0
    assert "hdma" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["summary", "releases"])
def test_unknown_dataset_exits_2_listing_the_known_ones(ws, monkeypatch, capsys, command):
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    assert main([command, "hmda"]) == 2
    assert "datasets.hmda: no such dataset (configured: hdma)" in capsys.readouterr().err


def test_sample_on_demand_from_the_current_and_an_old_release(ws, tmp_path, monkeypatch, capsys):
    """`synthgate sample`: the current model from the workspace, v1's from MLflow (the workspace
    holds v2's model now); the same seed gives the same bytes; recorded, never a release."""
    import pandas as pd

    from pipelines.contracts import PROVENANCE

    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    p = paths_for("hdma", ws)
    release_before = sha256_file(p.release_file)
    assert main(["sample", "hdma", "--rows", "120", "--seed", "7", "-o", str(tmp_path / "a.parquet")]) == 0
    assert "120 rows sampled from the model of release v2" in capsys.readouterr().out
    assert main(["sample", "hdma", "--rows", "120", "--seed", "7", "-o", str(tmp_path / "b.parquet")]) == 0
    assert main(["sample", "hdma@1", "--rows", "120", "--seed", "7", "-o", str(tmp_path / "old.csv")]) == 0
    a, b = (tmp_path / "a.parquet").read_bytes(), (tmp_path / "b.parquet").read_bytes()
    assert a == b
    current, old = pd.read_parquet(tmp_path / "a.parquet"), pd.read_csv(tmp_path / "old.csv")
    released = pd.read_parquet(p.release_file)
    assert len(current) == len(old) == 120
    assert list(current.columns) == [c for c in released.columns if c != PROVENANCE]  # not blended
    assert not current.equals(old)  # another model
    log = [json.loads(line) for line in p.samples_log.read_text().splitlines()]
    assert [e["release_version"] for e in log] == [2, 2, 1]
    assert log[0]["sha256"] == sha256_file(tmp_path / "a.parquet") and log[0]["mlflow_run_id"]
    assert sha256_file(p.release_file) == release_before


@pytest.mark.parametrize(
    "args, says",
    [
        (["hdma@9"], "no release v9 (released: [1, 2])"),
        (["hdma", "--conditions", '{"nope": 1}'], "'nope' is not a learned column"),
        (["hdma", "--rows", "0"], "--rows: 0 is not in 1.."),
    ],
)
def test_sample_refuses_bad_requests(ws, tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    argv = ["sample", *args, "-o", str(tmp_path / "s.parquet")]
    if "--rows" not in args:
        argv += ["--rows", "10"]
    assert main(argv) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "s.parquet").exists()


def test_sample_never_writes_into_the_release_folder(ws, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHGATE_ROOT", str(ws))
    target = paths_for("hdma", ws).release_dir / "extra.parquet"
    assert main(["sample", "hdma", "--rows", "10", "-o", str(target)]) == 2
    assert "a sample is never a release" in capsys.readouterr().err and not target.exists()
