"""Ingestion end to end on small landing zones: real DuckDB file, real GX suites."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from segmint.config import IngestSettings, Settings, usable_cores
from segmint.ingest import check_quality_gate, run_ingest
from segmint.stages import InputError, QualityGateError
from tests.include.ingest.conftest import (
    D1,
    D2,
    D3,
    event,
    warehouse_hashes,
    write_jsonl,
    write_lines,
)

# The bad-input corpus: line -> a reason a person can read, for events/dt=D1/corpus.jsonl.
CORPUS_QUARANTINED = {
    2: "malformed JSON",
    3: "missing required field event_id",
    4: "missing required field event_type",
    5: "missing required field event_ts",
    6: "unknown event_type (got teleport)",
    7: "revenue is negative",
    8: "revenue is not a number (got lots)",
    9: "event_ts is not an ISO-8601 timestamp (got last tuesday)",
    10: "event_ts is in the future",
    11: "purchase without order_id",
    12: "no identity: customer_id and anonymous_id are both missing",
    13: "purchase without revenue",
}


def _corpus(landing: Path) -> None:
    purchase = {"event_type": "purchase", "order_id": "o1", "revenue": 10}
    write_jsonl(
        landing / "events/dt=2026-06-01/corpus.jsonl",
        [
            event("ok1"),
            '{"event_id": "broken", "event_type": ',
            event(None),
            event("no_type", event_type=None),
            event("no_ts", event_ts=None),
            event("teleport", event_type="teleport"),
            event("neg", **{**purchase, "revenue": -5}),
            event("nan", **{**purchase, "revenue": "lots"}),
            event("badts", event_ts="last tuesday"),
            event("future", event_ts="2026-06-05T00:00:00Z"),
            event("noorder", **{**purchase, "order_id": None}),
            event("anon", customer_id=None),
            event("norev", **{**purchase, "revenue": None}),
            event("ok2", event_ts="2026-06-01T12:00:00+02:00", anonymous_id="a9"),
            event("warned", country="XX", scroll_depth=150, price="cheap"),
            event("dup"),
            "   ",
            event("extra", ab_test="B", nested={"k": [1, 2]}),
        ],
    )
    write_jsonl(landing / "events/dt=2026-06-02/more.jsonl", [event("dup", D2), event("ok3", D2)])
    write_lines(landing / "events/dt=2026-06-02/empty.jsonl", [])
    full = gzip.compress(
        b"".join(json.dumps(event(f"t{i}", D2)).encode() + b"\n" for i in range(50))
    )
    (landing / "events/dt=2026-06-02/truncated.jsonl.gz").write_bytes(full[: len(full) // 2])
    write_lines(landing / "events/dt=2026-06-02/wrong_header.csv", ["id,type,when", "1,x,y"])
    write_lines(
        landing / "events/dt=2026-06-02/ok.csv",
        [
            "event_id,event_type,event_ts,customer_id,page_url",
            'csv1,page_view,2026-06-02 09:30:00,c7,"https://x.example/?a=1,b=2"',
            'csv2,search,2026-06-02T09:31:00Z,c7,"say ""hi"""',
        ],
    )
    write_lines(
        landing / "crm/dt=2026-06-01/customers.csv",
        [
            "customer_id,updated_at,email,country,email_opt_in,loyalty_program",
            "c1,2026-05-01T00:00:00Z,foo@example.com,DE,yes,gold",
            "c1,2026-05-01T00:00:00Z,foo@example.com,DE,yes,gold",
            'c1,2026-05-01T00:00:00Z,"  FOO@Example.com ",de,YES,gold',
            "c2,2026-05-02,not-an-email,US,no,",
            ",2026-05-02,nobody@example.com,US,no,",
            "c3,soon,c3@example.com,US,no,",
            "c3,2026-05-03T08:00:00-05:00,c3@example.com,ATLANTIS,maybe,",
        ],
    )


