"""Inputs real shops send that the generator never writes: each ends loaded or quarantined.

Byte-order marks, Windows line ends, Excel's multi-line cells, blank lines, NUL bytes,
typed Parquet columns. For every file: rows read = loaded + quarantined + duplicates.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import logging
import struct

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmint.config import ConfigError, IngestSettings
from segmint.ingest import run_ingest
from segmint.ingest.files import decode_legacy_line
from segmint.stages import InputError
from tests.include.ingest.conftest import D1, D2, event, write_lines


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _accounting_holds(query) -> None:
    broken = query(
        "select path from ops.load_manifest "
        "where rows_read <> rows_loaded + rows_quarantined + rows_duplicate + rows_erased"
    )
    assert broken == []


def _file_counts(query) -> list[tuple]:
    """Each loaded file's path with its rows read, loaded and quarantined."""
    return query(
        "select path, rows_read, rows_loaded, rows_quarantined from ops.load_manifest order by 1"
    )


def _crm_cities(query) -> list[tuple]:
    return query(
        "select _source_file, _source_line, customer_id, city from raw.customers order by 1, 2"
    )


def _files_warned(caplog, words: str) -> list[str]:
    """The files named by the warnings holding ``words``, in order."""
    return sorted(r.getMessage().split(":")[0] for r in caplog.records if words in r.getMessage())


