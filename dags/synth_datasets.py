"""Synthgate: a released, quality-gated synthetic copy of a dataset, refreshed on a schedule.

One DAG per dataset of `params.yaml` (`synth_<dataset>`), running the same stage code as
`dvc repro`: **start** (validate the run's overrides, open the MLflow run) → **source_changed**
(skip everything when the source and params match the last release) → **ingest** → **fit** →
**generate** (a task group: **plan_shards** → **sample_shard**, one mapped task per shard →
**combine_shards**) → **blend** → **validate** → **release** (only when every gate passes; the
old release stays otherwise) → **record_dvc** (`dvc commit` + `dvc push`) → **finish** (teardown:
closes the MLflow run). The six stages have the same names in DVC, Airflow and MLflow.

Trigger with overrides shaped like a params.yaml dataset block,
`airflow dags trigger synth_hdma --conf '{"generate": {"rows": 20000}}'`, or fill in the form.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, dag, get_current_context, task, task_group

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("SYNTHGATE_ROOT") or REPO).resolve()
"""The project root whose params.yaml, data and DVC state the DAGs use."""

try:
    import pipelines  # noqa: F401  (installed, or on PYTHONPATH)
except ModuleNotFoundError:
    sys.path.append(str(REPO))

from pipelines import airflow_tasks as at  # noqa: E402
from pipelines.config import DatasetConfig, load_params  # noqa: E402

START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "synthgate",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
}


def build_dag(cfg: DatasetConfig, root: Path) -> DAG:
    """The DAG of one dataset: schedule, tags and trigger form from its params.yaml block."""
    name = cfg.name

    @dag(
        dag_id=f"synth_{name}",
        description=(cfg.description or f"synthetic {name}")[:200],
        doc_md=at.dag_doc(cfg, __doc__ or ""),
        schedule=cfg.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["synthgate", *cfg.tags],
        params={key: Param(**spec) for key, spec in at.form_params(cfg).items()},
        default_args=DEFAULT_ARGS,
    )
    def pipeline() -> None:
        @task(show_return_value_in_logs=False)
        def start() -> at.RunContext:
            context = get_current_context()
            return at.start(
                name, root, context["dag_run"].conf, context["params"], context["dag"].dag_id, context["run_id"]
            )

        # Every other task is its body in pipelines.airflow_tasks (task id: the body's name,
        # doc: its docstring), taking the run context and its inputs from XCom.
        source_changed = task.short_circuit(at.source_changed)
        ingest, fit, combine_shards, blend, validate, release = (
            task(show_return_value_in_logs=False)(body)
            for body in (at.ingest, at.fit, at.combine_shards, at.blend, at.validate, at.release)
        )
        sample_shard = task(max_active_tis_per_dagrun=4)(at.sample_shard)
        plan_shards, record_dvc, finish = task(at.plan_shards), task(at.record_dvc), task(at.finish)

        @task_group(group_id="generate", tooltip="the generate stage, fanned out: one mapped task per shard")
        def generate(ctx: at.RunContext) -> at.RunContext:
            shards = sample_shard.partial(ctx=ctx).expand(shard=plan_shards(ctx))
            return combine_shards(ctx, shards)

        ctx = start()
        ingested = ingest(ctx)
        source_changed(ctx) >> ingested
        done = record_dvc(release(validate(blend(generate(fit(ingested))))))
        done >> finish(ctx).as_teardown(setups=ctx)

    return pipeline()


for _cfg in load_params(ROOT / "params.yaml").datasets.values():
    globals()[f"synth_{_cfg.name}"] = build_dag(_cfg, ROOT)
