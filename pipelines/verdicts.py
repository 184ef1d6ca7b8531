"""Verdicts release may trust: validate's report checked, recomputed and cross-checked.

`validation.json` is an editable file. Before publishing, release checks it against the digest in
the validate run record, recomputes every verdict from its figure and threshold (the threshold
must be the params.yaml one, plus any recorded sampling allowance), and compares the figures and
verdicts with the metrics the validate run logged to MLflow, a second record written at the same
time. Lineage recomputes the verdicts recorded in each manifest the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import IntegrityError
from pipelines.records.validation import holds

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths
    from pipelines.records.validation import ValidateRecord

_RERUN = "re-run validate (e.g. `dvc repro validate@{ds}` or `synthgate run {ds}`) before releasing"


def verdict_problems(gates: Sequence[Mapping[str, Any]], gates_params: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with recorded gate verdicts: a `passed` flag its figure and threshold do not
    give, or a threshold that is not params.yaml's (plus the recorded allowance)."""
    problems = []
    for g in gates:
        name, value, limit = g["name"], float(g["value"]), float(g["threshold"])
        if holds(value, limit, g["comparison"]) != bool(g["passed"]):
            problems.append(
                f"gate '{name}': recorded as {'passed' if g['passed'] else 'failed'}, but {value:g} "
                f"{g['comparison']} {limit:g} is {'not ' if g['passed'] else ''}true"
            )
        param = g.get("param")
        if param is not None and gates_params is not None and gates_params.get(param) is not None:
            base = float(gates_params[param])
            allowance = float(g.get("allowance", 0.0))
            if not math.isclose(limit, base + allowance, rel_tol=1e-9, abs_tol=1e-12):
                problems.append(
                    f"gate '{name}': threshold {limit:g} recorded, but gates.{param} is {base:g}"
                    + (f" (+ allowance {allowance:g})" if allowance else "")
                )
    return problems


def _digest_problems(record: ValidateRecord, paths: DatasetPaths) -> list[str]:
    from pipelines.io import sha256_file

    problems = []
    for entry, path in ((record.validation, paths.validation), (record.report, paths.report_html)):
        if not path.is_file():
            problems.append(f"{paths.rel(path)}: missing")
        elif (actual := sha256_file(path)) != entry.sha256:
            problems.append(
                f"{paths.rel(path)}: sha256 {actual[:12]}... is not the {entry.sha256[:12]}... recorded in "
                f"{paths.rel(paths.record('validate'))} (edited, or validate was interrupted after writing it)"
            )
    return problems


def _mlflow_problems(record: ValidateRecord, gates: Sequence[Mapping[str, Any]], passed: bool) -> list[str]:
    """Figures and verdicts must equal the metrics the validate run logged (the tracking store is set)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    run_id = record.mlflow.run_id
    try:
        metrics = MlflowClient().get_run(run_id).data.metrics
    except MlflowException as err:
        return [f"the validate run {run_id} is not in MLflow ({err.message.splitlines()[0]})"]
    problems = []
    for g in gates:
        logged = metrics.get(f"gate.{g['name']}")
        if logged is None or not math.isclose(logged, float(g["value"]), rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"gate '{g['name']}': figure {g['value']} but the validate run logged {logged}")
        if metrics.get(f"gate.{g['name']}.passed") != float(bool(g["passed"])):
            problems.append(f"gate '{g['name']}': verdict differs from the one the validate run logged")
    if metrics.get("gates.passed") != float(passed):
        problems.append("the overall verdict differs from the one the validate run logged")
    return problems


def verified_validation(cfg: DatasetConfig, paths: DatasetPaths, record: ValidateRecord) -> dict[str, Any]:
    """The validation report, once its digest, every verdict and the MLflow run agree; else IntegrityError.

    Call with the MLflow tracking store in use (inside `tracking.stage_run`).
    """
    from pipelines.io import read_json
    from pipelines.records.validation import ValidationReport

    problems = _digest_problems(record, paths)
    if not problems:
        report = ValidationReport.model_validate(read_json(paths.validation)).to_json()
        gates = report["gates"]
        if not gates:
            problems.append("the report holds no gate result")
        problems += verdict_problems(gates, cfg.gates.model_dump())
        everything = all(g["passed"] for g in gates)
        failed = [g["name"] for g in gates if not g["passed"]]
        if report["passed"] != everything or record.passed != everything or record.failed != failed:
            problems.append(
                f"overall verdict: report says passed={report['passed']}, the run record passed={record.passed} "
                f"(failed {record.failed}), the gates give passed={everything} (failed {failed})"
            )
        if report["dataset"] != cfg.name:
            problems.append(f"the report is for dataset '{report['dataset']}', not '{cfg.name}'")
        problems += _mlflow_problems(record, gates, everything)
    if problems:
        raise IntegrityError(
            f"{paths.rel(paths.validation)}: the gate verdicts cannot be trusted, nothing was published:\n  - "
            + "\n  - ".join(problems)
            + "\n"
            + _RERUN.format(ds=cfg.name)
        )
    return report
