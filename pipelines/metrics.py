"""Utility figures, as pure functions on DataFrames (privacy figures: `pipelines.privacy`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_MAX_MODEL_CATEGORIES = 250


def is_classification(s: pd.Series) -> bool:
    """A target is a class label unless it is a number with more than 20 distinct values."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(s):
        return True
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return s.nunique(dropna=True) <= 20
    return True


def _features(df: pd.DataFrame, target: str, categories: dict[str, list[str]]) -> pd.DataFrame:
    import pandas as pd

    X = df.drop(columns=[target]).copy()
    for col in X.columns:
        if col in categories:
            X[col] = pd.Categorical(X[col].astype(str), categories=categories[col])
        elif pd.api.types.is_datetime64_any_dtype(X[col]):
            X[col] = X[col].astype("int64").where(X[col].notna()).astype(float)
        elif pd.api.types.is_bool_dtype(X[col]):
            X[col] = X[col].astype(float)
    return X


@dataclass(frozen=True)
class UtilityFigures:
    """Train-synthetic-test-real (TSTR) vs train-real-test-real (TRTR) on the real holdout.

    For a class target, `minority_class` is the rarest class of the real holdout and the
    `minority_*` figures are both models' recall and F1 on it (None for a numeric target).
    """

    task: str
    metric: str
    trtr: float
    tstr: float
    gap: float
    minority_class: str | None = None
    minority_recall_trtr: float | None = None
    minority_recall_tstr: float | None = None
    minority_f1_trtr: float | None = None
    minority_f1_tstr: float | None = None


def utility(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    target: str,
    seed: int,
    sample_rows: int,
) -> UtilityFigures:
    """Fit the same gradient-boosting model on real train and on synthetic rows (up to
    `sample_rows` each); score both on the real holdout (ROC AUC for two classes, macro F1 for
    more, R^2 for numbers) and, for classes, on the holdout's rarest class (recall and F1)."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import f1_score, r2_score, recall_score, roc_auc_score

    cols = list(train.columns)
    tr = train.sample(n=min(len(train), sample_rows), random_state=seed)
    syn = synthetic[cols].sample(n=min(len(synthetic), sample_rows), random_state=seed)
    feats = [c for c in cols if c != target]
    categories = {
        c: sorted(set(pd.concat([train[c], holdout[c], synthetic[c]]).astype(str)))
        for c in feats
        if not (pd.api.types.is_numeric_dtype(train[c]) or pd.api.types.is_datetime64_any_dtype(train[c]))
    }
    for c, cats in categories.items():  # gradient boosting takes at most 255 categories per column;
        if len(cats) > _MAX_MODEL_CATEGORIES:  # rarer values become missing
            top = train[c].astype(str).value_counts().index[:_MAX_MODEL_CATEGORIES]
            categories[c] = sorted(top)
    X_ho = _features(holdout, target, categories)
    classification = is_classification(train[target])

    if not classification:

        def score_reg(df: pd.DataFrame) -> float:
            model = HistGradientBoostingRegressor(random_state=seed, categorical_features="from_dtype")
            model.fit(_features(df, target, categories), df[target].astype(float))
            return float(r2_score(holdout[target].astype(float), model.predict(X_ho)))

        trtr, tstr = score_reg(tr), score_reg(syn)
        return UtilityFigures("regression", "r2", trtr, tstr, trtr - tstr)

    y_ho = holdout[target].astype(str)
    classes = sorted(y_ho.unique())
    counts = y_ho.value_counts()
    minority = min(counts[counts == counts.min()].index)  # the rarest class (ties: the first by name)

    def score_clf(df: pd.DataFrame) -> tuple[float, float, float]:
        y = df[target].astype(str)
        if y.nunique() < 2:
            return (0.5 if len(classes) == 2 else 0.0), 0.0, 0.0
        model = HistGradientBoostingClassifier(random_state=seed, categorical_features="from_dtype")
        model.fit(_features(df, target, categories), y)
        pred = model.predict(X_ho)
        rare = {"labels": [minority], "average": "macro", "zero_division": 0}  # the rarest class alone
        rec, f1 = float(recall_score(y_ho, pred, **rare)), float(f1_score(y_ho, pred, **rare))
        if len(classes) == 2:
            pos = list(model.classes_).index(minority) if minority in model.classes_ else None
            proba = model.predict_proba(X_ho)[:, pos] if pos is not None else np.zeros(len(X_ho))
            return float(roc_auc_score((y_ho == minority).astype(int), proba)), rec, f1
        return float(f1_score(y_ho, pred, average="macro", zero_division=0)), rec, f1

    (trtr, rec_r, f1_r), (tstr, rec_s, f1_s) = score_clf(tr), score_clf(syn)
    return UtilityFigures(
        "classification",
        "roc_auc" if len(classes) == 2 else "macro_f1",
        trtr,
        tstr,
        trtr - tstr,
        minority,
        rec_r,
        rec_s,
        f1_r,
        f1_s,
    )


def rank_correlation_error(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """How far the synthetic rows' Spearman correlations are from the real ones over every pair of
    `columns` (numbers, dates or numeric codes): `mae` (None with no pair to compare), `pairs`
    compared and the `worst` pair (`columns`, `real`, `synthetic`). A pair constant in the real rows
    has no correlation to keep and is skipped; one constant in the synthetic rows counts as 0."""
    import numpy as np
    import pandas as pd

    def numeric(df: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in columns:
            s = df[c]
            if pd.api.types.is_datetime64_any_dtype(s):
                s = pd.Series(s.to_numpy("datetime64[ns]").astype("int64"), index=s.index).where(s.notna())
            out[c] = pd.to_numeric(s, errors="coerce").astype(float)
        return pd.DataFrame(out)

    r, s = numeric(real).corr(method="spearman"), numeric(synthetic).corr(method="spearman")
    errors = []
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            rr = r.loc[a, b]
            if np.isnan(rr):
                continue
            sr = 0.0 if np.isnan(s.loc[a, b]) else float(s.loc[a, b])
            errors.append((abs(float(rr) - sr), [a, b], float(rr), sr))
    if not errors:
        return {"mae": None, "pairs": 0, "worst": None}
    worst = max(errors, key=lambda e: e[0])
    return {
        "mae": float(np.mean([e[0] for e in errors])),
        "pairs": len(errors),
        "worst": {"columns": worst[1], "real": round(worst[2], 4), "synthetic": round(worst[3], 4)},
    }
