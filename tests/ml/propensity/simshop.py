"""A small simulated shop written straight into the marts the score stage reads.

``marts.customer_daily_activity`` comes from a vectorised simulation; every
``marts.customer_feature_history`` snapshot is then computed from it in SQL using only the
activity at or before the snapshot date (the contract's columns and windows), so the tables
have the same shape and point-in-time semantics as the dbt marts.

Customers have a hidden daily *intent* state (a Markov chain): intent raises sessions and cart
adds now and purchases over the following weeks, and some customers leave for good. Recent
browsing therefore predicts purchases better than purchase recency or a BG/NBD model, which
only see past purchases: a model with the browsing features should beat both baselines.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)
DAYS = 200


def simulate_activity(n_customers: int, days: int, end: date, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days - 1)
    visit_rate = rng.gamma(1.2, 0.08, n_customers)
    conversion = rng.beta(2.0, 6.0, n_customers)
    join_day = np.where(rng.random(n_customers) < 0.7, 0, rng.integers(0, days, n_customers))
    leave_day = np.where(
        rng.random(n_customers) < 0.35, rng.integers(0, days * 2, n_customers), days * 10
    )
    to_intent = rng.uniform(0.005, 0.06, n_customers)
    intent = np.zeros(n_customers, dtype=bool)
    pending = np.zeros(n_customers)  # purchase pressure carried over from intent episodes
    frames = []
    for day in range(days):
        alive = (day >= join_day) & (day < leave_day)
        flip = rng.random(n_customers)
        intent = np.where(intent, flip > 0.12, flip < to_intent) & alive
        sessions = rng.poisson(visit_rate * (1 + 6 * intent)) * alive
        cart_adds = rng.binomial(sessions, np.where(intent, 0.5, 0.05))
        pending = pending * 0.93 + cart_adds * conversion
        orders = (rng.random(n_customers) < 1 - np.exp(-0.15 * pending)) & alive
        pending = np.where(orders, pending * 0.3, pending)
        email_opens = rng.poisson(0.05 * alive)
        keep = (sessions > 0) | orders | (email_opens > 0)
        if not keep.any():
            continue
        idx = np.flatnonzero(keep)
        s = sessions[idx]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"c{i:06d}" for i in idx],
                    "activity_date": start + timedelta(days=day),
                    "sessions": s,
                    "page_views": s * 3 + rng.poisson(1.0, len(idx)) * (s > 0),
                    "product_views": s * 2,
                    "searches": rng.binomial(s, 0.3),
                    "cart_adds": cart_adds[idx],
                    "orders": orders[idx].astype(int),
                    "revenue": np.round(orders[idx] * rng.lognormal(3.5, 0.5, len(idx)), 2),
                    "email_opens": email_opens[idx],
                    "email_clicks": rng.binomial(email_opens[idx], 0.3),
                    "session_duration_s": s * rng.uniform(30, 300, len(idx)),
                    "mobile_sessions": rng.binomial(s, 0.5),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


ACTIVITY_DDL = """
create or replace table marts.customer_daily_activity (
    customer_id varchar, activity_date date, sessions bigint, page_views bigint,
    product_views bigint, searches bigint, cart_adds bigint, orders bigint,
    revenue decimal(18, 2), email_opens bigint, email_clicks bigint,
    session_duration_s double, mobile_sessions bigint
)
"""


def _window(column: str, days: int) -> str:
    return f"coalesce(sum({column}) filter (where a.activity_date > s.as_of_date - {days}), 0)"


SNAPSHOT_SQL = f"""
insert into marts.customer_feature_history
with s as (select cast(? as date) as as_of_date),
a as (
    select d.* from marts.customer_daily_activity as d, s where d.activity_date <= s.as_of_date
),
base as (
    select
        a.customer_id,
        s.as_of_date,
        cast(min(a.activity_date) as timestamp) as first_seen_at,
        cast(min(a.activity_date) filter (where a.orders > 0) as timestamp) as first_order_at,
        cast(max(a.activity_date) filter (where a.orders > 0) as timestamp) as last_order_at,
        sum(a.orders) as order_count,
        sum(a.revenue) as revenue_total,
        {_window("a.orders", 30)} as orders_30d,
        {_window("a.orders", 90)} as orders_90d,
        {_window("a.revenue", 30)} as revenue_30d,
        {_window("a.revenue", 90)} as revenue_90d,
        {_window("a.sessions", 7)} as sessions_7d,
        {_window("a.sessions", 30)} as sessions_30d,
        {_window("a.sessions", 90)} as sessions_90d,
        {_window("a.page_views", 7)} as page_views_7d,
        {_window("a.page_views", 30)} as page_views_30d,
        {_window("a.page_views", 90)} as page_views_90d,
        {_window("a.product_views", 7)} as product_views_7d,
        {_window("a.product_views", 30)} as product_views_30d,
        {_window("a.product_views", 90)} as product_views_90d,
        {_window("a.searches", 7)} as searches_7d,
        {_window("a.searches", 30)} as searches_30d,
        {_window("a.searches", 90)} as searches_90d,
        {_window("a.cart_adds", 7)} as cart_adds_7d,
        {_window("a.cart_adds", 30)} as cart_adds_30d,
        {_window("a.cart_adds", 90)} as cart_adds_90d,
        {_window("a.email_opens", 30)} as email_opens_30d,
        {_window("a.email_clicks", 30)} as email_clicks_30d,
        {_window("a.email_opens", 90)} as email_opens_90d,
        {_window("a.email_clicks", 90)} as email_clicks_90d,
        {_window("a.session_duration_s", 30)} as duration_30d,
        {_window("a.mobile_sessions", 90)} as mobile_90d,
        max(a.activity_date) filter (where a.sessions > 0) as last_visit_date
    from a, s
    group by a.customer_id, s.as_of_date
),
scored as (
    select
        *,
        case when order_count > 0 then ntile(5) over (
            partition by order_count > 0 order by last_order_at, customer_id) end as r_score,
        case when order_count > 0 then ntile(5) over (
            partition by order_count > 0 order by order_count, customer_id) end as f_score,
        case when order_count > 0 then ntile(5) over (
            partition by order_count > 0 order by revenue_total, customer_id) end as m_score
    from base
)
select
    customer_id,
    as_of_date,
    first_seen_at,
    first_order_at,
    last_order_at,
    order_count,
    cast(revenue_total as decimal(18, 2)) as revenue_total,
    cast(revenue_total / nullif(order_count, 0) as decimal(18, 2)) as avg_order_value,
    cast(date_diff('day', cast(last_order_at as date), as_of_date) as integer) as recency_days,
    cast(date_diff('day', cast(first_seen_at as date), as_of_date) as integer) as tenure_days,
    r_score, f_score, m_score,
    case
        when order_count = 0 then 'No orders'
        when r_score >= 4 and f_score >= 4 then 'Champions'
        when r_score <= 2 then 'At risk'
        else 'Others'
    end as rfm_segment,
    orders_30d, orders_90d,
    cast(revenue_30d as decimal(18, 2)) as revenue_30d,
    cast(revenue_90d as decimal(18, 2)) as revenue_90d,
    sessions_7d, sessions_30d, sessions_90d,
    page_views_7d, page_views_30d, page_views_90d,
    product_views_7d, product_views_30d, product_views_90d,
    searches_7d, searches_30d, searches_90d,
    cart_adds_7d, cart_adds_30d, cart_adds_90d,
    cast(null as double) as cart_abandonment_rate_90d,
    duration_30d / nullif(sessions_30d, 0) as avg_session_duration_s_30d,
    page_views_30d / nullif(sessions_30d, 0) as pages_per_session_30d,
    email_opens_30d, email_clicks_30d, email_opens_90d, email_clicks_90d,
    cast(date_diff('day', last_visit_date, as_of_date) as integer) as days_since_last_visit,
    case when hash(customer_id) % 3 = 0 then 'shoes' when hash(customer_id) % 3 = 1
        then 'bags' end as favourite_category,
    mobile_90d / nullif(sessions_90d, 0) as mobile_session_share_90d,
    hash(customer_id) % 2 = 0 as email_opt_in,
    hash(customer_id) % 5 = 0 as ads_opt_in
