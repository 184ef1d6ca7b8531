"""Shared pieces of the config models: section names, the name rule, the strict base model."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

SECTIONS = ("ingest", "fit", "generate", "blend", "gates")
"""Sections every dataset block must carry (DVC lists them as stage params)."""

DATASET_REQUIRED = ("source", "target", *SECTIONS)
"""Keys every dataset block must carry: DVC lists them as stage params, so each must be present
(`seed` may be left out: it is then `defaults.seed`)."""

TABLE_NAME_PATTERN = re.compile(r"\A\w(?:[\w -]{0,61}\w)?\Z")
r"""Table names of a relational dataset: letters (either case), digits, `_`, `-` and spaces, starting
and ending with a letter, digit or `_` (`People`, `Pay Grades`, `order-items`). They are used as they
are for the table's file (`<table>.parquet`), MLflow keys and GX suite names, all of which take them;
a `.` is refused (it separates table and column in `table.column`)."""

NAME_PATTERN = re.compile(r"\A[a-z][a-z0-9_]{0,62}\Z")
r"""Dataset names (`\Z`: a trailing newline is not allowed, as `$` would)."""


class StrictModel(BaseModel):
    """Unknown keys are errors, values are never coerced (`rows: true` or `quality_min: "0.5"` are
    refused, not read as 1 and 0.5; an integer is a valid float); a validated config never changes.

    Lists (YAML/JSON arrays) are accepted for tuple fields: mark those `Field(strict=False)`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
