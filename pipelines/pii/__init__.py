"""PII protection: find identifier columns, keep them away from the synthesizer, replace them.

A column is PII when `fit.pii.columns` declares it, or when detection (`fit.pii.detect`) finds it
by its *name* (``email``, ``phone``, ``first_name``, ``ssn``…) confirmed by its *values*, or by its
values alone (e-mail addresses, US SSNs, phone numbers, Luhn-valid card numbers, IBANs, IPv4).
Numbers confirm only phone, SSN and card numbers (a state code is not an address), and a protected
column of numbers is replaced by numbers (`detect.NUMERIC_KINDS`); SDV's own name-based guesses
are kept off columns of numbers (`sdtypes`).
PII columns are never learned: `fit` removes them before fitting. With policy ``replace``,
`generate` fills them with Faker values in the configured locale (and `blend` pseudonymises the
real rows it adds, one fake per real value, so joins and repeats stay consistent within a
release); no replacement is ever equal to a real value. With policy ``drop`` they are left out of
the release. `validate` runs the "PII replay" gate: no real PII value may appear in the release.

Pure functions on DataFrames; Faker and pandas are imported inside them.
"""

from pipelines.pii.detect import (
    PiiColumn,
    PiiPlan,
    detect_column,
    normalise_shape,
    normalise_value,
    plan_for,
    plan_for_set,
)
from pipelines.pii.replace import apply_plan, column_seed, fake_values, pseudonymise
from pipelines.pii.replay import gate_columns, mask, real_pii_values, real_values, replay
from pipelines.pii.sdtypes import mark_metadata, metadata_problems

__all__ = [
    "PiiColumn",
    "PiiPlan",
    "apply_plan",
    "column_seed",
    "detect_column",
    "fake_values",
    "gate_columns",
    "mark_metadata",
    "mask",
    "metadata_problems",
    "normalise_shape",
    "normalise_value",
    "plan_for",
    "plan_for_set",
    "pseudonymise",
    "real_pii_values",
    "real_values",
    "replay",
]
