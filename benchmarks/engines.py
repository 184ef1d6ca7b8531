"""Engines side by side: every engine on the same split, metadata and rows, scored as the gates score.

Usage: python benchmarks/engines.py [--datasets hdma,diamonds] [CSV ...] [--target COLUMN]
           [--engines gaussian_copula,tabular_argn] [--rows N] [--epochs N[,ENGINE=N...]] [--json [PATH]]
(prints one Markdown table per dataset; see docs/engines.md)

Per dataset, the platform's own code makes what every engine gets: the source is read and
normalised as `ingest` reads it (`pipelines.ingest.prepare`, optionally a seeded sample of
`--rows` rows), split by `pipelines.tableset.split` (the dataset's seed and holdout fraction),
and described by the committed metadata (`metadata/<ds>.json`) or, for a CSV given on the command
line, by the metadata `synthgate expectations init` bootstraps (`pipelines.bootstrap`). The PII
plan and the learned metadata are made once, as `fit` makes them, and shared by every engine.

Each engine then fits and samples in a child process of its own (`engines.get(name).fit` and
`.sample`, exactly as the fit and generate stages call them: TabularARGN runs in its own
environment through its runner), so peak RSS is per engine; for an engine with a runner the
runner's peak is shown too (`RUSAGE_CHILDREN`). Synthetic rows = train rows, sampled in the
generate stage's shards and shard seeds. The figures come from the gates' own computations
(`pipelines.gates.quality`, `.privacy`, `.utility`) on a `GateContext`:

  fit s / sample s   wall time of `engine.fit` / of sampling every shard, SDV already imported (an
                     engine with its own environment pays its runner's start-up and imports in both);
                     in brackets the CPU seconds of the engine's processes (steadier on a shared machine)
  peak RSS MB        the engine's process; "+ N" the largest runner process it started
  quality all pairs  mean of the column shape scores and the trend scores of EVERY column pair,
                     averaged (SDMetrics' quality report averages only strongly correlated pairs)
  worst column       the lowest column shape score (the column_shape gate's figure) and its column
  Spearman MAE       mean |real - synthetic| Spearman correlation over every pair of numeric,
                     date and ordinal columns (`pipelines.metrics.rank_correlation_error`)
  TSTR (TRTR)        the utility gate's model trained on synthetic (on real) rows, scored on the
                     real holdout (ROC AUC, macro F1 or R^2); needs a target (diamonds: price)
  exact copies       share of synthetic rows identical to a training row (holdout rows' share)
  DCR low tail       share of synthetic rows as close to a training row as the holdout's closest
                     `dcr_quantile` (the holdout's own share)
  failed gates       the fidelity, privacy and utility gates this release fails at the dataset's thresholds

A relational dataset (nycflights13) runs every registered engine that fits table sets (today
HMA; an adapter registered with `multi_table=True` joins with no change here) and is scored on
its main table's privacy and utility and the table set's quality. `--rows` is refused for it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import DatasetConfig
    from pipelines.engines import Engine
    from pipelines.tableset import Layout, Tables

BUNDLED = ("hdma", "diamonds")
"""The bundled single-table datasets run by default (params.yaml)."""

UTILITY_TARGETS = {"diamonds": "price"}
"""Targets for bundled datasets that have none in params.yaml, so utility has something to
predict (a numeric target: the split is the same unstratified one)."""

DEFAULT_EPOCHS = "20,tabular_argn=5"
"""Epoch limits of a default run (`--epochs`): enough to compare engines in minutes on 2 cores,
not the engines' own defaults (CTGAN 300 epochs, TabularARGN up to 100 with early stopping)."""

DEFAULT_ROWS = 5_000
"""Row limit of a default run (`--rows`; 0: every row): diamonds is sampled, hdma is whole."""

EPOCH_PARAMS = ("epochs", "max_epochs")
"""The `fit.params` names an engine's epoch limit goes under (SDV's neural engines, TabularARGN)."""

RANKED_SDTYPES = frozenset({"numerical", "datetime", "ordinal"})


