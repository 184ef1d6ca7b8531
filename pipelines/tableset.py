"""Table sets: the unit of data every stage reads and writes.

A single-table dataset is a set of one table, stored as one parquet file; a relational dataset
is a set of several tables with keys, stored between stages as a folder of the same name holding
one `<table>.parquet` per table. The difference lives here and nowhere else: stages call `read`,
`write`, `digest`, `describe` and `split` with the dataset's `Layout`. A release is what people
read, so its tables go to a plain folder (`data/release/<ds>/tables/<table>.parquet`): a folder
named `.parquet` is read by `pd.read_parquet` as one table that mixes every schema.

A folder's digest is the sha256 of the sorted `<name> <sha256>` lines of its files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError
from pipelines.io import dir_mode, read_parquet, sha256_bytes, sha256_file, verify_sha256, write_parquet

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, SourceConfig
    from pipelines.paths import DatasetPaths

Tables = dict[str, "pd.DataFrame"]


@dataclass(frozen=True)
class Layout:
    """Which tables a dataset has, which one is the main (split, privacy-gated) table, and
    whether the set is stored as one file (a single table) or a folder."""

    names: tuple[str, ...]
    main: str
    single: bool
    sequence_key: str | None = None
    """Sequence datasets: the column naming each row's entity (rows are split and sampled by entity)."""

    @property
    def relational(self) -> bool:
        """Several tables with keys."""
        return not self.single

    @property
    def shardable(self) -> bool:
        """Whether rows can be sampled in independent shards (not when keys tie tables together)."""
        return self.single

    @property
    def exact_rows(self) -> bool:
        """Whether a shard has exactly the rows asked (not for sequences: their lengths are sampled)."""
        return self.shardable and self.sequence_key is None

    def where(self, table: str) -> str:
        """A message prefix naming the table (empty for a single table: the file says it all)."""
        return "" if self.single else f"table '{table}': "


def layout(cfg: DatasetConfig) -> Layout:
    """The layout of a dataset: `source.tables` (relational) or one table named like the dataset."""
    if cfg.source.tables:
        return Layout(tuple(cfg.source.tables), cfg.source.main_table or "", single=False)
    key = cfg.source.sequence.key if cfg.source.sequence else None
    return Layout((cfg.name,), cfg.name, single=True, sequence_key=key)


def table_path(base: Path, table: str) -> Path:
    """Where one table of a folder table set lives."""
    return Path(base) / f"{table}.parquet"


def tree_sha256(base: Path) -> str:
    """The digest of a table-set folder: sha256 of its sorted `<name> <sha256>` lines."""
    lines = [f"{p.name} {sha256_file(p)}" for p in sorted(Path(base).glob("*.parquet"))]
    return sha256_bytes("\n".join(lines).encode())


def digest(path: Path) -> str:
    """sha256 of a file, or `tree_sha256` of a table-set folder."""
    return tree_sha256(path) if Path(path).is_dir() else sha256_file(path)


def _write_folder(target: Path, tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Write a folder table set atomically (a temporary folder beside it, then renames).

    A crash leaves the old folder (or file, for a dataset that used to be single-table) intact.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        out: dict[str, Any] = {}
        for name in sorted(tables):
            path = table_path(tmp, name)
            tables[name].to_parquet(path, index=False, engine="pyarrow", compression="snappy")
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            out[name] = {"rows": len(tables[name]), "sha256": sha256_file(path)}
        os.chmod(tmp, dir_mode())
        if old.exists() or old.is_symlink():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        elif old.exists():
            old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"sha256": tree_sha256(target), "rows": sum(t["rows"] for t in out.values()), "tables": out}


def write(target: Path, tables: Mapping[str, pd.DataFrame], lay: Layout) -> dict[str, Any]:
    """Write a table set atomically; return its digest and row counts (per table for a folder)."""
    target = Path(target)
    if lay.single:
        frame = tables[lay.main]
        return {"sha256": write_parquet(target, frame), "rows": len(frame)}
    return _write_folder(target, tables)


