"""Other trackers' field names and event names (``[ingest] field_aliases`` and
``event_type_aliases``): Segment-spec events load with the shipped example settings."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmint.config import ConfigError, IngestSettings, load_settings
from segmint.ingest import run_ingest
from segmint.stages import InputError
from tests.include.ingest.conftest import D1, D2, D3, write_jsonl, write_lines

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "segment-spec.toml"


# The warning of a CRM delta of 2026-06-02 without the email_opt_in column the records
# loaded before it hold.
NO_CONSENT_COLUMN = (
    "1 crm file(s) have no column for email_opt_in, which the customer records loaded "
    "before hold: each of their records loads without it, its customer's email_opt_in "
    "now empty (without consent) (crm/dt=2026-06-02/delta.csv); did the export drop or "
    "rename it? ([ingest] field_aliases)"
)


def _with_ingest(settings, ingest: IngestSettings):
    return dataclasses.replace(settings, ingest=ingest)


def _segment_events() -> list[dict]:
    context = {
        "page": {"url": "https://shop.example/p/1", "referrer": "https://google.com/"},
        "campaign": {"source": "google", "medium": "cpc", "name": "summer"},
        "device": {"type": "mobile"},
        "library": {"name": "analytics.js", "version": "4.1.0"},
    }
    ts = "2026-06-01T10:00:00.000Z"
    return [
        {"type": "page", "messageId": "m1", "anonymousId": "a1", "timestamp": ts,
         "properties": {"url": "https://shop.example/"}, "context": {"library": {}}},
        {"type": "track", "event": "Product Viewed", "messageId": "m2", "anonymousId": "a1",
         "userId": "u1", "timestamp": ts, "context": context,
         "properties": {"product_id": "P1", "category": "Shoes", "price": 59.9}},
        {"type": "track", "event": "Order Completed", "messageId": "m3", "userId": "u1",
         "timestamp": "2026-06-01T12:00:00+02:00", "context": context,
         "properties": {"order_id": "o1", "total": 59.9, "currency": "eur",
                        "products": [{"product_id": "P1"}]}},
        # an identify call: an identify event (it links ids; tests/dbt/test_identify_calls.py)
        {"type": "identify", "messageId": "m4", "userId": "u1", "timestamp": ts,
         "traits": {"email": "x@example.com"}},
        # a custom event the settings do not name: quarantined with a reason
        {"type": "track", "event": "Video Played", "messageId": "m6", "userId": "u1",
         "timestamp": ts},
        # a purchase whose revenue is negative: quarantined, the nested value in the reason
        {"type": "track", "event": "order completed", "messageId": "m5", "userId": "u2",
         "timestamp": ts, "properties": {"order_id": "o2", "revenue": -5}},
    ]  # fmt: skip


def test_segment_spec_events_load_with_the_example_settings(settings, landing, query):
    example = load_settings(EXAMPLE, environ={})
    settings = _with_ingest(settings, example.ingest)
    write_jsonl(landing / "events/dt=2026-06-01/segment.jsonl", _segment_events())

    run_ingest(settings, D1)

    rows = query(
        """
        select event_id, event_type, event_ts, customer_id, anonymous_id, page_url, referrer,
            product_id, product_category, price, device_type, utm_source, utm_campaign,
            order_id, revenue, currency, _extra
        from raw.events order by event_id
        """
    )
    got = {r[0]: r for r in rows}
    assert set(got) == {"m1", "m2", "m3", "m4"}
    assert got["m4"][1] == "identify" and got["m4"][3] == "u1"
    assert got["m1"][1:7] == ("page_view", got["m1"][2], None, "a1", "https://shop.example/", None)
    assert str(got["m1"][2]) == "2026-06-01 10:00:00"
    m2 = got["m2"]
    assert m2[1] == "product_view" and (m2[3], m2[4]) == ("u1", "a1")
    assert m2[5:13] == (
        "https://shop.example/p/1", "https://google.com/", "P1", "Shoes",
        m2[9], "mobile", "google", "summer",
    )  # fmt: skip
    assert str(m2[9]) == "59.90"
    m3 = got["m3"]
    assert m3[1] == "purchase" and str(m3[2]) == "2026-06-01 10:00:00"
    assert (m3[13], str(m3[14]), m3[15]) == ("o1", "59.90", "EUR")
    # What no field reads stays in _extra, nested parents whole: here "type", which lost to
    # "event" as the event type; the names fields were read from (event, messageId, ...)
    # leave the record.
    extra = json.loads(m3[16])
    assert extra["properties"]["products"] == [{"product_id": "P1"}]
    assert extra["context"]["library"]["name"] == "analytics.js"
    assert extra["type"] == "track" and set(extra) == {"type", "properties", "context"}
    # a page call's type is its event type
    assert set(json.loads(got["m1"][16])) == {"properties", "context"}

    reasons = dict(
        query("select line_number, list_aggregate(reasons, 'string_agg', '; ') from ops.quarantine")
    )
    assert set(reasons) == {5, 6}
    assert "unknown event_type" in reasons[5] and "video played" in reasons[5]
    assert "revenue" in reasons[6] and "-5" in reasons[6]
    assert query(
        "select rows_read, rows_loaded, rows_quarantined, rows_ignored from ops.load_manifest"
    ) == [(6, 4, 2, 0)]


def test_segment_warehouse_tables_load_with_the_example_settings(settings, landing, query):
    # The example claims Segment's flat exports: its warehouse tables (tracks, order_completed,
    # ...) call the message id `id` and hold the event's table name in `event`
    # ("order_completed") and its name in `event_text`. Every such file failed ("CSV header
    # lacks required column(s) event_id"), and with `id` added every record was quarantined
    # as an unknown event_type.
    example = load_settings(EXAMPLE, environ={})
    settings = _with_ingest(settings, example.ingest)
    write_lines(
        landing / "events/dt=2026-06-01/order_completed.csv",
        [
            "id,anonymous_id,user_id,event,event_text,timestamp,original_timestamp,"
            "context_page_url,context_campaign_source,order_id,revenue,total,currency",
            "ajs-1,a1,C1,order_completed,Order Completed,2026-06-01 10:22:33.123 UTC,"
            "2026-06-01 12:22:33.100 +0200,https://shop.example/checkout,google,O1,50.00,"
            "59.50,EUR",
        ],
    )
    write_lines(
        landing / "events/dt=2026-06-01/tracks.csv",
        [
            "id,anonymous_id,user_id,event,event_text,timestamp,context_page_url",
            "ajs-2,a1,,product_viewed,Product Viewed,2026-06-01 10:20:00.000 UTC,"
            "https://shop.example/p/1",
            "ajs-3,a1,C1,products_searched,Products Searched,2026-06-01 10:21:00 UTC,",
        ],
    )
    run_ingest(settings, D1)
    assert query("select count(*) from ops.quarantine") == [(0,)]
    assert query(
        "select event_id, event_type, event_ts::VARCHAR, customer_id, anonymous_id, order_id, "
        "revenue::VARCHAR, page_url, utm_source, _extra->>'event' from raw.events order by 1"
    ) == [
        ("ajs-1", "purchase", "2026-06-01 10:22:33.123", "C1", "a1", "O1", "50.00",
         "https://shop.example/checkout", "google", "order_completed"),
        ("ajs-2", "product_view", "2026-06-01 10:20:00", None, "a1", None, None,
         "https://shop.example/p/1", None, "product_viewed"),
        ("ajs-3", "search", "2026-06-01 10:21:00", "C1", "a1", None, None, None, None,
         "products_searched"),
    ]  # fmt: skip


def test_the_contract_name_wins_over_an_alias(settings, landing, query):
    ingest = IngestSettings(field_aliases={"events": {"customer_id": ["userId"]}})
    settings = _with_ingest(settings, ingest)
    write_jsonl(
        landing / "events/dt=2026-06-01/e.jsonl",
        [
            {"event_id": "e1", "event_type": "login", "event_ts": "2026-06-01T10:00:00Z",
             "customer_id": "own", "userId": "alias"},
            {"event_id": "e2", "event_type": "login", "event_ts": "2026-06-01T10:00:00Z",
             "customer_id": None, "userId": "alias"},
        ],
    )  # fmt: skip
    run_ingest(settings, D1)
    # the alias that lost keeps its value in _extra; a JSON null is no value
    assert query("select event_id, customer_id, _extra from raw.events order by 1") == [
        ("e1", "own", '{"userId":"alias"}'),
        ("e2", "alias", None),
    ]


def test_a_list_naming_the_field_itself_reads_its_own_name_in_that_place(settings, landing, query):
    # Amplitude's export has an event_id of its own: a counter per device (1, 2, 3, ...), not
    # unique. Read first whatever the aliases said, it made all but one event of each counter
    # value a "duplicate" (a night of 548 events loaded 7). Naming event_id after uuid in its
    # list reads uuid first; the counter stays in _extra.
    import pyarrow as pa
    import pyarrow.parquet as pq

    ingest = IngestSettings(field_aliases={"events": {"event_id": ["uuid", "event_id"]}})
    settings = _with_ingest(settings, ingest)
    amplitude = [
        {"event_id": 1, "uuid": "u-a1", "event_type": "page_view", "customer_id": "c1",
         "event_ts": "2026-06-01 10:22:33.123000"},
        {"event_id": 1, "uuid": "u-b1", "event_type": "page_view", "customer_id": "c2",
         "event_ts": "2026-06-01 10:22:34.123000"},
        {"event_id": 2, "uuid": None, "event_type": "login", "customer_id": "c2",
         "event_ts": "2026-06-01 10:22:35.123000"},
    ]  # fmt: skip
    write_jsonl(landing / "events/dt=2026-06-01/amplitude.json.gz", amplitude, gz=True)
    write_lines(
        landing / "events/dt=2026-06-01/amplitude.csv",
        [
            "event_id,UUID,event_type,event_ts,customer_id",
            "1,u-c1,page_view,2026-06-01 11:00:00,c3",
            "1,u-d1,page_view,2026-06-01 11:00:00,c4",
        ],
    )
    pq.write_table(
        pa.table({"uuid": ["u-e1"], "event_type": ["login"], "event_ts": ["2026-06-01 12:00"],
                  "customer_id": ["c5"]}),
        landing / "events/dt=2026-06-01/amplitude.parquet",
    )  # fmt: skip
    run_ingest(settings, D1)
    assert query("select count(*) from ops.duplicates") == [(0,)]
    assert query("select event_id, customer_id, _extra from raw.events order by 1") == [
        ("2", "c2", None),
        ("u-a1", "c1", '{"event_id":1}'),
        ("u-b1", "c2", '{"event_id":1}'),
        ("u-c1", "c3", '{"event_id":"1"}'),
        ("u-d1", "c4", '{"event_id":"1"}'),
        ("u-e1", "c5", None),
    ]
    # named twice is still a mistake
    twice = IngestSettings(field_aliases={"events": {"event_id": ["event_id", "uuid", "event_id"]}})
    with pytest.raises(ConfigError, match="'event_id' is already read as event_id"):
        run_ingest(_with_ingest(settings, twice), D1)


def test_an_empty_string_is_no_value_and_the_next_name_is_read(settings, landing, query):
    # An empty (or blank) string is null, so it holds no value: the field is read from the
    # next name (was: the record quarantined as "missing required field event_id").
    ingest = IngestSettings(
        field_aliases={"events": {"event_id": ["messageId"], "event_ts": ["timestamp"]}}
    )
    settings = _with_ingest(settings, ingest)
    write_jsonl(
        landing / "events/dt=2026-06-01/e.jsonl",
        [
            {"event_id": "", "messageId": "m1", "event_type": "login", "customer_id": "c1",
             "event_ts": " ", "timestamp": "2026-06-01T10:00:00Z"},
        ],
    )  # fmt: skip
    run_ingest(settings, D1)
    assert query("select count(*) from ops.quarantine") == [(0,)]
    # the empty names leave no value in _extra; the names read from leave the record
    assert query("select event_id, event_ts::VARCHAR, _extra from raw.events") == [
        ("m1", "2026-06-01 10:00:00", '{"event_id":"","event_ts":" "}')
    ]


def test_csv_and_parquet_columns_match_aliases_case_insensitively(settings, landing, query):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ingest = IngestSettings(
        field_aliases={
            "crm": {"customer_id": ["Customer ID"], "updated_at": ["Last Modified"],
                    "email": ["E-mail Address"]},
            "events": {"event_id": ["messageId"], "customer_id": ["userId"],
                       "event_type": ["event"], "event_ts": ["timestamp"]},
        },
        event_type_aliases={"Signed In": "login"},
    )  # fmt: skip
    settings = _with_ingest(settings, ingest)
    write_lines(
        landing / "crm/dt=2026-06-01/export.csv",
        [
            "CUSTOMER ID;Last Modified;E-mail Address;Plan",
            "u1;2026-06-01 08:00:00; Ann@Example.COM ;pro",
        ],
    )
    path = landing / "events/dt=2026-06-01/e.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "MessageID": ["p1"],
                "USERID": ["u1"],
                "Event": ["signed in"],
                "timestamp": ["2026-06-01T09:00:00Z"],
            }
        ),
        path,
    )
    run_ingest(settings, D1)
    assert query("select customer_id, updated_at::VARCHAR, email, _extra from raw.customers") == [
        ("u1", "2026-06-01 08:00:00", "ann@example.com", '{"plan":"pro"}')
    ]
    assert query("select event_id, customer_id, event_type from raw.events") == [
        ("p1", "u1", "login")
    ]


def test_csv_and_parquet_read_the_next_name_per_record_whatever_its_case(settings, landing, query):
    # A column named as an alias with capitals (messageId), beside the contract's own column,
    # was never read: its key is lower-cased and the alias was looked up as written, so a
    # record with an empty event_id was quarantined as "missing required field event_id".
    import pyarrow as pa
    import pyarrow.parquet as pq

    ingest = IngestSettings(
        field_aliases={"events": {"event_id": ["messageId"], "event_ts": ["originalTimestamp"]}}
    )
    settings = _with_ingest(settings, ingest)
    write_lines(
        landing / "events/dt=2026-06-01/e.csv",
        [
            "event_id,MessageId,event_type,event_ts,originalTimestamp,customer_id",
            "e1,m1,login,2026-06-01T10:00:00Z,,c1",
            ",m2,login,,2026-06-01T11:00:00Z,c1",
        ],
    )
    pq.write_table(
        pa.table(
            {
                "event_id": [None, "p2"],
                "messageId": ["p1", "lost"],
                "event_type": ["login", "login"],
                "event_ts": ["2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z"],
                "customer_id": ["c1", "c1"],
            }
        ),
        landing / "events/dt=2026-06-01/e.parquet",
    )
    run_ingest(settings, D1)
    assert query("select count(*) from ops.quarantine") == [(0,)]
    assert query("select event_id, event_ts::VARCHAR, _extra from raw.events order by 1") == [
        ("e1", "2026-06-01 10:00:00", '{"messageId":"m1"}'),
        ("m2", "2026-06-01 11:00:00", None),
        ("p1", "2026-06-01 10:00:00", None),
        ("p2", "2026-06-01 10:00:00", '{"messageId":"lost"}'),
    ]


@pytest.mark.parametrize(
    ("ingest", "message"),
    [
        ({"field_aliases": {"events": {"user": ["userId"]}}}, "unknown field(s) user"),
        ({"field_aliases": {"visits": {}}}, "unknown source(s) visits"),
        ({"field_aliases": {"events": {"customer_id": ["anonymous_id"]}}}, "already read as"),
        (
            {"field_aliases": {"events": {"customer_id": ["u"], "anonymous_id": ["u"]}}},
            "'u' is already read as customer_id",
        ),
        ({"field_aliases": {"events": {"customer_id": "userId"}}}, "expected a list of names"),
        (
            {"field_aliases": {"events": {"page_url": ["ctx"], "referrer": ["ctx.ref"]}}},
            "both as a value and as an object",
        ),
        ({"event_type_aliases": {"Order Completed": "order"}}, "not an event type"),
    ],
)
def test_alias_mistakes_are_config_errors_before_any_file_is_read(
    settings, landing, query, ingest, message
):
    write_jsonl(landing / "events/dt=2026-06-01/e.jsonl", [{"event_id": "e1"}])
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_ingest(_with_ingest(settings, IngestSettings(**ingest)), D1)
    assert not settings.warehouse.exists() or query("select count(*) from ops.load_manifest") == [
        (0,)
    ]


def test_a_misspelt_alias_names_only_the_column_missing_and_its_aliases(settings, landing, query):
    # A HubSpot export (semicolons) mapped with a wrong name for customer_id: the error said
    # the header lacked customer_id and updated_at, though updated_at's alias was there (no
    # separator named both, so the comma's split was judged), and named no alias.
    ingest = IngestSettings(
        field_aliases={"crm": {"customer_id": ["Contact ID"], "updated_at": ["Last Modified Date"]}}
    )
    write_lines(
        landing / "crm/dt=2026-06-01/hubspot.csv",
        ["Record ID;Email;Last Modified Date", "101;a@example.com;2026-06-01 10:00"],
    )
    with pytest.raises(InputError, match=r"hubspot\.csv"):
        run_ingest(_with_ingest(settings, ingest), D1)
    [(error,)] = query("select error from ops.load_manifest where status = 'failed'")
    assert error.startswith("CSV header lacks required column(s) customer_id (or 'Contact ID') (")


def test_a_json_record_missing_an_aliased_field_names_the_names_looked_for(
    settings, landing, query
):
    # A Mixpanel export mapped with a misspelt alias ($insert_ID): every record was
    # quarantined as "missing required field event_id", and the gate's message named the
    # file but not the names looked for, as a CSV header's error does.
    ingest = IngestSettings(
        field_aliases={
            "events": {
                "event_id": ["properties.$insert_ID"],
                "event_type": ["event"],
                "event_ts": ["properties.time"],
                "anonymous_id": ["properties.$device_id"],
                "customer_id": ["properties.$user_id"],
                "revenue": ["properties.revenue"],
            }
        },
        event_type_aliases={"Purchase": "purchase"},
        epoch_timestamp_unit="s",
    )
    write_jsonl(
        landing / "events/dt=2026-06-01/mixpanel.json",
        [
            {"event": "Purchase", "properties": {"time": 1780308572, "$insert_id": "i1",
                                                 "$device_id": "d1", "order_id": "o1"}},
            {"event": "Purchase", "properties": {"time": 1780308572, "$insert_ID": "i2",
                                                 "revenue": 5}},
        ],
    )  # fmt: skip
    run_ingest(_with_ingest(settings, ingest), D1)
    assert query("select line_number, reasons from ops.quarantine order by 1") == [
        (
            1,
            [
                "missing required field event_id (looked for 'event_id', 'properties.$insert_ID')",
                "purchase without order_id",
                "purchase without revenue (looked for 'revenue', 'properties.revenue')",
            ],
        ),
        (
            2,
            [
                "purchase without order_id",
                "no identity: customer_id and anonymous_id are both missing (looked for "
                "'customer_id', 'properties.$user_id', 'anonymous_id', 'properties.$device_id')",
            ],
        ),
    ]


def test_a_mapping_that_names_no_column_of_a_file_is_a_warning(settings, landing, query):
    # A mapping written for an older Shopify export ("Accepts Marketing") read a newer one
    # ("Accepts Email Marketing"): every customer loaded without consent, and nothing said so.
    import pyarrow as pa
    import pyarrow.parquet as pq

    ingest = IngestSettings(
        field_aliases={
            "crm": {
                "customer_id": ["Customer ID"],
                "updated_at": ["Updated At"],
                "email_opt_in": ["Accepts Marketing"],
                "phone": ["Phone Number"],
            }
        }
    )
    write_lines(
        landing / "crm/dt=2026-06-01/shopify.csv",
        [
            "Customer ID,Updated At,Accepts Email Marketing,Phone Number",
            "7001,2026-06-01 10:00:00 -0400,yes,+4915112345678",
        ],
    )
    path = landing / "crm/dt=2026-06-01/shopify.parquet"
    pq.write_table(
        pa.table(
            {
                "Customer ID": ["7002"],
                "Updated At": ["2026-06-01T10:00:00Z"],
                "Accepts Email Marketing": ["yes"],
            }
        ),
        path,
    )
    result = run_ingest(_with_ingest(settings, ingest), D1)
    assert query("select customer_id, email_opt_in from raw.customers order by 1") == [
        ("7001", False),
        ("7002", False),
    ]
    [consent] = [w for w in result.warnings if "email_opt_in" in w]
    assert consent.startswith(
        "2 crm file(s) have no column for email_opt_in (looked for 'email_opt_in', "
        "'Accepts Marketing'): each of their records loads without it ("
    )
    assert "crm/dt=2026-06-01/shopify.csv" in consent
    assert "crm/dt=2026-06-01/shopify.parquet" in consent
    # The phone's alias matched the CSV file: only the Parquet file lacks it.
    [phone] = [w for w in result.warnings if "no column for phone" in w]
    assert phone.startswith("1 crm file(s)") and "shopify.parquet" in phone
    # Mapped fields found, and fields given no aliases, are no warning.
    assert not [w for w in result.warnings if "no column for customer_id" in w]
    assert not [w for w in result.warnings if "no column for email " in w]


def test_a_missing_aliased_column_is_one_warning_however_many_batches(
    settings, landing, monkeypatch
):
    """The no-column warning was raised once per batch (1,000 files or 1 GB): a backfill of
    a few thousand daily CRM files repeated it, each naming only its batch's files. It is
    one warning for the run, counting every file."""
    from segmint.ingest import loader

    ingest = IngestSettings(
        field_aliases={
            "crm": {"customer_id": ["Customer ID"], "email_opt_in": ["Accepts Marketing"]}
        }
    )
    for day in (1, 2, 3):
        write_lines(
            landing / f"crm/dt=2026-06-0{day}/customers.csv",
            ["Customer ID,updated_at", f"700{day},2026-06-0{day}T10:00:00Z"],
        )
    monkeypatch.setattr(loader, "BATCH_FILES", 1)
    result = run_ingest(_with_ingest(settings, ingest), date(2026, 6, 3))
    [consent] = [w for w in result.warnings if "no column for email_opt_in" in w]
    assert consent.startswith("3 crm file(s) have no column for email_opt_in")
    for day in (1, 2, 3):
        assert f"crm/dt=2026-06-0{day}/customers.csv" in consent


def test_a_header_the_vendor_renamed_is_named_in_the_warning_or_error(settings, landing, query):
    # A CRM export that renamed its headers (email_opt_in to "Email Opt In", customer_id to
    # "Customer ID"), with no [ingest] field_aliases: every customer of the file loaded
    # without consent and nothing said so (the column went to _extra); a renamed customer_id
    # failed the file every night with an error that did not say what reads it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_lines(
        landing / "crm/dt=2026-06-01/crm.csv",
        ["customer_id,updated_at,Email Opt In,Ads-Opt-In,country",
         "c1,2026-06-01T10:00:00Z,yes,yes,FR"],
    )  # fmt: skip
    pq.write_table(
        pa.table({"customer_id": ["c2"], "updated_at": ["2026-06-01T10:00:00Z"],
                  "EmailOptIn": ["yes"], "ads_opt_in": ["yes"]}),
        landing / "crm/dt=2026-06-01/crm.parquet",
    )  # fmt: skip
    result = run_ingest(settings, D1)
    # Consent is absent (no column), so no consent: loaded so, and now said.
    assert query("select customer_id, email_opt_in, ads_opt_in from raw.customers order by 1") == [
        ("c1", False, False),
        ("c2", False, True),
    ]
    email = [w for w in result.warnings if "no column for email_opt_in" in w]
    assert email == [
        "1 crm file(s) have no column for email_opt_in (looked for 'email_opt_in'; spelt "
        "alike: 'email opt in'): each of their records loads without it "
        "(crm/dt=2026-06-01/crm.csv); does the export name it otherwise now? "
        "([ingest] field_aliases)",
        "1 crm file(s) have no column for email_opt_in (looked for 'email_opt_in'; spelt "
        "alike: 'emailoptin'): each of their records loads without it "
        "(crm/dt=2026-06-01/crm.parquet); does the export name it otherwise now? "
        "([ingest] field_aliases)",
    ]
    [ads] = [w for w in result.warnings if "no column for ads_opt_in" in w]
    assert "spelt alike: 'ads-opt-in'" in ads and "crm.csv" in ads
    # Fields the files lack with no column spelt like them are no warning, as before.
    assert not [w for w in result.warnings if "no column for email " in w]
    assert not [w for w in result.warnings if "no column for phone" in w]

    write_lines(
        landing / "crm/dt=2026-06-02/renamed.csv",
        ["Customer ID,updated_at,email_opt_in", "c3,2026-06-02T10:00:00Z,yes"],
    )
    with pytest.raises(InputError, match=r"renamed\.csv"):
        run_ingest(settings, D2)
    [(error,)] = query("select error from ops.load_manifest where status = 'failed'")
    assert error.startswith(
        "CSV header lacks required column(s) customer_id (column 'customer id' is spelt alike: "
        "if it is customer_id, name it in [ingest.field_aliases.crm]: "
        "customer_id = ['customer id']) (header is: "
    )


def test_a_crm_export_that_stops_sending_a_column_is_a_warning(settings, landing, query):
    # A CRM record is the customer's whole state: an export that stopped sending country
    # and email_opt_in emptied both for every customer of its files (each without consent
    # from then on), and nothing said so.
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_lines(
        landing / "crm/dt=2026-06-01/full.csv",
        ["customer_id,updated_at,email_opt_in,country",
         "c1,2026-06-01T10:00:00Z,yes,FR", "c2,2026-06-01T10:00:00Z,yes,DE"],
    )  # fmt: skip
    assert not [w for w in run_ingest(settings, D1).warnings if "no column" in w]
    write_lines(
        landing / "crm/dt=2026-06-02/delta.csv",
        ["updated_at,customer_id,phone", "2026-06-02T10:00:00Z,c1,+33612345678"],
    )
    pq.write_table(
        pa.table({"customer_id": ["c2"], "updated_at": ["2026-06-02T10:00:00Z"],
                  "email_opt_in": ["yes"]}),
        landing / "crm/dt=2026-06-02/delta.parquet",
    )  # fmt: skip
    result = run_ingest(settings, D2)
    assert [w for w in result.warnings if "no column" in w] == [
        "2 crm file(s) have no column for country, which the customer records loaded before "
        "hold: each of their records loads without it, its customer's country now empty "
        "(crm/dt=2026-06-02/delta.csv, crm/dt=2026-06-02/delta.parquet); did the export drop "
        "or rename it? ([ingest] field_aliases)",
        NO_CONSENT_COLUMN,
    ]
    # Loaded as the contract says (a record is the whole state), and now said.
    assert query(
        "select customer_id, email_opt_in, country from raw.customers "
        "where _partition_date = '2026-06-02' order by 1"
    ) == [("c1", False, None), ("c2", True, None)]

    # A Shopify export has no updated_at: with crm_updated_at_from_partition each record
    # takes its partition day, nothing is emptied, and that is no warning.
    ingest = IngestSettings(crm_updated_at_from_partition=True)
    write_lines(
        landing / "crm/dt=2026-06-03/shopify.csv",
        ["customer_id,email_opt_in,country,phone", "c1,yes,FR,+33612345678"],
    )
    result = run_ingest(_with_ingest(settings, ingest), D3)
    assert not [w for w in result.warnings if "no column" in w]


def test_a_column_dropped_within_one_nights_files_is_a_warning(settings, landing, query):
    # A first night (or a catch-up) read the full snapshot and a later delta without
    # email_opt_in together: customer c1 lost their consent and nothing said so, since
    # only the records of earlier nights were looked at.
    write_lines(
        landing / "crm/dt=2026-06-01/full.csv",
        ["customer_id,updated_at,email_opt_in,country",
         "c1,2026-06-01T10:00:00Z,yes,FR", "c2,2026-06-01T10:00:00Z,yes,DE"],
    )  # fmt: skip
    write_lines(
        landing / "crm/dt=2026-06-02/delta.csv",
        ["updated_at,customer_id,country", "2026-06-02T10:00:00Z,c1,FR"],
    )
    result = run_ingest(settings, D2)
    assert [w for w in result.warnings if "no column" in w] == [
        NO_CONSENT_COLUMN,
    ]
    assert query(
        "select customer_id, email_opt_in from raw.customers "
        "where _partition_date = '2026-06-02' order by 1"
    ) == [("c1", False)]
    # A consent column of "no" only, dropped, changes nothing: no warning (a country held
    # before still is one).
    write_lines(
        landing / "crm/dt=2026-06-03/full.csv",
        ["customer_id,updated_at,ads_opt_in,country", "c4,2026-06-03T10:00:00Z,no,ES"],
    )
    write_lines(
        landing / "crm/dt=2026-06-04/delta.csv",
        ["customer_id,updated_at,email_opt_in,country", "c4,2026-06-04T10:00:00Z,yes,ES"],
    )
    assert not [w for w in run_ingest(settings, date(2026, 6, 4)).warnings if "ads_opt_in" in w]
    # A snapshot alone is no warning.
    write_lines(
        landing / "crm/dt=2026-06-05/full.csv",
        ["customer_id,updated_at,email_opt_in,country", "c3,2026-06-05T10:00:00Z,yes,ES"],
    )
    assert not [w for w in run_ingest(settings, date(2026, 6, 5)).warnings if "no column" in w]


SHOPIFY_HEADER = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,"
    "Default Address Country Code,Phone,Total Spent,Total Orders,Tags"
)
SHOPIFY_ALIASES = {
    "crm": {
        "customer_id": ["Customer ID"],
        "first_name": ["First Name"],
        "last_name": ["Last Name"],
        "email_opt_in": ["Accepts Email Marketing"],
        "country": ["Default Address Country Code"],
    }
}


def test_a_crm_export_without_updated_at_loads_with_its_partition_day(settings, landing, query):
    """Shopify's customer export has no modification time. Without the setting every file
    fails ("lacks required column updated_at"); with it each record is as of the start of
    its partition day, so the later delivery wins, and a value that is there but unreadable
    is still quarantined."""
    write_lines(
        landing / "crm/dt=2026-06-01/customers_export.csv",
        [
            SHOPIFY_HEADER,
            "7001,Ada,Lovelace,ada@example.com,yes,GB,'+447700900123,120.00,2,vip",
            "7002,Alan,Turing,alan@example.com,no,GB,,0.00,0,",
        ],
    )
    write_lines(
        landing / "crm/dt=2026-06-02/customers_export.csv",
        [SHOPIFY_HEADER, "7001,Ada,Lovelace,ada@example.com,no,GB,,120.00,2,vip"],
    )
    write_jsonl(
        landing / "crm/dt=2026-06-02/backend.jsonl",
        [
            {"customer_id": "7003", "email": "grace@example.com"},
            {"customer_id": "7004", "updated_at": ""},
            {"customer_id": "7005", "updated_at": "yesterday"},
        ],
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"Customer ID": ["7006"], "Accepts Email Marketing": ["yes"]}),
        landing / "crm/dt=2026-06-02/matrixify.parquet",
    )
    # The error names the setting (the file names its fields: no alias could help).
    with pytest.raises(
        InputError,
        match=r"CSV header lacks required column\(s\) updated_at \(an export without "
        r"modification times loads with \[ingest\] crm_updated_at_from_partition\)",
    ):
        run_ingest(_with_ingest(settings, IngestSettings(field_aliases=SHOPIFY_ALIASES)), D1)

    ingest = IngestSettings(field_aliases=SHOPIFY_ALIASES, crm_updated_at_from_partition=True)
    settings = _with_ingest(settings, ingest)
    run_ingest(settings, D1)
    run_ingest(settings, D2)
    assert query(
        "select path, status, rows_read, rows_loaded, rows_quarantined from ops.load_manifest "
        "order by path"
    ) == [
        ("crm/dt=2026-06-01/customers_export.csv", "loaded", 2, 2, 0),
        ("crm/dt=2026-06-02/backend.jsonl", "loaded", 3, 2, 1),
        ("crm/dt=2026-06-02/customers_export.csv", "loaded", 1, 1, 0),
        ("crm/dt=2026-06-02/matrixify.parquet", "loaded", 1, 1, 0),
    ]
    assert query(
        "select customer_id, updated_at::VARCHAR, email_opt_in from raw.customers "
        "order by customer_id, updated_at"
    ) == [
        ("7001", "2026-06-01 00:00:00", True),
        ("7001", "2026-06-02 00:00:00", False),
        ("7002", "2026-06-01 00:00:00", False),
        ("7003", "2026-06-02 00:00:00", False),
        ("7004", "2026-06-02 00:00:00", False),
        ("7006", "2026-06-02 00:00:00", True),
    ]
    [reasons] = query("select reasons from ops.quarantine")[0]
    assert reasons == ["updated_at is not an ISO-8601 timestamp (got yesterday)"]


def test_a_hubspot_export_is_told_which_columns_to_alias(settings, landing, query):
    """HubSpot's contacts export names its id "Record ID" and its modification time "Last
    Modified Date": the file failed with a hint to take the partition day as the
    modification time, although the file has one. The error now names the columns that look
    like an id and a modification time, with the field_aliases setting that reads them; an
    export without any keeps the partition-day hint."""
    write_lines(
        landing / "crm/dt=2026-06-01/hubspot.csv",
        [
            "Record ID,First Name,Last Name,Email,Last Modified Date,Create Date,Paid",
            "101,Ann,Lee,ann@example.com,2026-05-01 10:00,2025-01-01 10:00,yes",
        ],
    )
    with pytest.raises(InputError) as failed:
        run_ingest(settings, D1)
    assert (
        "CSV header lacks required column(s) customer_id, updated_at (column 'record id' looks "
        "like an id: if it is customer_id, name it in [ingest.field_aliases.crm]: customer_id "
        "= ['record id']) (column 'last modified date' looks like a modification time: if it "
        "is updated_at, name it in [ingest.field_aliases.crm]: updated_at = "
        "['last modified date']) (header is: " in str(failed.value)
    )
    assert "crm_updated_at_from_partition" not in str(failed.value)
    # What the hint says loads it.
    aliases = {"crm": {"customer_id": ["record id"], "updated_at": ["last modified date"]}}
    run_ingest(_with_ingest(settings, IngestSettings(field_aliases=aliases)), D1)
    assert query("select customer_id, updated_at::VARCHAR from raw.customers") == [
        ("101", "2026-05-01 10:00:00")
    ]
    # Salesforce's names, several of a kind: each named, the first in the setting.
    write_lines(
        landing / "crm/dt=2026-06-02/sf.csv",
        ["Id,ContactId,Email,Valid,LastModifiedDate,SystemModstamp", "1,2,a@b.c,y,x,y"],
    )
    with pytest.raises(InputError) as failed:
        run_ingest(settings, D2)
    assert (
        "(columns 'id', 'contactid' look like ids: if one is customer_id, name it in "
        "[ingest.field_aliases.crm]: customer_id = ['id']) (columns 'lastmodifieddate', "
        "'systemmodstamp' look like modification times: if one is updated_at, name it in "
        "[ingest.field_aliases.crm]: updated_at = ['lastmodifieddate'])" in str(failed.value)
    )


def test_a_file_without_the_modification_time_is_said_to_take_its_partition_day(settings, landing):
    """With an alias for updated_at (HubSpot's "Last Modified Date") beside Shopify's export,
    which has none, every night warned that the Shopify records "load without" updated_at:
    they load as of their partition day, and the warning should say so."""
    write_lines(
        landing / "crm/dt=2026-06-01/customers_export.csv",
        [SHOPIFY_HEADER, "7001,Ada,Lovelace,ada@example.com,yes,GB,,120.00,2,vip"],
    )
    write_lines(
        landing / "crm/dt=2026-06-01/hubspot.csv",
        ["Record ID,Last Modified Date,Email", "7002,2026-05-31 10:00,alan@example.com"],
    )
    aliases = {"crm": {**SHOPIFY_ALIASES["crm"], "customer_id": ["Customer ID", "Record ID"]}}
    aliases["crm"]["updated_at"] = ["Last Modified Date"]
    ingest = IngestSettings(field_aliases=aliases, crm_updated_at_from_partition=True)
    result = run_ingest(_with_ingest(settings, ingest), D1)
    assert [w for w in result.warnings if "no column for updated_at" in w] == [
        "1 crm file(s) have no column for updated_at (looked for 'updated_at', "
        "'Last Modified Date'): each of their records is as of the start of its partition "
        "day ([ingest] crm_updated_at_from_partition) (crm/dt=2026-06-01/customers_export.csv); "
        "does the export name it otherwise now? ([ingest] field_aliases)"
    ]


REES46_HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)
REES46_ROWS = [
    "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,"
    "72d76fde-8bb3-4e00-8c23-a032dfed738c",
    "2019-10-01 00:00:01 UTC,cart,3900821,2053013552326770905,appliances.environment."
    "water_heater,aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc",
]


def test_an_export_without_event_ids_loads_with_event_id_from_record(
    settings, landing, query, tmp_path, monkeypatch
):
    """REES46's, RetailRocket's and GA4's exports have no event id, which the contract
    requires: every file of theirs failed ("CSV header lacks required column(s) event_id"),
    and nothing but rewriting it before landing loaded it. With ``event_id_from_record`` a
    record without one takes the MD5 of its text: the dataset's exact repeats (and a file
    delivered twice) are duplicates; a record with an id keeps it."""
    from segmint.ingest import loader
    from tests.include.ingest.conftest import warehouse_hashes

    csv = write_lines(
        landing / "events/dt=2019-10-01/2019-Oct.csv", [REES46_HEADER, *REES46_ROWS, REES46_ROWS[0]]
    )
    write_jsonl(
        landing / "events/dt=2019-10-01/ga4.json",
        [
            {"event_name": "page_view", "event_timestamp": "1569888000000000", "user_id": "9"},
            {"event_id": "e1", "event_name": "page_view", "event_timestamp": "1569888000000000",
             "user_id": "9"},
        ],
    )  # fmt: skip
    aliases = {
        "events": {
            "event_type": ["event_name"],
            "event_ts": ["event_time", "event_timestamp"],
            "customer_id": ["user_id"],
            "session_id": ["user_session"],
            "event_id": ["uuid"],
        }
    }
    ingest = IngestSettings(
        field_aliases=aliases,
        event_type_aliases={"view": "product_view", "cart": "add_to_cart"},
        epoch_timestamp_unit="us",
    )
    with pytest.raises(InputError) as failed:
        run_ingest(_with_ingest(settings, ingest), date(2019, 10, 1))
    assert (
        "CSV header lacks required column(s) event_id (or 'uuid') (an export without event ids "
        "loads with [ingest] event_id_from_record) (header is: 'event_time,"
    ) in str(failed.value)

    ingest = dataclasses.replace(ingest, event_id_from_record=True)
    # The JSON file was loaded, its record without an id quarantined: read it again.
    result = run_ingest(
        _with_ingest(settings, ingest), date(2019, 10, 1), reload_since=date(2019, 10, 1)
    )
    assert [w for w in result.warnings if "no column for event_id" in w] == [
        "1 events file(s) have no column for event_id (looked for 'event_id', 'uuid'): each of "
        "their records takes the MD5 of its text as its id ([ingest] event_id_from_record) "
        "(events/dt=2019-10-01/2019-Oct.csv); does the export name it otherwise now? "
        "([ingest] field_aliases)"
    ]
    assert query(
        "select path, status, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "from ops.load_manifest order by path"
    ) == [
        ("events/dt=2019-10-01/2019-Oct.csv", "loaded", 3, 2, 0, 1),
        ("events/dt=2019-10-01/ga4.json", "loaded", 2, 2, 0, 0),
    ]
    rows = query(
        "select event_id, event_type, product_id, _extra from raw.events order by event_ts, 2, 1"
    )
    assert [r[1:3] for r in rows] == [
        ("page_view", None),
        ("page_view", None),
        ("product_view", "44600062"),
        ("add_to_cart", "3900821"),
    ]
    assert "e1" in {r[0] for r in rows}
    assert all(re.fullmatch("[0-9a-f]{32}", r[0]) for r in rows if r[0] != "e1")
    assert json.loads(rows[2][3])["category_id"] == "2103807459595387724"
    # The same ids however the rows are checked, and on every run: the text decides.
    every = _with_ingest(settings, ingest).with_overrides(warehouse=tmp_path / "every.duckdb")
    with monkeypatch.context() as m:
        m.setattr(loader, "CHECK_SAMPLE", 1)
        run_ingest(every, date(2019, 10, 1))
    assert warehouse_hashes(every.warehouse) == warehouse_hashes(settings.warehouse)
    # Delivered again under another name: every record is a duplicate.
    csv.rename(csv.with_name("2019-Oct-again.csv"))
    write_lines(csv, [REES46_HEADER, *REES46_ROWS])
    run_ingest(_with_ingest(settings, ingest), date(2019, 10, 1))
    assert query("select count(*) from raw.events") == [(4,)]


GA4_RECORD = {
    "event_date": "20201201", "event_timestamp": "1606780812972652", "event_name": "purchase",
    "event_params": [{"key": "ga_session_id", "value": {"int_value": "1767851566"}}],
    "user_id": None, "user_pseudo_id": "7642966.8846175472",
    "device": {"category": "mobile"}, "geo": {"country": "United States"},
    "traffic_source": {"medium": "(none)", "name": "(direct)", "source": "(direct)"},
    "ecommerce": {"purchase_revenue": 45.6, "transaction_id": "12345"},
    "items": [{"item_id": "9196769", "quantity": "1"}],
}  # fmt: skip
# A refund of that order, as GA4 exports its `refund` event (the amount in refund_value).
GA4_REFUND = {
    **GA4_RECORD,
    "event_name": "refund",
    "ecommerce": {"purchase_revenue": None, "refund_value": 20.0, "transaction_id": "12345"},
}


@pytest.mark.parametrize(
    ("example", "name", "lines", "expected"),
    [
        (
            "rees46.toml",
            "2019-Oct.csv",
            [REES46_HEADER, *REES46_ROWS, REES46_ROWS[0]],
            # loaded, quarantined, duplicates, ignored
            (2, 0, 1, 0),
        ),
        (
            "retailrocket.toml",
            "events.csv",
            [
                "timestamp,visitorid,event,itemid,transactionid",
                "1433221332117,257597,view,355908,",
                "1433224214164,992329,addtocart,248676,",
                "1433222147345,599528,transaction,356475,4000",
            ],
            (2, 0, 0, 1),
        ),
        (
            "ga4-bigquery.toml",
            "events_20201201.json",
            [
                json.dumps(GA4_RECORD),
                json.dumps({**GA4_RECORD, "event_name": "session_start", "ecommerce": None}),
                json.dumps({**GA4_RECORD, "event_name": "view_item", "ecommerce": None}),
                json.dumps({**GA4_RECORD, "ecommerce": {"transaction_id": "(not set)"}}),
                # GA4's refund event: segmint's own type, not ignored by "*"
                json.dumps(GA4_REFUND),
            ],
            (3, 1, 0, 1),
        ),
    ],
)
def test_public_datasets_load_with_the_example_settings(
    settings, landing, query, example, name, lines, expected
):
    """The example settings of docs/data-contract.md, "Public datasets", on records of the
    datasets' published shapes: what the docs say loads does."""
    example = load_settings(EXAMPLE.with_name(example), environ={})
    write_lines(landing / "events/dt=2020-12-01" / name, lines)
    run_ingest(_with_ingest(settings, example.ingest), date(2020, 12, 1))
    assert query(
        "select rows_loaded, rows_quarantined, rows_duplicate, rows_ignored from ops.load_manifest"
    ) == [expected]
    assert query("select count(*) from raw.events where event_id is null") == [(0,)]
    if example.ingest.epoch_timestamp_unit == "us":
        assert query(
            "select event_type, event_ts::VARCHAR, anonymous_id, order_id, revenue::VARCHAR, "
            "device_type, utm_source, utm_medium from raw.events order by event_type"
        ) == [
            ("product_view", "2020-12-01 00:00:12.972652", "7642966.8846175472", None, None,
             "mobile", None, None),
            ("purchase", "2020-12-01 00:00:12.972652", "7642966.8846175472", "12345", "45.60",
             "mobile", None, None),
            ("refund", "2020-12-01 00:00:12.972652", "7642966.8846175472", "12345", "20.00",
             "mobile", None, None),
        ]  # fmt: skip
        assert query("select reasons from ops.quarantine") == [
            (
                [
                    "purchase without order_id (looked for 'order_id', 'ecommerce.transaction_id')",
                    "purchase without revenue (looked for 'revenue', 'ecommerce.purchase_revenue', "
                    "'ecommerce.refund_value')",
                ],
            )
        ]


