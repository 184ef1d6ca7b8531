"""PII replacement: Faker values (never a real one) in sampled rows, pseudonyms in real rows."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, InvalidInputError
from pipelines.pii.detect import PiiPlan, normalise_value

if TYPE_CHECKING:
    import pandas as pd


def _faker(locale: str, seed: int) -> Any:
    from faker import Faker
    from faker.config import AVAILABLE_LOCALES

    if locale not in AVAILABLE_LOCALES:
        raise ConfigError([f"fit.pii.locale: Faker has no locale {locale!r} (e.g. en_US, de_DE, fr_FR)"])
    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def _from_shape(shape: str, rng: Any) -> str:
    out = []
    for ch in shape:
        if ch == "A":
            out.append(chr(65 + int(rng.integers(26))))
        elif ch == "a":
            out.append(chr(97 + int(rng.integers(26))))
        elif ch == "9":
            out.append(str(int(rng.integers(10))))
        else:
            out.append(ch)
    return "".join(out)


def _pick(shapes: tuple[tuple[str, float], ...], rng: Any) -> str:
    """One shape, drawn by its weight."""
    weights = [w for _, w in shapes]
    return shapes[int(rng.choice(len(shapes), p=[w / sum(weights) for w in weights]))][0]


def _number(shapes: tuple[tuple[str, float], ...], rng: Any) -> int | float:
    """A number of one of the digit shapes (no leading 0 before another digit)."""
    text = _from_shape(_pick(shapes, rng), rng)
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    if len(digits.partition(".")[0]) > 1 and digits[0] == "0":
        digits = str(1 + int(rng.integers(9))) + digits[1:]
    return float(sign + digits) if "." in digits else int(sign + digits)


def _draw(kind: str, fake: Any, rng: Any, shapes: tuple[tuple[str, float], ...]) -> str:
    if kind == "name":
        return fake.name()
    if kind == "first_name":
        return fake.first_name()
    if kind == "last_name":
        return fake.last_name()
    if kind == "email":
        return fake.email()
    if kind == "phone_number":
        return fake.phone_number()
    if kind == "address":
        return fake.address().replace("\n", ", ")
    if kind == "street_address":
        return fake.street_address()
    if kind == "ssn":
        return fake.ssn()
    if kind == "credit_card":
        return fake.credit_card_number()
    if kind == "iban":
        return fake.iban()
    if kind == "ipv4":
        return fake.ipv4_public()
    if shapes:
        return _from_shape(_pick(shapes, rng), rng)
    return fake.bothify("ID-########")


def _fresh(
    kind: str,
    fake: Any,
    rng: Any,
    shapes: tuple[tuple[str, float], ...],
    avoid: Collection[str],
    used: set[str] | None,
    numeric: bool = False,
) -> str | int | float:
    """A fake value never equal to a real one (nor, with `used`, to an earlier fake); with `numeric`,
    a number of the digit shapes (their room is checked when the plan is made)."""
    for attempt in range(200):
        value: str | int | float
        if numeric:
            value = _number(shapes, rng)
        else:
            value = _draw(kind, fake, rng, shapes)
            if attempt >= 20:  # a small value space (e.g. surnames) is exhausted: combine two draws
                value = f"{value}-{_draw(kind, fake, rng, shapes)}" if attempt < 100 else f"{value}-{attempt}"
        key = normalise_value(value)
        if key not in avoid and (used is None or key not in used):
            if used is not None:
                used.add(key)
            return value
    raise InvalidInputError("fit.pii", [f"could not draw a {kind} value distinct from every real one"])


def fake_values(
    kind: str,
    n: int,
    seed: int,
    locale: str,
    avoid: Collection[str] = (),
    shapes: tuple[tuple[str, float], ...] = (),
    dtype: str = "",
) -> list[Any]:
    """`n` Faker values of `kind` (numbers of `shapes` when `dtype` is set), reproducible from
    `seed`, none equal to a value in `avoid`."""
    import numpy as np

    fake = _faker(locale, seed)
    rng = np.random.default_rng(seed)
    return [_fresh(kind, fake, rng, shapes, avoid, None, bool(dtype)) for _ in range(n)]


def pseudonymise(
    values: pd.Series,
    kind: str,
    seed: int,
    locale: str,
    avoid: Collection[str] = (),
    shapes: tuple[tuple[str, float], ...] = (),
    dtype: str = "",
) -> pd.Series:
    """Replace each distinct real value by its own fake (same value -> same fake, one per value);
    numbers (`dtype`) by numbers of `shapes`, keeping the dtype."""
    import numpy as np

    distinct = sorted({normalise_value(v) for v in values.dropna().tolist()})
    fake = _faker(locale, seed)
    rng = np.random.default_rng(seed)
    used: set[str] = set()
    mapping = {v: _fresh(kind, fake, rng, shapes, avoid, used, bool(dtype)) for v in distinct}
    out = values.map(lambda v: v if v is None or v != v else mapping[normalise_value(v)])
    return out.astype(dtype or object)


def column_seed(seed: int, column: str) -> int:
    """A seed per (seed, column), stable across processes."""
    digest = hashlib.sha256(f"{seed}:{column}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def apply_plan(
    df: pd.DataFrame,
    plan: PiiPlan,
    seed: int,
    avoid: Mapping[str, Collection[str]],
    columns: list[str] | None = None,
    pseudonymous: bool = False,
) -> pd.DataFrame:
    """Put the plan's PII columns back into a sampled frame (or replace them in real rows).

    `pseudonymous=False` (synthetic rows): one fresh fake per row. `pseudonymous=True` (real rows):
    one fake per distinct real value; numbers stay numbers of their dtype. Policy ``drop`` (and a
    column the plan drops) removes the columns. `columns` restores the original column order.
    """
    out = df.copy()
    import pandas as pd

    for col in plan.columns:
        if col.column in plan.dropped:
            out = out.drop(columns=[col.column], errors="ignore")
            continue
        s, real = column_seed(seed, col.column), avoid.get(col.column, ())
        if pseudonymous and col.column in out.columns:
            out[col.column] = pseudonymise(out[col.column], col.kind, s, plan.locale, real, col.shapes, col.dtype)
        else:
            values = fake_values(col.kind, len(out), s, plan.locale, real, col.shapes, col.dtype)
            out[col.column] = pd.Series(values, index=out.index, dtype=col.dtype or object)
    if columns is not None:
        out = out[[c for c in columns if c in out.columns]]
    return out
