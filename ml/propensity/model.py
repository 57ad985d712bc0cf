"""Fit one propensity model: a small time-aware search, then calibration on a later window.

Pure functions over DataFrames (no warehouse access):

1. ``search``: each candidate of :data:`PARAM_GRID` is fitted on the training window(s) and
   scored (ROC-AUC) on the validation window, which lies strictly later in time. The best
   candidate is kept as fitted.
2. ``calibrate``: isotonic and sigmoid calibration are compared by 2-fold cross-validated
   Brier score on the validation window; the winner is fitted on the whole validation window
   around the frozen pipeline (``CalibratedClassifierCV(FrozenEstimator(pipeline))``).

The result is a ``CalibratedClassifierCV`` whose estimator is a ``Pipeline``
(:class:`FrameEncoder` -> ``HistGradientBoostingClassifier``); it takes the raw feature
frame, so scoring needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier

# Learning rate 0.1 throughout: at 200k customers a rate of 0.05 or 0.2 never won by more
# than 0.001 validation AUC, and 0.05 needs twice the trees (fitting and every prediction).
PARAM_GRID: tuple[dict[str, Any], ...] = (
    {"learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 100, "l2_regularization": 1},
    {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 40, "l2_regularization": 0},
    {"learning_rate": 0.1, "max_leaf_nodes": 63, "min_samples_leaf": 200, "l2_regularization": 1},
)
MAX_ITER = 150
# A candidate's min_samples_leaf is capped at this share of the rows its trees grow on: a
# shop of 80 customers (~70 training rows) met leaves of 40-200 rows, so no tree could split
# and every candidate predicted one constant (holdout AUC exactly 0.500). From ~890 training
# rows on the cap is above every candidate's leaf size and changes nothing.
MIN_LEAVES_POSSIBLE = 4
VALIDATION_FRACTION = 0.1  # early stopping's internal split
# Row caps keep the first night inside its time budget (measured in docs/propensity.md: no
# loss of ground-truth AUC at 200k customers); samples are stratified by label and drawn
# with the fixed random_state.
MAX_SEARCH_ROWS = 20_000
MAX_TRAIN_ROWS = 80_000
MAX_CALIBRATION_ROWS = 100_000
MAX_CATEGORIES = 64
# Early stopping: rounds without improvement of the internal validation loss.
N_ITER_NO_CHANGE = 10
# Permutation importance: holdout rows (stratified sample) and shuffles per column.
IMPORTANCE_ROWS = 2_000
IMPORTANCE_REPEATS = 3


@dataclass
class FittedModel:
    estimator: Any
    params: dict[str, Any]
    calibration: str
    search: list[dict[str, Any]] = field(default_factory=list)
    calibration_brier: dict[str, float] = field(default_factory=dict)
    training_rows: int = 0
    calibration_rows: int = 0


class FrameEncoder(TransformerMixin, BaseEstimator):
    """Categories to ordinal codes and numbers passed through, as one float64 matrix.

    What ``ColumnTransformer([OrdinalEncoder(max_categories=...), "passthrough"])`` gives
    (categorical columns first; missing and unseen categories NaN; beyond
    ``max_categories`` the rarer categories share the last code), several times faster
    on 200k rows: codes come from ``pandas.Categorical`` and go straight into one array.
    """

    def __init__(self, categorical=(), numeric=(), max_categories=MAX_CATEGORIES):
        self.categorical = categorical
        self.numeric = numeric
        self.max_categories = max_categories

    def fit(self, X, y=None):
        self.categories_, self.codes_ = [], []
        for column in self.categorical:
            counts = X[column].dropna().astype(str).value_counts()
            seen = np.sort(counts.index.to_numpy(dtype=object))
            codes = np.arange(len(seen), dtype=np.float64)
            if len(seen) > self.max_categories:
                # The most frequent keep their own code, the rest share one; among equal
                # counts the later values are kept (a stable sort, as OrdinalEncoder does).
                counted = counts.reindex(seen).to_numpy()
                order = np.argsort(counted, kind="mergesort")
                kept = np.sort(seen[order[-(self.max_categories - 1) :]])
                pos = np.searchsorted(kept, seen)
                hit = (pos < len(kept)) & (kept[np.minimum(pos, len(kept) - 1)] == seen)
                codes = np.where(hit, pos, self.max_categories - 1).astype(np.float64)
            self.categories_.append(seen)
            self.codes_.append(codes)
        self.n_features_in_ = len(self.categorical) + len(self.numeric)
        return self

    def transform(self, X):
        categorical, numeric = list(self.categorical), list(self.numeric)
        out = np.empty((len(X), len(categorical) + len(numeric)), dtype=np.float64)
        for j, column in enumerate(categorical):
            # Values are strings or missing (see prepare); unseen ones get code -1 here.
            pos = pd.Index(self.categories_[j]).get_indexer(X[column])
            out[:, j] = np.where(pos >= 0, self.codes_[j][np.maximum(pos, 0)], np.nan)
        if numeric:
            out[:, len(categorical) :] = X[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*self.categorical, *self.numeric], dtype=object)


class CodedGradientBoosting(HistGradientBoostingClassifier):
    """``HistGradientBoostingClassifier`` fed by :class:`FrameEncoder` (categorical codes first).

    Fitting is the library's. At prediction the library passes its input through an internal
    ``ColumnTransformer`` (an ``OrdinalEncoder`` on the categorical columns, a validation of
    the numeric ones, then a stack: two fresh copies of the matrix), which cost about half as
    much again as the trees on the 10M bench's 170k-row holdout. Here the matrix is used as
    it is when every categorical code is already the booster's own index (the booster was
    fitted on the same rows as the encoder, so this is the usual case), else the codes are
    mapped by one ``searchsorted`` per categorical column on one copy: the same matrix,
    hence the same predictions (tested against the parent class). Any other input (a frame,
    another column layout) takes the library's path.
    """

    def _preprocess_X(self, X, *, reset):
        pre = getattr(self, "_preprocessor", None)
        if reset or pre is None or not isinstance(X, np.ndarray) or X.ndim != 2:
            return super()._preprocess_X(X, reset=reset)
        mask = np.asarray(self.is_categorical_, dtype=bool)
        n_cat = int(mask.sum())
        if X.shape[1] != self.n_features_in_ or not mask[:n_cat].all():
            return super()._preprocess_X(X, reset=reset)
        known_codes = []
        for seen in pre.named_transformers_["encoder"].categories_:
            known = np.asarray(seen, dtype=np.float64)
            known_codes.append(known[~np.isnan(known)])  # sorted; missing last, if any
        X = np.asarray(X, dtype=np.float64)
        if all(_maps_to_itself(X[:, j], known) for j, known in enumerate(known_codes)):
            # Every code the fit saw is its own index and no other code occurs: the input is
            # already the booster's matrix (the usual case), so it is read without a copy.
            return np.ascontiguousarray(X)
        out = np.array(X, order="C")
        for j, known in enumerate(known_codes):
            column = out[:, j]
            if len(known) == 0:
                column[:] = np.nan
                continue
            pos = np.minimum(np.searchsorted(known, column), len(known) - 1)
            # Missing and unseen codes become NaN, as the encoder's missing and unknown values.
            column[:] = np.where(known[pos] == column, pos, np.nan)
        return out


def _maps_to_itself(codes: np.ndarray, known: np.ndarray) -> bool:
    """True when the booster's encoder maps every value of ``codes`` to itself."""
    if not np.array_equal(known, np.arange(len(known), dtype=np.float64)):
        return False
    present = codes[~np.isnan(codes)]
    # known is 0..m-1, so a value is known when it is a whole number in [0, m).
    return bool(np.all((present >= 0) & (present < len(known)) & (present == np.floor(present))))


