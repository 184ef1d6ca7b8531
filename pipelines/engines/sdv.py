"""SDV 2.0 adapters: the single-table synthesizers, HMA for table sets with keys, PAR for sequences.

SDV samples from a fixed internal seed, so the per-shard seed is applied here through its
private seeding calls (`_set_random_state`, `_numpy_seed`): this module is the only place that
touches them. SDV, RDT and CTGAN are under the Business Source License 1.1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.engines.base import Engine, EngineInfo, SampleRequest, seed_everything
from pipelines.errors import ConfigError, InvalidInputError
from pipelines.io import atomic_path, sha256_file

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig
    from pipelines.tableset import Layout, Tables

LICENCE = "BUSL-1.1"

_COMMON = frozenset({"enforce_min_max_values", "enforce_rounding"})
_COPULA = frozenset({"numerical_distributions", "default_distribution"})
_GAN = _COMMON | {
    "embedding_dim", "generator_dim", "discriminator_dim", "generator_lr", "generator_decay",
    "discriminator_lr", "discriminator_decay", "batch_size", "discriminator_steps", "log_frequency",
    "epochs", "pac", "enable_gpu",
}  # fmt: skip
_TVAE = _COMMON | {
    "embedding_dim", "compress_dims", "decompress_dims", "l2scale", "batch_size", "epochs",
    "loss_factor", "enable_gpu",
}  # fmt: skip

_PAR = _COMMON | {"locales", "segment_size", "epochs", "sample_size", "cuda", "verbose"}


def _gpu_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


class _SdvEngine(Engine):
    """Save/load through SDV's own `save` (cloudpickle underneath)."""

    def save(self, model: Any, path: Path) -> str:
        with atomic_path(path) as tmp:
            model.save(str(tmp))
        return sha256_file(path)


@dataclass
class SdvSingleTable(_SdvEngine):
    """One of `sdv.single_table`'s synthesizers (class `cls_name`)."""

    info: EngineInfo
    cls_name: str

    def fit(self, train: Tables, metadata: Any, cfg: DatasetConfig, lay: Layout) -> Any:
        import sdv.single_table as st

        seed_everything(cfg.seed)
        kwargs = dict(cfg.fit.params)
        if self.info.family != "copula":
            kwargs.setdefault("enable_gpu", _gpu_available())
        synth = getattr(st, self.cls_name)(metadata, **kwargs)
        if cfg.fit.constraints:
            from pipelines.constraints import to_sdv

            try:
                synth.add_constraints(to_sdv(cfg.fit.constraints))
            except Exception as err:  # SDV raises ConstraintNotMetError, ValueError, ...
                raise ConfigError([f"datasets.{cfg.name}.fit.constraints: SDV rejected the rules: {err}"]) from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            synth.fit({lay.main: train[lay.main]})
        return synth

    def sample(self, model: Any, request: SampleRequest) -> Tables:
        import numpy as np

        model.reset_sampling()
        model._set_random_state(request.seed)  # SDV exposes no public per-call seed
        np.random.seed(request.seed % 2**32)
        if request.conditions:
            return {request.main: _sample_conditions(model, request)}
        out = model.sample(request.rows)
        return {request.main: out[request.main] if isinstance(out, dict) else out}


def _sample_conditions(model: Any, request: SampleRequest) -> Any:
    from sdv.sampling import Condition

    try:
        out = model.sample_from_conditions([Condition(num_rows=request.rows, column_values=dict(request.conditions))])
    except ValueError as err:  # SDV: "Unable to sample any rows for the given conditions"
        raise InvalidInputError(
            f"shard seed {request.seed}",
            [f"conditional sampling of {request.conditions} failed: {err}"],
            hint="The model could not produce rows with these values; loosen the conditions.",
        ) from None
    df = out[request.main] if isinstance(out, dict) else out
    return df.reset_index(drop=True)


