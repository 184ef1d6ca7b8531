"""What every sequence engine shares: how many sequences a shard asks for, and fresh entity keys.

A sequence dataset (`source.sequence`) is one events table holding an ordered sequence of rows per
entity. Engines sample whole sequences: a shard of `rows` rows asks for `rows / mean length`
sequences (the train split's mean), so its row count is close to, not exactly, `rows`. Keys are
replaced in order of appearance by keys shaped like the real ones, starting at the shard's
`first_key`, so no key repeats across shards and the same seed gives the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.engines.base import SampleRequest


def fresh_keys(count: int, regex: str | None, table: str, start: int = 0) -> list[str]:
    """Keys number `start` to `start + count - 1` in order: the regex's strings (shaped like the real
    keys), or `<table>_<n>` when there is no regex or it has too few strings."""
    if regex:
        from itertools import islice

        from rdt.transformers.utils import strings_from_regex

        generator, size = strings_from_regex(regex)
        if size >= start + count:
            return list(islice(generator, start, start + count))
    return [f"{table}_{i}" for i in range(start, start + count)]


def length_stats(df: pd.DataFrame, key: str) -> dict[str, Any]:
    """Rows, sequences and mean sequence length of an events table (recorded in the model)."""
    sequences = int(df[key].nunique())
    return {"rows": len(df), "sequences": sequences, "mean_length": len(df) / max(1, sequences)}


def sequences_to_sample(stats: dict[str, Any], request: SampleRequest) -> int:
    """Sequences for a shard of `request.rows` rows, at the train split's mean length."""
    return max(1, round(request.rows / stats["mean_length"]))


def rekey(df: pd.DataFrame, key: str, regex: str | None, table: str, first: int) -> pd.DataFrame:
    """The rows with each sampled entity key replaced, in order of appearance, by a fresh key."""
    sampled = list(dict.fromkeys(df[key].astype(str)))
    renamed = dict(zip(sampled, fresh_keys(len(sampled), regex, table, first), strict=True))
    return df.assign(**{key: df[key].astype(str).map(renamed).astype(object)})
