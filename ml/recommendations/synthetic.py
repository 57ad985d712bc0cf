"""Synthetic shop interactions with known taste, for tests and the benchmark.

Products belong to categories and, within a category, to a price tier; every customer has
one or two favourite categories and a tier. Views fall mostly on the customer's own
categories and tier (Zipf-popular products first), some cart adds follow views and some
purchases follow cart adds, spread over ``days`` days. Collaborative filtering can learn the
tiers, which category best sellers cannot, so a working model beats popularity.

:func:`write_marts` writes ``marts.customer_product_daily``, an empty
``marts.anonymous_product_daily`` and the columns of
``marts.customer_features`` the stage reads into a DuckDB file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(
    n_customers: int,
    n_products: int,
    *,
    n_categories: int = 20,
    tiers: int = 3,
    events_per_customer: float = 12.0,
    days: int = 90,
    seed: int = 0,
    cold_share: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, customers) as integer codes; :func:`write_marts` names them."""
    rng = np.random.default_rng(seed)
    per_cat = n_products // n_categories
    n_products = per_cat * n_categories
    product_cat = np.repeat(np.arange(n_categories), per_cat)
    product_tier = np.tile(np.arange(per_cat) % tiers, n_categories)
    cat_a = rng.integers(0, n_categories, n_customers)
    cat_b = rng.integers(0, n_categories, n_customers)
    tier = rng.integers(0, tiers, n_customers)
    # Cold customers: at most one product seen.
    cold = rng.random(n_customers) < cold_share
    counts = np.where(
        cold, rng.integers(0, 2, n_customers), 1 + rng.poisson(events_per_customer, n_customers)
    )
    cust = np.repeat(np.arange(n_customers), counts)
    n = len(cust)
    u = rng.random(n)
    category = np.where(
        u < 0.6, cat_a[cust], np.where(u < 0.85, cat_b[cust], rng.integers(0, n_categories, n))
    )
    own_tier = rng.random(n) < 0.8
    in_tier = per_cat // tiers
    rank = np.minimum((in_tier * rng.random(n) ** 2.5).astype(np.int64), in_tier - 1)
    t = np.where(own_tier, tier[cust], rng.integers(0, tiers, n))
    product = category * per_cat + np.minimum(rank * tiers + t, per_cat - 1)
    day = rng.integers(0, days, n)
    cart = rng.random(n) < 0.3
    bought = cart & (rng.random(n) < 0.5)
    frame = pd.DataFrame(
        {
            "customer": cust.astype(np.int32),
            "product": product.astype(np.int32),
            "category": product_cat[product].astype(np.int32),
            "days_ago": day.astype(np.int32),
            "product_views": np.ones(n, dtype=np.int64),
            "cart_adds": cart.astype(np.int64),
            "purchases": bought.astype(np.int64),
            "revenue": np.where(bought, 20.0 + 10 * product_tier[product], 0.0),
        }
    )
    customers = pd.DataFrame(
        {
            "customer": np.arange(n_customers, dtype=np.int32),
            # Customers who never looked at a product have no favourite category.
            "favourite": np.where(counts > 0, cat_a, -1).astype(np.int32),
        }
    )
    return frame, customers


def write_marts(
    warehouse: Path, interactions: pd.DataFrame, customers: pd.DataFrame, as_of: date
) -> None:
    """Create the marts the recommend stage reads (replacing them)."""
    from segmint.warehouse import connect

    con = connect(warehouse)
    try:
        con.execute("create schema if not exists marts")
        con.register("_interactions", interactions)
        con.register("_customers", customers)
        con.execute(
            """
            create or replace table marts.customer_product_daily as
            select
                'c' || lpad(cast(customer as varchar), 7, '0') as customer_id,
                'p' || lpad(cast(product as varchar), 5, '0') as product_id,
                'cat' || lpad(cast(max(category) as varchar), 2, '0') as product_category,
                cast(? as date) - cast(days_ago as integer) as activity_date,
                sum(product_views)::bigint as product_views,
                sum(cart_adds)::bigint as cart_adds,
                sum(purchases)::bigint as purchases,
                sum(revenue)::decimal(18, 2) as revenue,
                current_timestamp::timestamp as _loaded_at
            from _interactions
            group by customer, product, days_ago
            """,
            [as_of],
        )
        # A synthetic shop has no visitors who never log in.
        con.execute(
            """
            create or replace table marts.anonymous_product_daily (
                product_id varchar not null,
                activity_date date not null,
                product_views bigint not null,
                cart_adds bigint not null,
                purchases bigint not null,
                _loaded_at timestamp
            )
            """
        )
        con.execute(
            """
            create or replace table marts.customer_features as
            select
                'c' || lpad(cast(customer as varchar), 7, '0') as customer_id,
                cast(? as date) as as_of_date,
                case
                    when favourite >= 0 then 'cat' || lpad(cast(favourite as varchar), 2, '0')
                end as favourite_category
            from _customers
            """,
            [as_of],
        )
    finally:
        con.close()
