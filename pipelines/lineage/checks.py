"""Checks of one release against its records: files, manifest, code, params, attempts log, and
the cross-check of the digests the verified run records share with the manifest.

Each check adds what it finds to a `Findings`: problems (a tampered file is also a problem), notes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines import tableset
from pipelines.config import PARAM_KEYS
from pipelines.errors import InvalidInputError
from pipelines.gitinfo import git
from pipelines.io import flatten, sha256_file
from pipelines.lineage.locate import Release, relpath
from pipelines.paths import paths_for


class Findings:
    """What the checks of one release found: problems, notes and the tampered items among the problems."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.tampered: list[str] = []

    def problem(self, text: str) -> None:
        """A record is missing or inconsistent."""
        self.problems.append(text)

    def tamper(self, text: str) -> None:
        """A file or record does not have its recorded digest (also a problem)."""
        self.tampered.append(text)
        self.problems.append(f"TAMPERED: {text}")


def check_files(
    rel: Release, releases: list[Release], root: Path, how: dict[str, Any], rep: Findings
) -> list[dict[str, Any]]:
    """Each release file with its status (ok, missing, superseded, TAMPERED) against the recorded digest."""
    current = next((r for r in releases if r.dataset == rel.dataset and r.current), None)
    rows = []
    for entry in rel.manifest.get("files", []):
        path = root / entry["path"]
        row = {**entry}
        if not path.exists():  # only the current version's data is on disk
            kept = rel.current or current is None
            row["status"] = "missing" if kept else f"not kept (superseded by v{current.version})"
            if rel.current:
                rep.problem(f"{entry['path']}: missing from disk (recorded sha256 {entry['sha256']})")
        else:
            actual = tableset.digest(path)  # a table-set folder has a tree digest
            row["sha256_on_disk"] = actual
            if actual == entry["sha256"]:
                row["status"] = "ok"
            elif (
                not rel.current
                and current is not None
                and any(f["path"] == entry["path"] and f["sha256"] == actual for f in current.manifest["files"])
            ):
                row["status"] = f"superseded by v{current.version} (the file on disk is v{current.version}'s)"
            else:
                row["status"] = "TAMPERED"
                rep.tamper(f"{entry['path']}: sha256 on disk {actual} != recorded {entry['sha256']}")
        rows.append(row)
    listed = {f["path"] for f in rel.manifest.get("files", [])}
    if how.get("kind") == "file" and how.get("matched_file") is None and how.get("path") not in listed:
        rep.tamper(f"{how['path']}: sha256 {how['sha256']} is not the recorded digest of any release")
    return rows


def check_manifest(rel: Release, root: Path, rep: Findings) -> dict[str, Any]:
    """The manifest's path and digest; its versioned copy and its own dataset/version must agree."""
    paths = paths_for(rel.dataset, root)
    versioned = paths.manifests_dir / f"v{rel.version:04d}.json"
    out: dict[str, Any] = {"path": relpath(root, rel.path), "sha256": sha256_file(rel.path)}
    if versioned.is_file():
        out["versioned_copy"] = relpath(root, versioned)
        if rel.current and paths.manifest.is_file() and sha256_file(paths.manifest) != sha256_file(versioned):
            rep.tamper(f"{relpath(root, paths.manifest)} differs from {relpath(root, versioned)}")
    else:
        rep.problem(f"{relpath(root, versioned)}: versioned copy of the manifest is missing")
    if rel.manifest.get("dataset") != rel.dataset or int(rel.manifest.get("version", -1)) != rel.version:
        rep.tamper(
            f"{out['path']}: says dataset {rel.manifest.get('dataset')!r} v{rel.manifest.get('version')}, "
            f"but is stored as {rel.dataset} v{rel.version}"
        )
    return out


def check_code(manifest: dict[str, Any], root: Path, rep: Findings) -> dict[str, Any]:
    """The recorded git commit (and dirty state), with its date, author and subject when the repo has it."""
    commit = manifest.get("git_commit")
    out: dict[str, Any] = {
        "git_commit": commit,
        "git_dirty": manifest.get("git_dirty"),
        "git_dirty_paths": manifest.get("git_dirty_paths"),
    }
    if not commit:
        rep.problem("no git commit recorded: the code that made this release cannot be identified")
        return out
    show = git(root, "show", "-s", "--format=%cI%x1f%an%x1f%s", f"{commit}^{{commit}}")
    if show is None:
        out["in_repository"] = False
        rep.notes.append(f"commit {commit} is not in this repository (fetch it to inspect or reproduce)")
    else:
        when, author, subject = ([*show.strip().split("\x1f"), "", ""])[:3]
        out.update(in_repository=True, committed_at=when, author=author, subject=subject)
    if manifest.get("git_dirty"):
        rep.notes.append(
            "the working tree had uncommitted changes at release time"
            + (f" ({', '.join(manifest['git_dirty_paths'])})" if manifest.get("git_dirty_paths") else "")
            + ": the commit alone may not reproduce it"
        )
    return out


