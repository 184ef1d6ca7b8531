"""The bodies of the Airflow tasks of the `synth_<dataset>` DAGs (dags/synth_datasets.py wires them).

Every task runs the same stage code as DVC (`pipelines.<stage>.run`, or for the fanned-out
generate stage `pipelines.generate.run_shard` per shard and `finalize` to combine) on the
config resolved once by the first task. What travels between tasks through XCom is a small dict
(`RunContext`: dataset, root, effective params, MLflow parent run id), never data.

The DAG processor imports this module on every parse: keep its top-level imports light
(no pandas, SDV, torch, MLflow or GX here; they are imported inside the functions).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypedDict, TypeVar

from pipelines import STAGES
from pipelines.config import (
    OVERRIDABLE,
    BlendConfig,
    DatasetConfig,
    FitConfig,
    GatesConfig,
    GenerateConfig,
    Params,
    apply_overrides,
    deep_merge,
    load_params,
)
from pipelines.errors import ConfigError, GateFailed, IntegrityError, InvalidInputError, SynthgateError
from pipelines.io import read_json, sha256_file
from pipelines.locks import file_lock
from pipelines.paths import DatasetPaths, dvc_record_lock, paths_for

log = logging.getLogger("synthgate.airflow")

P = ParamSpec("P")
R = TypeVar("R")

FORCE = "force"
"""Trigger-form / conf key: rebuild even when the source and params are unchanged."""

DVC_LOCK_TIMEOUT_S = 900
"""How long `record_dvc` waits for another run's DVC commit before failing (and retrying)."""

_NOT_RETRIED = (ConfigError, InvalidInputError, IntegrityError, GateFailed)
"""Errors that a retry cannot fix: the task fails at once, with the error's message."""


class RunContext(TypedDict):
    """What the first task resolves and every later task receives (through XCom)."""

    dataset: str
    root: str
    config: dict[str, Any]
    overrides: dict[str, Any]
    force: bool
    dag_id: str
    run_id: str
    parent_run_id: str


# ----------------------------------------------------------------------------------------
# The trigger form: one field per overridable knob
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Knob:
    """A trigger-form field and where its value goes in a dataset block."""

    name: str
    path: tuple[str, ...]
    section: str
    help: str


KNOBS: tuple[Knob, ...] = (
    Knob("rows", ("generate", "rows"), "Generate", "synthetic rows to sample"),
    Knob("shard_rows", ("generate", "shard_rows"), "Generate", "rows per shard (one mapped task each)"),
    Knob("seed", ("seed",), "Generate", "seed of the split, the fit and every shard"),
    Knob("synthesizer", ("fit", "synthesizer"), "Fit", "SDV synthesizer"),
    Knob("blend_strategy", ("blend", "strategy"), "Blend", "synthetic_only, or augment with real rows"),
    Knob("real_ratio", ("blend", "real_ratio"), "Blend", "augment: real train rows per synthetic row"),
    Knob("quality_min", ("gates", "quality_min"), "Gates", "minimum SDMetrics quality score"),
    Knob("diagnostic_min", ("gates", "diagnostic_min"), "Gates", "minimum SDMetrics diagnostic score"),
    Knob(
        "exact_copies_max",
        ("gates", "exact_copies_max"),
        "Gates",
        "maximum share of synthetic rows identical to a training row",
    ),
    Knob(
        "dcr_share_max",
        ("gates", "dcr_share_max"),
        "Gates",
        "maximum share of synthetic rows closer to train than to holdout",
    ),
    Knob("utility_gap_max", ("gates", "utility_gap_max"), "Gates", "maximum TRTR - TSTR gap on the real holdout"),
    Knob("gate_sample_rows", ("gates", "sample_rows"), "Gates", "rows compared per side by the gates"),
)
"""The trigger form's fields (flat names; the same knobs nest in conf as in params.yaml)."""

