"""Interactions: weights, the sparse customer x product matrix, popularity rankings.

Pure functions on numpy arrays of integer codes (customers and products are numbered by the
reader, see :mod:`ml.recommendations.data`); nothing here touches the warehouse and no dense
customer x product matrix is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Interactions:
    """One entry per customer, product and day (the mart's grain), as codes."""

    customer: np.ndarray  # int32 customer codes
    product: np.ndarray  # int32 product codes
    age_days: np.ndarray  # int32 days before the as-of (or training cut-off) date
    views: np.ndarray  # product views
    cart_adds: np.ndarray
    purchases: np.ndarray

    def __len__(self) -> int:
        return len(self.customer)

    def where(self, mask: np.ndarray) -> Interactions:
        return Interactions(
            *(getattr(self, f)[mask] for f in self.__dataclass_fields__)  # type: ignore[arg-type]
        )

    def shifted(self, days: int) -> Interactions:
        """The same entries seen from ``days`` earlier (ages relative to a training cut-off)."""
        out = self.where(np.ones(len(self), dtype=bool))
        out.age_days = out.age_days - days
        return out


def interaction_weights(
    inter: Interactions,
    view_weight: float,
    cart_weight: float,
    purchase_weight: float,
    half_life_days: float,
) -> np.ndarray:
    """Strength of each entry (purchase > cart add > view) halved every ``half_life_days``."""
    strength = (
        view_weight * inter.views
        + cart_weight * inter.cart_adds
        + purchase_weight * inter.purchases
    )
    decay = np.exp2(-np.maximum(inter.age_days, 0) / half_life_days)
    return (strength * decay).astype(np.float32)


def build_matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]):
    """CSR matrix summing the values of repeated (row, col) pairs; explicit zeros dropped."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def purchased_keys(
    inter: Interactions, n_products: int, repeatable: np.ndarray | None = None
) -> np.ndarray:
    """Sorted ``customer * n_products + product`` keys of purchases not to recommend again.

    ``repeatable`` is a boolean array over product codes (True: may be bought again).
    """
    bought = inter.purchases > 0
    if repeatable is not None and len(repeatable):
        bought &= ~repeatable[inter.product]
    keys = inter.customer[bought].astype(np.int64) * n_products + inter.product[bought]
    return unique_sorted(keys)


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` for integer keys, by a sort and a neighbour comparison.

    numpy 2's ``np.unique`` hashes before it sorts: 0.37 s for 700k int64 keys where a sort
    takes 0.004 s (measured on the 10M bench's purchase keys, which arrive almost sorted).
    """
    out = np.sort(np.asarray(values), kind="stable")
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def buyers(inter: Interactions, half_life_days: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (customer, product) bought, once: (customer codes, product codes, the decay of
    the customer's latest purchase of it).

    Best sellers count buyers, not purchases: a reseller with 20,000 orders of 50 products
    beside ordinary customers made its 50 products every cold customer's best sellers.
    """
    ok = inter.purchases > 0
    customer, product, age = inter.customer[ok], inter.product[ok], inter.age_days[ok]
    order = np.lexsort((age, product, customer))  # each pair's latest purchase first
    customer, product, age = customer[order], product[order], age[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (customer[1:] != customer[:-1]) | (product[1:] != product[:-1])
    decay = np.exp2(-np.maximum(age[first], 0) / half_life_days)
    return customer[first], product[first], decay


def popularity(
    inter: Interactions, n_products: int, half_life_days: float, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best sellers: recency-decayed buyers per product (:func:`buyers`), ties broken by all
    interactions.

    Returns (score per product code, product codes ranked best first).
    """
    _, product, decay = buyers(inter, half_life_days)
    sold = np.bincount(product, weights=decay, minlength=n_products)
    interest = np.bincount(inter.product, weights=weights, minlength=n_products)
    order = np.lexsort((np.arange(n_products), -interest, -sold))
    return sold, order


def top_by_group(
    group: np.ndarray, score: np.ndarray, tiebreak: np.ndarray, n_groups: int, length: int
) -> np.ndarray:
    """(n_groups, length) table of product codes ranked by ``score`` within each group.

    ``group``, ``score``, ``tiebreak`` are per product (group -1: in no group). Rows are
    padded with -1 when a group has fewer products; products with neither a score nor a
    tie-break weight (nothing sold, no interest) are left out.
    """
    table = np.full((n_groups, length), -1, dtype=np.int32)
    keep = (group >= 0) & ((score > 0) | (tiebreak > 0))
    products = np.flatnonzero(keep)
    if len(products) == 0 or length == 0:
        return table
    order = products[np.lexsort((products, -tiebreak[products], -score[products], group[products]))]
    g = group[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    start = np.repeat(first, np.diff(np.r_[first, len(g)]))
    rank = np.arange(len(g)) - start
    fits = rank < length
    table[g[fits], rank[fits]] = order[fits]
    return table


def group_popularity(
    member_group: np.ndarray,
    inter: Interactions,
    n_groups: int,
    n_products: int,
    half_life_days: float,
    length: int,
    tiebreak: np.ndarray,
    eligible: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best sellers among each group's customers (``member_group`` per customer code, -1: none),
    counted in buyers as :func:`popularity`; ``eligible`` (boolean per product): only these.

    Returns (table of product codes (n_groups, length), score table of the same shape).
    """
    customer, product, decay = buyers(inter, half_life_days)
    g = member_group[customer]
    ok = g >= 0
    key = g[ok].astype(np.int64) * n_products + product[ok]
    sold = np.bincount(key, weights=decay[ok], minlength=n_groups * n_products)
    sold = sold.reshape(n_groups, n_products)
    table = np.full((n_groups, length), -1, dtype=np.int32)
    scores = np.zeros((n_groups, length))
    for gi in range(n_groups):  # a handful of segments, not data rows
        products = np.flatnonzero((sold[gi] > 0) if eligible is None else (sold[gi] > 0) & eligible)
        ranked = products[np.lexsort((products, -tiebreak[products], -sold[gi, products]))]
        ranked = ranked[:length]
        table[gi, : len(ranked)] = ranked
        scores[gi, : len(ranked)] = sold[gi, ranked]
    return table, scores


def favourite_from_interactions(
    inter: Interactions,
    weights: np.ndarray,
    product_category: np.ndarray,
    n_customers: int,
    n_categories: int,
) -> np.ndarray:
    """Category code with the largest interaction weight per customer (-1 without any)."""
    cat = product_category[inter.product]
    ok = cat >= 0
    key = inter.customer[ok].astype(np.int64) * n_categories + cat[ok]
    out = np.full(n_customers, -1, dtype=np.int32)
    if len(key) == 0:
        return out
    if n_customers * n_categories <= 50_000_000:
        # Dense customer x category totals: one pass, no sort. argmax takes the first
        # (smallest) category code among equal totals.
        size = n_customers * n_categories
        total = np.bincount(key, weights=weights[ok], minlength=size).reshape(n_customers, -1)
        counts = np.bincount(key, minlength=size).reshape(n_customers, -1)
        total[counts == 0] = -np.inf
        seen = counts.any(axis=1)
        out[seen] = total[seen].argmax(axis=1)
        return out
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=weights[ok])
    cust, category = uniq // n_categories, uniq % n_categories
    # Largest total per customer; ties to the smaller category code.
    order = np.lexsort((category, -total, cust))
    first = np.r_[True, cust[order][1:] != cust[order][:-1]]
    out[cust[order][first]] = category[order][first]
    return out


@dataclass
class Visits:
    """Products that visitors attributed to no customer interacted with (product code and
    age in days of each product and day of ``marts.anonymous_product_daily``)."""

    product: np.ndarray  # int32 product code
    age_days: np.ndarray  # int32 days before the as-of date

    def shifted(self, days: int) -> Visits:
        """The same days seen from ``days`` earlier (negative ages: after the cut-off)."""
        return Visits(self.product, self.age_days - days)


def active_products(
    inter: Interactions, n_products: int, days: int, visits: Visits | None = None
) -> np.ndarray:
    """Products someone interacted with in the last ``days`` days (ages 0 to ``days - 1``;
    boolean per product code): a customer (``inter``), or a visitor who never logged in
    (``visits``). ``days`` 0: every product.

    A product taken off sale has no views after it; its older interactions still count in
    the factors, but it is not recommended. A product only visitors browse is on sale: a
    shop whose traffic is mostly anonymous had such products left out as off sale."""
    if days <= 0:
        return np.ones(n_products, dtype=bool)
    recent = inter.product[inter.age_days < days]
    if visits is not None:
        seen = (visits.age_days >= 0) & (visits.age_days < days)
        recent = np.concatenate([recent, visits.product[seen]])
    return np.bincount(recent, minlength=n_products)[:n_products] > 0


def candidates(
    matrix, interest: np.ndarray, most: int, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Products that may be picked collaboratively (boolean per product code).

    A product at least two customers interacted with, and among the ``most`` such products
    with the most customers (ties: more interest, then the smaller code). A product only one
    customer touched co-occurs with nothing: its factors are fitted to that customer alone,
    and a crawler viewing 200,000 products made each of them a column every warm customer was
    scored on (the stage ~100x slower). The cap bounds the scoring of a long-tail catalogue
    at customers x ``most``; the best-seller fallbacks still offer every product.
    ``eligible`` (boolean per product): only these may be candidates (recently active ones).
    """
    n_products = matrix.shape[1]
    customers = np.bincount(matrix.indices, minlength=n_products)  # CSR: one entry a pair
    if eligible is not None:
        customers = np.where(eligible, customers, 0)
    keep = customers >= 2
    if int(keep.sum()) > most:
        ranked = np.lexsort((np.arange(n_products), -interest, -customers))[:most]
        keep = np.zeros(n_products, dtype=bool)
        keep[ranked] = True
    return keep


def shared_products(matrix) -> np.ndarray:
    """Products at least two customers interacted with (boolean per product code)."""
    return np.bincount(matrix.indices, minlength=matrix.shape[1]) >= 2
