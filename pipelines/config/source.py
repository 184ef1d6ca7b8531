"""`source:` of a dataset block: where the real data comes from (one table, or several with keys)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from pipelines.config.base import TABLE_NAME_PATTERN, StrictModel
from pipelines.errors import ConfigError


class TableSource(StrictModel):
    """One table of a relational dataset: its file (inside `source.path`) and primary key."""

    file: str = Field(description="file name inside the `source.path` folder (csv or parquet, per `format`)")
    primary_key: str | None = Field(default=None, description="the column that identifies a row")


class Relationship(StrictModel):
    """A foreign key: `child.child_key` refers to `parent.parent_key` (the parent's primary key)."""

    parent: str = Field(description="the table referred to (a name in `source.tables`)")
    child: str = Field(description="the table holding the foreign key (a name in `source.tables`)")
    parent_key: str = Field(description="the parent's primary key column")
    child_key: str = Field(description="the child's column that holds the parent's key")

    @property
    def label(self) -> str:
        """`child.child_key -> parent.parent_key`."""
        return f"{self.child}.{self.child_key} -> {self.parent}.{self.parent_key}"


class SequenceConfig(StrictModel):
    """An events table holding one ordered sequence of rows per entity (e.g. flights per tail number)."""

    key: str = Field(description="the column naming the entity each row belongs to (one sequence per value)")
    index: str = Field(description="the column that orders the rows of a sequence (a date, time or number)")
    context_columns: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="columns that describe the entity, constant within a sequence (e.g. the airline of a plane)",
    )

    @model_validator(mode="after")
    def _distinct_columns(self) -> SequenceConfig:
        named = [self.key, self.index, *self.context_columns]
        twice = sorted({c for c in named if named.count(c) > 1})
        if twice:
            raise ValueError(f"columns {twice} are named twice (key, index and context_columns must differ)")
        return self


def _table_name_problems(names: list[str]) -> list[str]:
    """Table names must be usable as file names and keys as they are (`TABLE_NAME_PATTERN`), and
    differ in more than case (their files would collide on a case-insensitive disk)."""
    problems = [
        f"table name {t!r}: use letters, digits, spaces, '-' and '_', starting and ending with a letter or digit "
        "(at most 63 characters; a '.' would read as `table.column`); the file may have any name (`file:`)"
        for t in names
        if not TABLE_NAME_PATTERN.match(t)
    ]
    seen: dict[str, str] = {}
    for t in names:
        other = seen.setdefault(t.casefold(), t)
        if other != t:
            problems.append(f"table names {other!r} and {t!r} differ only in case: rename one (their files collide)")
    return problems


class SourceConfig(StrictModel):
    """Where the real data comes from."""

    path: str = Field(description="CSV/parquet file, or for format=sql the file holding the query")
    format: Literal["csv", "parquet", "sql"] = "csv"
    url: str | None = Field(default=None, description="SQLAlchemy URL for format=sql; `env:VAR` reads it from VAR")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    tables: dict[str, TableSource] = Field(
        default_factory=dict, description="relational datasets: table name -> file and primary key"
    )
    relationships: tuple[Relationship, ...] = Field(
        default=(), strict=False, description="relational datasets: foreign keys between the tables"
    )
    main_table: str | None = Field(
        default=None, description="relational datasets: the fact table (split, privacy and utility gates)"
    )
    sequence: SequenceConfig | None = Field(
        default=None,
        description="sequence datasets: the entity key and order column of an events table, e.g. "
        "{key: tailnum, index: time_hour}; generated as whole sequences by a sequence engine (par, tabular_argn)",
    )

    @model_validator(mode="after")
    def _sql_needs_url(self) -> SourceConfig:
        if self.format == "sql" and not self.url:
            raise ValueError("format 'sql' needs `url` (a SQLAlchemy URL or env:VAR)")
        if self.format != "sql" and self.url:
            raise ValueError("`url` is only used with format 'sql'")
        return self

    @model_validator(mode="after")
    def _relational_schema(self) -> SourceConfig:
        if self.sequence is not None and self.tables:
            raise ValueError("`sequence` describes one events table: it cannot be combined with `tables`")
        if not self.tables:
            if self.relationships or self.main_table:
                raise ValueError("`relationships` and `main_table` need `tables` (a relational dataset)")
            return self
        problems = []
        if self.format == "sql":
            problems.append("relational datasets read csv or parquet files (format 'sql' is not supported)")
        problems += _table_name_problems(list(self.tables))
        if self.main_table not in self.tables:
            problems.append(f"main_table {self.main_table!r} must name one of the tables {sorted(self.tables)}")
        for rel in self.relationships:
            for role, table in (("parent", rel.parent), ("child", rel.child)):
                if table not in self.tables:
                    problems.append(
                        f"relationship {rel.label}: {role} table '{table}' is not in `tables` ({sorted(self.tables)})"
                    )
            parent = self.tables.get(rel.parent)
            if parent is not None and parent.primary_key != rel.parent_key:
                problems.append(
                    f"relationship {rel.label}: '{rel.parent_key}' must be the primary key of "
                    f"'{rel.parent}' (declared: {parent.primary_key!r})"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def resolved_url(self) -> str:
        """The SQLAlchemy URL, reading `env:VAR` from the environment."""
        if self.url is None:
            raise ConfigError(["source.url: not set"])
        if self.url.startswith("env:"):
            var = self.url[4:]
            value = os.environ.get(var)
            if not value:
                raise ConfigError([f"source.url: environment variable {var} is not set"])
            return value
        return self.url
