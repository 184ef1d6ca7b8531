"""generate: seeded sampling of N rows in shards (bounded memory; same seed -> same bytes).

Shard i is sampled with its own seed derived from (dataset seed, i), after resetting the
synthesizer's sampling state, so a shard's bytes do not depend on which process samples it or
in which order: DVC samples the shards in one process, Airflow maps them over workers.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError
from pipelines.io import read_json, write_json, write_parquet

if TYPE_CHECKING:
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
    fit_record = read_json(paths.record("fit"))
    dom = fit_record.get("domain")
    if dom is None:
        raise InvalidInputError(
            str(paths.record("fit").relative_to(paths.root)),
            ["this fit record has no value domain (made by an older version)"],
            hint="Re-run `fit` before sampling with conditions.",
        )
    protected = [c["column"] for c in (fit_record.get("pii") or {}).get("columns", [])]
    conditions = rebalance.check_conditions(
        cfg.generate.conditions, dom, protected, f"datasets.{cfg.name}.generate.conditions"
    )
    if not rebalancing:
        return [(conditions, total)]
    column, shares = rebalance.class_shares(cfg, dom, protected)
    counts = rebalance.allocate(total, shares)
    return [({**conditions, column: value}, n) for value, n in counts.items() if n > 0]


def target_rows(cfg: DatasetConfig, paths: DatasetPaths) -> int:
    """generate.rows, or the train split's size when it is null."""
    if cfg.generate.rows is not None:
        return cfg.generate.rows
    train = read_json(paths.record("ingest"))["train"]
    if cfg.source.tables:  # relational: rows of the main table
        return int(train["tables"][cfg.source.main_table]["rows"])
    return int(train["rows"])


def sample_shard(synth: Any, table: str, shard: Shard) -> Any:
    """Sample one shard deterministically from a fitted synthesizer."""
    import numpy as np

    synth.reset_sampling()
    synth._set_random_state(shard.seed)  # SDV exposes no public per-call seed
    np.random.seed(shard.seed % 2**32)
    if shard.conditions:
        return _sample_conditions(synth, table, shard)
    out = synth.sample(shard.rows)
    return out[table] if isinstance(out, dict) else out


def _sample_conditions(synth: Any, table: str, shard: Shard) -> Any:
    from sdv.sampling import Condition

    try:
        out = synth.sample_from_conditions([Condition(num_rows=shard.rows, column_values=dict(shard.conditions))])
    except ValueError as err:  # SDV: "Unable to sample any rows for the given conditions"
        raise InvalidInputError(
            f"shard {shard.index}",
            [f"conditional sampling of {shard.conditions} failed: {err}"],
            hint="The model could not produce rows with these values; loosen the conditions.",
        ) from None
    df = out[table] if isinstance(out, dict) else out
    return df.reset_index(drop=True)


def shards_for(cfg: DatasetConfig, paths: DatasetPaths) -> list[Shard]:
    """The shard plan of this dataset's current config (grouped by conditions when asked)."""
    total = target_rows(cfg, paths)
    if cfg.source.tables:  # HMA samples parents before children: one shard holds every table
        return [Shard(0, total, shard_seed(cfg.seed, 0))]
    groups = condition_groups(cfg, paths, total)
    if groups is None:
        return plan(total, cfg.generate.shard_rows, cfg.seed)
    return plan_groups(groups, cfg.generate.shard_rows, cfg.seed)


def real_pii_values(paths: DatasetPaths, fit_record: dict[str, Any]) -> dict[str, set[str]]:
    """Per PII column, the real values (train + holdout) a replacement must never equal.

    The files read are checked against the digests the fit record holds (so DVC's dependency on
    runs/<ds>/fit.json covers them).
    """
    from pipelines import pii
    from pipelines.fit import check_digest

    plan = pii.PiiPlan.from_dict(fit_record.get("pii"))
    if not plan.columns or plan.policy == "drop":
        return {}
    frames = []
    for key, path in (("train", paths.train), ("holdout", paths.holdout)):
        expected = (fit_record.get(key) or {}).get("sha256")
        if expected:
            check_digest(path, expected, paths.root, "fit")
        frames.append(read_parquet_columns(path, plan.names))
    return {c: pii.real_values(frames, [c]) for c in plan.names}


