"""Canaries: outlier records planted in a shadow fit's training rows, and how many come back.

A canary is a valid but unusual record: on every compared column (`pipelines.privacy.columns`)
numbers and instants lie beyond the train split's range by a margin (integers stay integers,
decimals keep the metadata's places), and categories are drawn uniformly from the train values (a
rare combination of existing ones, so the metadata stays valid). Other columns come from a random
training row; a metadata key gets fresh values. Candidates that break a business rule
(`fit.constraints`) or equal a training row are dropped; of the rest, the `2k` furthest apart are
kept (farthest-point selection), so every canary is far from every real row and from the others.

Half are planted (added to the training rows of a shadow fit), half are kept back as controls:
a generator that spreads rows into the empty space beyond the data lands near a control as often
as near a planted canary, one that memorised lands near the planted ones only. A canary is
**exposed** when a synthetic row equals it on the compared columns, or lies within `RADIUS_SHARE`
of its distance to the closest real training row (the DCR encoding of `pipelines.privacy.distances`):
nearer to the canary than to anything the real data could have taught.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.rules import ConstraintRule

MARGIN = (0.25, 0.75)
"""A canary's number or instant lies beyond the train range by a share of the range drawn from this interval."""

POOL_PER_CANARY = 25
"""Candidates drawn per canary before the farthest-apart ones are kept."""

RADIUS_SHARE = 0.5
"""A synthetic row within this share of a canary's distance to the closest training row exposes it."""

SALT = 0xCA7A
"""Mixed into the dataset seed, so canaries do not share the random stream of the split or the fit."""


def _outward(s: pd.Series, rng: np.random.Generator, n: int, decimals: int | None) -> pd.Series:
    """`n` values beyond the range of `s` (numbers or instants), below or above at random."""
    import numpy as np
    import pandas as pd

    values = s.dropna()
    lo, hi = values.min(), values.max()
    up = rng.random(n) < 0.5
    steps = rng.uniform(*MARGIN, n) * (hi - lo)
    if pd.api.types.is_datetime64_any_dtype(s):
        offsets = pd.to_timedelta(steps)
        out = pd.Series(np.where(up, hi + offsets, lo - offsets), dtype=s.dtype)
        for unit in ("D", "h", "min", "s"):  # dates stay dates, whole seconds whole seconds
            if (values == values.dt.floor(unit)).all():
                return out.where(~up, out.dt.ceil(unit)).where(up, out.dt.floor(unit))
        return out
    raw = np.where(up, hi + steps, lo - steps).astype(float)
    integral = bool((values == np.round(values)).all())
    places = 0 if integral else (decimals if decimals is not None else 6)
    scale = 10.0**places
    rounded = np.where(up, np.ceil(raw * scale), np.floor(raw * scale)) / scale  # rounding never moves inward
    return pd.Series(rounded).astype(s.dtype if integral else float)


