"""Differential privacy: fit.privacy validation, the privacy ledger, the privacy_budget gate, the
`privacy-ledger` command, the records it feeds (fit record, manifest, report, MLflow), and (when the
TabularARGN environment is built) one real DP fit on an hdma slice with calibrated noise."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pytest

from pipelines import dp, engines
from pipelines.contracts import PROVENANCE
from pipelines.engines.argn import ENGINE as ARGN
from pipelines.engines.argn import dp_epochs, dp_settings
from pipelines.engines.base import EngineInfo
from pipelines.engines.external import ExternalModel
from pipelines.engines.sdv import SdvSingleTable
from pipelines.errors import ConfigError, GateFailed, InvalidInputError
from pipelines.gates import GateContext
from pipelines.gates.dp import PrivacyBudget
from pipelines.io import read_json
from pipelines.paths import paths_for
from pipelines.tableset import layout
from tests.conftest import HDMA, clean_env, load, run_stages, small_block

ARGN_DP = {"synthesizer": "tabular_argn", "privacy": {"epsilon": 3}}


def _argn(gates: dict | None = None, **fit):
    block = small_block(HDMA, "deny", fit={**ARGN_DP, **fit})
    block["gates"] = {**block["gates"], **(gates or {})}
    return block


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        (
            {"privacy": {"epsilon": 3}},
            r"datasets\.toy: fit\.privacy: dataset 'toy' asks for differential privacy \(epsilon 3\) but engine "
            r"'gaussian_copula' has none; engines with DP: \['tabular_argn'\]",
        ),
        (
            {**ARGN_DP, "privacy": {"epsilon": 0}},
            r"datasets\.toy\.fit\.privacy\.epsilon: Input should be greater than 0",
        ),
        ({**ARGN_DP, "privacy": {"epsilon": 1, "delta": 1}}, r"fit\.privacy\.delta: Input should be less than 1"),
        ({**ARGN_DP, "privacy": {"epsilon": 1, "delta": 0}}, r"fit\.privacy\.delta: Input should be greater than 0"),
        ({**ARGN_DP, "privacy": {"delta": 1e-5}}, r"fit\.privacy\.epsilon: missing: required"),
        (
            {**ARGN_DP, "params": {"differential_privacy": {"max_epsilon": 5}}},
            r"fit\.params\.differential_privacy\.max_epsilon is 5 but privacy\.epsilon is 3",
        ),
        (
            {**ARGN_DP, "params": {"differential_privacy": {"delta": 1e-6}}},
            r"fit\.params\.differential_privacy\.delta is 1e-06 but privacy\.delta is 1e-05",
        ),
        (
            {**ARGN_DP, "params": {"differential_privacy": {"value_protection_epsilon": 3}}},
            r"value_protection_epsilon 3 is not below privacy\.epsilon 3",
        ),
        (
            {**ARGN_DP, "params": {"value_protection": False}},
            r"fit\.params\.value_protection: false with differential privacy: .* no DP guarantee",
        ),
        (
            {**ARGN_DP, "privacy": {"epsilon": 3, "epochs": 0}},
            r"fit\.privacy\.epochs: Input should be greater than or equal to 1",
        ),
        (
            {**ARGN_DP, "privacy": {"epsilon": 3, "epochs": 2.5}},
            r"fit\.privacy\.epochs: Input should be a valid integer",
        ),
        (
            {**ARGN_DP, "privacy": {"epsilon": 3, "epochs": True}},
            r"fit\.privacy\.epochs: Input should be a valid integer",
        ),
    ],
)
def test_bad_privacy_settings_are_refused_at_load(make_workspace, fit, message):
    ws = make_workspace(init=False, toy=small_block(HDMA, "deny", fit=fit))
    with pytest.raises(ConfigError, match=message):
        load(ws, "toy")


def test_a_run_override_asking_for_dp_on_an_engine_without_it_names_the_dataset(make_workspace):
    ws = make_workspace(init=False, toy=small_block(HDMA, "deny"))
    with pytest.raises(ConfigError, match=r"dataset 'toy' asks for differential privacy .* 'gaussian_copula' has none"):
        load(ws, "toy", {"fit": {"privacy": {"epsilon": 1}}})


def test_fit_privacy_maps_onto_the_engine_settings(make_workspace):
    ws = make_workspace(init=False, toy=_argn(params={"differential_privacy": {"noise_multiplier": 2.0}}))
    cfg = load(ws, "toy")
    assert cfg.fit.privacy.delta == 1e-5 and cfg.fit.privacy.epochs == 10  # the documented defaults
    mapped = dp_settings(dict(cfg.fit.params), cfg.fit.privacy)
    assert mapped == {"max_epsilon": 3.0, "delta": 1e-5, "value_protection_epsilon": 0.3, "noise_multiplier": 2.0}
    # two models (a parent and a child table, or entities and their sequences): half of each, so the
    # epsilons and deltas the pair spends add up to the target (basic composition)
    halves = dp_settings(dict(cfg.fit.params), cfg.fit.privacy, models=2)
    assert halves == {"max_epsilon": 1.5, "delta": 5e-6, "value_protection_epsilon": 0.15, "noise_multiplier": 2.0}
    assert dp_settings({"differential_privacy": {"max_epsilon": 2}}, None) == {"max_epsilon": 2}
    assert dp_settings({}, None) is None
    # an explicit noise multiplier wins over fit.privacy.epochs: nothing is calibrated
    assert dp_epochs(dict(cfg.fit.params), cfg.fit.privacy) is None
    explicit = load(ws, "toy", {"fit": {"privacy": {"epsilon": 3, "epochs": 4}}})
    assert dp_epochs(dict(explicit.fit.params), explicit.fit.privacy) is None
    assert dp_epochs({}, explicit.fit.privacy) == 4
    assert dp_epochs({"differential_privacy": {"max_grad_norm": 2.0}}, cfg.fit.privacy) == 10
    assert dp_epochs({"differential_privacy": {"max_epsilon": 2}}, None) is None  # the raw block alone


SGD = {"calibrated": True, "epochs": 4, "noise_multiplier": 0.91, "batch_size": 16, "sample_rate": 0.0104}


def test_dp_sgd_settings_reach_the_ledger_entry_and_the_mlflow_params():
    privacy = {"dp": True, "target": {"epsilon": 3.0, "delta": 1e-5}, "spent": None, "dp_sgd": SGD}
    assert dp.ledger_entry(privacy, "a" * 64, "tabular_argn", "src", "s1", "run")["dp_sgd"] == SGD
    assert dp.mlflow_params(privacy) == {
        "privacy.dp": True,
        "privacy.target.epsilon": 3.0,
        "privacy.target.delta": 1e-5,
        **{f"privacy.dp_sgd.{k}": v for k, v in SGD.items()},
    }
    sets = dp.mlflow_params({**privacy, "dp_sgd": {"parent": {"batch_size": 8}, "child": {"batch_size": 16}}})
    assert sets["privacy.dp_sgd.parent.batch_size"] == 8 and sets["privacy.dp_sgd.child.batch_size"] == 16
    assert dp.mlflow_params({"dp": False, "target": None, "spent": None}) == {"privacy.dp": False}


def test_tabular_argn_reports_the_dp_sgd_settings_of_each_model(tmp_path):
    def model(training):
        return ExternalModel(tmp_path, {"params": {"differential_privacy": {"max_epsilon": 3}}, "training": training})

    assert ARGN.privacy_settings(model({"epoch": 4.0, "dp_eps": 2.9, "dp_sgd": SGD})) == SGD
    pair = {"parent": {"dp_eps": 1.0, "dp_sgd": SGD}, "child": {"dp_eps": 1.0, "dp_sgd": {**SGD, "batch_size": 8}}}
    assert ARGN.privacy_settings(model({**pair, "dp_eps": 2.0})) == {"parent": SGD, "child": pair["child"]["dp_sgd"]}
    assert ARGN.privacy_settings(model({"epoch": 4.0})) is None


def _entry(sha: str, epsilon: float | None, snapshot: str = "s1") -> dict:
    spent = {"epsilon": epsilon, "epsilon_last_step": epsilon, "delta": 1e-5} if epsilon is not None else None
    privacy = {"dp": spent is not None, "target": None, "spent": spent, "fitted_at": "2026-12-02T00:00:00+00:00"}
    return dp.ledger_entry(privacy, sha, "tabular_argn", "src", snapshot, "run")


def test_ledger_is_idempotent_per_model_and_adds_up_dp_models(tmp_path):
    paths = paths_for("toy", tmp_path)
    assert dp.read_ledger(paths)["totals"]["models"] == 0
    dp.record(paths, _entry("a" * 64, 1.5))
    again = dp.record(paths, _entry("a" * 64, 1.5))  # a re-run reusing the model
    assert again["models"] == 1 and again["epsilon"] == 1.5
    dp.record(paths, _entry("b" * 64, 2.25, snapshot="s2"))
    totals = dp.record(paths, _entry("c" * 64, None))
    assert totals == {
        "models": 3,
        "dp_models": 2,
        "non_dp_models": 1,
        "non_dp_released": 0,
        "epsilon": 3.75,
        "delta": 2e-5,
        "epsilon_released": 0.0,
    }
    dp.record(paths, _entry("b" * 64, 2.25), version=1)
    released = dp.record(paths, _entry("b" * 64, 2.25), version=1)  # the same release recorded twice
    assert released["epsilon_released"] == 2.25 and released["models"] == 3
    ledger = read_json(dp.ledger_path(paths))
    assert [e["releases"] for e in ledger["entries"]] == [[], [1], []]
    assert not list(dp.ledger_path(paths).parent.glob("*.tmp"))


def test_a_broken_ledger_is_named(tmp_path):
    paths = paths_for("toy", tmp_path)
    dp.ledger_path(paths).parent.mkdir(parents=True)
    dp.ledger_path(paths).write_text("[1, 2]")
    with pytest.raises(InvalidInputError, match=r"(?s)logs/privacy/toy\.json.*not a privacy ledger"):
        dp.read_ledger(paths)


def _context(cfg, privacy) -> GateContext:
    rows = pd.DataFrame({"a": [1, 2, 3]})
    return GateContext(
        cfg=cfg,
        layout=layout(cfg),
        blended={"toy": rows.assign(**{PROVENANCE: "synthetic"})},
        train={"toy": rows},
        holdout={"toy": rows},
        metadata=None,
        suite={},
        fit_record={"privacy": privacy} if privacy is not None else {},
    )


def _privacy(total: float, spent: float | None, non_dp: int = 0) -> dict:
    totals = {"epsilon": total, "delta": 2e-5, "dp_models": 2, "non_dp_models": non_dp}
    spent_ = {"epsilon": spent, "epsilon_last_step": spent, "delta": 1e-5} if spent is not None else None
    return {"dp": spent is not None, "target": None, "spent": spent_, "ledger": {"path": "x", "totals": totals}}


def test_privacy_budget_gate(make_workspace):
    ws = make_workspace(init=False, toy=_argn(gates={"privacy_budget_max": 5.0}), off=_argn())
    cfg, gate = load(ws, "toy"), PrivacyBudget()
    assert not gate.applies(_context(load(ws, "off"), _privacy(9.0, 3.0)))  # null budget: off
    ok, figures = gate.evaluate(_context(cfg, _privacy(4.5, 3.0, non_dp=1)))
    assert ok.passed and ok.value == 4.5 and ok.threshold == 5.0
    assert "this model 3.0000" in ok.explanation and "1 other model(s) without DP" in ok.explanation
    assert figures["differential_privacy"]["budget"] == 5.0
    over, _ = gate.evaluate(_context(cfg, _privacy(5.5, 3.0)))
    assert not over.passed and over.value == 5.5
    no_dp, _ = gate.evaluate(_context(cfg, _privacy(0.0, None, non_dp=1)))
    assert not no_dp.passed and "without differential privacy" in no_dp.explanation
    old, _ = gate.evaluate(_context(cfg, None))
    assert not old.passed and "re-run fit" in old.explanation


def test_privacy_ledger_command(make_workspace, monkeypatch, capsys):
    from pipelines.cli import main

    ws = make_workspace(init=False, toy=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)
    assert main(["privacy-ledger", "nope"]) == 2
    assert "datasets.nope: no such dataset (configured: toy)" in capsys.readouterr().err
    dp.record(paths_for("toy", ws), _entry("a" * 64, 1.25))
    dp.record(paths_for("toy", ws), _entry("b" * 64, None), version=1)
    assert main(["privacy-ledger", "toy"]) == 0
    out = capsys.readouterr().out
    assert "aaaaaaaaaaaa   tabular_argn        1.2500   1.0e-05" in out
    assert "bbbbbbbbbbbb   tabular_argn         no DP" in out
    assert "total: epsilon 1.2500, delta 1.0e-05 over 1 DP model(s)" in out
    assert "1 model(s) without DP guarantee (1 released)" in out
    assert main(["privacy-ledger", "toy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["epsilon"] == 1.25


@dataclass
class _FakeDp(SdvSingleTable):
    """GaussianCopula posing as a DP engine that reports a fixed epsilon: the platform's plumbing in seconds."""

    epsilon: float = 0.0

    def privacy_spent(self, model):
        return {"epsilon": self.epsilon, "epsilon_last_step": self.epsilon + 0.1, "delta": 1e-5}

    def privacy_settings(self, model):
        return SGD


