"""The marts against their documented definitions, on a hand-made shop of edge cases.

Each customer is one case a real shop has (an event at the as-of day's last instant and one
at the next midnight, times with offsets, an order sent on two days, a refund sent under
another customer's id, a CRM signup without events, a session crossing midnight, a visitor
linked by a later login, visits exactly 7, 30 and 90 days back, 24 buyers in tied pairs),
landed as files and loaded by the real ingest and ``dbt build``. The expected figures are
worked out by hand from the events below and the definitions in docs/models.md and
docs/tables.md, not from the SQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.db import fetch
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_jsonl, write_lines

AS_OF = date(2026, 6, 30)
NEXT = date(2026, 7, 1)


def _events() -> dict[str, list[dict]]:
    """Landing file records by partition day."""
    by_day: dict[str, list[dict]] = {}

    def add(part: str, **record) -> None:
        record.setdefault("event_id", f"e{sum(map(len, by_day.values())) + 1}")
        by_day.setdefault(part, []).append(record)

    def view(customer: str, ts: str, session: str) -> None:
        add(ts[:10], event_type="page_view", customer_id=customer, event_ts=ts,
            session_id=session)  # fmt: skip

    def buy(customer: str, ts: str, session: str, order: str, revenue: float, part: str = ""):
        add(part or ts[:10], event_type="purchase", customer_id=customer, event_ts=ts,
            session_id=session, order_id=order, revenue=revenue)  # fmt: skip

    # c1: an order at the as-of day's first instant, a visit at its last millisecond; a visit
    # and an order at the next midnight belong to the next day
    buy("c1", "2026-06-30T00:00:00Z", "s1a", "o1", 50)
    view("c1", "2026-06-30T23:59:59.999Z", "s1b")
    view("c1", "2026-07-01T00:00:00Z", "s1c")
    buy("c1", "2026-07-01T00:00:00Z", "s1c", "o1b", 70)
    # c2: local times with offsets, in the partition of their local day
    buy("c2", "2026-06-30T22:30:00-05:00", "s2a", "o2a", 40, part="2026-06-30")  # 07-01 03:30
    buy("c2", "2026-07-01T01:00:00+02:00", "s2b", "o2b", 30, part="2026-07-01")  # 06-30 23:00
    buy("c2", "2026-06-01T01:00:00+02:00", "s2c", "o2c", 10, part="2026-06-01")  # 05-31 23:00
    # c3's only event is a refund of c4's order: it counts for c4, c3 is nobody
    buy("c4", "2026-06-05T10:00:00Z", "s4", "o4", 100)
    add("2026-06-08", event_type="refund", customer_id="c3", event_ts="2026-06-08T10:00:00Z",
        order_id="o4", revenue=-30)  # fmt: skip
    # c5: the same order sent on two days: the first event wins
    buy("c5", "2026-06-10T10:00:00Z", "s5a", "o5", 80)
    buy("c5", "2026-06-12T10:00:00Z", "s5b", "o5", 80)
    # c7: one tracker session crossing midnight: one session a day
    view("c7", "2026-06-20T23:50:00Z", "s7")
    view("c7", "2026-06-21T00:10:00Z", "s7")
    # a8: anonymous on 06-14 and 06-15, logged in as c8 on 06-15: that day's browsing is c8's
    # in every table; 06-14's counts for c8 in the features from 06-15 on
    add("2026-06-14", event_type="page_view", anonymous_id="a8",
        event_ts="2026-06-14T10:00:00Z", session_id="s8a")  # fmt: skip
    add("2026-06-15", event_type="page_view", anonymous_id="a8",
        event_ts="2026-06-15T10:00:00Z", session_id="s8b")  # fmt: skip
    add("2026-06-15", event_type="login", anonymous_id="a8", customer_id="c8",
        event_ts="2026-06-15T10:20:00Z", session_id="s8b")  # fmt: skip
    # c9: visits 7, 6, 30, 29, 90 and 89 days before the as-of date; orders 30, 29, 90 back
    for day in ("2026-06-23", "2026-06-24", "2026-05-31", "2026-06-01", "2026-04-01",
                "2026-04-02"):  # fmt: skip
        view("c9", f"{day}T12:00:00Z", f"s9-{day}")
    buy("c9", "2026-05-31T12:00:01Z", "s9-2026-05-31", "o9a", 11)
    buy("c9", "2026-06-01T12:00:01Z", "s9-2026-06-01", "o9b", 13)
    buy("c9", "2026-04-01T12:00:01Z", "s9-2026-04-01", "o9c", 17)
    # c10: a cart add at the as-of day's first instant, bought 24 hours later to the instant
    add("2026-06-30", event_type="add_to_cart", customer_id="c10",
        event_ts="2026-06-30T00:00:00Z", session_id="s10a", product_id="p1")  # fmt: skip
    buy("c10", "2026-07-01T00:00:00Z", "s10b", "o10", 25)
    # c13: the browser's purchase of a visitor who never logged in, before midnight; the shop's
    # back end sends the same order with its customer (no session) after midnight
    add("2026-06-20", event_type="purchase", anonymous_id="a13",
        event_ts="2026-06-20T23:58:00Z", session_id="s13", order_id="o13", revenue=60)  # fmt: skip
    add("2026-06-21", event_type="purchase", customer_id="c13",
        event_ts="2026-06-21T00:02:00Z", order_id="o13", revenue=60)  # fmt: skip
    # 24 buyers in 12 pairs with equal recency and revenue
    for i in range(24):
        buy(f"t{i:02d}", f"2026-06-{10 + i // 2:02d}T09:00:00Z", f"st{i}", f"ot{i}",
            10 * (i // 2 + 1))  # fmt: skip
    return by_day


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("hand_made")
    settings = settings_in(root, '[transform]\nreporting_currency = "USD"\n')
    for day, records in _events().items():
        write_jsonl(settings.landing / f"events/dt={day}/tracker.jsonl", records)
    write_lines(
        settings.landing / "crm/dt=2026-06-01/customers.csv",
        [
            "customer_id,updated_at,email,signup_date,email_opt_in",
            "c6,2026-06-01 08:00:00,c6@example.com,2026-05-01,true",
            "c1,2026-06-01 08:00:00,c1@example.com,2026-03-01,true",
        ],
    )
    ingested = run_ingest(settings, NEXT)
    assert ingested.details["sources"]["events"]["quarantined"] == 0, ingested.summary
    run_transform(settings, AS_OF)
    run_transform(settings, NEXT)
    yield settings.warehouse
    shutil.rmtree(root, ignore_errors=True)


FEATURE_CASES = "'c1', 'c2', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'"
COLUMNS = (
    "first_seen_at, last_order_at, order_count, revenue_total, refund_total, recency_days, "
    "tenure_days, sessions_7d, sessions_30d, sessions_90d, orders_30d, orders_90d, "
    "revenue_30d, days_since_last_visit, days_since_last_activity"
)


def test_features_follow_the_definitions(warehouse: Path) -> None:
    rows = fetch(
        warehouse,
        f"select customer_id, {COLUMNS} from marts.customer_feature_history "
        f"where as_of_date = '{AS_OF}' and customer_id in ({FEATURE_CASES}) order by 1",
    )
    got = {r[0]: r[1:] for r in rows}
    d, m = datetime, Decimal
    # fmt: off
    assert got == {
        # signup 03-01 earlier than the first event; nothing of 07-01 counts
        "c1": (d(2026, 3, 1), d(2026, 6, 30), 1, m("50.00"), m("0.00"), 0, 121,
               2, 2, 2, 1, 1, m("50.00"), 0, 0),
        # 06-30 23:00 UTC counts, 07-01 03:30 UTC does not; 05-31 is outside 30 days
        "c2": (d(2026, 5, 31, 23), d(2026, 6, 30, 23), 2, m("40.00"), m("0.00"), 0, 30,
               1, 1, 2, 1, 2, m("30.00"), 0, 0),
        "c4": (d(2026, 6, 5, 10), d(2026, 6, 5, 10), 1, m("70.00"), m("30.00"), 25, 25,
               0, 1, 1, 1, 1, m("100.00"), 25, 25),
        # one order, on its first day; the repeat's visit is a visit
        "c5": (d(2026, 6, 10, 10), d(2026, 6, 10, 10), 1, m("80.00"), m("0.00"), 20, 20,
               0, 2, 2, 1, 1, m("80.00"), 18, 18),
        "c6": (d(2026, 5, 1), None, 0, m("0.00"), m("0.00"), None, 60,
               0, 0, 0, 0, 0, m("0.00"), None, None),
        "c7": (d(2026, 6, 20, 23, 50), None, 0, m("0.00"), m("0.00"), None, 10,
               0, 2, 2, 0, 0, m("0.00"), 9, 9),
        # the anonymous 06-14 before the login of 06-15 is c8's (first seen, tenure, visits)
        "c8": (d(2026, 6, 14, 10), None, 0, m("0.00"), m("0.00"), None, 16,
               0, 2, 2, 0, 0, m("0.00"), 15, 15),
        # windows (D - N, D]: 06-23 is out of 7 days, 05-31 of 30, 04-01 of 90
        "c9": (d(2026, 4, 1, 12), d(2026, 6, 1, 12, 0, 1), 3, m("41.00"), m("0.00"), 29, 90,
               1, 3, 5, 1, 2, m("13.00"), 6, 6),
    }
    # fmt: on


def test_lifecycle_stages(warehouse: Path) -> None:
    rows = fetch(
        warehouse,
        "select customer_id, segment from marts.customer_rule_segments "
        f"where as_of_date = '{AS_OF}' and segment like 'lifecycle_%' "
        f"and customer_id in ({FEATURE_CASES}) order by 1",
    )
    assert dict(rows) == {
        "c1": "lifecycle_active",
        "c2": "lifecycle_active",  # tenure exactly 30 days
        "c4": "lifecycle_new",
        "c5": "lifecycle_new",
        "c6": "lifecycle_churned",  # never active
        "c7": "lifecycle_new",
        "c8": "lifecycle_new",
        "c9": "lifecycle_active",
    }


def test_rfm_ties_score_alike(warehouse: Path) -> None:
    rows = fetch(
        warehouse,
        "select recency_days, revenue_total, order_count, r_score, f_score, m_score "
        f"from marts.customer_feature_history where as_of_date = '{AS_OF}' and order_count > 0",
    )
    buyers = len(rows)
    assert buyers == 30

    def quintile(value, values, higher_is_better=True) -> int:
        worse = sum(1 for v in values if (v < value if higher_is_better else v > value))
        return 1 + (5 * worse) // buyers

    recency, revenue, count = ([r[i] for r in rows] for i in range(3))
    for r in rows:
        assert r[3:] == (
            quintile(r[0], recency, higher_is_better=False),
            quintile(r[2], count),
            quintile(r[1], revenue),
        ), r


def test_sessions_and_identity(warehouse: Path) -> None:
    # fmt: off
    assert fetch(
        warehouse,
        "select customer_id, anonymous_id, session_date, started_at, ended_at "
        "from marts.sessions where customer_id in ('c7', 'c8') or anonymous_id = 'a8' "
        "order by started_at",
    ) == [
        (None, "a8", date(2026, 6, 14), datetime(2026, 6, 14, 10), datetime(2026, 6, 14, 10)),
        ("c8", "a8", date(2026, 6, 15), datetime(2026, 6, 15, 10), datetime(2026, 6, 15, 10, 20)),
        ("c7", None, date(2026, 6, 20), datetime(2026, 6, 20, 23, 50),
         datetime(2026, 6, 20, 23, 50)),
        ("c7", None, date(2026, 6, 21), datetime(2026, 6, 21, 0, 10),
         datetime(2026, 6, 21, 0, 10)),
    ]
    # fmt: on
    # the refund's own identity is nobody: no customer, no features
    assert fetch(warehouse, "select count(*) from marts.customers where customer_id = 'c3'") == [
        (0,)
    ]
    assert fetch(warehouse, "select order_id, customer_id, applied_amount from marts.refunds") == [
        ("o4", "c4", Decimal("30.00"))
    ]


def test_a_cart_add_is_judged_once_its_whole_wait_is_seen(warehouse: Path) -> None:
    """A purchase up to 24 hours after a cart add, both ends included, follows it. A cart
    add at midnight waits until the next midnight, which belongs to the next day: the as-of
    day's snapshot cannot see a purchase then, so it must not call the cart abandoned (it
    did, and marketing e-mailed a customer who had bought)."""
    rows = fetch(
        warehouse,
        "select as_of_date, has_abandoned_cart from marts.customer_feature_history "
        "where customer_id = 'c10' order by 1",
    )
    assert rows == [(AS_OF, False), (NEXT, False)]
    assert (
        fetch(
            warehouse,
            "select as_of_date from marts.customer_rule_segments "
            "where customer_id = 'c10' and segment = 'cart_abandoner'",
        )
        == []
    )


def test_an_order_sent_on_two_days_counts_for_its_customer_on_its_day(warehouse: Path) -> None:
    """The browser's anonymous purchase wins (it came first), on its own day; the back end's
    copy after midnight names the customer. The order is the customer's (marts.orders), so it
    is in their daily activity on the order's day and in their features."""
    assert fetch(
        warehouse, "select customer_id, order_date from marts.orders where order_id = 'o13'"
    ) == [("c13", date(2026, 6, 20))]
    assert fetch(
        warehouse,
        "select activity_date, orders, revenue from marts.customer_daily_activity "
        "where customer_id = 'c13' and orders > 0",
    ) == [(date(2026, 6, 20), 1, Decimal("60.00"))]
    assert fetch(
        warehouse,
        "select as_of_date, order_count, revenue_total, last_order_at, recency_days, "
        "rfm_segment <> 'No orders' from marts.customer_feature_history "
        "where customer_id = 'c13' order by 1",
    ) == [
        (AS_OF, 1, Decimal("60.00"), datetime(2026, 6, 20, 23, 58), 10, True),
        (NEXT, 1, Decimal("60.00"), datetime(2026, 6, 20, 23, 58), 11, True),
    ]
    assert fetch(
        warehouse,
        "select order_count, revenue_total from marts.customers where customer_id = 'c13'",
    ) == [(1, Decimal("60.00"))]