def test_bad_input_corpus_ends_where_the_issue_says(settings, landing, query):
    _corpus(landing)
    with pytest.raises(InputError) as err:
        run_ingest(settings, D2)
    # The unreadable files are named; everything else was loaded.
    assert "truncated.jsonl.gz" in str(err.value) and "wrong_header.csv" in str(err.value)

    quarantined = dict(
        query(
            "select line_number, list_aggregate(reasons, 'string_agg', '; ') from ops.quarantine"
            " where source_file = 'events/dt=2026-06-01/corpus.jsonl'"
        )
    )
    assert set(quarantined) == set(CORPUS_QUARANTINED)
    for line, reason in CORPUS_QUARANTINED.items():
        assert reason in quarantined[line], (line, quarantined[line])
    # The malformed line keeps its raw text.
    assert query("select raw_record from ops.quarantine where line_number = 2") == [
        ('{"event_id": "broken", "event_type": ',)
    ]

    loaded = {r[0] for r in query("select event_id from raw.events")}
    assert loaded == {"ok1", "ok2", "warned", "dup", "extra", "ok3", "csv1", "csv2"}
    # Duplicates across files: the first copy (earlier partition) wins, the later is counted.
    assert query("select _source_file from raw.events where event_id = 'dup'") == [
        ("events/dt=2026-06-01/corpus.jsonl",)
    ]
    assert query("select source_file, line_number from ops.duplicates where source='events'") == [
        ("events/dt=2026-06-02/more.jsonl", 1)
    ]
    # Field-level problems: record kept, field nulled, counted as a warning.
    assert query(
        "select country, scroll_depth, price from raw.events where event_id = 'warned'"
    ) == [(None, None, None)]
    warnings = dict(
        query(
            "select rule, unexpected_count from ops.validation_runs "
            "where level = 'warning' and source = 'events' and unexpected_count > 0"
        )
    )
    assert warnings == {"country_known": 1, "scroll_depth_in_range": 1, "price_numeric": 1}
    # Offsets and Z are normalised to naive UTC; naive is UTC; unknown columns kept in _extra.
    ts = dict(query("select event_id, strftime(event_ts, '%Y-%m-%d %H:%M') from raw.events"))
    assert ts["ok2"] == "2026-06-01 10:00" and ts["csv1"] == "2026-06-02 09:30"
    extra = query("select _extra from raw.events where event_id = 'extra'")[0][0]
    assert json.loads(extra) == {"ab_test": "B", "nested": {"k": [1, 2]}}
    assert query("select page_url, search_query from raw.events where event_id = 'csv1'") == [
        ("https://x.example/?a=1,b=2", None)
    ]
    # Manifest: failed files with their error, the empty file loaded with zero rows.
    manifest = {
        r[0].rsplit("/", 1)[1]: r[1:]
        for r in query("select path, status, error, rows_read from ops.load_manifest")
    }
    assert manifest["truncated.jsonl.gz"][0] == "failed"
    assert "GZIP" in manifest["truncated.jsonl.gz"][1]
    assert manifest["wrong_header.csv"][0] == "failed"
    assert (
        "lacks required column(s) event_id, event_type, event_ts" in manifest["wrong_header.csv"][1]
    )
    assert manifest["empty.jsonl"] == ("loaded", None, 0)

    # CRM: exact duplicates (after trimming and lower-casing e-mails) counted, versions kept.
    crm = query(
        "select customer_id, email, country, email_opt_in, _source_line, _extra "
        "from raw.customers order by _source_line"
    )
    assert crm == [
        ("c1", "foo@example.com", "DE", True, 2, '{"loyalty_program":"gold"}'),
        ("c2", None, "US", False, 5, None),
        ("c3", "c3@example.com", None, False, 8, None),
    ]
    assert query("select line_number from ops.duplicates where source = 'crm' order by 1") == [
        (3,),
        (4,),
    ]
    crm_reasons = dict(
        query("select line_number, reasons[1] from ops.quarantine where source = 'crm'")
    )
    assert crm_reasons == {
        6: "missing required field customer_id",
        7: "updated_at is not an ISO-8601 timestamp (got soon)",
    }
    assert query("select updated_at from raw.customers where customer_id = 'c3'")[0][0].hour == 13


def test_row_accounting_holds_for_every_file(settings, landing, query):
    _corpus(landing)
    with pytest.raises(InputError):
        run_ingest(settings, D2)
    rows = query(
        """
        select m.path, m.rows_read, m.rows_loaded, m.rows_quarantined, m.rows_duplicate,
            (select count(*) from raw.events e where e._source_file = m.path)
                + (select count(*) from raw.customers c where c._source_file = m.path),
            (select count(*) from ops.quarantine q where q.source_file = m.path),
            (select count(*) from ops.duplicates d where d.source_file = m.path)
        from ops.load_manifest m where m.status = 'loaded'
        """
    )
    assert len(rows) == 5
    for path, read, loaded, quarantined, dupes, in_raw, in_q, in_d in rows:
        assert read == loaded + quarantined + dupes, path
        assert (loaded, quarantined, dupes) == (in_raw, in_q, in_d), path
    assert sum(r[1] for r in rows) == 17 + 2 + 0 + 2 + 7


def test_a_file_that_fails_loses_no_warning_of_the_files_loaded(settings, landing, caplog):
    """A night with an unreadable file fails after loading every other file; the warnings of
    those files ("field nulled", "no column for") were the result's, and a run that fails
    has none: they were never said, and the next run, taking those files as loaded, never
    said them either. They are logged before the error."""
    _corpus(landing)
    aliases = IngestSettings(field_aliases={"events": {"country": ["geo_country"]}})
    caplog.set_level(logging.WARNING)
    with pytest.raises(InputError, match=r"truncated\.jsonl\.gz"):
        run_ingest(dataclasses.replace(settings, ingest=aliases), D2)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ingest: ")]
    assert any("field nulled on 1 row(s): price" in w and "corpus.jsonl" in w for w in said)
    assert any("file(s) have no column for country" in w and "ok.csv" in w for w in said)


def _gated_hashes(settings: Settings) -> dict:
    """The warehouse's table hashes after an ingest as of D2 that the quality gate stops."""
    with pytest.raises(InputError):
        run_ingest(settings, D2)
    return warehouse_hashes(settings.warehouse)


def test_rerun_is_idempotent_and_retries_failed_files(settings, landing, query):
    _corpus(landing)
    first = _gated_hashes(settings)
    assert _gated_hashes(settings) == first
    # Fix the unreadable files: the next run loads them and nothing else.
    write_jsonl(landing / "events/dt=2026-06-02/truncated.jsonl.gz", [event("t1", D2)], gz=True)
    (landing / "events/dt=2026-06-02/wrong_header.csv").unlink()
    result = run_ingest(settings, D2)
    assert result.rows_in == 1 and result.rows_out == 1
    assert query("select status, rows_loaded from ops.load_manifest where path like '%trunc%'") == [
        ("loaded", 1)
    ]
    again = warehouse_hashes(settings.warehouse)
    run_ingest(settings, D2)
    assert warehouse_hashes(settings.warehouse) == again


def _three_days(landing: Path) -> None:
    write_jsonl(
        landing / "events/dt=2026-06-01/a.jsonl", [event("x1"), event("shared"), event("only1")]
    )
    write_jsonl(
        landing / "events/dt=2026-06-02/a.jsonl",
        [event("shared", D2, customer_id="c2"), event("x2", D2), event("late", D2)],
    )
    write_jsonl(
        landing / "events/dt=2026-06-03/a.jsonl",
        [event("late", D3), event("shared", D3), event("x3", D3), '{"oops"'],
    )
    write_jsonl(
        landing / "events/dt=2026-06-03/b.jsonl.gz", [event("x3", D3, customer_id="c3")], gz=True
    )
    write_lines(
        landing / "crm/dt=2026-06-02/c.csv",
        ["customer_id,updated_at,email", "c1,2026-06-01,a@b.com", "c1,2026-06-01,A@B.com "],
    )
    write_lines(
        landing / "crm/dt=2026-06-03/c.csv",
        ["customer_id,updated_at,email", "c1,2026-06-01,a@b.com", "c1,2026-06-02,z@b.com"],
    )


