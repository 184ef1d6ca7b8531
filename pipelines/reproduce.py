"""`synthgate reproduce <ds>@<version>`: replay a release from its records and compare digests.

1. Read the release's manifest (the same resolution as `synthgate lineage`).
2. Lay out a scratch workspace with the code of the recorded git commit (`git archive`, so the
   repository and its worktrees are left untouched).
3. Write a params.yaml holding exactly the recorded effective params (seed included).
4. Put the recorded source in place, fetched by its digest: the file at the recorded commit, the
   DVC cache or a local DVC remote (by the md5 that `.dvc` files / dvc.lock at that commit give),
   `dvc.api` at that revision (other remotes), or the workspace file; every candidate is checked
   against the manifest's sha256 and only an exact match is used.
5. Run the whole pipeline with the recorded code (`python -m pipelines run <ds>` in the scratch
   workspace, its own MLflow store, OpenLineage off).
6. Compare the new release file's sha256 (and the intermediate digests the manifest records) with
   the manifest. The result is appended to `logs/reproduce/<ds>.jsonl`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines import progress, tableset
from pipelines.errors import InvalidInputError
from pipelines.gitinfo import git_bytes
from pipelines.io import read_json, sha256_file
from pipelines.lineage import dvc_dirs, dvc_object, resolve
from pipelines.paths import paths_for, repo_root

DEFAULT_TIMEOUT_S = 3600
_STRIPPED_ENV = ("MLFLOW_", "SYNTHGATE_", "AIRFLOW_CTX_", "OPENLINEAGE", "DVC_")


def checkout(root: Path, commit: str, dest: Path) -> int:
    """Extract the tree of `commit` into `dest` (git archive); return the number of files."""
    data = git_bytes(root, "archive", "--format=tar", commit)
    if data is None:
        raise InvalidInputError(
            commit,
            [f"`git archive {commit}` failed in {root}"],
            hint="Is this the repository that made the release? `git fetch` the commit.",
        )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        tar.extractall(dest, filter="data")
    return sum(1 for m in members if m.isfile())


def write_params(scratch: Path, manifest: dict[str, Any]) -> Path:
    """params.yaml with the recorded effective params as the only dataset block."""
    archived = scratch / "params.yaml"
    defaults = {}
    if archived.is_file():
        defaults = (yaml.safe_load(archived.read_text(encoding="utf-8")) or {}).get("defaults") or {}
    block = {k: v for k, v in manifest["params"].items() if k != "name"}
    archived.write_text(
        yaml.safe_dump({"defaults": defaults, "datasets": {manifest["dataset"]: block}}, sort_keys=False),
        encoding="utf-8",
    )
    return archived


def _md5s_for(path: str, scratch: Path) -> list[str]:
    """The md5 digests DVC files at the recorded commit give for `path` (.dvc file, dvc.lock)."""
    found: list[str] = []
    pointer = scratch / f"{path}.dvc"
    if pointer.is_file():
        doc = yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}
        found += [o["md5"] for o in doc.get("outs") or [] if o.get("md5")]
    lock = scratch / "dvc.lock"
    if lock.is_file():
        doc = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
        for stage in (doc.get("stages") or {}).values():
            for entry in [*(stage.get("deps") or []), *(stage.get("outs") or [])]:
                if entry.get("path") == path and entry.get("md5"):
                    found.append(entry["md5"])
    return list(dict.fromkeys(found))


def fetch_source(root: Path, commit: str, scratch: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Put the recorded source at its path in `scratch`; every candidate is checked by sha256."""
    want, rel = source.get("sha256"), source.get("path")
    if not want or not rel:
        raise InvalidInputError("manifest", ["the manifest records no source path/sha256"])
    if source.get("format") == "sql":
        return {"how": "re-queried at run time (SQL source); its digest is compared after ingest", "tried": []}
    if Path(rel).is_absolute():
        target = Path(rel)
        if target.is_file() and sha256_file(target) == want:
            return {"how": f"absolute path {rel} (sha256 matches)", "tried": []}
        raise InvalidInputError(
            rel,
            [f"the recorded source (sha256 {want}) is not at this absolute path any more"],
            hint="Restore the file, then reproduce again.",
        )
    target = scratch / rel
    tried: list[str] = []

    def accept(candidate: Path, how: str) -> dict[str, Any] | None:
        if not candidate.is_file():
            tried.append(f"{how}: not there")
            return None
        digest = sha256_file(candidate)
        if digest != want:
            tried.append(f"{how}: sha256 {digest[:16]}… differs")
            return None
        if candidate.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(candidate, target)
        return {"how": how, "tried": tried}

    if (hit := accept(target, f"git {commit[:12]}:{rel}")) is not None:
        return hit
    cache, remotes = dvc_dirs(root)
    for md5 in _md5s_for(rel, scratch):
        for name, base in [
            ("DVC cache", cache),
            *[(f"DVC remote '{n}'", r) for n, r in remotes.items() if isinstance(r, Path)],
        ]:
            if (hit := accept(dvc_object(base, md5), f"{name} object {md5}")) is not None:
                return hit
    try:
        import dvc.api

        with (
            tempfile.NamedTemporaryFile(delete=False) as tmp,
            dvc.api.open(rel, repo=str(root), rev=commit, mode="rb") as f,
        ):
            shutil.copyfileobj(f, tmp)
        try:
            if (hit := accept(Path(tmp.name), f"dvc.api.open({rel!r}, rev={commit[:12]})")) is not None:
                return hit
        finally:
            os.unlink(tmp.name)
    except Exception as err:  # dvc raises many types (not tracked, no remote, network)
        tried.append(f"dvc.api.open at {commit[:12]}: {type(err).__name__}")
    if (hit := accept(root / rel, f"workspace file {rel}")) is not None:
        return hit
    raise InvalidInputError(
        rel,
        [f"no copy of the recorded source with sha256 {want} was found", *tried],
        hint="Push/pull it with DVC (`dvc push` at release time keeps it fetchable).",
    )


