"""Measured figures for docs/generation.md: PII, business rules, rebalancing, relational.

    python benchmarks/generation_breadth.py [--only pii,constraints,rebalance,relational] [--json out.json]

Each scenario runs the real stages in process, in a temporary workspace (its own params.yaml,
contracts and MLflow store; nothing in the repository's data/ is touched), on real data shipped
in the repository, and prints one table row per run: wall times of fit and generate, the gates
and the figures the docs quote. Times depend on the machine (and on what else runs on it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HDMA = REPO / "sources" / "hdma.csv"
WEATHER = REPO / "tests" / "data" / "weather_slice.csv"
NYC = REPO / "sources" / "nycflights13"

RULES = [
    {"type": "inequality", "low": "dewp", "high": "temp"},
    {"type": "range", "column": "humid", "min": 0, "max": 100},
    {"type": "positive", "column": "pressure"},
    {"type": "increments", "column": "wind_dir", "step": 10},
    {"type": "range", "column": "visib", "min": 0, "max": 10},
    {"type": "fixed_combinations", "columns": ["origin", "month"]},
]


def _block(source: Path | str, target: str | None, **sections: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "source": {"path": str(source), "format": "csv"},
        "target": target,
        "seed": 7,
        "ingest": {},
        "fit": {},
        "generate": {},
        "blend": {},
        "gates": {},
    }
    block.update(sections)
    return block


def _run(root: Path, name: str, block: dict[str, Any], stages: tuple[str, ...]) -> dict[str, Any]:
    """Bootstrap contracts, run the stages, return timings, gates and figures."""
    from pipelines.bootstrap import init_contracts
    from pipelines.cli import run_stage
    from pipelines.config import load_params
    from pipelines.io import read_json
    from pipelines.paths import paths_for

    ws = root / name
    ws.mkdir(parents=True)
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())["defaults"]
    (ws / "params.yaml").write_text(yaml.safe_dump({"defaults": defaults, "datasets": {name: block}}))
    cfg = load_params(ws / "params.yaml").dataset(name)
    list(init_contracts(cfg, paths_for(name, ws)))
    seconds = {}
    for stage in stages:
        started = time.perf_counter()
        run_stage(stage, cfg, ws)
        seconds[stage] = round(time.perf_counter() - started, 1)
    p = paths_for(name, ws)
    validation = read_json(p.validation)
    fit = read_json(p.record("fit"))
    gen = read_json(p.record("generate"))
    return {
        "seconds": seconds,
        "fit_seconds": fit["fit_seconds"],
        "sample_seconds": gen["shards"][0].get("sample_seconds"),
        "gates": {g["name"]: round(g["value"], 4) for g in validation["gates"]},
        "passed": validation["passed"],
        "figures": validation["figures"],
    }


def pii(root: Path) -> list[dict[str, Any]]:
    """HDMA plus six realistic identifier columns (Faker, another seed): replace vs drop."""
    import pandas as pd
    from faker import Faker

    df = pd.read_csv(HDMA).drop(columns=["Unnamed: 0"])
    fake = Faker(["en_US", "en_GB"])
    fake.seed_instance(2024)
    n = len(df)
    df.insert(0, "customer_id", [fake.bothify("CU-######") for _ in range(n)])
    df["full_name"] = [fake.name() for _ in range(n)]
    df["email"] = [fake.email() for _ in range(n)]
    df["phone"] = [fake["en_US"].phone_number() for _ in range(n)]
    df["ssn"] = [fake["en_US"].ssn() for _ in range(n)]
    df["home_address"] = [fake.address().replace("\n", ", ") for _ in range(n)]
    src = root / "hdma_pii.csv"
    df.to_csv(src, index=False)
    out = []
    for label, fit in (
        ("replace (en_US)", {}),
        ("replace (de_DE)", {"pii": {"locale": "de_DE"}}),
        ("drop", {"pii": {"policy": "drop"}}),
        ("unprotected (detect off)", {"pii": {"detect": False}}),
    ):
        r = _run(
            root,
            f"pii_{len(out)}",
            _block(src, "deny", fit=fit, generate={"rows": 2000}),
            ("ingest", "fit", "generate", "blend", "validate"),
        )
        out.append({"scenario": f"pii {label}", **r})
    return out


def constraints(root: Path) -> list[dict[str, Any]]:
    """The nycflights13 weather slice with six rules: enforced by SDV, or not (gate only)."""
    import pipelines.constraints as c

    out = []
    real = c.to_sdv
    for label, patch in (("rules enforced at fit", None), ("rules not given to SDV", lambda rules, table=None: [])):
        c.to_sdv = patch or real
        try:
            r = _run(
                root,
                f"rules_{len(out)}",
                _block(WEATHER, None, fit={"constraints": RULES}, generate={"rows": 800}),
                ("ingest", "fit", "generate", "blend", "validate"),
            )
        finally:
            c.to_sdv = real
        out.append({"scenario": f"constraints: {label}", **r})
    return out


def rebalance(root: Path) -> list[dict[str, Any]]:
    """HDMA deny (12% yes): as sampled, rebalanced to 50%, rebalanced plus 20% real rows."""
    out = []
    for label, blend in (
        ("synthetic_only", {}),
        ("rebalance 50%", {"strategy": "rebalance", "shares": {"yes": 0.5}}),
        ("rebalance 50% + 20% real", {"strategy": "rebalance", "shares": {"yes": 0.5}, "real_ratio": 0.2}),
    ):
        r = _run(
            root,
            f"rebalance_{len(out)}",
            _block(HDMA, "deny", generate={"rows": 2000}, blend=blend),
            ("ingest", "fit", "generate", "blend", "validate"),
        )
        out.append({"scenario": f"hdma {label}", **r})
    return out


def relational(root: Path) -> list[dict[str, Any]]:
    """The repository's nycflights13 subset, as params.yaml declares it, both orphan policies."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    block = params["datasets"]["nycflights13"]
    block["source"]["path"] = str(NYC)
    out = []
    for policy in ("nullify", "drop"):
        b = json.loads(json.dumps(block))
        b["ingest"]["orphans"] = policy
        r = _run(root, f"nyc_{policy}", b, ("ingest", "fit", "generate", "blend", "validate"))
        out.append({"scenario": f"nycflights13 orphans={policy}", **r})
    return out


SCENARIOS = {"pii": pii, "constraints": constraints, "rebalance": rebalance, "relational": relational}


def main() -> int:
    """Run the chosen scenarios and print a summary table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = ap.parse_args()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory(prefix="synthgate-bench-") as tmp:
        for name in args.only.split(","):
            results += SCENARIOS[name](Path(tmp))
    for r in results:
        print(
            f"{r['scenario']:<36} fit {r['fit_seconds']:>6.1f}s  generate {r['seconds']['generate']:>5.1f}s  "
            f"{'PASS' if r['passed'] else 'BLOCKED'}  {r['gates']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