def test_an_alias_crossing_a_json_array_is_a_warning(settings, landing, query):
    """A dotted name is a path into JSON objects: GA4's event_params and items are lists of
    objects, and an alias into them (event_params.ga_session_id, items.item_id) was null on
    every record, in silence (no session ids, no products). The night names the alias, the
    array and the files. An object there, or an empty list (PHP writes an empty object as
    []), is no warning; nor is an alias whose parent the record does not hold."""
    example = load_settings(EXAMPLE.with_name("ga4-bigquery.toml"), environ={})
    aliases = {
        "events": {
            **example.ingest.field_aliases["events"],
            "session_id": ["event_params.ga_session_id"],
            "page_url": ["page_location", "event_params.page_location"],
            "product_id": ["items.item_id", "properties.products.product_id"],
        }
    }
    ingest = dataclasses.replace(example.ingest, field_aliases=aliases)
    view = {**GA4_RECORD, "event_name": "view_item", "ecommerce": None}
    # As BigQuery writes it (no spaces), and as Python's json.dumps does.
    write_lines(
        landing / "events/dt=2020-12-01/events_20201201.json",
        [json.dumps(r, separators=(",", ":")) for r in (GA4_RECORD, view)],
    )
    write_jsonl(
        landing / "events/dt=2020-12-01/flattened.json",
        [
            {**view, "event_params": {"ga_session_id": "17"}, "items": [],
             "page_location": "https://shop.example/p/1"},
            # A Segment-shaped list one level down: properties is an object, products a list.
            {**view, "event_params": {"ga_session_id": "17"}, "items": {"item_id": "P9"},
             "properties": {"products": [{"product_id": "P1"}]}},
        ],
    )  # fmt: skip
    result = run_ingest(_with_ingest(settings, ingest), date(2020, 12, 1))

    assert query(
        "select session_id, page_url, product_id from raw.events "
        "order by _source_file, 3 nulls first"
    ) == [
        (None, None, None),
        (None, None, None),
        ("17", "https://shop.example/p/1", None),
        ("17", None, "P9"),
    ]
    advice = (
        "; a dotted name is a path into JSON objects, never into an array. Flatten the "
        'array before landing (a jq recipe: docs/data-contract.md, "Public datasets"), or '
        "drop the alias ([ingest] field_aliases)"
    )
    ga4 = "events/dt=2020-12-01/events_20201201.json"
    assert [w for w in result.warnings if "JSON array" in w] == [
        "1 events file(s) hold a JSON array at 'event_params', which the alias "
        f"'event_params.ga_session_id' of session_id reads as an object: it reads no value "
        f"from those records ({ga4}){advice}",
        "1 events file(s) hold a JSON array at 'event_params', which the alias "
        f"'event_params.page_location' of page_url reads as an object: it reads no value "
        f"from those records ({ga4}){advice}",
        "1 events file(s) hold a JSON array at 'items', which the alias 'items.item_id' of "
        f"product_id reads as an object: it reads no value from those records ({ga4}){advice}",
        "1 events file(s) hold a JSON array at 'properties.products', which the alias "
        "'properties.products.product_id' of product_id reads as an object: it reads no "
        f"value from those records (events/dt=2020-12-01/flattened.json){advice}",
    ]