from scored
"""


def build_snapshots(warehouse: Path, dates: list[date]) -> None:
    """(Re)compute ``marts.customer_feature_history`` for ``dates`` from the activity table."""
    con = connect(warehouse)
    try:
        con.execute(
            "create table if not exists marts.customer_feature_history as "
            + SNAPSHOT_SQL.split("insert into marts.customer_feature_history", 1)[1]
            + " limit 0",
            [dates[0]],
        )
        for d in dates:
            con.execute("delete from marts.customer_feature_history where as_of_date = ?", [d])
            con.execute(SNAPSHOT_SQL, [d])
    finally:
        con.close()


def write_activity(warehouse: Path, activity: pd.DataFrame) -> None:
    con = connect(warehouse)
    try:
        con.execute(ACTIVITY_DDL)
        con.register("activity_frame", activity)
        con.execute("insert into marts.customer_daily_activity select * from activity_frame")
        con.unregister("activity_frame")
    finally:
        con.close()


def snapshot_dates(as_of: date, horizons: tuple[int, ...] = (30,), cutoffs: int = 3) -> list[date]:
    dates = {as_of}
    for h in horizons:
        dates |= {as_of - timedelta(days=h * i) for i in range(1, cutoffs + 1)}
    return sorted(dates)


def build_warehouse(
    warehouse: Path, n_customers: int = 6000, days: int = DAYS, seed: int = 3
) -> pd.DataFrame:
    activity = simulate_activity(n_customers, days, AS_OF, seed)
    write_activity(warehouse, activity)
    build_snapshots(warehouse, snapshot_dates(AS_OF))
    return activity


def add_never_active_crowd(warehouse: Path, customers: int) -> None:
    """CRM records that never visited nor ordered (newsletter sign-ups) in every snapshot."""
    con = connect(warehouse)
    try:
        con.execute(
            f"""
            insert into marts.customer_feature_history by name
            select 'n' || lpad(cast(i as varchar), 6, '0') as customer_id, d.as_of_date,
                timestamp '2025-06-01' as first_seen_at,
                date_diff('day', date '2025-06-01', d.as_of_date) as tenure_days,
                0 as order_count, 0 as sessions_90d
            from range({int(customers)}) t(i),
                (select distinct as_of_date from marts.customer_feature_history) as d
            """
        )
    finally:
        con.close()
