"""DVC experiments and blocked runs: where a run's result goes, and what a blocked run leaves in DVC.

`dvc exp run -S …` tries params; it does not publish. In a DVC experiment ($DVC_EXP_NAME, see
`gitinfo.dvc_experiment`) the release stage writes the candidate that passed every gate (data,
manifest, report) to `data/experiments/<experiment>/<ds>/` and leaves the published release, its
version, the MLflow model-version tags and the privacy ledger as they are. $SYNTHGATE_EXP_PUBLISH=1
in the environment of `dvc exp run` publishes as `dvc repro` does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.gitinfo import dvc_experiment
from pipelines.paths import DatasetPaths

PUBLISH_ENV = "SYNTHGATE_EXP_PUBLISH"
"""Set to 1 (true, yes) for `dvc exp run` to publish the official release."""


def candidate_experiment() -> dict[str, str] | None:
    """The DVC experiment whose release stage writes a candidate instead of publishing; None when
    the stage publishes (not an experiment, or $SYNTHGATE_EXP_PUBLISH asks for it)."""
    if os.environ.get(PUBLISH_ENV, "").strip().lower() in ("1", "true", "yes"):
        return None
    return dvc_experiment()


def experiments_dir(root: Path) -> Path:
    """Where the candidates of DVC experiments go (git-ignored, not a DVC output)."""
    return Path(root) / "data" / "experiments"


@dataclass(frozen=True)
class CandidatePaths(DatasetPaths):
    """A dataset's layout whose release folder is an experiment's candidate folder.

    `home` is the workspace the candidate lands in: for `dvc exp run --temp` or a queued run, the
    stage runs in a temporary copy, and $DVC_ROOT names the workspace the experiment came from.
    """

    home: Path = Path()
    experiment: str = ""

    @property
    def release_dir(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "-", self.experiment).strip(".-") or "experiment"
        return experiments_dir(self.home) / safe / self.name

    def rel(self, path: Path | str) -> str:
        """Candidate files relative to `home`, the rest relative to the root the stage runs in."""
        path = Path(path)
        return str(path.relative_to(self.home)) if path.is_relative_to(self.release_dir) else super().rel(path)


def candidate_paths(paths: DatasetPaths, experiment: dict[str, str]) -> CandidatePaths:
    """The candidate layout of `paths` for `experiment`."""
    home = Path(os.environ.get("DVC_ROOT") or paths.root).resolve()
    return CandidatePaths(root=paths.root, name=paths.name, home=home, experiment=experiment["name"])


def describe(manifest: dict[str, Any], paths: DatasetPaths) -> str:
    """What an experiment's release stage wrote: the candidate, the published release it left, how
    to publish it, and one line per gate."""
    exp, data = manifest["experiment"], manifest["files"][0]
    published = exp.get("published_version")
    kept = f"release v{published} stays published" if published else "nothing is published yet"
    lines = [
        f"{paths.name}: DVC experiment '{exp['name']}' candidate at {data['path']} "
        f"({data['rows']} rows, sha256 {data['sha256'][:16]}…): not published",
        f"  {kept} ({paths.rel(paths.release_dir)}/); to publish this one: `dvc exp apply {exp['name']}` "
        f"then `dvc repro -f -s release@{paths.name}`, or run the experiment with {PUBLISH_ENV}=1",
    ]
    for g in manifest["gates"]:
        lines.append(f"  [PASS] {g['name']:<14} {g['value']:.4f} {g['comparison']} {g['threshold']:.4f}")
    return "\n".join(lines)


def blocked_next_steps(paths: DatasetPaths, published: int, runner: str, experiment: dict[str, str] | None) -> str:
    """What a run blocked by a gate leaves in DVC and what to do next, for the runner that ran it."""
    name = paths.name
    kept = (
        f"The previous release (v{published}, {paths.rel(paths.release_dir)}/) was left untouched."
        if published
        else f"Nothing was published ('{name}' has no release yet)."
    )
    report = paths.rel(paths.report_html)
    back = "`git checkout params.yaml dvc.lock && dvc checkout` goes back to the last committed state"
    if experiment is not None:
        state = (
            "DVC kept no experiment (a failed `dvc exp run` is not saved); the workspace holds its params.yaml "
            f"and outputs, and `dvc status` lists release@{name} as changed."
        )
        todo = f"read {report}, then `dvc exp run -S …` with other values; {back}."
    elif runner == "dvc":
        state = (
            f"DVC: dvc.lock records the stages that ran; release@{name} stays out of date (`dvc status` "
            "lists its changed deps) until a run passes."
        )
        todo = (
            f"read {report}, fix the params (the failed gate's threshold under gates:, or the knobs upstream) "
            f"and run `dvc repro` again; {back}."
        )
    elif runner == "airflow":
        state = (
            "DVC: `record_dvc` did not run, so `dvc status` lists the stages this run rewrote as modified "
            "until a passing run records them."
        )
        todo = f"read {report}, fix params.yaml or the run's conf and trigger the DAG again."
    else:
        state = "DVC: this run is not recorded in dvc.lock, so `dvc status` lists the stages it rewrote as modified."
        todo = (
            f"read {report}, fix the params (or --overrides) and run again; `dvc repro` re-runs and records "
            "the stages, `dvc checkout --force` puts back the outputs dvc.lock records (this run's report too)."
        )
    return f"{kept}\n{state}\nNext: {todo}"
