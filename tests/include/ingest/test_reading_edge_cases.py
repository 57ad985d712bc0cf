"""How landing files are read, where DuckDB's readers or a naive parser would lose rows.

File names that are glob patterns, Parquet files whose columns change type, CSV files with a
blank first line, stray or trailing quotes, Spark's temporary folders, upper-case
extensions. Every test uses real files and the real ingest, and checks the row accounting.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmint.ingest import run_ingest
from segmint.stages import InputError
from segmint.validation import docs_run_name
from tests.include.ingest.conftest import D1, D2, event, write_jsonl, write_lines

DAY = "events/dt=2026-06-01"
CSV_HEADER = "event_id,event_type,event_ts,customer_id"


def _accounting(query) -> list[tuple]:
    """``(path, status, rows_read)`` per file; asserts rows_read = the sum of the outcomes."""
    broken = query(
        "select path from ops.load_manifest where status = 'loaded' and rows_read <> "
        "rows_loaded + rows_quarantined + rows_duplicate + rows_erased + rows_ignored"
    )
    assert broken == []
    return query("select path, status, rows_read from ops.load_manifest order by 1")


def _csv_row(event_id: str) -> str:
    return f"{event_id},page_view,2026-06-01T10:00:00Z,c1"


def test_file_names_holding_glob_characters_are_read_as_named(settings, landing, query):
    """DuckDB takes every path as a glob pattern: 'export[1].jsonl' matched export1.jsonl
    (its own rows lost), 'a*.jsonl' matched ab.jsonl too (the ingest crashed)."""
    day = landing / DAY
    write_jsonl(day / "export[1].jsonl", [event("br1"), event("br2")])
    write_jsonl(day / "export1.jsonl", [event("plain1")])
    write_jsonl(day / "a*.jsonl", [event("star1")])
    write_jsonl(day / "ab.jsonl", [event("ab1")])
    write_jsonl(day / "q?x.jsonl", [event("qm1")])
    write_jsonl(day / "qax.jsonl", [event("qa1")])
    write_jsonl(day / "back\\slash.jsonl", [event("bs1")])
    write_lines(day / "c[1].csv", [CSV_HEADER, _csv_row("csvbr1")])
    write_lines(day / "c1.csv", [CSV_HEADER, _csv_row("csvplain1")])
    for name, eid in (("p[1].parquet", "pqbr1"), ("p1.parquet", "pqplain1")):
        pq.write_table(
            pa.table(
                {
                    "event_id": [eid],
                    "event_type": ["page_view"],
                    "event_ts": ["2026-06-01T10:00:00Z"],
                    "customer_id": ["c1"],
                }
            ),
            day / name,
        )
    # A file that is not UTF-8 is read from a copy: the copy's name is no pattern either.
    (day / "l[1].jsonl").write_bytes(
        json.dumps(event("lat1", customer_id="Jos\u00e9"), ensure_ascii=False).encode("latin-1")
        + b"\n"
    )
    write_jsonl(day / "l1.jsonl", [event("lat_plain")])
    run_ingest(settings, D1)
    assert all(status == "loaded" for _, status, _ in _accounting(query))
    got = query("select _source_file, _source_line, event_id from raw.events order by all")
    assert [(f.removeprefix(DAY + "/"), line, e) for f, line, e in got] == [
        ("a*.jsonl", 1, "star1"),
        ("ab.jsonl", 1, "ab1"),
        ("back\\slash.jsonl", 1, "bs1"),
        ("c1.csv", 2, "csvplain1"),
        ("c[1].csv", 2, "csvbr1"),
        ("export1.jsonl", 1, "plain1"),
        ("export[1].jsonl", 1, "br1"),
        ("export[1].jsonl", 2, "br2"),
        ("l1.jsonl", 1, "lat_plain"),
        ("l[1].jsonl", 1, "lat1"),
        ("p1.parquet", 1, "pqplain1"),
        ("p[1].parquet", 1, "pqbr1"),
        ("q?x.jsonl", 1, "qm1"),
        ("qax.jsonl", 1, "qa1"),
    ]
    assert query("select count(*) from ops.duplicates") == [(0,)]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def _events_table(ids: list[str], **columns) -> pa.Table:
    data = {
        "event_id": ids,
        "event_type": ["purchase"] * len(ids),
        "event_ts": ["2026-06-01T10:00:00Z"] * len(ids),
        "customer_id": ["c1"] * len(ids),
        "order_id": [f"o-{i}" for i in ids],
        "revenue": [1.0] * len(ids),
    }
    data.update(columns)
    return pa.table(data)


def test_parquet_files_whose_column_types_differ_keep_their_own_values(settings, landing, query):
    """One multi-file scan casts every file to the first file's types: a double revenue
    after an integer one was rounded (12.75 -> 13), a text id after an integer one lost its
    zeros ("00123" -> "123"), a timestamp after a date became midnight. (Values that cannot
    be cast fail the scan, and each file was then read alone: these all can.)"""
    day = landing / DAY
    day.mkdir(parents=True)
    pq.write_table(
        _events_table(
            ["a1"],
            revenue=pa.array([10], pa.int64()),
            customer_id=pa.array([123], pa.int64()),
            event_ts=pa.array([date(2026, 6, 1)], pa.date32()),
        ),
        day / "a.parquet",
    )
    pq.write_table(
        _events_table(
            ["b1", "b2"],
            revenue=pa.array([12.75, 0.4], pa.float64()),
            customer_id=pa.array(["00123", "0042"]),
            event_ts=pa.array([datetime(2026, 6, 1, 17, 45, 12)] * 2, pa.timestamp("us")),
        ),
        day / "b.parquet",
    )
    pq.write_table(
        _events_table(["c1"], revenue=pa.array(["12.50"]), customer_id=pa.array(["077"])),
        day / "c.parquet",
    )
    # The same types as a.parquet: still read in a.parquet's scan, and still exact.
    pq.write_table(
        _events_table(
            ["d1"],
            revenue=pa.array([7], pa.int64()),
            customer_id=pa.array([45], pa.int64()),
            event_ts=pa.array([date(2026, 6, 1)], pa.date32()),
        ),
        day / "d.parquet",
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/a.parquet", "loaded", 1),
        (f"{DAY}/b.parquet", "loaded", 2),
        (f"{DAY}/c.parquet", "loaded", 1),
        (f"{DAY}/d.parquet", "loaded", 1),
    ]
    assert query(
        "select event_id, customer_id, event_ts::VARCHAR, revenue::VARCHAR "
        "from raw.events order by 1"
    ) == [
        ("a1", "123", "2026-06-01 00:00:00", "10.00"),
        ("b1", "00123", "2026-06-01 17:45:12", "12.75"),
        ("b2", "0042", "2026-06-01 17:45:12", "0.40"),
        ("c1", "077", "2026-06-01 10:00:00", "12.50"),
        ("d1", "45", "2026-06-01 00:00:00", "7.00"),
    ]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_a_csv_header_after_blank_lines_is_the_header(settings, landing, query):
    """Some exporters write an empty line (or spaces, or a CR) before the header: the file
    loaded as empty, its rows silently unread. The header is the first line that is not
    blank; line numbers stay physical."""
    day = landing / DAY
    day.mkdir(parents=True)
    rows = "".join(_csv_row(f"{{p}}{i}") + "\n" for i in range(3))
    (day / "lf.csv").write_text("\n" + CSV_HEADER + "\n" + rows.format(p="lf"))
    (day / "spaces.csv").write_bytes(
        ("   \n" + CSV_HEADER + "\n" + rows.format(p="sp")).replace("\n", "\r\n").encode()
    )
    # Two blank lines, then a record whose quoted field spans two lines.
    (day / "multi.csv").write_text(
        "\r\n\n" + CSV_HEADER + ',note\nm1,page_view,2026-06-01T10:00:00Z,c1,"a\nb"\n'
    )
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "customers.csv").write_text("\ncustomer_id,updated_at\nc1,2026-06-01\nc2,2026-06-01\n")
    run_ingest(settings, D1)
    assert _accounting(query) == [
        ("crm/dt=2026-06-01/customers.csv", "loaded", 2),
        (f"{DAY}/lf.csv", "loaded", 3),
        (f"{DAY}/multi.csv", "loaded", 1),
        (f"{DAY}/spaces.csv", "loaded", 3),
    ]
    got = query("select _source_file, _source_line, event_id, _extra from raw.events order by 1, 2")
    assert [(f.removeprefix(DAY + "/"), line, e, x) for f, line, e, x in got] == [
        ("lf.csv", 3, "lf0", None),
        ("lf.csv", 4, "lf1", None),
        ("lf.csv", 5, "lf2", None),
        ("multi.csv", 4, "m1", '{"note":"a\\nb"}'),
        ("spaces.csv", 3, "sp0", None),
        ("spaces.csv", 4, "sp1", None),
        ("spaces.csv", 5, "sp2", None),
    ]
    assert query("select customer_id, _source_line from raw.customers order by 1") == [
        ("c1", 3),
        ("c2", 4),
    ]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_excels_separator_line_before_the_header_is_no_header(settings, landing, query):
    """Exports meant to open in Excel in every locale write its separator directive
    (``sep=;``) on the line before the header. The file failed ("CSV header lacks required
    column(s) customer_id, updated_at (header is: 'sep=;')") and every record of it was left
    unread. The directive is skipped; the header is the next line; line numbers stay
    physical."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "semicolon.csv").write_bytes(
        b"\xef\xbb\xbfsep=;\r\ncustomer_id;email;updated_at\r\n"
        b"s1;s1@example.com;2026-06-01\r\ns2;s2@example.com;2026-06-01\r\n"
    )
    (crm / "comma.csv").write_text(
        '"sep=,"\n\ncustomer_id,email,updated_at\nk1,"k1@example.com",2026-06-01\n'
    )
    # Only the directive: no header, no record.
    (crm / "nothing.csv").write_text("sep=;\n")
    run_ingest(settings, D1)
    assert _accounting(query) == [
        ("crm/dt=2026-06-01/comma.csv", "loaded", 1),
        ("crm/dt=2026-06-01/nothing.csv", "loaded", 0),
        ("crm/dt=2026-06-01/semicolon.csv", "loaded", 2),
    ]
    assert query(
        "select customer_id, email, _source_line, _extra from raw.customers order by 1"
    ) == [
        ("k1", "k1@example.com", 4, None),
        ("s1", "s1@example.com", 3, None),
        ("s2", "s2@example.com", 4, None),
    ]


