"""PII detection: declared columns, or found by name confirmed by values, or by values alone.

A column's name only suggests a kind; its values must confirm it, and numbers confirm only the
kinds in `NUMERIC_KINDS`. A protected column of numbers is replaced by numbers of the same digit
shapes (`PiiColumn.dtype`), or dropped with a note when too few such numbers differ from the real
ones; a replacement never changes a column's type.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig, PiiConfig
    from pipelines.tableset import Layout


SAMPLE_VALUES = 2_000
"""Non-null values per column inspected by value-pattern detection."""

VALUE_ONLY_SHARE = 0.8
"""Share of values that must match a pattern for a column to be PII by its values alone."""

NAME_CONFIRM_SHARE = 0.5
"""Share of values that must match when the column name already suggests the kind."""

NUMERIC_KINDS = frozenset({"phone_number", "ssn", "credit_card"})
"""Kinds a column of numbers can be: 10-digit phone numbers, 7-9 digit SSNs (leading zeros lost)
and Luhn-valid card numbers. A number is never a name, an e-mail, an address (a state or street
*code* is not one), an IBAN or an IP address; numeric IDs are left alone too (keys and counts look
the same): declare them in `fit.pii.columns` when they identify people."""

ROOM_PER_VALUE = 4
"""A numeric PII column is replaced only when its digit shapes hold this many numbers per real
value (so fresh numbers, distinct from every real one and from each other, are easy to draw);
otherwise it is dropped from the release, with a note in the plan."""

_NUMBER_SHAPE = re.compile(r"^-?9+(\.9+)?$")
_NUMERIC_SSN = re.compile(r"^\d{7,9}$")
_EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,22}(\s*(x|ext\.?)\s*\d{1,6})?$", re.IGNORECASE)
_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CARD = re.compile(r"^\d[\d -]{11,22}\d$")
_PERSON = re.compile(r"^[A-ZÀ-Þ][\w'’.-]*( [A-ZÀ-Þ][\w'’.-]*){1,3}$")
_WORD = re.compile(r"^[A-ZÀ-Þ][\w'’-]+$")
_ORG_WORDS = re.compile(
    r"\b(inc|corp|co|ltd|llc|gmbh|sa|plc|airport|airlines?|airways|bank|group|university|hospital|"
    r"city|county|international|intl|regional|rgnl|municipal|muni|company|services|field|park|center|"
    r"centre|heliport|afb|base)\b\.?",
    re.IGNORECASE,
)

_NAME_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"e_?mail")),
    ("phone_number", re.compile(r"(^|_)(phone|mobile|cell|tel|telephone|fax)(_|$)|phone")),
    ("first_name", re.compile(r"first_?name|given_?name|forename")),
    ("last_name", re.compile(r"last_?name|surname|family_?name")),
    ("ssn", re.compile(r"(^|_)(ssn|sin|nino?|social_security|national_id|passport|tax_?id|taxpayer)")),
    ("credit_card", re.compile(r"credit_?card|card_?(number|num|no)|(^|_)cc_?num|(^|_)pan$")),
    ("iban", re.compile(r"(^|_)iban")),
    ("ipv4", re.compile(r"(^|_)ip(_|$)|ip_?address|ipv4")),
    ("street_address", re.compile(r"street")),
    ("address", re.compile(r"address|(^|_)addr(_|$)")),
    ("name", re.compile(r"(^|_)(full_?)?name$")),
    (
        "id",
        re.compile(
            r"(^|_)(customer|user|client|patient|member|account|employee|person|device|applicant)"
            r"_?(id|ref|number|num|no|code)$|(^|_)(uuid|guid)$"
        ),
    ),
)


@dataclass(frozen=True)
class PiiColumn:
    """One protected column: its kind, why it is PII and, for ``id``, the shapes of its values."""

    column: str
    kind: str
    source: str  # "declared" | "detected"
    evidence: str
    shapes: tuple[tuple[str, float], ...] = ()
    dtype: str = ""  # numbers: their dtype (replaced by numbers of `shapes`); "" for text
    dropped: bool = False  # left out of the release whatever the policy (see ROOM_PER_VALUE)


@dataclass(frozen=True)
class PiiPlan:
    """What fit/generate/blend do with personal identifiers (recorded in the fit record)."""

    policy: str
    locale: str
    detect: bool
    columns: tuple[PiiColumn, ...] = ()
    ignore: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        """The protected column names."""
        return [c.column for c in self.columns]

    @property
    def dropped(self) -> list[str]:
        """The protected columns left out of the release (policy drop, or numbers with no room)."""
        return [c.column for c in self.columns if self.policy == "drop" or c.dropped]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for run records."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> PiiPlan:
        """Read a plan back from a run record (an absent plan protects nothing)."""
        if not raw:
            return cls(policy="replace", locale="en_US", detect=False)
        cols = tuple(
            PiiColumn(
                c["column"],
                c["kind"],
                c["source"],
                c["evidence"],
                tuple((str(s), float(w)) for s, w in c.get("shapes", ())),
                str(c.get("dtype", "")),
                bool(c.get("dropped", False)),
            )
            for c in raw.get("columns", ())
        )
        return cls(
            raw["policy"],
            raw["locale"],
            bool(raw["detect"]),
            cols,
            tuple(raw.get("ignore", ())),
            tuple(raw.get("notes", ())),
        )


def _normalise_name(column: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(column))
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")


def _plain(value: Any) -> str:
    """A value as text, integral floats as integers (42.0 -> '42')."""
    return str(int(value) if isinstance(value, float) and value.is_integer() else value)


def _as_text(values: Iterable[Any]) -> list[str]:
    return [_plain(v).strip() for v in values]


def normalise_value(value: Any) -> str:
    """The form in which PII values are compared (trimmed, case-folded, integral floats as ints)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _matches(kind: str, value: str) -> bool:
    if kind == "email":
        return bool(_EMAIL.match(value))
    if kind == "ssn":
        return bool(_SSN.match(value))
    if kind == "phone_number":
        core = re.sub(r"\s*(x|ext\.?)\s*\d+$", "", value, flags=re.IGNORECASE)
        digits = sum(ch.isdigit() for ch in core)
        separated = value.startswith("+") or any(ch in core for ch in " ().-")
        return bool(_PHONE.match(value)) and 7 <= digits <= 15 and (separated or digits == 10)
    if kind == "ipv4":
        m = _IPV4.match(value)
        return bool(m) and all(int(g) <= 255 for g in m.groups())
    if kind == "iban":
        return bool(_IBAN.match(value.replace(" ", "")))
    if kind == "credit_card":
        digits = re.sub(r"[ -]", "", value)
        return bool(_CARD.match(value)) and 13 <= len(digits) <= 19 and _luhn(digits)
    if kind == "name":
        return bool(_PERSON.match(value)) and not _ORG_WORDS.search(value)
    if kind in ("first_name", "last_name"):
        return bool(_WORD.match(value)) and not _ORG_WORDS.search(value)
    if kind in ("address", "street_address"):
        return any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)
    return True  # "id": judged on uniqueness, not on a pattern


