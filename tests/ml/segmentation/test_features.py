import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from ml.segmentation.features import (
    FEATURES,
    LOG_FEATURES,
    CrowdKMeans,
    FeatureFiller,
    build_preprocessor,
    make_kmeans,
    source_columns,
    transformed_names,
)


def _frame(**overrides: list) -> pd.DataFrame:
    base = {c: [1.0, 2.0, 3.0] for c in source_columns()}
    base.update(overrides)
    return pd.DataFrame(base)


def test_filler_fills_never_happened_as_longer_ago_than_anyone() -> None:
    frame = _frame(recency_days=[5.0, None, 40.0], avg_order_value=[10.0, None, 20.0])
    out = FeatureFiller().fit(frame).transform(frame)
    assert out["recency_days"].tolist() == [5.0, 41.0, 40.0]
    assert out["avg_order_value"].tolist() == [10.0, 0.0, 20.0]
    assert list(out.columns) == list(FEATURES)


def test_filler_keeps_fit_time_fill_for_later_data() -> None:
    filler = FeatureFiller().fit(_frame(recency_days=[5.0, None, 40.0]))
    later = filler.transform(_frame(recency_days=[None, 100.0, None]))
    assert later["recency_days"].tolist() == [41.0, 100.0, 41.0]


def test_filler_clips_negative_counts_before_the_log() -> None:
    frame = _frame(order_count=[-3.0, 0.0, 2.0])
    out = FeatureFiller().fit(frame).transform(frame)
    assert out["order_count"].min() == 0.0


def test_ratios_are_derived_and_zero_without_a_denominator() -> None:
    frame = _frame(sessions_30d=[1.0, 0.0, 3.0], sessions_90d=[4.0, 0.0, 3.0])
    out = FeatureFiller().fit(frame).transform(frame)
    assert out["recent_session_share"].tolist() == [0.25, 0.0, 1.0]
    assert "sessions_30d" not in out.columns


def test_filler_names_missing_columns() -> None:
    frame = _frame().drop(columns=["tenure_days"])
    try:
        FeatureFiller().fit(frame)
    except ValueError as exc:
        assert "tenure_days" in str(exc)
    else:
        raise AssertionError("a missing feature column must be refused")


def test_preprocessor_logs_skewed_columns_then_scales() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.exponential(50, size=500) for c in source_columns()})
    pre = build_preprocessor()
    scaled = pre.fit_transform(frame)
    assert transformed_names(pre) == list(LOG_FEATURES) + [
        c for c in FEATURES if c not in LOG_FEATURES
    ]
    assert isinstance(pre.named_steps["scale"], StandardScaler)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-9)
    logged = pre[:-1].transform(frame)
    np.testing.assert_allclose(logged[:, 0], np.log1p(frame[LOG_FEATURES[0]]))


def test_kmeans_is_seeded_and_restarts_explicitly() -> None:
    km = make_kmeans(4, random_state=42, n_init=3)
    assert isinstance(km, KMeans)
    assert (km.n_clusters, km.random_state, km.n_init) == (4, 42, 3)
    warm = make_kmeans(2, random_state=42, n_init=3, init=np.zeros((2, 3)))
    assert warm.n_init == 1


def test_a_crowd_models_own_centers_are_each_segments_z_scores_among_its_own() -> None:
    """What names a segment (``CrowdKMeans.own_centers``): the crowd's centroid among
    everyone, each other segment's among the others alone (their own scaler)."""
    rng = np.random.default_rng(3)
    crowd = rng.normal(0, 0.1, size=(2000, 2))
    groups = [c + rng.normal(0, 0.3, size=(50, 2)) for c in ([4.0, 0.0], [6.0, 2.0])]
    X = StandardScaler().fit_transform(np.vstack([crowd, *groups]))
    init = np.vstack([X[:2000].mean(axis=0), X[2000:2050].mean(axis=0), X[2050:].mean(axis=0)])
    model = CrowdKMeans(init, crowd=0).fit(X)
    own = model.own_centers()
    np.testing.assert_allclose(own[0], model.cluster_centers_[0])
    others = X[model.labels_ != 0]
    expected = [(others[model.labels_[model.labels_ != 0] == c]).mean(axis=0) for c in (1, 2)]
    np.testing.assert_allclose(own[1:], StandardScaler().fit(others).transform(expected))
    # Two groups among the others sit about one of their standard deviations either side.
    assert np.abs(own[1:]).max() < 1.5 and np.abs(own[1:]).min() > 0.5