def test_a_quote_inside_an_unquoted_csv_field_is_a_character(settings, landing, query):
    """A quote opens a quoted field only at the start of a field (RFC 4180, as Python's csv
    and DuckDB read it). 'TV 55" screen' made every following line part of one record up to
    the next stray quote: the rows between vanished inside one quarantined record."""
    header = "event_id,event_type,event_ts,customer_id,search_query"
    ts = "2026-06-01T10:00:00Z"
    lines = [header] + [f"e{i},search,{ts},c1,shoes" for i in range(8)]
    lines[2] = f'e1,search,{ts},c1,TV 55" screen'
    lines[4] = f'e3,search,{ts},c1,27" monitor "curved'
    # An even number of quotes that still opens a field running onto the next line.
    lines[6] = f'e5,search,{ts},c"5,"two\nlines"'
    lines.append(f'e8,search,{ts},c1,"5"" x 3"" card"')
    lines[7] = f'e6,search,{ts},c1,a"b'
    write_lines(landing / DAY / "stray.csv", lines)
    run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/stray.csv", "loaded", 9)]
    got = query("select event_id, _source_line, customer_id, search_query from raw.events")
    assert sorted(got) == [
        ("e0", 2, "c1", "shoes"),
        ("e1", 3, "c1", 'TV 55" screen'),
        ("e2", 4, "c1", "shoes"),
        ("e3", 5, "c1", '27" monitor "curved'),
        ("e4", 6, "c1", "shoes"),
        ("e5", 7, 'c"5', "two\nlines"),
        ("e6", 9, "c1", 'a"b'),
        ("e7", 10, "c1", "shoes"),
        ("e8", 11, "c1", '5" x 3" card'),
    ]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_a_control_character_in_a_csv_cell_is_a_character(settings, landing, query):
    """The line reader split lines at 0x1F, its 'no delimiter' byte: a cell holding one (a
    unit separator pasted from a terminal or a legacy export) was cut there, 'Ann<US>Marie'
    loaded as 'Ann', or the record quarantined for a wrong field count."""
    write_lines(
        landing / DAY / "c.csv",
        [CSV_HEADER + ",search_query", _csv_row("u1") + ",red\x1fshoes", _csv_row("u2") + ",x"],
    )
    write_lines(
        landing / DAY / "m.csv",
        [
            "event_id,search_query,event_type,event_ts,customer_id",
            "u3,a\x1fb,page_view,2026-06-01,c1",
        ],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/c.csv", "loaded", 2), (f"{DAY}/m.csv", "loaded", 1)]
    assert query("select event_id, search_query from raw.events order by 1") == [
        ("u1", "red\x1fshoes"),
        ("u2", "x"),
        ("u3", "a\x1fb"),
    ]


def test_a_repeated_unknown_csv_column_is_kept_numbered(settings, landing, query):
    """CRM exports repeat unknown columns (HubSpot's 'Notes' and 'notes'): the whole file
    failed as a repeated header, though unknown columns are never an error. They are kept
    in _extra, numbered; a repeated contract field still fails its file (which id?)."""
    write_lines(
        landing / "crm/dt=2026-06-01/hubspot.csv",
        ["customer_id,updated_at,Notes,notes", "k1,2026-05-01,called,vip"],
    )
    write_lines(landing / DAY / "twice.csv", [CSV_HEADER + ",customer_id", _csv_row("e1") + ",c2"])
    with pytest.raises(InputError, match="CSV header repeats column\\(s\\) customer_id"):
        run_ingest(settings, D1)
    assert query("select customer_id, _extra from raw.customers") == [
        ("k1", '{"notes":"called","notes_2":"vip"}')
    ]
    assert query("select count(*) from raw.events") == [(0,)]


def test_text_after_a_closing_quote_quarantines_the_record(settings, landing, query):
    """'"c"17' is no RFC 4180 field: it loaded as 'c', the '17' silently dropped. The record
    is quarantined with a reason naming the field; well-formed quoting still loads."""
    header = "event_id,event_type,event_ts,customer_id,search_query"
    ts = "2026-06-01T10:00:00Z"
    write_lines(
        landing / DAY / "q.csv",
        [
            header,
            f'a1,search,{ts},c1,"red"dress',
            f'a2,search,{ts},"c"17,x',
            f'a3,search,{ts},"c""17""",x',
            f'a4,search,{ts},c1,"a,""b"""',
            f'a5,search,{ts},c1,"never closed',
        ],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/q.csv", "loaded", 5)]
    assert query("select event_id, customer_id, search_query from raw.events order by 1") == [
        ("a3", 'c"17"', "x"),
        ("a4", "c1", 'a,"b"'),
    ]
    assert query("select line_number, reasons from ops.quarantine order by 1") == [
        (2, ["malformed CSV: text after the closing quote of field 5 (search_query)"]),
        (3, ["malformed CSV: text after the closing quote of field 4 (customer_id)"]),
        (6, ["malformed CSV: unbalanced quotes"]),
    ]


def test_a_quoted_field_that_never_closes_does_not_swallow_the_file(settings, landing, query):
    """Spark and MySQL escape a quote inside a quoted field with a backslash ("27\\""): read
    as RFC 4180, that field never closes, and every later line of the file became one
    quarantined record counted as one row (1,999 lines lost from the counts, gate passed).
    Now the opening line is quarantined alone and the lines after it are records again."""
    reason = (
        'malformed CSV: unbalanced quotes (\\" is no escape in CSV: a quote inside a quoted '
        'field is doubled, "")'
    )
    header = CSV_HEADER + ",search_query"
    write_lines(
        landing / DAY / "spark.csv",
        [header, _csv_row("s1") + ',"two\nlines"', _csv_row("s2") + ',"Monitor 27\\""']
        + [_csv_row(f"p{n}") + ",plain" for n in range(5)],
    )
    # Two such quotes: the second closed the first's field, the lines between became one
    # malformed record. Each of its lines is read again alone: the good ones load, the cut
    # multi-line cell between them is quarantined line by line.
    write_lines(
        landing / DAY / "twice.csv",
        [
            header,
            _csv_row("t2") + ',"Monitor 27\\""',
            _csv_row("t3") + ",plain",
            _csv_row("t4") + ',"again\ntwo lines"',
            _csv_row("t5") + ',"TV 55\\""',
            _csv_row("t6") + ",last",
        ],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/spark.csv", "loaded", 7),
        (f"{DAY}/twice.csv", "loaded", 6),
    ]
    assert query("select event_id, _source_line from raw.events order by 2, 1") == [
        ("s1", 2),
        ("t3", 3),
        ("p0", 5),
        ("p1", 6),
        ("p2", 7),
        ("t6", 7),
        ("p3", 8),
        ("p4", 9),
    ]
    assert query(
        "select regexp_extract(source_file, '[a-z]+.csv'), line_number, reasons "
        "from ops.quarantine order by 1, 2"
    ) == [
        ("spark.csv", 4, [reason]),
        ("twice.csv", 2, [reason]),
        ("twice.csv", 4, ["malformed CSV: unbalanced quotes"]),
        ("twice.csv", 5, ["malformed CSV: 1 fields but the header has 5"]),
        ("twice.csv", 6, [reason]),
    ]


def test_empty_parquet_tab_only_lines_and_parquet_text_stored_as_bytes(settings, landing, query):
    """Three shapes real exporters write: a 0-byte .parquet failed the run every night (an
    empty file of any other format loads with 0 rows); a JSONL line of tabs was quarantined
    as malformed while a line of spaces was blank; Parquet text stored as bytes without the
    UTF-8 annotation loaded escaped ('J\\xC3\\xB6rg'), so the same id in CSV and Parquet made
    two customers. Bytes that are no UTF-8 stay escaped rather than fail the file."""
    day = landing / DAY
    day.mkdir(parents=True)
    (day / "empty.parquet").write_bytes(b"")
    write_lines(
        day / "tabs.jsonl", [json.dumps(event("t1")), "\t", " \t ", json.dumps(event("t4"))]
    )
    binary = pa.table(
        {
            "event_id": pa.array([b"b1", b"b2"], pa.binary()),
            "event_type": pa.array([b"page_view"] * 2, pa.binary()),
            "event_ts": pa.array([b"2026-06-01T10:00:00Z"] * 2, pa.binary()),
            "customer_id": pa.array(["m\u00fcller-7".encode(), b"c2"], pa.binary()),
            "search_query": pa.array([b"caf\xc3\xa9", b"\xff\xfe"], pa.binary()),
        }
    )
    pq.write_table(binary, day / "impala.parquet")
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/empty.parquet", "loaded", 0),
        (f"{DAY}/impala.parquet", "loaded", 2),
        (f"{DAY}/tabs.jsonl", "loaded", 2),
    ]
    assert query(
        "select event_id, _source_line, customer_id, search_query from raw.events order by 1"
    ) == [
        ("b1", 1, "m\u00fcller-7", "caf\u00e9"),
        ("b2", 2, "c2", "\\xFF\\xFE"),
        ("t1", 1, "c1", None),
        ("t4", 4, "c1", None),
    ]


def test_folders_starting_with_underscore_or_dot_in_a_partition_are_skipped(
    settings, landing, query
):
    """Spark and Hadoop write '_temporary/' while a job runs (partial attempt files); other
    tools a '.staging/' folder. Only the file name was checked: the half-written attempt was
    loaded, then the committed file again. Names starting with '_' or '.' are skipped at any
    depth below the partition, by the ingest and by the delivery check alike."""
    from datetime import UTC, datetime

    from segmint.ingest.files import as_of_delivery

    day = landing / DAY
    attempt = day / "_temporary/0/_temporary/attempt_0001_m_000000_0"
    write_lines(attempt / "part-00000.jsonl", [json.dumps(event("s0")), '{"event_id": "s1", "ev'])
    write_jsonl(day / ".staging/part-00001.jsonl", [event("t0")])
    write_jsonl(day / "sub/.hidden/part-00002.jsonl", [event("h0")])
    now = datetime(2026, 6, 2, tzinfo=UTC)
    assert as_of_delivery(landing, D1, now, wait_hours=6).status == "waiting"
    write_jsonl(day / "sub/part-00003.jsonl", [event("v0")])
    write_jsonl(day / "part-00000.jsonl", [event("s0"), event("s1")])
    assert as_of_delivery(landing, D1, now, wait_hours=6).files == 2
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/part-00000.jsonl", "loaded", 2),
        (f"{DAY}/sub/part-00003.jsonl", "loaded", 1),
    ]
    assert query("select event_id from raw.events order by 1") == [("s0",), ("s1",), ("v0",)]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_a_missing_landing_zone_is_an_error_naming_it(settings):
    """A mistyped --landing read as an empty landing zone: the ingest 'loaded 0 rows' and
    exited 0, a quiet night in the logs while nothing was read."""
    missing = settings.landing / "typo"
    with pytest.raises(InputError, match=f"the landing zone {missing} does not exist"):
        run_ingest(settings.with_overrides(landing=missing), D1)
    missing.parent.mkdir(parents=True)
    missing.write_text("not a folder")
    with pytest.raises(InputError, match="is not a folder"):
        run_ingest(settings.with_overrides(landing=missing), D1)