def test_out_of_order_loading_converges_to_in_order(tmp_path, settings, landing, query):
    _three_days(landing)
    for day in (D1, D2, D3):
        run_ingest(settings, day)
    in_order = warehouse_hashes(settings.warehouse)
    assert query("select _source_file from raw.events where event_id = 'shared'") == [
        ("events/dt=2026-06-01/a.jsonl",)
    ]

    # Same files, newest partition first, then the older ones arrive.
    other = settings.with_overrides(
        warehouse=tmp_path / "wh2" / "w.duckdb", landing=tmp_path / "landing2"
    )
    shutil.copytree(landing / "events/dt=2026-06-03", other.landing / "events/dt=2026-06-03")
    shutil.copytree(landing / "crm/dt=2026-06-03", other.landing / "crm/dt=2026-06-03")
    run_ingest(other, D3)
    shutil.copytree(landing / "events/dt=2026-06-02", other.landing / "events/dt=2026-06-02")
    shutil.copytree(landing / "crm/dt=2026-06-02", other.landing / "crm/dt=2026-06-02")
    run_ingest(other, D3)
    shutil.copytree(landing / "events/dt=2026-06-01", other.landing / "events/dt=2026-06-01")
    run_ingest(other, D3)
    assert warehouse_hashes(other.warehouse) == in_order


def test_changed_file_replaces_its_rows_and_restores_shadowed_duplicates(settings, landing, query):
    _three_days(landing)
    run_ingest(settings, D3)
    assert query("select count(*) from ops.duplicates where record_key = 'shared'") == [(2,)]
    # Re-delivered day 1 without "shared": the day-2 copy becomes the loaded one.
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("x1"), event("only1b")])
    result = run_ingest(settings, D3)
    assert result.rows_in > 0
    assert query("select _source_file, customer_id from raw.events where event_id = 'shared'") == [
        ("events/dt=2026-06-02/a.jsonl", "c2")
    ]
    assert {
        r[0] for r in query("select event_id from raw.events where _source_file like '%01%'")
    } == {
        "x1",
        "only1b",
    }
    for read, loaded, quarantined, dupes in query(
        "select rows_read, rows_loaded, rows_quarantined, rows_duplicate from ops.load_manifest"
    ):
        assert read == loaded + quarantined + dupes
    # Same result as loading the new content from scratch.
    replaced = warehouse_hashes(settings.warehouse)
    settings.warehouse.unlink()
    run_ingest(settings, D3)
    assert warehouse_hashes(settings.warehouse) == replaced


def test_a_partition_redelivered_under_new_names_keeps_its_rows_and_says_so(
    settings, landing, query
):
    """A vendor re-sends day 1 under another name and deletes the first file: the first
    file's rows stay (a vanished file deletes nothing: landing zones prune old files) and
    the corrected record counts as a duplicate (its file sorts after the first). That went
    by without a word."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("e1", customer_id="c1")])
    run_ingest(settings, D1)
    (landing / "events/dt=2026-06-01/a.jsonl").unlink()
    redelivered = landing / "events/dt=2026-06-01/b.jsonl"  # sorts after a.jsonl
    write_jsonl(redelivered, [event("e1", customer_id="c9"), event("e2")])
    result = run_ingest(settings, D1)
    assert query("select event_id, customer_id from raw.events order by 1") == [
        ("e1", "c1"),
        ("e2", "c1"),
    ]
    assert [w for w in result.warnings if "gone from the landing zone" in w] == [
        "events/dt=2026-06-01: 1 new file(s) arrived while 1 file(s) loaded from this "
        "partition are gone from the landing zone (events/dt=2026-06-01/a.jsonl): their rows "
        "stay loaded, and of a record in both an old and a new file the copy of the file "
        "first in path order is kept, the other counted as a duplicate. A re-delivery that "
        "corrects records should keep the old file names (a changed file replaces its rows)"
    ]
    # A later night with nothing new for that partition says nothing more.
    assert not [w for w in run_ingest(settings, D1).warnings if "gone from" in w]


def test_unchanged_files_are_not_read_again(settings, landing, query):
    """Size and modification time as in the manifest: the file is taken as unchanged (its
    checksum is not recomputed); rehash_unchanged_files reads every file again."""
    path = write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1"), event("a2")])
    run_ingest(settings, D1)
    ((mtime,),) = query("select mtime_ns from ops.load_manifest")
    assert mtime == path.stat().st_mtime_ns
    # New content of the same size, the old modification time put back.
    write_jsonl(path, [event("b1"), event("b2")])
    os.utime(path, ns=(mtime, mtime))
    run_ingest(settings, D1)
    assert query("select event_id from raw.events order by 1") == [("a1",), ("a2",)]
    rehash = IngestSettings(rehash_unchanged_files=True)
    run_ingest(settings.with_overrides(ingest=rehash), D1)
    assert query("select event_id from raw.events order by 1") == [("b1",), ("b2",)]
    # A touched file (new modification time, same content) is checksummed and left alone;
    # its new modification time is recorded so the next run does not read it.
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    assert run_ingest(settings, D1).rows_in == 0
    assert query("select mtime_ns from ops.load_manifest") == [(mtime + 10**9,)]


def test_duckdb_runs_with_the_configured_threads_and_memory_limit(settings, landing, query):
    """[ingest] duckdb_threads and duckdb_memory_limit reach DuckDB (a larger machine is not
    held to the bench machine's 2 threads and 2 GB), and the run's record says what applied."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1"), event("a2")])
    sized = IngestSettings(duckdb_threads=1, duckdb_memory_limit="500MiB")
    result = run_ingest(settings.with_overrides(ingest=sized), D1)
    assert result.details["duckdb"] == {"threads": 1, "memory_limit": "500.0 MiB"}
    assert query("select event_id from raw.events order by 1") == [("a1",), ("a2",)]
    # The defaults: every core the process may use, at most one per GB of the 2 GB.
    write_jsonl(landing / "events/dt=2026-06-01/b.jsonl", [event("b1")])
    result = run_ingest(settings, D1)
    assert result.details["duckdb"]["threads"] == min(usable_cores(), 2)
    assert result.details["duckdb"]["memory_limit"] == "1.8 GiB"  # 2 GB, in DuckDB's units


