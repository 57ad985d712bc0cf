"""Order-level purchase events buy the products in the session's cart: docs/recommendations.md.

A tracker that sends one purchase event per order (no product) leaves the products to the
cart: ``marts.customer_product_daily`` counts what the session put in its cart (adds minus
removals) since its previous order, up to the purchase. Hand-made landing files, loaded night
by night by the real ingest and ``dbt build``; the expected purchases and revenue are worked
out by replaying each session's cart in Python (``_replayed``), not from the SQL.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.db import fetch
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_jsonl

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
DAY_1 = date(2026, 6, 10)
DAY_2 = date(2026, 6, 11)
DAY_3 = date(2026, 6, 12)
DAY_4 = date(2026, 6, 13)
DAY_5 = date(2026, 6, 14)


def _cart(kind: str, customer: str | None, ts: str, session: str, product: str, price: float,
          quantity: int = 1, anonymous: str | None = None) -> dict:  # fmt: skip
    """A cart line; ``customer`` None and ``anonymous`` given: a visitor not logged in."""
    ids = {"customer_id": customer} if customer else {"anonymous_id": anonymous}
    return {"event_type": kind, **ids, "event_ts": ts, "session_id": session,
            "product_id": product, "price": price, "quantity": quantity}  # fmt: skip


def _order(customer: str, ts: str, session: str | None, order: str, revenue: float,
           anonymous: str | None = None) -> dict:  # fmt: skip
    """A one-event order; with ``anonymous``, the login of that visitor too; ``session``
    None: a shop's back end's order (no session)."""
    ids = {"anonymous_id": anonymous} if anonymous else {}
    ids |= {"session_id": session} if session else {}
    return {"event_type": "purchase", "customer_id": customer, **ids, "event_ts": ts,
            "order_id": order, "revenue": revenue}  # fmt: skip


def _line_item(customer: str, ts: str, session: str, order: str, product: str,
               price: float) -> dict:  # fmt: skip
    """A purchase event of one order line (a shop sending one event per line)."""
    return {"event_type": "purchase", "customer_id": customer, "event_ts": ts,
            "session_id": session, "order_id": order, "product_id": product,
            "price": price, "quantity": 1, "revenue": price}  # fmt: skip


# c1: two one-event orders in one session and day, each of its own cart.
# c2: a cart filled before midnight, bought after it in the same tracker session.
# c3: one session ordering on both sides of midnight (p4 bought in each order).
# c4: a removal before the first order, a product carted again between the orders.
# c5: a cart line on Wednesday, bought by the session's order on Saturday (FOURTH_NIGHT).
# a6: a visitor's cart before midnight, bought after midnight by the order that logs in c6.
# c8: a tracker's cart, ordered through the shop's back end (an order without a session),
# then carted again in a new visit and ordered by both the tracker and the back end.
# c10: a cart kept across visits: filled in one session, ordered the next day in another.
# c20: a shop mixing both kinds: p30 bought by an order sent line by line, then p31 carted
# and ordered as one event (which buys p31 alone).
# c21: the same order sent both ways (its line and one event): p32 bought once.
# a11: a visitor's cart on a device never logged in; the next day the shop's back end
# sends c11's order with that anonymous id (identity stitching links them).
FIRST_NIGHT = [
    _cart("add_to_cart", "c1", "2026-06-10T10:00:00Z", "s1", "p1", 10),
    _order("c1", "2026-06-10T10:05:00Z", "s1", "o1", 10),
    _cart("add_to_cart", "c1", "2026-06-10T10:10:00Z", "s1", "p2", 20),
    _order("c1", "2026-06-10T10:15:00Z", "s1", "o2", 20),
    _cart("add_to_cart", "c2", "2026-06-10T23:50:00Z", "s2", "p3", 7, 3),
    _cart("add_to_cart", "c3", "2026-06-10T23:40:00Z", "s3", "p4", 5, 2),
    _order("c3", "2026-06-10T23:45:00Z", "s3", "o4", 10),
    _cart("add_to_cart", "c3", "2026-06-10T23:55:00Z", "s3", "p5", 11),
    _cart("add_to_cart", "c4", "2026-06-10T09:00:00Z", "s4", "p6", 4, 2),
    _cart("remove_from_cart", "c4", "2026-06-10T09:01:00Z", "s4", "p6", 4, 1),
    _cart("add_to_cart", "c4", "2026-06-10T09:02:00Z", "s4", "p7", 6),
    _order("c4", "2026-06-10T09:05:00Z", "s4", "o6", 10),
    _cart("add_to_cart", "c4", "2026-06-10T09:10:00Z", "s4", "p6", 4),
    _order("c4", "2026-06-10T09:20:00Z", "s4", "o7", 4),
    _cart("add_to_cart", "c5", "2026-06-10T12:00:00Z", "s5", "p9", 8),
    _cart("add_to_cart", None, "2026-06-10T23:50:00Z", "s6", "p10", 12, 2, anonymous="a6"),
    _cart("add_to_cart", "c8", "2026-06-10T14:00:00Z", "s8", "p13", 30),
    _order("c8", "2026-06-10T14:10:00Z", None, "o11", 30),
    _cart("add_to_cart", "c8", "2026-06-10T18:00:00Z", "s9", "p14", 3),
    _order("c8", "2026-06-10T18:05:00Z", "s9", "o12", 3),
    _order("c8", "2026-06-10T18:06:00Z", None, "o12", 3),
    _cart("add_to_cart", "c10", "2026-06-10T10:00:00Z", "s10", "p15", 6, 2),
    _cart("add_to_cart", "c10", "2026-06-10T10:01:00Z", "s10", "p16", 1),
    _cart("remove_from_cart", "c10", "2026-06-10T10:02:00Z", "s10", "p16", 1),
    _cart("add_to_cart", None, "2026-06-10T15:00:00Z", "s12", "p17", 13, anonymous="a11"),
    _cart("add_to_cart", None, "2026-06-10T16:00:00Z", "s14", "p19", 5, anonymous="a12"),
    _cart("add_to_cart", "c20", "2026-06-10T11:00:00Z", "s20", "p30", 40),
    _line_item("c20", "2026-06-10T11:05:00Z", "s20", "o20", "p30", 40),
    _cart("add_to_cart", "c20", "2026-06-10T11:10:00Z", "s20", "p31", 9),
    _order("c20", "2026-06-10T11:15:00Z", "s20", "o21", 9),
    _cart("add_to_cart", "c21", "2026-06-10T12:00:00Z", "s21", "p32", 17),
    _line_item("c21", "2026-06-10T12:05:00Z", "s21", "o22", "p32", 17),
    _order("c21", "2026-06-10T12:05:00Z", "s21", "o22", 17),
]
SECOND_NIGHT = [
    _order("c2", "2026-06-11T00:05:00Z", "s2", "o3", 21),
    _cart("add_to_cart", "c3", "2026-06-11T00:02:00Z", "s3", "p4", 5),
    _order("c3", "2026-06-11T00:10:00Z", "s3", "o5", 16),
    _order("c6", "2026-06-11T00:06:00Z", "s6", "o8", 24, anonymous="a6"),
    _order("c10", "2026-06-11T09:00:00Z", "s11", "o14", 12),
    _order("c11", "2026-06-11T12:00:00Z", None, "o13", 13, anonymous="a11"),
]
# Arrives after both nights were built: a late cart add of c2's session before midnight.
LATE = [_cart("add_to_cart", "c2", "2026-06-10T23:58:00Z", "s2", "p8", 9)]
# Two days loaded in one night: c5's order three days after its cart line; c7's cart before
# midnight and its order after it, the only row of 14 June.
FOURTH_NIGHT = [
    _order("c5", "2026-06-13T09:00:00Z", "s5", "o9", 8),
    _cart("add_to_cart", "c7", "2026-06-13T23:55:00Z", "s7", "p11", 15),
]
# Loaded the same night: the order that logs in c12 two days after a12's cart line.
THIRD_DAY = [_order("c12", "2026-06-12T10:00:00Z", "s14", "o15", 5, anonymous="a12")]
FIFTH_DAY = [_order("c7", "2026-06-14T00:05:00Z", "s7", "o10", 15)]
# Late, after all that: c5's session carted p12 too, three days before its order; c7 took
# p11 out before midnight, so its order bought nothing and 14 June has no row left.
LATEST = [
    _cart("add_to_cart", "c5", "2026-06-10T13:00:00Z", "s5", "p12", 2),
    _cart("remove_from_cart", "c7", "2026-06-13T23:58:00Z", "s7", "p11", 15),
]
# Reloaded after all that: the first day's files again without c5's cart lines (s5 has no
# event left on 10 June; its order three days later buys nothing now) and without a12's
# (a visitor's cart line, bought by the order that logs in c12 three days later).
RELOADED_FIRST_NIGHT = [e for e in FIRST_NIGHT if e.get("session_id") not in ("s5", "s14")]
RELOADED_LATEST = [_cart("add_to_cart", "c9", "2026-06-10T16:00:00Z", "s13", "p18", 1)]
DAY_6 = date(2026, 6, 15)


def _owns(
    order: dict, line: dict, linked: dict[str, dict[str, str]], session: str | None = None
) -> bool:
    """Whether the cart of ``order``'s customer holds ``line``: the customer's own line, a
    visitor's line of the order's session, or of an anonymous id linked to this customer
    alone (``linked``: anonymous id -> customer -> first seen together) by the order. With
    ``session`` (carts per visit): the customer's or a visitor's line of that session."""
    customer = order["customer_id"]
    if session is not None:
        return line.get("session_id") == session and line.get("customer_id") in (None, customer)
    if line.get("customer_id"):
        return line["customer_id"] == customer
    if order.get("session_id") is not None and line.get("session_id") == order["session_id"]:
        return True
    links = linked.get(line.get("anonymous_id") or "", {})
    return list(links) == [customer] and links[customer] <= order["event_ts"]


def _open(line: dict, since: str, at: str, lookback_days: int) -> bool:
    """Whether ``line`` is after ``since`` (the previous order), by ``at`` (the order) and
    within ``lookback_days`` days of the order's day."""
    days = date.fromisoformat(at[:10]) - date.fromisoformat(line["event_ts"][:10])
    return since < line["event_ts"] <= at and days.days <= lookback_days


