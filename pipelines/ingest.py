"""ingest: strict read, raw contract, normalised types, parquet snapshot, train/holdout split.

Nothing is written unless the source passes every check; the holdout never reaches `fit`.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contracts import load_suite, run_suite, schema_problems
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import sha256_bytes, sha256_file, write_json, write_parquet

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, SourceConfig
    from pipelines.paths import DatasetPaths

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_MAX_REPORTED = 5


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise InvalidInputError(str(path), [f"zip holds {len(members)} files; expected one CSV"])
            return zf.read(members[0])
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


def read_source(source: SourceConfig, root: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the source strictly; return the frame and a description with its sha256."""
    import pandas as pd

    path = (root / source.path) if not Path(source.path).is_absolute() else Path(source.path)
    shown = source.path
    if not path.is_file():
        raise InvalidInputError(
            shown, ["source file not found"], hint="Check `source.path` of this dataset in params.yaml."
        )
    if path.stat().st_size == 0:
        raise InvalidInputError(shown, ["file is empty (0 bytes)"])
    info: dict[str, Any] = {"path": source.path, "format": source.format}
    if source.format == "csv":
        data = _read_bytes(path)
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


def check_frame(df: pd.DataFrame, cfg: DatasetConfig) -> None:
    """Reject all-null columns, a missing target and too few rows (naming them)."""
    path = cfg.source.path
    problems = []
    all_null = [c for c in df.columns if df[c].isna().all()]
    problems += [f"column '{c}' is entirely null (drop it with ingest.drop_columns)" for c in all_null]
    if cfg.target and cfg.target not in df.columns:
        problems.append(
            f"target column '{cfg.target}' (datasets.{cfg.name}.target) does not exist; columns are {list(df.columns)}"
        )
    if len(df) < cfg.ingest.min_rows:
        problems.append(f"{len(df)} rows; at least ingest.min_rows={cfg.ingest.min_rows} are needed")
    if problems:
        raise InvalidInputError(path, problems)


def _stratify_column(df: pd.DataFrame, target: str | None) -> str | None:
    if not target:
        return None
    counts = df[target].value_counts(dropna=False)
    if len(counts) > 20 or counts.min() < 2:
        return None
    return target


def split(
    df: pd.DataFrame, holdout_fraction: float, seed: int, target: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Deterministic train/holdout split (stratified by a categorical target), row order kept."""
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


def prepare(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """Read, check and normalise the source; return frames and facts (writes nothing)."""
    raw, source_info = read_source(cfg.source, paths.root)
    df, notes = normalise(raw, cfg.ingest.drop_columns)
    check_frame(df, cfg)
    return {"frame": df, "source": source_info, "notes": notes}


def run(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The ingest stage: everything checked first, then snapshot + split written atomically."""
    import mlflow

    from pipelines import tracking

    if cfg.source.tables:  # a relational dataset: several tables with keys
        from pipelines.relational import run_ingest

        return run_ingest(cfg, paths)

    prepared = prepare(cfg, paths)
    df = prepared["frame"]
    suite = load_suite(paths.raw_suite)
    drift = schema_problems(df, suite)
    if drift:
        raise InvalidInputError(
            cfg.source.path,
            drift,
            hint=f"The raw contract is {paths.raw_suite.relative_to(paths.root)}; update it "
            "(or re-run `synthgate expectations init --force`) if the change is intended.",
        )
    gx = run_suite(df, suite)
    if not gx.success:
        raise InvalidInputError(
            cfg.source.path,
            gx.failures,
            hint=f"Raw contract {paths.raw_suite.relative_to(paths.root)} failed.",
        )
    train, holdout, strat = split(df, cfg.ingest.holdout_fraction, cfg.seed, cfg.target)

    with tracking.stage_run(cfg, paths, "ingest") as handle:
        snap_sha = write_parquet(paths.snapshot, df)
        train_sha = write_parquet(paths.train, train)
        holdout_sha = write_parquet(paths.holdout, holdout)
        rel = lambda p: str(p.relative_to(paths.root))  # noqa: E731
        record = {
            "stage": "ingest",
            "dataset": cfg.name,
            "source": prepared["source"],
            "normalisation": prepared["notes"],
            "contract": {
                "suite": rel(paths.raw_suite),
                "sha256": sha256_file(paths.raw_suite),
                "success": gx.success,
                "evaluated": gx.evaluated,
            },
            "snapshot": {"path": rel(paths.snapshot), "sha256": snap_sha, "rows": len(df)},
            "train": {"path": rel(paths.train), "sha256": train_sha, "rows": len(train)},
            "holdout": {"path": rel(paths.holdout), "sha256": holdout_sha, "rows": len(holdout)},
            "split": {"holdout_fraction": cfg.ingest.holdout_fraction, "seed": cfg.seed, "stratified_by": strat},
            "mlflow": handle.as_record(),
        }
        mlflow.log_params(
            {
                "source.path": cfg.source.path,
                "source.sha256": prepared["source"]["sha256"],
                "holdout_fraction": cfg.ingest.holdout_fraction,
                "seed": cfg.seed,
            }
        )
        mlflow.log_metrics({"rows.source": len(df), "rows.train": len(train), "rows.holdout": len(holdout)})
        _log_input(df, cfg.source.path, record["source"]["sha256"], f"{cfg.name}-source", "source")
        _log_input(train, rel(paths.train), train_sha, f"{cfg.name}-train", "training")
        write_json(paths.record("ingest"), record)
    return record


def _log_input(df: pd.DataFrame, source: str, digest: str, name: str, context: str) -> None:
    import mlflow

    dataset = mlflow.data.from_pandas(df, source=source, name=name, digest=digest[:36])
    mlflow.log_input(dataset, context=context)
