"""The gate's GX verdicts: made once, by the ingest stage, reused by the validate stage.

The validate stage runs in its own process under Airflow; importing GX there only to judge
a frame of a few rows costs seconds. These tests pin down that a stored verdict is reused
only while everything it depends on is unchanged.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from segmint.config import Settings
from segmint.ingest import check_quality_gate, run_ingest
from segmint.stages import BeforeFirstDeliveryError, InputError, QualityGateError
from tests.include.ingest.conftest import D1, D2, D3, event, write_jsonl, write_lines

_VALIDATE_IN_A_NEW_PROCESS = """
import json, sys
from datetime import date
from pathlib import Path
from segmint.config import Settings
from segmint.ingest import check_quality_gate
settings = Settings().with_overrides(
    warehouse=Path(sys.argv[1]), landing=Path(sys.argv[2]), output=Path(sys.argv[3])
)
result = check_quality_gate(settings, date.fromisoformat(sys.argv[4]))
print(json.dumps({
    "summary": result.summary,
    "details": result.details,
    "gx_imported": "great_expectations" in sys.modules,
}))
"""


def _validate_in_a_new_process(settings: Settings, as_of) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _VALIDATE_IN_A_NEW_PROCESS,
            str(settings.warehouse),
            str(settings.landing),
            str(settings.output),
            as_of.isoformat(),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_validate_reuses_the_verdicts_ingest_made_without_importing_gx(settings, landing, query):
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(40)])
    ingested = run_ingest(settings, D1)
    assert ingested.details["partitions_judged"] == 1
    got = _validate_in_a_new_process(settings, D1)
    assert got["gx_imported"] is False
    assert got["details"] == {"partitions_checked": 1, "judged_by_gx_here": 0}
    assert "passed for 1 partition" in got["summary"]
    assert query("select source, failing_rules from ops.gate_judgements") == [("events", [])]


def test_a_stored_failing_verdict_still_fails_the_gate(settings, landing, query):
    # 3 of 20 records quarantined (15% > 5%): ingest judges, validate enforces.
    write_jsonl(
        landing / "events/dt=2026-06-02/a.jsonl",
        [event(f"h{i}", D2) for i in range(17)]
        + [event("bad1", D2, event_type="nope"), "{", event("bad3", D2, event_type="nope")],
    )
    run_ingest(settings, D2)
    assert query("select failing_rules from ops.gate_judgements") == [(["quarantined_share"],)]
    with pytest.raises(QualityGateError, match=r"15\.0% of its 20 rows were quarantined"):
        check_quality_gate(settings, D2)
    # Without the stored verdicts GX judges again, the same way.
    con = duckdb.connect(str(settings.warehouse))
    con.execute("delete from ops.gate_judgements")
    con.close()
    with pytest.raises(QualityGateError, match=r"15\.0% of its 20 rows were quarantined"):
        check_quality_gate(settings, D2)
    assert query("select failing_rules from ops.gate_judgements") == [(["quarantined_share"],)]


def test_changed_thresholds_are_judged_again_by_gx(settings, landing):
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(10)])
    run_ingest(settings, D1)
    # Judged under the default thresholds (passed); a stricter gate must not reuse that.
    strict = settings.with_overrides(ingest=settings.ingest.__class__(min_rows_per_partition=50))
    with pytest.raises(QualityGateError, match=r"10 rows, outside the expected 50-"):
        check_quality_gate(strict, D1)
    result = check_quality_gate(settings, D1)
    assert result.details == {"partitions_checked": 1, "judged_by_gx_here": 1}


def test_a_missing_as_of_delivery_warns_or_fails_as_configured(settings, landing):
    """The as-of date's events never arrived: by default the night goes on with a warning;
    with require_as_of_events it stops at the gate, naming the date, before anything stale
    is published."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(5)])
    run_ingest(settings, D2)
    result = check_quality_gate(settings, D2)
    # How stale the feed is: every customer drifts toward 'churned' while it is.
    assert result.warnings == [
        f"no events files for the as-of date {D2}; the newest events partition is "
        f"dt={D1}, 1 day(s) before it"
    ]
    strict = settings.with_overrides(ingest=settings.ingest.__class__(require_as_of_events=True))
    with pytest.raises(QualityGateError, match=rf"events dt={D2}: no events file for the as-of"):
        check_quality_gate(strict, D2)
    # The delivery lands late; the rerun loads it and passes.
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event("late", D2)])
    run_ingest(strict, D2)
    assert check_quality_gate(strict, D2).warnings == []