def test_a_json_key_differing_from_an_alias_in_case_only_is_a_warning(settings, landing, query):
    """JSON keys are read case-sensitively: an alias `properties.productId` read nothing from
    an export writing `productID`, and every product view loaded without its product, in
    silence. A file holding no value of an optional field under any of its names, whose
    records hold such a key where a name would be, is named. A field a file's records
    legitimately lack (revenue on page views) is no warning, nor is a file where the alias
    holds a value in some records."""
    ingest = IngestSettings(
        field_aliases={
            "events": {
                "event_id": ["messageId"],
                "event_type": ["event"],
                "customer_id": ["userId"],
                "product_id": ["properties.productId"],
                "device_type": ["deviceType"],
                "revenue": ["properties.revenue"],
            }
        }
    )
    ts = "2026-06-01T10:00:00Z"
    view = {"event": "product_view", "event_ts": ts, "userId": "u1"}
    write_jsonl(
        landing / "events/dt=2026-06-01/new_sdk.jsonl",
        [
            {**view, "messageId": "m1", "DeviceType": "mobile",
             "properties": {"productID": "P1", "Revenue": 5}},
            {**view, "messageId": "m2", "event": "page_view", "properties": {"url": "/"}},
        ],
    )  # fmt: skip
    write_jsonl(
        landing / "events/dt=2026-06-01/mixed.jsonl",
        [
            {**view, "messageId": "m3", "deviceType": "desktop",
             "properties": {"productId": "P2"}},
            {**view, "messageId": "m4", "DeviceType": "mobile", "properties": {"productID": "P3"}},
        ],
    )  # fmt: skip
    write_jsonl(
        landing / "events/dt=2026-06-01/pages.jsonl",
        [{**view, "messageId": "m5", "event": "page_view", "properties": {"url": "/"}}],
    )
    result = run_ingest(_with_ingest(settings, ingest), D1)

    assert query("select event_id, product_id, device_type from raw.events order by 1") == [
        ("m1", None, None),
        ("m2", None, None),
        ("m3", "P2", "desktop"),
        ("m4", None, None),
        ("m5", None, None),
    ]
    assert [w for w in result.warnings if "case only" in w] == [
        "1 events file(s) hold no value of device_type under any of its names (looked for "
        "'device_type', 'deviceType'), and their records hold 'DeviceType', which differs "
        "from one of them in case only (events/dt=2026-06-01/new_sdk.jsonl): each of their "
        "records loads without it; JSON keys are read case-sensitively: does the export name "
        "it otherwise now? ([ingest] field_aliases)",
        "1 events file(s) hold no value of product_id under any of its names (looked for "
        "'product_id', 'properties.productId'), and their records hold "
        "'properties.productID', which differs from one of them in case only "
        "(events/dt=2026-06-01/new_sdk.jsonl): each of their records loads without it; JSON "
        "keys are read case-sensitively: does the export name it otherwise now? ([ingest] "
        "field_aliases)",
        "1 events file(s) hold no value of revenue under any of its names (looked for "
        "'revenue', 'properties.revenue'), and their records hold 'properties.Revenue', which "
        "differs from one of them in case only (events/dt=2026-06-01/new_sdk.jsonl): each of "
        "their records loads without it; JSON keys are read case-sensitively: does the export "
        "name it otherwise now? ([ingest] field_aliases)",
    ]


