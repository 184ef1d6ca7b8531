"""The engine registry: adding an engine is one adapter module and one line here.

Importing this package imports no generator library (the DAG processor and the config loader
use it); adapters import theirs when they fit or sample.
"""

from __future__ import annotations

from pipelines.engines import argn, sdv
from pipelines.engines.base import Engine, EngineInfo, SampleRequest, seed_everything, verify_model
from pipelines.errors import ConfigError

REGISTRY: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Add an engine under its `info.name` (a later registration of the same name replaces it)."""
    REGISTRY[engine.info.name] = engine
    return engine


def get(name: str) -> Engine:
    """The engine called `name`, or a ConfigError listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError([f"fit.synthesizer: unknown engine {name!r} (known: {', '.join(REGISTRY)})"]) from None


for _engine in (*sdv.ENGINES, argn.ENGINE):
    register(_engine)

__all__ = ["REGISTRY", "Engine", "EngineInfo", "SampleRequest", "get", "register", "seed_everything", "verify_model"]