def test_a_day_without_events_files_has_a_missing_row_until_its_files_land(
    settings, landing, query
):
    """ops.quality_gate is what an analyst reads to trust a day: a day of the events feed
    without any file had no row at all, so "no data arrived" looked like "not checked". Every
    day from the first events partition to the as-of date without a file is now 'missing'
    (CRM days without a file are normal: upserts); the day's files landing later replace it
    with their verdict."""
    d4 = date(2026, 6, 4)
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"a{i}") for i in range(5)])
    write_jsonl(landing / "events/dt=2026-06-03/a.jsonl", [event(f"c{i}", D3) for i in range(5)])
    write_lines(landing / "crm/dt=2026-06-03/c.csv", ["customer_id,updated_at"])
    run_ingest(settings, d4)
    check_quality_gate(settings, d4)
    gate = "select source, partition_date, status, rows_read from ops.quality_gate order by 2, 1"
    assert query(gate) == [
        ("events", D1, "passed", 5),
        ("events", D2, "missing", 0),
        ("crm", D3, "passed", 0),
        ("events", D3, "passed", 5),
        ("events", d4, "missing", 0),
    ]
    (message,) = query("select message from ops.quality_gate where partition_date = ?", [D2])[0]
    assert message.startswith("no events file has landed for this day")
    assert "events/dt=2026-06-02/" in message

    # The late file of 2026-06-02 lands; the next night judges it and the row is its verdict.
    write_jsonl(landing / "events/dt=2026-06-02/late.jsonl", [event("b0", D2)])
    run_ingest(settings, d4)
    check_quality_gate(settings, d4)
    assert query(gate) == [
        ("events", D1, "passed", 5),
        ("events", D2, "passed", 1),
        ("crm", D3, "passed", 0),
        ("events", D3, "passed", 5),
        ("events", d4, "missing", 0),
    ]


def test_a_minimum_count_keeps_one_bad_record_of_a_small_partition_from_stopping_the_night(
    settings, landing, query
):
    """1 bad record of 5 is 20%: by default the night stops. With min_quarantined_rows = 2
    GX does not judge the share of a partition with fewer quarantined rows: it passes with a
    warning, and the record is quarantined all the same; 2 bad records still stop it."""
    write_jsonl(
        landing / "events/dt=2026-06-01/small.jsonl",
        [event(f"s{i}") for i in range(4)] + [event("bad1", event_type="nope")],
    )
    run_ingest(settings, D1)
    with pytest.raises(QualityGateError, match=r"20\.0% of its 5 rows were quarantined"):
        check_quality_gate(settings, D1)

    lenient = settings.with_overrides(ingest=settings.ingest.__class__(min_quarantined_rows=2))
    result = check_quality_gate(lenient, D1)
    assert result.details == {"partitions_checked": 1, "judged_by_gx_here": 1}
    assert result.warnings == [
        f"events dt={D1}: 20.0% of its 5 rows were quarantined (threshold 5.0%), but only 1, "
        "fewer than [ingest] min_quarantined_rows (2): not stopping the night"
    ]
    ((status, message),) = query("select status, message from ops.quality_gate")
    assert status == "passed" and "fewer than [ingest] min_quarantined_rows (2)" in message
    assert query("select line_number, reasons from ops.quarantine") == [
        (5, ["unknown event_type (got nope)"])
    ]

    write_jsonl(
        landing / "events/dt=2026-06-02/small.jsonl",
        [event(f"t{i}", D2) for i in range(8)] + [event("bad2", D2, event_type="nope"), "{"],
    )
    run_ingest(lenient, D2)
    with pytest.raises(QualityGateError, match=rf"dt={D2}: 20\.0% of its 10 rows were quar"):
        check_quality_gate(lenient, D2)


