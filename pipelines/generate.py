"""generate: seeded sampling of N rows in shards (bounded memory; same seed -> same bytes).

Shard i is sampled with its own seed derived from (dataset seed, i), after resetting the
synthesizer's sampling state, so a shard's bytes do not depend on which process samples it or
in which order: the CLI and DVC sample the shards in a pool of `generate.workers` processes (one
when 1), Airflow maps them over its workers.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines import engines, ids, pii, progress, tableset
from pipelines.engines import SampleRequest
from pipelines.errors import InvalidInputError, OutOfResources, SynthgateError
from pipelines.records.stages import FitRecord, GenerateRecord, IngestRecord

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


@dataclass(frozen=True)
class Shard:
    """One unit of sampling work."""

    index: int
    rows: int
    seed: int
    conditions: dict[str, Any] = field(default_factory=dict)
    """Column values every row of the shard has (conditional sampling); empty: unconditional."""


def shard_seed(seed: int, index: int) -> int:
    """A per-shard seed, derived (not incremented) so shards never share a stream."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def plan(total_rows: int, shard_rows: int, seed: int) -> list[Shard]:
    """Split `total_rows` into shards of at most `shard_rows`."""
    count = max(1, math.ceil(total_rows / shard_rows))
    return [Shard(i, min(shard_rows, total_rows - i * shard_rows), shard_seed(seed, i)) for i in range(count)]


def plan_groups(groups: list[tuple[dict[str, Any], int]], shard_rows: int, seed: int) -> list[Shard]:
    """Shards for groups of rows that share conditions (one group per class when rebalancing)."""
    shards: list[Shard] = []
    for conditions, rows in groups:
        for i in range(math.ceil(rows / shard_rows)):
            index = len(shards)
            shards.append(
                Shard(index, min(shard_rows, rows - i * shard_rows), shard_seed(seed, index), dict(conditions))
            )
    return shards


def condition_groups(cfg: DatasetConfig, paths: DatasetPaths, total: int) -> list[tuple[dict[str, Any], int]] | None:
    """(conditions, rows) per group of shards; None when sampling is unconditional.

    `generate.conditions` apply to every row; `blend.strategy: rebalance` splits the rows over the
    classes of its column in the requested shares. Values are checked against the fit record.
    """
    from pipelines import rebalance

    rebalancing = cfg.blend.strategy == "rebalance"
    if not cfg.generate.conditions and not rebalancing:
        return None
    fit = FitRecord.read(paths.record("fit"))
    dom = fit.domain
    protected = pii.PiiPlan.from_dict(fit.pii).names
    conditions = rebalance.check_conditions(
        cfg.generate.conditions, dom, protected, f"datasets.{cfg.name}.generate.conditions"
    )
    if not rebalancing:
        return [(conditions, total)]
    column, shares = rebalance.class_shares(cfg, dom, protected)
    counts = rebalance.allocate(total, shares)
    return [({**conditions, column: value}, n) for value, n in counts.items() if n > 0]


def target_rows(cfg: DatasetConfig, paths: DatasetPaths) -> int:
    """generate.rows, or the size of the main table's train split when it is null."""
    if cfg.generate.rows is not None:
        return cfg.generate.rows
    return tableset.rows_of(IngestRecord.read(paths.record("ingest")).train, tableset.layout(cfg))


def shards_for(cfg: DatasetConfig, paths: DatasetPaths) -> list[Shard]:
    """The shard plan of this dataset's current config (grouped by conditions when asked).

    A table set with keys is sampled in one shard: parents are sampled before their children,
    and keys sampled in separate shards would collide.
    """
    total = target_rows(cfg, paths)
    if not tableset.layout(cfg).shardable:
        return [Shard(0, total, shard_seed(cfg.seed, 0))]
    groups = condition_groups(cfg, paths, total)
    if groups is None:
        return plan(total, cfg.generate.shard_rows, cfg.seed)
    return plan_groups(groups, cfg.generate.shard_rows, cfg.seed)


