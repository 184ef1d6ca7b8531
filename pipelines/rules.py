"""Business rules (`fit.constraints` in params.yaml): the validated models of each kind of rule.

pipelines/constraints.py turns them into SDV constraints (at fit), GX expectations (in the
release suite) and the `constraints` gate's adherence figures; pipelines/config/ validates
them as part of `FitConfig`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str | None = Field(default=None, description="relational datasets: the table of the rule")

    def column_names(self) -> tuple[str, ...]:
        """Every column the rule names."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """A short, unique, human-readable name (gate figures and GX meta use it)."""
        raise NotImplementedError


class _ColumnRule(_Rule):
    """A rule on the values of one column."""

    column: str

    def column_names(self) -> tuple[str, ...]:
        return (self.column,)


class RangeRule(_ColumnRule):
    """`min <= column <= max` (either bound may be omitted)."""

    type: Literal["range"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"range rule on {self.column!r}: min {self.min} must be below max {self.max}")
        return self

    @property
    def label(self) -> str:
        lo = "" if self.min is None else f"{self.min:g}<="
        hi = "" if self.max is None else f"<={self.max:g}"
        return f"range:{lo}{self.column}{hi}"


class PositiveRule(_ColumnRule):
    """`column > 0`."""

    type: Literal["positive"]

    @property
    def label(self) -> str:
        return f"positive:{self.column}"


class InequalityRule(_Rule):
    """`low <= high` (`low < high` when strict), row by row."""

    type: Literal["inequality"]
    low: str
    high: str
    strict: bool = False

    @model_validator(mode="after")
    def _two_columns(self) -> InequalityRule:
        if self.low == self.high:
            raise ValueError(f"inequality rule compares {self.low!r} with itself")
        return self

    def column_names(self) -> tuple[str, ...]:
        return (self.low, self.high)

    @property
    def label(self) -> str:
        return f"inequality:{self.low}{'<' if self.strict else '<='}{self.high}"


class FixedCombinationsRule(_Rule):
    """Only the combinations of these columns seen in the real data may appear."""

    type: Literal["fixed_combinations"]
    columns: tuple[str, ...] = Field(min_length=2)

    def column_names(self) -> tuple[str, ...]:
        return self.columns

    @property
    def label(self) -> str:
        return f"fixed_combinations:{'+'.join(self.columns)}"


class IncrementsRule(_ColumnRule):
    """Every value of `column` is a multiple of `step` (a whole number)."""

    type: Literal["increments"]
    step: int = Field(ge=1)

    @property
    def label(self) -> str:
        return f"increments:{self.column}%{self.step}"


ConstraintRule = Annotated[
    RangeRule | PositiveRule | InequalityRule | FixedCombinationsRule | IncrementsRule,
    Field(discriminator="type"),
]
"""One business rule of `fit.constraints` (see pipelines/constraints.py)."""
