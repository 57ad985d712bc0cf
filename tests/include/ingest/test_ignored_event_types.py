"""``[ingest] ignored_event_types``: a tracker's other calls (identify, custom events) are
counted and dropped, not quarantined, so they neither fill the quarantine nor trip the
quarantined-share gate; every other rule still applies to every other record."""

from __future__ import annotations

import dataclasses

import pytest

from segmint.audiences.erasure import erase_customers
from segmint.config import ConfigError, IngestSettings
from segmint.ingest import check_quality_gate, run_ingest
from segmint.ingest.contract import ignored_event_types
from tests.include.ingest.conftest import D1, D2, event, write_jsonl, write_lines


def _ignoring(settings, *names: str, **more):
    ingest = IngestSettings(ignored_event_types=list(names), **more)
    return dataclasses.replace(settings, ingest=ingest)


def _records():
    return [
        event("e1"),  # line 1: loaded
        event("e2", event_type="Signed Up", customer_id=None, anonymous_id="a1"),  # ignored
        event("e3", event_type="identify", event_ts="not a time"),  # ignored: no rule applies
        event("e4", event_type="teleport"),  # quarantined: not ignored, not segmint's
        '{"event_id": "e5", "event_type": "Signed Up"',  # malformed: quarantined
        event("e6", event_type="purchase"),  # quarantined: purchase without order or revenue
        event("e1", event_type="signed up "),  # ignored (case and spaces), not a duplicate
        event("e7", event_type=None),  # quarantined: no event_type at all
    ]


def test_listed_event_types_are_counted_not_quarantined(settings, landing, query):
    settings = _ignoring(settings, "Signed Up", "IDENTIFY")
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", _records())
    write_lines(
        landing / "events/dt=2026-06-01/b.csv",
        ["event_id,event_type,event_ts,customer_id", "e8,page_view,2026-06-01T09:00:00Z,c2",
         "e9,Signed Up,2026-06-01T09:00:00Z,c2"],
    )  # fmt: skip

    result = run_ingest(settings, D1)

    assert query("select event_id from raw.events order by 1") == [("e1",), ("e8",)]
    quarantined = query("select source_file, line_number from ops.quarantine order by 1, 2")
    a = "events/dt=2026-06-01/a.jsonl"
    assert quarantined == [(a, 4), (a, 5), (a, 6), (a, 8)]
    manifest = query(
        "select path, rows_read, rows_loaded, rows_quarantined, rows_duplicate, rows_erased, "
        "rows_ignored from ops.load_manifest order by path"
    )
    assert manifest == [(a, 8, 1, 4, 0, 0, 3), ("events/dt=2026-06-01/b.csv", 2, 1, 0, 0, 0, 1)]
    assert "ignored 4 (ignored_event_types)" in result.summary
    assert result.details["sources"]["events"]["ignored"] == 4
    # The event-type rule judged the records segmint reads, not the ignored ones.
    assert query(
        "select element_count, unexpected_count from ops.validation_runs "
        "where source_file = ? and rule = 'event_type_known'",
        [a],
    ) == [(4, 1)]


def test_star_ignores_every_type_segmint_does_not_know(settings, landing, query):
    settings = _ignoring(settings, "*")
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", _records())
    run_ingest(settings, D1)
    a = "events/dt=2026-06-01/a.jsonl"
    # teleport is ignored now; a record without any event_type is still quarantined, and so
    # is the identify call with a bad timestamp: identify is segmint's (it links ids), so
    # "*" keeps it unless it is named.
    assert query("select line_number from ops.quarantine order by 1") == [(3,), (5,), (6,), (8,)]
    assert query("select rows_ignored, rows_quarantined from ops.load_manifest") == [(3, 4)]
    assert query("select count(*) from ops.quarantine where source_file = ?", [a]) == [(4,)]


def test_ignored_records_do_not_count_in_the_quarantined_share(settings, landing):
    """Nine custom events and one bad record of ten read: 100% of what segmint reads is
    quarantined, and the gate says so (10% of all rows would hide it)."""
    settings = _ignoring(settings, "*", max_quarantine_share=0.5)
    records = [event(f"c{i}", event_type="Video Played") for i in range(9)]
    write_jsonl(
        landing / "events/dt=2026-06-01/a.jsonl", [*records, event("x", event_type="purchase")]
    )
    run_ingest(settings, D1)
    with pytest.raises(Exception, match=r"100\.0% of its 1 rows were quarantined"):
        check_quality_gate(settings, D1)


def test_an_erased_customers_ignored_records_count_as_erased(settings, landing, query):
    settings = _ignoring(settings, "Signed Up")
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("e1", customer_id="c1")])
    run_ingest(settings, D1)
    erase_customers(settings, ["c1"])
    write_jsonl(
        landing / "events/dt=2026-06-02/a.jsonl",
        [event("e2", D2, customer_id="c1", event_type="Signed Up"), event("e3", D2)],
    )
    run_ingest(settings, D2)
    assert query(
        "select rows_read, rows_loaded, rows_erased, rows_ignored from ops.load_manifest "
        "where partition_date = ?",
        [D2],
    ) == [(2, 0, 2, 0)]


def test_the_setting_is_checked():
    assert ignored_event_types([" Signed Up", "*", "signed up"]) == (("signed up",), True)
    # identify is segmint's, but only links ids: a shop may drop it
    assert ignored_event_types(["Identify", "*"]) == (("identify",), True)
    with pytest.raises(ConfigError, match="'Purchase' is segmint's event type 'purchase'"):
        ignored_event_types(["Purchase"])
    with pytest.raises(ConfigError, match="segmint's event type 'purchase'"):
        ignored_event_types(["Order Completed"], {"Order Completed": "purchase"})
    with pytest.raises(ConfigError, match="expected a list"):
        ignored_event_types("identify")
    with pytest.raises(ConfigError, match="an empty name"):
        ignored_event_types([" "])