def test_a_failed_file_deleted_and_redelivered_under_a_new_name_lets_the_gate_pass(
    settings, landing, query
):
    """A truncated upload fails its night; the operator deletes it and the exporter sends the
    day again under a new name. The failed file loaded nothing, so once it is gone from the
    landing zone its 'failed' manifest row must not keep failing the gate night after night
    (it did: "unreadable file(s): events/dt=.../part-1.jsonl.gz", a file nobody can fix)."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(10)])
    full = gzip.compress(
        "".join(json.dumps(event(f"t{i}")) + "\n" for i in range(50)).encode(), mtime=0
    )
    truncated = landing / "events/dt=2026-06-01/part-1.jsonl.gz"
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match=r"part-1\.jsonl\.gz"):
        run_ingest(settings, D1)
    with pytest.raises(QualityGateError, match="unreadable file"):
        check_quality_gate(settings, D1)

    truncated.unlink()
    (landing / "events/dt=2026-06-01/part-1-retry.jsonl.gz").write_bytes(full)
    result = run_ingest(settings, D1)
    assert result.rows_out == 50
    assert any(
        "events/dt=2026-06-01/part-1.jsonl.gz" in w and "gone from the landing zone" in w
        for w in result.warnings
    ), result.warnings
    assert "passed for 1 partition" in check_quality_gate(settings, D1).summary
    assert query("select path, status from ops.load_manifest order by path") == [
        ("events/dt=2026-06-01/a.jsonl", "loaded"),
        ("events/dt=2026-06-01/part-1-retry.jsonl.gz", "loaded"),
    ]


def _partition_failed_by(settings, landing: Path, name: str) -> Path:
    """17 good events and, in the file ``name``, 3 malformed lines: 15% quarantined fails
    the partition, and the gate names the file with its count."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(17)])
    bad = write_jsonl(landing / f"events/dt=2026-06-01/{name}", ["{", "{", "{"])
    run_ingest(settings, D1)
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(settings, D1)
    assert f"in events/dt=2026-06-01/{name} (3)" in str(err.value)
    return bad


def test_the_gate_names_the_files_behind_a_quarantined_share_and_those_gone(
    settings, landing, query
):
    """A stray file of bad records fails its partition. The message named only the partition
    and the reasons, and after the operator deleted the file (whose rows stay loaded, by the
    landing-zone contract) every rerun failed the same way with nothing saying why: the gate
    names the files, says which are gone, and an empty file under the name withdraws them."""
    stray = _partition_failed_by(settings, landing, "stray.jsonl")

    stray.unlink()
    run_ingest(settings, D1)
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(settings, D1)
    assert "stray.jsonl (3, gone from the landing zone: its rows stay loaded" in str(err.value)

    stray.write_bytes(b"")
    run_ingest(settings, D1)
    assert "passed for 1 partition" in check_quality_gate(settings, D1).summary
    assert query("select count(*) from ops.quarantine") == [(0,)]


def test_the_gate_says_when_a_fixed_file_is_not_loaded_yet(settings, landing, query):
    """A bad file fails the gate; the operator fixes the file and, under Airflow, clears the
    failed `validate` task. The gate judged the old rows again and repeated "fix or
    re-deliver the files, then rerun" word for word (seen under `make airflow`), about a
    file already fixed: only ingest loads the new content. It says so now."""
    bad = _partition_failed_by(settings, landing, "b.jsonl")

    write_jsonl(bad, [event(f"b{i}") for i in range(3)])
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(settings, D1)
    assert "b.jsonl (3, changed since it was loaded: these are its old rows" in str(err.value)
    assert "clear the night's `ingest` task with its downstream tasks" in str(err.value)

    run_ingest(settings, D1)
    assert "passed for 1 partition" in check_quality_gate(settings, D1).summary


