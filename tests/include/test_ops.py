"""ops.pipeline_runs bookkeeping and the as-of date of a DAG run."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from segmint.ops import TaskRun, command_hint, record_task_run, resolve_as_of
from segmint.stages import SegmintError
from tests.db import held_open


def test_as_of_is_the_logical_date_in_utc() -> None:
    # a scheduled run of a daily data-interval timetable: logical date = interval start
    start = datetime(2026, 6, 30, tzinfo=UTC)
    assert resolve_as_of(start, start) == date(2026, 6, 30)
    # `airflow dags test DAG 2026-06-30`: logical date 06-30, interval inferred as 06-29..06-30
    assert resolve_as_of(start, datetime(2026, 6, 29, tzinfo=UTC)) == date(2026, 6, 30)
    # a logical date given in another time zone is converted to UTC first
    tokyo = timezone(timedelta(hours=9))
    assert resolve_as_of(datetime(2026, 7, 1, 8, 0, tzinfo=tokyo)) == date(2026, 6, 30)


def test_conf_as_of_wins_and_is_validated() -> None:
    logical = datetime(2026, 6, 30, tzinfo=UTC)
    assert resolve_as_of(logical, None, {"as_of": "2026-05-01"}) == date(2026, 5, 1)
    assert resolve_as_of(logical, None, {"as_of": None}) == date(2026, 6, 30)
    with pytest.raises(SegmintError, match="not a date"):
        resolve_as_of(logical, None, {"as_of": "yesterday"})


def test_run_without_logical_date_uses_interval_or_says_what_to_do() -> None:
    assert resolve_as_of(None, datetime(2026, 6, 1, tzinfo=UTC)) == date(2026, 6, 1)
    with pytest.raises(SegmintError, match='"as_of"'):
        resolve_as_of(None, None, {})


def test_a_manual_run_triggered_now_builds_the_last_complete_day() -> None:
    """Airflow 3's Trigger form (and `dags test DAG` without a date) gives the moment as the
    logical date: 14:03 of a day not over. The run builds the day before, the night the
    schedule ran last; a night given as 00:00 UTC, a moment of a day over by the trigger,
    and scheduled or backfill runs keep their logical date's day."""
    now = datetime(2026, 12, 7, 14, 3, 11, tzinfo=UTC)
    manual = {"run_type": "manual", "run_after": now + timedelta(seconds=20)}
    assert resolve_as_of(now, datetime(2026, 12, 6, tzinfo=UTC), **manual) == date(2026, 12, 6)
    # the form opened before midnight, sent after: the day it names is over
    late = datetime(2026, 12, 6, 23, 59, 50, tzinfo=UTC)
    assert resolve_as_of(late, run_type="manual", run_after=now) == date(2026, 12, 6)
    # a date given: -l 2026-07-08, dags test DAG 2026-07-08, or today at 00:00
    for night in (datetime(2026, 7, 8, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)):
        assert resolve_as_of(night, **manual) == night.date()
    # a past day picked in the form, the time of day left as it filled in
    assert resolve_as_of(datetime(2026, 7, 8, 14, 3, tzinfo=UTC), **manual) == date(2026, 7, 8)
    # conf as_of wins
    assert resolve_as_of(now, None, {"as_of": "2026-12-07"}, **manual) == date(2026, 12, 7)
    # scheduled and backfill runs: unchanged (their logical dates are 00:00 UTC anyway)
    for kind in ("scheduled", "backfill"):
        assert resolve_as_of(now, run_type=kind, run_after=now) == date(2026, 12, 7)
    # a moment given in another time zone, in the same UTC day as the trigger
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2026, 12, 7, 23, 3, tzinfo=tokyo)  # 14:03 UTC
    assert resolve_as_of(local, **manual) == date(2026, 12, 6)


def rows(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select run_id, task_id, status, try_number, duration_s, rows_in, rows_out, error "
            "from ops.pipeline_runs order by run_id, task_id"
        ).fetchall()
    finally:
        con.close()


