"""The segmentation features and the scikit-learn Pipeline that clusters them.

Pure functions only: nothing here touches the warehouse. The Pipeline is

    fill (FeatureFiller) -> log1p of skewed columns (ColumnTransformer)
        -> StandardScaler -> KMeans

so every transform is fitted inside the Pipeline and travels with the saved model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
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


def assemble(preprocessor: Pipeline, kmeans: KMeans) -> Pipeline:
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
