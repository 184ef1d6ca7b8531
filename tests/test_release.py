"""validate + release: manifest contents, blocked releases, crash safety, the lock."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import release
from pipelines.errors import GateFailed, SynthgateError
from pipelines.io import sha256_file
from pipelines.paths import paths_for
from tests.conftest import FLOORS_OFF, HDMA, clean_env, defaults, load, run_stages, small_block


def _tree(path: Path) -> dict[str, str]:
    return {str(f.relative_to(path)): sha256_file(f) for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A workspace with one published release of the real HDMA table (v1)."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params

    ws = tmp_path_factory.mktemp("released")
    # 600 rows: GaussianCopula's utility gap is noisy (0.22 here with hdma's few-valued columns ordinal)
    gates = {"sample_rows": 400, "minority_recall_ratio_min": 0.0, "utility_gap_max": 0.3, **FLOORS_OFF}
    block = small_block(HDMA, "deny", generate={"rows": 600}, gates=gates)
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    with clean_env():
        run_stages(ws, "hdma")
    return ws


def test_manifest_has_the_lineage_fields(released):
    p = paths_for("hdma", released)
    m = json.loads(p.manifest.read_text())
    assert m["dataset"] == "hdma" and m["version"] == 1
    for key in ("created_at", "files", "source", "git_commit", "params", "mlflow", "model", "gates", "runner"):
        assert key in m, key
    data = m["files"][0]
    assert data["path"] == "data/release/hdma/hdma.parquet" and data["rows"] == 600
    assert data["sha256"] == sha256_file(p.release_file)
    assert m["source"]["sha256"] == sha256_file(HDMA)
    assert m["model"]["sha256"] == json.loads(p.record("fit").read_text())["model"]["sha256"]
    assert {g["name"] for g in m["gates"]} == {
        "gx_release",
        "types",
        "quality",
        "diagnostic",
        "column_shape",
        "pair_trend",
        "exact_copies",
        "dcr_low_tail",
        "dcr_baseline_protection",
        "utility",
        "minority_utility",
    }
    assert all(g["passed"] for g in m["gates"])
    assert m["params"]["generate"]["rows"] == 600 and m["params"]["seed"] == 3
    assert (p.manifests_dir / "v0001.json").read_text() == p.manifest.read_text()
    report = p.release_report.read_text()
    assert "Lineage" in report and m["mlflow"]["run_id"] in report


def test_manifest_names_mlflow_runs_that_exist(released):
    from pipelines.tracking import get_run

    m = json.loads(paths_for("hdma", released).manifest.read_text())
    parent = get_run(m["mlflow"]["run_id"], released)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["synthgate.verdict"] == "released"
    assert parent.data.params["generate.rows"] == "600"
    for stage, run_id in m["mlflow"]["stage_runs"].items():
        child = get_run(run_id, released)
        assert child.data.tags["mlflow.parentRunId"] == m["mlflow"]["run_id"], stage
        assert child.info.run_name == stage
    fit = get_run(m["mlflow"]["stage_runs"]["fit"], released)
    assert fit.data.params["synthesizer"] == "gaussian_copula"
    ingest = get_run(m["mlflow"]["stage_runs"]["ingest"], released)
    assert {d.dataset.digest for d in ingest.inputs.dataset_inputs}  # inputs logged with digests
    # the parent run carries the verdict, every gate figure, the manifest and the report
    assert parent.data.metrics["gates.passed"] == 1.0 and parent.data.metrics["release.version"] == 1
    assert {f"gate.{g['name']}" for g in m["gates"]} <= set(parent.data.metrics)
    assert parent.data.metrics["gate.quality"] == next(g["value"] for g in m["gates"] if g["name"] == "quality")
    from mlflow.tracking import MlflowClient

    listed = {a.path for a in MlflowClient().list_artifacts(parent.info.run_id, "release")}
    assert {"release/manifest.json", "release/report.html"} <= listed
    # the registered model version says which release it produced
    model = m["model"]
    tags = MlflowClient().get_model_version(model["registered_model"], model["registered_version"]).tags
    assert tags["synthgate.last_release"] == "1" and tags["synthgate.release.v1"] == sha256_file(
        paths_for("hdma", released).manifest
    )


def test_impossible_gate_blocks_release_and_keeps_previous(released):
    p = paths_for("hdma", released)
    before = _tree(p.release_dir)
    cfg = load(released, "hdma", {"gates": {"quality_min": 0.999}})
    run_stages(released, "hdma", ("validate",), {"gates": {"quality_min": 0.999}})
    with pytest.raises(GateFailed, match=r"quality: 0\.\d+ \(must be >= 0\.999\)") as err:
        release.run(cfg, p)
    said = str(err.value)  # what the run left and what to do next (tests/test_experiment.py: every runner)
    assert "The previous release (v1, data/release/hdma/) was left untouched." in said
    assert "this run is not recorded in dvc.lock, so `dvc status` lists the stages it rewrote" in said
    assert "Next: read reports/hdma/report.html" in said
    assert _tree(p.release_dir) == before
    log = [json.loads(x) for x in p.attempts_log.read_text().splitlines()]
    assert log[-1]["verdict"] == "blocked" and log[-1]["failed"] == ["quality"]
    from pipelines.tracking import get_run

    assert get_run(log[-1]["mlflow_run_id"], released).info.status == "FAILED"
    run_stages(released, "hdma", ("validate",))  # restore the passing report


def test_release_refuses_records_of_different_runs(released):
    """A run cut short after fit (found by tests/faults: the disk filled up in generate) leaves a
    fit record whose model generate never sampled: release refuses instead of publishing records
    that lineage cannot reconcile."""
    from pipelines.errors import IntegrityError

    p = paths_for("hdma", released)
    before, record = _tree(p.release_dir), p.record("generate").read_text()
    generate = json.loads(record)
    generate["model"]["sha256"] = "0" * 64  # what a generate record from before the last fit says
    p.record("generate").write_text(json.dumps(generate))
    try:
        with pytest.raises(IntegrityError, match=r"runs/hdma/generate.json read model .* but runs/hdma/fit.json wrote"):
            release.run(load(released, "hdma"), p)
    finally:
        p.record("generate").write_text(record)
    assert _tree(p.release_dir) == before


def test_crash_mid_swap_leaves_old_release(released, monkeypatch):
    p = paths_for("hdma", released)
    run_stages(released, "hdma", ("validate",))
    before = _tree(p.release_dir)
    real_replace = os.replace

    def crash(src, dst):
        if str(src).endswith(f".{p.name}.old") or ".new-" in str(src):
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(release, "_exchange", lambda a, b: False)  # a filesystem without RENAME_EXCHANGE
    monkeypatch.setattr(release.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        release.run(load(released, "hdma"), p)
    monkeypatch.undo()
    release.recover(p)
    assert _tree(p.release_dir) == before
    assert not list(p.release_dir.parent.glob(".hdma.*"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2(RENAME_EXCHANGE) is Linux's")
def test_the_swap_is_one_atomic_exchange(tmp_path):
    """Where the filesystem can (Linux: ext4, xfs, btrfs, tmpfs), the release folder is exchanged
    in one step: there is no moment without a release (tests/faults kill inside the swap)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, text in ((a, "old"), (b, "new")):
        folder.mkdir()
        (folder / "f").write_text(text)
    assert release._exchange(b, a)
    assert (a / "f").read_text() == "new" and (b / "f").read_text() == "old"


