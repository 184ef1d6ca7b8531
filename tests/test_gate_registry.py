"""The gate registry: a gate added through it alone is run, reported and can block a release.

Every registered gate reads a `gates:` field of params.yaml (or has a fixed, named threshold),
and a gate name can be registered once only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines import release
from pipelines.config import GatesConfig
from pipelines.errors import GateFailed
from pipelines.gates import GateContext, GateResult, gate, register, registry
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import HDMA, clean_env, defaults, load, run_stages, small_block


class AtMostRows:
    """A toy gate: the release may hold at most `limit` rows."""

    name = "at_most_rows"
    param = None

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def applies(self, ctx: GateContext) -> bool:
        return True

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, dict]:
        rows = len(ctx.blended[ctx.main])
        return gate(self.name, rows, self.limit, "<=", f"{rows} rows released"), {"toy": {"rows": rows}}


@pytest.fixture(scope="module")
def blended(tmp_path_factory) -> Path:
    """A small HDMA workspace built up to blend (300 rows, no target: no utility models)."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    ws = tmp_path_factory.mktemp("registry")
    block = small_block(HDMA, None, generate={"rows": 300})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    with clean_env():
        run_stages(ws, "hdma", ("ingest", "fit", "generate", "blend"))
    return ws


@pytest.fixture
def toy(monkeypatch):
    """Register a toy gate with a row limit, for this test only."""
    monkeypatch.setattr(registry, "GATES", list(registry.GATES))
    return lambda limit: register(AtMostRows(limit))


def test_a_registered_gate_is_run_reported_and_released(blended, toy):
    toy(1000)
    run_stages(blended, "hdma", ("validate", "release"))
    p = paths_for("hdma", blended)
    v = read_json(p.validation)
    assert v["gates"][-1] == {
        "name": "at_most_rows",
        "value": 300.0,
        "threshold": 1000.0,
        "comparison": "<=",
        "passed": True,
        "explanation": "300 rows released",
    }
    assert v["figures"]["toy"] == {"rows": 300} and v["passed"]
    assert "at_most_rows" in {g["name"] for g in read_json(p.manifest)["gates"]}


def test_a_failing_registered_gate_blocks_the_release(blended, toy):
    toy(100)
    record = run_stages(blended, "hdma", ("validate",))
    assert record["failed"] == ["at_most_rows"] and not record["passed"]
    with pytest.raises(GateFailed, match=r"at_most_rows: 300"):
        release.run(load(blended, "hdma"), paths_for("hdma", blended))


def test_validate_writes_typed_records_that_name_their_files(blended):
    from pipelines.io import sha256_file
    from pipelines.records.stages import BlendRecord, IngestRecord
    from pipelines.records.validation import ValidateRecord, ValidationReport

    record = run_stages(blended, "hdma", ("validate",))
    p = paths_for("hdma", blended)
    assert read_json(p.record("validate")) == record and "relational" not in record
    typed = ValidateRecord.read(p.record("validate"))
    assert typed.to_json() == record
    upstream = {"ingest": IngestRecord.read(p.record("ingest")), "blend": BlendRecord.read(p.record("blend"))}
    assert [(f.path, f.sha256) for f in typed.outputs(upstream)] == [
        (p.rel(f), sha256_file(f)) for f in (p.validation, p.gx_result, p.report_html)
    ]
    assert [(f.role, f.path, f.sha256) for f in typed.inputs(upstream)] == [
        ("blended", p.rel(p.blended), sha256_file(p.blended)),
        ("train", p.rel(p.train), sha256_file(p.train)),
        ("holdout", p.rel(p.holdout), sha256_file(p.holdout)),
        ("release_contract", p.rel(p.release_suite), sha256_file(p.release_suite)),
    ]
    validation = read_json(p.validation)
    assert ValidationReport.model_validate(validation).to_json() == validation


def test_gate_names_are_unique(toy):
    toy(1)
    with pytest.raises(ValueError, match="'at_most_rows' is registered already"):
        register(AtMostRows(2))


def test_every_threshold_is_a_param_or_a_named_constant():
    from pipelines.gates import contract, keys, pii, sequences

    fields = GatesConfig.model_fields
    assert all(g.param is None or g.param in fields for g in registry.GATES)
    fixed = {g.name for g in registry.GATES if g.param is None}
    assert fixed == {"primary_keys", "pii_replay", "synthetic_rows", "sequence_order"}
    assert (keys.PRIMARY_KEYS_MIN, pii.PII_REPLAY_MAX, contract.MIN_SYNTHETIC_ROWS) == (1.0, 0, 1)
    assert sequences.SEQUENCE_ORDER_MIN == 1.0
    assert set(defaults()["gates"]) == set(fields)  # params.yaml lists every gates field (DVC reads it)


class Raises:
    """A toy gate that fails with a ValueError of its own (no column changed type)."""

    name = "raises"
    param = None

    def applies(self, ctx: GateContext) -> bool:
        return True

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, dict]:
        raise ValueError("a bug in the gate")


def test_a_column_that_changed_type_is_named_not_a_bare_value_error(blended, monkeypatch):
    """A learned number column released as text (Faker state names in a state-code column): the
    gate comparing it raises a typed error naming the gate and the column; any other ValueError
    of a gate is left as it is."""
    import pandas as pd
    from sdv.metadata import Metadata

    from pipelines import validate
    from pipelines.contracts import load_suite
    from pipelines.errors import InvalidInputError

    p = paths_for("hdma", blended)
    frames = [pd.read_parquet(f) for f in (p.blended, p.train, p.holdout)]
    changed = frames[0].assign(uria=["Delaware", "Ohio"] * (len(frames[0]) // 2))
    args = (Metadata.load_from_dict(read_json(p.model_metadata)), load_suite(p.release_suite))
    cfg = load(blended, "hdma")
    with pytest.raises(InvalidInputError, match=r"column 'uria'") as err:  # whichever gate compares it first
        validate.evaluate(cfg, changed, *frames[1:], *args)
    assert "Delaware" in str(err.value) and "numbers" in str(err.value)
    monkeypatch.setattr(registry, "GATES", [Raises()])
    with pytest.raises(ValueError, match="a bug in the gate"):
        validate.evaluate(cfg, frames[0], *frames[1:], *args)