def test_dotted_aliases_into_parquet_struct_columns_are_no_missing_column(settings, landing, query):
    # A Segment or RudderStack warehouse export written as Parquet keeps `context` and
    # `properties` as struct columns. The example's dotted aliases read them
    # (`context.device.type`), yet every night warned that each such file had "no column"
    # for device_type, revenue, order_id, currency, page_url...: every record "loads without
    # it" while it loaded with it. Only the paths the file's structs lack are warned of; a
    # path under a list reads nothing and is still warned of.
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = dataclasses.replace(settings, ingest=load_settings(EXAMPLE).ingest)
    path = landing / "events/dt=2026-06-01/segment.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(
        pa.table({
            "messageId": ["m1", "m2"], "type": ["track", "page"],
            "event": ["Order Completed", None], "timestamp": ["2026-06-01T10:00:00Z"] * 2,
            "userId": ["u1", None], "anonymousId": ["a1", "a2"],
            "properties": [
                {"revenue": 25.5, "order_id": "o1", "currency": "EUR",
                 "products": [{"product_id": "p1"}]},
                {"revenue": None, "order_id": None, "currency": None, "products": None},
            ],
            "context": [
                {"device": {"type": "mobile"}, "page": {"url": "https://x/a"}},
                {"device": {"type": "desktop"}, "page": {"url": "https://x/b"}},
            ],
        }),
        path,
    )  # fmt: skip
    result = run_ingest(settings, D1)
    assert query(
        "select event_id, event_type, order_id, revenue::VARCHAR, currency, device_type, "
        "page_url from raw.events order by 1"
    ) == [
        ("m1", "purchase", "o1", "25.50", "EUR", "mobile", "https://x/a"),
        ("m2", "page_view", None, None, None, "desktop", "https://x/b"),
    ]
    missing = sorted(
        re.match(r"1 events file\(s\) have no column for (\w+)", w).group(1)
        for w in result.warnings
        if "have no column for" in w
    )
    # Neither the fields read from the structs nor the required ones; the paths the file
    # lacks (context.campaign, properties.price) and the one under the products list are.
    assert missing == [
        "country", "price", "product_category", "product_id", "quantity", "referrer",
        "search_query", "session_id", "utm_campaign", "utm_medium", "utm_source",
    ]  # fmt: skip


