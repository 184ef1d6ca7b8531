"""Reading sources strictly: CSV (plain, .gz, .zip), parquet or a SQL query, for every table of a set.

Nothing is skipped silently: ragged rows, a wrong delimiter, a bad encoding, an empty file each
give a typed error naming the file and the lines. Types are normalised (ISO date strings to
datetimes, trimmed strings, an unnamed row-index column dropped) and every change is noted.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import sha256_bytes, sha256_file

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, SourceConfig
    from pipelines.tableset import Layout, Tables

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_MAX_REPORTED = 5


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes (a .gz or single-file .zip decompressed), refused beyond `max_bytes`
    before more than that is read or expanded."""

    def too_big(what: str) -> InvalidInputError:
        return InvalidInputError(
            str(path),
            [f"{what} more than {max_bytes // 2**20:,} MB (ingest.max_source_mb)"],
            hint="Raise ingest.max_source_mb for this dataset if the machine has the memory (about 11x the "
            "size while reading), or split the source.",
        )

    if path.suffix == ".gz":
        out = bytearray()
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                out += chunk
                if len(out) > max_bytes:
                    raise too_big("decompresses to")
        return bytes(out)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise InvalidInputError(str(path), [f"zip holds {len(members)} files; expected one CSV"])
            if members[0].file_size > max_bytes:
                raise too_big("decompresses to")
            with zf.open(members[0]) as f:
                data = f.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise too_big("decompresses to")
            return data
    if path.stat().st_size > max_bytes:
        raise too_big("is")
    return path.read_bytes()


def _check_csv_shape(text: str, path: str, delimiter: str) -> None:
    """Reject ragged rows, wrong delimiters and empty files, naming the lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError(path, ["file is empty (no header, no rows)"]) from None
    except csv.Error as err:
        raise InvalidInputError(path, [f"line 1: {err}"]) from None
    if len(header) == 1:
        try:
            sniffed = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
        except csv.Error:
            sniffed = None
        if sniffed and sniffed != delimiter:
            raise InvalidInputError(
                path,
                [
                    f"the header has a single column {header[0][:60]!r}: the file looks "
                    f"delimited by {sniffed!r}, not {delimiter!r}"
                ],
                hint=f"Set `source.delimiter: {sniffed!r}` for this dataset in params.yaml.",
            )
    problems: list[str] = []
    rows = 0
    pending_blank: int | None = None
    try:
        for record in reader:
            if not record:
                pending_blank = pending_blank or reader.line_num
                continue
            if pending_blank is not None:
                problems.append(f"line {pending_blank}: blank line inside the data")
                pending_blank = None
            rows += 1
            if len(record) != len(header):
                problems.append(f"line {reader.line_num}: {len(record)} fields, the header has {len(header)}")
            if len(problems) >= _MAX_REPORTED:
                problems.append("... (more lines like these not shown)")
                break
    except csv.Error as err:
        problems.append(f"line {reader.line_num}: {err}")
    if problems:
        raise InvalidInputError(path, problems, hint="Fix or remove these lines; no line is skipped silently.")
    if rows == 0:
        raise InvalidInputError(path, ["the file has a header but no data rows"])


ROOTS_ENV = "SYNTHGATE_SOURCE_ROOTS"
"""Folders (separated by `:`) besides the repository that sources may be read from."""


def source_path(path: str, root: Path) -> Path:
    """The source file `path` (relative to the repository root, or absolute), refused unless it lies,
    symlinks resolved, inside the repository or a folder of $SYNTHGATE_SOURCE_ROOTS."""
    import os

    full = Path(path) if Path(path).is_absolute() else root / path
    resolved = full.resolve()
    roots = [root.resolve(), *(Path(r).resolve() for r in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if r)]
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise InvalidInputError(
            path,
            [f"outside the repository ({root}) and the allowed source folders"],
            hint=f"Copy the file under sources/, or allow its folder: {ROOTS_ENV}=/data/exports "
            "(several folders separated by ':').",
        )
    return full


def read_source(source: SourceConfig, root: Path, max_mb: int = 2048) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the source strictly (at most `max_mb` MB once decompressed); return the frame and a
    description with its sha256."""
    import pandas as pd

    path = source_path(source.path, root)
    shown = source.path
    if not path.is_file():
        raise InvalidInputError(
            shown, ["source file not found"], hint="Check `source.path` of this dataset in params.yaml."
        )
    if path.stat().st_size == 0:
        raise InvalidInputError(shown, ["file is empty (0 bytes)"])
    info: dict[str, Any] = {"path": source.path, "format": source.format}
    if source.format == "csv":
        data = _read_bytes(path, max_mb * 2**20)
        info["sha256"] = sha256_file(path)
        try:
            text = data.decode(source.encoding)
        except UnicodeDecodeError as err:
            raise InvalidInputError(
                shown,
                [f"not valid {source.encoding} at byte {err.start}"],
                hint="Set `source.encoding` (e.g. latin-1) for this dataset in params.yaml.",
            ) from None
        except LookupError:
            raise ConfigError([f"source.encoding: unknown encoding {source.encoding!r}"]) from None
        text = text.removeprefix("\ufeff")
        _check_csv_shape(text, shown, source.delimiter)
        try:
            df = pd.read_csv(io.StringIO(text), sep=source.delimiter, low_memory=False)
        except (pd.errors.ParserError, ValueError) as err:
            raise InvalidInputError(shown, [f"could not parse: {err}"]) from None
    elif source.format == "parquet":
        if path.stat().st_size > max_mb * 2**20:
            raise InvalidInputError(shown, [f"is more than {max_mb:,} MB (ingest.max_source_mb)"])
        info["sha256"] = sha256_file(path)
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises many types for corrupt files
            raise InvalidInputError(shown, [f"not a readable parquet file: {err}"]) from None
    else:
        import sqlalchemy as sa

        query = path.read_text(encoding="utf-8").strip().rstrip(";")
        if not query:
            raise InvalidInputError(shown, ["the query file is empty"])
        url = source.resolved_url()
        try:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                df = pd.read_sql_query(sa.text(query), conn)
        except sa.exc.SQLAlchemyError as err:
            raise InvalidInputError(shown, [f"query failed: {str(err).splitlines()[0]}"]) from None
        info["url"] = sa.make_url(url).render_as_string(hide_password=True)
        info["sha256"] = sha256_bytes(df.to_csv(index=False).encode())
    if df.empty:
        raise InvalidInputError(shown, ["the source has no rows"])
    info["rows"], info["columns"] = len(df), len(df.columns)
    return df, info