def _replayed(events: list[dict], lookback_days: int = 7, scope: str = "customer") -> list[tuple]:
    """(customer, product, purchase day, purchases, revenue) by replaying each customer's
    cart: an order line counts for its product and empties the cart like any order (an
    order also sent as one event buys nothing more); a one-event order buys every product
    (quantity > 0) of the lines added or removed since the customer's previous order, in
    any session, up to ``lookback_days`` days before it: the customer's own lines, a
    visitor's lines of the order's session, and a visitor's lines of an anonymous id seen
    with this customer alone (from then on).
    ``scope`` "session" (carts per visit): only the lines of the order's session, or for an
    order without one, of the session of the customer's latest own line before it."""
    ordered = sorted(events, key=lambda e: e["event_ts"])
    linked: dict[str, dict[str, str]] = {}
    for event in ordered:
        if event.get("customer_id") and event.get("anonymous_id"):
            linked.setdefault(event["anonymous_id"], {}).setdefault(
                event["customer_id"], event["event_ts"]
            )
    lines = [e for e in ordered if e["event_type"] in ("add_to_cart", "remove_from_cart")]
    previous: dict[str, str] = {}
    bought: dict[tuple, list] = {}
    itemised = {
        (e["customer_id"], e["order_id"])
        for e in ordered
        if e["event_type"] == "purchase" and e.get("product_id") and e.get("order_id")
    }
    for order in ordered:
        if order["event_type"] != "purchase":
            continue
        customer, at = order["customer_id"], order["event_ts"]
        day = date.fromisoformat(at[:10])
        if order.get("product_id") or (customer, order.get("order_id")) in itemised:
            # An order line counts for its product; any purchase empties the cart, and an
            # order whose lines were sent too buys nothing more.
            if order.get("product_id"):
                got = bought.setdefault((customer, order["product_id"], day), [0, Decimal(0)])
                got[0] += 1
                got[1] += Decimal(str(order["price"])) * order["quantity"]
            previous[customer] = max(previous.get(customer, ""), at)
            continue

        since = previous.get(customer, "")

        session = None
        if scope == "session":
            own = [
                x
                for x in lines
                if x.get("customer_id") == customer and _open(x, since, at, lookback_days)
            ]
            latest = own[-1]["session_id"] if own else None
            session = order.get("session_id") or latest or "no session"
        cart: dict[str, list] = {}
        for line in lines:
            if _open(line, since, at, lookback_days) and _owns(order, line, linked, session):
                sign = 1 if line["event_type"] == "add_to_cart" else -1
                got = cart.setdefault(line["product_id"], [0, line["price"]])
                got[0] += sign * line["quantity"]
        previous[customer] = at
        for product, (quantity, price) in cart.items():
            if quantity > 0:
                got = bought.setdefault((customer, product, day), [0, Decimal(0)])
                got[0] += 1
                got[1] += Decimal(str(price)) * quantity
    return sorted((*key, count, revenue) for key, (count, revenue) in bought.items())


