"""The `synthgate` command: run a stage, bootstrap contracts, summarise a release."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from pipelines import STAGES
from pipelines.cli_inspect import (
    _cmd_audit,
    _cmd_datasets,
    _cmd_lineage,
    _cmd_privacy_ledger,
    _cmd_releases,
    _cmd_reproduce,
    _cmd_sample,
    _cmd_summary,
    _params,
    summary,
)
from pipelines.errors import GateFailed, IntegrityError, OutOfResources, SynthgateError, TrackingUnavailable
from pipelines.redact import redact

log = logging.getLogger("synthgate")

EXIT_CODES = {GateFailed: 3, IntegrityError: 4, OutOfResources: 5, TrackingUnavailable: 6}
"""Exit codes besides 0 (ok) and 2 (bad input or configuration, every other SynthgateError)."""


def _quiet_libraries() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars in normal output
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(sdv|rdt|mlflow|copulas)")
    for name in (
        "great_expectations",
        "mlflow",
        "alembic",
        "SingleTableSynthesizer",
        "MultiTableSynthesizer",
        "sdv",
        "rdt",
        "copulas",
        "py.warnings",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def _config(args: argparse.Namespace) -> Any:
    from pipelines.config import apply_overrides, load_params

    params = load_params(_params(args))
    overrides = json.loads(args.overrides) if args.overrides else None
    return apply_overrides(params, args.dataset, overrides)


def run_stage(stage: str, cfg: Any, root: Path | None = None) -> dict[str, Any]:
    """Run one stage's `run` for a dataset config (the edge all runners share)."""
    import importlib

    from pipelines.locks import run_lock
    from pipelines.paths import paths_for

    module = importlib.import_module(f"pipelines.{stage}")
    paths = paths_for(cfg.name, root)
    started = time.perf_counter()
    with run_lock(paths, f"synthgate {stage} {cfg.name}"):
        from pipelines.release import dataset_lock, interrupted, recover

        if interrupted(paths):
            with dataset_lock(paths):
                log.warning("%s", recover(paths))
        log.info("%s %s: started", stage, cfg.name)
        result = module.run(cfg, paths)
    log.info("%s %s: done in %.1f s", stage, cfg.name, time.perf_counter() - started)
    return result


def _cmd_stage(args: argparse.Namespace) -> int:
    from pipelines.locks import run_lock
    from pipelines.paths import paths_for

    cfg = _config(args)
    stages = STAGES if args.command == "run" else (args.command,)
    if args.command == "run":  # what the config says of the source's columns and values, before any stage
        from pipelines.preflight import check

        check(cfg, paths_for(cfg.name).root)
    with run_lock(paths_for(cfg.name), f"synthgate {args.command} {cfg.name}"):  # the whole run
        if args.command == "run":  # its stages share one MLflow pipeline run, and no other does
            import uuid

            from pipelines.tracking import TOKEN_ENV

            os.environ[TOKEN_ENV] = f"cli-run:{uuid.uuid4().hex}"
        try:
            for stage in stages:
                result = run_stage(stage, cfg)
        finally:
            os.environ.pop("SYNTHGATE_PIPELINE_TOKEN", None)
    if "release" in stages and result.get("experiment"):  # a DVC experiment's candidate
        from pipelines.experiment import describe

        print(describe(result, paths_for(cfg.name)))
    elif "release" in stages:
        print(summary(cfg.name))
    return 0


def _cmd_expectations(args: argparse.Namespace) -> int:
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from pipelines.paths import paths_for

    cfg = load_params(_params(args)).dataset(args.dataset)
    for line in init_contracts(cfg, paths_for(cfg.name), force=args.force):
        print(line)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """`dvc repro release@<ds>` for every `default: true` dataset, then the summaries."""
    import subprocess

    from pipelines.config import load_params

    params = load_params(_params(args))
    names = [n for n, d in params.datasets.items() if d.default]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    code = subprocess.run(["dvc", "repro", *[f"release@{n}" for n in names]], env=env).returncode
    print(f"\n== Synthgate demo: {', '.join(names)} ({time.perf_counter() - started:.0f} s) ==")
    for name in names:
        print(summary(name))
    if code:
        print("dvc repro failed (see the messages above); the last good release, if any, is unchanged.")
    else:
        print("Browse the runs: mlflow ui --backend-store-uri sqlite:///mlflow.db  (http://127.0.0.1:5000)")
    return code


