"""OpenLineage events: one job per stage, datasets with their digests, valid against the schema,
file transport by default, HTTP when configured, never a failed stage because of lineage."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from pipelines import openlineage
from pipelines.errors import GateFailed
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests._lineage_ws import BLOCKING, clean_env, new_workspace, small_hdma
from tests.conftest import DATA, run_stages

SPEC_DIR = DATA / "openlineage"
CORE_IDS = ("https://openlineage.io/spec/2-0-2/OpenLineage.json", "https://openlineage.io/spec/2-1-0/OpenLineage.json")
STAGES = ("ingest", "fit", "generate", "blend", "validate", "release")


def _registry() -> Registry:
    core = json.loads((SPEC_DIR / "OpenLineage-2-1-0.json").read_text())
    resources = [(uri, Resource.from_contents(core)) for uri in CORE_IDS]
    for f in (SPEC_DIR / "facets" / "1-0-0").glob("*.json"):
        schema = json.loads(f.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _is_uri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def assert_valid_event(event: dict[str, Any]) -> None:
    """Against the core schema (the whole document and its RunEvent definition) and, for our own
    facets, against their published schemas; plus the formats jsonschema does not check here."""
    errors = [e.message for e in _validator(CORE_IDS[0]).iter_errors(event)]
    errors += [e.message for e in _validator(f"{CORE_IDS[0]}#/$defs/RunEvent").iter_errors(event)]
    assert not errors, errors
    assert event["schemaURL"].startswith(CORE_IDS[0])
    assert datetime.fromisoformat(event["eventTime"]).tzinfo is not None
    assert _is_uri(event["producer"])
    uuid.UUID(event["run"]["runId"])
    bags = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for ds in event.get("inputs", []) + event.get("outputs", []):
        assert not {"query", "defaultDatabase", "defaultSchema"} & set(ds)  # 2-1-0-only fields: unused
        bags += [ds.get("facets", {}), ds.get("outputFacets", {}), ds.get("inputFacets", {})]
    for bag in bags:
        for name, facet in bag.items():
            assert _is_uri(facet["_producer"]) and _is_uri(facet["_schemaURL"]), name
            if facet["_schemaURL"].startswith(openlineage.FACET_SCHEMA_BASE):
                errors = [e.message for e in _validator(facet["_schemaURL"]).iter_errors(facet)]
                assert not errors, (name, errors)


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A release (v1) and then a blocked attempt, emitting to the default file transport."""
    root = new_workspace(tmp_path_factory.mktemp("ol") / "ws", hdma=small_hdma(500))
    with clean_env():
        run_stages(root, "hdma")
        with pytest.raises(GateFailed):
            run_stages(root, "hdma", stages=("validate", "release"), overrides=BLOCKING)
    return root


@pytest.fixture(scope="module")
def events(ws) -> list[dict[str, Any]]:
    return _events(openlineage.events_file(paths_for("hdma", ws)))


def test_every_event_is_valid_openlineage(events):
    # release: pipeline START/COMPLETE + 6 stages START/COMPLETE; blocked: pipeline START/FAIL + 2 stages
    assert len(events) == 14 + 6
    for event in events:
        assert_valid_event(event)


def test_the_schema_check_can_fail(events):
    broken = json.loads(json.dumps(events[1]))
    broken["run"]["runId"] = "not-a-uuid"
    del broken["job"]["namespace"]
    broken["run"]["facets"]["synthgate"]["digest"] = 1
    broken["run"]["facets"]["synthgate"].pop("_producer")
    with pytest.raises(AssertionError):
        assert_valid_event(broken)
    messages = [e.message for e in _validator(CORE_IDS[0]).iter_errors(broken)]
    assert any("namespace" in m for m in messages) and any("not-a-uuid" in m for m in messages)


def test_one_job_per_stage_and_run_ids_are_the_mlflow_runs(ws, events):
    p = paths_for("hdma", ws)
    manifest = read_json(p.manifest)
    released = [e for e in events[:14]]
    assert {e["job"]["name"] for e in released} == {f"hdma.{s}" for s in (*STAGES, "pipeline")}
    assert {e["job"]["namespace"] for e in events} == {"synthgate"}
    for stage in STAGES:
        run_id = openlineage.run_uuid(manifest["mlflow"]["stage_runs"][stage])
        mine = [e for e in released if e["run"]["runId"] == run_id]
        assert [e["eventType"] for e in mine] == ["START", "COMPLETE"], stage
        facets = mine[1]["run"]["facets"]
        assert facets["parent"]["run"]["runId"] == openlineage.run_uuid(manifest["mlflow"]["run_id"])
        assert facets["parent"]["job"]["name"] == "hdma.pipeline"
        assert facets["synthgate"]["mlflowRunId"] == manifest["mlflow"]["stage_runs"][stage]
        assert facets["synthgate"]["gitCommit"] == manifest["git_commit"]
        assert mine[1]["job"]["facets"]["jobType"]["jobType"] == "TASK"
    assert [e["eventType"] for e in released if e["job"]["name"] == "hdma.pipeline"] == ["START", "COMPLETE"]


