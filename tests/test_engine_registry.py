"""Engines behind one interface: the registry, and a toy engine added through it alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import engines
from pipelines.engines import Engine, EngineInfo, SampleRequest
from pipelines.errors import ConfigError
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, HDMA, clean_env, load, run_stages, small_block


class ColumnBootstrap(Engine):
    """A toy engine: every column resampled on its own from the train rows (no joint structure)."""

    info = EngineInfo("column_bootstrap", "resampler", "Apache-2.0")

    def fit(self, train, metadata, cfg, lay):
        return {t: df.reset_index(drop=True) for t, df in train.items()}

    def sample(self, model, request: SampleRequest):
        rng = np.random.default_rng(request.seed)
        df = model[request.main]
        picks = {c: df[c].to_numpy()[rng.integers(0, len(df), request.rows)] for c in df.columns}
        return {request.main: pd.DataFrame(picks)}


@pytest.fixture
def toy_engine(monkeypatch):
    monkeypatch.setitem(engines.REGISTRY, "column_bootstrap", ColumnBootstrap())


def test_registry_lists_sdv_adapters_with_licences():
    names = list(engines.REGISTRY)
    assert names[:5] == ["gaussian_copula", "ctgan", "tvae", "copulagan", "hma"]
    for name in names[:5]:
        assert engines.get(name).info.licence == "BUSL-1.1"
    assert engines.get("hma").info.multi_table and not engines.get("hma").info.single_table


def test_unknown_engine_is_refused_naming_the_known_ones(make_workspace):
    ws = make_workspace(init=False, toy=small_block(HDMA, fit={"synthesizer": "nope"}))
    with pytest.raises(ConfigError, match=r"datasets\.toy\.fit.*'nope' is not a known engine.*gaussian_copula"):
        load(ws, "toy")


def test_a_toy_engine_added_through_the_registry_releases(toy_engine, make_workspace):
    """One class and one registry line: the six stages fit, sample, gate and release with it."""
    # each column drawn on its own: every trend between columns is lost, so the floors are off
    gates = {"sample_rows": 400, "quality_min": 0.5, **FLOORS_OFF}
    block = small_block(HDMA, fit={"synthesizer": "column_bootstrap"}, gates=gates)
    ws = make_workspace(toy=block)
    with clean_env():
        manifest = run_stages(ws, "toy")
    p = paths_for("toy", ws)
    fit = read_json(p.record("fit"))
    assert fit["engine"]["name"] == "column_bootstrap" and fit["engine"]["licence"] == "Apache-2.0"
    assert manifest["version"] == 1 and manifest["model"]["synthesizer"] == "column_bootstrap"
    released = pd.read_parquet(p.release_file)
    train = pd.read_parquet(p.train)
    assert len(released) == 400 and list(released.columns[:-1]) == list(train.columns)
    for col in train.columns:  # every value comes from the train rows
        assert released[col].dropna().isin(train[col].dropna()).all(), col
    again = run_stages(ws, "toy", ("generate",))  # sampling is deterministic per shard seed
    assert again["shards"][0]["sha256"] == read_json(p.record("generate"))["shards"][0]["sha256"]


def test_engines_command_lists_each_engine_with_its_licence(capsys):
    from pipelines.cli import main

    assert main(["engines"]) == 0
    out = capsys.readouterr().out
    row = "gaussian_copula  copula          BUSL-1.1    platform venv            single_table, conditions, constraints"
    assert row in out
    assert "hma" in out and "multi_table" in out
