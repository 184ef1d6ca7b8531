"""PII protection on the real HDMA table with realistic identifier columns added by the test.

Happy path: identifiers are detected, never learned, replaced by Faker values that never equal a
real one, and the release passes the PII replay gate. Failure path: a release that leaks a
single real value fails the gate (and one built without protection is blocked). Bad input: a
PII column that is also the target, a declared column that does not exist, an unknown locale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipelines import pii
from pipelines.config import PiiConfig
from pipelines.contracts import PROVENANCE
from pipelines.errors import ConfigError, GateFailed, InvalidInputError
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, HDMA, load, run_stages, small_block

PII_COLUMNS = {
    "full_name": "name",
    "email": "email",
    "phone": "phone_number",
    "ssn": "ssn",
    "home_address": "address",
    "customer_id": "id",
}


def _with_pii(dest: Path, rows: int = 2381, seed: int = 2024) -> Path:
    """The first `rows` real HDMA rows plus realistic identifier columns (a different Faker seed
    and locale mix than any replacement the pipeline draws)."""
    from faker import Faker

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"], errors="ignore").head(rows)
    fake = Faker(["en_US", "en_GB"])
    fake.seed_instance(seed)
    df.insert(0, "customer_id", [fake.bothify("CU-######") for _ in range(rows)])
    df["full_name"] = [fake.name() for _ in range(rows)]
    df["email"] = [fake.email() for _ in range(rows)]
    df["phone"] = [fake["en_US"].phone_number() for _ in range(rows)]
    df["ssn"] = [fake["en_US"].ssn() for _ in range(rows)]
    df["home_address"] = [fake.address().replace("\n", ", ") for _ in range(rows)]
    df.to_csv(dest, index=False)
    return dest


@pytest.fixture(scope="module")
def pii_csv(tmp_path_factory) -> Path:
    return _with_pii(tmp_path_factory.mktemp("pii") / "hdma_pii.csv")


@pytest.fixture(scope="module")
def released(pii_csv, tmp_path_factory) -> Path:
    """One full pipeline run with PII protection (augment, so real rows are pseudonymised too)."""
    ws = tmp_path_factory.mktemp("ws_pii")
    # 600 rows: GaussianCopula's utility gap is noisy (0.22 here with hdma's few-valued columns ordinal)
    gates = {"sample_rows": 400, "minority_recall_ratio_min": 0.0, "utility_gap_max": 0.3, **FLOORS_OFF}
    block = small_block(
        pii_csv, "deny", generate={"rows": 600}, blend={"strategy": "augment", "real_ratio": 0.25}, gates=gates
    )
    _init(ws, {"hdma_pii": block})
    run_stages(ws, "hdma_pii")
    return ws


def _init(ws: Path, datasets: dict) -> None:
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from tests.conftest import defaults

    ws.mkdir(parents=True, exist_ok=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": datasets}))
    params = load_params(ws / "params.yaml")
    for name in datasets:
        list(init_contracts(params.dataset(name), paths_for(name, ws)))


def _real(pii_csv: Path) -> pd.DataFrame:
    return pd.read_csv(pii_csv)


# --- detection ----------------------------------------------------------------------------------


def test_detection_finds_identifiers_by_name_and_values(pii_csv):
    df = _real(pii_csv)
    found = {c: pii.detect_column(c, df[c]) for c in df.columns}
    assert {c: hit[0] for c, hit in found.items() if hit} == PII_COLUMNS
    # by values alone, whatever the column is called
    renamed = df.rename(columns={"email": "contact", "ssn": "field_7"})
    assert pii.detect_column("contact", renamed["contact"])[0] == "email"
    assert pii.detect_column("field_7", renamed["field_7"])[0] == "ssn"


def test_detection_leaves_real_tables_alone():
    for path in (HDMA, Path(HDMA).with_name("diamonds.csv")):
        df = pd.read_csv(path, nrows=3000)
        assert [c for c in df.columns if pii.detect_column(c, df[c])] == []
    # a "name" column of organisations is not a person's name
    orgs = pd.Series(["Endeavor Air Inc.", "American Airlines Inc.", "Lansdowne Airport", "JetBlue Airways"])
    assert pii.detect_column("name", orgs) is None


def test_replacements_are_locale_aware_reproducible_and_never_real(pii_csv):
    real = pii.real_values([_real(pii_csv)], ["full_name"])
    a = pii.fake_values("name", 300, seed=5, locale="en_US", avoid=real)
    assert a == pii.fake_values("name", 300, seed=5, locale="en_US", avoid=real)
    assert not {pii.normalise_value(v) for v in a} & real
    german = pii.fake_values("address", 20, seed=5, locale="de_DE")
    assert all(re.search(r"\b\d{5} ", v) for v in german)  # German postcodes
    # a tiny value space: replacements still avoid every real value
    surnames = pii.fake_values("last_name", 50, seed=1, locale="en_US")
    avoid = {pii.normalise_value(v) for v in surnames}
    again = pii.fake_values("last_name", 50, seed=1, locale="en_US", avoid=avoid)
    assert not {pii.normalise_value(v) for v in again} & avoid
    # pseudonyms: one fake per real value, the same value always gets the same fake
    s = pd.Series(["ann@x.org", "bob@y.org", "ann@x.org", None])
    out = pii.pseudonymise(s, "email", seed=3, locale="en_US", avoid={"ann@x.org", "bob@y.org"})
    assert out[0] == out[2] and out[0] != out[1] and out[3] is None
    assert not set(out.dropna()) & {"ann@x.org", "bob@y.org"}


# --- happy path ---------------------------------------------------------------------------------


def test_release_has_fake_identifiers_only_and_passes_the_replay_gate(released, pii_csv):
    p = paths_for("hdma_pii", released)
    manifest = read_json(p.manifest)
    gates = {g["name"]: g for g in manifest["gates"]}
    assert gates["pii_replay"]["passed"] and gates["pii_replay"]["value"] == 0
    release = pd.read_parquet(p.release_file)
    real = _real(pii_csv)
    assert list(release.columns) == [*real.columns, PROVENANCE]  # same columns, same order
    for col in PII_COLUMNS:
        values = {pii.normalise_value(v) for v in release[col].dropna()}
        assert values and not values & pii.real_values([real], [col]), col
    # real rows were added, and their identifiers pseudonymised too
    real_rows = release[release[PROVENANCE] == "real"]
    assert len(real_rows) > 0
    assert not set(real_rows["email"].str.casefold()) & set(real["email"].str.casefold())
    fit = read_json(p.record("fit"))
    assert {c["column"]: c["kind"] for c in fit["pii"]["columns"]} == PII_COLUMNS
    assert fit["learned_columns"] == [c for c in real.columns if c not in PII_COLUMNS]


def test_identifiers_are_never_learned_nor_written_to_repo_files(released, pii_csv):
    p = paths_for("hdma_pii", released)
    real = _real(pii_csv)
    model = p.model.read_bytes()
    files = {
        path: path.read_text()
        for path in (p.metadata, p.model_metadata, p.raw_suite, p.release_suite, p.report_html, p.validation)
    }
    for col in ("email", "phone", "ssn", "customer_id"):
        for value in real[col].head(200):
            assert value.encode() not in model, (col, "model")
            for path, text in files.items():
                assert value not in text, (col, path.name)
    meta = json.loads(p.metadata.read_text())["tables"]["hdma_pii"]["columns"]
    assert meta["phone"] == {"sdtype": "phone_number", "pii": True}


def test_policy_drop_removes_the_columns(pii_csv, tmp_path):
    ws = tmp_path / "ws"
    # no target: this is about the columns, and 300 GaussianCopula rows miss the utility gate
    # (docs/gates.md, "Type fidelity")
    block = small_block(pii_csv, None, fit={"pii": {"policy": "drop"}}, generate={"rows": 300})
    _init(ws, {"hdma_pii": block})
    run_stages(ws, "hdma_pii")
    release = pd.read_parquet(paths_for("hdma_pii", ws).release_file)
    assert not set(PII_COLUMNS) & set(release.columns)
    assert len(release) == 300


# --- failing gate -------------------------------------------------------------------------------


def test_one_leaked_value_fails_the_replay_gate(released, pii_csv):
    from sdv.metadata import Metadata

    from pipelines import validate
    from pipelines.contracts import load_suite

    p = paths_for("hdma_pii", released)
    cfg = load(released, "hdma_pii")
    blended = pd.read_parquet(p.blended)
    train, holdout = pd.read_parquet(p.train), pd.read_parquet(p.holdout)
    leaky = blended.copy()
    leaky.loc[7, "email"] = holdout.loc[0, "email"]  # one real (holdout) e-mail address
    outcome = validate.evaluate(
        cfg,
        leaky,
        train,
        holdout,
        Metadata.load_from_dict(read_json(p.model_metadata)),
        load_suite(p.release_suite),
        read_json(p.record("fit")),
    )
    g = {x.name: x for x in outcome["gates"]}["pii_replay"]
    assert not g.passed and g.value == 1
    assert "'email' (1)" in g.explanation and holdout.loc[0, "email"] not in g.explanation


def test_release_without_protection_is_blocked(pii_csv, tmp_path):
    """Detection off and nothing declared: SDV's own handling replays real names, addresses and
    IDs; the gate (which always detects) blocks the release."""
    ws = tmp_path / "ws"
    block = small_block(pii_csv, "deny", fit={"pii": {"detect": False}}, generate={"rows": 300})
    _init(ws, {"hdma_pii": block})
    with pytest.raises(GateFailed, match="pii_replay"):
        run_stages(ws, "hdma_pii")
    validation = read_json(paths_for("hdma_pii", ws).validation)
    g = {x["name"]: x for x in validation["gates"]}["pii_replay"]
    assert not g["passed"] and g["value"] > 0
    assert {"full_name", "home_address"} <= set(validation["figures"]["pii"]["by_column"])
    assert not paths_for("hdma_pii", ws).manifest.exists()


# --- bad input ----------------------------------------------------------------------------------


def test_declared_pii_target_is_a_config_error(pii_csv, make_workspace):
    block = small_block(pii_csv, "deny", fit={"pii": {"columns": {"deny": "id"}}})
    with pytest.raises(ConfigError, match=r"fit\.pii\.columns: 'deny' is the target"):
        make_workspace(hdma_pii=block)


def test_detected_pii_target_is_named(pii_csv, make_workspace):
    with pytest.raises(InvalidInputError, match=r"target column 'email' is PII"):
        make_workspace(hdma_pii=small_block(pii_csv, "email"))
    df = _real(pii_csv)
    with pytest.raises(InvalidInputError, match=r"fit\.pii\.columns names 'mail'"):
        pii.plan_for(df, PiiConfig(columns={"mail": "email"}))


def test_unknown_locale_is_rejected(pii_csv):
    with pytest.raises(ConfigError, match="no locale 'xx_XX'"):
        pii.fake_values("name", 3, seed=1, locale="xx_XX")
    with pytest.raises(ValueError, match="locale"):
        PiiConfig(locale="english")


# --- numbers stay numbers -----------------------------------------------------------------------


def _with_numbers(dest: Path, rows: int = 2381) -> Path:
    """Real HDMA rows plus number columns named like PII: a US state code (1-56), a house number
    named `address`, a 10-digit `phone` stored as an integer, a 5-digit `zip` (declared below)."""
    import numpy as np

    rng = np.random.default_rng(11)
    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"], errors="ignore").head(rows)
    df["state"] = rng.integers(1, 57, rows)
    df["address"] = rng.integers(1, 9999, rows)
    df["phone"] = rng.integers(2_012_000_000, 9_899_999_999, rows)
    df["zip"] = rng.integers(10_000, 99_999, rows)
    df.to_csv(dest, index=False)
    return dest


def test_numbers_are_not_names_addresses_or_states(tmp_path):
    df = pd.read_csv(_with_numbers(tmp_path / "numbers.csv", 500))
    found = {c: pii.detect_column(c, df[c]) for c in df.columns}
    assert {c: hit[0] for c, hit in found.items() if hit} == {"phone": "phone_number"}  # numbers may be phones
    for name in ("address", "home_address", "street", "full_name", "email", "customer_id"):
        assert pii.detect_column(name, df["address"]) is None, name
    assert pii.detect_column("address", df["address"].astype(str)) is None  # digits as text: no letters
    ssn = pd.Series(range(100_000_000, 100_000_500))
    assert pii.detect_column("ssn", ssn)[0] == "ssn" and pii.detect_column("ssn", ssn // 1000) is None


def test_numeric_replacements_keep_dtype_and_shape_and_never_equal_a_real_value(tmp_path):
    df = pd.read_csv(_with_numbers(tmp_path / "numbers.csv", 500))
    plan = pii.plan_for(df, PiiConfig(columns={"zip": "address", "state": "address"}))
    cols = {c.column: c for c in plan.columns}
    assert cols["zip"].dtype == cols["phone"].dtype == "int64" and cols["zip"].shapes == (("99999", 1.0),)
    # 56 state codes leave too few other 1-2 digit numbers: dropped, with a note in the plan
    assert cols["state"].dropped and plan.dropped == ["state"] and "'state'" in plan.notes[0]
    assert pii.PiiPlan.from_dict(plan.to_dict()) == plan
    avoid = {c: pii.real_values([df], [c]) for c in plan.names}
    sampled = pii.apply_plan(df.drop(columns=plan.names), plan, 5, avoid, columns=list(df.columns))
    pseudonyms = pii.apply_plan(df, plan, 5, avoid, pseudonymous=True)
    for out in (sampled, pseudonyms):
        assert "state" not in out.columns and out["address"].equals(df["address"])
        for col, digits in (("zip", 5), ("phone", 10)):
            assert out[col].dtype == "int64" and (out[col].astype(str).str.len() == digits).all(), col
            assert not set(out[col].astype(str)) & avoid[col], col
    assert pseudonyms.groupby("zip")["zip"].size().max() == df.groupby("zip").size().max()  # one fake per value


def test_release_with_number_columns_named_like_pii_keeps_their_types(tmp_path):
    """State codes and house numbers are learned like any number; the phone numbers (integers) are
    replaced by 10-digit integers, a declared zip by 5-digit ones; every gate runs, none crashes."""
    ws = tmp_path / "ws"
    src = _with_numbers(tmp_path / "numbers.csv")
    block = small_block(src, None, fit={"pii": {"columns": {"zip": "address"}}}, generate={"rows": 300})
    _init(ws, {"numbers": block})
    run_stages(ws, "numbers")
    p = paths_for("numbers", ws)
    fit = read_json(p.record("fit"))
    assert [(c["column"], c["dtype"]) for c in fit["pii"]["columns"]] == [("phone", "int64"), ("zip", "int64")]
    release = pd.read_parquet(p.release_file)
    assert {c: str(release[c].dtype) for c in ("state", "address", "phone", "zip")} == dict.fromkeys(
        ("state", "address", "phone", "zip"), "int64"
    )
    assert release["state"].between(1, 56).all()
    gates = {g["name"]: g for g in read_json(p.manifest)["gates"]}
    assert gates["pii_replay"]["passed"] and gates["gx_release"]["passed"]


def test_sdv_name_guesses_are_kept_off_numbers(tmp_path, make_workspace):
    """SDV calls a `state` column an administrative unit (Faker text) by its name alone: bootstrap
    gives numbers a plain sdtype, and a committed file that still says so is refused at fit."""
    from pipelines import metadata

    src = _with_numbers(tmp_path / "numbers.csv", 500)
    df = pd.read_csv(src)
    detected = metadata.detect({"numbers": df}, _source(src))
    assert detected["tables"]["numbers"]["columns"]["state"]["sdtype"] == "administrative_unit"
    plan = pii.plan_for(df, PiiConfig())
    assert pii.metadata_problems(detected, "numbers", df, plan) == [
        "column 'state' holds numbers but has sdtype 'administrative_unit', which SDV samples as Faker text; "
        "set its sdtype to numerical or categorical"
    ]
    marked = pii.mark_metadata(detected, "numbers", plan, df)
    assert marked["tables"]["numbers"]["columns"]["state"]["sdtype"] == "numerical"
    assert marked["tables"]["numbers"]["columns"]["phone"] == {"sdtype": "phone_number", "pii": True}
    assert pii.metadata_problems(marked, "numbers", df, plan) == []

    ws = make_workspace(numbers=small_block(src, None))
    p = paths_for("numbers", ws)
    committed = read_json(p.metadata)
    committed["tables"]["numbers"]["columns"]["state"] = {"sdtype": "administrative_unit", "pii": True}
    p.metadata.write_text(json.dumps(committed))
    with pytest.raises(InvalidInputError, match=r"metadata/numbers.json:\n  - column 'state' holds numbers"):
        run_stages(ws, "numbers", ("ingest", "fit"))


def _source(src: Path):
    from pipelines.config import SourceConfig

    return SourceConfig(path=str(src), format="csv")
