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


def _params(args: argparse.Namespace) -> Path:
    """The params file: `--params`, relative to the project root ($SYNTHGATE_ROOT or the cwd)."""
    from pipelines.paths import repo_root

    return repo_root() / args.params


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
    with run_lock(paths_for(cfg.name), f"synthgate {args.command} {cfg.name}"):  # the whole run
        if args.command == "run":  # its stages share one MLflow pipeline run, and no other does
            import uuid

            from pipelines.tracking import TOKEN_ENV

            os.environ[TOKEN_ENV] = f"cli-run:{uuid.uuid4().hex}"
        try:
            for stage in stages:
                run_stage(stage, cfg)
        finally:
            os.environ.pop("SYNTHGATE_PIPELINE_TOKEN", None)
    if "release" in stages:
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


def summary(dataset: str, root: Path | None = None, *, verify: bool = False) -> str:
    """Where the release is, its version, and one line per gate.

    With `verify`, the release is first checked against its records (`synthgate lineage` without
    MLflow and DVC: file digests, record chain, every verdict recomputed from figure and
    threshold); a release that fails the check is reported as such, never as a list of PASS lines.
    """
    from pipelines.io import read_json
    from pipelines.paths import paths_for

    paths = paths_for(dataset, root)
    if not paths.manifest.is_file():
        return f"{dataset}: no release yet ({paths.manifest} does not exist)"
    m = read_json(paths.manifest)
    lines = [
        f"{dataset}: release v{m['version']} at {paths.release_file.relative_to(paths.root)} "
        f"({m['files'][0]['rows']} rows, sha256 {m['files'][0]['sha256'][:16]}…)",
        f"  created {m['created_at']}; MLflow run {m['mlflow']['run_id']} (experiment {m['mlflow']['experiment']})",
    ]
    if verify:
        from pipelines.lineage import lineage

        check = lineage(f"{dataset}@{m['version']}", paths.root, use_mlflow=False, use_dvc=False)
        if not check["ok"]:
            what = "TAMPERED: the release does not match its records" if check["tampered"] else "NOT VERIFIED"
            lines.append(f"  {what}; the verdicts below cannot be trusted (`synthgate lineage {dataset}@latest`):")
            lines += [f"    - {problem}" for problem in check["problems"]]
            raise IntegrityError("\n".join(lines)) if check["tampered"] else SynthgateError("\n".join(lines))
        lines.append("  verified: release files, records and verdicts match (lineage without MLflow/DVC)")
    for g in m["gates"]:
        verdict = "PASS" if g["passed"] else "FAIL"
        lines.append(f"  [{verdict}] {g['name']:<14} {g['value']:.4f} {g['comparison']} {g['threshold']:.4f}")
    return "\n".join(lines)


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


def _known(args: argparse.Namespace, dataset: str) -> str:
    """`dataset` when params.yaml configures it; a ConfigError listing the configured ones otherwise."""
    from pipelines.config import load_params

    return load_params(_params(args)).dataset(dataset).name