@dataclass
class Prepared:
    """One dataset, made once and shared by every engine: config file, split, learned metadata."""

    name: str
    cfg: DatasetConfig
    layout: Layout
    workspace: Path
    params_file: Path
    train: Tables
    holdout: Tables
    train_entry: dict[str, Any]
    metadata: dict[str, Any]
    """The learned metadata (PII left out, ordinals restricted to the values train holds)."""
    pii: dict[str, Any]
    source_rows: int
    rows_limit: int | None


def _dataset_name(path: Path) -> str:
    """A valid dataset name from a CSV's file name (lowercase letters, digits, _)."""
    name = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "csv"
    return (name if name[0].isalpha() else f"t_{name}")[:63]


def _block(name: str, args: argparse.Namespace, params: Any) -> tuple[str, dict[str, Any], Path | None]:
    """(dataset name, its params block with the source's absolute path, the committed metadata or None)."""
    from pipelines.errors import ConfigError

    if name in params.datasets:
        block = params.datasets[name].to_params()
        block.pop("name")
        block["source"]["path"] = str(REPO / block["source"]["path"])
        if not block.get("target") and name in UTILITY_TARGETS:
            block["target"] = UTILITY_TARGETS[name]
        return name, block, REPO / "metadata" / f"{name}.json"
    path = Path(name)
    if path.suffix.lower() not in (".csv", ".gz") or not path.is_file():
        known = ", ".join(sorted(params.datasets))
        raise ConfigError([f"--datasets: {name!r} is neither a dataset of params.yaml ({known}) nor a CSV file"])
    block = {
        "source": {"path": str(path.resolve()), "format": "csv"},
        "target": args.target,
        "seed": params.defaults.get("seed", 42),
        **{s: {} for s in ("ingest", "fit", "generate", "blend", "gates")},
    }
    return _dataset_name(path), block, None


def prepare(dataset: str, args: argparse.Namespace, scratch: Path) -> Prepared:
    """Read, optionally sample, split and describe one dataset as the pipeline does (writes only to `scratch`)."""
    import shutil

    from pipelines import keys, metadata, pii, tableset
    from pipelines.bootstrap import init_contracts
    from pipelines.config import load_params
    from pipelines.errors import ConfigError, InvalidInputError
    from pipelines.ingest import prepare as read_source
    from pipelines.paths import paths_for

    repo_params = load_params(REPO / "params.yaml")
    name, block, committed = _block(dataset, args, repo_params)
    ws = scratch / name
    ws.mkdir(parents=True, exist_ok=False)
    source = Path(block["source"]["path"])  # copied into the workspace: sources are read from inside it only
    (ws / "sources").mkdir()
    (shutil.copytree if source.is_dir() else shutil.copyfile)(source, ws / "sources" / source.name)
    block["source"]["path"] = f"sources/{source.name}"
    params_file = ws / "params.yaml"
    params_file.write_text(yaml.safe_dump({"defaults": repo_params.defaults, "datasets": {name: block}}))
    cfg = load_params(params_file).dataset(name)
    paths = paths_for(name, ws)
    if committed is not None and committed.is_file():
        paths.metadata.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(committed, paths.metadata)
    else:
        for line in init_contracts(cfg, paths):
            print(f"  {name}: {line}", file=sys.stderr)
    lay = tableset.layout(cfg)
    tables = read_source(cfg, paths)["tables"]
    source_rows = len(tables[lay.main])
    if args.rows and args.rows < source_rows:
        if lay.relational:
            raise ConfigError([f"--rows: {name} is a table set; a row limit would break its keys (leave --rows out)"])
        tables = {lay.main: tables[lay.main].sample(n=args.rows, random_state=cfg.seed).sort_index()}
        tables[lay.main] = tables[lay.main].reset_index(drop=True)
    tables, _ = keys.apply_orphan_policy(tables, cfg.source, cfg.ingest.orphans)
    train, holdout, _ = tableset.split(tables, cfg, lay)
    # as the fit stage does (pipelines/fit.py): metadata checked, PII never learned, ordinals seen only
    md = metadata.load(paths)
    metadata.check(md, train, cfg.source, paths.rel(paths.metadata))
    plan = pii.plan_for_set(train, cfg, lay)
    problems = pii.metadata_problems(md.to_dict(), lay.main, train[lay.main], plan)
    if problems:
        raise InvalidInputError(paths.rel(paths.metadata), problems, hint="Edit the metadata file.")
    learned = {**train, lay.main: train[lay.main].drop(columns=plan.names)}
    md = metadata.seen_only(metadata.without_columns(md, lay.main, plan.names), learned)
    entry = tableset.write(ws / "train.parquet", learned, lay)
    return Prepared(
        name, cfg, lay, ws, params_file, train, holdout, entry, md.to_dict(), plan.to_dict(), source_rows, args.rows
    )


