"""Sequence gates (datasets with `source.sequence`): the distribution of sequence lengths, and the
order of every synthetic sequence.

`sequence_length` compares the rows per entity of the synthetic rows with those of the train split
(KSComplement, 1 - the Kolmogorov-Smirnov statistic: 1 for the same distribution); `sequence_order`
is the share of synthetic sequences whose index never decreases (an engine that draws events out
of order fails it, whatever the other figures say).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate

if TYPE_CHECKING:
    import pandas as pd

SEQUENCE_ORDER_MIN = 1.0
"""Fixed: a sequence whose events go back in time is not a sequence; no share of that is acceptable."""


def lengths(df: pd.DataFrame, key: str) -> pd.Series:
    """Rows per entity."""
    return df.groupby(key, sort=True).size()


def in_order(df: pd.DataFrame, key: str, index: str) -> pd.Series:
    """Per entity: whether its index never decreases from one row to the next (missing values skipped)."""
    import pandas as pd

    present = df[[key, index]].dropna()
    steps = present.groupby(key, sort=False)[index].diff()
    zero = pd.Timedelta(0) if pd.api.types.is_timedelta64_dtype(steps) else 0
    backwards = (steps < zero).groupby(present[key]).any()
    return ~backwards.reindex(sorted(df[key].dropna().unique()), fill_value=False)


def _sequences(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    from sdmetrics.single_column import KSComplement

    seq = ctx.cfg.source.sequence
    real, synthetic = ctx.train[ctx.main], ctx.synthetic[ctx.main]
    real_len, syn_len = lengths(real, seq.key), lengths(synthetic, seq.key)
    score = float(KSComplement.compute(real_len, syn_len)) if len(syn_len) else 0.0
    ordered = in_order(synthetic, seq.key, seq.index)
    share = float(ordered.mean()) if len(ordered) else 0.0
    out_of_order = sorted(map(str, ordered.index[~ordered.to_numpy()]))

    def summary(s: pd.Series) -> dict[str, float]:
        return {"sequences": len(s), "mean": round(float(s.mean()), 3), "max": int(s.max())}

    figures = {
        "sequences": {
            "key": seq.key,
            "index": seq.index,
            "lengths": {"train": summary(real_len), "synthetic": summary(syn_len) if len(syn_len) else {}},
            "out_of_order": {"count": len(out_of_order), "examples": out_of_order[:5]},
        }
    }
    results = [
        gate(
            "sequence_length",
            score,
            ctx.cfg.gates.sequence_length_min,
            ">=",
            f"KSComplement of the rows per '{seq.key}', synthetic vs train (mean length "
            f"{figures['sequences']['lengths']['synthetic'].get('mean')} vs {real_len.mean():.3f})",
        ),
        gate(
            "sequence_order",
            share,
            SEQUENCE_ORDER_MIN,
            ">=",
            f"share of synthetic sequences whose '{seq.index}' never decreases"
            + (f"; out of order: {len(out_of_order)}, e.g. {out_of_order[:3]}" if out_of_order else ""),
        ),
    ]
    return {r.name: r for r in results}, figures


def _applies(ctx: GateContext) -> bool:
    return ctx.cfg.source.sequence is not None


SEQUENCE_LENGTH = FamilyGate("sequence_length", "sequence_length_min", _sequences, _applies)
SEQUENCE_ORDER = FamilyGate("sequence_order", None, _sequences, _applies)