def test_top_level_folders_other_than_the_sources_are_reported(settings, landing, query):
    """A source folder with another name (Events/, event/) was skipped silently: its files
    were never read and the night looked complete. Such entries are a warning now."""
    write_jsonl(landing / DAY / "part-0.jsonl", [event("e0")])
    write_jsonl(landing / "Events/dt=2026-06-01/part-0.jsonl", [event("e1")])
    write_lines(landing / "README.txt", ["what this folder is"])
    write_lines(landing / "_SUCCESS", [])
    result = run_ingest(settings, D1)
    assert query("select event_id from raw.events") == [("e0",)]
    assert [w for w in result.warnings if w.startswith("ignored")] == [
        "ignored Events/: not a landing source folder (only events and crm are read)",
        "ignored README.txt: not a landing source folder (only events and crm are read)",
    ]


def test_files_that_are_not_read_are_named_with_what_would_read_them(settings, landing, query):
    """Segment's S3 destination names its gzipped JSON lines <time>.<id>.gz; copied into a
    partition they were skipped as "not a supported landing file or partition", as were a
    Hive-style date=... folder, a file beside the partitions and a workbook: a new user could
    not tell which names are read. Each warning now says what would read the file, and the
    same Segment file landed under a .jsonl.gz name loads."""
    segment = gzip.compress(
        (json.dumps(event("m1", customer_id=None, anonymous_id="a1")) + "\n").encode(), mtime=0
    )
    (landing / DAY).mkdir(parents=True)
    (landing / DAY / "1780308000000.ec50e60c.gz").write_bytes(segment)
    write_jsonl(landing / "events/date=2026-06-01/part-0.jsonl", [event("e1")])
    write_jsonl(landing / "events/part-0.jsonl", [event("e2")])
    (landing / "crm/dt=2026-06-01").mkdir(parents=True)
    (landing / "crm/dt=2026-06-01/customers.xlsx").write_bytes(b"PK\x03\x04")
    (landing / "crm/dt=2026-06-01/customers.tsv").write_text("customer_id\tupdated_at\n")
    (landing / "crm/dt=2026-06-01/customers.zip").write_bytes(b"PK\x03\x04")
    result = run_ingest(settings, D1)
    assert query("select count(*) from raw.events") == [(0,)]
    assert sorted(w for w in result.warnings if w.startswith("ignored")) == [
        "ignored crm/dt=2026-06-01/customers.tsv: not read: segmint reads delimited text named"
        " .csv (comma, semicolon, tab or pipe: the separator is found from the header)",
        "ignored crm/dt=2026-06-01/customers.xlsx: not read: a spreadsheet workbook (save each"
        " sheet as CSV, .csv)",
        "ignored crm/dt=2026-06-01/customers.zip: not a supported landing file (segmint reads"
        " .jsonl, .ndjson, .json or .csv (each also .gz), .parquet)",
        "ignored events/date=2026-06-01: not read: partition folders are named dt=YYYY-MM-DD"
        " (the delivery date)",
        f"ignored {DAY}/1780308000000.ec50e60c.gz: not read: a gzip file's name says its format"
        " before .gz (.jsonl.gz, .ndjson.gz, .json.gz or .csv.gz; Segment's S3 files,"
        " <time>.<id>.gz, are JSON lines: land them named .jsonl.gz)",
        "ignored events/part-0.jsonl: not read: a landing file goes into a partition folder,"
        " dt=YYYY-MM-DD (the delivery date)",
    ]
    (landing / DAY / "1780308000000.ec50e60c.jsonl.gz").write_bytes(segment)
    run_ingest(settings, D1)
    assert query("select event_id, anonymous_id from raw.events") == [("m1", "a1")]