def _fresh_keys(s: pd.Series, n: int) -> pd.Series:
    """`n` key values no training row has, of the column's type."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s):
        start = int(s.max()) + 1 if s.notna().any() else 0
        return pd.Series(range(start, start + n)).astype(s.dtype)
    return pd.Series([f"canary-{i:05d}" for i in range(n)], dtype=object)


def candidates(
    train: pd.DataFrame,
    columns_meta: Mapping[str, Mapping[str, Any]],
    compared: Sequence[str],
    keys: Sequence[str],
    n: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """`n` candidate canaries with the train split's columns and dtypes (see the module docstring)."""
    import pandas as pd

    donors = train.iloc[rng.integers(0, len(train), n)].reset_index(drop=True)
    for col in compared:
        meta = columns_meta.get(col, {})
        s = train[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if meta.get("sdtype") in ("numerical", "datetime") and (numeric or pd.api.types.is_datetime64_any_dtype(s)):
            donors[col] = _outward(s, rng, n, meta.get("decimal_places"))
        else:
            values = s.dropna().unique()
            donors[col] = pd.Series(values[rng.integers(0, len(values), n)], dtype=s.dtype)
    for col in keys:
        donors[col] = _fresh_keys(train[col], n)
    return donors[list(train.columns)]


def obeying(frame: pd.DataFrame, rules: Sequence[ConstraintRule], real: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` that break none of the business rules."""
    import pandas as pd

    from pipelines.constraints import real_combinations, violations

    ok = pd.Series(True, index=frame.index)
    for rule in rules:
        combos = real_combinations(rule, real) if rule.type == "fixed_combinations" else None
        ok &= ~violations(rule, frame, combos)
    return frame[ok]


def farthest_apart(points: np.ndarray, count: int, first: int) -> list[int]:
    """`count` row indices of `points` chosen greedily, each furthest from those chosen before."""
    import numpy as np

    chosen = [first]
    gap = np.linalg.norm(points - points[first], axis=1)
    while len(chosen) < min(count, len(points)):
        nxt = int(np.argmax(gap))
        chosen.append(nxt)
        gap = np.minimum(gap, np.linalg.norm(points - points[nxt], axis=1))
    return chosen


@dataclass(frozen=True)
class CanarySet:
    """Planted canaries and their controls (both on every train column), with the encoding behind them."""

    planted: pd.DataFrame
    controls: pd.DataFrame
    columns: list[str]
    left_out: dict[str, str]
    nearest_real: list[float] = field(repr=False)
    """Distance of each canary (planted first, then controls) to its closest training row."""


def make_canaries(
    train: pd.DataFrame,
    columns_meta: Mapping[str, Mapping[str, Any]],
    k: int,
    seed: int,
    excluded: Mapping[str, str] | None = None,
    rules: Sequence[ConstraintRule] = (),
    keys: Sequence[str] = (),
) -> CanarySet:
    """`k` canaries to plant and `k` controls, deterministic from `seed`.

    `columns_meta` is the table's SDV column metadata (sdtypes, decimal places); `excluded` the
    columns privacy leaves out with the reason (keys, PII); `keys` the metadata keys (fresh values).
    Raises InvalidInputError when fewer than `2k` candidates obey the rules and differ from every
    training row.
    """
    import numpy as np

    from pipelines.privacy.columns import conform, left_out
    from pipelines.privacy.distances import RowEncoder, nearest

    dropped = left_out(train, excluded)
    cols = [c for c in train.columns if c not in dropped]
    if not cols:
        raise InvalidInputError("canaries", ["no column to compare: every column is a key, PII, id-like or constant"])
    rng = np.random.default_rng([seed, SALT])
    pool = obeying(candidates(train, columns_meta, cols, keys, POOL_PER_CANARY * 2 * k, rng), rules, train)
    tr = conform(train, train, cols, "train split")
    enc = RowEncoder(tr)
    points = enc.transform(conform(pool, train, cols, "canaries"))
    to_real = nearest(points, enc.transform(tr)) if len(pool) else np.zeros(0)
    usable = np.flatnonzero(to_real > 0)
    if len(usable) < 2 * k:
        raise InvalidInputError(
            "canaries",
            [f"only {len(usable)} of {len(pool)} candidate canaries obey fit.constraints and differ from every "
             f"training row; {2 * k} are needed"],
            hint="Lower gates.canaries, or set it to 0 for this dataset.",
        )  # fmt: skip
    picked = usable[farthest_apart(points[usable], 2 * k, int(np.argmax(to_real[usable])))]
    planted, controls = picked[0::2], picked[1::2]
    order = np.concatenate([planted, controls])
    return CanarySet(
        planted=pool.iloc[planted].reset_index(drop=True),
        controls=pool.iloc[controls].reset_index(drop=True),
        columns=cols,
        left_out=dropped,
        nearest_real=[float(x) for x in to_real[order]],
    )


@dataclass(frozen=True)
class CanaryFigures:
    """How many planted canaries (and controls) a generator's rows expose, and how near each came."""

    planted: int
    columns: list[str]
    left_out: dict[str, str]
    synthetic_rows: int
    radius_share: float
    exposed: int
    exposed_share: float
    reproduced: int
    control_exposed: int
    control_exposed_share: float
    exposure_excess: float
    nearest: dict[str, list[dict[str, Any]]]
    """Per canary (`planted`, `controls`): distance to the closest training and synthetic row, their
    ratio, and whether a synthetic row reproduced or exposed it."""


def exposure(canaries: CanarySet, synthetic: pd.DataFrame, train: pd.DataFrame) -> CanaryFigures:
    """The canaries `synthetic` exposes (see the module docstring); `train` holds the real training rows.

    Raises InvalidInputError when a compared column of `synthetic` is missing or of another type.
    """
    import numpy as np
    import pandas as pd

    from pipelines.privacy.columns import conform
    from pipelines.privacy.distances import DECIMALS, RowEncoder, nearest

    cols = canaries.columns
    enc = RowEncoder(conform(train, train, cols, "train split"))
    both = conform(pd.concat([canaries.planted, canaries.controls], ignore_index=True), train, cols, "canaries")
    syn = conform(synthetic, train, cols, "synthetic rows")
    to_syn = nearest(enc.transform(both), enc.transform(syn)) if len(syn) else np.full(len(both), np.inf)
    to_real = np.asarray(canaries.nearest_real)
    reproduced = np.isin(pd.util.hash_pandas_object(both, index=False), pd.util.hash_pandas_object(syn, index=False))
    exposed = reproduced | (to_syn <= RADIUS_SHARE * to_real)
    k = len(canaries.planted)

    def rows(part: slice) -> list[dict[str, Any]]:
        return [
            {
                "nearest_real": round(float(r), DECIMALS),
                "nearest_synthetic": round(float(s), DECIMALS),
                "ratio": round(float(s / r), DECIMALS),
                "reproduced": bool(rep),
                "exposed": bool(exp),
            }
            for r, s, rep, exp in zip(to_real[part], to_syn[part], reproduced[part], exposed[part], strict=True)
        ]

    share, control_share = float(exposed[:k].mean()), float(exposed[k:].mean())
    return CanaryFigures(
        planted=k,
        columns=cols,
        left_out=canaries.left_out,
        synthetic_rows=len(syn),
        radius_share=RADIUS_SHARE,
        exposed=int(exposed[:k].sum()),
        exposed_share=share,
        reproduced=int(reproduced[:k].sum()),
        control_exposed=int(exposed[k:].sum()),
        control_exposed_share=control_share,
        exposure_excess=share - control_share,
        nearest={"planted": rows(slice(0, k)), "controls": rows(slice(k, None))},
    )