_BOUGHT = """
    select customer_id, product_id, activity_date, purchases, revenue
    from marts.customer_product_daily
    where purchases > 0
    order by all
"""


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[list[tuple]]]:
    """The warehouse's bought rows after each night: the first, the second, the late file,
    the fourth and fifth days, the latest files, the first day's files reloaded without
    c5's session; then every (customer, product, day) row of the mart at the end."""
    root = tmp_path_factory.mktemp("cart_purchases")
    settings = settings_in(root, "")
    events = settings.landing / "events"
    seen = []
    for day, files in (
        (DAY_1, {"2026-06-10/tracker.jsonl": FIRST_NIGHT}),
        (DAY_2, {"2026-06-11/tracker.jsonl": SECOND_NIGHT}),
        (DAY_2, {"2026-06-10/late.jsonl": LATE}),
        (
            DAY_5,
            {
                "2026-06-12/tracker.jsonl": THIRD_DAY,
                "2026-06-13/tracker.jsonl": FOURTH_NIGHT,
                "2026-06-14/tracker.jsonl": FIFTH_DAY,
            },
        ),
        (DAY_5, {"2026-06-10/latest.jsonl": LATEST[:1], "2026-06-13/late.jsonl": LATEST[1:]}),
        (
            DAY_6,
            {
                "2026-06-10/tracker.jsonl": RELOADED_FIRST_NIGHT,
                "2026-06-10/latest.jsonl": RELOADED_LATEST,
            },
        ),
    ):
        for part, records in files.items():
            numbered = [{"event_id": f"{part}-{i}", **r} for i, r in enumerate(records)]
            write_jsonl(events / f"dt={part}", numbered)
        ingested = run_ingest(settings, day)
        assert ingested.details["sources"]["events"]["quarantined"] == 0, ingested.summary
        run_transform(settings, day)
        seen.append(fetch(settings.warehouse, _BOUGHT))
    rows = "select customer_id, product_id, activity_date from marts.customer_product_daily"
    seen.append(fetch(settings.warehouse, rows))
    yield seen


