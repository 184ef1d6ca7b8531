"""Workspaces with real releases, shared by the lineage / OpenLineage tests (module-scoped builds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FLOORS_OFF, HDMA, clean_env, defaults, git_init, load, run_stages, small_block

BLOCKING = {"gates": {"quality_min": 0.99}}
"""An override no small synthetic table passes: the release attempt is blocked by the quality gate."""


def small_hdma(rows: int = 600) -> dict[str, Any]:
    """A small HDMA block whose release passes every gate (utility and rare-class recall loosened:
    400-row samples are noisy, a utility gap of 0.38 with hdma's few-valued columns ordinal; the
    fidelity floors off: see FLOORS_OFF)."""
    gates = {"sample_rows": 400, "utility_gap_max": 0.5, "minority_recall_ratio_min": 0.0, **FLOORS_OFF}
    return small_block(HDMA, "deny", generate={"rows": rows}, gates=gates)


def new_workspace(ws: Path, git: bool = True, **datasets: dict[str, Any]) -> Path:
    """params.yaml + contracts + metadata in `ws`, committed to a fresh git repository."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from pipelines.paths import paths_for

    ws.mkdir(parents=True, exist_ok=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": datasets}))
    params = load_params(ws / "params.yaml")
    for name in datasets:
        list(init_contracts(params.dataset(name), paths_for(name, ws)))
    if git:
        git_init(ws)
    return ws


def release_as_airflow(ws: Path, name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the stages the way the Airflow tasks do: runner env + a parent run the runner owns."""
    from pipelines import tracking
    from pipelines.paths import paths_for

    cfg = load(ws, name, overrides)
    with clean_env(
        SYNTHGATE_RUNNER="airflow",
        AIRFLOW_CTX_DAG_ID=f"synth_{name}",
        AIRFLOW_CTX_DAG_RUN_ID="manual__2026-11-25T00:00:00+00:00",
    ):
        parent = tracking.start_pipeline(cfg, paths_for(name, ws))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(tracking.PARENT_ENV, parent)
            ok = False
            try:
                result = run_stages(ws, name, overrides=overrides)
                ok = True
            finally:
                tracking.close_pipeline(parent, ws, success=ok)
    return result