def _cmd_engines(args: argparse.Namespace) -> int:
    from pipelines import engines

    chosen = [e for n, e in engines.REGISTRY.items() if not args.setup or n in args.setup or args.setup == ["all"]]
    if args.setup:
        unknown = sorted(set(args.setup) - set(engines.REGISTRY) - {"all"})
        if unknown:
            raise SynthgateError(f"unknown engines {unknown} (known: {', '.join(engines.REGISTRY)})")
        for engine in chosen:
            seconds = engine.setup()
            if seconds is not None:
                done = f"built in {seconds:.0f} s" if seconds else "up to date"
                print(f"{engine.info.name}: {engine.env_state()['path']} {done}")
        return 0
    described = [{**e.info.describe(), "params": sorted(e.info.params), "environment": e.env_state()} for e in chosen]
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    print(f"{'engine':<16} {'family':<15} {'licence':<11} {'runs in':<24} supports")
    for d in described:
        limits = f" ({d['multi_table_limits']})" if d.get("multi_table_limits") else ""
        supports = ", ".join(k + (limits if k == "multi_table" else "") for k, v in d["supports"].items() if v)
        env = d["environment"]
        where = f"own env ({'built' if env['built'] else 'not built'})" if env else "platform venv"
        print(f"{d['name']:<16} {d['family']:<15} {d['licence']:<11} {where:<24} {supports}")
    if any(d["environment"] and not d["environment"]["built"] for d in described):
        print("\nAn engine's own environment is built on first use, or ahead with `make setup-engines`.")
    return 0


