"""Shared pieces of the config models: section names, the name rule, the strict base model."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

SECTIONS = ("ingest", "fit", "generate", "blend", "gates")
"""Sections every dataset block must carry (DVC lists them as stage params)."""

DATASET_REQUIRED = ("source", "target", "seed", *SECTIONS)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class StrictModel(BaseModel):
    """Unknown keys are errors; a validated config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
