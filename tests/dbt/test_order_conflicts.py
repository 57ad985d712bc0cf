"""Order ids that come with more than one customer or amount are reported, not dropped unseen.

marts.orders keeps one row per order_id, from its first purchase event (the contract). Order
numbers that restart per store or till give two customers the same id: the second customer's
order counted nowhere and nothing said so. marts.order_conflicts lists such ids and the
transform stage warns; a resent order with the same customer and amount is no conflict.
Through the real ingest and ``dbt build``.
"""

from __future__ import annotations

from datetime import date

import duckdb

from segmint.config import Settings
from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.include.ingest.conftest import write_jsonl, write_lines

AS_OF = date(2026, 6, 30)


def _purchase(event_id: str, customer: str, order: str, revenue: float, day: int) -> dict:
    return {
        "event_id": event_id,
        "event_type": "purchase",
        "event_ts": f"2026-06-{day}T10:00:00Z",
        "customer_id": customer,
        "order_id": order,
        "revenue": revenue,
    }


def test_orders_sent_with_two_customers_or_amounts_are_reported(tmp_path):
    settings = Settings().with_overrides(
        warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing", output=tmp_path / "out"
    )
    write_jsonl(
        settings.landing / "events/dt=2026-06-29/pos.jsonl",
        [
            _purchase("p1", "C1", "1001", 40, 29),  # store A's order 1001
            _purchase("r1", "C3", "2002", 15, 29),  # sent twice, same customer and amount
            _purchase("a1", "C4", "3003", 10, 29),  # resent with another amount
        ],
    )
    write_jsonl(
        settings.landing / "events/dt=2026-06-30/pos.jsonl",
        [
            _purchase("p2", "C2", "1001", 900, 30),  # store B's order 1001
            _purchase("r2", "C3", "2002", 15, 30),
            _purchase("a2", "C4", "3003", 12, 30),
        ],
    )
    run_ingest(settings, AS_OF)
    result = run_transform(settings, AS_OF)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        conflicts = con.execute(
            "select order_id, kept_customer_id, kept_revenue::DOUBLE, customer_count, "
            "amount_count, event_count, customer_ids from marts.order_conflicts order by 1"
        ).fetchall()
        orders = con.execute("select count(*) from marts.orders").fetchone()
    finally:
        con.close()
    assert conflicts == [
        ("1001", "C1", 40.0, 2, 2, 2, "C1, C2"),
        ("3003", "C4", 10.0, 1, 2, 2, "C4"),
    ]
    assert orders == (3,)
    assert result.details["order_conflicts"] == 2
    assert result.warnings == [
        "2 order id(s) came with more than one customer or amount: marts.orders keeps each "
        "order's first purchase event, the others count in no order, revenue or RFM figure "
        "(their sessions still show a purchase; order numbers that restart per store?); "
        "see marts.order_conflicts"
    ]
    # The next night brings no conflict: the two of June 30 are not warned of again (they
    # were, every night, for the same old rows), and still counted in the details.
    write_jsonl(
        settings.landing / "events/dt=2026-07-01/pos.jsonl",
        [dict(_purchase("n1", "C5", "4004", 20, 30), event_ts="2026-07-01T10:00:00Z")],
    )
    run_ingest(settings, date(2026, 7, 1))
    later = run_transform(settings, date(2026, 7, 1))
    assert later.details["order_conflicts"] == 2
    assert not [w for w in later.warnings if "order id(s)" in w], later.warnings


