"""`fit.max_rows`: the rows of the train split an engine is fitted on when the split is bigger.

The main table's train split is cut to `max_rows` rows by a seeded draw (seed: the dataset seed
^ `SEED_SALT`, so the same train split and seed give the same rows on every run):

- a class target (`metrics.is_classification`, as the utility gate decides): stratified, every
  class keeps one row and the remaining rows are shared in proportion to each class's other rows
  (largest remainder), so class shares are kept and no class vanishes;
- sequence datasets: whole entities, in a seeded order, until the next one would pass `max_rows`
  (an engine never sees part of a sequence);
- otherwise uniform.

The rows keep their train order. The record names them by `positions_sha256`: the sha256 of their
0-based positions in the train split's main table, one decimal number and a newline each, so the
subsample can be rebuilt and checked from the train file alone. Relational datasets are refused
at config load (a subsample of parent rows would have to carry their children, and reference
tables whole: not done). The gates keep comparing with the whole train split and the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError
from pipelines.io import sha256_bytes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.tableset import Layout, Tables

SEED_SALT = 0xF17_0505
"""The subsample is drawn with seed `cfg.seed ^ SEED_SALT` (not the split's own seed)."""

ALL_ROWS = "all rows"


@dataclass(frozen=True)
class FitRows:
    """Which rows of the train split's main table an engine is fitted on, and how they were chosen."""

    positions: np.ndarray
    """Sorted 0-based positions in the train split's main table."""
    train_rows: int
    max_rows: int | None
    method: str
    """`all rows`, `stratified by <target>`, `uniform` or `whole sequences by <key>`."""

    @property
    def subsampled(self) -> bool:
        """Whether the engine sees fewer rows than the train split has."""
        return len(self.positions) < self.train_rows

    def record(self) -> dict[str, Any]:
        """The fit record's (and manifest's) `subsample` block."""
        return {
            "fit_rows": len(self.positions),
            "train_rows": self.train_rows,
            "max_rows": self.max_rows,
            "method": self.method,
            "positions_sha256": positions_sha256(self.positions),
        }


def positions_sha256(positions: np.ndarray) -> str:
    """sha256 of the positions as decimal lines (`0\\n1\\n...`)."""
    return sha256_bytes("".join(f"{int(p)}\n" for p in positions).encode())


def choose(main: pd.DataFrame, cfg: DatasetConfig, lay: Layout, max_rows: int | None) -> FitRows:
    """The rows of `main` (the train split's main table) an engine with `max_rows` is fitted on."""
    import numpy as np

    from pipelines.metrics import is_classification

    n = len(main)
    if max_rows is None or n <= max_rows:
        return FitRows(np.arange(n), n, max_rows, ALL_ROWS)
    rng = np.random.default_rng(cfg.seed ^ SEED_SALT)
    where = f"datasets.{cfg.name}.fit.max_rows"
    if lay.sequence_key:
        positions = _whole_sequences(main[lay.sequence_key], max_rows, rng, where)
        method = f"whole sequences by {lay.sequence_key}"
    elif cfg.target and cfg.target in main.columns and is_classification(main[cfg.target]):
        positions = _stratified(main[cfg.target], max_rows, rng, where)
        method = f"stratified by {cfg.target}"
    else:
        positions = np.sort(rng.choice(n, size=max_rows, replace=False))
        method = "uniform"
    return FitRows(positions, n, max_rows, method)


def _stratified(target: pd.Series, max_rows: int, rng: np.random.Generator, where: str) -> np.ndarray:
    """One row of every class, the rest shared by each class's other rows (largest remainder)."""
    import numpy as np

    from pipelines.rebalance import allocate

    labels = target.astype(str).to_numpy()  # a missing value is a class of its own ("nan", "None")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    k, n = len(classes), len(labels)
    if k > max_rows:
        raise ConfigError(
            [
                f"{where}: {max_rows:,} rows cannot keep one row of each of the {k:,} classes of the target "
                f"'{target.name}'; raise it to at least {k:,}, or set it to null (every train row)"
            ]
        )
    extra = allocate(max_rows - k, {i: (int(c) - 1) / (n - k) for i, c in enumerate(counts)})
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    chosen = [rng.permutation(rows)[: 1 + extra[i]] for i, rows in enumerate(members)]
    return np.sort(np.concatenate(chosen))


def _whole_sequences(keys: pd.Series, max_rows: int, rng: np.random.Generator, where: str) -> np.ndarray:
    """Whole entities in a seeded order while their rows fit within `max_rows`."""
    import numpy as np

    present = keys.notna().to_numpy()
    labels = keys.astype(str).to_numpy()
    entities, lengths = np.unique(labels[present], return_counts=True)
    order = rng.permutation(len(entities))
    taken = order[np.cumsum(lengths[order]) <= max_rows]
    if not len(taken):
        first = order[0]
        raise ConfigError(
            [
                f"{where}: {max_rows:,} rows hold no whole sequence (the first one drawn, entity "
                f"'{entities[first]}', has {int(lengths[first]):,} rows); raise it, or set it to null"
            ]
        )
    return np.flatnonzero(present & np.isin(labels, entities[taken]))


def apply(tables: Tables, rows: FitRows, lay: Layout) -> Tables:
    """The table set with its main table cut to `rows` (the same set when nothing is cut)."""
    if not rows.subsampled:
        return tables
    return {**tables, lay.main: tables[lay.main].iloc[rows.positions].reset_index(drop=True)}