class _Version(argparse.Action):
    """`--version`: the installed package's version, and the commit of the checkout it runs from."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from pipelines.gitinfo import code_version

        try:
            found = version("synthgate")
        except PackageNotFoundError:  # pragma: no cover - run from a source tree without install
            found = "unknown"
        commit = code_version(Path(__file__).resolve().parents[1])["git_commit"]
        print(f"synthgate {found}" + (f" (commit {commit[:12]})" if commit else ""))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="synthgate", description=__doc__)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress and no info lines on stderr, for this command and the stages it starts "
        "(results and errors still print; also $SYNTHGATE_QUIET=1)",
    )
    p.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    for stage in (*STAGES, "run"):
        sp = sub.add_parser(stage, help=f"run the {stage} stage" if stage != "run" else "run all six stages")
        sp.add_argument("dataset")
        sp.add_argument("--overrides", help='JSON merged over the dataset block, e.g. \'{"generate": {"rows": 500}}\'')
        sp.set_defaults(func=_cmd_stage)
    ex = sub.add_parser("expectations", help="manage the GX suites of a dataset")
    exsub = ex.add_subparsers(dest="action", required=True)
    init = exsub.add_parser("init", help="bootstrap raw + release suites and SDV metadata from the real data")
    init.add_argument("dataset")
    init.add_argument("--force", action="store_true", help="overwrite files that already exist")
    init.set_defaults(func=_cmd_expectations)
    demo = sub.add_parser("demo", help="build every default dataset with `dvc repro` and summarise")
    demo.set_defaults(func=_cmd_demo)
    en = sub.add_parser("engines", help="the registered engines: family, licence, what they support")
    en.add_argument("--json", action="store_true", help="print the list as JSON")
    en.add_argument(
        "--setup",
        nargs="+",
        metavar="ENGINE",
        help="build (or check) the own environments of these engines ('all': every one that has one)",
    )
    en.set_defaults(func=_cmd_engines)
    ds = sub.add_parser("datasets", help="the configured datasets, their current release and last verdict")
    ds.add_argument("--json", action="store_true", help="print the list as JSON")
    ds.set_defaults(func=_cmd_datasets)
    sm = sub.add_parser("summary", help="where a dataset's release is and its gate verdicts (checked first)")
    sm.add_argument(
        "dataset", help="a dataset, or a path of its release (a file, its folder of tables, data/release/<dataset>)"
    )
    sm.set_defaults(func=_cmd_summary)
    ln = sub.add_parser("lineage", help="walk a release back to its source, code, params, model and gates")
    ln.add_argument(
        "query",
        help="a release file or folder (data/release/<ds>, its tables/), a sha256 (or a prefix), "
        "or <dataset>@<version|latest>",
    )
    ln.add_argument("--json", action="store_true", help="print the lineage as JSON")
    ln.add_argument("--no-mlflow", action="store_true", help="do not read the MLflow tracking store")
    ln.set_defaults(func=_cmd_lineage)
    rl = sub.add_parser("releases", help="every release attempt of a dataset, published or blocked")
    rl.add_argument("dataset")
    rl.add_argument("--json", action="store_true", help="print the list as JSON")
    rl.set_defaults(func=_cmd_releases)
    sa = sub.add_parser("sample", help="sample from a released model on demand (recorded; not a release)")
    sa.add_argument("dataset", help="<dataset> (the current release) or <dataset>@<version>")
    sa.add_argument("--rows", type=int, required=True, help="rows to sample (of the main table)")
    sa.add_argument("--seed", type=int, default=0, help="seed: the same seed and rows give the same bytes")
    sa.add_argument("--conditions", help='JSON column values every row has, e.g. \'{"deny": "yes"}\'')
    sa.add_argument("-o", "--out", type=Path, required=True, help="output .parquet or .csv (a folder for table sets)")
    sa.set_defaults(func=_cmd_sample)
    rc = sub.add_parser("recover", help="finish or roll back a release a crash interrupted (runs also do it)")
    rc.add_argument("dataset")
    rc.set_defaults(func=_cmd_recover)
    pl = sub.add_parser("privacy-ledger", help="every model fitted on a dataset's data, its epsilon, and the totals")
    pl.add_argument("dataset")
    pl.add_argument("--json", action="store_true", help="print the ledger as JSON")
    pl.set_defaults(func=_cmd_privacy_ledger)
    au = sub.add_parser("audit", help="the data card's gaps: free text not declared, records not readable")
    au.add_argument("dataset")
    au.add_argument("--json", action="store_true", help="print the whole card as JSON")
    au.set_defaults(func=_cmd_audit)
    rp = sub.add_parser("reproduce", help="re-run a release from its records and compare its sha256")
    rp.add_argument("query", help="<dataset>@<version>, or a release file path / sha256")
    rp.add_argument("--json", action="store_true", help="print the result as JSON")
    rp.add_argument("--workdir", type=Path, help="scratch folder (empty or new); default: a temp folder")
    rp.add_argument("--keep", action="store_true", help="keep the scratch workspace afterwards")
    rp.add_argument("--timeout", type=int, default=3600, help="seconds the pipeline may run (default 3600)")
    rp.set_defaults(func=_cmd_reproduce)
    return p


def _cmd_recover(args: argparse.Namespace) -> int:
    from pipelines.config import load_params
    from pipelines.locks import run_lock
    from pipelines.paths import paths_for
    from pipelines.release import dataset_lock, recover

    paths = paths_for(load_params(_params(args)).dataset(args.dataset).name)
    with run_lock(paths, f"synthgate recover {paths.name}"), dataset_lock(paths):
        done = recover(paths)
    print(done or f"nothing to recover for '{paths.name}'")
    return 0


_DISK_FULL = ("No space left on device", "Disk quota exceeded", "database or disk is full")
"""How a full disk reads in the messages of libraries that do not keep the errno (pyarrow, SQLite)."""


def _causes(err: BaseException) -> list[BaseException]:
    """`err` and the exceptions it was raised from or while handling (MLflow wraps SQLAlchemy,
    which wraps sqlite3)."""
    out: list[BaseException] = []
    seen: BaseException | None = err
    while seen is not None and seen not in out and len(out) < 20:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def typed(err: BaseException) -> BaseException:
    """The typed error for a failure the user can act on (disk full, out of memory, the tracking
    store failing), or `err` itself: a bare traceback is only ever a bug."""
    import errno

    if isinstance(err, SynthgateError | json.JSONDecodeError):
        return err
    chain = _causes(err)
    full = next(
        (
            e
            for e in chain
            if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
            or any(m in str(e) for m in _DISK_FULL)
        ),
        None,
    )
    if full is not None:
        where = f" writing {full.filename}" if isinstance(full, OSError) and full.filename else ""
        return OutOfResources(
            f"out of disk space{where}: free space (or move the workspace) and run again; "
            "every file is replaced atomically, so nothing already published was touched "
            "(a release cut short after its swap is completed by `synthgate recover <dataset>` or the next run)"
        )
    if any(isinstance(e, MemoryError) for e in chain):
        return OutOfResources(
            "out of memory: lower generate.shard_rows, gates.sample_rows or the source size, or run on a "
            "machine with more memory; nothing already published was touched"
        )
    module = type(err).__module__
    if module.startswith(("mlflow", "sqlalchemy", "requests", "urllib3")):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return TrackingUnavailable(
            f"the MLflow tracking store failed ({type(err).__name__}: {first[:300]}): check MLFLOW_TRACKING_URI and "
            "the store (server, database, disk), then run again (a release cut short after its swap is "
            "completed by `synthgate recover <dataset>` or the next run)"
        )
    return err


def entry() -> int:
    """The `synthgate` console script and `python -m pipelines`: pins the hash seed, then `main`."""
    from pipelines.determinism import reexec_with_pinned_hash_seed

    reexec_with_pinned_hash_seed()
    code = main()
    try:
        sys.stdout.flush()  # here, not at interpreter exit, where a closed pipe prints a traceback
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 on success, 2 bad input/config, 3 gate failed, 4 integrity error,
    5 out of disk or memory, 6 tracking store unavailable."""
    from pipelines import progress

    args = build_parser().parse_args(argv)
    with progress.quieted(args.quiet):  # `demo`'s `dvc repro` stages inherit it
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING if progress.quiet() else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            handlers=[progress.StderrHandler()],
        )
        _quiet_libraries()
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; a typed error becomes its message on stderr and its exit code."""
    try:
        try:
            return int(args.func(args))
        except Exception as err:  # MemoryError and OSError included
            mapped = typed(err)
            if mapped is err:
                raise
            raise mapped from err
    except BrokenPipeError:  # `synthgate releases hdma | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE
    except json.JSONDecodeError as err:
        print(f"error: --overrides is not valid JSON: {err}", file=sys.stderr)
        return 2
    except SynthgateError as err:
        print(redact(f"error: {err}"), file=sys.stderr)
        return next((c for t, c in EXIT_CODES.items() if isinstance(err, t)), 2)
