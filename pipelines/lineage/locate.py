"""Finding releases on disk and resolving a query (a file path, a sha256 or `<ds>@<version>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import tableset
from pipelines.errors import InvalidInputError
from pipelines.io import read_json
from pipelines.paths import paths_for, releases_dir

_REF = re.compile(r"^(?P<ds>[a-z][a-z0-9_]{0,62})@v?(?P<ver>\d+|latest)$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,64}$")
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")


@dataclass(frozen=True)
class Release:
    """One published manifest found on disk."""

    dataset: str
    version: int
    path: Path
    manifest: dict[str, Any]
    current: bool


def find_releases(root: Path, dataset: str | None = None) -> list[Release]:
    """Every manifest on disk (all versions), oldest first per dataset."""
    base = releases_dir(root)
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


def relpath(root: Path, path: Path) -> str:
    """`path` relative to the workspace root when it lies inside it, else as given."""
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
    found = next((p for p in candidates if p.is_file() or p.is_dir()), None)
    if found is not None:
        return _resolve_file(found, root, query)
    if _HEX.match(query):
        return _resolve_digest(query.lower(), root)
    raise InvalidInputError(
        query,
        ["not a file or folder, a sha256 (8-64 hex digits) or <dataset>@<version>"],
        hint="Examples: data/release/hdma/hdma.parquet, data/release/nyc/tables/flights.parquet, "
        "data/release/nyc, hdma@3, hdma@latest, d24eb9d2…",
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
    """A release file, a release's table folder (by its tree digest), a manifest, or a dataset's
    release folder (`data/release/<ds>`: its current release)."""
    rel = relpath(root, file)
    releases = find_releases(root)
    current = {r.dataset: r for r in releases if r.current}
    if file.is_dir() and file.resolve().parent == releases_dir(root).resolve() and file.name in current:
        return current[file.name], {"kind": "release folder", "query": query, "path": rel}
    for r in releases:  # a manifest itself
        if file.resolve() == r.path.resolve():
            return r, {"kind": "manifest", "query": query, "path": rel}
    if file.name == "manifest.json" and file.parent.name in current:
        return current[file.parent.name], {"kind": "manifest", "query": query, "path": rel}
    digest = tableset.digest(file)  # a folder of tables has a tree digest
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
