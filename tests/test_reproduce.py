"""`synthgate reproduce`: a release replayed from its records gives the same sha256."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.errors import InvalidInputError
from pipelines.io import sha256_file
from pipelines.reproduce import reproduce
from tests.conftest import small_hdma_repo, venv_env


def _synthgate(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["python", "-m", "pipelines", *args], cwd=repo, env=venv_env(), capture_output=True, text=True, timeout=900
    )


def _swap_two_rows(csv: Path) -> None:
    """Change the source's bytes but not its contract: swap the values of data rows 1 and 2."""
    lines = csv.read_text().splitlines(keepends=True)
    (i1, rest1), (i2, rest2) = (lines[1].split(",", 1), lines[2].split(",", 1))
    lines[1], lines[2] = f"{i1},{rest2}", f"{i2},{rest1}"
    csv.write_text("".join(lines))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git copy of the repo (small HDMA) with v1 released from the commit and v2 released from an
    uncommitted edit of the source, which is then reverted (its source is in no record any more)."""
    dest = small_hdma_repo(tmp_path_factory.mktemp("repro") / "repo")
    first = _synthgate(dest, "run", "hdma")
    assert first.returncode == 0, first.stderr[-3000:]
    source = dest / "sources" / "hdma.csv"
    original = source.read_bytes()
    _swap_two_rows(source)
    second = _synthgate(dest, "run", "hdma")
    assert second.returncode == 0, second.stderr[-3000:]
    source.write_bytes(original)
    return dest


def test_reproduce_gives_the_same_digest(repo):
    """v1, after v2 exists: the recorded commit's code, params, seed and source give the same bytes."""
    manifest = json.loads((repo / "data/release/hdma/manifests/v0001.json").read_text())
    result = reproduce("hdma@1", repo)
    assert result["same"], result.get("error") or result.get("log_tail")
    assert result["recorded_sha256"] == result["reproduced_sha256"] == manifest["files"][0]["sha256"]
    assert result["git_commit"] == manifest["git_commit"]
    assert result["source"]["how"].startswith("git ")  # the source came from the recorded commit
    by_what = {c["what"]: c for c in result["comparisons"]}
    for what in (
        "effective params",
        "source sha256",
        "train split sha256",
        "holdout split sha256",
        "rows",
        "gate quality",
        "gate utility",
    ):
        assert by_what[what]["same"], by_what[what]
    assert by_what["effective params"]["reproduced"]["seed"] == manifest["params"]["seed"]
    assert result["kept"] is False and not Path(result["scratch"]).exists()
    log = (repo / "logs/reproduce/hdma.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["same"] is True


def test_cli_reproduce_of_an_unknown_version_exits_2(repo):
    proc = _synthgate(repo, "reproduce", "hdma@9")
    assert proc.returncode == 2 and "no release v9 of 'hdma' (there are: v1, v2)" in proc.stderr


def test_source_not_in_any_record_is_reported_not_guessed(repo):
    """v2 was made from an uncommitted source edit that no longer exists anywhere."""
    v2 = json.loads((repo / "data/release/hdma/manifests/v0002.json").read_text())
    assert v2["source"]["sha256"] != sha256_file(repo / "sources/hdma.csv")
    with pytest.raises(InvalidInputError, match=r"sources/hdma.csv[\s\S]*no copy of the recorded source") as err:
        reproduce("hdma@2", repo)
    assert any("differs" in p for p in err.value.problems)


def test_unknown_version_and_missing_commit_are_typed_errors(repo, tmp_path):
    with pytest.raises(InvalidInputError, match="no release v9"):
        reproduce("hdma@9", repo)
    no_git = tmp_path / "no-git"
    shutil.copytree(repo, no_git, ignore=shutil.ignore_patterns(".git", "mlflow.db", "mlartifacts"))
    with pytest.raises(InvalidInputError, match="is not in the repository"):
        reproduce("hdma@1", no_git)