@pytest.fixture
def fake_dp(monkeypatch):
    gc = engines.get("gaussian_copula")
    fake = _FakeDp(EngineInfo("fake_dp", "copula", "MIT", gc.info.params, dp=True), gc.cls_name, epsilon=2.0)
    monkeypatch.setitem(engines.REGISTRY, "fake_dp", fake)
    return fake


@pytest.mark.slow
def test_spent_epsilon_flows_to_the_records_the_manifest_and_the_ledger(make_workspace, fake_dp):
    block = small_block(
        HDMA, "deny", fit={"synthesizer": "fake_dp", "privacy": {"epsilon": 3}}, gates={"privacy_budget_max": 5.0}
    )
    block["gates"] = {**block["gates"], "minority_recall_ratio_min": 0.0, "utility_gap_max": 1.0}
    ws = make_workspace(toy=block)
    manifest = run_stages(ws, "toy")
    p = paths_for("toy", ws)
    fit = read_json(p.record("fit"))
    assert fit["privacy"]["target"] == {"epsilon": 3.0, "delta": 1e-5}
    assert fit["privacy"]["spent"] == {"epsilon": 2.0, "epsilon_last_step": 2.1, "delta": 1e-5}
    assert fit["privacy"]["ledger"]["totals"]["epsilon"] == 2.0
    assert fit["privacy"]["dp_sgd"] == SGD and manifest["privacy"]["dp_sgd"] == SGD
    assert _fit_run_params(ws, fit)["privacy.dp_sgd.noise_multiplier"] == "0.91"
    gate = next(g for g in manifest["gates"] if g["name"] == "privacy_budget")
    assert gate["passed"] and gate["value"] == 2.0
    assert manifest["privacy"]["spent"]["epsilon"] == 2.0 and manifest["privacy"]["budget"] == 5.0
    assert manifest["privacy"]["ledger"]["dp_models"] == 1
    assert 'id="dp-model"' in p.release_report.read_text()
    ledger = dp.read_ledger(p)
    assert [e["releases"] for e in ledger["entries"]] == [[1]]
    assert ledger["entries"][0]["model_sha256"] == fit["model"]["sha256"] and ledger["entries"][0]["dp_sgd"] == SGD
    # a second release from the same model (only generate changed): the ledger does not count it again
    run_stages(ws, "toy", ("generate", "blend", "validate", "release"), overrides={"generate": {"rows": 300}})
    ledger = dp.read_ledger(p)
    assert [e["releases"] for e in ledger["entries"]] == [[1, 2]] and ledger["totals"]["epsilon"] == 2.0
    # a new model (other params) adds its epsilon: 4.0 > 3.5 blocks the release
    other = {"fit": {"params": {"default_distribution": "norm"}}, "gates": {"privacy_budget_max": 3.5}}
    with pytest.raises(GateFailed, match="privacy_budget"):
        run_stages(ws, "toy", ("fit", "generate", "blend", "validate", "release"), other)
    totals = dp.read_ledger(p)["totals"]
    assert totals == {**ledger["totals"], "models": 2, "dp_models": 2, "epsilon": 4.0, "delta": 2e-5}