def test_linked_folders_are_read_and_entries_that_are_no_files_reported(settings, landing, query):
    """A linked sub-folder of a partition was not followed, and a broken link (a share that
    is not mounted) or a pipe named .jsonl was skipped, all without a word. Linked folders
    are read (each real folder once: a link loop does not hang); the others are warnings."""
    import os

    day = landing / DAY
    write_jsonl(day / "plain.jsonl", [event("p1")])
    elsewhere = landing.parent / "elsewhere"
    write_jsonl(elsewhere / "in_linked.jsonl", [event("l1"), event("l2")])
    (day / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(elsewhere, target_is_directory=True)
    (day / "broken.jsonl").symlink_to(landing.parent / "not-mounted" / "x.jsonl")
    os.mkfifo(day / "stream.jsonl")
    result = run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/linked/in_linked.jsonl", "loaded", 2),
        (f"{DAY}/plain.jsonl", "loaded", 1),
    ]
    assert [w for w in result.warnings if w.startswith("ignored")] == [
        f"ignored {DAY}/broken.jsonl: a broken symbolic link (its target is missing)",
        f"ignored {DAY}/stream.jsonl: not a regular file (a pipe, socket or device)",
    ]


def test_an_upper_case_gz_file_with_a_line_that_is_not_utf8_loads(settings, landing, query):
    """The UTF-8 copy of a gzip file kept a '.GZ' suffix (only '.gz' was stripped): DuckDB
    read the plain copy as gzip and the whole file failed with 'Input is not a GZIP
    stream'."""
    day = landing / DAY
    day.mkdir(parents=True)
    latin1 = json.dumps(event("l1", customer_id="Jos\u00e9"), ensure_ascii=False)
    (day / "EXPORT.JSONL.GZ").write_bytes(
        gzip.compress(json.dumps(event("g1")).encode() + b"\n" + latin1.encode("latin-1") + b"\n")
    )
    (day / "EXPORT.CSV.Gz").write_bytes(
        gzip.compress(
            f"{CSV_HEADER}\n{_csv_row('c1')}\nc2,page_view,2026-06-01,Ren\xe9\n".encode("latin-1")
        )
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/EXPORT.CSV.Gz", "loaded", 2),
        (f"{DAY}/EXPORT.JSONL.GZ", "loaded", 2),
    ]
    assert query("select event_id, customer_id, _source_line from raw.events order by 1") == [
        ("c1", "c1", 2),
        ("c2", "Ren\u00e9", 3),
        ("g1", "c1", 1),
        ("l1", "Jos\u00e9", 2),
    ]


def test_a_line_longer_than_the_line_limit_is_quarantined_not_the_file(settings, landing, query):
    """A record over 16 MiB (a tracker that inlined a whole page, a runaway CSV cell) made
    DuckDB's line reader refuse the file: every good line of it stayed unloaded, night after
    night. The line is quarantined with its length and first bytes; the file loads."""
    from segmint.ingest.files import (
        MAX_LINE_SIZE,
        TOO_LONG_HEAD,
        TOO_LONG_MARK,
        TOO_LONG_REASON,
    )

    huge = "x" * MAX_LINE_SIZE
    day = landing / DAY
    write_lines(
        day / "page.jsonl.gz",
        [json.dumps(event("j1")), json.dumps(event("big", html=huge)), json.dumps(event("j3"))],
        gz=True,
    )
    # In CSV the cut line holds an open quote: it must not swallow the lines after it.
    write_lines(
        day / "cells.csv",
        [CSV_HEADER, _csv_row("c1"), _csv_row("cbig") + f',"{huge}"', _csv_row("c3")],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/cells.csv", "loaded", 3),
        (f"{DAY}/page.jsonl.gz", "loaded", 3),
    ]
    assert query("select event_id, _source_line from raw.events order by 1") == [
        ("c1", 2),
        ("c3", 4),
        ("j1", 1),
        ("j3", 3),
    ]
    rows = query(
        "select source_file, line_number, reasons, raw_record from ops.quarantine order by 1"
    )
    assert [(f, n, r) for f, n, r, _ in rows] == [
        (f"{DAY}/cells.csv", 3, [TOO_LONG_REASON]),
        (f"{DAY}/page.jsonl.gz", 2, [TOO_LONG_REASON]),
    ]
    jsonl_text = rows[1][3]
    big = json.dumps(event("big", html=huge))
    assert jsonl_text == f"{TOO_LONG_MARK}{len(big)} bytes: {big[:TOO_LONG_HEAD]}"