def test_recover_restores_an_interrupted_swap(released):
    p = paths_for("hdma", released)
    before = _tree(p.release_dir)
    os.replace(p.release_dir, release._old_dir(p))  # crash right after moving the old one away
    release.recover(p)
    assert _tree(p.release_dir) == before


def test_second_release_increments_version_and_keeps_history(released):
    p = paths_for("hdma", released)
    run_stages(released, "hdma", ("validate", "release"))
    m = json.loads(p.manifest.read_text())
    assert m["version"] >= 2
    assert sorted(x.name for x in p.manifests_dir.iterdir())[-1] == f"v{m['version']:04d}.json"
    assert (p.manifests_dir / "v0001.json").is_file()


def test_release_folders_get_the_modes_the_umask_implies(released):
    """Not the 0700 of the temporary folder a release is assembled in: folders 0777 & ~umask and
    files 0666 & ~umask (0755 and 0644 for the usual 022), whatever the umask."""
    p = paths_for("hdma", released)

    def modes() -> dict[str, int]:
        return {
            str(f.relative_to(p.release_dir)): f.stat().st_mode & 0o777
            for f in [p.release_dir, *p.release_dir.rglob("*")]
        }

    def implied(mask: int) -> dict[str, int]:
        return {f: (0o777 if (p.release_dir / f).is_dir() else 0o666) & ~mask for f in modes()}

    mask = os.umask(0o027)
    try:
        assert modes() == implied(mask)
        run_stages(released, "hdma", ("release",))
        assert modes() == implied(0o027) and modes()["."] == 0o750
    finally:
        os.umask(mask)


