"""A visitor's anonymous history before the login day counts for the customer from the
login's day on, and never in a snapshot before it (docs/models.md, "Who did what").

Ann browses on her phone as an anonymous visitor on days 1 and 2 (sessions, page and product
views, a cart add, a guest purchase) while her own laptop session of day 1 makes her a known
customer; she logs in on the phone on day 4. Through the real ingest and ``dbt build``, night
by night: the snapshots as of days 1-3 are those of the same shop without the login, and from
day 4 on her features include the phone's days. A warehouse given every event first and built
night by night afterwards (old snapshots built when the login is already loaded) gives the
same snapshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from segmint.ingest import run_ingest
from segmint.transform import run_transform
from segmint.warehouse import connect
from tests.db import fetch
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_jsonl

DAY_1 = date(2026, 6, 1)
NIGHTS = [DAY_1 + timedelta(days=n) for n in range(6)]
LOGIN_DAY = NIGHTS[3]


def _event(eid: str, day: int, hhmm: str, kind: str, **fields: object) -> dict:
    at = f"{DAY_1 + timedelta(days=day - 1)}T{hhmm}:00Z"
    return {"event_id": eid, "event_type": kind, "event_ts": at, **fields}


def _events(with_login: bool) -> dict[int, list[dict]]:
    phone = {"anonymous_id": "phone-1", "device_type": "mobile"}
    shoes = {"product_id": "p1", "product_category": "shoes"}
    days = {
        1: [
            # Ann on her laptop, logged in: a known customer from day 1 on
            _event("l1", 1, "08:00", "page_view", customer_id="ann", anonymous_id="laptop-1",
                   page_type="home"),
            _event("l2", 1, "08:05", "product_view", customer_id="ann", anonymous_id="laptop-1",
                   product_id="p2", product_category="books"),
            # ... and on her phone, anonymous
            _event("a1", 1, "20:00", "page_view", page_type="home", **phone),
            _event("a2", 1, "20:02", "product_view", **phone, **shoes),
            _event("a3", 1, "20:04", "product_view", **phone, **shoes),
            _event("a4", 1, "20:06", "add_to_cart", **phone, **shoes),
            # Bob, another customer, so every snapshot holds someone else too
            _event("b1", 1, "10:00", "page_view", customer_id="bob", page_type="home"),
        ],
        2: [
            _event("a5", 2, "09:00", "page_view", page_type="home", **phone),
            _event("a6", 2, "09:03", "product_view", **phone, **shoes),
            _event("a7", 2, "09:05", "purchase", order_id="o1", revenue=80.0, currency="USD",
                   **phone, **shoes),
            _event("b2", 2, "11:00", "purchase", customer_id="bob", order_id="o2",
                   revenue=20.0, currency="USD"),
        ],
        3: [_event("b3", 3, "12:00", "page_view", customer_id="bob", page_type="home")],
        4: [_event("b4", 4, "12:00", "page_view", customer_id="bob", page_type="home")],
        5: [_event("a8", 5, "07:00", "page_view", page_type="home", **phone)],
        6: [_event("b5", 6, "12:00", "page_view", customer_id="bob", page_type="home")],
    }  # fmt: skip
    if with_login:
        days[4].append(
            _event("login", 4, "18:00", "login", customer_id="ann", anonymous_id="phone-1")
        )
    return days


def _shop(root: Path, with_login: bool, *, all_first: bool = False) -> Path:
    settings = settings_in(root, "")
    events = _events(with_login)
    for n, night in enumerate(NIGHTS, start=1):
        write_jsonl(settings.landing / "events" / f"dt={night}" / "events.jsonl", events[n])
    if all_first:
        for night in NIGHTS:
            run_ingest(settings, night)
    for night in NIGHTS:
        if not all_first:
            run_ingest(settings, night)
        run_transform(settings, night)
    return settings.warehouse


def _snapshots(warehouse: Path) -> pd.DataFrame:
    con = connect(warehouse, read_only=True)
    try:
        frame = con.execute(
            "select * exclude (_loaded_at) from marts.customer_feature_history"
        ).df()
    finally:
        con.close()
    frame["as_of_date"] = frame["as_of_date"].dt.date
    return frame.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, pd.DataFrame]]:
    out = {}
    for name, with_login, all_first in (
        ("login", True, False),
        ("no_login", False, False),
        ("late_build", True, True),
    ):
        warehouse = _shop(tmp_path_factory.mktemp(name), with_login, all_first=all_first)
        out[name] = _snapshots(warehouse)
        if name == "login":
            out["customers"] = fetch(
                warehouse,
                "select customer_id, first_seen_at, order_count, revenue_total::double, "
                "session_count from marts.customers order by 1",
            )
            out["orders"] = fetch(
                warehouse, "select order_id, customer_id, anonymous_id from marts.orders order by 1"
            )
            out["sessions"] = fetch(
                warehouse,
                "select session_date, customer_id from marts.sessions "
                "where anonymous_id = 'phone-1' order by 1",
            )
    yield out


def test_snapshots_before_the_login_day_ignore_the_login(shops: dict) -> None:
    before = [d for d in NIGHTS if d < LOGIN_DAY]
    login = shops["login"][shops["login"]["as_of_date"].isin(before)].reset_index(drop=True)
    no_login = shops["no_login"]
    no_login = no_login[no_login["as_of_date"].isin(before)].reset_index(drop=True)
    assert len(login) == 2 * len(before)  # Ann and Bob
    pd.testing.assert_frame_equal(login, no_login)
    ann = login[login["customer_id"] == "ann"]
    assert (ann["order_count"] == 0).all()
    assert (ann["product_views_7d"] == 1).all()  # the laptop's only
    assert (ann["favourite_category"] == "books").all()


def test_from_the_login_day_on_the_earlier_browsing_is_the_customers(shops: dict) -> None:
    history = shops["login"]
    ann = history[history["customer_id"] == "ann"].set_index("as_of_date")
    for night in NIGHTS[3:]:
        row = ann.loc[night]
        assert row["first_seen_at"] == pd.Timestamp("2026-06-01 08:00:00")
        assert row["tenure_days"] == (night - DAY_1).days
        assert row["order_count"] == 1
        assert float(row["revenue_total"]) == 80.0
        assert row["first_order_at"] == pd.Timestamp("2026-06-02 09:05:00")
        assert row["recency_days"] == (night - NIGHTS[1]).days
        # laptop day 1; phone days 1, 2; the login's own (and day 5's, hers anyway)
        assert row["sessions_7d"] == (4 if night < NIGHTS[4] else 5)
        assert row["product_views_7d"] == 1 + 3
        assert row["cart_adds_7d"] == 1
        assert row["favourite_category"] == "shoes"
        # the phone's sessions are mobile ones (the login's own has no device)
        mobile = (2, 4) if night < NIGHTS[4] else (3, 5)
        assert row["mobile_session_share_90d"] == mobile[0] / mobile[1]
        # the cart add of day 1 was followed by the purchase of day 2 within 24 hours
        assert not row["has_abandoned_cart"]
    # Without the login, Ann never gets the phone's days.
    without = shops["no_login"]
    assert (without[without["customer_id"] == "ann"]["order_count"] == 0).all()


def test_old_snapshots_built_after_the_login_is_loaded_are_the_same(shops: dict) -> None:
    pd.testing.assert_frame_equal(shops["late_build"], shops["login"])


def test_customers_count_the_earlier_days_and_orders_and_sessions_keep_their_time(
    shops: dict,
) -> None:
    assert shops["customers"] == [
        # laptop day 1, phone days 1 and 2, the login's day 4, phone day 5
        ("ann", pd.Timestamp("2026-06-01 08:00:00").to_pydatetime(), 1, 80.0, 5),
        ("bob", pd.Timestamp("2026-06-01 10:00:00").to_pydatetime(), 1, 20.0, 4),
    ]
    # The guest order and the phone's sessions before the login keep no customer.
    assert shops["orders"] == [("o1", None, "phone-1"), ("o2", "bob", None)]
    assert shops["sessions"] == [
        (NIGHTS[0], None),
        (NIGHTS[1], None),
        (NIGHTS[3], "ann"),
        (NIGHTS[4], "ann"),
    ]