def test_a_gzip_file_padded_with_zeros_loads_and_trailing_garbage_fails(settings, landing, query):
    """Block-padded writers and tape copies leave zero bytes after the gzip stream: gzip(1)
    and Python read such a file, DuckDB failed it as 'not a GZIP stream'. Other bytes after
    the stream still fail the file, with its name."""
    day = landing / DAY
    day.mkdir(parents=True)
    body = (json.dumps(event("p1")) + "\n" + json.dumps(event("p2")) + "\n").encode()
    (day / "padded.jsonl.gz").write_bytes(gzip.compress(body) + bytes(4096))
    (day / "padded.csv.gz").write_bytes(
        gzip.compress(f"{CSV_HEADER}\n{_csv_row('c1')}\n".encode()) + bytes(512)
    )
    (day / "garbage.jsonl.gz").write_bytes(gzip.compress(body) + b"trailing bytes")
    with pytest.raises(InputError, match=f"{DAY}/garbage.jsonl.gz"):
        run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/garbage.jsonl.gz", "failed", 0),
        (f"{DAY}/padded.csv.gz", "loaded", 1),
        (f"{DAY}/padded.jsonl.gz", "loaded", 2),
    ]
    assert query("select event_id from raw.events order by 1") == [("c1",), ("p1",), ("p2",)]


def test_json_lines_named_json_or_ndjson_are_read(settings, landing, query):
    """BigQuery's and GA4's JSON exports and RudderStack's S3 files are JSON lines named
    .json or .json.gz; other tools write .ndjson. They were skipped as unsupported files."""
    day = landing / DAY
    day.mkdir(parents=True)

    def lines(prefix: str) -> str:
        return "".join(json.dumps(event(f"{prefix}{i}")) + "\n" for i in range(2))

    (day / "bq-000000000000.json").write_text(lines("b"))
    (day / "rudder.json.gz").write_bytes(gzip.compress(lines("r").encode()))
    (day / "tool.NDJSON").write_text(lines("n"))
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/bq-000000000000.json", "loaded", 2),
        (f"{DAY}/rudder.json.gz", "loaded", 2),
        (f"{DAY}/tool.NDJSON", "loaded", 2),
    ]
    assert [r[0] for r in query("select event_id from raw.events order by 1")] == [
        "b0",
        "b1",
        "n0",
        "n1",
        "r0",
        "r1",
    ]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_a_json_document_that_is_not_json_lines_fails_saying_how_to_convert_it(
    settings, landing, query
):
    """A file named JSON lines that is one JSON array, pretty-printed or not, or objects
    written over several lines each (`jq .`): none of its lines is a record. Its fragments
    were quarantined one by one ("not a valid JSON document", 20 times for 3 events); the
    file now fails as a whole, saying what it is and how to write it as JSON lines, and is
    retried on the next run. A file of one array a line, or of broken lines, is still
    checked line by line."""
    day = landing / DAY
    day.mkdir(parents=True)
    records = [event(f"a{i}") for i in range(3)]
    (day / "pretty.jsonl").write_text(json.dumps(records, indent=2))
    (day / "one-line.ndjson.gz").write_bytes(gzip.compress(json.dumps(records).encode()))
    (day / "jq.jsonl").write_text("\n".join(json.dumps(r, indent=2) for r in records) + "\n")
    (day / "batches.jsonl").write_text(json.dumps(records[:1]) + "\n" + json.dumps(records[1:]))
    (day / "good.jsonl").write_text(json.dumps(event("g1")) + "\n")
    with pytest.raises(InputError) as caught:
        run_ingest(settings, D1)
    for name in ("pretty.jsonl", "one-line.ndjson.gz", "jq.jsonl"):
        assert f"{DAY}/{name}" in str(caught.value)
    assert _accounting(query) == [
        (f"{DAY}/batches.jsonl", "loaded", 2),
        (f"{DAY}/good.jsonl", "loaded", 1),
        (f"{DAY}/jq.jsonl", "failed", 0),
        (f"{DAY}/one-line.ndjson.gz", "failed", 0),
        (f"{DAY}/pretty.jsonl", "failed", 0),
    ]
    errors = dict(query("select path, error from ops.load_manifest where status = 'failed'"))
    assert errors[f"{DAY}/pretty.jsonl"] == (
        "not JSON lines: the file is one JSON array of 3 value(s); segmint reads one JSON "
        "object a line (jq -c '.[]' FILE writes them so)"
    )
    assert errors[f"{DAY}/one-line.ndjson.gz"] == errors[f"{DAY}/pretty.jsonl"]
    assert errors[f"{DAY}/jq.jsonl"].startswith(
        "not JSON lines: the file holds 3 JSON value(s) written over several lines each"
    )
    assert query("select count(*), min(line_number), max(line_number) from ops.quarantine") == [
        (2, 1, 2)
    ]  # the two array lines of batches.jsonl, each its own reason
    assert query("select event_id from raw.events") == [("g1",)]


def test_a_json_file_holding_one_document_is_skipped_and_reported(settings, landing, query):
    """.json names a manifest, a schema or an array export as often as JSON lines. Such a
    file (first line "[" or a lone "{") is reported and skipped, as every .json file was
    before they were read: a manifest beside the data must not fail every night."""
    day = landing / DAY
    day.mkdir(parents=True)
    (day / "manifest.json").write_text(json.dumps({"entries": [{"url": "a"}]}, indent=2))
    (day / "export.json.gz").write_bytes(gzip.compress(json.dumps([event("x1")]).encode()))
    (day / "data.json").write_text(json.dumps(event("d1")) + "\n")
    result = run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/data.json", "loaded", 1)]
    skipped = [w for w in result.warnings if "one JSON document" in w]
    assert [w.split(":")[0] for w in skipped] == [
        f"ignored {DAY}/export.json.gz",
        f"ignored {DAY}/manifest.json",
    ]
    assert "jq -c '.[]' FILE" in skipped[0]
    # A loaded .json file the manifest knows unchanged (size, modification time) is not
    # opened again to look at its first line (a night may hold thousands of export shards).
    data = day / "data.json"
    stat = data.stat()
    text = data.read_text()
    data.write_text("[" + text[1:])  # same size: only a read would notice
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = run_ingest(settings, D1)
    assert not [w for w in again.warnings if "data.json" in w]
    assert _accounting(query) == [(f"{DAY}/data.json", "loaded", 1)]


def test_a_gzip_file_without_gz_in_its_name_is_decompressed(settings, landing, query, caplog):
    """Kinesis Firehose objects and S3 objects stored with Content-Encoding: gzip are gzip
    under a plain name: the compressed bytes were read as a few hundred broken lines,
    quarantined as malformed JSON, and the file's events were lost with the gate passing."""
    day = landing / DAY
    day.mkdir(parents=True)
    records = [json.dumps(event(f"z{i}")) for i in range(300)]
    (day / "app.jsonl").write_bytes(gzip.compress(("\n".join(records) + "\n").encode()))
    (day / "crm.csv").write_bytes(gzip.compress(f"{CSV_HEADER}\n{_csv_row('c1')}\n".encode()))
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/app.jsonl", "loaded", 300),
        (f"{DAY}/crm.csv", "loaded", 1),
    ]
    assert query("select count(*) from raw.events") == [(301,)]
    assert query("select count(*) from ops.quarantine") == [(0,)]
    assert "gzip-compressed although its name does not end in .gz" in caplog.text


