"""DagBag integrity of dags/: every dataset of params.yaml has a sound, light, well-formed DAG."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from pipelines import STAGES, engines
from pipelines.airflow_tasks import FORCE, KNOBS
from pipelines.config import load_params
from pipelines.config.load import SECTIONS
from tests.conftest import REPO
from tests.dags.conftest import AIRFLOW_ENV, DAGS, load_dagbag

DATASETS = sorted(load_params(REPO / "params.yaml").datasets)
DAG_IDS = [f"synth_{name}" for name in DATASETS]

UPSTREAM = {
    "start": set(),
    "source_changed": {"start"},
    "ingest": {"start", "source_changed"},
    "fit": {"ingest"},
    "generate.plan_shards": {"fit"},
    "generate.sample_shard": {"fit", "generate.plan_shards"},
    "generate.combine_shards": {"fit", "generate.sample_shard"},
    "blend": {"generate.combine_shards"},
    "validate": {"blend"},
    "release": {"validate"},
    "record_dvc": {"release"},
    "finish": {"start", "record_dvc"},
}
"""The exact task graph of every synth_<dataset> DAG (task -> its upstream tasks); the generate
stage is a task group (`generate.<task>`)."""

HEAVY = ("pandas", "sdv", "torch", "mlflow", "great_expectations", "sklearn", "dvc", "pyarrow")


@pytest.fixture(scope="module")
def dagbag():
    return load_dagbag()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == sorted(DAG_IDS)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_settings(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    cfg = load_params(REPO / "params.yaml").dataset(dag_id.removeprefix("synth_"))
    assert dag.tags and {"synthgate", *cfg.tags} == set(dag.tags)
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.schedule == cfg.schedule
    assert cfg.description in dag.doc_md and "## Trigger-form fields" in dag.doc_md
    for task in dag.tasks:
        assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_exact_task_graph(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == UPSTREAM
    assert dag.get_task("start").is_setup and dag.get_task("finish").is_teardown
    assert dag.get_task("generate.sample_shard").is_mapped
    assert dag.get_task("source_changed").task_type.lower().startswith("_shortcircuit")


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_stages_are_named_as_in_dvc(dagbag, dag_id):
    """Each DVC stage is one top-level task or task group of the same name (as in MLflow)."""
    dag = dagbag.dags[dag_id]
    top_level = {node.node_id for node in dag.task_group.children.values()}
    assert set(STAGES) <= top_level
    assert set(dag.task_group_dict) == {"generate"}


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_trigger_form_lists_every_knob(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    cfg = load_params(REPO / "params.yaml").dataset(dag_id.removeprefix("synth_"))
    params = dag.params
    assert set(params) == {k.name for k in KNOBS} | {FORCE} | set(SECTIONS)
    keep = [*(k.name for k in KNOBS), *SECTIONS]
    assert all(params[name] is None for name in keep), "a form field must default to 'keep params.yaml'"
    synth = params.get_param("synthesizer").schema
    assert set(synth["enum"]) == {*engines.REGISTRY, "auto", None}
    assert {"gaussian_copula", "ctgan"} < set(synth["enum"])
    assert str(cfg.generate.rows) in params.get_param("rows").description
    assert params.get_param("quality_min").schema["maximum"] == 1


def test_parse_time_of_dags_folder(dagbag):
    (stat,) = [s for s in dagbag.dagbag_stats if s.file.endswith("synth_datasets.py")]
    seconds = stat.duration.total_seconds()
    print(f"parse time of {stat.file}: {seconds:.3f} s for {stat.dag_num} DAGs / {stat.task_num} tasks")
    assert seconds < 2.0


def test_dag_file_imports_nothing_heavy():
    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1]);"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "synth_datasets.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, **AIRFLOW_ENV},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_invalid_params_yaml_is_an_import_error_naming_the_key(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["hdma"]["generate"] = {"rows": -5}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bag = load_dagbag(tmp_path)
    (error,) = bag.import_errors.values()
    assert "datasets.hdma.generate.rows" in error
    assert not bag.dags
