"""The human report: one self-contained HTML page (inline SVG plots, no network, byte-stable).

`render` (validate stage) draws the verdict, the gate table, the validation figures (SDMetrics
properties, utility), the fidelity floors (per-column scores with type, metric and the floor, and
the worst pairs), the bias figures per sensitive group, real-vs-synthetic plots per column (id-like
columns listed instead: `pipelines.report_columns`), the association differences of every pair,
numeric and categorical (`pipelines.report_associations`), the privacy figures against their
holdout baselines and the distance-to-closest-record histogram (`pipelines.report_sections` draws
the tables from the figures). `with_lineage` (release stage) fills the lineage slot from the
release manifest. A Content-Security-Policy forbids every fetch, so the page works offline and
cannot leak anything when opened; the SVG ids are scoped per plot and their hash salt fixed
(`pipelines.report_svg`), so the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import report_associations, report_columns, report_sections
from pipelines.contracts import PROVENANCE
from pipelines.io import write_bytes
from pipelines.keys import key_columns
from pipelines.report_svg import pyplot, svg
from pipelines.tableset import layout

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig

LINEAGE_SLOT = "<!--synthgate:lineage-->"
_PENDING = '<p class="muted" id="lineage-pending">Not released yet: filled in when the release is published.</p>'
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
nav a{margin-right:.8rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;
vertical-align:top}
.pass{color:#126b12;font-weight:600}.fail{color:#b00020;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:.5rem}.grid figure{margin:0;width:260px}
figure svg{max-width:100%;height:auto}
figcaption{font-size:.8rem;text-align:center}code{background:#f4f4f4;padding:0 .2rem;word-break:break-all}
.muted{color:#666;font-size:.9rem}
"""


def _dcr_plot(dcr: dict[str, list[float]]) -> str | None:
    import numpy as np

    syn, ho = dcr.get("dcr_synthetic_train"), dcr.get("dcr_holdout_train")
    if not syn or not ho:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    hi = max(max(syn), max(ho)) or 1.0
    ax.hist(
        syn, bins=40, range=(0, hi), alpha=0.5, density=True, label=f"synthetic → train (median {np.median(syn):.3f})"
    )
    ax.hist(ho, bins=40, range=(0, hi), alpha=0.5, density=True, label=f"holdout → train (median {np.median(ho):.3f})")
    ax.set_title("distance to closest training record", fontsize=9)
    ax.set_xlabel("distance (scaled features)", fontsize=7)
    ax.legend(fontsize=7)
    return svg(fig, "dcr")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _figures_tables(figures: dict[str, Any]) -> str:
    """SDMetrics properties and utility figures, one small table each."""
    e = html.escape
    parts = []
    for title, key in (("SDMetrics properties", "sdmetrics"), ("Utility", "utility")):
        values = figures.get(key)
        if not isinstance(values, dict) or not values:
            continue
        rows = "".join(
            f"<tr><th>{e(str(k))}</th><td>{_fmt(v)}</td></tr>"
            for k, v in sorted(values.items())
            if not isinstance(v, (list, dict))
        )
        parts.append(f'<table class="figures" id="figures-{key}"><caption>{e(title)}</caption>{rows}</table>')
    return "".join(parts) or "<p>No figures recorded.</p>"


