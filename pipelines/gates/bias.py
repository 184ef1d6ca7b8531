"""Bias gates: what an auditor asks first. Does each group of a sensitive column keep its share of
the rows and its outcome in the synthetic data?

For each column of the dataset's `sensitive` list and each of its groups: the group's share of the
rows and its target rate (the share of the train split's rarest class for a class target, the mean
for a numeric one), in the train split and in the synthetic rows. `bias` gates the largest absolute
difference of a group's target rate (for a numeric target in train standard deviations, so one
tolerance fits every unit; needs a target); `bias_share` the largest difference of a group's share.
The figures also give each column's disparity: the target rate of the train split's highest group
minus that of its lowest, in train and in the synthetic rows (negative there when they swapped).

Numeric sensitive columns with more than `MAX_GROUPS` values are cut at the train quartiles;
missing values form their own group. A release sampled under `generate.conditions` is compared
with the train rows that meet them, a rebalanced one with train rows weighted to the release's
class shares (both change the mix on purpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError
from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate, type_mismatch

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import GatesConfig

MIN_GROUP_ROWS = 30
"""Fixed: a group's target rate is compared only when it has this many rows on both sides; below
that one row moves a rate by more than 3 points, so the difference says more about noise than bias
(the group is still reported, with `compared: false`, and its share is still gated)."""

MAX_GROUPS = 10
"""Numeric sensitive columns with more distinct train values than this are cut at the train quartiles."""

MISSING = "<missing>"


def _groups(real: pd.Series, synthetic: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Group labels (text) of both sides; many-valued numbers in train quartiles."""
    import numpy as np
    import pandas as pd

    def label(s: pd.Series) -> pd.Series:
        return s.astype(str).where(s.notna(), MISSING)

    numeric = pd.api.types.is_numeric_dtype(real) and not pd.api.types.is_bool_dtype(real)
    if not numeric or real.nunique() <= MAX_GROUPS:
        return label(real), label(synthetic)
    bins = [-np.inf, *np.unique(real.quantile([0.25, 0.5, 0.75]).to_numpy()), np.inf]
    return label(pd.cut(real.astype(float), bins)), label(pd.cut(synthetic.astype(float), bins))


def _outcome(real: pd.Series, synthetic: pd.Series) -> tuple[pd.Series, pd.Series, str, float]:
    """Per row, what a group's target rate averages; its name; the scale of a difference."""
    from pipelines.metrics import is_classification

    if is_classification(real):
        counts = real.dropna().astype(str).value_counts()
        rare = min(counts[counts == counts.min()].index)  # the rarest class (ties: the first by name)

        def is_rare(s: pd.Series) -> pd.Series:
            return (s.astype(str) == rare).astype(float).where(s.notna())  # a missing target is not counted

        return is_rare(real), is_rare(synthetic), rare, 1.0
    values = real.astype(float)
    return values, synthetic.astype(float), "mean", float(values.std()) or 1.0


def _per_group(groups: pd.Series, weights: pd.Series, outcome: pd.Series | None) -> pd.DataFrame:
    """Rows, weighted share and weighted target rate (mean outcome) of each group."""
    import pandas as pd

    frame = pd.DataFrame({"group": groups.to_numpy(), "w": weights.to_numpy()})
    if outcome is not None:
        known = outcome.notna().to_numpy()
        frame["wy"] = frame["w"] * outcome.fillna(0).to_numpy()
        frame["wk"] = frame["w"] * known
    stats = frame.groupby("group").sum()
    stats["rows"] = frame.groupby("group").size()
    stats["share"] = stats["w"] / stats["w"].sum()
    if outcome is not None:
        stats["rate"] = stats["wy"] / stats["wk"].where(stats["wk"] > 0)
    return stats


def _num(value: Any) -> float | None:
    return None if value is None or value != value else round(float(value), 6)


def column_figures(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    column: str,
    target: str | None,
    weights: pd.Series,
) -> dict[str, Any]:
    """One sensitive column: per group its rows, shares and target rates on both sides, their
    differences, and the disparity between the groups' target rates on both sides."""
    import pandas as pd

    g_real, g_syn = _groups(real[column], synthetic[column])
    y_real = y_syn = None
    scale = 1.0
    if target:
        y_real, y_syn, _, scale = _outcome(real[target], synthetic[target])
    a = _per_group(g_real, weights, y_real)
    b = _per_group(g_syn, pd.Series(1.0, index=synthetic.index), y_syn)
    groups: dict[str, dict[str, Any]] = {}
    for name in sorted(set(a.index) | set(b.index)):
        ra, rb = (int(s["rows"][name]) if name in s.index else 0 for s in (a, b))
        sa, sb = (float(s["share"][name]) if name in s.index else 0.0 for s in (a, b))
        row: dict[str, Any] = {
            "rows_real": ra,
            "rows_synthetic": rb,
            "share_real": _num(sa),
            "share_synthetic": _num(sb),
            "share_gap": _num(abs(sb - sa)),
        }
        if target:
            ta, tb = (s["rate"][name] if name in s.index else None for s in (a, b))
            compared = min(ra, rb) >= MIN_GROUP_ROWS and ta == ta and tb == tb
            row.update(
                target_real=_num(ta),
                target_synthetic=_num(tb),
                target_gap=_num(abs(tb - ta) / scale) if compared else None,
                compared=bool(compared),
            )
        groups[name] = row
    out: dict[str, Any] = {"groups": groups, "share_gap": max(r["share_gap"] for r in groups.values())}
    if target:
        rated = {name: r for name, r in groups.items() if r["compared"]}
        out["target_gap"] = max((r["target_gap"] for r in rated.values()), default=0.0)
        if rated:  # the groups furthest apart in train, and the same difference in the synthetic rows
            high = max(rated, key=lambda n: rated[n]["target_real"])
            low = min(rated, key=lambda n: rated[n]["target_real"])
            out["disparity_groups"] = [high, low]
            for side in ("real", "synthetic"):
                out[f"disparity_{side}"] = _num(rated[high][f"target_{side}"] - rated[low][f"target_{side}"])
    return out


