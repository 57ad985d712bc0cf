"""Fixtures for the audience tests: a small hand-made warehouse in a tmp DuckDB file.

The tables follow the contracts of docs/tables.md (marts.customers, marts.customer_features,
marts.customer_rule_segments, ml.customer_segments, ml.propensity_scores, marts.orders)
with a dozen customers whose memberships are easy to work out by hand.
"""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from segmint.config import Settings
from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)

CUSTOMERS = """
create table marts.customers (
    customer_id varchar, email varchar, phone varchar, first_name varchar,
    last_name varchar, birth_date date, country varchar, city varchar, postal_code varchar,
    signup_date date, loyalty_tier varchar, email_opt_in boolean, ads_opt_in boolean
);
insert into marts.customers values
    ('C01', ' Anna.Smith@Example.com ', '+1 (415) 555-2671', 'Anna', 'Smith', date '1990-05-01',
     'US', 'Boston', '02118-1234', date '2025-01-01', 'gold', true, true),
    ('C02', 'ben@example.com', '030 1234567', 'Ben', 'Müller', date '1985-02-02',
     'DE', 'Berlin', '10115', date '2025-01-01', null, true, false),
    ('C03', 'chloe@example.com', '07700 900123', 'Chloé', 'Dubois', null,
     'GB', 'London', 'SW1A 1AA', date '2025-01-01', null, false, true),
    ('C04', 'david@example.com', null, 'David', 'de Vries', null,
     'NL', 'Utrecht', '3511 AB', date '2025-01-01', null, true, true),
    ('C05', null, '0612345678', 'Emma', 'Rossi', null,
     'IT', 'Roma', '00100', date '2025-01-01', null, false, false),
    ('C06', 'felix@example.com', null, 'Felix', 'Schmidt', null,
     'DE', 'Hamburg', '20095', date '2025-01-01', null, true, true),
    ('C07', 'grace@example.com', null, 'Grace', 'Brown', null,
     'US', 'Chicago', '60601', date '2025-01-01', null, true, true),
    ('C08', 'hugo@example.com', null, 'Hugo', 'Martin', null,
     'FR', 'Paris', '75001', date '2025-01-01', null, true, true),
    ('C09', 'isabel@example.com', null, 'Isabel', 'García', null,
     'ES', 'Madrid', '28001', date '2025-01-01', null, true, false),
    ('C10', 'jonas@example.com', null, 'Jonas', 'Johansson', null,
     'SE', 'Malmö', '211 20', date '2025-01-01', null, true, true),
    ('C11', 'karin@example.com', null, 'Karin', 'Fischer', null,
     'AT', 'Wien', '1010', date '2025-01-01', null, true, true),
    ('C12', 'liam@example.com', null, 'Liam', 'Taylor', null,
     'GB', 'Leeds', 'LS1 1UR', date '2025-01-01', null, true, true);
"""

# recency_days null = no order. Chosen so each condition type selects a known subset.
FEATURES = """
create table marts.customer_features (
    customer_id varchar, as_of_date date, order_count bigint, revenue_total decimal(18, 2),
    recency_days integer, tenure_days integer, rfm_segment varchar, sessions_30d bigint,
    cart_abandonment_rate_90d double, favourite_category varchar, email_opt_in boolean,
    ads_opt_in boolean
);
insert into marts.customer_features values
    ('C01', date '2026-06-30', 12, 950.00, 5, 500, 'Champions', 9, 0.1, 'electronics', true, true),
    ('C02', date '2026-06-30', 1, 20.00, 200, 400, 'Hibernating', 0, null, 'books', true, false),
    ('C03', date '2026-06-30', 4, 300.00, 75, 300, 'At risk', 2, 0.5, 'fashion', false, true),
    ('C04', date '2026-06-30', 0, 0.00, null, 30, 'No orders', 5, 0.9, null, true, true),
    ('C05', date '2026-06-30', 7, 610.00, 61, 700, 'Loyal', 1, 0.0, 'home', false, false),
    ('C06', date '2026-06-30', 2, 80.00, 90, 200, 'Need attention', 3, 0.3, 'books', true, true),
    ('C07', date '2026-06-30', 9, 720.00, 10, 650, 'Loyal', 8, 0.2, 'electronics', true, true),
    ('C08', date '2026-06-30', 3, 150.00, 120, 365, 'At risk', 0, null, 'sports', true, true),
    ('C09', date '2026-06-30', 5, 400.00, 30, 420, 'Potential loyalists', 4, 0.4, 'home',
     true, false),
    ('C10', date '2026-06-30', 1, 35.00, 15, 20, 'New customers', 6, 0.6, 'toys', true, true),
    ('C11', date '2026-06-30', 6, 500.00, 65, 800, 'Loyal', 2, 0.1, 'food', true, true),
    ('C12', date '2026-06-30', 0, 0.00, null, 10, 'No orders', 1, null, null, true, true);
"""