def test_each_one_event_order_buys_the_cart_since_the_sessions_previous_order(nights) -> None:
    # c1's second order buys p2, carted between its two orders; c4's second order buys p6
    # again, its first order the one p6 left after the removal, and p7.
    assert nights[0] == _replayed(FIRST_NIGHT)
    assert ("c1", "p2", DAY_1, 1, Decimal("20.00")) in nights[0]
    assert ("c4", "p6", DAY_1, 2, Decimal("8.00")) in nights[0]


def test_an_order_sent_line_by_line_empties_the_cart(nights) -> None:
    # Until 2026-12-07 a later one-event order bought p30 again, and an order sent both
    # ways counted p32 twice.
    assert [row for row in nights[0] if row[0] in ("c20", "c21")] == [
        ("c20", "p30", DAY_1, 1, Decimal("40.00")),
        ("c20", "p31", DAY_1, 1, Decimal("9.00")),
        ("c21", "p32", DAY_1, 1, Decimal("17.00")),
    ]


def test_a_back_ends_order_buys_the_customers_latest_tracker_cart(nights) -> None:
    # The back end's order has no session: it bought nothing, and p13 stayed a cart add
    # (recommended again). The order both sent is counted once.
    assert ("c8", "p13", DAY_1, 1, Decimal("30.00")) in nights[0]
    assert ("c8", "p14", DAY_1, 1, Decimal("3.00")) in nights[0]


