"""Every generated record that is not recorded as dirt satisfies docs/data-contract.md."""

from __future__ import annotations

import csv

import pytest

from segmint.generate import params as P
from segmint.warehouse import EVENT_TYPES

CONTRACT_EVENT_FIELDS = {
    "event_id", "event_type", "event_ts", "customer_id", "anonymous_id", "session_id",
    "page_url", "page_type", "referrer", "product_id", "product_category", "price", "quantity",
    "search_query", "device_type", "country", "utm_source", "utm_medium", "utm_campaign",
    "time_on_page_s", "scroll_depth", "order_id", "revenue", "currency",
}  # fmt: skip
CRM_FIELDS = [
    "customer_id", "updated_at", "email", "phone", "first_name", "last_name", "birth_date",
    "gender", "country", "city", "postal_code", "signup_date", "loyalty_tier", "email_opt_in",
    "ads_opt_in",
]  # fmt: skip

# One row per line that parses, with the contract checks as booleans.
CHECKS_SQL = """
create or replace table parsed as
select
    file,
    line,
    regexp_extract(file, 'dt=([0-9-]+)', 1)::date as dt,
    text::json as j,
    j ->> 'event_id' as event_id,
    j ->> 'event_type' as event_type,
    try_cast(j ->> 'event_ts' as timestamptz) as ts,
    j ->> 'event_ts' as ts_text,
    j ->> 'customer_id' as customer_id,
    j ->> 'anonymous_id' as anonymous_id,
    json_keys(j) as keys
from lines
where json_valid(text)
"""


def _violations(con) -> set[tuple[str, int]]:
    allowed = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    rows = con.execute(
        f"""
        select file, line from parsed
        where event_id is null
            or event_type is null or event_type not in ({allowed})
            or ts is null
            or (customer_id is null and anonymous_id is null)
            or (event_type = 'purchase' and (
                j ->> 'order_id' is null
                or try_cast(j ->> 'revenue' as double) is null
                or (j ->> 'revenue')::double < 0))
        """
    ).fetchall()
    return set(rows)


def test_malformed_lines_are_exactly_the_injected_ones(jsonl_zone, con, lines) -> None:
    lines(jsonl_zone.landing)
    bad = set(con.execute("select file, line from lines where not json_valid(text)").fetchall())
    recorded = {(m["file"], m["line"]) for m in jsonl_zone.dirt["malformed_lines"]}
    assert recorded, "the fixture injects malformed lines"
    assert bad == recorded
    # a cut line is a proper prefix of a JSON object, never empty
    assert not con.execute("select count(*) from lines where text = ''").fetchone()[0]


def test_every_valid_record_satisfies_the_contract(jsonl_zone, con, lines) -> None:
    lines(jsonl_zone.landing)
    con.execute(CHECKS_SQL)
    recorded = {(r["file"], r["line"]) for r in jsonl_zone.dirt["invalid_records"]}
    assert _violations(con) == recorded
    reasons = {r["reason"] for r in jsonl_zone.dirt["invalid_records"]}
    assert {"unknown_event_type", "bad_timestamp", "missing_identity"} <= reasons

    # Field names: the contract's plus one documented extra (app_version), nothing else.
    keys = {k for (k,) in con.execute("select distinct unnest(keys) from parsed").fetchall()}
    assert keys - CONTRACT_EVENT_FIELDS == {"app_version"}
    assert {"event_id", "event_type", "event_ts", "order_id", "revenue"} <= keys

    # Types of the optional fields.
    bad_types = con.execute(
        """
        select count(*) from parsed
        where json_type(j, 'price') not in ('DOUBLE', 'UBIGINT', 'BIGINT')
            or json_type(j, 'quantity') not in ('UBIGINT', 'BIGINT')
            or json_type(j, 'revenue') not in ('DOUBLE', 'UBIGINT', 'BIGINT')
            or (j ->> 'scroll_depth')::double not between 0 and 1
            or (j ->> 'time_on_page_s')::double < 0
            or json_type(j, 'customer_id') != 'VARCHAR'
            or json_type(j, 'search_query') != 'VARCHAR'
        """
    ).fetchone()[0]
    assert bad_types == 0
    countries = {c[0] for c in P.COUNTRIES}
    seen = {c for (c,) in con.execute("select distinct j ->> 'country' from parsed").fetchall()}
    assert seen - {None} <= countries


def test_timestamps_mix_z_offsets_and_naive_utc(jsonl_zone, con, lines) -> None:
    lines(jsonl_zone.landing)
    con.execute(CHECKS_SQL)
    kinds = dict(
        con.execute(
            """
            select case
                when ts_text like '%Z' then 'z'
                when regexp_matches(ts_text, '[+-][0-9]{2}:[0-9]{2}$') then 'offset'
                else 'naive' end as kind,
                count(*)
            from parsed where ts is not null group by all
            """
        ).fetchall()
    )
    assert kinds["z"] > kinds["offset"] > 0
    assert kinds["naive"] > 0


def test_partitions_hold_events_of_their_day_unless_recorded_late_or_duplicate(
    jsonl_zone, con, lines
) -> None:
    lines(jsonl_zone.landing)
    con.execute(CHECKS_SQL)
    early = set(
        con.execute(
            "select file, line from parsed "
            "where ts is not null and (ts at time zone 'UTC')::date <> dt"
        ).fetchall()
    )
    dirt = jsonl_zone.dirt
    late = {(x["file"], x["line"]) for x in dirt["late_events"]}
    copies = {(x["duplicate"]["file"], x["duplicate"]["line"]) for x in dirt["duplicate_events"]}
    assert late <= early
    assert early <= late | copies
    # nothing lands before its event happened, nothing after the end date
    assert not con.execute(
        "select count(*) from parsed where (ts at time zone 'UTC')::date > dt"
    ).fetchone()[0]
    assert con.execute("select max(dt) from parsed").fetchone()[0].isoformat() == "2026-06-30"


