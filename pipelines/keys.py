"""Keys of a table set: primary keys, foreign keys (relationships), orphans and integrity.

Keys: a declared primary key must exist, be unique and have no missing value (else a typed
error). Orphans (a child's foreign key that matches no parent row, e.g. a flight whose tailnum has
no plane) follow `ingest.orphans`: `nullify` sets the key to missing (the row stays; HMA models
missing keys as their own group), `drop` removes the row (and its own children), `error` fails.
Key columns are compared as text, so a numeric-looking key stays a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import Relationship, SourceConfig
    from pipelines.tableset import Tables


def keys_as_text(tables: Tables, src: SourceConfig) -> None:
    """Turn every key column into text in place (keys are compared as text)."""
    import pandas as pd

    for name, df in tables.items():
        for col in key_columns(src, name):
            if col in df.columns and not pd.api.types.is_object_dtype(df[col]):
                df[col] = df[col].map(lambda v: v if pd.isna(v) else str(v)).astype(object)


def key_columns(src: SourceConfig, table: str) -> list[str]:
    """The key columns of a table: its declared primary key and its foreign keys, or a sequence
    dataset's entity key (none undeclared)."""
    spec = src.tables.get(table)
    cols = [spec.primary_key] if spec and spec.primary_key else []
    cols += [r.child_key for r in src.relationships if r.child == table]
    cols += [src.sequence.key] if src.sequence else []  # a sequence dataset's one table
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


def orphan_mask(tables: Tables, rel: Relationship) -> pd.Series:
    child = tables[rel.child][rel.child_key]
    return child.notna() & ~child.isin(set(tables[rel.parent][rel.parent_key].dropna()))


def descendants(src: SourceConfig, table: str) -> list[Relationship]:
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
        mask = orphan_mask(tables, rel)
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
            mask = orphan_mask(tables, rel)
            if mask.any():
                tables[rel.child] = tables[rel.child].loc[~mask].reset_index(drop=True)
    return tables, report


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


def key_regex(values: pd.Series) -> str | None:
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
