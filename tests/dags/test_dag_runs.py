"""Whole `synth_hdma` runs with `dag.test()` on a small slice (400 rows, 4 shards) of a repo copy.

One copy serves the module, in order: a first run releases v1; the fan-out is compared with the
single-process generate stage; an unchanged source short-circuits; a changed source releases v2;
a failing gate leaves v2 byte-identical; a gates-only override reuses ingest and fit; an invalid
override is refused when the run is created, one that breaks a rule across fields fails the first task.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines import STAGES
from pipelines.io import read_json, sha256_file
from pipelines.paths import paths_for
from tests.conftest import SMALL_HDMA_ROWS, load
from tests.dags.conftest import run_dag, small_repo

pytestmark = pytest.mark.slow

ROWS, SHARD_ROWS = SMALL_HDMA_ROWS, 100
SHARDS = [f"generate.sample_shard[{i}]" for i in range(ROWS // SHARD_ROWS)]
GENERATE = ["generate.plan_shards", *SHARDS, "generate.combine_shards"]
WORK = ["ingest", "fit", *GENERATE, "blend", "validate", "release", "record_dvc"]


def _mlflow(repo: Path) -> Any:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    return mlflow.MlflowClient()


def _pipeline_runs(repo: Path) -> list[Any]:
    client = _mlflow(repo)
    exp = client.get_experiment_by_name("synthgate-hdma")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`synthgate.role` = 'pipeline'")


def _release_bytes(repo: Path) -> dict[str, str]:
    folder = repo / "data" / "release" / "hdma"
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _dvc(repo: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory, airflow_db) -> Path:
    return small_repo(tmp_path_factory.mktemp("dagrun") / "repo", SHARD_ROWS)


@pytest.fixture(scope="module")
def first(repo) -> dict[str, Any]:
    run, states = run_dag(repo)
    return {"run": run, "states": states, "manifest": read_json(repo / "data/release/hdma/manifest.json")}


def test_run_produces_a_release(repo, first):
    run, states, manifest = first["run"], first["states"], first["manifest"]
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), states
    assert states == {t: "success" for t in ["start", "source_changed", *WORK, "finish"]}
    assert manifest["version"] == 1 and manifest["files"][0]["rows"] == ROWS
    assert manifest["runner"] == {"runner": "airflow", "airflow_dag_id": "synth_hdma", "airflow_run_id": run.run_id}
    assert manifest["params"]["generate"] == {**manifest["params"]["generate"], "rows": ROWS, "shard_rows": SHARD_ROWS}


def test_mlflow_run_tagged_and_closed(repo, first):
    client = _mlflow(repo)
    parent = client.get_run(first["manifest"]["mlflow"]["run_id"])
    tags = parent.data.tags
    assert parent.info.status == "FINISHED"
    assert tags["synthgate.airflow_dag_id"] == "synth_hdma"
    assert tags["synthgate.airflow_run_id"] == first["run"].run_id
    assert tags["synthgate.runner"] == "airflow" and tags["synthgate.verdict"] == "released"
    assert tags["synthgate.dvc"] == "committed+pushed"
    for stage, run_id in first["manifest"]["mlflow"]["stage_runs"].items():
        child = client.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id, stage
        assert child.data.tags["synthgate.airflow_run_id"] == first["run"].run_id


def test_dvc_agrees_with_the_airflow_run(repo, first):
    targets = [f"{s}@hdma" for s in STAGES]
    assert "up to date" in _dvc(repo, "status", *targets)
    assert "in sync" in _dvc(repo, "status", "--cloud", *targets)
    lock = _dvc(repo, "status", "--json", *targets)
    assert json.loads(lock) == {}


def _first_run_context(repo: Path, first: dict[str, Any]) -> dict[str, Any]:
    """The run context the first run's tasks received (to call a task body again by hand)."""
    manifest = first["manifest"]
    return {
        "dataset": "hdma",
        "root": str(repo),
        "config": manifest["params"],
        "overrides": {},
        "force": False,
        "dag_id": "synth_hdma",
        "run_id": first["run"].run_id,
        "parent_run_id": manifest["mlflow"]["run_id"],
    }


def test_retried_release_task_publishes_nothing_new(repo, first):
    """A retry of `release` after this run already published it is a no-op (idempotent task)."""
    from pipelines import airflow_tasks as at

    before = _release_bytes(repo)
    ctx = _first_run_context(repo, first)
    assert at.release(ctx) == ctx
    assert _release_bytes(repo) == before
    other = {**ctx, "run_id": "manual__another"}
    assert at.released_by(other, paths_for("hdma", repo)) is None


def test_combine_refuses_a_missing_or_changed_shard(repo, first):
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines import airflow_tasks as at

    ctx = _first_run_context(repo, first)
    shards = read_json(repo / "runs/hdma/generate.json")["shards"]
    with pytest.raises(AirflowFailException, match="do not match the plan of 4 shard"):
        at.combine_shards(ctx, shards[:-1])
    changed = [*shards[:-1], {**shards[-1], "sha256": "0" * 64}]
    with pytest.raises(AirflowFailException, match="part-00003.parquet: missing or changed"):
        at.combine_shards(ctx, changed)


