"""`synthgate expectations init`: contracts and metadata bootstrapped from the real data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipelines.contracts import build_set_suite
from pipelines.io import read_json, write_json

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


def init_contracts(cfg: DatasetConfig, paths: DatasetPaths, force: bool = False) -> Iterator[str]:
    """Write `<ds>.raw.json`, `<ds>.release.json` and `metadata/<ds>.json` from the source.

    A file that exists is kept (it is owned by people now) unless `force`; yields one line per file.
    PII, key and id-like columns (`pipelines.ids`) get no real values in any file; the release suite
    and metadata are bootstrapped from the tables after the orphan policy (what the pipeline will fit on).
    """
    from pipelines import ids, keys, metadata, pii
    from pipelines.constraints import adapt_sdtypes, check_rules
    from pipelines.constraints import expectations as rule_expectations
    from pipelines.ingest import prepare

    prepared = prepare(cfg, paths)
    tables, lay = prepared["tables"], prepared["layout"]
    policy = "drop" if cfg.ingest.orphans == "drop" else "nullify"
    clean, _ = keys.apply_orphan_policy(tables, cfg.source, policy)
    main = clean[lay.main]
    plan = pii.plan_for_set(clean, cfg, lay, where=f"datasets.{cfg.name}.fit.pii")
    dropped = plan.dropped
    detected = pii.mark_metadata(metadata.detect(clean, cfg.source), lay.main, plan, main)
    detected = adapt_sdtypes(detected, lay.main, cfg.fit.constraints, main)
    flat = lay.single and lay.sequence_key is None  # one table of rows (not sequences, not a set)
    if flat:
        detected = ids.mark_metadata(detected, lay.main, main, skip=plan.names)
    if paths.metadata.is_file() and not force:  # the committed metadata decides the sdtypes
        detected = read_json(paths.metadata)
    table_meta = detected["tables"].get(lay.main, {})
    sdtypes = {c: v.get("sdtype") for c, v in table_meta.get("columns", {}).items()}
    check_rules(cfg.fit.constraints, main, sdtypes, f"datasets.{cfg.name}.fit", protected=plan.names)
    id_like = ids.id_like(main, table_meta) if flat else []
    unique = [c for c in ids.generated_unique(table_meta) if c in id_like and ids.distinct_per_row(main[c])]
    identifiers = [*plan.names, *id_like]

    def suite(kind: str, source: dict) -> dict:
        out = build_set_suite(
            source, cfg.source, cfg.name, kind, lay, identifiers=identifiers, dropped=dropped, unique=unique
        )
        if kind == "release":
            out["expectations"] += rule_expectations(cfg.fit.constraints, main)
        return out

    outputs = {
        paths.raw_suite: lambda: suite("raw", tables),
        paths.release_suite: lambda: suite("release", clean),
        paths.metadata: lambda: detected,
    }
    rows = sum(len(t) for t in tables.values())
    where = f"in {len(tables)} tables of " if lay.relational else "of "
    for path, make in outputs.items():
        shown = paths.rel(path)
        if path.exists() and not force:
            yield f"kept    {shown} (exists; edit it, or pass --force to overwrite)"
            continue
        write_json(path, make())
        yield f"wrote   {shown} (from {rows} rows {where}{cfg.source.path}; review and commit it)"
