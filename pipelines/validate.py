"""validate: every gate, one typed result each, written as a DVC metric and logged to MLflow.

The stage itself succeeds whenever it could compute the figures (so DVC records them);
`release` refuses to publish unless every gate passed.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.contracts import PROVENANCE, load_suite, run_suite
from pipelines.io import read_json, read_parquet, sha256_file, write_json

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, GatesConfig
    from pipelines.paths import DatasetPaths


class GateResult(BaseModel):
    """One gate's verdict: a figure compared with a threshold from params.yaml."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float
    threshold: float
    comparison: Literal[">=", "<="]
    passed: bool
    explanation: str = Field(description="what the figure means and what was compared")


def gate(name: str, value: float, threshold: float, comparison: Literal[">=", "<="], explanation: str) -> GateResult:
    """Build a gate result, deciding `passed` from the comparison."""
    passed = value >= threshold if comparison == ">=" else value <= threshold
    return GateResult(name=name, value=round(float(value), 6), threshold=float(threshold),
                      comparison=comparison, passed=bool(passed), explanation=explanation)


def quality_scores(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any) -> tuple[float, float, dict]:
    """SDMetrics quality and diagnostic scores (through SDV) plus per-property details."""
    from sdv.evaluation import evaluate_quality, run_diagnostic

    quality = evaluate_quality(real, synthetic, metadata, verbose=False)
    diagnostic = run_diagnostic(real, synthetic, metadata, verbose=False)
    props = {}
    for prefix, rep in (("quality", quality), ("diagnostic", diagnostic)):
        for _, row in rep.get_properties().iterrows():
            if row["Score"] == row["Score"]:  # NaN: the property does not apply (e.g. no constraints)
                props[f"{prefix}.{row['Property']}"] = float(row["Score"])
    return float(quality.get_score()), float(diagnostic.get_score()), props


def privacy_gates(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame,
                  gates: GatesConfig, seed: int) -> tuple[list[GateResult], dict[str, Any]]:
    """Exact-copy and DCR-share gates (pure; used by tests to prove both can fail)."""
    from pipelines.metrics import privacy

    p = privacy(synthetic, train, holdout, gates.sample_rows, seed)
    results = [
        gate("exact_copies", p.exact_copy_share, gates.exact_copies_max, "<=",
             f"share of {p.rows_compared} synthetic rows identical to a training row "
             f"(real holdout rows: {p.holdout_exact_copy_share:.4f})"),
        gate("dcr_share", p.dcr_share, gates.dcr_share_max, "<=",
             "share of synthetic rows closer to a training row than to a holdout row "
             "(equal-size references; about 0.5 when nothing is memorised)"),
    ]
    return results, asdict(p)


def utility_gate(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame,
                 target: str, gates: GatesConfig, seed: int) -> tuple[GateResult, dict[str, Any]]:
    """TSTR vs TRTR on the real holdout; the gap must stay under utility_gap_max."""
    from pipelines.metrics import utility

    u = utility(synthetic, train, holdout, target, seed, sample_rows=max(gates.sample_rows, 20_000))
    result = gate("utility", u.gap, gates.utility_gap_max, "<=",
                  f"{u.metric} on the real holdout predicting '{target}': trained on real "
                  f"{u.trtr:.3f}, trained on synthetic {u.tstr:.3f}")
    return result, asdict(u)