def test_fan_out_is_byte_identical_to_the_single_process_stage(repo, first, tmp_path):
    """The mapped shards equal `pipelines.generate.run` (its own process pool) for the same seed and plan."""
    from pipelines import generate

    mapped = read_json(repo / "runs/hdma/generate.json")["shards"]
    assert len(mapped) == len(SHARDS)
    single = tmp_path / "single"
    shutil.copytree(repo, single, ignore=shutil.ignore_patterns("synthetic", ".git", ".dvc-storage"))
    cfg = load(single, "hdma")
    record = generate.run(cfg, paths_for("hdma", single))
    strip = lambda shards: [{k: s[k] for k in ("index", "rows", "seed", "path", "sha256")} for s in shards]
    assert strip(record["shards"]) == strip(mapped)
    for shard in mapped:
        assert (single / shard["path"]).read_bytes() == (repo / shard["path"]).read_bytes()


def test_unchanged_source_short_circuits(repo, first):
    before = _release_bytes(repo)
    runs_before = len(_pipeline_runs(repo))
    run, states = run_dag(repo)
    assert states == {
        "start": "success",
        "source_changed": "success",
        "finish": "success",
        "generate.sample_shard": "skipped",
        **{t: "skipped" for t in WORK if "[" not in t},
    }
    assert "success" in str(run.state).lower()
    assert _release_bytes(repo) == before
    runs = _pipeline_runs(repo)
    assert len(runs) == runs_before + 1
    latest = max(runs, key=lambda r: r.info.start_time)
    assert latest.data.tags["synthgate.verdict"] == "unchanged" and latest.info.status == "FINISHED"


def test_changed_source_makes_a_new_release(repo, first):
    source = repo / "sources" / "hdma.csv"
    lines = source.read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:-25]))
    run, states = run_dag(repo)
    assert all(state == "success" for state in states.values()), states
    manifest = read_json(repo / "data/release/hdma/manifest.json")
    assert manifest["version"] == 2
    assert manifest["source"]["sha256"] == sha256_file(source) != first["manifest"]["source"]["sha256"]
    assert manifest["runner"]["airflow_run_id"] == run.run_id


def test_failing_gate_keeps_the_old_release(repo, first, capfd):
    before = _release_bytes(repo)
    run, states = run_dag(repo, conf={"gates": {"quality_min": 0.99}})
    assert "failed" in str(run.state).lower()
    assert states["validate"] == "success" and states["release"] == "failed"
    assert states["record_dvc"] == "upstream_failed" and states["finish"] == "success"
    assert _release_bytes(repo) == before
    log = capfd.readouterr()
    text = log.out + log.err
    assert "release of 'hdma' blocked: 1 gate(s) failed" in text
    assert "quality" in text and "(must be >= 0.99)" in text
    latest = max(_pipeline_runs(repo), key=lambda r: r.info.start_time)
    assert latest.data.tags["synthgate.verdict"] == "blocked" and latest.info.status == "FAILED"


def test_gates_only_override_reuses_ingest_and_fit(repo, first):
    """Only gates change: ingest and fit are reused as `dvc repro` would skip them; the release
    made from the reused model has records that lineage verifies end to end."""
    from pipelines.lineage import lineage

    records = {s: (repo / f"runs/hdma/{s}.json").read_bytes() for s in ("ingest", "fit")}
    _, states = run_dag(repo, conf={"gates": {"quality_min": 0.5}})
    assert all(state == "success" for state in states.values()), states
    assert {s: (repo / f"runs/hdma/{s}.json").read_bytes() for s in records} == records
    latest = max(_pipeline_runs(repo), key=lambda r: r.info.start_time)
    fit_run = json.loads(records["fit"])["mlflow"]["run_id"]
    assert latest.data.tags["synthgate.reused.fit"] == fit_run and "synthgate.reused.ingest" in latest.data.tags
    manifest = read_json(repo / "data/release/hdma/manifest.json")
    assert manifest["params"]["gates"]["quality_min"] == 0.5
    check = lineage(f"hdma@{manifest['version']}", repo, use_dvc=False)
    assert check["ok"], check


def test_invalid_override_is_refused_when_the_run_is_created(repo, first):
    """A conf that breaks a section's schema never becomes a run (CLI, REST API and form alike)."""
    from airflow.sdk.exceptions import ParamValidationError

    before, runs_before = _release_bytes(repo), len(_pipeline_runs(repo))
    for conf, says in (({"generate": {"rowz": 5}}, "'rowz' was unexpected"), ({"generate": {"rows": -5}}, "-5")):
        with pytest.raises(ParamValidationError, match=says):
            run_dag(repo, conf=conf)
    assert _release_bytes(repo) == before and len(_pipeline_runs(repo)) == runs_before


def test_override_breaking_a_rule_across_fields_fails_the_first_task(repo, first, capfd):
    """What a schema cannot see (here: the target declared PII) fails `start`, before any work."""
    before, runs_before = _release_bytes(repo), len(_pipeline_runs(repo))
    run, states = run_dag(repo, conf={"fit": {"pii": {"columns": {"deny": "name"}}}})
    assert "failed" in str(run.state).lower()
    assert states.pop("start") == "failed"
    assert set(states.values()) == {"upstream_failed"}
    text = "".join(capfd.readouterr())
    assert "fit.pii.columns: 'deny' is the target" in text
    assert _release_bytes(repo) == before and len(_pipeline_runs(repo)) == runs_before