def _worst(columns: dict[str, dict[str, Any]], key: str) -> tuple[float, str]:
    """The largest `key` difference over every group of every column, and where it is."""
    best, where = 0.0, ""
    for col, figures in columns.items():
        for name, row in figures["groups"].items():
            if row.get(key) is not None and row[key] > best:
                best, where = row[key], f"{col}={name}"
    return best, where


def bias_figures(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    sensitive: Sequence[str],
    target: str | None,
    weights: pd.Series | None = None,
) -> dict[str, Any]:
    """Group shares and target rates of every sensitive column, real (weighted by `weights`, default
    1) vs synthetic, and the largest differences (`target_gap` only with a target)."""
    import pandas as pd

    w = pd.Series(1.0, index=real.index) if weights is None else weights
    columns = {c: column_figures(real, synthetic, c, target, w) for c in sensitive}
    out: dict[str, Any] = {"sensitive": list(sensitive), "target": target, "columns": columns}
    out["share_gap"], out["share_gap_group"] = _worst(columns, "share_gap")
    if target:
        _, _, rate, scale = _outcome(real[target], synthetic[target])
        out["target_rate"] = f"share of '{rate}'" if rate != "mean" else f"mean (gaps in train SDs of {scale:.4g})"
        out["target_gap"], out["target_gap_group"] = _worst(columns, "target_gap")
    out["min_group_rows"] = MIN_GROUP_ROWS
    return out


def _group(figures: dict[str, Any], key: str) -> tuple[str, str, dict[str, Any]]:
    """Where a `*_group` figure points: its label, its column and its group's row ({} when none)."""
    col, _, name = figures[key].partition("=")
    return figures[key] or "no group", col, figures["columns"][col]["groups"][name] if col else {}


def bias_gates(figures: dict[str, Any], gates: GatesConfig) -> dict[str, GateResult]:
    """`bias` (with a target) and `bias_share` from `bias_figures`."""
    at, _, row = _group(figures, "share_gap_group")
    results = {
        "bias_share": gate(
            "bias_share",
            figures["share_gap"],
            gates.bias_share_gap_max,
            "<=",
            f"largest difference of a group's share of the rows, synthetic vs train: {at}"
            + (f" (train {row['share_real']:.3f}, synthetic {row['share_synthetic']:.3f})" if row else ""),
        )
    }
    if figures["target"]:
        at, col, row = _group(figures, "target_gap_group")
        disparity = figures["columns"][col] if col else {}
        results["bias"] = gate(
            "bias",
            figures["target_gap"],
            gates.bias_rate_gap_max,
            "<=",
            f"largest difference of a group's target rate ({figures['target_rate']}), synthetic vs train: {at}"
            + (f" (train {row['target_real']:.3f}, synthetic {row['target_synthetic']:.3f})" if row else "")
            + (
                f"; disparity {'-'.join(disparity['disparity_groups'])} of '{col}': "
                f"train {disparity['disparity_real']:+.3f}, synthetic {disparity['disparity_synthetic']:+.3f}"
                if "disparity_groups" in disparity
                else ""
            ),
        )
    return results


def _reference(ctx: GateContext) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """The train rows the synthetic rows are compared with, their weights, and notes on both:
    rows meeting `generate.conditions`, weighted to a rebalanced release's class shares."""
    import pandas as pd

    real, synthetic = ctx.train[ctx.main], ctx.synthetic[ctx.main]
    notes = []
    for col in ctx.cfg.generate.conditions:
        if col in real.columns and col in synthetic.columns:
            values = synthetic[col].dropna().unique()
            real = real[real[col].isin(values)]
            notes.append(f"train rows with '{col}' in {sorted(map(str, values))} (generate.conditions)")
    weights = pd.Series(1.0, index=real.index)
    rebalanced = ctx.blend_record.get("rebalance")
    if rebalanced and rebalanced["column"] in real.columns:
        keys = real[rebalanced["column"]].map(str)
        have = keys.value_counts(normalize=True)
        weights = keys.map(lambda k: rebalanced["achieved"].get(k, 0.0) / have[k]).astype(float)
        notes.append(f"train rows weighted to the release's shares of '{rebalanced['column']}' (rebalance)")
    return real, weights, notes


def _family(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    """Both bias gates from one computation on the main table."""
    problems = ctx.cfg.missing_sensitive(ctx.attributes(), "a learned column (PII and key columns are not)")
    if problems:
        raise InvalidInputError(
            f"release of '{ctx.cfg.name}'", problems, hint="Fix `sensitive` in params.yaml (or fit.pii)."
        )
    target = ctx.cfg.target
    typed = type_mismatch(ctx, "bias", [*ctx.cfg.sensitive, *([target] if target else [])])
    if typed is not None:
        raise typed
    real, weights, notes = _reference(ctx)
    figures = bias_figures(real, ctx.synthetic[ctx.main], ctx.cfg.sensitive, target, weights)
    figures["reference"] = "; ".join(notes) or "the train split"
    return bias_gates(figures, ctx.cfg.gates), {"bias": figures}


def _applies(ctx: GateContext) -> bool:
    return bool(ctx.cfg.sensitive) and ctx.has_synthetic_rows


BIAS = FamilyGate("bias", "bias_rate_gap_max", _family, lambda ctx: _applies(ctx) and bool(ctx.cfg.target))
BIAS_SHARE = FamilyGate("bias_share", "bias_share_gap_max", _family, _applies)