def test_a_cart_filled_before_midnight_is_bought_by_the_order_after_it(nights) -> None:
    # The second night rebuilds only its own day, and reads the first night's cart lines.
    assert nights[1] == _replayed(FIRST_NIGHT + SECOND_NIGHT)
    assert ("c2", "p3", DAY_2, 1, Decimal("21.00")) in nights[1]
    # c3 ordered on both sides of midnight: p4 once on each day, p5 after midnight only;
    # nothing counted twice.
    assert [row for row in nights[1] if row[0] == "c3"] == [
        ("c3", "p4", DAY_1, 1, Decimal("10.00")),
        ("c3", "p4", DAY_2, 1, Decimal("5.00")),
        ("c3", "p5", DAY_2, 1, Decimal("11.00")),
    ]


def test_a_late_cart_line_before_midnight_reaches_the_order_after_it(nights) -> None:
    # Only the first day received events; the order it belongs to is on the second.
    assert nights[2] == _replayed(FIRST_NIGHT + SECOND_NIGHT + LATE)
    assert ("c2", "p8", DAY_2, 1, Decimal("9.00")) in nights[2]


def test_a_visitors_cart_before_midnight_is_bought_by_the_order_that_logs_in_after_it(
    nights,
) -> None:
    # The cart lines stay anonymous (the login is on the next day); the order names c6.
    assert ("c6", "p10", DAY_2, 1, Decimal("24.00")) in nights[1]


def test_a_cart_line_days_before_the_order_is_bought_by_it(nights) -> None:
    assert nights[3] == _replayed(
        FIRST_NIGHT + SECOND_NIGHT + LATE + THIRD_DAY + FOURTH_NIGHT + FIFTH_DAY
    )
    assert ("c5", "p9", DAY_4, 1, Decimal("8.00")) in nights[3]
    assert ("c7", "p11", DAY_5, 1, Decimal("15.00")) in nights[3]


def test_late_cart_lines_reach_an_order_days_later_and_empty_a_day(nights) -> None:
    # A late add three days before c5's order is bought by it; a late removal before
    # midnight leaves c7's order nothing, and its day (events left, no row) is emptied.
    everything = FIRST_NIGHT + SECOND_NIGHT + LATE + THIRD_DAY + FOURTH_NIGHT + FIFTH_DAY + LATEST
    assert nights[4] == _replayed(everything)
    assert ("c5", "p12", DAY_4, 1, Decimal("2.00")) in nights[4]
    assert ("c7", "p11", DAY_5, 1, Decimal("15.00")) in nights[3]
    assert [row for row in nights[6] if row[2] == DAY_5] == []


def test_a_cart_is_kept_across_visits(nights) -> None:
    # c10 carted p15 (and p16, taken out) in one visit and ordered the next day in
    # another session: the order buys p15. Until 2026-12-07 it bought nothing.
    assert ("c10", "p15", DAY_2, 1, Decimal("12.00")) in nights[1]
    assert [row for row in nights[1] if row[0] == "c10"] == [
        ("c10", "p15", DAY_2, 1, Decimal("12.00"))
    ]


def test_a_back_ends_order_buys_a_linked_visitors_cart(nights) -> None:
    # The cart lines are a11's alone (never logged in on that device); the back end's order
    # names c11 and a11: identity stitching links them, and the order buys p17.
    assert ("c11", "p17", DAY_2, 1, Decimal("13.00")) in nights[1]


def test_a_reload_deleting_a_sessions_day_takes_back_its_later_orders_purchases(
    nights,
) -> None:
    # Only 10 June was reloaded; c5's order on 13 June bought p9 and p12 of that day, and
    # c12's order on 12 June a12's p19 (a visitor's line: no row of the mart names it);
    # both must buy nothing now, without a full rebuild.
    everything = [*RELOADED_FIRST_NIGHT, *SECOND_NIGHT, *LATE, *THIRD_DAY, *FOURTH_NIGHT]
    everything += FIFTH_DAY + LATEST[1:] + RELOADED_LATEST
    assert nights[5] == _replayed(everything)
    assert ("c12", "p19", DAY_3, 1, Decimal("5.00")) in nights[4]
    assert [row for row in nights[5] if row[0] in ("c5", "c12")] == []