def test_datasets_carry_the_recorded_digests(ws, events):
    p = paths_for("hdma", ws)
    manifest = read_json(p.manifest)
    complete = {e["job"]["name"]: e for e in events[:14] if e["eventType"] == "COMPLETE"}
    ingest = complete["hdma.ingest"]
    source = ingest["inputs"][0]
    assert source["namespace"] == "file" and source["name"].endswith("sources/hdma.csv")
    assert source["facets"]["synthgate_digest"]["digest"] == manifest["source"]["sha256"]
    outs = {o["facets"]["synthgate_digest"]["role"]: o for o in ingest["outputs"]}
    assert outs["train"]["facets"]["version"]["datasetVersion"] == manifest["split"]["train_sha256"]
    assert outs["train"]["outputFacets"]["outputStatistics"]["rowCount"] == manifest["split"]["train_rows"]
    assert "deny" in {f["name"] for f in outs["train"]["facets"]["schema"]["fields"]}
    fit_out = complete["hdma.fit"]["outputs"][0]
    assert fit_out["facets"]["synthgate_digest"] == {
        **fit_out["facets"]["synthgate_digest"],
        "digest": manifest["model"]["sha256"],
        "role": "model",
    }
    release_outs = {o["facets"]["synthgate_digest"]["path"]: o for o in complete["hdma.release"]["outputs"]}
    for f in manifest["files"]:
        assert release_outs[f["path"]]["facets"]["synthgate_digest"]["digest"] == f["sha256"]
    # the graph is connected: what a stage read is, by name and version, what an earlier stage wrote
    written: dict[tuple[str, str], str] = {}
    for stage in STAGES:
        event = complete[f"hdma.{stage}"]
        for ds in event["inputs"]:
            role = ds["facets"]["synthgate_digest"]["role"]
            if role not in ("source", "raw_contract", "metadata", "release_contract"):
                key = (ds["namespace"], ds["name"])
                assert written.get(key) == ds["facets"]["version"]["datasetVersion"], (stage, key)
        for ds in event["outputs"]:
            written[(ds["namespace"], ds["name"])] = ds["facets"]["version"]["datasetVersion"]


def test_a_blocked_release_is_a_fail_event(events):
    blocked = events[14:]
    names = [(e["job"]["name"], e["eventType"]) for e in blocked]
    assert names == [
        ("hdma.pipeline", "START"),
        ("hdma.validate", "START"),
        ("hdma.validate", "COMPLETE"),
        ("hdma.release", "START"),
        ("hdma.release", "FAIL"),
        ("hdma.pipeline", "FAIL"),
    ]
    fail = blocked[4]["run"]["facets"]["errorMessage"]
    assert fail["message"].startswith("GateFailed: release of 'hdma' blocked") and "quality" in fail["message"]
    assert fail["programmingLanguage"] == "python"
    assert blocked[4]["outputs"] == []


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector(monkeypatch) -> Any:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _Collector.received, _Collector.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Collector, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def ws_copy(ws, tmp_path) -> Path:
    return Path(shutil.copytree(ws, tmp_path / "copy"))


def test_http_transport_when_openlineage_url_is_set(ws_copy, collector, monkeypatch):
    handler, url = collector
    log = openlineage.events_file(paths_for("hdma", ws_copy))
    before = log.read_text()
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "synthgate-test")
    run_stages(ws_copy, "hdma", stages=("blend",))
    paths = [p for p, _ in handler.received]
    assert set(paths) == {"/api/v1/lineage"}
    events = [e for _, e in handler.received]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("hdma.pipeline", "START"),
        ("hdma.blend", "START"),
        ("hdma.blend", "COMPLETE"),
    ]
    assert {e["job"]["namespace"] for e in events} == {"synthgate-test"}
    for event in events:
        assert_valid_event(event)
    assert log.read_text() == before  # the file transport is only the default


def test_lineage_backend_errors_never_fail_a_stage(ws_copy, collector, monkeypatch, caplog):
    handler, url = collector
    handler.status = 400  # rejected (not retried)
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    record = run_stages(ws_copy, "hdma", stages=("blend",))
    assert record["stage"] == "blend" and len(handler.received) == 3
    assert "OpenLineage: could not emit blend COMPLETE event for hdma: HTTPError" in caplog.text


def test_disabled_emits_nothing(ws_copy, monkeypatch):
    log = openlineage.events_file(paths_for("hdma", ws_copy))
    before = log.read_text()
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    run_stages(ws_copy, "hdma", stages=("blend",))
    assert log.read_text() == before


def test_stage_files_refuses_a_record_of_another_run(ws):
    with pytest.raises(openlineage.StaleRecordError, match="was not written by MLflow run"):
        openlineage.stage_files("fit", paths_for("hdma", ws), "0" * 32)
    with pytest.raises(ValueError, match="unknown stage"):
        openlineage.stage_files("nope", paths_for("hdma", ws), "0" * 32)


def test_run_uuid_is_the_mlflow_id_or_a_stable_uuid():
    assert openlineage.run_uuid("e8e2b0b1e8914c79a8e9872ad13f24f9") == "e8e2b0b1-e891-4c79-a8e9-872ad13f24f9"
    assert openlineage.run_uuid("run-7") == openlineage.run_uuid("run-7") != openlineage.run_uuid("run-8")
    uuid.UUID(openlineage.run_uuid("run-7"))
