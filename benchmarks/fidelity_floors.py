"""Fidelity floors on the bundled releases and their controls: the worst column and the worst pair.

Usage: dvc repro validate@hdma validate@diamonds validate@nycflights13
       python benchmarks/fidelity_floors.py [--datasets hdma,diamonds,nycflights13] [--sample-rows N] [--splits K]
(prints one Markdown table: dataset x control, the column_shape and pair_trend figures with the
worst column / pair, and the seconds the floors took; then, per dataset, the spread of both figures
when real rows stand in for synthetic ones over K fresh train/holdout splits of the main table;
see docs/gates.md "Fidelity floors")

Reads each dataset's pipeline outputs (train, holdout, blended, model metadata) and scores, through
the quality family's gates, stand-ins for the synthetic rows of the main table:
  release      the pipeline's own synthetic rows                                  (should pass)
  holdout      real holdout rows: unseen real data                                (must pass)
  collapsed    the release with its first many-valued numeric column set to its median (column_shape fails)
  collapsed-category  the release with its most even category column set to its mode
               (column_shape fails when that mode holds under column_shape_min of the real rows)
  shuffled     holdout rows with one column of the strongest real pair permuted   (pair_trend fails)
A table set's other tables stay as released (release) or as in train (holdout, shuffled).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CONTROLS = ("release", "holdout", "collapsed", "collapsed-category", "shuffled")


def _strongest(train: pd.DataFrame, metadata: dict[str, Any], table: str) -> str:
    """A column of the numeric pair with the strongest real correlation (most to lose when shuffled)."""
    cols = [c for c, m in metadata["tables"][table]["columns"].items() if m["sdtype"] == "numerical" and c in train]
    corr = train[cols].corr().abs().where(lambda m: ~np.eye(len(cols), dtype=bool))
    return str(corr.stack().idxmax()[0])


def _control(name: str, ctx: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], str]:
    """The synthetic tables of a control and a note on what changed."""
    main, release, train, holdout = ctx["main"], ctx["release"], ctx["train"], ctx["holdout"]
    if name == "release":
        return release, ""
    if name == "collapsed":
        out = release[main].copy()
        col = next(c for c in out.columns if train[main][c].dtype.kind in "fi" and train[main][c].nunique() > 10)
        out[col] = out[col].median()
        return {**release, main: out}, col
    if name == "collapsed-category":
        out, real = release[main].copy(), train[main]
        kinds = {"categorical", "ordinal", "boolean"}
        cats = [c for c, m in ctx["metadata"]["tables"][main]["columns"].items() if m["sdtype"] in kinds and c in out]
        col = min(cats, key=lambda c: real[c].value_counts(normalize=True).iloc[0])
        out[col] = real[col].mode().iloc[0]
        return {**release, main: out}, col
    real = {**train, main: holdout[main].reset_index(drop=True)}
    if name == "holdout":
        return real, ""
    col = _strongest(train[main], ctx["metadata"], main)
    shuffled = real[main].assign(**{col: np.random.default_rng(0).permutation(real[main][col].to_numpy())})
    return {**real, main: shuffled}, col


def load(dataset: str, sample_rows: int | None) -> dict[str, Any]:
    """One dataset's config, layout, tables and metadata, from its pipeline outputs in this repo."""
    from pipelines import tableset
    from pipelines.config import load_params
    from pipelines.contracts import PROVENANCE
    from pipelines.io import read_json
    from pipelines.paths import paths_for
    from pipelines.records.stages import BlendRecord, FitRecord, IngestRecord

    cfg = load_params(REPO / "params.yaml").dataset(dataset)
    if sample_rows:
        cfg = cfg.model_copy(update={"gates": cfg.gates.model_copy(update={"sample_rows": sample_rows})})
    p, lay = paths_for(dataset, REPO), tableset.layout(cfg)
    ingest, blend = IngestRecord.read(p.record("ingest")), BlendRecord.read(p.record("blend"))
    blended = tableset.read(p.blended, lay, blend.blended, "blend")
    return {
        "cfg": cfg,
        "layout": lay,
        "main": lay.main,
        "release": {t: df[df[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE]) for t, df in blended.items()},
        "train": tableset.read(p.train, lay, ingest.train, "ingest"),
        "holdout": tableset.read(p.holdout, lay, ingest.holdout, "ingest"),
        "metadata": read_json(p.model_metadata),
        "fit": FitRecord.read(p.record("fit")).to_json(),
    }


