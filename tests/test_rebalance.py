"""Rare classes on the real HDMA table (`deny` is about 12% yes).

Happy path: `blend.strategy: rebalance` reaches 50% yes by conditional sampling (plus real rows
drawn in the same shares), and validate reports minority recall/F1, trained on synthetic vs on
real, on the untouched holdout. Conditions ("rows where deny=yes") work from params and as
per-run overrides. Failure path: a rebalance that drops the majority class is blocked by the
utility gate. Bad input: a condition or class value that never occurs (and the YAML yes/no
trap), a PII or unknown column, too few real rows of a class, a stale generate.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import generate, rebalance
from pipelines.config import BlendConfig
from pipelines.errors import ConfigError, GateFailed
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, HDMA, load, run_stages, small_block

REBALANCE = {"strategy": "rebalance", "shares": {"yes": 0.5}, "real_ratio": 0.2}


def _block(**sections):
    base = {
        "seed": 7,
        "generate": {"rows": 2000, "shard_rows": 600},
        "blend": REBALANCE,
        # a 50% rebalanced release is compared with train rows resampled to 50% yes; the
        # Gaussian copula's class-conditional pair trends score about 0.73 there (docs/generation.md)
        "gates": {"sample_rows": 1000, "quality_min": 0.7, **FLOORS_OFF},
    }
    block = small_block(HDMA, "deny")
    block.update({**base, **sections})
    return block


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from tests.conftest import defaults

    ws = tmp_path_factory.mktemp("ws_rebalance")
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": _block()}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    run_stages(ws, "hdma")
    return ws


# --- happy path ---------------------------------------------------------------------------------


def test_release_reaches_the_requested_class_shares(released):
    p = paths_for("hdma", released)
    release = pd.read_parquet(p.release_file)
    assert len(release) == 2400  # 2000 synthetic + 20% real
    assert release["deny"].value_counts(normalize=True)["yes"] == pytest.approx(0.5, abs=1e-9)
    by_source = release.groupby("_provenance")["deny"].apply(lambda s: (s == "yes").mean())
    assert by_source.to_dict() == pytest.approx({"real": 0.5, "synthetic": 0.5})
    gen = read_json(p.record("generate"))
    assert {(s["rows"], s["conditions"]["deny"]) for s in gen["shards"]} == {
        (600, "yes"),
        (400, "yes"),
        (600, "no"),
        (400, "no"),
    }
    assert gen["rebalance"]["rows_by_class"] == {"yes": 1000, "no": 1000}
    blend = read_json(p.record("blend"))
    assert blend["rebalance"]["achieved"] == {"no": 0.5, "yes": 0.5}
    assert blend["rebalance"]["requested"] == {"no": 0.5, "yes": 0.5}
    assert read_json(p.manifest)["version"] == 1  # every gate passed


def test_validate_reports_minority_recall_and_f1_tstr_vs_trtr(released):
    figures = read_json(paths_for("hdma", released).validation)["figures"]
    u = figures["utility"]
    assert u["minority_class"] == "yes"
    for key in ("minority_recall_trtr", "minority_recall_tstr", "minority_f1_trtr", "minority_f1_tstr"):
        assert 0 <= u[key] <= 1
    # trained on 50% yes, a model finds more of the rare class than one trained on the real mix
    assert u["minority_recall_tstr"] > u["minority_recall_trtr"]
    assert figures["class_shares"]["train"]["yes"] < 0.15 and figures["class_shares"]["release"]["yes"] == 0.5
    assert figures["utility_release"]["minority_recall_tstr"] > u["minority_recall_trtr"]
    assert "resampled" in figures["quality_reference"]


def test_conditions_as_per_run_overrides(released):
    """Conditions combine with rebalancing: 300 rows, half deny=yes, all with black=no, given as a
    per-run override (the shape of an Airflow trigger conf)."""
    p = paths_for("hdma", released)
    cfg = load(released, "hdma", {"generate": {"rows": 300, "conditions": {"black": "no"}}})
    shards = generate.shards_for(cfg, p)
    assert [(s.rows, s.conditions) for s in shards] == [
        (150, {"black": "no", "deny": "yes"}),
        (150, {"black": "no", "deny": "no"}),
    ]
    first = generate.run(cfg, p)
    rows = pd.concat(pd.read_parquet(released / s["path"]) for s in first["shards"])
    assert set(rows["black"]) == {"no"} and (rows["deny"] == "yes").sum() == 150
    again = generate.run(cfg, p)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in again["shards"]]
    generate.run(load(released, "hdma"), p)  # leave the workspace as the params made it


def test_generate_rows_where_deny_is_yes(make_workspace):
    block = small_block(HDMA, "deny", generate={"rows": 250, "shard_rows": 200, "conditions": {"deny": "yes"}})
    ws = make_workspace(hdma=block)
    record = run_stages(ws, "hdma", ("ingest", "fit", "generate"))
    assert [(s["rows"], s["conditions"]) for s in record["shards"]] == [(200, {"deny": "yes"}), (50, {"deny": "yes"})]
    rows = pd.concat(pd.read_parquet(ws / s["path"]) for s in record["shards"])
    assert len(rows) == 250 and set(rows["deny"]) == {"yes"}
    assert record["conditions"] == {"deny": "yes"}


def test_allocate_and_shares_add_up():
    assert rebalance.allocate(7, {"a": 0.5, "b": 0.25, "c": 0.25}) == {"a": 3, "b": 2, "c": 2}  # 3.5, 1.75, 1.75
    assert sum(rebalance.allocate(2381, {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}).values()) == 2381
    real = pd.read_csv(HDMA)
    dom = rebalance.domain(real.drop(columns=["Unnamed: 0"]))
    cfg = load_cfg(blend={"strategy": "rebalance", "shares": {"yes": 0.3}})
    assert rebalance.class_shares(cfg, dom, []) == ("deny", pytest.approx({"yes": 0.3, "no": 0.7}))


def load_cfg(**sections):
    from pipelines.config import build_dataset
    from tests.conftest import defaults

    return build_dataset("hdma", small_block(HDMA, "deny", **sections), defaults())


# --- failing gate -------------------------------------------------------------------------------


def test_dropping_the_majority_class_is_blocked(make_workspace):
    """shares {yes: 1.0}: the release has one class; a classifier trained on it is useless."""
    ws = make_workspace(hdma=_block(blend={"strategy": "rebalance", "shares": {"yes": 1.0}}, generate={"rows": 600}))
    with pytest.raises(GateFailed, match="utility"):
        run_stages(ws, "hdma")
    v = read_json(paths_for("hdma", ws).validation)
    gates = {g["name"]: g for g in v["gates"]}
    assert not gates["utility"]["passed"] and v["figures"]["utility"]["tstr"] == 0.5
    assert v["figures"]["class_shares"]["release"] == {"yes": 1.0}


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domain():
    return rebalance.domain(pd.read_csv(HDMA).drop(columns=["Unnamed: 0"]))


def test_condition_on_a_value_that_never_occurs(domain):
    with pytest.raises(
        ConfigError,
        match=r"generate\.conditions\.deny: 'maybe' never occurs in the train split; "
        r"values are \['no', 'yes'\]",
    ):
        rebalance.check_conditions({"deny": "maybe"}, domain, [])
    with pytest.raises(ConfigError, match=r"True never occurs.*quote the value"):
        rebalance.check_conditions({"deny": True}, domain, [])  # YAML's unquoted yes
    with pytest.raises(ConfigError, match=r"conditions\.denied: no column 'denied'"):
        rebalance.check_conditions({"denied": "yes"}, domain, [])
    with pytest.raises(ConfigError, match=r"'deny' is a PII column"):
        rebalance.check_conditions({"deny": "yes"}, domain, ["deny"])
    with pytest.raises(ConfigError, match=r"outside the range of the train split"):
        rebalance.check_conditions({"dir": 42.0}, domain, [])
    assert rebalance.check_conditions({"comdominiom": "1", "dir": 0.3}, domain, []) == {"comdominiom": 1, "dir": 0.3}


def test_rebalance_bad_classes_and_columns(domain):
    with pytest.raises(ConfigError, match=r"shares\.maybe: class 'maybe' never occurs in column 'deny'"):
        rebalance.class_shares(load_cfg(blend={"strategy": "rebalance", "shares": {"maybe": 0.5}}), domain, [])
    with pytest.raises(ConfigError, match=r"'dir' is not a class column"):
        rebalance.class_shares(
            load_cfg(blend={"strategy": "rebalance", "column": "dir", "shares": {"0.3": 0.5}}), domain, []
        )
    with pytest.raises(ConfigError, match=r"add up to 0.6.*no other class"):
        rebalance.class_shares(load_cfg(blend={"strategy": "rebalance", "shares": {"yes": 0.3, "no": 0.3}}), domain, [])
    with pytest.raises(ValueError, match="add up to 1.2"):
        BlendConfig(strategy="rebalance", shares={"yes": 0.6, "no": 0.6})
    with pytest.raises(ValueError, match="boolean"):
        BlendConfig(strategy="rebalance", shares={True: 0.5})
    with pytest.raises(ConfigError, match=r"blend\.column: 'email' is a PII column"):
        load_cfg(
            blend={"strategy": "rebalance", "column": "email", "shares": {"x": 0.5}},
            fit={"pii": {"columns": {"email": "email"}}},
        )


def test_too_few_real_rows_of_a_class_and_a_stale_generate(released):
    train = pd.read_parquet(paths_for("hdma", released).train)
    with pytest.raises(ConfigError, match=r"needs 5000 real rows of class 'yes', the train split has \d+"):
        rebalance.real_rows(train, "deny", {"yes": 5000, "no": 10}, 1, "datasets.hdma.blend")
    from pipelines import blend as blend_stage

    stale = load(released, "hdma", {"blend": {"shares": {"yes": 0.4}}})
    with pytest.raises(ConfigError, match="re-run generate"):
        blend_stage.run(stale, paths_for("hdma", released))
