"""Scoring with a registered model on the nights it is not retrained.

The factors of a model are indexed by the customer and product ids of its training night;
tonight's codes are numbered afresh (:mod:`ml.recommendations.data`). :func:`align` maps the
product factors onto tonight's product codes (products the model never saw get a zero row
and are marked unknown, so they are never picked collaboratively), :func:`fold_in` solves
the factors of the given customers against those fixed product factors (the ALS user step,
Hu, Koren & Volinsky 2008, with as many conjugate-gradient steps as there are factors, which
solves each customer's small system exactly), starting from the model's own factors for the
customers it knows. Pure numpy/scipy: nothing here touches the warehouse.
"""

from __future__ import annotations

import numpy as np

from ml.recommendations.als import Factors, _solve_side


def positions(known_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each of ``ids`` in the sorted ``known_ids`` (-1 when absent)."""
    out = np.full(len(ids), -1, dtype=np.int64)
    if len(known_ids) == 0 or len(ids) == 0:
        return out
    known = known_ids.astype(str)
    wanted = ids.astype(str)
    pos = np.searchsorted(known, wanted)
    ok = pos < len(known)
    ok[ok] = known[pos[ok]] == wanted[ok]
    out[ok] = pos[ok]
    return out


def align(model: dict, product_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item factors on tonight's product codes, known mask) from a saved model."""
    item = np.asarray(model["item_factors"], dtype=np.float32)
    pos = positions(np.asarray(model["product_ids"], dtype=object), product_ids)
    known = pos >= 0
    aligned = np.zeros((len(product_ids), item.shape[1]), dtype=np.float32)
    aligned[known] = item[pos[known]]
    # Products fitted without factors (one customer had touched them) are not known either.
    known &= aligned.any(axis=1)
    return aligned, known


def fold_in(
    matrix,
    rows: np.ndarray,
    item: np.ndarray,
    known: np.ndarray,
    start: np.ndarray,
    alpha: float,
    regularization: float,
) -> np.ndarray:
    """Factors of the customers ``rows`` (codes) against the fixed ``item`` factors.

    ``matrix`` is tonight's customer x product weight matrix (CSR); only its ``rows`` are
    used, and only the products the model knows. ``start`` holds initial factors for those
    rows (the model's, or zeros for customers it never saw).
    """
    import scipy.sparse as sp

    sub = matrix[rows] @ sp.diags(known.astype(np.float32))
    sub = sp.csr_matrix(sub, dtype=np.float32)
    sub.eliminate_zeros()
    x = np.array(start, dtype=np.float32, copy=True)
    k = item.shape[1]
    return _solve_side(x, item, sub, alpha, regularization, cg_steps=k)


def user_start(model: dict, customer_ids: np.ndarray, k: int) -> np.ndarray:
    """The model's factors for these customers (zeros for customers it never saw)."""
    user = np.asarray(model["user_factors"], dtype=np.float32)
    pos = positions(np.asarray(model["customer_ids"], dtype=object), customer_ids)
    out = np.zeros((len(customer_ids), k), dtype=np.float32)
    ok = pos >= 0
    out[ok] = user[pos[ok]]
    return out


def as_factors(n_customers: int, rows: np.ndarray, user_rows: np.ndarray, item: np.ndarray):
    """Factors over all customer codes (zeros outside ``rows``) for the ranking code."""
    user = np.zeros((n_customers, item.shape[1]), dtype=np.float32)
    user[rows] = user_rows
    return Factors(user=user, item=item)