def engine_params(engine: Engine, epochs: dict[str, int]) -> dict[str, Any]:
    """The `fit.params` of one engine in the benchmark: its epoch limit (`epochs[engine]`, else
    `epochs[""]`, else none: the engine's default) under the name the engine takes."""
    limit = epochs.get(engine.info.name, epochs.get(""))
    for name in EPOCH_PARAMS:
        if limit is not None and name in engine.info.params:
            return {name: limit}
    return {}


def parse_epochs(text: str | None) -> dict[str, int]:
    """`--epochs`: `N` for every neural engine, `ENGINE=N` for one, comma-separated ("" keys the default)."""
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        engine, _, value = part.rpartition("=")
        if not value.strip().isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"{part!r}: an epoch limit is a whole number >= 1 (N or ENGINE=N)")
        out[engine.strip()] = int(value)
    return out


def select_engines(lay: Layout, wanted: list[str] | None) -> tuple[list[Engine], list[str]]:
    """The engines to run on a dataset of this layout and a note per requested engine that cannot.

    None: every registered engine that fits this kind of dataset (one table, or a set with keys).
    """
    from pipelines import engines

    kind = "multi_table" if lay.relational else "single_table"
    names = wanted if wanted is not None else [n for n, e in engines.REGISTRY.items() if getattr(e.info, kind)]
    chosen, skipped = [], []
    for name in names:
        engine = engines.get(name)  # ConfigError listing the known engines
        if getattr(engine.info, kind):
            chosen.append(engine)
        else:
            what = "a table set with keys" if lay.relational else "a single table"
            skipped.append(f"{name}: skipped, it does not fit {what}")
    return chosen, skipped


