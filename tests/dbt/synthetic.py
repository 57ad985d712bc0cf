"""A synthetic raw.events / raw.customers data set made in DuckDB SQL (no Python loops).

Used by the dbt tests and ``bench/bench_transform.py`` while being independent of the real
generator: it exercises the contract's corners on purpose (anonymous browsing before login,
anonymous ids shared by two customers, sessions without session_id, repeated purchase
events, e-mail events, CRM record versions, events without any identity).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb

EVENTS_PER_SESSION = 8  # upper bound; the mean is about 5.5
# Purchases are paid in this currency (other events carry none): warehouses of these rows
# report in it (TransformSettings.reporting_currency), so revenue needs no conversion.
CURRENCY = "EUR"


def insert_raw(
    con: duckdb.DuckDBPyConnection,
    customers: int,
    sessions: int,
    start: date,
    end: date,
    seed: int = 1,
    loaded_at: datetime | None = None,
    with_customers: bool = True,
) -> None:
    """Insert synthetic rows into raw.events and raw.customers (tables must exist).

    Events fall between ``start`` and the end of ``end`` (UTC). Each row's ``_loaded_at`` is
    ``loaded_at`` (default: its partition date + 1 day 02:00), ``_partition_date`` its
    event date, ``_source_file`` events/dt=<date>/part-0.jsonl.
    """
    span_s = int((end - start).days + 1) * 86400 - 3 * 3600
    start_ts = datetime.combine(start, datetime.min.time())
    loaded = f"TIMESTAMP '{loaded_at.isoformat(sep=' ')}'" if loaded_at else None
    loaded_expr = loaded or "CAST(event_ts AS DATE) + INTERVAL 1 DAY + INTERVAL 2 HOUR"
    con.execute("SET enable_progress_bar = false")
    con.execute(
        "CREATE OR REPLACE TEMP MACRO hb(a, b, c := 0) AS CAST(hash(a, b, c) >> 1 AS BIGINT)"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE syn_sessions AS
        SELECT
            s AS n,
            hb(s, {seed}, 'c') % {customers} AS cust,
            hb(s, {seed}, 'k') % 100 AS kind,       -- <8: anonymous visitor; <55: logs in
            TIMESTAMP '{start_ts.isoformat(sep=" ")}'
                + to_seconds(CAST(hb(s, {seed}, 't') % {span_s} AS BIGINT)) AS started,
            1 + hb(s, {seed}, 'n') % {EVENTS_PER_SESSION} AS n_events,
            hb(s, {seed}, 'i') % 10 < 7 AS has_session_id,
            hb(s, {seed}, 'p') % 100 < 18 AS buys,
            (['desktop', 'mobile', 'tablet'])[1 + hb(s, {seed}, 'd') % 3] AS device,
            (['cpc', 'email', 'social', NULL, NULL])[1 + hb(s, {seed}, 'u') % 5] AS medium
        FROM range({sessions}) t(s)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE syn_events AS
        WITH steps AS (
            SELECT s.*, i,
                started + to_seconds(CAST(i * (30 + hb(n, i, {seed}) % 600) AS BIGINT)) AS ts
            FROM syn_sessions s, range(8) r(i)
            WHERE i < n_events
        )
        SELECT
            'e' || {seed} || '-' || n || '-' || i AS event_id,
            CASE
                WHEN buys AND i = n_events - 1 THEN 'purchase'
                WHEN i = 1 AND kind >= 8 AND kind < 55 THEN 'login'
                ELSE (['page_view', 'page_view', 'product_view', 'search', 'add_to_cart',
                       'page_view', 'product_view', 'remove_from_cart'])[1 + hb(n, i, 'y') % 8]
            END AS event_type,
            ts AS event_ts,
            CASE
                WHEN kind < 8 THEN NULL
                WHEN kind < 55 AND i = 0 THEN NULL     -- browses anonymously, then logs in
                ELSE 'C' || lpad(CAST(cust AS VARCHAR), 6, '0')
            END AS customer_id,
            CASE
                WHEN kind < 8 THEN 'V' || (n % {max(customers // 3, 1)})
                WHEN kind >= 95 THEN NULL               -- logged-in app without cookie
                WHEN cust % 50 = 7 THEN 'A' || lpad(CAST(cust - 1 AS VARCHAR), 6, '0')
                ELSE 'A' || lpad(CAST(cust AS VARCHAR), 6, '0')
            END AS anonymous_id,
            CASE WHEN has_session_id THEN 'S' || {seed} || '-' || n END AS session_id,
            '/p/' || (hb(n, i) % 50) AS page_url,
            (['home', 'category', 'product', 'content', 'blog'])[1 + hb(n, i, 'g') % 5]
                AS page_type,
            CASE WHEN i = 0 AND hb(n, 'r') % 3 = 0 THEN 'https://www.google.com/' END
                AS referrer,
            'P' || (hb(n, i, 'q') % 40) AS product_id,
            (['Shoes', 'Books', 'Garden', 'Toys', ' Kitchen '])[1 + hb(cust, i, 'x') % 5]
                AS product_category,
            CAST(5 + hb(n, i, 'v') % 200 AS DECIMAL(18, 2)) AS price,
            CAST(1 + hb(n, i, 'w') % 3 AS INTEGER) AS quantity,
            NULL AS search_query,
            device AS device_type,
            (['de', 'FR', ' nl'])[1 + cust % 3] AS country,
            CASE WHEN medium IS NOT NULL THEN 'src' END AS utm_source,
            medium AS utm_medium,
            NULL AS utm_campaign,
            CAST(hb(n, i, 'o') % 120 AS DOUBLE) AS time_on_page_s,
            0.5 AS scroll_depth,
            CASE WHEN buys AND i = n_events - 1 THEN 'O' || {seed} || '-' || n END AS order_id,
            CASE WHEN buys AND i = n_events - 1
                THEN CAST(10 + hb(n, 'm') % 40000 / 100.0 AS DECIMAL(18, 2)) END AS revenue,
            CASE WHEN buys AND i = n_events - 1 THEN '{CURRENCY}' END AS currency
        FROM steps
        """
    )
    # Repeated purchase events (same order, sent again later) and e-mail events.
    con.execute(
        f"""
        INSERT INTO syn_events
        SELECT event_id || '-dup', event_type, event_ts + INTERVAL 5 MINUTE, customer_id,
            anonymous_id, session_id, page_url, page_type, referrer, product_id,
            product_category, price, quantity, search_query, device_type, country, utm_source,
            utm_medium, utm_campaign, time_on_page_s, scroll_depth, order_id,
            revenue + 1, currency
        FROM syn_events
        WHERE event_type = 'purchase' AND hb(event_id, 'dup') % 20 = 0
          AND event_ts + INTERVAL 5 MINUTE < TIMESTAMP '{end + timedelta(days=1)}';
        INSERT INTO syn_events
        SELECT 'm' || {seed} || '-' || n,
            CASE WHEN hb(n, 'mc') % 3 = 0 THEN 'email_click' ELSE 'email_open' END,
            started + INTERVAL 1 HOUR, 'C' || lpad(CAST(cust AS VARCHAR), 6, '0'), NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'crm', 'email', NULL,
            NULL, NULL, NULL, NULL, NULL
        FROM syn_sessions
        WHERE kind >= 8 AND hb(n, 'mail') % 4 = 0
          AND started + INTERVAL 1 HOUR < TIMESTAMP '{end + timedelta(days=1)}';
        """
    )
    con.execute(
        f"""
        INSERT INTO raw.events
        SELECT *,
            'events/dt=' || CAST(CAST(event_ts AS DATE) AS VARCHAR) || '/part-0.jsonl',
            row_number() OVER (PARTITION BY CAST(event_ts AS DATE) ORDER BY event_id),
            CAST(event_ts AS DATE), NULL, {loaded_expr}
        FROM syn_events
        ORDER BY event_ts
        """
    )
    if not with_customers:
        con.execute("DROP TABLE syn_events; DROP TABLE syn_sessions")
        return
    # Two CRM versions for a third of the customers; the later one changes consent.
    con.execute(
        f"""
        INSERT INTO raw.customers
        SELECT
            'C' || lpad(CAST(c AS VARCHAR), 6, '0'),
            TIMESTAMP '{start_ts.isoformat(sep=" ")}' + to_seconds(CAST(c % 7200 AS BIGINT)),
            ' User' || c || '@Example.COM ', '+4917' || c, 'First' || c, 'Last' || c,
            DATE '1980-01-01' + CAST(c % 9000 AS INTEGER), 'f', 'de', 'Berlin', '10115',
            DATE '{start}' - CAST(c % 400 AS INTEGER), 'silver', c % 2 = 0, c % 3 = 0,
            'crm/dt={start}/customers.csv', c + 1, DATE '{start}', NULL,
            TIMESTAMP '{start_ts.isoformat(sep=" ")}'
        FROM range({customers}) t(c)
        WHERE c % 10 <> 9;                       -- some event customers have no CRM record
        INSERT INTO raw.customers
        SELECT
            'C' || lpad(CAST(c AS VARCHAR), 6, '0'),
            TIMESTAMP '{start_ts.isoformat(sep=" ")}' + INTERVAL 1 DAY,
            'user' || c || '@example.com', NULL, 'First' || c, 'Last' || c,
            NULL, 'f', 'de', 'Berlin', '10115',
            DATE '{start}' - CAST(c % 400 AS INTEGER), 'gold', c % 2 = 1, true,
            'crm/dt={start + timedelta(days=1)}/customers.csv', c + 1,
            DATE '{start}' + 1, NULL, TIMESTAMP '{start_ts.isoformat(sep=" ")}'
        FROM range({customers}) t(c)
        WHERE c % 3 = 0 AND c % 10 <> 9
        """
    )
    con.execute("DROP TABLE syn_events; DROP TABLE syn_sessions")