def check_params(manifest: dict[str, Any], rep: Findings) -> dict[str, Any]:
    """The effective params and, when the manifest records the defaults of its time, how they differ."""
    effective = manifest.get("params") or {}
    defaults = manifest.get("param_defaults")
    out: dict[str, Any] = {"effective": effective, "defaults": defaults, "differences": None}
    if defaults is None:
        rep.notes.append(
            "the manifest does not record the defaults of its time: effective params are shown without a comparison"
        )
        return out
    flat_e, flat_d = flatten({k: effective.get(k) for k in PARAM_KEYS}), flatten(defaults)
    out["differences"] = [
        {"key": k, "effective": flat_e.get(k), "default": flat_d.get(k)}
        for k in sorted(set(flat_e) | set(flat_d))
        if flat_e.get(k) != flat_d.get(k)
    ]
    return out


def check_attempt(rel: Release, root: Path, rep: Findings) -> dict[str, Any] | None:
    """The release's entry in the attempts log, which must name the manifest's digest and MLflow run."""
    log = paths_for(rel.dataset, root).attempts_log
    entries = read_attempts(log)
    entry = next((e for e in entries if e.get("verdict") == "released" and e.get("version") == rel.version), None)
    if entry is None:
        rep.notes.append(
            f"v{rel.version} is not in {relpath(root, log)} (the attempts log is local to the machine that released)"
        )
        return None
    files = rel.manifest.get("files") or [{}]
    if entry.get("release_sha256") != files[0].get("sha256"):
        rep.problem(
            f"{relpath(root, log)}: v{rel.version} logged with release sha256 {entry.get('release_sha256')}, "
            f"manifest says {files[0].get('sha256')}"
        )
    if entry.get("mlflow_run_id") != rel.manifest.get("mlflow", {}).get("run_id"):
        rep.problem(
            f"{relpath(root, log)}: v{rel.version} logged with MLflow run {entry.get('mlflow_run_id')}, "
            f"manifest says {rel.manifest.get('mlflow', {}).get('run_id')}"
        )
    return entry


def read_attempts(log: Path) -> list[dict[str, Any]]:
    """Every entry of a release attempts log (a corrupt line raises, naming the line)."""
    if not log.is_file():
        return []
    out = []
    for n, line in enumerate(log.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InvalidInputError(str(log), [f"line {n}: not valid JSON ({err})"]) from None
    return out


def cross_check(out: dict[str, Any], rep: Findings) -> None:
    """The records that verified must agree with the manifest on the digests they share."""
    recs = {s: r["record"] for s, r in out["records"].items() if r["record"] is not None}
    source, split, model = out["source"], out["split"] or {}, out["model"]
    pairs = []
    if "ingest" in recs:
        i = recs["ingest"]
        pairs += [
            ("source sha256", i["source"]["sha256"], source.get("sha256")),
            ("snapshot sha256", i["snapshot"]["sha256"], source.get("snapshot_sha256")),
            ("train sha256", i["train"]["sha256"], split.get("train_sha256")),
            ("holdout sha256", i["holdout"]["sha256"], split.get("holdout_sha256")),
        ]
    if "fit" in recs:
        pairs.append(("model sha256", recs["fit"]["model"]["sha256"], model.get("sha256")))
        if "ingest" in recs:
            pairs.append(("train used by fit", recs["fit"]["train"]["sha256"], recs["ingest"]["train"]["sha256"]))
    if "generate" in recs and "fit" in recs:
        pairs.append(("model used by generate", recs["generate"]["model"]["sha256"], recs["fit"]["model"]["sha256"]))
    if "validate" in recs and "blend" in recs:
        pairs.append(("blended file validated", recs["validate"]["blended_sha256"], recs["blend"]["blended"]["sha256"]))
    for what, a, b in pairs:
        if a != b:
            rep.problem(f"inconsistent records: {what}: {a} vs {b}")
