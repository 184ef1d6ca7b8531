"""The report's per-column view: what each column is, and real vs synthetic drawn to suit it.

Each plotted column gets a kind: `integer` (whole numbers: integer-aligned bins, integer ticks),
`numeric`, `datetime` (date ticks), `boolean` or `categorical` (bars of the most common values).
Id-like columns are listed, not drawn: their only shape is "all distinct". A column is id-like when
it is a declared key (`pipelines.keys`), has sdtype `id` in the SDV metadata, is a text column
with at least `fidelity.ID_DISTINCT_SHARE` of its values distinct (the fidelity floors' rule), or
holds distinct whole numbers packed densely (a row number, gaps from the split aside). Bars show each
bin's share of the rows, so the two sides compare whatever their sizes.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.fidelity import ID_DISTINCT_SHARE
from pipelines.report_svg import pyplot, svg

if TYPE_CHECKING:
    import pandas as pd

MAX_PLOTTED_COLUMNS = 16
"""Columns drawn (in train order, id-like ones left out); the rest are named below the plots."""

MAX_BINS = 30
"""Bins of a numeric or date histogram; whole-number bins are widened to keep within it."""

MIN_ID_ROWS = 20
"""Rows a whole-number column needs before all-distinct values make it id-like (a few rows are often distinct)."""

DENSE_SPAN = 2
"""A whole-number column whose distinct values span less than this many times its rows counts rows
(a row number, even with a train split's gaps); sparse distinct numbers (amounts) are measurements."""

TOP_CATEGORIES = 12
"""Bars of a categorical plot: the real column's most common values."""

e = html.escape


@dataclass(frozen=True)
class Profile:
    """One column as the report sees it: its kind, and for an id-like column why and how many values."""

    name: str
    kind: str
    note: str = ""


def sdtypes(metadata: Any, table: str | None = None) -> dict[str, str]:
    """Column -> sdtype from SDV metadata (a Metadata object or its dict; None: nothing known).

    `table` picks one table; without it every table's columns are named `table.column`, or just
    `column` when there is one table (as the fidelity figures name them)."""
    if metadata is None:
        return {}
    tables = (metadata if isinstance(metadata, Mapping) else metadata.to_dict()).get("tables", {})
    if table is not None:
        columns = tables.get(table, {}).get("columns", {})
        return {c: str(spec.get("sdtype")) for c, spec in columns.items()}
    single = len(tables) == 1
    return {
        (c if single else f"{t}.{c}"): str(spec.get("sdtype"))
        for t, spec_t in tables.items()
        for c, spec in spec_t.get("columns", {}).items()
    }


def _distinct_note(label: str, values: pd.Series) -> str:
    present = values.dropna()
    distinct, n = int(present.nunique()), len(present)
    if distinct == n:
        return f"{label}: unique, {n} values"
    return f"{label}: {distinct} distinct values in {n} rows ({distinct / max(n, 1):.0%})"


def _whole(values: pd.Series) -> bool:
    import numpy as np

    present = values.dropna()
    if values.dtype.kind in "iu":
        return True
    return values.dtype.kind == "f" and len(present) > 0 and bool(np.all(np.mod(present.to_numpy(), 1) == 0))


def profile(name: str, real: pd.Series, sdtype: str | None = None, key: bool = False) -> Profile:
    """The kind of one column from its train values (and sdtype, if known); id-like ones carry a note."""
    import pandas as pd

    present = real.dropna()
    if key:
        return Profile(name, "id", _distinct_note("key", real))
    if sdtype == "id":
        return Profile(name, "id", _distinct_note("id (metadata sdtype)", real))
    if pd.api.types.is_bool_dtype(real) or sdtype == "boolean":
        return Profile(name, "boolean")
    if pd.api.types.is_datetime64_any_dtype(real) or sdtype == "datetime":
        return Profile(name, "datetime")
    if pd.api.types.is_numeric_dtype(real):
        if not _whole(real):
            return Profile(name, "numeric")
        n = len(present)
        if n >= MIN_ID_ROWS and present.nunique() == n and present.max() - present.min() < DENSE_SPAN * n:
            return Profile(name, "id", _distinct_note("id-like (distinct whole numbers, densely packed)", real))
        return Profile(name, "integer")
    if len(present) > 1 and present.nunique() / len(present) >= ID_DISTINCT_SHARE:
        return Profile(name, "id", _distinct_note("id-like", real))
    return Profile(name, "categorical")


def profiles(train: pd.DataFrame, types: Mapping[str, str], keys: Collection[str]) -> list[Profile]:
    """Every train column's profile, in train order."""
    return [profile(c, train[c], types.get(c), c in keys) for c in train.columns]


def type_labels(types: Mapping[str, str], found: list[Profile], table: str | None = None) -> dict[str, str]:
    """What the score table calls each column's type: its sdtype (`types`, named as the fidelity
    figures name columns), else the kind of its profile; whole numbers said. `found` are the
    profiles of one table, named `table.column` when `table` is given."""
    kinds = {(f"{table}.{p.name}" if table else p.name): p.kind for p in found}
    out = {}
    for name in dict.fromkeys([*types, *kinds]):
        label, kind = types.get(name) or kinds[name], kinds.get(name)
        out[name] = f"{label} (whole numbers)" if kind == "integer" and label != "integer" else label
    return out


def _dates(values: pd.Series) -> Any:
    import matplotlib.dates as mdates
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a text column parsed value by value
        parsed = values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return mdates.date2num(parsed.dropna().to_numpy("datetime64[ns]"))


def _hist(ax: Any, real: Any, synth: Any, bins: Any, span: tuple[float, float] | None) -> None:
    import numpy as np

    for values, label in ((real, "real"), (synth, "synthetic")):
        if len(values):
            weights = np.full(len(values), 1 / len(values))
            ax.hist(values, bins=bins, range=span, weights=weights, alpha=0.5, label=label)


def _integer_edges(lo: float, hi: float) -> Any:
    """Bin edges at half-integers: each bin holds the same whole numbers, at most `MAX_BINS` bins."""
    import numpy as np

    lo, hi = math.floor(lo), math.ceil(hi)
    width = max(1, math.ceil((hi - lo + 1) / MAX_BINS))
    return np.arange(lo - 0.5, hi + 0.5 + width, width)


def column_plot(p: Profile, real: pd.Series, synth: pd.Series, prefix: str) -> str:
    """Real vs synthetic for one (not id-like) column, as inline SVG."""
    import numpy as np
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 2.2))
    if p.kind in ("integer", "numeric"):
        r = real.dropna().to_numpy(float)
        s = pd.to_numeric(synth, errors="coerce").dropna().to_numpy(float)
        both = np.concatenate([r, s])
        lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
        if p.kind == "integer":
            _hist(ax, r, s, _integer_edges(lo, hi), None)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        else:
            _hist(ax, r, s, MAX_BINS if hi > lo else 1, (lo, hi))
    elif p.kind == "datetime":
        import matplotlib.dates as mdates

        r, s = _dates(real), _dates(synth)
        both = np.concatenate([r, s])
        lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
        _hist(ax, r, s, MAX_BINS if hi > lo else 1, (lo, hi + (0 if hi > lo else 1)))
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        top = real.astype(str).value_counts(normalize=True).head(TOP_CATEGORIES)
        syn = synth.astype(str).value_counts(normalize=True).reindex(top.index).fillna(0)
        x = range(len(top))
        ax.bar([i - 0.2 for i in x], top.values, width=0.4, label="real")
        ax.bar([i + 0.2 for i in x], syn.values, width=0.4, label="synthetic")
        ax.set_xticks(list(x), [str(v)[:10] for v in top.index], rotation=45, ha="right", fontsize=7)
    ax.set_title(p.name, fontsize=9)
    ax.set_ylabel("share of rows", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    return svg(fig, prefix)


def section(train: pd.DataFrame, synth: pd.DataFrame, found: list[Profile]) -> str:
    """The per-column plots (id-like columns listed instead), and the columns past the limit named."""
    drawn = [p for p in found if p.kind != "id"]
    shown, omitted = drawn[:MAX_PLOTTED_COLUMNS], drawn[MAX_PLOTTED_COLUMNS:]
    plots = "".join(
        f'<figure role="img" aria-label="{e(p.name)}: real vs synthetic">'
        f"{column_plot(p, train[p.name], synth[p.name], f'col{i}')}<figcaption>{e(p.name)}</figcaption></figure>"
        for i, p in enumerate(shown)
    )
    out = f'<div class="grid" id="columns">{plots}</div>'
    if omitted:
        names = ", ".join(p.name for p in omitted)
        out += f'<p class="muted">{len(omitted)} more column(s) not plotted: {e(names)}.</p>'
    ids = [p for p in found if p.kind == "id"]
    if ids:
        rows = "".join(f"<tr><td><code>{e(p.name)}</code></td><td>{e(p.note)}</td></tr>" for p in ids)
        out += (
            '<table id="id-columns"><caption>Id-like columns, not plotted: their only shape is "all distinct"'
            f"</caption><thead><tr><th>column</th><th>note</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return out