Entry = Mapping[str, Any] | Any
"""A record's entry for a table set: a mapping, or a typed `records.base.TableSetEntry`."""


def _entry(entry: Entry) -> Mapping[str, Any]:
    return entry.model_dump(mode="json") if hasattr(entry, "model_dump") else entry


def rows_of(entry: Entry, lay: Layout) -> int:
    """Rows of the main table in a record entry of a table set."""
    entry = _entry(entry)
    if "tables" in entry:
        return int(entry["tables"][lay.main]["rows"])
    return int(entry["rows"])


def describe(paths: DatasetPaths, target: Path, written: Mapping[str, Any]) -> dict[str, Any]:
    """The record entry of a written table set: path, sha256, rows (and each table's, for a folder)."""
    entry: dict[str, Any] = {"path": paths.rel(target), "sha256": written["sha256"], "rows": written["rows"]}
    if "tables" in written:
        entry["tables"] = {t: {**v, "path": paths.rel(table_path(target, t))} for t, v in written["tables"].items()}
    return entry


def _read_folder(base: Path, names: list[str] | None) -> Tables:
    import pandas as pd

    if not base.is_dir():
        raise InvalidInputError(str(base), ["table set not found (run the upstream stage first)"])
    found = sorted(p.stem for p in base.glob("*.parquet"))
    out = {}
    for name in names or found:
        path = table_path(base, name)
        if not path.is_file():
            raise InvalidInputError(str(base), [f"table '{name}' missing (found {found}); re-run the upstream stage"])
        out[name] = pd.read_parquet(path, engine="pyarrow")
    return out


def verify(path: Path, entry: Entry, record: str) -> None:
    """IntegrityError unless a table set still has the digests its `record` entry holds."""
    path, entry = Path(path), _entry(entry)
    fix = f"re-run `{record}`."
    if "tables" not in entry:
        verify_sha256(path, entry["sha256"], entry.get("path", str(path)), record, fix)
        return
    for table, want in entry["tables"].items():
        verify_sha256(table_path(path, table), want["sha256"], want.get("path", table), record, fix)


def read(path: Path, lay: Layout, entry: Entry | None = None, record: str = "") -> Tables:
    """Read a table set written by `write`; with the `record` stage's `entry` for it, check its
    digests first (IntegrityError naming the file when one changed)."""
    path = Path(path)
    entry = None if entry is None else _entry(entry)
    if entry is not None:
        verify(path, entry, record)
    if lay.single:
        return {lay.main: read_parquet(path)}
    return _read_folder(path, list(entry["tables"]) if entry and "tables" in entry else None)


def read_folder(base: Path, names: list[str] | None = None) -> Tables:
    """Every table of a folder table set (or `names`), without digest checks (tests, reports)."""
    return _read_folder(Path(base), names)


def copy(source: Path, target: Path) -> None:
    """Copy a table set (a file, or a folder of table files) to `target` (which must not exist)."""
    if Path(source).is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def manifest_files(data: Path, shown: str, rows: int) -> list[dict[str, Any]]:
    """Manifest entries of a released table set: the set itself, and for a folder each table file."""
    import pyarrow.parquet as pq

    entries = [{"path": shown, "rows": rows, "sha256": digest(data)}]
    if Path(data).is_dir():
        entries += [
            {
                "path": f"{shown}/{f.name}",
                "rows": pq.ParquetFile(f).metadata.num_rows,
                "sha256": sha256_file(f),
                "table": f.stem,
            }
            for f in sorted(Path(data).glob("*.parquet"))
        ]
    return entries