def test_one_row_per_dag_run_and_task_latest_attempt_wins(tmp_path: Path) -> None:
    warehouse = tmp_path / "segmint.duckdb"
    start = datetime(2026, 7, 1, 0, 5, tzinfo=UTC)
    base = {"dag_id": "segmint_nightly", "as_of_date": date(2026, 6, 30), "started_at": start}

    record_task_run(
        warehouse,
        TaskRun(
            **base,
            run_id="r1",
            task_id="ingest",
            status="up_for_retry",
            try_number=1,
            ended_at=start + timedelta(seconds=3),
            error="IOException: Could not set lock on file",
        ),
    )
    record_task_run(
        warehouse,
        TaskRun(
            **base,
            run_id="r1",
            task_id="ingest",
            status="success",
            try_number=2,
            ended_at=start + timedelta(seconds=12.5),
            rows_in=100,
            rows_out=98,
        ),
    )
    record_task_run(
        warehouse,
        TaskRun(**base, run_id="r1", task_id="validate", status="failed", try_number=1),
    )
    record_task_run(warehouse, TaskRun(**base, run_id="r2", task_id="ingest", status="success"))

    assert rows(warehouse) == [
        ("r1", "ingest", "success", 2, 12.5, 100, 98, None),
        ("r1", "validate", "failed", 1, None, None, None, None),
        ("r2", "ingest", "success", None, None, None, None, None),
    ]


def test_dbt_run_summary_counts_statuses_and_slowest_nodes(tmp_path: Path) -> None:
    import json

    from segmint.ops import dbt_run_summary

    path = tmp_path / "run_results.json"
    nodes = [
        ("model.segmint.orders", "success", 2),
        ("model.segmint.sessions", "success", 5),
        ("test.segmint.unique_orders", "pass", 0.1),
        ("test.segmint.not_null_x", "fail", 0.2),
        ("unit_test.segmint.customer_rule_segments.rfm", "pass", 0.1),
        ("seed.segmint.currency_rates", "success", 0.3),
        # The project's on-run-end hook: a result, not a node of the run.
        ("operation.segmint.segmint-on-run-end-0", "success", 0.01),
    ]
    results = [{"unique_id": u, "status": s, "execution_time": t} for u, s, t in nodes]
    path.write_text(json.dumps({"elapsed_time": 12.34, "results": results}))
    summary = dbt_run_summary(path, slowest=2)
    assert summary["nodes"] == 6
    assert summary["by_status"] == {"success": 3, "pass": 2, "fail": 1}
    assert summary["hooks"] == {"success": 1}
    assert [n["node"] for n in summary["slowest"]] == [
        "model.segmint.sessions",
        "model.segmint.orders",
    ]
    assert summary["elapsed_s"] == 12.34


def test_only_faults_of_the_environment_are_retried() -> None:
    from segmint.config import ConfigError
    from segmint.ops import is_retryable
    from segmint.stages import DiskFaultError, QualityGateError

    lock = None
    holder = duckdb.connect(":memory:")
    try:
        holder.execute("select * from read_csv('/nonexistent/segmint.csv')")
    except duckdb.IOException as exc:
        lock = exc
    finally:
        holder.close()
    assert is_retryable(lock)
    assert is_retryable(OSError("disk full"))
    assert is_retryable(MemoryError())
    assert is_retryable(DiskFaultError("dbt build failed for as-of 2026-06-30: cannot write"))
    assert not is_retryable(QualityGateError("12% quarantined"))
    assert not is_retryable(ConfigError("bad key"))
    assert not is_retryable(AttributeError("'Settings' object has no attribute 'x'"))
    assert not is_retryable(ModuleNotFoundError("segmint.nothing"))


