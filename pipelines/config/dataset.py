"""One dataset's effective settings, and the whole params file."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import Field, model_validator

from pipelines.config.base import StrictModel
from pipelines.config.gates import GatesConfig
from pipelines.config.governance import GovernanceConfig
from pipelines.config.sections import BlendConfig, FitConfig, GenerateConfig, IngestConfig
from pipelines.config.source import SourceConfig
from pipelines.errors import ConfigError
from pipelines.tableset import layout


class DatasetConfig(StrictModel):
    """One dataset's effective settings (its block merged over `defaults`)."""

    name: str
    source: SourceConfig
    target: str | None = None
    sensitive: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="columns of the main table whose groups the bias gates compare (share and target rate, "
        "synthetic vs train), e.g. [black]",
    )
    seed: int = Field(
        ge=0,
        lt=2**32,
        description="seed of the split, the fit and every shard's sampling; a block without `seed` takes "
        "`defaults.seed` (42 in the shipped params.yaml)",
    )
    default: bool = True
    description: str = ""
    schedule: str | None = None
    tags: tuple[str, ...] = Field(default=(), strict=False)
    ingest: IngestConfig
    fit: FitConfig
    generate: GenerateConfig
    blend: BlendConfig
    gates: GatesConfig
    governance: GovernanceConfig = Field(
        default_factory=GovernanceConfig,
        description="free-text answers for the data card (purpose, origin, assumptions, uses, maintainer); "
        "optional: what is missing reads 'not declared' and `synthgate audit` lists it",
    )

    @model_validator(mode="after")
    def _cross_section_rules(self) -> DatasetConfig:
        problems = []
        pii = set(self.fit.pii.columns)
        if self.target and self.target in pii:
            problems.append(
                f"fit.pii.columns: '{self.target}' is the target; PII is never learned, so it cannot be "
                "predicted: choose another target or remove it from fit.pii.columns"
            )
        for col in sorted(set(self.generate.conditions) & pii):
            problems.append(f"generate.conditions: '{col}' is a PII column (never learned, cannot be a condition)")
        problems += self._sensitive_problems()
        problems += self._engine_problems()
        problems += self._privacy_problems()
        if layout(self).relational:
            problems += self._relational_problems()
        if self.blend.strategy == "rebalance":
            column = self.blend.column or self.target
            if not column:
                problems.append("blend.column: strategy 'rebalance' needs `column` (or a dataset target)")
            elif column in pii:
                problems.append(f"blend.column: '{column}' is a PII column and cannot be rebalanced")
            elif column in self.generate.conditions:
                problems.append(f"blend.column: '{column}' is also fixed by generate.conditions; use one or the other")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _sensitive_problems(self) -> list[str]:
        """A sensitive column must be learned and must not be the target itself."""
        main = layout(self).main
        dropped = {c.removeprefix(f"{main}.") for c in self.ingest.drop_columns}
        twice = sorted({c for c in self.sensitive if self.sensitive.count(c) > 1})
        problems = [f"sensitive: '{c}' is listed twice" for c in twice]
        for col in dict.fromkeys(self.sensitive):
            if col == self.target:
                problems.append(f"sensitive: '{col}' is the target; list the columns whose groups you compare")
            elif col in self.fit.pii.columns:
                problems.append(f"sensitive: '{col}' is a PII column (never learned, so it has no groups to compare)")
            elif col in dropped:
                problems.append(f"sensitive: '{col}' is dropped by ingest.drop_columns")
        return problems

    def missing_sensitive(self, columns: Collection[str], what: str = "a column of the main table") -> list[str]:
        """The sensitive columns that are not among `columns`, each as a problem naming it."""
        return [
            f"sensitive column '{c}' (datasets.{self.name}.sensitive) is not {what}; columns are {list(columns)}"
            for c in self.sensitive
            if c not in columns
        ]

    def _engine_problems(self) -> list[str]:
        """The engine must support the dataset's kind (one table, or several with keys) and what it asks."""
        from pipelines import engines
        from pipelines.engines import candidates

        if self.fit.synthesizer == candidates.AUTO:
            return candidates.resolve(self)[1]
        info = engines.REGISTRY[self.fit.synthesizer].info
        relational = layout(self).relational
        if self.source.sequence is not None:
            return self._sequence_problems(info)
        if info.sequences and not info.single_table:
            return [f"fit.synthesizer: '{info.name}' fits sequences; declare them in source.sequence"]
        if relational and not info.multi_table:
            multi = [n for n, e in engines.REGISTRY.items() if e.info.multi_table]
            return [
                f"fit.synthesizer: '{info.name}' fits one table; relational datasets are fitted with one of {multi}"
            ]
        if not relational and not info.single_table:
            return [f"fit.synthesizer: '{info.name}' fits several tables; declare them in source.tables"]
        if relational:  # what relational datasets may ask is checked in _relational_problems
            return engines.REGISTRY[self.fit.synthesizer].relational_problems(self)
        asks = {
            "fit.constraints": bool(self.fit.constraints) and not info.constraints and "business rules",
            "generate.conditions": bool(self.generate.conditions) and not info.conditions and "conditional sampling",
            "blend.strategy": self.blend.strategy == "rebalance" and not info.conditions and "conditional sampling",
        }
        return [f"{key}: '{info.name}' does not support {what}" for key, what in asks.items() if what]

    def _privacy_problems(self) -> list[str]:
        """fit.privacy needs an engine with differential privacy and must agree with its own DP params."""
        from pipelines import engines

        engine = engines.REGISTRY.get(self.fit.synthesizer)
        if engine is None:
            return []
        privacy = self.fit.privacy
        if privacy is not None and not engine.info.dp:
            with_dp = [n for n, e in engines.REGISTRY.items() if e.info.dp]
            return [
                f"fit.privacy: dataset '{self.name}' asks for differential privacy (epsilon {privacy.epsilon:g}) but "
                f"engine '{engine.info.name}' has none; engines with DP: {with_dp} (choose one as fit.synthesizer, "
                "or set fit.privacy: null)"
            ]
        return [f"fit.{p}" for p in engine.privacy_problems(self.fit.params, privacy)]

    def _sequence_problems(self, info: Any) -> list[str]:
        """A sequence dataset needs a sequence engine and is generated as whole sequences, unconditioned."""
        from pipelines import engines

        if not info.sequences:
            able = [n for n, e in engines.REGISTRY.items() if e.info.sequences]
            return [f"fit.synthesizer: '{info.name}' does not fit sequences (source.sequence); use one of {able}"]
        unsupported = {
            "generate.conditions": bool(self.generate.conditions),
            "blend.strategy": self.blend.strategy != "synthetic_only",
            "fit.constraints": bool(self.fit.constraints),
            "gates.canaries": self.gates.canaries > 0,
        }
        return [f"{key}: not supported for sequence datasets" for key, asked in unsupported.items() if asked]

    def _relational_problems(self) -> list[str]:
        unsupported = {
            "generate.conditions": bool(self.generate.conditions) and "not supported for relational datasets",
            "blend.strategy": self.blend.strategy != "synthetic_only"
            and "relational datasets are released synthetic_only",
            "fit.constraints": bool(self.fit.constraints) and "not supported for relational datasets yet",
            "fit.pii.columns": bool(self.fit.pii.columns)
            and "not supported for relational datasets yet (the pii_replay gate still checks detected PII)",
            "gates.canaries": self.gates.canaries > 0
            and "single tables only (the shadow fit plants canaries in one table)",
            "fit.max_rows": self.fit.max_rows is not None
            and "not supported for relational datasets (a subsample of parent rows would have to carry their "
            "children and the reference tables whole); set it to null: every train row",
        }
        return [f"{key}: {why}" for key, why in unsupported.items() if why]

    def to_params(self) -> dict[str, Any]:
        """The effective params as plain JSON (for MLflow and the manifest)."""
        return self.model_dump(mode="json")


class Params(StrictModel):
    """The whole params.yaml, validated."""

    defaults: dict[str, Any]
    datasets: dict[str, DatasetConfig]

    def dataset(self, name: str) -> DatasetConfig:
        """One dataset's config, or a ConfigError naming the datasets that exist."""
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(sorted(self.datasets)) or "none"
            raise ConfigError([f"datasets.{name}: no such dataset (configured: {known})"]) from None
