"""validate: every gate, one typed result each, written as a DVC metric and logged to MLflow.

The stage itself succeeds whenever it could compute the figures (so DVC records them);
`release` refuses to publish unless every gate passed.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.constraints import rules_from_record, with_rule_expectations
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
    return GateResult(
        name=name,
        value=round(float(value), 6),
        threshold=float(threshold),
        comparison=comparison,
        passed=bool(passed),
        explanation=explanation,
    )


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


def privacy_gates(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, gates: GatesConfig, seed: int
) -> tuple[list[GateResult], dict[str, Any]]:
    """Exact-copy and DCR-share gates (pure; used by tests to prove both can fail)."""
    from pipelines.metrics import privacy

    p = privacy(synthetic, train, holdout, gates.sample_rows, seed)
    results = [
        gate(
            "exact_copies",
            p.exact_copy_share,
            gates.exact_copies_max,
            "<=",
            f"share of {p.rows_compared} synthetic rows identical to a training row "
            f"(real holdout rows: {p.holdout_exact_copy_share:.4f})",
        ),
        gate(
            "dcr_share",
            p.dcr_share,
            gates.dcr_share_max,
            "<=",
            "share of synthetic rows closer to a training row than to a holdout row "
            "(equal-size references; about 0.5 when nothing is memorised)",
        ),
    ]
    return results, asdict(p)


def utility_gate(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, target: str, gates: GatesConfig, seed: int
) -> tuple[GateResult, dict[str, Any]]:
    """TSTR vs TRTR on the real holdout; the gap must stay under utility_gap_max."""
    from pipelines.metrics import utility

    u = utility(synthetic, train, holdout, target, seed, sample_rows=max(gates.sample_rows, 20_000))
    result = gate(
        "utility",
        u.gap,
        gates.utility_gap_max,
        "<=",
        f"{u.metric} on the real holdout predicting '{target}': trained on real "
        f"{u.trtr:.3f}, trained on synthetic {u.tstr:.3f}",
    )
    return result, asdict(u)


def pii_replay_gate(
    release: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, plan: Any
) -> tuple[GateResult, dict[str, Any]]:
    """No real PII value (train or holdout) may appear anywhere in the release.

    The PII columns are the fit plan's plus whatever detection finds now (minus `ignore`), so
    turning protection off cannot turn the gate off.
    """
    from pipelines import pii

    columns = pii.gate_columns(train, plan)
    real = pii.real_values([train, holdout], columns)
    found = pii.replay(release.drop(columns=[PROVENANCE], errors="ignore"), real, columns)
    where = ", ".join(f"'{c}' ({n})" for c, n in found["by_column"].items())
    result = gate(
        "pii_replay",
        found["leaked_values"],
        0,
        "<=",
        f"distinct real PII values of columns {columns} found in the release"
        + (f": in {where}, e.g. {found['examples']}" if found["leaked_values"] else ""),
    )
    return result, {**found, "pii_columns": columns}


def constraints_gate(release: pd.DataFrame, train: pd.DataFrame, rules: list[Any]) -> tuple[GateResult, dict[str, Any]]:
    """Every business rule must hold on every released row (adherence 100%, per rule)."""
    from pipelines.constraints import adherence

    per_rule = adherence(rules, release.drop(columns=[PROVENANCE], errors="ignore"), train)
    worst = min(r["adherence"] for r in per_rule.values())
    detail = "; ".join(
        f"{label} {r['adherence']:.2%} ({r['violations']} rows break it)" for label, r in per_rule.items()
    )
    return gate("constraints", worst, 1.0, ">=", f"lowest adherence over {len(rules)} rules: {detail}"), {
        "rules": per_rule
    }


def evaluate(
    cfg: DatasetConfig,
    blended: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    metadata: Any,
    release_suite: dict[str, Any],
    fit_record: dict[str, Any] | None = None,
    blend_record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every gate on a blended frame; return the typed report (pure apart from GX).

    `fit_record` (the fit stage's run record) gives the PII plan: PII columns are left out of the
    quality, privacy and utility figures (they are never learned) and checked by `pii_replay`;
    it also gives the business rules (the `constraints` gate). `blend_record` says whether the
    release was rebalanced: quality is then measured against the train rows resampled to the
    requested class shares (the class mix was changed on purpose).
    """
    from pipelines import pii

    gates_cfg = cfg.gates
    plan = pii.PiiPlan.from_dict((fit_record or {}).get("pii"))
    results: list[GateResult] = []
    figures: dict[str, Any] = {}
    pii_gate = None
    full_blended = blended
    if pii.gate_columns(train, plan):
        pii_gate, figures["pii"] = pii_replay_gate(blended, train, holdout, plan)
    if plan.columns:
        learned = [c for c in train.columns if c not in plan.names]
        train, holdout = train[learned], holdout[learned]
        blended = blended[[c for c in [*learned, PROVENANCE] if c in blended.columns]]
    synthetic = blended[blended[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE])

    rules = rules_from_record((fit_record or {}).get("constraints"))
    release_suite, added = with_rule_expectations(release_suite, rules, train)
    gx = run_suite(full_blended, release_suite)
    results.append(
        gate(
            "gx_release",
            gx.success_share,
            1.0,
            ">=",
            f"{gx.successful}/{gx.evaluated} expectations of suite {gx.suite} met"
            + (": " + " | ".join(gx.failures[:5]) if gx.failures else ""),
        )
    )
    expected_rows = len(blended)
    figures["rows"] = {"blended": expected_rows, "synthetic": len(synthetic)}
    if pii_gate is not None:
        results.append(pii_gate)
    if rules:
        rule_gate, figures["constraints"] = constraints_gate(full_blended, train, rules)
        figures["constraints"]["expectations_added_to_suite"] = added
        results.append(rule_gate)

    if len(synthetic) == 0:
        results.append(gate("synthetic_rows", 0, 1, ">=", "no synthetic rows to evaluate"))
        return {"gates": results, "figures": figures, "gx": gx}

    n = gates_cfg.sample_rows
    real_s = train.sample(n=min(len(train), n), random_state=cfg.seed)
    rebalanced = (blend_record or {}).get("rebalance")
    if rebalanced and rebalanced["column"] in train.columns:
        from pipelines.rebalance import achieved, resample

        shares = rebalanced["achieved"]
        real_s = resample(train, rebalanced["column"], shares, min(n, max(len(train), len(synthetic))), cfg.seed)
        figures["quality_reference"] = (
            f"train rows resampled to the release's shares of '{rebalanced['column']}' "
            f"{achieved(real_s, rebalanced['column'])}"
        )
    syn_s = synthetic.sample(n=min(len(synthetic), n), random_state=cfg.seed)
    started = time.perf_counter()
    q, d, props = quality_scores(real_s, syn_s, metadata)
    figures["sdmetrics"] = props
    figures["sdmetrics_seconds"] = round(time.perf_counter() - started, 3)
    results.append(
        gate(
            "quality",
            q,
            gates_cfg.quality_min,
            ">=",
            "SDMetrics quality score (column shapes and pair trends) vs the train split",
        )
    )
    results.append(
        gate(
            "diagnostic", d, gates_cfg.diagnostic_min, ">=", "SDMetrics diagnostic score (data validity and structure)"
        )
    )
    priv, figures["privacy"] = privacy_gates(synthetic, train, holdout, gates_cfg, cfg.seed)
    results += priv
    if cfg.target:
        util, figures["utility"] = utility_gate(synthetic, train, holdout, cfg.target, gates_cfg, cfg.seed)
        results.append(util)
        figures.update(class_figures(blended, train, holdout, cfg.target, gates_cfg, cfg.seed))
    return {"gates": results, "figures": figures, "gx": gx}