def test_names_differing_only_in_case_are_read_each_as_written(settings, landing, query):
    # Snowflake writes its column names upper-case in the JSON it unloads (EVENT_ID,
    # CUSTOMER_ID); JSON keys are read as written, so every record was quarantined
    # ("missing required field event_id"), and the aliases that would read them were refused
    # ("differ only in the case"): such an export could not be loaded at all. Now each name
    # is read as written, a nested one too (properties.Revenue beside properties.revenue),
    # and in CSV and Parquet, whose columns match case-insensitively, such an alias is the
    # field's own column.
    import pyarrow as pa
    import pyarrow.parquet as pq

    ingest = IngestSettings(
        field_aliases={
            "events": {
                "event_id": ["EVENT_ID"],
                "event_type": ["EVENT_TYPE", "Event"],
                "event_ts": ["EVENT_TS"],
                "customer_id": ["CUSTOMER_ID"],
                "order_id": ["ORDER_ID"],
                "revenue": ["REVENUE", "properties.revenue", "properties.Revenue"],
            }
        }
    )
    settings = _with_ingest(settings, ingest)
    day = landing / "events/dt=2026-06-01"
    ts = "2026-06-01 10:00:00.000"
    write_jsonl(
        day / "snowflake.jsonl",
        [
            {"EVENT_ID": "s1", "EVENT_TYPE": "PURCHASE", "EVENT_TS": ts, "CUSTOMER_ID": "c1",
             "ORDER_ID": "o1", "REVENUE": 12.5, "NOTE": "x"},
            {"event_id": "s2", "Event": "purchase", "event_ts": ts, "customer_id": "c2",
             "order_id": "o2", "properties": {"Revenue": 3}},
            {"event_id": "s3", "event_type": "purchase", "event_ts": ts, "customer_id": "c3",
             "order_id": "o3", "properties": {"revenue": "4.5"}},
        ],
    )  # fmt: skip
    write_lines(
        day / "snowflake.csv",
        ["EVENT_ID,EVENT_TYPE,EVENT_TS,CUSTOMER_ID", "s4,page_view,2026-06-01 10:00:00,c4"],
    )
    pq.write_table(
        pa.table({"EVENT_ID": ["s5"], "EVENT_TYPE": ["page_view"], "EVENT_TS": [ts],
                  "CUSTOMER_ID": ["c5"]}),
        day / "snowflake.parquet",
    )  # fmt: skip
    run_ingest(settings, D1)
    assert query("select count(*) from ops.quarantine") == [(0,)]
    assert query(
        "select event_id, event_type, customer_id, order_id, revenue::VARCHAR, _extra "
        "from raw.events order by 1"
    ) == [
        ("s1", "purchase", "c1", "o1", "12.50", '{"NOTE":"x"}'),
        ("s2", "purchase", "c2", "o2", "3.00", '{"properties":{"Revenue":3}}'),
        ("s3", "purchase", "c3", "o3", "4.50", '{"properties":{"revenue":"4.5"}}'),
        ("s4", "page_view", "c4", None, None, None),
        ("s5", "page_view", "c5", None, None, None),
    ]


