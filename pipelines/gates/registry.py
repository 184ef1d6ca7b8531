"""The registered gates, in the order validate runs them and reports list them.

A new gate is one module (a class with `name`, `param`, `applies` and `evaluate`; see
`pipelines.gates.base.Gate`) and one line here, or a `register(...)` call.
"""

from __future__ import annotations

from pipelines.gates import bias, canaries, constraints, contract, dp, keys, pii, privacy, quality, types, utility
from pipelines.gates import sequences as seq
from pipelines.gates.base import Gate

GATES: list[Gate] = [
    contract.GxRelease(),
    keys.REFERENTIAL_INTEGRITY,
    keys.PRIMARY_KEYS,
    seq.SEQUENCE_LENGTH,
    seq.SEQUENCE_ORDER,
    pii.PiiReplay(),
    constraints.Constraints(),
    contract.SyntheticRows(),
    types.Types(),
    quality.QUALITY,
    quality.DIAGNOSTIC,
    quality.COLUMN_SHAPE,
    quality.PAIR_TREND,
    privacy.EXACT_COPIES,
    privacy.DCR_LOW_TAIL,
    privacy.DCR_BASELINE_PROTECTION,
    utility.Utility(),
    utility.MinorityUtility(),
    bias.BIAS,
    bias.BIAS_SHARE,
    canaries.Canaries(),
    dp.PrivacyBudget(),
]


def register(new: Gate) -> Gate:
    """Add a gate after the registered ones (its name must be new); returns it."""
    if any(g.name == new.name for g in GATES):
        raise ValueError(f"a gate named {new.name!r} is registered already")
    GATES.append(new)
    return new
