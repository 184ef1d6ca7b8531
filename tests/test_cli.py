"""The `synthgate` command: contract bootstrap, exit codes, messages."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.cli import main
from tests.conftest import HDMA, small_block


def test_expectations_init_never_overwrites_without_force(make_workspace, capsys, monkeypatch):
    ws = make_workspace(init=False, hdma=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)
    assert main(["expectations", "init", "hdma"]) == 0
    suite = ws / "expectations" / "hdma.raw.json"
    assert "wrote   expectations/hdma.raw.json" in capsys.readouterr().out
    edited = json.loads(suite.read_text())
    edited["expectations"] = edited["expectations"][:3]
    suite.write_text(json.dumps(edited))
    assert main(["expectations", "init", "hdma"]) == 0
    assert "kept    expectations/hdma.raw.json" in capsys.readouterr().out
    assert json.loads(suite.read_text()) == edited
    assert main(["expectations", "init", "hdma", "--force"]) == 0
    assert len(json.loads(suite.read_text())["expectations"]) > 3


def test_bootstrapped_contracts_cover_schema_nulls_ranges_categories_rows(make_workspace):
    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    raw = json.loads((ws / "expectations" / "hdma.raw.json").read_text())
    kinds = {e["type"] for e in raw["expectations"]}
    assert {
        "expect_table_row_count_to_be_between",
        "expect_table_columns_to_match_ordered_list",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
    } <= kinds
    deny = next(
        e
        for e in raw["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "deny"
    )
    assert deny["kwargs"]["value_set"] == ["no", "yes"]
    meta = json.loads((ws / "metadata" / "hdma.json").read_text())
    assert meta["tables"]["hdma"]["columns"]["deny"]["sdtype"] == "categorical"


def test_bad_config_exits_2_naming_the_key(make_workspace, capsys, monkeypatch):
    ws = make_workspace(init=False, hdma=small_block(HDMA, "deny", generate={"rows": -1}))
    monkeypatch.chdir(ws)
    assert main(["ingest", "hdma"]) == 2
    assert "datasets.hdma.generate.rows" in capsys.readouterr().err


def test_bad_overrides_exit_2(make_workspace, capsys, monkeypatch):
    ws = make_workspace(init=False, hdma=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)
    assert main(["ingest", "hdma", "--overrides", "{not json"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["ingest", "hdma", "--overrides", '{"generate": {"rows": 0}}']) == 2
    assert "generate.rows" in capsys.readouterr().err


def test_missing_source_exits_2_naming_file(make_workspace, tmp_path, capsys, monkeypatch):
    ws = make_workspace(init=False, hdma=small_block(tmp_path / "gone.csv", "deny"))
    monkeypatch.chdir(ws)
    assert main(["ingest", "hdma"]) == 2
    err = capsys.readouterr().err
    assert "gone.csv" in err and "source file not found" in err
    assert not os.path.exists(ws / "data")


def test_summary_without_release(make_workspace, capsys, monkeypatch):
    ws = make_workspace(init=False, hdma=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)
    assert main(["summary", "hdma"]) == 0
    assert "no release yet" in capsys.readouterr().out


def test_unreachable_tracking_server_exits_6_before_any_work(make_workspace, capsys, monkeypatch):
    """No minutes of MLflow retries: the server is checked once, with a short timeout."""
    from pipelines.paths import paths_for

    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ops:s3cret@127.0.0.1:9")
    assert main(["ingest", "hdma"]) == 6
    err = capsys.readouterr().err
    assert "MLflow tracking server http://ops:***@127.0.0.1:9 is not reachable" in err and "s3cret" not in err
    assert not paths_for("hdma", ws).record("ingest").exists()


@pytest.mark.parametrize(
    ("raised", "code", "says"),
    [
        (OSError(28, "No space left on device", "data/raw/hdma/snapshot.parquet"), 5, "out of disk space writing"),
        (MemoryError(), 5, "out of memory: lower generate.shard_rows"),
    ],
)
def test_disk_full_and_out_of_memory_are_typed(make_workspace, capsys, monkeypatch, raised, code, says):
    from pipelines import ingest

    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)

    def fail(cfg, paths):
        raise raised

    monkeypatch.setattr(ingest, "run", fail)
    assert main(["ingest", "hdma"]) == code
    assert says in capsys.readouterr().err


def test_a_bug_is_not_disguised(make_workspace, monkeypatch):
    from pipelines import ingest

    ws = make_workspace(hdma=small_block(HDMA, "deny"))
    monkeypatch.chdir(ws)
    monkeypatch.setattr(ingest, "run", lambda cfg, paths: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["ingest", "hdma"])


def test_version_names_the_package_and_commit(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("synthgate ")


def test_output_piped_to_head_ends_quietly():
    """`synthgate engines | head -1`: the reader leaves early; no BrokenPipe traceback, exit 141."""
    import subprocess
    import sys

    script = f"set -o pipefail; {sys.executable} -m pipelines engines | head -1"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("engine") and "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr
    assert out.returncode in (0, 141), out.stderr
