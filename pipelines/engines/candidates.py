"""Auto-selection's plan (`fit.synthesizer: auto`): which engines are candidates, and the epoch
limit each gets from `fit.budget_s` through a measured cost model (never a wall-clock cap).

Config validation imports this module, so it imports no generator, gate or metric library;
`pipelines.engines.selection` fits and scores the candidates. docs/engines.md "Auto-selection".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.engines.argn_runner import default_batch_size
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.config import DatasetConfig, FitConfig

AUTO = "auto"
"""The `fit.synthesizer` value that asks for auto-selection."""


@dataclass(frozen=True)
class CostModel:
    """Fit seconds of one engine on this machine, from the size of what it is given:
    `fixed_s + prep_s x cells + epochs x epoch_s x units`, where `cells` is rows x learned columns
    and `units` is `cells` too, except for engines that train a fixed number of steps per epoch
    (TabularARGN: `argn_steps(rows) x columns`). Engines without epochs train once (epochs = 1).

    `fixed_s` includes what a candidate costs besides training: imports, the engine's own process,
    the validation sample. Measured once (docs/engines.md "Auto-selection"), written here so the
    epoch limits never depend on how fast a run happens to be.
    """

    fixed_s: float
    prep_s: float
    epoch_s: float
    epochs_param: str | None = None
    """The engine's epoch limit in `fit.params` (None: fitted once, no epochs)."""
    max_epochs: int = 1
    """The engine's own default limit (more budget never gives more epochs than a plain fit uses)."""
    per_step: bool = False
    """Epoch cost scales with `argn_steps(rows) x columns`, not with cells."""

    def seconds(self, rows: int, cells: int, epochs: int = 1) -> float:
        """Estimated fit (and validation sample) seconds at this epoch limit."""
        return self.fixed_s + self.prep_s * cells + epochs * self.epoch_s * self.units(rows, cells)

    def units(self, rows: int, cells: int) -> float:
        """What one epoch's cost is proportional to."""
        if not self.per_step:
            return float(cells)
        return float(argn_steps(rows) * (cells / max(rows, 1)))