def in_source_order(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame with the source's column order (SDV returns its metadata's order); unknown ones last."""
    known = [c for c in columns if c in df.columns]
    return df[known + [c for c in df.columns if c not in known]]


def load_context(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """What every shard needs: the fit record, the real PII values to avoid, the engine and model."""
    from pipelines.mlflow_model import verify_registered_digest

    fit = FitRecord.read(paths.record("fit"))
    engine = engines.get(fit.synthesizer)
    verify_registered_digest(fit, paths.root)
    return {
        "fit": fit,
        "avoid": pii.real_pii_values(paths, fit),
        "engine": engine,
        "model": engine.load(paths.model, fit.model.sha256, paths.rel(paths.model)),
    }


def run_shard(
    cfg: DatasetConfig, paths: DatasetPaths, shard: Shard, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Sample and write one shard (idempotent: the same shard always gives the same bytes).

    `context` (from `load_context`) is loaded when not given.
    """
    lay = tableset.layout(cfg)
    context = context or load_context(cfg, paths)
    fit: FitRecord = context["fit"]
    request = SampleRequest(
        rows=shard.rows,
        seed=shard.seed,
        main=lay.main,
        train_rows=tableset.rows_of(fit.train, lay),
        conditions=dict(shard.conditions),
        first_key=shard.index * cfg.generate.shard_rows,  # sequences: a shard has at most shard_rows entities
    )
    started = time.perf_counter()
    tables = context["engine"].sample(context["model"], request)
    seconds = time.perf_counter() - started
    if lay.exact_rows and len(tables[lay.main]) != shard.rows:
        raise InvalidInputError(
            paths.rel(paths.model),
            [f"shard {shard.index}: sampled {len(tables[lay.main])} rows, expected {shard.rows}"],
        )
    if fit.ids:  # ids unique across shards: numbered from the shard's first row
        tables[lay.main] = ids.renumber(tables[lay.main], fit.ids, request.first_key, cfg.name)
    plan = pii.PiiPlan.from_dict(fit.pii)
    if plan.columns:
        tables[lay.main] = pii.apply_plan(tables[lay.main], plan, shard.seed, context["avoid"], columns=fit.columns)
    tables = {t: in_source_order(df, fit.tables.get(t, [])) for t, df in tables.items()}
    path = paths.shard(shard.index)
    written = tableset.describe(paths, path, tableset.write(path, tables, lay))
    return {
        **asdict(shard),
        **written,
        "rows": tableset.rows_of(written, lay),
        "requested_rows": shard.rows,
        "sample_seconds": round(seconds, 3),
    }


def finalize(
    cfg: DatasetConfig, paths: DatasetPaths, shard_results: list[dict[str, Any]], workers: int | None = None
) -> dict[str, Any]:
    """Check the shard set is complete, remove stale shards, write the generate record.

    `workers`: the processes that sampled the shards (None: mapped Airflow tasks).
    """
    import mlflow

    from pipelines import tracking

    expected = {f"part-{r['index']:05d}.parquet" for r in shard_results}
    for stale in paths.synthetic_dir.glob("part-*.parquet"):
        if stale.name not in expected:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()  # a folder: a shard of a table set
    fit = FitRecord.read(paths.record("fit"))
    shard_results = sorted(shard_results, key=lambda r: r["index"])
    total = sum(r["rows"] for r in shard_results)
    with tracking.stage_run(cfg, paths, "generate") as handle:
        mlflow.log_params(
            {"rows": total, "shard_rows": cfg.generate.shard_rows, "shards": len(shard_results), "seed": cfg.seed}
            | ({"workers": workers} if workers else {})
        )
        mlflow.log_metric("rows.synthetic", total)
        record = GenerateRecord(
            dataset=cfg.name,
            rows=total,
            seed=cfg.seed,
            shard_rows=cfg.generate.shard_rows,
            shards=shard_results,
            workers=workers,
            model={"sha256": fit.model.sha256},
            pii=fit.pii,
            columns=fit.columns,
            conditions=dict(cfg.generate.conditions),
            rebalance=_rebalance_record(cfg, shard_results),
            mlflow=handle.as_record(),
        )
        record.write(paths.record("generate"))
    return record.to_json()


