"""Fault tests share one zygote (tests/faults/zygote.py: forks pre-imported `synthgate` commands)
and one tiny workspace recipe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import FLOORS_OFF, HDMA, REPO, RUNNER_VARS, defaults, git_init, small_block
from tests.faults.harness import Zygote


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    """The pre-imported parent every fault test forks its commands from (pinned hash seed, no runner
    variables, this checkout on PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k not in RUNNER_VARS}
    env |= {"PYTHONHASHSEED": "0", "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    z = Zygote(env, REPO)
    yield z
    z.close()


def slice_workspace(ws: Path) -> Path:
    """A workspace of a tiny HDMA slice (300 rows, 5 columns, no target: the gates are not what the
    fault tests test), its contracts bootstrapped and committed to git (lineage names the commit)."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from pipelines.paths import paths_for

    (ws / "sources").mkdir(parents=True)
    pd.read_csv(HDMA).iloc[:300][["dir", "lvr", "ccs", "self", "deny"]].to_csv(ws / "sources/slice.csv", index=False)
    block = small_block("sources/slice.csv", None, generate={"rows": 200}, gates={"sample_rows": 200, **FLOORS_OFF})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    git_init(ws)
    return ws