def score(data: dict[str, Any], synthetic: dict[str, pd.DataFrame], train: dict[str, pd.DataFrame]) -> tuple:
    """The quality family's results and figures for stand-in synthetic tables, and its seconds."""
    from sdv.metadata import Metadata

    from pipelines.contracts import PROVENANCE
    from pipelines.gates import GateContext
    from pipelines.gates.quality import _fidelity

    ctx = GateContext(
        cfg=data["cfg"],
        layout=data["layout"],
        blended={t: df.assign(**{PROVENANCE: "synthetic"}) for t, df in synthetic.items()},
        train=train,
        holdout=data["holdout"],
        metadata=Metadata.load_from_dict(data["metadata"]),
        suite={},
        fit_record=data["fit"],
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results, figures = _fidelity(ctx)
    return results, figures, time.perf_counter() - started


def run(dataset: str, sample_rows: int | None) -> list[dict[str, Any]]:
    """The quality family's floors for every control of one dataset."""
    data = load(dataset, sample_rows)
    rows = []
    for control in CONTROLS:
        synthetic, changed = _control(control, data)
        results, figures, seconds = score(data, synthetic, data["train"])
        shape = {r["column"]: r["score"] for r in figures["column_shapes"]}
        named = changed if data["layout"].single else f"{data['main']}.{changed}"
        label = control + (f" ({changed}: shape {shape.get(named, float('nan')):.3f})" if changed else "")
        rows.append({"dataset": dataset, "control": label, "results": results, "figures": figures, "seconds": seconds})
    return rows


def null_spread(dataset: str, splits: int, rows: int | None) -> dict[str, Any]:
    """Real rows in place of synthetic ones: fresh train/holdout splits of the main table's real rows
    (the holdout cut to `rows` rows when given: what the sampling allowance must absorb)."""
    from pipelines.tableset import split_frame

    data = load(dataset, None)
    main, cfg = data["main"], data["cfg"]
    real = pd.concat([data["train"][main], data["holdout"][main]], ignore_index=True)
    shape, pair, passed = [], [], 0
    for seed in range(splits):
        train, holdout, _ = split_frame(real, cfg.ingest.holdout_fraction, seed, cfg.target)
        holdout = holdout.sample(n=min(rows or len(holdout), len(holdout)), random_state=seed)
        results, _, _ = score(data, {**data["train"], main: holdout}, {**data["train"], main: train})
        shape.append(results["column_shape"].value)
        pair.append(results["pair_trend"].value)
        passed += results["column_shape"].passed and results["pair_trend"].passed

    def spread(values: list[float]) -> str:
        return " / ".join(f"{np.percentile(values, q):.3f}" for q in (0, 5, 50))

    n = min(rows or len(holdout), len(holdout))
    return {
        "dataset": dataset,
        "splits": splits,
        "rows": n,
        "column_shape": spread(shape),
        "pair_trend": spread(pair),
        "passed": passed,
    }


def _worst(figures: dict[str, Any], key: str) -> str:
    scored = [r for r in figures[key] if r["score"] is not None]
    if not scored:
        return "-"
    r = scored[0]
    return " x ".join(r["columns"]) if "columns" in r else r["column"]


def _cell(result: Any) -> str:
    """A gate's figure, verdict and effective threshold (the floor less the sampling allowance)."""
    return f"{result.value:.3f} {'pass' if result.passed else '**FAIL**'} (>= {result.threshold:.3f})"


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | control | quality | column_shape | worst column | pair_trend | worst pair | pairs | floors s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        res, fig = r["results"], r["figures"]
        lines.append(
            f"| {r['dataset']} | {r['control']} | {_cell(res['quality'])} | {_cell(res['column_shape'])} | "
            f"{_worst(fig, 'column_shapes')} | {_cell(res['pair_trend'])} | {_worst(fig, 'pair_trends')} | "
            f"{len(fig['pair_trends'])} | {fig['floors_seconds']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="hdma,diamonds,nycflights13")
    ap.add_argument("--sample-rows", type=int, default=None, help="override gates.sample_rows")
    ap.add_argument("--splits", type=int, default=20, help="real-vs-real splits per dataset (0: none)")
    ap.add_argument("--rows", type=int, default=None, help="real-vs-real: holdout rows kept (default: all)")
    ap.add_argument("--controls", action=argparse.BooleanOptionalAction, default=True, help="the control table")
    args = ap.parse_args()
    from pipelines.cli import _quiet_libraries

    _quiet_libraries()
    names = args.datasets.split(",")
    if args.controls:
        print(_table([r for name in names for r in run(name, args.sample_rows)]) + "\n", flush=True)
    if args.splits:
        spread = "min / p5 / median"
        print(f"| dataset | splits | holdout rows | column_shape {spread} | pair_trend {spread} | both pass |")
        print("|---|---|---|---|---|---|")
        for name in names:
            n = null_spread(name, args.splits, args.rows)
            cells = (n["dataset"], n["splits"], n["rows"], n["column_shape"], n["pair_trend"], n["passed"])
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
