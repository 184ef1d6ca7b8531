"""The engine interface: every generator (SDV's, or any other) is an adapter behind it.

An engine fits a table set, samples one shard of it deterministically from a seed, saves and
loads its model (the digest is checked before anything is unpickled) and describes itself:
name, family, licence and what it supports. Stages only ever talk to this interface.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.io import atomic_path, sha256_file, verify_sha256

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.config.sections import PrivacyConfig
    from pipelines.tableset import Layout, Tables


@dataclass(frozen=True)
class EngineInfo:
    """What an engine is and what it can do (`synthgate` checks a dataset's config against it)."""

    name: str
    family: str
    licence: str
    """SPDX identifier of the library that does the fitting (e.g. BUSL-1.1 for SDV)."""
    params: frozenset[str] = frozenset()
    """Constructor arguments accepted in `fit.params` (checked without importing the library)."""
    single_table: bool = True
    multi_table: bool = False
    sequences: bool = False
    """Fits an events table as whole sequences per entity (`source.sequence`)."""
    conditions: bool = False
    constraints: bool = False
    dp: bool = False
    environment: str | None = None
    """The engine's own locked environment (engines/envs/<name>/); None: the platform's virtualenv."""
    multi_table_limits: str | None = None
    """Which table sets a multi-table engine fits, when not every one (e.g. two tables, one key)."""
    forkable: bool = False
    """Samples in a forked process safely: its sampling runs no OpenMP code (torch's OpenMP pool hangs a
    forked child once the parent has used it). generate's pool forks its workers for such an engine
    (they share the model the parent loaded) and spawns fresh ones, which load it, for the others."""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (fit record, manifest, MLflow)."""
        return {
            "name": self.name,
            "family": self.family,
            "licence": self.licence,
            "runs_in": f"own environment {self.environment}" if self.environment else "platform",
            "supports": {
                "single_table": self.single_table,
                "multi_table": self.multi_table,
                "sequences": self.sequences,
                "conditions": self.conditions,
                "constraints": self.constraints,
                "dp": self.dp,
            },
            **({"multi_table_limits": self.multi_table_limits} if self.multi_table_limits else {}),
        }


@dataclass(frozen=True)
class SampleRequest:
    """One shard to sample: how many rows (of the main table), from which seed, on which conditions."""

    rows: int
    seed: int
    main: str
    train_rows: int
    """Rows of the main table the model was fitted on (multi-table engines sample at a scale)."""
    conditions: dict[str, Any] = field(default_factory=dict)
    first_key: int = 0
    """Sequence datasets: the position of this shard's first entity key (keys never repeat across shards)."""


class Engine:
    """Base class of the adapters: subclasses implement `fit` and `sample`.

    The default `save`/`load` pickle the fitted model with cloudpickle; `load` refuses a file
    whose sha256 is not the one the fit record holds.
    """

    info: EngineInfo

    def param_problems(self, params: dict[str, Any]) -> list[str]:
        """Values in `fit.params` the engine would reject (config validation; no library import)."""
        return []

    def privacy_problems(self, params: dict[str, Any], privacy: PrivacyConfig | None) -> list[str]:
        """Where `fit.params` contradicts `fit.privacy` or voids a DP guarantee (engines with DP)."""
        return []

    def privacy_spent(self, model: Any) -> dict[str, Any] | None:
        """The epsilon and delta the fitted model reached, as the engine reports them; None: no DP."""
        return None

    def privacy_settings(self, model: Any) -> dict[str, Any] | None:
        """The DP mechanism's settings the model was trained with (e.g. DP-SGD's noise multiplier,
        batch size, epochs); None: no DP, or none recorded."""
        return None

    def relational_problems(self, cfg: DatasetConfig) -> list[str]:
        """Why a multi-table engine cannot fit this relational dataset's shape (config validation)."""
        return []

    def env_state(self) -> dict[str, Any] | None:
        """Its own environment (lock, path, built or not), or None when it runs in the platform's."""
        return None

    def setup(self) -> float | None:
        """Build its own environment if it has one and it is missing or stale: the seconds it took
        (0: already built), or None when the engine runs in the platform's virtualenv."""
        return None

    def fit(self, train: Tables, metadata: Any, cfg: DatasetConfig, lay: Layout) -> Any:
        """Fit on the train tables (seeded from `cfg.seed`); return the fitted model."""
        raise NotImplementedError

    def sample(self, model: Any, request: SampleRequest) -> Tables:
        """Sample one shard; the same model and request always give the same rows."""
        raise NotImplementedError

    def save(self, model: Any, path: Path) -> str:
        """Write the model atomically; return its sha256."""
        import cloudpickle

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            cloudpickle.dump(model, f)
        return sha256_file(path)

    def load(self, path: Path, expected_sha256: str, shown: str) -> Any:
        """Unpickle the model only if its digest matches the fit record."""
        import cloudpickle

        verify_model(path, expected_sha256, shown)
        with open(path, "rb") as f:
            return cloudpickle.load(f)


def verify_model(path: Path, expected_sha256: str, shown: str) -> None:
    """IntegrityError unless the model file has the sha256 the fit record holds."""
    verify_sha256(path, expected_sha256, shown, "fit", "refusing to unpickle. Re-run `fit`.")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (neural fits are only reproducible this way)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch ships with sdv
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