def test_windows_and_excel_text_files_load(settings, landing, query):
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    (day / "bom.jsonl").write_bytes(
        b"\xef\xbb\xbf" + _jsonl([event("bom1"), event("bom2")]).encode()
    )
    (day / "crlf.jsonl").write_bytes(
        _jsonl([event("crlf1"), event("crlf2")]).replace("\n", "\r\n").encode()
    )
    # Blank lines are not records, but the lines after them keep their numbers.
    (day / "blank.jsonl").write_text(_jsonl([event("b1")]) + "\n   \n" + _jsonl([event("b2")]))
    # Excel's CSV: CRLF between rows, a bare LF inside a quoted multi-line cell.
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "excel.csv").write_bytes(
        b"customer_id,email,updated_at\r\n"
        b'"c1"," A@B.COM ",2026-06-01T09:00:00Z\r\n'
        b'c2,"first line\nsecond line",2026-06-01\r\n'
        b"c3,c@x.com,2026-06-01\r\n"
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select path, status from ops.load_manifest where status <> 'loaded'") == []
    assert query("select _source_file, _source_line, event_id from raw.events order by all") == [
        ("events/dt=2026-06-01/blank.jsonl", 1, "b1"),
        ("events/dt=2026-06-01/blank.jsonl", 4, "b2"),
        ("events/dt=2026-06-01/bom.jsonl", 1, "bom1"),
        ("events/dt=2026-06-01/bom.jsonl", 2, "bom2"),
        ("events/dt=2026-06-01/crlf.jsonl", 1, "crlf1"),
        ("events/dt=2026-06-01/crlf.jsonl", 2, "crlf2"),
    ]
    # c2's two-line cell is no e-mail address: the record stays, the field is nulled.
    assert query("select customer_id, email, _source_line from raw.customers order by 1") == [
        ("c1", "a@b.com", 2),
        ("c2", None, 3),
        ("c3", "c@x.com", 5),
    ]


def test_nul_bytes_and_json_arrays_are_quarantined_by_line(settings, landing, query):
    write_lines(
        landing / "events/dt=2026-06-01/odd.jsonl",
        [
            json.dumps(event("n1")),
            '{"event_id": "n2\x00", "event_type": "page_view"}',
            json.dumps([event("a1"), event("a2")]),
            '"just a string"',
        ],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    got = query("select line_number, reasons[1] from ops.quarantine order by 1")
    assert [line for line, _ in got] == [2, 3, 4]
    assert all(reason.startswith("malformed JSON") for _, reason in got)
    # A batch of events exported as one JSON array is named as such.
    assert got[1][1] == (
        "malformed JSON: the line is a JSON array, not an object (a JSON lines file holds one "
        "object a line)"
    )
    assert got[2][1] == "malformed JSON: the line is not a JSON object"
    assert query("select event_id from raw.events") == [("n1",)]


def test_typed_parquet_columns_load(settings, landing, query):
    path = landing / "events/dt=2026-06-01/typed.parquet"
    path.parent.mkdir(parents=True)
    table = pa.table(
        {
            "event_id": ["p1", "p2", "p3"],
            "event_type": ["purchase", "page_view", "teleport"],
            "event_ts": pa.array([1780308000000] * 3, pa.timestamp("ms", tz="UTC")),
            "customer_id": ["c1", "c2", "c3"],
            "revenue": pa.array([10, None, None], pa.int64()),
            "order_id": ["o9", None, None],
        }
    )
    pq.write_table(table, path)
    run_ingest(settings, D1)
    _accounting_holds(query)
    got = query("select event_id, cast(event_ts as varchar), revenue from raw.events order by 1")
    assert [(e, ts, None if r is None else float(r)) for e, ts, r in got] == [
        ("p1", "2026-06-01 10:00:00", 10.0),
        ("p2", "2026-06-01 10:00:00", None),
    ]
    # A quarantined row keeps its record as JSON text, with its row number as the line.
    ((line, raw),) = query("select line_number, raw_record from ops.quarantine")
    assert line == 3
    assert json.loads(raw)["event_type"] == "teleport"


def test_other_exports_of_timestamps_last_lines_and_headers_load(settings, landing, query):
    """Pinned (they load, and nothing else pinned them): Parquet timestamps in nanoseconds,
    with a time zone other than UTC (pandas' datetime64[ns, Europe/Paris]) and as Spark's
    legacy INT96; a JSON lines file whose last line has no line feed, plain and gzip; a CSV
    header whose quoted names end in spaces (some CRM exports pad them)."""
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    paris = datetime.timezone(datetime.timedelta(hours=2))
    for name, stamp, kind, int96 in (
        ("ns", 1780308000123456789, pa.timestamp("ns"), False),
        (
            "paris",
            datetime.datetime(2026, 6, 1, 12, tzinfo=paris),
            pa.timestamp("ns", "Europe/Paris"),
            False,
        ),
        ("int96", datetime.datetime(2026, 6, 1, 10, 0, 0, 5), pa.timestamp("ns"), True),
    ):
        table = pa.table(
            {
                "event_id": [name],
                "event_type": ["page_view"],
                "event_ts": pa.array([stamp], kind),
                "customer_id": ["c1"],
            }
        )
        pq.write_table(table, day / f"{name}.parquet", use_deprecated_int96_timestamps=int96)
    for name, ids in (("nolf.jsonl", "n"), ("nolf.jsonl.gz", "g")):
        text = f"{json.dumps(event(f'{ids}1'))}\n{json.dumps(event(f'{ids}2'))}".encode()
        (day / name).write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "padded.csv").write_bytes(
        b'"customer_id  ","city ","updated_at "\r\nk1,Paris,2026-05-01\r\nk2,Lyon,2026-05-01'
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query(
        "select _source_file, _source_line, event_id, cast(event_ts as varchar) from raw.events "
        "order by 1"
    ) == [
        ("events/dt=2026-06-01/int96.parquet", 1, "int96", "2026-06-01 10:00:00.000005"),
        ("events/dt=2026-06-01/nolf.jsonl", 1, "n1", "2026-06-01 10:00:00"),
        ("events/dt=2026-06-01/nolf.jsonl", 2, "n2", "2026-06-01 10:00:00"),
        ("events/dt=2026-06-01/nolf.jsonl.gz", 1, "g1", "2026-06-01 10:00:00"),
        ("events/dt=2026-06-01/nolf.jsonl.gz", 2, "g2", "2026-06-01 10:00:00"),
        ("events/dt=2026-06-01/ns.parquet", 1, "ns", "2026-06-01 10:00:00.123456"),
        ("events/dt=2026-06-01/paris.parquet", 1, "paris", "2026-06-01 10:00:00"),
    ]
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/padded.csv", 2, "k1", "Paris"),
        ("crm/dt=2026-06-01/padded.csv", 3, "k2", "Lyon"),
    ]
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_parquet_batches_count_rows_not_compressed_bytes(tmp_path):
    """Parquet compresses ~10x: batches are sized by its rows, as the text they become."""
    from segmint.ingest.files import discover
    from segmint.ingest.loader import _batch_size

    day = tmp_path / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    rows = 50_000
    pq.write_table(pa.table({"event_id": [f"e{i % 7}" for i in range(rows)]}), day / "a.parquet")
    (day / "b.jsonl").write_text("{}\n" * 10)
    (f_parquet, f_jsonl), _, _ = discover(tmp_path)
    assert _batch_size(f_parquet) >= rows * 400 > 100 * f_parquet.size_bytes
    assert _batch_size(f_jsonl) == f_jsonl.size_bytes


def test_parquet_batches_count_wide_rows_as_the_text_they_become(
    settings, landing, query, monkeypatch, caplog
):
    """A Parquet row counted 512 bytes whatever its width: a row of 100 columns becomes a
    document of ~3 KB (GA4-style exports: 200 columns, ~7 KB), so a batch held several times
    the text it was sized for (a 300,000-row file of 200 columns counted 150 MB for 2 GB of
    documents). A row counts as the documents of the file's first rows measure; a narrow row
    still counts 512 bytes (its staged row costs ~370 whatever its text)."""
    import duckdb

    from segmint.ingest import loader
    from segmint.ingest.files import discover

    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    rows = 400
    for k in range(3):
        columns = {
            "event_id": [f"w{k}-{i}" for i in range(rows)],
            "event_type": ["page_view"] * rows,
            "event_ts": ["2026-06-01T10:00:00Z"] * rows,
            "customer_id": [f"c{i % 9}" for i in range(rows)],
        }
        columns.update(
            {
                f"param_{c:03d}_value": [f"v{(i + c) % 97}-abcdefgh" for i in range(rows)]
                for c in range(100)
            }
        )
        pq.write_table(pa.table(columns), day / f"wide_{k}.parquet")
    narrow = {name: values for name, values in columns.items() if not name.startswith("param")}
    narrow["event_id"] = [f"n{i}" for i in range(rows)]
    pq.write_table(pa.table(narrow), day / "narrow.parquet")
    files, _, _ = discover(landing)
    sizes = {f.abspath.name: loader._batch_size(f) for f in files}
    ((text,),) = duckdb.execute(
        f"select sum(strlen(to_json(t))) from read_parquet('{day / 'wide_0.parquet'}') t"
    ).fetchall()
    assert text > 3 * rows * 512
    assert text <= sizes["wide_0.parquet"] <= 1.5 * text
    assert sizes["narrow.parquet"] == rows * 512
    # Batches of about BATCH_BYTES of that text: the narrow file and two wide ones, then one.
    monkeypatch.setattr(loader, "BATCH_BYTES", 2 * text)
    caplog.set_level(logging.INFO, logger="segmint.ingest.loader")
    result = run_ingest(settings, D1)
    assert result.rows_out == 4 * rows
    assert [r.getMessage() for r in caplog.records if "reading" in r.getMessage()] == [
        "ingest: reading 3 events file(s)",
        "ingest: reading 1 events file(s)",
    ]


def _not_utf8_landing(landing) -> None:
    """An events file with a Windows-1252 line (Excel on Windows, a Latin-1 database) and a
    damaged UTF-8 line (a multi-byte character cut by a truncating writer), and a CRM CSV
    whose names are Windows-1252."""
    good = json.dumps(event("u1")).encode()
    query = "\u20ac5 \u201cdeal\u201d \u2013 na\u00efve"  # euro, curly quotes, dash
    latin1 = json.dumps(
        event("u2", customer_id="Jos\u00e9", search_query=query), ensure_ascii=False
    ).encode("cp1252")
    cut = json.dumps(event("u4", search_query="Zo\u00eb \u2014 "), ensure_ascii=False).encode()
    cut = cut.replace(b"\xe2\x80\x94 ", b"\xe2\x80 ")  # the dash's last byte lost
    path = landing / "events/dt=2026-06-01/latin1.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"\n".join([good, latin1, good.replace(b"u1", b"u3"), cut])))
    crm = landing / "crm/dt=2026-06-01/crm.csv"
    crm.parent.mkdir(parents=True)
    crm.write_bytes(
        b"customer_id,first_name,updated_at\nc1,Ren\xe9e,2026-06-01\nc2,Ana,2026-06-01\n"
    )


def test_a_line_that_is_not_utf8_is_read_as_windows_1252_and_loses_nothing(
    settings, landing, query, caplog
):
    """Text from a legacy Windows tool is read as such (segmint used to replace every
    accented letter by U+FFFD, so "Jos\ufffd" reached the marketing exports); a damaged UTF-8
    line keeps its good characters and only the damage becomes U+FFFD; the file is loaded
    either way, and the log names the lines of each kind."""
    _not_utf8_landing(landing)
    with caplog.at_level("WARNING"):
        run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select path from ops.load_manifest where status <> 'loaded'") == []
    assert query(
        "select event_id, customer_id, search_query, _source_line from raw.events order by 1"
    ) == [
        ("u1", "c1", None, 1),
        ("u2", "Jos\u00e9", "\u20ac5 \u201cdeal\u201d \u2013 na\u00efve", 2),
        ("u3", "c1", None, 3),
        ("u4", "c1", "Zo\u00eb \ufffd", 4),
    ]
    assert query("select customer_id, first_name from raw.customers order by 1") == [
        ("c1", "Ren\u00e9e"),
        ("c2", "Ana"),
    ]
    logged = [r.getMessage() for r in caplog.records]
    legacy = [m for m in logged if "not UTF-8 but windows-1252 text" in m]
    damaged = [m for m in logged if "not valid UTF-8 (damaged UTF-8" in m]
    assert any("latin1.jsonl.gz: 1 line(s)" in m and "(line 2)" in m for m in legacy), logged
    assert any("crm.csv: 1 line(s)" in m and "(line 2)" in m for m in legacy), logged
    assert any("latin1.jsonl.gz: 1 line(s)" in m and "(line 4)" in m for m in damaged), logged


def test_without_a_legacy_encoding_every_invalid_sequence_is_replaced(settings, landing, query):
    _not_utf8_landing(landing)
    run_ingest(dataclasses.replace(settings, ingest=IngestSettings(legacy_encoding="")), D1)
    _accounting_holds(query)
    assert query("select event_id, customer_id from raw.events where event_id = 'u2'") == [
        ("u2", "Jos\ufffd")
    ]
    assert query("select first_name from raw.customers where customer_id = 'c1'") == [
        ("Ren\ufffde",)
    ]


@pytest.mark.parametrize("encoding", ["windows-1252", "cp1252", "latin-1"])
def test_a_legacy_line_decodes_every_byte_and_encodes_back_to_it(encoding):
    """Lossless: each of the 128 non-ASCII bytes has a character (Windows-1252's five
    undefined bytes keep their Latin-1 code points, as browsers read them), none is U+FFFD."""
    line = bytes(range(0x80, 0x100)) + b" plain ASCII, 1;2"
    text, decoded = decode_legacy_line(line, encoding)
    assert decoded and "\ufffd" not in text
    windows = {
        ord(bytes([b]).decode("cp1252")): b
        for b in range(0x80, 0xA0)
        if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
    }
    inverse = windows if encoding != "latin-1" else {}
    assert text.translate(inverse).encode("latin-1") == line


def test_a_legacy_encoding_must_be_known_and_ascii_compatible():
    with pytest.raises(ConfigError, match="not an encoding Python knows"):
        IngestSettings(legacy_encoding="windows-1257x")
    with pytest.raises(ConfigError, match="does not write ASCII as ASCII"):
        IngestSettings(legacy_encoding="utf-16")
    assert IngestSettings(legacy_encoding="cp932").legacy_encoding == "cp932"


def test_values_are_trimmed_however_the_json_is_written(settings, landing, query):
    """Compact JSON (no space next to a quote) takes a path that does not trim; a value
    padded with spaces, JSON with spaces between tokens and a \\u0020 escape all trim."""
    day = landing / "events/dt=2026-06-01"
    write_lines(
        day / "mixed.jsonl",
        [
            # compact, nothing to trim
            json.dumps(event("e1", customer_id="c1"), separators=(",", ":")),
            # compact, a padded value: a space next to a quote
            json.dumps(event("e2", customer_id="  c2 "), separators=(",", ":")),
            # spaces between tokens (Python's default), a padded number in a string
            json.dumps(
                event("e3", customer_id="c3 ", event_type=" Purchase ", order_id="o3")
                | {"revenue": " 12.50 "}
            ),
            # escaped spaces around the value
            '{"event_id":"e4","event_type":"page_view","event_ts":"2026-06-01T10:00:00Z",'
            '"customer_id":"\\u0020c4\\u0020"}',
            # a value of spaces only is missing: no identity, quarantined
            '{"event_id":"e5","event_type":"page_view","event_ts":"2026-06-01T10:00:00Z",'
            '"customer_id":"   "}',
        ],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query(
        "select event_id, customer_id, event_type, revenue::VARCHAR from raw.events order by 1"
    ) == [
        ("e1", "c1", "page_view", None),
        ("e2", "c2", "page_view", None),
        ("e3", "c3", "purchase", "12.50"),
        ("e4", "c4", "page_view", None),
    ]
    assert query("select line_number from ops.quarantine") == [(5,)]


def test_parquet_files_are_read_together_and_a_bad_one_fails_alone(settings, landing, query):
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    for name, ids in (("a", ["a1", "a2", "a3"]), ("b", ["b1", "b2"])):
        table = pa.table(
            {
                "event_id": ids,
                "event_type": ["page_view"] * len(ids),
                "event_ts": ["2026-06-01T10:00:00Z"] * len(ids),
                "customer_id": ["c1"] * len(ids),
            }
        )
        pq.write_table(table, day / f"{name}.parquet")
        if name == "b":
            # The same columns, its pages overwritten: the footer reads, the data does not.
            # It fails the multi-file scan of the three; each is then read on its own.
            pq.write_table(table, day / "pages.parquet")
            data = bytearray((day / "pages.parquet").read_bytes())
            footer = struct.unpack("<I", data[-8:-4])[0]
            data[4 : len(data) - 8 - footer] = b"\xab" * (len(data) - 12 - footer)
            (day / "pages.parquet").write_bytes(bytes(data))
    pq.write_table(pa.table({"event_id": ["n1"]}), day / "no_type.parquet")
    (day / "corrupt.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.raises(InputError) as failure:
        run_ingest(settings, D1)
    for name in ("corrupt", "no_type", "pages"):
        assert f"{name}.parquet" in str(failure.value)
    _accounting_holds(query)
    assert query("select path, status from ops.load_manifest order by 1") == [
        ("events/dt=2026-06-01/a.parquet", "loaded"),
        ("events/dt=2026-06-01/b.parquet", "loaded"),
        ("events/dt=2026-06-01/corrupt.parquet", "failed"),
        ("events/dt=2026-06-01/no_type.parquet", "failed"),
        ("events/dt=2026-06-01/pages.parquet", "failed"),
    ]
    assert query("select _source_file, _source_line, event_id from raw.events order by 1, 2") == [
        ("events/dt=2026-06-01/a.parquet", 1, "a1"),
        ("events/dt=2026-06-01/a.parquet", 2, "a2"),
        ("events/dt=2026-06-01/a.parquet", 3, "a3"),
        ("events/dt=2026-06-01/b.parquet", 1, "b1"),
        ("events/dt=2026-06-01/b.parquet", 2, "b2"),
    ]


def test_an_id_holding_an_object_or_array_is_quarantined(settings, landing, query):
    """{"id": "c9"} read as text would become a customer nobody has: quarantined, by name."""
    base = {"event_type": "page_view", "event_ts": "2026-06-01T10:00:00Z"}
    write_lines(
        landing / "events/dt=2026-06-01/a.jsonl",
        [
            json.dumps({"event_id": "ok", "customer_id": "c1", **base}),
            json.dumps({"event_id": "obj", "customer_id": {"id": "c9"}, **base}),
            json.dumps({"event_id": "arr", "customer_id": "c2", "session_id": ["s1"], **base}),
            # Text that merely contains braces is fine; only a nested value is refused.
            json.dumps({"event_id": "txt", "customer_id": "c3", "search_query": "{x}", **base}),
        ],
    )
    write_lines(
        landing / "crm/dt=2026-06-01/c.jsonl",
        [
            json.dumps({"customer_id": "c1", "updated_at": "2026-06-01"}),
            json.dumps({"customer_id": ["c1", "c2"], "updated_at": "2026-06-01"}),
        ],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select event_id from raw.events order by 1") == [("ok",), ("txt",)]
    assert query("select customer_id from raw.customers") == [("c1",)]
    reasons = query("select source_file, line_number, reasons from ops.quarantine order by 1, 2")
    assert reasons == [
        (
            "crm/dt=2026-06-01/c.jsonl",
            2,
            ["an id field holds a JSON object or array, not an id (got customer_id)"],
        ),
        (
            "events/dt=2026-06-01/a.jsonl",
            2,
            ["an id field holds a JSON object or array, not an id (got customer_id)"],
        ),
        (
            "events/dt=2026-06-01/a.jsonl",
            3,
            ["an id field holds a JSON object or array, not an id (got session_id)"],
        ),
    ]


def test_semicolon_tab_and_pipe_separated_csv_load(settings, landing, query):
    """Excel writes ';' where the decimal mark is a comma (and "19,99" for 19.99); exports
    from databases often use tabs or pipes. The header decides the separator: the first of
    , ; tab | whose split names every required column."""
    day = landing / "events/dt=2026-06-01"
    header = ["event_id", "event_type", "event_ts", "customer_id", "order_id", "revenue"]
    rows = {
        "semicolon.csv": (";", ["s1", "purchase", "2026-06-01T10:00:00Z", "c1", "o1", "19,99"]),
        "tab.csv": ("\t", ["t1", "purchase", "2026-06-01T10:00:00Z", "c1", "o2", "5.50"]),
        "pipe.csv": ("|", ["p1", "page_view", "2026-06-01T10:00:00Z", "c1", "", ""]),
    }
    for name, (sep, row) in rows.items():
        write_lines(day / name, [sep.join(header), sep.join(row)])
    # A comma file whose text holds semicolons stays a comma file.
    write_lines(
        day / "comma.csv",
        [",".join([*header, "note"]), 'c9,page_view,2026-06-01T10:00:00Z,c1,,,"a;b;c"'],
    )
    # A decimal comma after a thousands mark says which mark is which (see
    # test_amounts_with_a_thousands_mark_load_where_the_marks_tell_which_is_which).
    write_lines(
        day / "thousands.csv",
        [
            ";".join(header),
            ";".join(["k1", "purchase", "2026-06-01T10:00:00Z", "c1", "o3", "1.234,50"]),
            # A thousand, or one with three decimals? Not guessed either (was loaded as 1).
            ";".join(["k2", "purchase", "2026-06-01T10:00:00Z", "c1", "o4", "1.000"]),
            # Two decimals after a point are no thousands mark.
            ";".join(["k3", "purchase", "2026-06-01T10:00:00Z", "c1", "o5", "12.50"]),
        ],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select path, status from ops.load_manifest where status <> 'loaded'") == []
    loaded = query("select event_id, revenue::VARCHAR, _extra from raw.events order by 1")
    assert loaded == [
        ("c9", None, '{"note":"a;b;c"}'),
        ("k1", "1234.50", None),
        ("k3", "12.50", None),
        ("p1", None, None),
        ("s1", "19.99", None),
        ("t1", "5.50", None),
    ]
    reasons = query("select source_file, line_number, reasons from ops.quarantine order by 2")
    assert [(f, n, any("revenue" in r for r in rs)) for f, n, rs in reasons] == [
        ("events/dt=2026-06-01/thousands.csv", 3, True),
    ]
    why = "revenue is not a number (got 1.000 (a thousands mark or a decimal point?))"
    assert why in reasons[0][2]


def test_amounts_with_a_thousands_mark_load_where_the_marks_tell_which_is_which(
    settings, landing, query
):
    """A spreadsheet writes every amount over 999 of a cell formatted as currency with a
    thousands mark: "1,234.50" in a US export, "1.234,50" in a German one (Google Sheets
    writes it in a comma file, quoted). Such a purchase was quarantined as "revenue is not a
    number": the shop's largest orders, and only those, were missing from its revenue. Where
    a decimal mark or a second group tells which mark is which, the amount is read; a lone
    group ("1,234" in a comma file: a thousand and more, or a decimal comma?) is not
    guessed."""
    rows = {
        "us": '"1,234.50"',
        "million": '"1,234,567"',
        "german": '"1.234,50"',
        "decimal_comma": '"19,99"',
        "spaced": '" 2,000.00 "',
        "plain": "12.50",
        "lone": '"1,234"',
    }
    write_lines(
        landing / "events/dt=2026-06-01/orders.csv",
        ["event_id,event_type,event_ts,customer_id,order_id,revenue,price"]
        + [f"{k},purchase,2026-06-01T10:00:00Z,c1,o-{k},{v},{v}" for k, v in rows.items()],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query(
        "select event_id, revenue::VARCHAR, price::VARCHAR from raw.events order by 1"
    ) == [
        ("decimal_comma", "19.99", "19.99"),
        ("german", "1234.50", "1234.50"),
        ("million", "1234567.00", "1234567.00"),
        ("plain", "12.50", "12.50"),
        ("spaced", "2000.00", "2000.00"),
        ("us", "1234.50", "1234.50"),
    ]
    assert query("select line_number, reasons from ops.quarantine") == [
        (
            8,
            [
                "revenue is not a number (got 1,234 (a thousands mark or a decimal comma?))",
            ],
        )
    ]


def test_amounts_grouped_with_spaces_or_apostrophes_load(settings, landing, query):
    """French, Scandinavian and Polish spreadsheets group thousands with a (no-break) space,
    "1 234,50", and Swiss ones with an apostrophe, "1'234.50": neither mark is ever a
    decimal mark, yet every such order was quarantined as "revenue is not a number", the
    shop's largest orders only, and a price so nulled. They are read as the amount written;
    digits that are not groups of three ("1 23") are still no number."""
    nbsp, narrow = "\u00a0", "\u202f"
    rows = {
        "fr_nbsp": (f"1{nbsp}234,50", "1234.50"),
        "fr_narrow": (f"12{narrow}345{narrow}678,9", "12345678.90"),
        "space": ("1 234", "1234.00"),
        "negative_refund": ("-2 000,00", "2000.00"),
        "plain": ("19,99", "19.99"),
    }
    swiss = {"ch": ("1'234.50", "1234.50"), "ch_typographic": ("1\u2019234.50", "1234.50")}
    day = landing / "events/dt=2026-06-01"
    write_lines(
        day / "fr.csv",
        ["event_id;event_type;event_ts;customer_id;order_id;revenue;price"]
        + [
            f"{k};{'refund' if 'refund' in k else 'purchase'};2026-06-01T10:00:00Z;c1;o-{k};{v};{v}"
            for k, (v, _) in rows.items()
        ]
        + ["bad;purchase;2026-06-01T10:00:00Z;c1;o-bad;1 23;1"],
    )
    write_lines(
        day / "ch.csv",
        ["event_id,event_type,event_ts,customer_id,order_id,revenue"]
        + [f"{k},purchase,2026-06-01T10:00:00Z,c1,o-{k},{v}" for k, (v, _) in swiss.items()],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    expected = {**rows, **swiss}
    assert query("select event_id, revenue::VARCHAR from raw.events order by 1") == sorted(
        (k, amount) for k, (_, amount) in expected.items()
    )
    assert query(
        "select event_id, price::VARCHAR from raw.events where price is not null order by 1"
    ) == sorted((k, amount) for k, (_, amount) in rows.items() if k != "negative_refund")
    assert query("select source_file, line_number, reasons from ops.quarantine") == [
        ("events/dt=2026-06-01/fr.csv", 7, ["revenue is not a number (got 1 23)"])
    ]


def test_lines_of_separators_only_are_blank(settings, landing, query):
    """Spreadsheets export the empty rows below the data as ";;;;" (or ",,,,"): each was
    quarantined as a record missing every required field, so a small CRM delta with a few
    of them failed the night on the quarantined share. They are blank lines now; a record
    whose first field is empty is still a record."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "excel.csv").write_bytes(
        b"customer_id;email;updated_at\r\n"
        b"c1;a@b.com;2026-06-01T09:00:00Z\r\n"
        b";;\r\n"
        b" ; ;\r\n"
        b";x@y.com;2026-06-01\r\n"
        b";;\r\n"
    )
    write_lines(
        landing / "events/dt=2026-06-01/e.csv",
        ["event_id,event_type,event_ts,customer_id", "e1,page_view,2026-06-01T10:00:00Z,c1", ",,,"],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select path, rows_read, rows_loaded from ops.load_manifest order by 1") == [
        ("crm/dt=2026-06-01/excel.csv", 2, 1),
        ("events/dt=2026-06-01/e.csv", 1, 1),
    ]
    assert query("select source_file, line_number from ops.quarantine") == [
        ("crm/dt=2026-06-01/excel.csv", 5)
    ]


def test_a_carriage_return_inside_a_quoted_csv_value_stays_in_its_record(
    settings, landing, query, caplog
):
    """A bare CR inside a quoted cell ("k1\\r", Excel for Mac, some CRM exports) cut the
    record in two at it, and in a CRLF file the byte after it was lost: line 2 was
    quarantined for "unbalanced quotes" and line 3 for "missing required field customer_id"
    (its closing quote gone), k3 was said to be on line 4. The record is read whole and
    quarantined for its id's control character; a CR in another field is kept; the lines
    keep the numbers every editor shows; a file of CR line ends (old Mac) still reads."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "crlf.csv").write_bytes(
        b'customer_id,updated_at\r\n"k1\r",2026-05-01\r\nk3,2026-05-01\r\n'
    )
    (crm / "lf.csv.gz").write_bytes(
        gzip.compress(
            b'customer_id,city,updated_at\nm1,"Saint\rDenis",2026-05-01\nm2,Lyon,2026-05-01\n',
            mtime=0,
        )
    )
    (crm / "mac.csv").write_bytes(b"customer_id,updated_at\rr1,2026-05-01\rr2,2026-05-01\r")
    caplog.set_level(logging.WARNING)
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [
        ("crm/dt=2026-06-01/crlf.csv", 2, 1, 1),
        ("crm/dt=2026-06-01/lf.csv.gz", 2, 2, 0),
        ("crm/dt=2026-06-01/mac.csv", 2, 2, 0),
    ]
    ((line, reasons, raw),) = query("select line_number, reasons, raw_record from ops.quarantine")
    assert (line, raw) == (2, '"k1\r",2026-05-01')
    assert reasons[0].startswith("an id field holds a control character")
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/crlf.csv", 3, "k3", None),
        ("crm/dt=2026-06-01/lf.csv.gz", 2, "m1", "Saint\rDenis"),
        ("crm/dt=2026-06-01/lf.csv.gz", 3, "m2", "Lyon"),
        ("crm/dt=2026-06-01/mac.csv", 2, "r1", None),
        ("crm/dt=2026-06-01/mac.csv", 3, "r2", None),
    ]
    assert _files_warned(caplog, "carriage return") == [
        "crm/dt=2026-06-01/crlf.csv",
        "crm/dt=2026-06-01/lf.csv.gz",
    ]


def test_a_bare_carriage_return_in_an_unquoted_csv_value_or_a_json_line_cuts_no_record(
    settings, landing, query, caplog
):
    """A bare CR outside quotes (a CRM's unquoted 'Saint<CR>Denis') or in a JSON line (a
    tracker writing a form's text unescaped) was a line end to DuckDB's reader: the record
    was quarantined in two pieces ("2 fields but the header has 3", "not a valid JSON
    document"), in a CRLF file the byte after the CR was lost from both, and every later line
    was numbered one too far. The CSV record now loads whole; the JSON line is one record,
    quarantined for the raw CR inside its string, with its whole text; a raw CR between JSON
    tokens is white space and loads; the lines after keep the numbers an editor shows."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "lf.csv").write_bytes(
        b"customer_id,city,updated_at\nc1,Saint\rDenis,2026-05-01\nc2,Lyon,2026-05-01\n"
    )
    (crm / "crlf.csv").write_bytes(
        b"customer_id,city,updated_at\r\nd1,Saint\rDenis,2026-05-01\r\nd2,Lyon,2026-05-01\r\n"
    )
    in_string = (
        '{"event_id":"%s2","event_type":"search","event_ts":"2026-06-01T10:00:00Z",'
        '"customer_id":"c2","search_query":"red\rshoes"}'
    )
    between = (
        '{"event_id":"%s3","event_type":"page_view",\r"event_ts":"2026-06-01T10:00:00Z",'
        '"customer_id":"c3"}'
    )
    (landing / "events/dt=2026-06-01").mkdir(parents=True)
    for name, end in (("lf", "\n"), ("crlf", "\r\n")):
        lines = [
            json.dumps(event(f"{name}1")),
            in_string % name,
            between % name,
            json.dumps(event(f"{name}4")),
        ]
        (landing / f"events/dt=2026-06-01/{name}.jsonl").write_bytes(
            (end.join(lines) + end).encode()
        )
    caplog.set_level(logging.WARNING)
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [
        ("crm/dt=2026-06-01/crlf.csv", 2, 2, 0),
        ("crm/dt=2026-06-01/lf.csv", 2, 2, 0),
        ("events/dt=2026-06-01/crlf.jsonl", 4, 3, 1),
        ("events/dt=2026-06-01/lf.jsonl", 4, 3, 1),
    ]
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/crlf.csv", 2, "d1", "Saint\rDenis"),
        ("crm/dt=2026-06-01/crlf.csv", 3, "d2", "Lyon"),
        ("crm/dt=2026-06-01/lf.csv", 2, "c1", "Saint\rDenis"),
        ("crm/dt=2026-06-01/lf.csv", 3, "c2", "Lyon"),
    ]
    assert query("select _source_file, _source_line, event_id from raw.events order by 1, 2") == [
        ("events/dt=2026-06-01/crlf.jsonl", 1, "crlf1"),
        ("events/dt=2026-06-01/crlf.jsonl", 3, "crlf3"),
        ("events/dt=2026-06-01/crlf.jsonl", 4, "crlf4"),
        ("events/dt=2026-06-01/lf.jsonl", 1, "lf1"),
        ("events/dt=2026-06-01/lf.jsonl", 3, "lf3"),
        ("events/dt=2026-06-01/lf.jsonl", 4, "lf4"),
    ]
    assert query(
        "select source_file, line_number, reasons, raw_record from ops.quarantine order by 1"
    ) == [
        (
            f"events/dt=2026-06-01/{name}.jsonl",
            2,
            [
                "malformed JSON: a carriage return inside a string, not escaped as \\r "
                "(JSON allows no raw control character there)"
            ],
            in_string % name,
        )
        for name in ("crlf", "lf")
    ]
    assert _files_warned(caplog, "carriage return") == [
        "crm/dt=2026-06-01/crlf.csv",
        "crm/dt=2026-06-01/lf.csv",
        "events/dt=2026-06-01/crlf.jsonl",
        "events/dt=2026-06-01/lf.jsonl",
    ]


def test_whole_records_parted_by_a_bare_carriage_return_keep_the_line_numbers(
    settings, landing, query, caplog
):
    """Two whole JSON lines or CSV records parted by a CR alone (a record appended by an old
    Mac tool, text joined with a CR) left no malformed piece, so nothing looked at the file's
    bytes: DuckDB's line reader ended a line at the CR, both records loaded, and the later
    lines of the file were numbered one too far (here lf4 on line 4, c3 on line 4). The
    checksum's read of an uncompressed file now notes such a CR, the file is read with the
    CR inside its line, and that line is quarantined whole, on the line `sed -n Np` shows;
    a record cut short at a CR (`{"event_id": "lf5", "ev<CR>{...}`) is one line likewise."""
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    for name, end in (("lf", "\n"), ("crlf", "\r\n")):
        docs = [json.dumps(event(f"{name}{k}")) for k in range(1, 8)]
        text = (
            f"{docs[0]}\n{docs[1]}\r{docs[2]}\n{docs[3]}\n"
            f'{{"event_id": "{name}5", "ev\r{docs[5]}\n{docs[6]}\n'
        )
        (day / f"{name}.jsonl").write_bytes(text.replace("\n", end).encode())
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "c.csv").write_bytes(
        b"customer_id,city,updated_at\nc1,Paris,2026-05-01\rc2,Lyon,2026-05-01\nc3,Nice,2026-05-01\n"
    )
    caplog.set_level(logging.WARNING)
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [
        ("crm/dt=2026-06-01/c.csv", 2, 1, 1),
        ("events/dt=2026-06-01/crlf.jsonl", 5, 3, 2),
        ("events/dt=2026-06-01/lf.jsonl", 5, 3, 2),
    ]
    assert query("select _source_file, _source_line, event_id from raw.events order by 1, 2") == [
        (f"events/dt=2026-06-01/{name}.jsonl", line, f"{name}{k}")
        for name in ("crlf", "lf")
        for line, k in ((1, 1), (3, 4), (5, 7))
    ]
    assert _crm_cities(query) == [("crm/dt=2026-06-01/c.csv", 3, "c3", "Nice")]
    parted = (
        "malformed JSON: JSON documents parted by a carriage return alone, not a line feed (in a "
        "file of LF or CRLF lines a CR is no line end)"
    )
    assert query(
        "select source_file, line_number, reasons[1] from ops.quarantine order by 1, 2"
    ) == [
        ("crm/dt=2026-06-01/c.csv", 2, "malformed CSV: 5 fields but the header has 3"),
        ("events/dt=2026-06-01/crlf.jsonl", 2, parted),
        (
            "events/dt=2026-06-01/crlf.jsonl",
            4,
            "malformed JSON: the line is not a valid JSON document",
        ),
        ("events/dt=2026-06-01/lf.jsonl", 2, parted),
        (
            "events/dt=2026-06-01/lf.jsonl",
            4,
            "malformed JSON: the line is not a valid JSON document",
        ),
    ]
    assert _files_warned(caplog, "carriage return") == [
        "crm/dt=2026-06-01/c.csv",
        "events/dt=2026-06-01/crlf.jsonl",
        "events/dt=2026-06-01/lf.jsonl",
    ]


def test_whole_records_parted_by_a_bare_carriage_return_in_gzip_files_keep_the_line_numbers(
    settings, landing, query, caplog
):
    """The same records parted by a bare CR, gzipped: the checksum reads a gzip file's
    compressed bytes, so nothing saw the CR; both records loaded and every later line was
    numbered one too far (e4 on line 4, c3 on line 4). The scan of gzip files now fails at
    such a CR (DuckDB's strict mode) and Python then looks at the batch's gzip files: the
    line is quarantined whole, on its line. Clean gzip files and an Excel CSV gzipped (CRLF
    rows, an LF inside a cell: strict fails, no CR is found) load as before, in one batch."""
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    docs = [json.dumps(event(f"e{k}")) for k in range(1, 6)]
    (day / "cr.jsonl.gz").write_bytes(
        gzip.compress(f"{docs[0]}\n{docs[1]}\r{docs[2]}\n{docs[3]}\n{docs[4]}\n".encode())
    )
    (day / "clean.jsonl.gz").write_bytes(gzip.compress(_jsonl([event("k1"), event("k2")]).encode()))
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "c.csv.gz").write_bytes(
        gzip.compress(
            b"customer_id,city,updated_at\nc1,Paris,2026-05-01\rc2,Lyon,2026-05-01\n"
            b"c3,Nice,2026-05-01\n"
        )
    )
    (crm / "excel.csv.gz").write_bytes(
        gzip.compress(
            b'customer_id,city,updated_at\r\nx1,"Saint\nDenis",2026-05-01\r\nx2,Lyon,2026-05-01\r\n'
        )
    )
    # Excel's "Unicode text" gzipped: its CR LF is CR NUL LF NUL, no bare CR.
    (crm / "u16.csv.gz").write_bytes(
        gzip.compress(
            b"\xff\xfe"
            + "customer_id\tcity\tupdated_at\r\nu1\tRen\u00e9e\t2026-05-01\r\n".encode("utf-16-le")
        )
    )
    # ... and with a bare CR in a quoted cell: read from its UTF-8 copy, looked at as such.
    text = 'customer_id\tcity\tupdated_at\r\nv1\t"A\rB"\t2026-05-01\r\nv2\tLyon\t2026-05-01\r\n'
    (crm / "u16cr.csv.gz").write_bytes(gzip.compress(b"\xff\xfe" + text.encode("utf-16-le")))
    caplog.set_level(logging.WARNING)
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [
        ("crm/dt=2026-06-01/c.csv.gz", 2, 1, 1),
        ("crm/dt=2026-06-01/excel.csv.gz", 2, 2, 0),
        ("crm/dt=2026-06-01/u16.csv.gz", 1, 1, 0),
        ("crm/dt=2026-06-01/u16cr.csv.gz", 2, 2, 0),
        ("events/dt=2026-06-01/clean.jsonl.gz", 2, 2, 0),
        ("events/dt=2026-06-01/cr.jsonl.gz", 4, 3, 1),
    ]
    assert query("select _source_file, _source_line, event_id from raw.events order by 1, 2") == [
        ("events/dt=2026-06-01/clean.jsonl.gz", 1, "k1"),
        ("events/dt=2026-06-01/clean.jsonl.gz", 2, "k2"),
        ("events/dt=2026-06-01/cr.jsonl.gz", 1, "e1"),
        ("events/dt=2026-06-01/cr.jsonl.gz", 3, "e4"),
        ("events/dt=2026-06-01/cr.jsonl.gz", 4, "e5"),
    ]
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/c.csv.gz", 3, "c3", "Nice"),
        ("crm/dt=2026-06-01/excel.csv.gz", 2, "x1", "Saint\nDenis"),
        ("crm/dt=2026-06-01/excel.csv.gz", 4, "x2", "Lyon"),
        ("crm/dt=2026-06-01/u16.csv.gz", 2, "u1", "Ren\u00e9e"),
        ("crm/dt=2026-06-01/u16cr.csv.gz", 2, "v1", "A\rB"),
        ("crm/dt=2026-06-01/u16cr.csv.gz", 3, "v2", "Lyon"),
    ]
    assert query(
        "select source_file, line_number, reasons[1] from ops.quarantine order by 1, 2"
    ) == [
        ("crm/dt=2026-06-01/c.csv.gz", 2, "malformed CSV: 5 fields but the header has 3"),
        (
            "events/dt=2026-06-01/cr.jsonl.gz",
            2,
            "malformed JSON: JSON documents parted by a carriage return alone, not a line feed "
            "(in a file of LF or CRLF lines a CR is no line end)",
        ),
    ]
    assert _files_warned(caplog, "carriage return") == [
        "crm/dt=2026-06-01/c.csv.gz",
        "crm/dt=2026-06-01/u16cr.csv.gz",
        "events/dt=2026-06-01/cr.jsonl.gz",
    ]


def test_a_reload_reads_records_parted_by_a_bare_carriage_return_as_the_first_load(
    settings, landing, query
):
    """`segmint ingest --reload-since` reads loaded files again without checksumming them
    (their size and time are unchanged), so the checksum's look for a bare CR was skipped:
    the records parted by one, quarantined by the first load, loaded on the reload, and
    every later line moved one down (e4 from line 3 to 4). Such a file is now read for it."""
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    docs = [json.dumps(event(f"e{k}")) for k in range(1, 6)]
    (day / "cr.jsonl").write_bytes(
        f"{docs[0]}\n{docs[1]}\r{docs[2]}\n{docs[3]}\n{docs[4]}\n".encode()
    )
    # A gzip file is not read for it again: its scan looks for one.
    gz = [json.dumps(event(f"g{k}")) for k in range(1, 6)]
    (day / "cr2.jsonl.gz").write_bytes(
        gzip.compress(f"{gz[0]}\n{gz[1]}\r{gz[2]}\n{gz[3]}\n{gz[4]}\n".encode())
    )
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "c.csv").write_bytes(
        b"customer_id,city,updated_at\nc1,Paris,2026-05-01\rc2,Lyon,2026-05-01\n"
        b"c3,Nice,2026-05-01\n"
    )
    tables = (
        "select _source_file, _source_line, event_id from raw.events order by 1, 2",
        "select _source_file, _source_line, customer_id from raw.customers order by 1, 2",
        "select source_file, line_number, reasons from ops.quarantine order by 1, 2",
    )
    run_ingest(settings, D1)
    first = [query(sql) for sql in tables]
    assert first[0] == [
        (f"events/dt=2026-06-01/{name}", line, f"{prefix}{k}")
        for name, prefix in (("cr.jsonl", "e"), ("cr2.jsonl.gz", "g"))
        for line, k in ((1, 1), (3, 4), (4, 5))
    ]
    assert first[1] == [("crm/dt=2026-06-01/c.csv", 3, "c3")]
    result = run_ingest(settings, D1, reload_since=D1)
    assert result.details["replaced_files"] == [
        "crm/dt=2026-06-01/c.csv",
        "events/dt=2026-06-01/cr.jsonl",
        "events/dt=2026-06-01/cr2.jsonl.gz",
    ]
    assert [query(sql) for sql in tables] == first
    _accounting_holds(query)
    # A reload from after the as-of date reads nothing again, and says so.
    result = run_ingest(settings, D1, reload_since=D2)
    assert result.details["replaced_files"] == []
    assert [w for w in result.warnings if "--reload-since" in w] == [
        "--reload-since 2026-06-02 is after the as-of date 2026-06-01: no file loaded before "
        "was read again (give --as-of the last day to reload)"
    ]


def test_lines_ending_in_cr_cr_lf_load(settings, landing, query, caplog):
    """Python's csv module on Windows, writing to a file opened without newline='', ends
    every line in CR CR LF (so does a CRLF file converted to CRLF again). DuckDB's reader
    began each next line with the line feed: every CRM record was quarantined for "an id
    field holds a control character" and every JSON line after the first was "not a JSON
    object", their real faults hidden. Such lines end in CRLF now."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "customers.csv").write_bytes(
        b"customer_id,email,updated_at\r\r\n"
        b"c1,a@x.com,2026-06-01\r\r\n"
        b'c2,"b@x.com",2026-06-01\r\r\n'
        b"c3,,not a date\r\r\n"
    )
    lines = [
        json.dumps(event("e1")),
        json.dumps(event("e2", event_ts="bad")),
        json.dumps(event("e3")),
    ]
    (landing / "events/dt=2026-06-01").mkdir(parents=True)
    (landing / "events/dt=2026-06-01/events.jsonl.gz").write_bytes(
        gzip.compress(("\r\r\n".join(lines) + "\r\r\n").encode(), mtime=0)
    )
    caplog.set_level(logging.WARNING)
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [
        ("crm/dt=2026-06-01/customers.csv", 3, 2, 1),
        ("events/dt=2026-06-01/events.jsonl.gz", 3, 2, 1),
    ]
    assert query("select customer_id, email, _source_line from raw.customers order by 1") == [
        ("c1", "a@x.com", 2),
        ("c2", "b@x.com", 3),
    ]
    assert query("select event_id, _source_line from raw.events order by 1") == [
        ("e1", 1),
        ("e3", 3),
    ]
    assert query(
        "select source_file, line_number, reasons, raw_record from ops.quarantine order by 1"
    ) == [
        (
            "crm/dt=2026-06-01/customers.csv",
            4,
            ["updated_at is not an ISO-8601 timestamp (got not a date)"],
            "c3,,not a date",
        ),
        (
            "events/dt=2026-06-01/events.jsonl.gz",
            2,
            ["event_ts is not an ISO-8601 timestamp (got bad)"],
            lines[1],
        ),
    ]
    assert _files_warned(caplog, "CR CR LF") == [
        "crm/dt=2026-06-01/customers.csv",
        "events/dt=2026-06-01/events.jsonl.gz",
    ]


def test_crlf_lines_in_a_file_of_lf_lines_keep_the_line_numbers(settings, landing, query, caplog):
    """DuckDB's reader takes a file's first line end for all of them: in a file whose first
    line ends in LF (files of both kinds joined, one record written by a Windows tool), a
    CRLF was two line ends and CR CR LF three, so every later line was numbered one or two
    too far in raw.*, ops.quarantine and ops.duplicates (here e4 on line 6, k3 on line 8),
    and a CRLF inside a quoted cell became two line feeds. Lines are numbered as `sed -n Np`
    shows them, and a warning names the file; the CRLF inside the cell is kept as written
    (it was stored as LF until 2026-12-07)."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "customers.csv").write_bytes(
        b"customer_id,city,updated_at\n"
        b"k1,Lyon,2026-05-01\r\r\n"
        b'k2,"Saint\r\nDenis",2026-05-01\n'
        b"k3,Nice,not a date\n"
    )
    lines = [
        json.dumps(event("e1")),
        json.dumps(event("e2")),
        json.dumps(event("e3")),
        json.dumps(event("e4", event_ts="bad")),
    ]
    (landing / "events/dt=2026-06-01").mkdir(parents=True)
    (landing / "events/dt=2026-06-01/events.jsonl.gz").write_bytes(
        gzip.compress(f"{lines[0]}\n{lines[1]}\r\n{lines[2]}\r\r\n{lines[3]}\n".encode(), mtime=0)
    )
    caplog.set_level(logging.WARNING)
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [
        ("crm/dt=2026-06-01/customers.csv", 3, 2, 1),
        ("events/dt=2026-06-01/events.jsonl.gz", 4, 3, 1),
    ]
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/customers.csv", 2, "k1", "Lyon"),
        ("crm/dt=2026-06-01/customers.csv", 3, "k2", "Saint\r\nDenis"),
    ]
    assert query("select event_id, _source_line from raw.events order by 1") == [
        ("e1", 1),
        ("e2", 2),
        ("e3", 3),
    ]
    assert query("select source_file, line_number from ops.quarantine order by 1") == [
        ("crm/dt=2026-06-01/customers.csv", 5),
        ("events/dt=2026-06-01/events.jsonl.gz", 4),
    ]
    assert _files_warned(caplog, "CRLF in a file whose first line ends in LF") == [
        "crm/dt=2026-06-01/customers.csv",
        "events/dt=2026-06-01/events.jsonl.gz",
    ]


def test_a_crlf_inside_a_quoted_cell_of_a_crlf_file_is_kept(settings, landing, query):
    """A CSV whose every line ends in CRLF (a .NET or Java CSV writer, a file checked out
    with autocrlf) writes a line break inside a quoted cell as CRLF too. DuckDB's line
    reader gives lines without their ends and a multi-line record was joined with LF:
    "Saint\\r\\nDenis" was stored as "Saint\\nDenis", where DuckDB's read_csv, Python's csv
    and pandas keep it. It is kept as written; Excel's CSV (CRLF rows, a bare LF inside a
    cell) keeps its LF."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "dotnet.csv").write_bytes(
        b'customer_id,city,updated_at\r\nk1,"Saint\r\nDenis",2026-05-01\r\nk2,Lyon,2026-05-01\r\n'
    )
    (crm / "excel.csv").write_bytes(
        b'customer_id,city,updated_at\r\nx1,"Saint\nDenis",2026-05-01\r\nx2,Lyon,2026-05-01\r\n'
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/dotnet.csv", 2, "k1", "Saint\r\nDenis"),
        ("crm/dt=2026-06-01/dotnet.csv", 4, "k2", "Lyon"),
        ("crm/dt=2026-06-01/excel.csv", 2, "x1", "Saint\nDenis"),
        ("crm/dt=2026-06-01/excel.csv", 4, "x2", "Lyon"),
    ]


def test_a_crlf_inside_a_quoted_cell_of_a_file_of_lf_lines_is_kept(settings, landing, query):
    """A file of LF rows whose cells hold CRLF line breaks (pandas' to_csv on Linux of notes
    typed on Windows; a CRM export of such text) was read from a copy whose lines all end in
    LF, and "Saint\r\nDenis" was stored as "Saint\nDenis", where DuckDB's read_csv,
    Python's csv and pandas keep it. Each cell keeps its line breaks as written (a bare LF
    and a bare CR too), a CRLF ending a record is still a line end, and the line numbers
    are the file's."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "pandas.csv").write_bytes(
        b"customer_id,city,updated_at\n"
        b'k1,"Saint\r\nDenis",2026-05-01\n'
        b'k2,"a\r\n\r\nb\nc\rd",2026-05-01\r\n'
        b"k3,Lyon,2026-05-01\n"
        b"k4,Nice,not a date\n"
    )
    # A CRLF file with a bare CR in a cell is read from such a copy too.
    (crm / "crlf.csv").write_bytes(
        b'customer_id,city,updated_at\r\nx1,"Saint\r\nDe\rnis",2026-05-01\r\nx2,Lyon,2026-05-01\r\n'
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/crlf.csv", 2, "x1", "Saint\r\nDe\rnis"),
        ("crm/dt=2026-06-01/crlf.csv", 4, "x2", "Lyon"),
        ("crm/dt=2026-06-01/pandas.csv", 2, "k1", "Saint\r\nDenis"),
        ("crm/dt=2026-06-01/pandas.csv", 4, "k2", "a\r\n\r\nb\nc\rd"),
        ("crm/dt=2026-06-01/pandas.csv", 8, "k3", "Lyon"),
    ]
    assert query("select source_file, line_number from ops.quarantine") == [
        ("crm/dt=2026-06-01/pandas.csv", 9)
    ]


def test_a_file_of_cr_line_ends_with_a_line_feed_in_a_cell_loads(settings, landing, query):
    """Excel for Mac's CSV ends its rows in CR and writes a line break inside a cell as LF.
    The file holds line feeds and carriage returns not followed by one, so the bare-CR
    re-read took it for a file of LF lines whose CRs are part of values: it was read as one
    line, and failed ("CSV header lacks required column(s) updated_at", the header running
    into the first record). A file with more bare CRs than line feeds is a file of CR lines,
    as DuckDB's reader takes it; its multi-line cell keeps its LF."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "mac.csv").write_bytes(
        b'customer_id;city;updated_at\rk1;"Saint\nDenis";2026-05-01\r'
        b"k2;Nice;2026-05-01\rk3;Nice;bad\r"
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _file_counts(query) == [("crm/dt=2026-06-01/mac.csv", 3, 2, 1)]
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/mac.csv", 2, "k1", "Saint\nDenis"),
        ("crm/dt=2026-06-01/mac.csv", 4, "k2", "Nice"),
    ]
    assert query("select line_number from ops.quarantine") == [(5,)]


def test_fields_written_as_excel_text_formulas_are_read_as_their_text(settings, landing, query):
    """ "Excel-friendly" CSV exports write a value that Excel would change (a ZIP code's or an
    id's leading zeros, a long number's digits) as a text formula, ="02118", which Excel
    shows as 02118. It loaded as written: the id '="c1"' was another customer than 'c1'
    of the events and of the other exports, the ZIP code was sent as '="02118"'. A field
    that is one such formula, quoted or not (Excel reads both), is its text; any other
    formula stays as written."""
    write_lines(
        landing / "crm/dt=2026-06-01/contacts.csv",
        [
            "customer_id,updated_at,postal_code,city",
            '="c1",="2026-05-01",="02118",Boston',
            '"=""c2""",2026-05-01," =""02118"" ","=""Saint """"Denis"""""""',
            'c3,2026-05-01,=1+2,="a"&"b"',
            'c4,2026-05-01,="",=""',
        ],
    )
    write_lines(
        landing / "events/dt=2026-06-01/events.csv",
        [
            "event_id,event_type,event_ts,customer_id",
            '="0001",page_view,2026-06-01T10:00:00Z,="c1"',
        ],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query(
        "select customer_id, updated_at::VARCHAR, postal_code, city from raw.customers order by 1"
    ) == [
        ("c1", "2026-05-01 00:00:00", "02118", "Boston"),
        ("c2", "2026-05-01 00:00:00", "02118", 'Saint "Denis"'),
        ("c3", "2026-05-01 00:00:00", "=1+2", '="a"&"b"'),
        ("c4", "2026-05-01 00:00:00", None, None),
    ]
    assert query("select event_id, customer_id from raw.events") == [("0001", "c1")]


def test_nul_bytes_in_csv_values_keep_every_record_and_its_line(settings, landing, query):
    """A NUL byte in an unquoted or quoted CSV value, in a multi-line cell, beside a line
    read as Windows-1252 or in a file's tail of zero bytes (a writer killed after it
    preallocated the file) costs no record and shifts no line number: an id holding it is
    quarantined for its control character, another field keeps it, the tail is one
    malformed record, each named by file and line."""
    (landing / "crm/dt=2026-06-01").mkdir(parents=True)
    (landing / "crm/dt=2026-06-01/c.csv").write_bytes(
        b"customer_id,email,city,updated_at\n"
        b"c1,a@x.com,Par\xe9s,2026-06-01\n"
        b"c\x002,b@x.com,Saint,2026-06-01\n"
        b"c3,c@x.com,Sai\x00nt,2026-06-01\n"
        b'c4,d@x.com,"Ly\x00\non",2026-06-01\n'
        b"c5,e@x.com,Metz,2026-06-01\n"
        b"\x00\x00\x00\x00\x00\x00"
    )
    (landing / "events/dt=2026-06-01").mkdir(parents=True)
    (landing / "events/dt=2026-06-01/e.csv.gz").write_bytes(
        gzip.compress(
            b"event_id,event_type,event_ts,customer_id\n"
            b"e1,page_view,2026-06-01T10:00:00Z,c1\n"
            b"e2,page_view\x00,2026-06-01T10:00:00Z,c1\n"
            b"e3,page_view,2026-06-01T10:00:00Z,c1\n",
            mtime=0,
        )
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert _crm_cities(query) == [
        ("crm/dt=2026-06-01/c.csv", 2, "c1", "Parés"),
        ("crm/dt=2026-06-01/c.csv", 4, "c3", "Sai\x00nt"),
        ("crm/dt=2026-06-01/c.csv", 5, "c4", "Ly\x00\non"),
        ("crm/dt=2026-06-01/c.csv", 7, "c5", "Metz"),
    ]
    assert query("select _source_line, event_id from raw.events order by 1") == [
        (2, "e1"),
        (4, "e3"),
    ]
    got = query("select source_file, line_number, reasons[1] from ops.quarantine order by 1, 2")
    assert [(f, n) for f, n, _ in got] == [
        ("crm/dt=2026-06-01/c.csv", 3),
        ("crm/dt=2026-06-01/c.csv", 8),
        ("events/dt=2026-06-01/e.csv.gz", 3),
    ]
    assert got[0][2].startswith("an id field holds a control character")
    assert got[1][2] == "malformed CSV: 1 fields but the header has 4"
    assert got[2][2] == "unknown event_type (got page_view\x00)"


def test_empty_fields_after_the_header_s_last_are_no_malformed_record(settings, landing, query):
    """A CSV whose records end in separators the header lacks (``c2;b@x.com;2026-05-01;;``:
    an exporter writing a separator after every field of a record, a column deleted in a
    spreadsheet by its header only) had each such record quarantined as "malformed CSV: 5
    fields but the header has 3", though the extra fields hold nothing. They are read
    without them; a record whose extra fields hold a value is still malformed, and so is a
    line holding a carriage return (two records parted by a bare one, both quarantined)."""
    write_lines(
        landing / "crm/dt=2026-06-01/export.csv",
        [
            "\ufeffcustomer_id;email;updated_at",
            "c1;a@x.com;2026-05-01",
            "c2;b@x.com;2026-05-01;;",
            'c3;c@x.com;2026-05-01; ;""',
            "c4;d@x.com;2026-05-01;;lost?",
            ";;;",
        ],
    )
    write_lines(
        landing / "crm/dt=2026-06-01/cr.csv",
        ["customer_id,updated_at,email", "g1,2026-05-01,\rg2,2026-05-01,", "g3,2026-05-01,,"],
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select customer_id, email, _extra from raw.customers order by 1") == [
        ("c1", "a@x.com", None),
        ("c2", "b@x.com", None),
        ("c3", "c@x.com", None),
        ("g3", None, None),
    ]
    assert query("select source_file, line_number, reasons from ops.quarantine order by 1, 2") == [
        ("crm/dt=2026-06-01/cr.csv", 2, ["malformed CSV: 5 fields but the header has 3"]),
        ("crm/dt=2026-06-01/export.csv", 5, ["malformed CSV: 5 fields but the header has 3"]),
    ]


def _strict_json(text: str) -> dict:
    """``text`` parsed as JSON is (RFC 8259): no NaN or Infinity, which Python's json reads."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_nan_in_a_number_field_is_a_missing_value(settings, landing, query):
    """pandas' missing number is a float NaN: ``to_parquet`` writes it so in a float column,
    and Python's ``json.dumps`` writes it as the token ``NaN``. It was "revenue is not a
    number (got NaN)" and quarantined every page view of such an export (an events frame
    holds a revenue column for its purchases only), and a Parquet row's raw_record held
    ``NaN``, no JSON to a strict reader. NaN (``nan`` in CSV too) is now no value, as null
    is (a purchase without a revenue is quarantined for that); an infinity is still "not a
    number", and is written in a Parquet row's raw_record as the text "Infinity"."""
    day = landing / "events/dt=2026-06-01"
    nan, inf = float("nan"), float("inf")
    rows = [
        event("v1", revenue=nan, price=nan, quantity=nan),
        event("p1", event_type="purchase", order_id="o1", revenue=nan, price=2.5),
        event("p2", event_type="purchase", order_id="o2", revenue=inf),
        event("p3", event_type="purchase", order_id="o3", revenue=12.5, quantity=2.0),
    ]
    write_lines(day / "e.jsonl", [json.dumps(r) for r in rows])
    columns = {k: [r.get(k) for r in rows] for k in ("event_type", "event_ts")}
    columns["event_id"] = ["q" + r["event_id"] for r in rows]
    columns["customer_id"] = ["c1"] * len(rows)
    columns["order_id"] = [r.get("order_id") for r in rows]
    for k in ("revenue", "price", "quantity"):
        columns[k] = pa.array([r.get(k) for r in rows], pa.float64())
    pq.write_table(pa.table(columns), day / "e.parquet")
    assert "NaN" in (day / "e.jsonl").read_text()
    # Python's str() of a float NaN, as a hand-written CSV export writes it
    write_lines(
        day / "e.csv",
        [
            "event_id,event_type,event_ts,customer_id,order_id,revenue,price",
            "cv1,page_view,2026-06-01T10:00:00Z,c1,,nan,nan",
            "cp1,purchase,2026-06-01T10:00:00Z,c1,o9,NaN,",
        ],
    )

    result = run_ingest(settings, D1)

    _accounting_holds(query)
    assert query(
        "select _source_file, event_id, revenue, price, quantity from raw.events order by 1, 2"
    ) == [
        ("events/dt=2026-06-01/e.csv", "cv1", None, None, None),
        ("events/dt=2026-06-01/e.jsonl", "p3", 12.5, None, 2),
        ("events/dt=2026-06-01/e.jsonl", "v1", None, None, None),
        ("events/dt=2026-06-01/e.parquet", "qp3", 12.5, None, 2),
        ("events/dt=2026-06-01/e.parquet", "qv1", None, None, None),
    ]
    assert query("select sum(rows_warned) from ops.load_manifest") == [(0,)]
    assert not [w for w in result.warnings if "not a number" in w]
    quarantined = query(
        "select source_file, line_number, reasons, raw_record from ops.quarantine order by 1, 2"
    )
    assert [(f.rsplit("/", 1)[1], n, why) for f, n, why, _ in quarantined] == [
        ("e.csv", 3, ["purchase without revenue"]),
        ("e.jsonl", 2, ["purchase without revenue"]),
        ("e.jsonl", 3, ["revenue is not a number (got Infinity)"]),
        ("e.parquet", 2, ["purchase without revenue"]),
        ("e.parquet", 3, ["revenue is not a number (got Infinity)"]),
    ]
    parquet = [_strict_json(raw) for f, _, _, raw in quarantined if f.endswith(".parquet")]
    assert [(r["revenue"], r["price"]) for r in parquet] == [(None, 2.5), ("Infinity", None)]


@pytest.mark.parametrize("alone", [False, True])
def test_nan_and_infinity_nested_in_parquet_structs_are_json(settings, landing, query, alone):
    """pandas' missing number is a float NaN also inside the ``context`` and ``properties``
    structs of a Segment export written as Parquet, and in a list or map column. The row's
    document (``raw_record`` of a quarantined row, ``raw.events._extra`` of a loaded one)
    held the bare tokens NaN and Infinity, which no strict JSON reader takes. A nested NaN is
    now null and an infinity the text "Infinity", as a top-level float column's; the values
    read through aliases are as before, and a string holding the words is untouched.
    ``alone``: a file with a ``file_index`` column, read on its own through pyarrow."""
    nan, inf = float("nan"), float("inf")
    props = pa.struct([("revenue", pa.float64()), ("price", pa.float32())])
    table = pa.table(
        {
            "event_id": ["p1", "p2", "p3"],
            "event_type": ["purchase"] * 3,
            "event_ts": ["2026-06-01T10:00:00Z"] * 3,
            "customer_id": ["c1"] * 3,
            "order_id": ["o1", "o2", "o3"],
            "properties": pa.array(
                [
                    {"revenue": 12.5, "price": inf},
                    {"revenue": nan, "price": 2.5},
                    {"revenue": -inf, "price": nan},
                ],
                props,
            ),
            "scores": pa.array([[1.5, nan], [], None], pa.list_(pa.float64())),
            "weights": pa.array(
                [[("NaN", nan)], [("a", 1.0)], [("b", -inf)]], pa.map_(pa.string(), pa.float64())
            ),
            "note": ['said "NaN, -Infinity"', "x", None],
        }
    )
    if alone:
        table = table.append_column("file_index", pa.array([7, 7, 7]))
    landing.joinpath("events/dt=2026-06-01").mkdir(parents=True)
    pq.write_table(table, landing / "events/dt=2026-06-01/e.parquet")
    settings = dataclasses.replace(
        settings,
        ingest=IngestSettings(
            field_aliases={
                "events": {"revenue": ["properties.revenue"], "price": ["properties.price"]}
            }
        ),
    )

    result = run_ingest(settings, D1)

    _accounting_holds(query)
    assert query("select event_id, revenue, price from raw.events") == [("p1", 12.5, None)]
    assert [w for w in result.warnings if "not a number" in w] == [
        "field nulled on 1 row(s): price is not a number (in events/dt=2026-06-01/e.parquet)"
    ]
    (extra,) = query("select _extra from raw.events")[0]
    extra = _strict_json(extra)
    assert extra["properties"] == {"revenue": 12.5, "price": "Infinity"}
    assert extra["scores"] == [1.5, None]
    assert extra["weights"] == {"NaN": None}
    assert extra["note"] == 'said "NaN, -Infinity"'
    quarantined = query("select line_number, reasons, raw_record from ops.quarantine order by 1")
    assert [(n, why) for n, why, _ in quarantined] == [
        (2, ["purchase without revenue (looked for 'revenue', 'properties.revenue')"]),
        (3, ["revenue is not a number (got -Infinity)"]),
    ]
    docs = [_strict_json(raw) for _, _, raw in quarantined]
    assert [d["properties"] for d in docs] == [
        {"revenue": None, "price": 2.5},
        {"revenue": "-Infinity", "price": None},
    ]
    assert [(d["scores"], d["weights"]) for d in docs] == [
        ([], {"a": 1.0}),
        (None, {"b": "-Infinity"}),
    ]