def evaluate(cfg: DatasetConfig, blended: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame,
             metadata: Any, release_suite: dict[str, Any]) -> dict[str, Any]:
    """Run every gate on a blended frame; return the typed report (pure apart from GX)."""
    gates_cfg = cfg.gates
    synthetic = blended[blended[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE])
    results: list[GateResult] = []
    figures: dict[str, Any] = {}

    gx = run_suite(blended, release_suite)
    results.append(gate("gx_release", gx.success_share, 1.0, ">=",
                        f"{gx.successful}/{gx.evaluated} expectations of suite {gx.suite} met"
                        + (": " + " | ".join(gx.failures[:5]) if gx.failures else "")))
    expected_rows = len(blended)
    figures["rows"] = {"blended": expected_rows, "synthetic": len(synthetic)}

    if len(synthetic) == 0:
        results.append(gate("synthetic_rows", 0, 1, ">=", "no synthetic rows to evaluate"))
        return {"gates": results, "figures": figures, "gx": gx}

    n = gates_cfg.sample_rows
    real_s = train.sample(n=min(len(train), n), random_state=cfg.seed)
    syn_s = synthetic.sample(n=min(len(synthetic), n), random_state=cfg.seed)
    started = time.perf_counter()
    q, d, props = quality_scores(real_s, syn_s, metadata)
    figures["sdmetrics"] = props
    figures["sdmetrics_seconds"] = round(time.perf_counter() - started, 3)
    results.append(gate("quality", q, gates_cfg.quality_min, ">=",
                        "SDMetrics quality score (column shapes and pair trends) vs the train split"))
    results.append(gate("diagnostic", d, gates_cfg.diagnostic_min, ">=",
                        "SDMetrics diagnostic score (data validity and structure)"))
    priv, figures["privacy"] = privacy_gates(synthetic, train, holdout, gates_cfg, cfg.seed)
    results += priv
    if cfg.target:
        util, figures["utility"] = utility_gate(synthetic, train, holdout, cfg.target, gates_cfg, cfg.seed)
        results.append(util)
    return {"gates": results, "figures": figures, "gx": gx}


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The validate stage: gates + report, written whatever the verdict."""
    import mlflow
    from sdv.metadata import Metadata

    from pipelines import report, tracking

    blended = read_parquet(paths.blended)
    train, holdout = read_parquet(paths.train), read_parquet(paths.holdout)
    metadata = Metadata.load_from_dict(read_json(paths.model_metadata))
    suite = load_suite(paths.release_suite)
    with tracking.stage_run(cfg, paths, "validate") as handle:
        outcome = evaluate(cfg, blended, train, holdout, metadata, suite)
        gates = [g.model_dump() for g in outcome["gates"]]
        passed = all(g["passed"] for g in gates)
        figures = outcome["figures"]
        dcr_lists = figures.get("privacy", {})
        dcr_hist = {k: dcr_lists.pop(k) for k in ("dcr_synthetic_train", "dcr_holdout_train") if k in dcr_lists}
        validation = {"dataset": cfg.name, "passed": passed, "gates": gates,
                      "figures": figures}
        write_json(paths.validation, validation)
        write_json(paths.gx_result, outcome["gx"].raw)
        html = report.render(cfg, validation, blended, train, metadata, dcr_hist)
        report.write(paths.report_html, html)
        for g in gates:
            mlflow.log_metric(f"gate.{g['name']}", g["value"])
            mlflow.log_metric(f"gate.{g['name']}.passed", float(g["passed"]))
        mlflow.log_metric("gates.passed", float(passed))
        for path in (paths.validation, paths.gx_result, paths.report_html):
            mlflow.log_artifact(str(path), artifact_path="validation")
        rel = lambda p: str(p.relative_to(paths.root))  # noqa: E731
        record = {
            "stage": "validate",
            "dataset": cfg.name,
            "passed": passed,
            "failed": [g["name"] for g in gates if not g["passed"]],
            "validation": {"path": rel(paths.validation), "sha256": sha256_file(paths.validation)},
            "gx": {"suite": rel(paths.release_suite), "suite_sha256": sha256_file(paths.release_suite),
                   "success": outcome["gx"].success, "result": rel(paths.gx_result),
                   "result_sha256": sha256_file(paths.gx_result)},
            "report": {"path": rel(paths.report_html), "sha256": sha256_file(paths.report_html)},
            "blended_sha256": sha256_file(paths.blended),
            "mlflow": {"run_id": handle.run_id, "parent_run_id": handle.parent_run_id,
                       "experiment": handle.experiment_name},
        }
        write_json(paths.record("validate"), record)
    return record
