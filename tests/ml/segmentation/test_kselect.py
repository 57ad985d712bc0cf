import numpy as np
import pytest

from ml.segmentation.kselect import choose_k, distinct_rows, elbow, sample_index, silhouettes


def _blobs(k: int, per: int = 150, dim: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, size=(k, dim))
    return np.vstack([c + rng.normal(0, 0.5, size=(per, dim)) for c in centres])


def _choose(X: np.ndarray, **kwargs: object):
    args = {
        "random_state": 42,
        "n_init": 2,
        "search_sample": 10_000,
        "silhouette_sample": 400,
    }
    args.update(kwargs)
    return choose_k(X, 2, 8, **args)


def test_picks_the_number_of_well_separated_groups() -> None:
    choice = _choose(_blobs(4))
    assert choice.k == 4
    assert choice.scores["k"].tolist() == list(range(2, 9))
    assert choice.scores["is_chosen"].sum() == 1
    assert choice.scores.set_index("k").loc[4, "is_chosen"]
    assert choice.scores["inertia"].is_monotonic_decreasing


def test_silhouette_uses_the_fixed_size_sample() -> None:
    choice = _choose(_blobs(3, per=400), silhouette_sample=300, search_sample=900)
    assert choice.silhouette_rows == 300
    assert choice.search_rows == 900
    again = _choose(_blobs(3, per=400), silhouette_sample=300, search_sample=900)
    assert choice.scores.equals(again.scores)


def test_fixed_k_overrides_the_rule_but_all_candidates_are_scored() -> None:
    choice = _choose(_blobs(4), fixed_k=6)
    assert choice.k == 6
    assert "fixed_k" in choice.reason
    assert len(choice.scores) == 7
    assert choice.scores.set_index("k").loc[6, "is_chosen"]


def test_previous_k_is_kept_when_nearly_as_good() -> None:
    X = _blobs(4)
    best = _choose(X)
    sil = best.scores.set_index("k")["silhouette"]
    # k=5 splits one blob; with a generous tolerance yesterday's k=5 is kept.
    tolerance = float(sil.loc[4] - sil.loc[5]) + 0.01
    sticky = _choose(X, previous_k=5, silhouette_tolerance=tolerance)
    assert sticky.k == 5 and "previous" in sticky.reason
    strict = _choose(X, previous_k=5, silhouette_tolerance=0.0)
    assert strict.k == 4


def test_elbow_finds_the_knee() -> None:
    assert elbow([2, 3, 4, 5, 6], [100, 50, 12, 10, 9]) == 4
    assert elbow([2, 3], [10, 5]) is None


def test_sample_index_is_fixed_and_sorted() -> None:
    a = sample_index(1000, 100, 7)
    assert len(a) == 100 and np.all(np.diff(a) > 0)
    assert np.array_equal(a, sample_index(1000, 100, 7))
    assert len(sample_index(50, 100, 7)) == 50


def test_too_few_customers_make_one_segment() -> None:
    """A shop's first customers: the night goes on with one segment instead of failing."""
    choice = _choose(np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]))
    assert choice.k == 1 and choice.reason.startswith("one segment: 2 customer(s)")
    assert choice.models[1].predict(np.zeros((1, 3))).tolist() == [0]


def test_k_leaves_min_segment_customers_per_segment_on_average() -> None:
    """Eight well-separated groups of 15: with 20 customers a segment on average, at most
    six segments; with fewer than 40 customers, one."""
    X = _blobs(8, per=15)
    assert _choose(X).k == 8
    capped = _choose(X, min_segment_customers=20)
    assert capped.scores["k"].max() == 6 and capped.k <= 6
    small = _choose(X[:39], min_segment_customers=20)
    assert small.k == 1
    assert small.reason == (
        "one segment: 39 customer(s) with fewer than 2 x min_segment_customers = 40"
    )


def test_one_pass_silhouettes_equal_scikit_learns() -> None:
    from sklearn.metrics import silhouette_score

    from ml.segmentation.kselect import silhouettes

    X = _blobs(4, per=60)
    rng = np.random.default_rng(3)
    labelings = {2: rng.integers(0, 2, len(X)), 4: np.repeat(np.arange(4), 60)}
    labelings[5] = np.where(np.arange(len(X)) == 0, 4, labelings[4])  # a singleton cluster
    ours = silhouettes(X, labelings, block=50)
    for k, labels in labelings.items():
        assert ours[k] == pytest.approx(silhouette_score(X, labels), abs=1e-9)


def test_k_never_exceeds_the_distinct_profiles() -> None:
    """Three distinct rows repeated: at most three segments, whatever k_max says."""
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]]), 20, axis=0)
    choice = choose_k(X, 2, 8, random_state=0, n_init=2, search_sample=1000, silhouette_sample=500)
    assert choice.scores["k"].max() == 3 and choice.k == 3
    one = choose_k(
        np.ones((10, 2)), 2, 8, random_state=0, n_init=2, search_sample=1000, silhouette_sample=500
    )
    assert one.k == 1 and "1 distinct profile" in one.reason
    assert distinct_rows(X) == 3 and distinct_rows(np.ones((10, 2))) == 1


def _crowd_and_four_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """3,000 customers alike (a crowd) and four groups of 60, near each other and far from
    the crowd; the group of every row (0 the crowd). The groups differ on every feature, as
    customer types do: the others are standardised by their own spread, and a feature on
    which they differ by noise alone weighs as much there as one that tells them apart."""
    rng = np.random.default_rng(seed)
    crowd = rng.normal(0, 0.3, size=(3000, 4))
    centres = np.array([[12, 0, 0, 0], [15, 0, 3, 0], [12, 3, 0, 3], [15, 3, 3, 3.0]])
    groups = [c + rng.normal(0, 0.6, size=(60, 4)) for c in centres]
    return np.vstack([crowd, *groups]), np.repeat(np.arange(5), [3000, 60, 60, 60, 60])


def test_a_crowd_stays_one_segment_and_the_others_are_segmented_among_themselves() -> None:
    """The silhouette is a mean over customers: with a crowd of 93% it mostly measures how
    tight the crowd is, and the best (0.925) was k=2, the crowd and everyone else; the elbow
    check made it 3, the four groups in two segments, and a previous k=2 was kept. The
    crowd stays one segment and the others are segmented by the same rule among
    themselves: the four groups."""
    from sklearn.metrics import adjusted_rand_score

    X, group = _crowd_and_four_groups()
    choice = _choose(X)
    assert choice.k == 5
    assert choice.reason.startswith("a crowd: the best silhouette, 0.925 at k=2, put 93% ")
    assert "(240 customers: best silhouette " in choice.reason
    labels = choice.models[5].predict(X)
    assert len(set(labels[group == 0])) == 1
    assert adjusted_rand_score(group[group > 0], labels[group > 0]) > 0.95
    scores = choice.scores.set_index("k")
    assert scores["is_chosen"].sum() == 1 and scores.loc[5, "is_chosen"]
    # The row of k=5 is the chosen model's: the crowd whole, the groups apart.
    sil = X[sample_index(len(X), 400, 43)]
    assert scores.loc[5, "silhouette"] == pytest.approx(
        silhouettes(sil, {5: choice.models[5].predict(sil)})[5]
    )
    assert scores.loc[5, "silhouette"] > 0.85
    # Yesterday's k=2 (the crowd and one other segment) is not kept for its silhouette.
    assert _choose(X, previous_k=2).k == 5
    assert _choose(X, previous_k=5).k == 5