def make_pipeline(
    numeric: list[str], categorical: list[str], params: dict[str, Any], random_state: int
) -> Any:
    from sklearn.pipeline import Pipeline

    pre = FrameEncoder(categorical=list(categorical), numeric=list(numeric))
    mask = [True] * len(categorical) + [False] * len(numeric)
    clf = CodedGradientBoosting(
        categorical_features=mask if categorical else None,
        max_iter=MAX_ITER,
        early_stopping=True,
        validation_fraction=VALIDATION_FRACTION,
        n_iter_no_change=N_ITER_NO_CHANGE,
        random_state=random_state,
        **params,
    )
    return Pipeline([("features", pre), ("classifier", clf)])


def prepare(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns with stable dtypes (float64 numbers, object categories)."""
    n = len(frame)
    data: dict[str, np.ndarray] = {}
    for column in categorical:
        if column not in frame:
            data[column] = np.full(n, np.nan, dtype=object)
            continue
        values = frame[column]
        data[column] = values.astype(object).where(values.notna(), np.nan).to_numpy()
    for column in numeric:
        if column not in frame:
            data[column] = np.full(n, np.nan)
            continue
        values = frame[column]
        if not pd.api.types.is_float_dtype(values.dtype):
            values = pd.to_numeric(values, errors="coerce")
        data[column] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    # Built in one go: one block per dtype, so the encoder reads the numbers in one copy.
    return pd.DataFrame(data, index=frame.index)


def scaled_to_rows(params: dict[str, Any], rows: int) -> dict[str, Any]:
    """``params`` with ``min_samples_leaf`` at most 1/MIN_LEAVES_POSSIBLE of the ``rows``
    the trees grow on (those left after early stopping's split), so a small training window
    can still be split."""
    grown = rows - int(np.ceil(rows * VALIDATION_FRACTION))
    cap = max(1, grown // MIN_LEAVES_POSSIBLE)
    if params.get("min_samples_leaf", 0) <= cap:
        return params
    return {**params, "min_samples_leaf": cap}


def stratified_sample(y: np.ndarray, cap: int, random_state: int) -> np.ndarray:
    """Indices of at most ``cap`` rows keeping the label shares (all rows when under cap)."""
    n = len(y)
    if n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    picked = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        take = max(1, round(cap * len(idx) / n))
        picked.append(rng.choice(idx, size=min(take, len(idx)), replace=False))
    return np.sort(np.concatenate(picked))


def search(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    random_state: int,
    threads: int | None = None,
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Fit each candidate on the earlier window, keep the best by validation ROC-AUC.

    ``threads``: OpenMP threads of the fits (None: as the caller's limits are); the
    predictions between them run with the caller's limits."""
    from sklearn.base import clone
    from sklearn.metrics import log_loss, roc_auc_score
    from threadpoolctl import threadpool_limits

    def fit(pipe: Any, rows: np.ndarray) -> Any:
        with threadpool_limits(limits=threads):
            return pipe.fit(x_train.iloc[rows], y_train[rows])

    s_train = stratified_sample(y_train, MAX_SEARCH_ROWS, random_state)
    s_val = stratified_sample(y_val, MAX_SEARCH_ROWS, random_state)
    results = []
    best = None
    for i, grid_params in enumerate(PARAM_GRID):
        params = scaled_to_rows(grid_params, len(s_train))
        pipe = fit(make_pipeline(numeric, categorical, params, random_state), s_train)
        p = pipe.predict_proba(x_val.iloc[s_val])[:, 1]
        auc = float(roc_auc_score(y_val[s_val], p))
        loss = float(log_loss(y_val[s_val], p, labels=[0, 1]))
        n_iter = int(pipe.named_steps["classifier"].n_iter_)
        results.append(
            {"candidate": i, **params, "val_roc_auc": auc, "val_log_loss": loss, "n_iter": n_iter}
        )
        if best is None or (auc, -loss) > (best[1], -best[2]):
            best = (pipe, auc, loss, params)
    assert best is not None
    pipe, _, _, params = best
    if len(y_train) > len(s_train):
        # The search saw a sample; the chosen candidate is refitted on up to MAX_TRAIN_ROWS.
        pipe = fit(clone(pipe), stratified_sample(y_train, MAX_TRAIN_ROWS, random_state))
    return pipe, dict(params), results


def _two_folds(n: int, random_state: int) -> np.ndarray:
    return np.random.default_rng(random_state).permutation(n) % 2


def choose_calibration(
    raw_val: np.ndarray, y_val: np.ndarray, random_state: int
) -> tuple[str, dict[str, float]]:
    """Isotonic vs sigmoid by 2-fold cross-validated Brier score on the validation window."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    folds = _two_folds(len(y_val), random_state)
    scores = {"isotonic": [], "sigmoid": []}
    for k in (0, 1):
        fit, held = folds != k, folds == k
        if len(np.unique(y_val[fit])) < 2:
            continue
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(raw_val[fit], y_val[fit])
        scores["isotonic"].append(np.mean((iso.predict(raw_val[held]) - y_val[held]) ** 2))
        sig = LogisticRegression(C=1e6)
        sig.fit(raw_val[fit, None], y_val[fit])
        p = sig.predict_proba(raw_val[held, None])[:, 1]
        scores["sigmoid"].append(np.mean((p - y_val[held]) ** 2))
    brier = {k: float(np.mean(v)) if v else float("nan") for k, v in scores.items()}
    # Isotonic needs enough positives to be stable; prefer sigmoid on ties or small windows.
    if np.isnan(brier["isotonic"]) or y_val.sum() < 200:
        return "sigmoid", brier
    return ("isotonic" if brier["isotonic"] < brier["sigmoid"] else "sigmoid"), brier


def fit_model(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    random_state: int,
    threads: int | None = None,
) -> FittedModel:
    """``threads``: OpenMP threads of the tree fits (see :func:`search`)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    pipe, params, results = search(
        x_train, y_train, x_val, y_val, numeric, categorical, random_state, threads
    )
    s_cal = stratified_sample(y_val, MAX_CALIBRATION_ROWS, random_state)
    x_cal, y_cal = x_val.iloc[s_cal], y_val[s_cal]
    raw = pipe.decision_function(x_cal)
    method, brier = choose_calibration(raw, y_cal, random_state)
    calibrated = CalibratedClassifierCV(FrozenEstimator(pipe), method=method)
    calibrated.fit(x_cal, y_cal)
    return FittedModel(
        estimator=calibrated,
        params={
            **params,
            "max_iter": MAX_ITER,
            "n_iter": int(pipe.named_steps["classifier"].n_iter_),
        },
        calibration=method,
        search=results,
        calibration_brier=brier,
        training_rows=int(min(len(y_train), MAX_TRAIN_ROWS)),
        calibration_rows=len(y_cal),
    )


def predict(estimator: Any, x: pd.DataFrame) -> np.ndarray:
    return estimator.predict_proba(x)[:, 1]


def base_pipeline(estimator: Any) -> Any:
    """The fitted ``Pipeline`` inside a calibrated model (or the pipeline itself)."""
    inner = getattr(estimator, "calibrated_classifiers_", None)
    if inner:
        frozen = inner[0].estimator
        return getattr(frozen, "estimator", frozen)
    return estimator


def _auc_rows(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of ``scores`` against the labels ``y`` (Mann-Whitney, ties halved;
    equal to ``sklearn.metrics.roc_auc_score``)."""
    from scipy.stats import rankdata

    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = rankdata(scores, axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def split_features(classifier: Any, n_cols: int) -> np.ndarray:
    """Input columns that some tree of a fitted ``HistGradientBoostingClassifier`` splits on.

    Read from the fitted trees (node ``feature_idx``; the booster numbers its columns with
    the categorical ones first, which is :class:`FrameEncoder`'s order). Every column when
    the trees cannot be read or the layout differs.
    """
    predictors = getattr(classifier, "_predictors", None)
    mask = getattr(classifier, "is_categorical_", None)
    mask = np.zeros(n_cols, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    n_cat = int(mask.sum())
    if predictors is None or len(mask) != n_cols or not mask[:n_cat].all():
        return np.arange(n_cols)
    used = np.zeros(n_cols, dtype=bool)
    for trees in predictors:  # iterations x trees, not data rows
        for tree in trees:
            nodes = tree.nodes
            used[nodes["feature_idx"][nodes["is_leaf"] == 0]] = True
    return np.flatnonzero(used)


def splits_nothing(estimator: Any) -> bool:
    """True when no tree of the fitted model splits: it gives every customer one score."""
    pipe = base_pipeline(estimator)
    n_cols = len(pipe.named_steps["features"].get_feature_names_out())
    return len(split_features(pipe.named_steps["classifier"], n_cols)) == 0


def permutation_importance_frame(
    estimator: Any,
    x: pd.DataFrame,
    y: np.ndarray,
    random_state: int,
    max_rows: int | None = None,
    n_repeats: int | None = None,
) -> pd.DataFrame:
    """Drop in holdout ROC-AUC when each input column is shuffled (mean, std over repeats).

    Calibration is monotonic, so ROC-AUC is computed on the gradient-boosting step with the
    preprocessed matrix (prepared once): the same ranking, several times faster. Each model
    input maps to exactly one preprocessed column (ordinal encoding is one-to-one). Every
    shuffled copy (columns x repeats) is stacked and predicted in one call: the same measure
    as ``sklearn.inspection.permutation_importance``, without its per-call overhead.
    """
    max_rows = IMPORTANCE_ROWS if max_rows is None else max_rows
    n_repeats = IMPORTANCE_REPEATS if n_repeats is None else n_repeats
    idx = stratified_sample(y, max_rows, random_state)
    y_s = y[idx]
    if len(np.unique(y_s)) < 2:
        return pd.DataFrame(columns=["feature", "importance_mean", "importance_std", "rank"])
    pipe = base_pipeline(estimator)
    features = pipe.named_steps["features"]
    classifier = pipe.named_steps["classifier"]
    matrix = np.asarray(features.transform(x.iloc[idx]), dtype=np.float64)
    n, n_cols = matrix.shape
    # A column no tree splits on leaves every prediction unchanged: its drop is exactly 0,
    # so only the columns in use are shuffled and predicted (25 of 40 on the 10M bench).
    # The shuffles are drawn for every column, in the same order, whether used or not.
    used = split_features(classifier, n_cols)
    rng = np.random.default_rng(random_state)
    shuffles = [[rng.permutation(n) for _ in range(n_repeats)] for _ in range(n_cols)]
    stacked = np.tile(matrix, (len(used) * n_repeats, 1))
    for b, j in enumerate(used):  # columns of the model, not data rows
        for r in range(n_repeats):
            block = (b * n_repeats + r) * n
            stacked[block : block + n, j] = matrix[shuffles[j][r], j]
    reference = _auc_rows(y_s, classifier.decision_function(matrix)[None, :])[0]
    drops = np.zeros((n_cols, n_repeats))
    if len(used):
        raw = classifier.decision_function(stacked).reshape(len(used) * n_repeats, n)
        drops[used] = (reference - _auc_rows(y_s, raw)).reshape(len(used), n_repeats)

    frame = pd.DataFrame(
        {
            "feature": list(features.get_feature_names_out()),
            "importance_mean": drops.mean(axis=1).astype(float),
            "importance_std": drops.std(axis=1).astype(float),
        }
    ).sort_values(["importance_mean", "feature"], ascending=[False, True])
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)