def render(
    cfg: DatasetConfig,
    validation: dict[str, Any],
    blended: pd.DataFrame,
    train: pd.DataFrame,
    metadata: Any,
    dcr: dict[str, list[float]],
) -> str:
    """The report page: verdict, gates, figures, per-column scores and plots, associations, privacy, DCR."""
    e = html.escape
    synth = blended[blended[PROVENANCE] == "synthetic"]
    gates = validation["gates"]
    n_pass = sum(bool(g["passed"]) for g in gates)
    verdict = "PASSED: releasable" if validation["passed"] else "BLOCKED: not released"
    rows = "".join(
        f"<tr><td>{e(g['name'])}</td><td>{g['value']:.4f}</td><td>{e(g['comparison'])} "
        f"{g['threshold']:.4f}</td><td class={'pass' if g['passed'] else 'fail'}>"
        f"{'pass' if g['passed'] else 'FAIL'}</td><td>{e(g['explanation'])}</td></tr>"
        for g in gates
    )
    columns = [c for c in train.columns if c in synth.columns]
    lay = layout(cfg)
    found = report_columns.profiles(
        train[columns], report_columns.sdtypes(metadata, lay.main), key_columns(cfg.source, lay.main)
    )
    types = report_columns.type_labels(report_columns.sdtypes(metadata), found, None if lay.single else lay.main)
    kinds = {p.name: p.kind for p in found if p.kind != "id"}
    corr = report_associations.section(train[list(kinds)], synth[list(kinds)], kinds, cfg.seed)
    dcr_svg = _dcr_plot(dcr) or "<p>No distances computed.</p>"
    figures = validation.get("figures") or {}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Synthgate report: {e(cfg.name)}</title>
