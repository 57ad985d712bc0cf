"""A tracker's identify calls stitch identities and are no visit.

The usual split of a Segment / RudderStack shop: the browser sends page calls with only an
anonymousId, the back end sends "Order Completed" with only a userId, and the identify call
on login is the one record that carries both. Loaded with the shipped example settings
(docs/examples/segment-spec.toml), through the real ingest and ``dbt build``: the anonymous
browsing belongs to the customer who bought, and no identify call makes a session or a visit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from segmint.config import Settings, load_settings
from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.db import fetch
from tests.include.ingest.conftest import write_jsonl

AS_OF = date(2026, 6, 1)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "segment-spec.toml"


def _at(hhmm: str) -> str:
    return f"2026-06-01T{hhmm}:00.000Z"


def _calls() -> list[dict]:
    def page(mid: str, anon: str, hhmm: str) -> dict:
        return {
            "type": "page",
            "messageId": mid,
            "anonymousId": anon,
            "timestamp": _at(hhmm),
            "context": {"page": {"url": "https://shop.example/p/1"}},
        }

    return [
        page("p1", "a1", "09:00"),
        page("p2", "a1", "09:05"),
        {"type": "identify", "messageId": "i1", "anonymousId": "a1", "userId": "u1",
         "timestamp": _at("09:06"), "traits": {"email": "u1@example.com"}},
        page("p3", "a1", "09:08"),
        # the back end's purchase: a userId, no anonymousId
        {"type": "track", "event": "Order Completed", "messageId": "o1", "userId": "u1",
         "timestamp": _at("09:10"),
         "properties": {"order_id": "order-1", "revenue": 40, "currency": "USD"}},
        # someone who signed up and has not browsed yet: known, no visit
        {"type": "identify", "messageId": "i2", "anonymousId": "a2", "userId": "u2",
         "timestamp": _at("18:00")},
        # a back-end identify (no anonymousId) of u1 at night: no link, and no visit
        {"type": "identify", "messageId": "i3", "userId": "u1", "timestamp": _at("23:30")},
        # a visitor who never identifies stays anonymous
        page("p4", "a3", "12:00"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("identify")
    example = load_settings(EXAMPLE, environ={})
    settings = dataclasses.replace(
        Settings(),
        warehouse=root / "segmint.duckdb",
        landing=root / "landing",
        output=root / "output",
    )
    settings = dataclasses.replace(settings, ingest=example.ingest)
    write_jsonl(settings.landing / f"events/dt={AS_OF}/segment.jsonl", _calls())
    run_ingest(settings, AS_OF)
    result = run_transform(settings, AS_OF)
    assert result.rows_out > 0, result.summary
    yield settings.warehouse


def test_identify_calls_are_loaded_as_identify_events(warehouse: Path) -> None:
    rows = fetch(
        warehouse,
        "select event_id, customer_id, anonymous_id from raw.events "
        "where event_type = 'identify' order by event_id",
    )
    assert rows == [("i1", "u1", "a1"), ("i2", "u2", "a2"), ("i3", "u1", None)]
    manifest = "select rows_read, rows_loaded, rows_ignored from ops.load_manifest"
    assert fetch(warehouse, manifest) == [(8, 8, 0)]


def test_the_identify_call_links_the_anonymous_browsing_to_the_buyer(warehouse: Path) -> None:
    assert fetch(
        warehouse, "select anonymous_id, customer_id from marts.identity_map order by 1"
    ) == [("a1", "u1"), ("a2", "u2")]
    sessions = fetch(
        warehouse,
        "select customer_id, anonymous_id, page_views, is_converted, started_at::varchar, "
        "ended_at::varchar from marts.sessions order by started_at",
    )
    assert sessions == [
        ("u1", "a1", 3, True, "2026-06-01 09:00:00", "2026-06-01 09:10:00"),
        (None, "a3", 1, False, "2026-06-01 12:00:00", "2026-06-01 12:00:00"),
    ], "one session of u1 (anonymous pages + order), none made of identify calls"


def test_identify_calls_are_no_visit_but_make_a_known_customer(warehouse: Path) -> None:
    customers = fetch(
        warehouse,
        "select customer_id, anonymous_id_count, session_count, order_count, "
        "last_seen_at::varchar from marts.customers order by 1",
    )
    # u1 was last seen at the order, not at the back end's identify at 23:30
    assert customers == [("u1", 1, 1, 1, "2026-06-01 09:10:00"), ("u2", 1, 0, 0, None)]
    activity = fetch(warehouse, "select customer_id, page_views from marts.customer_daily_activity")
    assert activity == [("u1", 3)]