_SECTION_MODELS = {"generate": GenerateConfig, "fit": FitConfig, "blend": BlendConfig, "gates": GatesConfig}


def _value_schema(path: tuple[str, ...]) -> dict[str, Any]:
    """The JSON schema of a knob's (non-null) value, taken from the pydantic model."""
    if path == ("seed",):
        field = DatasetConfig.model_json_schema()["properties"]["seed"]
    else:
        section, key = path
        field = _SECTION_MODELS[section].model_json_schema()["properties"][key]
    options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
    (schema,) = options
    keep = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    return {k: v for k, v in schema.items() if k in keep}


def _get(block: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = block
    for key in path:
        value = value[key]
    return value


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def form_params(cfg: DatasetConfig) -> dict[str, dict[str, Any]]:
    """Keyword arguments of `airflow.sdk.Param` for each trigger-form field of a dataset.

    Every field defaults to null ("keep the params.yaml value", shown in its description), so a
    scheduled run, or a manual run where nothing was typed, uses params.yaml unchanged.
    """
    current = cfg.to_params()
    fields: dict[str, dict[str, Any]] = {}
    for knob in KNOBS:
        schema = _value_schema(knob.path)
        kind = schema.pop("type")
        spec: dict[str, Any] = {
            "default": None,
            "type": ["null", kind],
            "title": knob.name,
            "description": f"{knob.help}; params.yaml: {_get(current, knob.path)!r} "
            f"({'.'.join(knob.path)}); empty keeps it",
            "section": knob.section,
            **schema,
        }
        if "enum" in spec:
            spec["enum"] = [*spec["enum"], None]
        fields[knob.name] = spec
    fields[FORCE] = {
        "default": False,
        "type": "boolean",
        "title": FORCE,
        "description": "rebuild even when the source and the params are unchanged since the last release",
        "section": "Run",
    }
    return fields


def resolve_config(
    params: Params, dataset: str, conf: Mapping[str, Any] | None, form: Mapping[str, Any] | None
) -> tuple[DatasetConfig, dict[str, Any], bool]:
    """The run's effective config, its overrides and the force flag, validated up front.

    `conf` is the run's conf: nested sections shaped like a params.yaml dataset block
    (`{"generate": {"rows": 20000}}`) and/or flat trigger-form fields (`{"rows": 20000}`).
    `form` holds the trigger-form values Airflow resolved (conf merged over the defaults).
    Raises ConfigError naming every bad key path.
    """
    conf = dict(conf or {})
    form = dict(form or {})
    names = {k.name for k in KNOBS}
    problems = [
        f"{key}: unknown key (use a params.yaml section: {', '.join(OVERRIDABLE)}, "
        f"or a form field: {', '.join(sorted(names | {FORCE}))})"
        for key in conf
        if key not in OVERRIDABLE and key not in names and key != FORCE
    ]
    nested = {k: v for k, v in conf.items() if k in OVERRIDABLE and k not in names}
    flat: dict[str, Any] = {}
    for knob in KNOBS:
        value = conf[knob.name] if knob.name in conf else form.get(knob.name)
        if value is None:
            continue
        try:
            given = _get(nested, knob.path)
        except (KeyError, TypeError):
            given = value
        if given != value:
            problems.append(
                f"{'.'.join(knob.path)}: set twice with different values "
                f"({given!r} in conf, {value!r} as {knob.name!r}); keep one"
            )
        flat = deep_merge(flat, _nest(knob.path, value))
    force = conf.get(FORCE, form.get(FORCE, False))
    if not isinstance(force, bool):
        problems.append(f"{FORCE}: must be true or false, got {force!r}")
    overrides = deep_merge(nested, flat)
    try:
        cfg = apply_overrides(params, dataset, overrides)
    except ConfigError as err:
        problems += err.problems
    if problems:
        raise ConfigError(problems, "run overrides")
    return cfg, overrides, bool(force)


def dag_doc(cfg: DatasetConfig, intro: str) -> str:
    """The DAG's doc_md: the module docstring, then this dataset's facts and knobs."""
    current = cfg.to_params()
    rows = "\n".join(f"| `{k.name}` | `{'.'.join(k.path)}` | `{_get(current, k.path)!r}` | {k.help} |" for k in KNOBS)
    return (
        f"{intro.strip()}\n\n## Dataset `{cfg.name}`\n\n{cfg.description or '(no description)'}\n\n"
        f"- source: `{cfg.source.path}` ({cfg.source.format})\n"
        f"- schedule: `{cfg.schedule}`\n- target: `{cfg.target}`\n\n"
        "## Trigger-form fields (empty keeps params.yaml)\n\n"
        "| field | params.yaml key | params.yaml value | meaning |\n|---|---|---|---|\n"
        f"{rows}\n| `{FORCE}` | - | `false` | rebuild even when nothing changed |\n"
    )


# ----------------------------------------------------------------------------------------
# Plumbing shared by every task
# ----------------------------------------------------------------------------------------


def _airflow_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Errors a retry cannot fix fail the task at once (no retry), with their message logged."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _NOT_RETRIED as err:
            from airflow.sdk.exceptions import AirflowFailException

            log.error("%s", err)
            raise AirflowFailException(f"{type(err).__name__}: {err}") from err

    return wrapper


def _quiet() -> None:
    """Keep task logs readable (library chatter at ERROR)."""
    for name in (
        "great_expectations",
        "great_expectations._docs_decorators",
        "mlflow",
        "alembic",
        "SingleTableSynthesizer",
        "sdv",
        "rdt",
        "copulas",
        "py.warnings",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _runner_env(ctx: Mapping[str, Any]) -> Iterator[None]:
    """Set the variables the stage code reads (runner, parent run, Airflow ids), then restore."""
    values = {
        "SYNTHGATE_RUNNER": "airflow",
        "SYNTHGATE_ROOT": str(ctx["root"]),
        "AIRFLOW_CTX_DAG_ID": str(ctx["dag_id"]),
        "AIRFLOW_CTX_DAG_RUN_ID": str(ctx["run_id"]),
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    }
    if ctx.get("parent_run_id"):
        values["SYNTHGATE_PARENT_RUN_ID"] = str(ctx["parent_run_id"])
    saved = {k: os.environ.get(k) for k in (*values, "SYNTHGATE_PARENT_RUN_ID")}
    os.environ.update(values)
    if "SYNTHGATE_PARENT_RUN_ID" not in values:
        os.environ.pop("SYNTHGATE_PARENT_RUN_ID", None)
    _quiet()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def config_of(ctx: Mapping[str, Any]) -> tuple[DatasetConfig, DatasetPaths]:
    """The run's pinned config and paths (as resolved by the first task)."""
    cfg = DatasetConfig.model_validate(ctx["config"])
    return cfg, paths_for(cfg.name, Path(ctx["root"]))


def _stage(ctx: RunContext, stage: str) -> dict[str, Any]:
    """Run one stage's `run` exactly as DVC does, inside the runner's environment."""
    import importlib

    cfg, paths = config_of(ctx)
    module = importlib.import_module(f"pipelines.{stage}")
    started = time.perf_counter()
    with _runner_env(ctx):
        result = module.run(cfg, paths)
    log.info("%s %s: done in %.1f s", stage, cfg.name, time.perf_counter() - started)
    return result


def _set_parent_tags(ctx: Mapping[str, Any], tags: Mapping[str, str]) -> None:
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import use_store

    use_store(Path(ctx["root"]))
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(ctx["parent_run_id"], key, value)


# ----------------------------------------------------------------------------------------
# The tasks, in DAG order
# ----------------------------------------------------------------------------------------


@_airflow_errors
def start(
    dataset: str,
    root: Path | str,
    conf: Mapping[str, Any] | None,
    form: Mapping[str, Any] | None,
    dag_id: str,
    run_id: str,
) -> RunContext:
    """Validate the run's overrides (nothing else happens when they are bad), open the MLflow run.

    Returns the run context every later task receives.
    """
    from pipelines.tracking import start_pipeline

    root = Path(root).resolve()
    params = load_params(root / "params.yaml")
    cfg, overrides, force = resolve_config(params, dataset, conf, form)
    log.info("%s: overrides %s%s", dataset, overrides or "none", " (force)" if force else "")
    ctx: RunContext = {
        "dataset": dataset,
        "root": str(root),
        "config": cfg.to_params(),
        "overrides": overrides,
        "force": force,
        "dag_id": dag_id,
        "run_id": run_id,
        "parent_run_id": "",
    }
    with _runner_env(ctx):
        ctx["parent_run_id"] = start_pipeline(cfg, paths_for(dataset, root))
    log.info("%s: MLflow parent run %s", dataset, ctx["parent_run_id"])
    return ctx


def source_digest(cfg: DatasetConfig, paths: DatasetPaths) -> str:
    """The source's sha256, computed as ingest records it (a file's bytes, or a query's rows)."""
    if cfg.source.format == "sql":
        from pipelines.ingest import read_source

        return str(read_source(cfg.source, paths.root)[1]["sha256"])
    path = Path(cfg.source.path)
    path = path if path.is_absolute() else paths.root / path
    if not path.is_file():
        raise InvalidInputError(
            cfg.source.path, ["source file not found"], hint="Check `source.path` of this dataset in params.yaml."
        )
    return sha256_file(path)


def refresh_reason(cfg: DatasetConfig, paths: DatasetPaths, force: bool = False) -> str | None:
    """Why this run must rebuild, or None when the source and params match the last release."""
    from pipelines.tracking import flatten

    if force:
        return "forced (force=true)"
    if not paths.manifest.is_file():
        return "no release yet"
    manifest = read_json(paths.manifest)
    released = manifest.get("source", {}).get("sha256")
    digest = source_digest(cfg, paths)
    if digest != released:
        return f"source {cfg.source.path} changed: sha256 {str(released)[:12]}… -> {digest[:12]}…"
    old, new = flatten(manifest.get("params", {})), flatten(cfg.to_params())
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        return f"params changed since release v{manifest.get('version')}: {', '.join(changed)}"
    return None


@_airflow_errors
def source_changed(ctx: RunContext) -> bool:
    """Short-circuit: False (skip every stage) when the source and params match the last release."""
    cfg, paths = config_of(ctx)
    reason = refresh_reason(cfg, paths, bool(ctx.get("force")))
    if reason is not None:
        log.info("%s: refreshing: %s", cfg.name, reason)
        return True
    version = read_json(paths.manifest).get("version")
    log.info(
        "%s: source and params unchanged since release v%s; nothing to do (no refit, no new "
        "release). Trigger with force=true to rebuild anyway.",
        cfg.name,
        version,
    )
    _set_parent_tags(ctx, {"synthgate.verdict": "unchanged", "synthgate.unchanged_since_version": str(version)})
    return False


@_airflow_errors
def ingest(ctx: RunContext) -> RunContext:
    """The ingest stage."""
    _stage(ctx, "ingest")
    return ctx


@_airflow_errors
def fit(ctx: RunContext) -> RunContext:
    """The fit stage."""
    _stage(ctx, "fit")
    return ctx


@_airflow_errors
def plan_shards(ctx: RunContext) -> list[dict[str, Any]]:
    """The shard plan (the same `generate.shards_for` DVC uses): one mapped task per shard."""
    from pipelines.generate import shards_for

    cfg, paths = config_of(ctx)
    shards = [asdict(s) for s in shards_for(cfg, paths)]
    log.info(
        "%s: %d rows in %d shard(s) of at most %d",
        cfg.name,
        sum(s["rows"] for s in shards),
        len(shards),
        cfg.generate.shard_rows,
    )
    return shards


@_airflow_errors
def sample_shard(ctx: RunContext, shard: Mapping[str, Any]) -> dict[str, Any]:
    """Sample and write one shard (`generate.run_shard`; same shard, same bytes on any worker)."""
    from pipelines.generate import Shard, run_shard

    cfg, paths = config_of(ctx)
    with _runner_env(ctx):
        result = run_shard(cfg, paths, Shard(**shard))
    log.info("%s: shard %d: %d rows -> %s", cfg.name, result["index"], result["rows"], result["path"])
    return result


@_airflow_errors
def combine_shards(ctx: RunContext, results: Any) -> RunContext:
    """Check every planned shard is there, then write the generate record (`generate.finalize`)."""
    from pipelines.generate import finalize, shards_for

    cfg, paths = config_of(ctx)
    results = sorted((dict(r) for r in results), key=lambda r: r["index"])
    planned = [asdict(s) for s in shards_for(cfg, paths)]
    got = [{k: r.get(k) for k in plan} for r, plan in zip(results, planned, strict=False)]
    if len(results) != len(planned) or got != planned:
        raise IntegrityError(
            f"{cfg.name}: the sampled shards {[r['index'] for r in results]} do not match the plan of "
            f"{len(planned)} shard(s) (rows, seeds); clear the sample_shard tasks and run them again"
        )
    for r in results:
        path = paths.root / r["path"]
        if not path.is_file() or sha256_file(path) != r["sha256"]:
            raise IntegrityError(f"{r['path']}: missing or changed since its shard task wrote it")
    with _runner_env(ctx):
        finalize(cfg, paths, results)
    return ctx


@_airflow_errors
def blend(ctx: RunContext) -> RunContext:
    """The blend stage."""
    _stage(ctx, "blend")
    return ctx


@_airflow_errors
def validate(ctx: RunContext) -> RunContext:
    """The validate stage; logs one line per gate (release decides on them)."""
    record = _stage(ctx, "validate")
    cfg, paths = config_of(ctx)
    for g in read_json(paths.validation)["gates"]:
        log.info(
            "gate %-14s %s %.4f %s %.4f",
            g["name"],
            "PASS" if g["passed"] else "FAIL",
            g["value"],
            g["comparison"],
            g["threshold"],
        )
    if record["failed"]:
        log.warning("%s: gate(s) failed: %s; release will refuse to publish", cfg.name, ", ".join(record["failed"]))
    return ctx


def released_by(ctx: Mapping[str, Any], paths: DatasetPaths) -> int | None:
    """The version this very Airflow run already published (a retried release task), else None."""
    from pipelines.release import UPSTREAM

    if not paths.manifest.is_file():
        return None
    manifest = read_json(paths.manifest)
    runner = manifest.get("runner", {})
    same_run = (
        runner.get("airflow_dag_id") == ctx["dag_id"]
        and runner.get("airflow_run_id") == ctx["run_id"]
        and manifest.get("mlflow", {}).get("run_id") == ctx["parent_run_id"]
    )
    if not same_run:
        return None
    records = manifest.get("records", {})
    for stage in UPSTREAM:
        record = paths.record(stage)
        if not record.is_file() or records.get(stage) != sha256_file(record):
            return None
    return int(manifest["version"])


@_airflow_errors
def release(ctx: RunContext) -> RunContext:
    """The release stage: publishes, or fails with GateFailed's message (the old release stays).

    A retry after this run already published (e.g. MLflow failed after the swap) publishes nothing.
    """
    cfg, paths = config_of(ctx)
    version = released_by(ctx, paths)
    if version is not None:
        log.info("%s: v%s was already published by this run; not publishing it again", cfg.name, version)
        _set_parent_tags(ctx, {"synthgate.verdict": "released", "synthgate.release_version": str(version)})
        return ctx
    manifest = _stage(ctx, "release")
    log.info("%s: released v%s (%s)", ctx["dataset"], manifest["version"], manifest["files"][0]["path"])
    return ctx


def _repo_lock(root: Path, timeout_s: float = DVC_LOCK_TIMEOUT_S) -> contextlib.AbstractContextManager[None]:
    """One DVC recording at a time per repository (all datasets share dvc.lock)."""
    busy = f"another run has been recording in DVC for {timeout_s:.0f} s; the task will retry"
    return file_lock(dvc_record_lock(root), busy, wait_s=timeout_s)


def _dvc(root: Path, *args: str, timeout_s: float = DVC_LOCK_TIMEOUT_S) -> str:
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet"}
    try:
        out = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        raise SynthgateError(f"`dvc {' '.join(args)}` did not finish in {timeout_s:.0f} s") from None
    if out.returncode != 0:
        raise SynthgateError(
            f"`dvc {' '.join(args)}` failed in {root} (exit {out.returncode}):\n"
            f"{(out.stderr or out.stdout).strip()[-3000:]}"
        )
    return out.stdout


def dvc_targets(dataset: str) -> list[str]:
    """This dataset's dvc.yaml stages (`ingest@hdma` … `release@hdma`)."""
    return [f"{stage}@{dataset}" for stage in STAGES]


def record_in_dvc(root: Path, dataset: str) -> dict[str, Any]:
    """`dvc commit -f` this dataset's stages and `dvc push` their outputs, one run at a time."""
    if not (root / ".dvc").is_dir() or not (root / "dvc.yaml").is_file():
        raise InvalidInputError(
            str(root),
            ["not a DVC project (no .dvc/ or dvc.yaml)"],
            hint="Run the DAG against the repository root (SYNTHGATE_ROOT).",
        )
    targets = dvc_targets(dataset)
    with _repo_lock(root):
        _dvc(root, "commit", "-f", *targets)
        remote = os.environ.get("SYNTHGATE_DVC_REMOTE")
        pushed = _dvc(root, "push", *(["--remote", remote] if remote else []), *targets)
    return {"committed": targets, "push": pushed.strip().splitlines()[-1:] or [""]}


@_airflow_errors
def record_dvc(ctx: RunContext) -> dict[str, Any]:
    """Record the run's outputs in DVC (dvc.lock + cache + remote): `dvc status` is clean after."""
    root = Path(ctx["root"])
    if ctx.get("overrides"):
        log.warning(
            "%s: this run had overrides %s; dvc.lock records params.yaml's values, the "
            "release manifest and MLflow the effective ones",
            ctx["dataset"],
            ctx["overrides"],
        )
    with _runner_env(ctx):
        result = record_in_dvc(root, ctx["dataset"])
    log.info("%s: dvc commit %s; dvc push: %s", ctx["dataset"], " ".join(result["committed"]), result["push"][0])
    _set_parent_tags(ctx, {"synthgate.dvc": "committed+pushed"})
    return result


def finish(ctx: RunContext) -> str:
    """Teardown: close the MLflow parent run (FINISHED when released or unchanged, else FAILED)."""
    from mlflow.tracking import MlflowClient

    from pipelines.tracking import close_pipeline, use_store

    root = Path(ctx["root"])
    use_store(root)
    tags = MlflowClient().get_run(ctx["parent_run_id"]).data.tags
    verdict = tags.get("synthgate.verdict", "incomplete")
    success = verdict == "unchanged" or (verdict == "released" and "synthgate.dvc" in tags)
    cfg, paths = config_of(ctx)
    close_pipeline(ctx["parent_run_id"], root, success, cfg, paths)
    status = "FINISHED" if success else "FAILED"
    log.info(
        "%s: MLflow run %s closed as %s (verdict: %s, dvc: %s)",
        ctx["dataset"],
        ctx["parent_run_id"],
        status,
        verdict,
        tags.get("synthgate.dvc", "not recorded"),
    )
    return status
