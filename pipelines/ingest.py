"""ingest: strict read, raw contract, keys and orphans, parquet snapshot, train/holdout split.

One code path for a single table and for a set of tables with keys (`pipelines.tableset`).
Nothing is written unless the source passes every check; the holdout never reaches `fit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines import keys, preflight, tableset
from pipelines.contracts import load_suite, run_suites, set_schema_problems
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import sha256_file
from pipelines.records.stages import ContractRef, IngestRecord, SplitInfo
from pipelines.sources import read_tables

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, SequenceConfig
    from pipelines.paths import DatasetPaths
    from pipelines.tableset import Layout, Tables


def check_tables(tables: Tables, cfg: DatasetConfig, lay: Layout) -> None:
    """Reject all-null columns, empty tables, a missing target or sensitive column and too few rows (naming them)."""
    problems = []
    for name, df in tables.items():
        problems += [
            f"{lay.where(name)}column '{c}' is entirely null (drop it with ingest.drop_columns)"
            for c in df.columns
            if df[c].isna().all()
        ]
        if df.empty:
            problems.append(f"{lay.where(name)}the table has no rows")
    main = tables[lay.main]
    if cfg.target and cfg.target not in main.columns:
        problems.append(
            f"{lay.where(lay.main)}target column '{cfg.target}' (datasets.{cfg.name}.target) does not exist; "
            f"columns are {list(main.columns)}"
        )
    problems += [f"{lay.where(lay.main)}{m}" for m in cfg.missing_sensitive(main.columns)]
    if cfg.source.sequence is not None:
        problems += [f"{lay.where(lay.main)}{m}" for m in sequence_problems(main, cfg.source.sequence)]
    if len(main) < cfg.ingest.min_rows:
        problems.append(
            f"{lay.where(lay.main)}{len(main)} rows; at least ingest.min_rows={cfg.ingest.min_rows} are needed"
        )
    if problems:
        raise InvalidInputError(cfg.source.path, problems)


def sequence_problems(df: pd.DataFrame, seq: SequenceConfig) -> list[str]:
    """The key and index of a sequence dataset exist and are never missing; context columns are
    constant within each sequence."""
    named = {"key": seq.key, "index": seq.index}
    named |= {f"context_columns[{i}]": c for i, c in enumerate(seq.context_columns)}
    absent = [f"source.sequence.{role}: column '{c}' is not in the table" for role, c in named.items() if c not in df]
    if absent:
        return absent
    problems = [
        f"source.sequence.{role}: column '{c}' is missing in {int(df[c].isna().sum())} rows (every row needs one)"
        for role, c in (("key", seq.key), ("index", seq.index))
        if df[c].isna().any()
    ]
    for col in seq.context_columns:
        varying = df.groupby(seq.key, dropna=True)[col].nunique(dropna=False)
        varying = varying[varying > 1]
        if len(varying):
            problems.append(
                f"source.sequence.context_columns: '{col}' changes within {len(varying)} sequences "
                f"(e.g. {seq.key}={varying.index[0]!s}); a context column is constant per entity"
            )
    return problems


def prepare(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """Read, normalise and check every table, keys included; return tables and facts (writes nothing)."""
    lay = tableset.layout(cfg)
    tables, source_info, notes = read_tables(cfg, paths.root, lay)
    problems = keys.key_problems(tables, cfg.source)
    if problems:
        raise InvalidInputError(
            cfg.source.path,
            problems,
            hint="Fix the keys in params.yaml (source.tables, source.relationships) or in the data.",
        )
    check_tables(tables, cfg, lay)
    problems = preflight.frame_problems(cfg, tables[lay.main], f"{cfg.source.path} (the source)")
    if problems:
        raise ConfigError(problems)
    return {"tables": tables, "source": source_info, "notes": notes, "layout": lay}


def check_contract(tables: Tables, cfg: DatasetConfig, paths: DatasetPaths, lay: Layout) -> Any:
    """Schema drift and the raw GX contract; InvalidInputError naming every problem."""
    suite = load_suite(paths.raw_suite)
    shown = paths.rel(paths.raw_suite)
    drift = set_schema_problems(tables, suite, lay)
    if drift:
        raise InvalidInputError(
            cfg.source.path,
            drift,
            hint=f"The raw contract is {shown}; update it "
            "(or re-run `synthgate expectations init --force`) if the change is intended.",
        )
    gx = run_suites(tables, suite, lay)
    if not gx.success:
        raise InvalidInputError(cfg.source.path, gx.failures, hint=f"Raw contract {shown} failed.")
    return gx


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The ingest stage: everything checked first, then snapshot + split written atomically."""
    import mlflow

    from pipelines import tracking

    prepared = prepare(cfg, paths)
    lay: Layout = prepared["layout"]
    tables = prepared["tables"]
    gx = check_contract(tables, cfg, paths, lay)
    tables, orphans = keys.apply_orphan_policy(tables, cfg.source, cfg.ingest.orphans)
    train, holdout, strat = tableset.split(tables, cfg, lay)

    with tracking.stage_run(cfg, paths, "ingest") as handle:
        written = {
            part: tableset.describe(paths, target, tableset.write(target, frames, lay))
            for part, target, frames in (
                ("snapshot", paths.snapshot, tables),
                ("train", paths.train, train),
                ("holdout", paths.holdout, holdout),
            )
        }
        record = IngestRecord(
            dataset=cfg.name,
            relational=lay.relational,
            source=prepared["source"],
            normalisation=prepared["notes"],
            contract=ContractRef(
                suite=paths.rel(paths.raw_suite),
                sha256=sha256_file(paths.raw_suite),
                success=gx.success,
                evaluated=gx.evaluated,
            ),
            orphans=orphans,
            **written,
            split=SplitInfo(
                holdout_fraction=cfg.ingest.holdout_fraction, seed=cfg.seed, stratified_by=strat, main_table=lay.main
            ),
            mlflow=handle.as_record(),
        )
        mlflow.log_params(
            {
                "source.path": cfg.source.path,
                "source.sha256": prepared["source"]["sha256"],
                "holdout_fraction": cfg.ingest.holdout_fraction,
                "seed": cfg.seed,
                "orphans": cfg.ingest.orphans,
            }
        )
        mlflow.log_metrics(
            {
                "rows.source": len(tables[lay.main]),
                "rows.train": len(train[lay.main]),
                "rows.holdout": len(holdout[lay.main]),
            }
        )
        mlflow.log_metrics({tracking.mlflow_key(f"rows.train.{t}"): len(df) for t, df in train.items()})
        mlflow.log_metrics(  # the orphans report has one entry per relationship, in their order
            {
                tracking.mlflow_key(f"orphans.{r.child}.{r.child_key}"): o["orphan_rows"]
                for r, o in zip(cfg.source.relationships, orphans, strict=True)
            }
        )
        _log_input(tables[lay.main], cfg.source.path, prepared["source"]["sha256"], f"{cfg.name}-source", "source")
        _log_input(train[lay.main], paths.rel(paths.train), written["train"]["sha256"], f"{cfg.name}-train", "training")
        record.write(paths.record("ingest"))
    return record.to_json()


def _log_input(df: pd.DataFrame, source: str, digest: str, name: str, context: str) -> None:
    import mlflow

    dataset = mlflow.data.from_pandas(df, source=source, name=name, digest=digest[:36])
    mlflow.log_input(dataset, context=context)
