"""Id-like columns of a single table: row identifiers whose synthetic values are fresh ids.

A column is id-like when it is a key, when the committed metadata gives it sdtype `id` (SDV's
detection gives it to the primary key it picks, a unique column of whole numbers, and to names
such as `loan_id`), or when it holds text that is distinct in every row (`R-00042`). Generated ids are new
values, so the release suite expects of them a type, no missing value and, for the ids the
engine generates unique (the primary key, or an `id` with a `regex_format`), uniqueness over the
synthetic rows: never the real range or value set, which fresh ids leave by design.

`expectations init` gives a text column distinct in every row sdtype `id` with a regex shaped like
its values (so the engine learns no real one), and `generate` renumbers the unique ids of each shard
from the shard's first row (shaped by that regex, or as whole numbers), so no id repeats across
shards.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from pipelines.keys import key_regex

if TYPE_CHECKING:
    import pandas as pd

MIN_ROWS = 20
"""A text column is id-like by its values only with at least this many rows, all distinct."""

ROOM_PER_VALUE = 20
"""A regex is used only when it can spell this many ids per real value (as `keys.key_regex`)."""


def distinct_per_row(s: pd.Series) -> bool:
    """Whether every row has a value and no value repeats."""
    return bool(len(s)) and not s.isna().any() and s.is_unique


def is_text(s: pd.Series) -> bool:
    """Whether a column holds text (not numbers, booleans or datetimes)."""
    import pandas as pd

    return pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)


def text_ids(df: pd.DataFrame, skip: Collection[str] = ()) -> list[str]:
    """Text columns distinct in every row (at least `MIN_ROWS` rows), `skip` left out."""
    if len(df) < MIN_ROWS:
        return []
    return [c for c in df.columns if c not in skip and is_text(df[c]) and distinct_per_row(df[c])]


def shape_regex(values: pd.Series) -> str | None:
    """A regex spelling values shaped like these (`R\\-0[0-9]{4}` for 300 like `R-00042`): per position the
    character every value shares there, or the classes A-Z, a-z, 0-9 found there; shared letters and
    digits widen to their class, from the right, while the shape holds too few ids. Numbers get
    `[1-9][0-9]{k}`, text of several lengths `keys.key_regex`; None when no shape holds enough."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _number_regex(values)
    text = values.dropna().astype(str)
    if text.empty:
        return None
    if text.str.len().nunique() != 1:
        return key_regex(values)
    positions = []
    for pos in range(len(text.iloc[0])):
        chars = set(text.str[pos])
        if not all(ch.isascii() and ch.isalnum() for ch in chars) and len(chars) > 1:
            return None
        positions.append(chars)
    wide: set[int] = set()
    for pos in [-1, *reversed(range(len(positions)))]:  # as they are, then widened from the right
        wide.add(pos)
        parts = [_part(chars, i in wide) for i, chars in enumerate(positions)]
        if math.prod(size for _, size in parts) >= ROOM_PER_VALUE * len(text):
            return _joined([p for p, _ in parts])
    return None


_CLASSES = (("A-Z", 26, str.isupper), ("a-z", 26, str.islower), ("0-9", 10, str.isdigit))


def _part(chars: set[str], widen: bool) -> tuple[str, int]:
    """One position of a shape: (regex, how many characters it spells)."""
    if len(chars) == 1 and not (widen and next(iter(chars)).isascii() and next(iter(chars)).isalnum()):
        return re.escape(next(iter(chars))), 1
    classes = [(c, n) for c, n, test in _CLASSES if any(test(ch) for ch in chars)]
    return "[" + "".join(c for c, _ in classes) + "]", sum(n for _, n in classes)


def _joined(parts: list[str]) -> str:
    """Regex parts with runs of the same class written once with a count (`[0-9]{5}`)."""
    out: list[tuple[str, int]] = []
    for part in parts:
        if out and out[-1][0] == part and part.startswith("["):
            out[-1] = (part, out[-1][1] + 1)
        else:
            out.append((part, 1))
    return "".join(p if n == 1 else f"{p}{{{n}}}" for p, n in out)


