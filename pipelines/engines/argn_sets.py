"""TabularARGN on a table set: a parent table and one child table linked by one foreign key.

The parent is fitted as a flat table; the child as a sequence of rows per parent row, with the
parent row as its context (mostlyai-engine's `tgt_context_key` / `ctx_primary_key`; a parent
without children is a sequence of length 0). Sampling draws the parents first (the train split's
parents times the requested scale), then the children of every sampled parent, in one call of the
runner. The engine names generated rows with random UUIDs; they are replaced here, in order, by
keys shaped like the real ones (the metadata's regex, as SDV does), so the same seed gives the same
bytes and every child's foreign key names a sampled parent.

Limits (checked when params.yaml is loaded): exactly two tables and one relationship, and no
orphan child rows kept with a missing key (`ingest.orphans: nullify` is refused; rows whose
foreign key is missing in the data are refused at fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.engines.sequences import fresh_keys
from pipelines.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.engines.base import SampleRequest
    from pipelines.tableset import Tables

LIMITS = "two tables (a parent and one child) linked by one foreign key"
"""What tabular_argn fits besides single tables (`synthgate engines` shows it)."""

ENCODINGS = {
    "numerical": "TABULAR_NUMERIC_AUTO",
    "categorical": "TABULAR_CATEGORICAL",
    "boolean": "TABULAR_CATEGORICAL",
    "ordinal": "TABULAR_CATEGORICAL",
    "datetime": "TABULAR_DATETIME",
    "id": "TABULAR_CHARACTER",
}
"""The committed metadata's sdtypes as encoding types (every engine sees the same column types)."""


def encodings(metadata_table: dict[str, Any], df: pd.DataFrame, keys: set[str | None]) -> dict[str, str]:
    """Encoding types of a table's columns from its committed metadata, the `keys` left out."""
    columns = metadata_table["columns"]
    return {c: ENCODINGS.get(columns[c]["sdtype"], "AUTO") for c in df.columns if c not in keys}


RARE_BELOW = 5
"""mostlyai-engine's value protection hides every category seen fewer than a random 5-7 times (counted
in rows, or in entities for a child table) in the 80% of the rows it trains on, and with no category
left to sample in its place releases its `_RARE_` token: a column whose commonest value is seen fewer
than 5 times in the whole train split is certain to be released as `_RARE_` only (between 5 and 7 it
depends on the draw; the types gate blocks such a release)."""


def all_rare_problems(parts: list[Part], params: dict[str, Any]) -> list[str]:
    """Categorical columns value protection would release as `_RARE_` only (none without protection)."""
    if params.get("value_protection") is False:
        return []
    problems = []
    for part in parts:
        for col, encoding in part.encodings.items():
            if encoding != "TABULAR_CATEGORICAL" or part.frame[col].isna().all():
                continue
            by_entity = part.context is not None and part.context_key in part.frame.columns
            frame = part.frame
            counts = frame.groupby(col)[part.context_key].nunique() if by_entity else frame[col].value_counts()
            top = int(counts.max())
            if top < RARE_BELOW:
                problems.append(
                    f"column '{col}' of '{part.table}': its commonest value is seen {top} time(s) in "
                    f"{len(part.frame):,} train rows, so TabularARGN's value protection (categories seen fewer "
                    "than 5-7 times) would release every value as '_RARE_'"
                )
    return problems


def shape_problems(cfg: DatasetConfig) -> list[str]:
    """Why a relational dataset is not a parent and one child tabular_argn can fit (config check)."""
    src = cfg.source
    if len(src.tables) != 2 or len(src.relationships) != 1:
        return [
            f"fit.synthesizer: 'tabular_argn' fits {LIMITS}; this dataset has {len(src.tables)} tables and "
            f"{len(src.relationships)} relationships: fit it with 'hma', or keep two tables and one relationship"
        ]
    rel = src.relationships[0]
    if rel.parent == rel.child:
        return [f"fit.synthesizer: 'tabular_argn' cannot fit a table that refers to itself ({rel.label})"]
    if cfg.ingest.orphans == "nullify":
        return [
            f"ingest.orphans: 'tabular_argn' generates every '{rel.child}' row for a '{rel.parent}' row, so a "
            "child row whose parent is missing (nullify keeps it without a key) cannot be learned: set "
            "orphans to drop or error"
        ]
    return []


