"""blend: combine synthetic shards with real train rows per strategy, with a provenance column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.contracts import PROVENANCE
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import read_json, read_parquet, sha256_file, write_json, write_parquet

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import BlendConfig, DatasetConfig
    from pipelines.paths import DatasetPaths


def blend(
    synthetic: pd.DataFrame, train: pd.DataFrame, cfg: BlendConfig, seed: int, dataset: str = ""
) -> pd.DataFrame:
    """Blend per strategy; every row gets `_provenance` = 'synthetic' | 'real'.

    synthetic_only: the synthetic rows as sampled. augment: plus round(real_ratio * n_synthetic)
    real train rows drawn without replacement, then shuffled with the seed.
    """
    import pandas as pd

    syn = synthetic.assign(**{PROVENANCE: "synthetic"})
    if cfg.strategy == "synthetic_only":
        return syn.reset_index(drop=True)
    n_real = round(cfg.real_ratio * len(synthetic))
    if n_real > len(train):
        raise ConfigError([
            f"datasets.{dataset}.blend.real_ratio: {cfg.real_ratio} asks for {n_real} real rows, "
            f"the train split has {len(train)}; lower real_ratio or generate fewer rows"
        ])
    real = train.sample(n=n_real, random_state=seed).assign(**{PROVENANCE: "real"})
    real = real.astype({c: syn[c].dtype for c in syn.columns if c in real.columns}, errors="ignore")
    both = pd.concat([syn, real], ignore_index=True)
    return both.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def read_synthetic(paths: DatasetPaths) -> pd.DataFrame:
    """Concatenate the shards listed in the generate record (digests checked)."""
    import pandas as pd

    record = read_json(paths.record("generate"))
    frames = []
    for shard in record["shards"]:
        path = paths.root / shard["path"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            raise InvalidInputError(shard["path"], ["missing or changed since generate; re-run generate"])
        frames.append(read_parquet(path))
    return pd.concat(frames, ignore_index=True)


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The blend stage."""
    import mlflow

    from pipelines import tracking

    synthetic = read_synthetic(paths)
    train = read_parquet(paths.train)
    out = blend(synthetic, train, cfg.blend, cfg.seed, cfg.name)
    with tracking.stage_run(cfg, paths, "blend") as handle:
        sha = write_parquet(paths.blended, out)
        counts = out[PROVENANCE].value_counts().to_dict()
        mlflow.log_params({"strategy": cfg.blend.strategy, "real_ratio": cfg.blend.real_ratio})
        mlflow.log_metrics({f"rows.{k}": v for k, v in counts.items()})
        record = {
            "stage": "blend",
            "dataset": cfg.name,
            "strategy": cfg.blend.strategy,
            "real_ratio": cfg.blend.real_ratio,
            "rows": len(out),
            "rows_by_provenance": {k: int(v) for k, v in counts.items()},
            "blended": {"path": str(paths.blended.relative_to(paths.root)), "sha256": sha},
            "mlflow": {"run_id": handle.run_id, "parent_run_id": handle.parent_run_id,
                       "experiment": handle.experiment_name},
        }
        write_json(paths.record("blend"), record)
    return record
