"""The pieces of the model that replace slower library calls give the library's results."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OrdinalEncoder

from ml.propensity.model import MAX_CATEGORIES, FrameEncoder, _auc_rows


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    many = np.array([f"v{i:03d}" for i in range(100)], dtype=object)  # > MAX_CATEGORIES
    few = np.array(["Champions", "Loyal", "At risk"], dtype=object)
    return pd.DataFrame(
        {
            "favourite_category": pd.Series(many[rng.zipf(1.4, n) % 100]).where(
                rng.random(n) > 0.1
            ),
            "rfm_segment": few[rng.integers(0, 3, n)],
            "orders_30d": rng.poisson(1.0, n).astype(float),
            "recency_days": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 90, n)),
        }
    )


def test_frame_encoder_gives_what_the_column_transformer_gives() -> None:
    categorical, numeric = ["favourite_category", "rfm_segment"], ["orders_30d", "recency_days"]
    train, tonight = _frame(5000, 1), _frame(2000, 2)
    tonight.loc[:4, "favourite_category"] = "never seen"
    reference = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    max_categories=MAX_CATEGORIES,
                    dtype=np.float64,
                ),
                categorical,
            ),
            ("numeric", "passthrough", numeric),
        ],
        verbose_feature_names_out=False,
    ).fit(train)
    encoder = FrameEncoder(categorical=categorical, numeric=numeric).fit(train)
    got = encoder.transform(tonight)
    assert np.array_equal(got, reference.transform(tonight), equal_nan=True)
    assert np.isnan(got[:5, 0]).all()  # unseen category: missing
    assert np.nanmax(got[:, 0]) == MAX_CATEGORIES - 1  # the rare ones share the last code
    assert list(encoder.get_feature_names_out()) == categorical + numeric
    again = pickle.loads(pickle.dumps(encoder))
    assert np.array_equal(again.transform(tonight), got, equal_nan=True)


def test_batched_auc_equals_roc_auc_score() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    scores = np.round(rng.random((3, 400)) + y * 0.3, 1)  # ties included
    expected = [roc_auc_score(y, row) for row in scores]
    np.testing.assert_allclose(_auc_rows(y, scores), expected, rtol=1e-12)


def _fitted(seed: int = 0):
    from ml.propensity.model import make_pipeline, prepare

    categorical, numeric = ["favourite_category", "rfm_segment"], ["orders_30d", "recency_days"]
    frame = _frame(4000, seed)
    frame["noise"] = np.random.default_rng(seed).random(len(frame))  # never worth a split
    numeric = [*numeric, "noise"]
    rng = np.random.default_rng(seed + 1)
    logit = 0.8 * frame["orders_30d"] - 0.03 * frame["recency_days"].fillna(120)
    logit += np.where(frame["rfm_segment"] == "Champions", 1.0, 0.0)
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"max_leaf_nodes": 7, "min_samples_leaf": 1500, "learning_rate": 0.1}
    x = prepare(frame, numeric, categorical)
    return make_pipeline(numeric, categorical, params, 0).fit(x, y), x, y, numeric, categorical


def test_booster_predicts_what_the_library_predicts() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    pipe, _, _, numeric, categorical = _fitted()
    tonight = _frame(3000, 5)
    tonight["noise"] = 0.5
    tonight.loc[:9, "favourite_category"] = "never seen"  # unknown: missing
    tonight.loc[10:19, "rfm_segment"] = None  # missing
    matrix = pipe.named_steps["features"].transform(tonight[[*categorical, *numeric]])
    classifier = pipe.named_steps["classifier"]
    library = HistGradientBoostingClassifier._preprocess_X(classifier, matrix, reset=False)
    assert np.array_equal(classifier._preprocess_X(matrix, reset=False), library, equal_nan=True)
    expected = HistGradientBoostingClassifier.decision_function(classifier, pd.DataFrame(matrix))
    np.testing.assert_array_equal(classifier.decision_function(matrix), expected)


def test_permutation_importance_skips_only_columns_no_tree_uses(monkeypatch) -> None:
    from ml.propensity import model

    pipe, x, y, numeric, categorical = _fitted()
    used = model.split_features(pipe.named_steps["classifier"], len(categorical) + len(numeric))
    assert 0 < len(used) < len(categorical) + len(numeric)  # "noise" is never split on
    fast = model.permutation_importance_frame(pipe, x, y, 3, max_rows=1000, n_repeats=2)
    monkeypatch.setattr(model, "split_features", lambda classifier, n: np.arange(n))
    every = model.permutation_importance_frame(pipe, x, y, 3, max_rows=1000, n_repeats=2)
    pd.testing.assert_frame_equal(fast, every)
    unused = set(fast["feature"]) - {[*categorical, *numeric][j] for j in used}
    assert (fast.loc[fast["feature"].isin(unused), "importance_mean"] == 0).all()


def test_booster_maps_codes_it_did_not_see_as_the_library_does() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ml.propensity.model import CodedGradientBoosting

    rng = np.random.default_rng(4)
    n = 3000
    codes = rng.choice([0.0, 2.0, 5.0, np.nan], n)  # gaps: 1, 3 and 4 never seen
    x = np.column_stack([codes, rng.normal(size=n)])
    y = ((np.nan_to_num(codes, nan=1.0) + x[:, 1] + rng.normal(size=n)) > 2).astype(int)
    params = {"categorical_features": [True, False], "max_iter": 20, "random_state": 0}
    classifier = CodedGradientBoosting(**params).fit(x, y)
    tonight = np.column_stack([rng.choice([0.0, 1.0, 2.0, 3.0, 5.0, 7.0, np.nan], n), x[:, 1]])
    library = HistGradientBoostingClassifier._preprocess_X(classifier, tonight, reset=False)
    assert np.array_equal(classifier._preprocess_X(tonight, reset=False), library, equal_nan=True)
    expected = HistGradientBoostingClassifier.decision_function(classifier, pd.DataFrame(tonight))
    np.testing.assert_array_equal(classifier.decision_function(tonight), expected)
