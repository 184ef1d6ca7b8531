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

Modules: `locate` (finding releases, resolving a query), `checks` (files, manifest, code, params,
attempts log, cross-check), `mlflow_store` and `dvc_store` (the records kept there), `core` (the
whole chain), `listing` (every release attempt of a dataset), `text` (rendering for a terminal).
"""

from pipelines.lineage.core import lineage
from pipelines.lineage.dvc_store import dvc_dirs, dvc_object
from pipelines.lineage.listing import releases
from pipelines.lineage.locate import resolve
from pipelines.lineage.text import render, render_releases

__all__ = [
    "dvc_dirs",
    "dvc_object",
    "lineage",
    "releases",
    "render",
    "render_releases",
    "resolve",
]