def normalise(df: pd.DataFrame, drop: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Normalise types (ISO date strings to datetimes, trimmed strings, no row index column).

    Returns the frame and notes on what was changed (logged and recorded).
    """
    import pandas as pd

    notes: list[str] = []
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    first = df.columns[0]
    if first in ("", "Unnamed: 0") and pd.api.types.is_integer_dtype(df[first]):
        seq = df[first].to_numpy()
        if (seq == range(1, len(df) + 1)).all() or (seq == range(len(df))).all():
            df = df.drop(columns=[first])
            notes.append(f"dropped unnamed row-index column {first!r}")
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise ConfigError([f"ingest.drop_columns: no column {c!r} in the source" for c in missing])
    if drop:
        df = df.drop(columns=list(drop))
        notes.append(f"dropped columns {list(drop)} (ingest.drop_columns)")
    for col in df.columns:
        s = df[col]
        if s.dtype != object:
            continue
        nonnull = s.dropna()
        if nonnull.empty:
            continue
        if not all(isinstance(v, str) for v in nonnull.iloc[:1000]):
            df[col] = s.map(lambda v: v if v is None or v != v else str(v))
            nonnull = df[col].dropna()
        stripped = nonnull.str.strip()
        if (stripped != nonnull).any():
            df.loc[nonnull.index, col] = stripped
            notes.append(f"trimmed whitespace in column {col!r}")
        if stripped.map(lambda v: bool(_ISO_DATE.match(v))).all():
            parsed = pd.to_datetime(df[col], utc=True, format="ISO8601")
            df[col] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
            notes.append(f"parsed column {col!r} as UTC datetimes")
    return df, notes


def _dropped(drop: tuple[str, ...], table: str, columns: list[str]) -> tuple[str, ...]:
    """`ingest.drop_columns` entries for one table: `table.column` (or a bare name present in it)."""
    out = [d.split(".", 1)[1] for d in drop if d.startswith(f"{table}.")]
    out += [d for d in drop if "." not in d and d in columns]
    return tuple(out)


def read_tables(cfg: DatasetConfig, root: Path, lay: Layout) -> tuple[Tables, dict[str, Any], list[str]]:
    """Read and normalise every table of the dataset strictly; return tables, source facts and notes.

    `ingest.drop_columns` entries name `column` or `table.column`. Key columns become text (keys
    are compared as text).
    """
    from pipelines import keys, tableset

    tables: Tables = {}
    infos: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    known: set[str] = set()
    for name in lay.names:
        raw, infos[name] = read_source(tableset.table_source(cfg.source, lay, name), root, cfg.ingest.max_source_mb)
        columns = [str(c).strip() for c in raw.columns]
        drop = _dropped(cfg.ingest.drop_columns, name, columns)
        tables[name], table_notes = normalise(raw, drop)
        notes += [lay.where(name) + n for n in table_notes]
        known |= {f"{name}.{c}" for c in columns} | set(columns)
    unknown = [d for d in cfg.ingest.drop_columns if d not in known]
    if unknown:
        raise ConfigError(
            [f"ingest.drop_columns: no column {d!r} in the source (name a column, or table.column)" for d in unknown]
        )
    keys.keys_as_text(tables, cfg.source)
    return tables, tableset.source_info(cfg.source, lay, infos, tables), notes


def source_digest(cfg: DatasetConfig, root: Path) -> str:
    """The source's digest exactly as ingest records it, without reading it whole when it is a file
    (the Airflow short-circuit compares it with the last release's)."""
    from pipelines import tableset

    lay = tableset.layout(cfg)
    digests = {}
    for name in lay.names:
        src = tableset.table_source(cfg.source, lay, name)
        if src.format == "sql":
            digests[name] = str(read_source(src, root)[1]["sha256"])
            continue
        path = source_path(src.path, root)
        if not path.is_file():
            raise InvalidInputError(
                src.path, ["source file not found"], hint="Check `source.path` of this dataset in params.yaml."
            )
        digests[name] = sha256_file(path)
    return tableset.source_digest(digests, lay)
