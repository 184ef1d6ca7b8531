"""The task bodies' pure parts: override resolution, the trigger form, refresh decisions."""

from __future__ import annotations

import json

import pytest

from pipelines import airflow_tasks as at
from pipelines.airflow_tasks.runtime import airflow_errors, runner_env
from pipelines.config import GatesConfig
from pipelines.errors import ConfigError, InvalidInputError, SynthgateError
from pipelines.io import sha256_file
from tests.conftest import HDMA, load, small_block


@pytest.fixture
def ws(make_workspace, tmp_path):
    source = tmp_path / "hdma.csv"
    source.write_bytes(HDMA.read_bytes())
    return make_workspace(init=False, hdma=small_block(source, "deny"))


def _params(ws):
    from pipelines.config import load_params

    return load_params(ws / "params.yaml")


def test_nested_conf_like_params_yaml(ws):
    cfg, overrides, force = at.resolve_config(_params(ws), "hdma", {"generate": {"rows": 20000}}, {})
    assert cfg.generate.rows == 20000 and overrides == {"generate": {"rows": 20000}} and not force
    assert cfg.generate.shard_rows == load(ws, "hdma").generate.shard_rows  # the rest is params.yaml's


def test_form_fields_map_to_their_sections(ws):
    form = {"rows": 300, "quality_min": 0.5, "synthesizer": "ctgan", "seed": 9, "force": True, "dcr_low_tail_max": None}
    cfg, overrides, force = at.resolve_config(_params(ws), "hdma", {}, form)
    assert (cfg.generate.rows, cfg.gates.quality_min, cfg.fit.synthesizer, cfg.seed) == (300, 0.5, "ctgan", 9)
    assert overrides == {
        "generate": {"rows": 300},
        "gates": {"quality_min": 0.5},
        "fit": {"synthesizer": "ctgan"},
        "seed": 9,
    }
    assert force is True


def test_empty_conf_is_params_yaml(ws):
    cfg, overrides, force = at.resolve_config(_params(ws), "hdma", None, {k.name: None for k in at.KNOBS})
    assert cfg == load(ws, "hdma") and overrides == {} and force is False


@pytest.mark.parametrize(
    ("conf", "form", "names"),
    [
        ({"generate": {"rowz": 5}}, {}, ["generate.rowz: unknown key"]),
        ({"generate": {"rows": 0}}, {}, ["generate.rows"]),
        ({"blend": {"strategy": "augment"}}, {}, ["blend", "real_ratio > 0"]),
        ({"colour": "red", "gates": {"quality_min": 2}}, {}, ["colour: unknown key", "gates.quality_min"]),
        ({"generate": {"rows": 10}}, {"rows": 20}, ["generate.rows: set twice"]),
        ({"force": "yes"}, {}, ["force: must be true or false"]),
        ({"source": {"path": "other.csv"}}, {}, ["source: unknown key"]),
    ],
)
def test_bad_overrides_name_the_key_path(ws, conf, form, names):
    with pytest.raises(ConfigError) as err:
        at.resolve_config(_params(ws), "hdma", conf, form)
    for name in names:
        assert name in str(err.value)


def test_form_schema_accepts_current_values_and_rejects_bad_ones(ws):
    from airflow.sdk import Param
    from airflow.sdk.exceptions import ParamValidationError

    cfg = load(ws, "hdma")
    fields = at.form_params(cfg)
    current = cfg.to_params()
    for knob in at.KNOBS:
        param = Param(**fields[knob.name])
        assert param.resolve(value=None) is None
        value = current
        for key in knob.path:
            value = value[key]
        if value is not None:
            assert param.resolve(value=value) == value
    for name, bad in (("rows", 0), ("synthesizer", "gan"), ("quality_min", 1.5), ("seed", -1)):
        with pytest.raises(ParamValidationError):
            Param(**fields[name]).resolve(value=bad)


def test_every_gates_field_is_a_described_form_field(ws):
    fields = at.form_params(load(ws, "hdma"))
    gates = {k.path[1]: k for k in at.KNOBS if k.path[0] == "gates"}
    assert set(gates) == set(GatesConfig.model_fields)
    for name, field in GatesConfig.model_fields.items():
        assert field.description, f"GatesConfig.{name} needs a description (it is the form's help)"
        form = fields[gates[name].name]
        assert form["section"] == "Gates" and form["description"].startswith(field.description)
    assert {"quality_min", "gate_sample_rows"} <= set(fields)


