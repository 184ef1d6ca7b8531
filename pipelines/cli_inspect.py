"""The `synthgate` commands that read what runs left (summary, datasets, lineage, releases,
sample, privacy ledger, reproduce); `pipelines.cli` builds the parser and runs them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipelines.errors import IntegrityError, SynthgateError
from pipelines.redact import redact


def _params(args: argparse.Namespace) -> Path:
    """The params file: `--params`, relative to the project root ($SYNTHGATE_ROOT or the cwd)."""
    from pipelines.paths import repo_root

    return repo_root() / args.params


def _known(args: argparse.Namespace, dataset: str) -> str:
    """`dataset` when params.yaml configures it; a ConfigError listing the configured ones otherwise."""
    from pipelines.config import load_params

    return load_params(_params(args)).dataset(dataset).name


def summary(dataset: str, root: Path | None = None, *, verify: bool = False) -> str:
    """Where the release is, its version, and one line per gate.

    With `verify`, the release is first checked against its records (`synthgate lineage` without
    DVC: file digests, record chain, every verdict recomputed from figure and threshold; MLflow's
    copies of the run records only where a later run replaced them on disk); a release that fails
    the check is reported as such, never as a list of PASS lines.
    """
    from pipelines.io import read_json
    from pipelines.paths import paths_for

    paths = paths_for(dataset, root)
    if not paths.manifest.is_file():
        return f"{dataset}: no release yet ({paths.manifest} does not exist)"
    m = read_json(paths.manifest)
    data, tables = m["files"][0], [f for f in m["files"] if f.get("table")]
    lines = [
        f"{dataset}: release v{m['version']} at {data['path']} "
        f"({f'{len(tables)} tables, ' if tables else ''}{data['rows']} rows, sha256 {data['sha256'][:16]}…)"
    ]
    lines += [f"  {f['path']} ({f['rows']} rows)" for f in tables]
    lines.append(
        f"  created {m['created_at']}; MLflow run {m['mlflow']['run_id']} (experiment {m['mlflow']['experiment']})"
    )
    if verify:
        from pipelines.lineage import lineage

        check = lineage(f"{dataset}@{m['version']}", paths.root, use_mlflow=False, use_dvc=False)
        how = "lineage without MLflow/DVC"
        if not check["ok"] and not check["tampered"]:
            # a later run (a blocked one, a DVC experiment) replaced run records on disk: their copies
            # in MLflow, checked by the manifest's digests, verify the release instead
            check = lineage(f"{dataset}@{m['version']}", paths.root, use_mlflow=True, use_dvc=False)
            how = "lineage without DVC: run records a later run replaced checked against their MLflow copies"
        if not check["ok"]:
            what = "TAMPERED: the release does not match its records" if check["tampered"] else "NOT VERIFIED"
            lines.append(f"  {what}; the verdicts below cannot be trusted (`synthgate lineage {dataset}@latest`):")
            lines += [f"    - {problem}" for problem in check["problems"]]
            raise IntegrityError("\n".join(lines)) if check["tampered"] else SynthgateError("\n".join(lines))
        lines.append(f"  verified: release files, records and verdicts match ({how})")
    for g in m["gates"]:
        verdict = "PASS" if g["passed"] else "FAIL"
        lines.append(f"  [{verdict}] {g['name']:<14} {g['value']:.4f} {g['comparison']} {g['threshold']:.4f}")
    return "\n".join(lines)


def _summary_dataset(args: argparse.Namespace) -> str:
    """The dataset `synthgate summary` is asked about: a configured name, or a release's path as
    summary and lineage print it (a file, a folder of tables, the dataset's release folder)."""
    from pipelines.lineage.locate import resolve
    from pipelines.paths import repo_root

    query = args.dataset
    root = repo_root()
    if not any((base / query).exists() for base in (root, Path.cwd())):
        return _known(args, query)
    release, _ = resolve(query, root)
    if not release.current:
        raise SynthgateError(
            f"{query}: holds {release.dataset} v{release.version}, not its current release; "
            f"`synthgate summary {release.dataset}` shows the current one, `synthgate lineage {query}` this one"
        )
    return _known(args, release.dataset)


def _cmd_summary(args: argparse.Namespace) -> int:
    print(summary(_summary_dataset(args), verify=True))
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
                "path": manifest["files"][0]["path"] if manifest else None,
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


def _cmd_privacy_ledger(args: argparse.Namespace) -> int:
    """Exit 0 with the ledger printed; 2 for a dataset params.yaml does not configure (listing those it does)."""
    from pipelines.config import load_params
    from pipelines.dp import read_ledger, render
    from pipelines.paths import paths_for

    ledger = read_ledger(paths_for(load_params(Path(args.params)).dataset(args.dataset).name))
    print(json.dumps(ledger, indent=2, sort_keys=True) if args.json else render(ledger))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    """Exit 0 when the data card has no gaps, 1 when it has (printed), 2 for an unknown dataset.

    The card is built as the next release would write it: from the run records on disk and the
    effective params of params.yaml (pipelines/datacard.py).
    """
    from pipelines import datacard
    from pipelines.config import load_params
    from pipelines.datacard_render import audit_text
    from pipelines.paths import paths_for

    cfg = load_params(_params(args)).dataset(args.dataset)
    card = datacard.build(paths_for(cfg.name), cfg.to_params())
    print(json.dumps(card, indent=2, sort_keys=True) if args.json else audit_text(card))
    return 1 if card["gaps"] else 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    """Exit 0 when the new release file has the recorded sha256, 4 when it does not."""
    from pipelines.reproduce import render, reproduce

    result = reproduce(args.query, workdir=args.workdir, keep=args.keep, timeout=args.timeout)
    print(redact(json.dumps(result, indent=2, sort_keys=True, default=str) if args.json else render(result)))
    return 0 if result["same"] else 4