def test_a_workbook_or_parquet_file_under_a_text_name_fails_saying_what_it_holds(
    settings, landing, query
):
    """An Excel workbook saved as .xlsx (a zip file) or .xls and named .csv, or a Parquet file
    named .jsonl: its bytes are not UTF-8, so it was decoded as Windows-1252 text, and the
    file failed with "CSV header lacks required column(s) ... (header is: 'PK\\x03\\x04...')"
    (or its lines were quarantined as malformed JSON, one by one). It fails saying what it
    holds; the other files load."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    (crm / "customers.csv").write_bytes(buffer.getvalue())
    (crm / "old.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4)
    (crm / "good.csv").write_text("customer_id,updated_at\nc1,2026-06-01\n")
    day = landing / DAY
    day.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([event("p1")]), day / "events.jsonl")
    with pytest.raises(InputError) as caught:
        run_ingest(settings, D1)
    assert _accounting(query) == [
        ("crm/dt=2026-06-01/customers.csv", "failed", 0),
        ("crm/dt=2026-06-01/good.csv", "loaded", 1),
        ("crm/dt=2026-06-01/old.csv", "failed", 0),
        (f"{DAY}/events.jsonl", "failed", 0),
    ]
    assert dict(query("select path, error from ops.load_manifest where status = 'failed'")) == {
        "crm/dt=2026-06-01/customers.csv": "not text: the file holds zip data (an Excel "
        "workbook, .xlsx, is zip); segmint reads CSV and JSON lines, plain or gzip (save the "
        "workbook as CSV)",
        "crm/dt=2026-06-01/old.csv": "not text: the file holds Excel 97-2003 workbook (.xls) "
        "data; segmint reads CSV and JSON lines, plain or gzip (save the workbook as CSV)",
        f"{DAY}/events.jsonl": "not text: the file holds Parquet data; segmint reads CSV and "
        "JSON lines, plain or gzip",
    }
    assert "customers.csv: not text" in str(caught.value)
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_a_plain_text_file_named_gz_is_read_and_another_compression_fails_by_name(
    settings, landing, query, caplog
):
    """A gzip download saved by `curl --compressed` or a browser is plain text under its .gz
    name, and so is an export whose compression was turned off: the whole file failed
    ("Input is not a GZIP stream"). It is read as text now, with a warning. A truncated gzip
    still fails, and a .gz holding another compression (zstd) fails naming it."""
    day = landing / DAY
    day.mkdir(parents=True)
    records = [json.dumps(event(f"t{i}")) for i in range(3)]
    (day / "plain.jsonl.gz").write_text("\n".join(records) + "\n")
    (day / "crm.csv.gz").write_text(f"{CSV_HEADER}\n{_csv_row('c1')}\n")
    (day / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"event_id": "x"}\n' * 50)[:40])
    (day / "zstd.jsonl.gz").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(60))
    with pytest.raises(InputError) as caught:
        run_ingest(settings, D1)
    assert "zstd.jsonl.gz" in str(caught.value) and "cut.jsonl.gz" in str(caught.value)
    assert _accounting(query) == [
        (f"{DAY}/crm.csv.gz", "loaded", 1),
        (f"{DAY}/cut.jsonl.gz", "failed", 0),
        (f"{DAY}/plain.jsonl.gz", "loaded", 3),
        (f"{DAY}/zstd.jsonl.gz", "failed", 0),
    ]
    ((error,),) = query(
        "select error from ops.load_manifest where path = ?", [f"{DAY}/zstd.jsonl.gz"]
    )
    assert "the file holds zstd data; segmint reads gzip or plain text" in error
    assert query("select event_id from raw.events order by 1") == [
        ("c1",),
        ("t0",),
        ("t1",),
        ("t2",),
    ]
    assert "plain.jsonl.gz: not gzip-compressed although its name ends in .gz" in caplog.text


def test_a_contract_key_given_twice_quarantines_the_record(settings, landing, query):
    """{"customer_id": "anon", ..., "customer_id": "c7"}: DuckDB read the first value,
    Python, JavaScript and jq the last; 600 purchases loaded as page views of one customer.
    A repeated contract key is ambiguous: the record is quarantined. A repeated unknown key
    is not (unknown fields are never an error)."""
    write_lines(
        landing / DAY / "dup.jsonl",
        [
            '{"event_id":"d1","customer_id":"anon","event_type":"page_view",'
            '"event_ts":"2026-06-01T10:00:00Z","customer_id":"c7","event_type":"purchase"}',
            '{"event_id":"d2","customer_id":"c1","event_type":"page_view",'
            '"event_ts":"2026-06-01T10:00:00Z","title":"a","title":"b"}',
            json.dumps(event("d3")),
        ],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/dup.jsonl", "loaded", 3)]
    assert query("select event_id from raw.events order by 1") == [("d2",), ("d3",)]
    assert query("select line_number, reasons from ops.quarantine") == [
        (
            1,
            [
                "a field is given twice in the record (JSON readers disagree on which value "
                "counts) (got event_type, customer_id)"
            ],
        )
    ]


def test_a_lone_surrogate_escape_does_not_quarantine_the_event(settings, landing, query):
    """JavaScript writes a string cut mid-emoji as a lone surrogate escape ("\\ud83d"),
    which the JSON grammar allows and Python reads; DuckDB's parser refused the line and
    the event was quarantined as malformed. Such a line is read with its surrogate escapes
    as U+FFFD; a pair elsewhere in a valid line is read as usual."""
    write_lines(
        landing / DAY / "cut.jsonl",
        [
            json.dumps(event("s1", search_query="red shoes \ud83d")),
            json.dumps(event("s2", search_query="red shoes \U0001f45f")),
            '{"event_id": "s3", "event_type": "page_view", "event_ts": "2026-06-01", '
            '"customer_id": "c1", "page_title": "cut \\udc9f"}',
            '{"event_id": "s4", "broken',
        ],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/cut.jsonl", "loaded", 4)]
    assert query("select event_id, search_query, _extra from raw.events order by 1") == [
        ("s1", "red shoes \ufffd", None),
        ("s2", "red shoes \U0001f45f", None),
        ("s3", None, '{"page_title":"cut \ufffd"}'),
    ]
    assert query("select line_number from ops.quarantine") == [(4,)]


def test_a_byte_order_mark_inside_a_jsonl_file_is_not_part_of_the_record(settings, landing, query):
    """Files written with a byte-order mark and joined with cat carry the mark at the start
    of a line in the middle: that record was quarantined as malformed JSON."""
    bom = "\ufeff"
    write_lines(
        landing / DAY / "joined.jsonl",
        [bom + json.dumps(event("b1")), json.dumps(event("b2")), bom + json.dumps(event("b3"))],
    )
    run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/joined.jsonl", "loaded", 3)]
    assert query("select event_id, _source_line from raw.events order by 1") == [
        ("b1", 1),
        ("b2", 2),
        ("b3", 3),
    ]


def test_lines_of_a_large_csv_file_keep_their_numbers(tmp_path):
    """DuckDB's parallel reader appends the ranges of a large file in the order its threads
    finish them unless told to keep the scan's order: every line number of a 2-million-line
    CSV file was off (and multi-line records would be rejoined from the wrong lines). The
    line table keeps the order whatever the connection's setting."""
    import duckdb

    from segmint.ingest.files import LandingFile, _read_lines_batch

    path = tmp_path / "big.csv"
    lines = 2_500_000
    with path.open("w") as out:
        out.write(CSV_HEADER + "\n")
        out.writelines(f"L{n},page_view,2026-06-01T10:00:00Z,c1\n" for n in range(2, lines + 1))
    big = LandingFile(
        path=f"{DAY}/big.csv",
        abspath=path,
        source="events",
        partition_date=D1,
        fmt="csv",
        size_bytes=path.stat().st_size,
        sha256="-",
        mtime_ns=0,
    )
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET preserve_insertion_order = false")
    assert _read_lines_batch(con, [big], [0], "_lines") == {}
    assert con.execute(
        "select count(*), count(*) filter (where ln > 1 and line <> 'L' || ln || "
        "',page_view,2026-06-01T10:00:00Z,c1') from _lines"
    ).fetchone() == (lines, 0)
    # The connection's own setting is left as it was.
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone() == (False,)


