"""Lineage for auditors: walk a release back to its source, code, params, model and gates.

Everything is read from the records, never recomputed from the workspace as it is now:

- the release manifest (`data/release/<ds>/manifest.json`, and every version under `manifests/`);
- the run records it digests (`runs/<ds>/<stage>.json`, sha256 in `manifest["records"]`; for an old
  release the copies kept with each MLflow stage run under `records/<stage>.json`);
- MLflow: the pipeline (parent) run, the stage runs, the registered model version, the manifest
  copy logged by the release run;
- DVC and git: which `dvc.lock` (workspace and commits) records the release directory, whether its
  objects are in the DVC cache / local remote, and the recorded code commit;
- the attempts log `logs/releases/<ds>.jsonl`.

File digests are recomputed only to *check* files against those records (tamper detection). A
missing or inconsistent record is reported in `problems`; nothing is guessed.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import STAGES, relational
from pipelines.errors import InvalidInputError
from pipelines.io import read_json, sha256_file
from pipelines.paths import paths_for, repo_root

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig

UPSTREAM = [s for s in STAGES if s != "release"]
PARAM_KEYS = ("seed", "ingest", "fit", "generate", "blend", "gates")
_REF = re.compile(r"^(?P<ds>[a-z][a-z0-9_]{0,62})@v?(?P<ver>\d+|latest)$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,64}$")
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")
GIT_HISTORY_LIMIT = 100


@dataclass(frozen=True)
class Release:
    """One published manifest found on disk."""

    dataset: str
    version: int
    path: Path
    manifest: dict[str, Any]
    current: bool


def recorded_defaults(cfg: DatasetConfig, root: Path) -> dict[str, Any] | None:
    """What `defaults` alone gives this dataset (params.yaml at release time), for the manifest.

    Lineage compares the effective params with these. None when params.yaml cannot be read.
    """
    from pipelines.config import SECTIONS, build_dataset, load_params
    from pipelines.errors import ConfigError

    try:
        params = load_params(root / "params.yaml")
        base: dict[str, Any] = {
            "source": cfg.source.model_dump(mode="json"),
            "target": cfg.target,
            "seed": params.defaults.get("seed", cfg.seed),
            **{s: {} for s in SECTIONS},
        }
        values = build_dataset(cfg.name, base, params.defaults).to_params()
    except (ConfigError, OSError):
        return None
    return {k: values[k] for k in PARAM_KEYS}


# ----------------------------------------------------------------------------------------------
# Finding releases
# ----------------------------------------------------------------------------------------------


def find_releases(root: Path, dataset: str | None = None) -> list[Release]:
    """Every manifest on disk (all versions), oldest first per dataset."""
    base = root / "data" / "release"
    if dataset is not None:
        names = [dataset]
    else:
        names = (
            sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []
        )
    found: list[Release] = []
    for name in names:
        paths = paths_for(name, root)
        current = read_json(paths.manifest) if paths.manifest.is_file() else None
        cur_version = int(current["version"]) if current else None
        versions: dict[int, Release] = {}
        if paths.manifests_dir.is_dir():
            for f in sorted(paths.manifests_dir.iterdir()):
                m = _VERSION_FILE.match(f.name)
                if m:
                    version = int(m.group(1))
                    versions[version] = Release(name, version, f, read_json(f), version == cur_version)
        if current is not None and cur_version not in versions:
            versions[cur_version] = Release(name, cur_version, paths.manifest, current, True)
        found += [versions[v] for v in sorted(versions)]
    return found


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def resolve(query: str, root: Path) -> tuple[Release, dict[str, Any]]:
    """The release a query names: `<ds>@<version>` (or `@latest`), a file path, or a sha256 (prefix)."""
    m = _REF.match(query)
    if m:
        dataset = m.group("ds")
        releases = find_releases(root, dataset)
        if not releases:
            raise InvalidInputError(
                query,
                [f"dataset '{dataset}' has no release under {root}/data/release"],
                hint="List releases with `synthgate releases <dataset>`.",
            )
        if m.group("ver") == "latest":
            chosen = next((r for r in releases if r.current), releases[-1])
        else:
            version = int(m.group("ver"))
            chosen = next((r for r in releases if r.version == version), None)
            if chosen is None:
                have = ", ".join(f"v{r.version}" for r in releases)
                raise InvalidInputError(query, [f"no release v{version} of '{dataset}' (there are: {have})"])
        return chosen, {"kind": "version", "query": query}

    path = Path(query)
    candidates = [path] if path.is_absolute() else [root / path, Path.cwd() / path]
    file = next((p for p in candidates if p.is_file()), None)
    if file is not None:
        return _resolve_file(file, root, query)
    if _HEX.match(query):
        return _resolve_digest(query.lower(), root)
    raise InvalidInputError(
        query,
        ["not a file, a sha256 (8-64 hex digits) or <dataset>@<version>"],
        hint="Examples: data/release/hdma/hdma.parquet, hdma@3, hdma@latest, d24eb9d2…",
    )


def _resolve_digest(prefix: str, root: Path) -> tuple[Release, dict[str, Any]]:
    hits = [
        (r, f)
        for r in find_releases(root)
        for f in r.manifest.get("files", [])
        if f.get("sha256", "").startswith(prefix)
    ]
    if not hits:
        raise InvalidInputError(
            prefix,
            ["no release file of any dataset has this sha256"],
            hint="The file is not a Synthgate release, or it was modified.",
        )
    digests = {f["sha256"] for _, f in hits}
    if len(digests) > 1:
        raise InvalidInputError(prefix, [f"ambiguous prefix: matches {len(digests)} digests; give more digits"])
    release, entry = hits[-1]  # the same bytes in several versions: the newest one that has them
    return release, {
        "kind": "sha256",
        "query": prefix,
        "matched_file": entry["path"],
        "matched_versions": [r.version for r, _ in hits],
    }


def _resolve_file(file: Path, root: Path, query: str) -> tuple[Release, dict[str, Any]]:
    rel = _rel(root, file)
    releases = find_releases(root)
    for r in releases:  # a manifest itself
        if file.resolve() == r.path.resolve():
            return r, {"kind": "manifest", "query": query, "path": rel}
    if file.name == "manifest.json" and file.parent.name in {r.dataset for r in releases}:
        current = next(r for r in reversed(releases) if r.dataset == file.parent.name and r.current)
        return current, {"kind": "manifest", "query": query, "path": rel}
    digest = sha256_file(file)
    hits = [(r, f) for r in releases for f in r.manifest.get("files", []) if f.get("sha256") == digest]
    if hits:
        release, entry = hits[-1]
        return release, {
            "kind": "file",
            "query": query,
            "path": rel,
            "sha256": digest,
            "matched_file": entry["path"],
            "matched_versions": [r.version for r, _ in hits],
        }
    claimed = [r for r in releases if r.current and any(f.get("path") == rel for f in r.manifest["files"])]
    if claimed:  # the release file at its own path, but not the recorded bytes: tampered
        return claimed[0], {
            "kind": "file",
            "query": query,
            "path": rel,
            "sha256": digest,
            "matched_file": None,
            "matched_versions": [],
        }
    raise InvalidInputError(
        query,
        [f"sha256 {digest} matches no file of any release under {root}"],
        hint="The file is not a Synthgate release, or it was modified after release.",
    )


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.tampered: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def tamper(self, text: str) -> None:
        self.tampered.append(text)
        self.problems.append(f"TAMPERED: {text}")


def _check_files(
    rel: Release, releases: list[Release], root: Path, how: dict[str, Any], rep: _Report
) -> list[dict[str, Any]]:
    current = next((r for r in releases if r.dataset == rel.dataset and r.current), None)
    rows = []
    for entry in rel.manifest.get("files", []):
        path = root / entry["path"]
        row = {**entry}
        if not path.exists():
            row["status"] = "missing"
            if rel.current:
                rep.problem(f"{entry['path']}: missing from disk (recorded sha256 {entry['sha256']})")
        else:
            actual = relational.digest(path)  # a table-set folder has a tree digest
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


def _check_manifest(rel: Release, root: Path, rep: _Report) -> dict[str, Any]:
    paths = paths_for(rel.dataset, root)
    versioned = paths.manifests_dir / f"v{rel.version:04d}.json"
    out: dict[str, Any] = {"path": _rel(root, rel.path), "sha256": sha256_file(rel.path)}
    if versioned.is_file():
        out["versioned_copy"] = _rel(root, versioned)
        if rel.current and paths.manifest.is_file() and sha256_file(paths.manifest) != sha256_file(versioned):
            rep.tamper(f"{_rel(root, paths.manifest)} differs from {_rel(root, versioned)}")
    else:
        rep.problem(f"{_rel(root, versioned)}: versioned copy of the manifest is missing")
    if rel.manifest.get("dataset") != rel.dataset or int(rel.manifest.get("version", -1)) != rel.version:
        rep.tamper(
            f"{out['path']}: says dataset {rel.manifest.get('dataset')!r} v{rel.manifest.get('version')}, "
            f"but is stored as {rel.dataset} v{rel.version}"
        )
    return out


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _code(manifest: dict[str, Any], root: Path, rep: _Report) -> dict[str, Any]:
    commit = manifest.get("git_commit")
    out: dict[str, Any] = {
        "git_commit": commit,
        "git_dirty": manifest.get("git_dirty"),
        "git_dirty_paths": manifest.get("git_dirty_paths"),
    }
    if not commit:
        rep.problem("no git commit recorded: the code that made this release cannot be identified")
        return out
    show = _git(root, "show", "-s", "--format=%cI%x1f%an%x1f%s", f"{commit}^{{commit}}")
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


def _params(manifest: dict[str, Any], rep: _Report) -> dict[str, Any]:
    effective = manifest.get("params") or {}
    defaults = manifest.get("param_defaults")
    out: dict[str, Any] = {"effective": effective, "defaults": defaults, "differences": None}
    if defaults is None:
        rep.notes.append(
            "the manifest does not record the defaults of its time: effective params are shown without a comparison"
        )
        return out
    flat_e, flat_d = _flatten({k: effective.get(k) for k in PARAM_KEYS}), _flatten(defaults)
    out["differences"] = [
        {"key": k, "effective": flat_e.get(k), "default": flat_d.get(k)}
        for k in sorted(set(flat_e) | set(flat_d))
        if flat_e.get(k) != flat_d.get(k)
    ]
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _attempt(rel: Release, root: Path, rep: _Report) -> dict[str, Any] | None:

    log = paths_for(rel.dataset, root).attempts_log
    entries = read_attempts(log)
    entry = next((e for e in entries if e.get("verdict") == "released" and e.get("version") == rel.version), None)
    if entry is None:
        rep.notes.append(
            f"v{rel.version} is not in {_rel(root, log)} (the attempts log is local to the machine that released)"
        )
        return None
    files = rel.manifest.get("files") or [{}]
    if entry.get("release_sha256") != files[0].get("sha256"):
        rep.problem(
            f"{_rel(root, log)}: v{rel.version} logged with release sha256 {entry.get('release_sha256')}, "
            f"manifest says {files[0].get('sha256')}"
        )
    if entry.get("mlflow_run_id") != rel.manifest.get("mlflow", {}).get("run_id"):
        rep.problem(
            f"{_rel(root, log)}: v{rel.version} logged with MLflow run {entry.get('mlflow_run_id')}, "
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


# ----------------------------------------------------------------------------------------------
# MLflow
# ----------------------------------------------------------------------------------------------


class MlflowUnavailable(RuntimeError):
    """The tracking store cannot be read."""


def mlflow_client(root: Path) -> Any:
    """A client for the workspace's tracking store; never creates an empty local store."""
    from pipelines.tracking import tracking_uri

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise MlflowUnavailable(f"no MLflow store at {uri.removeprefix('sqlite:///')}")
    if uri.startswith(("http://", "https://")):
        _probe(uri)
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import use_store

    use_store(root)
    return MlflowClient(tracking_uri=uri)


