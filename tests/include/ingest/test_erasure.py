"""Erased customers stay erased: ingest drops their new records and keeps no text of them."""

from __future__ import annotations

from segmint.audiences.erasure import erase_customers
from segmint.ingest import run_ingest
from tests.include.ingest.conftest import D1, D2, event, write_jsonl, write_lines


def _counts(query, day) -> list[tuple]:
    """Rows read, quarantined and erased of the files of partition ``day``."""
    return query(
        "select rows_read, rows_quarantined, rows_erased from ops.load_manifest "
        "where partition_date = ?",
        [day],
    )


def test_records_of_erased_customers_are_not_ingested(settings, landing, query):
    write_jsonl(
        landing / "events/dt=2026-06-01/a.jsonl",
        [event("e1", customer_id="c1", anonymous_id="anon1"), event("e2", customer_id="c2")],
    )
    write_lines(
        landing / "crm/dt=2026-06-01/c.csv",
        ["customer_id,updated_at,email", "c1,2026-05-01,one@example.com", "c2,2026-05-01,"],
    )
    run_ingest(settings, D1)
    erase_customers(settings, ["c1"])
    assert query("select count(*) from raw.events where customer_id = 'c1'") == [(0,)]

    # A late delivery holds more of c1: by customer_id, by a linked anonymous id only, a
    # record that fails validation and an unreadable line that mentions them.
    write_jsonl(
        landing / "events/dt=2026-06-02/b.jsonl",
        [
            event("e3", D2, customer_id="c1"),
            event("e4", D2, customer_id=None, anonymous_id="anon1"),
            event("e5", D2, customer_id="c1", event_type="teleport"),
            '{"event_id": "e6", "customer_id": "c1", ',
            event("e7", D2, customer_id="c2"),
            event("e8", D2, customer_id="c2", event_type="teleport"),
            event("e2", D2, customer_id="c2"),
        ],
    )
    write_lines(
        landing / "crm/dt=2026-06-02/c.csv",
        ["customer_id,updated_at,email", "c1,2026-06-01,one@example.com", "c2,2026-06-01,"],
    )
    result = run_ingest(settings, D2)
    assert result.details["sources"]["events"]["erased"] == 4
    assert "erased 5" in result.summary

    # Nothing of c1 anywhere: raw tables, quarantine, duplicates.
    assert query(
        "select count(*) from raw.events where customer_id = 'c1' or anonymous_id = 'anon1'"
    ) == [(0,)]
    assert query("select customer_id from raw.customers order by all") == [("c2",), ("c2",)]
    assert query("select count(*) from ops.quarantine where raw_record like '%c1%'") == [(0,)]
    assert query("select source_file, line_number from ops.quarantine") == [
        ("events/dt=2026-06-02/b.jsonl", 6)
    ]
    # Everyone else's records went where they always go.
    assert {r[0] for r in query("select event_id from raw.events")} == {"e2", "e7"}
    assert query("select source_file, line_number from ops.duplicates") == [
        ("events/dt=2026-06-02/b.jsonl", 7)
    ]
    # Row accounting holds with the new category, for every file.
    manifest = {
        r[0]: r[1:]
        for r in query(
            "select path, rows_read, rows_loaded, rows_quarantined, rows_duplicate, rows_erased "
            "from ops.load_manifest"
        )
    }
    for path, (read, loaded, quarantined, duplicate, erased) in manifest.items():
        assert read == loaded + quarantined + duplicate + erased, path
    assert manifest["events/dt=2026-06-02/b.jsonl"] == (7, 1, 1, 1, 4)
    assert manifest["crm/dt=2026-06-02/c.csv"] == (2, 1, 0, 0, 1)
    assert manifest["events/dt=2026-06-01/a.jsonl"][4] == 0


def test_numeric_ids_erase_only_their_own_records(settings, landing, query):
    """After erasing customer 1, another customer's quarantined record holding a quantity
    of 1 or a URL /p/1 is still quarantined: its ids were read and are not 1. A record whose
    ids cannot be read is matched word by word, and erased when any word is an erased id."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("d1", customer_id="1")])
    run_ingest(settings, D1)
    erase_customers(settings, ["1"])
    write_jsonl(
        landing / "events/dt=2026-06-02/b.jsonl",
        [
            event("x1", D2, customer_id="2", event_type="purchase", quantity=1, order_id="o-7"),
            event(
                "x2", D2, customer_id="3", event_type="teleport", page_url="https://s.example/p/1"
            ),
            '{"event_id": "x3", "customer_id": "1", "event_type": "page_',  # unreadable, theirs
            '{"event_id": "x4", "customer_id": "4", "event_type": "page_',  # unreadable, not
        ],
    )
    run_ingest(settings, D2)
    assert query("select line_number from ops.quarantine order by 1") == [(1,), (2,), (4,)]
    assert _counts(query, D2) == [(4, 3, 1)]


def test_ids_with_colons_slashes_or_pipes_are_found_in_unreadable_records(settings, landing, query):
    """Auth0 user ids (``auth0|5f7c...``) and Shopify's global ids
    (``gid://shopify/Customer/7001``) hold characters that cut a record into words: an
    unreadable record of such an erased customer is still theirs, and is not quarantined."""
    auth0, gid = "auth0|5f7c8ec7c33c", "gid://shopify/Customer/7001"
    write_jsonl(
        landing / "events/dt=2026-06-01/a.jsonl",
        [event("d1", customer_id=auth0), event("d2", customer_id=gid)],
    )
    run_ingest(settings, D1)
    erase_customers(settings, [auth0, gid])
    write_jsonl(
        landing / "events/dt=2026-06-02/b.jsonl",
        [
            f'{{"event_id": "x1", "customer_id": "{auth0}", "page_url": "https://s.example/?e=a@b.c',
            f'{{"event_id":"x2","customer_id":"{gid}","event_type":"page_',
            '{"event_id": "x3", "customer_id": "auth0|someone-else", "event_type": "page_',
        ],
    )
    run_ingest(settings, D2)
    assert query("select line_number from ops.quarantine") == [(3,)]
    assert _counts(query, D2) == [(3, 1, 2)]


def test_quarantined_crm_record_keeps_its_customer_id_and_is_erased_once(settings, landing, query):
    """A quarantined CRM record keeps the customer_id read from it (it holds the customer
    out of the audiences); erasing the customer deletes it, counted once."""
    write_lines(
        landing / "crm/dt=2026-06-01/c.csv",
        [
            "customer_id,updated_at,email,email_opt_in",
            "c1,2026-05-01,one@example.com,true",
            "c1,not-a-date,one@example.com,false",
            ",2026-05-01,nobody@example.com,false",
            "c2,2026-05-01,,true",
        ],
    )
    run_ingest(settings, D1)
    assert query("select line_number, customer_id from ops.quarantine order by 1") == [
        (3, "c1"),
        (4, None),
    ]
    result = erase_customers(settings, ["c1"])
    assert result.tables["ops.quarantine"] == 1
    assert result.rows_deleted == sum(result.tables.values())
    assert query("select line_number from ops.quarantine") == [(4,)]
