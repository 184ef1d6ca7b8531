"""The synthesizer as an MLflow pyfunc model: `predict(pd.DataFrame({"num_rows": [n]}))` samples."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc

if TYPE_CHECKING:
    from pipelines.records.stages import FitRecord


class SynthesizerModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted SDV synthesizer; checks its digest before unpickling it."""

    # `predict` takes a one-row frame of parameters, not a list of instances: MLflow's
    # type-hint validation (and its warning at class definition) does not apply.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        """Load the pickled synthesizer after verifying its sha256."""
        import tarfile

        import cloudpickle

        from pipelines.io import sha256_file

        path = Path(context.artifacts["synthesizer"])
        expected = (Path(context.artifacts["digest"])).read_text().strip()
        if sha256_file(path) != expected:
            raise ValueError(f"{path}: digest mismatch, refusing to unpickle")
        if tarfile.is_tarfile(path):  # an engine of its own environment (pipelines/engines/external.py)
            raise ValueError(f"{path}: the engine runs in its own environment; sample with `synthgate generate`")
        with open(path, "rb") as f:
            self._synth = cloudpickle.load(f)

    def predict(self, context: Any, model_input, params: dict | None = None) -> Any:
        """Sample `model_input["num_rows"][0]` rows (a single-table frame).

        `model_input` has no type hint on purpose: MLflow would try (and fail, noisily) to infer a
        signature from it.
        """
        num_rows = int(model_input["num_rows"].iloc[0])
        sequences = getattr(self._synth, "synthgate_sequences", None)  # PAR: whole sequences, about num_rows rows
        if sequences:
            out = self._synth.sample_sequences(max(1, round(num_rows / sequences["mean_length"])))
        else:
            out = self._synth.sample(num_rows)
        return next(iter(out.values())) if isinstance(out, dict) else out


def log_synthesizer(model_path: Path, sha256: str, dataset: str) -> dict[str, Any]:
    """Log the synthesizer to the active run and register it as `synth-<dataset>`."""
    import importlib.metadata as md
    import logging
    import tempfile

    import mlflow

    reqs = [f"{p}=={md.version(p)}" for p in ("sdv", "pandas", "cloudpickle", "mlflow")]
    # MLflow warns that a Python-object model is cloudpickled; ours is unpickled only after its
    # digest is checked (load_context), so the warning is noise in every fit's log.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        digest = Path(tmp) / "synthesizer.sha256"
        digest.write_text(sha256 + "\n")
        info = mlflow.pyfunc.log_model(
            name="synthesizer",
            python_model=SynthesizerModel(),
            artifacts={"synthesizer": str(model_path), "digest": str(digest)},
            pip_requirements=reqs,
            registered_model_name=f"synth-{dataset}",
        )
    name, version = f"synth-{dataset}", str(info.registered_model_version)
    mlflow.log_param(DIGEST_KEY, sha256)  # run params are write-once in MLflow
    mlflow.MlflowClient().set_model_version_tag(name, version, DIGEST_KEY, sha256)
    return {"mlflow_model_uri": info.model_uri, "registered_model": name, "registered_version": version}


DIGEST_KEY = "synthgate.model_sha256"
"""The fit run's param and the registered version's tag holding the model digest."""


def verify_registered_digest(fit: FitRecord, root: Path) -> None:
    """IntegrityError unless the model digest in the fit record is also the one MLflow recorded at fit
    time (the fit run's write-once param and the registered model version, made by that run).

    The run record is a workspace file anyone who can write there can edit, digest included; the
    pickle is only loaded when a second, independent record agrees (docs/security.md).
    """
    from mlflow.exceptions import MlflowException

    from pipelines.errors import IntegrityError
    from pipelines.tracking import use_store

    use_store(root)
    client = mlflow.MlflowClient()
    problems = []
    try:
        run = client.get_run(fit.mlflow.run_id)
        if run.data.params.get(DIGEST_KEY) != fit.model.sha256:
            problems.append(f"the fit run {fit.mlflow.run_id} recorded {run.data.params.get(DIGEST_KEY)}")
        if fit.model.registered_model and fit.model.registered_version:
            version = client.get_model_version(fit.model.registered_model, fit.model.registered_version)
            if version.tags.get(DIGEST_KEY) != fit.model.sha256 or version.run_id != fit.mlflow.run_id:
                problems.append(
                    f"registered model {fit.model.registered_model} v{fit.model.registered_version} holds "
                    f"{version.tags.get(DIGEST_KEY)} from run {version.run_id}"
                )
    except MlflowException as err:
        problems.append(f"MLflow cannot confirm it: {err.message.splitlines()[0]}")
    if problems:
        raise IntegrityError(
            f"model {fit.model.path}: the digest {fit.model.sha256[:12]}... in the fit record is not the one "
            f"MLflow recorded at fit time ({'; '.join(problems)}); refusing to unpickle. Re-run `fit`."
        )
