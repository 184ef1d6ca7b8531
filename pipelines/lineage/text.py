"""The lineage and releases reports as text for a terminal."""

from __future__ import annotations

import json
from typing import Any

from pipelines import STAGES


def _short(digest: str | None, n: int = 16) -> str:
    """A digest cut to `n` hex digits, `-` when there is none."""
    return f"{digest[:n]}…" if digest else "-"


def render(report: dict[str, Any]) -> str:
    """The lineage as text for a terminal, newest first (release -> ... -> source, code, params)."""
    r = report
    lines: list[str] = []
    add = lines.append
    state = "current release" if r["current"] else f"superseded (latest is v{r['latest_version']})"
    add(f"{r['dataset']} release v{r['version']}, created {r['created_at']} ({state})")
    how = r["resolved"]
    if how["kind"] in ("file", "sha256"):
        match = (
            f"matches {how['matched_file']} of v{', v'.join(map(str, how['matched_versions']))}"
            if how.get("matched_file")
            else "matches NO recorded digest"
        )
        add(f"  asked for: {how['query']} (sha256 {_short(how.get('sha256') or how['query'])}: {match})")
    verdict = (
        ("TAMPERED: " + "; ".join(r["tampered_items"]))
        if r["tampered"]
        else ("every recorded digest checks out" if r["ok"] else f"{len(r['problems'])} problem(s), see below")
    )
    add(f"  integrity: {verdict}")
    add("")
    add("release files (digests from the manifest; checked against the files on disk)")
    for f in r["files"]:
        rows = f"{f['rows']} rows" if f.get("rows") is not None else ""
        add(f"  {f['path']:<40} {rows:>11}  sha256 {f['sha256']}  {f['status']}")
    man = r["manifest"]
    mf = r["mlflow"]
    copy = "; same as the MLflow copy" if mf.get("manifest_copy_sha256") == man["sha256"] else ""
    add(f"  manifest {man['path']} sha256 {_short(man['sha256'])}{copy}")
    add("")
    gates = r["gates"]
    add(f"gates ({sum(g['passed'] for g in gates)}/{len(gates)} passed)")
    for g in gates:
        add(
            f"  [{'PASS' if g['passed'] else 'FAIL'}] {g['name']:<14} {g['value']:.4f} {g['comparison']} "
            f"{g['threshold']:.4f}"
        )
    gx = r.get("gx") or {}
    if gx:
        add(
            f"GX release suite {gx.get('suite')} (sha256 {_short(gx.get('suite_sha256'))}): "
            f"{'success' if gx.get('success') else 'FAILED'}; result {gx.get('result')} "
            f"(sha256 {_short(gx.get('result_sha256'))})"
        )
    b = r.get("blend") or {}
    if b:
        add(f"blend: {b.get('strategy')}, rows by provenance {b.get('rows_by_provenance')}")
    add("")
    mo = r["model"]
    add("model")
    add(
        f"  synthesizer {mo.get('synthesizer')} params {mo.get('params', '(fit record unavailable)')} "
        f"seed {mo.get('seed', '-')}"
    )
    add(f"  sha256 {mo.get('sha256')}")
    sub = mo.get("subsample")
    if sub:
        add(
            f"  fitted on {sub['fit_rows']:,} of {sub['train_rows']:,} train rows ({sub['method']}; fit.max_rows "
            f"{json.dumps(sub['max_rows'])}; positions sha256 {_short(sub['positions_sha256'])})"
        )
    reg = mo.get("registry") or {}
    add(
        f"  registered {mo.get('registered_model')} v{mo.get('registered_version')}"
        + (f" ({reg.get('status')}, logged by run {reg.get('run_id')})" if reg else "")
        + f"; uri {mo.get('uri')}"
    )
    add(f"MLflow experiment {mf.get('experiment')}" + ("" if mf.get("available") else " (not reachable)"))
    p = mf.get("pipeline_run") or {}
    add(
        f"  pipeline run {mf.get('run_id')}"
        + (f" {p['status']}, verdict {p['tags'].get('synthgate.verdict')}" if p else "")
    )
    for stage in STAGES:
        s = (mf.get("stage_runs") or {}).get(stage)
        if s:
            reused = f" (reused from pipeline run {s['reused_from']})" if s.get("reused_from") else ""
            add(f"  {stage:<9} run {s['run_id']} {s['status']}{reused}")
    add("run records (sha256 from the manifest)")
    for stage, rec in r["records"].items():
        where = rec.get("source", "")
        add(f"  {stage:<9} {_short(rec['sha256'])} {rec['status']}" + (f" ({where})" if where else ""))
    add("")
    s = r["source"]
    add("source")
    add(f"  {s.get('path')} ({s.get('format')}) sha256 {s.get('sha256')}")
    add(f"  {s.get('rows')} rows x {s.get('columns')} columns; snapshot sha256 {_short(s.get('snapshot_sha256'))}")
    if s.get("raw_contract"):
        c = s["raw_contract"]
        add(
            f"  raw contract {c['suite']} (sha256 {_short(c['sha256'])}): "
            f"{'passed' if c['success'] else 'FAILED'}, {c['evaluated']} expectations"
        )
    for note in s.get("normalisation") or []:
        add(f"  normalised: {note}")
    sp = r.get("split") or {}
    add(
        f"  split: train {sp.get('train_rows')} rows (sha256 {_short(sp.get('train_sha256'))}), holdout "
        f"{sp.get('holdout_rows')} rows (sha256 {_short(sp.get('holdout_sha256'))}); holdout_fraction "
        f"{sp.get('holdout_fraction')}, seed {sp.get('seed')}, stratified by {sp.get('stratified_by')}"
    )
    c = r["code"]
    dirty = {
        True: "yes" + (f" ({', '.join(c['git_dirty_paths'])})" if c.get("git_dirty_paths") else ""),
        False: "no",
        None: "unknown",
    }[c.get("git_dirty")]
    add("code")
    add(
        f"  git commit {c.get('git_commit')} (uncommitted changes: {dirty})"
        + (f"\n  {c['committed_at']} {c['author']}: {c['subject']}" if c.get("in_repository") else "")
    )
    pr = r["params"]
    diffs = pr.get("differences")
    if diffs is None:
        add("params (defaults not recorded in this manifest)")
    else:
        add(f"params: {len(diffs)} differ from the defaults")
        for d in diffs:
            add(f"  {d['key']}: {json.dumps(d['effective'])} (default {json.dumps(d['default'])})")
    run = r.get("runner") or {}
    add("run by: " + ", ".join(f"{k}={v}" for k, v in run.items()))
    dv = r.get("dvc")
    if dv:
        wl = dv["workspace_lock"]
        recorded = wl["records_version"]
        state = (
            "records this release"
            if recorded == r["version"]
            else f"records v{recorded}"
            if recorded not in (None, -1)
            else "records an unknown release"
            if recorded == -1
            else "has no object listing for it"
            if wl["dir_md5"]
            else "does not record it"
        )
        add(f"DVC: dvc.lock ({dv['stage']}) {state}")
        for cm in dv["git_commits"]:
            add(f"  recorded by git commit {cm['commit'][:12]} {cm['committed_at']}: {cm['subject']}")
        if dv.get("restorable"):
            add(
                "  release file in "
                + ", ".join(
                    f"{k}: {'yes' if v is True else 'no' if v is False else v}" for k, v in dv["restorable"].items()
                )
            )
    if r["problems"]:
        add("")
        add("PROBLEMS")
        lines += [f"  - {p}" for p in r["problems"]]
    if r["notes"]:
        add("notes")
        lines += [f"  - {n}" for n in r["notes"]]
    return "\n".join(lines)


def render_releases(report: dict[str, Any]) -> str:
    """The releases table as text."""
    rows = report["releases"]
    lines = [
        f"{report['dataset']}: {sum(r['verdict'] == 'released' for r in rows)} released, "
        f"{sum(r['verdict'] == 'blocked' for r in rows)} blocked, {len(rows)} attempts",
        f"{'version':<8} {'time':<26} {'verdict':<9} {'source sha256':<17} {'release sha256':<17} "
        f"{'MLflow run':<33} {'runner':<8} failed gates",
    ]
    for r in rows:
        version = f"v{r['version']}" if r["version"] is not None else "-"
        lines.append(
            f"{version:<8} {r['time'] or '-':<26} {r['verdict'] or '-':<9} "
            f"{_short(r['source_sha256'], 12):<17} {_short(r['release_sha256'], 12):<17} "
            f"{r['mlflow_run_id'] or '-':<33} {r['runner'] or '-':<8} {', '.join(r['failed_gates'])}"
        )
    lines += [f"problem: {p}" for p in report["problems"]]
    return "\n".join(lines)