def test_a_field_added_to_the_gates_model_becomes_a_form_field():
    from pydantic import Field, create_model

    more = create_model(
        "MoreGates", __base__=GatesConfig, drift_max=(float, Field(default=0.1, description="highest drift"))
    )
    knobs = {k.name: k for k in at.gate_knobs(more)}
    assert knobs["drift_max"] == at.Knob("drift_max", ("gates", "drift_max"), "Gates", "highest drift")
    assert set(knobs) == {k.name for k in at.gate_knobs()} | {"drift_max"}


def _release_manifest(ws, cfg, source_sha):
    manifest = ws / "data" / "release" / "hdma" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"version": 3, "source": {"sha256": source_sha}, "params": cfg.to_params()}))


def test_refresh_reasons(ws):
    from pipelines.paths import paths_for

    cfg, paths = load(ws, "hdma"), paths_for("hdma", ws)
    assert at.refresh_reason(cfg, paths) == "no release yet"
    source = ws.parent / "hdma.csv"
    _release_manifest(ws, cfg, sha256_file(source))
    assert at.refresh_reason(cfg, paths) is None
    assert at.refresh_reason(cfg, paths, force=True) == "forced (force=true)"
    more = load(ws, "hdma", {"generate": {"rows": 401}, "gates": {"quality_min": 0.5}})
    assert at.refresh_reason(more, paths) == "params changed since release v3: gates.quality_min, generate.rows"
    with open(source, "a") as f:
        f.write(source.read_text().splitlines()[-1] + "\n")
    assert "changed: sha256" in at.refresh_reason(cfg, paths)
    source.unlink()
    with pytest.raises(InvalidInputError, match="source file not found"):
        at.refresh_reason(cfg, paths)


def test_unfixable_errors_fail_without_retry_others_retry():
    from airflow.sdk.exceptions import AirflowFailException

    @airflow_errors
    def bad_config() -> None:
        raise ConfigError(["generate.rows: must be >= 1"])

    @airflow_errors
    def busy() -> None:
        raise SynthgateError("another run is releasing 'hdma' right now")

    with pytest.raises(AirflowFailException, match="generate.rows"):
        bad_config()
    with pytest.raises(SynthgateError, match="another run"):
        busy()


def test_start_refuses_a_condition_the_source_never_has_before_opening_a_run(ws):
    """The DAG's first task reads the source's named columns: nothing runs, no MLflow run opens."""
    from airflow.sdk.exceptions import AirflowFailException

    conf = {"generate": {"conditions": {"black": "maybe"}}, "blend": {"strategy": "rebalance", "shares": {"n": 0.5}}}
    with pytest.raises(AirflowFailException) as err:
        at.start("hdma", ws, conf, {}, "synth_hdma", "manual__1")
    assert "generate.conditions.black: 'maybe' never occurs in" in str(err.value)
    assert "blend.shares.n: class 'n' never occurs in column 'deny' (classes: ['no', 'yes'])" in str(err.value)
    assert not (ws / "mlflow.db").exists() and not (ws / "runs").exists()


def test_record_in_dvc_needs_a_dvc_project(tmp_path):
    with pytest.raises(InvalidInputError, match="not a DVC project"):
        at.record_in_dvc(tmp_path, "hdma")


def test_runner_env_is_restored(monkeypatch):
    import os

    monkeypatch.setenv("SYNTHGATE_RUNNER", "dvc")
    ctx = {"root": "/x", "dag_id": "synth_hdma", "run_id": "manual__1", "parent_run_id": "abc"}
    with runner_env(ctx):
        assert os.environ["SYNTHGATE_RUNNER"] == "airflow"
        assert os.environ["SYNTHGATE_PARENT_RUN_ID"] == "abc"
        assert os.environ["AIRFLOW_CTX_DAG_RUN_ID"] == "manual__1"
    assert os.environ["SYNTHGATE_RUNNER"] == "dvc"
    assert "SYNTHGATE_PARENT_RUN_ID" not in os.environ
