from __future__ import annotations

import numpy as np

from ml.recommendations import rank


def test_top_k_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    for cols in (5000, 997, 12):
        scores = rng.standard_normal((50, cols)).astype(np.float32)
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        np.testing.assert_array_equal(rank.top_k(scores, 10), expected)


def test_collaborative_block_never_recommends_purchased_products() -> None:
    user = np.array([[1.0], [1.0], [1.0]], dtype=np.float32)
    item = np.array([[5.0], [4.0], [3.0], [2.0]], dtype=np.float32)
    # Customer 0 bought products 0 and 2; customer 2 is cold.
    keys = np.array([0 * 4 + 0, 0 * 4 + 2])
    warm = np.array([True, True, False])
    block = rank.collaborative_block(user, item, np.arange(3), warm, keys, n=2)
    assert block.products.tolist() == [[1, 3], [0, 1], [-1, -1]]
    assert block.scores[0].tolist() == [4.0, 2.0]


def _chain(customers, favourite, segment, keys, n=3):
    content = np.array([[10, 11, 12, 13], [20, 21, -1, -1]], dtype=np.int32)
    seg = np.array([[30, 31, 32, 33]], dtype=np.int32)
    popular = np.array([[11, 40, 41, 42]], dtype=np.int32)
    blocks = [
        rank.Block(
            "collaborative",
            np.array([[1, 2, 3], [-1, -1, -1], [-1, -1, -1], [-1, -1, -1]], dtype=np.int32),
            np.array([[0.9, 0.8, 0.7]] + [[0.0] * 3] * 3),
        ),
        rank.table_block("content", favourite, content, content.astype(float)),
        rank.table_block("segment-popular", segment, seg, seg.astype(float)),
        rank.table_block(
            "popular", np.zeros(len(customers), np.int32), popular, popular.astype(float)
        ),
    ]
    return rank.merge(blocks, customers, keys, n_products=100, n=n)


def _lists_of(lists: rank.Lists, row: int) -> list[tuple[int, str]]:
    mine = lists.customer == row
    return [
        (int(p), rank.SOURCES[s])
        for p, s in zip(lists.product[mine], lists.source[mine], strict=True)
    ]


def test_cold_start_chain_labels_each_pick_with_its_source() -> None:
    customers = np.arange(4)
    favourite = np.array([0, 1, -1, -1])
    segment = np.array([-1, -1, 0, -1])
    keys = np.array([1 * 100 + 20])  # customer 1 bought product 20
    lists = _chain(customers, favourite, segment, keys)
    assert _lists_of(lists, 0) == [(1, "collaborative"), (2, "collaborative"), (3, "collaborative")]
    # Cold, favourite category 1: its unbought best seller, then segment-less -> popular.
    assert _lists_of(lists, 1) == [(21, "content"), (11, "popular"), (40, "popular")]
    # No favourite category, in segment 0.
    assert _lists_of(lists, 2) == [
        (30, "segment-popular"),
        (31, "segment-popular"),
        (32, "segment-popular"),
    ]
    # Nothing known: overall best sellers.
    assert _lists_of(lists, 3) == [(11, "popular"), (40, "popular"), (41, "popular")]
    # Ranks are 1..n for every customer.
    assert lists.rank.tolist() == [1, 2, 3] * 4


def test_merge_drops_repeats_and_purchases_and_keeps_repeatable_ones() -> None:
    customers = np.array([0])
    products = np.array([[5, 6, 5, 7, 8]], dtype=np.int32)
    block = rank.Block("popular", products, np.ones((1, 5)))
    bought_6 = np.array([0 * 100 + 6])
    lists = rank.merge([block], customers, bought_6, n_products=100, n=3)
    assert lists.product.tolist() == [5, 7, 8]
    # A repeatable product is simply not among the excluded keys.
    lists = rank.merge([block], customers, np.array([], dtype=np.int64), n_products=100, n=3)
    assert lists.product.tolist() == [5, 6, 7]


def test_is_excluded_bitmap_blocks_give_the_binary_search_answer() -> None:
    rng = np.random.default_rng(5)
    n_customers, n_products = 3000, 40
    keys = np.unique(rng.integers(0, n_customers * n_products, 20_000))
    customers = rng.permutation(n_customers)[:2500]  # unsorted, some customers absent
    products = rng.integers(0, n_products, (len(customers), 12))
    key = customers.astype(np.int64)[:, None] * n_products + products
    expected = np.isin(key, keys)
    for block_bits in (64 * n_products, 1000 * n_products, 1 << 25, 63 * n_products):
        got = rank.is_excluded(customers, products, keys, n_products, block_bits=block_bits)
        np.testing.assert_array_equal(got, expected)
    assert not rank.is_excluded(customers, products, keys[:0], n_products).any()


def test_a_large_catalogue_scores_in_blocks_of_bounded_size() -> None:
    """One crawler-like customer viewing 200k products made every product known to the
    factors: 512 customers x 200k products were 400 MB a score block (peak RSS 1.09 GiB and
    4.6 s of page faults for a 5,000-customer shop, 0.33 GiB after). The rows of a block
    shrink with the catalogue; the lists are the same."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n_customers, n_products = 600, 100_000
    user = rng.normal(size=(n_customers, 4)).astype(np.float32)
    item = rng.normal(size=(n_products, 4)).astype(np.float32)
    customers = np.arange(n_customers, dtype=np.int32)
    warm = np.ones(n_customers, dtype=bool)
    excluded = np.array([5 * n_products + 7], dtype=np.int64)
    tracemalloc.start()
    try:
        got = rank.collaborative_block(user, item, customers, warm, excluded, 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 60 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    expected = rank.top_k(user @ item.T, 10)
    expected[5] = rank.top_k(
        np.where(np.arange(n_products) == 7, -np.inf, user[5] @ item.T)[None], 10
    )
    np.testing.assert_array_equal(got.products, expected)


def test_only_the_allowed_products_are_scored_and_the_lists_are_the_same() -> None:
    """A crawler's 100k single-viewer products are no candidates: the scores are computed
    for the 300 allowed columns only (customers x candidates, not x catalogue), and the
    lists equal scoring every product and leaving out the others."""
    import tracemalloc

    rng = np.random.default_rng(1)
    n_customers, n_products = 600, 100_000
    user = rng.normal(size=(n_customers, 4)).astype(np.float32)
    item = rng.normal(size=(n_products, 4)).astype(np.float32)
    allowed = np.zeros(n_products, dtype=bool)
    allowed[rng.choice(n_products, 300, replace=False)] = True
    customers = np.arange(n_customers, dtype=np.int32)
    warm = np.ones(n_customers, dtype=bool)
    bought = np.flatnonzero(allowed)[:2]
    excluded = np.sort(np.r_[5 * n_products + bought, 6 * n_products + 11]).astype(np.int64)
    tracemalloc.start()
    try:
        got = rank.collaborative_block(user, item, customers, warm, excluded, 10, allowed=allowed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Scoring all 100k columns takes 10 MB score blocks (SCORE_BLOCK) and a 1.6 MB copy of
    # the product factors; 300 columns a 0.6 MB block of 512 customers and its sort.
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    scores = np.where(allowed, user @ item.T, -np.inf)
    scores[5, bought] = -np.inf
    np.testing.assert_array_equal(got.products, rank.top_k(scores, 10))
    assert not np.isin(got.products, np.flatnonzero(~allowed)).any()
    assert not np.isin(got.products[5], bought).any()
