"""The human report: one self-contained HTML page (inline SVG plots, no network)."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contracts import PROVENANCE
from pipelines.io import write_bytes

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig

LINEAGE_SLOT = "<!--synthgate:lineage-->"
MAX_PLOTTED_COLUMNS = 16

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.pass{color:#126b12;font-weight:600}.fail{color:#b00020;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:.5rem}.grid figure{margin:0;width:260px}
figcaption{font-size:.8rem;text-align:center}code{background:#f4f4f4;padding:0 .2rem}
"""


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _column_plot(col: str, real: pd.Series, synth: pd.Series) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(3.2, 2.2))
    if pd.api.types.is_numeric_dtype(real) and not pd.api.types.is_bool_dtype(real):
        r, s = real.dropna().astype(float), synth.dropna().astype(float)
        lo, hi = (min(r.min(), s.min()), max(r.max(), s.max())) if len(s) else (r.min(), r.max())
        bins = 30 if hi > lo else 1
        ax.hist(r, bins=bins, range=(lo, hi), alpha=0.5, density=True, label="real")
        ax.hist(s, bins=bins, range=(lo, hi), alpha=0.5, density=True, label="synthetic")
    elif pd.api.types.is_datetime64_any_dtype(real):
        ax.hist(real.dropna(), bins=30, alpha=0.5, density=True, label="real")
        ax.hist(synth.dropna(), bins=30, alpha=0.5, density=True, label="synthetic")
    else:
        top = real.astype(str).value_counts(normalize=True).head(12)
        syn = synth.astype(str).value_counts(normalize=True).reindex(top.index).fillna(0)
        x = range(len(top))
        ax.bar([i - 0.2 for i in x], top.values, width=0.4, label="real")
        ax.bar([i + 0.2 for i in x], syn.values, width=0.4, label="synthetic")
        ax.set_xticks(list(x), [str(v)[:10] for v in top.index], rotation=45, ha="right", fontsize=7)
    ax.set_title(col, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    return _svg(fig)


def _corr_plot(real: pd.DataFrame, synth: pd.DataFrame) -> str | None:
    import matplotlib.pyplot as plt

    num = [c for c in real.columns if real[c].dtype.kind in "fiu"]
    if len(num) < 2:
        return None
    diff = (real[num].corr() - synth[num].corr()).abs()
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    im = ax.imshow(diff.to_numpy(), vmin=0, vmax=1, cmap="Reds")
    ax.set_xticks(range(len(num)), num, rotation=90, fontsize=7)
    ax.set_yticks(range(len(num)), num, fontsize=7)
    ax.set_title("|corr(real) - corr(synthetic)|", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _svg(fig)


def _dcr_plot(dcr: dict[str, list[float]]) -> str | None:
    import matplotlib.pyplot as plt

    syn, ho = dcr.get("dcr_synthetic_train"), dcr.get("dcr_holdout_train")
    if not syn or not ho:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    hi = max(max(syn), max(ho)) or 1.0
    ax.hist(syn, bins=40, range=(0, hi), alpha=0.5, density=True, label="synthetic → train")
    ax.hist(ho, bins=40, range=(0, hi), alpha=0.5, density=True, label="holdout → train")
    ax.set_title("distance to closest training record", fontsize=9)
    ax.legend(fontsize=7)
    return _svg(fig)


def render(cfg: DatasetConfig, validation: dict[str, Any], blended: pd.DataFrame,
           train: pd.DataFrame, metadata: Any, dcr: dict[str, list[float]]) -> str:
    """The report page: verdict, gate table, per-column plots, correlations, DCR histogram."""
    e = html.escape
    synth = blended[blended[PROVENANCE] == "synthetic"]
    verdict = "PASSED: releasable" if validation["passed"] else "BLOCKED: not released"
    rows = "".join(
        f"<tr><td>{e(g['name'])}</td><td>{g['value']:.4f}</td><td>{e(g['comparison'])} "
        f"{g['threshold']:.4f}</td><td class={'pass' if g['passed'] else 'fail'}>"
        f"{'pass' if g['passed'] else 'FAIL'}</td><td>{e(g['explanation'])}</td></tr>"
        for g in validation["gates"]
    )
    plots = "".join(
        f"<figure>{_column_plot(c, train[c], synth[c])}<figcaption>{e(c)}</figcaption></figure>"
        for c in list(train.columns)[:MAX_PLOTTED_COLUMNS]
    )
    corr = _corr_plot(train, synth) or "<p>Fewer than two numeric columns.</p>"
    dcr_svg = _dcr_plot(dcr) or "<p>No distances computed.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Synthgate report: {e(cfg.name)}</title>
<style>{_CSS}</style></head><body>
<h1>Synthgate report: <code>{e(cfg.name)}</code></h1>
<p id="verdict" class="{'pass' if validation['passed'] else 'fail'}">{verdict}</p>
<p>{len(blended)} rows ({len(synth)} synthetic) from synthesizer <code>{e(cfg.fit.synthesizer)}</code>,
seed {cfg.seed}, blend <code>{e(cfg.blend.strategy)}</code>.</p>
<h2>Gates</h2>
<table id="gates"><thead><tr><th>gate</th><th>figure</th><th>threshold</th><th>verdict</th>
<th>explanation</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Real vs synthetic, per column</h2><div class="grid" id="columns">{plots}</div>
<h2>Correlation difference</h2><div id="correlations">{corr}</div>
<h2>Privacy: distance to closest record</h2><div id="dcr">{dcr_svg}</div>
{LINEAGE_SLOT}
</body></html>
"""


def with_lineage(page: str, manifest: dict[str, Any]) -> str:
    """The report with the release's lineage summary filled in."""
    e = html.escape
    items = {
        "version": manifest.get("version"),
        "created_at": manifest.get("created_at"),
        "source": f"{manifest['source'].get('path')} (sha256 {manifest['source'].get('sha256')})",
        "code": f"{manifest.get('git_commit')} (dirty: {manifest.get('git_dirty')})",
        "model": f"{manifest['model'].get('registered_model')} v{manifest['model'].get('registered_version')}"
                 f" (sha256 {manifest['model'].get('sha256')})",
        "mlflow run": f"{manifest['mlflow'].get('experiment')} / {manifest['mlflow'].get('run_id')}",
        "runner": ", ".join(f"{k}={v}" for k, v in manifest.get("runner", {}).items()),
    }
    rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(str(v))}</code></td></tr>" for k, v in items.items())
    return page.replace(LINEAGE_SLOT, f'<h2>Lineage</h2><table id="lineage">{rows}</table>')


def write(path: Path, page: str) -> None:
    """Atomically write a report page."""
    write_bytes(path, page.encode("utf-8"))
