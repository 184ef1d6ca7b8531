"""`synthgate lineage <query>`: the whole chain of one release, from its records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.lineage.checks import (
    Findings,
    check_attempt,
    check_code,
    check_files,
    check_manifest,
    check_params,
    cross_check,
)
from pipelines.lineage.dvc_store import check_dvc
from pipelines.lineage.locate import find_releases, resolve
from pipelines.lineage.mlflow_store import check_mlflow, check_model, check_records
from pipelines.paths import repo_root
from pipelines.verdicts import verdict_problems


def lineage(query: str, root: Path | None = None, *, use_mlflow: bool = True, use_dvc: bool = True) -> dict[str, Any]:
    """The lineage of the release `query` names, as a JSON-ready dict (see `pipelines.lineage`)."""
    root = (root or repo_root()).resolve()
    rel, how = resolve(query, root)
    releases = find_releases(root, rel.dataset)
    m = rel.manifest
    rep = Findings()
    latest = max(r.version for r in releases)
    out: dict[str, Any] = {
        "dataset": rel.dataset,
        "version": rel.version,
        "current": rel.current,
        "latest_version": latest,
        "created_at": m.get("created_at"),
        "synthgate_version": m.get("synthgate_version"),
        "resolved": how,
    }
    out["manifest"] = check_manifest(rel, root, rep)
    out["files"] = check_files(rel, releases, root, how, rep)
    out["rows"] = m.get("rows")
    out["gates"] = m.get("gates", [])
    out["gx"] = m.get("gx")
    out["blend"] = m.get("blend")
    mlflow_out, client = check_mlflow(rel, root, rep) if use_mlflow else ({"available": False}, None)
    out["records"] = check_records(rel, root, client, rep)
    out["model"] = check_model(rel, client, rep)
    fit_record = out["records"]["fit"]["record"] or {}
    out["model"].update({k: fit_record[k] for k in ("params", "seed", "fit_seconds") if k in fit_record})
    out["mlflow"] = mlflow_out
    ingest_record = out["records"]["ingest"]["record"] or {}
    out["source"] = {
        **(m.get("source") or {}),
        **(
            {"normalisation": ingest_record["normalisation"], "raw_contract": ingest_record["contract"]}
            if ingest_record
            else {}
        ),
    }
    out["split"] = m.get("split")
    out["code"] = check_code(m, root, rep)
    out["params"] = check_params(m, rep)
    out["runner"] = m.get("runner")
    out["attempt"] = check_attempt(rel, root, rep)
    out["dvc"] = check_dvc(rel, releases, root, rep) if use_dvc else None
    if not out["gates"] or not all(g.get("passed") for g in out["gates"]):
        rep.problem("the manifest's gates are not all passed: a release is only published when every gate passes")
    for problem in verdict_problems(out["gates"], (m.get("params") or {}).get("gates")):
        rep.tamper(f"{out['manifest']['path']}: {problem}")
    cross_check(out, rep)
    out["tampered"] = bool(rep.tampered)
    out["tampered_items"] = rep.tampered
    out["problems"] = rep.problems
    out["notes"] = rep.notes
    out["ok"] = not rep.problems
    return out
