"""The segmentation features and the scikit-learn Pipeline that clusters them.

Pure functions only: nothing here touches the warehouse. The Pipeline is

    fill (FeatureFiller) -> log1p of skewed columns (ColumnTransformer)
        -> StandardScaler -> KMeans

so every transform is fitted inside the Pipeline and travels with the saved model. With a
crowd (docs/segmentation.md, "A crowd") the last step is a :class:`CrowdKMeans`, which
holds the crowd's rule and the others' own scaler.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.segmentation.columns import (
    FEATURES,
    FILL_LONGEST_AGO,
    LOG_FEATURES,
    RATIOS,
    source_columns,
)


class FeatureFiller(TransformerMixin, BaseEstimator):
    """Select (or derive) the feature columns and fill their nulls by documented rules.

    - ratios in :data:`RATIOS` are computed from their columns, 0 when the denominator is 0;
    - ``recency_days`` / ``days_since_last_visit`` null (never ordered / never visited):
      one more than the largest value seen at fit time, i.e. "longer ago than anyone";
    - every other null (no order value, no cart, no session): 0;
    - log-transformed columns are clipped at 0 so that log1p is defined.
    """

    def __init__(
        self,
        features: Sequence[str] = FEATURES,
        log_features: Sequence[str] = LOG_FEATURES,
        fill_longest_ago: Sequence[str] = FILL_LONGEST_AGO,
    ) -> None:
        self.features = features
        self.log_features = log_features
        self.fill_longest_ago = fill_longest_ago

    def fit(self, X: pd.DataFrame, y: object = None) -> FeatureFiller:
        missing = [c for c in source_columns(self.features) if c not in X.columns]
        if missing:
            raise ValueError(f"feature columns missing: {', '.join(missing)}")
        fills = {}
        for col in self.features:
            if col in self.fill_longest_ago:
                seen = _numbers(X[col])
                finite = seen[np.isfinite(seen)]
                fills[col] = float(finite.max()) + 1.0 if finite.size else 1.0
            else:
                fills[col] = 0.0
        self.fill_values_ = fills
        self.n_features_in_ = len(self.features)
        self.feature_names_in_ = np.asarray(self.features, dtype=object)
        return self

    def unfilled(self, X: pd.DataFrame) -> pd.DataFrame:
        """The feature values before filling: NaN where the customer has no such event."""
        out = {}
        for col in self.features:
            if col in RATIOS:
                num, den = (_numbers(X[c]) for c in RATIOS[col])
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[col] = np.where(den > 0, num / den, np.nan)
            else:
                out[col] = _numbers(X[col])
        return pd.DataFrame(out, index=X.index)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = self.unfilled(X)
        out = {}
        for col in self.features:
            values = raw[col].to_numpy()
            values = np.where(np.isfinite(values), values, self.fill_values_[col])
            if col in self.log_features:
                values = np.clip(values, 0.0, None)
            out[col] = values
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.features, dtype=object)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def build_preprocessor(
    features: Sequence[str] = FEATURES, log_features: Sequence[str] = LOG_FEATURES
) -> Pipeline:
    """fill -> log1p(skewed) -> StandardScaler; output columns in ``features`` order."""
    features = list(features)
    logged = [c for c in features if c in log_features]
    plain = [c for c in features if c not in log_features]
    log_step = ColumnTransformer(
        [
            ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one"), logged),
            ("plain", "passthrough", plain),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline(
        [
            ("fill", FeatureFiller(features, tuple(logged))),
            ("log", log_step),
            ("scale", StandardScaler()),
        ]
    )


def make_kmeans(
    k: int, random_state: int, n_init: int, init: np.ndarray | str = "k-means++"
) -> KMeans:
    return KMeans(
        n_clusters=k,
        init=init,
        n_init=1 if isinstance(init, np.ndarray) else n_init,
        random_state=random_state,
        max_iter=300,
    )


def nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest of ``centers`` and its Euclidean distance to it."""
    X = np.asarray(X, dtype=float)
    centers = np.asarray(centers, dtype=float)
    d2 = (X**2).sum(axis=1)[:, None] + (centers**2).sum(axis=1)[None, :] - 2.0 * X @ centers.T
    labels = d2.argmin(axis=1)
    return labels, np.sqrt(np.clip(d2[np.arange(len(X)), labels], 0.0, None))


