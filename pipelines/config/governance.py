"""The optional `governance:` block: the answers about a dataset only people can give.

The data card (pipelines/datacard.py) takes every figure from the run records; these free-text
fields fill its questions of purpose, origin, assumptions, uses and maintenance. A field left
null is printed "not declared" on the card and listed by `synthgate audit <dataset>`.
"""

from __future__ import annotations

from pydantic import Field

from pipelines.config.base import StrictModel


class GovernanceConfig(StrictModel):
    """Free-text answers for the data card (EU AI Act Art. 10(2), Datasheets for Datasets)."""

    purpose: str | None = Field(
        default=None, description="why the synthetic dataset is made and released (the card's motivation)"
    )
    collection: str | None = Field(
        default=None, description="who collected the real data, how and when (its origin, Art. 10(2)(b))"
    )
    personal_data: bool | None = Field(
        default=None, description="whether the real data is about identifiable people (GDPR personal data)"
    )
    original_purpose: str | None = Field(
        default=None,
        description="for personal data: the purpose it was originally collected for (Art. 10(2)(b)); "
        "not asked when personal_data is false",
    )
    assumptions: str | None = Field(
        default=None, description="what the data is assumed to measure and represent (Art. 10(2)(d))"
    )
    intended_uses: str | None = Field(default=None, description="what the released data may be used for")
    out_of_scope_uses: str | None = Field(
        default=None, description="uses the data is not fit for (e.g. decisions about individuals)"
    )
    maintainer: str | None = Field(default=None, description="who maintains the dataset and how to reach them")

    def undeclared(self) -> list[str]:
        """The fields a complete card needs that are left null (original_purpose only for personal data)."""
        skip = {"original_purpose"} if self.personal_data is False else set()
        return [k for k in type(self).model_fields if getattr(self, k) is None and k not in skip]
