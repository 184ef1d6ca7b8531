"""Privacy and utility figures, as pure functions on DataFrames.

Privacy follows mostlyai-qa: with equally many training and holdout rows as references, the
*DCR share* is the share of synthetic rows whose closest record is a training row rather than a
holdout row (ties count half). A generator that learned the distribution, not the rows, scores
about 0.5; one that copies training rows scores near 1. These are screening tests, not proofs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_TOP_CATEGORIES = 30
_MAX_MODEL_CATEGORIES = 250


class RowEncoder:
    """Numeric rows for distances: numbers scaled to [0, 1] by the train range, categories
    one-hot over the train's most frequent values, missing values as their own indicator."""

    def __init__(self, reference: pd.DataFrame) -> None:
        import pandas as pd

        self.columns = list(reference.columns)
        self.numeric: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, list[Any]] = {}
        for col in self.columns:
            s = reference[col]
            if pd.api.types.is_bool_dtype(s) or not (
                pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
            ):
                self.categories[col] = list(s.astype(str).value_counts().index[:_TOP_CATEGORIES])
            else:
                values = self._as_float(s)
                lo, hi = float(values.min()), float(values.max())
                self.numeric[col] = (lo, hi - lo if hi > lo else 1.0)

    @staticmethod
    def _as_float(s: pd.Series) -> pd.Series:
        import pandas as pd

        if pd.api.types.is_datetime64_any_dtype(s):
            return s.astype("int64").where(s.notna()).astype(float)
        return s.astype(float)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode rows of a frame with the same columns as the reference."""
        import numpy as np

        parts = []
        for col, (lo, span) in self.numeric.items():
            values = self._as_float(df[col])
            scaled = ((values - lo) / span).clip(-1, 2)
            parts.append(scaled.fillna(0).to_numpy()[:, None])
            parts.append(values.isna().to_numpy(dtype=float)[:, None])
        for col, cats in self.categories.items():
            s = df[col].astype(str)
            onehot = np.stack([(s == c).to_numpy() for c in cats] + [(~s.isin(cats)).to_numpy()], axis=1)
            parts.append(onehot.astype(float) / np.sqrt(2))
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(df), 0), np.float32)


def _nearest(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1, algorithm="auto", n_jobs=-1).fit(reference)
    return nn.kneighbors(query, return_distance=True)[0][:, 0]


@dataclass(frozen=True)
class PrivacyFigures:
    """Distance-based privacy figures of synthetic rows against train and holdout."""

    exact_copy_share: float
    holdout_exact_copy_share: float
    dcr_share: float
    dcr_synthetic_train_median: float
    dcr_holdout_train_median: float
    rows_compared: int
    dcr_synthetic_train: list[float]
    dcr_holdout_train: list[float]


def privacy(
    synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, sample_rows: int, seed: int
) -> PrivacyFigures:
    """Exact-copy share and mostlyai-qa DCR share of `synthetic` (same columns as train)."""
    import numpy as np
    import pandas as pd

    cols = list(train.columns)
    n_ref = min(len(train), len(holdout), sample_rows)
    tr = train.sample(n=n_ref, random_state=seed) if len(train) > n_ref else train
    ho = holdout.sample(n=n_ref, random_state=seed) if len(holdout) > n_ref else holdout
    syn = synthetic[cols]
    syn = syn.sample(n=min(len(syn), sample_rows), random_state=seed) if len(syn) > sample_rows else syn

    train_hashes = set(pd.util.hash_pandas_object(train[cols], index=False).to_numpy().tolist())

    def copy_share(df: pd.DataFrame) -> float:
        hashes = pd.util.hash_pandas_object(df[cols], index=False).to_numpy()
        return float(np.isin(hashes, list(train_hashes)).mean()) if len(df) else 0.0

    enc = RowEncoder(train[cols])
    e_tr, e_ho, e_syn = enc.transform(tr), enc.transform(ho), enc.transform(syn)
    d_train = _nearest(e_syn, e_tr)
    d_hold = _nearest(e_syn, e_ho)
    share = float(np.mean(d_train < d_hold) + 0.5 * np.mean(np.isclose(d_train, d_hold)))
    # the holdout's own distances to train: the yardstick for "close" synthetic rows
    d_ho_tr = _nearest(e_ho, e_tr)
    return PrivacyFigures(
        exact_copy_share=copy_share(syn),
        holdout_exact_copy_share=copy_share(holdout),
        dcr_share=share,
        dcr_synthetic_train_median=float(np.median(d_train)),
        dcr_holdout_train_median=float(np.median(d_ho_tr)),
        rows_compared=len(syn),
        dcr_synthetic_train=[round(float(x), 5) for x in d_train],
        dcr_holdout_train=[round(float(x), 5) for x in d_ho_tr],
    )


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
