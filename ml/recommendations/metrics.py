"""Ranking metrics of top-N lists against held-out purchases."""

from __future__ import annotations

import numpy as np


def ranking_metrics(
    recommended: np.ndarray,
    relevant_keys: np.ndarray,
    customers: np.ndarray,
    n_products: int,
    catalogue_size: int,
    k: int,
) -> dict[str, float]:
    """precision@k, recall@k, MAP@k and catalogue coverage@k.

    ``recommended``: (customers, >= k) product codes, best first, -1 where a list is short.
    ``relevant_keys``: sorted unique ``customer * n_products + product`` of the held-out
    purchases; every customer in ``customers`` has at least one. Means are over customers.
    MAP@k divides each customer's sum of precision@j at the hits by min(k, relevant).
    """
    top = recommended[:, :k]
    if len(customers) == 0:
        return {
            f"precision_at_{k}": float("nan"),
            f"recall_at_{k}": float("nan"),
            f"map_at_{k}": float("nan"),
            f"coverage_at_{k}": 0.0,
        }
    key = customers.astype(np.int64)[:, None] * n_products + top
    pos = np.minimum(np.searchsorted(relevant_keys, key), len(relevant_keys) - 1)
    hit = (relevant_keys[pos] == key) & (top >= 0)
    cust_of_key = relevant_keys // n_products
    lo = np.searchsorted(cust_of_key, customers, side="left")
    hi = np.searchsorted(cust_of_key, customers, side="right")
    n_relevant = (hi - lo).astype(float)
    hits = hit.sum(axis=1)
    precision_at_j = np.cumsum(hit, axis=1) / np.arange(1, top.shape[1] + 1)
    average_precision = (precision_at_j * hit).sum(axis=1) / np.minimum(k, n_relevant)
    shown = np.flatnonzero(np.bincount(top[top >= 0].ravel()))  # distinct products shown
    return {
        f"precision_at_{k}": float(np.mean(hits / k)),
        f"recall_at_{k}": float(np.mean(hits / n_relevant)),
        f"map_at_{k}": float(np.mean(average_precision)),
        f"coverage_at_{k}": float(len(shown) / catalogue_size) if catalogue_size else 0.0,
    }