def test_disk_faults_are_retried_and_told_as_what_to_do(tmp_path: Path) -> None:
    """A full disk, a file-size limit, a read-only or forbidden folder: DuckDB's
    FatalException of a checkpoint that found no room was not retried, and neither it nor
    an OSError said more than "unexpected ..."."""
    import errno

    from segmint.config import Settings
    from segmint.ops import disk_fault_message, is_retryable

    settings = Settings(warehouse=tmp_path / "wh" / "segmint.duckdb", output=tmp_path / "out")
    full = duckdb.FatalException(
        "FATAL Error: Failed to create checkpoint because of error: Could not write file "
        f'"{settings.warehouse}": No space left on device'
    )
    assert is_retryable(full)
    message = disk_fault_message(full, settings)
    assert message.startswith(
        f"cannot write {settings.warehouse} (the warehouse, --warehouse or SEGMINT_WAREHOUSE): "
        f"No space left on device; free space on the file system of {tmp_path} ("
    )
    assert message.endswith(
        "then run the same command again (what was committed before the fault is kept)"
    )
    read_only = duckdb.IOException(
        f'IO Error: Cannot open file "{settings.published_warehouse}": Read-only file system'
    )
    assert disk_fault_message(read_only, settings).startswith(
        f"cannot write {settings.published_warehouse} (the published copy, beside the "
        f"warehouse): Read-only file system; the file system of {tmp_path} is mounted read-only"
    )
    # DuckDB's COPY of an export: the message inside JSON, the hidden temporary file named
    export = tmp_path / "exports" / "vip.csv"
    copy = duckdb.IOException(
        "IO Error: Async write failed for range [offset=0, size=11]: "
        '{"exception_type":"IO","exception_message":"Could not write file '
        f'\\"{export.parent}/.vip.csv.tmp\\": No space left on device","errno":"28"}}'
    )
    assert disk_fault_message(copy, settings).startswith(
        f"cannot write {export}: No space left on device; free space on the file system of "
        f"{tmp_path} ("
    )
    report = settings.output / "2026-06-30" / "report.html"
    denied = PermissionError(errno.EACCES, "Permission denied", str(report))
    assert disk_fault_message(denied, settings).startswith(
        f"cannot use {report} (the run outputs folder, --output or SEGMINT_OUTPUT): "
        f"Permission denied; let this user ("
    )
    quota = OSError(errno.EDQUOT, "Disk quota exceeded")  # a write() names no file
    wrapped = RuntimeError("export failed")
    wrapped.__cause__ = quota
    assert disk_fault_message(wrapped).startswith("cannot write a file: Disk quota exceeded")
    # dbt's output, as a child process prints it
    from segmint.ops import disk_fault_in_text

    manifest = tmp_path / "dbt" / "target" / "manifest.json"
    printed = f"  OSError: [Errno 27] File too large: '{manifest}'\n  Message: 'Flushing'"
    assert disk_fault_in_text(printed) == (errno.EFBIG, str(manifest))
    assert disk_fault_in_text("OSError: [Errno 28] No space left on device") == (
        errno.ENOSPC,
        None,
    )
    assert disk_fault_in_text("Catalog Error: Table with name x does not exist!") is None
    # Not a disk fault: no hint, and bugs stay bugs.
    assert disk_fault_message(OSError(errno.ECONNRESET, "Connection reset by peer")) == ""
    assert disk_fault_message(duckdb.IOException('Cannot open file "x": No such file')) == ""
    assert disk_fault_message(KeyError("segment")) == ""


def test_a_stage_that_waited_out_another_segmint_process_is_retried(tmp_path: Path) -> None:
    """Another segmint process (an export, an erasure, `segmint run` by hand) keeping the
    working warehouse past the wait is transient: its error says "run it again when that is
    done", and the task was failed at once as "not retried (it would fail the same way)"."""
    import fcntl
    import os

    from segmint.ops import is_retryable
    from segmint.warehouse import exclusive, lock_path

    warehouse = tmp_path / "segmint.duckdb"
    lock = lock_path(warehouse)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o664)
    os.pwrite(fd, b"export of audience vip (pid 4242)\n", 0)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: flock makes it wait like a process
    try:
        with pytest.raises(SegmintError) as info, exclusive(warehouse, "stage ingest", wait_s=0.3):
            pass
    finally:
        os.close(fd)
    assert "is in use by export of audience vip (pid 4242)" in str(info.value)
    assert is_retryable(info.value)


def _refused_write(warehouse: Path, statements: list[str], room: int) -> duckdb.Error:
    """What DuckDB raises when the disk refuses its write: a real file-size limit (the
    process's RLIMIT_FSIZE, as `ulimit -f` sets; Python ignores SIGXFSZ, so the write fails
    with EFBIG as it fails with ENOSPC on a full disk) ``room`` bytes past the file.

    The limit holds for every file this process writes while it is set: a module imported
    meanwhile would leave its .pyc cut short in the virtualenv (a short write is no error),
    so no bytecode is written until it is lifted."""
    import resource
    import sys

    with duckdb.connect(str(warehouse)) as con:  # a file of a few blocks (about 270 KB)
        con.execute("create table a as select 1 as x")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    con = duckdb.connect(str(warehouse))
    bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    resource.setrlimit(resource.RLIMIT_FSIZE, (warehouse.stat().st_size + room, hard))
    try:
        for sql in statements:
            con.execute(sql)
    except duckdb.Error as exc:
        return exc
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        sys.dont_write_bytecode = bytecode
        with contextlib.suppress(duckdb.Error):
            con.close()
    raise AssertionError("the write fitted: nothing was refused")


