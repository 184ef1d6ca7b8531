"""`synthgate expectations init`: contracts and metadata bootstrapped from the real data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipelines.contracts import build_suite
from pipelines.io import write_json

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.paths import DatasetPaths


def init_contracts(cfg: DatasetConfig, paths: DatasetPaths, force: bool = False) -> Iterator[str]:
    """Write `<ds>.raw.json`, `<ds>.release.json` and `metadata/<ds>.json` from the source.

    A file that exists is kept (it is owned by people now) unless `force`; yields one line per file.
    """
    from pipelines.fit import detect_metadata
    from pipelines.ingest import prepare

    df = prepare(cfg, paths)["frame"]
    outputs = {
        paths.raw_suite: lambda: build_suite(df, cfg.name, "raw"),
        paths.release_suite: lambda: build_suite(df, cfg.name, "release"),
        paths.metadata: lambda: detect_metadata(df, cfg.name),
    }
    for path, make in outputs.items():
        shown = path.relative_to(paths.root)
        if path.exists() and not force:
            yield f"kept    {shown} (exists; edit it, or pass --force to overwrite)"
            continue
        write_json(path, make())
        yield f"wrote   {shown} (from {len(df)} rows of {cfg.source.path}; review and commit it)"
