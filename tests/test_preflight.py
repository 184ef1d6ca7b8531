"""Pre-flight: a condition or class that never occurs, or a column the source lacks, is refused
before any stage runs (it used to surface at generate, after fit had registered a model version).

Every source kind (CSV, parquet, a SQL query), every runner's entry (`synthgate run`, the DAG's
`start` task) and the stages that used to learn of it late (ingest on the source, fit on the
train split, before fitting).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines import preflight
from pipelines.errors import ConfigError
from pipelines.paths import paths_for
from tests.conftest import HDMA, load, run_stages, small_block

BAD_VALUE = (
    "datasets.hdma.generate.conditions.deny: 'maybe' never occurs in {src} (the source); values are ['no', 'yes']"
)


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "src" / "hdma.csv"
    path.parent.mkdir()
    shutil.copyfile(HDMA, path)
    return path


def _problems(ws: Path, overrides: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        preflight.check(load(ws, "hdma", overrides), ws)
    return err.value.problems


def test_conditions_and_classes_are_checked_against_the_source(source, make_workspace):
    ws = make_workspace(init=False, hdma=small_block(source, "deny", sensitive=["black"]))
    preflight.check(load(ws, "hdma"), ws)  # target and sensitive exist: nothing to say
    assert _problems(ws, {"generate": {"conditions": {"deny": "maybe", "denied": "yes"}}}) == [
        f"datasets.hdma.generate.conditions.denied: no column 'denied' in {source}; its columns: "
        "['dir', 'hir', 'lvr', 'ccs', 'mcs', 'pbcr', 'dmi', 'self', 'single', 'uria', 'comdominiom', 'black', "
        "'deny']",
        BAD_VALUE.format(src=source),
    ]
    rebalance = {"blend": {"strategy": "rebalance", "shares": {"maybe": 0.5}}}
    assert _problems(ws, rebalance) == [
        "datasets.hdma.blend.shares.maybe: class 'maybe' never occurs in column 'deny' (classes: ['no', 'yes'])"
    ]
    dropped = {"ingest": {"drop_columns": ["hir"]}, "generate": {"conditions": {"hir": 0.3}}}
    (problem,) = _problems(ws, dropped)
    assert problem.startswith(f"datasets.hdma.generate.conditions.hir: no column 'hir' in {source} (dropped by")
    numbers = {"generate": {"conditions": {"dir": "high"}}}  # a column of many numbers: its range is named
    assert _problems(ws, numbers) == [
        f"datasets.hdma.generate.conditions.dir: 'high' is outside the range of {source} (the source) [0.0, 3.0]"
    ]
    preflight.check(load(ws, "hdma", {"generate": {"conditions": {"deny": "yes"}}}), ws)  # a real value passes


def test_parquet_and_sql_sources_are_read_for_the_named_columns(tmp_path, make_workspace, monkeypatch):
    import sqlalchemy as sa

    frame = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    frame.to_parquet(tmp_path / "hdma.parquet")
    overrides = {"generate": {"conditions": {"deny": "maybe"}}}
    block = small_block(tmp_path / "hdma.parquet", "deny")
    block["source"]["format"] = "parquet"
    ws = make_workspace(init=False, hdma=block, root=tmp_path / "ws")
    assert _problems(ws, overrides) == [BAD_VALUE.format(src=tmp_path / "hdma.parquet")]

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hdma.db'}")
    frame.to_sql("loans", engine, index=False)
    (tmp_path / "ws" / "hdma.sql").write_text("SELECT * FROM loans;\n")
    monkeypatch.setenv("HDMA_DB", f"sqlite:///{tmp_path / 'hdma.db'}")
    block["source"] = {"path": "hdma.sql", "format": "sql", "url": "env:HDMA_DB"}
    ws = make_workspace(init=False, hdma=block, root=tmp_path / "ws")
    assert _problems(ws, overrides) == [BAD_VALUE.format(src="hdma.sql")]


def test_synthgate_run_refuses_before_any_stage(source, make_workspace, monkeypatch, capsys):
    from pipelines.cli import main

    ws = make_workspace(hdma=small_block(source, "deny"))
    monkeypatch.chdir(ws)
    assert main(["run", "hdma", "--overrides", '{"generate": {"conditions": {"deny": "maybe"}}}']) == 2
    err = capsys.readouterr().err
    assert BAD_VALUE.format(src=source) in err
    assert not (ws / "runs").exists() and not (ws / "mlflow.db").exists() and not (ws / "data").exists()


def test_ingest_and_fit_check_before_writing_or_fitting(source, make_workspace):
    """DVC runs stages one by one: ingest checks the source, fit the train split (a changed
    condition re-runs fit when fit's own params changed too), before any model is registered."""
    ws = make_workspace(hdma=small_block(source, "deny"))
    bad = {"generate": {"conditions": {"deny": "maybe"}}}
    with pytest.raises(ConfigError, match=r"'maybe' never occurs in .*hdma\.csv \(the source\)"):
        run_stages(ws, "hdma", ("ingest",), bad)
    assert not paths_for("hdma", ws).record("ingest").exists()
    run_stages(ws, "hdma", ("ingest",))
    with pytest.raises(ConfigError, match=r"'maybe' never occurs in the train split; values are \['no', 'yes'\]"):
        run_stages(ws, "hdma", ("fit",), bad)
    assert not paths_for("hdma", ws).model.exists() and not paths_for("hdma", ws).record("fit").exists()
