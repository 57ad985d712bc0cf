"""A product only visitors who never log in browse is on sale: docs/recommendations.md.

``[recommendations] active_product_days`` leaves out products nobody interacted with in the
last 90 days (taken off sale). Visitors attributed to no customer are not in
``marts.customer_product_daily``; ``marts.anonymous_product_daily`` holds their days. Through
the real ingest, ``dbt build`` and the recommend stage, on a hand-made landing zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from ml.recommendations import run_recommendations
from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.db import fetch
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_jsonl

AS_OF = date(2026, 6, 30)


def _event(n: int, kind: str, ts: str, product: str, **ids) -> dict:
    return {"event_id": f"e{n}", "event_type": kind, "event_ts": ts, "product_id": product,
            "session_id": f"s{n}", **ids}  # fmt: skip


def _bought(n: int, customer: str, ts: str, product: str) -> dict:
    return {**_event(n, "purchase", ts, product, customer_id=customer), "order_id": f"o{n}",
            "price": 10, "quantity": 1, "revenue": 10}  # fmt: skip


# ca bought p1 and p3 in February (more than 90 days back); since then only a visitor who
# never logged in viewed p1, and cb viewed p2. p3 is off sale, p1 is not.
EVENTS = {
    "2026-02-01": [
        _bought(1, "ca", "2026-02-01T10:00:00Z", "p1"),
        _bought(2, "ca", "2026-02-01T10:01:00Z", "p3"),
    ],
    "2026-06-20": [_event(3, "product_view", "2026-06-20T10:00:00Z", "p2", customer_id="cb")],
    "2026-06-25": [_event(4, "product_view", "2026-06-25T10:00:00Z", "p1", anonymous_id="a1")],
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("anonymous_visitors")
    settings = settings_in(root, "")
    for day, records in EVENTS.items():
        write_jsonl(settings.landing / f"events/dt={day}/tracker.jsonl", records)
    ingested = run_ingest(settings, AS_OF)
    assert ingested.details["sources"]["events"]["quarantined"] == 0, ingested.summary
    run_transform(settings, AS_OF)
    run_recommendations(settings, AS_OF)
    yield settings.warehouse


def test_the_visitors_days_are_in_the_mart(warehouse: Path) -> None:
    assert fetch(
        warehouse,
        "select product_id, activity_date, product_views, cart_adds, purchases "
        "from marts.anonymous_product_daily",
    ) == [("p1", date(2026, 6, 25), 1, 0, 0)]


def test_a_product_only_visitors_browse_is_still_recommended(warehouse: Path) -> None:
    lists = fetch(
        warehouse,
        "select customer_id, list(product_id order by rank) from ml.recommendations "
        "where as_of_date = ? group by customer_id order by customer_id",
        [AS_OF],
    )
    # cb gets the best seller p1 (browsed by the visitor), then p2 (viewed, never sold); ca
    # bought p1; p3, nobody's interest for 149 days, is left out as off sale.
    assert lists == [("ca", ["p2"]), ("cb", ["p1", "p2"])]
