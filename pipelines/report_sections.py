"""Report sections drawn from validate's figures (`validation.json` `figures`), as HTML tables.

The fidelity floors (per-column shape scores with type, metric and verdict against the floor, and
the worst column pairs, worst first), the bias figures (per sensitive group: share of rows and
target rate, train vs synthetic), the privacy
figures (each measure on the synthetic rows next to its holdout baseline, and the columns left out)
and the differential privacy of the model (target, spent epsilon, the dataset's ledger and budget).
A section whose figures are absent (a gate that did not apply) says so in one line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

SHOWN = 10
"""Rows of a worst-first table shown before the rest fold into a <details> element."""

e = html.escape


def _num(value: Any, digits: int = 4) -> str:
    if value is None or value != value:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return e(str(value))


def _table(table_id: str, head: list[str], rows: list[list[str]], caption: str = "") -> str:
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    ths = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table id="{table_id}">{cap}<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>'


def _score(row: dict[str, Any]) -> list[str]:
    return [_num(row["score"]), _num(row.get("allowance"))]


def _against(row: dict[str, Any], floor: float | None) -> str:
    """A column's score against the floor, as the column_shape gate judges it (allowance included)."""
    score, allowance = row["score"], row.get("allowance") or 0.0
    if floor is None or score is None:
        return "–"
    if score < floor - allowance:
        return f'<span class="fail">below {floor:g}</span>'
    return f"within sampling noise of {floor:g}" if score < floor else "ok"


def floors(figures: dict[str, Any], types: Mapping[str, str] | None = None, floor: float | None = None) -> str:
    """Per-column shapes (ten worst, the rest folded) with each column's type and its score against
    `floor` (`gates.column_shape_min`), and the ten worst column pairs."""
    shapes, pairs = figures.get("column_shapes"), figures.get("pair_trends")
    if shapes is None or pairs is None:
        return "<p>No fidelity floors computed (no synthetic rows).</p>"
    types = types or {}
    head = ["column", "type", "metric", "score", "sampling allowance", "floor"]
    rows = [
        [
            f"<code>{e(r['column'])}</code>",
            e(types.get(r["column"], "–")),
            e(r["metric"]),
            *_score(r),
            _against(r, floor),
        ]
        for r in shapes
    ]
    caption = f"Column shapes, worst first ({len(rows)} columns"
    caption += f"; floor gates.column_shape_min = {floor:g} less the sampling allowance)" if floor is not None else ")"
    out = _table("column-shapes", head, rows[:SHOWN], caption)
    if rows[SHOWN:]:
        rest = _table("column-shapes-rest", head, rows[SHOWN:])
        out += f"<details><summary>{len(rows) - SHOWN} more column(s)</summary>{rest}</details>"
    head = ["pair", "metric", "score", "sampling allowance", "real r", "synthetic r"]
    rows = [
        [
            " × ".join(f"<code>{e(c)}</code>" for c in r["columns"]),
            e(r["metric"]),
            *_score(r),
            _num(r.get("real_correlation"), 3),
            _num(r.get("synthetic_correlation"), 3),
        ]
        for r in pairs[:SHOWN]
    ]
    out += _table("pair-trends", head, rows, f"The {len(rows)} worst of {len(pairs)} column pairs (every pair)")
    left = figures.get("floors_left_out") or {}
    if left:
        named = ", ".join(f"<code>{e(c)}</code> ({e(why)})" for c, why in left.items())
        out += f'<p class="muted">Left out of both floors: {named}.</p>'
    return out


def bias(figures: dict[str, Any]) -> str:
    """Per sensitive column, each group's share of the rows and target rate, train vs synthetic."""
    b = figures.get("bias")
    if not b:
        return "<p>No sensitive columns declared (params.yaml <code>sensitive:</code>).</p>"
    target = b.get("target")
    parts = [
        f'<p class="muted">Reference: {e(str(b.get("reference", "")))}; target rate: '
        f"{e(str(b.get('target_rate') or 'no target'))}. Rates are compared for groups of at least "
        f"{b.get('min_group_rows')} rows on both sides.</p>"
    ]
    for col, c in b.get("columns", {}).items():
        head = ["group", "rows train", "rows synthetic", "share train", "share synthetic", "share gap"]
        if target:
            head += ["target rate train", "target rate synthetic", "rate gap", "rate compared"]
        rows = []
        for group, g in c["groups"].items():
            row = [f"<code>{e(group)}</code>", _num(g["rows_real"]), _num(g["rows_synthetic"])]
            row += [_num(g["share_real"], 3), _num(g["share_synthetic"], 3), _num(g["share_gap"], 3)]
            if target:
                row += [_num(g.get("target_real"), 3), _num(g.get("target_synthetic"), 3)]
                row += [_num(g.get("target_gap"), 3), "yes" if g.get("compared") else "no"]
            rows.append(row)
        caption = f"{col}"
        if target and c.get("disparity_groups"):
            hi, lo = c["disparity_groups"]
            caption += (
                f": target rate {hi} minus {lo}, train {_num(c.get('disparity_real'), 3)}, "
                f"synthetic {_num(c.get('disparity_synthetic'), 3)}"
            )
        parts.append(_table("bias-" + re.sub(r"[^\w-]", "_", col), head, rows, caption))
    return "".join(parts)


