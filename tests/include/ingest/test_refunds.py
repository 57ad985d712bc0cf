"""Refund events (``event_type`` ``refund``): what loads, what is quarantined and why.

A refund needs ``order_id`` and ``revenue`` (the amount refunded) like a purchase; a negative
amount (WooCommerce's and Stripe's refund rows) is read as its absolute value, a negative
purchase stays quarantined."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from segmint.config import ConfigError, IngestSettings
from segmint.ingest import run_ingest
from segmint.ingest.contract import ignored_event_types
from tests.include.ingest.conftest import D1, event, write_jsonl, write_lines

REFUND = {"event_type": "refund", "order_id": "o1", "revenue": 10}


def _reasons(query, source_file: str) -> dict[int, str]:
    return dict(
        query(
            "select line_number, list_aggregate(reasons, 'string_agg', '; ') "
            "from ops.quarantine where source_file = ?",
            [source_file],
        )
    )


def test_refund_rows_end_where_the_contract_says(settings, landing, query):
    write_jsonl(
        landing / "events/dt=2026-06-01/refunds.jsonl",
        [
            event("positive", **REFUND),
            event("negative", **{**REFUND, "revenue": -12.5}),
            event("text", **{**REFUND, "revenue": "-3.20", "currency": "eur"}),
            event("zero", **{**REFUND, "revenue": 0}),
            event("no_order", **{**REFUND, "order_id": None}),
            event("no_amount", **{**REFUND, "revenue": None}),
            event("not_a_number", **{**REFUND, "revenue": "-lots"}),
            event("no_identity", **{**REFUND, "customer_id": None}),
            # Another identity than the order's: loaded as it is (the models use the order's
            # customer), and an anonymous id alone is an identity.
            event("anonymous", **{**REFUND, "customer_id": None, "anonymous_id": "a1"}),
            # A purchase's negative amount is no refund: quarantined as before.
            event("negative_purchase", event_type="purchase", order_id="o2", revenue=-5),
            event("purchase", event_type="purchase", order_id="o1", revenue=40),
        ],
    )

    result = run_ingest(settings, D1)

    assert not [w for w in result.warnings if "pre-filter" in w]
    loaded = dict(query("select event_id, revenue from raw.events where event_type = 'refund'"))
    assert loaded == {
        "positive": Decimal("10.00"),
        "negative": Decimal("12.50"),
        "text": Decimal("3.20"),
        "zero": Decimal("0.00"),
        "anonymous": Decimal("10.00"),
    }
    assert query("select currency from raw.events where event_id = 'text'") == [("EUR",)]
    assert query("select revenue from raw.events where event_id = 'purchase'") == [
        (Decimal("40.00"),)
    ]
    reasons = _reasons(query, "events/dt=2026-06-01/refunds.jsonl")
    assert set(reasons) == {5, 6, 7, 8, 10}
    assert reasons[5].startswith("refund without order_id")
    assert reasons[6].startswith("refund without revenue")
    assert "revenue is not a number (got -lots)" in reasons[7]
    assert "no identity" in reasons[8]
    assert "revenue is negative" in reasons[10]
    # Neither rule of a refund is read on a purchase, nor the other way round.
    assert not [r for r in reasons.values() if "purchase without" in r]


def test_a_shops_refund_rows_load_with_event_type_aliases(settings, landing, query):
    """WooCommerce's orders export in a semicolon CSV: refunds as their own rows with the
    status `refunded` and a negative amount with a decimal comma."""
    ingest = IngestSettings(
        field_aliases={
            "events": {
                "event_id": ["Row ID"],
                "order_id": ["Order Number"],
                "event_type": ["Order Status"],
                "event_ts": ["Order Date"],
                "customer_id": ["Customer User"],
                "revenue": ["Order Total"],
                "currency": ["Order Currency"],
            }
        },
        event_type_aliases={"completed": "purchase", "refunded": "refund"},
    )
    settings = dataclasses.replace(settings, ingest=ingest)
    write_lines(
        landing / "events/dt=2026-06-01/orders.csv",
        [
            "Row ID;Order Number;Order Status;Order Date;Customer User;Order Total;Order Currency",
            "r1;1001;completed;2026-06-01 09:00:00;7;59,90;EUR",
            "r2;1001;refunded;2026-06-01 11:00:00;7;-19,90;EUR",
            "r3;;refunded;2026-06-01 11:00:00;7;-5,00;EUR",
        ],
    )

    run_ingest(settings, D1)

    assert query(
        "select event_id, event_type, order_id, customer_id, revenue from raw.events "
        "order by event_id"
    ) == [
        ("r1", "purchase", "1001", "7", Decimal("59.90")),
        ("r2", "refund", "1001", "7", Decimal("19.90")),
    ]
    reasons = _reasons(query, "events/dt=2026-06-01/orders.csv")
    assert list(reasons) == [4]
    assert "refund without order_id (looked for 'order_id', 'Order Number')" in reasons[4]


def test_a_stripe_refunds_export_loads_as_the_contract_says(settings, landing, query):
    """Stripe's refunds export with the two columns docs/data-contract.md says to add (the
    event type and the customer): its rows load as refunds of the charge they name."""
    ingest = IngestSettings(
        field_aliases={
            "events": {
                "event_id": ["id"],
                "order_id": ["charge"],
                "event_ts": ["created"],
                "revenue": ["amount"],
            }
        },
    )
    settings = dataclasses.replace(settings, ingest=ingest)
    write_lines(
        landing / "events/dt=2026-06-01/stripe_refunds.csv",
        [
            "id,amount,currency,created,charge,reason,status,event_type,customer_id",
            "re_1,19.90,usd,2026-06-01 10:00:00,ch_1,requested_by_customer,succeeded,refund,c1",
        ],
    )

    run_ingest(settings, D1)

    assert query(
        "select event_id, event_type, order_id, customer_id, revenue, currency from raw.events"
    ) == [("re_1", "refund", "ch_1", "c1", Decimal("19.90"), "USD")]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_refunds_may_be_ignored_like_identify_calls():
    """A tracker's own `refund` events (GA4's) ignored before segmint knew the type: the
    setting still works; purchases still cannot be ignored."""
    assert ignored_event_types(["Refund"]) == (("refund",), False)
    assert ignored_event_types(["refunded"], {"refunded": "refund"}) == (("refunded",), False)
    with pytest.raises(ConfigError, match="purchase"):
        ignored_event_types(["Purchase"])
