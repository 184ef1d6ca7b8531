"""Utility gates: a model trained on synthetic rows does almost as well on the real holdout
as one trained on real rows (TSTR vs TRTR), when the dataset has a target.

`utility` compares the overall score (AUC, macro F1, R^2); `minority_utility` (class targets)
compares the recall of the holdout's rarest class, which an AUC can hide: a model that never
predicts the rare class may still rank rows well. Both read one TSTR/TRTR run per context (`tstr`).
The figure is a ratio, not a gap, because the rare class's recall differs widely between datasets:
a synthetic set that erases the class scores 0 whatever the real-trained recall is, and a gap
could never exceed a real recall of, say, 0.1.

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
    from pipelines.metrics import UtilityFigures


def _rows(gates: GatesConfig) -> int:
    """Rows per side the models train on: at least `utility_rows` (small samples make noisy scores)."""
    return max(gates.sample_rows, gates.utility_rows)


def tstr(ctx: GateContext) -> UtilityFigures:
    """TSTR vs TRTR on the main table's attributes, computed once per context (both gates read it)."""

    def compute() -> UtilityFigures:
        from pipelines.metrics import utility

        cols, main = ctx.attributes(), ctx.main
        train, holdout, synthetic = ctx.train[main][cols], ctx.holdout[main][cols], ctx.synthetic[main][cols]
        return utility(synthetic, train, holdout, str(ctx.cfg.target), ctx.cfg.seed, sample_rows=_rows(ctx.cfg.gates))

    return ctx.memo(tstr, compute)


def utility_gate(u: UtilityFigures, target: str, gates: GatesConfig) -> GateResult:
    """TSTR vs TRTR on the real holdout; the gap must stay under utility_gap_max."""
    return gate(
        "utility",
        u.gap,
        gates.utility_gap_max,
        "<=",
        f"{u.metric} on the real holdout predicting '{target}': trained on real "
        f"{u.trtr:.3f}, trained on synthetic {u.tstr:.3f}",
    )


def minority_gate(u: UtilityFigures, gates: GatesConfig) -> tuple[GateResult, dict[str, Any]]:
    """Recall of the holdout's rarest class, trained on synthetic over trained on real rows; it must
    reach minority_recall_ratio_min. When the real-trained model finds none of the class either,
    nothing can be lost: the ratio is undefined (None) and the gate passes with 1.0."""
    real, synthetic = float(u.minority_recall_trtr or 0.0), float(u.minority_recall_tstr or 0.0)
    f1_real, f1_synthetic = float(u.minority_f1_trtr or 0.0), float(u.minority_f1_tstr or 0.0)
    ratio = synthetic / real if real else None
    explanation = (
        f"recall of the rarest class '{u.minority_class}' on the real holdout: trained on real {real:.3f}, "
        f"trained on synthetic {synthetic:.3f} (F1 {f1_real:.3f} vs {f1_synthetic:.3f})"
    )
    if ratio is None:
        explanation += "; the real-trained model finds none of it either, so there is nothing to compare"
    value = 1.0 if ratio is None else ratio
    result = gate("minority_utility", value, gates.minority_recall_ratio_min, ">=", explanation)
    figures = {
        "minority_class": u.minority_class,
        "recall_trtr": real,
        "recall_tstr": synthetic,
        "recall_ratio": ratio,
        "f1_trtr": f1_real,
        "f1_tstr": f1_synthetic,
        "f1_ratio": f1_synthetic / f1_real if f1_real else None,
    }
    return result, figures


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
        u = tstr(ctx)
        classes = class_figures(
            ctx.blended[main][[*cols, PROVENANCE]], train, holdout, target, ctx.cfg.gates, ctx.cfg.seed
        )
        return utility_gate(u, target, ctx.cfg.gates), {"utility": asdict(u), **classes}


class MinorityUtility:
    """Recall of the rarest class, TSTR over TRTR, must reach `minority_recall_ratio_min`."""

    name = "minority_utility"
    param = "minority_recall_ratio_min"

    def applies(self, ctx: GateContext) -> bool:
        """Only for a class target, and synthetic rows to train on."""
        from pipelines.metrics import is_classification

        target = ctx.cfg.target
        return bool(target) and ctx.has_synthetic_rows and is_classification(ctx.train[ctx.main][target])

    def evaluate(self, ctx: GateContext) -> tuple[GateResult, Figures]:
        """The ratio and both models' recall and F1 on the rarest class."""
        result, figures = minority_gate(tstr(ctx), ctx.cfg.gates)
        return result, {"minority_utility": figures}