def test_all_formats_load_the_same_typed_rows(settings, landing, query):
    import pyarrow as pa
    import pyarrow.parquet as pq

    header = "event_id,event_type,event_ts,customer_id,revenue,order_id,quantity,extra_col"
    rows = [
        ["ID1", "purchase", "2026-06-01T10:00:00+01:00", "c1", "19.99", "o1", "2", "x"],
        ["ID2", "page_view", "2026-06-01 11:00:00", "c2", "", "", "", ""],
    ]
    for fmt in ("jsonl", "jsonl.gz", "csv", "csv.gz", "parquet"):
        prefix = fmt.replace(".", "_")
        recs = [[prefix + r[0], *r[1:]] for r in rows]
        path = landing / f"events/dt=2026-06-01/f_{prefix}.{fmt}"
        names = header.split(",")
        if fmt.startswith("jsonl"):
            write_jsonl(
                path,
                [{k: v for k, v in zip(names, r, strict=True) if v} for r in recs],
                gz=fmt.endswith("gz"),
            )
        elif fmt.startswith("csv"):
            write_lines(path, [header] + [",".join(r) for r in recs], gz=fmt.endswith("gz"))
        else:
            table = pa.table({n: [r[i] or None for r in recs] for i, n in enumerate(names)})
            pq.write_table(table, path)
    run_ingest(settings, D1)
    got = query(
        """
        select distinct event_type, event_ts, customer_id, revenue, order_id, quantity, _extra
        from raw.events order by event_type desc
        """
    )
    assert len(got) == 2, got
    assert str(got[0][1]) == "2026-06-01 09:00:00" and str(got[0][3]) == "19.99"
    assert got[0][5] == 2 and json.loads(got[0][6]) == {"extra_col": "x"}
    assert query("select count(*) from raw.events") == [(10,)]


def test_quality_gate(settings, landing, query):
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(40)])
    run_ingest(settings, D1)
    assert "passed for 1 partition" in check_quality_gate(settings, D1).summary
    # Day 2: 3 of 20 records quarantined (15% > 5%).
    write_jsonl(
        landing / "events/dt=2026-06-02/a.jsonl",
        [event(f"h{i}", D2) for i in range(17)]
        + [event("bad1", D2, event_type="nope"), "{", event("bad3", D2, event_type="nope")],
    )
    run_ingest(settings, D2)
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(settings, D2)
    message = str(err.value)
    assert "events dt=2026-06-02" in message and "15.0%" in message and "5.0%" in message
    # With the names quoted: a whole export's event names to map (event_type_aliases).
    assert (
        "top reasons: unknown event_type (2; got 'nope' 2; map names with "
        "[ingest.event_type_aliases], or drop them with [ingest] ignored_event_types), "
        "malformed JSON"
    ) in message
    assert "dt=2026-06-01" not in message  # passed before, unchanged: not re-judged
    # Good rows stay loaded either way.
    assert query("select count(*) from raw.events where _partition_date = ?", [D2]) == [(17,)]
    # The failed partition keeps failing later runs until fixed...
    write_jsonl(landing / "events/dt=2026-06-03/a.jsonl", [event("k1", D3)])
    run_ingest(settings, D3)
    with pytest.raises(QualityGateError, match="dt=2026-06-02"):
        check_quality_gate(settings, D3)
    # ...and passes once the file is re-delivered clean.
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event(f"h{i}", D2) for i in range(17)])
    run_ingest(settings, D3)
    assert "passed for 2 partition" in check_quality_gate(settings, D3).summary
    assert query("select status from ops.quality_gate order by partition_date") == [
        ("passed",),
        ("passed",),
        ("passed",),
    ]


def test_the_gate_names_the_setting_that_loads_a_whole_export(settings, landing):
    """A public dataset has no event ids and writes Unix times: the first try of such an
    export fails the gate, which names the settings that load it."""
    records = [event(None, customer_id=f"c{i}") for i in range(3)] + [
        event("t1", event_ts="1780308000"),
        event("ok1"),
    ]
    write_jsonl(landing / "events/dt=2026-06-01/export.jsonl", records)
    run_ingest(settings, D1)
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(settings, D1)
    message = str(err.value)
    assert (
        "top reasons: missing required field event_id (3; without event ids: [ingest] "
        "event_id_from_record), event_ts is not an ISO-8601 timestamp (1; got '1780308000' 1; "
        "Unix times: [ingest] epoch_timestamp_unit; a spreadsheet's dates (30.06.2026, "
        "6/30/2026): [ingest] date_order)"
    ) in message
    # with the setting, a time that is still unreadable names none
    cfg = settings.with_overrides(
        ingest=dataclasses.replace(settings.ingest, epoch_timestamp_unit="s")
    )
    write_jsonl(
        landing / "events/dt=2026-06-02/export.jsonl",
        [event("t2", D2, event_ts="soon"), event("ok2", D2)],
    )
    run_ingest(cfg, D2)
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(cfg, D2)
    assert (
        "event_ts is not an ISO-8601 timestamp or a Unix time in s (1; got 'soon' 1); in"
    ) in str(err.value)


def test_gate_fails_on_share_of_events_without_identity(settings, landing):
    relaxed = settings.ingest.__class__(max_quarantine_share=0.5, max_no_identity_share=0.05)
    cfg = settings.with_overrides(ingest=relaxed)
    write_jsonl(
        landing / "events/dt=2026-06-01/a.jsonl",
        [event(f"g{i}") for i in range(9)] + [event("anon", customer_id=None)],
    )
    run_ingest(cfg, D1)
    with pytest.raises(QualityGateError, match=r"10\.0% of events have no customer_id"):
        check_quality_gate(cfg, D1)


