"""PII in SDV metadata: the plan's columns marked, and SDV's own name-based guesses kept off numbers.

SDV's detection guesses semantic types from column names alone (`state` is an administrative unit,
`zipcode` a postcode, `city` a city) and SDV then samples such columns as Faker text. For a column
of numbers (a state *code*) that changes its type, and the gates comparing it with the real column
fail. Synthgate's plan (`pipelines.pii.detect`) decides what is PII: a column of numbers it does
not protect gets the sdtype SDV gives plain numbers, and a committed metadata file that still
gives one a semantic type is refused at fit, naming the column.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

from pipelines.pii.detect import PiiPlan

if TYPE_CHECKING:
    import pandas as pd

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

PLAIN_SDTYPES = frozenset({"numerical", "categorical", "ordinal", "boolean", "datetime", "id"})
"""SDV sdtypes that are learned from the data; any other is sampled as Faker values."""


def _numbers(frame: pd.DataFrame, plan: PiiPlan) -> list[str]:
    """The columns of numbers the plan does not protect."""
    import pandas as pd

    return [
        c
        for c in frame.columns
        if c not in plan.names and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _plain(s: pd.Series) -> dict[str, Any]:
    """What SDV detects for these values under a neutral name (numerical when it would call them a key)."""
    import pandas as pd
    from sdv.metadata import Metadata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = Metadata.detect_from_dataframes({"t": pd.DataFrame({"value": s.to_numpy()})})
    spec = dict(found.tables["t"].columns["value"])
    return spec if spec["sdtype"] in ("numerical", "categorical", "ordinal") else {"sdtype": "numerical"}


def mark_metadata(
    metadata: dict[str, Any], table: str, plan: PiiPlan, frame: pd.DataFrame | None = None
) -> dict[str, Any]:
    """SDV metadata (as a dict) with the plan's columns marked PII and stripped of real values and,
    given the table's `frame`, SDV's semantic guesses on columns of numbers replaced by plain sdtypes.

    SDV's detection may describe an identifier column as categorical with every real value in
    `range_values`, or make it the primary key: neither may reach a committed file.
    """
    out = copy.deepcopy(metadata)
    tmeta = out["tables"][table]
    for col in plan.columns:
        tmeta["columns"][col.column] = {"sdtype": _SDTYPES[col.kind], "pii": True}
        if tmeta.get("primary_key") == col.column:
            del tmeta["primary_key"]
    for col in _numbers(frame, plan) if frame is not None else ():
        if tmeta["columns"].get(col, {}).get("sdtype", "numerical") not in PLAIN_SDTYPES:
            tmeta["columns"][col] = _plain(frame[col])
    return out


def metadata_problems(metadata: dict[str, Any], table: str, frame: pd.DataFrame, plan: PiiPlan) -> list[str]:
    """Columns of numbers (not protected by the plan) to which the metadata gives a semantic sdtype."""
    columns = metadata["tables"][table]["columns"]
    return [
        f"column '{c}' holds numbers but has sdtype '{columns[c]['sdtype']}', which SDV samples as Faker text; "
        "set its sdtype to numerical or categorical"
        for c in _numbers(frame, plan)
        if c in columns and columns[c].get("sdtype") not in PLAIN_SDTYPES
    ]