def test_a_day_withdrawn_by_delivering_its_file_again_empty_passes_with_a_warning(
    settings, landing, query
):
    """The landing-zone contract withdraws what a file loaded when it is delivered again
    empty. When that file was the day's only one, the gate refused the day ("0 rows, outside
    the expected 1-50000000") on this night and every later one, and only
    min_rows_per_partition = 0 (no check left for an export that wrote nothing) let the
    nights go on. A day that held rows and now holds none, every file of it read, is a
    withdrawal: it passes, named in a warning; a new day delivered empty still fails."""
    day1 = write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("w1"), event("w2")])
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event("x1", D2)])
    run_ingest(settings, D2)
    check_quality_gate(settings, D2)

    day1.write_bytes(b"")
    run_ingest(settings, D2)
    result = check_quality_gate(settings, D2)
    assert result.warnings == [
        "events dt=2026-06-01: withdrawn: its files were delivered again without records, so "
        "it holds 0 rows (it held 2 when last judged); if that was not meant, deliver the "
        "day's files again"
    ]
    assert query("select event_id from raw.events") == [("x1",)]
    assert query("select status from ops.quality_gate where partition_date = ?", [D1]) == [
        ("passed",)
    ]

    # The as-of day withdrawn is judged again every night, and stays withdrawn.
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [])
    run_ingest(settings, D2)
    assert "passed for" in check_quality_gate(settings, D2).summary
    assert check_quality_gate(settings, D2).warnings == [
        "events dt=2026-06-02: withdrawn: its files were delivered again without records, so "
        "it holds 0 rows; if that was not meant, deliver the day's files again"
    ]

    # A day whose first delivery is empty is an export that wrote nothing.
    write_jsonl(landing / "events/dt=2026-06-03/a.jsonl", [])
    run_ingest(settings, date(2026, 6, 3))
    with pytest.raises(QualityGateError, match=r"events dt=2026-06-03: 0 rows, outside the"):
        check_quality_gate(settings, date(2026, 6, 3))