def split(tables: Tables, cfg: DatasetConfig, lay: Layout) -> tuple[Tables, Tables, str | None]:
    """Deterministic train/holdout split of the main table (stratified by a class target).

    Only the main table's rows are split; its descendants follow their parent row, and every
    other table is reference data that stays whole in train.
    """
    from pipelines import keys

    if lay.sequence_key:
        main_train, main_holdout = split_sequences(tables[lay.main], lay.sequence_key, cfg)
        return {lay.main: main_train}, {lay.main: main_holdout}, None
    main_train, main_holdout, strat = split_frame(tables[lay.main], cfg.ingest.holdout_fraction, cfg.seed, cfg.target)
    train, holdout = dict(tables), {lay.main: main_holdout}
    train[lay.main] = main_train
    for rel in keys.descendants(cfg.source, lay.main):
        child = tables[rel.child]
        held = child[rel.child_key].isin(set(holdout[rel.parent][rel.parent_key].dropna()))
        holdout[rel.child] = child.loc[held].reset_index(drop=True)
        train[rel.child] = child.loc[~held].reset_index(drop=True)
    return train, holdout, strat


def split_sequences(df: pd.DataFrame, key: str, cfg: DatasetConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic split of whole sequences: `holdout_fraction` of the entities go to holdout, each
    side sorted by entity and then by the sequence index (stable: ties keep the source order)."""
    import pandas as pd

    entities = sorted(df[key].dropna().astype(str).unique())
    _, held, _ = split_frame(pd.DataFrame({key: entities}), cfg.ingest.holdout_fraction, cfg.seed)
    index = cfg.source.sequence.index if cfg.source.sequence else key
    ordered = df.sort_values([key, index], kind="stable").reset_index(drop=True)
    in_holdout = ordered[key].astype(str).isin(set(held[key]))
    return ordered[~in_holdout].reset_index(drop=True), ordered[in_holdout].reset_index(drop=True)


def _stratify_column(df: pd.DataFrame, target: str | None) -> str | None:
    if not target:
        return None
    counts = df[target].value_counts(dropna=False)
    if len(counts) > 20 or counts.min() < 2:
        return None
    return target


def split_frame(
    df: pd.DataFrame, holdout_fraction: float, seed: int, target: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Deterministic train/holdout split of one frame (stratified by a categorical target), row order kept."""
    import numpy as np

    rng = np.random.default_rng(seed)
    strat = _stratify_column(df, target)
    positions = np.arange(len(df))
    groups = (
        [
            positions[(df[strat].astype(str).fillna("<NA>") == v).to_numpy()]
            for v in sorted(df[strat].astype(str).fillna("<NA>").unique())
        ]
        if strat
        else [positions]
    )
    holdout_pos = []
    for group in groups:
        k = max(1, round(len(group) * holdout_fraction))
        holdout_pos.append(rng.permutation(group)[:k])
    mask = np.zeros(len(df), dtype=bool)
    mask[np.concatenate(holdout_pos)] = True
    train = df.iloc[~mask].reset_index(drop=True)
    holdout = df.iloc[mask].reset_index(drop=True)
    return train, holdout, strat


def table_source(src: SourceConfig, lay: Layout, table: str) -> SourceConfig:
    """The source settings of one table: the source itself, or the table's file inside `source.path`."""
    if lay.single:
        return src
    path = str(Path(src.path) / src.tables[table].file)
    return src.model_copy(update={"path": path, "tables": {}, "relationships": (), "main_table": None})


def source_digest(digests: Mapping[str, str], lay: Layout) -> str:
    """The digest of a source: a single table's own, or sha256 of the sorted `<table> <sha256>` lines."""
    if lay.single:
        return digests[lay.main]
    return sha256_bytes("\n".join(f"{t} {digests[t]}" for t in sorted(digests)).encode())


def source_info(src: SourceConfig, lay: Layout, infos: Mapping[str, dict[str, Any]], tables: Tables) -> dict[str, Any]:
    """The source facts of a set: a single table's own, or each table's plus a combined digest."""
    if lay.single:
        return infos[lay.main]
    return {
        "path": src.path,
        "format": src.format,
        "tables": dict(infos),
        "sha256": source_digest({t: i["sha256"] for t, i in infos.items()}, lay),
        "rows": sum(len(t) for t in tables.values()),
        "columns": sum(len(t.columns) for t in tables.values()),
    }
