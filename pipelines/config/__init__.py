"""params.yaml: loaded once into frozen, validated models; overrides go through the same checks.

Layout::

    defaults:            # every knob, with its default
      seed: 42
      ingest: {...}
      fit: {...}
      generate: {...}
      blend: {...}
      gates: {...}
    datasets:
      hdma:              # one block per dataset; sections are merged over `defaults`
        source: {path: sources/hdma.csv, format: csv}
        target: deny
        seed: 7
        ingest: {}       # every section is present (DVC tracks it as a param), `{}` inherits
        ...

An unknown key or a bad value is rejected with its full key path (`datasets.hdma.generate.rows`).
"""

from pipelines.config.base import DATASET_REQUIRED, SECTIONS
from pipelines.config.dataset import DatasetConfig, Params
from pipelines.config.gates import GatesConfig
from pipelines.config.governance import GovernanceConfig
from pipelines.config.load import (
    OVERRIDABLE,
    PARAM_KEYS,
    apply_overrides,
    build_dataset,
    deep_merge,
    load_params,
    parse_params,
    recorded_defaults,
)
from pipelines.config.sections import (
    PII_KINDS,
    BlendConfig,
    FitConfig,
    GenerateConfig,
    IngestConfig,
    PiiConfig,
    PiiKind,
)
from pipelines.config.source import Relationship, SequenceConfig, SourceConfig, TableSource

__all__ = [
    "DATASET_REQUIRED",
    "OVERRIDABLE",
    "PARAM_KEYS",
    "PII_KINDS",
    "SECTIONS",
    "BlendConfig",
    "DatasetConfig",
    "FitConfig",
    "GatesConfig",
    "GenerateConfig",
    "GovernanceConfig",
    "IngestConfig",
    "Params",
    "PiiConfig",
    "PiiKind",
    "Relationship",
    "SequenceConfig",
    "SourceConfig",
    "TableSource",
    "apply_overrides",
    "build_dataset",
    "deep_merge",
    "load_params",
    "parse_params",
    "recorded_defaults",
]