@dataclass(frozen=True)
class Part:
    """One model of the set: a table fitted flat (`context` None) or per row of its parent's part."""

    dir: str
    """Folder of the model inside the model folder ('' for a single table)."""
    table: str
    frame: pd.DataFrame
    encodings: dict[str, str]
    primary_key: str | None
    context_key: str | None = None
    context: Part | None = None

    def request(self, work: Path) -> dict[str, Any]:
        """The runner's fit request for this part (its train table written to `work`)."""
        path = work / f"{self.dir or 'train'}.parquet"
        self.frame.to_parquet(path, index=False)
        out: dict[str, Any] = {
            "dir": self.dir,
            "train": str(path),
            "encoding_types": self.encodings,
            "primary_key": self.primary_key,
        }
        if self.context is not None:
            out["context_key"] = self.context_key
            out["context"] = {
                "train": str(work / f"{self.context.dir}.parquet"),
                "encoding_types": self.context.encodings,
                "primary_key": self.context.primary_key,
            }
        return out

    def describe(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """What sampling needs to know about this part (the model manifest's `tables` entry)."""
        columns = metadata[self.table]["columns"]
        keys = [k for k in (self.primary_key, self.context_key) if k]
        return {
            "table": self.table,
            "primary_key": self.primary_key,
            "context_key": self.context_key,
            "encoding_types": self.encodings,
            "columns": list(self.frame.columns),
            "dtypes": {c: str(t) for c, t in self.frame.dtypes.items()},
            "train_rows": len(self.frame),
            "key_regex": {k: columns[k].get("regex_format") for k in keys},
        }


def fit_parts(train: Tables, metadata: dict[str, Any], cfg: DatasetConfig) -> list[Part]:
    """The parent part and the child part of a two-table set (InvalidInputError: a missing foreign key)."""
    rel = cfg.source.relationships[0]
    parent, child = train[rel.parent], train[rel.child]
    missing = int(child[rel.child_key].isna().sum())
    if missing:
        raise InvalidInputError(
            f"table '{rel.child}'",
            [
                f"foreign key '{rel.child_key}' (to '{rel.parent}.{rel.parent_key}') is missing in {missing} of "
                f"{len(child)} train rows; tabular_argn generates every '{rel.child}' row for a '{rel.parent}' row"
            ],
            hint="Remove those rows from the source, or fit the dataset with 'hma' (it models missing keys).",
        )
    child_pk = metadata[rel.child].get("primary_key")
    top = Part("parent", rel.parent, parent, encodings(metadata[rel.parent], parent, {rel.parent_key}), rel.parent_key)
    child_encodings = encodings(metadata[rel.child], child, {child_pk, rel.child_key})
    return [top, Part("child", rel.child, child, child_encodings, child_pk, rel.child_key, top)]


def parents_to_sample(manifest: dict[str, Any], request: SampleRequest) -> int:
    """Parent rows for a request: the train split's parents at the scale of the main table's rows."""
    scale = request.rows / max(1, request.train_rows)
    return max(1, round(manifest["tables"]["parent"]["train_rows"] * scale))


def sample_parts(manifest: dict[str, Any], request: SampleRequest, work: Path) -> list[dict[str, Any]]:
    """The runner's sample request: the parents, then the children of every sampled parent."""
    parents = str(work / "parent.parquet")
    return [
        {"dir": "parent", "rows": parents_to_sample(manifest, request), "conditions": {}, "out": parents},
        {"dir": "child", "context": parents, "out": str(work / "child.parquet")},
    ]


def read_sampled(manifest: dict[str, Any], work: Path) -> Tables:
    """The sampled parent and child tables with fresh keys, the train tables' columns and dtypes."""
    import pandas as pd

    from pipelines.engines.external import restore_dtypes

    top, sub = manifest["tables"]["parent"], manifest["tables"]["child"]
    parent = pd.read_parquet(work / "parent.parquet")
    child = pd.read_parquet(work / "child.parquet")
    pk, fk = top["primary_key"], sub["context_key"]
    keys = fresh_keys(len(parent), top["key_regex"].get(pk), top["table"])
    renamed = dict(zip(parent[pk].astype(str), keys, strict=True))
    parent[pk] = keys
    child[fk] = child[fk].astype(str).map(renamed)
    if sub["primary_key"]:
        child[sub["primary_key"]] = fresh_keys(len(child), sub["key_regex"].get(sub["primary_key"]), sub["table"])
    return {
        top["table"]: restore_dtypes(parent, top["columns"], top["dtypes"]),
        sub["table"]: restore_dtypes(child, sub["columns"], sub["dtypes"]),
    }


def sequence_parts(df: pd.DataFrame, metadata: dict[str, Any], cfg: DatasetConfig, table: str) -> list[Part]:
    """A sequence dataset as a set: the entities (key and context columns) fitted flat, the events
    per entity with the entity as context; with no context columns, the events alone, per key.
    A datetime index is encoded as the time since the entity's previous event (TABULAR_DATETIME_RELATIVE),
    so a sequence is drawn in order."""
    seq = cfg.source.sequence
    if seq is None:  # config validation sends only sequence datasets here
        raise ConfigError([f"datasets.{cfg.name}.source.sequence: not set"])
    context = list(seq.context_columns)
    events = df.drop(columns=context)
    coded = encodings(metadata[table], events, {seq.key})
    if coded.get(seq.index) == "TABULAR_DATETIME":
        coded[seq.index] = "TABULAR_DATETIME_RELATIVE"
    if not context:
        return [Part("child", table, events, coded, None, seq.key)]
    entities = df[[seq.key, *context]].drop_duplicates(seq.key).reset_index(drop=True)
    top = Part("parent", table, entities, encodings(metadata[table], entities, {seq.key}), seq.key)
    return [top, Part("child", table, events, coded, None, seq.key, top)]


def sequence_sample_parts(manifest: dict[str, Any], request: SampleRequest, work: Path) -> list[dict[str, Any]]:
    """The runner's sample request for whole sequences: the entities (generated, or numbered keys
    when there are no context columns), then every entity's events."""
    import pandas as pd

    from pipelines.engines.sequences import sequences_to_sample

    count = sequences_to_sample(manifest["sequence"]["stats"], request)
    entities = str(work / "parent.parquet")
    events = {"dir": "child", "context": entities, "out": str(work / "child.parquet")}
    if "parent" in manifest["tables"]:
        return [{"dir": "parent", "rows": count, "conditions": {}, "out": entities}, events]
    key = manifest["sequence"]["key"]
    pd.DataFrame({key: [str(i) for i in range(count)]}).to_parquet(entities, index=False)
    return [events]


def read_sequences(manifest: dict[str, Any], work: Path, table: str, first_key: int) -> Tables:
    """The sampled events with their entity's context columns, fresh keys from `first_key` on, and
    the train table's columns and dtypes."""
    import pandas as pd

    from pipelines.engines.external import restore_dtypes
    from pipelines.engines.sequences import rekey

    seq = manifest["sequence"]
    events = pd.read_parquet(work / "child.parquet")
    events[seq["key"]] = events[seq["key"]].astype(str)
    if seq["context_columns"]:
        entities = pd.read_parquet(work / "parent.parquet")
        entities[seq["key"]] = entities[seq["key"]].astype(str)
        events = events.merge(entities, on=seq["key"], how="left", validate="many_to_one")
    events = rekey(events, seq["key"], seq["regex"], table, first_key)
    return {table: restore_dtypes(events, seq["columns"], seq["dtypes"])}


def training_summary(training: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each part's last-epoch figures; with DP, the epsilons and deltas of both models added up
    (basic composition: an upper bound on what the pair spent)."""
    out: dict[str, Any] = dict(training)
    spent = [t for t in training.values() if "dp_eps" in t]
    if spent:
        out["dp_eps"] = sum(t["dp_eps"] for t in spent)
        out["dp_delta"] = sum(t.get("dp_delta", 0.0) for t in spent)
    return out
