"""generate: seeded sampling of N rows in shards (bounded memory; same seed -> same bytes).

Shard i is sampled with its own seed derived from (dataset seed, i), after resetting the
synthesizer's sampling state, so a shard's bytes do not depend on which process samples it or
in which order: DVC samples the shards in one process, Airflow maps them over workers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
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


def shard_seed(seed: int, index: int) -> int:
    """A per-shard seed, derived (not incremented) so shards never share a stream."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def plan(total_rows: int, shard_rows: int, seed: int) -> list[Shard]:
    """Split `total_rows` into shards of at most `shard_rows`."""
    count = max(1, math.ceil(total_rows / shard_rows))
    return [
        Shard(i, min(shard_rows, total_rows - i * shard_rows), shard_seed(seed, i))
        for i in range(count)
    ]


def target_rows(cfg: DatasetConfig, paths: DatasetPaths) -> int:
    """generate.rows, or the train split's size when it is null."""
    if cfg.generate.rows is not None:
        return cfg.generate.rows
    return int(read_json(paths.record("ingest"))["train"]["rows"])


def sample_shard(synth: Any, table: str, shard: Shard) -> Any:
    """Sample one shard deterministically from a fitted synthesizer."""
    import numpy as np

    synth.reset_sampling()
    synth._set_random_state(shard.seed)  # SDV exposes no public per-call seed
    np.random.seed(shard.seed % 2**32)
    out = synth.sample(shard.rows)
    return out[table] if isinstance(out, dict) else out


def shards_for(cfg: DatasetConfig, paths: DatasetPaths) -> list[Shard]:
    """The shard plan of this dataset's current config."""
    return plan(target_rows(cfg, paths), cfg.generate.shard_rows, cfg.seed)


def run_shard(cfg: DatasetConfig, paths: DatasetPaths, shard: Shard, synth: Any = None) -> dict[str, Any]:
    """Sample and write one shard (idempotent: the same shard always gives the same bytes)."""
    from pipelines.fit import load_model

    if synth is None:
        fit_record = read_json(paths.record("fit"))
        synth = load_model(paths, fit_record["model"]["sha256"])
    df = sample_shard(synth, cfg.name, shard)
    if len(df) != shard.rows:
        raise InvalidInputError(
            str(paths.model.relative_to(paths.root)),
            [f"shard {shard.index}: sampled {len(df)} rows, expected {shard.rows}"],
        )
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
            stale.unlink()
    fit_record = read_json(paths.record("fit"))
    shard_results = sorted(shard_results, key=lambda r: r["index"])
    total = sum(r["rows"] for r in shard_results)
    with tracking.stage_run(cfg, paths, "generate") as handle:
        mlflow.log_params({"rows": total, "shard_rows": cfg.generate.shard_rows,
                           "shards": len(shard_results), "seed": cfg.seed})
        mlflow.log_metric("rows.synthetic", total)
        record = {
            "stage": "generate",
            "dataset": cfg.name,
            "rows": total,
            "seed": cfg.seed,
            "shard_rows": cfg.generate.shard_rows,
            "shards": shard_results,
            "model": {"sha256": fit_record["model"]["sha256"]},
            "mlflow": {"run_id": handle.run_id, "parent_run_id": handle.parent_run_id,
                       "experiment": handle.experiment_name},
        }
        write_json(paths.record("generate"), record)
    return record


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The generate stage in one process: every shard in turn, then the record."""
    from pipelines.fit import load_model

    fit_record = read_json(paths.record("fit"))
    synth = load_model(paths, fit_record["model"]["sha256"])
    results = [run_shard(cfg, paths, shard, synth) for shard in shards_for(cfg, paths)]
    return finalize(cfg, paths, results)