def run_engine(prep: Prepared, engine: Engine, epochs: dict[str, int]) -> dict[str, Any]:
    """Fit and sample one engine in a child process; its timings, peak RSS and synthetic tables."""
    from pipelines import tableset

    name = engine.info.name
    work = prep.workspace / name
    work.mkdir()
    params = engine_params(engine, epochs)
    request = {
        "params_file": str(prep.params_file),
        "dataset": prep.name,
        "overrides": {"fit": {"synthesizer": name, "params": params}},
        "train": str(prep.workspace / "train.parquet"),
        "train_entry": prep.train_entry,
        "metadata": prep.metadata,
        "synthetic": str(work / "synthetic.parquet"),
        "result": str(work / "result.json"),
    }
    (work / "request.json").write_text(json.dumps(request, default=str))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(work / "request.json")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    out: dict[str, Any] = {"engine": name, "licence": engine.info.licence, "params": params, "wall_s": round(wall, 1)}
    result = work / "result.json"
    if done.returncode or not result.is_file():
        lines = (done.stderr or done.stdout).strip().splitlines()
        out["error"] = lines[-1] if lines else f"exit code {done.returncode}"
        out["stderr_tail"] = lines[-30:]
        return out
    out.update(json.loads(result.read_text()))
    out["synthetic_tables"] = tableset.read(Path(request["synthetic"]), prep.layout)
    return out


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children (an engine's runner)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(request_path: Path) -> None:
    """In the child process: fit and sample one engine as the fit and generate stages do; write the result."""
    from sdv.metadata import Metadata

    from pipelines import engines, tableset
    from pipelines.cli import _quiet_libraries
    from pipelines.config import apply_overrides, load_params
    from pipelines.engines import SampleRequest
    from pipelines.generate import Shard, in_source_order, plan, shard_seed

    _quiet_libraries()
    req = json.loads(request_path.read_text())
    cfg = apply_overrides(load_params(req["params_file"]), req["dataset"], req["overrides"])
    lay = tableset.layout(cfg)
    learned = tableset.read(Path(req["train"]), lay, req["train_entry"], "benchmark split")
    md = Metadata.load_from_dict(req["metadata"])
    engine = engines.get(cfg.fit.synthesizer)
    if engine.info.environment is None:  # the platform's engines (SDV's) import their library in `fit`
        import sdv.multi_table
        import sdv.single_table  # noqa: F401
    started, cpu = time.perf_counter(), cpu_seconds()
    model = engine.fit(learned, md, cfg, lay)
    fit_seconds, fit_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    rows = len(learned[lay.main])
    shards = (
        plan(rows, cfg.generate.shard_rows, cfg.seed) if lay.shardable else [Shard(0, rows, shard_seed(cfg.seed, 0))]
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    parts = [engine.sample(model, SampleRequest(s.rows, s.seed, lay.main, rows)) for s in shards]
    sample_seconds, sample_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    import pandas as pd

    synthetic = {
        t: in_source_order(pd.concat([p[t] for p in parts], ignore_index=True), list(learned[t].columns))
        for t in parts[0]
    }
    tableset.write(Path(req["synthetic"]), synthetic, lay)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runners = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "fit_s": round(fit_seconds, 2),
        "fit_cpu_s": round(fit_cpu, 2),
        "sample_s": round(sample_seconds, 2),
        "sample_cpu_s": round(sample_cpu, 2),
        "shards": len(shards),
        "synthetic_rows": len(synthetic[lay.main]),
        "peak_rss_mb": round(own),
        "runner_peak_rss_mb": round(runners) if engine.info.environment else None,
    }
    Path(req["result"]).write_text(json.dumps(result))


def ranked_columns(metadata: dict[str, Any], table: str, frame: pd.DataFrame) -> list[str]:
    """The columns whose rank correlations are compared: numbers, dates and numeric ordinal codes."""
    import pandas as pd

    columns = metadata["tables"][table]["columns"]
    return [
        c
        for c, spec in columns.items()
        if spec.get("sdtype") in RANKED_SDTYPES
        and c in frame.columns
        and (spec["sdtype"] != "ordinal" or pd.api.types.is_numeric_dtype(frame[c]))
    ]


def figures(prep: Prepared, synthetic: Tables) -> dict[str, Any]:
    """The gates' own figures of one engine's synthetic tables, on a `GateContext` like validate's."""
    from dataclasses import asdict

    from sdv.metadata import Metadata

    from pipelines.contracts import PROVENANCE
    from pipelines.gates import GateContext
    from pipelines.gates import privacy as privacy_gates
    from pipelines.gates import quality as quality_gates
    from pipelines.gates import utility as utility_gates
    from pipelines.metrics import is_classification, rank_correlation_error

    ctx = GateContext(
        cfg=prep.cfg,
        layout=prep.layout,
        blended={t: df.assign(**{PROVENANCE: "synthetic"}) for t, df in synthetic.items()},
        train=prep.train,
        holdout=prep.holdout,
        metadata=Metadata.load_from_dict(prep.metadata),
        suite={},
        fit_record={"pii": prep.pii},
    )
    started = time.perf_counter()
    gates = []
    for family in (
        quality_gates.QUALITY,
        quality_gates.DIAGNOSTIC,
        quality_gates.COLUMN_SHAPE,
        quality_gates.PAIR_TREND,
    ):
        result, fidelity = family.evaluate(ctx)
        gates.append(result)
    shapes = [r for r in fidelity["column_shapes"] if r["score"] is not None]
    pairs = [r["score"] for r in fidelity["pair_trends"] if r["score"] is not None]
    shape_mean = sum(r["score"] for r in shapes) / len(shapes)
    pair_mean = sum(pairs) / len(pairs) if pairs else None
    privacy: dict[str, Any] = {}
    for family in (
        privacy_gates.EXACT_COPIES,
        privacy_gates.DCR_LOW_TAIL,
        privacy_gates.DCR_BASELINE_PROTECTION,
    ):
        if family.applies(ctx):
            result, found = family.evaluate(ctx)
            gates.append(result)
            privacy = found["privacy"]
    utility = None
    if prep.cfg.target:
        u = utility_gates.tstr(ctx)
        utility = asdict(u)
        gates.append(utility_gates.utility_gate(u, prep.cfg.target, prep.cfg.gates))
        if is_classification(prep.train[prep.layout.main][prep.cfg.target]):
            gates.append(utility_gates.minority_gate(u, prep.cfg.gates)[0])
    main = prep.layout.main
    columns = ranked_columns(prep.metadata, main, prep.train[main])
    learned = ctx.learned_only(ctx.train)[main], ctx.learned_only(ctx.synthetic)[main]
    rank = rank_correlation_error(*learned, columns)
    return {
        "quality_all_pairs": (shape_mean + pair_mean) / 2 if pair_mean is not None else shape_mean,
        "column_shapes_mean": shape_mean,
        "pair_trends_mean": pair_mean,
        "pairs_scored": len(pairs),
        "sdmetrics_quality": gates[0].value,
        "worst_column": shapes[0]["column"],
        "worst_column_score": shapes[0]["score"],
        "spearman_mae": rank["mae"],
        "spearman_worst_pair": rank["worst"],
        "utility": utility,
        "exact_copy_share": privacy.get("exact_copy_share"),
        "holdout_exact_copy_share": privacy.get("holdout_exact_copy_share"),
        "dcr_low_tail_share": privacy.get("dcr_low_tail_share"),
        "holdout_dcr_low_tail_share": privacy.get("holdout_dcr_low_tail_share"),
        "dcr_baseline_protection_ratio": privacy.get("dcr_baseline_protection_ratio"),
        "gates": [{"name": g.name, "value": g.value, "threshold": g.threshold, "passed": g.passed} for g in gates],
        "failed_gates": [g.name for g in gates if not g.passed],
        "score_s": round(time.perf_counter() - started, 1),
    }


COLUMNS = (
    "engine",
    "params",
    "fit s (CPU s)",
    "sample s (CPU s)",
    "peak RSS MB",
    "quality (all pairs)",
    "worst column",
    "Spearman MAE",
    "TSTR (TRTR)",
    "exact copies (holdout)",
    "DCR low tail (holdout)",
    "failed gates",
)


def _row(r: dict[str, Any]) -> list[str]:
    """One engine's cells (an engine that failed: its error in the params cell's place)."""
    params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "defaults"
    if "error" in r:
        return [r["engine"], params, f"**failed**: {r['error'][:200]}", *[""] * (len(COLUMNS) - 3)]
    f = r["figures"]
    rss = f"{r['peak_rss_mb']:,}" + (f" + {r['runner_peak_rss_mb']:,}" if r.get("runner_peak_rss_mb") else "")
    u = f["utility"]
    utility = f"{u['tstr']:.3f} ({u['trtr']:.3f} {u['metric']})" if u else "-"

    def share(key: str) -> str:
        value, holdout = f[key], f[f"holdout_{key}"]
        return "-" if value is None else f"{value:.3f} ({holdout:.3f})"

    return [
        r["engine"],
        params,
        f"{r['fit_s']:.1f}" + (f" ({r['fit_cpu_s']:.0f})" if "fit_cpu_s" in r else ""),
        f"{r['sample_s']:.1f}" + (f" ({r['sample_cpu_s']:.0f})" if "sample_cpu_s" in r else ""),
        rss,
        f"{f['quality_all_pairs']:.3f}",
        f"{f['worst_column_score']:.3f} {f['worst_column']}",
        "-" if f["spearman_mae"] is None else f"{f['spearman_mae']:.3f}",
        utility,
        share("exact_copy_share"),
        share("dcr_low_tail_share"),
        ", ".join(f["failed_gates"]) or "none",
    ]


def table(dataset: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The Markdown table of one dataset: a heading line, then one row per engine."""
    limit = f", a seeded sample of {dataset['rows_limit']:,} rows" if dataset["rows_limit"] else ""
    head = (
        f"{dataset['name']}: {dataset['source_rows']:,} source rows{limit}; train {dataset['train_rows']:,}, "
        f"holdout {dataset['holdout_rows']:,} (seed {dataset['seed']}); synthetic rows = train rows"
        + (f"; target {dataset['target']}" if dataset["target"] else "")
    )
    lines = [head, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    lines += [f"- {note}" for note in dataset["notes"]]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the figures were taken: host, CPUs, memory, load, Python."""
    mem = next(
        (ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), "0"
    )
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem) / 2**20, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("csv", nargs="*", help="CSV files to benchmark too (one table each; --target names the target)")
    ap.add_argument("--datasets", default=",".join(BUNDLED), help="params.yaml datasets, comma-separated ('' for none)")
    ap.add_argument("--target", default=None, help="target column of the CSV files (utility); none by default")
    ap.add_argument(
        "--engines", default=None, help="comma-separated engines (default: every one that fits the dataset)"
    )
    ap.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"seeded sample of at most this many source rows (default {DEFAULT_ROWS:,}; 0: every row)",
    )
    ap.add_argument(
        "--epochs",
        type=parse_epochs,
        default=parse_epochs(DEFAULT_EPOCHS),
        help=f"epoch limits of the neural engines: N for all, ENGINE=N for one (default {DEFAULT_EPOCHS}; "
        "'' keeps each engine's own)",
    )
    ap.add_argument(
        "--json",
        nargs="?",
        const="",
        default=None,
        help="write the results as JSON (default path: benchmarks/results/engines-<date>.json)",
    )
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rows < 0:
        ap.error(f"--rows: must be at least 1 (0: every row), got {args.rows}")
    return args


