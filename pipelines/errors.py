"""The typed exceptions every stage raises; the CLI turns them into one clear message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SynthgateError(Exception):
    """Base class: an error the user can act on (its message says what to do)."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its attributes, whatever its constructor takes: an error raised in a generate
        worker process reaches the parent as the same type, message and fields."""
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[SynthgateError], args: tuple[Any, ...], state: dict[str, Any]) -> SynthgateError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ConfigError(SynthgateError):
    """params.yaml or an override is invalid; the message names every bad key path."""

    def __init__(self, problems: Iterable[str], source: str = "params.yaml") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class InvalidInputError(SynthgateError):
    """The input data breaks its contract; the message names the file and every bad column."""

    def __init__(self, path: str, problems: Iterable[str], hint: str = "") -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        tail = f"\n{hint}" if hint else ""
        super().__init__(f"invalid input {path}:\n{lines}{tail}")


class IntegrityError(SynthgateError):
    """A recorded digest does not match the file on disk (tampered or stale artifact)."""


class TrackingUnavailable(SynthgateError):
    """The MLflow tracking store cannot be reached or refuses a write (exit code 6)."""


class OutOfResources(SynthgateError):
    """The machine ran out of disk space or memory (exit code 5); nothing was published."""


class GateFailed(SynthgateError):
    """One or more release gates failed; nothing was published. `next_steps` says what the run left
    (the release, DVC's view) and what to do (pipelines/experiment.py `blocked_next_steps`)."""

    def __init__(self, dataset: str, failed: list[dict], next_steps: str = "") -> None:
        self.dataset = dataset
        self.failed = failed
        lines = "\n".join(
            f"  - {g['name']}: {g['value']:.4g} (must be {g['comparison']} {g['threshold']:.4g})"
            f" {g.get('explanation', '')}".rstrip()
            for g in failed
        )
        super().__init__(
            f"release of '{dataset}' blocked: {len(failed)} gate(s) failed:\n{lines}\n"
            + (next_steps or "The previous release was left untouched.")
        )


class EngineError(SynthgateError):
    """An engine running in its own environment failed (building it, fitting or sampling)."""

    def __init__(self, engine: str, env: str, action: str, detail: str, hint: str = "") -> None:
        self.engine = engine
        self.env = env
        self.action = action
        self.detail = detail
        tail = f"\n{hint}" if hint else ""
        super().__init__(f"engine '{engine}' ({action}, environment {env}) failed:\n{detail}{tail}")