def test_json_keys_spelt_like_a_required_field_are_named_with_the_setting(settings, landing, query):
    # A JSON export writing camelCase, PascalCase or kebab-case keys (eventType, EventType,
    # event-type, customerId): every record was quarantined as "missing required field
    # event_type" or "no identity", and nothing named the key, where a CSV or Parquet file
    # with such a column fails naming the setting that reads it. The night now warns, naming
    # the keys, the files and the setting; the setting it gives loads them.
    ts = "2026-06-01T10:00:00Z"
    records = [
        {"event_id": "k1", "eventType": "page_view", "event_ts": ts, "customer_id": "c1"},
        {"event_id": "k2", "EventType": "page_view", "event_ts": ts, "customer_id": "c1"},
        {"event_id": "k3", "event-type": "page_view", "event_ts": ts, "customer_id": "c1"},
        {"Event_ID": "k4", "event_type": "page_view", "event_ts": ts, "customerId": "c1"},
        # no identity, and no key like one: no warning for it
        {"event_id": "k5", "event_type": "page_view", "event_ts": ts, "user": "c1"},
    ]
    write_jsonl(landing / "events/dt=2026-06-01/app.jsonl", records)
    write_jsonl(
        landing / "events/dt=2026-06-01/clean.jsonl",
        [{"event_id": "k6", "event_type": "page_view", "event_ts": ts, "anonymous_id": "a1"}],
    )
    result = run_ingest(settings, D1)
    assert query("select count(*) from ops.quarantine") == [(5,)]
    warned = sorted(w for w in result.warnings if "spelt like it" in w)
    assert warned == [
        "1 events file(s) hold records without customer_id whose keys are spelt like it but "
        "for case or punctuation: 'customerId' (events/dt=2026-06-01/app.jsonl); JSON keys "
        "are read as written, so those records are quarantined for no identity. If the key "
        "is customer_id, name it in [ingest.field_aliases.events]: customer_id = "
        "['customerId']",
        "1 events file(s) hold records without event_id whose keys are spelt like it but "
        "for case or punctuation: 'Event_ID' (events/dt=2026-06-01/app.jsonl); JSON keys are "
        "read as written, so those records are quarantined as missing event_id. If the key "
        "is event_id, name it in [ingest.field_aliases.events]: event_id = ['Event_ID']",
        "1 events file(s) hold records without event_type whose keys are spelt like it but "
        "for case or punctuation: 'EventType', 'event-type', 'eventType' "
        "(events/dt=2026-06-01/app.jsonl); JSON keys are read as written, so those records "
        "are quarantined as missing event_type. If the key is event_type, name it in "
        "[ingest.field_aliases.events]: event_type = ['EventType', 'event-type', 'eventType']",
    ]
    # The settings the warnings give load such records.
    ingest = IngestSettings(
        field_aliases={
            "events": {
                "customer_id": ["customerId"],
                "event_id": ["Event_ID"],
                "event_type": ["EventType", "event-type", "eventType"],
            }
        }
    )
    write_jsonl(
        landing / "events/dt=2026-06-02/app.jsonl",
        [{**r, "event_ts": "2026-06-02T10:00:00Z"} for r in records[:4]],
    )
    result = run_ingest(_with_ingest(settings, ingest), D2)
    assert not [w for w in result.warnings if "spelt like it" in w]
    assert query(
        "select count(*) from raw.events where _source_file = 'events/dt=2026-06-02/app.jsonl'"
    ) == [(4,)]


