"""Auto-selection against every single engine, on the same split (docs/engines.md "Auto-selection").

Usage: python benchmarks/auto_select.py [--datasets hdma,diamonds] [--rows diamonds=20000]
                                        [--budget S] [--json PATH]
(run from the repo root, with SYNTHGATE_ENGINES_DIR pointing at the engines' environments; prints,
per dataset, one Markdown table of the candidates and the pick)

For each dataset: the source is read and normalised as ingest does (`--rows` keeps a seeded sample
of that many rows first), split into train and holdout as ingest does, and `fit.synthesizer: auto`
runs on train with the dataset's params (`--budget` overrides `fit.budget_s`; default: the
params' default). Every candidate is fitted on the fit part of train with the epoch limit the
budget gives it and scored twice with the same composite score: on the validation slice (what the
selection sees) and on the real holdout (what it never sees). "Single engine" = that candidate's
fit on its own; auto = the candidate the selection picked. Acceptance: auto's holdout composite >=
the best single engine's holdout composite - 0.01.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MARGIN = 0.01


def _rows(spec: str) -> dict[str, int]:
    out = {}
    for part in filter(None, spec.split(",")):
        name, _, n = part.partition("=")
        out[name] = int(n)
    return out


def run(dataset: str, rows: int | None, budget: float | None) -> dict[str, Any]:
    """Selection on one dataset, every candidate also scored on the holdout."""
    from pipelines import engines, ingest, metadata, pii, tableset
    from pipelines.config import apply_overrides, load_params
    from pipelines.engines import selection
    from pipelines.paths import paths_for

    fit = {"synthesizer": "auto", **({"budget_s": budget} if budget else {})}
    cfg = apply_overrides(load_params(REPO / "params.yaml"), dataset, {"fit": fit})
    paths = paths_for(dataset, REPO)
    prepared = ingest.prepare(cfg, paths)
    tables, lay = prepared["tables"], prepared["layout"]
    if rows and len(tables[lay.main]) > rows:
        tables = {**tables, lay.main: tables[lay.main].sample(n=rows, random_state=cfg.seed).reset_index(drop=True)}
    train, holdout, _ = tableset.split(tables, cfg, lay)
    plan = pii.plan_for_set(train, cfg, lay)
    learned = {**train, lay.main: train[lay.main].drop(columns=plan.names)}
    md = metadata.seen_only(metadata.without_columns(metadata.load(paths), lay.main, plan.names), learned)
    on_holdout: dict[str, dict[str, Any]] = {}

    def score_on_holdout(cand: selection.Candidate, model: Any) -> None:
        engine = engines.get(cand.engine)
        n = min(len(learned[lay.main]), cfg.gates.sample_rows)
        request = engines.SampleRequest(n, cfg.seed, lay.main, len(learned[lay.main]))
        synthetic = engine.sample(model, request)
        on_holdout[cand.engine] = selection.score(holdout, synthetic, learned, md, cfg, lay)
        print(  # progress: the selection of a large table takes a while
            f"{dataset} {cand.engine} {cand.params}: fit {cand.fit_seconds} s (estimated {cand.estimated_s} s), "
            f"validation composite {cand.composite}, holdout {on_holdout[cand.engine]['composite']}",
            file=sys.stderr,
            flush=True,
        )

    started = time.perf_counter()
    sel = selection.select(learned, md, cfg, lay, on_fit=score_on_holdout)
    seconds = time.perf_counter() - started
    best = max(on_holdout, key=lambda e: on_holdout[e]["composite"])
    auto, best_single = on_holdout[sel.winner]["composite"], on_holdout[best]["composite"]
    return {
        "dataset": dataset,
        "rows": len(tables[lay.main]),
        "train_rows": len(train[lay.main]),
        "holdout_rows": len(holdout[lay.main]),
        "budget_s": cfg.fit.budget_s,
        "selection": sel.to_record(),
        "holdout": on_holdout,
        "seconds": round(seconds, 1),
        "winner": sel.winner,
        "best_single": best,
        "auto_holdout": auto,
        "best_single_holdout": best_single,
        "passes": auto >= best_single - MARGIN,
    }


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table(result: dict[str, Any]) -> str:
    """One Markdown table of the candidates and a line with the pick."""
    sel = result["selection"]
    lines = [
        f"### {result['dataset']}: {result['rows']:,} rows (train {result['train_rows']:,}: fit part "
        f"{sel['fit_rows']:,}, validation {sel['validation_rows']:,}; holdout {result['holdout_rows']:,}), "
        f"budget {result['budget_s']:g} s",
        "",
        "| engine | epochs | est. s | fit s | val quality (all pairs) | val worst col | val rank err | val utility gap "
        "| **val composite** | holdout composite |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sel["candidates"]:
        f, h = c["figures"], result["holdout"].get(c["engine"], {})
        epochs = next(iter(c["params"].values()), "-") if c["params"] else "-"
        if c["skipped"]:
            lines.append(f"| {c['engine']} | skipped: {c['skipped']} | {c['estimated_s']:.0f} | | | | | | | |")
            continue
        lines.append(
            f"| {c['engine']} | {epochs} | {c['estimated_s']:.0f} | {c['fit_seconds']:.1f} | "
            f"{_fmt(f['quality_all_pairs'])} | {_fmt(f['worst_column'])} | {_fmt(f['rank_corr_error'])} | "
            f"{_fmt(f['utility_gap'])} | **{_fmt(f['composite'])}** | {_fmt(h.get('composite'))} |"
        )
    verdict = "PASS" if result["passes"] else "FAIL"
    lines += [
        "",
        f"pick: **{sel['winner']}** ({sel['reason']}); holdout composite {result['auto_holdout']:.3f} vs the best "
        f"single engine's ({result['best_single']}) {result['best_single_holdout']:.3f}: {verdict} "
        f"(>= best - {MARGIN}); selection {result['seconds']:.0f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the tables (and write JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="hdma,diamonds")
    parser.add_argument("--rows", default="", help="row-limited copies, e.g. diamonds=20000 (seeded sample)")
    parser.add_argument("--budget", type=float, default=None, help="fit.budget_s (default: the params' default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    limits = _rows(args.rows)
    results = []
    for dataset in filter(None, args.datasets.split(",")):
        result = run(dataset, limits.get(dataset), args.budget)
        results.append(result)
        print(table(result), "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(r["passes"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
