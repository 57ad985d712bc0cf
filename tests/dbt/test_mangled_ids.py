"""A shop's customer ids as real exports mangle them, stitched through the real ingest and
``dbt build``: the tracker sends ``12345``, ``c7`` or ``José-1``; the CRM export, saved by
pandas or a spreadsheet, ``12345.0``, the id behind a byte-order mark or a zero-width space,
with a no-break space, in Unicode NFD. Each is one customer in ``marts.customers`` with its
CRM record and its orders. Ids that differ otherwise (``00123`` and ``123``, ``CUS_1`` and
``cus_1``) may be two customers and stay two, each warned of.
docs/data-contract.md, "Ids".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.db import fetch
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_lines

AS_OF = date(2026, 6, 1)
NFC, NFD = "Jos\u00e9-1", "Jose\u0301-1"

# (the tracker's id, the CRM export's id of the same customer, or of another one)
PAIRS = [
    ("12345", "12345.0"),  # pandas: an integer column holding a missing value
    ("c5", "c5\u00a0"),  # a no-break space pasted from a web page
    ("c7", "\ufeffc7"),  # a byte-order mark before the id
    ("c6", "c6\u200b"),  # a zero-width space after it
    (NFC, NFD),  # the same text in Unicode NFD
    ("00123", "123"),  # a spreadsheet dropped the zeros, or another customer
    ("CUS_1", "cus_1"),  # ids are case-sensitive (Shopify gids, Stripe ids)
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    settings = settings_in(tmp_path_factory.mktemp("mangled_ids"), "")
    events = settings.landing / "events/dt=2026-06-01/tracker.jsonl"
    events.parent.mkdir(parents=True)
    events.write_text(
        "".join(
            json.dumps(
                {
                    "event_id": f"e{k}",
                    "event_type": "purchase",
                    "event_ts": "2026-06-01T10:00:00Z",
                    "customer_id": tracker,
                    "order_id": f"o{k}",
                    "revenue": 10 + k,
                },
                ensure_ascii=False,
            )
            + "\n"
            for k, (tracker, _) in enumerate(PAIRS)
        ),
        encoding="utf-8",
    )
    write_lines(
        settings.landing / "crm/dt=2026-06-01/customers.csv",
        ["customer_id,updated_at,email"]
        + [f"{crm},2026-06-01T09:00:00Z,p{k}@example.com" for k, (_, crm) in enumerate(PAIRS)],
    )
    ingested = run_ingest(settings, AS_OF)
    assert ingested.details["sources"]["crm"]["quarantined"] == 0
    transformed = run_transform(settings, AS_OF)
    yield settings.warehouse, transformed.warnings


def test_the_same_customer_written_otherwise_is_one_customer_with_their_orders(built) -> None:
    warehouse, _ = built
    assert fetch(
        warehouse,
        "select customer_id, email, has_crm_record, order_count, revenue_total::double "
        "from marts.customers order by email nulls last, customer_id",
    ) == [
        ("12345", "p0@example.com", True, 1, 10.0),
        ("c5", "p1@example.com", True, 1, 11.0),
        ("c7", "p2@example.com", True, 1, 12.0),
        ("c6", "p3@example.com", True, 1, 13.0),
        (NFC, "p4@example.com", True, 1, 14.0),
        # Kept apart: each of these may be another customer.
        ("123", "p5@example.com", True, 0, 0.0),
        ("cus_1", "p6@example.com", True, 0, 0.0),
        ("00123", None, False, 1, 15.0),
        ("CUS_1", None, False, 1, 16.0),
    ]


def test_ids_differing_in_case_only_are_warned_of(built) -> None:
    _, warnings = built
    assert [w for w in warnings if "but for case" in w] == [
        "1 customer id(s) without a CRM record match a CRM id but for case (events 'CUS_1', "
        "CRM 'cus_1'): ids are compared exactly, so each is two customers and the consent is "
        "on the CRM one; make the exports agree"
    ]


def test_ids_differing_in_leading_zeros_only_are_warned_of(built) -> None:
    """'00123' from the tracker and '123' from a CRM export a spreadsheet saved stay two
    customers (they may be two), and the night says so, naming the pair."""
    warehouse, warnings = built
    assert [w for w in warnings if "leading zeros" in w] == [
        "1 customer id(s) without a CRM record match a CRM id but for leading zeros (events "
        "'00123', CRM '123'): ids are compared exactly, so each is two customers and the "
        "consent is on the CRM one; a spreadsheet drops the zeros of a column it reads as "
        "numbers (format it as text), or they are two customers; make the exports agree"
    ]
    assert fetch(
        warehouse,
        "select customer_id, crm_customer_id, first_as_of_date, gone_as_of_date "
        "from ops.customer_ids_differing_in_leading_zeros",
    ) == [("00123", "123", AS_OF, None)]
