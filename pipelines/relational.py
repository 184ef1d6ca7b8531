"""Relational (multi-table) datasets: several tables with primary and foreign keys, fitted with HMA.

A dataset is relational when `source.tables` is set (params.yaml)::

    source:
      path: sources/nycflights13          # a folder (DVC hashes it as the ingest dependency)
      format: csv
      main_table: flights                 # the fact table: it is split, and it carries the
      tables:                             # privacy and utility gates
        airlines: {file: airlines.csv, primary_key: carrier}
        planes: {file: planes.csv, primary_key: tailnum}
        flights: {file: flights.csv}
      relationships:
        - {parent: planes, child: flights, parent_key: tailnum, child_key: tailnum}
    ingest: {orphans: nullify}            # nullify | drop | error
    fit: {synthesizer: hma}

Every stage keeps its usual paths; where a single-table dataset has one parquet file, a relational
one has a folder of the same name holding one `<table>.parquet` per table (pyarrow reads such
a folder-named-`.parquet` as a dataset too). Its digest is the sha256 of the sorted
`<name> <sha256>` lines of its files (`tree_sha256`).

Keys: a declared primary key must exist, be unique and have no missing value (else a typed
error). Orphans (a child's foreign key that matches no parent row, e.g. a flight whose tailnum has
no plane) follow `ingest.orphans`: `nullify` sets the key to missing (the row stays; HMA models
missing keys as their own group), `drop` removes the row (and its own children), `error` fails.
Split: only the main table's rows are split into train and holdout (and its descendants follow
their parent); parent tables are reference data and stay whole in train.
Gates: `referential_integrity` (every non-missing synthetic foreign key resolves to a parent row)
and `primary_keys` (unique, non-missing) besides multi-table quality and diagnostic, the GX suite
per table and the privacy gates on the main table's non-key columns.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import read_json, sha256_bytes, sha256_file, write_json

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, Relationship, SourceConfig
    from pipelines.paths import DatasetPaths

Tables = dict[str, "pd.DataFrame"]


def is_relational(cfg: DatasetConfig) -> bool:
    """Whether the dataset declares several tables."""
    return bool(cfg.source.tables)


# --- table sets on disk ---------------------------------------------------------------------------


def table_path(base: Path, table: str) -> Path:
    """Where one table of a table set lives."""
    return Path(base) / f"{table}.parquet"


def tree_sha256(base: Path) -> str:
    """The digest of a table-set folder: sha256 of its sorted `<name> <sha256>` lines."""
    lines = [f"{p.name} {sha256_file(p)}" for p in sorted(Path(base).glob("*.parquet"))]
    return sha256_bytes("\n".join(lines).encode())


def write_tables(target: Path, tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Write a table set atomically (a temporary folder beside it, then renames); return digests.

    A crash leaves the old folder (or file, for a dataset that used to be single-table) intact.
    """
    target = Path(target)
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
        os.chmod(tmp, 0o755)
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


def read_tables(base: Path, names: list[str] | None = None, expected: Mapping[str, Any] | None = None) -> Tables:
    """Read a table set (all its tables, or `names`), checking digests when `expected` is given."""
    import pandas as pd

    base = Path(base)
    if not base.is_dir():
        raise InvalidInputError(str(base), ["table set not found (run the upstream stage first)"])
    found = sorted(p.stem for p in base.glob("*.parquet"))
    names = names or found
    out = {}
    for name in names:
        path = table_path(base, name)
        if not path.is_file():
            raise InvalidInputError(str(base), [f"table '{name}' missing (found {found}); re-run the upstream stage"])
        want = ((expected or {}).get(name) or {}).get("sha256")
        if want and sha256_file(path) != want:
            raise InvalidInputError(str(path), ["changed since it was recorded; re-run the upstream stage"])
        out[name] = pd.read_parquet(path, engine="pyarrow")
    return out


# --- ingest ---------------------------------------------------------------------------------------


def _table_source(src: SourceConfig, table: str) -> SourceConfig:
    from pipelines.config import SourceConfig

    return SourceConfig(
        path=str(Path(src.path) / src.tables[table].file),
        format=src.format,
        delimiter=src.delimiter,
        encoding=src.encoding,
    )


def _dropped(drop: tuple[str, ...], table: str, columns: list[str]) -> tuple[str, ...]:
    """`ingest.drop_columns` entries for one table: `table.column` (or a bare name present in it)."""
    out = [d.split(".", 1)[1] for d in drop if d.startswith(f"{table}.")]
    out += [d for d in drop if "." not in d and d in columns]
    return tuple(out)