def _number_regex(values: pd.Series) -> str | None:
    """Whole positive numbers as wide as the real ones (wider when they hold too few): `[1-9][0-9]{5}`."""
    present = values.dropna()
    if present.empty or (present < 0).any() or not (present == present.round()).all():
        return None
    digits = len(str(int(present.max())))
    while 9 * 10 ** (digits - 1) < ROOM_PER_VALUE * len(present):
        digits += 1
    return "[1-9]" + (f"[0-9]{{{digits - 1}}}" if digits > 1 else "")


def mark_metadata(metadata: dict[str, Any], table: str, df: pd.DataFrame, skip: Collection[str]) -> dict[str, Any]:
    """Metadata (a dict) in which each text column distinct in every row, and each `id` column
    distinct in every row but neither the primary key nor given a regex, is an `id` generated from a
    regex shaped like its values (SDV then learns no real value). `skip`: PII columns (replaced)."""
    out = copy.deepcopy(metadata)
    tmeta = out["tables"][table]
    columns = tmeta["columns"]
    unnamed = [
        c
        for c, spec in columns.items()
        if spec.get("sdtype") == "id"
        and c != tmeta.get("primary_key")
        and not spec.get("regex_format")
        and c in df.columns
        and distinct_per_row(df[c])
    ]
    for col in dict.fromkeys([*text_ids(df, skip), *unnamed]):
        if col in skip:
            continue
        regex = shape_regex(df[col])
        if regex is not None:
            columns[col] = {"sdtype": "id", "regex_format": regex}
    return out


def id_like(df: pd.DataFrame, table_meta: dict[str, Any]) -> list[str]:
    """The id-like columns of a table: the `id` columns of its metadata, and text distinct in every row."""
    ids = [c for c, spec in table_meta.get("columns", {}).items() if spec.get("sdtype") == "id"]
    return [c for c in df.columns if c in {*ids, *text_ids(df)}]


def generated_unique(table_meta: dict[str, Any]) -> dict[str, str | None]:
    """The `id` columns an engine generates unique (the primary key, and those with a
    `regex_format`), each with its regex (None: none)."""
    return {
        c: spec.get("regex_format")
        for c, spec in table_meta.get("columns", {}).items()
        if spec.get("sdtype") == "id" and (c == table_meta.get("primary_key") or spec.get("regex_format"))
    }


def renumber(df: pd.DataFrame, unique: Mapping[str, str | None], first: int, name: str) -> pd.DataFrame:
    """The rows with each of the `unique` id columns replaced by ids number `first`, `first + 1`, ...
    of its regex, in order (so shards starting `first` rows apart never share one); without a
    regex, or once it has too few, whole numbers in a column of numbers (from `first + 1`, or past
    every number the regex spells), else `<name>_<n>`."""
    import pandas as pd

    out = df.copy()
    for col, regex in unique.items():
        if col not in out.columns:
            continue
        spelled = _spelled(regex, len(out), first)
        if pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            if spelled is None or not all(v.isdigit() for v in spelled):
                shape = _spelled(regex, 1, 0)  # the regex's numbers are as wide as its first
                start = 10 ** len(shape[0]) + first if shape else first + 1
                spelled = [str(n) for n in range(start, start + len(out))]
            out[col] = pd.Series(spelled, index=out.index).astype("int64").astype(out[col].dtype)
        else:
            spelled = spelled or [f"{name}_{n}" for n in range(first, first + len(out))]
            out[col] = pd.Series(spelled, index=out.index, dtype=object)
    return out


def _spelled(regex: str | None, count: int, first: int) -> list[str] | None:
    """Strings number `first` to `first + count - 1` of the regex, or None (no regex, or too few)."""
    if not regex:
        return None
    from itertools import islice

    from rdt.transformers.utils import strings_from_regex

    generator, size = strings_from_regex(regex)
    return list(islice(generator, first, first + count)) if size >= first + count else None
