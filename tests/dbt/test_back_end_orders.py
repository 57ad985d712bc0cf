"""A shop's back end sends the orders, beside a tracker whose events carry a session_id.

Real shops take their orders from the back end (Shopify's orders export, WooCommerce's),
mapped onto the contract with ``[ingest] field_aliases`` and ``event_type_aliases``: such a
record has a customer id and no session id. Through the real ingest and ``dbt build``: the
order counts once (the tracker's purchase carries the same order id) and is no visit of its
own: the customer's sessions are the tracker's, and an order placed without any tracked
visit (by phone, or with the tracker blocked) makes no session. An order the browser sent
for a visitor who never logged in is the customer's the back end names.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.db import fetch
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_jsonl, write_lines

AS_OF = date(2026, 6, 1)

SETTINGS = """
[ingest.field_aliases.events]
event_id = ["Name"]
event_type = ["Financial Status"]
event_ts = ["Created at"]
customer_id = ["Customer: ID"]
order_id = ["Id"]
revenue = ["Total"]

[ingest.event_type_aliases]
"paid" = "purchase"
"""

# Shopify's orders export, one line item an order, a customer id column added.
SHOP_ORDERS = [
    "Name,Financial Status,Currency,Total,Created at,Id,Customer: ID",
    "#1001,paid,USD,40.00,2026-06-01 09:10:05 +0000,5001,c1",
    "#1002,paid,USD,25.00,2026-06-01 15:00:00 +0000,5002,c1",
    "#1003,paid,USD,30.00,2026-06-01 12:01:04 +0000,5003,c2",
]


def _tracker() -> list[dict]:
    def ev(event_id: str, event_type: str, hhmm: str, **fields) -> dict:
        record = {
            "event_id": event_id,
            "event_type": event_type,
            "event_ts": f"2026-06-01T{hhmm}:00Z",
            "customer_id": "c1",
            "session_id": "s1",
            **fields,
        }
        return {k: v for k, v in record.items() if v is not None}

    # a visitor who never logs in: the browser's purchase carries no customer
    guest = {"customer_id": None, "anonymous_id": "a9", "session_id": "s9"}
    return [
        ev("t1", "page_view", "09:00"),
        ev("t2", "add_to_cart", "09:05", product_id="p1"),
        ev("t3", "purchase", "09:10", order_id="5001", revenue=40),
        ev("t4", "page_view", "12:00", **guest),
        ev("t5", "purchase", "12:01", order_id="5003", revenue=30, **guest),
    ]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("back_end_orders")
    settings = settings_in(root, SETTINGS)
    write_jsonl(settings.landing / f"events/dt={AS_OF}/tracker.jsonl", _tracker())
    write_lines(settings.landing / f"events/dt={AS_OF}/shop_orders.csv", SHOP_ORDERS)
    ingested = run_ingest(settings, AS_OF)
    assert ingested.details["sources"]["events"]["quarantined"] == 0, ingested.summary
    result = run_transform(settings, AS_OF)
    assert result.rows_out > 0, result.summary
    yield settings.warehouse


def test_each_order_counts_once(warehouse: Path) -> None:
    assert fetch(
        warehouse, "select order_id, customer_id, revenue::double from marts.orders order by 1"
    ) == [("5001", "c1", 40.0), ("5002", "c1", 25.0), ("5003", "c2", 30.0)]


def test_an_order_the_browser_sent_anonymously_is_the_back_ends_customers(
    warehouse: Path,
) -> None:
    # the browser's event came first and wins the order; its customer comes from the back end
    assert fetch(
        warehouse, "select event_id, customer_id from marts.orders where order_id = '5003'"
    ) == [("t5", "c2")]
    assert fetch(
        warehouse,
        "select order_count, revenue_total::double from marts.customers where customer_id = 'c2'",
    ) == [(1, 30.0)]
    assert fetch(
        warehouse,
        "select orders_30d, revenue_30d::double from marts.customer_features "
        "where customer_id = 'c2'",
    ) == [(1, 30.0)]


def test_the_back_end_orders_are_no_visits_of_their_own(warehouse: Path) -> None:
    sessions = fetch(
        warehouse,
        "select customer_id, page_views, cart_adds, is_converted, started_at::varchar, "
        "ended_at::varchar from marts.sessions order by started_at",
    )
    assert sessions == [
        ("c1", 1, 1, True, "2026-06-01 09:00:00", "2026-06-01 09:10:00"),
        (None, 1, 0, True, "2026-06-01 12:00:00", "2026-06-01 12:01:00"),
    ], "the tracker's sessions only: no back-end order is a visit"
    customers = fetch(
        warehouse,
        "select customer_id, session_count, order_count, revenue_total::double "
        "from marts.customers where customer_id = 'c1'",
    )
    assert customers == [("c1", 1, 2, 65.0)]
    features = fetch(
        warehouse,
        "select sessions_30d, orders_30d from marts.customer_features where customer_id = 'c1'",
    )
    assert features == [(1, 2)]