def test_a_day_of_no_record_names_its_files_and_their_sizes(settings, landing):
    """An events day whose only file is 0 bytes (an upload cut off) failed the gate naming
    the day alone ("events dt=2026-06-02: 0 rows, outside the expected 1-50000000"): under
    Airflow the file was named only in the ingest task's log. The failure names the files
    that loaded no record and their sizes, and what to do."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("a1")])
    (landing / "events/dt=2026-06-02").mkdir(parents=True)
    (landing / "events/dt=2026-06-02/events_00.jsonl.gz").write_bytes(b"")
    write_jsonl(landing / "events/dt=2026-06-02/events_01.jsonl", [])
    run_ingest(settings, D2)
    with pytest.raises(QualityGateError) as err:
        check_quality_gate(settings, D2)
    assert (
        "events dt=2026-06-02: 0 rows, outside the expected 1-50000000 (its file(s) without a "
        "record: events/dt=2026-06-02/events_00.jsonl.gz, 0 bytes; "
        "events/dt=2026-06-02/events_01.jsonl, 0 bytes (a 0-byte file: an upload cut off?); "
        "deliver the day's files again under the same names)"
    ) in str(err.value)

    write_jsonl(landing / "events/dt=2026-06-02/events_00.jsonl.gz", [event("b1", D2)], gz=True)
    run_ingest(settings, D2)
    assert "quality gate passed" in check_quality_gate(settings, D2).summary


def test_a_crm_day_without_a_record_passes_with_a_warning(settings, landing, query):
    """A CRM export of changes only writes its header alone on a day no customer changed.
    The gate stopped the night on it ("crm dt=2026-06-02: 0 rows, outside the expected
    1-50000000"), though CRM records are upserts and a day without one changes nothing. It
    passes with a warning; an events day without a record still fails."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event("e1")])
    write_jsonl(landing / "events/dt=2026-06-02/a.jsonl", [event("e2", D2)])
    write_lines(
        landing / "crm/dt=2026-06-01/delta.csv", ["customer_id,updated_at", "c1,2026-06-01"]
    )
    write_lines(landing / "crm/dt=2026-06-02/delta.csv", ["customer_id,updated_at"])
    run_ingest(settings, D2)
    result = check_quality_gate(settings, D2)
    crm_day = (
        "crm dt=2026-06-02: no customer record: nothing changes (a delta export on a day no "
        "customer changed; if the export should have held records, deliver it again)"
    )
    assert result.warnings == [crm_day]
    # Judged again (the as-of day is, every run): the same words.
    assert check_quality_gate(settings, D2).warnings == [crm_day]
    assert query("select customer_id from raw.customers") == [("c1",)]


def test_a_night_before_the_first_delivery_fails_at_the_gate_naming_it(
    settings, landing, query, capsys
):
    """A backfill that starts before the shop's first delivery ingested nothing, ran the
    whole transform and failed only at segment with "check --as-of", a flag an Airflow log
    has no use for. It now stops at the gate, before the transform, naming the first
    partition and what to do, on the command line and in Airflow."""
    from segmint.cli import main
    from segmint.ops import in_airflow

    first = write_jsonl(landing / "events/dt=2026-06-11/a.jsonl", [event("a")])
    write_jsonl(landing / "crm/dt=2026-06-12/c.csv", [])
    code = main(
        [
            "run",
            "--landing",
            str(landing),
            "--warehouse",
            str(settings.warehouse),
            "--output",
            str(settings.output),
            "--as-of",
            "2026-06-01",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert (
        "nothing is loaded up to the as-of date 2026-06-01: the first partition delivered is "
        f"dt=2026-06-11 ({first.parent}), after it; run the nights from 2026-06-11 on "
        "(segmint run --as-of 2026-06-11" in err
    )
    assert "ingest     loaded 0 rows" in out and "transform" not in out
    assert query("select count(*) from information_schema.tables where table_schema = 'marts'")[
        0
    ] == (0,)  # the transform never ran
    with pytest.raises(BeforeFirstDeliveryError) as info:
        check_quality_gate(settings, D1)
    airflow = in_airflow(info.value, "segmint_nightly")
    assert "--as-of" not in airflow and "segmint run" not in airflow
    assert "airflow backfill create --dag-id segmint_nightly --from-date 2026-06-11" in airflow
    # Nights loaded later do not hide it (a backfill into a warehouse that ran 06-11).
    run_ingest(settings, date(2026, 6, 11))
    with pytest.raises(
        BeforeFirstDeliveryError, match="first partition delivered is dt=2026-06-11"
    ):
        check_quality_gate(settings, D1)
    assert check_quality_gate(settings, date(2026, 6, 11)).summary.startswith("quality gate passed")


def test_a_night_on_an_empty_landing_zone_says_where_the_files_go(settings, landing):
    with pytest.raises(BeforeFirstDeliveryError) as info:
        check_quality_gate(settings, D1)
    message = str(info.value)
    assert f"the landing zone {landing} holds no data file" in message
    assert f"deliver the files to {landing}/events/dt=YYYY-MM-DD/" in message


def test_a_night_with_only_crm_files_passes_and_says_the_events_export_is_late(settings, landing):
    """A landing zone holding the CRM's files of the night and no events: the night is
    published (the CRM's changes, a consent withdrawn, must reach tonight's audiences), and
    the warning said only "no events files", as on a night nothing landed. It now says the
    CRM did land, so the events export alone is late or stopped."""
    write_jsonl(landing / "events/dt=2026-06-01/a.jsonl", [event(f"g{i}") for i in range(5)])
    write_lines(
        landing / "crm/dt=2026-06-02/delta.csv", ["customer_id,updated_at", "c1,2026-06-02"]
    )
    run_ingest(settings, D2)
    assert check_quality_gate(settings, D2).warnings == [
        f"no events files for the as-of date {D2}; the newest events partition is dt={D1}, "
        "1 day(s) before it; the CRM files of that day did land: the events export alone is "
        "late or stopped (tonight's consent and profile changes go out; visits and orders "
        "of the day are missing from the features)"
    ]
    strict = settings.with_overrides(ingest=settings.ingest.__class__(require_as_of_events=True))
    with pytest.raises(QualityGateError, match=rf"events dt={D2}: no events file for the as-of"):
        check_quality_gate(strict, D2)
