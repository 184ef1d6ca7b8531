"""Key gates of a table set: synthetic foreign keys resolve, synthetic primary keys are valid.

Both read one integrity check of the synthetic tables (`pipelines.keys.integrity`); they apply
only to datasets with relationships (referential integrity) or several tables (primary keys).
"""

from __future__ import annotations

from pipelines.gates.base import FamilyGate, Figures, GateContext, GateResult, gate

PRIMARY_KEYS_MIN = 1.0
"""Fixed: a repeated or missing primary key makes the set unjoinable; no share of that is acceptable."""


def _integrity(ctx: GateContext) -> tuple[dict[str, GateResult], Figures]:
    from pipelines.keys import integrity

    ri = integrity(ctx.synthetic, ctx.cfg.source)
    rels = ri["relationships"]
    worst = min([r["share_resolved"] for r in rels.values()] or [1.0])
    dangling = {k: v["dangling"] for k, v in rels.items() if v["dangling"]}
    pk_worst = min([k["share_valid"] for k in ri["primary_keys"].values()] or [1.0])
    results = [
        gate(
            "referential_integrity",
            worst,
            ctx.cfg.gates.referential_integrity_min,
            ">=",
            "share of non-missing synthetic foreign keys that match a parent row (lowest of "
            f"{len(rels)} relationships)" + (f"; dangling: {dangling}" if dangling else ""),
        ),
        gate(
            "primary_keys",
            pk_worst,
            PRIMARY_KEYS_MIN,
            ">=",
            "share of synthetic primary keys that are unique and present (lowest table)",
        ),
    ]
    return {r.name: r for r in results}, {"integrity": ri}


REFERENTIAL_INTEGRITY = FamilyGate(
    "referential_integrity", "referential_integrity_min", _integrity, lambda ctx: bool(ctx.cfg.source.relationships)
)
PRIMARY_KEYS = FamilyGate("primary_keys", None, _integrity, lambda ctx: ctx.layout.relational)
