"""The data card of a release, built from the run records only (never a hand-written number).

One section per point of EU AI Act Art. 10(2) (a)-(h), then the Datasheets-for-Datasets sections
that add something. Every answer cites the record it came from as `<path>#<field>` (paths relative
to the workspace). A record that is missing or unreadable becomes a gap on the card ("record
runs/hdma/ingest.json missing: cannot answer (c)"), never a guess; a free-text answer the
`governance:` block of params.yaml leaves out reads "not declared". `release` writes the card as
`datacard.md` and `datacard.json` into the release (listed in the manifest); `synthgate audit`
lists its gaps. Rendering: pipelines/datacard_render.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.paths import DatasetPaths

NOT_DECLARED = "not declared"

NEAR_SHARE = 0.1
"""A passed gate whose figure is within this share of its threshold is listed under (h) as near it."""

FIDELITY_GATES = ("gx_release", "types", "quality", "diagnostic", "column_shape", "pair_trend", "utility")
FIDELITY_GATES += ("constraints", "referential_integrity", "sequence_length")
"""Gates about the data's quality and usefulness: (e)."""

GUARD_GATES = ("bias", "bias_share", "minority_utility", "exact_copies", "dcr_low_tail", "dcr_baseline_protection")
GUARD_GATES += ("pii_replay", "canary_exposure", "privacy_budget")
"""Gates that detect, prevent or mitigate harm (bias, privacy): (g)."""

ARTICLE = {
    "a": "design choices",
    "b": "data collection processes and the origin of data",
    "c": "data-preparation processing operations",
    "d": "assumptions about what the data measures and represents",
    "e": "availability, quantity and suitability of the data sets",
    "f": "examination in view of possible biases",
    "g": "measures to detect, prevent and mitigate possible biases",
    "h": "relevant data gaps or shortcomings, and how they can be addressed",
}
"""EU AI Act Art. 10(2): the points the card answers, by letter."""


class _Records:
    """The records a card reads, each loaded once; what cannot be read is remembered as a gap."""

    def __init__(self, paths: DatasetPaths, params_source: str) -> None:
        self.paths = paths
        self.files = {s: paths.record(s) for s in ("ingest", "fit", "generate", "blend", "validate")}
        self.files["validation"] = paths.validation
        self.params_source = params_source
        self.loaded: dict[str, dict[str, Any] | None] = {}
        self.problems: dict[str, str] = {}

    def rel(self, key: str) -> str:
        return self.paths.rel(self.files[key])

    def get(self, key: str) -> dict[str, Any] | None:
        if key not in self.loaded:
            path = self.files[key]
            self.loaded[key] = None
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                self.problems[key] = "missing"
            except (OSError, ValueError) as err:
                self.problems[key] = (
                    "unreadable (not valid JSON)" if isinstance(err, ValueError) else f"unreadable ({err})"
                )
            else:
                if isinstance(record, dict):
                    self.loaded[key] = record
                else:
                    self.problems[key] = "unreadable (not a JSON object)"
        return self.loaded[key]

    def ask(self, sid: str, question: str, key: str, field: str, value: Callable[[dict[str, Any]], Any]) -> dict:
        """One answer from one record's field; a gap when the record or the field is not there."""
        source = f"{self.rel(key)}#{field}"
        record = self.get(key)
        if record is None:
            why = f"record {self.rel(key)} {self.problems[key]}: cannot answer ({sid})"
            return {"question": question, "answer": why, "source": source, "gap": why}
        try:
            answer = value(record)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            why = f"record {self.rel(key)} has no {field}: cannot answer ({sid})"
            return {"question": question, "answer": why, "source": source, "gap": why}
        return {"question": question, "answer": str(answer), "source": source}

    def declared(self, question: str, gov: dict[str, Any], field: str) -> dict:
        """A free-text answer of the governance block; "not declared" (and a gap) when null."""
        source = f"{self.params_source}.governance.{field}"
        value = gov.get(field)
        if value is None:
            return {"question": question, "answer": NOT_DECLARED, "source": source, "gap": f"{source}: not declared"}
        return {"question": question, "answer": str(value).strip(), "source": source}

    def param(self, question: str, params: dict[str, Any], field: str, show: Callable[[Any], str]) -> dict:
        """An answer from the effective params (the manifest's copy at release, params.yaml otherwise)."""
        value: Any = params
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return {"question": question, "answer": show(value), "source": f"{self.params_source}.{field}"}


