"""ingest: strict reading, the raw contract, normalisation and the split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines import ingest, tableset
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.paths import paths_for
from tests.conftest import HDMA, WEATHER, load, run_stages, small_block

HEADER = "a,b,c\n"


def _csv_ws(make_workspace, tmp_path: Path, text: str, init: bool = False, **block_kw) -> Path:
    src = tmp_path / "src.csv"
    src.write_text(text)
    return make_workspace(init=init, toy=small_block(src, **block_kw))


def _ingest(ws: Path, name: str = "toy") -> dict:
    return run_stages(ws, name, ("ingest",))


def _nothing_written(ws: Path, name: str = "toy") -> None:
    p = paths_for(name, ws)
    assert not p.snapshot.exists() and not p.train.exists() and not p.record("ingest").exists()


def test_happy_path_hdma(make_workspace):
    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    record = _ingest(ws, "hdma")
    p = paths_for("hdma", ws)
    train, holdout = pd.read_parquet(p.train), pd.read_parquet(p.holdout)
    assert record["source"]["rows"] == 2381 == len(train) + len(holdout)
    assert "Unnamed: 0" not in train.columns and "" not in train.columns  # R row index dropped
    assert record["split"]["stratified_by"] == "deny"
    # stratified: the deny share is the same on both sides (within one row)
    assert abs((train.deny == "yes").mean() - (holdout.deny == "yes").mean()) < 0.01
    # the holdout never overlaps the train split
    keys = lambda df: set(map(tuple, df.astype(str).to_numpy()))
    assert not keys(train) & keys(holdout)
    assert record["contract"]["success"] is True


def test_split_is_deterministic_and_seeded():
    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    a = tableset.split_frame(df, 0.2, 5, "deny")
    b = tableset.split_frame(df, 0.2, 5, "deny")
    c = tableset.split_frame(df, 0.2, 6, "deny")
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not a[1].equals(c[1])


def test_snapshot_bytes_are_stable(make_workspace, tmp_path):
    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    first = _ingest(ws, "hdma")
    second = _ingest(ws, "hdma")
    for key in ("snapshot", "train", "holdout"):
        assert first[key]["sha256"] == second[key]["sha256"]


def test_normalise_parses_iso_datetimes_and_keeps_nulls(make_workspace):
    ws = make_workspace(weather=small_block(WEATHER))
    _ingest(ws, "weather")
    snap = pd.read_parquet(paths_for("weather", ws).snapshot)
    assert str(snap["time_hour"].dtype) == "datetime64[ns]"
    assert snap["time_hour"].iloc[0] == pd.Timestamp("2013-01-01 06:00:00")
    assert snap["wind_gust"].isna().any()  # NA kept as missing, not dropped


def test_missing_source_file(make_workspace, tmp_path):
    ws = make_workspace(init=False, toy=small_block(tmp_path / "nope.csv"))
    with pytest.raises(InvalidInputError, match=r"nope\.csv.*\n.*source file not found"):
        ingest.prepare(load(ws, "toy"), paths_for("toy", ws))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"file is empty \(0 bytes\)"),
        (HEADER, "header but no data rows"),
        (HEADER + "1,2,3\n4,5\n6,7,8\n", r"line 3: 2 fields, the header has 3"),
        (HEADER + "1,2,3\n4,5,6,7\n", r"line 3: 4 fields, the header has 3"),
        (HEADER + '1,"2,3\n4,5,6\n', r"line \d+: .*fields|unexpected end|EOF"),
        ("a;b;c\n1;2;3\n4;5;6\n", r"delimited by ';'.*\n.*source.delimiter"),
    ],
    ids=["empty", "header-only", "short-row", "long-row", "unclosed-quote", "wrong-delimiter"],
)
def test_bad_csv_is_rejected_naming_the_file(make_workspace, tmp_path, text, message):
    ws = _csv_ws(make_workspace, tmp_path, text)
    with pytest.raises(InvalidInputError, match=message) as err:
        ingest.prepare(load(ws, "toy"), paths_for("toy", ws))
    assert "src.csv" in str(err.value)


def test_bad_encoding_names_the_setting(make_workspace, tmp_path):
    src = tmp_path / "src.csv"
    src.write_bytes(b"a,b\n\xe9t\xe9,2\n" * 3)
    ws = make_workspace(init=False, toy=small_block(src))
    with pytest.raises(InvalidInputError, match=r"not valid utf-8 at byte .*\n.*source.encoding"):
        ingest.prepare(load(ws, "toy"), paths_for("toy", ws))


def _drifted(make_workspace, tmp_path, mutate) -> tuple[Path, Path]:
    src = tmp_path / "hdma.csv"
    df = pd.read_csv(HDMA)
    df.to_csv(src, index=False)
    ws = make_workspace(hdma=small_block(src, "deny"))  # contract bootstrapped from the good file
    mutate(df).to_csv(src, index=False)
    return ws, src


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.assign(extra=1), r"column 'extra' is not in the contract \(added\)"),
        (lambda df: df.drop(columns=["lvr"]), r"column 'lvr' is missing \(removed\)"),
        (lambda df: df.assign(ccs=df.ccs.astype(str) + "x"), r"column 'ccs' has type string"),
        (
            lambda df: df.assign(deny=df.deny.replace({"yes": "maybe"})),
            r"column 'deny': expect_column_values_to_be_in_set",
        ),
    ],
    ids=["added", "removed", "retyped", "new-category"],
)
def test_contract_drift_is_rejected_and_nothing_written(make_workspace, tmp_path, mutate, message):
    ws, _ = _drifted(make_workspace, tmp_path, mutate)
    with pytest.raises(InvalidInputError, match=message) as err:
        _ingest(ws, "hdma")
    assert "hdma.raw.json" in str(err.value)
    _nothing_written(ws, "hdma")


def test_failed_refresh_keeps_previous_snapshot(make_workspace, tmp_path):
    src = tmp_path / "hdma.csv"
    pd.read_csv(HDMA).to_csv(src, index=False)
    ws = make_workspace(hdma=small_block(src, "deny"))
    before = _ingest(ws, "hdma")
    pd.read_csv(HDMA).assign(extra=1).to_csv(src, index=False)
    with pytest.raises(InvalidInputError):
        _ingest(ws, "hdma")
    from pipelines.io import sha256_file

    assert sha256_file(paths_for("hdma", ws).snapshot) == before["snapshot"]["sha256"]


def test_all_null_column_is_named(make_workspace, tmp_path):
    ws = _csv_ws(make_workspace, tmp_path, "a,b,c\n" + "".join(f"{i},,x\n" for i in range(60)))
    with pytest.raises(InvalidInputError, match=r"column 'b' is entirely null \(drop it with ingest.drop_columns\)"):
        ingest.prepare(load(ws, "toy"), paths_for("toy", ws))


def test_drop_columns_must_exist(make_workspace, tmp_path):
    ws = _csv_ws(make_workspace, tmp_path, "a,b\n" + "1,2\n" * 60, ingest={"drop_columns": ["zz"]})
    with pytest.raises(ConfigError, match=r"ingest.drop_columns: no column 'zz'"):
        ingest.prepare(load(ws, "toy"), paths_for("toy", ws))


def test_target_must_exist(make_workspace, tmp_path):
    ws = make_workspace(init=False, hdma=small_block(HDMA, "denied"))
    with pytest.raises(InvalidInputError, match=r"target column 'denied' \(datasets.hdma.target\) does not exist"):
        ingest.prepare(load(ws, "hdma"), paths_for("hdma", ws))


def test_missing_contract_says_how_to_create_it(make_workspace):
    ws = make_workspace(init=False, hdma=small_block(HDMA, "deny"))
    with pytest.raises(InvalidInputError, match=r"synthgate expectations init hdma"):
        _ingest(ws, "hdma")


def test_parquet_and_sql_sources(make_workspace, tmp_path):
    import sqlalchemy as sa

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    pq = tmp_path / "hdma.parquet"
    df.to_parquet(pq, index=False)
    db = tmp_path / "loans.db"
    df.to_sql("loans", sa.create_engine(f"sqlite:///{db}"), index=False)
    query = tmp_path / "loans.sql"
    query.write_text("SELECT * FROM loans;\n")
    ws = make_workspace(
        pq=small_block(pq, "deny", source={"path": str(pq), "format": "parquet"}),
        sql=small_block(query, "deny", source={"path": str(query), "format": "sql", "url": "env:LOANS_URL"}),
        init=False,
    )
    a = ingest.prepare(load(ws, "pq"), paths_for("pq", ws))
    import os

    os.environ["LOANS_URL"] = f"sqlite:///{db}"
    try:
        b = ingest.prepare(load(ws, "sql"), paths_for("sql", ws))
    finally:
        del os.environ["LOANS_URL"]
    pd.testing.assert_frame_equal(a["tables"]["pq"], b["tables"]["sql"], check_dtype=False)
    with pytest.raises(ConfigError, match="environment variable LOANS_URL is not set"):
        ingest.prepare(load(ws, "sql"), paths_for("sql", ws))


def test_a_source_outside_the_repository_is_refused(make_workspace, monkeypatch, tmp_path):
    """/etc/passwd must not end up in a suite meant for git: sources are confined unless allowed."""
    from pipelines.errors import InvalidInputError
    from pipelines.sources import ROOTS_ENV

    outside = tmp_path / "elsewhere" / "people.csv"
    outside.parent.mkdir()
    outside.write_text("user,uid\nroot,0\n" + "".join(f"u{i},{i}\n" for i in range(100)))
    monkeypatch.setenv(ROOTS_ENV, "")
    ws = make_workspace(leak=small_block(outside), init=False)
    with pytest.raises(InvalidInputError, match=r"(?s)outside the repository .* SYNTHGATE_SOURCE_ROOTS"):
        run_stages(ws, "leak", ("ingest",))
    link = ws / "sources" / "passwd.csv"  # a symlink inside the repository pointing out is refused too
    link.parent.mkdir()
    link.symlink_to(outside)
    ws2 = make_workspace(root=ws, leak=small_block("sources/passwd.csv"), init=False)
    with pytest.raises(InvalidInputError, match="outside the repository"):
        run_stages(ws2, "leak", ("ingest",))
    monkeypatch.setenv(ROOTS_ENV, str(outside.parent))  # allowed explicitly
    ws3 = make_workspace(root=tmp_path / "ws3", leak=small_block(outside))
    run_stages(ws3, "leak", ("ingest",))


def test_a_compressed_source_cannot_expand_without_bound(make_workspace, tmp_path):
    """A small .gz that expands past ingest.max_source_mb is refused while it is being expanded."""
    import gzip

    from pipelines.errors import InvalidInputError

    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wt") as f:
        f.write("a,b\n")
        for _ in range(3 * 2**16):
            f.write("1,2\n" * 8)  # about 6 MB of text, a few KB on disk
    assert bomb.stat().st_size < 200_000
    ws = make_workspace(bomb=small_block(bomb, ingest={"max_source_mb": 1}), init=False)
    with pytest.raises(InvalidInputError, match=r"decompresses to more than 1 MB \(ingest.max_source_mb\)"):
        run_stages(ws, "bomb", ("ingest",))
