from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.recommendations import interactions as ix
from tests.ml.recommendations.conftest import make_interactions


def test_weights_rank_purchase_over_cart_over_view_and_decay_with_age() -> None:
    inter = make_interactions(
        [
            (0, 0, 0, 1, 0, 0),  # a view today
            (0, 1, 0, 1, 1, 0),  # view + cart today
            (0, 2, 0, 1, 1, 1),  # view + cart + purchase today
            (0, 3, 30, 1, 1, 1),  # the same, one half-life ago
        ]
    )
    w = ix.interaction_weights(inter, 1.0, 4.0, 8.0, half_life_days=30.0)
    np.testing.assert_allclose(w, [1.0, 5.0, 13.0, 6.5])


def test_matrix_is_sparse_and_sums_days_of_the_same_pair() -> None:
    inter = make_interactions([(0, 1, 0, 1, 0, 0), (0, 1, 3, 1, 0, 0), (2, 0, 0, 0, 0, 1)])
    m = ix.build_matrix(inter.customer, inter.product, np.array([1.0, 2.0, 8.0]), (3, 2))
    assert sp.issparse(m) and m.format == "csr"
    assert m.nnz == 2
    assert m[0, 1] == 3.0 and m[2, 0] == 8.0 and m[1].nnz == 0


def test_purchased_keys_leave_out_repeatable_products() -> None:
    inter = make_interactions([(0, 1, 0, 0, 0, 1), (0, 2, 0, 0, 0, 1), (1, 2, 0, 1, 0, 0)])
    assert ix.purchased_keys(inter, 5).tolist() == [1, 2]
    repeatable = np.array([False, False, True, False, False])
    assert ix.purchased_keys(inter, 5, repeatable).tolist() == [1]


def test_popularity_ranks_by_decayed_buyers_then_interest() -> None:
    inter = make_interactions(
        [
            (0, 0, 0, 1, 0, 1),
            (1, 0, 0, 1, 0, 1),
            (2, 1, 0, 1, 0, 1),
            (3, 1, 0, 1, 0, 1),
            (3, 1, 0, 5, 0, 0),  # same buyers as product 0, more interest
            (4, 2, 60, 0, 0, 4),  # one buyer of four, two half-lives ago = 0.25
            (5, 3, 90, 0, 0, 9),  # a reseller: one buyer, however many purchases,
            (5, 3, 30, 0, 0, 9),  # decayed by its latest purchase (one half-life)
        ]
    )
    w = ix.interaction_weights(inter, 1.0, 4.0, 8.0, 30.0)
    sold, order = ix.popularity(inter, 5, 30.0, w)
    np.testing.assert_allclose(sold, [2.0, 2.0, 0.25, 0.5, 0.0])
    assert order.tolist() == [1, 0, 3, 2, 4]


def test_top_by_group_ranks_within_each_group_and_pads() -> None:
    group = np.array([0, 0, 1, 0, -1, 1])
    score = np.array([1.0, 3.0, 2.0, 0.0, 9.0, 2.0])
    tiebreak = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 5.0])
    table = ix.top_by_group(group, score, tiebreak, n_groups=3, length=3)
    assert table.tolist() == [[1, 0, -1], [5, 2, -1], [-1, -1, -1]]
    # A product nobody bought yet but people looked at comes after the sold ones.
    tiebreak[3] = 2.0
    table = ix.top_by_group(group, score, tiebreak, n_groups=3, length=3)
    assert table.tolist() == [[1, 0, 3], [5, 2, -1], [-1, -1, -1]]


def test_favourite_category_is_the_heaviest_one() -> None:
    inter = make_interactions([(0, 0, 0, 1, 0, 0), (0, 1, 0, 1, 0, 0), (0, 2, 0, 0, 0, 1)])
    w = ix.interaction_weights(inter, 1.0, 4.0, 8.0, 30.0)
    product_category = np.array([0, 0, 1])
    fav = ix.favourite_from_interactions(inter, w, product_category, 2, 2)
    assert fav.tolist() == [1, -1]


def test_unique_sorted_is_numpys_unique() -> None:
    rng = np.random.default_rng(3)
    for values in (
        rng.integers(0, 50, 1000),
        np.sort(rng.integers(0, 10**9, 5000, dtype=np.int64)),
        np.array([7], dtype=np.int64),
        np.array([], dtype=np.int64),
    ):
        got = ix.unique_sorted(values)
        assert got.dtype == values.dtype
        np.testing.assert_array_equal(got, np.unique(values))


def test_candidates_need_two_customers_and_are_capped_by_customers() -> None:
    """A product only one customer touched (a crawler's 200k pages) is no collaborative
    candidate; beyond the cap the products with the most customers stay."""
    rows = [(c, 0, 0, 1, 0, 0) for c in range(4)]  # product 0: four customers
    rows += [(c, 1, 0, 1, 0, 0) for c in range(3)]  # product 1: three
    rows += [(c, 2, 0, 1, 0, 0) for c in (0, 1)] + [(0, 2, 1, 1, 0, 0)]  # 2: two, two days
    rows += [(c, 3, 0, 1, 0, 0) for c in (2, 3)]  # 3: two, less interest than 2
    rows += [(9, p, 0, 1, 0, 0) for p in range(4, 9)]  # 4..8: the crawler alone
    inter = make_interactions(rows)
    weights = np.ones(len(inter), dtype=np.float32)
    matrix = ix.build_matrix(inter.customer, inter.product, weights, (10, 9))
    interest = np.bincount(inter.product, weights=weights, minlength=9)
    got = ix.candidates(matrix, interest, most=100)
    assert np.flatnonzero(got).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(ix.candidates(matrix, interest, most=3)).tolist() == [0, 1, 2]


def test_a_product_only_visitors_saw_lately_is_active_at_their_days_only() -> None:
    # Customers saw product 0 today and product 1 100 days ago; visitors who never logged in
    # saw product 1 five days ago and product 2 twenty days ago.
    inter = make_interactions([(0, 0, 0, 1, 0, 0), (0, 1, 100, 1, 0, 0)])
    visits = ix.Visits(product=np.array([1, 2], np.int32), age_days=np.array([5, 20], np.int32))
    assert ix.active_products(inter, 4, 90).tolist() == [True, False, False, False]
    assert ix.active_products(inter, 4, 90, visits).tolist() == [True, True, True, False]
    # Seen from 10 days earlier (an evaluation's cut-off), product 1's visit is in the future.
    earlier = visits.shifted(10)
    assert ix.active_products(inter, 4, 90, earlier).tolist() == [True, False, True, False]
    assert ix.active_products(inter, 4, 0, visits).all()
