"""The recommend stage against a real DuckDB file (synthetic marts)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from ml.recommendations import run_recommendations
from segmint.config import RecommendationSettings, Settings
from segmint.stages import SegmintError
from tests.ml.recommendations.conftest import AS_OF


def _settings(warehouse: Path, **overrides) -> Settings:
    recs = dataclasses.replace(RecommendationSettings(), **overrides)
    return Settings(warehouse=warehouse, recommendations=recs)


def _query(warehouse: Path, sql: str, params=()):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_model_beats_popularity_and_rerun_replaces_rows(small_warehouse: Path) -> None:
    settings = _settings(small_warehouse)
    first = run_recommendations(settings, AS_OF)
    assert first.details["published"] == "model", first.summary
    holdout = first.details["holdout"]
    assert holdout["model"]["recall_at_10"] > holdout["popularity"]["recall_at_10"]
    second = run_recommendations(settings, AS_OF)
    assert second.rows_out == first.rows_out == 3000 * 10

    rows = _query(
        small_warehouse,
        "select count(*), count(distinct (customer_id, rank)), count(distinct run_id), "
        "min(rank), max(rank) from ml.recommendations where as_of_date = ?",
        [AS_OF],
    )[0]
    assert rows == (30000, 30000, 1, 1, 10)
    # Nothing recommended that the customer already bought (no repeatable products here).
    bought = _query(
        small_warehouse,
        "select count(*) from ml.recommendations r join marts.customer_product_daily d "
        "using (customer_id, product_id) where d.purchases > 0 and r.as_of_date = ?",
        [AS_OF],
    )[0][0]
    assert bought == 0
    runs = _query(
        small_warehouse,
        "select status, count(*) from ml.model_runs where model_name = 'recommendations' "
        "group by status",
    )
    assert runs == [("published", 2)]
    metrics = _query(
        small_warehouse,
        "select scorer, count(*), count(distinct run_id) from ml.model_metrics "
        "where model_name = 'recommendations' and as_of_date = ? group by scorer order by 1",
        [AS_OF],
    )
    assert metrics == [
        ("model", 5, 1),
        ("model_factors_16", 1, 1),
        ("model_factors_4", 1, 1),
        ("model_factors_8", 1, 1),
        ("popularity", 5, 1),
    ]
    # The factor count is chosen on one half of the holdout customers, judged on the other.
    assert first.details["chosen_factors"] in (4, 8, 16)


def test_repeatable_categories_may_be_recommended_again(small_warehouse: Path) -> None:
    settings = _settings(small_warehouse, repeatable_categories=("cat00", "cat01"))
    run_recommendations(settings, AS_OF)
    again = _query(
        small_warehouse,
        "select count(*), count(*) filter (where d.product_category not in ('cat00', 'cat01')) "
        "from ml.recommendations r join marts.customer_product_daily d "
        "using (customer_id, product_id) where d.purchases > 0",
    )[0]
    assert again[0] > 0 and again[1] == 0


def test_without_a_holdout_to_judge_popularity_is_published(small_warehouse: Path) -> None:
    result = run_recommendations(_settings(small_warehouse, holdout_days=0), AS_OF)
    assert result.details["published"] == "popularity"
    assert any("popularity published" in w for w in result.warnings)
    sources = _query(small_warehouse, "select distinct source from ml.recommendations")
    assert sources == [("popular",)]
    status = _query(small_warehouse, "select status from ml.model_runs")
    assert status == [("not_published",)]


def test_segment_popular_fills_for_customers_without_a_favourite(small_warehouse: Path) -> None:
    con = duckdb.connect(str(small_warehouse))
    try:
        con.execute("create schema if not exists ml")
        con.execute(
            "create table ml.customer_segments as select customer_id, "
            "cast(? as date) as as_of_date, 0 as segment_id, 'Everyone' as segment_name, "
            "0.0 as distance, false as is_outlier, 'seg-run' as run_id "
            "from marts.customer_features",
            [AS_OF],
        )
        cold = con.execute(
            "select customer_id from marts.customer_features where favourite_category is null "
            "order by customer_id limit 1"
        ).fetchone()[0]
    finally:
        con.close()
    run_recommendations(_settings(small_warehouse), AS_OF)
    got = _query(
        small_warehouse,
        "select rank, source from ml.recommendations where customer_id = ? order by rank",
        [cold],
    )
    assert [r for r, _ in got] == list(range(1, 11))
    assert {s for _, s in got} == {"segment-popular"}


def test_missing_mart_is_a_clear_error(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    with pytest.raises(SegmintError, match=r"marts\.customer_product_daily"):
        run_recommendations(_settings(warehouse), AS_OF)


def test_a_shop_without_product_events_gets_no_lists_and_a_warning(tmp_path: Path) -> None:
    from ml.recommendations.synthetic import simulate, write_marts

    warehouse = tmp_path / "w.duckdb"
    interactions, customers = simulate(50, 100, seed=1)
    write_marts(warehouse, interactions.iloc[:0], customers, AS_OF)
    result = run_recommendations(_settings(warehouse), AS_OF)
    assert result.rows_out == 0
    assert any("no product views" in w for w in result.warnings)
    assert _query(warehouse, "select count(*) from ml.recommendations") == [(0,)]
    assert _query(warehouse, "select status from ml.model_runs") == [("not_published",)]


def test_a_shop_where_nothing_has_sold_still_fills_every_list(tmp_path: Path) -> None:
    """Views and cart adds but no purchase yet: no best sellers. Every list was empty
    ("popularity published: 0 recommendations for 50 customers"); cold-start customers
    must still get N recommendations: the products people look at most, score 0."""
    from ml.recommendations.synthetic import simulate, write_marts

    warehouse = tmp_path / "w.duckdb"
    interactions, customers = simulate(50, 100, seed=1)
    write_marts(warehouse, interactions.assign(purchases=0, revenue=0.0), customers, AS_OF)
    result = run_recommendations(_settings(warehouse), AS_OF)
    rows = _query(
        warehouse,
        "select count(*), count(distinct customer_id), max(score), list(distinct source) "
        "from ml.recommendations",
    )
    assert rows == [(500, 50, 0.0, ["popular"])]
    assert not [w for w in result.warnings if "fewer than 10 recommendations" in w]
    # One ranking for all (nobody has bought anything to leave out), by interest.
    top = _query(warehouse, "select distinct product_id from ml.recommendations where rank = 1")
    assert len(top) == 1
    # No holdout customer to judge on: said in words, not "recall@10 model nan".
    assert "nan" not in result.summary
    assert result.summary.endswith("holdout to evaluate on")


def test_interactions_are_read_in_one_order(small_warehouse: Path) -> None:
    """Sums over interactions follow their order, and a parallel DuckDB scan has none: the
    stage reads them sorted, so the same warehouse gives the same scores to the last bit."""
    import numpy as np

    from ml.recommendations.data import load_inputs

    inter = load_inputs(small_warehouse, AS_OF).interactions
    keys = np.lexsort((inter.age_days, inter.product, inter.customer))
    assert len(inter.customer) > 1000
    assert np.array_equal(keys, np.arange(len(keys)))


def test_a_reseller_does_not_make_the_best_sellers(small_warehouse: Path) -> None:
    """One account with thousands of orders of a few products (a reseller, a B2B buyer)
    beside 3000 ordinary customers: counting purchases, its five products were every
    customer's best sellers (the big-shop night: 500k lists of a reseller's 50 products).
    Best sellers count buyers: each customer once per product."""
    con = duckdb.connect(str(small_warehouse))
    try:
        con.execute(
            """
            insert into marts.customer_product_daily by name
            select 'reseller' as customer_id, 'r' || p as product_id,
                'cat00' as product_category, cast(? as date) - cast(d as integer) as activity_date,
                0::bigint as product_views, 0::bigint as cart_adds, 400::bigint as purchases,
                4000.0::decimal(18, 2) as revenue, current_timestamp::timestamp as _loaded_at
            from range(5) t(p), range(30) s(d)
            """,
            [AS_OF],
        )
        con.execute(
            "insert into marts.customer_features by name "
            "select 'reseller' as customer_id, cast(? as date) as as_of_date",
            [AS_OF],
        )
    finally:
        con.close()
    run_recommendations(_settings(small_warehouse, holdout_days=0), AS_OF)
    picked = _query(
        small_warehouse,
        "select count(*) from ml.recommendations where product_id like 'r%' and rank <= 10",
    )
    assert picked == [(0,)]


def _add_crawler(warehouse: Path) -> None:
    """A logged-in crawler (customer c0000000) viewing 20,000 products of its own, once
    each, 20 days before the as-of date."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            """
            insert into marts.customer_product_daily by name
            select 'c0000000' as customer_id, 'crawled' || lpad(cast(p as varchar), 6, '0')
                as product_id, 'cat00' as product_category,
                cast(? as date) - 20 as activity_date, 1::bigint as product_views,
                0::bigint as cart_adds, 0::bigint as purchases, 0::decimal(18, 2) as revenue,
                current_timestamp::timestamp as _loaded_at
            from range(20000) t(p)
            """,
            [AS_OF],
        )
    finally:
        con.close()


def test_a_crawlers_products_are_no_collaborative_candidates(small_warehouse: Path) -> None:
    """A logged-in crawler viewing 20,000 products in a day beside 3000 customers and 300
    products: every warm customer was scored on all 20,300 products (a 200k-product crawl
    made the stage ~100x slower). Products with a single customer co-occur with nothing and
    are left out of the collaborative scoring; the model is still published."""
    _add_crawler(small_warehouse)
    result = run_recommendations(_settings(small_warehouse), AS_OF)
    assert result.details["published"] == "model", result.summary
    assert result.details["collaborative_candidates"] == 300
    params = _query(
        small_warehouse,
        "select params->>'collaborative_candidates', params->>'products' from ml.model_runs",
    )
    assert params == [("300", "20300")]
    picked = _query(
        small_warehouse,
        "select count(*) from ml.recommendations "
        "where product_id like 'crawled%' and source = 'collaborative'",
    )
    assert picked == [(0,)]


def test_a_model_judged_on_a_handful_of_customers_is_not_published(
    small_warehouse: Path,
) -> None:
    """A shop where only a few customers buy: the gate compared recalls over the one to
    three customers who bought something new in the holdout (0.5 against 0.0) and published
    the model on that. Below min_evaluated_customers popularity is published, and the
    warning gives the count and the setting."""
    con = duckdb.connect(str(small_warehouse))
    try:
        con.execute(
            """
            update marts.customer_product_daily set purchases = 0, revenue = 0
            where customer_id not in (
                select distinct customer_id from marts.customer_product_daily
                where purchases > 0 order by customer_id limit 30
            )
            """
        )
    finally:
        con.close()
    result = run_recommendations(_settings(small_warehouse), AS_OF)
    judged = result.details["evaluated_customers"]
    assert 0 < judged < 50
    assert result.details["published"] == "popularity"
    expected = (
        f"only {judged} customers to judge the model on (buyers of new products in the "
        "holdout after 2026-06-16; the other half chose the number of factors), fewer than "
        "[recommendations] min_evaluated_customers = 50: too few to show it beats best "
        "sellers; popularity published instead of the model"
    )
    assert expected in result.warnings
    assert _query(small_warehouse, "select status, message from ml.model_runs") == [
        ("not_published", expected)
    ]
    # The same evidence with the minimum lowered: the model wins on those few customers.
    lowered = run_recommendations(_settings(small_warehouse, min_evaluated_customers=1), AS_OF)
    assert lowered.details["published"] == "model", lowered.summary


def test_a_one_product_shop_is_told_its_catalogue_is_the_reason(tmp_path: Path) -> None:
    """A shop selling a single product: every list is shorter than 10 and its buyers get
    none. The warning named best sellers and collaborative picks; it names the catalogue."""
    from ml.recommendations.synthetic import simulate, write_marts

    warehouse = tmp_path / "w.duckdb"
    interactions, customers = simulate(300, 50, n_categories=2, seed=1)
    write_marts(warehouse, interactions.assign(product=0, category=0), customers, AS_OF)
    result = run_recommendations(_settings(warehouse), AS_OF)
    buyers, listed, customers_count = _query(
        warehouse,
        "select (select count(distinct customer_id) from marts.customer_product_daily "
        "where purchases > 0), (select count(distinct customer_id) from ml.recommendations), "
        "(select count(*) from marts.customer_features)",
    )[0]
    assert 0 < buyers < customers_count and listed == customers_count - buyers
    assert (
        f"{customers_count} customers got fewer than 10 recommendations, {buyers} of them none: "
        "marts.customer_product_daily holds only 1 product(s), fewer than [recommendations] "
        "top_n = 10, and a product a customer bought is not recommended again unless repeatable"
    ) in result.warnings


def test_a_crawler_leaves_every_other_customers_list_as_it_was(
    small_warehouse: Path, tmp_path: Path
) -> None:
    """The factors are fitted on the products at least two customers touched: a crawler's
    20,000 single-viewer products entered every customer's normal equations (the Gram
    matrix of the product factors), and changed the holdout recall, the factor count chosen
    and the lists of customers who never saw them. Now the night is the one without it."""
    import shutil

    clean = tmp_path / "clean" / "segmint.duckdb"
    clean.parent.mkdir()
    shutil.copy(small_warehouse, clean)
    _add_crawler(small_warehouse)
    with_crawler = run_recommendations(_settings(small_warehouse), AS_OF)
    without = run_recommendations(_settings(clean), AS_OF)

    # Coverage counts the crawled products in its denominator; every other metric is equal.
    def judged(result) -> dict:
        return {
            (scorer, metric): value
            for scorer, values in result.details["holdout"].items()
            for metric, value in values.items()
            if not metric.startswith("coverage")
        }

    assert judged(with_crawler) == judged(without)
    assert with_crawler.details["chosen_factors"] == without.details["chosen_factors"]
    lists = (
        "select customer_id, rank, product_id, source from ml.recommendations "
        "where customer_id <> 'c0000000' order by all"
    )
    assert _query(small_warehouse, lists) == _query(clean, lists)


def test_a_product_off_sale_for_months_is_not_recommended(small_warehouse: Path) -> None:
    """The mart keeps every loaded day: the ten products most customers bought, taken off
    sale a year ago (no view since), kept their factors and decayed sales, and were
    recommended to hundreds of customers. Only products someone interacted with in the
    last [recommendations] active_product_days are recommended; the older rows still train."""
    con = duckdb.connect(str(small_warehouse))
    try:
        gone = [
            r[0]
            for r in con.execute(
                "select product_id from marts.customer_product_daily where purchases > 0 "
                "group by product_id order by count(distinct customer_id) desc, product_id "
                "limit 10"
            ).fetchall()
        ]
        con.execute(
            "update marts.customer_product_daily set activity_date = activity_date - 365 "
            "where list_contains(?, product_id)",
            [gone],
        )
    finally:
        con.close()
    listed = (
        "select count(*) from ml.recommendations where as_of_date = ? "
        "and list_contains(?, product_id)"
    )
    no_limit = run_recommendations(_settings(small_warehouse, active_product_days=0), AS_OF)
    assert no_limit.details["published"] == "model"
    assert _query(small_warehouse, listed, [AS_OF, gone])[0][0] > 100

    result = run_recommendations(_settings(small_warehouse), AS_OF)
    assert result.details["published"] == "model"
    assert _query(small_warehouse, listed, [AS_OF, gone])[0][0] == 0
    rows = _query(
        small_warehouse,
        "select count(*), count(distinct customer_id) from ml.recommendations where as_of_date = ?",
        [AS_OF],
    )[0]
    assert rows == (30000, 3000)

    # A night far past the shop's newest data: no product is active, and the night says so.
    con = duckdb.connect(str(small_warehouse))
    con.execute("update marts.customer_product_daily set activity_date = activity_date - 365")
    con.close()
    far = run_recommendations(_settings(small_warehouse), AS_OF)
    assert any(
        w.startswith("only 0 of 300 products had an interaction in the 90 days up to 2026-06-30")
        for w in far.warnings
    ), far.warnings
    assert far.rows_out == 0


def test_a_renamed_category_gives_its_fans_their_category_picks(small_warehouse: Path) -> None:
    """The shop renamed category cat00 'footwear' 20 days ago: its products' newer rows, and
    its fans' favourite category, carry the new name. A product's category was the one with
    the most events over all history (the old name for months), so the cold fans' category
    picks found no 'footwear' product and they got overall best sellers. A product's
    category is the one of its latest day."""
    con = duckdb.connect(str(small_warehouse))
    try:
        con.execute(
            "update marts.customer_product_daily set product_category = 'footwear' "
            "where product_category = 'cat00' and activity_date > ?",
            [AS_OF - timedelta(days=20)],
        )
        con.execute(
            "update marts.customer_features set favourite_category = 'footwear' "
            "where favourite_category = 'cat00'"
        )
    finally:
        con.close()
    run_recommendations(_settings(small_warehouse), AS_OF)
    fans = _query(
        small_warehouse,
        "select r.source, count(distinct r.customer_id), count(*) from ml.recommendations r "
        "join marts.customer_features f using (customer_id) "
        "where f.favourite_category = 'footwear' and r.source != 'collaborative' "
        "group by 1 order by 1",
    )
    assert [source for source, _, _ in fans] == ["content"], fans
    # Every category pick is a product renamed: none still sold under the old name only.
    renamed = _query(
        small_warehouse,
        "select count(*) from ml.recommendations r join marts.customer_features f "
        "using (customer_id) where f.favourite_category = 'footwear' and r.source = 'content' "
        "and r.product_id not in (select product_id from marts.customer_product_daily "
        "where product_category = 'footwear')",
    )[0][0]
    assert renamed == 0


def test_a_shop_of_eight_products_publishes_the_better_order(tmp_path: Path) -> None:
    """Eight products and ten picks: both lists hold every product a customer can still buy,
    both recalls are 1.000, and the model, whose order is far better, was never published
    ("does not beat popularity 1.0000"). Equal recalls are told apart by MAP@10."""
    from ml.recommendations.synthetic import simulate, write_marts

    warehouse = tmp_path / "w.duckdb"
    interactions, customers = simulate(3000, 8, n_categories=2, seed=3)
    write_marts(warehouse, interactions, customers, AS_OF)
    result = run_recommendations(_settings(warehouse), AS_OF)
    holdout = result.details["holdout"]
    assert holdout["model"]["recall_at_10"] == holdout["popularity"]["recall_at_10"] == 1.0
    assert holdout["model"]["map_at_10"] > holdout["popularity"]["map_at_10"] + 0.1
    assert result.details["published"] == "model", result.details["message"]
    assert "equals popularity's, and its order is better (MAP@10" in result.details["message"]
