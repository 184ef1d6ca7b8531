"""Auto-selection (`fit.synthesizer: auto`): candidates, budget -> epochs, determinism, records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines import engines
from pipelines.config import build_dataset
from pipelines.engines import candidates, selection
from pipelines.errors import ConfigError
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import HDMA, clean_env, defaults, load, run_stages, small_block

SINGLE = ["gaussian_copula", "ctgan", "tvae", "copulagan", "tabular_argn"]
FAST = {"synthesizer": "auto", "candidates": ["gaussian_copula", "tvae"], "budget_s": 3}
"""Two quick candidates; 3 s buys TVAE a few epochs on the 300-row slice (by the cost model)."""


@pytest.fixture(scope="module")
def hdma_slice(tmp_path_factory) -> Path:
    """300 real hdma rows (the first ones; deny=yes among them)."""
    path = tmp_path_factory.mktemp("auto") / "hdma300.csv"
    pd.read_csv(HDMA).head(300).to_csv(path, index=False)
    return path


def _dataset(fit: dict, **sections):
    return build_dataset("toy", small_block(HDMA, "deny", fit=fit, **sections), defaults())


def _relational(fit: dict):
    block = {
        "source": {
            "path": "sources/nycflights13",
            "format": "csv",
            "main_table": "flights",
            "tables": {"planes": {"file": "planes.csv", "primary_key": "tailnum"}, "flights": {"file": "flights.csv"}},
            "relationships": [
                {"parent": "planes", "child": "flights", "parent_key": "tailnum", "child_key": "tailnum"}
            ],
        },
        "target": None,
        "seed": 1,
        "ingest": {},
        "fit": fit,
        "generate": {},
        "blend": {},
        "gates": {},
    }
    return build_dataset("nyc", block, defaults())


# --- candidates and config errors ----------------------------------------------------------------


def test_default_candidates_follow_kind_licences_and_asks():
    assert candidates.candidates(_dataset({"synthesizer": "auto"})) == SINGLE
    assert candidates.candidates(_relational({"synthesizer": "auto"})) == ["hma"]
    assert candidates.candidates(_dataset({"synthesizer": "auto", "licences": ["Apache-2.0"]})) == ["tabular_argn"]
    rule = [{"type": "positive", "column": "dir"}]
    with_rules = _dataset({"synthesizer": "auto", "constraints": rule})
    assert "tabular_argn" not in candidates.candidates(with_rules)  # it cannot enforce business rules
    assert _dataset({}).fit.synthesizer == "gaussian_copula"  # auto is opt-in


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        ({"candidates": ["nope"]}, r"fit.*candidates: 'nope' is not a known engine \(known: gaussian_copula"),
        ({"candidates": ["ctgan"], "licences": ["MIT"]}, r"'ctgan' is under BUSL-1.1.*not in this dataset's licences"),
        ({"candidates": ["hma"]}, r"fit\.candidates: 'hma' fits several tables only"),
        ({"candidates": ["tvae", "tvae"]}, r"'tvae' is listed twice"),
        ({"params": {"epochs": 3}}, r"params \['epochs'\]: not used with synthesizer 'auto'"),
        ({"budget_s": 0}, r"fit\.budget_s: Input should be greater than 0"),
        ({"licences": ["MIT"]}, r"fit\.candidates: no registered engine is allowed by licences \['MIT'\]"),
    ],
)
def test_bad_auto_settings_are_refused_naming_the_key(fit, message):
    with pytest.raises(ConfigError, match=message):
        _dataset({"synthesizer": "auto", **fit})


def test_candidates_must_fit_the_table_set():
    with pytest.raises(ConfigError, match=r"fit\.candidates: 'tvae' fits one table only"):
        _relational({"synthesizer": "auto", "candidates": ["hma", "tvae"]})


def test_conditions_leave_out_engines_that_cannot_condition(monkeypatch):
    info = engines.REGISTRY["tvae"].info
    monkeypatch.setattr(engines.REGISTRY["tvae"], "info", type(info)(**{**info.__dict__, "conditions": False}))
    conditioned = {"generate": {"rows": 400, "conditions": {"deny": "yes"}}}
    assert "tvae" not in candidates.candidates(_dataset({"synthesizer": "auto"}, **conditioned))
    with pytest.raises(ConfigError, match=r"'tvae' does not support generate\.conditions"):
        _dataset({"synthesizer": "auto", "candidates": ["tvae"]}, **conditioned)


# --- budget -> epoch limits ------------------------------------------------------------------------


def test_epoch_limits_come_from_budget_size_and_cost_model_only():
    rows, cells = 1905, 1905 * 13
    plans = candidates.plan(SINGLE, rows, cells, 600)
    assert plans == candidates.plan(SINGLE, rows, cells, 600)  # a pure function of its inputs
    by = {p.engine: p for p in plans}
    assert by["gaussian_copula"].params == {} and by["gaussian_copula"].skipped is None
    assert by["tvae"].params["epochs"] >= 1 and by["tabular_argn"].params["max_epochs"] >= 1
    assert sum(p.estimated_s for p in plans) <= 600
    bigger = {p.engine: p for p in candidates.plan(SINGLE, rows, cells, 1200)}
    assert all(bigger[n].params[k] >= v for n in by for k, v in by[n].params.items())
    assert bigger["ctgan"].params["epochs"] > by["ctgan"].params["epochs"]
    capped = {p.engine: p for p in candidates.plan(SINGLE, 100, 1000, 10**6)}  # a tiny table, a huge budget
    assert capped["ctgan"].params == {"epochs": candidates.COSTS["ctgan"].max_epochs}
    starved = {p.engine: p for p in candidates.plan(SINGLE, 10**6, 10**7, 120)}
    assert starved["tabular_argn"].skipped and "buys no epoch" in starved["tabular_argn"].skipped
    assert starved["gaussian_copula"].skipped is None


def test_argn_epochs_cost_steps_not_rows():
    assert candidates.argn_steps(1905) == 95  # 1,524 rows in batches of 16 (hdma's measured 95 steps)
    assert 64 <= candidates.argn_steps(43_000) <= 128 and 64 <= candidates.argn_steps(2_000) <= 128


# --- selection ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(hdma_slice, tmp_path_factory) -> Path:
    """ingest -> fit -> generate with `auto` on the slice."""
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    ws = tmp_path_factory.mktemp("ws_auto")
    block = small_block(hdma_slice, "deny", fit=FAST, generate={"rows": 300})
    block["gates"].update(quality_min=0.0, utility_gap_max=1.0, bias_rate_gap_max=1.0, bias_share_gap_max=1.0)
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"toy": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("toy"), paths_for("toy", ws)))
    with clean_env():
        run_stages(ws, "toy", ("ingest", "fit", "generate"))
    return ws


def test_fit_record_holds_every_candidate_and_the_reason(fitted):
    fit = read_json(paths_for("toy", fitted).record("fit"))
    sel = fit["selection"]
    assert [c["engine"] for c in sel["candidates"]] == ["gaussian_copula", "tvae"]
    assert fit["synthesizer"] == sel["winner"] and fit["params"] == sel["params"]
    assert fit["engine"]["name"] == sel["winner"]
    tvae = sel["candidates"][1]
    assert tvae["params"]["epochs"] >= 1 and tvae["fit_seconds"] > 0
    for cand in sel["candidates"]:
        figures = cand["figures"]
        for key in ("composite", "quality_all_pairs", "worst_column", "rank_corr_error", "utility_gap"):
            assert isinstance(figures[key], float), (cand["engine"], key)
        assert 0 <= figures["composite"] <= 1
    best = max(c["figures"]["composite"] for c in sel["candidates"])
    assert round(best, 3) == round(
        next(c for c in sel["candidates"] if c["engine"] == sel["winner"])["figures"]["composite"], 3
    )
    assert sel["winner"] in sel["reason"]
    assert (
        sel["fit_rows"] + sel["validation_rows"]
        == read_json(paths_for("toy", fitted).record("ingest"))["train"]["rows"]
    )


def test_generate_samples_the_winner_and_the_manifest_shows_the_choice(fitted):
    p = paths_for("toy", fitted)
    fit = read_json(p.record("fit"))
    gen = read_json(p.record("generate"))
    assert gen["rows"] == 300 and gen["model"]["sha256"] == fit["model"]["sha256"]
    with clean_env():
        run_stages(fitted, "toy", ("blend", "validate", "release"))
    manifest = read_json(p.manifest)
    assert manifest["model"]["synthesizer"] == fit["synthesizer"]
    assert manifest["model"]["selection"]["reason"] == fit["selection"]["reason"]
    assert manifest["params"]["fit"]["synthesizer"] == "auto"


def test_one_nested_mlflow_run_per_candidate_under_the_fit_run(fitted):
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import use_store

    fit = read_json(paths_for("toy", fitted).record("fit"))
    use_store(fitted)
    client = MlflowClient()
    for cand in fit["selection"]["candidates"]:
        run = client.get_run(cand["mlflow_run_id"])
        assert run.data.tags["mlflow.parentRunId"] == fit["mlflow"]["run_id"]
        assert run.data.tags["synthgate.candidate"] == cand["engine"]
        assert run.data.metrics["composite"] == pytest.approx(cand["figures"]["composite"])


def test_a_rerun_picks_the_same_engine_with_the_same_figures(fitted):
    """A second selection on the same inputs: same epochs, same figures, same winner (no time caps)."""
    from pipelines import metadata, tableset
    from pipelines.records.stages import IngestRecord

    p = paths_for("toy", fitted)
    cfg = load(fitted, "toy")
    lay = tableset.layout(cfg)
    train = tableset.read(p.train, lay, IngestRecord.read(p.record("ingest")).train, "ingest")
    md = metadata.seen_only(metadata.load(p), train)
    first = read_json(p.record("fit"))["selection"]
    again = selection.select(train, md, cfg, lay)
    assert again.winner == first["winner"] and again.reason == first["reason"]
    assert [c.params for c in again.candidates] == [c["params"] for c in first["candidates"]]
    assert [c.figures for c in again.candidates] == [c["figures"] for c in first["candidates"]]
    fit_part, validation = selection.carve(train, cfg, lay)
    assert abs(len(validation[lay.main]) - 0.2 * len(train[lay.main])) <= 2  # stratified by deny, rounded per class
    rows = pd.concat([fit_part[lay.main], validation[lay.main]]).sort_values(list(train[lay.main].columns))
    expected = train[lay.main].sort_values(list(train[lay.main].columns))
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), expected.reset_index(drop=True))
