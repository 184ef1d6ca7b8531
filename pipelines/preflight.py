"""Pre-flight: what the config says of the source's columns and values, checked before any stage.

`target`, `sensitive`, `generate.conditions` (a column and the value every generated row has) and
`blend.strategy: rebalance` (a column and its classes) name columns and values of the main table.
The stages check them too, but late: a condition on a value that never occurs failed generate
after fit had registered a model version for nothing. `check` reads the main table's header and
then only the named columns (a CSV streamed for those columns, parquet columns, a query's rows in
chunks), normalised as ingest normalises them, before `synthgate run` or the Airflow DAG's first
task does anything. `value_problems` is the same check on frames a stage already holds: ingest
runs it on the source, fit on the train split before fitting (generate's own check, earlier).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import rebalance, tableset
from pipelines.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, SourceConfig

SHOWN_COLUMNS = 30
"""Columns an error about a missing one lists."""


def named_columns(cfg: DatasetConfig) -> dict[str, str]:
    """The main table's columns the config names, each with the first key that names it."""
    key = f"datasets.{cfg.name}"
    out: dict[str, str] = {}
    if cfg.target:
        out[cfg.target] = f"{key}.target"
    for col in cfg.sensitive:
        out.setdefault(col, f"{key}.sensitive")
    for col in cfg.generate.conditions:
        out.setdefault(col, f"{key}.generate.conditions.{col}")
    if cfg.blend.strategy == "rebalance" and cfg.blend.column:
        out.setdefault(cfg.blend.column, f"{key}.blend.column")
    return out


def value_problems(
    cfg: DatasetConfig, dom: Mapping[str, Mapping[str, Any]], protected: Collection[str] = (), seen: str = ""
) -> list[str]:
    """The conditions and rebalanced classes of `cfg` checked against a value domain
    (`rebalance.domain` of the source or the train split, described by `seen`)."""
    problems: list[str] = []
    seen = seen or "the train split"
    if cfg.generate.conditions:
        try:
            where = f"datasets.{cfg.name}.generate.conditions"
            rebalance.check_conditions(cfg.generate.conditions, dom, protected, where, seen)
        except ConfigError as err:
            problems += err.problems
    if cfg.blend.strategy == "rebalance":
        try:
            rebalance.class_shares(cfg, dom, protected)
        except ConfigError as err:
            problems += err.problems
    return problems


def _asks_values(cfg: DatasetConfig) -> bool:
    return bool(cfg.generate.conditions) or cfg.blend.strategy == "rebalance"


def frame_problems(cfg: DatasetConfig, main: pd.DataFrame, seen: str, protected: Collection[str] = ()) -> list[str]:
    """`value_problems` on a frame of the main table (only the named columns are looked at)."""
    if not _asks_values(cfg):
        return []
    named = {*named_columns(cfg), cfg.blend.column or cfg.target}
    return value_problems(cfg, rebalance.domain(main[[c for c in main.columns if c in named]]), protected, seen)


def check(cfg: DatasetConfig, root: Path) -> None:
    """ConfigError naming every named column the source lacks and every condition value or class
    that never occurs in it, read cheaply (its header, then the named columns, only when values are
    asked for)."""
    named = named_columns(cfg)
    if not named:
        return
    lay = tableset.layout(cfg)
    src = tableset.table_source(cfg.source, lay, lay.main)
    wanted = [*named, cfg.blend.column or cfg.target] if _asks_values(cfg) else []
    header, read = _read(src, root, cfg, [c for c in wanted if c])
    if len(header) < 2:  # unreadable, or one column (a wrong delimiter?): ingest names the line or setting
        return
    shown = src.path if lay.single else f"table '{lay.main}' ({src.path})"
    dropped = _dropped(cfg.ingest.drop_columns, lay.main, header)
    columns = [c for c in header if c not in dropped and c]  # an unnamed row-index column is not shown
    more = ", ..." if len(columns) > SHOWN_COLUMNS else ""
    absent = {c: key for c, key in named.items() if c not in columns}
    problems = [
        f"{key}: no column '{col}' in {shown}"
        + (" (dropped by ingest.drop_columns)" if col in dropped else "")
        + f"; its columns: {columns[:SHOWN_COLUMNS]}{more}"
        for col, key in absent.items()
    ]
    if absent:  # the value checks of the columns that exist
        cfg = _without(cfg, set(absent))
    problems += frame_problems(cfg, read, f"{shown} (the source)")
    if problems:
        raise ConfigError(problems, "pre-flight check of params.yaml against the source")


