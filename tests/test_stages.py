"""fit, generate and blend on real data: happy paths, bad input, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines import blend as blend_stage
from pipelines import generate
from pipelines.config import BlendConfig
from pipelines.contracts import PROVENANCE
from pipelines.errors import ConfigError, IntegrityError, InvalidInputError
from pipelines.io import sha256_file
from pipelines.paths import paths_for
from tests.conftest import HDMA, clean_env, defaults, load, run_stages, small_block


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """A workspace where ingest and fit have run on the real HDMA table."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    ws = tmp_path_factory.mktemp("fitted")
    block = small_block(HDMA, "deny", generate={"rows": 450, "shard_rows": 200})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    with clean_env():
        run_stages(ws, "hdma", ("ingest", "fit"))
    return ws


def test_fit_records_model_digest_and_mlflow_model(fitted):
    p = paths_for("hdma", fitted)
    record = json.loads(p.record("fit").read_text())
    assert record["model"]["sha256"] == sha256_file(p.model)
    assert record["model"]["registered_model"] == "synth-hdma"
    assert record["train"]["rows"] == json.loads(p.record("ingest").read_text())["train"]["rows"]
    from pipelines.tracking import get_run

    run = get_run(record["mlflow"]["run_id"], fitted)
    assert run.data.params["synthesizer"] == "gaussian_copula"
    assert run.data.tags["mlflow.parentRunId"] == record["mlflow"]["parent_run_id"]


def test_generate_shards_are_deterministic(fitted):
    cfg = load(fitted, "hdma")
    p = paths_for("hdma", fitted)
    first = generate.run(cfg, p)
    assert [s["rows"] for s in first["shards"]] == [200, 200, 50]
    second = generate.run(cfg, p)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    # shards use distinct streams: no two shards are the same rows
    frames = [pd.read_parquet(fitted / s["path"]) for s in first["shards"]]
    assert not frames[0].head(50).equals(frames[1].head(50))
    # a different seed gives different rows
    other = generate.run(load(fitted, "hdma", {"seed": 99}), p)
    assert other["shards"][0]["sha256"] != first["shards"][0]["sha256"]
    generate.run(cfg, p)  # leave the workspace as the default config made it


def test_shards_do_not_depend_on_order(fitted):
    cfg = load(fitted, "hdma")
    p = paths_for("hdma", fitted)
    shards = generate.shards_for(cfg, p)
    forward = [generate.run_shard(cfg, p, s)["sha256"] for s in shards]
    backward = [generate.run_shard(cfg, p, s)["sha256"] for s in reversed(shards)]
    assert forward == list(reversed(backward))


def test_stale_shards_are_removed(fitted):
    p = paths_for("hdma", fitted)
    cfg_small = load(fitted, "hdma", {"generate": {"rows": 150}})
    record = generate.run(cfg_small, p)
    assert sorted(x.name for x in p.synthetic_dir.glob("part-*.parquet")) == ["part-00000.parquet"]
    assert record["rows"] == 150
    generate.run(load(fitted, "hdma"), p)


def test_tampered_model_is_never_unpickled(fitted, tmp_path):
    p = paths_for("hdma", fitted)
    backup = tmp_path / "model.bak"
    backup.write_bytes(p.model.read_bytes())
    try:
        p.model.write_bytes(backup.read_bytes() + b"tampered")
        with pytest.raises(IntegrityError, match="does not match the fit record.*refusing to unpickle"):
            generate.run(load(fitted, "hdma"), p)
    finally:
        p.model.write_bytes(backup.read_bytes())


class _Payload:
    """A pickle that runs code when loaded: it creates the file named by its argument."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_payload_with_its_digest_in_the_fit_record_is_never_unpickled(fitted, tmp_path):
    """An attacker writing a pickle AND its digest into the run record: MLflow's write-once record of
    the digest (fit run param, registered model version) disagrees, so nothing is loaded."""
    import cloudpickle

    p = paths_for("hdma", fitted)
    marker = tmp_path / "payload-ran"
    model_backup, record_backup = p.model.read_bytes(), p.record("fit").read_text()
    try:
        p.model.write_bytes(cloudpickle.dumps(_Payload(str(marker))))
        record = json.loads(record_backup)
        record["model"]["sha256"] = sha256_file(p.model)
        p.record("fit").write_text(json.dumps(record))
        with pytest.raises(IntegrityError, match="not the one MLflow recorded at fit time.*refusing to unpickle"):
            generate.run(load(fitted, "hdma"), p)
        assert not marker.exists()
    finally:
        p.model.write_bytes(model_backup)
        p.record("fit").write_text(record_backup)


def test_fit_rejects_metadata_that_does_not_match(fitted, tmp_path):
    p = paths_for("hdma", fitted)
    original = p.metadata.read_text()
    meta = json.loads(original)
    meta["tables"]["hdma"]["columns"]["ghost"] = {"sdtype": "numerical"}
    try:
        p.metadata.write_text(json.dumps(meta))
        with pytest.raises(InvalidInputError, match="metadata describes column 'ghost'"):
            run_stages(fitted, "hdma", ("fit",))
    finally:
        p.metadata.write_text(original)


def test_missing_upstream_output_is_named(make_workspace):
    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    with pytest.raises(InvalidInputError, match=r"runs/hdma/ingest\.json.*\n.*run the upstream stage first"):
        run_stages(ws, "hdma", ("fit",))


def test_blend_strategies_and_provenance(fitted):
    synthetic = pd.read_parquet(paths_for("hdma", fitted).shard(0))
    train = pd.read_parquet(paths_for("hdma", fitted).train)
    only = blend_stage.blend(synthetic, train, BlendConfig(), seed=1)
    assert (only[PROVENANCE] == "synthetic").all() and len(only) == len(synthetic)
    aug = blend_stage.blend(synthetic, train, BlendConfig(strategy="augment", real_ratio=0.5), seed=1)
    counts = aug[PROVENANCE].value_counts()
    assert counts["synthetic"] == 200 and counts["real"] == 100
    again = blend_stage.blend(synthetic, train, BlendConfig(strategy="augment", real_ratio=0.5), seed=1)
    pd.testing.assert_frame_equal(aug, again)
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.blend\.real_ratio: 10.0 asks for 2000 real rows"):
        blend_stage.blend(synthetic, train, BlendConfig(strategy="augment", real_ratio=10), 1, "hdma")


def test_blend_detects_changed_shard(fitted):
    cfg = load(fitted, "hdma")
    p = paths_for("hdma", fitted)
    generate.run(cfg, p)
    original = p.shard(0).read_bytes()
    try:
        pd.read_parquet(p.shard(0)).head(10).to_parquet(p.shard(0))
        with pytest.raises(IntegrityError, match="part-00000.parquet: sha256 .* does not match the generate record"):
            blend_stage.run(cfg, p)
    finally:
        p.shard(0).write_bytes(original)


def test_logged_mlflow_model_loads_and_samples(fitted):
    """The registered pyfunc model verifies the digest, then samples rows like the synthesizer."""
    import mlflow

    from pipelines.tracking import use_store

    record = json.loads(paths_for("hdma", fitted).record("fit").read_text())
    use_store(fitted)
    model = mlflow.pyfunc.load_model(f"models:/synth-hdma/{record['model']['registered_version']}")
    sample = model.predict(pd.DataFrame({"num_rows": [7]}))
    assert len(sample) == 7 and "deny" in sample.columns