def test_customer_ids_that_differ_from_the_crm_only_in_case_are_reported(tmp_path):
    """The tracker sends 'C1', the CRM exports 'c1': ids are compared exactly (they are
    case-sensitive in many systems), so each customer is two, the orders on one and the
    consent on the other, and audiences dropped them all for lack of consent. The transform
    stage now says so."""
    settings = Settings().with_overrides(
        warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing", output=tmp_path / "out"
    )
    write_jsonl(
        settings.landing / "events/dt=2026-06-30/e.jsonl",
        [_purchase(f"p{n}", f"C{n}", f"o{n}", 10, 30) for n in range(3)],
    )
    write_lines(
        settings.landing / "crm/dt=2026-06-30/c.csv",
        ["customer_id,updated_at,email_opt_in", "c0,2026-06-01,true", "c1,2026-06-01,true"],
    )
    run_ingest(settings, AS_OF)
    result = run_transform(settings, AS_OF)
    assert result.details["ids_differing_in_case"] == 2
    assert result.warnings == [
        "2 customer id(s) without a CRM record match a CRM id but for case (events 'C0', CRM "
        "'c0', and 1 more): ids are compared exactly, so each is two customers and the consent "
        "is on the CRM one; make the exports agree"
    ]
    # The next night C0 buys again and C5 comes, the CRM spelling them 'c5': the warning
    # came back for C0 and C1 every night, for the same old rows; it now names the new one
    # only, and ops.customer_ids_differing_in_case keeps each with its first night.
    night = date(2026, 7, 1)
    write_jsonl(
        settings.landing / f"events/dt={night}/e.jsonl",
        [
            dict(_purchase(f"q{n}", f"C{n}", f"q{n}", 10, 30), event_ts=f"{night}T10:00:00Z")
            for n in (0, 5)
        ],
    )
    write_lines(
        settings.landing / f"crm/dt={night}/c.csv",
        ["customer_id,updated_at,email_opt_in", "c5,2026-07-01,true"],
    )
    run_ingest(settings, night)
    later = run_transform(settings, night)
    assert later.details["ids_differing_in_case"] == 3
    assert later.details["ids_differing_in_case_since"] == {
        "C0": "2026-06-30",
        "C1": "2026-06-30",
        "C5": "2026-07-01",
    }
    assert [w for w in later.warnings if "but for case" in w] == [
        "1 customer id(s) without a CRM record match a CRM id but for case (events 'C5', CRM "
        "'c5'): ids are compared exactly, so each is two customers and the consent is on the "
        "CRM one; make the exports agree (and 2 of earlier nights)"
    ]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert con.execute(
            "select customer_id, crm_customer_id, first_as_of_date, last_as_of_date, "
            "gone_as_of_date from ops.customer_ids_differing_in_case order by 1"
        ).fetchall() == [
            ("C0", "c0", AS_OF, night, None),
            ("C1", "c1", AS_OF, night, None),
            ("C5", "c5", night, night, None),
        ]
    finally:
        con.close()


def test_customer_ids_that_are_placeholders_are_reported(tmp_path):
    """An export that writes 'guest' or the text 'null' for a missing customer (JavaScript's
    String(null), WooCommerce's guest orders): read as ids, each is one customer holding
    every guest's orders, silently (a big shop's 'guest' had 2,000 orders and 2,000 devices).
    [ingest.null_values] reads them as missing; the transform stage now names them."""
    settings = Settings().with_overrides(
        warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing", output=tmp_path / "out"
    )
    records = [_purchase(f"g{n}", "guest", f"g{n}", 10, 30) for n in range(3)]
    records += [_purchase("n1", " NULL ", "n1", 10, 30), _purchase("c1", "C1", "c1", 10, 30)]
    for n, record in enumerate(records):
        record["anonymous_id"] = f"device{n}"
    write_jsonl(settings.landing / "events/dt=2026-06-30/e.jsonl", records)
    run_ingest(settings, AS_OF)
    result = run_transform(settings, AS_OF)
    assert result.details["placeholder_customer_ids"] == ["guest", "NULL"]
    assert result.warnings == [
        "customer id(s) 'guest' (3 orders, 3 anonymous ids), 'NULL' (1 orders, 1 anonymous "
        "ids) look like placeholders for 'no customer': read as an id, each is one customer "
        "holding everybody's orders and devices. If an export writes one for guests, name it "
        "in [ingest.null_values.events] customer_id (docs/data-contract.md) and reload the "
        "days with segmint ingest --reload-since"
    ]