def test_a_data_docs_write_that_fails_names_the_data_docs_and_the_rerun_writes_them(
    settings, landing
):
    """A full disk or a file-size limit met while GX writes the Data Docs: GX's own write
    raises an OSError naming no file ("[Errno 27] File too large"), so the operator of the
    night did not know what could not be written. And the rerun, with room, found the
    batch loaded, validated nothing and wrote no Data Docs: the night's stayed incomplete.
    The field the loaded batch nulled was never said either (the failing run had no
    result, the rerun read nothing): it is logged before the error."""
    import resource
    import subprocess
    import sys

    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a", country="XX")])
    args = ["ingest", "--landing", str(landing), "--warehouse", str(settings.warehouse),
            "--output", str(settings.output), "--as-of", str(D1)]  # fmt: skip
    limit = 2 * 1024 * 1024  # below GX's largest static asset (a 2.5 MB image)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cli = "import sys; from segmint.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", cli, *args],
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size,
        # no bytecode cache cut at the limit, broken for every later process
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 1, done.stderr[-2000:]
    docs = settings.output / str(D1) / "data_docs"
    assert f"error: cannot write {docs} (the run outputs folder" in done.stderr
    assert "File too large" in done.stderr and "(ulimit -f)" in done.stderr
    assert "ingest: field nulled on 1 row(s): country" in done.stderr
    # The batch itself was loaded before: a rerun with room to write finds it loaded.
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    assert con.execute("select event_id from raw.events").fetchall() == [("a",)]
    con.close()
    assert not (docs / "index.html").exists()

    # And writes the Data Docs of the batch it loaded (it validated nothing, and wrote none:
    # the night's Data Docs stayed without their index, for good).
    from segmint.cli import main

    assert main(args) == 0
    index = (docs / "index.html").read_text()
    assert "events__dt=2026-06-01__a.jsonl" in index
    pages = list((docs / "validations" / "segmint_events").rglob("*.html"))
    assert len(pages) == 1, pages


def test_gate_fails_on_a_partition_with_too_few_rows(settings, landing):
    strict = settings.ingest.__class__(min_rows_per_partition=50)
    cfg = settings.with_overrides(ingest=strict)
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(10)])
    run_ingest(cfg, D1)
    with pytest.raises(QualityGateError, match=r"10 rows, outside the expected 50-"):
        check_quality_gate(cfg, D1)