def read_all(cfg: DatasetConfig, root: Path) -> tuple[Tables, dict[str, Any], list[str]]:
    """Read and normalise every table strictly; return tables, source facts and notes."""
    import pandas as pd

    from pipelines.ingest import normalise, read_source

    src = cfg.source
    tables: Tables = {}
    info: dict[str, Any] = {"path": src.path, "format": src.format, "tables": {}}
    notes: list[str] = []
    known: set[str] = set()
    for name in src.tables:
        raw, table_info = read_source(_table_source(src, name), root)
        drop = _dropped(cfg.ingest.drop_columns, name, [str(c) for c in raw.columns])
        df, table_notes = normalise(raw, drop)
        tables[name] = df
        info["tables"][name] = table_info
        notes += [f"{name}: {n}" for n in table_notes]
        known |= {f"{name}.{c}" for c in raw.columns} | {str(c) for c in raw.columns}
    unknown = [d for d in cfg.ingest.drop_columns if d not in known]
    if unknown:
        raise ConfigError([f"ingest.drop_columns: no column {d!r} in any table (use table.column)" for d in unknown])
    info["sha256"] = sha256_bytes(
        "\n".join(f"{t} {info['tables'][t]['sha256']}" for t in sorted(info["tables"])).encode()
    )
    info["rows"] = sum(len(t) for t in tables.values())
    info["columns"] = sum(len(t.columns) for t in tables.values())
    for name, df in tables.items():  # keys are compared as text: a numeric-looking key column stays a key
        for col in _key_columns(src, name):
            if col in df.columns and not pd.api.types.is_object_dtype(df[col]):
                df[col] = df[col].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    return tables, info, notes


def _key_columns(src: SourceConfig, table: str) -> list[str]:
    cols = [src.tables[table].primary_key] if src.tables[table].primary_key else []
    cols += [r.child_key for r in src.relationships if r.child == table]
    return list(dict.fromkeys(cols))


def key_problems(tables: Tables, src: SourceConfig) -> list[str]:
    """Declared keys must exist; primary keys must be unique and never missing."""
    problems = []
    for name, spec in src.tables.items():
        df = tables[name]
        pk = spec.primary_key
        if pk is None:
            continue
        if pk not in df.columns:
            problems.append(f"table '{name}': primary key '{pk}' is not a column ({list(df.columns)})")
            continue
        if df[pk].isna().any():
            problems.append(f"table '{name}': primary key '{pk}' is missing in {int(df[pk].isna().sum())} rows")
        dupes = df[pk][df[pk].duplicated(keep=False) & df[pk].notna()]
        if len(dupes):
            problems.append(
                f"table '{name}': primary key '{pk}' repeats {dupes.nunique()} values, "
                f"e.g. {sorted(map(str, dupes.unique()))[:3]}"
            )
    for rel in src.relationships:
        if rel.child_key not in tables[rel.child].columns:
            problems.append(f"relationship {rel.label}: '{rel.child_key}' is not a column of '{rel.child}'")
    return problems


def _orphan_mask(tables: Tables, rel: Relationship) -> pd.Series:
    child = tables[rel.child][rel.child_key]
    return child.notna() & ~child.isin(set(tables[rel.parent][rel.parent_key].dropna()))


def _descendants(src: SourceConfig, table: str) -> list[Relationship]:
    out, todo = [], [table]
    while todo:
        parent = todo.pop()
        for rel in src.relationships:
            if rel.parent == parent and rel not in out:
                out.append(rel)
                todo.append(rel.child)
    return out


def apply_orphan_policy(tables: Tables, src: SourceConfig, policy: str) -> tuple[Tables, list[dict[str, Any]]]:
    """Handle foreign keys with no parent row per `ingest.orphans`; report what was done."""
    tables = {k: v.copy() for k, v in tables.items()}
    report, problems = [], []
    for rel in src.relationships:
        mask = _orphan_mask(tables, rel)
        n = int(mask.sum())
        entry = {
            "relationship": rel.label,
            "orphan_rows": n,
            "policy": policy,
            "distinct_keys": int(tables[rel.child].loc[mask, rel.child_key].nunique()),
            "examples": sorted(map(str, tables[rel.child].loc[mask, rel.child_key].unique()))[:5],
        }
        report.append(entry)
        if not n:
            continue
        if policy == "error":
            problems.append(
                f"relationship {rel.label}: {n} rows of '{rel.child}' refer to "
                f"{entry['distinct_keys']} keys missing from '{rel.parent}', e.g. {entry['examples']}"
            )
        elif policy == "nullify":
            tables[rel.child].loc[mask, rel.child_key] = None
        else:
            tables[rel.child] = tables[rel.child].loc[~mask].reset_index(drop=True)
    if problems:
        raise InvalidInputError(
            src.path,
            problems,
            hint="Set `ingest.orphans` to nullify or drop (see docs/generation.md), or add the missing parent rows.",
        )
    if policy == "drop":  # a dropped row's own children are orphans now
        for rel in src.relationships:
            mask = _orphan_mask(tables, rel)
            if mask.any():
                tables[rel.child] = tables[rel.child].loc[~mask].reset_index(drop=True)
    return tables, report