def _gate(g: dict[str, Any]) -> str:
    verdict = "PASS" if g["passed"] else "FAIL"
    return f"{g['name']} {g['value']:g} {g['comparison']} {g['threshold']:g} ({g.get('param') or 'fixed'}): {verdict}"


def _gates(names: tuple[str, ...]) -> Callable[[dict[str, Any]], str]:
    def show(v: dict[str, Any]) -> str:
        lines = [_gate(g) for g in v["gates"] if g["name"] in names]
        return "; ".join(lines) or "none of these gates applies to this dataset"

    return show


def _listed(values: Any, empty: str = "none") -> str:
    return ", ".join(str(v) for v in values) if values else empty


def _table(t: dict[str, Any]) -> str:
    return f"{t['path']}: {t['rows']} rows, sha256 {t['sha256']}"


def _design(r: _Records, params: dict[str, Any]) -> list[dict]:
    eng = r.ask(
        "a",
        "engine",
        "fit",
        "engine",
        lambda f: f"{f['synthesizer']} ({f['engine']['family']} family, licence {f['engine']['licence']})",
    )
    return [
        eng,
        r.ask("a", "engine params", "fit", "params", lambda f: json.dumps(f["params"], sort_keys=True)),
        r.ask("a", "seed", "fit", "seed", lambda f: f["seed"]),
        r.ask(
            "a",
            "split",
            "ingest",
            "split",
            lambda i: (
                "holdout_fraction {holdout_fraction}, seed {seed}, "
                "stratified by {stratified_by}, main table {main_table}".format(**i["split"])
            ),
        ),
        r.ask("a", "blend", "blend", "strategy", lambda b: f"{b['strategy']} (real_ratio {b['real_ratio']:g})"),
        r.ask("a", "gates and thresholds", "validation", "gates", lambda v: "; ".join(_gate(g) for g in v["gates"])),
        r.param("target column", params, "target", lambda t: t or "none (no utility gates)"),
    ]


def _origin(r: _Records, gov: dict[str, Any]) -> list[dict]:
    src = "{path} ({format}), {rows} rows, {columns} columns, sha256 {sha256}"
    answers = [
        r.ask("b", "source", "ingest", "source", lambda i: src.format(**i["source"])),
        r.ask("b", "snapshot read", "ingest", "snapshot", lambda i: _table(i["snapshot"])),
        r.ask(
            "b",
            "raw contract",
            "ingest",
            "contract",
            lambda i: "{suite}: {evaluated} expectations, success {success}".format(**i["contract"]),
        ),
        r.declared("how and by whom the data was collected", gov, "collection"),
        r.declared("personal data", gov, "personal_data"),
    ]
    if gov.get("personal_data") is not False:
        answers.append(r.declared("original purpose of the collection (personal data)", gov, "original_purpose"))
    return answers


def _pii(f: dict[str, Any]) -> str:
    pii = f["pii"]
    cols = _listed([f"{c['column']} ({c['kind']}, {c['source']})" for c in pii["columns"]])
    return f"{cols}; policy {pii['policy']} (never learned)"


