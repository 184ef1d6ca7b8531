"""End to end with the embedded default: `dvc repro` in a temp copy of the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.io import sha256_file
from tests.conftest import FLOORS_OFF, SMALL_HDMA_ROWS, copy_released, run_stages, venv_env

pytestmark = pytest.mark.slow

ROWS = SMALL_HDMA_ROWS


def _dvc(repo: Path, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["dvc", *args], cwd=repo, env=venv_env(**env), capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.fixture(scope="module")
def repo(dvc_released, tmp_path_factory) -> Path:
    """A copy of the released small-HDMA repo (tests/conftest.py `dvc_released`: one `dvc repro`)."""
    return copy_released(dvc_released, tmp_path_factory.mktemp("e2e") / "repo")


def test_release_and_manifest(repo):
    manifest = json.loads((repo / "data/release/hdma/manifest.json").read_text())
    assert manifest["files"][0]["rows"] == ROWS
    assert manifest["runner"]["runner"] == "dvc"
    assert manifest["files"][0]["sha256"] == sha256_file(repo / "data/release/hdma/hdma.parquet")
    shown = json.loads(_dvc(repo, "metrics", "show", "--json").stdout)
    (metrics,) = shown[""]["data"].values()
    flat = metrics["data"]
    assert flat["passed"] is True and flat["gates"]["quality"]["passed"] is True
    assert set(flat["gates"]) == {g["name"] for g in manifest["gates"]}
    assert 0 < flat["gates"]["quality"]["value"] <= 1 and flat["scores"]["quality"]["column_shapes"] > 0
    table = _dvc(repo, "metrics", "show").stdout
    assert "gates.quality.value" in table and "gates.exact_copies.passed" in table
    plots = json.loads(_dvc(repo, "plots", "show", "--json", "--split").stdout)["data"]
    assert {"reports/hdma/plots/column_scores.csv", "reports/hdma/plots/dcr_synthetic.csv"} <= set(plots)
    columns = (repo / "reports/hdma/plots/column_scores.csv").read_text().splitlines()
    assert columns[0] == "column,metric,score" and len(columns) > 5
    from pipelines.tracking import get_run

    parent = manifest["mlflow"]["run_id"]  # the six stage processes of one `dvc repro` share one parent
    assert get_run(parent, repo).data.tags["synthgate.pipeline_key"].startswith("dvc:")
    for stage, run_id in manifest["mlflow"]["stage_runs"].items():
        assert get_run(run_id, repo).data.tags["mlflow.parentRunId"] == parent, stage


def test_second_repro_is_a_noop(repo):
    again = _dvc(repo, "repro")
    assert _ran(again.stdout) == []
    status = _dvc(repo, "status")
    assert "Data and pipelines are up to date" in status.stdout


def test_push_to_default_remote(repo):
    _dvc(repo, "push")
    assert any((repo / ".dvc-storage").rglob("*"))


def test_same_seed_same_bytes_across_runners(repo, make_workspace):
    """Determinism: an in-process run with the same params gives the release DVC made."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    block = params["datasets"]["hdma"]
    block["source"]["path"] = str(repo / block["source"]["path"])
    ws = make_workspace(hdma=block)
    run_stages(ws, "hdma")
    assert sha256_file(ws / "data/release/hdma/hdma.parquet") == sha256_file(repo / "data/release/hdma/hdma.parquet")


def test_exp_run_reruns_only_downstream_and_publishes_only_when_asked(repo):
    """`dvc exp run` writes a candidate (DVC sets DVC_EXP_NAME for its stages); the release stays
    until an experiment is run with SYNTHGATE_EXP_PUBLISH=1."""
    release = repo / "data/release/hdma"
    before = {p.name: sha256_file(p) for p in release.rglob("*") if p.is_file()}
    out = _dvc(repo, "exp", "run", "-n", "more-rows", "-S", f"datasets.hdma.generate.rows={ROWS + 100}")
    assert _ran(out.stdout) == [f"{s}@hdma" for s in ("generate", "blend", "validate", "release")]
    assert "DVC experiment 'more-rows' candidate at data/experiments/more-rows/hdma/hdma.parquet" in out.stdout
    candidate = json.loads((repo / "data/experiments/more-rows/hdma/manifest.json").read_text())
    assert candidate["files"][0]["rows"] == ROWS + 100 and len(candidate["experiment"]["baseline_rev"]) == 40
    assert {p.name: sha256_file(p) for p in release.rglob("*") if p.is_file()} == before
    published = _dvc(
        repo, "exp", "run", "-n", "ship-it", "-S", f"datasets.hdma.generate.rows={ROWS + 50}", SYNTHGATE_EXP_PUBLISH="1"
    )
    assert "release v2 at data/release/hdma/hdma.parquet" in published.stdout
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["files"][0]["rows"] == ROWS + 50 and manifest["runner"]["dvc_experiment"] == "ship-it"


