"""SDV metadata of a table set: detected once, committed to `metadata/<ds>.json`, edited by people.

Declared keys win over detection: key columns become sdtype `id` (with a regex shaped like the real
keys where that is safe) and the relationships are exactly those of params.yaml. Numeric columns
whose rows hold few distinct values (codes, small counts, lookup values) are modelled as
`ordinal`, in numeric order.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from pipelines import keys
from pipelines.errors import InvalidInputError
from pipelines.io import read_json

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import SourceConfig
    from pipelines.paths import DatasetPaths
    from pipelines.tableset import Tables

MAX_DISCRETE_VALUES = 10
"""A numeric column is modelled as `ordinal` when at most this many distinct values (and at most
one per 10 rows) hold `DISCRETE_SHARE` of its rows: SDV's own limit for its ordinal detection. In
the bundled data such columns have 2-10 values (hdma `mcs` 4, `ccs` 6, `uria` 10, each plus one
imputed value; flights `day` 3, airports `tz` 5, planes `engines` 2) and the next whole-number
columns 19 or more (flights `hour`, planes `seats`, `year`), which stay numerical with
`decimal_places: 0` (integers out). Measurements: docs/gates.md, "Type fidelity"."""

DISCRETE_SHARE = 0.99
"""The share of a discrete column's rows its common values must hold; the values of the other
rows (imputed ones: hdma's `mcs` 1.721 in 1 row of 2,381) are kept, so the real data validates."""

_EDIT_HINT = "Edit the metadata file or re-run `synthgate expectations init --force`."


def detect(tables: Tables, src: SourceConfig) -> dict[str, Any]:
    """SDV 2 metadata detected from the tables, with the declared keys and relationships."""
    from sdv.metadata import Metadata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md = Metadata.detect_from_dataframes(dict(tables))
    for name, df in tables.items():
        _discrete_numbers(md, name, df, set(keys.key_columns(src, name)))
    for rel in list(md.relationships):
        md.remove_relationship(rel["parent_table_name"], rel["child_table_name"])
    for name, spec in src.tables.items():
        current = md.tables[name].primary_key
        if current and current != spec.primary_key:
            md.remove_primary_key(name)
        for col in keys.key_columns(src, name):
            regex = keys.key_regex(tables[name][col])
            md.update_column(col, name, sdtype="id", **({"regex_format": regex} if regex else {}))
        if spec.primary_key:
            md.set_primary_key(spec.primary_key, name)
    for rel in src.relationships:
        md.add_relationship(rel.parent, rel.child, rel.parent_key, rel.child_key)
    if src.sequence:  # one events table: its entity key is an id, its index orders each sequence
        (name, df), seq = next(iter(tables.items())), src.sequence
        regex = keys.key_regex(df[seq.key])
        md.update_column(seq.key, name, sdtype="id", **({"regex_format": regex} if regex else {}))
        md.set_sequence_key(seq.key, name)
        md.set_sequence_index(seq.index, name)
    md.validate()
    return md.to_dict()


def is_discrete(values: pd.Series) -> bool:
    """Whether a numeric column holds codes, small counts or lookup values: a few values hold its rows."""
    import pandas as pd

    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values) or present.empty:
        return False
    common = min(MAX_DISCRETE_VALUES, round(len(values) / 10))
    return bool(present.value_counts().head(common).sum() >= DISCRETE_SHARE * len(present))


def _discrete_numbers(md: Any, table: str, df: pd.DataFrame, keys_: set[str]) -> None:
    """Discrete numeric columns become `ordinal`, every value (the rare ones too) in numeric order.

    SDV makes a column ordinal only when every value is whole and there are few (one imputed 1.721
    leaves hdma's `mcs` continuous) and keeps the values in order of appearance, not their order.
    """
    for col, spec in md.tables[table].columns.items():
        if col in keys_ or spec["sdtype"] not in ("numerical", "ordinal") or not is_discrete(df[col]):
            continue
        md.update_column(
            col,
            table,
            sdtype="ordinal",
            range_values=sorted(df[col].dropna().unique().tolist()),
            range_is_nullable=bool(df[col].isna().any()),
            high_cardinality=False,
        )


def load(paths: DatasetPaths) -> Any:
    """The committed metadata file as an SDV Metadata object (the source of truth)."""
    from sdv.metadata import Metadata

    shown = paths.rel(paths.metadata)
    if not paths.metadata.is_file():
        raise InvalidInputError(
            shown,
            ["SDV metadata file not found"],
            hint=f"Create it with `synthgate expectations init {paths.name}` and commit it.",
        )
    try:
        return Metadata.load_from_dict(read_json(paths.metadata))
    except Exception as err:  # SDV raises InvalidMetadataError and friends
        raise InvalidInputError(shown, [str(err)]) from None


def check(metadata: Any, tables: Tables, src: SourceConfig, where: str) -> None:
    """The metadata must describe every table and column, hold every declared relationship, and
    the data must satisfy it (SDV's own validation lists every problem)."""
    problems = []
    for name, df in tables.items():
        if name not in metadata.tables:
            problems.append(f"no table '{name}' in the metadata")
            continue
        described = set(metadata.tables[name].columns)
        problems += [
            f"table '{name}': column '{c}' is not described in the metadata" for c in df.columns if c not in described
        ]
        problems += [
            f"table '{name}': metadata describes column '{c}', which the data lacks"
            for c in described
            if c not in df.columns
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
        raise InvalidInputError(where, problems, hint=_EDIT_HINT)
    try:
        metadata.validate_data(dict(tables))
    except Exception as err:  # sdv.errors.InvalidDataError lists every problem
        raise InvalidInputError(where, [str(err)]) from None


def seen_only(metadata: Any, tables: Tables) -> Any:
    """A copy whose ordinal columns list only the values the training rows hold, in their order.

    SDV hands an ordinal column's `range_values` to RDT's OrderedUniformEncoder as its order, and
    that encoder gives the values missing from the training rows 10% of the probability mass: a
    code seen once, in the holdout (hdma's imputed `mcs` 1.721), would fill a tenth of the release.
    """
    learned = metadata.copy()
    for name, df in tables.items():
        for col, spec in metadata.tables[name].columns.items():
            values = spec.get("range_values")
            if spec["sdtype"] != "ordinal" or not values or col not in df.columns:
                continue
            seen = set(df[col].dropna().unique().tolist())
            kept = [v for v in values if v in seen]
            if kept and kept != values:
                learned.update_column(col, name, **{**spec, "range_values": kept})
    return learned


def without_columns(metadata: Any, table: str, columns: list[str]) -> Any:
    """A copy of the metadata without `columns` of `table` (PII is never learned)."""
    if not columns:
        return metadata
    learned = metadata.copy()
    if learned.tables[table].primary_key in columns:
        learned.remove_primary_key(table)
    for col in columns:
        learned.remove_column(col, table)
    return learned