def test_a_full_disk_met_while_committing_or_checkpointing_is_retried_and_says_so(
    tmp_path: Path,
) -> None:
    """DuckDB reports a write the disk refused as an IOException only where it writes: met
    while committing or checkpointing (publish checkpoints first) it is a
    TransactionException or a FatalException, and the night failed as "not retried (it
    would fail the same way)", with no word of the disk, while a full disk at any other
    place was retried. Both come from a real file-size limit here."""
    from segmint.config import Settings
    from segmint.ops import disk_fault_message, is_retryable

    rows = "create table t as select range as i, md5(range::varchar) as s from range({})"
    committed = _refused_write(tmp_path / "a.duckdb", [rows.format(300_000)], 4096)
    checkpoint = _refused_write(tmp_path / "b.duckdb", [rows.format(5_000), "checkpoint"], 4096)
    assert type(committed).__name__ == "TransactionException", committed
    assert type(checkpoint).__name__ == "FatalException", checkpoint
    settings = Settings(warehouse=tmp_path / "segmint.duckdb")
    for exc in (committed, checkpoint):
        assert "File too large" in str(exc)
        assert is_retryable(exc)
        message = disk_fault_message(exc, settings)
        assert message.startswith("cannot write ") and ": File too large; " in message, message
    assert not is_retryable(duckdb.TransactionException("Conflict on tuple deletion"))
    assert disk_fault_message(duckdb.IOException("No files found that match"), settings) == ""