def test_release_keeps_the_column_order_of_a_sql_source(make_workspace, tmp_path, monkeypatch):
    """The query's column order (neither the table's nor the metadata's alphabetical one) survives
    ingest, fit, generate, blend (real rows added too) and release."""
    import pandas as pd
    import sqlalchemy as sa

    order = ["deny", "uria", "black", "dir", "ccs", "lvr", "single", "hir", "mcs", "self", "pbcr", "dmi", "comdominiom"]
    db, query = tmp_path / "loans.db", tmp_path / "loans.sql"
    pd.read_csv(HDMA).head(400).to_sql("loans", sa.create_engine(f"sqlite:///{db}"), index=False)
    query.write_text(f"SELECT {', '.join(order)} FROM loans\n")
    monkeypatch.setenv("LOANS_URL", f"sqlite:///{db}")
    gates = {"sample_rows": 300, "minority_recall_ratio_min": 0.0, "utility_gap_max": 0.5, **FLOORS_OFF}
    source = {"path": str(query), "format": "sql", "url": "env:LOANS_URL"}
    block = small_block(
        query,
        "deny",
        source=source,
        generate={"rows": 300},
        blend={"strategy": "augment", "real_ratio": 0.1},
        gates=gates,
    )
    ws = make_workspace(loans=block)
    assert list(json.loads(paths_for("loans", ws).metadata.read_text())["tables"]["loans"]["columns"]) != order
    with clean_env():
        run_stages(ws, "loans")
    released = pd.read_parquet(paths_for("loans", ws).release_file)
    assert list(released.columns) == [*order, "_provenance"] and set(released["_provenance"]) == {"synthetic", "real"}


def test_concurrent_release_is_refused(released):
    p = paths_for("hdma", released)
    with release.dataset_lock(p), pytest.raises(SynthgateError, match="another run is releasing 'hdma'"):
        release.run(load(released, "hdma"), p)


def test_release_refuses_stale_validation(released):
    p = paths_for("hdma", released)
    record = json.loads(p.record("validate").read_text())
    try:
        p.record("validate").write_text(json.dumps({**record, "blended_sha256": "0" * 64}))
        with pytest.raises(SynthgateError, match="validation report is for another blended file"):
            release.run(load(released, "hdma"), p)
    finally:
        p.record("validate").write_text(json.dumps(record))


def _blocked_report(ws: Path) -> Path:
    """Validate with an impossible quality threshold: a report that says BLOCKED (record matches)."""
    run_stages(ws, "hdma", ("validate",), {"gates": {"quality_min": 0.999}})
    return paths_for("hdma", ws).validation


def _flip_to_passed(validation: Path) -> None:
    report = json.loads(validation.read_text())
    for g in report["gates"]:
        g["passed"] = True
    report["passed"] = True
    validation.write_text(json.dumps(report))


def test_release_refuses_an_edited_validation_report(released):
    """Defect: release believed `passed` in an editable file. The digest in the run record catches it."""
    from pipelines.errors import IntegrityError

    p = paths_for("hdma", released)
    before = _tree(p.release_dir)
    _flip_to_passed(_blocked_report(released))
    cfg = load(released, "hdma", {"gates": {"quality_min": 0.999}})
    with pytest.raises(IntegrityError, match=r"validation\.json: sha256 .* is not the .* recorded in runs/hdma"):
        release.run(cfg, p)
    assert _tree(p.release_dir) == before
    run_stages(released, "hdma", ("validate",))


def test_release_refuses_a_report_whose_digest_was_rewritten_too(released):
    """An attacker who also rewrites the record's digest is caught by the recomputed verdicts and MLflow."""
    from pipelines.errors import IntegrityError

    p = paths_for("hdma", released)
    before = _tree(p.release_dir)
    validation = _blocked_report(released)
    report = json.loads(validation.read_text())
    quality = next(g for g in report["gates"] if g["name"] == "quality")
    quality["value"], quality["passed"], report["passed"] = 0.9995, True, True  # a forged, consistent verdict
    validation.write_text(json.dumps(report))
    record = json.loads(p.record("validate").read_text())
    record.update(passed=True, failed=[], validation={**record["validation"], "sha256": sha256_file(validation)})
    p.record("validate").write_text(json.dumps(record))
    cfg = load(released, "hdma", {"gates": {"quality_min": 0.999}})
    with pytest.raises(IntegrityError, match=r"gate 'quality': figure 0\.9995 but the validate run logged 0\.\d+"):
        release.run(cfg, p)
    assert _tree(p.release_dir) == before
    run_stages(released, "hdma", ("validate",))