def test_a_params_mistake_deletes_no_output(repo):
    """A typo in params.yaml: the stage refuses to run and DVC has deleted nothing (`persist`)."""
    _dvc(repo, "repro")  # up to date first (a no-op unless an earlier test left a change)
    outputs = [
        "data/prepared/hdma/train.parquet",
        "models/hdma/synthesizer.pkl",
        "runs/hdma/fit.json",
        "reports/hdma/validation.json",
    ]
    before = {o: sha256_file(repo / o) for o in outputs}
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["datasets"]["hdma"]["fit"] = {"synthesiser": "ctgan"}  # misspelt key
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _dvc(repo, "repro", ok=False)
        assert proc.returncode != 0 and "datasets.hdma.fit.synthesiser" in proc.stdout + proc.stderr
        assert {o: sha256_file(repo / o) for o in outputs} == before
    finally:
        params_file.write_text(original)
    assert _ran(_dvc(repo, "repro").stdout) == []  # the old outputs are still the recorded ones


def test_impossible_gate_fails_naming_it_and_keeps_release(repo):
    release = repo / "data/release/hdma"
    before = {p.name: sha256_file(p) for p in release.glob("*") if p.is_file()}
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["datasets"]["hdma"]["gates"]["dcr_baseline_protection_min"] = 100.0
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _dvc(repo, "repro", ok=False)
        assert proc.returncode != 0
        assert re.search(r"dcr_baseline_protection: \d+\.?\d* \(must be >= 100\)", proc.stdout + proc.stderr)
        assert _ran(proc.stdout) == ["validate@hdma", "release@hdma"]
        assert {p.name: sha256_file(p) for p in release.glob("*") if p.is_file()} == before
        # the message says what DVC now shows, and `dvc status` shows just that: validate is recorded,
        # release is out of date (its changed deps), nothing else
        said = " ".join((proc.stdout + proc.stderr).split())
        assert "release@hdma stays out of date (`dvc status` lists its changed deps)" in said
        assert "run `dvc repro` again" in said and "was left untouched" in said
        status = _dvc(repo, "status").stdout
        assert "release@hdma:" in status and "changed deps" in status
        assert not any(f"{s}@hdma:" in status for s in ("ingest", "fit", "generate", "blend", "validate")), status
    finally:
        params_file.write_text(original)


def test_adding_a_csv_dataset_takes_a_block_and_init(repo):
    """A new dataset: one params.yaml block, `synthgate expectations init`, then `dvc repro`."""
    from tests.conftest import WEATHER

    (repo / "sources" / "weather.csv").write_bytes(WEATHER.read_bytes())
    params_file = repo / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["datasets"]["weather"] = {
        "source": {"path": "sources/weather.csv", "format": "csv"},
        "target": None,
        "seed": 1,
        "ingest": {},
        "fit": {},
        "generate": {"rows": 300},
        "blend": {},
        "gates": {"sample_rows": 300, **FLOORS_OFF},
    }
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    init = subprocess.run(
        ["synthgate", "expectations", "init", "weather"], cwd=repo, env=venv_env(), capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    assert "wrote   expectations/weather.raw.json" in init.stdout
    hdma_release = sha256_file(repo / "data/release/hdma/manifest.json")
    out = _dvc(repo, "repro", "release@weather")
    assert _ran(out.stdout) == [f"{s}@weather" for s in ("ingest", "fit", "generate", "blend", "validate", "release")]
    manifest = json.loads((repo / "data/release/weather/manifest.json").read_text())
    assert manifest["files"][0]["rows"] == 300
    assert sha256_file(repo / "data/release/hdma/manifest.json") == hdma_release  # hdma untouched
