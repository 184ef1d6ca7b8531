"""DVC records of a release: which `dvc.lock` (workspace and git history) records its directory,
and whether its objects are in the DVC cache or a local remote."""

from __future__ import annotations

import configparser
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from pipelines.gitinfo import git
from pipelines.lineage.checks import Findings
from pipelines.lineage.locate import Release, relpath

GIT_HISTORY_LIMIT = 100
"""How many commits of dvc.lock are searched for the one that records a release."""


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
    """Where DVC 3 keeps the object with this md5 under a cache or local remote folder."""
    return base / "files" / "md5" / md5[:2] / md5[2:]


def _dir_listing(md5_dir: str, cache: Path, remotes: dict[str, Path | str]) -> list[dict[str, str]] | None:
    """The file listing of a DVC directory object, from the cache or a local remote."""
    for base in (cache, *[r for r in remotes.values() if isinstance(r, Path)]):
        obj = dvc_object(base, md5_dir)
        if obj.is_file():
            return json.loads(obj.read_text(encoding="utf-8"))
    return None


def _lock_release_md5(text: str | None, dataset: str) -> str | None:
    """The md5 a dvc.lock text records for `data/release/<dataset>` (None when it records none)."""
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


def _is_data(relpath: str, rel: Release) -> bool:
    """Whether a path of the release directory's DVC listing is release data: the file its manifest
    names first (`<ds>.parquet`), or a table of the folder it names (`tables/<table>.parquet`)."""
    data = ((rel.manifest.get("files") or [{}])[0].get("path") or "").removeprefix(f"data/release/{rel.dataset}/")
    return bool(data) and (relpath == data or relpath.startswith(f"{data}/"))


def _md5(path: Path) -> str:
    """md5 of a file, as DVC names its objects."""
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def check_dvc(rel: Release, releases: list[Release], root: Path, rep: Findings) -> dict[str, Any]:
    """Which dvc.lock (workspace, then git history) records this release, and where its file can be restored from."""
    cache, remotes = dvc_dirs(root)
    by_md5 = {_md5(r.path): r.version for r in releases if r.dataset == rel.dataset}
    out: dict[str, Any] = {
        "stage": f"release@{rel.dataset}",
        "cache": relpath(root, cache),
        "remotes": {k: (relpath(root, v) if isinstance(v, Path) else v) for k, v in remotes.items()},
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
    log = git(root, "log", f"-n{GIT_HISTORY_LIMIT}", "--format=%H%x1f%cI%x1f%s", "--", "dvc.lock") or ""
    for line in log.splitlines():
        sha, when, subject = ([*line.split("\x1f"), "", ""])[:3]
        v, _ = version_in(_lock_release_md5(git(root, "show", f"{sha}:dvc.lock"), rel.dataset))
        if v == rel.version:
            commits.append({"commit": sha, "committed_at": when, "subject": subject})
    out["git_commits"] = commits
    objects = [e["md5"] for e in (listing or []) if _is_data(e.get("relpath", ""), rel)]
    if version == rel.version and objects:
        out["restorable"] = {
            "cache": all(dvc_object(cache, obj).is_file() for obj in objects),
            **{
                name: (all(dvc_object(r, obj).is_file() for obj in objects) if isinstance(r, Path) else "not checked")
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