def test_many_small_files_are_loaded_in_batches_of_bounded_file_count(
    settings, landing, query, tmp_path, monkeypatch
):
    """Batches were bounded by bytes only: a backfill of a one-file-per-minute export (15,840
    files, 3 MB) went into one scan and ran out of memory on every rerun. A batch now holds
    at most BATCH_FILES files; the tables are the same as with one batch."""
    from segmint.ingest import loader
    from tests.include.ingest.conftest import warehouse_hashes

    for day in (1, 2):
        for minute in range(4):
            write_jsonl(
                landing / f"events/dt=2026-06-0{day}/m{minute}.jsonl",
                # Every event once more in the next minute's file: duplicates across batches.
                [event(f"d{day}m{minute}"), event(f"d{day}m{max(minute - 1, 0)}")],
            )
    one = settings.with_overrides(warehouse=tmp_path / "one" / "w.duckdb")
    run_ingest(one, date(2026, 6, 2))
    monkeypatch.setattr(loader, "BATCH_FILES", 3)
    run_ingest(settings, date(2026, 6, 2))
    assert query(
        "select count(*), sum(rows_loaded), sum(rows_duplicate) from ops.load_manifest"
    ) == [(8, 8, 8)]
    assert warehouse_hashes(settings.warehouse) == warehouse_hashes(one.warehouse)


def test_parquet_columns_named_as_duckdb_scan_columns_are_data(settings, landing, query):
    """'file_index' and 'file_row_number' are columns a multi-file read_parquet adds; a file
    holding one hid them: an exporter's shard number 'file_index' = 0 attributed another
    file's rows to the first file (or crashed the ingest), a 'file_row_number' column failed
    the file. Such columns are data like any unknown column (kept in _extra); the rows keep
    their own file and row number, and their values are those the usual reader gives."""
    from decimal import Decimal

    day = landing / DAY
    day.mkdir(parents=True)

    def table(ids: list[str], **extra) -> pa.Table:
        n = len(ids)
        return pa.table(
            {
                "event_id": ids,
                "event_type": ["purchase"] * n,
                "event_ts": pa.array(
                    [datetime(2026, 6, 1, 9, 30, 15, 250000)] * n, pa.timestamp("ms", tz="UTC")
                ),
                "customer_id": ["c1"] * n,
                "order_id": [f"o-{e}" for e in ids],
                "revenue": pa.array([Decimal("12.75")] * n, pa.decimal128(10, 2)),
                **extra,
            }
        )

    pq.write_table(table(["a1", "a2"], file_index=pa.array([0, 0])), day / "a.parquet")
    pq.write_table(table(["b1", "b2", "b3"], file_index=pa.array([0, 0, 0])), day / "b.parquet")
    pq.write_table(table(["c1"], file_row_number=pa.array([7])), day / "c.parquet")
    pq.write_table(table(["p1"]), day / "plain.parquet")
    write_jsonl(day / "good.jsonl", [event("j1")])
    run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/a.parquet", "loaded", 2),
        (f"{DAY}/b.parquet", "loaded", 3),
        (f"{DAY}/c.parquet", "loaded", 1),
        (f"{DAY}/good.jsonl", "loaded", 1),
        (f"{DAY}/plain.parquet", "loaded", 1),
    ]
    got = query(
        "select _source_file, _source_line, event_id, event_ts::VARCHAR, revenue::VARCHAR, "
        "_extra from raw.events where event_id <> 'j1' order by 1, 2"
    )
    ts = "2026-06-01 09:30:15.25"
    assert [(f.removeprefix(DAY + "/"), *rest) for f, *rest in got] == [
        ("a.parquet", 1, "a1", ts, "12.75", '{"file_index":0}'),
        ("a.parquet", 2, "a2", ts, "12.75", '{"file_index":0}'),
        ("b.parquet", 1, "b1", ts, "12.75", '{"file_index":0}'),
        ("b.parquet", 2, "b2", ts, "12.75", '{"file_index":0}'),
        ("b.parquet", 3, "b3", ts, "12.75", '{"file_index":0}'),
        ("c.parquet", 1, "c1", ts, "12.75", '{"file_row_number":7}'),
        ("plain.parquet", 1, "p1", ts, "12.75", None),
    ]


def test_utf16_text_files_are_decoded(settings, landing, query, caplog):
    """Excel's "Unicode Text" export is UTF-16 (little-endian, with a byte-order mark) and
    tab-separated: read as UTF-8 its header was garbled and the file failed. A text file
    whose byte-order mark says UTF-16 (either byte order) is decoded as such."""
    day = landing / DAY
    day.mkdir(parents=True)
    excel = "\r\n".join(
        [
            "event_id\tevent_type\tevent_ts\tcustomer_id",
            "x1\tpage_view\t2026-06-01T10:00:00Z\tJos\u00e9",
            "x2\tpage_view\t2026-06-01T10:00:00Z\t\u5f20\u4f1f",
            "",
        ]
    )
    (day / "excel.txt.csv").write_bytes(excel.encode("utf-16"))  # BOM + little-endian here
    jsonl = "".join(json.dumps(event(e), ensure_ascii=False) + "\n" for e in ("b\u00e91", "b2"))
    (day / "be.jsonl.gz").write_bytes(gzip.compress(b"\xfe\xff" + jsonl.encode("utf-16-be")))
    with caplog.at_level("WARNING"):
        run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/be.jsonl.gz", "loaded", 2),
        (f"{DAY}/excel.txt.csv", "loaded", 2),
    ]
    assert query("select event_id, customer_id, _source_line from raw.events order by 1") == [
        ("b2", "c1", 2),
        ("b\u00e91", "c1", 1),
        ("x1", "Jos\u00e9", 2),
        ("x2", "\u5f20\u4f1f", 3),
    ]
    assert any("excel.txt.csv: read as UTF-16" in r.getMessage() for r in caplog.records)