def class_figures(
    blended: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, target: str, gates: GatesConfig, seed: int
) -> dict[str, Any]:
    """For a class target: its shares in train, synthetic rows and the release and, when real rows
    were blended in (augment, rebalance), TSTR on the whole release, minority recall/F1 included.
    So a rebalanced release shows whether it helps a model find the rare class."""
    from pipelines.metrics import is_classification, utility
    from pipelines.rebalance import achieved

    if not is_classification(train[target]):
        return {}
    synthetic = blended[blended[PROVENANCE] == "synthetic"]
    out: dict[str, Any] = {
        "class_shares": {
            "train": achieved(train, target),
            "synthetic": achieved(synthetic, target),
            "release": achieved(blended, target),
        }
    }
    if (blended[PROVENANCE] == "real").any():
        u = utility(
            blended.drop(columns=[PROVENANCE]), train, holdout, target, seed, sample_rows=max(gates.sample_rows, 20_000)
        )
        out["utility_release"] = asdict(u)
    return out


def _not_pii(train: pd.DataFrame, fit_record: dict[str, Any]) -> list[str]:
    from pipelines import pii

    hidden = set(pii.gate_columns(train, pii.PiiPlan.from_dict(fit_record.get("pii"))))
    return [c for c in train.columns if c not in hidden]


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The validate stage: gates + report, written whatever the verdict."""
    import mlflow
    from sdv.metadata import Metadata

    from pipelines import report, tracking

    if cfg.source.tables:  # a relational dataset: integrity gates and multi-table quality
        from pipelines.relational import run_validate

        return run_validate(cfg, paths)
    blended = read_parquet(paths.blended)
    train, holdout = read_parquet(paths.train), read_parquet(paths.holdout)
    metadata = Metadata.load_from_dict(read_json(paths.model_metadata))
    suite = load_suite(paths.release_suite)
    fit_record = read_json(paths.record("fit"))
    blend_record = read_json(paths.record("blend"))
    with tracking.stage_run(cfg, paths, "validate") as handle:
        outcome = evaluate(cfg, blended, train, holdout, metadata, suite, fit_record, blend_record)
        gates = [g.model_dump() for g in outcome["gates"]]
        passed = all(g["passed"] for g in gates)
        figures = outcome["figures"]
        dcr_lists = figures.get("privacy", {})
        dcr_hist = {k: dcr_lists.pop(k) for k in ("dcr_synthetic_train", "dcr_holdout_train") if k in dcr_lists}
        validation = {"dataset": cfg.name, "passed": passed, "gates": gates, "figures": figures}
        write_json(paths.validation, validation)
        write_json(paths.gx_result, outcome["gx"].raw)
        shown = _not_pii(train, fit_record)  # real PII never reaches the report's plots
        html = report.render(
            cfg,
            validation,
            blended[[c for c in blended.columns if c in {*shown, PROVENANCE}]],
            train[shown],
            metadata,
            dcr_hist,
        )
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
            "gx": {
                "suite": rel(paths.release_suite),
                "suite_sha256": sha256_file(paths.release_suite),
                "success": outcome["gx"].success,
                "result": rel(paths.gx_result),
                "result_sha256": sha256_file(paths.gx_result),
            },
            "report": {"path": rel(paths.report_html), "sha256": sha256_file(paths.report_html)},
            "blended_sha256": sha256_file(paths.blended),
            "mlflow": handle.as_record(),
        }
        write_json(paths.record("validate"), record)
    return record
