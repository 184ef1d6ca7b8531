"""Reading sources strictly: CSV (plain, .gz, .zip), parquet or a SQL query, for every table of a set.

Nothing is skipped silently: ragged rows, a wrong delimiter, a bad encoding, an empty file each
give a typed error naming the file and the lines. Types are normalised (ISO date strings to
datetimes, trimmed strings, an unnamed row-index column dropped) and every change is noted.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import sha256_bytes, sha256_file

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, SourceConfig
    from pipelines.tableset import Layout, Tables

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_MAX_REPORTED = 5


CSV_CHUNK_ROWS = 100_000
"""Rows pandas parses at a time: the whole text, its tokens and the frame are never held at once."""

_READ_CHUNK = 1 << 20


class _Capped(io.RawIOBase):
    """A binary stream that raises `too_big` once more than `max_bytes` were read from it."""

    def __init__(self, inner: BinaryIO, max_bytes: int, too_big: InvalidInputError) -> None:
        self.inner, self.max_bytes, self.too_big, self.seen = inner, max_bytes, too_big, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(min(len(buffer), _READ_CHUNK))
        self.seen += len(data)
        if self.seen > self.max_bytes:
            raise self.too_big
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _open_bytes(path: Path, max_bytes: int) -> Iterator[BinaryIO]:
    """The file's bytes as a stream (a .gz or single-file .zip decompressed as it is read), which
    fails once more than `max_bytes` came out of it: nothing is expanded whole."""

    def too_big(what: str) -> InvalidInputError:
        return InvalidInputError(
            str(path),
            [f"{what} more than {max_bytes // 2**20:,} MB (ingest.max_source_mb)"],
            hint="Raise ingest.max_source_mb for this dataset if the machine has the memory for the table, "
            "or split the source.",
        )

    with contextlib.ExitStack() as stack:
        if path.suffix == ".gz":
            inner: BinaryIO = stack.enter_context(gzip.open(path, "rb"))
            what = "decompresses to"
        elif path.suffix == ".zip":
            zf = stack.enter_context(zipfile.ZipFile(path))
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise InvalidInputError(str(path), [f"zip holds {len(members)} files; expected one CSV"])
            if members[0].file_size > max_bytes:
                raise too_big("decompresses to")
            inner, what = stack.enter_context(zf.open(members[0])), "decompresses to"
        else:
            if path.stat().st_size > max_bytes:
                raise too_big("is")
            inner, what = stack.enter_context(open(path, "rb")), "is"
        yield cast(BinaryIO, io.BufferedReader(_Capped(inner, max_bytes, too_big(what)), _READ_CHUNK))


@contextlib.contextmanager
def open_text(path: Path, max_bytes: int, encoding: str) -> Iterator[TextIO]:
    """The file as text, streamed and decoded as it is read (newlines kept as they are, a leading
    UTF-8 byte-order mark dropped)."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    with _open_bytes(path, max_bytes) as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
        yield text


def _bad_byte(path: Path, max_bytes: int, encoding: str) -> int:
    """The offset of the first byte that is not valid `encoding` (streamed, only on the error path)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    consumed = 0
    with _open_bytes(path, max_bytes) as raw:
        while True:
            chunk = raw.read(_READ_CHUNK)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                return consumed - pending + err.start
            if not chunk:
                return consumed
            consumed += len(chunk)


def _check_csv_shape(lines: Iterable[str], sample: str, path: str, delimiter: str) -> None:
    """Reject ragged rows, wrong delimiters and empty files, naming the lines (streamed: `lines`
    is read once; `sample` is the start of the text, for guessing a delimiter)."""
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError(path, ["file is empty (no header, no rows)"]) from None
    except csv.Error as err:
        raise InvalidInputError(path, [f"line 1: {err}"]) from None
    if len(header) == 1:
        try:
            sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
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


def read_csv(path: Path, shown: str, source: SourceConfig, max_bytes: int) -> pd.DataFrame:
    """A CSV source, strictly, in bounded memory beyond the frame itself.

    Streamed twice, decompressed and decoded as it is read (and never past `max_bytes`): the shape
    check, line by line, then pandas in chunks of `CSV_CHUNK_ROWS` rows. A column whose chunks got different
    dtypes (a number column with a blank in one chunk, text in another) is parsed again whole, on
    its own, so every dtype and value is what one pandas read of the whole file gives.
    """
    import pandas as pd

    try:
        codecs.lookup(source.encoding)
    except LookupError:
        raise ConfigError([f"source.encoding: unknown encoding {source.encoding!r}"]) from None
    try:
        with open_text(path, max_bytes, source.encoding) as text:
            sample = text.read(20_000)
        with open_text(path, max_bytes, source.encoding) as text:
            _check_csv_shape(text, sample, shown, source.delimiter)
    except UnicodeDecodeError:
        raise InvalidInputError(
            shown,
            [f"not valid {source.encoding} at byte {_bad_byte(path, max_bytes, source.encoding)}"],
            hint="Set `source.encoding` (e.g. latin-1) for this dataset in params.yaml.",
        ) from None
    options: dict[str, Any] = {"sep": source.delimiter, "low_memory": False}
    try:
        with open_text(path, max_bytes, source.encoding) as text:
            chunks = list(pd.read_csv(text, chunksize=CSV_CHUNK_ROWS, **options))
        df = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
        mixed = [i for i in range(df.shape[1]) if len({str(c.iloc[:, i].dtype) for c in chunks}) > 1]
        del chunks
        if mixed:
            with open_text(path, max_bytes, source.encoding) as text:
                whole = pd.read_csv(text, usecols=mixed, **options)
            for j, i in enumerate(mixed):
                df.isetitem(i, whole.iloc[:, j])
    except (pd.errors.ParserError, ValueError) as err:
        raise InvalidInputError(shown, [f"could not parse: {err}"]) from None
    return df


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
        info["sha256"] = sha256_file(path)
        df = read_csv(path, shown, source, max_mb * 2**20)
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
