"""Erasure: no row of the customer anywhere, tombstones hold hashes only, and the customer
does not come back on a rerun or a backfill."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest

from segmint.audiences import build_audiences
from segmint.audiences.erasure import (
    erase_customers,
    read_id_file,
    tombstone_filter_sql,
    tombstoned_ids_sql,
)
from segmint.audiences.export import export_audience
from segmint.cli import main
from segmint.publish import publish_warehouse
from segmint.stages import SegmintError
from segmint.warehouse import connect, ensure_raw_tables

AS_OF = date(2026, 6, 30)

RAW = """
insert into raw.events (event_id, event_type, event_ts, customer_id, anonymous_id, session_id,
    _source_file, _source_line, _partition_date, _loaded_at)
values
    ('e1', 'page_view', timestamp '2026-06-29 10:00:00', null, 'A1', 's1',
     'events/dt=2026-06-29/part-0.jsonl', 1, date '2026-06-29', now()),
    ('e2', 'login', timestamp '2026-06-29 10:01:00', 'C01', 'A1', 's1',
     'events/dt=2026-06-29/part-0.jsonl', 2, date '2026-06-29', now()),
    ('e3', 'page_view', timestamp '2026-06-29 11:00:00', 'C02', 'A2', 's2',
     'events/dt=2026-06-29/part-0.jsonl', 3, date '2026-06-29', now());
insert into raw.customers (customer_id, updated_at, email, phone, first_name, last_name,
    country, email_opt_in, ads_opt_in, _source_file, _source_line, _partition_date, _loaded_at)
values
    ('C01', timestamp '2026-06-01 00:00:00', 'anna.smith@example.com', '+14155552671',
     'Anna', 'Smith', 'US', true, true, 'crm/dt=2026-06-01/customers.csv', 7,
     date '2026-06-01', now()),
    ('C02', timestamp '2026-06-01 00:00:00', 'ben@example.com', null, 'Ben', 'Müller', 'DE',
     true, false, 'crm/dt=2026-06-01/customers.csv', 8, date '2026-06-01', now());
create table marts.identity_map as
select 'A1' as anonymous_id, 'C01' as customer_id, timestamp '2026-06-29 10:01:00' as linked_at,
    1 as candidate_count
union all select 'A2', 'C02', timestamp '2026-06-29 11:00:00', 1;
create table marts.sessions as
select 's1' as session_key, null::varchar as customer_id, 'A1' as anonymous_id
union all select 's2', 'C02', 'A2';
create table marts.orders as
select 'O1' as order_id, 'C01' as customer_id, date '2026-06-20' as order_date,
    12.50::decimal(18, 2) as revenue
union all select 'O2', 'C02', date '2026-06-21', 20.00;
create table staging.stg_segmint__customers as select * from raw.customers;
create table ops.quarantine (source_file varchar, line_number bigint, raw_record varchar);
insert into ops.quarantine values
    ('events/dt=2026-06-29/part-1.jsonl', 4, '{"event_id": "e9", "customer_id": "C01"}'),
    ('events/dt=2026-06-29/part-1.jsonl', 5, '{"event_id": "e10", "customer_id": "C011"}');
