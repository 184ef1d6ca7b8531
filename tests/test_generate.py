"""generate's process pool (`generate.workers`): the same bytes as one process, typed errors, no partial shard."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import engines, generate
from pipelines.engines.sdv import SdvSingleTable
from pipelines.errors import (
    ConfigError,
    EngineError,
    IntegrityError,
    InvalidInputError,
    OutOfResources,
    SynthgateError,
)
from pipelines.paths import paths_for
from tests.conftest import HDMA, clean_env, defaults, load, run_stages, small_block


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """hdma, ingested and fitted (GaussianCopula); generate plans 4 shards of 100 rows."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    ws = tmp_path_factory.mktemp("fitted")
    block = small_block(HDMA, "deny", generate={"rows": 400, "shard_rows": 100})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    with clean_env():
        run_stages(ws, "hdma", ("ingest", "fit"))
    return ws


def _generate(ws: Path, workers: int) -> dict:
    with clean_env():
        return generate.run(load(ws, "hdma", {"generate": {"workers": workers}}), paths_for("hdma", ws))


def _leftovers(ws: Path) -> list[str]:
    return sorted(p.name for p in paths_for("hdma", ws).synthetic_dir.iterdir())


def test_a_pool_of_two_writes_the_bytes_one_process_writes(fitted):
    one = _generate(fitted, 1)
    two = _generate(fitted, 2)
    assert len(one["shards"]) == 4
    assert [s["sha256"] for s in two["shards"]] == [s["sha256"] for s in one["shards"]]
    assert [s["rows"] for s in two["shards"]] == [100] * 4
    assert (one["workers"], two["workers"]) == (1, 2)
    from pipelines.tracking import get_run

    run = get_run(two["mlflow"]["run_id"], fitted)
    assert run.data.params["workers"] == "2"
    # more workers than shards: one process per shard
    assert _generate(fitted, 9)["workers"] == 4
    assert _leftovers(fitted) == [f"part-{i:05d}.parquet" for i in range(4)]


def test_spawned_workers_load_the_model_and_write_the_same_bytes(fitted, monkeypatch):
    """Engines sampling with torch get spawned workers (a forked child hangs in torch's OpenMP pool)."""
    one = _generate(fitted, 1)
    engine = engines.get("gaussian_copula")
    monkeypatch.setattr(engine, "info", dataclasses.replace(engine.info, forkable=False))
    spawned = _generate(fitted, 2)
    assert [s["sha256"] for s in spawned["shards"]] == [s["sha256"] for s in one["shards"]]


def _failing_shard(monkeypatch, seed: int) -> None:
    """Shard 2 fails in whichever process samples it, as SDV's failed conditional sampling does."""
    bad = generate.shard_seed(seed, 2)
    real = SdvSingleTable.sample

    def sample(self, model, request):
        if request.seed == bad:
            raise InvalidInputError(f"shard seed {request.seed}", ["conditional sampling failed"], hint="loosen")
        return real(self, model, request)

    monkeypatch.setattr(SdvSingleTable, "sample", sample)


def test_a_failing_shard_raises_the_error_one_process_raises(fitted, monkeypatch):
    p = paths_for("hdma", fitted)
    _generate(fitted, 1)
    record = p.record("generate").read_bytes()
    _failing_shard(monkeypatch, load(fitted, "hdma").seed)
    errors = []
    for workers in (1, 2):
        p.shard(2).unlink(missing_ok=True)
        with pytest.raises(InvalidInputError) as err:
            _generate(fitted, workers)
        errors.append(err.value)
        assert not p.shard(2).exists()
        assert not [n for n in _leftovers(fitted) if n.endswith(".tmp")]
        assert p.record("generate").read_bytes() == record  # no record of an incomplete shard set
    single, pooled = errors
    assert type(pooled) is type(single) and str(pooled) == str(single)
    assert (pooled.path, pooled.problems) == (single.path, single.problems)


@pytest.mark.parametrize(
    ("death", "error", "message"),
    [
        (lambda: os.kill(os.getpid(), signal.SIGKILL), OutOfResources, r"killed.*lower generate.workers \(2\)"),
        (lambda: os._exit(3), SynthgateError, r"ended before returning its shard \(exit codes \[.*3.*\]\)"),
    ],
    ids=["killed", "exited"],
)
def test_a_worker_that_dies_is_named_and_leaves_no_partial_shard(fitted, monkeypatch, death, error, message):
    p = paths_for("hdma", fitted)
    parent, real_fsync = os.getpid(), os.fsync

    def fsync(fd: int) -> None:  # a worker dies with its shard's temporary file written, not yet renamed
        if os.getpid() != parent:
            death()
        real_fsync(fd)

    for shard in p.synthetic_dir.glob("part-*.parquet"):
        shard.unlink()
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(error, match=message) as err:
        _generate(fitted, 2)
    assert (type(err.value) is OutOfResources) == (error is OutOfResources)  # an exit is not taken for memory
    assert _leftovers(fitted) == []
    monkeypatch.undo()
    _generate(fitted, 2)  # leave the workspace whole for the other tests


