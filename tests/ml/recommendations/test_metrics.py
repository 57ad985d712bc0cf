from __future__ import annotations

import numpy as np
import pytest

from ml.recommendations.metrics import ranking_metrics


def test_metrics_match_hand_computed_values() -> None:
    n_products = 10
    customers = np.array([0, 1])
    # Customer 0 bought 2 and 7, customer 1 bought 5.
    relevant = np.array([0 * 10 + 2, 0 * 10 + 7, 1 * 10 + 5])
    recommended = np.array([[2, 3, 7], [1, 4, -1]])
    m = ranking_metrics(recommended, relevant, customers, n_products, catalogue_size=10, k=3)
    # Customer 0: hits at ranks 1 and 3 -> precision 2/3, recall 1, AP (1 + 2/3) / 2.
    # Customer 1: no hit.
    assert m["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall_at_3"] == pytest.approx((1 + 0) / 2)
    assert m["map_at_3"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    assert m["coverage_at_3"] == pytest.approx(5 / 10)  # products 1, 2, 3, 4, 7 shown


def test_map_divides_by_min_of_k_and_relevant() -> None:
    relevant = np.arange(5)  # customer 0 bought products 0..4
    recommended = np.array([[9, 0]])
    m = ranking_metrics(recommended, relevant, np.array([0]), 10, catalogue_size=10, k=2)
    assert m["recall_at_2"] == pytest.approx(1 / 5)
    assert m["map_at_2"] == pytest.approx((1 / 2) / 2)
    assert m["precision_at_2"] == pytest.approx(1 / 2)
