"""Implicit-feedback matrix factorisation: alternating least squares with conjugate gradient.

Hu, Koren and Volinsky (2008): every customer u and product i get latent vectors x_u, y_i;
the preference p_ui is 1 when the customer interacted with the product, else 0, with the
confidence c_ui = 1 + alpha * w_ui (w the interaction weight, 0 when nothing happened). Each
half sweep minimises, for one side with the other fixed,

    sum_i c_ui (p_ui - x_u . y_i)^2 + lambda |x_u|^2

whose normal equations are (Y'Y + Y' (C_u - I) Y + lambda I) x_u = Y' C_u p_u. Y'Y is shared
by every row (the "Gram trick"), so only the observed entries cost anything. The systems are
solved approximately by a few conjugate-gradient steps, warm-started from the previous sweep
(Takacs et al. 2011), vectorised over all rows at once: one step costs O(nnz * factors), never
a dense customer x product matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Observed entries handled per block when computing x_u . y_i: small reused buffers stay in
# cache; fresh nnz x k temporaries cost more in page faults than in arithmetic (measured 15x).
_BLOCK = 1 << 16
# Per-row k x k Gram matrices replace the per-entry products for small k (measured at 200k x
# 2k, 3.6M non-zeros, per sweep: 4 factors 0.25 s vs 0.55 s, 8 factors 0.48 s vs 0.69 s,
# 16 factors 1.64 s vs 1.19 s) when they fit in this many bytes.
_ROW_GRAMS_MAX_FACTORS = 8
_ROW_GRAMS_BYTES = 256 << 20


@dataclass
class Factors:
    """Customer factors (rows of the matrix) and product factors (columns)."""

    user: np.ndarray  # (n_users, k) float32
    item: np.ndarray  # (n_items, k) float32

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Predicted preference of the given customers for every product (rows x items)."""
        return self.user[rows] @ self.item.T


def _row_of_entry(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.intp), np.diff(indptr))


