"""kill -9 at uniformly random points of every stage and inside the publish step (tests/faults/harness.py).

$SYNTHGATE_FAULT_N trials per stage (default 1 in the normal suite; `make faults` runs 30),
$SYNTHGATE_FAULT_SEED to replay the draws of a failure (default: a fresh seed, printed).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest

from pipelines import STAGES
from tests.faults.conftest import slice_workspace
from tests.faults.harness import Bench, version

N = int(os.environ.get("SYNTHGATE_FAULT_N", "1"))
SEED = int(os.environ.get("SYNTHGATE_FAULT_SEED") or random.SystemRandom().randrange(2**32))


@pytest.fixture(scope="module")
def bench(tmp_path_factory, zygote) -> Bench:
    """The slice workspace (tests/faults/conftest.py) whose pipeline ran once, measured stage by stage."""
    ws = slice_workspace(tmp_path_factory.mktemp("random-kills"))
    logs = Path(tempfile.mkdtemp(prefix="fault-logs-", dir=ws.parent))
    b = Bench(ws=ws, dataset="hdma", zygote=zygote, logs=logs, seed=SEED)
    b.measure()
    return b


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