def test_a_purchase_s_order_key_spelt_otherwise_is_named(settings, landing, query):
    # An orders feed writing orderId and Revenue: every purchase was quarantined as
    # "purchase without order_id", "purchase without revenue", and nothing named the keys.
    # A page view holding such a key needs neither: it is not looked at.
    ts = "2026-06-01T10:00:00Z"
    write_jsonl(
        landing / "events/dt=2026-06-01/orders.jsonl",
        [
            {"event_id": "o1", "event_type": "purchase", "event_ts": ts, "customer_id": "c1",
             "orderId": "A1", "Revenue": "12.50"},
            {"event_id": "o2", "event_type": "page_view", "event_ts": ts, "customer_id": "c1",
             "cartId": "x", "order-ID": "A1"},
        ],
    )  # fmt: skip
    result = run_ingest(settings, D1)
    assert query("select reasons from ops.quarantine") == [
        (["purchase without order_id", "purchase without revenue"],)
    ]
    assert sorted(w for w in result.warnings if "spelt like it" in w) == [
        "1 events file(s) hold records without order_id whose keys are spelt like it but for "
        "case or punctuation: 'orderId' (events/dt=2026-06-01/orders.jsonl); JSON keys are "
        "read as written, so those records are quarantined as a purchase or refund without "
        "order_id. If the key is order_id, name it in [ingest.field_aliases.events]: "
        "order_id = ['orderId']",
        "1 events file(s) hold records without revenue whose keys are spelt like it but for "
        "case or punctuation: 'Revenue' (events/dt=2026-06-01/orders.jsonl); JSON keys are "
        "read as written, so those records are quarantined as a purchase or refund without "
        "revenue. If the key is revenue, name it in [ingest.field_aliases.events]: "
        "revenue = ['Revenue']",
    ]