def read_parquet_columns(path: Any, columns: list[str]) -> Any:
    """Only some columns of a parquet file (the PII columns are small next to the table)."""
    import pandas as pd

    return pd.read_parquet(path, columns=columns, engine="pyarrow")


def protect(df: Any, fit_record: dict[str, Any], seed: int, avoid: dict[str, set[str]]) -> Any:
    """Put the PII columns back into sampled rows: Faker values (policy replace) or none (drop)."""
    from pipelines import pii

    plan = pii.PiiPlan.from_dict(fit_record.get("pii"))
    if not plan.columns:
        return df
    return pii.apply_plan(df, plan, seed, avoid, columns=fit_record.get("columns"))


def run_shard(
    cfg: DatasetConfig,
    paths: DatasetPaths,
    shard: Shard,
    synth: Any = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sample and write one shard (idempotent: the same shard always gives the same bytes).

    `context` (the fit record and the real PII values) is loaded when not given.
    """
    from pipelines.fit import load_model

    if cfg.source.tables:
        from pipelines.relational import run_shard as run_tables_shard

        return run_tables_shard(cfg, paths, shard, synth)
    if context is None:
        fit_record = read_json(paths.record("fit"))
        context = {"fit": fit_record, "avoid": real_pii_values(paths, fit_record)}
    if synth is None:
        synth = load_model(paths, context["fit"]["model"]["sha256"])
    df = sample_shard(synth, cfg.name, shard)
    if len(df) != shard.rows:
        raise InvalidInputError(
            str(paths.model.relative_to(paths.root)),
            [f"shard {shard.index}: sampled {len(df)} rows, expected {shard.rows}"],
        )
    df = protect(df, context["fit"], shard.seed, context["avoid"])
    path = paths.shard(shard.index)
    sha = write_parquet(path, df)
    return {**asdict(shard), "path": str(path.relative_to(paths.root)), "sha256": sha}


def finalize(cfg: DatasetConfig, paths: DatasetPaths, shard_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Check the shard set is complete, remove stale shards, write the generate record."""
    import mlflow

    from pipelines import tracking

    expected = {f"part-{r['index']:05d}.parquet" for r in shard_results}
    for stale in paths.synthetic_dir.glob("part-*.parquet"):
        if stale.name not in expected:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()  # a dir: a relational shard
    fit_record = read_json(paths.record("fit"))
    shard_results = sorted(shard_results, key=lambda r: r["index"])
    total = sum(r["rows"] for r in shard_results)
    with tracking.stage_run(cfg, paths, "generate") as handle:
        mlflow.log_params(
            {"rows": total, "shard_rows": cfg.generate.shard_rows, "shards": len(shard_results), "seed": cfg.seed}
        )
        mlflow.log_metric("rows.synthetic", total)
        record = {
            "stage": "generate",
            "dataset": cfg.name,
            "rows": total,
            "seed": cfg.seed,
            "shard_rows": cfg.generate.shard_rows,
            "shards": shard_results,
            "model": {"sha256": fit_record["model"]["sha256"]},
            "pii": fit_record.get("pii"),
            "columns": fit_record.get("columns"),
            "conditions": dict(cfg.generate.conditions),
            "rebalance": _rebalance_record(cfg, shard_results),
            "mlflow": handle.as_record(),
        }
        write_json(paths.record("generate"), record)
    return record


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


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The generate stage in one process: every shard in turn, then the record."""
    from pipelines.fit import load_model

    fit_record = read_json(paths.record("fit"))
    synth = load_model(paths, fit_record["model"]["sha256"])
    context = {"fit": fit_record, "avoid": real_pii_values(paths, fit_record)}
    results = [run_shard(cfg, paths, shard, synth, context) for shard in shards_for(cfg, paths)]
    return finalize(cfg, paths, results)