def split_tables(
    tables: Tables, src: SourceConfig, fraction: float, seed: int, target: str | None
) -> tuple[Tables, Tables, str | None]:
    """Split the main table's rows (stratified by a class target); its descendants follow."""
    from pipelines.ingest import split

    main = src.main_table
    assert main is not None
    main_train, main_holdout, strat = split(tables[main], fraction, seed, target)
    train, holdout = dict(tables), {main: main_holdout}
    train[main] = main_train
    for rel in _descendants(src, main):
        child = tables[rel.child]
        held = child[rel.child_key].isin(set(holdout[rel.parent][rel.parent_key].dropna()))
        holdout[rel.child] = child.loc[held].reset_index(drop=True)
        train[rel.child] = child.loc[~held].reset_index(drop=True)
    return train, holdout, strat


def check_tables(tables: Tables, cfg: DatasetConfig) -> None:
    """All-null columns, too few rows, a target missing from the main table: one error naming them."""
    problems = []
    for name, df in tables.items():
        problems += [
            f"table '{name}': column '{c}' is entirely null (drop it with ingest.drop_columns: [{name}.{c}])"
            for c in df.columns
            if df[c].isna().all()
        ]
        if df.empty:
            problems.append(f"table '{name}' has no rows")
    main = tables[cfg.source.main_table or ""]
    if len(main) < cfg.ingest.min_rows:
        problems.append(
            f"main table '{cfg.source.main_table}': {len(main)} rows; ingest.min_rows is {cfg.ingest.min_rows}"
        )
    if cfg.target and cfg.target not in main.columns:
        problems.append(f"target '{cfg.target}' is not a column of the main table '{cfg.source.main_table}'")
    if problems:
        raise InvalidInputError(cfg.source.path, problems)


