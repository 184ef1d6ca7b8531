"""The report's per-column view: id-like columns listed (not drawn), whole numbers on integer bins
and ticks, dates on date ticks, and each column's type as the score table names it."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import report_columns
from pipelines.report_columns import Profile, column_plot, profile, profiles, sdtypes, section, type_labels


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures the plots would inline (drawn, so their tick labels are set)."""
    figures: list[Any] = []

    def keep(fig: Any, prefix: str) -> str:
        fig.canvas.draw()
        figures.append(fig)
        return f"<svg>{prefix}</svg>"

    monkeypatch.setattr(report_columns, "svg", keep)
    return figures


def _tiny(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer": [f"C{i:05d}" for i in rng.permutation(n)],
            "row": np.arange(n) * 1 + rng.integers(0, 2, n).cumsum(),  # distinct, gaps as after a split
            "loan_id": [f"L{i}" for i in range(n)],
            "kids": rng.integers(0, 4, n),
            "income": rng.choice(np.arange(20_000, 2_000_000), n, replace=False),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        }
    )


def test_id_like_columns_are_listed_not_plotted(drawn):
    train, synth = _tiny(), _tiny(seed=1)
    found = profiles(train, {"customer": "categorical"}, keys=["loan_id"])
    kinds = {p.name: p.kind for p in found}
    assert kinds == {
        "customer": "id",
        "row": "id",
        "loan_id": "id",
        "kids": "integer",
        "income": "integer",
        "city": "categorical",
    }
    html = section(train, synth, found)
    plotted = re.findall(r'aria-label="([^"]+): real vs synthetic"', html)
    assert plotted == ["kids", "income", "city"] and len(drawn) == 3
    listed = dict(re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td></tr>", html))
    assert listed == {
        "customer": "id-like: unique, 300 values",
        "row": "id-like (distinct whole numbers, densely packed): unique, 300 values",
        "loan_id": "key: unique, 300 values",
    }


def test_id_notes_count_distinct_values_and_the_metadata_sdtype_counts():
    values = pd.Series(["a"] * 10 + [f"x{i}" for i in range(290)])
    assert profile("name", values).note == "id-like: 291 distinct values in 300 rows (97%)"
    declared = profile("code", pd.Series(["a", "b"] * 20), "id")
    assert declared.note == "id (metadata sdtype): 2 distinct values in 40 rows (5%)"
    assert profile("few", pd.Series([3, 1, 2])).kind == "integer"  # too few rows to call distinct numbers ids
    assert profile("fee", pd.Series([10.0, np.nan, 12.0] * 10)).kind == "integer"  # whole floats with gaps


def test_whole_numbers_get_integer_bins_and_integer_ticks(drawn):
    rng = np.random.default_rng(2)
    column_plot(Profile("kids", "integer"), pd.Series(rng.integers(0, 4, 300)), pd.Series(rng.integers(0, 5, 300)), "k")
    wide = pd.Series(rng.integers(0, 1_000_000, 300))
    column_plot(Profile("amount", "integer"), wide, wide.sample(frac=1, random_state=1), "a")
    small, large = (fig.axes[0] for fig in drawn)
    edges = sorted({round(x, 6) for p in small.patches for x in (p.get_x(), p.get_x() + p.get_width())})
    assert edges == [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5]  # one bin per whole number, real and synthetic alike
    for ax in (small, large):
        shown = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert shown and all(float(t).is_integer() for t in shown), shown
        widths = {round(p.get_width(), 6) for p in ax.patches}
        assert len(ax.patches) <= 2 * report_columns.MAX_BINS and all(w.is_integer() for w in widths)
        assert all((p.get_x() - 0.5).is_integer() for p in ax.patches)  # edges on half-integers


def test_dates_get_date_ticks(drawn):
    days = pd.Series(pd.date_range("2020-01-01", "2020-12-31", freq="D"))
    column_plot(Profile("when", "datetime"), days, days.sample(frac=1, random_state=1), "d")
    text = days.dt.strftime("%Y-%m-%d %H:%M").astype(object)  # a date column the engine wrote as text
    column_plot(Profile("when", "datetime"), days.dt.tz_localize("UTC"), text, "t")
    for fig in drawn:
        labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
        assert any(m in labels for m in ("Mar", "Apr", "May", "Jul")), labels
        assert not any(re.fullmatch(r"[\d.e+−-]{5,}", label) for label in labels), labels
        assert len(fig.axes[0].patches) > 2  # both sides drawn


def test_types_name_the_sdtype_and_whole_numbers():
    meta = {"tables": {"t": {"columns": {"kids": {"sdtype": "numerical"}, "city": {"sdtype": "categorical"}}}}}
    found = [Profile("kids", "integer"), Profile("city", "categorical"), Profile("x", "numeric")]
    assert type_labels(sdtypes(meta), found) == {
        "kids": "numerical (whole numbers)",
        "city": "categorical",
        "x": "numeric",
    }
    two = {"tables": {"a": meta["tables"]["t"], "b": {"columns": {"z": {"sdtype": "datetime"}}}}}
    assert sdtypes(two) == {"a.kids": "numerical", "a.city": "categorical", "b.z": "datetime"}
    assert type_labels(sdtypes(two), found[:1], "a")["a.kids"] == "numerical (whole numbers)"
    assert sdtypes(None) == {} and sdtypes(two, "b") == {"z": "datetime"}