@dataclass
class SdvHMA(_SdvEngine):
    """SDV's hierarchical multi-table synthesizer: parents first, then children per parent row."""

    info: EngineInfo

    def fit(self, train: Tables, metadata: Any, cfg: DatasetConfig, lay: Layout) -> Any:
        from sdv.multi_table import HMASynthesizer

        seed_everything(cfg.seed)
        synth = HMASynthesizer(metadata, verbose=False, **cfg.fit.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synth.fit(dict(train))
        return synth

    def sample(self, model: Any, request: SampleRequest) -> Tables:
        """Every table at the scale that gives about `rows` rows of the main table.

        Reproducible across processes only with a pinned hash seed (see pipelines/determinism.py).
        """
        import numpy as np

        from pipelines.determinism import warn_unless_pinned

        warn_unless_pinned("HMA sampling")
        scale = request.rows / max(1, request.train_rows)
        model.reset_sampling()
        model._numpy_seed = int(request.seed % 2**32)  # SDV exposes no public per-call seed
        for table_synth in model._table_synthesizers.values():
            table_synth._set_random_state(request.seed)
        np.random.seed(request.seed % 2**32)
        return model.sample_scale(scale)


@dataclass
class SdvPAR(_SdvEngine):
    """SDV's PAR: a GaussianCopula for each entity's context columns, then a recurrent network that
    draws a whole sequence (its length too) per entity. The model is saved with the train split's
    sequence statistics (a shard asks for rows / mean length sequences)."""

    info: EngineInfo

    def fit(self, train: Tables, metadata: Any, cfg: DatasetConfig, lay: Layout) -> Any:
        from sdv.sequential import PARSynthesizer

        from pipelines.engines.sequences import length_stats

        seq = cfg.source.sequence
        if seq is None:  # config validation refuses this before any work
            raise ConfigError([f"datasets.{cfg.name}.fit.synthesizer: 'par' needs source.sequence"])
        seed_everything(cfg.seed)
        kwargs = {"cuda": _gpu_available(), **cfg.fit.params}
        synth = PARSynthesizer(metadata, context_columns=list(seq.context_columns), **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synth.fit({lay.main: train[lay.main]})
        spec = metadata.tables[lay.main].columns[seq.key]
        synth.synthgate_sequences = {
            **length_stats(train[lay.main], seq.key),
            "key": seq.key,
            "regex": spec.get("regex_format"),
        }
        return synth

    def sample(self, model: Any, request: SampleRequest) -> Tables:
        """Whole sequences (about `rows` rows), entity keys fresh from `request.first_key` on."""
        import numpy as np

        from pipelines.engines.sequences import rekey, sequences_to_sample

        stats = model.synthgate_sequences
        seed_everything(request.seed)  # PAR's network samples with torch
        model._context_synthesizer.reset_sampling()
        model._context_synthesizer._set_random_state(request.seed)  # SDV exposes no public per-call seed
        np.random.seed(request.seed % 2**32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.sample_sequences(sequences_to_sample(stats, request))
        df = out[request.main] if isinstance(out, dict) else out
        df = df.reset_index(drop=True)
        return {request.main: rekey(df, stats["key"], stats["regex"], request.main, request.first_key)}


def _single(name: str, cls_name: str, family: str, params: frozenset[str]) -> SdvSingleTable:
    forkable = family == "copula"  # numpy/scipy only; the others sample with torch
    info = EngineInfo(name, family, LICENCE, params, conditions=True, constraints=True, forkable=forkable)
    return SdvSingleTable(info, cls_name)


ENGINES: tuple[Engine, ...] = (
    _single("gaussian_copula", "GaussianCopulaSynthesizer", "copula", _COMMON | _COPULA),
    _single("ctgan", "CTGANSynthesizer", "gan", _GAN),
    _single("tvae", "TVAESynthesizer", "vae", _TVAE),
    _single("copulagan", "CopulaGANSynthesizer", "gan", _GAN | _COPULA),
    SdvHMA(EngineInfo("hma", "hierarchical", LICENCE, frozenset({"locales"}), single_table=False, multi_table=True)),
    SdvPAR(EngineInfo("par", "autoregressive", LICENCE, _PAR, single_table=False, sequences=True)),
)
"""The SDV adapters, in the order `synthgate engines` lists them."""
