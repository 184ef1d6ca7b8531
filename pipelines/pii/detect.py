"""PII detection: declared columns, or found by name confirmed by values, or by values alone."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
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


def _as_text(values: Iterable[Any]) -> list[str]:
    out = []
    for v in values:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        out.append(str(v).strip())
    return out


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
    norm = _normalise_name(name)
    for kind, pattern in _NAME_RULES:
        if not pattern.search(norm):
            continue
        if kind == "id":
            unique = s.nunique(dropna=True) / max(1, s.notna().sum())
            if is_text(s) and unique >= 0.5:
                return kind, f"name matches '{kind}', {unique:.0%} distinct values"
            continue
        share = _share(kind, values)
        if share >= NAME_CONFIRM_SHARE:
            return kind, f"name matches '{kind}', {share:.0%} of values look like one"
    if not is_text(s):
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
    shapes = s.dropna().map(lambda v: normalise_shape(str(v).translate(table)))
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
    ordered = [found[c] for c in df.columns if c in found]
    columns = tuple(
        PiiColumn(c.column, c.kind, c.source, c.evidence, _shapes(df[c.column]) if c.kind == "id" else ())
        for c in ordered
    )
    if columns and len(columns) == len(df.columns):
        raise InvalidInputError(where, ["every column is PII: nothing is left to learn"])
    return PiiPlan(cfg.policy, cfg.locale, cfg.detect, columns, tuple(cfg.ignore), tuple(notes))


_SDTYPES = {
    "name": "name",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone_number": "phone_number",
    "address": "address",
    "street_address": "street_address",
    "ssn": "ssn",
    "credit_card": "credit_card_number",
    "iban": "iban",
    "ipv4": "ipv4_address",
    "id": "unknown",
}


def mark_metadata(metadata: dict[str, Any], table: str, plan: PiiPlan) -> dict[str, Any]:
    """SDV metadata (as a dict) with the plan's columns marked PII and stripped of real values.

    SDV's detection may describe an identifier column as categorical with every real value in
    `range_values`, or make it the primary key: neither may reach a committed file.
    """
    import copy

    out = copy.deepcopy(metadata)
    tmeta = out["tables"][table]
    for col in plan.columns:
        tmeta["columns"][col.column] = {"sdtype": _SDTYPES[col.kind], "pii": True}
        if tmeta.get("primary_key") == col.column:
            del tmeta["primary_key"]
    return out


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