_VALUE_KINDS = ("email", "ssn", "credit_card", "iban", "ipv4", "phone_number")
"""Kinds that are recognisable from their values alone (most specific first)."""


def _share(kind: str, values: list[str]) -> float:
    share = sum(_matches(kind, v) for v in values) / len(values) if values else 0.0
    if kind == "name" and share and _repeated_word(values) > 0.2:
        return 0.0  # "Albany Intl", "Bradley Intl": names of places or firms share words, people's do not
    return share


def _number_share(kind: str, values: list[str]) -> float:
    """The share of numbers (as text) that look like `kind`: a numeric SSN has lost its dashes."""
    if kind == "ssn":
        return sum(bool(_NUMERIC_SSN.match(v)) for v in values) / len(values)
    return _share(kind, values)


def _repeated_word(values: list[str]) -> float:
    """The share of values whose last word is the most common last word."""
    from collections import Counter

    last = Counter(v.split()[-1].casefold() for v in values if v.split())
    return last.most_common(1)[0][1] / len(values) if len(values) >= 5 and last else 0.0


def _sample(s: pd.Series) -> list[str]:
    nonnull = s.dropna()
    if len(nonnull) > SAMPLE_VALUES:
        nonnull = nonnull.iloc[:: max(1, len(nonnull) // SAMPLE_VALUES)][:SAMPLE_VALUES]
    return _as_text(nonnull.tolist())


def is_text(s: pd.Series) -> bool:
    """Whether a column holds text (not numbers, dates or booleans): only text can be a name or an address."""
    import pandas as pd

    return not (
        pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
    )


def detect_column(name: str, s: pd.Series) -> tuple[str, str] | None:
    """(kind, evidence) when a column looks like PII, else None."""
    values = _sample(s)
    if not values:
        return None
    norm, text = _normalise_name(name), is_text(s)
    for kind, pattern in _NAME_RULES:
        if not pattern.search(norm) or not (text or kind in NUMERIC_KINDS):
            continue  # numbers confirm only NUMERIC_KINDS
        if kind == "id":
            unique = s.nunique(dropna=True) / max(1, s.notna().sum())
            if unique >= 0.5:
                return kind, f"name matches '{kind}', {unique:.0%} distinct values"
            continue
        share = _share(kind, values) if text else _number_share(kind, values)
        if share >= NAME_CONFIRM_SHARE:
            return kind, f"name matches '{kind}', {share:.0%} of values look like one"
    if not text:
        return None
    for kind in _VALUE_KINDS:
        share = _share(kind, values)
        if share >= VALUE_ONLY_SHARE:
            return kind, f"{share:.0%} of values look like {kind}"
    return None


def _shapes(s: pd.Series, top: int = 5) -> tuple[tuple[str, float], ...]:
    """Character-class shapes of ID values ('A' upper, 'a' lower, '9' digit; others kept)."""
    table = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "A" * 26 + "a" * 26 + "9" * 10,
    )
    shapes = s.dropna().map(lambda v: normalise_shape(_plain(v).translate(table)))
    counts = shapes.value_counts(normalize=True).head(top)
    return tuple((str(k), round(float(v), 6)) for k, v in counts.items())


def normalise_shape(shape: str) -> str:
    """Shapes longer than 40 characters are cut (IDs are short; free text is not an ID)."""
    return shape[:40]


def plan_for(
    df: pd.DataFrame,
    cfg: PiiConfig,
    target: str | None = None,
    keys: Collection[str] = (),
    where: str = "fit.pii",
) -> PiiPlan:
    """The PII plan of a frame: declared columns plus detected ones, minus `ignore` and keys.

    Raises InvalidInputError when a declared or ignored column does not exist, or when the target
    is (declared or detected as) PII.
    """
    problems = [
        f"{where}.columns names '{c}', which the data lacks (columns: {list(df.columns)})"
        for c in cfg.columns
        if c not in df.columns
    ]
    problems += [f"{where}.ignore names '{c}', which the data lacks" for c in cfg.ignore if c not in df.columns]
    if problems:
        raise InvalidInputError(where, problems, hint="Fix the column names in params.yaml.")
    found: dict[str, PiiColumn] = {
        col: PiiColumn(col, kind, "declared", "declared in params.yaml") for col, kind in cfg.columns.items()
    }
    notes: list[str] = []
    if cfg.detect:
        for col in df.columns:
            if col in found or col in cfg.ignore or col in keys:
                continue
            hit = detect_column(col, df[col])
            if hit:
                found[col] = PiiColumn(col, hit[0], "detected", hit[1])
    if target and target in found:
        how = found[target].evidence
        raise InvalidInputError(
            where,
            [f"target column '{target}' is PII ({how}); PII is never learned, so it cannot be the target"],
            hint=f"Choose another `target`, or add '{target}' to {where}.ignore if it is not PII.",
        )
    columns = tuple(_replaceable(found[c], df[c], notes) for c in df.columns if c in found)
    if columns and len(columns) == len(df.columns):
        raise InvalidInputError(where, ["every column is PII: nothing is left to learn"])
    return PiiPlan(cfg.policy, cfg.locale, cfg.detect, columns, tuple(cfg.ignore), tuple(notes))


def number_room(shapes: Iterable[tuple[str, float]]) -> int:
    """How many numbers the digit shapes hold (a leading digit is never 0 before another digit)."""
    room = 0
    for shape, _ in shapes:
        whole, _, fraction = shape.lstrip("-").partition(".")
        room += (9 * 10 ** (len(whole) - 1) if len(whole) > 1 else 10) * 10 ** len(fraction)
    return room


def _replaceable(col: PiiColumn, s: pd.Series, notes: list[str]) -> PiiColumn:
    """The column with what its replacement needs: the shapes of an ID, or the dtype and digit
    shapes of numbers; other non-text columns, and numbers whose shapes hold too few others
    (`ROOM_PER_VALUE`), are dropped from the release with a note."""
    import pandas as pd

    if is_text(s):
        return replace(col, shapes=_shapes(s)) if col.kind == "id" else col
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        shapes = tuple(x for x in _shapes(s) if _NUMBER_SHAPE.match(x[0]))
        if number_room(shapes) >= ROOM_PER_VALUE * s.nunique():
            return replace(col, shapes=shapes, dtype=str(s.dtype))
        why = f"its {s.nunique()} distinct numbers leave too few others of the same shape to replace them with"
    else:
        why = f"its {s.dtype} values cannot be replaced by values of the same type"
    notes.append(f"column '{col.column}' ({col.kind}) is dropped from the release: {why}")
    return replace(col, dropped=True)


def plan_for_set(
    tables: Mapping[str, pd.DataFrame], cfg: DatasetConfig, lay: Layout, where: str = "fit.pii"
) -> PiiPlan:
    """The PII plan of a table set: that of its main table.

    Tables with keys get no replacement plan yet (config refuses `fit.pii.columns` there); the
    `pii_replay` gate still checks every table of their releases.
    """
    if lay.relational:
        return PiiPlan.from_dict(None)
    return plan_for(tables[lay.main], cfg.fit.pii, cfg.target, where=where)