def _settings_with_cart_scope(root: Path, scope: str):
    """Settings under ``root`` whose dbt project is a copy of this one with ``cart_scope:
    scope``."""
    project = root / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    path = project / "dbt_project.yml"
    data = yaml.safe_load(path.read_text())
    data["vars"]["cart_scope"] = scope
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = settings_in(root, "")
    return dataclasses.replace(
        settings, transform=dataclasses.replace(settings.transform, dbt_project_dir=project)
    )


@pytest.fixture(scope="module")
def session_nights(tmp_path_factory: pytest.TempPathFactory) -> list[list[tuple]]:
    """The bought rows after the first and the second night, built by a copy of the dbt
    project with ``cart_scope: session`` (carts per visit)."""
    settings = _settings_with_cart_scope(tmp_path_factory.mktemp("cart_scope_session"), "session")
    return _nights(
        settings,
        [
            (DAY_1, {"2026-06-10/tracker.jsonl": FIRST_NIGHT}),
            (DAY_2, {"2026-06-11/tracker.jsonl": SECOND_NIGHT}),
        ],
    )


def test_a_cart_per_visit_is_bought_only_by_its_visits_order(session_nights) -> None:
    assert session_nights[0] == _replayed(FIRST_NIGHT, scope="session")
    assert session_nights[1] == _replayed(FIRST_NIGHT + SECOND_NIGHT, scope="session")
    # c10 carted p15 in one visit and ordered in another: with carts per visit, nothing.
    assert [row for row in session_nights[1] if row[0] == "c10"] == []
    # A back end's order buys the cart of the customer's latest visit; a visitor's cart
    # before the login is bought by the order of its session.
    assert ("c8", "p13", DAY_1, 1, Decimal("30.00")) in session_nights[0]
    assert ("c6", "p10", DAY_2, 1, Decimal("24.00")) in session_nights[1]
    # The linked visitor's cart on another device is not the back end's order's visit.
    assert [row for row in session_nights[1] if row[0] == "c11"] == []
    # The rest of the second night's orders buy as with carts kept across visits.
    assert ("c2", "p3", DAY_2, 1, Decimal("21.00")) in session_nights[1]


def test_an_unknown_cart_scope_stops_the_build(tmp_path) -> None:
    settings = _settings_with_cart_scope(tmp_path, "visit")
    numbered = [{"event_id": f"e{i}", **r} for i, r in enumerate(FIRST_NIGHT[:2])]
    write_jsonl(settings.landing / "events" / "dt=2026-06-10", numbered)
    run_ingest(settings, DAY_1)
    with pytest.raises(Exception, match="cart_scope"):
        run_transform(settings, DAY_1)


def test_a_changed_cart_scope_rebuilds_the_past_days_on_the_next_night(tmp_path) -> None:
    # Two nights with carts kept across visits, then the shop sets cart_scope: session in
    # dbt_project.yml. Until 2026-12-07 the next night built its own day per visit and
    # kept the past days as they were (c10's order in another visit still bought p15)
    # until a full refresh by hand.
    settings = _settings_with_cart_scope(tmp_path, "customer")
    for day, part, records in (
        (DAY_1, "2026-06-10/tracker.jsonl", FIRST_NIGHT),
        (DAY_2, "2026-06-11/tracker.jsonl", SECOND_NIGHT),
    ):
        numbered = [{"event_id": f"{part}-{i}", **r} for i, r in enumerate(records)]
        write_jsonl(settings.landing / "events" / f"dt={part}", numbered)
        run_ingest(settings, day)
        assert run_transform(settings, day).details["var_full_refresh"] is None
    assert ("c10", "p15", DAY_2, 1, Decimal("12.00")) in fetch(settings.warehouse, _BOUGHT)

    changed = _settings_with_cart_scope(tmp_path / "session", "session")
    settings = dataclasses.replace(settings, transform=changed.transform)
    numbered = [{"event_id": f"t{i}", **r} for i, r in enumerate(THIRD_DAY)]
    write_jsonl(settings.landing / "events" / "dt=2026-06-12" / "tracker.jsonl", numbered)
    run_ingest(settings, DAY_3)
    result = run_transform(settings, DAY_3)
    assert result.details["var_full_refresh"] == {
        "vars": {"cart_scope": ['"customer"', '"session"']},
        "models": ["customer_product_daily"],
    }
    assert any("cart_scope" in w and "customer_product_daily" in w for w in result.warnings)
    # The feature history is not built from the product days: it keeps its snapshots as
    # they were, none rebuilt.
    assert result.details["history_snapshots_rebuilt"] == []
    bought = fetch(settings.warehouse, _BOUGHT)
    assert bought == _replayed(FIRST_NIGHT + SECOND_NIGHT + THIRD_DAY, scope="session")
    assert [row for row in bought if row[0] == "c10"] == []
    # Recorded: the night after is incremental again.
    assert run_transform(settings, DAY_3).details["var_full_refresh"] is None


