"""A night of a real shop's exports, written by hand as the tools write them, not by the generator.

Segment's track, page, identify and group calls (nested ``context`` and ``properties``,
``userId`` / ``anonymousId``, timestamps with offsets) through the shipped example settings
(docs/examples/segment-spec.toml); a French back end's orders export written by Python on
Windows (semicolons, CR CR LF line ends, amounts grouped with a no-break space); HubSpot's
contacts export (byte-order mark, CRLF, quoted cells with line breaks, an empty trailing
column, headers with spaces and capitals, a bare CR in an unquoted city). Run as a new user
runs it: ``segmint --config FILE run --landing ... --warehouse ... --as-of ...``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.db import fetch

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "segment-spec.toml"
AS_OF = "2026-06-02"
NBSP = "\u00a0"
# The orders of the back end's export and of the tracker: (order, customer, amount as
# written, amount).
BACK_END = [
    ("FR-1", "1003", f"1{NBSP}234,50", Decimal("1234.50")),
    ("FR-2", "1003", "89,90", Decimal("89.90")),
    ("FR-3", "1002", f"12{NBSP}000,00", Decimal("12000.00")),
]
TRACKER = [("T-1", "1001", 119.8, Decimal("119.80")), ("T-2", "1002", 45, Decimal("45.00"))]
# A search whose query holds a raw carriage return: invalid JSON, one record quarantined.
RAW_CR_LINE = (
    '{"type":"track","event":"Products Searched","messageId":"s-1","userId":"1001",'
    '"properties":{"query":"red\rshoes"},"timestamp":"2026-06-01T11:00:00+02:00"}'
)


def _segment_lines() -> list[str]:
    context = {
        "library": {"name": "analytics.js", "version": "5.2.0"},
        "page": {"url": "https://shop.example/p/1", "referrer": "https://www.google.com/"},
        "campaign": {"source": "newsletter", "medium": "email", "name": "june"},
        "device": {"type": "mobile"},
        "locale": "fr-FR",
    }
    calls: list[dict] = []
    for k, (order, customer, amount, _) in enumerate(TRACKER):
        anon = f"anon-{k}"
        calls += [
            {
                "type": "page",
                "messageId": f"p-{k}",
                "anonymousId": anon,
                "properties": {"url": "https://shop.example/", "title": "Home"},
                "context": context,
                "timestamp": f"2026-06-01T10:0{k}:00.123+02:00",
                "sentAt": "2026-06-01T08:00:01.000Z",
            },
            {
                "type": "identify",
                "messageId": f"i-{k}",
                "anonymousId": anon,
                "userId": customer,
                "traits": {"email": f"{customer}@example.com"},
                "context": context,
                "timestamp": f"2026-06-01T10:1{k}:00+02:00",
            },
            {
                "type": "track",
                "event": "Product Viewed",
                "messageId": f"v-{k}",
                "anonymousId": anon,
                "userId": customer,
                "properties": {"product_id": "SKU-1", "category": "Shoes", "price": 59.9},
                "context": context,
                "timestamp": f"2026-06-01T04:2{k}:00-04:00",
            },
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": f"o-{k}",
                "userId": int(customer),
                "properties": {
                    "order_id": order,
                    "total": amount,
                    "currency": "EUR",
                    "products": [{"product_id": "SKU-1", "quantity": 2}],
                },
                "context": context,
                "timestamp": f"2026-06-01T08:3{k}:00Z",
            },
        ]
    calls.append({"type": "group", "messageId": "g-1", "userId": "1001", "groupId": "acme"})
    lines = [json.dumps(c) for c in calls]
    lines.insert(3, RAW_CR_LINE)
    return lines


def _landing(root: Path) -> None:
    events = root / "events" / f"dt={AS_OF}"
    crm = root / "crm" / f"dt={AS_OF}"
    events.mkdir(parents=True)
    crm.mkdir(parents=True)
    (events / "segment.jsonl").write_bytes(("\n".join(_segment_lines()) + "\n").encode())
    orders = ["event_id;event_type;event_ts;customer_id;order_id;revenue;currency"] + [
        f"{o};purchase;2026-06-01 1{k}:00:00 +0200;{c};{o};{a};EUR"
        for k, (o, c, a, _) in enumerate(BACK_END)
    ]
    (events / "commandes.csv").write_bytes("".join(r + "\r\r\n" for r in orders).encode())
    (crm / "hubspot-contacts.csv").write_bytes(
        (
            "\ufeff"
            '"Record ID","First Name","Last Name","Email","City","Last Modified Date",'
            '"Marketing contact status","Notes",\r\n'
            '"1001","Anne","Müller","Anne@Example.com","Paris","2026-06-01 14:03",'
            '"Marketing contact","called ""twice""\r\nasked for a refund",\r\n'
            '"1002","Bob","O\'Brien","bob@example.com","Lyon","2026-06-01 09:00",'
            '"Non-marketing contact","",\r\n'
            "1003,Chloé,Petit,chloe@example.fr,Saint\rDenis,2026-06-01 10:00,"
            "Marketing contact,,\r\n"
        ).encode()
    )


def _config(path: Path) -> Path:
    settings = EXAMPLE.read_text().replace(
        "\n[ingest]\n",
        "\n[ingest]\n"
        "min_quarantined_rows = 5\n"
        'true_values = ["marketing contact"]\n'
        'false_values = ["non-marketing contact"]\n',
        1,
    )
    settings += (
        "\n[ingest.field_aliases.crm]\n"
        'customer_id = ["Record ID"]\n'
        'updated_at = ["Last Modified Date"]\n'
        'first_name = ["First Name"]\n'
        'last_name = ["Last Name"]\n'
        'email_opt_in = ["Marketing contact status"]\n'
        "\n[transform]\n"
        'reporting_currency = "EUR"\n'
    )
    path.write_text(settings)
    return path


def test_a_night_of_a_real_shops_exports(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _landing(landing)
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "segmint.cli",
            "--config",
            _config(tmp_path / "segmint.toml"),
            "run",
            "--landing",
            landing,
            "--warehouse",
            warehouse,
            "--output",
            tmp_path / "output",
            "--as-of",
            AS_OF,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "9 stage(s) done" in result.stdout

    def query(sql: str) -> list[tuple]:
        return fetch(warehouse, sql)

    # Every record is loaded, quarantined or ignored (the group call).
    assert query(
        "select path, rows_read, rows_loaded, rows_quarantined, rows_ignored "
        "from ops.load_manifest order by 1"
    ) == [
        (f"crm/dt={AS_OF}/hubspot-contacts.csv", 3, 3, 0, 0),
        (f"events/dt={AS_OF}/commandes.csv", 3, 3, 0, 0),
        (f"events/dt={AS_OF}/segment.jsonl", 10, 8, 1, 1),
    ]
    assert query("select source_file, line_number, raw_record from ops.quarantine") == [
        (f"events/dt={AS_OF}/segment.jsonl", 4, RAW_CR_LINE)
    ]
    # The lines after the quarantined one keep the numbers an editor shows.
    assert query(
        "select event_id, _source_line from raw.events where _source_file like '%.jsonl' order by 2"
    ) == [
        ("p-0", 1),
        ("i-0", 2),
        ("v-0", 3),
        ("o-0", 5),
        ("p-1", 6),
        ("i-1", 7),
        ("v-1", 8),
        ("o-1", 9),
    ]
    # Revenue: every order of both sources, at the amount written.
    expected = {o: (c, amount) for o, c, _, amount in BACK_END + TRACKER}
    orders = query("select order_id, customer_id, revenue from marts.orders order by 1")
    assert orders == sorted((o, c, amount) for o, (c, amount) in expected.items())
    assert sum(r for *_, r in orders) == Decimal("13489.20")
    assert query(
        "select customer_id, email, city, email_opt_in, _extra->>'notes' "
        "from raw.customers order by 1"
    ) == [
        # The note's line break as HubSpot wrote it (CRLF), as DuckDB's read_csv and Python's
        # csv read it, although the file's bare CR (Saint\rDenis) makes it read from a copy.
        ("1001", "anne@example.com", "Paris", True, 'called "twice"\r\nasked for a refund'),
        ("1002", "bob@example.com", "Lyon", False, None),
        ("1003", "chloe@example.fr", "Saint\rDenis", True, None),
    ]
    # The identify calls link each browser to its customer; each customer's revenue is the
    # sum of their orders from both sources.
    revenue: dict[str, Decimal] = {}
    for customer, amount in expected.values():
        revenue[customer] = revenue.get(customer, Decimal(0)) + amount
    assert query(
        "select customer_id, anonymous_id_count, order_count, revenue_total "
        "from marts.customers order by 1"
    ) == [
        ("1001", 1, 1, revenue["1001"]),
        ("1002", 1, 2, revenue["1002"]),
        ("1003", 0, 2, revenue["1003"]),
    ]
