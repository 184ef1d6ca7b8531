"""params.yaml validation: every bad key is named by its path."""

from __future__ import annotations

import pytest
import yaml

from pipelines.config import apply_overrides, load_params, parse_params
from pipelines.errors import ConfigError
from tests.conftest import HDMA, REPO, defaults, small_block


def _params(**datasets):
    return {"defaults": defaults(), "datasets": datasets}


def test_repo_params_load_and_merge_defaults():
    params = load_params(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["datasets"]["hdma"]
    hdma = params.dataset("hdma")
    assert hdma.target == "deny"
    assert hdma.generate.rows == raw["generate"]["rows"]  # the dataset's own value...
    assert hdma.generate.shard_rows == defaults()["generate"]["shard_rows"]  # ...merged over defaults
    assert hdma.gates.quality_min == defaults()["gates"]["quality_min"]
    assert {"hdma", "diamonds"} <= set(params.datasets)


def test_config_is_frozen():
    cfg = load_params(REPO / "params.yaml").dataset("hdma")
    with pytest.raises(Exception, match="frozen"):
        cfg.seed = 1  # type: ignore[misc]


def test_unknown_key_is_named_by_path():
    block = small_block(HDMA, "deny", generate={"rowz": 10})
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.generate\.rowz: unknown key"):
        parse_params(_params(hdma=block))


def test_negative_rows_rejected_with_path():
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.generate\.rows: .*greater than or equal to 1"):
        parse_params(_params(hdma=small_block(HDMA, generate={"rows": -5})))


def test_missing_section_says_how_to_fix():
    block = small_block(HDMA)
    del block["blend"]
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.blend: missing: add `blend: {}` .*inherits the defaults"):
        parse_params(_params(hdma=block))


def test_unknown_synthesizer_param_lists_allowed():
    block = small_block(HDMA, fit={"synthesizer": "gaussian_copula", "params": {"epochs": 3}})
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.fit: .*epochs.*allowed: .*enforce_rounding"):
        parse_params(_params(hdma=block))


def test_every_problem_is_reported_at_once():
    bad = small_block(HDMA, generate={"rows": 0}, ingest={"holdout_fraction": 2})
    with pytest.raises(ConfigError) as err:
        parse_params(_params(hdma=bad, Bad=small_block(HDMA)))
    text = str(err.value)
    assert "datasets.hdma.generate.rows" in text
    assert "datasets.hdma.ingest.holdout_fraction" in text
    assert "datasets.Bad: dataset names" in text


def test_sql_source_needs_url():
    block = small_block("q.sql")
    block["source"] = {"path": "q.sql", "format": "sql"}
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.source: .*needs `url`"):
        parse_params(_params(hdma=block))


def test_overrides_are_merged_and_validated():
    params = parse_params(_params(hdma=small_block(HDMA, "deny")))
    cfg = apply_overrides(params, "hdma", {"generate": {"rows": 20000}, "seed": 9})
    assert cfg.generate.rows == 20000 and cfg.seed == 9
    assert cfg.generate.shard_rows == defaults()["generate"]["shard_rows"]
    with pytest.raises(ConfigError, match=r"generate\.rows: .*greater than or equal to 1"):
        apply_overrides(params, "hdma", {"generate": {"rows": -1}})
    with pytest.raises(ConfigError, match=r"source: cannot be overridden per run"):
        apply_overrides(params, "hdma", {"source": {"path": "x.csv"}})
    with pytest.raises(ConfigError, match=r"blend\.strategy"):
        apply_overrides(params, "hdma", {"blend": {"strategy": "copy_everything"}})


def test_unknown_dataset_lists_known_ones():
    params = parse_params(_params(hdma=small_block(HDMA)))
    with pytest.raises(ConfigError, match=r"datasets\.nope: no such dataset \(configured: hdma\)"):
        params.dataset("nope")


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("defaults: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "missing.yaml")


def test_unknown_top_level_and_default_keys():
    raw = _params(hdma=small_block(HDMA))
    raw["extra"] = 1
    raw["defaults"] = {**raw["defaults"], "gatez": {}}
    with pytest.raises(ConfigError) as err:
        parse_params(yaml.safe_load(yaml.safe_dump(raw)))
    assert "extra: unknown top-level key" in str(err.value)
    assert "defaults.gatez: unknown key" in str(err.value)


def test_synthesizer_param_lists_match_sdv():
    """The lists the engine registry checks without importing SDV are exactly SDV 2.0's constructor arguments."""
    import inspect

    import sdv.single_table as st

    from pipelines import engines
    from pipelines.engines.sdv import SdvSingleTable

    single = {n: e for n, e in engines.REGISTRY.items() if isinstance(e, SdvSingleTable)}
    assert set(single) == {"gaussian_copula", "ctgan", "tvae", "copulagan"}
    for name, engine in single.items():
        args = set(inspect.signature(getattr(st, engine.cls_name).__init__).parameters)
        args -= {"self", "metadata", "locales", "verbose"}  # locales: Faker (PII); verbose: logs
        assert engine.info.params == args, name


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("generate", "rows", True), ("gates", "quality_min", "0.5"), ("ingest", "min_rows", 50.0), ("seed", None, "7")],
)
def test_values_are_not_coerced(section, key, value):
    """`rows: true` used to become 1 row and `quality_min: "0.5"` 0.5: a wrong type is an error."""
    block = small_block(HDMA, "deny")
    if key is None:
        block[section] = value
    else:
        block[section] = {**block[section], key: value}
    with pytest.raises(ConfigError) as err:
        parse_params({"defaults": defaults(), "datasets": {"hdma": block}})
    path = f"datasets.hdma.{section}" + (f".{key}" if key else "")
    assert path in str(err.value)


