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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from segmint.config import PropensitySettings, Settings, load_settings
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


def _segment_spec_settings(root: Path, **overrides: Any) -> Settings:
    """Settings of a warehouse, landing zone and output under ``root``, reading Segment's
    names as the example settings file does."""
    return dataclasses.replace(
        Settings(),
        warehouse=root / "segmint.duckdb",
        landing=root / "landing",
        output=root / "output",
        ingest=load_settings(EXAMPLE, environ={}).ingest,
        **overrides,
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("identify")
    settings = _segment_spec_settings(root)
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


def test_a_customer_known_from_an_identify_call_has_features(warehouse: Path) -> None:
    """u2 (an identify call, no CRM record, no visit) was a row of marts.customers and of no
    snapshot of the features: no segment, no score, no audience for a fresh sign-up. Both
    tables now hold them, first seen at the identify call, a new customer with no activity."""
    features = fetch(
        warehouse,
        "select customer_id, first_seen_at::varchar, tenure_days, order_count, sessions_30d, "
        "rfm_segment, email_opt_in from marts.customer_features order by 1",
    )
    assert features == [
        ("u1", "2026-06-01 09:00:00", 0, 1, 1, "Too few buyers", False),
        ("u2", "2026-06-01 18:00:00", 0, 0, 0, "No orders", False),
    ]
    customers = fetch(
        warehouse, "select customer_id, first_seen_at::varchar from marts.customers order by 1"
    )
    assert customers == [("u1", "2026-06-01 09:00:00"), ("u2", "2026-06-01 18:00:00")]
    segments = fetch(
        warehouse,
        "select segment from marts.customer_rule_segments "
        "where customer_id = 'u2' and segment like 'lifecycle_%'",
    )
    assert segments == [("lifecycle_new",)]


def test_a_late_identify_call_makes_a_known_customer_from_its_day_on(tmp_path: Path) -> None:
    """An identify call loaded after its day's snapshot was built (a late file) is in that
    snapshot once it is rebuilt, and in no snapshot before its day: point in time."""
    settings = _segment_spec_settings(
        tmp_path,
        # one cut-off snapshot, the day before the as-of date
        propensity=PropensitySettings(horizon_days=1, training_cutoffs=1),
    )
    night = AS_OF + timedelta(days=1)
    calls = [c for c in _calls() if c["messageId"] != "i2"]
    write_jsonl(settings.landing / f"events/dt={AS_OF}/segment.jsonl", calls)
    page = {**calls[0], "messageId": "p5", "anonymousId": "a3", "timestamp": f"{night}T08:00:00Z"}
    write_jsonl(settings.landing / f"events/dt={night}/segment.jsonl", [page])
    run_ingest(settings, night)
    run_transform(settings, night)
    history = (
        "select as_of_date::varchar, customer_id, first_seen_at::varchar, tenure_days "
        "from marts.customer_feature_history where customer_id <> 'u1' order by 1, 2"
    )
    warehouse = settings.warehouse
    assert fetch(warehouse, history) == []

    # u2's sign-up arrives late; u4 signs up on the night's own day
    i2 = next(c for c in _calls() if c["messageId"] == "i2")
    write_jsonl(settings.landing / f"events/dt={AS_OF}/late.jsonl", [i2])
    i4 = {**i2, "messageId": "i4", "anonymousId": "a4", "userId": "u4",
          "timestamp": f"{night}T07:00:00Z"}  # fmt: skip
    write_jsonl(settings.landing / f"events/dt={night}/late.jsonl", [i4])
    run_ingest(settings, night)
    run_transform(settings, night)
    assert fetch(warehouse, history) == [
        ("2026-06-01", "u2", "2026-06-01 18:00:00", 0),
        ("2026-06-02", "u2", "2026-06-01 18:00:00", 1),
        ("2026-06-02", "u4", "2026-06-02 07:00:00", 0),
    ]
