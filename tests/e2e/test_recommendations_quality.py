"""Acceptance: on generated data the recommender beats best sellers; cold starts get N picks.

Generated landing zone (customers have category taste) -> ingest -> dbt (which builds
``marts.customer_product_daily``) -> recommend. The model's holdout recall@10 must beat the
popularity baseline's, and customers with too little history must still receive ``top_n``
recommendations from the cold-start chain with the right ``source``. Full-size figures:
``bench/bench_recommend.py``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from segmint.config import Settings
from segmint.generate import generate
from segmint.ingest import run_ingest
from segmint.transform import run_transform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

END = date(2026, 6, 30)
CUSTOMERS = 8000
DAYS = 60


def test_recall_beats_popularity_and_cold_starts_get_n(tmp_path: Path) -> None:
    from ml.recommendations import run_recommendations

    landing = tmp_path / "data" / "landing"
    generate(landing, customers=CUSTOMERS, days=DAYS, end_date=END, seed=7)
    settings = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=landing,
        output=tmp_path / "output",
    )
    run_ingest(settings, END)
    run_transform(settings, END)
    result = run_recommendations(settings, END)

    holdout = result.details["holdout"]
    assert holdout["model"]["evaluated_customers"] >= 200
    assert holdout["model"]["recall_at_10"] > holdout["popularity"]["recall_at_10"], holdout
    assert result.details["published"] == "model"

    n = settings.recommendations.top_n
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        # Customers with fewer distinct products than min_interactions (or none at all).
        lists = con.execute(
            """
            with history as (
                select customer_id, count(distinct product_id) as products
                from marts.customer_product_daily
                where activity_date <= ?
                group by customer_id
            )

            select
                f.customer_id,
                f.favourite_category,
                coalesce(h.products, 0) as products,
                count(r.rank) as picks,
                list(r.source order by r.rank) as sources,
                list(c.product_category order by r.rank) as categories
            from marts.customer_features as f
            left join history as h on f.customer_id = h.customer_id
            left join ml.recommendations as r
                on f.customer_id = r.customer_id and r.as_of_date = ?
            left join (
                select product_id, max(product_category) as product_category
                from marts.customer_product_daily group by product_id
            ) as c on r.product_id = c.product_id
            where coalesce(h.products, 0) < ?
            group by f.customer_id, f.favourite_category, h.products
            """,
            [END, END, settings.recommendations.min_interactions],
        ).df()
        customers = con.execute("select count(*) from marts.customer_features").fetchone()[0]
        total = con.execute(
            "select count(*) from ml.recommendations where as_of_date = ?", [END]
        ).fetchone()[0]
    finally:
        con.close()

    assert total == customers * n
    assert len(lists) >= 100, "the generated shop must have cold-start customers"
    assert (lists["picks"] == n).all()
    for row in lists.itertuples():
        assert "collaborative" not in row.sources
        if pd.isna(row.favourite_category):
            # Without a favourite category in the features the category of the customer's
            # few interactions is used; without any interaction only best sellers remain.
            assert set(row.sources) <= {"content", "popular"}, row
            if row.products == 0:
                assert set(row.sources) == {"popular"}, row
        else:
            # Content picks come first and belong to the favourite category.
            assert row.sources[0] == "content", row
            content = [
                c for c, s in zip(row.categories, row.sources, strict=True) if s == "content"
            ]
            assert set(content) == {row.favourite_category}, row