def test_a_failure_says_which_night_analysts_still_read(tmp_path: Path, monkeypatch) -> None:
    """Every failure said "Yesterday's published warehouse ... is unchanged": on the third
    night a dbt test failed in a row, the published copy held the night four days before,
    and on a first night there was no copy at all. The line now says which night it holds."""
    from types import SimpleNamespace

    from segmint.ops import failure_message

    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    monkeypatch.setenv("SEGMINT_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("SEGMINT_CONFIG", raising=False)
    published = warehouse.parent / "published" / "segmint.duckdb"
    ti = SimpleNamespace(
        dag_id="segmint_nightly",
        run_id="scheduled__2026-07-01",
        task_id="transform",
        try_number=1,
        max_tries=2,
        start_date=None,
        end_date=None,
    )

    def message(night: date) -> str:
        logical = datetime.combine(night, datetime.min.time(), tzinfo=UTC)
        context = {
            "ti": ti,
            "exception": RuntimeError("dbt build failed"),
            "logical_date": logical,
            "params": {},
        }
        return failure_message(context)[0]

    assert message(date(2026, 6, 30)).endswith(
        f"Nothing is published yet (no {published}): analysts have no copy."
    )
    published.parent.mkdir(parents=True)
    published.write_bytes(b"not a database")
    assert message(date(2026, 6, 30)).endswith(
        f"The published warehouse {published} is unchanged (its night could not be read)."
    )
    published.unlink()
    con = duckdb.connect(str(published))
    con.execute("create schema ops")
    con.execute("create table ops.publication as select date '2026-06-27' as as_of_date")
    con.close()
    assert message(date(2026, 6, 28)).endswith(
        f"The published warehouse {published} is unchanged (the night 2026-06-27)."
    )
    assert message(date(2026, 6, 30)).endswith(
        f"The published warehouse {published} still holds the night 2026-06-27, 3 days before "
        "this one: analysts read that night until a night publishes (each night's failure in "
        "ops.pipeline_runs)."
    )


def test_a_task_failed_by_a_reader_of_the_warehouse_says_it_in_one_line(
    tmp_path: Path, monkeypatch
) -> None:
    """A notebook holding the working file failed the task with DuckDB's paragraph (its
    read-only advice, a documentation link) and a hint of three sentences. The message now
    says who holds it, what happens next (a retry, or none left) and what to do; the full
    error stays in ops.pipeline_runs."""
    import sys
    from types import SimpleNamespace

    from segmint.ops import failure_message

    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    warehouse.parent.mkdir()
    duckdb.connect(str(warehouse)).close()
    monkeypatch.setenv("SEGMINT_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("SEGMINT_CONFIG", raising=False)
    ti = SimpleNamespace(
        dag_id="segmint_nightly",
        run_id="scheduled__2026-07-01",
        task_id="segment",
        try_number=1,
        max_tries=2,
        start_date=None,
        end_date=None,
    )
    published = warehouse.parent / "published" / "segmint.duckdb"
    messages = {}
    with held_open(warehouse) as reader:
        with pytest.raises(duckdb.IOException) as held:
            duckdb.connect(str(warehouse))
        context = {
            "ti": ti,
            "exception": held.value,
            "logical_date": datetime(2026, 6, 30, tzinfo=UTC),
            "params": {},
        }
        for status in ("up_for_retry", "failed"):
            messages[status] = failure_message(context, status)
    who = f"is held open by {Path(sys.executable).resolve().name} (PID {reader.pid}, user "
    for status, now in (
        ("up_for_retry", "Airflow runs the task again in a few minutes"),
        ("failed", "its retries are used up: clear the task once it is closed"),
    ):
        message, run = messages[status]
        assert f"Error: the working warehouse {warehouse} {who}" in message
        assert " -c import duckdb, sys, time; " in message  # the reader's command line
        assert (
            f"...); {now}; close that connection (readers open the published copy "
            f"{published}, read-only). Log: "
        ) in message
        assert "Conflicting lock" not in message and "https://duckdb" not in message
        assert "Conflicting lock" in run.error


def test_a_full_disk_at_publish_says_how_much_room_it_needs(tmp_path: Path) -> None:
    """publish writes both copies beside the published files before it swaps them in, and
    removes them when the disk fills: the message then said "22.1 MiB free now" of a disk
    that had just run out while writing 24 MiB of copies, and did not say how much to free."""
    from segmint.config import Settings
    from segmint.ops import disk_fault_message

    settings = Settings(warehouse=tmp_path / "wh" / "segmint.duckdb", output=tmp_path / "out")
    settings.published_warehouse.parent.mkdir(parents=True)
    settings.warehouse.write_bytes(b"\0" * (3 * 2**20))  # the working warehouse: 3 MiB
    settings.analyst_warehouse.write_bytes(b"\0" * 2**20)  # last night's analysts' copy
    temporary = settings.analyst_warehouse.with_name(
        f".{settings.analyst_warehouse.name}.publishing-4242"
    )
    full = duckdb.IOException(
        f'IO Error: Could not write file "{temporary}": No space left on device'
    )
    message = disk_fault_message(full, settings)
    assert message.startswith(
        f"cannot write {settings.analyst_warehouse} (the published copy, beside the "
        "warehouse): No space left on device; free space on the file system of "
    )
    assert (
        "free now; publish needs about 4.0 MiB there: the full copy, 3.0 MiB as the working "
        "warehouse, and the analysts' copy, about 1.0 MiB as the last one, written beside the "
        "published files before they are swapped in), or use a folder on one with room, then "
        "run the same command again"
    ) in message
    # a full disk elsewhere says nothing of publish
    assert "publish needs" not in disk_fault_message(
        OSError(28, "No space left on device", str(settings.warehouse)), settings
    )


def test_the_clear_command_of_a_night_triggered_at_a_moment_selects_its_run() -> None:
    """`airflow tasks clear -s DAY -e DAY` selects runs whose logical date is between 00:00
    of both days: a run triggered at 14:03 (the Trigger form's default logical date) was
    left out, and the hint's command cleared nothing."""
    error = "marts.customer_features has no rows; run `segmint transform` first"
    moment = datetime(2026, 12, 7, 14, 3, 11, 250000, tzinfo=UTC)
    assert command_hint(error, "segmint_nightly", moment, date(2026, 12, 6)) == (
        " Next: in Airflow, run this night from its `transform` task: `airflow tasks clear "
        "segmint_nightly -t transform -d -s 2026-12-07T14:03:11.250000+00:00 "
        "-e 2026-12-07T14:03:11.250000+00:00`."
    )
    night = datetime(2026, 6, 30, tzinfo=UTC)
    assert command_hint(error, "segmint_nightly", night, date(2026, 6, 30)).endswith(
        "-s 2026-06-30 -e 2026-06-30`."
    )
