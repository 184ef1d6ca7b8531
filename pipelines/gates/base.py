"""What every gate shares: the typed result, the context it reads and the `Gate` protocol.

A gate compares one figure with one threshold. Its threshold is the `GatesConfig` field named by
`param` (params.yaml `gates:`), or, where no tolerance makes sense, a named module constant
(`param` is then None). Gates of one family that share a computation (quality and diagnostic
from one SDMetrics run) compute it once per context through `GateContext.memo`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pipelines.contracts import PROVENANCE
from pipelines.errors import InvalidInputError
from pipelines.records.validation import GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.tableset import Layout, Tables

Figures = dict[str, Any]
"""Figures behind a gate, merged into `validation.json`'s `figures`."""

T = TypeVar("T")


@dataclass
class GateContext:
    """Everything a gate may read about one release: tables by name, records, config.

    `blended`, `train` and `holdout` are the table sets as read (every column; `blended` with
    `_provenance`); `synthetic` holds the synthetic rows of each blended table without
    `_provenance`; `learned` names, per table, the columns the generator learned (PII left out).
    """

    cfg: DatasetConfig
    layout: Layout
    blended: Tables
    train: Tables
    holdout: Tables
    metadata: Any
    suite: dict[str, Any]
    fit_record: dict[str, Any] = field(default_factory=dict)
    blend_record: dict[str, Any] = field(default_factory=dict)
    synthetic: Tables = field(init=False, repr=False)
    learned: dict[str, list[str]] = field(init=False)
    _memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        from pipelines.pii import PiiPlan

        self.synthetic = {
            t: df[df[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE]) for t, df in self.blended.items()
        }
        hidden = set(PiiPlan.from_dict(self.fit_record.get("pii")).names)  # never learned (fit left them out)
        self.learned = {t: [c for c in df.columns if c not in hidden] for t, df in self.train.items()}

    @property
    def main(self) -> str:
        """The main table: split into train/holdout, and the one privacy and utility compare."""
        return self.layout.main

    @property
    def has_synthetic_rows(self) -> bool:
        """Whether every table has synthetic rows to measure."""
        return all(len(df) for df in self.synthetic.values())

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A computation several gates share, run once per context."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def threshold(self, gate: Gate) -> float:
        """The gate's threshold: its `param` field of the dataset's `gates:` settings."""
        if gate.param is None:
            raise ValueError(f"gate {gate.name!r} has a fixed threshold (no param)")
        return float(getattr(self.cfg.gates, gate.param))

    def learned_only(self, tables: Mapping[str, pd.DataFrame]) -> Tables:
        """Each table restricted to its learned columns (in train order)."""
        return {t: df[[c for c in self.learned[t] if c in df.columns]] for t, df in tables.items()}

    def attributes(self) -> list[str]:
        """The main table's learned columns minus its keys: what utility compares."""
        from pipelines.keys import key_columns

        keys = set(key_columns(self.cfg.source, self.main))
        return [c for c in self.learned[self.main] if c not in keys]

    def row_counts(self) -> dict[str, int]:
        """The `rows` figure: blended and synthetic rows of a single table, synthetic rows per table of a set."""
        if self.layout.single:
            return {"blended": len(self.blended[self.main]), "synthetic": len(self.synthetic[self.main])}
        return {t: len(df) for t, df in self.synthetic.items()}


def type_mismatch(
    ctx: GateContext, gate_name: str, columns: Collection[str] | None = None, cause: Exception | None = None
) -> InvalidInputError | None:
    """A typed error naming the gate and every column (of `columns`, default all) whose values in
    the synthetic rows are of another kind than in train (text where train has numbers, ...), or None.

    Integers and floats count as one kind; a column with no synthetic value is not compared.
    """
    from pipelines.contracts import type_family

    kinds = {"integer": "numbers", "float": "numbers", "string": "text", "boolean": "booleans", "datetime": "dates"}
    changed = []
    for table, real in ctx.train.items():
        synthetic = ctx.synthetic.get(table)
        for col in real.columns:
            if synthetic is None or col not in synthetic.columns or (columns is not None and col not in columns):
                continue
            was, now = kinds[type_family(real[col].dtype)], kinds[type_family(synthetic[col].dtype)]
            if was != now and synthetic[col].notna().any():
                named = col if ctx.layout.single else f"{table}.{col}"
                changed.append(f"gate '{gate_name}': column '{named}' holds {was} in train but {now} in the release")
    if not changed:
        return None
    raised = f"The gate raised {type(cause).__name__}: {cause}. " if cause else ""
    return InvalidInputError(
        f"release of '{ctx.cfg.name}'",
        changed,
        hint=f"{raised}A column changed type between the real data and the release (e.g. numbers replaced by "
        "text): check the PII plan (fit.pii) and the metadata, then re-run fit and generate.",
    )


class Gate(Protocol):
    """One release check. Register it (`pipelines.gates.registry.register`) and validate runs it."""

    @property
    def name(self) -> str:
        """The gate's name in validation.json, the manifest and MLflow (`gate.<name>`)."""
        ...

    @property
    def param(self) -> str | None:
        """The `GatesConfig` field holding the threshold, or None for a fixed (named constant) one."""
        ...

    def applies(self, ctx: GateContext) -> bool:
        """Whether the gate means anything for this release (e.g. key gates need keys)."""
        ...

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """The verdict and the figures behind it."""
        ...


@dataclass(frozen=True)
class FamilyGate:
    """A gate whose result comes from a computation shared with its family and run once.

    `family(ctx)` returns every result of the family by name and the family's figures.
    """

    name: str
    param: str | None
    family: Callable[[GateContext], tuple[dict[str, GateResult], Figures]]
    when: Callable[[GateContext], bool]

    def applies(self, ctx: GateContext) -> bool:
        """Whether the family applies to this release."""
        return self.when(ctx)

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """This gate's result and the family's figures."""
        results, figures = ctx.memo(self.family, lambda: self.family(ctx))
        return results[self.name], figures


__all__ = ["FamilyGate", "Figures", "Gate", "GateContext", "GateResult", "gate", "type_mismatch"]