def _probe(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an unreachable tracking server (the MLflow client retries for minutes)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # it answered: reachable (a proxy or auth in front may refuse /health itself)
    except (urllib.error.URLError, OSError) as err:
        raise MlflowUnavailable(f"tracking server {uri} is not reachable ({err})") from None


def _artifact_sha256(client: Any, run_id: str, path: str) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:  # missing artifact: MLflow raises several types
            return None
        return sha256_file(Path(local))


def _artifact_json(client: Any, run_id: str, path: str) -> tuple[str, dict[str, Any]] | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(client.download_artifacts(run_id, path, tmp))
        except Exception:  # missing artifact
            return None
        return sha256_file(local), json.loads(local.read_text(encoding="utf-8"))


def _run_summary(run: Any) -> dict[str, Any]:
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "tags": {k: v for k, v in tags.items() if k.startswith("synthgate.")},
    }


def _order(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def _mlflow(rel: Release, root: Path, rep: _Report) -> tuple[dict[str, Any], Any]:
    m = rel.manifest.get("mlflow") or {}
    out: dict[str, Any] = {"experiment": m.get("experiment"), "run_id": m.get("run_id"), "available": False}
    try:
        client = mlflow_client(root)
    except MlflowUnavailable as err:
        rep.problem(f"MLflow: {err}; MLflow records could not be checked")
        return out, None
    out["available"] = True
    try:
        parent = client.get_run(m["run_id"])
    except Exception as err:  # RestException / MlflowException / KeyError
        rep.problem(f"MLflow: pipeline run {m.get('run_id')} not found ({type(err).__name__})")
        return out, client
    out["pipeline_run"] = summary = _run_summary(parent)
    tags = summary["tags"]
    if tags.get("synthgate.verdict") != "released":
        rep.problem(f"MLflow: pipeline run {m['run_id']} has verdict {tags.get('synthgate.verdict')!r}, not 'released'")
    if tags.get("synthgate.release_version") not in (None, str(rel.version)):
        rep.problem(
            f"MLflow: pipeline run {m['run_id']} is tagged release v{tags['synthgate.release_version']}, "
            f"the manifest is v{rel.version}"
        )
    if rel.manifest.get("git_commit") and tags.get("synthgate.git_commit") not in (None, rel.manifest["git_commit"]):
        rep.problem(
            f"MLflow: pipeline run was started at commit {tags['synthgate.git_commit']}, "
            f"the manifest records {rel.manifest['git_commit']}"
        )
    stages: dict[str, Any] = {}
    for stage, run_id in sorted((m.get("stage_runs") or {}).items(), key=lambda kv: _order(kv[0])):
        try:
            s = _run_summary(client.get_run(run_id))
        except Exception as err:  # missing run
            rep.problem(f"MLflow: {stage} run {run_id} not found ({type(err).__name__})")
            continue
        stages[stage] = s
        if s["parent_run_id"] != m["run_id"]:
            if stage != "release" and (s["start_time"] or 0) <= (parent.info.start_time or 0):
                s["reused_from"] = s["parent_run_id"]  # DVC skipped the stage: its inputs had not changed
                rep.notes.append(
                    f"{stage} was not re-run for this release: its outputs come from pipeline run "
                    f"{s['parent_run_id']} (DVC skips a stage whose inputs did not change)"
                )
            else:
                rep.problem(
                    f"MLflow: {stage} run {run_id} belongs to pipeline run {s['parent_run_id']}, not {m['run_id']}"
                )
        if s["status"] != "FINISHED":
            rep.problem(f"MLflow: {stage} run {run_id} is {s['status']}")
    out["stage_runs"] = stages
    missing = [s for s in STAGES if s not in (m.get("stage_runs") or {})]
    if missing:
        rep.problem(f"manifest names no MLflow run for stage(s) {', '.join(missing)}")
    release_run = (m.get("stage_runs") or {}).get("release")
    if release_run:
        logged = _artifact_sha256(client, release_run, "release/manifest.json")
        out["manifest_copy_sha256"] = logged
        if logged is None:
            rep.problem(f"MLflow: release run {release_run} has no release/manifest.json artifact")
        else:
            current = paths_for(rel.dataset, root).manifest
            checked = {rel.path, current} if rel.current and current.is_file() else {rel.path}
            for path in sorted(checked):
                if logged != sha256_file(path):
                    rep.tamper(
                        f"{_rel(root, path)}: differs from the copy logged to MLflow run {release_run} "
                        f"(sha256 {logged})"
                    )
    return out, client


def _model(rel: Release, client: Any, rep: _Report) -> dict[str, Any]:
    model = dict(rel.manifest.get("model") or {})
    name, version = model.get("registered_model"), model.get("registered_version")
    if client is None or not name or not version:
        if not name or not version:
            rep.problem("manifest names no registered model version")
        return model
    try:
        mv = client.get_model_version(name, str(version))
    except Exception as err:  # RestException: not found
        rep.problem(f"MLflow: registered model {name} v{version} not found ({type(err).__name__})")
        return model
    model["registry"] = {
        "status": mv.status,
        "run_id": mv.run_id,
        "source": mv.source,
        "created": mv.creation_timestamp,
    }
    fit_run = (rel.manifest.get("mlflow") or {}).get("stage_runs", {}).get("fit")
    if fit_run and mv.run_id and mv.run_id != fit_run:
        rep.problem(f"MLflow: {name} v{version} was logged by run {mv.run_id}, the manifest's fit run is {fit_run}")
    return model


def _records(rel: Release, root: Path, client: Any, rep: _Report) -> dict[str, dict[str, Any]]:
    paths = paths_for(rel.dataset, root)
    digests = rel.manifest.get("records") or {}
    stage_runs = (rel.manifest.get("mlflow") or {}).get("stage_runs") or {}
    out: dict[str, dict[str, Any]] = {}
    for stage in UPSTREAM:
        want = digests.get(stage)
        row: dict[str, Any] = {"sha256": want, "status": "unverified", "record": None}
        out[stage] = row
        if want is None:
            rep.problem(f"manifest records no digest for the {stage} run record")
            continue
        disk = paths.record(stage)
        on_disk = read_json(disk) if disk.is_file() else None
        if on_disk is not None and sha256_file(disk) == want:
            row.update(status="ok", source=_rel(root, disk), record=on_disk)
            continue
        if on_disk is not None and on_disk.get("mlflow", {}).get("run_id") == stage_runs.get(stage):
            rep.tamper(
                f"{_rel(root, disk)}: same MLflow run as v{rel.version} but its sha256 differs from the manifest's"
            )
        copy = (
            _artifact_json(client, stage_runs[stage], f"records/{stage}.json")
            if client is not None and stage in stage_runs
            else None
        )
        if copy is not None and copy[0] == want:
            row.update(status="ok", source=f"mlflow:{stage_runs[stage]}/records/{stage}.json", record=copy[1])
            continue
        if copy is not None:
            rep.tamper(
                f"MLflow copy of the {stage} record (run {stage_runs[stage]}) has sha256 {copy[0]}, "
                f"the manifest records {want}"
            )
        reason = (
            "missing on disk"
            if on_disk is None
            else f"{_rel(root, disk)} belongs to a later run ({on_disk.get('mlflow', {}).get('run_id')})"
        )
        row["status"] = f"unverified: {reason}; no matching copy in MLflow"
        rep.problem(
            f"{stage} run record of v{rel.version} cannot be verified: {reason}, "
            "and MLflow holds no copy with the recorded digest"
        )
    return out


# ----------------------------------------------------------------------------------------------
# DVC
# ----------------------------------------------------------------------------------------------


def dvc_dirs(root: Path) -> tuple[Path, dict[str, Path | str]]:
    """The DVC cache directory and the remotes (local ones as paths, others as URLs)."""
    cfg = configparser.ConfigParser()
    dvc_dir = root / ".dvc"
    cfg.read([dvc_dir / "config", dvc_dir / "config.local"])
    cache = dvc_dir / "cache"
    if cfg.has_option("cache", "dir"):
        cache = (dvc_dir / cfg.get("cache", "dir")).resolve()
    remotes: dict[str, Path | str] = {}
    for section in cfg.sections():
        m = re.match(r"""^'?remote "(.+)"'?$""", section)
        if m and cfg.has_option(section, "url"):
            url = cfg.get(section, "url")
            remotes[m.group(1)] = url if "://" in url else (dvc_dir / url).resolve()
    return cache, remotes


def dvc_object(base: Path, md5: str) -> Path:
    return base / "files" / "md5" / md5[:2] / md5[2:]


def _dir_listing(md5_dir: str, cache: Path, remotes: dict[str, Path | str]) -> list[dict[str, str]] | None:
    for base in (cache, *[r for r in remotes.values() if isinstance(r, Path)]):
        obj = dvc_object(base, md5_dir)
        if obj.is_file():
            return json.loads(obj.read_text(encoding="utf-8"))
    return None


def _lock_release_md5(text: str | None, dataset: str) -> str | None:
    import yaml

    if not text:
        return None
    try:
        lock = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None
    stage = (lock.get("stages") or {}).get(f"release@{dataset}") or {}
    for out in stage.get("outs") or []:
        if out.get("path") == f"data/release/{dataset}":
            return out.get("md5")
    return None


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _dvc(rel: Release, releases: list[Release], root: Path, rep: _Report) -> dict[str, Any]:
    cache, remotes = dvc_dirs(root)
    by_md5 = {_md5(r.path): r.version for r in releases if r.dataset == rel.dataset}
    out: dict[str, Any] = {
        "stage": f"release@{rel.dataset}",
        "cache": _rel(root, cache),
        "remotes": {k: (_rel(root, v) if isinstance(v, Path) else v) for k, v in remotes.items()},
    }

    def version_in(md5_dir: str | None) -> tuple[int | None, list[dict[str, str]] | None]:
        if not md5_dir:
            return None, None
        listing = _dir_listing(md5_dir, cache, remotes)
        if listing is None:
            return None, None
        entry = next((e for e in listing if e.get("relpath") == "manifest.json"), None)
        return (by_md5.get(entry["md5"], -1) if entry else None), listing

    lock = root / "dvc.lock"
    md5_dir = _lock_release_md5(lock.read_text(encoding="utf-8") if lock.is_file() else None, rel.dataset)
    version, listing = version_in(md5_dir)
    out["workspace_lock"] = {"dir_md5": md5_dir, "records_version": version, "listing_available": listing is not None}
    if md5_dir and listing is None:
        rep.notes.append(
            f"dvc.lock names {md5_dir} for data/release/{rel.dataset}, but that object is in "
            "neither the DVC cache nor a local remote (run `dvc fetch`)"
        )
    commits = []
    log = _git(root, "log", f"-n{GIT_HISTORY_LIMIT}", "--format=%H%x1f%cI%x1f%s", "--", "dvc.lock") or ""
    for line in log.splitlines():
        sha, when, subject = ([*line.split("\x1f"), "", ""])[:3]
        v, _ = version_in(_lock_release_md5(_git(root, "show", f"{sha}:dvc.lock"), rel.dataset))
        if v == rel.version:
            commits.append({"commit": sha, "committed_at": when, "subject": subject})
    out["git_commits"] = commits
    file_entry = next((e for e in (listing or []) if e.get("relpath") == f"{rel.dataset}.parquet"), None)
    if version == rel.version and file_entry:
        obj = file_entry["md5"]
        out["restorable"] = {
            "cache": dvc_object(cache, obj).is_file(),
            **{
                name: (dvc_object(r, obj).is_file() if isinstance(r, Path) else "not checked")
                for name, r in remotes.items()
            },
        }
    if version is not None and version != rel.version and version != -1:
        out["note"] = f"the workspace dvc.lock records v{version}"
    if not commits and version != rel.version:
        rep.notes.append(
            f"no dvc.lock (workspace or the last {GIT_HISTORY_LIMIT} commits) records v{rel.version} "
            "of the release directory: `dvc commit` + `git commit dvc.lock` after a release"
        )
    return out


# ----------------------------------------------------------------------------------------------
# The whole chain
# ----------------------------------------------------------------------------------------------


def lineage(query: str, root: Path | None = None, *, use_mlflow: bool = True, use_dvc: bool = True) -> dict[str, Any]:
    """The lineage of the release `query` names, as a JSON-ready dict (see the module docstring)."""
    root = (root or repo_root()).resolve()
    rel, how = resolve(query, root)
    releases = find_releases(root, rel.dataset)
    m = rel.manifest
    rep = _Report()
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
    out["manifest"] = _check_manifest(rel, root, rep)
    out["files"] = _check_files(rel, releases, root, how, rep)
    out["rows"] = m.get("rows")
    out["gates"] = m.get("gates", [])
    out["gx"] = m.get("gx")
    out["blend"] = m.get("blend")
    mlflow_out, client = _mlflow(rel, root, rep) if use_mlflow else ({"available": False}, None)
    out["records"] = _records(rel, root, client, rep)
    out["model"] = _model(rel, client, rep)
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
    out["code"] = _code(m, root, rep)
    out["params"] = _params(m, rep)
    out["runner"] = m.get("runner")
    out["attempt"] = _attempt(rel, root, rep)
    out["dvc"] = _dvc(rel, releases, root, rep) if use_dvc else None
    if not out["gates"] or not all(g.get("passed") for g in out["gates"]):
        rep.problem("the manifest's gates are not all passed: a release is only published when every gate passes")
    _cross_check(out, rep)
    out["tampered"] = bool(rep.tampered)
    out["tampered_items"] = rep.tampered
    out["problems"] = rep.problems
    out["notes"] = rep.notes
    out["ok"] = not rep.problems
    return out


def _cross_check(out: dict[str, Any], rep: _Report) -> None:
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


# ----------------------------------------------------------------------------------------------
# Releases list
# ----------------------------------------------------------------------------------------------


def releases(dataset: str, root: Path | None = None, *, use_mlflow: bool = True) -> dict[str, Any]:
    """Every release attempt of a dataset, published or blocked, newest first.

    Joined from the attempts log, the manifests on disk and the MLflow pipeline runs (tagged
    `synthgate.verdict`); each row says which of these sources know it.
    """
    from pipelines.tracking import experiment_name

    root = (root or repo_root()).resolve()
    paths = paths_for(dataset, root)
    rows: dict[str, dict[str, Any]] = {}
    problems: list[str] = []

    def row_for(key: str) -> dict[str, Any]:
        return rows.setdefault(
            key,
            {
                "version": None,
                "time": None,
                "verdict": None,
                "source_sha256": None,
                "release_sha256": None,
                "mlflow_run_id": None,
                "runner": None,
                "failed_gates": [],
                "seen_in": [],
            },
        )

    for e in read_attempts(paths.attempts_log):
        r = row_for(e.get("mlflow_run_id") or f"log:{e.get('attempted_at')}")
        r.update(
            version=e.get("version"),
            time=e.get("attempted_at"),
            verdict=e.get("verdict"),
            source_sha256=e.get("source_sha256"),
            release_sha256=e.get("release_sha256"),
            mlflow_run_id=e.get("mlflow_run_id"),
            runner=(e.get("runner") or {}).get("runner"),
            failed_gates=e.get("failed", []),
        )
        r["seen_in"].append("attempts log")
    for rel in find_releases(root, dataset):
        m = rel.manifest
        run_id = (m.get("mlflow") or {}).get("run_id")
        r = row_for(run_id or f"manifest:{rel.version}")
        r.update(
            version=rel.version,
            time=r["time"] or m.get("created_at"),
            verdict="released",
            source_sha256=(m.get("source") or {}).get("sha256"),
            release_sha256=(m.get("files") or [{}])[0].get("sha256"),
            mlflow_run_id=run_id,
            runner=(m.get("runner") or {}).get("runner"),
        )
        r["seen_in"].append("manifest")
    if use_mlflow:
        try:
            client = mlflow_client(root)
            exp = client.get_experiment_by_name(experiment_name(dataset))
            runs = (
                client.search_runs([exp.experiment_id], "tags.`synthgate.role` = 'pipeline'", max_results=5000)
                if exp
                else []
            )
            ingest_runs = (
                client.search_runs([exp.experiment_id], "tags.`synthgate.stage` = 'ingest'", max_results=5000)
                if exp
                else []
            )
        except Exception as err:  # MlflowUnavailable, or any error the tracking store raises
            problems.append(f"MLflow: {err}")
            runs, ingest_runs = [], []
        source_by_parent = {
            r.data.tags.get("mlflow.parentRunId"): r.data.params.get("source.sha256") for r in ingest_runs
        }
        for run in runs:
            tags = run.data.tags
            r = row_for(run.info.run_id)
            verdict = tags.get("synthgate.verdict") or {"FAILED": "failed", "RUNNING": "running"}.get(
                run.info.status, run.info.status.lower()
            )
            version = tags.get("synthgate.release_version")
            r.update(
                mlflow_run_id=run.info.run_id,
                verdict=r["verdict"] or verdict,
                version=r["version"] if r["version"] is not None else (int(version) if version else None),
                time=r["time"] or _iso(run.info.start_time),
                source_sha256=r["source_sha256"] or source_by_parent.get(run.info.run_id),
                runner=r["runner"] or tags.get("synthgate.runner"),
            )
            r["seen_in"].append("mlflow")
            if tags.get("synthgate.verdict") and r["verdict"] != tags["synthgate.verdict"]:
                problems.append(
                    f"run {run.info.run_id}: verdict {r['verdict']!r} in the log/manifest, "
                    f"{tags['synthgate.verdict']!r} in MLflow"
                )
    ordered = sorted(rows.values(), key=lambda r: r["time"] or "", reverse=True)
    for r in ordered:
        if r["verdict"] == "released" and "manifest" not in r["seen_in"]:
            problems.append(
                f"v{r['version']} (run {r['mlflow_run_id']}) was released, but its manifest "
                f"{paths.manifests_dir.relative_to(root)}/v{(r['version'] or 0):04d}.json is missing"
            )
    return {"dataset": dataset, "releases": ordered, "problems": problems}


def _iso(ms: int | None) -> str | None:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------


def _short(digest: str | None, n: int = 16) -> str:
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
