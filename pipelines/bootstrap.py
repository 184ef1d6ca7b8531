"""`synthgate expectations init`: contracts and metadata bootstrapped from the real data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipelines.contracts import build_suite
from pipelines.io import read_json, write_json

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


def init_contracts(cfg: DatasetConfig, paths: DatasetPaths, force: bool = False) -> Iterator[str]:
    """Write `<ds>.raw.json`, `<ds>.release.json` and `metadata/<ds>.json` from the source.

    A file that exists is kept (it is owned by people now) unless `force`; yields one line per file.
    """
    from pipelines import pii
    from pipelines.constraints import adapt_sdtypes, check_rules
    from pipelines.constraints import expectations as rule_expectations
    from pipelines.fit import detect_metadata
    from pipelines.ingest import prepare

    if cfg.source.tables:  # a relational dataset: one suite file per kind, tables tagged
        from pipelines.relational import init_contracts as init_tables

        yield from init_tables(cfg, paths, force)
        return
    df = prepare(cfg, paths)["frame"]
    plan = pii.plan_for(df, cfg.fit.pii, cfg.target, where=f"datasets.{cfg.name}.fit.pii")
    dropped = plan.names if plan.policy == "drop" else []
    metadata = pii.mark_metadata(detect_metadata(df, cfg.name), cfg.name, plan)
    metadata = adapt_sdtypes(metadata, cfg.name, cfg.fit.constraints, df)
    if paths.metadata.is_file() and not force:  # the committed metadata decides the sdtypes
        metadata = read_json(paths.metadata)
    sdtypes = {c: v.get("sdtype") for c, v in metadata["tables"].get(cfg.name, {}).get("columns", {}).items()}
    check_rules(cfg.fit.constraints, df, sdtypes, f"datasets.{cfg.name}.fit", protected=plan.names)

    def release_suite() -> dict:
        suite = build_suite(df, cfg.name, "release", identifiers=plan.names, dropped=dropped)
        suite["expectations"] += rule_expectations(cfg.fit.constraints, df)
        return suite

    outputs = {
        paths.raw_suite: lambda: build_suite(df, cfg.name, "raw", identifiers=plan.names),
        paths.release_suite: release_suite,
        paths.metadata: lambda: metadata,
    }
    for path, make in outputs.items():
        shown = path.relative_to(paths.root)
        if path.exists() and not force:
            yield f"kept    {shown} (exists; edit it, or pass --force to overwrite)"
            continue
        write_json(path, make())
        yield f"wrote   {shown} (from {len(df)} rows of {cfg.source.path}; review and commit it)"
