"""Utility gate: a model trained on synthetic rows does almost as well on the real holdout
as one trained on real rows (TSTR vs TRTR), when the dataset has a target.

Compares the main table's learned, non-key columns. For a class target it also reports the class
shares and, when real rows were blended in, TSTR on the whole release (`class_figures`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pipelines.contracts import PROVENANCE
from pipelines.gates.base import Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import GatesConfig


def _rows(gates: GatesConfig) -> int:
    """Rows per side the models train on: at least `utility_rows` (small samples make noisy scores)."""
    return max(gates.sample_rows, gates.utility_rows)


def utility_gate(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, target: str, gates: GatesConfig, seed: int
) -> tuple[GateResult, dict[str, Any]]:
    """TSTR vs TRTR on the real holdout; the gap must stay under utility_gap_max."""
    from pipelines.metrics import utility

    u = utility(synthetic, train, holdout, target, seed, sample_rows=_rows(gates))
    result = gate(
        "utility",
        u.gap,
        gates.utility_gap_max,
        "<=",
        f"{u.metric} on the real holdout predicting '{target}': trained on real "
        f"{u.trtr:.3f}, trained on synthetic {u.tstr:.3f}",
    )
    return result, asdict(u)


def class_figures(
    blended: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, target: str, gates: GatesConfig, seed: int
) -> dict[str, Any]:
    """For a class target: its shares in train, synthetic rows and the release and, when real rows
    were blended in (augment, rebalance), TSTR on the whole release, minority recall/F1 included.
    So a rebalanced release shows whether it helps a model find the rare class."""
    from pipelines.metrics import is_classification, utility
    from pipelines.rebalance import achieved

    if not is_classification(train[target]):
        return {}
    synthetic = blended[blended[PROVENANCE] == "synthetic"]
    out: dict[str, Any] = {
        "class_shares": {
            "train": achieved(train, target),
            "synthetic": achieved(synthetic, target),
            "release": achieved(blended, target),
        }
    }
    if (blended[PROVENANCE] == "real").any():
        u = utility(blended.drop(columns=[PROVENANCE]), train, holdout, target, seed, sample_rows=_rows(gates))
        out["utility_release"] = asdict(u)
    return out


class Utility:
    """TRTR minus TSTR on the real holdout must stay under `utility_gap_max`."""

    name = "utility"
    param = "utility_gap_max"

    def applies(self, ctx: GateContext) -> bool:
        """Only for a dataset with a target, and synthetic rows to train on."""
        return bool(ctx.cfg.target) and ctx.has_synthetic_rows

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """The gap, the figures of both models and, for a class target, `class_figures`."""
        cols, main, target = ctx.attributes(), ctx.main, str(ctx.cfg.target)
        train, holdout = ctx.train[main][cols], ctx.holdout[main][cols]
        result, figures = utility_gate(ctx.synthetic[main][cols], train, holdout, target, ctx.cfg.gates, ctx.cfg.seed)
        classes = class_figures(
            ctx.blended[main][[*cols, PROVENANCE]], train, holdout, target, ctx.cfg.gates, ctx.cfg.seed
        )
        return result, {"utility": figures, **classes}