def entry_dots(x: np.ndarray, other: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x[rows[e]] . other[cols[e]] for every observed entry e, block by block."""
    k = x.shape[1]
    dots = np.empty(len(rows), dtype=np.float32)
    left = np.empty((_BLOCK, k), dtype=np.float32)
    right = np.empty((_BLOCK, k), dtype=np.float32)
    for start in range(0, len(rows), _BLOCK):
        stop = min(start + _BLOCK, len(rows))
        n = stop - start
        np.take(x, rows[start:stop], axis=0, out=left[:n])
        np.take(other, cols[start:stop], axis=0, out=right[:n])
        dots[start:stop] = np.einsum("ij,ij->i", left[:n], right[:n])
    return dots


def _apply(
    x: np.ndarray,
    other: np.ndarray,
    gram: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    product,
    conf_minus_one: np.ndarray,
) -> np.ndarray:
    """(Y'Y + lambda I) x_u + Y' (C_u - I) Y x_u for every row u at once."""
    out = x @ gram
    dots = entry_dots(x, other, rows, cols)
    out += product(conf_minus_one * dots, other)
    return out


def _solve_side(
    x: np.ndarray,
    other: np.ndarray,
    matrix,
    alpha: float,
    regularization: float,
    cg_steps: int,
    columns=None,
) -> np.ndarray:
    """A few conjugate-gradient steps on every row's normal equations (x is updated).

    ``columns``: the same matrix in the other orientation (CSR with ``other``'s rows as
    rows), given when ``x`` is the short side (products). Products of the weights with
    ``other``'s factors are then computed as ``columns.T @ dense`` (a CSC view): the loop
    reads ``other``'s rows in order and adds into ``x``'s few rows, which stay in cache,
    instead of gathering ``other``'s rows at random. The same sums in the same order (equal
    results), 8x faster for the per-row Gram matrices at 200k x 2k (0.2 s -> 0.025 s).
    """
    import scipy.sparse as sp

    k = other.shape[1]
    gram = (other.T @ other + regularization * np.eye(k, dtype=np.float32)).astype(np.float32)
    if columns is None:
        source = matrix
        rows = _row_of_entry(matrix.indptr)
        cols = matrix.indices.astype(np.intp)
    else:
        source = columns
        rows = columns.indices.astype(np.intp)
        cols = _row_of_entry(columns.indptr)
    conf_minus_one = (alpha * source.data).astype(np.float32)

    def product(weights: np.ndarray, dense: np.ndarray) -> np.ndarray:
        # Same sparsity pattern as the matrix: no COO conversion, no sort.
        weighted = sp.csr_matrix((weights, source.indices, source.indptr), shape=source.shape)
        return weighted @ dense if columns is None else weighted.T @ dense

    # Right-hand side Y' C_u p_u: the sum of c_ui y_i over the row's observed products.
    b = np.asarray(product(1.0 + conf_minus_one, other), dtype=np.float32)
    row_grams = None
    if k <= _ROW_GRAMS_MAX_FACTORS and matrix.shape[0] * k * k * 4 <= _ROW_GRAMS_BYTES:
        # Y' (C_u - I) Y for every row at once, as one sparse product with the k x k outer
        # products of the other side's factors; each CG product is then a small dense one.
        outer = (other[:, :, None] * other[:, None, :]).reshape(len(other), k * k)
        row_grams = np.asarray(product(conf_minus_one, outer), dtype=np.float32).reshape(-1, k, k)

    def apply(v: np.ndarray) -> np.ndarray:
        if row_grams is None:
            return _apply(v, other, gram, rows, cols, product, conf_minus_one)
        return v @ gram + np.matmul(row_grams, v[:, :, None])[:, :, 0]

    r = b - apply(x)
    p = r.copy()
    rs_old = np.einsum("ij,ij->i", r, r)
    for _ in range(cg_steps):
        ap = apply(p)
        denominator = np.einsum("ij,ij->i", p, ap)
        step = np.divide(rs_old, denominator, out=np.zeros_like(rs_old), where=denominator > 0)
        x += step[:, None] * p
        r -= step[:, None] * ap
        rs_new = np.einsum("ij,ij->i", r, r)
        beta = np.divide(rs_new, rs_old, out=np.zeros_like(rs_new), where=rs_old > 0)
        p = r + beta[:, None] * p
        rs_old = rs_new
    return x


def fit_als(
    matrix,
    factors: int = 32,
    regularization: float = 0.05,
    alpha: float = 2.0,
    iterations: int = 12,
    cg_steps: int = 3,
    random_state: int = 42,
    init: Factors | None = None,
) -> Factors:
    """Fit implicit ALS on a customer x product CSR matrix of interaction weights (>= 0).

    ``init``: start from these factors (same shapes) instead of small random ones, e.g. to
    refresh a model with a few sweeps over newer interactions.
    """
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    transposed = matrix.T.tocsr()
    rng = np.random.default_rng(random_state)
    n_users, n_items = matrix.shape
    user = (rng.standard_normal((n_users, factors)) * 0.01).astype(np.float32)
    item = (rng.standard_normal((n_items, factors)) * 0.01).astype(np.float32)
    if init is not None:
        user, item = init.user.copy(), init.item.copy()
    for _ in range(iterations):
        user = _solve_side(user, item, matrix, alpha, regularization, cg_steps)
        item = _solve_side(item, user, transposed, alpha, regularization, cg_steps, matrix)
    return Factors(user=user, item=item)


def fit_svd(matrix, factors: int = 32, random_state: int = 42) -> Factors:
    """Truncated SVD of the weighted matrix (the cheaper alternative measured in the docs)."""
    from sklearn.decomposition import TruncatedSVD

    k = max(1, min(factors, min(matrix.shape) - 1))
    svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=random_state)
    user = svd.fit_transform(matrix).astype(np.float32)
    return Factors(user=user, item=svd.components_.T.astype(np.float32).copy())
