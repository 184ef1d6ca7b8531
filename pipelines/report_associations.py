"""The report's association differences: every pair of columns, real vs synthetic, numbers and categories.

Per pair, one association measured on each side: Pearson r for two numeric columns (numbers,
whole numbers, dates as instants), Cramér's V for two categorical ones (booleans included; a
missing value is a category), the correlation ratio η for a categorical and a numeric one (how
much of the numeric column's variance the categories explain). V and η lie in [0, 1], r in
[-1, 1]; a side with nothing to measure (a constant column) counts as no association (0). The
page shows |real − synthetic| as a heatmap and the worst pairs as a table. Categorical columns
with more than `MAX_CATEGORIES` real values are skipped and named (a contingency table that
sparse measures its own noise); each side is sampled to `SAMPLE_ROWS` rows (fixed seed), so a
large table stays quick.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pipelines.report_svg import pyplot, svg

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_CATEGORIES = 50
"""A categorical column with more distinct real values than this is left out of the associations."""

SAMPLE_ROWS = 10_000
"""Rows of each side the associations are measured on (a seeded sample of larger tables)."""

SHOWN = 10
"""Pairs listed in the worst-first table."""

NUMERIC_KINDS = frozenset({"integer", "numeric", "datetime"})
"""Profile kinds (`pipelines.report_columns`) measured as numbers; `boolean` and `categorical` are categories."""

MEASURES = {"nn": "Pearson r", "cc": "Cramér's V", "cn": "correlation ratio η"}

e = html.escape


def _encode(values: pd.Series, kind: str) -> tuple[np.ndarray, int]:
    """A numeric column as floats (NaN missing; dates, parsed if text, as nanoseconds), or a
    categorical one as codes (missing its own code) with their count."""
    import warnings

    import numpy as np
    import pandas as pd

    if kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(values):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a text column parsed value by value
            values = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_convert(None)
    if kind in NUMERIC_KINDS:
        if pd.api.types.is_datetime64_any_dtype(values):
            if getattr(values.dt, "tz", None) is not None:
                values = values.dt.tz_convert(None)
            ns = values.to_numpy("datetime64[ns]").astype("int64").astype(float)
            return np.where(values.isna().to_numpy(), np.nan, ns), 0
        return pd.to_numeric(values, errors="coerce").to_numpy(float), 0
    codes, uniques = pd.factorize(values.astype(object).where(values.notna(), "(missing)").astype(str))
    return codes.astype(np.int64), len(uniques)


def cramers_v(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> float:
    """Cramér's V of two coded categorical columns (0 when either is constant)."""
    import numpy as np

    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    n, k = table.sum(), min(table.shape)
    if n == 0 or k < 2:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return min(1.0, math.sqrt(chi2 / (n * (k - 1))))