def test_a_placeholder_customer_id_is_warned_of_once_per_occurrence(tmp_path):
    """The placeholder warning came back every night for the same old rows ('guest' found
    on June 28 was named again on the 29th, the 30th, ...): a warning that repeats forever
    is ignored, and the new placeholder of a later night drowned in it. It is now warned of
    on the night it is first found (and on a rerun of that night); later nights keep it in
    ops.placeholder_customer_ids and the stage's details, and warn only of new ones."""
    settings = Settings().with_overrides(
        warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing", output=tmp_path / "out"
    )
    nights = [date(2026, 6, 28), date(2026, 6, 29), date(2026, 6, 30)]
    guests = {
        night: [_purchase(f"g{night.day}", "guest", f"g{night.day}", 10, night.day)]
        for night in nights
    }
    guests[nights[2]].append(_purchase("u30", "unknown", "u30", 10, 30))
    found = []
    for night in nights:
        write_jsonl(settings.landing / f"events/dt={night}/e.jsonl", guests[night])
        run_ingest(settings, night)
        result = run_transform(settings, night)
        found.append(
            (
                result.details.get("placeholder_customer_ids_since"),
                [w.split(" look like")[0] for w in result.warnings if "placeholder" in w],
            )
        )
    assert found == [
        ({"guest": "2026-06-28"}, ["customer id(s) 'guest' (1 orders, 0 anonymous ids)"]),
        ({"guest": "2026-06-28"}, []),
        (
            {"guest": "2026-06-28", "unknown": "2026-06-30"},
            ["customer id(s) 'unknown' (1 orders, 0 anonymous ids)"],
        ),
    ]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert con.execute(
            "select customer_id, first_as_of_date, last_as_of_date, order_count, "
            "gone_as_of_date from ops.placeholder_customer_ids order by 1"
        ).fetchall() == [
            ("guest", nights[0], nights[2], 3, None),
            ("unknown", nights[2], nights[2], 1, None),
        ]
    finally:
        con.close()


def test_ids_with_more_hits_in_a_day_than_a_person_are_reported(tmp_path):
    """A crawler that never logs in (one anonymous id, hundreds of thousands of page views in
    a day) is as many rows of marts.sessions, and the night's session figure jumped 25x
    without a word. Ids beyond HEAVY_VISITOR_HITS in a day are named."""
    from segmint.transform import HEAVY_VISITOR_HITS

    settings = Settings().with_overrides(
        warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing", output=tmp_path / "out"
    )
    crawler = [
        {
            "event_id": f"b{n}",
            "event_type": "page_view",
            "event_ts": f"2026-06-30T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "anonymous_id": "crawler-1",
            "session_id": f"s{n // 2}",
        }
        for n in range(HEAVY_VISITOR_HITS + 1)
    ]
    person = [dict(crawler[0], event_id=f"p{n}", anonymous_id="a-person") for n in range(3)]
    write_jsonl(settings.landing / "events/dt=2026-06-30/web.jsonl", crawler + person)
    run_ingest(settings, AS_OF)
    result = run_transform(settings, AS_OF)
    assert result.details["heavy_visitors"] == ["crawler-1"]
    [heavy] = [w for w in result.warnings if "no person's pace" in w]
    assert heavy == (
        "id(s) with more than 5,000 page views, product views, searches and cart adds in a "
        "day, no person's pace (a crawler, a probe, a load test?): anonymous id 'crawler-1': "
        "5,001 on 2026-06-30 (2,501 session(s)). They count in marts.sessions and the session "
        "figure, a customer's in its features and segment; drop them before landing if they "
        'are not people (docs/models.md, "Outliers")'
    )


def test_a_heavy_visitor_whose_id_is_an_e_mail_address_is_named_hashed(tmp_path):
    """Some shops key customers by e-mail address. The heavy-visitor warning goes to the
    task log and the XCom: it printed the address in clear, where the analysts' copy hashes
    it (segmint.audiences.masking). It is named by the same hash, joinable with analyst.*."""
    import hashlib

    from segmint.transform import HEAVY_VISITOR_HITS

    settings = Settings().with_overrides(
        warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing", output=tmp_path / "out"
    )
    address = "alice.smith@example.com"
    scraper = [
        {
            "event_id": f"b{n}",
            "event_type": "page_view",
            "event_ts": f"2026-06-30T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "customer_id": address,
            "session_id": f"s{n // 2}",
        }
        for n in range(HEAVY_VISITOR_HITS + 1)
    ]
    write_jsonl(settings.landing / "events/dt=2026-06-30/web.jsonl", scraper)
    run_ingest(settings, AS_OF)
    result = run_transform(settings, AS_OF)
    hashed = hashlib.sha256(address.encode()).hexdigest()
    assert result.details["heavy_visitors"] == [hashed]
    [heavy] = [w for w in result.warnings if "no person's pace" in w]
    assert address not in heavy
    assert f"customer '{hashed}' (an e-mail address, hashed as in analyst.*): 5,001 on" in heavy