def test_a_long_file_name_read_through_a_scratch_copy_loads(settings, landing, query, caplog):
    """A name near the file-system limit, read through a link (a glob character) or a UTF-8
    copy (a Latin-1 line): the scratch name is shortened, keeping its end ('.gz'). The
    batch's Data Docs page too: GX stores it in a folder named by the run, and the run
    named by both long paths failed with 'File name too long' (only in GX's log)."""
    day = landing / DAY
    day.mkdir(parents=True)
    latin1 = json.dumps(event("l1", customer_id="Jos\u00e9"), ensure_ascii=False)
    long_gz = "x" * 230 + "[1].jsonl.gz"
    (day / long_gz).write_bytes(gzip.compress(latin1.encode("latin-1") + b"\n"))
    write_jsonl(day / ("y" * 230 + "[2].jsonl.gz"), [event("g1")], gz=True)
    with caplog.at_level("ERROR"):
        run_ingest(settings, D1)
    assert [(status, n) for _, status, n in _accounting(query)] == [("loaded", 1), ("loaded", 1)]
    assert query("select event_id, customer_id from raw.events order by 1") == [
        ("g1", "c1"),
        ("l1", "Jos\u00e9"),
    ]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text[-2000:]
    runs = settings.output / "2026-06-01" / "data_docs" / "validations" / "segmint_events"
    names = [f"{DAY}/{long_gz}", f"{DAY}/{'y' * 230}[2].jsonl.gz"]
    (run,) = runs.iterdir()
    assert run.name == docs_run_name("..".join(names))
    assert run.name.startswith("events__dt=2026-06-01__xxx") and run.name.endswith("[2].jsonl.gz")
    assert len(list(run.rglob("*.html"))) == 1


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_a_file_that_cannot_be_read_fails_alone_and_a_loaded_one_keeps_its_rows(
    settings, landing, query
):
    """A landing file whose read fails with an OS error (permission denied for the worker's
    user, an I/O error of a disk or share, gone since it was listed) failed the whole ingest
    with 'unexpected OSError' and no file name. Now it fails alone: named, 'failed' in the
    manifest, the other files loaded, retried next run. A loaded file that changed and cannot
    be read keeps the rows loaded from it (replacing them would only delete them). The file
    is a link to /proc/self/mem, which any process, root included, opens and cannot read."""
    day = landing / DAY
    write_jsonl(day / "a.jsonl", [event("a1")])
    broken = day / "b.jsonl"
    broken.symlink_to("/proc/self/mem")
    with pytest.raises(InputError, match=f"{DAY}/b.jsonl: cannot be read: Input/output error"):
        run_ingest(settings, D1)
    assert _accounting(query) == [(f"{DAY}/a.jsonl", "loaded", 1), (f"{DAY}/b.jsonl", "failed", 0)]
    assert query("select sha256, error from ops.load_manifest where path like '%b.jsonl'") == [
        ("", "cannot be read: Input/output error")
    ]
    assert query("select event_id from raw.events") == [("a1",)]

    broken.unlink()
    write_jsonl(broken, [event("b1"), event("b2")])
    run_ingest(settings, D1)  # retried: loads
    assert _accounting(query) == [(f"{DAY}/a.jsonl", "loaded", 1), (f"{DAY}/b.jsonl", "loaded", 2)]
    loaded = query("select path, sha256, status, rows_loaded from ops.load_manifest order by 1")

    # b.jsonl is replaced by something unreadable: its size and time differ, so it is opened.
    broken.unlink()
    broken.symlink_to("/proc/self/mem")
    with pytest.raises(InputError, match=r"b\.jsonl: cannot be read: .* are kept as they were"):
        run_ingest(settings, D1)
    assert query("select path, sha256, status, rows_loaded from ops.load_manifest order by 1") == (
        loaded
    )
    assert query("select event_id from raw.events order by 1") == [("a1",), ("b1",), ("b2",)]

    broken.unlink()
    write_jsonl(broken, [event("b1"), event("b2")])  # the same content again: nothing to do
    assert run_ingest(settings, D1).rows_in == 0
    assert query("select path, sha256, status, rows_loaded from ops.load_manifest order by 1") == (
        loaded
    )


def test_a_folder_that_cannot_be_listed_fails_the_run_naming_it(
    settings, landing, query, monkeypatch
):
    """A partition folder the worker's user may not list (an SFTP drop of another user, a
    share that fails) stopped discovery with an OSError and loaded nothing. Now the other
    partitions load and the run fails naming the folder; the next run looks again. (Root,
    as tests may run, lists any folder: the refusal is the operating system's own error,
    raised where the folder is listed.)"""
    write_jsonl(landing / DAY / "a.jsonl", [event("a1")])
    locked = landing / "events/dt=2026-06-02"
    write_jsonl(locked / "b.jsonl", [event("b1", D2)])
    listdir = Path.iterdir

    def refuse(folder):
        if folder == locked:
            raise PermissionError(13, "Permission denied", str(folder))
        return listdir(folder)

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(
        InputError,
        match=r"Could not list 1 landing folder\(s\): events/dt=2026-06-02: cannot be read: "
        r"Permission denied; the files in them were not loaded",
    ):
        run_ingest(settings, D2)
    assert _accounting(query) == [(f"{DAY}/a.jsonl", "loaded", 1)]
    monkeypatch.setattr(Path, "iterdir", listdir)
    run_ingest(settings, D2)
    assert query("select event_id from raw.events order by 1") == [("a1",), ("b1",)]


def test_a_parquet_file_repeating_a_contract_column_fails_as_a_csv_file_does(
    settings, landing, query
):
    """A Parquet file with a field's column twice (pyarrow and pandas write ``customer_id``
    twice after a join; Spark and Hive tables hold ``event_type`` beside ``Event_Type``, which
    are one name to segmint) loaded the first and kept the other, numbered by DuckDB
    (``customer_id_1``), in _extra: which customer the events belonged to was a guess, in
    silence. It fails its file naming the columns, as a CSV header repeating one does; a
    repeated unknown column is still kept."""
    day = landing / DAY
    day.mkdir(parents=True)
    base = {"event_id": ["p1"], "event_type": ["page_view"], "event_ts": ["2026-06-01 10:00"]}
    twice = pa.table(
        [*(pa.array(v) for v in base.values()), pa.array(["c1"]), pa.array(["c9"])],
        names=[*base, "customer_id", "customer_id"],
    )
    pq.write_table(twice, day / "twice.parquet")
    cased = pa.table({**base, "customer_id": ["c1"], "Event_Type": ["purchase"]})
    pq.write_table(cased.set_column(0, "event_id", pa.array(["p2"])), day / "cased.parquet")
    notes = pa.table(
        [pa.array(["p3"]), *(pa.array(v) for v in list(base.values())[1:]), pa.array(["c1"]),
         pa.array(["a"]), pa.array(["b"])],
        names=[*base, "customer_id", "notes", "Notes"],
    )  # fmt: skip
    pq.write_table(notes, day / "notes.parquet")
    with pytest.raises(InputError, match=r"cased\.parquet.*twice\.parquet"):
        run_ingest(settings, D1)
    assert _accounting(query) == [
        (f"{DAY}/cased.parquet", "failed", 0),
        (f"{DAY}/notes.parquet", "loaded", 1),
        (f"{DAY}/twice.parquet", "failed", 0),
    ]
    assert query(
        "select path, error from ops.load_manifest where status = 'failed' order by 1"
    ) == [
        (
            f"{DAY}/cased.parquet",
            "Parquet file repeats column(s) event_type ('event_type', 'Event_Type'): which "
            "one holds the field? Export it once",
        ),
        (
            f"{DAY}/twice.parquet",
            "Parquet file repeats column(s) customer_id ('customer_id', 'customer_id'): which "
            "one holds the field? Export it once",
        ),
    ]
    assert query("select event_id, customer_id, _extra from raw.events") == [
        ("p3", "c1", '{"notes":"a","notes_1":"b"}')
    ]
