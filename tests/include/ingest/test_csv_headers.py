"""CSV headers and records as real exporters write them, and the errors odd headers get.

Every test uses real files and the real ingest, and checks where each row went.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib

import duckdb
import pytest

from segmint.ingest import loader, run_ingest
from segmint.stages import InputError
from tests.include.ingest.conftest import D1, event, write_lines


def _accounting_holds(query) -> None:
    broken = query(
        "select path from ops.load_manifest "
        "where rows_read <> rows_loaded + rows_quarantined + rows_duplicate + rows_erased"
    )
    assert broken == []


def test_quoted_fields_after_a_space_are_read_as_quoted(settings, landing, query):
    """Some exporters write a space after every comma and quote every field
    ('"customer_id", "city", "updated_at"'). The header was read as '"city"' and
    '"updated_at"' (quotes kept): the file failed, suggesting the alias '"updated_at"'; a
    record's '"Paris, FR"' was split at its comma. As DuckDB and Python's csv with
    skipinitialspace read them, the spaces before a quote are dropped and the field is the
    quoted one; a malformed one is quarantined with its file and line."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "spaced.csv").write_bytes(
        b'"customer_id", "city", "updated_at"\r\n'
        b'"s1", "Paris, FR", "2026-05-01T10:00:00Z"\r\n'
        b'"s2", "Lyon\r\nCentre", "2026-05-01T10:00:00Z"\r\n'
        b"s3,  Nice , 2026-05-01\r\n"
        b'"s4",  "Metz" x, 2026-05-01\r\n'
        b'"s5", "unclosed, 2026-05-01\r\n'
    )
    # A quote inside an unquoted field after a space opens nothing.
    (crm / "inner.csv").write_bytes(b'customer_id,city,updated_at\ni1,TV 55" "x",2026-05-01\n')
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query(
        "select _source_file, _source_line, customer_id, city, updated_at::date::varchar "
        "from raw.customers order by 1, 2"
    ) == [
        ("crm/dt=2026-06-01/inner.csv", 2, "i1", 'TV 55" "x"', "2026-05-01"),
        ("crm/dt=2026-06-01/spaced.csv", 2, "s1", "Paris, FR", "2026-05-01"),
        ("crm/dt=2026-06-01/spaced.csv", 3, "s2", "Lyon\r\nCentre", "2026-05-01"),
        ("crm/dt=2026-06-01/spaced.csv", 5, "s3", "Nice", "2026-05-01"),
    ]
    assert query("select source_file, line_number, reasons from ops.quarantine order by 1, 2") == [
        (
            "crm/dt=2026-06-01/spaced.csv",
            6,
            ["malformed CSV: text after the closing quote of field 2 (city)"],
        ),
        ("crm/dt=2026-06-01/spaced.csv", 7, ["malformed CSV: unbalanced quotes"]),
    ]


def test_ids_stored_with_the_quotes_of_a_spaced_field_are_named_until_reloaded(
    settings, landing, query
):
    """A release before 2026-12-07.4 stored an id quoted after a space (', "c1"') with its
    quotes ('"c1"'); the same customer's next export loads as 'c1'. The rows are named once,
    with the id they now read as, until their files are read again."""
    write_lines(
        landing / "events/dt=2026-06-01/e.csv",
        ["event_id,event_type,event_ts,customer_id", 'e1,page_view,2026-06-01T10:00:00Z, "c1"'],
    )
    run_ingest(settings, D1)
    assert query("select customer_id from raw.events") == [("c1",)]
    con = duckdb.connect(str(settings.warehouse))
    con.execute("""update raw.events set customer_id = '"c1"'""")
    con.execute("drop table ops.id_rule")
    con.close()
    result = run_ingest(settings, D1)
    (said,) = [w for w in result.warnings if "loaded by an earlier segmint" in w]
    assert """(customer_id '"c1"' is now 'c1'; the first in partition 2026-06-01)""" in said
    run_ingest(settings, D1, reload_since=D1)
    assert query("select customer_id from raw.events") == [("c1",)]
    assert query("select version from ops.id_rule") == [(loader.ID_RULE_VERSION,)]


def test_a_header_ending_in_a_bare_carriage_return_fails_saying_so(settings, landing, query):
    """A header ended by a bare CR in a file of LF lines ran into the first record: the
    file failed (rightly) suggesting the alias updated_at = ['updated_at\\rg1']. The error
    now says what is wrong and how to mend it; the mended file loads every row."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "cr.csv").write_bytes(
        b"customer_id,city,updated_at\rg1,Paris,2026-05-01\ng2,Lyon,2026-05-01\n"
    )
    with pytest.raises(InputError) as err:
        run_ingest(settings, D1)
    said = str(err.value)
    assert (
        "crm/dt=2026-06-01/cr.csv: CSV header holds a carriage return not followed by a line "
        "feed (after 'customer_id,city,updated_at', before 'g1,Paris,2026-05-01')"
    ) in said
    assert "sed '1s/\\r/\\r\\n/'" in said
    assert "alias" not in said and "field_aliases" not in said
    (crm / "cr.csv").write_bytes(
        b"customer_id,city,updated_at\r\ng1,Paris,2026-05-01\ng2,Lyon,2026-05-01\n"
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select _source_line, customer_id from raw.customers order by 1") == [
        (2, "g1"),
        (3, "g2"),
    ]


def test_invisible_characters_at_a_header_names_ends_are_no_part_of_it(settings, landing, query):
    """A BOM before a name (files joined after their first), a zero-width space, a NUL at
    a name's end: the file failed for lacking the field, its error suggesting an alias
    that holds the invisible character. Such names now read as the field, as ids do."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    for k, header in enumerate(
        [
            "customer_id,city,\ufeffupdated_at",
            "customer_id\u200b,city,updated_at",
            "\u2060customer_id,city\u00a0,updated_at\x00",
        ]
    ):
        (crm / f"h{k}.csv").write_text(f"{header}\nc{k},Lyon,2026-05-01\n", encoding="utf-8")
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select _source_file, customer_id, city from raw.customers order by 1") == [
        (f"crm/dt=2026-06-01/h{k}.csv", f"c{k}", "Lyon") for k in range(3)
    ]