def run_dataset(name: str, args: argparse.Namespace, wanted: list[str] | None, scratch: Path) -> dict[str, Any]:
    """One dataset: prepared once, then every chosen engine in its own process, scored; its figures."""
    started = time.perf_counter()
    prep = prepare(name, args, scratch)
    log(f"{prep.name}: split and metadata ready in {time.perf_counter() - started:.1f} s")
    chosen, notes = select_engines(prep.layout, wanted)
    for engine in chosen:
        built = engine.setup()  # an engine environment is built before anything is timed
        if built:
            notes.append(f"{engine.info.name}: its environment was built first ({built:.0f} s, not timed)")
    dataset: dict[str, Any] = {
        "name": prep.name,
        "source": prep.cfg.source.path,
        "source_rows": prep.source_rows,
        "rows_limit": prep.rows_limit if prep.rows_limit and prep.rows_limit < prep.source_rows else None,
        "train_rows": len(prep.train[prep.layout.main]),
        "holdout_rows": len(prep.holdout[prep.layout.main]),
        "seed": prep.cfg.seed,
        "target": prep.cfg.target,
        "relational": prep.layout.relational,
        "notes": notes,
        "results": [],
    }
    for engine in chosen:
        log(f"{prep.name}: {engine.info.name} ...")
        r = run_engine(prep, engine, args.epochs)
        tables = r.pop("synthetic_tables", None)
        if tables is not None:
            try:
                r["figures"] = figures(prep, tables)
            except Exception as err:  # one engine's unusable rows must not end the comparison
                r["error"] = "scoring: " + " ".join(str(err).split())
        done = f"scored in {r['figures']['score_s']:.1f} s" if "figures" in r else f"failed: {r['error']}"
        log(f"{prep.name}: {engine.info.name} ran in {r['wall_s']:.1f} s, {done}")
        dataset["results"].append(r)
    return dataset


def log(line: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark: print one table per dataset; return (and with --json write) every figure."""
    args = parse_args(argv)
    if args.child:
        child(args.child)
        return {}
    from pipelines.cli import _quiet_libraries

    _quiet_libraries()
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()] if args.engines else None
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] + list(args.csv)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join(["python", "benchmarks/engines.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "datasets": [],
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synthgate-engines-") as tmp:
        for name in datasets:
            dataset = run_dataset(name, args, wanted, Path(tmp))
            report["datasets"].append(dataset)
            print(table(dataset, dataset["results"]) + "\n", flush=True)
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"total {report['total_s']:.0f} s on {report['machine']['cpus']} CPUs", flush=True)
    if args.json is not None:
        path = Path(args.json) if args.json else REPO / "benchmarks" / "results" / f"engines-{report['date'][:10]}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {path}", flush=True)
    return report


if __name__ == "__main__":
    main()
