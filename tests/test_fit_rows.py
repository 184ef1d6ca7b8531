"""`fit.max_rows`: the seeded subsample of the train split an engine is fitted on (pipelines/fit_rows.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import fit_rows, tableset
from pipelines.config import build_dataset
from pipelines.errors import ConfigError
from pipelines.io import read_json, sha256_file
from pipelines.paths import paths_for
from tests.conftest import HDMA, clean_env, defaults, load, run_stages, small_block


def _cfg(target: str | None = "y", seed: int = 3, max_rows: int | None = 100, synthesizer="gaussian_copula", **block):
    fit = {"max_rows": max_rows, "synthesizer": synthesizer}
    return build_dataset("t", small_block("t.csv", target, seed=seed, fit=fit, **block), defaults())


def _classes() -> pd.DataFrame:
    """1,000 rows: classes a 900, b 94, c 5 and d once; x numeric."""
    y = ["a"] * 900 + ["b"] * 94 + ["c"] * 5 + ["d"]
    return pd.DataFrame({"x": np.arange(1000) * 0.5, "y": y})


def _choose(df: pd.DataFrame, cfg) -> fit_rows.FitRows:
    return fit_rows.choose(df, cfg, tableset.layout(cfg), cfg.fit.max_rows)


# --- the subsample ---------------------------------------------------------------------------------


def test_class_target_keeps_shares_and_every_class():
    df, cfg = _classes(), _cfg()
    rows = _choose(df, cfg)
    picked = df.iloc[rows.positions]
    counts = picked["y"].value_counts().to_dict()
    assert len(picked) == 100 and rows.method == "stratified by y"
    assert counts == {"a": 88, "b": 10, "c": 1, "d": 1}  # 1 each + 96 shared by the other rows (largest remainder)
    shares = df["y"].value_counts(normalize=True)
    assert all(abs(counts[c] / 100 - shares[c]) <= 4 / 100 for c in shares.index)  # one row per class at most off
    assert (np.diff(rows.positions) > 0).all()  # train order kept, no row twice


def test_same_seed_same_rows_other_seed_other_rows():
    df = _classes()
    first, again = _choose(df, _cfg()), _choose(df, _cfg())
    assert first.record() == again.record()
    other = _choose(df, _cfg(seed=4))
    assert other.record()["positions_sha256"] != first.record()["positions_sha256"]
    assert other.record()["fit_rows"] == 100


def test_numeric_target_or_none_is_uniform():
    df = _classes().assign(x=np.random.default_rng(0).normal(size=1000))
    for cfg in (_cfg(target="x"), _cfg(target=None)):
        rows = _choose(df, cfg)
        assert rows.method == "uniform" and len(set(rows.positions)) == 100 == len(rows.positions)


def test_a_train_split_within_max_rows_is_left_whole():
    df, cfg = _classes(), _cfg(max_rows=1000)
    rows = _choose(df, cfg)
    assert (rows.method, rows.subsampled, rows.record()["fit_rows"]) == ("all rows", False, 1000)
    tables = {"t": df}
    assert fit_rows.apply(tables, rows, tableset.layout(cfg)) is tables
    assert _choose(df, _cfg(max_rows=None)).record()["max_rows"] is None


def test_more_classes_than_max_rows_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"datasets\.t\.fit\.max_rows: 3 rows cannot keep one row of each of the 4"):
        _choose(_classes(), _cfg(max_rows=3))


def test_sequences_are_kept_whole():
    df = pd.DataFrame({"k": np.repeat([f"e{i}" for i in range(40)], np.arange(40) % 7 + 1), "t": 0})
    sequence = {"key": "k", "index": "t"}
    cfg = _cfg(None, max_rows=60, synthesizer="par", source={"path": "t.csv", "format": "csv", "sequence": sequence})
    rows = _choose(df, cfg)
    picked = df.iloc[rows.positions]
    assert rows.method == "whole sequences by k" and 50 < len(picked) <= 60
    whole = df[df["k"].isin(picked["k"])]
    assert len(whole) == len(picked)  # every entity drawn comes with all its rows


def test_relational_datasets_refuse_max_rows():
    block = small_block(
        "nyc",
        fit={"synthesizer": "hma", "max_rows": 1000},
        source={
            "path": "nyc",
            "format": "csv",
            "main_table": "flights",
            "tables": {"planes": {"file": "planes.csv", "primary_key": "tailnum"}, "flights": {"file": "f.csv"}},
            "relationships": [
                {"parent": "planes", "child": "flights", "parent_key": "tailnum", "child_key": "tailnum"}
            ],
        },
    )
    with pytest.raises(ConfigError, match=r"fit\.max_rows: not supported for relational datasets"):
        build_dataset("nyc", block, defaults())


# --- the pipeline ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """600 hdma rows (480 train), fitted on 200 of them, released with generate.rows null."""
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    ws = tmp_path_factory.mktemp("maxrows")
    src = ws / "hdma.csv"
    pd.read_csv(HDMA).head(600).to_csv(src, index=False)
    block = small_block(src, "deny", fit={"max_rows": 200}, generate={"rows": None})
    block["gates"]["utility_gap_max"] = 1.0  # a copula of 200 rows: the mechanics are tested, not the fidelity
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    with clean_env():
        run_stages(ws, "hdma")
    return ws


def test_fit_records_the_subsample_and_the_release_manifest_carries_it(released):
    from pipelines.lineage import lineage
    from pipelines.lineage.text import render

    p = paths_for("hdma", released)
    fit, ingest = read_json(p.record("fit")), read_json(p.record("ingest"))
    train = pd.read_parquet(p.train)
    cfg = load(released, "hdma")
    expected = fit_rows.choose(train, cfg, tableset.layout(cfg), 200)
    sub = fit["subsample"]
    assert sub == {**expected.record(), "train_rows": ingest["train"]["rows"]}
    assert (sub["fit_rows"], sub["max_rows"], sub["method"]) == (200, 200, "stratified by deny")
    assert sum(fit["domain"]["deny"]["counts"]) == 200  # the model's domain is what it saw
    assert read_json(p.manifest)["model"]["subsample"] == sub
    assert read_json(p.record("generate"))["rows"] == ingest["train"]["rows"] == 480  # rows: null = train size
    text = render(lineage("hdma@latest", released, use_dvc=False))
    assert "fitted on 200 of 480 train rows (stratified by deny; fit.max_rows 200; positions sha256" in text


def test_the_same_seed_refits_on_the_same_rows_a_model_that_samples_the_same_rows(released, tmp_path):
    """SDV's pickles hold a random synthesizer id, so the model bytes differ; what it learned does not."""
    from pipelines import engines

    p = paths_for("hdma", released)
    first = read_json(p.record("fit"))
    kept = tmp_path / "first.pkl"
    kept.write_bytes(p.model.read_bytes())
    with clean_env():
        run_stages(released, "hdma", ("fit",))
    again = read_json(p.record("fit"))
    assert again["subsample"] == first["subsample"]
    engine = engines.get("gaussian_copula")
    request = engines.SampleRequest(300, 11, "hdma", 480)
    old = engine.sample(engine.load(kept, first["model"]["sha256"], "first"), request)["hdma"]
    new = engine.sample(engine.load(p.model, sha256_file(p.model), "again"), request)["hdma"]
    pd.testing.assert_frame_equal(old, new)