def test_integers_are_valid_floats_and_lists_valid_tuples():
    block = small_block(HDMA, "deny", gates={"quality_min": 1}, ingest={"drop_columns": ["dir"]})
    cfg = parse_params({"defaults": defaults(), "datasets": {"hdma": block}}).dataset("hdma")
    assert cfg.gates.quality_min == 1.0 and cfg.ingest.drop_columns == ("dir",)


def test_dataset_name_with_a_trailing_newline_is_refused():
    with pytest.raises(ConfigError, match="dataset names are lowercase"):
        parse_params({"defaults": defaults(), "datasets": {"hdma\n": small_block(HDMA, "deny")}})


def test_overrides_report_every_problem_at_once():
    params = parse_params({"defaults": defaults(), "datasets": {"hdma": small_block(HDMA, "deny")}})
    with pytest.raises(ConfigError) as err:
        apply_overrides(params, "hdma", {"source": {"path": "x.csv"}, "generate": {"rows": True}})
    text = str(err.value)
    assert "source: cannot be overridden" in text and "generate.rows" in text


def test_rows_are_bounded_before_any_work():
    """`generate.rows: 1e12` used to run ingest and fit before a MemoryError."""
    block = small_block(HDMA, "deny", generate={"rows": 10**12})
    with pytest.raises(ConfigError, match=r"generate: .*rows 1,000,000,000,000 exceeds max_rows 10,000,000"):
        parse_params(_params(hdma=block))
    block = small_block(HDMA, "deny", generate={"rows": 10**12, "max_rows": 10**12})
    assert parse_params(_params(hdma=block)).dataset("hdma").generate.rows == 10**12  # on purpose


def test_a_yaml_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    (tmp_path / "params.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="through anchors and aliases"):
        load_params(tmp_path / "params.yaml")


def test_a_block_without_seed_takes_the_default_seed():
    block = small_block(HDMA, "deny")
    del block["seed"]
    assert parse_params(_params(hdma=block)).dataset("hdma").seed == defaults()["seed"]
    no_default = {k: v for k, v in defaults().items() if k != "seed"}
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.seed: missing: required \(.*defaults\.seed"):
        parse_params({"defaults": no_default, "datasets": {"hdma": block}})


def test_a_typo_in_defaults_is_reported_once_at_its_own_path():
    raw = _params(hdma=small_block(HDMA, "deny"), diamonds=small_block(HDMA))
    raw["defaults"]["generate"]["rowz"] = 10
    raw["defaults"]["fit"]["pii"]["detekt"] = True
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    assert err.value.problems == [
        "defaults.fit.pii.detekt: unknown key (check the spelling; see params.yaml `defaults` for every knob)",
        "defaults.generate.rowz: unknown key (check the spelling; see params.yaml `defaults` for every knob)",
    ]


def test_a_missing_required_key_says_what_to_write():
    no_target, no_path = small_block(HDMA), small_block(HDMA)
    del no_target["target"]
    no_path["source"] = {"format": "csv"}
    with pytest.raises(ConfigError) as err:
        parse_params(_params(a=no_target, b=no_path))
    text = str(err.value)
    assert "datasets.a.target: missing: name the column to predict" in text and "`target: null` for none" in text
    assert "datasets.b.source.path: missing: required (CSV/parquet file" in text