class CrowdKMeans(ClusterMixin, BaseEstimator):
    """K-Means for a shop dominated by a crowd: the crowd is one segment, and the other
    customers are segmented in their own standardised space.

    Fitted on the scaled features (everyone's ``StandardScaler``), starting from ``init``
    (k centroids in that space, the crowd's at row ``crowd``). It alternates, until the
    crowd no longer changes (at most ``rounds`` times):

    1. the crowd: the customers whose nearest of the k centroids, in everyone's space, is
       the crowd's (the boundary a K-Means of everyone would draw);
    2. the others: a ``StandardScaler`` refitted on them alone (``others_scaler_``) and a
       K-Means of k - 1 segments in that space (``others_kmeans_``), from the current
       centroids; the crowd's centroid is its customers' mean.

    A crowd tens of times larger than everyone else sets everyone's standard deviations,
    and the others were segmented in a space whose weights the crowd chose (1,000 customers
    beside 30,000 one-time buyers: k = 3, adjusted Rand index 0.56 against their types;
    docs/segmentation.md, "A crowd"). ``cluster_centers_`` are every segment's centroid in
    everyone's space (for matching, names and the stored centroids); ``predict`` applies
    the same two steps to new rows, so the saved model assigns as the night did.
    """

    def __init__(
        self, init: np.ndarray, crowd: int = 0, random_state: int = 42, rounds: int = 10
    ) -> None:
        self.init = init
        self.crowd = crowd
        self.random_state = random_state
        self.rounds = rounds

    def fit(self, X: np.ndarray, y: object = None) -> CrowdKMeans:
        X = np.asarray(X, dtype=float)
        centers = np.asarray(self.init, dtype=float).copy()
        k = len(centers)
        others_at = [c for c in range(k) if c != self.crowd]
        is_crowd = None
        for _ in range(max(1, self.rounds)):
            was = is_crowd
            is_crowd = nearest(X, centers)[0] == self.crowd
            if not is_crowd.any() or int((~is_crowd).sum()) < k - 1:
                raise ValueError(f"no crowd of one segment and {k - 1} others among {len(X)} rows")
            if was is not None and np.array_equal(was, is_crowd):
                break
            scaler = StandardScaler().fit(X[~is_crowd])
            kmeans = KMeans(
                n_clusters=k - 1,
                init=scaler.transform(centers[others_at]),
                n_init=1,
                random_state=self.random_state,
                max_iter=300,
            ).fit(scaler.transform(X[~is_crowd]))
            centers[self.crowd] = X[is_crowd].mean(axis=0)
            centers[others_at] = scaler.inverse_transform(kmeans.cluster_centers_)
        self.others_scaler_, self.others_kmeans_ = scaler, kmeans
        self.cluster_centers_ = centers
        self.n_clusters = k
        self.n_features_in_ = X.shape[1]
        self.labels_ = self.assign(X)[0]
        # In everyone's space, as a K-Means's: comparable with the other k's inertia.
        self.inertia_ = float(((X - centers[self.labels_]) ** 2).sum())
        self.crowd_share_ = float(is_crowd.mean())
        return self

    def assign(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every row's segment (index into ``cluster_centers_``) and its distance to that
        segment's centroid in the space it was segmented in: everyone's for the crowd, the
        others' own for the others."""
        return _crowd_assign(
            X,
            self.cluster_centers_,
            self.crowd,
            self.others_scaler_,
            self.others_kmeans_.cluster_centers_,
        )

    def own_centers(self) -> np.ndarray:
        """Every segment's centroid in the space it was segmented in, as :meth:`assign`
        measures distances: the crowd's in everyone's scaled space (z-scores among
        everyone), the others' in their own (z-scores among the others alone). What names
        and describes the segments (docs/segmentation.md, "Personas")."""
        centers = self.cluster_centers_.copy()
        others_at = [c for c in range(self.n_clusters) if c != self.crowd]
        centers[others_at] = self.others_scaler_.transform(centers[others_at])
        return centers

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.assign(X)[0]


def crowd_labels(X: np.ndarray, centers: np.ndarray, crowd: int) -> np.ndarray:
    """The segments of ``X`` under given centroids (everyone's space) and a crowd (its row
    of ``centers``), as :class:`CrowdKMeans` assigns them, the others' scaler fitted on the
    others among ``X``: for a night's figures without a fit."""
    X = np.asarray(X, dtype=float)
    centers = np.asarray(centers, dtype=float)
    labels = nearest(X, centers)[0]
    rest = labels != crowd
    if rest.sum() <= 1:
        return labels
    scaler = StandardScaler().fit(X[rest])
    others = scaler.transform(np.delete(centers, crowd, axis=0))
    return _crowd_assign(X, centers, crowd, scaler, others)[0]


def _crowd_assign(
    X: np.ndarray,
    centers: np.ndarray,
    crowd: int,
    scaler: StandardScaler,
    others: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Every row's segment (index into ``centers``, everyone's scaled space) and distance:
    the crowd's rows are those nearest the crowd's centroid (row ``crowd``), measured there;
    the other rows go to the nearest of ``others`` (the other segments' centroids, in order,
    in the space of ``scaler``, the others' own), measured in that space."""
    X = np.asarray(X, dtype=float)
    labels, distance = nearest(X, centers)
    rest = labels != crowd
    if rest.any():
        others_at = np.asarray([c for c in range(len(centers)) if c != crowd])
        own, d = nearest(scaler.transform(X[rest]), others)
        labels[rest], distance[rest] = others_at[own], d
    return labels, distance


def assign(model: KMeans | CrowdKMeans, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row's cluster and its distance to the cluster's centroid (for a K-Means, the
    nearest centroid)."""
    if isinstance(model, CrowdKMeans):
        return model.assign(X)
    distances = model.transform(X)
    labels = distances.argmin(axis=1)
    return labels, distances[np.arange(len(labels)), labels]


def assemble(preprocessor: Pipeline, kmeans: KMeans | CrowdKMeans) -> Pipeline:
    """The saved model: the fitted preprocessing steps followed by the fitted KMeans."""
    return Pipeline([*preprocessor.steps, ("kmeans", kmeans)])


def transformed_names(preprocessor: Pipeline) -> list[str]:
    """Column names after the log step (the space that is scaled)."""
    return [str(c) for c in preprocessor[:-1].get_feature_names_out()]


def unscale(preprocessor: Pipeline, scaled: np.ndarray) -> np.ndarray:
    """Scaled-space points back to the log-feature space (before scaling)."""
    return preprocessor.named_steps["scale"].inverse_transform(scaled)


def rescale(preprocessor: Pipeline, unscaled: np.ndarray) -> np.ndarray:
    """Log-feature-space points into this preprocessor's scaled space."""
    return preprocessor.named_steps["scale"].transform(unscaled)