def _without(cfg: DatasetConfig, absent: set[str]) -> DatasetConfig:
    """The config with its conditions on `absent` columns, and a rebalance of one, left out."""
    conditions = {c: v for c, v in cfg.generate.conditions.items() if c not in absent}
    update: dict[str, Any] = {"generate": cfg.generate.model_copy(update={"conditions": conditions})}
    if (cfg.blend.column or cfg.target) in absent:
        update["blend"] = cfg.blend.model_copy(update={"strategy": "synthetic_only"})
    return cfg.model_copy(update=update)


def _dropped(drop: Collection[str], table: str, header: list[str]) -> set[str]:
    """The columns of `table` that `ingest.drop_columns` names (`column` or `table.column`)."""
    return {d.split(".", 1)[1] for d in drop if d.startswith(f"{table}.")} | {d for d in drop if d in header}


def _read(src: SourceConfig, root: Path, cfg: DatasetConfig, wanted: list[str]) -> tuple[list[str], pd.DataFrame]:
    """The main table's header (names trimmed, as ingest does) and its `wanted` columns that exist,
    normalised as ingest normalises them."""
    import pandas as pd

    from pipelines import sources

    path = sources.source_path(src.path, root)
    if src.format != "sql" and not path.is_file():
        raise InvalidInputError(src.path, ["source file not found"], hint="Check `source.path` in params.yaml.")
    max_bytes = cfg.ingest.max_source_mb * 2**20
    if src.format == "csv":
        header = _csv_header(path, src, max_bytes)
        keep = [c for c in header if c.strip() in wanted]
        frame = pd.DataFrame()
        if keep:
            with sources.open_text(path, max_bytes, src.encoding) as text:
                frame = pd.read_csv(text, sep=src.delimiter, usecols=keep, low_memory=False)
    elif src.format == "parquet":
        import pyarrow.parquet as pq

        try:
            header = list(pq.read_schema(path).names)
        except Exception:  # pyarrow raises many types for corrupt files: ingest names the problem
            return [], pd.DataFrame()
        frame = pd.read_parquet(path, columns=[c for c in header if c.strip() in wanted])
    else:
        header, frame = _query_columns(src, path, wanted)
    frame.columns = [str(c).strip() for c in frame.columns]
    return [str(c).strip() for c in header], sources.normalise(frame)[0] if len(frame.columns) else frame


def _csv_header(path: Path, src: SourceConfig, max_bytes: int) -> list[str]:
    import csv

    from pipelines import sources

    try:
        with sources.open_text(path, max_bytes, src.encoding) as text:
            return next(csv.reader(text, delimiter=src.delimiter), [])
    except (UnicodeDecodeError, csv.Error, LookupError):
        return []  # ingest names the line, the byte or the setting


def _query_columns(src: SourceConfig, path: Path, wanted: list[str]) -> tuple[list[str], pd.DataFrame]:
    """A query's column names and its `wanted` columns, its rows fetched in chunks."""
    import pandas as pd
    import sqlalchemy as sa

    from pipelines.sources import CSV_CHUNK_ROWS

    query = path.read_text(encoding="utf-8").strip().rstrip(";")
    header: list[str] = []
    parts = []
    try:
        with sa.create_engine(src.resolved_url()).connect() as conn:
            for chunk in pd.read_sql_query(sa.text(query), conn, chunksize=CSV_CHUNK_ROWS):
                header = header or [str(c) for c in chunk.columns]
                parts.append(chunk[[c for c in chunk.columns if str(c).strip() in wanted]])
    except sa.exc.SQLAlchemyError as err:
        raise InvalidInputError(src.path, [f"query failed: {str(err).splitlines()[0]}"]) from None
    return header, pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
