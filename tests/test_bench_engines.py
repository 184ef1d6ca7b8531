"""benchmarks/engines.py: the engine comparison's main path on a tiny slice, and its figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.errors import ConfigError
from pipelines.metrics import rank_correlation_error

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_engines", REPO / "benchmarks" / "engines.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_engines"] = module
    spec.loader.exec_module(module)
    return module


def test_rank_correlation_error_finds_the_lost_pair():
    real = pd.DataFrame({"a": range(100), "b": [2 * i for i in range(100)], "c": [i % 7 for i in range(100)]})
    assert rank_correlation_error(real, real, ["a", "b", "c"])["mae"] == pytest.approx(0.0)
    lost = real.assign(b=real["b"].sample(frac=1.0, random_state=0).to_numpy())  # a-b trend shuffled away
    out = rank_correlation_error(real, lost, ["a", "b", "c"])
    assert out["pairs"] == 3
    assert out["worst"]["columns"] == ["a", "b"]
    assert out["worst"]["real"] == pytest.approx(1.0)
    assert abs(out["worst"]["synthetic"]) < 0.3
    assert out["mae"] > 0.25
    constant = real.assign(c=1)  # no real correlation to keep: not compared
    assert rank_correlation_error(constant, real, ["a", "c"]) == {"mae": None, "pairs": 0, "worst": None}


def test_every_figure_on_a_slice(bench, tmp_path, capsys):
    out = tmp_path / "engines.json"
    argv = ["--datasets", "hdma", "--rows", "300", "--engines", "gaussian_copula", "--epochs", "1"]
    report = bench.main([*argv, "--json", str(out)])
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["datasets"][0]["name"] == "hdma"
    (dataset,) = report["datasets"]
    assert (dataset["source_rows"], dataset["rows_limit"]) == (2381, 300)
    assert dataset["train_rows"] + dataset["holdout_rows"] == 300
    assert [r["engine"] for r in dataset["results"]] == ["gaussian_copula"]
    for r in dataset["results"]:
        assert "error" not in r, r.get("stderr_tail")
        f = r["figures"]
        assert r["synthetic_rows"] == dataset["train_rows"]
        assert r["fit_s"] > 0 and r["sample_s"] > 0
        assert 150 < r["peak_rss_mb"] < 8000
        assert 0.3 < f["quality_all_pairs"] <= 1.0
        assert f["pairs_scored"] == 13 * 12 // 2  # every pair of hdma's 13 learned columns
        assert 0.0 <= f["worst_column_score"] <= f["column_shapes_mean"] <= 1.0
        assert 0.0 <= f["spearman_mae"] <= 2.0
        assert 0.0 <= f["utility"]["tstr"] <= 1.0 and 0.5 < f["utility"]["trtr"] <= 1.0
        for share in ("exact_copy_share", "holdout_exact_copy_share", "dcr_low_tail_share"):
            assert 0.0 <= f[share] <= 1.0
        assert {g["name"] for g in f["gates"]} >= {"quality", "column_shape", "pair_trend", "exact_copies", "utility"}
    assert dataset["results"][0]["params"] == {}  # --epochs is for the neural engines only
    header = next(line for line in printed.splitlines() if line.startswith("| engine"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.COLUMNS)
    (row,) = [line for line in printed.splitlines() if line.startswith("| gaussian_copula")]
    assert row.count("|") == len(bench.COLUMNS) + 1 and "failed" not in row


def test_epoch_limits_go_under_each_engines_own_name(bench):
    from pipelines import engines

    wanted = {"gaussian_copula": {}, "ctgan": {"epochs": 3}, "tvae": {"epochs": 3}, "tabular_argn": {"max_epochs": 3}}
    assert {n: bench.engine_params(engines.get(n), {"": 3}) for n in wanted} == wanted
    assert bench.engine_params(engines.get("ctgan"), {}) == {}
    epochs = bench.parse_args(["--epochs", "100,tabular_argn=10"]).epochs
    assert bench.engine_params(engines.get("tabular_argn"), epochs) == {"max_epochs": 10}
    assert bench.engine_params(engines.get("tvae"), epochs) == {"epochs": 100}


def test_engines_are_chosen_by_what_the_dataset_is(bench):
    from pipelines.tableset import Layout

    single, tables = Layout(("t",), "t", single=True), Layout(("a", "b"), "b", single=False)
    chosen, _ = bench.select_engines(single, None)
    assert "gaussian_copula" in [e.info.name for e in chosen] and "hma" not in [e.info.name for e in chosen]
    chosen, skipped = bench.select_engines(tables, ["hma", "gaussian_copula"])
    assert [e.info.name for e in chosen] == ["hma"]
    assert skipped == ["gaussian_copula: skipped, it does not fit a table set with keys"]
    with pytest.raises(ConfigError, match="unknown engine 'nope'"):
        bench.select_engines(single, ["nope"])


def test_a_csv_is_described_like_expectations_init_does(bench, tmp_path):
    csv = tmp_path / "Small Diamonds.csv"
    pd.read_csv(REPO / "sources" / "diamonds.csv", index_col=0).head(200).to_csv(csv, index=False)
    args = bench.parse_args([str(csv), "--target", "price"])
    prep = bench.prepare(str(csv), args, tmp_path / "scratch")
    assert prep.name == "small_diamonds"
    assert prep.cfg.target == "price"
    assert len(prep.train[prep.name]) + len(prep.holdout[prep.name]) == 200
    sdtypes = {c: v["sdtype"] for c, v in prep.metadata["tables"][prep.name]["columns"].items()}
    assert sdtypes["cut"] == "categorical" and sdtypes["carat"] == "numerical"


def test_bad_input_is_named(bench, tmp_path):
    args = bench.parse_args(["--rows", "100"])
    with pytest.raises(ConfigError, match="no_such_data"):
        bench.prepare("no_such_data", args, tmp_path)
    with pytest.raises(ConfigError, match="table set"):
        bench.prepare("nycflights13", args, tmp_path)
    for bad in (["--epochs", "0"], ["--epochs", "ctgan=x"], ["--rows", "-1"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
