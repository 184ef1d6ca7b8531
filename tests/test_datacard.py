"""The data card: written into the release from the records, every answer cited, gaps reported
(free text not declared, records missing), `synthgate audit`'s exit codes, tampering caught."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import datacard
from pipelines.config import GovernanceConfig
from pipelines.datacard_render import audit_text, markdown
from tests.conftest import FLOORS_OFF, HDMA, clean_env, defaults, load, run_stages, small_block

GOVERNANCE = {"purpose": "Demo: gated synthetic mortgage applications.", "personal_data": True}
FULL = {
    **GOVERNANCE,
    "collection": "Boston Fed HMDA survey, 1990, via the Ecdat R package.",
    "original_purpose": "Fair-lending supervision of mortgage lenders.",
    "assumptions": "One row per application; deny is the lender's decision.",
    "intended_uses": "Teaching and testing models.",
    "out_of_scope_uses": "Decisions about individual applicants.",
    "maintainer": "data-team@example.org",
}
SOURCE = re.compile(r"\A[\w./-]+\.(json|yaml)#[\w.\[\]=-]+\Z")
"""A citation: a workspace-relative file and a field."""


def _block(**governance: Any) -> dict[str, Any]:
    gates = {"sample_rows": 400, "minority_recall_ratio_min": 0.0, "utility_gap_max": 0.5, **FLOORS_OFF}
    block = small_block(HDMA, "deny", sensitive=["black"], gates={**gates, "bias_rate_gap_max": 1.0})
    return {**block, "gates": {**block["gates"], "bias_share_gap_max": 1.0}, "governance": governance}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny hdma workspace released once, with a governance block that declares two fields."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from pipelines.paths import paths_for

    root = tmp_path_factory.mktemp("datacard") / "ws"
    root.mkdir()
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": _block(**GOVERNANCE)}})
    )
    with clean_env(GIT_PYTHON_REFRESH="quiet"), pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        list(init_contracts(load_params(root / "params.yaml").dataset("hdma"), paths_for("hdma", root)))
        run_stages(root, "hdma")
    return root


def _card(root: Path) -> dict[str, Any]:
    return json.loads((root / "data/release/hdma/datacard.json").read_text())


def _answers(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for s in card["article_10_2"] for a in s["answers"]] + [
        a for d in card["datasheet"] for a in d["answers"]
    ]


def test_release_writes_the_card_and_lists_it_in_the_manifest(ws):
    from pipelines.io import sha256_file

    release = ws / "data/release/hdma"
    manifest = json.loads((release / "manifest.json").read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    for name in ("datacard.md", "datacard.json"):
        assert listed[f"data/release/hdma/{name}"] == sha256_file(release / name)
    card = _card(ws)
    assert card["version"] == manifest["version"] == 1
    assert (release / "datacard.md").read_text() == markdown(card)
    assert "<section id=datacard>" in (release / "report.html").read_text()


def test_every_point_of_article_10_2_cites_a_record(ws):
    card = _card(ws)
    assert [s["point"] for s in card["article_10_2"]] == list("abcdefgh")
    for section in card["article_10_2"]:
        assert section["answers"], section["point"]
        for a in section["answers"]:
            assert SOURCE.match(a["source"]), a
            assert (ws / a["source"].split("#")[0]).is_file(), a
    by_point = {s["point"]: {a["source"] for a in s["answers"]} for s in card["article_10_2"]}
    assert "runs/hdma/fit.json#engine" in by_point["a"]
    assert "runs/hdma/ingest.json#source" in by_point["b"]
    assert "reports/hdma/validation.json#figures.bias" in by_point["f"]  # sensitive: [black]
    bias = next(a for a in _answers(card) if a["source"].endswith("#figures.bias"))
    figures = json.loads((ws / "reports/hdma/validation.json").read_text())["figures"]["bias"]
    assert f"{figures['target_gap']:g} ({figures['target_gap_group']})" in bias["answer"]  # from the record


def test_governance_fills_the_free_text_and_missing_fields_read_not_declared(ws):
    answers = {
        a["source"].rsplit(".", 1)[-1]: a["answer"] for a in _answers(_card(ws)) if ".governance." in a["source"]
    }
    assert answers["purpose"] == GOVERNANCE["purpose"]
    assert answers["collection"] == answers["maintainer"] == datacard.NOT_DECLARED
    gaps = _card(ws)["gaps"]
    assert "data/release/hdma/manifest.json#params.governance.maintainer: not declared" in gaps
    assert not any("purpose: not declared" in g and "original" not in g for g in gaps)


def test_a_full_governance_block_leaves_no_gap(ws):
    from pipelines.paths import paths_for

    params = load(ws, "hdma").to_params()
    card = datacard.build(paths_for("hdma", ws), {**params, "governance": FULL})
    assert card["gaps"] == []
    assert "complete" in audit_text(card)
    no_personal = {**FULL, "personal_data": False, "original_purpose": None}
    assert datacard.build(paths_for("hdma", ws), {**params, "governance": no_personal})["gaps"] == []


def test_audit_exit_codes(ws, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.chdir(ws)
    assert main(["audit", "hdma"]) == 1
    out = capsys.readouterr().out
    assert "params.yaml#datasets.hdma.governance.maintainer: not declared" in out
    full = yaml.safe_load((ws / "params.yaml").read_text())
    full["datasets"]["hdma"]["governance"] = FULL
    (ws / "full.yaml").write_text(yaml.safe_dump(full))
    assert main(["--params", "full.yaml", "audit", "hdma"]) == 0
    assert "data card complete" in capsys.readouterr().out
    assert main(["audit", "nope"]) == 2
    assert "no such dataset" in capsys.readouterr().err


def test_a_missing_or_unreadable_record_is_a_gap_not_an_answer(ws, tmp_path):
    from pipelines.paths import paths_for

    for folder in ("runs/hdma", "reports/hdma"):
        shutil.copytree(ws / folder, tmp_path / folder)
    (tmp_path / "runs/hdma/ingest.json").unlink()
    (tmp_path / "runs/hdma/fit.json").write_text("{not json")
    card = datacard.build(paths_for("hdma", tmp_path), load(ws, "hdma").to_params())
    prep = next(s for s in card["article_10_2"] if s["point"] == "c")["answers"]
    assert prep[0]["source"] == "runs/hdma/ingest.json#normalisation"
    assert prep[0]["answer"] == "record runs/hdma/ingest.json missing: cannot answer (c)"
    assert "record runs/hdma/ingest.json missing: cannot answer (b)" in card["gaps"]
    assert "record runs/hdma/fit.json unreadable (not valid JSON): cannot answer (a)" in card["gaps"]
    assert not any("1905" in a["answer"] for a in _answers(card))  # the train rows came only from ingest.json


def test_tampering_with_the_card_is_caught_by_lineage(ws):
    from pipelines.lineage import lineage

    card = ws / "data/release/hdma/datacard.md"
    original = card.read_text()
    try:
        card.write_text(original.replace("| seed | 3 |", "| seed | 4 |"))
        r = lineage("hdma@1", ws, use_mlflow=False, use_dvc=False)
        assert r["tampered"] and any("data/release/hdma/datacard.md" in t for t in r["tampered_items"])
    finally:
        card.write_text(original)
    assert not lineage("hdma@1", ws, use_mlflow=False, use_dvc=False)["tampered"]


def test_every_governance_field_has_a_default_and_a_description():
    shipped = defaults()["governance"]
    assert set(shipped) == set(GovernanceConfig.model_fields)
    for name, field in GovernanceConfig.model_fields.items():
        assert field.description, name
        assert shipped[name] == field.default, name


def test_a_typo_in_the_governance_block_is_named_by_its_path():
    from pipelines.config import parse_params
    from pipelines.errors import ConfigError

    block = {**small_block(HDMA, "deny"), "governance": {"purpos": "x"}}
    with pytest.raises(ConfigError, match=r"datasets\.hdma\.governance\.purpos"):
        parse_params({"defaults": defaults(), "datasets": {"hdma": block}})


@pytest.mark.parametrize(
    ("gate", "near"),
    [
        ({"value": 0.77, "threshold": 0.75, "comparison": ">=", "passed": True}, True),
        ({"value": 0.75, "threshold": 0.75, "comparison": ">=", "passed": True}, True),
        ({"value": 0.9, "threshold": 0.75, "comparison": ">=", "passed": True}, False),
        ({"value": 1.0, "threshold": 0.95, "comparison": ">=", "passed": True}, False),  # at its best
        ({"value": 0.0, "threshold": 0.01, "comparison": "<=", "passed": True}, False),  # no copies at all
        ({"value": 0.14, "threshold": 0.15, "comparison": "<=", "passed": True}, True),
        ({"value": 0.7, "threshold": 0.75, "comparison": ">=", "passed": False}, False),  # failed, listed as such
    ],
)
def test_near_threshold_gates(gate, near):
    assert datacard._near(gate) is near


def test_worst_columns_and_pairs_skip_figures_not_measured():
    figures = {
        "column_shapes": [{"column": "a", "score": 0.9}, {"column": "b", "score": None}],
        "pair_trends": [{"columns": ["a", "b"], "score": None}, {"columns": ["a", "c"], "score": 0.5}],
        "floors_left_out": {"t.name": "text"},
    }
    assert datacard._worst({"figures": figures}) == "columns a 0.9; pairs a/c 0.5; left out of the floors: t.name"
