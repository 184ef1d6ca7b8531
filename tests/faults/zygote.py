"""A pre-imported parent that forks `synthgate` commands for the fault tests (tests/faults/harness.py).

Importing the stack (MLflow, SDV, SDMetrics, GX, scikit-learn) costs about 10 s per process; a
kill trial forks this process instead, so each command still runs in its own fresh process (its
own MLflow client, its own locks, its own process group to kill) without paying the imports.
Nothing here touches a workspace before a fork, so no child inherits an open store or lock.

Protocol: one JSON request per line on stdin, one JSON answer per line on the original stdout:
`{"op": "run", "argv": [...], "cwd": ..., "env": {...}, "out": path, "err": path}` -> `{"pid": n}`;
`{"op": "wait", "pid": n}` -> `{"code": exit code, negative for a signal}`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "matplotlib.pyplot",
    "sklearn.ensemble",
    "mlflow",
    "mlflow.tracking",
    "mlflow.pyfunc",
    "mlflow.tracing",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.genai.scorers",
    "alembic.command",
    "alembic.autogenerate",
    "sqlalchemy",
    "sqlalchemy.dialects.mysql",
    "sqlalchemy.dialects.mssql",
    "openlineage.client",
    "opentelemetry.sdk.metrics",
    "torch",
    "torch._dynamo",
    "torch.distributed.fsdp",
    "torch.onnx",
    "sympy",
    "mlflow.tracing.processor",
    "mlflow.tracing.export",
    "pyarrow.dataset",
    "pyarrow.csv",
    "matplotlib.backends.backend_agg",
    "git",
    "great_expectations",
    "sdv.single_table",
    "sdv.multi_table",
    "sdmetrics.reports.single_table",
    "pipelines.cli",
    "pipelines.ingest",
    "pipelines.fit",
    "pipelines.generate",
    "pipelines.blend",
    "pipelines.validate",
    "pipelines.release",
    "pipelines.lineage",
    "pipelines.report",
)
"""What every command of a stage run imports anyway (the rest is imported by the child)."""


def _child(req: dict[str, Any]) -> None:
    """Run one `synthgate` command in this forked child and exit with its code (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(req["cwd"])
        os.environ.update(req.get("env") or {})
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, req["out"]), (2, req["err"])):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        from pipelines.cli import main

        code = main(req["argv"])
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Import the stack, then fork a child per `run` request and reap it on `wait`."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the imports print goes to stderr, never into the protocol
    for module in PRELOAD:
        importlib.import_module(module)
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "run":
            pid = os.fork()
            if pid == 0:
                _child(req)
            try:
                os.setpgid(pid, pid)  # also here: a kill right after the fork must find the group
            except OSError:
                pass  # the child already did it, or already exited
            proto.write(json.dumps({"pid": pid}) + "\n")
        elif req["op"] == "wait":
            _, status = os.waitpid(req["pid"], 0)
            proto.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    os._exit(0)  # stdin closed: nothing to finalise (tearing down torch & co. takes long on a busy machine)


if __name__ == "__main__":
    serve()
