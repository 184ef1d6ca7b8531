"""Differential privacy: what a fit spent, and the per-dataset privacy ledger that adds it up.

A fit with `fit.privacy` (or an engine's raw DP params) records the target, the epsilon the
engine reports for the weights it kept (`Engine.privacy_spent`) and the settings it trained with
(`Engine.privacy_settings`: DP-SGD's noise multiplier, batch size, calibration epochs). Every
model fitted on a dataset's data, with DP or without, is one entry of `logs/privacy/<ds>.json`,
keyed by the model's sha256: a re-run that gives the same model bytes (same data, params and
seed) adds nothing, because publishing the same model twice reveals nothing more. `release` adds
the version to its model's entry.

Accounting (ACCOUNTING): basic sequential composition over every DP model on the ledger, whatever
source snapshot it was fitted on: epsilon_total = sum of epsilon_i, delta_total = sum of delta_i.
Basic composition holds for any mix of mechanisms and needs no assumption about them (tighter
RDP/PRV composition would need each engine's noise and sampling parameters). Snapshots are not
kept apart: a new snapshot of the same source mostly holds the same people, and parallel
composition needs disjoint individuals, which a table cannot prove. Every fitted model counts,
released or not: each is logged and registered in MLflow, where anyone with access can sample it.
A model without DP carries no guarantee: it is listed (`non_dp_models`), never summed, and the
`privacy_budget` gate blocks its release on a dataset with a budget.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError, SynthgateError
from pipelines.io import read_json, write_json
from pipelines.locks import file_lock
from pipelines.paths import DatasetPaths, logs_dir

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.engines import Engine

ACCOUNTING = (
    "basic sequential composition: the epsilons and deltas of every DP model fitted on the dataset's data "
    "add up (released or not, any source snapshot); models without DP carry no guarantee and are listed apart"
)


def ledger_path(paths: DatasetPaths) -> Path:
    """The dataset's privacy ledger, `logs/privacy/<ds>.json`."""
    return logs_dir(paths.root) / "privacy" / f"{paths.name}.json"