def test_a_worker_that_cannot_load_the_model_raises_that_error_for_its_shards(fitted, monkeypatch):
    """A spawned worker loads the model itself: its IntegrityError reaches the stage typed, not as a broken pool."""
    cfg, p = load(fitted, "hdma"), paths_for("hdma", fitted)

    def tampered(cfg, paths):
        raise IntegrityError("models/hdma/synthesizer.pkl does not match the fit record")

    monkeypatch.setattr(generate, "load_context", tampered)
    monkeypatch.setattr(generate, "_WORKER", None)
    generate._init_worker(cfg, p, None)
    with pytest.raises(IntegrityError, match="does not match the fit record"):
        generate._pooled_shard(generate.shards_for(cfg, p)[0])


def test_workers_default_to_the_usable_cores_and_never_exceed_the_shards(fitted):
    cfg = load(fitted, "hdma")
    assert cfg.generate.workers is None and defaults()["generate"]["workers"] is None
    assert generate.worker_count(cfg, 1000) == len(os.sched_getaffinity(0))
    assert generate.worker_count(cfg, 1) == 1
    assert generate.worker_count(load(fitted, "hdma", {"generate": {"workers": 3}}), 1000) == 3


_RUNNER = """
import json, os, random, sys
import pyarrow as pa, pyarrow.parquet as pq
request = json.load(open(sys.argv[1]))
if request["seed"] == int(os.environ.get("FAKE_ENGINE_FAILS_ON", -1)):
    raise ValueError("the engine broke on this shard")
columns = json.load(open(os.path.join(request["model_dir"], "synthgate-model.json")))["columns"]
rng = random.Random(request["seed"])
for part in request["parts"]:
    table = pa.table({c: [rng.randrange(9) for _ in range(part["rows"])] for c in columns})
    pq.write_table(table, part["out"])
json.dump({}, open(request["response"], "w"))
"""


@pytest.fixture
def external(fitted, tmp_path, monkeypatch):
    """tabular_argn's adapter with a stand-in runner run by this interpreter (no engine environment)."""
    from pipelines.engines.argn import ENGINE
    from pipelines.engines.envs import EngineEnv
    from pipelines.engines.external import MANIFEST, ExternalEngine, ExternalModel
    from pipelines.records.stages import FitRecord

    columns = FitRecord.read(paths_for("hdma", fitted).record("fit")).columns
    manifest = {"params": {}, "columns": columns, "dtypes": dict.fromkeys(columns, "int64")}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / "runner.py").write_text(_RUNNER)

    class StandIn(ExternalEngine):
        def load(self, path, expected_sha256, shown):
            return ExternalModel(tmp_path, manifest)

    monkeypatch.setattr(EngineEnv, "ensure", lambda self, engine: Path(sys.executable))
    engine = StandIn(ENGINE.info, EngineEnv("tabularargn"), tmp_path / "runner.py")
    monkeypatch.setattr(engines, "get", lambda name: engine)
    yield
    monkeypatch.undo()
    _generate(fitted, 1)  # the model's shards back, for the other tests


def test_an_engine_in_its_own_environment_samples_in_the_pool_too(fitted, external, monkeypatch):
    """Forked workers each call the engine's runner: the same bytes, and a runner failure comes back typed."""
    one, two = _generate(fitted, 1), _generate(fitted, 2)
    assert two["workers"] == 2 and [s["rows"] for s in two["shards"]] == [100] * 4
    assert [s["sha256"] for s in two["shards"]] == [s["sha256"] for s in one["shards"]]
    monkeypatch.setenv("FAKE_ENGINE_FAILS_ON", str(generate.shard_seed(load(fitted, "hdma").seed, 3)))
    errors = []
    for workers in (1, 2):
        with pytest.raises(EngineError, match="the engine broke on this shard") as err:
            _generate(fitted, workers)
        errors.append(err.value)
    assert str(errors[1]) == str(errors[0]) and errors[1].action == "sample"


def test_workers_must_be_at_least_one(fitted):
    with pytest.raises(ConfigError, match=r"generate.workers: Input should be greater than or equal to 1"):
        load(fitted, "hdma", {"generate": {"workers": 0}})


def test_the_airflow_generate_override_schema_takes_workers():
    from pipelines.airflow_tasks.form import section_schema

    schema = json.dumps(section_schema("generate")["properties"]["workers"])
    assert '"minimum": 1' in schema and '"null"' in schema