<style>{_CSS}</style></head><body>
<h1>Synthgate report: <code>{e(cfg.name)}</code></h1>
<nav><a href="#gates-h">Gates</a><a href="#figures-h">Figures</a><a href="#floors-h">Worst columns</a>
<a href="#bias-h">Bias</a><a href="#columns-h">Columns</a><a href="#correlations-h">Correlations</a>
<a href="#dcr-h">Privacy</a><a href="#lineage-h">Lineage</a></nav>
<p id="verdict" class="{"pass" if validation["passed"] else "fail"}">{verdict} ({n_pass}/{len(gates)} gates passed)</p>
<p>{len(blended)} rows ({len(synth)} synthetic) from synthesizer <code>{e(cfg.fit.synthesizer)}</code>,
seed {cfg.seed}, blend <code>{e(cfg.blend.strategy)}</code>.</p>
<h2 id="gates-h">Gates</h2>
<table id="gates"><thead><tr><th>gate</th><th>figure</th><th>threshold</th><th>verdict</th>
<th>explanation</th></tr></thead><tbody>{rows}</tbody></table>
<h2 id="figures-h">Figures</h2><div id="figures">{_figures_tables(figures)}</div>
<h2 id="floors-h">Fidelity floors: the worst columns and pairs</h2>
<div id="floors">{report_sections.floors(figures, types, cfg.gates.column_shape_min)}</div>
<h2 id="bias-h">Bias: sensitive groups, train vs synthetic</h2><div id="bias">{report_sections.bias(figures)}</div>
<h2 id="columns-h">Real vs synthetic, per column</h2>{report_columns.section(train, synth, found)}
<h2 id="correlations-h">Association difference, every pair of columns</h2><div id="correlations">{corr}</div>
<h2 id="dcr-h">Privacy: against the holdout baseline</h2><div id="privacy">{report_sections.privacy(figures)}</div>
<div id="dcr">{dcr_svg}</div>
<h2 id="canaries-h">Canaries: memorisation in a shadow fit</h2>
<div id="canaries">{report_sections.canaries(figures)}</div>
<h2 id="dp-h">Differential privacy</h2><div id="dp">{report_sections.differential_privacy(figures)}</div>
<h2 id="lineage-h">Lineage</h2>
{_PENDING}{LINEAGE_SLOT}
</body></html>
"""


def _differences(params: dict[str, Any], defaults: dict[str, Any] | None) -> list[tuple[str, Any, Any]] | None:
    if defaults is None:
        return None

    from pipelines.io import flatten

    eff, dflt = flatten({k: params.get(k) for k in defaults}), flatten(defaults)
    return [(k, eff.get(k), dflt.get(k)) for k in sorted(set(eff) | set(dflt)) if eff.get(k) != dflt.get(k)]


def with_lineage(page: str, manifest: dict[str, Any]) -> str:
    """The report with the release's lineage summary (from the manifest) in its slot."""
    e = html.escape
    m = manifest
    src, split, model, mlf = m.get("source", {}), m.get("split", {}), m.get("model", {}), m.get("mlflow", {})
    runner = ", ".join(f"{k}={v}" for k, v in (m.get("runner") or {}).items())
    dirty = m.get("git_dirty")
    dirty_text = f"yes {', '.join(m.get('git_dirty_paths') or [])}" if dirty else "no" if dirty is False else "?"
    items = [
        (
            "release",
            (
                f"candidate of DVC experiment {m['experiment'].get('name')} (not published)"
                if m.get("experiment")
                else f"v{m.get('version')}"
            )
            + f" created {m.get('created_at')} by synthgate {m.get('synthgate_version')}",
        ),
        ("source", f"{src.get('path')} ({src.get('format')}, {src.get('rows')} rows) sha256 {src.get('sha256')}"),
        (
            "split",
            f"train {split.get('train_rows')} rows / holdout {split.get('holdout_rows')} rows "
            f"(holdout_fraction {split.get('holdout_fraction')}, seed {split.get('seed')}, "
            f"stratified by {split.get('stratified_by')})",
        ),
        ("code", f"git {m.get('git_commit')} (uncommitted changes: {dirty_text.strip()})"),
        (
            "model",
            f"{model.get('synthesizer')}; sha256 {model.get('sha256')}; registered "
            f"{model.get('registered_model')} v{model.get('registered_version')}",
        ),
        (
            "GX release suite",
            f"{(m.get('gx') or {}).get('suite')}: {'success' if (m.get('gx') or {}).get('success') else 'FAILED'}",
        ),
        ("MLflow", f"experiment {mlf.get('experiment')}, pipeline run {mlf.get('run_id')}"),
        ("stage runs", ", ".join(f"{k} {v}" for k, v in (mlf.get("stage_runs") or {}).items())),
        ("run by", runner),
    ]
    rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(str(v))}</code></td></tr>" for k, v in items)
    files = "".join(
        f"<tr><td><code>{e(f['path'])}</code></td><td>{e(str(f.get('rows') or ''))}</td>"
        f"<td><code>{e(f['sha256'] or 'this page (digest in manifest.json)')}</code></td></tr>"
        for f in m.get("files", [])
    )
    diffs = _differences(m.get("params") or {}, m.get("param_defaults"))
    if diffs is None:
        params = "<p class=muted>Defaults were not recorded with this release.</p>"
    else:
        params = (
            (
                "<table id=params><thead><tr><th>param</th><th>effective</th><th>default</th></tr></thead>"
                + "".join(
                    f"<tr><td>{e(k)}</td><td><code>{e(json.dumps(v))}</code></td>"
                    f"<td><code>{e(json.dumps(d))}</code></td></tr>"
                    for k, v, d in diffs
                )
                + "</table>"
            )
            if diffs
            else "<p>Every param has its default value.</p>"
        )
    section = (
        f'<table id="lineage">{rows}</table>'
        f"<h3>Release files</h3><table id=files><thead><tr><th>file</th><th>rows</th><th>sha256</th>"
        f"</tr></thead>{files}</table>"
        f"<h3>Params that differ from the defaults</h3>{params}"
        f"<p class=muted>Verify: <code>sha256sum {e(m['files'][0]['path'])}</code>; full chain: "
        f"<code>synthgate lineage {e(str(m.get('dataset')))}@{m.get('version')}</code>; replay: "
        f"<code>synthgate reproduce {e(str(m.get('dataset')))}@{m.get('version')}</code>.</p>"
    )
    return page.replace(_PENDING + LINEAGE_SLOT, section).replace(LINEAGE_SLOT, section)


def write(path: Path, page: str) -> None:
    """Atomically write a report page."""
    write_bytes(path, page.encode("utf-8"))