def test_identity_anonymous_then_login_links_both_ids(jsonl_zone, con, lines) -> None:
    lines(jsonl_zone.landing)
    con.execute(CHECKS_SQL)
    counts = dict(
        con.execute(
            """
            select case
                when customer_id is not null and anonymous_id is not null then 'both'
                when customer_id is not null then 'customer_only'
                when anonymous_id is not null then 'anonymous_only'
                else 'none' end,
                count(*)
            from parsed group by all
            """
        ).fetchall()
    )
    assert counts["both"] > 0 and counts["anonymous_only"] > 0 and counts["customer_only"] > 0
    invalid = [(r["file"], r["line"]) for r in jsonl_zone.dirt["invalid_records"]]
    con.execute("create table invalid (file varchar, line bigint)")
    con.executemany("insert into invalid values (?, ?)", invalid)
    logins = con.execute(
        "select count(*), count(*) filter (where customer_id is not null "
        "and anonymous_id is not null) from parsed anti join invalid using (file, line) "
        "where event_type = 'login'"
    ).fetchone()
    assert logins[0] > 0 and logins[0] == logins[1]
    # a logged-in session starts anonymous: its first event has no customer_id
    never_linked = con.execute(
        """
        select count(distinct anonymous_id) from parsed where anonymous_id is not null
            and anonymous_id not in (
                select anonymous_id from parsed
                where customer_id is not null and anonymous_id is not null)
        """
    ).fetchone()[0]
    assert never_linked > 0  # visitors who never log in


def test_parquet_events_are_typed_and_follow_the_contract(parquet_zone, con) -> None:
    root = parquet_zone.landing.as_posix()
    con.execute(
        f"""
        create table pq as
        select *, replace(filename, '{root}/', '') as file,
            row_number() over (partition by filename order by file_row_number) as line
        from read_parquet('{root}/events/*/*.parquet', filename = true, file_row_number = true)
        """
    )
    types = dict(con.execute("select column_name, column_type from (describe pq)").fetchall())
    assert types["event_ts"] == "TIMESTAMP WITH TIME ZONE"
    assert types["revenue"] == "DOUBLE" and types["quantity"] == "INTEGER"
    assert set(types) >= CONTRACT_EVENT_FIELDS
    allowed = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    bad = set(
        con.execute(
            f"""
            select file, line from pq
            where event_id is null or event_type not in ({allowed})
                or (customer_id is null and anonymous_id is null)
                or (event_type = 'purchase'
                    and (order_id is null or revenue is null or revenue < 0))
            """
        ).fetchall()
    )
    recorded = {(r["file"], r["line"]) for r in parquet_zone.dirt["invalid_records"]}
    assert bad == recorded
    assert parquet_zone.dirt["counts"]["malformed_lines"] == 0


def test_crm_files_follow_the_contract(jsonl_zone, con) -> None:
    crm = sorted((jsonl_zone.landing / "crm").glob("dt=*/customers.csv"))
    assert len(crm) >= 2, "a snapshot and upserts"
    with crm[0].open(newline="") as handle:
        assert next(csv.reader(handle)) == CRM_FIELDS
    root = jsonl_zone.landing.as_posix()
    con.execute(
        f"""
        create table crm as select * from read_csv('{root}/crm/*/customers.csv',
            all_varchar = true, union_by_name = true, filename = true)
        """
    )
    row = con.execute(
        """
        select
            count(*) filter (where customer_id is null or updated_at is null),
            count(*) filter (where try_cast(updated_at as timestamptz) is null),
            count(*) filter (where email_opt_in not in ('true', 'false')),
            count(*) filter (where ads_opt_in not in ('true', 'false')),
            count(*) filter (where ads_opt_in is null),
            count(*) filter (where birth_date is not null and try_cast(birth_date as date) is null),
            count(*) filter (where signup_date is null or try_cast(signup_date as date) is null),
            count(distinct customer_id)
        from crm
        """
    ).fetchone()
    assert row[:4] == (0, 0, 0, 0) and row[5:7] == (0, 0)
    assert row[4] > 0, "some consent cells are blank (= no consent)"
    assert row[7] == jsonl_zone.summary.customers
    countries = ", ".join(f"'{c[0]}'" for c in P.COUNTRIES)
    assert not con.execute(
        f"select count(*) from crm where country not in ({countries})"
    ).fetchone()[0]
    # every customer_id on an event is a CRM customer
    con.execute(
        f"""
        create table ev as select customer_id from read_json('{root}/events/*/*.jsonl',
            format = 'newline_delimited', ignore_errors = true,
            columns = {{customer_id: 'VARCHAR'}})
        """
    )
    orphans = con.execute(
        "select count(*) from ev where customer_id is not null "
        "and customer_id not in (select customer_id from crm)"
    ).fetchone()[0]
    assert orphans == 0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_landing_zone_holds_only_contract_paths(fmt, jsonl_zone, parquet_zone) -> None:
    zone = jsonl_zone if fmt == "jsonl" else parquet_zone
    files = [p for p in zone.landing.rglob("*") if p.is_file()]
    assert files
    for path in files:
        rel = path.relative_to(zone.landing).parts
        assert rel[0] in ("events", "crm") and rel[1].startswith("dt=")
        suffix = f".{fmt}" if rel[0] == "events" else ".csv"
        assert path.name.endswith(suffix), path