def fit_privacy(cfg: DatasetConfig, engine: Engine, model: Any) -> dict[str, Any]:
    """The fit record's `privacy` section (without the ledger totals): target, spent, the mechanism's
    settings (`dp_sgd`: noise multiplier, batch size, calibration epochs), accounting.

    SynthgateError when DP was asked for and the engine reported no epsilon (the model would be
    recorded as private without evidence).
    """
    raw = cfg.fit.params.get("differential_privacy")
    if cfg.fit.privacy is not None:
        target: dict[str, Any] | None = {"epsilon": cfg.fit.privacy.epsilon, "delta": cfg.fit.privacy.delta}
    elif raw:
        target = {"epsilon": raw.get("max_epsilon"), "delta": raw.get("delta")}
    else:
        target = None
    spent = engine.privacy_spent(model)
    if target is not None and spent is None:
        raise SynthgateError(
            f"engine '{engine.info.name}' trained '{cfg.name}' with differential privacy but reported no epsilon: "
            "the model cannot be recorded as private; check the engine's training log and re-run fit"
        )
    return {
        "dp": spent is not None,
        "target": target,
        "spent": spent,
        "dp_sgd": engine.privacy_settings(model) if spent is not None else None,
        "accounting": ACCOUNTING,
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def mlflow_params(privacy: dict[str, Any]) -> dict[str, Any]:
    """The fit run's MLflow params of a `privacy` section: `privacy.dp`, `privacy.target.<key>` and
    `privacy.dp_sgd.<key>` (`privacy.dp_sgd.<model>.<key>` for a table set's models)."""

    def flat(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out |= flat(f"{prefix}.{key}", value) if isinstance(value, dict) else {f"{prefix}.{key}": value}
        return out

    target, settings = privacy.get("target") or {}, privacy.get("dp_sgd") or {}
    return {"privacy.dp": privacy["dp"], **flat("privacy.target", target), **flat("privacy.dp_sgd", settings)}


def ledger_entry(
    privacy: dict[str, Any], model_sha256: str, engine: str, source_sha256: str, snapshot_sha256: str, run_id: str
) -> dict[str, Any]:
    """One model's ledger entry from its fit record's `privacy` section and digests."""
    spent = privacy.get("spent") or {}
    return {
        "model_sha256": model_sha256,
        "engine": engine,
        "dp": bool(privacy.get("dp")),
        "epsilon": spent.get("epsilon"),
        "epsilon_last_step": spent.get("epsilon_last_step"),
        "delta": spent.get("delta"),
        "target": privacy.get("target"),
        "dp_sgd": privacy.get("dp_sgd"),
        "fitted_at": privacy.get("fitted_at"),
        "source_sha256": source_sha256,
        "snapshot_sha256": snapshot_sha256,
        "fit_mlflow_run_id": run_id,
        "releases": [],
    }


def totals(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Sequential composition over the DP entries; models without DP counted apart."""
    dp = [e for e in entries if e["dp"]]
    released = [e for e in dp if e["releases"]]
    return {
        "models": len(entries),
        "dp_models": len(dp),
        "non_dp_models": len(entries) - len(dp),
        "non_dp_released": sum(1 for e in entries if not e["dp"] and e["releases"]),
        "epsilon": round(sum(e["epsilon"] for e in dp), 6),
        "delta": sum(e["delta"] for e in dp),
        "epsilon_released": round(sum(e["epsilon"] for e in released), 6),
    }


def read_ledger(paths: DatasetPaths) -> dict[str, Any]:
    """The dataset's ledger (an empty one when no model was recorded yet), with its totals."""
    path = ledger_path(paths)
    if not path.is_file():
        entries: list[dict[str, Any]] = []
    else:
        try:
            entries = read_json(path)["entries"]
        except (KeyError, TypeError, json.JSONDecodeError):
            raise InvalidInputError(
                paths.rel(path), ["not a privacy ledger (no `entries` list)"], hint="Restore it from a backup."
            ) from None
    return {"dataset": paths.name, "accounting": ACCOUNTING, "entries": entries, "totals": totals(entries)}


def record(paths: DatasetPaths, entry: dict[str, Any], version: int | None = None) -> dict[str, Any]:
    """Add a model's entry (once per model sha256) and, with `version`, the release; return the totals.

    Idempotent: the same model recorded again, or released again under the same version, changes
    nothing. The file is rewritten atomically under a lock.
    """
    path = ledger_path(paths)
    with file_lock(path.with_suffix(".lock"), "another run is writing this privacy ledger", wait_s=60):
        ledger = read_ledger(paths)
        entries = ledger["entries"]
        found = next((e for e in entries if e["model_sha256"] == entry["model_sha256"]), None)
        if found is None:
            found = {**entry, "releases": []}
            entries.append(found)
        if version is not None and version not in found["releases"]:
            found["releases"] = sorted([*found["releases"], version])
        write_json(path, {"dataset": paths.name, "accounting": ACCOUNTING, "entries": entries})
    return totals(entries)


def render(ledger: dict[str, Any]) -> str:
    """The ledger as text: one line per model, then the totals."""
    t = ledger["totals"]
    lines = [f"{ledger['dataset']}: privacy ledger ({t['models']} model(s)); accounting: {ledger['accounting']}"]
    lines.append(f"  {'fitted at':<26} {'model':<14} {'engine':<16} {'epsilon':>9} {'delta':>9}  releases  snapshot")
    for e in ledger["entries"]:
        eps = f"{e['epsilon']:.4f}" if e["dp"] else "no DP"
        delta = f"{e['delta']:.1e}" if e["dp"] else "-"
        releases = ",".join(f"v{v}" for v in e["releases"]) or "-"
        lines.append(
            f"  {e.get('fitted_at') or '?':<26} {e['model_sha256'][:12]:<14} {e['engine']:<16} {eps:>9} {delta:>9}  "
            f"{releases:<8}  {(e.get('snapshot_sha256') or '?')[:12]}"
        )
    lines.append(
        f"  total: epsilon {t['epsilon']:.4f}, delta {t['delta']:.1e} over {t['dp_models']} DP model(s) "
        f"(released: epsilon {t['epsilon_released']:.4f}); {t['non_dp_models']} model(s) without DP guarantee "
        f"({t['non_dp_released']} released)"
    )
    return "\n".join(lines)