def test_an_alias_suggested_for_a_name_with_an_invisible_character_reads_it(
    settings, landing, query
):
    """A header name holding a no-break space ('updated<NBSP>at') fails its file with the
    setting that reads it; that setting was Python's repr, ['updated\\xa0at'], which TOML
    reads as a backslash and three letters. It is now a TOML string that reads the name."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "nbsp.csv").write_text(
        "customer_id,city,updated\u00a0at\nc1,Lyon,2026-05-01\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as err:
        run_ingest(settings, D1)
    said = str(err.value)
    setting = said[said.index("[ingest.field_aliases.crm]: ") :].split(": ", 1)[1]
    setting = setting[: setting.index("]") + 1]
    assert setting == 'updated_at = ["updated\\u00a0at"]'
    aliases = tomllib.loads(f"[ingest.field_aliases.crm]\n{setting}\n")["ingest"]["field_aliases"]
    ingest = dataclasses.replace(settings.ingest, field_aliases=aliases)
    run_ingest(dataclasses.replace(settings, ingest=ingest), D1)
    _accounting_holds(query)
    assert query("select customer_id, updated_at::date::varchar from raw.customers") == [
        ("c1", "2026-05-01")
    ]


def test_utf16_records_parted_by_a_bare_carriage_return_keep_their_lines(settings, landing, query):
    """UTF-16 text (Excel's "Unicode Text") whose records are parted by a CR alone in a
    file of CRLF or LF lines: the checksum's byte search cannot see a two-byte CR, so the
    two records were read as two lines, every later line numbered one too far, and in a
    CRLF file the character after the CR lost (the id 'g2' loaded as '2'). They are now
    read as the same UTF-8 text is: one line, quarantined, the later lines numbered as an
    editor shows them."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    text = "customer_id,city,updated_at\r\ng1,Paris,2026-05-01\rg2,Lyon,2026-05-01\r\n"
    (crm / "u16.csv").write_bytes(
        b"\xff\xfe" + (text + "g3,Nice,2026-05-01\r\n").encode("utf-16-le")
    )
    day = landing / "events/dt=2026-06-01"
    day.mkdir(parents=True)
    lines = [json.dumps(event(f"e{k}")) for k in range(1, 5)]
    (day / "u16.jsonl").write_bytes(
        b"\xfe\xff" + f"{lines[0]}\n{lines[1]}\r{lines[2]}\n{lines[3]}\n".encode("utf-16-be")
    )
    run_ingest(settings, D1)
    _accounting_holds(query)
    assert query("select _source_line, customer_id from raw.customers") == [(3, "g3")]
    assert query("select _source_line, event_id from raw.events order by 1") == [
        (1, "e1"),
        (3, "e4"),
    ]
    got = query("select source_file, line_number, reasons[1] from ops.quarantine order by 1")
    assert [(f, n) for f, n, _ in got] == [
        ("crm/dt=2026-06-01/u16.csv", 2),
        ("events/dt=2026-06-01/u16.jsonl", 2),
    ]
    assert got[0][2] == "malformed CSV: 5 fields but the header has 3"
    assert got[1][2].startswith("malformed JSON: JSON documents parted by a carriage return")


def test_a_header_holding_several_names_in_one_column_fails_saying_so(settings, landing):
    """A header line quoted whole ('"customer_id,city,updated_at"') or parted by spaces is
    one column. The file failed (rightly) suggesting the alias
    updated_at = ['customer_id,city,updated_at'] (it "looks like a modification time"). The
    error now says the names are in one column and what to export instead."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "whole.csv").write_text('"customer_id,city,updated_at"\n"c1,Lyon,2026-05-01"\n')
    (crm / "spaces.csv").write_text("customer_id city updated_at\nc1 Lyon 2026-05-01\n")
    with pytest.raises(InputError) as err:
        run_ingest(settings, D1)
    said = str(err.value)
    for name, column in (
        ("whole", "customer_id,city,updated_at"),
        ("spaces", "customer_id city updated_at"),
    ):
        assert (
            f"crm/dt=2026-06-01/{name}.csv: CSV header has a column holding several field "
            f"names ({column!r}): they are quoted together as one field, or parted by a "
            "separator segmint does not read"
        ) in said
    assert "field_aliases" not in said


def test_a_semicolon_header_without_its_id_column_names_the_missing_column(settings, landing):
    """A semicolon CRM export whose id column has another name (Kundennummer) and no
    alias, with crm_updated_at_from_partition (so the id is its only required column): no
    split named a required field, the comma's (one column) was taken, and the error said the
    header held several field names in one column, "parted by a separator segmint does not
    read", of a semicolon it reads. It now says the id column is missing."""
    crm = landing / "crm/dt=2026-06-01"
    crm.mkdir(parents=True)
    (crm / "kunden.csv").write_text(
        "Kundennummer;email;first_name;country;updated_at\n1001;a@shop.de;Anna;DE;\n"
    )
    ingest = dataclasses.replace(settings.ingest, crm_updated_at_from_partition=True)
    with pytest.raises(InputError) as err:
        run_ingest(dataclasses.replace(settings, ingest=ingest), D1)
    said = str(err.value)
    assert "crm/dt=2026-06-01/kunden.csv: CSV header lacks required column(s) customer_id" in said
    assert "several field names" not in said