def test_cli_ingest_exit_code_names_the_file(settings, landing, capsys):
    from segmint.cli import main

    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a")])
    (landing / "events/dt=2026-06-01/b.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    args = ["ingest", "--landing", str(landing), "--warehouse", str(settings.warehouse)]
    assert main([*args, "--output", str(settings.output)]) == 1
    assert "events/dt=2026-06-01/b.jsonl.gz" in capsys.readouterr().err
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    assert con.execute("select event_id from raw.events").fetchall() == [("a",)]
    con.close()
    assert (settings.output / "2026-06-01" / "data_docs" / "index.html").is_file()


def test_sql_prefilter_agrees_with_the_gx_suite(tmp_path, settings, landing, monkeypatch):
    """With every row sent to GX (sample 1 in 1) the loader's cross-check sees the whole
    corpus: the SQL pre-filter never passes a row GX fails, and the result is the same."""
    from segmint.ingest import loader

    _corpus(landing)
    default = _gated_hashes(settings)
    monkeypatch.setattr(loader, "CHECK_SAMPLE", 1)
    everything = settings.with_overrides(warehouse=tmp_path / "all" / "w.duckdb")
    assert _gated_hashes(everything) == default


def test_staging_while_gx_still_imports_gives_the_same_tables(
    tmp_path, settings, landing, monkeypatch
):
    """While GX is importing, a batch is typed first and flagged after (two statements);
    once it is imported, in one. Both give the same tables, on the bad-input corpus (JSONL,
    CSV) and on a Parquet file."""
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq

    from segmint.ingest import loader

    _corpus(landing)
    pq.write_table(
        pa.table(
            {
                "event_id": ["P1", "P2"],
                "event_type": ["page_view", "nope"],
                "event_ts": ["2026-06-01T10:00:00Z"] * 2,
                "customer_id": ["c1", "c2"],
            }
        ),
        landing / "events/dt=2026-06-01/typed.parquet",
    )
    one_pass = _gated_hashes(settings)

    importing = threading.Event()
    blocker = threading.Thread(target=importing.wait, daemon=True)
    blocker.start()
    monkeypatch.setattr(loader, "import_in_background", lambda module: blocker)
    staged = []
    real = loader.Ingest._flagged_sql

    def flagged(self, source, parsed, line):
        staged.append(parsed)
        return real(self, source, parsed, line)

    monkeypatch.setattr(loader.Ingest, "_flagged_sql", flagged)
    two_pass = settings.with_overrides(warehouse=tmp_path / "two" / "w.duckdb")
    try:
        hashes = _gated_hashes(two_pass)
    finally:
        importing.set()
    # The first batch of each source was flagged from its typed temp table.
    assert any(p.endswith("_parsed") for p in staged), staged
    assert hashes == one_pass


def test_csv_quoted_field_spanning_lines_keeps_its_first_line(settings, landing, query):
    write_lines(
        landing / "events/dt=2026-06-01/multi.csv",
        [
            "event_id,event_type,event_ts,customer_id,search_query",
            'm1,search,2026-06-01T10:00:00Z,c1,"two',
            'lines"',
            "m2,search,2026-06-01T10:01:00Z,c1,plain",
            'm3,search,2026-06-01T10:02:00Z,c1,"never closed',
        ],
    )
    write_lines(
        landing / "events/dt=2026-06-01/simple.csv",
        ["event_id,event_type,event_ts,customer_id", "s1,login,2026-06-01T10:00:00Z,c1", ""],
    )
    run_ingest(settings, D1)
    assert query(
        "select event_id, _source_line, search_query from raw.events order by event_id"
    ) == [("m1", 2, "two\nlines"), ("m2", 4, "plain"), ("s1", 2, None)]
    assert query("select line_number, reasons from ops.quarantine") == [
        (5, ["malformed CSV: unbalanced quotes"])
    ]


def test_unknown_keys_with_a_value_are_kept_in_extra():
    """``_extra`` holds the keys outside the contract whose value is not JSON null, in
    document order; nested values are kept as they are (a null inside them too)."""
    from segmint.ingest.loader import parse_sql

    docs = [
        '{"event_id": "a", "app": "x", "n": 1.50}',
        '{"event_id": "b", "gone": null, "keep": {"k": null}, "arr": [1, null], "s": "null"}',
        '{"event_id": "c", "referrer": null}',
        '{"event_id": "d"}',
        '{"event_id": "e", "event_id": "f", "x": true}',
    ]
    con = duckdb.connect()
    con.execute("create table r as select unnest(?) as doc", [docs])
    rel = "(select 0 as _file, doc, true as _ok from r)"
    rows = con.execute(
        f"select event_id, _extra from ({parse_sql('events', rel, 'lim', 'null::TIMESTAMP')}) "
        "order by event_id"
    ).fetchall()
    extra = {event_id: json.loads(x) if x else None for event_id, x in rows}
    assert extra == {
        "a": {"app": "x", "n": 1.5},
        "b": {"keep": {"k": None}, "arr": [1, None], "s": "null"},
        "c": None,
        "d": None,
        "e": {"x": True},
    }
    assert [list(json.loads(x)) for e, x in rows if e == "b"] == [["keep", "arr", "s"]]


def test_the_summary_names_late_files_and_replaced_files(settings, landing):
    """A file of an earlier day arriving late, and a corrected file of a past day, change past
    days of the marts; the night's summary said only "loaded N rows from 2 file(s)"."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1"), event("a2")])
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event("b1", D2)])
    first = run_ingest(settings, D2)
    assert "late" not in first.summary and "replaced" not in first.summary
    assert first.details["late_partitions"] == [] and first.details["replaced_files"] == []

    write_jsonl(landing / "events/dt=2026-06-01/b.jsonl", [event("a3")])  # late
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1")])  # corrected
    write_jsonl(landing / "events/dt=2026-06-03/a.jsonl", [event("c1", D3)])  # tonight's
    result = run_ingest(settings, D3)
    assert result.summary.endswith(
        "; 1 late file(s): events dt=2026-06-01 (1); replaced the rows of 1 file(s) loaded "
        "before: events/dt=2026-06-01/a.jsonl"
    ), result.summary
    assert result.details["late_partitions"] == ["events dt=2026-06-01"]
    assert result.details["replaced_files"] == ["events/dt=2026-06-01/a.jsonl"]


def test_the_rerun_of_a_failed_night_does_not_call_its_own_files_late(settings, landing):
    """A night whose ingest failed on one of its files (a truncated upload) loads the others;
    the file delivered again is loaded by the rerun of the same night. Its day is the as-of
    date, not a past one, yet the rerun's summary said `1 late file(s): events
    dt=2026-06-02 (1)`, as if an earlier day had changed. A file of an earlier day loaded in
    that rerun is still late."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1")])
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event("b1", D2)])
    full = gzip.compress(json.dumps(event("b2", D2)).encode() + b"\n")
    cut = landing / "events/dt=2026-06-02/b.jsonl.gz"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match=r"b\.jsonl\.gz"):
        run_ingest(settings, D2)

    cut.write_bytes(full)  # delivered again, whole
    result = run_ingest(settings, D2)
    assert result.rows_out == 1
    assert "late" not in result.summary, result.summary
    assert result.details["late_partitions"] == []

    cut.write_bytes(gzip.compress(b""))  # and once more, after the night: then it is late
    write_jsonl(landing / "events/dt=2026-06-01/b.jsonl", [event("a2")])
    write_jsonl(landing / "events/dt=2026-06-03/a.jsonl", [event("c1", D3)])
    result = run_ingest(settings, D3)
    assert result.details["late_partitions"] == ["events dt=2026-06-01"], result.summary
    assert result.details["replaced_files"] == ["events/dt=2026-06-02/b.jsonl.gz"]


def test_a_zero_byte_gzip_file_is_named_in_a_warning(settings, landing):
    """A zero-byte `.gz` beside a day's other files (an upload cut off) loaded as a file
    without records, and the night said nothing: the day was short, the night published. It
    is named now, once, with what to do; a zero-byte `.jsonl` or `.parquet` is an export of
    nothing and is not named. Delivered again under the same name, the file loads."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1")])
    cut = landing / "events/dt=2026-06-01/b.jsonl.gz"
    cut.write_bytes(b"")
    (landing / "events/dt=2026-06-01/c.parquet").write_bytes(b"")
    (landing / "events/dt=2026-06-01/d.jsonl").write_bytes(b"")
    result = run_ingest(settings, D1)
    assert result.rows_out == 1
    named = [w for w in result.warnings if "0 bytes" in w]
    assert [w.split(" ", 1)[0] for w in named] == ["events/dt=2026-06-01/b.jsonl.gz"], named
    assert "a gzip file is never empty" in named[0]
    assert "Deliver it again under the same name" in named[0]

    write_jsonl(cut, [event("b1"), event("b2")], gz=True)  # delivered again, whole
    result = run_ingest(settings, D1)
    assert result.rows_out == 2
    assert not [w for w in result.warnings if "0 bytes" in w], result.warnings
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from raw.events").fetchall() == [(3,)]
    finally:
        con.close()


def test_a_night_replacing_many_files_keeps_its_airflow_xcom_small(settings, landing):
    """A reload of corrected files lists every one in the stage's details: a year of hourly
    files is thousands of paths, and the Airflow task returned them all as its XCom (stored
    in the metadata database, shown in the UI). The XCom keeps the first few and a count."""
    import json

    from segmint.ops import XCOM_LIST_ITEMS, stage_xcom

    files = [landing / f"events/dt=2026-06-01/part-{k:03}.jsonl" for k in range(60)]
    for k, path in enumerate(files):
        write_jsonl(path, [event(f"e{k}")])
    run_ingest(settings, D1)
    for k, path in enumerate(files):  # every file corrected: one more event each
        write_jsonl(path, [event(f"e{k}"), event(f"f{k}")])
    result = run_ingest(settings, D2)
    assert len(result.details["replaced_files"]) == 60

    xcom = stage_xcom(result, D2)
    replaced = xcom["details"]["replaced_files"]
    assert replaced[:XCOM_LIST_ITEMS] == result.details["replaced_files"][:XCOM_LIST_ITEMS]
    assert replaced[XCOM_LIST_ITEMS:] == ["... and 40 more (not kept in the XCom)"]
    assert "replaced the rows of 60 file(s)" in xcom["summary"]
    assert len(json.dumps(xcom)) < 4_000, len(json.dumps(xcom))


def test_a_file_of_mostly_duplicates_is_named_in_a_warning(settings, landing, query):
    """An export whose event_id is no unique id (Amplitude's is a counter per device) loaded
    a handful of events and counted the rest as duplicates without a word; a file delivered
    twice under another name is the other cause. Both are named; a few duplicates are not."""
    counter = [event(str(k % 2 + 1), customer_id=f"c{k}") for k in range(20)]
    write_jsonl(landing / "events/dt=2026-06-01/amplitude.jsonl", counter)
    some = [event(f"s{k}") for k in range(20)] + [event("s0"), event("s1")]
    write_jsonl(landing / "events/dt=2026-06-01/some.jsonl", some)
    result = run_ingest(settings, D1)
    assert query(
        "select path, rows_read, rows_loaded, rows_duplicate from ops.load_manifest order by 1"
    ) == [
        ("events/dt=2026-06-01/amplitude.jsonl", 20, 2, 18),
        ("events/dt=2026-06-01/some.jsonl", 22, 20, 2),
    ]
    assert [w for w in result.warnings if "duplicates" in w] == [
        "events/dt=2026-06-01/amplitude.jsonl: 18 of its 20 records are duplicates (event_id "
        "seen before, in this file or an earlier one): a file delivered twice, or an id that "
        "is not unique in this export (read another field as event_id: [ingest] field_aliases)"
    ]
    (landing / "events/dt=2026-06-02").mkdir()
    shutil.copy(
        landing / "events/dt=2026-06-01/some.jsonl", landing / "events/dt=2026-06-02/again.jsonl"
    )
    again = run_ingest(settings, D2)
    assert [w.split(":")[0] for w in again.warnings if "duplicates" in w] == [
        "events/dt=2026-06-02/again.jsonl"
    ]


def test_a_crm_full_snapshot_of_unchanged_customers_draws_no_duplicates_warning(
    settings, landing, query
):
    """A CRM that delivers every customer every night (a full snapshot) repeats the records of
    those that did not change: harmless (the same record, the first copy kept), and no id
    is at fault. Each night's file was named as "a file delivered twice, or an id that is
    not unique (read another field as event_id)"."""
    header = "customer_id,updated_at,email"
    unchanged = [f"c{k},2026-05-01T08:00:00Z,c{k}@x.com" for k in range(12)]
    write_lines(landing / "crm/dt=2026-06-01/customers.csv", [header, *unchanged])
    write_lines(
        landing / "crm/dt=2026-06-02/customers.csv",
        [header, *unchanged, "c99,2026-06-02T08:00:00Z,new@x.com"],
    )
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event("e1", D2)])
    result = run_ingest(settings, D2)
    assert query("select path, rows_duplicate from ops.load_manifest order by 1") == [
        ("crm/dt=2026-06-01/customers.csv", 0),
        ("crm/dt=2026-06-02/customers.csv", 12),
        ("events/dt=2026-06-02/a.jsonl", 0),
    ]
    assert [w for w in result.warnings if "duplicates" in w] == []


def test_a_batch_beyond_the_memory_limit_names_the_settings(settings, landing, query):
    """Records of tens of KB (a tracker writing 50 KB page URLs) exhaust DuckDB's memory in
    a file of a few MB. DuckDB's own message advises `SET threads` and `SET memory_limit`,
    which no user of segmint can run; the error names the file and the settings instead."""
    url = "https://shop.example/p?state=" + "x" * 50_000
    write_jsonl(
        landing / "events/dt=2026-06-01/long.jsonl",
        [event(f"l{i}", page_url=url) for i in range(400)],
    )
    small = IngestSettings(duckdb_threads=2, duckdb_memory_limit="64MB")
    with pytest.raises(duckdb.OutOfMemoryException) as caught:
        run_ingest(settings.with_overrides(ingest=small), D1)
    message = str(caught.value)
    assert "events/dt=2026-06-01/long.jsonl" in message
    assert "[ingest] duckdb_threads = 1" in message and "duckdb_memory_limit" in message
    assert "SET threads" not in message
    assert query("select count(*) from raw.events") == [(0,)]
    # As the message says: one thread and a larger limit load it.
    enough = IngestSettings(duckdb_threads=1, duckdb_memory_limit="1GB")
    assert run_ingest(settings.with_overrides(ingest=enough), D1).rows_in == 400


def test_a_parquet_file_of_long_records_loads_within_the_memory_limit(settings, landing, query):
    """A Parquet file is small however long its records (the same 50 KB page URL in every
    row compresses to nothing): 4,463 such rows (340 KB) ran out of the 2 GB default at one
    thread. Its records were typed from a table in vectors of 2,048, where each JSON
    function holds several times a vector's text (json_merge_patch ten times: 1 GB for 100
    MB); they are typed in slices of SLICE_TEXT_BYTES, and so are the rows GX validates
    (every record here is flagged for a warning). Scaled down: 2,048 records of 20 KB, one
    thread, 700MB (without slices, 1GB ran out of memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 2048
    url = "https://shop.example/p?state=" + "x" * 20_000
    path = landing / "events/dt=2026-06-01/long.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "event_id": [f"l{i}" for i in range(n)],
                "event_type": ["page_view"] * n,
                "event_ts": ["2026-06-01T10:00:00Z"] * n,
                "customer_id": [f"c{i % 7}" for i in range(n)],
                "page_url": [url] * n,
                "referrer": pa.nulls(n, pa.string()),  # a key holding null: json_keys(doc)
                "country": ["XX"] * n,  # a warning for every record: GX sees them all
                "app_version": ["1.0"] * n,  # a key outside the contract: json_merge_patch
            }
        ),
        path,
    )
    tight = IngestSettings(duckdb_threads=1, duckdb_memory_limit="700MB")
    result = run_ingest(settings.with_overrides(ingest=tight), D1)
    assert (result.rows_in, result.rows_out) == (n, n)
    assert query(
        "select count(*), count(distinct event_id), min(page_url) = max(page_url), "
        "max(length(page_url)), min(_extra) from raw.events"
    ) == [(n, n, True, len(url), '{"app_version":"1.0"}')]
    assert query("select rows_read, rows_loaded, rows_warned from ops.load_manifest") == [(n, n, n)]


@pytest.mark.parametrize("normal_head", [False, True], ids=["long", "long_after_normal"])
def test_a_jsonl_file_of_long_lines_loads_within_the_memory_limit(
    settings, landing, query, monkeypatch, caplog, normal_head
):
    """JSON lines were typed straight from their scan, 2,048 lines a vector: 8,000 lines of
    50 KB (a tracker's page state in page_url, large properties) ran out of the 2 GB default
    at two threads. A file whose head holds long lines is scanned into a table of lines and
    typed in slices of SLICE_TEXT_BYTES, as CSV and Parquet records; one whose long lines
    come after a normal head runs out of memory straight and is typed in slices then. Lines,
    quarantine, duplicates and the row accounting are kept. Scaled down: 2,048 lines of 20
    KB at two threads and 600MB (straight, 900MB ran out of memory)."""
    from segmint.ingest import loader

    monkeypatch.setattr(loader, "LONG_LINES_SAMPLE", 4096)
    caplog.set_level(logging.INFO, logger="segmint.ingest.loader")
    url = "https://shop.example/p?state=" + "x" * 20_000
    head = [event(f"n{i}") for i in range(100)] if normal_head else []
    long = [event(f"l{i}", page_url=url, properties={"cart": ["sku"] * 50}) for i in range(2048)]
    lines = [
        *map(json.dumps, head),
        *map(json.dumps, long),
        "",  # blank: no record
        json.dumps(event("l7", page_url=url)),  # a duplicate
        json.dumps(event("bad", page_url=url))[:-2],  # cut short
    ]
    write_lines(landing / "events/dt=2026-06-01/long.jsonl", lines)
    tight = IngestSettings(duckdb_threads=2, duckdb_memory_limit="600MB")
    result = run_ingest(settings.with_overrides(ingest=tight), D1)
    n = len(head) + len(long)
    assert (result.rows_in, result.rows_out) == (n + 2, n)
    assert query(
        "select rows_read, rows_loaded, rows_quarantined, rows_duplicate from ops.load_manifest"
    ) == [(n + 2, n, 1, 1)]
    assert query(
        "select count(*), count(distinct event_id), count(page_url), max(length(page_url)) "
        "from raw.events"
    ) == [(n, n, len(long), len(url))]
    assert query("select line_number, reasons from ops.quarantine") == [
        (n + 3, ["malformed JSON: the line is not a valid JSON document"])
    ]
    assert query("select record_key, line_number from ops.duplicates") == [("l7", n + 2)]
    assert query("select min(_source_line), max(_source_line) from raw.events") == [(1, n)]
    assert "typing _jl_events in" in caplog.text
    assert ("out of memory typing 1 JSON lines file(s)" in caplog.text) == normal_head


def test_records_typed_in_slices_give_the_same_tables(
    tmp_path, settings, landing, monkeypatch, caplog
):
    """Typing in slices (long records) keeps every row's line, verdict, duplicate and
    quarantine: the bad-input corpus (JSONL, CSV, Parquet, CRM), each record a slice of its
    own and every row sent to GX, gives the tables of one statement."""
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq

    from segmint.ingest import loader

    _corpus(landing)
    pq.write_table(
        pa.table(
            {
                "event_id": ["P1", "P2", "ok3"],
                "event_type": ["page_view", "nope", "page_view"],
                "event_ts": ["2026-06-02T10:00:00Z"] * 3,
                "customer_id": ["c1", "c2", "c3"],
            }
        ),
        landing / "events/dt=2026-06-02/typed.parquet",
    )
    monkeypatch.setattr(loader, "CHECK_SAMPLE", 1)
    whole = _gated_hashes(settings)
    monkeypatch.setattr(loader, "SLICE_TEXT_BYTES", 1)
    caplog.set_level(logging.INFO, logger="segmint.ingest.loader")
    sliced = settings.with_overrides(warehouse=tmp_path / "sliced" / "w.duckdb")
    assert _gated_hashes(sliced) == whole
    assert "typing _jl_events in" in caplog.text  # the JSON lines too
    # ... and typed in slices first, flagged after (while GX still imports).
    importing = threading.Event()
    blocker = threading.Thread(target=importing.wait, daemon=True)
    blocker.start()
    monkeypatch.setattr(loader, "import_in_background", lambda module: blocker)
    two_pass = settings.with_overrides(warehouse=tmp_path / "two" / "w.duckdb")
    try:
        hashes = _gated_hashes(two_pass)
    finally:
        importing.set()
    assert hashes == whole
