"""kill -9 at uniformly random points of every stage and inside the publish step (tests/faults/harness.py).

$SYNTHGATE_FAULT_N trials per stage (default 1 in the normal suite; `make faults` runs 30),
$SYNTHGATE_FAULT_SEED to replay the draws of a failure (default: a fresh seed, printed).
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines import STAGES
from tests.conftest import FLOORS_OFF, HDMA, REPO, RUNNER_VARS, defaults, git_init, small_block
from tests.faults.harness import Bench, Zygote, version

N = int(os.environ.get("SYNTHGATE_FAULT_N", "1"))
SEED = int(os.environ.get("SYNTHGATE_FAULT_SEED") or random.SystemRandom().randrange(2**32))


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Iterator[Bench]:
    """A tiny HDMA slice (300 rows, 5 columns, no target: the gates are not what is tested here)
    whose pipeline ran once, measured stage by stage."""
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from pipelines.paths import paths_for

    ws = tmp_path_factory.mktemp("random-kills")
    (ws / "sources").mkdir()
    pd.read_csv(HDMA).iloc[:300][["dir", "lvr", "ccs", "self", "deny"]].to_csv(ws / "sources/slice.csv", index=False)
    block = small_block("sources/slice.csv", None, generate={"rows": 200}, gates={"sample_rows": 200, **FLOORS_OFF})
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {"hdma": block}}))
    list(init_contracts(load_params(ws / "params.yaml").dataset("hdma"), paths_for("hdma", ws)))
    git_init(ws)  # lineage names the commit that made a release
    env = {k: v for k, v in os.environ.items() if k not in RUNNER_VARS}
    env |= {"PYTHONHASHSEED": "0", "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    logs = Path(tempfile.mkdtemp(prefix="fault-logs-", dir=ws.parent))
    zygote = Zygote(env, REPO)
    b = Bench(ws=ws, dataset="hdma", zygote=zygote, logs=logs, seed=SEED)
    try:
        b.measure()
        yield b
    finally:
        zygote.close()


@pytest.mark.parametrize("stage", [*STAGES, "publish"])
def test_a_random_kill_leaves_the_old_or_the_new_release_and_is_repaired(bench, stage):
    result = bench.trials(stage, N)
    print(
        f"\n{stage}: {result['trials']} trials ({result['finished_before_kill']} finished before the kill), "
        f"{len(result['failures'])} failures, {result['seconds']:.0f} s (stage {result['duration_s']:.2f} s), "
        f"seed {SEED}"
    )
    assert not result["failures"], f"replay: SYNTHGATE_FAULT_SEED={SEED}\n" + "\n\n".join(result["failures"])


def test_every_published_version_passes_lineage(bench):
    versions = list(range(1, version(bench.paths) + 1))
    assert len(versions) >= 2
    problems = bench.lineage_problems(versions)
    assert not problems, "\n\n".join(problems)
