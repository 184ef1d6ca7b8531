"""Gate controls: every registered gate against releases that must pass and releases that must fail.

Usage: python benchmarks/gates.py [--datasets hdma,diamonds,natural_dups] [--rows N]
(prints one Markdown table per dataset: control x gate, figure and verdict; see docs/gates.md)

Each dataset is ingested, fitted (GaussianCopula), sampled and blended by the real stages in a
scratch workspace; then `validate.evaluate` scores these stand-ins for the synthetic rows:
  release          the pipeline's own synthetic rows                          (should pass)
  holdout          real holdout rows (fresh ids and e-mails): unseen real data (privacy must pass)
  train-copy       training rows copied, with fresh ids and re-drawn e-mails  (privacy must fail)
  collapsed        the release with one column set to a single value          (fidelity must fail)
  shuffled         the release with a column of its strongest numeric pair permuted (pair_trend must fail)
  int-to-float     the release with an integer column turned into fractions   (types must fail)
  new-category     the release with 1% of a text column's values invented     (types must fail)
  shuffled-columns the release with its columns in reverse order               (types must fail)
  no-minority      the release with the target's rarest class removed         (utility must fail)
  swapped-groups   the release with the target swapped between sensitive groups (bias must fail)
Datasets: hdma (with a customer id and an e-mail added, like a customer table), diamonds, and
natural_dups (diamonds projected on cut/color/clarity and rounded carat: many real rows repeat).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

CONTROLS = (
    "release",
    "holdout",
    "train-copy",
    "collapsed",
    "shuffled",
    "int-to-float",
    "new-category",
    "shuffled-columns",
    "no-minority",
    "swapped-groups",
)


def _sources(tmp: Path) -> dict[str, dict[str, Any]]:
    """Dataset blocks over real tables written into the scratch workspace."""
    hdma = pd.read_csv(REPO / "sources" / "hdma.csv").drop(columns=["Unnamed: 0"])
    rng = np.random.default_rng(0)
    hdma.insert(0, "customer_id", rng.permutation(np.arange(100_000, 100_000 + len(hdma))))
    hdma["email"] = [f"client{n}@example.org" for n in rng.permutation(len(hdma))]
    diamonds = pd.read_csv(REPO / "sources" / "diamonds.csv").drop(columns=["Unnamed: 0"], errors="ignore")
    dups = diamonds[["cut", "color", "clarity"]].assign(carat=diamonds["carat"].round(1)).head(8000)
    from pipelines.config import DatasetConfig

    bias = {"sensitive": ["black"]} if "sensitive" in DatasetConfig.model_fields else {}
    frames = {"hdma": (hdma, "deny", bias), "diamonds": (diamonds, None, {}), "natural_dups": (dups, "cut", {})}
    blocks = {}
    for name, (df, target, extra) in frames.items():
        path = tmp / f"{name}.csv"
        df.to_csv(path, index=False)
        block = {
            "source": {"path": str(path), "format": "csv"},
            "target": target,
            "seed": 5,
            "ingest": {},
            "fit": {},
            "generate": {},
            "blend": {},
            "gates": {},
            **extra,
        }
        blocks[name] = block
    return blocks


def _control(
    name: str, release: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, cfg: Any
) -> pd.DataFrame | None:
    """The stand-in synthetic rows of a control (None when it does not apply to the dataset)."""
    rng = np.random.default_rng(1)
    out = release.copy()
    if name == "release":
        return out
    if name in ("holdout", "train-copy"):  # real rows, their identifiers replaced as a release's are
        real = holdout if name == "holdout" else train
        copy = real.sample(n=min(len(real), len(release)), random_state=1).reset_index(drop=True)
        for col in copy.columns:
            if col.endswith("_id"):
                copy[col] = rng.permutation(np.arange(900_000, 900_000 + len(copy)))
            elif col == "email":
                copy[col] = [f"fresh{n}@example.net" for n in range(len(copy))]
        return copy
    if name == "collapsed":
        col = next(c for c in out.columns if c != cfg.target and out[c].nunique() > 2)
        out[col] = out[col].mode().iloc[0]
        return out
    if name == "shuffled":  # its shape kept, its trend with every other column lost
        nums = [c for c in train.columns if c != cfg.target and pd.api.types.is_float_dtype(train[c])]
        if len(nums) < 2:
            return None
        corr = train[nums].corr().abs().where(~np.eye(len(nums), dtype=bool))
        col = str(corr.stack().idxmax()[0])
        out[col] = rng.permutation(out[col].to_numpy())
        return out
    if name == "int-to-float":
        ints = [c for c in out.columns if pd.api.types.is_integer_dtype(out[c]) and not c.endswith("_id")]
        if not ints:
            return None
        out[ints[0]] = out[ints[0]].astype(float) + rng.uniform(0.1, 0.9, len(out))
        return out
    if name == "new-category":
        text = [c for c in out.columns if out[c].dtype == object and c != "email" and train[c].nunique() <= 50]
        out.loc[out.sample(frac=0.01, random_state=1).index, text[0]] = "invented"
        return out
    if name == "shuffled-columns":
        return out[list(reversed(out.columns))]
    if name == "no-minority":
        if not cfg.target:
            return None
        rare = train[cfg.target].value_counts().idxmin()
        keep = out[out[cfg.target] != rare]
        return keep.sample(n=len(out), replace=True, random_state=1).reset_index(drop=True)
    if name == "swapped-groups":
        sensitive = getattr(cfg, "sensitive", ()) or ()
        if not cfg.target or not sensitive:
            return None
        col = sensitive[0]
        groups = sorted(out[col].dropna().unique())
        a, b = (out[col] == groups[0]), (out[col] == groups[-1])
        rate = lambda m: out.loc[m, cfg.target]  # noqa: E731
        out.loc[a, cfg.target] = rate(b).sample(n=int(a.sum()), replace=True, random_state=1).to_numpy()
        out.loc[b, cfg.target] = rate(a).sample(n=int(b.sum()), replace=True, random_state=2).to_numpy()
        return out
    raise ValueError(name)


def run(dataset: str, block: dict[str, Any], root: Path) -> list[tuple[str, str, float, float, str, bool]]:
    """Every control x gate for one dataset: (control, gate, value, threshold, comparison, passed)."""
    from sdv.metadata import Metadata

    from pipelines import validate
    from pipelines.bootstrap import init_contracts
    from pipelines.cli import _quiet_libraries, run_stage
    from pipelines.config import load_params
    from pipelines.contracts import PROVENANCE, load_suite
    from pipelines.io import read_json
    from pipelines.paths import paths_for
    from tests.conftest import defaults

    _quiet_libraries()
    ws = root / dataset
    ws.mkdir()
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults(), "datasets": {dataset: block}}))
    cfg = load_params(ws / "params.yaml").dataset(dataset)
    p = paths_for(dataset, ws)
    list(init_contracts(cfg, p))
    for stage in ("ingest", "fit", "generate", "blend"):
        run_stage(stage, cfg, ws)
    blended = pd.read_parquet(p.blended)
    release = blended[blended[PROVENANCE] == "synthetic"].drop(columns=[PROVENANCE])
    train, holdout = pd.read_parquet(p.train), pd.read_parquet(p.holdout)
    metadata = Metadata.load_from_dict(read_json(p.model_metadata))
    suite = load_suite(p.release_suite)
    fit, blend = read_json(p.record("fit")), read_json(p.record("blend"))
    rows = []
    for control in CONTROLS:
        synthetic = _control(control, release, train, holdout, cfg)
        if synthetic is None:
            continue
        started = time.perf_counter()
        frame = synthetic.assign(**{PROVENANCE: "synthetic"})
        outcome = validate.evaluate(cfg, frame, train, holdout, metadata, suite, fit, blend)
        seconds = time.perf_counter() - started
        for g in outcome["gates"]:
            rows.append((control, g.name, g.value, g.threshold, g.comparison, g.passed))
        rows.append((control, "(seconds)", seconds, 0.0, "", True))
    return rows


def _table(dataset: str, rows: list[tuple[str, str, float, float, str, bool]]) -> str:
    gates = list(dict.fromkeys(r[1] for r in rows if r[1] != "(seconds)"))
    by = {(r[0], r[1]): r for r in rows}
    controls = list(dict.fromkeys(r[0] for r in rows))
    head = f"| {dataset} | " + " | ".join(gates) + " | seconds |"
    lines = [head, "|" + "---|" * (len(gates) + 2)]
    for c in controls:
        cells = []
        for g in gates:
            r = by.get((c, g))
            cells.append("" if r is None else f"{r[2]:.3f} {'pass' if r[5] else '**FAIL**'}")
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {by[(c, '(seconds)')][2]:.1f} |")
    thresholds = {r[1]: f"{r[4]} {r[3]:g}" for r in rows if r[1] != "(seconds)"}
    lines.append("| threshold | " + " | ".join(thresholds[g] for g in gates) + " | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="hdma,diamonds,natural_dups")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        blocks = _sources(Path(tmp))
        for name in args.datasets.split(","):
            print(_table(name, run(name, blocks[name], Path(tmp))) + "\n", flush=True)


if __name__ == "__main__":
    main()