def _fit_run_params(ws, fit) -> dict:
    """The MLflow params of the fit stage's run."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import use_store

    use_store(ws)
    return MlflowClient().get_run(fit["mlflow"]["run_id"]).data.params


TINY = {"max_epochs": 1, "model": "MOSTLY_AI/Small", "batch_size": 64}

needs_env = pytest.mark.skipif(
    not ARGN.env.built(),
    reason=f"the tabular_argn environment is not built ({ARGN.env.root}): run `make setup-engines`",
)


@needs_env
@pytest.mark.slow
def test_a_dp_fit_of_tabular_argn_records_the_epsilon_the_engine_reports(make_workspace, tmp_path):
    src = tmp_path / "hdma600.csv"
    src.write_text("\n".join(HDMA.read_text().splitlines()[:601]) + "\n")
    # one calibration epoch (max_epochs 5 is lowered to it): the noise spends the target in that epoch
    fit_ = {**ARGN_DP, "privacy": {"epsilon": 3, "epochs": 1}, "params": {**TINY, "max_epochs": 5}}
    ws = make_workspace(toy=small_block(src, "deny", fit=fit_, generate={"rows": 300}))
    with clean_env():
        run_stages(ws, "toy", ("ingest", "fit", "generate"))
    p = paths_for("toy", ws)
    fit = read_json(p.record("fit"))
    model = ARGN.load(p.model, fit["model"]["sha256"], "model")
    assert model.manifest["params"]["differential_privacy"] == {
        "max_epsilon": 3.0,
        "delta": 1e-5,
        "value_protection_epsilon": 0.3,
    }
    assert model.manifest["params"]["max_epochs"] == 1
    spent, training = fit["privacy"]["spent"], model.manifest["training"]
    assert spent["epsilon"] == training["dp_eps_checkpoint"] and spent["epsilon_last_step"] == training["dp_eps"]
    assert training["epoch"] == 1.0 and spent["delta"] == 1e-5
    assert 0.95 * 3.0 <= spent["epsilon"] <= 3.0  # the target, not what the default noise happens to spend
    sgd = fit["privacy"]["dp_sgd"]
    assert sgd == training["dp_sgd"] and sgd["calibrated"] and sgd["epochs"] == 1
    assert sgd["batch_size"] == 64 and sgd["training_rows"] == 384  # 80% of the 480 train rows
    assert sgd["steps_per_epoch"] == 6 and sgd["sample_rate"] == 1 / 6 and 0 < sgd["noise_multiplier"] < 1.5
    assert sgd["value_protection_epsilon"] == pytest.approx(0.3)
    entry = dp.read_ledger(p)["entries"][0]
    assert entry["dp_sgd"] == sgd and entry["epsilon"] == spent["epsilon"]
    params = _fit_run_params(ws, fit)
    assert params["privacy.dp_sgd.epochs"] == "1" and params["privacy.dp_sgd.batch_size"] == "64"
    assert float(params["privacy.dp_sgd.noise_multiplier"]) == pytest.approx(sgd["noise_multiplier"])
    assert dp.read_ledger(p)["totals"]["epsilon"] == spent["epsilon"]
    # DP value protection leaves rare categories; `rare_category_replacement_method: sample` must reach the
    # engine as its enum, or `_RARE_` is released in place of real values
    synthetic = pd.read_parquet(p.shard(0))
    assert not (synthetic.astype(str) == "_RARE_").any().any()


def test_report_section_says_what_the_model_guarantees():
    from pipelines.report_sections import differential_privacy

    assert "predates it" in differential_privacy({})
    no_dp = differential_privacy({"differential_privacy": {**_privacy(2.5, None, non_dp=1), "budget": None}})
    assert "without differential privacy" in no_dp and "budget none (gates.privacy_budget_max: null)" in no_dp
    with_dp = differential_privacy({"differential_privacy": {**_privacy(2.5, 1.25), "budget": 5.0}})
    assert "<td>spent: the weights kept</td><td>1.2500</td>" in with_dp
    assert "epsilon 2.5000" in with_dp and "budget 5.0000" in with_dp