def test_release_refuses_a_report_cut_off_from_its_record(released, monkeypatch):
    """validate killed after writing validation.json but before its record: the old record does not match."""
    from pipelines.errors import IntegrityError
    from pipelines.records.validation import ValidateRecord

    p = paths_for("hdma", released)
    before = _tree(p.release_dir)

    def killed(self, path):
        raise KeyboardInterrupt("killed before the record was written")

    monkeypatch.setattr(ValidateRecord, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        run_stages(released, "hdma", ("validate",), {"gates": {"quality_min": 0.999}})
    monkeypatch.undo()
    assert not json.loads(p.validation.read_text())["passed"]
    with pytest.raises(IntegrityError, match="validate was interrupted"):
        release.run(load(released, "hdma", {"gates": {"quality_min": 0.999}}), p)
    assert _tree(p.release_dir) == before
    run_stages(released, "hdma", ("validate",))


def test_release_refuses_thresholds_that_are_not_the_params(released):
    """A report computed with other thresholds than params.yaml's now: re-run validate, not publish."""
    from pipelines.errors import IntegrityError

    p = paths_for("hdma", released)
    run_stages(released, "hdma", ("validate",), {"gates": {"quality_min": 0.1}})
    with pytest.raises(IntegrityError, match=r"gate 'quality': threshold 0\.1 recorded, but gates\.quality_min is"):
        release.run(load(released, "hdma"), p)
    run_stages(released, "hdma", ("validate",))


def test_lineage_flags_a_manifest_whose_verdict_does_not_hold(released):
    from pipelines.lineage import lineage

    p = paths_for("hdma", released)
    version = json.loads(p.manifest.read_text())["version"]
    copies = [p.manifest, p.manifests_dir / f"v{version:04d}.json"]
    originals = [f.read_text() for f in copies]
    try:
        m = json.loads(originals[0])
        m["gates"][0]["value"] = -1.0 if m["gates"][0]["comparison"] == ">=" else 1e9
        for f in copies:
            f.write_text(json.dumps(m))
        out = lineage(f"hdma@{version}", released, use_dvc=False)
        assert any(f"gate '{m['gates'][0]['name']}': recorded as passed" in x for x in out["tampered_items"]), out[
            "tampered_items"
        ]
        assert not out["ok"]
    finally:
        for f, text in zip(copies, originals, strict=True):
            f.write_text(text)


def test_a_dead_pipeline_run_is_never_joined(released):
    """A killed run left its parent RUNNING with other params: the next run opens its own parent,
    closes the dead one as FAILED (tagged stale), and the parent's params are the manifest's."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import experiment_name, get_run, use_store

    use_store(released)
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment_name("hdma"))
    dead = client.create_run(
        exp.experiment_id,
        run_name="hdma-pipeline",
        tags={"synthgate.role": "pipeline", "synthgate.runner": "cli", "synthgate.dataset": "hdma"},
    ).info.run_id
    client.log_param(dead, "generate.rows", "1000000000000")
    run_stages(released, "hdma", ("validate", "release"))
    m = json.loads(paths_for("hdma", released).manifest.read_text())
    assert m["mlflow"]["run_id"] != dead
    stale = get_run(dead, released)
    assert stale.info.status == "FAILED" and "later pipeline run" in stale.data.tags["synthgate.stale"]
    assert get_run(m["mlflow"]["run_id"], released).data.params["generate.rows"] == str(m["params"]["generate"]["rows"])


def test_releases_lists_every_version(released):
    from pipelines.lineage import releases

    listed = releases("hdma", released)
    versions = sorted(r["version"] for r in listed["releases"] if r["verdict"] == "released")
    on_disk = sorted(int(f.stem[1:]) for f in paths_for("hdma", released).manifests_dir.glob("v*.json"))
    assert versions == on_disk and len(versions) >= 2


def test_every_gate_records_a_threshold_release_can_verify(released):
    """At the shipped defaults (fidelity floors on), each gate's recorded threshold is its params.yaml
    value plus its recorded allowance: release recomputes the verdicts instead of refusing them."""
    from pipelines.verdicts import verdict_problems

    p = paths_for("hdma", released)
    shipped = {"gates": defaults()["gates"]}
    cfg = load(released, "hdma", shipped)
    run_stages(released, "hdma", ("validate",), shipped)
    gates = json.loads(p.validation.read_text())["gates"]
    assert verdict_problems(gates, cfg.gates.model_dump()) == []
    assert {"column_shape", "pair_trend"} <= {g["name"] for g in gates if g.get("allowance")}
    try:
        release.run(cfg, p)  # publishes, or is blocked by a gate: never refused as untrustworthy
    except GateFailed:
        pass
    run_stages(released, "hdma", ("validate",))