def _preparation(r: _Records) -> list[dict]:
    return [
        r.ask("c", "normalisation while reading", "ingest", "normalisation", lambda i: _listed(i["normalisation"])),
        r.ask("c", "PII columns", "fit", "pii", _pii),
        r.ask(
            "c",
            "columns not learned",
            "fit",
            "learned_columns",
            lambda f: _listed([c for c in f["columns"] if c not in f["learned_columns"]]),
        ),
        r.ask(
            "c",
            "split",
            "ingest",
            "train.rows",
            lambda i: (
                f"train {i['train']['rows']} rows, holdout {i['holdout']['rows']} rows (never shown to the engine)"
            ),
        ),
        r.ask("c", "orphan foreign keys", "ingest", "orphans", lambda i: _listed(i["orphans"])),
        r.ask(
            "c",
            "conditions and rebalancing",
            "generate",
            "conditions",
            lambda g: f"conditions {json.dumps(g['conditions'])}, rebalance {json.dumps(g['rebalance'])}",
        ),
        r.ask(
            "c", "business rules", "fit", "constraints", lambda f: _listed([c.get("type") for c in f["constraints"]])
        ),
    ]


def _suitability(r: _Records) -> list[dict]:
    return [
        r.ask("e", "real rows", "ingest", "source.rows", lambda i: i["source"]["rows"]),
        r.ask(
            "e",
            "released rows by provenance",
            "blend",
            "rows_by_provenance",
            lambda b: json.dumps(b["rows_by_provenance"], sort_keys=True),
        ),
        r.ask("e", "columns", "fit", "columns", lambda f: f"{len(f['columns'])}: {_listed(f['columns'])}"),
        r.ask("e", "quality and utility verdicts", "validation", "gates", _gates(FIDELITY_GATES)),
        r.ask("e", "every gate passed", "validate", "passed", lambda v: v["passed"]),
    ]


def _bias_figures(v: dict[str, Any]) -> str:
    b = v["figures"]["bias"]
    return (
        f"sensitive {_listed(b['sensitive'])}; worst target-rate gap {b['target_gap']:g} ({b['target_gap_group']}), "
        f"worst share gap {b['share_gap']:g} ({b['share_gap_group']}), against {b['reference']}"
    )


def _biases(r: _Records, params: dict[str, Any]) -> list[dict]:
    if not params.get("sensitive"):
        return [r.param("sensitive columns", params, "sensitive", lambda _: "no sensitive columns declared")]
    return [
        r.param("sensitive columns", params, "sensitive", _listed),
        r.ask("f", "group figures", "validation", "figures.bias", _bias_figures),
        r.ask("f", "bias verdicts", "validation", "gates", _gates(("bias", "bias_share"))),
    ]


def _measures(r: _Records) -> list[dict]:
    def dp(f: dict[str, Any]) -> str:
        p = f.get("privacy") or {}
        return f"epsilon {p['target']}, spent {p['spent']}" if p.get("dp") else "no differential privacy"

    return [
        r.ask("g", "gates that guard the release", "validation", "gates", _gates(GUARD_GATES)),
        r.ask("g", "differential privacy", "fit", "privacy", dp),
        r.ask("g", "PII protection", "fit", "pii.policy", _pii),
    ]


def _near(g: dict[str, Any]) -> bool:
    """Passed within NEAR_SHARE of its threshold, and not at the figure's best (a share of 1 at a
    `>=` gate whose threshold is a share, nothing at a `<=` gate)."""
    value, threshold = g["value"], g["threshold"]
    best = value <= 0 if g["comparison"] == "<=" else threshold <= 1 <= value
    return g["passed"] and not best and abs(value - threshold) <= NEAR_SHARE * abs(threshold)


def _shortfalls(v: dict[str, Any]) -> str:
    out = [f"failed: {_gate(g)}" for g in v["gates"] if not g["passed"]]
    out += [f"near threshold: {_gate(g)}" for g in v["gates"] if _near(g)]
    return "; ".join(out) or f"no gate failed or passed within {NEAR_SHARE:.0%} of its threshold"


def _worst(v: dict[str, Any]) -> str:
    figs = v["figures"]
    scored = {k: [c for c in figs.get(k) or [] if c["score"] is not None] for k in ("column_shapes", "pair_trends")}
    shapes = sorted(scored["column_shapes"], key=lambda c: c["score"])[:3]
    pairs = sorted(scored["pair_trends"], key=lambda c: c["score"])[:3]
    text = "columns " + _listed([f"{c['column']} {c['score']:g}" for c in shapes], "not measured")
    text += "; pairs " + _listed([f"{'/'.join(p['columns'])} {p['score']:g}" for p in pairs], "not measured")
    left = figs.get("floors_left_out") or {}
    return text + (f"; left out of the floors: {_listed(sorted(left))}" if left else "")


