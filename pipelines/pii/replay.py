"""The replay check: no real PII value (train or holdout) may appear in a release."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from pipelines.pii.detect import PiiPlan, detect_column, is_text, normalise_value

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.paths import DatasetPaths
    from pipelines.records.stages import FitRecord


def real_values(frames: Iterable[pd.DataFrame], columns: Collection[str]) -> set[str]:
    """Every real value of the PII columns, normalised (the reference of the replay gate)."""
    out: set[str] = set()
    for df in frames:
        for col in columns:
            if col in df.columns:
                out.update(normalise_value(v) for v in df[col].dropna().tolist())
    out.discard("")
    return out


def gate_columns(real: pd.DataFrame, plan: PiiPlan) -> list[str]:
    """The columns whose real values the replay gate protects: the plan's plus those detection
    finds in `real` now (whatever `detect` says), minus the plan's `ignore` list."""
    cols = set(plan.names)
    for col in real.columns:
        if col not in cols and col not in plan.ignore and detect_column(col, real[col]):
            cols.add(col)
    return [c for c in real.columns if c in cols]


def mask(value: str) -> str:
    """A value shown in reports without revealing it (first character and length)."""
    return f"{value[:1]}***({len(value)} chars)"


def replay(release: pd.DataFrame, real: Collection[str], pii_columns: Collection[str]) -> dict[str, Any]:
    """Real PII values found in a release: in its PII columns (any type) or any text column.

    Returns the number of distinct leaked values, per-column counts and masked examples.
    """
    real_set = set(real)
    leaked: set[str] = set()
    by_column: dict[str, int] = {}
    for col in release.columns:
        s = release[col]
        if col not in pii_columns and not is_text(s):
            continue
        found = {normalise_value(v) for v in s.dropna().unique().tolist()} & real_set
        if found:
            by_column[col] = len(found)
            leaked |= found
    return {
        "leaked_values": len(leaked),
        "by_column": by_column,
        "examples": [mask(v) for v in sorted(leaked)[:3]],
        "real_values_checked": len(real_set),
        "columns_checked": [c for c in release.columns if c in pii_columns or is_text(release[c])],
    }


def real_pii_values(paths: DatasetPaths, fit: FitRecord) -> dict[str, set[str]]:
    """Per PII column, the real values (train + holdout) a replacement must never equal.

    The files read are checked against the digests the fit record holds (so DVC's dependency on
    runs/<ds>/fit.json covers them).
    """
    import pandas as pd

    from pipelines.io import verify_sha256

    plan = PiiPlan.from_dict(fit.pii)
    if not plan.columns or plan.policy == "drop":
        return {}
    frames = []
    for entry in (fit.train, fit.holdout):
        verify_sha256(paths.root / entry.path, entry.sha256, entry.path, "fit", "re-run `fit`.")
        frames.append(pd.read_parquet(paths.root / entry.path, columns=plan.names, engine="pyarrow"))
    return {c: real_values(frames, [c]) for c in plan.names}
