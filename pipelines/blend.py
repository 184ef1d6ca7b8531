"""blend: combine synthetic shards with real train rows per strategy, with a provenance column."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines import tableset
from pipelines.contracts import PROVENANCE
from pipelines.errors import ConfigError
from pipelines.records.stages import BlendRecord, FitRecord, GenerateRecord, IngestRecord

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import BlendConfig, DatasetConfig
    from pipelines.paths import DatasetPaths
    from pipelines.tableset import Layout, Tables


def blend(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    cfg: BlendConfig,
    seed: int,
    dataset: str = "",
    protect: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    classes: tuple[str, dict[Any, float]] | None = None,
) -> pd.DataFrame:
    """Blend per strategy; every row gets `_provenance` = 'synthetic' | 'real'.

    synthetic_only: the synthetic rows as sampled. augment: plus round(real_ratio * n_synthetic)
    real train rows drawn without replacement, then shuffled with the seed. rebalance: the
    synthetic rows (sampled per class by generate) plus, when real_ratio > 0, real rows drawn per
    class in the same shares (`classes`: column and share per class), shuffled. `protect` is
    applied to the real rows (PII pseudonymised or dropped, as the synthetic rows' PII was).
    """
    import pandas as pd

    from pipelines import rebalance

    syn = synthetic.assign(**{PROVENANCE: "synthetic"})
    if cfg.strategy == "synthetic_only":
        return syn.reset_index(drop=True)
    n_real = round(cfg.real_ratio * len(synthetic))
    if n_real > len(train):
        raise ConfigError(
            [
                f"datasets.{dataset}.blend.real_ratio: {cfg.real_ratio} asks for {n_real} real rows, "
                f"the train split has {len(train)}; lower real_ratio or generate fewer rows"
            ]
        )
    if cfg.strategy == "rebalance":
        if classes is None:
            raise ValueError("strategy 'rebalance' needs the class shares")
        column, shares = classes
        counts = rebalance.allocate(n_real, shares)
        real = rebalance.real_rows(train, column, counts, seed, f"datasets.{dataset}.blend")
    else:
        real = train.sample(n=n_real, random_state=seed)
    if protect is not None:
        real = protect(real)
    real = real.assign(**{PROVENANCE: "real"})
    real = real.astype({c: syn[c].dtype for c in syn.columns if c in real.columns}, errors="ignore")
    both = pd.concat([syn, real], ignore_index=True)
    return both.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def read_synthetic(paths: DatasetPaths, lay: Layout) -> Tables:
    """Every table of the shards listed in the generate record, concatenated (digests checked)."""
    import pandas as pd

    record = GenerateRecord.read(paths.record("generate"))
    shards = [tableset.read(paths.root / s.path, lay, s, "generate") for s in record.shards]
    return {t: pd.concat([s[t] for s in shards], ignore_index=True) for t in shards[0]}


def _pii_protector(cfg: DatasetConfig, paths: DatasetPaths) -> Callable[[pd.DataFrame], pd.DataFrame] | None:
    """Pseudonymise (or drop) the PII columns of real rows per the fit record's plan."""
    from pipelines import pii

    fit = FitRecord.read(paths.record("fit"))
    plan = pii.PiiPlan.from_dict(fit.pii)
    if not plan.columns or cfg.blend.strategy == "synthetic_only":
        return None
    avoid = pii.real_pii_values(paths, fit)
    return lambda real: pii.apply_plan(real, plan, cfg.seed, avoid, pseudonymous=True)


def _classes(cfg: DatasetConfig, paths: DatasetPaths) -> tuple[str, dict[Any, float]] | None:
    """Rebalance: the column and class shares, checked against what generate sampled."""
    from pipelines import rebalance

    if cfg.blend.strategy != "rebalance":
        return None
    from pipelines import pii

    fit = FitRecord.read(paths.record("fit"))
    protected = pii.PiiPlan.from_dict(fit.pii).names
    column, shares = rebalance.class_shares(cfg, fit.domain, protected)
    sampled = GenerateRecord.read(paths.record("generate")).rebalance or {}
    if sampled.get("column") != column or sampled.get("shares") != dict(cfg.blend.shares):
        raise ConfigError(
            [
                f"datasets.{cfg.name}.blend: the synthetic rows were sampled for {sampled or 'no rebalancing'}, "
                f"the config asks for column '{column}' with shares {dict(cfg.blend.shares)}; re-run generate"
            ]
        )
    return column, shares


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The blend stage: the main table blended per strategy, every other table as sampled."""
    import mlflow

    from pipelines import tracking

    lay = tableset.layout(cfg)
    synthetic = read_synthetic(paths, lay)
    train = tableset.read(paths.train, lay, IngestRecord.read(paths.record("ingest")).train, "ingest")
    classes = _classes(cfg, paths)
    out = {t: df.assign(**{PROVENANCE: "synthetic"}) for t, df in synthetic.items()}
    out[lay.main] = blend(
        synthetic[lay.main],
        train[lay.main],
        cfg.blend,
        cfg.seed,
        cfg.name,
        protect=_pii_protector(cfg, paths),
        classes=classes,
    )
    with tracking.stage_run(cfg, paths, "blend") as handle:
        written = tableset.describe(paths, paths.blended, tableset.write(paths.blended, out, lay))
        counts: dict[str, int] = {}
        for df in out.values():
            for k, v in df[PROVENANCE].value_counts().items():
                counts[str(k)] = counts.get(str(k), 0) + int(v)
        mlflow.log_params({"strategy": cfg.blend.strategy, "real_ratio": cfg.blend.real_ratio})
        mlflow.log_metrics({f"rows.{k}": v for k, v in counts.items()})
        fields: dict[str, Any] = {
            "dataset": cfg.name,
            "relational": lay.relational,
            "strategy": cfg.blend.strategy,
            "real_ratio": cfg.blend.real_ratio,
            "rows": written["rows"],
            "rows_by_provenance": counts,
            "blended": written,
            "mlflow": handle.as_record(),
        }
        if classes is not None:
            from pipelines.rebalance import achieved

            fields["rebalance"] = {
                "column": classes[0],
                "requested": {str(k): round(v, 6) for k, v in classes[1].items()},
                "achieved": achieved(out[lay.main], classes[0]),
            }
            mlflow.log_metrics(
                {f"share.{k}": v for k, v in fields["rebalance"]["achieved"].items() if k.replace("_", "").isalnum()}
            )
        record = BlendRecord(**fields)
        record.write(paths.record("blend"))
    return record.to_json()