def _nights(settings, nights: list[tuple[date, dict[str, list[dict]]]]) -> list[list[tuple]]:
    """Land each night's files (path under ``events/dt=`` -> records), ingest and build;
    the bought rows after each night."""
    seen = []
    for day, files in nights:
        for part, records in files.items():
            numbered = [{"event_id": f"{part}-{i}", **r} for i, r in enumerate(records)]
            write_jsonl(settings.landing / "events" / f"dt={part}", numbered)
        ingested = run_ingest(settings, day)
        assert ingested.details["sources"]["events"]["quarantined"] == 0, ingested.summary
        run_transform(settings, day)
        seen.append(fetch(settings.warehouse, _BOUGHT))
    return seen


def test_a_reload_of_as_many_events_takes_back_a_deleted_visitors_line(tmp_path) -> None:
    # a12's cart line (a visitor's: no row of the mart names it) on 10 June is bought two
    # days later by the order that logs in c12. 10 June is reloaded without it and with
    # another customer's line instead: as many events as before. Until 2026-12-07 only a
    # reload that left fewer events was seen to delete any, and c12 kept p19.
    first = [
        _cart("add_to_cart", None, "2026-06-10T16:00:00Z", "s14", "p19", 5, anonymous="a12"),
        _cart("add_to_cart", "c1", "2026-06-10T10:00:00Z", "s1", "p1", 10),
    ]
    reloaded = [first[1], _cart("add_to_cart", "c2", "2026-06-10T11:00:00Z", "s2", "p2", 3)]
    seen = _nights(
        settings_in(tmp_path, ""),
        [
            (DAY_3, {"2026-06-10/tracker.jsonl": first, "2026-06-12/tracker.jsonl": THIRD_DAY}),
            (DAY_4, {"2026-06-10/tracker.jsonl": reloaded}),
        ],
    )
    assert seen[0] == [("c12", "p19", DAY_3, 1, Decimal("5.00"))]
    assert seen[1] == _replayed(reloaded + THIRD_DAY) == []


def test_a_one_event_copy_of_an_order_whose_lines_are_outside_the_lookback_buys_nothing(
    tmp_path,
) -> None:
    # c30's order o30 sent line by line on 1 June; the shop's back end sends the same order
    # as one event on 10 June, nine days later (more than cart_lookback_days). A late cart
    # line of 9 June rebuilds 9 and 10 June: until 2026-12-07 that rebuild read orders from
    # 2 June on only, missed the lines, and the copy bought c30's cart (p2 and p3) although
    # the full build had not.
    lines = [
        _cart("add_to_cart", "c30", "2026-06-01T10:00:00Z", "s30", "p1", 10),
        _line_item("c30", "2026-06-01T10:05:00Z", "s30", "o30", "p1", 10),
    ]
    cart = [_cart("add_to_cart", "c30", "2026-06-09T10:00:00Z", "s31", "p2", 20)]
    copy = [_order("c30", "2026-06-10T10:00:00Z", None, "o30", 10)]
    late = [_cart("add_to_cart", "c30", "2026-06-09T11:00:00Z", "s31", "p3", 5)]
    seen = _nights(
        settings_in(tmp_path, ""),
        [
            (
                DAY_1,
                {
                    "2026-06-01/tracker.jsonl": lines,
                    "2026-06-09/tracker.jsonl": cart,
                    "2026-06-10/backend.jsonl": copy,
                },
            ),
            (DAY_2, {"2026-06-09/late.jsonl": late}),
        ],
    )
    only_the_line = [("c30", "p1", date(2026, 6, 1), 1, Decimal("10.00"))]
    assert seen[0] == _replayed(lines + cart + copy) == only_the_line
    assert seen[1] == _replayed(lines + cart + copy + late) == only_the_line