def correlation_ratio(codes: np.ndarray, k: int, x: np.ndarray) -> float:
    """η of a numeric column over a coded categorical one: sqrt(between-group / total sum of squares)."""
    import numpy as np

    present = ~np.isnan(x)
    codes, x = codes[present], x[present]
    if len(x) < 2:
        return 0.0
    x = x - x.mean()
    total = float((x**2).sum())
    if total <= 0:
        return 0.0
    count = np.bincount(codes, minlength=k)
    sums = np.bincount(codes, weights=x, minlength=k)
    used = count > 0
    between = float((sums[used] ** 2 / count[used]).sum())
    return min(1.0, math.sqrt(max(between, 0.0) / total))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r on the rows where both are present (0 when either is constant there)."""
    import numpy as np

    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _measure(ea: tuple[np.ndarray, int], eb: tuple[np.ndarray, int], kind: str) -> float:
    if kind == "nn":
        return pearson(ea[0], eb[0])
    if kind == "cc":
        return cramers_v(ea[0], ea[1], eb[0], eb[1])
    cat, num = (ea, eb) if ea[1] else (eb, ea)
    return correlation_ratio(cat[0], cat[1], num[0])


def differences(
    real: pd.DataFrame, synth: pd.DataFrame, kinds: Mapping[str, str], seed: int = 0
) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """(columns compared, one row per pair worst first, columns skipped with why) for the columns
    of `kinds` (column -> profile kind; id-like columns are the caller's to leave out)."""
    real = real.sample(n=SAMPLE_ROWS, random_state=seed) if len(real) > SAMPLE_ROWS else real
    synth = synth.sample(n=SAMPLE_ROWS, random_state=seed) if len(synth) > SAMPLE_ROWS else synth
    skipped, columns = {}, []
    for col, kind in kinds.items():
        distinct = real[col].nunique(dropna=True)
        if kind not in NUMERIC_KINDS and distinct > MAX_CATEGORIES:
            skipped[col] = f"{distinct} categories (more than {MAX_CATEGORIES})"
        else:
            columns.append(col)
    numeric = {c: kinds[c] in NUMERIC_KINDS for c in columns}
    enc_r = {c: _encode(real[c], kinds[c]) for c in columns}
    enc_s = {c: _encode(synth[c], kinds[c]) for c in columns}
    rows = []
    for a, b in combinations(columns, 2):
        kind = "nn" if numeric[a] and numeric[b] else "cc" if not (numeric[a] or numeric[b]) else "cn"
        r, s = _measure(enc_r[a], enc_r[b], kind), _measure(enc_s[a], enc_s[b], kind)
        rows.append({"columns": (a, b), "measure": MEASURES[kind], "real": r, "synthetic": s, "diff": abs(r - s)})
    rows.sort(key=lambda row: (-row["diff"], row["columns"]))
    return columns, rows, skipped


def heatmap(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """|real − synthetic| of every pair as a symmetric heatmap (inline SVG)."""
    import numpy as np

    index = {c: i for i, c in enumerate(columns)}
    grid = np.full((len(columns), len(columns)), np.nan)
    for row in rows:
        i, j = (index[c] for c in row["columns"])
        grid[i, j] = grid[j, i] = row["diff"]
    plt = pyplot()
    side = min(max(4.5, 0.28 * len(columns) + 1.5), 12.0)
    fig, ax = plt.subplots(figsize=(side, side * 0.85))
    cmap = plt.get_cmap("Reds").with_extremes(bad="#f4f4f4")
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap=cmap)
    labels = [c[:16] for c in columns]
    ax.set_xticks(range(len(columns)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(columns)), labels, fontsize=7)
    ax.set_title("|association(real) − association(synthetic)|", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return svg(fig, "corr")


def section(real: pd.DataFrame, synth: pd.DataFrame, kinds: Mapping[str, str], seed: int = 0) -> str:
    """The heatmap, the worst pairs (measure, real, synthetic, difference) and the columns skipped."""
    columns, rows, skipped = differences(real, synth, kinds, seed)
    note = ""
    if skipped:
        named = ", ".join(f"<code>{e(c)}</code> ({e(why)})" for c, why in skipped.items())
        note = f'<p class="muted" id="associations-skipped">Skipped: {named}.</p>'
    if len(columns) < 2:
        return "<p>Fewer than two columns to compare.</p>" + note
    sampled = (
        f" (measured on {SAMPLE_ROWS:,} sampled rows of each side)" if max(len(real), len(synth)) > SAMPLE_ROWS else ""
    )
    body = "".join(
        f"<tr><td>{' × '.join(f'<code>{e(c)}</code>' for c in r['columns'])}</td><td>{e(r['measure'])}</td>"
        f"<td>{r['real']:.3f}</td><td>{r['synthetic']:.3f}</td><td>{r['diff']:.3f}</td></tr>"
        for r in rows[:SHOWN]
    )
    table = (
        f'<table id="associations"><caption>The {min(SHOWN, len(rows))} pairs whose association changed most, of '
        f"{len(rows)}{sampled}</caption><thead><tr><th>pair</th><th>measure</th><th>real</th><th>synthetic</th>"
        f"<th>|real − synthetic|</th></tr></thead><tbody>{body}</tbody></table>"
    )
    legend = (
        '<p class="muted">Pearson r for two numeric columns (dates as instants), Cramér\'s V for two '
        "categorical ones, the correlation ratio η for a categorical and a numeric one.</p>"
    )
    return heatmap(columns, rows) + legend + table + note