"""


@pytest.fixture
def full(settings, defs_folder, tmp_path):
    con = connect(settings.warehouse)
    ensure_raw_tables(con)
    con.execute(RAW)
    con.close()
    defs_folder(a="name: a\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n")
    build_audiences(settings, AS_OF)
    export_audience(settings, "a", "google_customer_match", tmp_path / "exports" / "a.csv")
    return settings


def _base_tables(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_catalog = current_database()"
        ).fetchall()
    ]


def _mentions(settings, needles: tuple[str, ...]) -> dict[str, int]:
    """Rows of any table or view of the working warehouse whose text form holds one of the
    needles (regular expressions) as a whole token."""
    return _mentions_in(settings.warehouse, needles)


def _mentions_in(path, needles: tuple[str, ...]) -> dict[str, int]:
    """Rows of any table or view of the DuckDB file ``path`` (the working warehouse, a
    published copy) whose text form holds one of the needles as a whole token. The tables
    come from ``information_schema``, so a table added later is scanned too."""
    con = connect(path, read_only=True)
    tables = [
        r[0]
        for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_catalog = current_database() order by 1"
        ).fetchall()
    ]
    found = {}
    for t in tables:
        cond = " or ".join(
            "regexp_matches(cast(x as varchar), '(^|[^A-Za-z0-9_])' || ? || '([^A-Za-z0-9_]|$)')"
            for _ in needles
        )
        n = con.execute(f"select count(*) from {t} as x where {cond}", list(needles)).fetchone()[0]
        if n:
            found[t] = n
    con.close()
    return found


def test_erasure_removes_every_row_and_logs_without_personal_data(full):
    needles = ("C01", "anna\\.smith", "A1")
    before = _mentions(full, needles)
    assert {"raw.events", "raw.customers", "marts.customers", "audiences.members"} <= set(before)
    result = erase_customers(full, ["C01"], note="ticket 42")
    assert _mentions(full, needles) == {}
    assert result.ids_requested == 1 and result.ids_new == 1
    assert result.tables["raw.events"] == 2  # the login and the anonymous page view before it
    assert result.tables["ops.quarantine"] == 1
    assert any(p.endswith("exports/a.csv") for p in result.export_files)
    assert result.landing_files == [
        "crm/dt=2026-06-01/customers.csv",
        "events/dt=2026-06-29/part-0.jsonl",
        "events/dt=2026-06-29/part-1.jsonl",  # their quarantined record e9
    ]
    con = connect(full.warehouse, read_only=True)
    tomb = [r[0] for r in con.execute("select id_sha256 from ops.erasure_tombstones").fetchall()]
    log = con.execute("select cast(e as varchar) from ops.erasures as e").fetchone()[0]
    others = con.execute("select count(*) from marts.customers").fetchone()[0]
    con.close()
    assert hashlib.sha256(b"segmint-erasure:C01").hexdigest() in tomb
    assert "C01" not in log and "anna" not in log and "ticket 42" in log
    assert others == 11


def test_erasure_says_which_past_export_files_are_no_longer_on_disk(full, tmp_path):
    """Publish deletes old nights' export files ([outputs] keep_nights); the erasure listed
    them as files to delete. It now says which are gone: whoever received them may still
    hold the customers."""
    gone = tmp_path / "exports" / "a.csv"
    kept = tmp_path / "exports" / "b.csv"
    export_audience(full, "a", "google_customer_match", kept)
    gone.unlink()
    lines = erase_customers(full, ["C01"]).lines()
    assert (
        f"    {gone} (no longer on disk: removed by [outputs] keep_nights, or moved; re-send)"
        in (lines)
    )
    assert f"    {kept}" in lines


def test_erasure_on_another_machine_says_where_an_export_file_was_written(
    full, tmp_path, monkeypatch
):
    """An erasure run on another machine than the one that wrote the export files (the
    Airflow worker's) said of each "no longer on disk: removed by [outputs] keep_nights":
    they were never on its disk, and stayed on the worker's. Each export now records the
    machine it was written on, the erasure names it, and ops.erasures keeps it."""
    import socket

    worker = tmp_path / "worker" / "a.csv"
    mine = tmp_path / "mine" / "a.csv"
    real = socket.gethostname()
    monkeypatch.setattr(socket, "gethostname", lambda: "etl-worker-1")
    export_audience(full, "a", "csv", worker)
    monkeypatch.setattr(socket, "gethostname", lambda: real)
    export_audience(full, "a", "csv", mine)
    worker.unlink()  # not on this machine's disk: the worker's
    mine.unlink()  # written here and gone: retention, or moved
    result = erase_customers(full, ["C01"])
    lines = result.lines()
    assert (
        f"    {worker} (written on etl-worker-1, not on this machine ({real}): delete it there; "
        "if it is gone there too, whoever it was sent to may still hold them)"
    ) in lines
    assert (
        f"    {mine} (no longer on disk: removed by [outputs] keep_nights, or moved; re-send)"
    ) in lines
    con = connect(full.warehouse, read_only=True)
    (hosts,) = con.execute("select export_hosts from ops.erasures").fetchone()
    con.close()
    hosts = json.loads(hosts)
    assert hosts[str(worker)] == ["etl-worker-1"] and hosts[str(mine)] == [real]


def test_erasure_says_the_analysts_copy_keeps_them_when_the_full_copy_is_damaged(full):
    """The line saying the published copies keep the erased rows until the next publish read
    the night from the full copy alone: damaged, nothing was said, while the analysts' copy
    still held the customer. Both copies are read; none readable still says they may."""
    publish_warehouse(full.warehouse, full.published_warehouse, AS_OF, full.analyst_warehouse)
    copy = full.published_warehouse
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes()[:100_000])
    lines = erase_customers(full, ["C01"]).lines()
    assert lines[-1] == (
        "  the published read-only copies (full and analysts') keep them until the next "
        f"publish; run `segmint publish --as-of {AS_OF}` to replace them now"
    )
    analyst = full.analyst_warehouse
    analyst.chmod(0o644)
    analyst.write_bytes(analyst.read_bytes()[:100_000])
    lines = erase_customers(full, ["C07"]).lines()
    assert lines[-1].startswith(
        "  the published read-only copies may keep them, but which night they hold could not "
        f"be read ({copy}: IO Error"
    )
    assert lines[-1].endswith("run `segmint publish --as-of` the newest night to replace them now")


def _row_counts(settings) -> dict[str, int]:
    con = connect(settings.warehouse, read_only=True)
    tables = _base_tables(con)
    counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    con.close()
    return counts


def _file_holds(path, needles: tuple[bytes, ...]) -> list[bytes]:
    data = path.read_bytes()
    return [n for n in needles if n in data]


def test_erased_customer_leaves_no_bytes_in_the_file_or_the_next_published_copy(full):
    """Deleted rows stay in DuckDB's free blocks, readable with `strings`, and a byte copy
    (the published copy) carried them on: the erasure rewrites the file without them."""
    needles = (b"anna.smith@example.com", b"Anna.Smith@Example.com", b"+14155552671")
    published = full.warehouse.parent / "published" / "segmint.duckdb"
    publish_warehouse(full.warehouse, published, AS_OF)
    assert _file_holds(full.warehouse, needles) == list(needles)  # stored as plain text
    stale = full.warehouse.parent / f".{full.warehouse.name}.compact-1"
    stale.write_bytes(b"left by a compaction that was killed")
    counts_before = _row_counts(full)

    result = erase_customers(full, ["C01"])

    assert _file_holds(full.warehouse, needles) == []
    assert result.file_bytes and result.file_bytes[0] >= result.file_bytes[1] > 0
    assert any("leave no bytes behind" in line for line in result.lines())
    # The command it gives to replace the published copies now is one that runs (publish
    # requires the night).
    assert (
        "  the published read-only copies (full and analysts') keep them until the next "
        f"publish; run `segmint publish --as-of {AS_OF}` to replace them now"
    ) in result.lines()
    assert not stale.exists()
    # Nothing else was lost in the rewrite: every table holds its rows but the erased ones.
    expected = {t: n - result.tables.get(t, 0) for t, n in counts_before.items()}
    # plus the erasure's own log line and tombstones (the id, the anonymous id A1, the
    # address and the phone as the CRM and the marts spell it)
    expected |= {"ops.erasures": 1, "ops.erasure_tombstones": 5}
    assert _row_counts(full) == expected
    # The copy published before the erasure still holds them (the CLI says so); the next
    # publish copies the rewritten file.
    assert _file_holds(published, needles) == list(needles)
    # The analysts' copy holds the e-mail only as its hash, and the id, until then too.
    analyst = published.with_name("segmint_analyst.duckdb")
    masked = (hashlib.sha256(b"anna.smith@example.com").hexdigest().encode(), b"C01")
    assert _file_holds(analyst, masked) == list(masked)
    publish_warehouse(full.warehouse, published, AS_OF)
    assert _file_holds(published, needles) == []
    assert _file_holds(analyst, masked) == []
    build_audiences(full, AS_OF)  # the rewritten file takes the next night's writes


def test_erased_customer_stays_erased_after_rerun_and_backfill(full):
    erase_customers(full, ["C01"])
    build_audiences(full, AS_OF)  # rerun
    assert _mentions(full, ("C01",)) == {}

    # A backfill reloads an old file: ingest must filter with tombstone_filter_sql.
    con = connect(full.warehouse)
    con.execute(
        "create temp table incoming as select * from (values ('C01', 'A1'), ('C02', 'A2'), "
        "('C03', null), (null, 'A1')) as t(customer_id, anonymous_id)"
    )
    kept = con.execute(
        f"select customer_id, anonymous_id from incoming where {tombstone_filter_sql(con)} "
        "order by 1"
    ).fetchall()
    # And if something brings them back anyway, the next audiences run purges them.
    con.execute(
        "insert into raw.customers (customer_id, updated_at, email, email_opt_in, ads_opt_in, "
        "_source_file, _source_line, _partition_date, _loaded_at) values ('C01', "
        "timestamp '2026-06-01 00:00:00', 'anna.smith@example.com', true, true, 'old.csv', 1, "
        "date '2026-06-01', now())"
    )
    con.execute(
        "insert into marts.customers (customer_id, email, ads_opt_in, email_opt_in) "
        "values ('C01', 'anna.smith@example.com', true, true)"
    )
    con.close()
    assert kept == [("C02", "A2"), ("C03", None)]
    result = build_audiences(full, AS_OF)
    assert result.details["purged_rows"] == 2
    assert _mentions(full, ("C01", "anna\\.smith")) == {}
    build_audiences(full, AS_OF)  # nothing came back: only new rows were checked
    con = connect(full.warehouse, read_only=True)
    purges = con.execute(
        "select rows_removed, full_scan from ops.erasure_purges order by purged_at"
    ).fetchall()
    con.close()
    assert purges == [(0, True), (2, True), (0, False)]


def test_tombstone_helpers_without_erasures(settings):
    con = connect(settings.warehouse)
    assert tombstone_filter_sql(con) == "true"
    assert "ops.erasure_tombstones" in tombstoned_ids_sql("customer_id")
    con.close()


def test_id_file_formats_and_errors(tmp_path):
    plain = tmp_path / "ids.txt"
    plain.write_text("# erasure requests\nC01\n\nC02\n")
    assert read_id_file(plain) == ["C01", "C02"]
    table = tmp_path / "ids.csv"
    table.write_text("request,customer_id\nr1,C03\nr2,C04\n")
    assert read_id_file(table) == ["C03", "C04"]
    bad = tmp_path / "bad.csv"
    bad.write_text("request,id\nr1,C03\n")
    with pytest.raises(SegmintError, match=r"bad\.csv:1: CSV header has no customer_id"):
        read_id_file(bad)


def test_an_id_file_saved_by_excel_erases_its_customers(full, tmp_path, capsys):
    """Excel in much of Europe saves "CSV UTF-8" with a byte-order mark and ";" between
    columns. Only "," was read as a CSV: "customer_id;reason" and "C01;complaint" were taken
    as ids, nothing was erased (a warning per id), and C01's data stayed; with ","
    the byte-order mark hid the header ("CSV header has no customer_id column")."""
    ids = tmp_path / "requests.csv"
    ids.write_bytes(b'\xef\xbb\xbfcustomer_id;reason\r\nC01;ticket 41\r\n"C07";ticket 42\r\n')
    assert read_id_file(ids) == ["C01", "C07"]
    assert main(["erase", "--warehouse", str(full.warehouse), "--file", str(ids)]) == 0
    out = capsys.readouterr().out
    assert "2 id(s) (2 not erased before)" in out and "not found" not in out
    assert _mentions(full, ("C01", "C07")) == {}
    comma = tmp_path / "comma.csv"
    comma.write_bytes(b"\xef\xbb\xbfcustomer_id,reason\r\nC03,x\r\n")
    single = tmp_path / "single.csv"
    single.write_bytes(b"\xef\xbb\xbfcustomer_id\r\nC04\r\n")
    assert (read_id_file(comma), read_id_file(single)) == (["C03"], ["C04"])
    # Excel's plain "CSV" (the Windows code page) is named with its line, not a traceback.
    cp1252 = tmp_path / "cp1252.csv"
    cp1252.write_bytes("customer_id;reason\nC05;Beschwerde über Werbung\n".encode("cp1252"))
    with pytest.raises(SegmintError, match=r"cp1252\.csv:2: not UTF-8 \(byte 0xfc\)"):
        read_id_file(cp1252)


def test_erase_file_that_is_a_folder_says_so(tmp_path, capsys):
    """``--file /etc`` said "id file does not exist" of a folder that does: say what it is,
    before any warehouse is opened."""
    code = main(["erase", "--warehouse", str(tmp_path / "wh.duckdb"), "--file", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{tmp_path}: is a folder, not an id file" in err and "does not exist" not in err
    assert not (tmp_path / "wh.duckdb").exists()


def test_erasure_of_an_unknown_id_warns_and_names_near_matches(full, capsys):
    """An id in the wrong case erases nothing: it is still tombstoned (a request may come
    before the data), but the operator is told, per id, and shown the stored id."""
    con = connect(full.warehouse)
    con.execute(
        "insert into marts.customers (customer_id, email, email_opt_in, ads_opt_in) "
        "values (' C77 ', 'x@example.com', true, true)"
    )
    con.close()
    wh = ["erase", "--warehouse", str(full.warehouse)]
    code = main([*wh, "--customer-id", "c01", "--customer-id", "c77", "--customer-id", "C404"])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 id(s) (3 not erased before), 0 row(s) deleted; 3 id(s) not found" in out
    assert "  warning: no rows for customer c01 in any table; did you mean C01?" in out
    assert "  warning: no rows for customer c77 in any table; did you mean ' C77 '?" in out
    assert "  warning: no rows for customer C404 in any table; check the id" in out
    assert "published read-only copies" not in out  # nothing published: none to replace
    assert _mentions(full, ("C01",))  # nothing of C01 was touched

    # Mixed: C02 found and erased, c02 named (not "did you mean C02": it was asked for too).
    result = erase_customers(full, ["C02", "c02"])
    assert result.rows_deleted > 0 and list(result.not_found) == ["c02"]
    assert result.warnings == [
        "no rows for customer c02 in any table; check the id (its tombstone is recorded, so "
        "its records are dropped if they arrive later)"
    ]
    # The right id at last, then again: the second time nothing is left and nothing is wrong.
    assert erase_customers(full, ["C01"]).warnings == []
    again = erase_customers(full, ["C01"])
    assert again.warnings == [] and again.erased_before == ["C01"]
    assert "  C01: no rows left (erased before)" in again.lines()


def test_erasure_of_an_id_only_in_quarantine_is_not_reported_missing(full):
    con = connect(full.warehouse)
    con.execute(
        "insert into ops.quarantine values ('events/dt=2026-06-29/part-1.jsonl', 6, "
        '\'{"event_id": "e11", "customer_id": "Q9"}\')'
    )
    con.close()
    result = erase_customers(full, ["Q9"])
    assert result.tables["ops.quarantine"] == 1
    assert result.not_found == {} and result.warnings == []


def test_erasure_finds_ids_with_colons_slashes_or_pipes_in_quarantined_records(full):
    """Auth0 user ids and Shopify's global ids are cut into pieces by the usual word split
    of a raw record; the records are still theirs, in JSON and in CSV."""
    auth0, gid = "auth0|5f7c8ec7c33c", "gid://shopify/Customer/7001"
    con = connect(full.warehouse)
    con.executemany(
        "insert into ops.quarantine values ('q', ?, ?)",
        [
            [1, f'{{"event_id": "e21", "customer_id": "{auth0}", "event_ts": "epoch"}}'],
            [2, f"{gid},not-a-date,x7001@example.com,Jo,Doe"],
            [3, '{"event_id": "e22", "customer_id": "auth0|5f7c8ec7c33d"}'],
        ],
    )
    con.close()
    result = erase_customers(full, [auth0, gid])
    assert result.tables["ops.quarantine"] == 2
    assert result.not_found == {} and result.warnings == []
    con = connect(full.warehouse, read_only=True)
    assert con.execute(
        "select line_number from ops.quarantine where source_file = 'q'"
    ).fetchall() == [(3,)]
    con.close()


def test_an_id_with_excels_apostrophe_is_erased_as_the_ingest_reads_it(settings, capsys):
    """Shopify's customer export writes its Customer ID as '7210448301122; the ingest reads
    it as 7210448301122. An erasure request pasted from that export erased nothing and
    tombstoned an id no record can have, so the customer's next records loaded too."""
    from segmint.ingest import run_ingest

    crm = settings.landing / "crm/dt=2026-06-01/customers.csv"
    crm.parent.mkdir(parents=True)
    crm.write_text("customer_id,updated_at,email\n'7210448301122,2026-05-01,a@example.com\n")
    run_ingest(settings, date(2026, 6, 1))
    ids = settings.landing.parent / "erase.csv"
    ids.write_text("customer_id\n'7210448301122\n")
    assert main(["erase", "--warehouse", str(settings.warehouse), "--file", str(ids)]) == 0
    out = capsys.readouterr().out
    assert "1 id(s) (1 not erased before)" in out and "not found" not in out
    later = settings.landing / "crm/dt=2026-06-02/customers.csv"
    later.parent.mkdir(parents=True)
    later.write_text("customer_id,updated_at,email\n'7210448301122,2026-06-02,a@example.com\n")
    run_ingest(settings, date(2026, 6, 2))
    assert _mentions(settings, ("7210448301122", "a@example\\.com")) == {}


def test_erasure_removes_quarantined_records_holding_only_their_email_or_phone(full):
    """A CRM line quarantined for a missing or unusable customer_id holds no id to find, but
    still the customer's address, phone and name: it survived the erasure, in the table and
    in the rewritten file (and so in the next published copy). A record with an address
    another customer has too is not theirs alone and stays."""
    con = connect(full.warehouse)
    con.execute(
        "insert into raw.customers (customer_id, updated_at, email, email_opt_in, ads_opt_in, "
        "_source_file, _source_line, _partition_date, _loaded_at) values ('C05', "
        "timestamp '2026-06-01 00:00:00', 'family@example.com', true, true, "
        "'crm/dt=2026-06-01/customers.csv', 9, date '2026-06-01', now()), ('C01', "
        "timestamp '2026-06-02 00:00:00', 'family@example.com', true, true, "
        "'crm/dt=2026-06-02/customers.csv', 1, date '2026-06-02', now())"
    )
    con.executemany(
        "insert into ops.quarantine values (?, ?, ?)",
        [
            ["crm/dt=2026-06-03/customers.csv", 2, ",2026-06-03,Anna.Smith@Example.com,,Anna"],
            ["crm/dt=2026-06-04/customers.csv", 3, "N/A;2026-06-04;;+14155552671;Anna"],
            ["crm/dt=2026-06-04/customers.csv", 4, ",2026-06-04,ben@example.com,,Ben"],
            ["crm/dt=2026-06-04/customers.csv", 5, ",2026-06-04,family@example.com,,Kim"],
        ],
    )
    con.close()
    result = erase_customers(full, ["C01"])
    assert result.tables["ops.quarantine"] == 3  # the two above and the fixture's e9
    assert {"crm/dt=2026-06-03/customers.csv", "crm/dt=2026-06-04/customers.csv"} <= set(
        result.landing_files
    )
    assert _mentions(full, ("C01", "anna\\.smith", "14155552671")) == {}
    assert _file_holds(full.warehouse, (b"Anna.Smith@Example.com", b"+14155552671")) == []
    con = connect(full.warehouse, read_only=True)
    left = con.execute(
        "select line_number from ops.quarantine where source_file like 'crm/%' order by 1"
    ).fetchall()
    con.close()
    assert left == [(4,), (5,)]


OPS_NEAR_MISSES = """
create table ops.customer_ids_differing_in_case (customer_id varchar, first_as_of_date date,
    last_as_of_date date, crm_customer_id varchar, gone_as_of_date date);
insert into ops.customer_ids_differing_in_case values
    ('c01', date '2026-06-29', date '2026-06-30', 'C01', null),
    ('C01', date '2026-06-29', date '2026-06-30', 'c01', null),
    ('c02', date '2026-06-29', date '2026-06-30', 'C02', null);
create table ops.customer_ids_differing_in_leading_zeros (customer_id varchar,
    first_as_of_date date, last_as_of_date date, crm_customer_id varchar, gone_as_of_date date);
insert into ops.customer_ids_differing_in_leading_zeros values
    ('C01', date '2026-06-29', date '2026-06-30', 'C01', null);
create table ops.placeholder_customer_ids (customer_id varchar, first_as_of_date date,
    last_as_of_date date, order_count bigint, anonymous_id_count bigint, gone_as_of_date date);
insert into ops.placeholder_customer_ids values
    ('C01', date '2026-06-29', date '2026-06-30', 1, 1, null),
    ('guest', date '2026-06-29', date '2026-06-30', 9, 4, null);
insert into ops.quarantine values
    ('crm/dt=2026-06-30/customers.csv', 3, ',2026-06-30,anna.smith@example.com,+14155552671');
"""


def test_erasure_leaves_nothing_in_any_table_of_the_warehouse_or_the_published_copies(full):
    """Every table and view of the working warehouse, and of both published copies once
    published again, is scanned (from information_schema: a table added later is covered)
    for the id, the anonymous id, the e-mail (and the hash the analysts' copy holds) and the
    phone; the transform's ops tables naming ids (near misses, placeholders) included."""
    con = connect(full.warehouse)
    con.execute(OPS_NEAR_MISSES)
    con.close()
    published = full.warehouse.parent / "published" / "segmint.duckdb"
    analyst = published.with_name("segmint_analyst.duckdb")
    publish_warehouse(full.warehouse, published, AS_OF)
    email_hash = hashlib.sha256(b"anna.smith@example.com").hexdigest()
    needles = ("C01", "c01", "A1", "anna\\.smith@example\\.com", "\\+?14155552671", email_hash)
    before = _mentions(full, needles)
    assert {
        "ops.customer_ids_differing_in_case",
        "ops.customer_ids_differing_in_leading_zeros",
        "ops.placeholder_customer_ids",
        "ops.quarantine",
    } <= set(before)
    assert _mentions_in(analyst, needles)  # the id (not an address: kept), until republished

    result = erase_customers(full, ["C01"])
    publish_warehouse(full.warehouse, published, AS_OF)

    for path in (full.warehouse, published, analyst):
        assert _mentions_in(path, needles) == {}, path
    # The other customers' rows stay: C02's near miss, the placeholder.
    assert _mentions(full, ("c02", "guest")) == {
        "ops.customer_ids_differing_in_case": 1,
        "ops.placeholder_customer_ids": 1,
    }
    assert result.tables["ops.customer_ids_differing_in_case"] == 2
    assert result.tables["ops.placeholder_customer_ids"] == 1


def test_erasure_removes_their_records_counted_as_duplicates(full):
    """ops.duplicates keeps the file, line and key (the event id, or the CRM record's content
    hash) of each duplicate ingest set aside: after the erasure, it still pointed at their
    records (a login, their anonymous browsing, their CRM line) in the landing files."""
    from segmint.ingest.loader import Ingest

    con = connect(full.warehouse)
    con.execute(
        "create table ops.duplicates (source varchar, source_file varchar, "
        "line_number bigint, partition_date date, record_key varchar)"
    )
    crm_key = con.execute(
        f"select {Ingest._key_sql('crm')} from raw.customers where customer_id = 'C01'"
    ).fetchone()[0]
    con.executemany(
        "insert into ops.duplicates values (?, ?, ?, date '2026-06-29', ?)",
        [
            ["events", "events/dt=2026-06-29/part-9.jsonl", 1, "e1"],
            ["events", "events/dt=2026-06-29/part-9.jsonl", 2, "e2"],
            ["events", "events/dt=2026-06-29/part-9.jsonl", 3, "e3"],
            ["crm", "crm/dt=2026-06-02/customers.csv", 4, crm_key],
        ],
    )
    con.close()
    result = erase_customers(full, ["C01"])
    assert result.tables["ops.duplicates"] == 3
    assert {"events/dt=2026-06-29/part-9.jsonl", "crm/dt=2026-06-02/customers.csv"} <= set(
        result.landing_files
    )
    con = connect(full.warehouse, read_only=True)
    left = con.execute("select record_key from ops.duplicates").fetchall()
    con.close()
    assert left == [("e3",)]  # C02's


def test_a_quarantined_line_with_their_address_does_not_come_back_on_a_reload(settings):
    """A CRM line without a usable customer_id is quarantined with the customer's address and
    phone; the erasure deleted it, but a reload of the landing file (`ingest --reload-since`)
    quarantined it again: tombstones held ids only. Their own addresses and phone numbers are
    tombstoned too (hashed), so ingest drops such a record, in any case of the address."""
    from segmint.ingest import run_ingest

    crm = settings.landing / "crm/dt=2026-06-01/customers.csv"
    crm.parent.mkdir(parents=True)
    crm.write_text(
        "customer_id,updated_at,email,phone\n"
        "X9001,2026-05-01,zoe.erased@example.org,+14155550199\n"
        "X9002,2026-05-01,ben@example.com,\n"
        ",2026-05-02,Zoe.Erased@Example.org,\n"
        ",2026-05-02,,+14155550199\n"
        ",2026-05-02,ben@example.com,\n"
    )
    run_ingest(settings, date(2026, 6, 1))
    needles = ("X9001", "(?i)zoe\\.erased@example\\.org", "\\+14155550199")
    assert "ops.quarantine" in _mentions(settings, needles)
    erase_customers(settings, ["X9001"])
    assert _mentions(settings, needles) == {}
    run_ingest(settings, date(2026, 6, 1), reload_since=date(2026, 6, 1))
    assert _mentions(settings, needles) == {}
    assert "ops.quarantine" in _mentions(settings, ("ben@example\\.com",))  # not theirs