def prepare(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """Read, normalise and key-check every table (writes nothing)."""
    tables, info, notes = read_all(cfg, paths.root)
    problems = key_problems(tables, cfg.source)
    if problems:
        raise InvalidInputError(
            cfg.source.path,
            problems,
            hint="Fix the keys in params.yaml (source.tables, source.relationships) or in the data.",
        )
    check_tables(tables, cfg)
    return {"tables": tables, "source": info, "notes": notes}


def _suite_for(suite: dict[str, Any], table: str) -> dict[str, Any]:
    exps = [e for e in suite["expectations"] if (e.get("meta") or {}).get("table") == table]
    return {**suite, "name": f"{suite.get('name', 'suite')}.{table}", "expectations": exps}


def run_suites(tables: Mapping[str, pd.DataFrame], suite: dict[str, Any]) -> dict[str, Any]:
    """A per-table suite file (expectations tagged meta.table) run table by table."""
    from pipelines.contracts import run_suite

    results = {name: run_suite(df, _suite_for(suite, name)) for name, df in tables.items()}
    evaluated = sum(r.evaluated for r in results.values())
    successful = sum(r.successful for r in results.values())
    failures = [f"table '{n}': {f}" for n, r in results.items() for f in r.failures]
    return {
        "results": results,
        "evaluated": evaluated,
        "successful": successful,
        "failures": failures,
        "success": not failures,
        "raw": {n: r.raw for n, r in results.items()},
    }


def _rel(paths: DatasetPaths, p: Path) -> str:
    return str(Path(p).relative_to(paths.root))


def _with_paths(paths: DatasetPaths, base: Path, written: dict[str, Any]) -> dict[str, Any]:
    tables = {t: {**v, "path": _rel(paths, table_path(base, t))} for t, v in written["tables"].items()}
    return {"path": _rel(paths, base), "sha256": written["sha256"], "rows": written["rows"], "tables": tables}


def run_ingest(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The ingest stage for a relational dataset."""
    import mlflow

    from pipelines import tracking
    from pipelines.contracts import load_suite, schema_problems

    prepared = prepare(cfg, paths)
    tables = prepared["tables"]
    suite = load_suite(paths.raw_suite)
    drift = [f"table '{n}': {p}" for n, df in tables.items() for p in schema_problems(df, _suite_for(suite, n))]
    if drift:
        raise InvalidInputError(cfg.source.path, drift, hint=f"The raw contract is {_rel(paths, paths.raw_suite)}.")
    gx = run_suites(tables, suite)
    if not gx["success"]:
        raise InvalidInputError(cfg.source.path, gx["failures"], hint="The raw contract failed.")
    tables, orphans = apply_orphan_policy(tables, cfg.source, cfg.ingest.orphans)
    train, holdout, strat = split_tables(tables, cfg.source, cfg.ingest.holdout_fraction, cfg.seed, cfg.target)
    with tracking.stage_run(cfg, paths, "ingest") as handle:
        snap = _with_paths(paths, paths.snapshot, write_tables(paths.snapshot, tables))
        tr = _with_paths(paths, paths.train, write_tables(paths.train, train))
        ho = _with_paths(paths, paths.holdout, write_tables(paths.holdout, holdout))
        record = {
            "stage": "ingest",
            "dataset": cfg.name,
            "relational": True,
            "source": prepared["source"],
            "normalisation": prepared["notes"],
            "contract": {
                "suite": _rel(paths, paths.raw_suite),
                "sha256": sha256_file(paths.raw_suite),
                "success": gx["success"],
                "evaluated": gx["evaluated"],
            },
            "orphans": orphans,
            "snapshot": snap,
            "train": tr,
            "holdout": ho,
            "split": {
                "holdout_fraction": cfg.ingest.holdout_fraction,
                "seed": cfg.seed,
                "stratified_by": strat,
                "main_table": cfg.source.main_table,
            },
            "mlflow": handle.as_record(),
        }
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
                f"rows.{k}.{t}": v["rows"]
                for k, part in (("train", tr), ("holdout", ho))
                for t, v in part["tables"].items()
            }
        )
        mlflow.log_metrics({f"orphans.{o['relationship'].split(' ')[0]}": o["orphan_rows"] for o in orphans})
        write_json(paths.record("ingest"), record)
    return record


# --- contracts and metadata -----------------------------------------------------------------------


def _key_regex(values: pd.Series) -> str | None:
    """A regex that generates keys shaped like the real ones (e.g. [A-Z0-9]{2} for carriers)."""
    text = values.dropna().astype(str)
    if text.empty:
        return None
    chars = set("".join(text))
    classes = "".join(
        c
        for c, ok in (
            ("A-Z", any(ch.isupper() for ch in chars)),
            ("a-z", any(ch.islower() for ch in chars)),
            ("0-9", any(ch.isdigit() for ch in chars)),
        )
        if ok
    )
    if not classes or not all(ch.isalnum() and ch.isascii() for ch in chars):
        return None
    lo, hi = int(text.str.len().min()), int(text.str.len().max())
    alphabet = (26 if "A-Z" in classes else 0) + (26 if "a-z" in classes else 0) + (10 if "0-9" in classes else 0)
    if alphabet**lo < 20 * len(text):  # too few possible keys: SDV's own ids are safer
        return None
    return f"[{classes}]{{{lo}}}" if lo == hi else f"[{classes}]{{{lo},{hi}}}"


def detect_metadata(tables: Tables, src: SourceConfig) -> dict[str, Any]:
    """SDV 2 multi-table metadata: detected columns, declared primary keys and relationships.

    Key columns become sdtype `id` with a regex shaped like the real keys; detected relationships
    are replaced by the declared ones (params.yaml is the source of truth for keys).
    """
    import warnings

    from sdv.metadata import Metadata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md = Metadata.detect_from_dataframes(dict(tables))
    for rel in list(md.relationships):
        md.remove_relationship(rel["parent_table_name"], rel["child_table_name"])
    for name, spec in src.tables.items():
        current = md.tables[name].primary_key
        if current and current != spec.primary_key:
            md.remove_primary_key(name)
        for col in _key_columns(src, name):
            regex = _key_regex(tables[name][col])
            md.update_column(col, name, sdtype="id", **({"regex_format": regex} if regex else {}))
        if spec.primary_key:
            md.set_primary_key(spec.primary_key, name)
    for rel in src.relationships:
        md.add_relationship(rel.parent, rel.child, rel.parent_key, rel.child_key)
    md.validate()
    return md.to_dict()


def build_suites(tables: Tables, src: SourceConfig, name: str, kind: str) -> dict[str, Any]:
    """One suite file for all tables; each expectation names its table in `meta.table`.

    Key columns get no value set or range (synthetic keys are new values); the release suite
    also expects primary keys to be unique.
    """
    from pipelines.contracts import build_suite

    exps = []
    for table, df in tables.items():
        keys = _key_columns(src, table)
        suite = build_suite(df, f"{name}.{table}", kind, identifiers=keys)
        if kind == "release" and src.tables[table].primary_key:
            suite["expectations"].append(
                {
                    "type": "expect_column_values_to_be_unique",
                    "kwargs": {"column": src.tables[table].primary_key},
                    "meta": {},
                }
            )
        for e in suite["expectations"]:
            e["meta"] = {**(e.get("meta") or {}), "table": table}
        exps += suite["expectations"]
    meta = {
        "synthgate": {
            "kind": kind,
            "tables": sorted(tables),
            "note": "bootstrapped by `synthgate expectations init`; one suite per table (meta.table); edit freely",
        }
    }
    return {"name": f"{name}.{kind}", "expectations": exps, "meta": meta}


def init_contracts(cfg: DatasetConfig, paths: DatasetPaths, force: bool = False) -> Iterator[str]:
    """`synthgate expectations init` for a relational dataset."""
    prepared = prepare(cfg, paths)
    tables = prepared["tables"]
    clean, _ = apply_orphan_policy(tables, cfg.source, "drop" if cfg.ingest.orphans == "drop" else "nullify")
    outputs = {
        paths.raw_suite: lambda: build_suites(tables, cfg.source, cfg.name, "raw"),
        paths.release_suite: lambda: build_suites(clean, cfg.source, cfg.name, "release"),
        paths.metadata: lambda: detect_metadata(clean, cfg.source),
    }
    rows = sum(len(t) for t in tables.values())
    for path, make in outputs.items():
        shown = path.relative_to(paths.root)
        if path.exists() and not force:
            yield f"kept    {shown} (exists; edit it, or pass --force to overwrite)"
            continue
        write_json(path, make())
        yield f"wrote   {shown} (from {rows} rows in {len(tables)} tables of {cfg.source.path}; review and commit it)"


# --- fit ------------------------------------------------------------------------------------------


def check_metadata(metadata: Any, tables: Tables, src: SourceConfig, where: str) -> None:
    """The metadata must describe every table and column, and hold every declared relationship."""
    problems = []
    for name, df in tables.items():
        if name not in metadata.tables:
            problems.append(f"no table '{name}' in the metadata")
            continue
        described = set(metadata.tables[name].columns)
        problems += [f"table '{name}': column '{c}' is not described" for c in df.columns if c not in described]
        problems += [
            f"table '{name}': metadata describes '{c}', which the data lacks" for c in described if c not in df.columns
        ]
    have = {
        (r["parent_table_name"], r["child_table_name"], r["parent_primary_key"], r["child_foreign_key"])
        for r in metadata.relationships
    }
    problems += [
        f"relationship {r.label} (params.yaml) is missing from the metadata"
        for r in src.relationships
        if (r.parent, r.child, r.parent_key, r.child_key) not in have
    ]
    if problems:
        raise InvalidInputError(
            where, problems, hint="Edit the metadata file or re-run `synthgate expectations init --force`."
        )
    try:
        metadata.validate_data(dict(tables))
    except Exception as err:  # sdv.errors.InvalidDataError lists every problem
        raise InvalidInputError(where, [str(err)]) from None


def run_fit(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The fit stage for a relational dataset: HMA on every train table."""
    import warnings

    import mlflow
    from sdv.multi_table import HMASynthesizer

    from pipelines import tracking
    from pipelines.fit import load_metadata, seed_everything
    from pipelines.io import atomic_path
    from pipelines.mlflow_model import log_synthesizer

    ingest = read_json(paths.record("ingest"))
    train = read_tables(paths.train, expected=ingest["train"]["tables"])
    metadata = load_metadata(paths)
    check_metadata(metadata, train, cfg.source, _rel(paths, paths.metadata))
    with tracking.stage_run(cfg, paths, "fit") as handle:
        seed_everything(cfg.seed)
        started = time.perf_counter()
        synth = HMASynthesizer(metadata, verbose=False, **cfg.fit.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synth.fit(dict(train))
        fit_seconds = time.perf_counter() - started
        with atomic_path(paths.model) as tmp:
            synth.save(str(tmp))
        model_sha = sha256_file(paths.model)
        write_json(paths.model_metadata, metadata.to_dict())
        mlflow.log_params({"synthesizer": "hma", "seed": cfg.seed, "tables": ",".join(sorted(train))})
        mlflow.log_metrics({"fit_seconds": fit_seconds, **{f"rows.train.{t}": len(df) for t, df in train.items()}})
        mlflow.log_artifact(str(paths.metadata), artifact_path="metadata")
        model_info = log_synthesizer(paths.model, model_sha, cfg.name)
        record = {
            "stage": "fit",
            "dataset": cfg.name,
            "relational": True,
            "synthesizer": "hma",
            "params": dict(cfg.fit.params),
            "seed": cfg.seed,
            "train": {
                "path": _rel(paths, paths.train),
                "sha256": ingest["train"]["sha256"],
                "rows": ingest["train"]["rows"],
                "tables": ingest["train"]["tables"],
            },
            "metadata": {"path": _rel(paths, paths.metadata), "sha256": sha256_file(paths.metadata)},
            "model": {"path": _rel(paths, paths.model), "sha256": model_sha, **model_info},
            "fit_seconds": round(fit_seconds, 3),
            "tables": {t: list(df.columns) for t, df in train.items()},
            "relationships": [r.model_dump() for r in cfg.source.relationships],
            "main_table": cfg.source.main_table,
            "mlflow": handle.as_record(),
        }
        write_json(paths.record("fit"), record)
    return record


# --- generate -------------------------------------------------------------------------------------


def sample(synth: Any, seed: int, scale: float) -> Tables:
    """Sample every table at `scale` (1.0: as many rows as the train tables), seeded."""
    import numpy as np

    synth.reset_sampling()
    synth._numpy_seed = int(seed % 2**32)  # SDV exposes no public per-call seed
    for table_synth in synth._table_synthesizers.values():
        table_synth._set_random_state(seed)
    np.random.seed(seed % 2**32)
    return synth.sample_scale(scale)


def run_shard(cfg: DatasetConfig, paths: DatasetPaths, shard: Any, synth: Any = None) -> dict[str, Any]:
    """Sample all tables in one shard (HMA samples parents before children: not split further).

    `shard.rows` is the requested size of the main table; the other tables scale with it, and the
    main table's actual size varies a little (HMA samples each parent's number of children).
    """
    from dataclasses import asdict

    from pipelines.fit import load_model

    fit_record = read_json(paths.record("fit"))
    if synth is None:
        synth = load_model(paths, fit_record["model"]["sha256"])
    main = cfg.source.main_table
    scale = shard.rows / max(1, fit_record["train"]["tables"][main]["rows"])
    started = time.perf_counter()
    tables = sample(synth, shard.seed, scale)
    seconds = time.perf_counter() - started
    base = paths.shard(shard.index)
    written = write_tables(base, tables)
    result = {**asdict(shard), **_with_paths(paths, base, written)}
    result["rows"] = written["tables"][main]["rows"]
    result["requested_rows"] = shard.rows
    result["sample_seconds"] = round(seconds, 3)
    return result


# --- blend ----------------------------------------------------------------------------------------


def run_blend(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The blend stage for a relational dataset: the synthetic tables, each with `_provenance`."""
    import mlflow

    from pipelines import tracking
    from pipelines.contracts import PROVENANCE

    record = read_json(paths.record("generate"))
    if len(record["shards"]) != 1:
        raise InvalidInputError(_rel(paths, paths.record("generate")), ["a relational generate has one shard"])
    shard = record["shards"][0]
    tables = read_tables(paths.root / shard["path"], expected=shard["tables"])
    out = {t: df.assign(**{PROVENANCE: "synthetic"}) for t, df in tables.items()}
    with tracking.stage_run(cfg, paths, "blend") as handle:
        written = _with_paths(paths, paths.blended, write_tables(paths.blended, out))
        mlflow.log_params({"strategy": cfg.blend.strategy})
        mlflow.log_metrics({f"rows.synthetic.{t}": v["rows"] for t, v in written["tables"].items()})
        result = {
            "stage": "blend",
            "dataset": cfg.name,
            "relational": True,
            "strategy": cfg.blend.strategy,
            "real_ratio": cfg.blend.real_ratio,
            "rows": written["rows"],
            "rows_by_provenance": {"synthetic": written["rows"]},
            "blended": written,
            "mlflow": handle.as_record(),
        }
        write_json(paths.record("blend"), result)
    return result


# --- validate -------------------------------------------------------------------------------------


def integrity(tables: Tables, src: SourceConfig) -> dict[str, Any]:
    """Referential integrity and primary keys of a table set (pure; any frames, real or synthetic)."""
    rels = {}
    for rel in src.relationships:
        child = tables[rel.child][rel.child_key]
        present = child.notna()
        resolves = child[present].isin(set(tables[rel.parent][rel.parent_key].dropna()))
        rels[rel.label] = {
            "keys": int(present.sum()),
            "resolved": int(resolves.sum()),
            "dangling": int((~resolves).sum()),
            "missing": int((~present).sum()),
            "share_resolved": float(resolves.mean()) if len(resolves) else 1.0,
            "examples": sorted(map(str, child[present][~resolves].unique()))[:3],
        }
    keys = {}
    for name, spec in src.tables.items():
        if spec.primary_key:
            pk = tables[name][spec.primary_key]
            ok = pk.notna() & ~pk.duplicated(keep=False)
            keys[name] = {
                "rows": len(pk),
                "duplicated": int(pk.duplicated(keep=False).sum()),
                "missing": int(pk.isna().sum()),
                "share_valid": float(ok.mean()) if len(pk) else 1.0,
            }
    return {"relationships": rels, "primary_keys": keys}


def evaluate(
    cfg: DatasetConfig, blended: Tables, train: Tables, holdout: Tables, metadata: Any, suite: dict[str, Any]
) -> dict[str, Any]:
    """Every gate of a relational release (pure apart from GX and SDMetrics)."""
    from pipelines.contracts import PROVENANCE
    from pipelines.validate import gate, privacy_gates, utility_gate

    src = cfg.source
    main = src.main_table or ""
    synthetic = {t: df[df[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE]) for t, df in blended.items()}
    results, figures = [], {}
    gx = run_suites(blended, suite)
    share = gx["successful"] / gx["evaluated"] if gx["evaluated"] else 0.0
    results.append(
        gate(
            "gx_release",
            share,
            1.0,
            ">=",
            f"{gx['successful']}/{gx['evaluated']} expectations met over {len(blended)} tables"
            + (": " + " | ".join(gx["failures"][:5]) if gx["failures"] else ""),
        )
    )
    figures["rows"] = {t: len(df) for t, df in synthetic.items()}
    ri = integrity(synthetic, src)
    figures["integrity"] = ri
    worst = min([r["share_resolved"] for r in ri["relationships"].values()] or [1.0])
    dangling = {k: v["dangling"] for k, v in ri["relationships"].items() if v["dangling"]}
    results.append(
        gate(
            "referential_integrity",
            worst,
            1.0,
            ">=",
            "share of non-missing synthetic foreign keys that match a parent row (lowest of "
            f"{len(ri['relationships'])} relationships)" + (f"; dangling: {dangling}" if dangling else ""),
        )
    )
    pk_worst = min([k["share_valid"] for k in ri["primary_keys"].values()] or [1.0])
    results.append(
        gate(
            "primary_keys",
            pk_worst,
            1.0,
            ">=",
            "share of synthetic primary keys that are unique and present (lowest table)",
        )
    )
    if any(len(df) == 0 for df in synthetic.values()):
        results.append(gate("synthetic_rows", 0, 1, ">=", "a synthetic table is empty"))
        return {"gates": results, "figures": figures, "gx": gx}
    started = time.perf_counter()
    q, d, props = _quality(train, synthetic, metadata)
    figures["sdmetrics"] = props
    figures["sdmetrics_seconds"] = round(time.perf_counter() - started, 3)
    results.append(
        gate(
            "quality",
            q,
            cfg.gates.quality_min,
            ">=",
            "SDMetrics multi-table quality (column shapes, pair trends, cardinality, "
            "intertable trends) vs the train tables",
        )
    )
    results.append(
        gate(
            "diagnostic",
            d,
            cfg.gates.diagnostic_min,
            ">=",
            "SDMetrics multi-table diagnostic (validity, structure, relationship validity)",
        )
    )
    keys = set(_key_columns(src, main))
    cols = [c for c in train[main].columns if c not in keys]
    priv, figures["privacy"] = privacy_gates(
        synthetic[main][cols], train[main][cols], holdout[main][cols], cfg.gates, cfg.seed
    )
    figures["privacy"]["table"] = main
    results += priv
    if cfg.target:
        util, figures["utility"] = utility_gate(
            synthetic[main][cols], train[main][cols], holdout[main][cols], cfg.target, cfg.gates, cfg.seed
        )
        results.append(util)
    pii_gate = _pii_gate(blended, train, holdout)
    if pii_gate is not None:
        results.append(pii_gate[0])
        figures["pii"] = pii_gate[1]
    return {"gates": results, "figures": figures, "gx": gx}


def _quality(real: Tables, synthetic: Tables, metadata: Any) -> tuple[float, float, dict[str, float]]:
    from sdv.evaluation import evaluate_quality, run_diagnostic

    quality = evaluate_quality(dict(real), dict(synthetic), metadata, verbose=False)
    diagnostic = run_diagnostic(dict(real), dict(synthetic), metadata, verbose=False)
    props = {}
    for prefix, rep in (("quality", quality), ("diagnostic", diagnostic)):
        for _, row in rep.get_properties().iterrows():
            if row["Score"] == row["Score"]:
                props[f"{prefix}.{row['Property']}"] = float(row["Score"])
    return float(quality.get_score()), float(diagnostic.get_score()), props


def _pii_gate(blended: Tables, train: Tables, holdout: Tables) -> tuple[Any, dict[str, Any]] | None:
    """The PII replay gate, table by table, on whatever detection finds in the real tables."""
    from pipelines import pii
    from pipelines.validate import gate

    plan = pii.PiiPlan(policy="replace", locale="en_US", detect=True)
    found: dict[str, Any] = {}
    leaked = 0
    for name, real in train.items():
        columns = pii.gate_columns(real, plan)
        if not columns:
            continue
        values = pii.real_values([real, holdout.get(name, real.head(0))], columns)
        hit = pii.replay(blended[name], values, columns)
        found[name] = hit
        leaked += hit["leaked_values"]
    if not found:
        return None
    where = {t: h["by_column"] for t, h in found.items() if h["leaked_values"]}
    return gate(
        "pii_replay", leaked, 0, "<=", "distinct real PII values found in the release" + (f": {where}" if where else "")
    ), found


def run_validate(cfg: DatasetConfig, paths: DatasetPaths) -> dict[str, Any]:
    """The validate stage for a relational dataset."""
    import mlflow
    from sdv.metadata import Metadata

    from pipelines import report, tracking
    from pipelines.contracts import PROVENANCE, load_suite

    ingest, blend_record = read_json(paths.record("ingest")), read_json(paths.record("blend"))
    blended = read_tables(paths.blended, expected=blend_record["blended"]["tables"])
    train = read_tables(paths.train, expected=ingest["train"]["tables"])
    holdout = read_tables(paths.holdout, expected=ingest["holdout"]["tables"])
    metadata = Metadata.load_from_dict(read_json(paths.model_metadata))
    suite = load_suite(paths.release_suite)
    main = cfg.source.main_table or ""
    with tracking.stage_run(cfg, paths, "validate") as handle:
        outcome = evaluate(cfg, blended, train, holdout, metadata, suite)
        gates = [g.model_dump() for g in outcome["gates"]]
        passed = all(g["passed"] for g in gates)
        figures = outcome["figures"]
        dcr = {
            k: figures.get("privacy", {}).pop(k)
            for k in ("dcr_synthetic_train", "dcr_holdout_train")
            if k in figures.get("privacy", {})
        }
        validation = {"dataset": cfg.name, "passed": passed, "gates": gates, "figures": figures, "relational": True}
        write_json(paths.validation, validation)
        write_json(paths.gx_result, outcome["gx"]["raw"])
        keys = set(_key_columns(cfg.source, main))
        shown = [c for c in train[main].columns if c not in keys]
        html = report.render(cfg, validation, blended[main][[*shown, PROVENANCE]], train[main][shown], metadata, dcr)
        report.write(paths.report_html, html)
        for g in gates:
            mlflow.log_metric(f"gate.{g['name']}", g["value"])
            mlflow.log_metric(f"gate.{g['name']}.passed", float(g["passed"]))
        mlflow.log_metric("gates.passed", float(passed))
        for path in (paths.validation, paths.gx_result, paths.report_html):
            mlflow.log_artifact(str(path), artifact_path="validation")
        record = {
            "stage": "validate",
            "dataset": cfg.name,
            "relational": True,
            "passed": passed,
            "failed": [g["name"] for g in gates if not g["passed"]],
            "validation": {"path": _rel(paths, paths.validation), "sha256": sha256_file(paths.validation)},
            "gx": {
                "suite": _rel(paths, paths.release_suite),
                "suite_sha256": sha256_file(paths.release_suite),
                "success": outcome["gx"]["success"],
                "result": _rel(paths, paths.gx_result),
                "result_sha256": sha256_file(paths.gx_result),
            },
            "report": {"path": _rel(paths, paths.report_html), "sha256": sha256_file(paths.report_html)},
            "blended_sha256": blend_record["blended"]["sha256"],
            "mlflow": handle.as_record(),
        }
        write_json(paths.record("validate"), record)
    return record


def file_entries(folder: Path, shown: str) -> list[dict[str, Any]]:
    """Manifest entries for a released table set: one per table file (path, rows, sha256, table)."""
    import pyarrow.parquet as pq

    return [
        {
            "path": f"{shown}/{f.name}",
            "rows": pq.ParquetFile(f).metadata.num_rows,
            "sha256": sha256_file(f),
            "table": f.stem,
        }
        for f in sorted(Path(folder).glob("*.parquet"))
    ]


def digest(path: Path) -> str:
    """sha256 of a file, or `tree_sha256` of a table-set folder."""
    return tree_sha256(path) if Path(path).is_dir() else sha256_file(path)
