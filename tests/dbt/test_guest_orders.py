"""A shop's guest orders, matched to customers by their billing e-mail address.

WooCommerce writes a guest's order with the customer id 0 (read as missing with
``[ingest.null_values]``) and the billing e-mail address. With the address read as the
order's ``anonymous_id`` (a ``field_aliases`` entry after the tracker's own name), the
guest's order loads instead of being quarantined every night for want of an identity, and
identity stitching gives it to the customer whose own orders carry the same address:
docs/data-contract.md, "Orders from a shop's back end". Through the real ingest and
``dbt build``.
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

AS_OF = date(2026, 6, 2)

SETTINGS = """
[ingest.field_aliases.events]
event_id = ["Order Number"]
order_id = ["Order ID"]
event_type = ["Order Status"]
event_ts = ["Order Date"]
customer_id = ["Customer User ID"]
anonymous_id = ["anonymous_id", "Billing Email"]
revenue = ["Order Total"]
currency = ["Order Currency"]

[ingest.null_values.events]
customer_id = ["0"]

[ingest.event_type_aliases]
"completed" = "purchase"
"processing" = "purchase"
"""

# WooCommerce's orders export: a guest's customer id is 0. Ben buys as a guest, then
# registers (customer 8) and buys again the same day; Cleo registers (9) the next day.
DAY_1 = [
    "Order ID,Order Number,Order Date,Order Status,Customer User ID,Billing Email,"
    "Order Total,Order Currency",
    "9101,WC-101,2026-06-01 10:00:00,completed,7,ann@example.com,40.00,USD",
    "9102,WC-102,2026-06-01 11:00:00,completed,0,ben@example.com,30.00,USD",
    "9103,WC-103,2026-06-01 12:00:00,completed,0,,12.00,USD",
    "9106,WC-106,2026-06-01 15:00:00,completed,8,ben@example.com,15.00,USD",
    "9107,WC-107,2026-06-01 16:00:00,completed,0,cleo@example.com,50.00,USD",
]
# The next day Ann buys as a guest.
DAY_2 = [
    DAY_1[0],
    "9104,WC-104,2026-06-02 09:00:00,processing,0,ann@example.com,25.00,USD",
    "9108,WC-108,2026-06-02 10:00:00,completed,9,cleo@example.com,20.00,USD",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("guest_orders")
    settings = settings_in(root, SETTINGS)
    events = settings.landing / "events"
    write_lines(events / "dt=2026-06-01/orders.csv", DAY_1)
    write_lines(events / "dt=2026-06-02/orders.csv", DAY_2)
    # the tracker's own anonymous id is read first
    write_jsonl(
        events / "dt=2026-06-02/tracker.jsonl",
        [
            {
                "event_id": "t1",
                "event_type": "page_view",
                "event_ts": "2026-06-02T08:55:00Z",
                "anonymous_id": "browser-1",
            }
        ],
    )
    for day in (date(2026, 6, 1), AS_OF):
        run_ingest(settings, day)
        run_transform(settings, day)
    yield settings.warehouse


def test_only_the_order_without_any_identity_is_quarantined(warehouse: Path) -> None:
    assert fetch(warehouse, "select source_file, line_number, reasons from ops.quarantine") == [
        (
            "events/dt=2026-06-01/orders.csv",
            4,
            [
                "no identity: customer_id and anonymous_id are both missing (looked for "
                "'customer_id', 'Customer User ID', 'anonymous_id', 'Billing Email')"
            ],
        )
    ]
    assert fetch(warehouse, "select event_id, anonymous_id from raw.events order by 1") == [
        ("WC-101", "ann@example.com"),
        ("WC-102", "ben@example.com"),
        ("WC-104", "ann@example.com"),
        ("WC-106", "ben@example.com"),
        ("WC-107", "cleo@example.com"),
        ("WC-108", "cleo@example.com"),
        ("t1", "browser-1"),
    ]


def test_guest_orders_are_the_customers_with_their_address(warehouse: Path) -> None:
    # Ann's guest order after her own is hers; so is Ben's guest order before he registered
    # that day. Cleo's guest order of the day before she registered keeps no customer in
    # marts.orders (who it was then), and counts for her in the features from the day she
    # registered on, never in the snapshot of the day before (docs/models.md, "Who did
    # what").
    assert fetch(
        warehouse, "select order_id, customer_id, revenue::double from marts.orders order by 1"
    ) == [
        ("9101", "7", 40.0),
        ("9102", "8", 30.0),
        ("9104", "7", 25.0),
        ("9106", "8", 15.0),
        ("9107", None, 50.0),
        ("9108", "9", 20.0),
    ]
    assert fetch(
        warehouse,
        "select customer_id, order_count, revenue_total::double from marts.customer_features "
        "order by 1",
    ) == [("7", 2, 65.0), ("8", 2, 45.0), ("9", 2, 70.0)]
    assert fetch(
        warehouse,
        "select as_of_date, customer_id, order_count from marts.customer_feature_history "
        "order by 1, 2",
    ) == [
        (date(2026, 6, 1), "7", 1),
        (date(2026, 6, 1), "8", 2),
        (AS_OF, "7", 2),
        (AS_OF, "8", 2),
        (AS_OF, "9", 2),
    ]
    assert fetch(warehouse, "select order_count from marts.customers where customer_id = '9'") == [
        (2,)
    ]