def argn_steps(rows: int) -> int:
    """TabularARGN's training steps per epoch for `rows` rows (mostlyai-engine 2.7.3's heuristic:
    it trains on 80%, in batches of 2^floor(log2(n / 64)) rows, 8 to 1,024: the runner's
    `default_batch_size`), so 64-128 steps for any table of 640 to 130k rows: its epochs cost
    about the same whatever the table's size."""
    train = max(1, round(rows * 0.8))
    return max(1, train // default_batch_size(train))


COSTS: dict[str, CostModel] = {
    # Measured 2026-12-02 on the project machine (2 cores, shared): docs/engines.md "Auto-selection"
    # has the figures. SDV: hdma (2,381 x 13, 30,953 cells), fits at 2 and 8 epochs; prep_s is the
    # data transformer's cost, epoch_s the slope between the two. CopulaGAN is CTGAN's network behind
    # GaussianCopula's transformer. TabularARGN: 30.6 s per epoch on hdma's 1,905 train rows
    # (95 steps x 13 columns: 0.025 s per step and column), 12-15 s per import, twice (fit, sample).
    # HMA: 576 s for 20k + 26k rows of about 10 columns (issue 10), as cells.
    "gaussian_copula": CostModel(fixed_s=0.5, prep_s=5e-5, epoch_s=0.0),
    "ctgan": CostModel(fixed_s=2.0, prep_s=7e-5, epoch_s=3e-5, epochs_param="epochs", max_epochs=300),
    "tvae": CostModel(fixed_s=2.0, prep_s=7e-5, epoch_s=1.8e-5, epochs_param="epochs", max_epochs=300),
    "copulagan": CostModel(fixed_s=2.5, prep_s=1.2e-4, epoch_s=3e-5, epochs_param="epochs", max_epochs=300),
    "tabular_argn": CostModel(
        fixed_s=35.0, prep_s=0.0, epoch_s=0.025, epochs_param="max_epochs", max_epochs=100, per_step=True
    ),
    "hma": CostModel(fixed_s=5.0, prep_s=1.2e-3, epoch_s=0.0),
}


def candidate_problems(fit: FitConfig) -> list[str]:
    """What is wrong with an `auto` fit section on its own (registry, licences, params): config
    validation, before the dataset's kind is known (`resolve` checks that)."""
    from pipelines import engines

    problems = []
    if fit.params:
        problems.append(
            f"params {sorted(fit.params)}: not used with synthesizer 'auto' (each candidate's epoch limit comes "
            "from fit.budget_s); name one engine to pass it params"
        )
    for name in fit.candidates or ():
        engine = engines.REGISTRY.get(name)
        if engine is None:
            problems.append(f"candidates: {name!r} is not a known engine (known: {', '.join(engines.REGISTRY)})")
        elif fit.licences is not None and engine.info.licence not in fit.licences:
            problems.append(
                f"candidates: {name!r} is under {engine.info.licence}, which is not in this dataset's licences "
                f"{list(fit.licences)}: remove it or allow its licence"
            )
        elif name not in COSTS:
            problems.append(f"candidates: {name!r} has no measured cost model (pipelines/engines/candidates.py COSTS)")
    if fit.candidates is not None:
        twice = sorted({n for n in fit.candidates if fit.candidates.count(n) > 1})
        problems += [f"candidates: {n!r} is listed twice" for n in twice]
    return problems


def _asks(cfg: DatasetConfig) -> dict[str, str]:
    """What the dataset asks of its engine: capability -> the key that asks it."""
    asks = {}
    if cfg.fit.constraints:
        asks["constraints"] = "fit.constraints"
    if cfg.generate.conditions:
        asks["conditions"] = "generate.conditions"
    elif cfg.blend.strategy == "rebalance":
        asks["conditions"] = "blend.strategy: rebalance"
    if cfg.fit.privacy is not None:
        asks["dp"] = "fit.privacy"
    return asks


def resolve(cfg: DatasetConfig) -> tuple[list[str], list[str]]:
    """(candidates, problems): the engines `auto` tries for this dataset, in registry order.

    `fit.candidates: null` takes every registered engine allowed by `fit.licences` that fits the
    dataset's kind (one table, or several with keys) and supports what it asks (conditions,
    business rules); an explicit list must name only such engines, or each misfit is a problem.
    """
    from pipelines import engines
    from pipelines.tableset import layout

    relational = layout(cfg).relational
    kind = "multi_table" if relational else "single_table"
    asks = _asks(cfg) if not relational else {k: v for k, v in _asks(cfg).items() if k == "dp"}
    fit = cfg.fit

    def misfit(name: str) -> str | None:
        info = engines.REGISTRY[name].info
        if cfg.source.sequence is not None:
            if not info.sequences:
                return "does not fit sequences (source.sequence)"
        elif not getattr(info, kind):
            return "fits one table only" if relational else "fits several tables only"
        for capability, key in asks.items():
            if not getattr(info, capability):
                return f"does not support {key}"
        if relational and (shape := engines.REGISTRY[name].relational_problems(cfg)):
            return f"cannot fit this set of tables ({shape[0]})"
        return None

    if fit.candidates is None:
        allowed = [
            n
            for n, e in engines.REGISTRY.items()
            if (fit.licences is None or e.info.licence in fit.licences) and n in COSTS and misfit(n) is None
        ]
        if not allowed:
            return [], [
                f"fit.candidates: no registered engine is allowed by licences {list(fit.licences or [])} and fits "
                f"this dataset ({kind.replace('_', '-')}{', ' + ', '.join(asks.values()) if asks else ''})"
            ]
        return allowed, []
    problems = [f"fit.candidates: {n!r} {why}" for n in fit.candidates if n in engines.REGISTRY and (why := misfit(n))]
    return list(fit.candidates), problems


def candidates(cfg: DatasetConfig) -> list[str]:
    """The resolved candidates, or a ConfigError naming the dataset and every problem."""
    names, problems = resolve(cfg)
    if problems:
        raise ConfigError([f"datasets.{cfg.name}.{p}" for p in problems])
    return names


@dataclass(frozen=True)
class Plan:
    """One candidate's fit: its params (the epoch limit) and estimated seconds, or why it is skipped."""

    engine: str
    params: dict[str, Any]
    estimated_s: float
    skipped: str | None = None


def plan(names: list[str], rows: int, cells: int, budget_s: float) -> list[Plan]:
    """Epoch limits for the candidates from the budget and the cost model, deterministically.

    `rows` and `cells` (rows x columns) are those of the tables the candidates are fitted on.
    Engines without epochs get their estimated seconds first; the rest of the budget is shared
    equally by the epoch-trained ones, and a share an engine cannot use (its default limit is
    reached) goes back to the others. A candidate whose share buys less than one epoch is
    skipped, with the reason.
    """
    plans: dict[str, Plan] = {}
    left = budget_s
    open_ = []
    for name in names:
        cost = COSTS[name]
        if cost.epochs_param is None:
            plans[name] = Plan(name, {}, round(cost.seconds(rows, cells), 1))
            left -= cost.seconds(rows, cells)
        else:
            open_.append(name)
    while open_:
        share = max(left, 0.0) / len(open_)
        capped = [n for n in open_ if COSTS[n].seconds(rows, cells, COSTS[n].max_epochs) <= share]
        if not capped:
            break
        for name in capped:
            plans[name] = _epoch_plan(name, rows, cells, COSTS[name].max_epochs)
            left -= COSTS[name].seconds(rows, cells, COSTS[name].max_epochs)
            open_.remove(name)
    share = max(left, 0.0) / max(len(open_), 1)
    for name in open_:
        cost = COSTS[name]
        epochs = math.floor((share - cost.seconds(rows, cells, 0)) / (cost.epoch_s * cost.units(rows, cells)))
        if epochs < 1:
            one = cost.seconds(rows, cells, 1)
            plans[name] = Plan(
                name, {}, round(one, 1), f"its budget share {share:.0f} s buys no epoch (one: {one:.0f} s)"
            )
        else:
            plans[name] = _epoch_plan(name, rows, cells, epochs)
    return [plans[n] for n in names]


def _epoch_plan(name: str, rows: int, cells: int, epochs: int) -> Plan:
    cost = COSTS[name]
    assert cost.epochs_param is not None
    return Plan(name, {cost.epochs_param: epochs}, round(cost.seconds(rows, cells, epochs), 1))


def candidate_config(cfg: DatasetConfig, name: str, params: dict[str, Any]) -> DatasetConfig:
    """The dataset's config as if `fit.synthesizer` named this engine with these params."""
    return cfg.model_copy(update={"fit": cfg.fit.model_copy(update={"synthesizer": name, "params": params})})


def fitted_config(cfg: DatasetConfig, fit_record: dict[str, Any]) -> DatasetConfig:
    """The config the fit record's model was fitted with (the winner's engine and params under `auto`)."""
    if cfg.fit.synthesizer != AUTO or not fit_record:
        return cfg
    return candidate_config(cfg, fit_record["synthesizer"], dict(fit_record["params"]))