def _cmd_summary(args: argparse.Namespace) -> int:
    print(summary(_known(args, args.dataset), verify=True))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    """Every configured dataset, its current release and the verdict of its last attempt."""
    from pipelines.config import load_params
    from pipelines.io import read_json
    from pipelines.lineage import releases
    from pipelines.paths import paths_for

    rows = []
    for name, cfg in load_params(_params(args)).datasets.items():
        paths = paths_for(name)
        manifest = read_json(paths.manifest) if paths.manifest.is_file() else None
        attempts = releases(name, use_mlflow=False)["releases"]
        last = attempts[0] if attempts else None
        rows.append(
            {
                "dataset": name,
                "engine": cfg.fit.synthesizer,
                "release": f"v{manifest['version']}" if manifest else None,
                "released_at": manifest["created_at"] if manifest else None,
                "path": str(paths.release_file.relative_to(paths.root)) if manifest else None,
                "last_attempt": (last or {}).get("verdict"),
                "last_attempt_at": (last or {}).get("time"),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'dataset':<16} {'engine':<16} {'release':<8} {'released at':<26} last attempt")
    for r in rows:
        last = f"{r['last_attempt']} ({r['last_attempt_at']})" if r["last_attempt"] else "none"
        print(f"{r['dataset']:<16} {r['engine']:<16} {r['release'] or '-':<8} {r['released_at'] or '-':<26} {last}")
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
    sm.add_argument("dataset")
    sm.set_defaults(func=_cmd_summary)
    ln = sub.add_parser("lineage", help="walk a release back to its source, code, params, model and gates")
    ln.add_argument("query", help="a release file path, its sha256 (or a prefix), or <dataset>@<version|latest>")
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
    rp = sub.add_parser("reproduce", help="re-run a release from its records and compare its sha256")
    rp.add_argument("query", help="<dataset>@<version>, or a release file path / sha256")
    rp.add_argument("--json", action="store_true", help="print the result as JSON")
    rp.add_argument("--workdir", type=Path, help="scratch folder (empty or new); default: a temp folder")
    rp.add_argument("--keep", action="store_true", help="keep the scratch workspace afterwards")
    rp.add_argument("--timeout", type=int, default=3600, help="seconds the pipeline may run (default 3600)")
    rp.set_defaults(func=_cmd_reproduce)
    return p


def _cmd_lineage(args: argparse.Namespace) -> int:
    """Exit 0 when every record checks out, 4 when a file or record was tampered with, 1 otherwise."""
    from pipelines.lineage import lineage, render

    report = lineage(args.query, use_mlflow=not args.no_mlflow)
    print(redact(json.dumps(report, indent=2, sort_keys=True, default=str) if args.json else render(report)))
    return 4 if report["tampered"] else (0 if report["ok"] else 1)


def _cmd_releases(args: argparse.Namespace) -> int:
    from pipelines.lineage import releases, render_releases

    report = releases(_known(args, args.dataset))
    print(redact(json.dumps(report, indent=2, sort_keys=True, default=str) if args.json else render_releases(report)))
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from pipelines.config import load_params
    from pipelines.paths import paths_for
    from pipelines.sample import sample

    name, _, version = args.dataset.partition("@")
    if version and not version.isdigit():
        raise SynthgateError(f"{args.dataset}: the version after @ must be a number (e.g. {name}@3)")
    cfg = load_params(_params(args)).dataset(name)
    conditions = json.loads(args.conditions) if args.conditions else None
    if conditions is not None and not isinstance(conditions, dict):
        raise SynthgateError(f"--conditions: a JSON object of column values, not {args.conditions}")
    entry = sample(
        cfg, paths_for(cfg.name), int(version) if version else None, args.rows, args.seed, args.out, conditions
    )
    print(
        f"{cfg.name}: {entry['rows']} rows sampled from the model of release v{entry['release_version']} "
        f"(seed {entry['seed']}) -> {entry['out']} (sha256 {entry['sha256'][:16]}…); recorded in "
        f"logs/samples/{cfg.name}.jsonl and MLflow run {entry['mlflow_run_id']}; not gated, not a release"
    )
    return 0


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


def _cmd_privacy_ledger(args: argparse.Namespace) -> int:
    """Exit 0 with the ledger printed; 2 for a dataset params.yaml does not configure (listing those it does)."""
    from pipelines.config import load_params
    from pipelines.dp import read_ledger, render
    from pipelines.paths import paths_for

    ledger = read_ledger(paths_for(load_params(Path(args.params)).dataset(args.dataset).name))
    print(json.dumps(ledger, indent=2, sort_keys=True) if args.json else render(ledger))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    """Exit 0 when the new release file has the recorded sha256, 4 when it does not."""
    from pipelines.reproduce import render, reproduce

    result = reproduce(args.query, workdir=args.workdir, keep=args.keep, timeout=args.timeout)
    print(redact(json.dumps(result, indent=2, sort_keys=True, default=str) if args.json else render(result)))
    return 0 if result["same"] else 4


def typed(err: BaseException) -> BaseException:
    """The typed error for a failure the user can act on (disk full, out of memory, the tracking
    store failing), or `err` itself: a bare traceback is only ever a bug."""
    import errno

    if isinstance(err, SynthgateError | json.JSONDecodeError):
        return err
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {err.filename}" if err.filename else ""
        return OutOfResources(
            f"out of disk space{where}: free space (or move the workspace) and run again; "
            "every file is replaced atomically, so nothing already published was touched"
        )
    if isinstance(err, MemoryError):
        return OutOfResources(
            "out of memory: lower generate.shard_rows, gates.sample_rows or the source size, or run on a "
            "machine with more memory; nothing already published was touched"
        )
    module = type(err).__module__
    if module.startswith(("mlflow", "sqlalchemy")):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return TrackingUnavailable(
            f"the MLflow tracking store failed ({type(err).__name__}: {first}): check MLFLOW_TRACKING_URI and the "
            "store (server, database, disk), then run again"
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    _quiet_libraries()
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