def _rare(v: dict[str, Any]) -> str:
    shares = (v["figures"].get("class_shares") or {}).get("train") or {}
    if not shares:
        return "no class target"
    cls = min(shares, key=shares.get)
    m = v["figures"].get("minority_utility") or {}
    ratio = f", recall ratio synthetic/real {m['recall_ratio']:.3g}" if m.get("recall_ratio") is not None else ""
    return f"rarest class {cls!r}: {shares[cls]:.3g} of train{ratio}"


def _gaps(r: _Records) -> list[dict]:
    return [
        r.ask("h", "failed or near-threshold gates", "validation", "gates", _shortfalls),
        r.ask("h", "worst columns and pairs (fidelity floors)", "validation", "figures.column_shapes", _worst),
        r.ask("h", "rare classes", "validation", "figures.class_shares", _rare),
        r.ask(
            "h",
            "columns the engine did not learn",
            "fit",
            "learned_columns",
            lambda f: _listed([c for c in f["columns"] if c not in f["learned_columns"]]),
        ),
    ]


def _datasheet(r: _Records, params: dict[str, Any], gov: dict[str, Any], release: str) -> list[dict]:
    return [
        {
            "id": "motivation",
            "answers": [
                r.declared("purpose", gov, "purpose"),
                r.param("description", params, "description", lambda d: d or NOT_DECLARED),
            ],
        },
        {"id": "composition", "see": ["e", "f"], "answers": []},
        {"id": "collection", "see": ["b"], "answers": []},
        {"id": "preprocessing", "see": ["c"], "answers": []},
        {
            "id": "uses",
            "answers": [
                r.declared("intended uses", gov, "intended_uses"),
                r.declared("uses it is not fit for", gov, "out_of_scope_uses"),
            ],
        },
        {
            "id": "distribution",
            "answers": [
                r.ask(
                    "distribution",
                    "released data",
                    "blend",
                    "blended",
                    lambda b: f"{release} ({b['blended']['rows']} rows)",
                )
            ],
        },
        {
            "id": "maintenance",
            "answers": [
                r.declared("maintainer", gov, "maintainer"),
                r.param("schedule", params, "schedule", lambda s: s or "run by hand"),
            ],
        },
    ]


def build(paths: DatasetPaths, params: dict[str, Any], manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card of `paths`' dataset from its records and effective `params` (`cfg.to_params()`).

    With the `manifest` being released, params are cited from it (`data/release/<ds>/manifest.json#params`);
    without, from params.yaml (what `synthgate audit` checks before a release).
    """
    if manifest is not None:
        params_source = f"{paths.rel(paths.manifest)}#params"
    else:
        params_source = f"params.yaml#datasets.{paths.name}"
    r = _Records(paths, params_source)
    gov = params.get("governance") or {}
    sections = {
        "a": _design(r, params),
        "b": _origin(r, gov),
        "c": _preparation(r),
        "d": [r.declared("what the data measures and represents", gov, "assumptions")],
        "e": _suitability(r),
        "f": _biases(r, params),
        "g": _measures(r),
        "h": _gaps(r),
    }
    release = paths.rel(paths.release_dir)
    datasheet = _datasheet(r, params, gov, release)
    every = [a for s in sections.values() for a in s] + [a for d in datasheet for a in d["answers"]]
    gaps = list(dict.fromkeys(a["gap"] for a in every if "gap" in a))
    return {
        "dataset": paths.name,
        "version": (manifest or {}).get("version") or None,  # a DVC experiment's candidate (0) is not released
        "created_at": (manifest or {}).get("created_at"),
        "article_10_2": [{"point": k, "title": ARTICLE[k], "answers": v} for k, v in sections.items()],
        "datasheet": datasheet,
        "gaps": gaps,
    }