def test_a_dotted_alias_reads_a_flattened_export_s_key_spelt_with_dots(settings, landing, query):
    """Flattened exports (pandas' ``json_normalize``, Mixpanel's and Amplitude's flat
    properties, a warehouse's columns named after the paths) write one key spelt with dots,
    ``{"context.device.type": "mobile"}``, where Segment nests objects. The example's
    dotted aliases read only the nested path: such a file's purchases were quarantined as
    "purchase without order_id", and its device types, URLs and campaigns loaded empty, in
    silence. A dotted name now reads the nested path, then the key spelt with its dots: the
    nested path wins in a record holding both (the flat key stays in ``_extra``); the flat
    key read leaves the record. A flat key spelt like a missing field's dotted name but for
    case or punctuation is named as a top-level one is."""
    example = load_settings(EXAMPLE, environ={})
    settings = _with_ingest(settings, example.ingest)
    ts = "2026-06-01T10:00:00Z"
    flat = {
        "messageId": "f1",
        "event": "Order Completed",
        "timestamp": ts,
        "userId": "u1",
        "properties.order_id": "o1",
        "properties.revenue": 12.5,
        "properties.currency": "eur",
        "context.device.type": "mobile",
        "context.page.url": "https://shop.example/cart",
        "context.library.name": "x",
    }
    write_jsonl(
        landing / "events/dt=2026-06-01/flat.jsonl",
        [
            flat,
            # both spellings: the nested path is read, the flat key kept
            {"messageId": "f2", "type": "page", "timestamp": ts, "userId": "u1",
             "context.page.url": "https://flat/", "context": {"page": {"url": "https://nested/"}},
             "properties.url": "https://props/"},
            # the flat key of a later name is read where the earlier ones hold nothing
            {"messageId": "f3", "event": "Order Completed", "timestamp": ts, "userId": "u1",
             "properties.order_id": "o2", "properties.revenue": None, "properties.total": 7},
            # a record holding the nested object is read from it alone (no flattened export
            # writes both): the flat key of that object is not read, and stays in _extra
            {"messageId": "f5", "type": "page", "timestamp": ts, "userId": "u1",
             "context": {"library": {"name": "x"}}, "context.page.url": "https://flat/"},
            # spelt otherwise: named in the warning, the record quarantined
            {"messageId": "f4", "event": "Order Completed", "timestamp": ts, "userId": "u2",
             "properties.orderId": "o3", "properties.revenue": 3},
        ],
    )  # fmt: skip
    # Segment's nested records read as before
    write_jsonl(landing / "events/dt=2026-06-01/segment.jsonl", _segment_events()[2:3])
    # a CSV header of the first dotted name was read: now a later one's is too
    write_lines(
        landing / "events/dt=2026-06-01/flat.csv",
        [
            "messageId,event,timestamp,userId,properties.order_id,properties.revenue,"
            "properties.total",
            f"v1,Order Completed,{ts},u1,o4,,8",
        ],
    )
    # a flat key differing from a dotted name in case only: named, as a nested one is
    write_jsonl(
        landing / "events/dt=2026-06-01/caps.jsonl",
        [{"messageId": "c1", "type": "page", "timestamp": ts, "userId": "u1",
          "context.Device.Type": "tablet"}],
    )  # fmt: skip

    result = run_ingest(settings, D1)

    assert query(
        "select event_id, event_type, order_id, revenue, currency, device_type, page_url, "
        "_extra from raw.events order by 1"
    ) == [
        ("c1", "page_view", None, None, None, None, None, '{"context.Device.Type":"tablet"}'),
        ("f1", "purchase", "o1", 12.5, "EUR", "mobile", "https://shop.example/cart",
         '{"context.library.name":"x"}'),
        ("f2", "page_view", None, None, None, None, "https://nested/",
         '{"context.page.url":"https://flat/","context":{"page":{"url":"https://nested/"}},'
         '"properties.url":"https://props/"}'),
        ("f3", "purchase", "o2", 7, None, None, None, None),
        ("f5", "page_view", None, None, None, None, None,
         '{"context":{"library":{"name":"x"}},"context.page.url":"https://flat/"}'),
        ("m3", "purchase", "o1", Decimal("59.90"), "EUR", "mobile", "https://shop.example/p/1",
         query("select _extra from raw.events where event_id = 'm3'")[0][0]),
        ("v1", "purchase", "o4", 8, None, None, None, None),
    ]  # fmt: skip
    assert query("select line_number, reasons from ops.quarantine") == [
        (5, ["purchase without order_id (looked for 'order_id', 'properties.order_id')"])
    ]
    assert [w for w in result.warnings if "case only" in w] == [
        "1 events file(s) hold no value of device_type under any of its names (looked for "
        "'device_type', 'context.device.type', 'context_device_type'), and their records hold "
        "'context.Device.Type', which differs from one of them in case only "
        "(events/dt=2026-06-01/caps.jsonl): each of their records loads without it; JSON keys "
        "are read case-sensitively: does the export name it otherwise now? ([ingest] "
        "field_aliases)"
    ]
    assert [w for w in result.warnings if "spelt like" in w] == [
        "1 events file(s) hold records without order_id whose keys are spelt like it but for "
        "case or punctuation: 'properties.orderId' (events/dt=2026-06-01/flat.jsonl); JSON "
        "keys are read as written, so those records are quarantined as a purchase or refund "
        "without order_id. If the key is order_id, name it in [ingest.field_aliases.events]: "
        "order_id = ['properties.order_id', 'properties.orderId']"
    ]


def test_dotted_aliases_into_parquet_maps_and_lists_are_no_missing_column(settings, landing, query):
    """Spark and Hive write a tracker's properties as a ``map<string,string>`` column: the
    row's document holds it as a JSON object and a dotted alias reads it
    (``properties.order_id``), yet every night warned that such a file had "no column for
    order_id": each of its records "loads without it", while it loaded with it. An alias
    crossing a list (GA4's ``ecommerce.items.item_id``: a list of structs in a struct) reads
    nothing: the night says so once, naming the alias, the list and the file ("hold a JSON
    array"), not that the file has no such column as well."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ingest = IngestSettings(
        field_aliases={
            "events": {
                "order_id": ["properties.order_id"],
                "revenue": ["properties.revenue"],
                "product_id": ["ecommerce.items.item_id"],
            }
        }
    )
    path = landing / "events/dt=2026-06-01/spark.parquet"
    path.parent.mkdir(parents=True)
    items = pa.list_(pa.struct([("item_id", pa.string())]))
    pq.write_table(
        pa.table({
            "event_id": ["e1", "e2"], "event_type": ["purchase", "page_view"],
            "event_ts": ["2026-06-01T10:00:00Z"] * 2, "customer_id": ["c1", "c1"],
            "properties": pa.array(
                [[("order_id", "o1"), ("revenue", "12.5")], [("url", "/")]],
                pa.map_(pa.string(), pa.string()),
            ),
            "ecommerce": pa.array(
                [{"items": [{"item_id": "p1"}]}, {"items": []}], pa.struct([("items", items)])
            ),
        }),
        path,
    )  # fmt: skip

    result = run_ingest(_with_ingest(settings, ingest), D1)

    assert query(
        "select event_id, order_id, revenue::VARCHAR, product_id from raw.events order by 1"
    ) == [("e1", "o1", "12.50", None), ("e2", None, None, None)]
    assert [w for w in result.warnings if "no column" in w or "array" in w] == [
        "1 events file(s) hold a JSON array at 'ecommerce.items', which the alias "
        "'ecommerce.items.item_id' of product_id reads as an object: it reads no value from "
        "those records (events/dt=2026-06-01/spark.parquet); a dotted name is a path into "
        "JSON objects, never into an array. Flatten the array before landing (a jq recipe: "
        'docs/data-contract.md, "Public datasets"), or drop the alias ([ingest] field_aliases)'
    ]


def test_a_dotted_alias_stopping_at_an_object_or_list_reads_no_text(settings, landing, query):
    """A dotted alias whose value is a JSON object or list (``product_category =
    ["properties.tags"]`` on a list of tags, ``page_url = ["context.page"]`` on Segment's
    page object) loaded the JSON text into the text field, ``["a","b"]`` as the category,
    in silence. It now holds no value (the next name is read), in a JSON line (nested or
    flat) and a Parquet struct alike, and the night warns once, naming the alias, the field
    and the files; an empty one is no warning; a CSV cell is text as written; an id holding
    one is still quarantined."""
    settings = _with_ingest(
        settings,
        IngestSettings(
            field_aliases={
                "events": {
                    "product_category": ["properties.tags", "properties.category"],
                    "page_url": ["context.page"],
                    "order_id": ["properties.order"],
                }
            }
        ),
    )
    day = landing / "events/dt=2026-06-01"
    base = {"event_type": "page_view", "event_ts": "2026-06-01T10:00:00Z", "customer_id": "c1"}
    nested = {"properties": {"tags": ["a", "b"], "category": "shoes"}, "context": {"page": {}}}
    write_jsonl(
        day / "e.jsonl",
        [
            {"event_id": "j1", **base, **nested},
            {"event_id": "j2", **base, "properties": {"tags": "[sale] x"}},
            {"event_id": "j3", **base, "properties.tags": {"k": "v"}, "context.page": "u3"},
            {"event_id": "j4", **base, "properties": {"tags": []}},
            {"event_id": "j5", **base, "event_type": "purchase", "revenue": 1,
             "properties": {"order": {"id": "o1"}}},
        ],
    )  # fmt: skip
    write_jsonl(day / "clean.jsonl", [{"event_id": "k1", **base, "properties": {"tags": {}}}])
    pq.write_table(
        pa.Table.from_pylist([{"event_id": "q1", **base, "properties": nested["properties"]}]),
        day / "e.parquet",
    )
    write_lines(
        day / "e.csv",
        [
            "event_id,event_type,event_ts,customer_id,properties.tags",
            'v1,page_view,2026-06-01T10:00:00Z,c1,"[""a""]"',
        ],
    )

    result = run_ingest(settings, D1)

    assert query("select event_id, product_category, page_url from raw.events order by 1") == [
        ("j1", "shoes", None),
        ("j2", "[sale] x", None),
        ("j3", None, "u3"),
        ("j4", None, None),
        ("k1", None, None),
        ("q1", "shoes", None),
        ("v1", '["a"]', None),
    ]
    # The object or list stays in _extra, as the parent of a nested name does.
    assert query("select _extra from raw.events where event_id = 'j3'") == [
        ('{"properties.tags":{"k":"v"}}',)
    ]
    assert query("select line_number, reasons from ops.quarantine") == [
        (5, ["an id field holds a JSON object or array, not an id (got order_id)"])
    ]
    warned = [w for w in result.warnings if "JSON object or list" in w]
    assert warned == [
        "2 events file(s) hold a JSON object or list at the alias 'properties.tags' of "
        "product_category, a text field: it reads no value from those records "
        "(events/dt=2026-06-01/e.jsonl, events/dt=2026-06-01/e.parquet); name the path of "
        "the value inside the object, or flatten the list before landing ([ingest] "
        "field_aliases)"
    ]