def _rebalance_record(cfg: DatasetConfig, shard_results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The class column and rows per class the shards were sampled with (blend checks it)."""
    if cfg.blend.strategy != "rebalance":
        return None
    column = cfg.blend.column or cfg.target
    rows: dict[str, int] = {}
    for r in shard_results:
        key = str((r.get("conditions") or {}).get(column))  # records key classes by their text
        rows[key] = rows.get(key, 0) + r["rows"]
    return {"column": column, "shares": dict(cfg.blend.shares), "rows_by_class": rows}


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask; all of them where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS has no affinity mask


def worker_count(cfg: DatasetConfig, shards: int) -> int:
    """Processes that sample the shards: `generate.workers` (null: the usable cores), at most one per shard."""
    return max(1, min(cfg.generate.workers or usable_cores(), shards))


_WORKER: tuple[DatasetConfig, DatasetPaths, dict[str, Any]] | Exception | None = None
"""In a pool worker: the config, paths and context (the model, loaded once) every task samples with,
or the error loading them raised (each task raises it, so it reaches the stage typed)."""


def _init_worker(cfg: DatasetConfig, paths: DatasetPaths, context: dict[str, Any] | None) -> None:
    global _WORKER
    try:
        _WORKER = (cfg, paths, context or load_context(cfg, paths))
    except Exception as err:  # an initializer's error would only break the pool, untyped
        _WORKER = err


def _pooled_shard(shard: Shard) -> dict[str, Any]:
    if _WORKER is None:  # pragma: no cover - the pool's initializer always ran
        raise RuntimeError("generate worker used before its initializer")
    if isinstance(_WORKER, Exception):
        raise _WORKER
    cfg, paths, context = _WORKER
    return run_shard(cfg, paths, shard, context)


class _Recorded:
    """A multiprocessing context that keeps the processes it starts: their exit codes say why a pool broke."""

    def __init__(self, method: str) -> None:
        import multiprocessing

        self._context = multiprocessing.get_context(method)
        self.processes: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # the name ProcessPoolExecutor calls
        process = self._context.Process(*args, **kwargs)
        self.processes.append(process)
        return process


def sample_pool(
    cfg: DatasetConfig, paths: DatasetPaths, shards: list[Shard], context: dict[str, Any], workers: int, label: str
) -> list[dict[str, Any]]:
    """Sample and write `shards` in a pool of `workers` processes; their results, in shard order.

    A `forkable` engine's workers are forked (before any progress thread starts) and share the model
    this process loaded; the others' are spawned and load it once each. A failing shard stops the
    rest: once running shards end, the error of the lowest failed shard is raised as the worker
    raised it (a shard is written atomically, so none is left half-written). A worker that dies
    (killed by the kernel for memory: OutOfResources) leaves its temporary file, which is removed.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    forked = context["engine"].info.forkable
    mp = _Recorded("fork" if forked else "spawn")
    initargs = (cfg, paths, context if forked else None)  # fork: inherited, never pickled
    pool = ProcessPoolExecutor(workers, mp_context=mp, initializer=_init_worker, initargs=initargs)
    try:
        futures = {pool.submit(_pooled_shard, shard): shard for shard in shards}  # fork: every worker starts here
        with progress.step(label, total=len(shards)) as step:
            for future in as_completed(futures):
                if future.exception() is not None:
                    break
                step.advance()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    failed = sorted(
        ((futures[f].index, f.exception()) for f in futures if f.done() and not f.cancelled() and f.exception()),
        key=lambda pair: pair[0],
    )
    typed = [err for _, err in failed if not isinstance(err, BrokenProcessPool)]
    if typed:
        raise typed[0]
    if failed:
        for partial in paths.synthetic_dir.glob(".part-*.tmp"):
            partial.unlink(missing_ok=True)
        raise _broken(cfg, workers, [p.exitcode for p in mp.processes]) from failed[0][1]
    return [f.result() for f in futures]


def _broken(cfg: DatasetConfig, workers: int, exit_codes: list[int | None]) -> Exception:
    """Why the pool broke, from its processes' exit codes."""
    import signal

    if -signal.SIGKILL in exit_codes:
        return OutOfResources(
            f"generate {cfg.name}: a sampling process was killed (most often by the kernel, out of memory): "
            f"lower generate.workers ({workers}) or generate.shard_rows ({cfg.generate.shard_rows}) and run again"
        )
    return SynthgateError(
        f"generate {cfg.name}: a sampling process ended before returning its shard (exit codes {exit_codes}); "
        "its output above says why. A script that runs generate itself must guard its top level with "
        "`if __name__ == '__main__':` (engines sampling with torch get spawned workers, which import it); "
        "generate.workers: 1 samples in one process"
    )


def sample_shards(
    cfg: DatasetConfig, paths: DatasetPaths, shards: list[Shard], context: dict[str, Any], workers: int
) -> list[dict[str, Any]]:
    """Sample and write every shard: in this process when `workers` is 1, else in a pool of them."""
    label = f"generate {cfg.name}: {sum(s.rows for s in shards):,} rows"
    if workers > 1:
        return sample_pool(cfg, paths, shards, context, workers, f"{label}, {workers} processes")
    results = []
    with progress.step(label, total=len(shards)) as step:
        for shard in shards:
            results.append(run_shard(cfg, paths, shard, context))
            step.advance()
    return results


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The generate stage: the model loaded once, every shard (`generate.workers` processes), the record."""
    context = load_context(cfg, paths)
    shards = shards_for(cfg, paths)
    workers = worker_count(cfg, len(shards))
    return finalize(cfg, paths, sample_shards(cfg, paths, shards, context, workers), workers)