def privacy(figures: dict[str, Any]) -> str:
    """Each privacy measure on the synthetic rows next to its holdout baseline, and the columns used."""
    p = figures.get("privacy")
    if not p:
        return "<p>No privacy figures computed.</p>"
    head = ["measure", "synthetic rows", "holdout rows (baseline)", "synthetic vs holdout", "sampling allowance"]
    rows = [
        [
            "share identical to a training row (exact copies)",
            _num(p.get("exact_copy_share")),
            _num(p.get("holdout_exact_copy_share")),
            f"{_num(p.get('exact_copy_excess'))} (difference)",
            _num(p.get("exact_copy_allowance")),
        ],
        [
            f"share within {_num(p.get('dcr_threshold'))} of a training row (DCR low tail: the holdout's "
            f"{_num(p.get('dcr_quantile'), 2)} quantile)",
            _num(p.get("dcr_low_tail_share")),
            _num(p.get("holdout_dcr_low_tail_share")),
            f"{_num(p.get('dcr_low_tail_excess'))} (difference)",
            _num(p.get("dcr_low_tail_allowance")),
        ],
        [
            "SDMetrics DCRBaselineProtection",
            _num(p.get("dcr_baseline_protection")),
            _num(p.get("holdout_dcr_baseline_protection")),
            f"{_num(p.get('dcr_baseline_protection_ratio'))} (ratio)",
            "–",
        ],
        [
            "median distance to the closest training record",
            _num(p.get("dcr_synthetic_train_median")),
            _num(p.get("dcr_holdout_train_median")),
            "–",
            "–",
        ],
    ]
    table = f" of table <code>{e(p['table'])}</code>" if p.get("table") else ""
    left = p.get("left_out") or {}
    dropped = ", ".join(f"<code>{e(c)}</code> ({e(why)})" for c, why in left.items()) or "none"
    columns = ", ".join(f"<code>{e(c)}</code>" for c in p.get("columns", []))
    return (
        _table("privacy-baselines", head, rows, "Privacy: synthetic rows vs real holdout rows, against train")
        + f'<p id="privacy-columns">{_num(p.get("rows_compared"))} synthetic and '
        f"{_num(p.get('holdout_rows_compared'))} holdout rows{table} against "
        f"{_num(p.get('train_rows_referenced'))} training rows ({_num(p.get('attack_rows_compared'))} each for "
        f"DCRBaselineProtection), on {len(p.get('columns', []))} columns: {columns}. "
        f"Left out: {dropped}.</p>"
    )


def canaries(figures: dict[str, Any]) -> str:
    """The canary check: planted records and never-planted controls, exposed and reproduced."""
    c = figures.get("canaries")
    if not c:
        return "<p>Canaries are off for this dataset (<code>gates.canaries: 0</code>).</p>"
    k = c["planted"]
    head = ["records", "count", "exposed", "reproduced", "exposed share"]
    rows = [
        ["planted in the shadow fit", str(k), str(c["exposed"]), str(c["reproduced"]), _num(c["exposed_share"])],
        ["never planted (controls)", str(k), str(c["control_exposed"]), "–", _num(c["control_exposed_share"])],
    ]
    caption = (
        f"A shadow {html.escape(str(c.get('engine', '')))} fit on the train split plus {k} outlier records, "
        f"{c['synthetic_rows']} rows sampled; a record is exposed when a row equals it on "
        f"{len(c['columns'])} columns or lies within {_num(c['radius_share'], 2)} of its distance to the closest "
        f"training row. Figure: planted minus control share = {_num(c['exposure_excess'])}"
        f" ({_num(c.get('seconds', 0), 1)} s)."
    )
    return _table("canaries", head, rows, caption)


def differential_privacy(figures: dict[str, Any]) -> str:
    """The model's DP target and spent epsilon, and the dataset's privacy ledger against its budget."""
    d = figures.get("differential_privacy")
    if not d:
        return "<p>No differential privacy record (the fit predates it).</p>"
    totals = (d.get("ledger") or {}).get("totals") or {}
    budget = d.get("budget")
    ledger = (
        f"Privacy ledger of the dataset (<code>{e(str((d.get('ledger') or {}).get('path', '')))}</code>, sequential "
        f"composition): epsilon {_num(totals.get('epsilon'))}, delta {_num(totals.get('delta'), 8)} over "
        f"{totals.get('dp_models', 0)} DP model(s); {totals.get('non_dp_models', 0)} model(s) without DP; budget "
        f"{_num(budget) if budget is not None else 'none (gates.privacy_budget_max: null)'}."
    )
    if not d.get("dp"):
        return (
            '<p id="dp-model">This model was fitted <strong>without differential privacy</strong> '
            f"(no <code>fit.privacy</code>): it carries no DP guarantee.</p><p>{ledger}</p>"
        )
    target, spent = d.get("target") or {}, d["spent"]
    head = ["", "epsilon", "delta"]
    rows = [
        ["target (fit.privacy)", _num(target.get("epsilon")), _num(target.get("delta"), 8)],
        ["spent: the weights kept", _num(spent.get("epsilon")), _num(spent.get("delta"), 8)],
        ["after the last step trained", _num(spent.get("epsilon_last_step")), _num(spent.get("delta"), 8)],
    ]
    return _table("dp-model", head, rows, "Differential privacy of this model (as the engine reports it)") + (
        f"<p>{ledger}</p>"
    )
