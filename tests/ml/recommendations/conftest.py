"""Small frames and a small synthetic warehouse for the recommender's tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from ml.recommendations.interactions import Interactions

AS_OF = date(2026, 6, 30)


def make_interactions(rows: list[tuple]) -> Interactions:
    """(customer, product, age_days, views, cart_adds, purchases) tuples -> Interactions."""
    a = np.array(rows, dtype=float).reshape(-1, 6)
    return Interactions(
        customer=a[:, 0].astype(np.int32),
        product=a[:, 1].astype(np.int32),
        age_days=a[:, 2].astype(np.int32),
        views=a[:, 3].astype(np.float32),
        cart_adds=a[:, 4].astype(np.float32),
        purchases=a[:, 5].astype(np.float32),
    )


@pytest.fixture
def small_warehouse(tmp_path: Path) -> Path:
    """3000 customers x 300 products with category and tier taste, written as the marts."""
    from ml.recommendations.synthetic import simulate, write_marts

    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    warehouse.parent.mkdir(parents=True)
    interactions, customers = simulate(3000, 300, n_categories=10, seed=3)
    write_marts(warehouse, interactions, customers, AS_OF)
    return warehouse
