"""Synthgate: a released, quality-gated synthetic copy of a dataset, refreshed on a schedule.

One DAG per dataset of `params.yaml` (`synth_<dataset>`), running the same stage code as
`dvc repro`: **start** (validate the run's overrides, open the MLflow run) → **source_changed**
(skip everything when the source and params match the last release) → **ingest** → **fit** →
**plan_shards** → **sample_shard** (one mapped task per shard) → **combine_shards** → **blend** →
**validate** → **release** (only when every gate passes; the old release stays otherwise) →
**record_dvc** (`dvc commit` + `dvc push`) → **finish** (teardown: closes the MLflow run).

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
from airflow.sdk import DAG, Param, dag, get_current_context, task

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

        @task.short_circuit
        def source_changed(ctx: at.RunContext) -> bool:
            return at.source_changed(ctx)

        @task(show_return_value_in_logs=False)
        def ingest(ctx: at.RunContext) -> at.RunContext:
            return at.ingest(ctx)

        @task(show_return_value_in_logs=False)
        def fit(ctx: at.RunContext) -> at.RunContext:
            return at.fit(ctx)

        @task
        def plan_shards(ctx: at.RunContext) -> list[dict[str, Any]]:
            return at.plan_shards(ctx)

        @task(max_active_tis_per_dagrun=4)
        def sample_shard(ctx: at.RunContext, shard: dict[str, Any]) -> dict[str, Any]:
            return at.sample_shard(ctx, shard)

        @task(show_return_value_in_logs=False)
        def combine_shards(ctx: at.RunContext, results: list[dict[str, Any]]) -> at.RunContext:
            return at.combine_shards(ctx, results)

        @task(show_return_value_in_logs=False)
        def blend(ctx: at.RunContext) -> at.RunContext:
            return at.blend(ctx)

        @task(show_return_value_in_logs=False)
        def validate(ctx: at.RunContext) -> at.RunContext:
            return at.validate(ctx)

        @task(show_return_value_in_logs=False)
        def release(ctx: at.RunContext) -> at.RunContext:
            return at.release(ctx)

        @task
        def record_dvc(ctx: at.RunContext) -> dict[str, Any]:
            return at.record_dvc(ctx)

        @task
        def finish(ctx: at.RunContext) -> str:
            return at.finish(ctx)

        ctx = start()
        ingested = ingest(ctx)
        source_changed(ctx) >> ingested
        fitted = fit(ingested)
        shards = sample_shard.partial(ctx=fitted).expand(shard=plan_shards(fitted))
        done = record_dvc(release(validate(blend(combine_shards(fitted, shards)))))
        done >> finish(ctx).as_teardown(setups=ctx)

    return pipeline()


for _cfg in load_params(ROOT / "params.yaml").datasets.values():
    globals()[f"synth_{_cfg.name}"] = build_dag(_cfg, ROOT)
