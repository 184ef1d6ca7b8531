"""What the `synth_<dataset>` DAGs (dags/synth_datasets.py) run, by concern:

- `form`: the trigger form (one field per knob, gate fields generated from `GatesConfig`) and the
  resolution of a run's conf into its validated config;
- `tasks`: the task bodies, in DAG order (each runs the same stage code as DVC);
- `dvc_record`: recording a run's outputs in DVC (`dvc commit -f` + `dvc push`);
- `runtime`: what every task shares (run context, error handling, the runner's environment).

The DAG processor imports this package on every parse: no module here imports pandas, SDV,
torch, MLflow, GX or DVC at the top (they are imported inside the functions).
"""

from pipelines.airflow_tasks.dvc_record import DVC_LOCK_TIMEOUT_S, dvc_targets, record_dvc, record_in_dvc
from pipelines.airflow_tasks.form import FORCE, KNOBS, Knob, dag_doc, form_params, gate_knobs, resolve_config
from pipelines.airflow_tasks.runtime import RunContext, config_of
from pipelines.airflow_tasks.tasks import (
    blend,
    combine_shards,
    finish,
    fit,
    ingest,
    plan_shards,
    refresh_reason,
    release,
    released_by,
    sample_shard,
    source_changed,
    source_digest,
    start,
    validate,
)

__all__ = [
    "DVC_LOCK_TIMEOUT_S",
    "FORCE",
    "KNOBS",
    "Knob",
    "RunContext",
    "blend",
    "combine_shards",
    "config_of",
    "dag_doc",
    "dvc_targets",
    "finish",
    "fit",
    "form_params",
    "gate_knobs",
    "ingest",
    "plan_shards",
    "record_dvc",
    "record_in_dvc",
    "refresh_reason",
    "release",
    "released_by",
    "resolve_config",
    "sample_shard",
    "source_changed",
    "source_digest",
    "start",
    "validate",
]
