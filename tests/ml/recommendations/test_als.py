from __future__ import annotations

import numpy as np

from ml.recommendations.als import fit_als, fit_svd
from ml.recommendations.interactions import build_matrix


def _two_blocks(seed: int = 0):
    """40 customers x 20 products: customers 0-19 use products 0-9, 20-39 products 10-19.

    Each customer misses one product of their own block; it must outscore the other block.
    """
    rng = np.random.default_rng(seed)
    rows, cols, hidden = [], [], []
    for u in range(40):
        block = np.arange(10) if u < 20 else np.arange(10, 20)
        skip = block[u % 10]
        hidden.append(skip)
        chosen = rng.choice(block[block != skip], size=6, replace=False)
        rows += [u] * len(chosen)
        cols += chosen.tolist()
    m = build_matrix(np.array(rows), np.array(cols), np.ones(len(rows)), (40, 20))
    return m, np.array(hidden)


def _own_block_wins(scores: np.ndarray, hidden: np.ndarray) -> float:
    wins = []
    for u in range(40):
        other = np.arange(10, 20) if u < 20 else np.arange(10)
        wins.append(scores[u, hidden[u]] > scores[u, other].max())
    return float(np.mean(wins))


def test_als_recovers_the_block_structure() -> None:
    m, hidden = _two_blocks()
    f = fit_als(m, factors=2, regularization=1.0, alpha=5.0, iterations=10, random_state=1)
    scores = f.scores(np.arange(40))
    assert _own_block_wins(scores, hidden) == 1.0


def test_als_is_reproducible_with_a_fixed_seed() -> None:
    m, _ = _two_blocks()
    a = fit_als(m, factors=4, iterations=3, random_state=5)
    b = fit_als(m, factors=4, iterations=3, random_state=5)
    np.testing.assert_array_equal(a.user, b.user)
    np.testing.assert_array_equal(a.item, b.item)


def test_als_warm_start_with_zero_sweeps_returns_the_start() -> None:
    m, _ = _two_blocks()
    a = fit_als(m, factors=4, iterations=3, random_state=5)
    b = fit_als(m, factors=4, iterations=0, init=a)
    np.testing.assert_array_equal(a.item, b.item)


def test_svd_recovers_the_block_structure() -> None:
    m, hidden = _two_blocks()
    f = fit_svd(m, factors=2, random_state=1)
    assert _own_block_wins(f.scores(np.arange(40)), hidden) >= 0.9


def test_row_gram_products_give_the_per_entry_products(monkeypatch) -> None:
    """The per-row Gram path (small k) and the per-entry path solve the same equations."""
    import scipy.sparse as sp

    import ml.recommendations.als as als

    weights = sp.random(300, 60, density=0.1, random_state=3, format="csr", dtype=np.float32)
    fits = {}
    for name, cap in (("grams", 1 << 30), ("entries", 0)):
        monkeypatch.setattr(als, "_ROW_GRAMS_BYTES", cap)
        fits[name] = als.fit_als(weights, factors=4, iterations=5, regularization=0.5)
    np.testing.assert_allclose(fits["grams"].user, fits["entries"].user, atol=1e-4)
    np.testing.assert_allclose(fits["grams"].item, fits["entries"].item, atol=1e-4)


def test_column_oriented_side_solves_what_the_row_oriented_side_solves() -> None:
    """Items solved through the users' CSR (a CSC view) equal items solved through their own."""
    import scipy.sparse as sp

    from ml.recommendations.als import _solve_side

    weights = sp.random(500, 40, density=0.1, random_state=4, format="csr", dtype=np.float32)
    rng = np.random.default_rng(0)
    for k in (4, 12):  # per-row Gram path and per-entry path
        users = rng.standard_normal((500, k)).astype(np.float32)
        start = rng.standard_normal((40, k)).astype(np.float32)
        transposed = weights.T.tocsr()
        rows = _solve_side(start.copy(), users, transposed, 2.0, 0.1, 3)
        columns = _solve_side(start.copy(), users, transposed, 2.0, 0.1, 3, weights)
        np.testing.assert_allclose(columns, rows, rtol=1e-5, atol=1e-5)
