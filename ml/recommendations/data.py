"""Reading the recommender's inputs from the warehouse, as integer codes.

Customers are the known customers of ``marts.customer_features`` (the run's snapshot),
numbered in ``customer_id`` order; products are those of ``marts.customer_product_daily`` up to
the as-of date, numbered in ``product_id`` order. Interactions arrive as code arrays straight
from DuckDB (``fetchnumpy``), never as Python rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ml.recommendations.interactions import Interactions, Visits
from segmint.stages import SegmintError
from segmint.warehouse import connect, table_exists

INTERACTIONS = "marts.customer_product_daily"
FEATURES = "marts.customer_features"
VISITORS = "marts.anonymous_product_daily"
SEGMENTS = "ml.customer_segments"

_CODES = """
    with

    customers as (
        select customer_id, cast(row_number() over (order by customer_id) - 1 as integer) as code
        from marts.customer_features
        where as_of_date = $as_of
    ),

    products as (
        select product_id, cast(row_number() over (order by product_id) - 1 as integer) as code
        from (
            select distinct product_id
            from marts.customer_product_daily
            where activity_date <= $as_of
        ) as seen
    )
"""


@dataclass
class Inputs:
    customer_ids: np.ndarray  # object array, index = customer code
    product_ids: np.ndarray  # object array, index = product code
    categories: np.ndarray  # object array, index = category code
    product_category: np.ndarray  # category code per product (-1: unknown)
    favourite: np.ndarray  # customer_features.favourite_category code per customer (-1: none)
    interactions: Interactions
    dropped_rows: int  # interaction rows of customers missing from customer_features
    visits: Visits  # recent days on which visitors who never logged in saw a product


@dataclass
class Segments:
    as_of_date: date
    names: np.ndarray  # object array, index = segment code
    of_customer: np.ndarray  # segment code per customer code (-1: not segmented)


def load_inputs(warehouse: Path, as_of: date, visit_days: int = 0) -> Inputs:
    """Customers, products and the interactions at or before ``as_of``; with ``visit_days``,
    the days of the last ``visit_days`` up to ``as_of`` on which visitors attributed to no
    customer interacted with a product of the catalogue (``marts.anonymous_product_daily``;
    0: not read)."""
    if not Path(warehouse).exists():
        raise SegmintError(f"warehouse {warehouse} does not exist; run ingest and transform first")
    con = connect(warehouse, read_only=True)
    try:
        needed = (INTERACTIONS, FEATURES) + ((VISITORS,) if visit_days > 0 else ())
        missing = [t for t in needed if not table_exists(con, t)]
        if missing:
            raise SegmintError(
                f"{', '.join(missing)} missing in {warehouse}; run `segmint transform` first"
            )
        p = {"as_of": as_of}
        customers = con.execute(
            "select customer_id, favourite_category from marts.customer_features "
            "where as_of_date = $as_of order by customer_id",
            p,
        ).fetchnumpy()
        if len(customers["customer_id"]) == 0:
            raise SegmintError(
                f"{FEATURES} has no rows for {as_of}; run `segmint transform --as-of {as_of}` first"
            )
        products = con.execute(
            f"""{_CODES}
            -- A product's category is the one of its latest day (ties: more events, then
            -- the name): a product the shop moved, or a category it renamed, takes its new
            -- category at once, not when the new name outnumbers years of the old one.
            , category_counts as (
                select
                    product_id,
                    product_category,
                    max(activity_date) as last_date,
                    sum(product_views + cart_adds + purchases) as events
                from marts.customer_product_daily
                where activity_date <= $as_of and product_category is not null
                group by product_id, product_category
            )

            select
                products.product_id,
                arg_max(
                    category_counts.product_category,
                    (
                        category_counts.last_date,
                        category_counts.events,
                        category_counts.product_category
                    )
                ) as product_category
            from products
            left join category_counts on products.product_id = category_counts.product_id
            group by products.code, products.product_id
            order by products.code""",
            p,
        ).fetchnumpy()
        rows = con.execute(
            f"""{_CODES}
            select
                customers.code as customer,
                products.code as product,
                cast(date_diff('day', interactions.activity_date, $as_of) as integer) as age_days,
                cast(interactions.product_views as float) as views,
                cast(interactions.cart_adds as float) as cart_adds,
                cast(interactions.purchases as float) as purchases
            from marts.customer_product_daily as interactions
            inner join customers on interactions.customer_id = customers.customer_id
            inner join products on interactions.product_id = products.product_id
            where interactions.activity_date <= $as_of
            -- One order every run: sums over interactions (weights per product, the sparse
            -- matrix's duplicates) follow input order, and a parallel scan has none.
            order by customer, product, age_days""",
            p,
        ).fetchnumpy()
        visits = {"product": np.zeros(0, np.int32), "age_days": np.zeros(0, np.int32)}
        if visit_days > 0:
            visits = con.execute(
                f"""{_CODES}
                select
                    products.code as product,
                    cast(date_diff('day', visited.activity_date, $as_of) as integer) as age_days
                from marts.anonymous_product_daily as visited
                inner join products on visited.product_id = products.product_id
                where
                    visited.activity_date <= $as_of
                    and visited.activity_date > $as_of - cast($days as integer)
                order by product, age_days""",
                {**p, "days": visit_days},
            ).fetchnumpy()
        total = con.execute(
            "select count(*) from marts.customer_product_daily where activity_date <= $as_of", p
        ).fetchone()[0]
    finally:
        con.close()

    product_category = _as_object(products["product_category"])
    favourite = _as_object(customers["favourite_category"])
    known = _vocabulary(np.concatenate([product_category, favourite]))
    inter = Interactions(
        customer=np.asarray(rows["customer"], dtype=np.int32),
        product=np.asarray(rows["product"], dtype=np.int32),
        age_days=np.asarray(rows["age_days"], dtype=np.int32),
        views=np.asarray(rows["views"], dtype=np.float32),
        cart_adds=np.asarray(rows["cart_adds"], dtype=np.float32),
        purchases=np.asarray(rows["purchases"], dtype=np.float32),
    )
    return Inputs(
        customer_ids=_as_object(customers["customer_id"]),
        product_ids=_as_object(products["product_id"]),
        categories=known,
        product_category=codes_of(product_category, known),
        favourite=codes_of(favourite, known),
        interactions=inter,
        dropped_rows=int(total) - len(inter),
        visits=Visits(
            product=np.asarray(visits["product"], dtype=np.int32),
            age_days=np.asarray(visits["age_days"], dtype=np.int32),
        ),
    )


def load_segments(warehouse: Path, on_or_before: date, customer_ids: np.ndarray) -> Segments | None:
    """The newest ``ml.customer_segments`` snapshot at or before the date (None: none)."""
    con = connect(warehouse, read_only=True)
    try:
        if not table_exists(con, SEGMENTS):
            return None
        row = con.execute(
            "select max(as_of_date) from ml.customer_segments where as_of_date <= ?",
            [on_or_before],
        ).fetchone()
        if row is None or row[0] is None:
            return None
        got = con.execute(
            "select customer_id, segment_name from ml.customer_segments where as_of_date = ?",
            [row[0]],
        ).fetchnumpy()
    finally:
        con.close()
    ids = _as_object(got["customer_id"])
    names_of = _as_object(got["segment_name"])
    names = _vocabulary(names_of)
    of_customer = np.full(len(customer_ids), -1, dtype=np.int32)
    pos = np.searchsorted(customer_ids, ids)
    pos_ok = np.minimum(pos, max(len(customer_ids) - 1, 0))
    found = (pos < len(customer_ids)) & (customer_ids[pos_ok] == ids)
    of_customer[pos[found]] = codes_of(names_of[found], names)
    return Segments(row[0], names, of_customer)


def _as_object(values) -> np.ndarray:
    """A fetchnumpy column (possibly masked for NULLs) as an object array with None."""
    if isinstance(values, np.ma.MaskedArray):
        out = values.data.astype(object)
        out[np.ma.getmaskarray(values)] = None
        return out
    return np.asarray(values, dtype=object)


def _vocabulary(values: np.ndarray) -> np.ndarray:
    """Sorted distinct non-null values."""
    present = values[pd.notna(values)]
    return np.sort(pd.unique(present.astype(str))).astype(object)


def codes_of(values: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Code of each value in the sorted ``vocabulary`` (-1 for None or unknown values)."""
    out = np.full(len(values), -1, dtype=np.int32)
    if len(vocabulary) == 0 or len(values) == 0:
        return out
    is_str = pd.notna(values)
    strings = values[is_str].astype(str)
    vocab = vocabulary.astype(str)
    pos = np.searchsorted(vocab, strings)
    pos_ok = np.minimum(pos, len(vocab) - 1)
    hit = (pos < len(vocab)) & (vocab[pos_ok] == strings)
    idx = np.flatnonzero(is_str)
    out[idx[hit]] = pos[hit]
    return out