def _env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV)}
    env.update(
        PYTHONPATH=str(scratch),
        SYNTHGATE_ROOT=str(scratch),
        SYNTHGATE_RUNNER="reproduce",
        OPENLINEAGE_DISABLED="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _compare(recorded: dict[str, Any], new: dict[str, Any] | None) -> list[dict[str, Any]]:
    def get(m: dict[str, Any] | None, *keys: Any) -> Any:
        for k in keys:
            if m is None:
                return None
            m = (
                m[k]
                if isinstance(m, list) and isinstance(k, int) and len(m) > k
                else (m.get(k) if isinstance(m, dict) else None)
            )
        return m

    items = [
        ("release file sha256", ("files", 0, "sha256"), ""),
        ("source sha256", ("source", "sha256"), ""),
        ("snapshot sha256", ("source", "snapshot_sha256"), ""),
        ("train split sha256", ("split", "train_sha256"), ""),
        ("holdout split sha256", ("split", "holdout_sha256"), ""),
        (
            "model file sha256",
            ("model", "sha256"),
            "the pickled synthesizer embeds an id and dates, so it may differ while the samples agree",
        ),
        ("rows", ("rows",), ""),
        ("effective params", ("params",), ""),
    ]
    out = [
        {
            "what": what,
            "recorded": get(recorded, *keys),
            "reproduced": get(new, *keys),
            "same": get(recorded, *keys) == get(new, *keys),
            "note": note,
        }
        for what, keys, note in items
    ]
    new_gates = {g["name"]: g["value"] for g in (get(new, "gates") or [])}
    for g in recorded.get("gates", []):
        out.append(
            {
                "what": f"gate {g['name']}",
                "recorded": g["value"],
                "reproduced": new_gates.get(g["name"]),
                "same": new_gates.get(g["name"]) == g["value"],
                "note": "",
            }
        )
    return out


def reproduce(
    query: str,
    root: Path | None = None,
    *,
    workdir: Path | None = None,
    keep: bool = False,
    timeout: int = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Re-run the release `query` names from its records; `same` says whether the digests match."""
    root = (root or repo_root()).resolve()
    rel, _ = resolve(query, root)
    m = rel.manifest
    name = f"{rel.dataset}@{rel.version}"
    commit = m.get("git_commit")
    if not commit:
        raise InvalidInputError(
            name,
            ["the manifest records no git commit, so the code cannot be checked out"],
            hint="Releases made outside a git repository cannot be reproduced.",
        )
    if git_bytes(root, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise InvalidInputError(
            name,
            [f"commit {commit} is not in the repository at {root}"],
            hint="`git fetch` the branch or tag that holds it, then reproduce again.",
        )
    if workdir is not None:
        workdir = Path(workdir).resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise InvalidInputError(str(workdir), ["the scratch folder must be empty or not exist"])
        workdir.mkdir(parents=True, exist_ok=True)
    scratch = workdir or Path(tempfile.mkdtemp(prefix=f"synthgate-reproduce-{rel.dataset}-v{rel.version}-"))
    started = time.perf_counter()
    result: dict[str, Any] = {
        "dataset": rel.dataset,
        "version": rel.version,
        "manifest": str(rel.path.relative_to(root)),
        "git_commit": commit,
        "git_dirty_at_release": m.get("git_dirty"),
        "scratch": str(scratch),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "same": False,
        "recorded_sha256": m["files"][0]["sha256"],
        "reproduced_sha256": None,
    }
    try:
        result["files_checked_out"] = checkout(root, commit, scratch)
        write_params(scratch, m)
        result["source"] = fetch_source(root, commit, scratch, m.get("source") or {})
        log_path = scratch / "reproduce.log"
        with open(log_path, "w", encoding="utf-8") as log, progress.step(f"reproduce {name}: pipeline in {scratch}"):
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "pipelines", "run", rel.dataset],
                    cwd=scratch,
                    env=_env(scratch),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
                result["returncode"] = proc.returncode
            except subprocess.TimeoutExpired:
                result["returncode"] = None
                result["error"] = f"the pipeline did not finish within {timeout} s"
        result["log_tail"] = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        new_manifest_path = paths_for(rel.dataset, scratch).manifest
        new = read_json(new_manifest_path) if new_manifest_path.is_file() else None
        if result.get("returncode") == 3:
            result["error"] = "the reproduction was blocked by a gate (see log_tail)"
        elif result.get("returncode") not in (0, None):
            result["error"] = f"the pipeline exited with code {result['returncode']} (see log_tail)"
        if new is not None and new.get("files"):  # where the checked-out code put the data: a file or a folder
            data = scratch / new["files"][0]["path"]
            result["reproduced_sha256"] = tableset.digest(data) if data.is_file() or data.is_dir() else None
        result["comparisons"] = _compare(m, new)
        result["same"] = result["reproduced_sha256"] == result["recorded_sha256"]
    finally:
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["kept"] = keep or not result["same"]
        if not result["kept"]:
            shutil.rmtree(scratch, ignore_errors=True)
        _append(root, result)
    return result


def _append(root: Path, result: dict[str, Any]) -> None:
    """Append the result (without the log tail) to the dataset's reproduce log."""
    log = paths_for(result["dataset"], root).reproduce_log
    log.parent.mkdir(parents=True, exist_ok=True)
    entry = {k: v for k, v in result.items() if k != "log_tail"}
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


def render(result: dict[str, Any]) -> str:
    """The reproduction result as text."""
    r = result
    verdict = "SAME sha256: reproduced byte for byte" if r["same"] else "DIFFERENT: not reproduced"
    lines = [
        f"{r['dataset']} v{r['version']}: {verdict}",
        f"  recorded   {r['recorded_sha256']}",
        f"  reproduced {r['reproduced_sha256']}",
        f"  code: git commit {r['git_commit']}"
        + (" (the tree was dirty at release time)" if r.get("git_dirty_at_release") else ""),
        f"  source: {(r.get('source') or {}).get('how', '-')}",
        f"  {r['seconds']} s; scratch workspace {r['scratch']}" + (" (kept)" if r["kept"] else " (removed)"),
    ]
    if r.get("error"):
        lines.append(f"  error: {r['error']}")
    for c in r.get("comparisons", []):
        mark = "same" if c["same"] else "DIFFERS"
        note = f"  ({c['note']})" if c["note"] and not c["same"] else ""
        lines.append(
            f"  {c['what']:<22} {mark:<8} recorded {_brief(c['recorded'])}  reproduced {_brief(c['reproduced'])}{note}"
        )
    return "\n".join(lines)


def _brief(value: Any) -> str:
    """A short form for the text table: digests cut to 16 hex digits, mappings by their JSON digest."""
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, default=str).encode()
        return f"<json sha256 {hashlib.sha256(text).hexdigest()[:12]}…>"
    if isinstance(value, str) and len(value) == 64 and all(ch in "0123456789abcdef" for ch in value):
        return f"{value[:16]}…"
    return str(value)
