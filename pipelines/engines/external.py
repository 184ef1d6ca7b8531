"""Engines that run in their own environment: a runner script called with that environment's python.

The adapter (in the platform's virtualenv) writes the train table as parquet and a JSON request,
runs `<env python> <runner> request.json`, and reads back a JSON response (fit: a model folder;
sample: a parquet file). A failure comes back as an EngineError naming the engine and the
environment. The saved model is a tar of the model folder plus `synthgate-model.json` (the
effective params, the train columns and dtypes, the environment lock's digest), written with
fixed names, order, times and owners, so the same fit gives the same bytes and digest.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.engines.base import Engine, EngineInfo, SampleRequest, verify_model
from pipelines.engines.envs import EngineEnv, tail
from pipelines.errors import EngineError
from pipelines.io import atomic_path, sha256_file

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.tableset import Tables

log = logging.getLogger("synthgate.engines")

MANIFEST = "synthgate-model.json"
_STRIPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")
"""Variables that would let the platform's packages leak into the engine's interpreter."""


@dataclass
class ExternalModel:
    """A fitted model: its folder (a temporary one, alive as long as this object) and manifest."""

    folder: Path
    manifest: dict[str, Any]
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)


@dataclass
class ExternalEngine(Engine):
    """Base class of the adapters whose library lives in `env`; `runner` is the script it runs."""

    info: EngineInfo
    env: EngineEnv
    runner: Path

    def env_state(self) -> dict[str, Any]:
        return self.env.describe()

    def setup(self) -> float:
        return self.env.build(self.info.name)

    def call(self, action: str, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
        """Run the runner on one request in `workdir`; return its response (EngineError on failure)."""
        python = self.env.ensure(self.info.name)
        response = workdir / f"{action}-response.json"
        path = workdir / f"{action}-request.json"
        path.write_text(json.dumps({**request, "action": action, "response": str(response)}, default=_plain))
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED}
        env.update(
            PYTHONHASHSEED="0",
            PYTHONNOUSERSITE="1",
            HF_HUB_OFFLINE="1",  # tabular models train from scratch: nothing to download
            HF_DATASETS_OFFLINE="1",
            HF_HOME=str(workdir / "hf-home"),  # no cache shared between runs
            TOKENIZERS_PARALLELISM="false",
        )
        log.info("engine %s: %s in its own environment %s", self.info.name, action, self.env.root)
        done = subprocess.run(
            [str(python), "-s", str(self.runner), str(path)], capture_output=True, text=True, env=env, cwd=workdir
        )
        if done.returncode or not response.is_file():
            detail = tail(done.stderr or done.stdout) or f"exit code {done.returncode}, no response written"
            hint = f"The runner was {self.runner}; `make setup-engines` rebuilds the environment."
            raise EngineError(self.info.name, str(self.env.root), action, detail, hint=hint)
        return json.loads(response.read_text())

    def save(self, model: ExternalModel, path: Path) -> str:
        """A reproducible tar of the model folder and its manifest; return its sha256."""
        files = sorted(p for p in model.folder.rglob("*") if p.is_file() and p.name != MANIFEST)
        with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            manifest = json.dumps(model.manifest, indent=2, sort_keys=True).encode() + b"\n"
            _add(tar, MANIFEST, manifest)
            for f in files:
                _add(tar, f.relative_to(model.folder).as_posix(), f.read_bytes())
        return sha256_file(path)

    def load(self, path: Path, expected_sha256: str, shown: str) -> ExternalModel:
        """Unpack the model only if its digest matches the fit record, and only into a fresh folder."""
        verify_model(path, expected_sha256, shown)
        tmp = tempfile.TemporaryDirectory(prefix=f"{self.info.name}-model-")
        with tarfile.open(path) as tar:
            tar.extractall(tmp.name, filter="data")
        folder = Path(tmp.name)
        manifest = json.loads((folder / MANIFEST).read_text())
        fitted_with = manifest["environment"]["lock_sha256"]
        if fitted_with != self.env.lock_sha256():
            raise EngineError(
                self.info.name,
                str(self.env.root),
                "load",
                f"{shown} was fitted in the environment of lock {fitted_with[:12]}, "
                f"{self.env.lock.name} is now {self.env.lock_sha256()[:12]}",
                hint="Re-run `fit`: sampling with other library versions would not reproduce the release.",
            )
        return ExternalModel(folder, manifest, tmp)

    def sample(self, model: ExternalModel, request: SampleRequest) -> Tables:
        import pandas as pd

        with tempfile.TemporaryDirectory(prefix=f"{self.info.name}-sample-") as tmp:
            work = Path(tmp)
            out = work / "sample.parquet"
            part = {"dir": "", "rows": request.rows, "conditions": dict(request.conditions), "out": str(out)}
            folder, params = str(model.folder), model.manifest["params"]
            self.call("sample", {"model_dir": folder, "seed": request.seed, "params": params, "parts": [part]}, work)
            df = pd.read_parquet(out)
        return {request.main: restore_dtypes(df, model.manifest["columns"], model.manifest["dtypes"])}


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones (a condition's value keeps its type), anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def restore_dtypes(df: pd.DataFrame, columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """The train table's columns, in its order, with its numpy dtypes (engines often return nullable ones).

    Integer and boolean columns with missing values become float and object (as pandas reads
    them); a column that cannot be converted is left as the engine returned it.
    """
    import pandas as pd

    out = {}
    for col in columns:
        s, dtype = df[col], dtypes[col]
        try:
            if dtype == "object":
                s = s.astype(object).where(s.notna(), None)
            elif dtype.startswith(("int", "uint", "float")):
                s = pd.to_numeric(s).astype("float64" if s.isna().any() else dtype)
            elif dtype == "bool":
                s = s.astype(object) if s.isna().any() else s.astype(bool)
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError):
            pass
        out[col] = s
    return pd.DataFrame(out)
