"""The report's association differences: numeric and categorical pairs alike, worst first, with
high-cardinality columns skipped and named, and large tables sampled."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipelines import report_associations
from pipelines.report_associations import correlation_ratio, cramers_v, differences, pearson, section


def _codes(values: list[str]) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(pd.Series(values))
    return codes.astype(np.int64), len(uniques)


def test_the_measures_on_known_tables():
    a = _codes(["x", "y"] * 50)
    assert cramers_v(*a, *_codes(["p", "q"] * 50)) == pytest.approx(1.0)  # one determines the other
    assert cramers_v(*a, *_codes(["p", "p", "q", "q"] * 25)) == pytest.approx(0.0)  # a balanced crossing
    assert cramers_v(*a, *_codes(["p"] * 100)) == 0.0  # a constant side: nothing to measure
    x = np.array([1.0, 2.0] * 50)
    assert correlation_ratio(*a, x) == pytest.approx(1.0)
    assert correlation_ratio(*a, np.array([1.0, 1.0, 2.0, 2.0] * 25)) == pytest.approx(0.0)
    assert correlation_ratio(*a, np.where(np.arange(100) % 3 == 0, np.nan, x)) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0) and pearson(x, np.ones(100)) == 0.0


def _pairs(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n)
    size = rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "region": region,
            "climate": pd.Series(region).map({"north": "cold", "south": "hot", "east": "mild"}),
            "size": size,
            "price": 2 * size + rng.normal(0, 0.3, n),
            "rooms": np.where(region == "north", 2, 5) + rng.integers(0, 2, n),
            "street": [f"street {i % 60}" for i in range(n)],
        }
    )


KINDS = {
    "region": "categorical",
    "climate": "categorical",
    "size": "numeric",
    "price": "numeric",
    "rooms": "integer",
    "street": "categorical",
}


def test_a_lost_categorical_association_is_the_worst_pair():
    real = _pairs()
    synth = real.assign(climate=real["climate"].sample(frac=1, random_state=1).to_numpy())
    columns, rows, skipped = differences(real, synth, KINDS)
    assert skipped == {"street": "60 categories (more than 50)"} and "street" not in columns
    worst = rows[0]
    assert worst["columns"] == ("region", "climate") and worst["measure"] == "Cramér's V"
    assert worst["real"] == pytest.approx(1.0) and worst["synthetic"] < 0.2
    by_pair = {r["columns"]: r for r in rows}
    assert by_pair[("size", "price")]["measure"] == "Pearson r" and by_pair[("size", "price")]["diff"] == 0
    assert by_pair[("region", "rooms")]["measure"] == "correlation ratio η"
    assert by_pair[("region", "rooms")]["real"] > 0.8 and by_pair[("climate", "rooms")]["synthetic"] < 0.2
    assert len(rows) == 10 and [r["diff"] for r in rows] == sorted((r["diff"] for r in rows), reverse=True)


def test_the_section_shows_the_heatmap_the_worst_pairs_and_the_skipped_columns():
    real = _pairs()
    synth = real.assign(climate=real["climate"].sample(frac=1, random_state=1).to_numpy())
    html = section(real, synth, KINDS)
    assert html.startswith("<svg") and html.count("<svg") == 1
    labels = re.findall(r"<!-- (.*?) -->", html)
    assert {"region", "climate", "rooms"} <= set(labels) and "street" not in labels  # the heatmap's axes
    body = re.search(r'<table id="associations">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    first = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", body.split("</tr>")[0])]
    assert first == ["region × climate", "Cramér&#x27;s V", "1.000", first[3], first[4]]
    skipped = re.search(r'<p class="muted" id="associations-skipped">(.*?)</p>', html).group(1)
    assert "<code>street</code> (60 categories (more than 50))" in skipped
    assert "sampled" not in html


def test_large_tables_are_sampled(monkeypatch):
    monkeypatch.setattr(report_associations, "SAMPLE_ROWS", 100)
    real = _pairs(n=400)
    html = section(real, real, {"size": "numeric", "price": "numeric"})
    assert "of 1 (measured on 100 sampled rows of each side)" in html
    _, rows, _ = differences(real, real.iloc[::-1], {"size": "numeric", "price": "numeric"}, seed=3)
    assert rows[0]["real"] == pytest.approx(rows[0]["synthetic"], abs=0.1)  # both sides' own samples


def test_dates_count_as_instants_even_when_written_as_text():
    days = pd.Series(pd.date_range("2020-01-01", periods=200, freq="D"))
    real = pd.DataFrame({"when": days, "n": np.arange(200.0)})
    synth = real.assign(when=days.dt.tz_localize("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype(object))
    _, rows, _ = differences(real, synth, {"when": "datetime", "n": "numeric"})
    assert rows[0]["measure"] == "Pearson r" and rows[0]["real"] == pytest.approx(1.0)
    assert rows[0]["synthetic"] == pytest.approx(1.0)


def test_fewer_than_two_columns():
    real = _pairs()
    assert section(real, real, {"size": "numeric"}) == "<p>Fewer than two columns to compare.</p>"