SEGMENTS = """
create table marts.customer_rule_segments (customer_id varchar, as_of_date date, segment varchar);
insert into marts.customer_rule_segments values
    ('C01', date '2026-06-30', 'vip'), ('C07', date '2026-06-30', 'vip'),
    ('C03', date '2026-06-30', 'lapsing'), ('C05', date '2026-06-30', 'lapsing'),
    ('C08', date '2026-06-30', 'lapsing'), ('C11', date '2026-06-30', 'lapsing'),
    ('C06', date '2026-06-30', 'complainer'),
    ('C12', date '2026-06-29', 'newcomer');
create table ml.customer_segments (
    customer_id varchar, as_of_date date, segment_id integer, segment_name varchar,
    distance double, run_id varchar
);
insert into ml.customer_segments
select customer_id, date '2026-06-30',
    case when customer_id in ('C01', 'C07', 'C11') then 1 else 2 end,
    case when customer_id in ('C01', 'C07', 'C11') then 'Big spenders' else 'Browsers' end,
    0.5, 'seg-run'
from marts.customers;
create table ml.propensity_scores (
    customer_id varchar, as_of_date date, model_name varchar, score double, decile integer,
    run_id varchar
);
insert into ml.propensity_scores
select customer_id, date '2026-06-30', 'purchase',
    s, cast(ceil(s * 10) as integer), 'prop-run'
from (
    select customer_id, (13 - cast(substr(customer_id, 2) as integer)) / 12.0 - 0.01 as s
    from marts.customers
);
"""


def make_warehouse(path: Path, *, with_ml: bool = True) -> Path:
    con = connect(path)
    try:
        con.execute(CUSTOMERS)
        con.execute(FEATURES)
        con.execute(SEGMENTS)
        if not with_ml:
            con.execute("drop table ml.propensity_scores")
            con.execute("drop table ml.customer_segments")
    finally:
        con.close()
    return path


def update_customers(settings: Settings, changes: dict[str, dict[str, object]]) -> None:
    """Change customers of ``marts.customers`` as their CRM records would change:
    ``{customer_id: {column: value}}``, each value bound as a parameter (None is null)."""
    con = connect(settings.warehouse)
    try:
        for customer_id, values in changes.items():
            assignments = ", ".join(f'"{column}" = ?' for column in values)
            con.execute(
                f"update marts.customers set {assignments} where customer_id = ?",
                [*values.values(), customer_id],
            )
    finally:
        con.close()


def write_defs(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yml").write_text(textwrap.dedent(text).lstrip())
    return folder


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return make_warehouse(tmp_path / "wh" / "segmint.duckdb")


@pytest.fixture
def settings(tmp_path: Path, warehouse: Path) -> Settings:
    return Settings(
        warehouse=warehouse,
        audiences=tmp_path / "audiences",
        output=tmp_path / "output",
        landing=tmp_path / "landing",
    )


def members(settings: Settings, audience: str, as_of: date = AS_OF, group: str | None = None):
    con = connect(settings.warehouse, read_only=True)
    try:
        where = ' and "group" = ?' if group else ""
        params = [audience, as_of] + ([group] if group else [])
        rows = con.execute(
            "select customer_id from audiences.members where audience = ? and as_of_date = ?"
            f"{where} order by 1",
            params,
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


@pytest.fixture
def defs_folder(settings: Settings):
    """write_defs bound to the settings' definitions folder."""

    def write(**files: str) -> Path:
        return write_defs(settings.audiences, **files)

    return write


@pytest.fixture
def scalar():
    """The one value a query of the warehouse returns."""

    def query(settings: Settings, sql: str, params: list | None = None):
        con = connect(settings.warehouse, read_only=True)
        try:
            return con.execute(sql, params or []).fetchone()[0]
        finally:
            con.close()

    return query


@pytest.fixture
def get_members():
    return members


BIG = 4000


@pytest.fixture
def big_settings(tmp_path: Path) -> Settings:
    """4000 synthetic customers (all consenting), features for AS_OF, and orders in July.

    Orders: target-like and holdout-like customers are not known in advance, so purchase
    behaviour is a fixed function of the id: every 5th customer orders, revenue varies.
    """
    path = tmp_path / "big" / "segmint.duckdb"
    con = connect(path)
    try:
        con.execute(
            f"""
            create table marts.customers as
            select
                printf('K%05d', i) as customer_id,
                printf('k%d@example.com', i) as email,
                null::varchar as phone, 'Kim' as first_name, 'Lee' as last_name,
                'US' as country, '10001' as postal_code,
                true as email_opt_in, true as ads_opt_in
            from range({BIG}) as t(i);
            create table marts.customer_features as
            select customer_id, date '2026-06-30' as as_of_date,
                cast(substr(customer_id, 2) as integer) % 7 as order_count,
                cast(substr(customer_id, 2) as integer) % 200 as recency_days
            from marts.customers;
            create table marts.orders as
            select
                printf('O%05d', i) as order_id,
                printf('K%05d', i) as customer_id,
                timestamp '2026-07-05 10:00:00' as ordered_at,
                date '2026-07-05' as order_date,
                cast(10 + (i * 37) % 90 as decimal(18, 2)) as revenue,
                'EUR' as currency,
                1 as item_count
            from range({BIG}) as t(i)
            where i % 5 = 0 or i % 7 = 3;
            """
        )
    finally:
        con.close()
    return Settings(warehouse=path, audiences=tmp_path / "big_defs", output=tmp_path / "out")
