"""Write-audit-publish on real DuckDB files: atomic swap, readers never blocked, failures
leave yesterday's copy, a kill -9 leaves no partial state."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from segmint.config import Settings
from segmint.publish import TEMP_MARK, later_night_hint, publish, publish_warehouse
from segmint.stages import PublishRefusedError
from segmint.warehouse import connect, ensure_raw_tables, table_hash
from tests.db import fetch

NIGHT_1 = date(2026, 6, 29)
NIGHT_2 = date(2026, 6, 30)


def make_night(warehouse: Path, as_of: date, customers: int = 1000) -> None:
    """A working warehouse after a night: raw tables, a mart, ML output and a dbt-style view."""
    con = connect(warehouse)
    try:
        ensure_raw_tables(con)
        con.execute(
            "create table if not exists marts.customer_features "
            "(customer_id varchar, as_of_date date, order_count bigint)"
        )
        con.execute("delete from marts.customer_features")
        con.execute(
            "insert into marts.customer_features select 'c' || range, ?, range % 7 from range(?)",
            [as_of, customers],
        )
        con.execute(
            "create table if not exists ml.customer_segments "
            "(customer_id varchar, as_of_date date, segment_name varchar)"
        )
        con.execute(
            "insert into ml.customer_segments "
            "select 'c' || range, ?, case when range % 3 = 0 then 'Loyal' else 'New' end "
            "from range(?)",
            [as_of, customers],
        )
        # dbt-duckdb names tables with the catalog (the file's stem) inside views
        con.execute(
            f"create or replace view staging.v_features as "
            f"select * from {warehouse.stem}.marts.customer_features"
        )
    finally:
        con.close()


def settings_for(tmp_path: Path) -> Settings:
    return Settings(warehouse=tmp_path / "warehouse" / "segmint.duckdb", output=tmp_path / "output")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published_as_of(path: Path) -> date:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select as_of_date from ops.publication").fetchone()[0]
    finally:
        con.close()


def test_publish_writes_an_audited_read_only_copy(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)

    result = publish(settings, NIGHT_1)

    published = settings.published_warehouse
    assert published == tmp_path / "warehouse" / "published" / "segmint.duckdb"
    assert result.details["published_warehouse"] == str(published)
    assert result.rows_out == 2000  # 1000 features + 1000 segments; raw tables are empty
    assert not published.stat().st_mode & 0o222, "the published file is read-only"
    assert not published.stat().st_mode & 0o007, "the full copy is its owner's and group's"
    assert not list(published.parent.glob(f"*{TEMP_MARK}*")), "no temporary file left"
    assert not settings.warehouse.with_name("segmint.duckdb.wal").exists(), "checkpointed"

    work = duckdb.connect(str(settings.warehouse), read_only=True)
    pub = duckdb.connect(str(published), read_only=True)
    try:
        for table in ("marts.customer_features", "ml.customer_segments", "raw.events"):
            assert table_hash(pub, table) == table_hash(work, table)
        assert pub.execute("select count(*) from staging.v_features").fetchone() == (1000,)
        stamp = pub.execute("select as_of_date, source_warehouse from ops.publication").fetchall()
        assert stamp == [(NIGHT_1, str(settings.warehouse.resolve()))]
        full_stamp = pub.execute("select * from ops.publication").fetchall()
    finally:
        work.close()
        pub.close()
    # The analysts' copy, written meanwhile from the working file, says the same night.
    assert fetch(settings.analyst_warehouse, "select * from ops.publication") == full_stamp


def test_analysts_get_a_copy_without_the_restricted_schemas(tmp_path: Path) -> None:
    """The analysts' copy holds marts (masked), ml, audiences and ops as tables, the
    analyst views over its own marts, and nothing of raw, staging, intermediate or
    ops.quarantine; everyone may read it (the full copy: owner and group only)."""
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    con = connect(settings.warehouse)
    con.execute("create table ops.quarantine (raw_record varchar)")
    con.execute("insert into ops.quarantine values ('C9,anna@example.com')")
    con.execute("create or replace view marts.loyal as from ml.customer_segments")
    con.close()

    result = publish(settings, NIGHT_1)

    analyst = settings.analyst_warehouse
    assert analyst == tmp_path / "warehouse" / "published" / "segmint_analyst.duckdb"
    assert result.details["analyst_warehouse"] == str(analyst)
    assert str(analyst) in result.summary
    mode = analyst.stat().st_mode
    assert mode & 0o004 and not mode & 0o222, "read-only, for everyone"
    assert not list(analyst.parent.glob(f"*{TEMP_MARK}*"))

    relations = fetch(
        analyst,
        "select table_schema || '.' || table_name, table_type from information_schema.tables "
        "order by 1",
    )
    work = duckdb.connect(str(settings.warehouse), read_only=True)
    pub = duckdb.connect(str(analyst), read_only=True)
    try:
        # No PII columns in these: the masked copy is the same data.
        for table in ("marts.customer_features", "ml.customer_segments"):
            assert table_hash(pub, table) == table_hash(work, table)
        assert pub.execute("select count(*) from analyst.customer_features").fetchone() == (1000,)
        assert pub.execute("select count(*) from marts.loyal").fetchone() == (1000,)
        assert pub.execute("select as_of_date from ops.publication").fetchone() == (NIGHT_1,)
    finally:
        work.close()
        pub.close()
    schemas = {r[0].split(".")[0] for r in relations}
    assert schemas == {"analyst", "marts", "ml", "ops"}
    assert ("marts.loyal", "BASE TABLE") in relations, "a mart view is written as a table"
    assert "ops.quarantine" not in {r[0] for r in relations}
    assert {r[0] for r in relations if r[1] == "VIEW"} == {
        "analyst.customer_features",
        "analyst.loyal",
    }


def test_publish_replaces_atomically(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    publish(settings, NIGHT_1)
    first_inode = settings.published_warehouse.stat().st_ino

    make_night(settings.warehouse, NIGHT_2, customers=500)
    publish(settings, NIGHT_2)

    # a new file took the name in one rename; the old one was never rewritten in place
    assert settings.published_warehouse.stat().st_ino != first_inode
    assert published_as_of(settings.published_warehouse) == NIGHT_2


def test_an_older_night_never_replaces_a_later_publication(tmp_path: Path) -> None:
    """Rerunning an old night (a fix, a backfill) must not move readers back in time: the
    as-of tables would hold the old night while the history tables keep the later one."""
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_2, customers=500)
    publish(settings, NIGHT_2)
    before = file_digest(settings.published_warehouse)

    make_night(settings.warehouse, NIGHT_1)
    result = publish(settings, NIGHT_1)

    assert file_digest(settings.published_warehouse) == before
    assert published_as_of(settings.published_warehouse) == NIGHT_2
    assert result.summary.startswith("not published:")
    assert "holds the later night 2026-06-30" in result.warnings[0]
    assert (
        "the next night on or after 2026-06-30 (or a rerun of 2026-06-30) publishes the working"
        in result.warnings[0]
    )
    make_night(settings.warehouse, NIGHT_2, customers=700)
    publish(settings, NIGHT_2)  # the same night again publishes
    assert file_digest(settings.published_warehouse) != before


def test_an_older_night_is_not_published_over_a_later_one_in_a_damaged_copy(
    tmp_path: Path,
) -> None:
    """Publish read the night readers have from the full copy alone: damaged (truncated
    here), it counted as nothing published, and a backfill's old night replaced both
    copies, the analysts' going back from 2026-06-30 to 2026-06-29. The analysts' copy still
    says the night now: refused, both copies kept. A later night replaces the damaged copy,
    with a warning naming it."""
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_2, customers=500)
    publish(settings, NIGHT_2)
    full, analyst = settings.published_warehouse, settings.analyst_warehouse
    full.chmod(0o644)
    full.write_bytes(full.read_bytes()[:100_000])
    damaged, before = file_digest(full), file_digest(analyst)
    make_night(settings.warehouse, NIGHT_1)
    result = publish(settings, NIGHT_1)
    assert (file_digest(full), file_digest(analyst)) == (damaged, before)
    assert published_as_of(analyst) == NIGHT_2
    assert result.warnings[0].startswith(
        f"not published: {analyst} holds the later night 2026-06-30, and readers must not go "
        "back to 2026-06-29"
    )
    later = date(2026, 7, 1)
    make_night(settings.warehouse, later)
    result = publish(settings, later)
    assert published_as_of(full) == published_as_of(analyst) == later
    assert result.warnings[0].startswith(
        f"replaced a published copy whose night could not be read ({full}: IO Error"
    )


def test_a_future_night_published_by_mistake_is_called_out(tmp_path: Path) -> None:
    """A night from the future (published before as-of dates were checked) blocks every real
    night until that date: the warning must not promise that the next night publishes."""
    settings = settings_for(tmp_path)
    future = date(datetime.now(UTC).year + 1, 6, 30)
    make_night(settings.warehouse, future)
    publish(settings, future)  # the stage itself, as a run before the as-of check did

    make_night(settings.warehouse, NIGHT_2)
    result = publish(settings, NIGHT_2)

    assert published_as_of(settings.published_warehouse) == future
    warning = result.warnings[0]
    assert f"holds the later night {future}" in warning
    assert f"{future} is in the future (today is " in warning
    assert f"remove {settings.published_warehouse} and publish the last real night" in warning
    assert "next night" not in warning
    assert later_night_hint(date(2026, 12, 5), Path("p.duckdb"), today=date(2026, 12, 4)) == (
        "the next night on or after 2026-12-05 (or a rerun of 2026-12-05) publishes the working "
        "warehouse"
    )


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    q = "select (select as_of_date from ops.publication), count(*) from marts.customer_features"
    print("ready", *con.execute(q).fetchone(), flush=True)
    sys.stdin.readline()  # hold the file open until told to query again
    print("again", *con.execute(q).fetchone(), flush=True)
    con = duckdb.connect(sys.argv[1], read_only=True)  # a notebook's connect cell run again
    print("connected again", *con.execute(q).fetchone(), flush=True)
    con.close()
    con = duckdb.connect(sys.argv[1], read_only=True)
    print("closed and connected", *con.execute(q).fetchone(), flush=True)
    """
)


@pytest.mark.parametrize("copy", ["published_warehouse", "analyst_warehouse"])
def test_reader_holding_the_published_file_never_blocks_publish(tmp_path: Path, copy: str) -> None:
    """Either copy, the analysts' too (README: holding either open never blocks the
    pipeline): the next night publishes, the reader keeps its night until it reconnects."""
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1, customers=1000)
    publish(settings, NIGHT_1)

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(getattr(settings, copy))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().split() == ["ready", str(NIGHT_1), "1000"]

        # the next night writes the working file and publishes while the reader holds on
        make_night(settings.warehouse, NIGHT_2, customers=400)
        publish(settings, NIGHT_2)

        reader.stdin.write("\n")
        reader.stdin.flush()
        # the open connection keeps the file it opened: yesterday's data, whole
        assert reader.stdout.readline().split() == ["again", str(NIGHT_1), "1000"]
        # connecting again while a connection is open gets the database already open (DuckDB
        # caches it by path in the process): still yesterday's; closed first, today's
        assert reader.stdout.readline().split() == ["connected", "again", str(NIGHT_1), "1000"]
        closed = reader.stdout.readline().split()
        assert closed == ["closed", "and", "connected", str(NIGHT_2), "400"]
    finally:
        reader.kill()
        reader.wait()
    # a new connection sees the new night
    assert published_as_of(getattr(settings, copy)) == NIGHT_2
    # and the readers are told how to get one (docs/operations.md, "Connecting")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    text = " ".join(docs.replace("*", "").split())
    assert "Close the connection, then connect again, to see the new night" in text
    assert "running the connect line of a notebook again shows the old night" in text


SCRATCH_WRITER = textwrap.dedent(
    """
    import os, sys, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write: root, or the read-only mode lifted
    con.execute("set checkpoint_threshold = '1TB'")
    con.execute("create table main.my_scratch as select 42 as answer")
    os._exit(0)  # the session dies (a killed notebook): its WAL stays beside the file
    """
)


def test_a_wal_left_by_a_reader_who_wrote_to_the_copy_does_not_break_the_next_night(
    tmp_path: Path,
) -> None:
    """DuckDB pairs a WAL with its database by file name: a WAL an analyst left beside the
    published file would belong to the old night after the swap, and every reader of the new
    night failed with "WAL does not match database file"."""
    settings = settings_for(tmp_path)
    published = settings.published_warehouse
    make_night(settings.warehouse, NIGHT_1)
    publish(settings, NIGHT_1)
    published.chmod(0o644)
    subprocess.run([sys.executable, "-c", SCRATCH_WRITER, str(published)], check=True)
    wal = published.with_name(published.name + ".wal")
    assert wal.exists()

    make_night(settings.warehouse, NIGHT_2, customers=400)
    result = publish(settings, NIGHT_2)

    assert not wal.exists()
    assert published_as_of(published) == NIGHT_2
    con = duckdb.connect(str(published), read_only=True)
    try:
        assert con.execute("select count(*) from staging.v_features").fetchone() == (400,)
    finally:
        con.close()
    assert result.details["removed_stale_wal"] == str(wal)
    assert result.warnings == [
        f"removed {wal}: someone opened the published warehouse read-write and changed it; "
        "open it read-only (docs/operations.md, 'Connecting')"
    ]


def test_the_published_storage_format_is_the_one_readers_are_told_to_read(tmp_path: Path) -> None:
    """Readers' tools bundle their own DuckDB: docs/operations.md names the oldest that
    opens the published file. A DuckDB upgrade that changes the format must change it too."""
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    publish(settings, NIGHT_1)
    con = duckdb.connect(str(settings.published_warehouse), read_only=True)
    try:
        tags = con.execute(
            "select tags from duckdb_databases() where database_name = current_database()"
        ).fetchone()[0]
    finally:
        con.close()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    text = " ".join(docs.replace("*", "").split())
    version = tags["storage_version"].removesuffix("+")  # "v2.0.0+": read by 2.0.0 and later
    assert f"storage format {version}, which DuckDB 1.x cannot read" in text
    assert f"DuckDB driver of version {version[1:4]} or later" in text


def test_failed_audit_leaves_yesterdays_published_copy(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    publish(settings, NIGHT_1)
    before = file_digest(settings.published_warehouse)
    analyst_before = file_digest(settings.analyst_warehouse)

    # night 2: features were rebuilt but the segmentation stage never wrote its rows
    con = connect(settings.warehouse)
    con.execute("update marts.customer_features set as_of_date = ?", [NIGHT_2])
    con.close()
    with pytest.raises(PublishRefusedError, match=r"ml.customer_segments has no rows"):
        publish(settings, NIGHT_2)

    assert file_digest(settings.published_warehouse) == before
    assert file_digest(settings.analyst_warehouse) == analyst_before
    assert published_as_of(settings.published_warehouse) == NIGHT_1
    assert not list(settings.published_warehouse.parent.glob(f"*{TEMP_MARK}*"))


def test_failed_model_run_refuses_publication(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    con = connect(settings.warehouse)
    con.execute(
        "create table ml.model_runs (run_id varchar, model_name varchar, as_of_date date, "
        "status varchar, created_at timestamp)"
    )
    con.execute(
        "insert into ml.model_runs values "
        "('a', 'purchase', ?, 'published', '2026-06-30 01:00'), "
        "('b', 'purchase', ?, 'failed', '2026-06-30 02:00')",
        [NIGHT_1, NIGHT_1],
    )
    con.close()
    with pytest.raises(PublishRefusedError, match="purchase"):
        publish(settings, NIGHT_1)
    assert not settings.published_warehouse.exists()


def test_working_file_held_by_another_process_is_refused_clearly(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.readline()",
            str(settings.warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):
            publish(settings, NIGHT_1)
    finally:
        holder.kill()
        holder.wait()
    assert not settings.published_warehouse.exists()


KILLED_PUBLISH = textwrap.dedent(
    """
    import os, sys, time
    from datetime import date
    from pathlib import Path
    import segmint.publish as p

    def stuck(src, dst):  # the process dies here, between writing the copy and the rename
        print("copied", flush=True)
        time.sleep(600)

    p.os.replace = stuck
    p.publish_warehouse(Path(sys.argv[1]), Path(sys.argv[2]), date.fromisoformat(sys.argv[3]))
    """
)

KILLED_WRITER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("begin transaction")
    con.execute("delete from marts.customer_features")
    con.execute(
        "insert into marts.customer_features select 'x' || range, DATE '2026-06-30', 0 "
        "from range(200000)"
    )
    con.execute("update ml.customer_segments set segment_name = 'half-written'")
    print("writing", flush=True)
    time.sleep(600)
    """
)


def _kill_when(proc: subprocess.Popen, marker: str) -> None:
    assert proc.stdout.readline().strip() == marker
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_kill_9_during_publish_keeps_yesterday_and_the_retry_completes(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    publish(settings, NIGHT_1)
    before = file_digest(settings.published_warehouse)
    make_night(settings.warehouse, NIGHT_2)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_PUBLISH,
            str(settings.warehouse),
            str(settings.published_warehouse),
            NIGHT_2.isoformat(),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    _kill_when(proc, "copied")

    # the killed run left its temporary copy behind, never the published name
    assert list(settings.published_warehouse.parent.glob(f"*{TEMP_MARK}*"))
    assert file_digest(settings.published_warehouse) == before

    publish(settings, NIGHT_2)  # the retry
    assert published_as_of(settings.published_warehouse) == NIGHT_2
    assert not list(settings.published_warehouse.parent.glob(f"*{TEMP_MARK}*"))


def test_kill_9_of_a_writer_mid_transaction_leaves_no_partial_state(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1, customers=1000)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    hashes = {t: table_hash(con, t) for t in ("marts.customer_features", "ml.customer_segments")}
    con.close()

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(settings.warehouse)],
        stdout=subprocess.PIPE,
        text=True,
    )
    _kill_when(proc, "writing")
    time.sleep(0.1)

    publish(settings, NIGHT_1)  # the retry opens the file: DuckDB discards the dead transaction
    pub = duckdb.connect(str(settings.published_warehouse), read_only=True)
    try:
        assert {t: table_hash(pub, t) for t in hashes} == hashes
        assert pub.execute(
            "select count(*) from ml.customer_segments where segment_name = 'half-written'"
        ).fetchone() == (0,)
    finally:
        pub.close()


def test_publish_needs_a_working_warehouse(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with pytest.raises(Exception, match="does not exist"):
        publish_warehouse(settings.warehouse, settings.published_warehouse, NIGHT_1)


def test_a_working_file_changed_while_publishing_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysts' copy is read from the working file while the byte copy is made. A
    process that writes to the working file in between (a stage run by hand beside the night)
    would make the two copies differ: the audit refuses, and nothing is published."""
    import threading

    import segmint.publish as publish_module

    settings = settings_for(tmp_path)
    make_night(settings.warehouse, NIGHT_1)
    copied = threading.Event()
    write_copy, attached = publish_module._write_published_copy, publish_module._attached

    def byte_copy_then_signal(*args):
        try:
            return write_copy(*args)
        finally:
            copied.set()

    def changed_before_the_analysts_read(path: Path, catalog: str, read_only: bool):
        if path == settings.warehouse and read_only:
            copied.wait(60)  # the byte copy holds the rows counted before
            con = connect(settings.warehouse)
            con.execute("insert into ml.customer_segments values ('late', ?, 'New')", [NIGHT_1])
            con.close()
        return attached(path, catalog, read_only)

    monkeypatch.setattr(publish_module, "_write_published_copy", byte_copy_then_signal)
    monkeypatch.setattr(publish_module, "_attached", changed_before_the_analysts_read)
    with pytest.raises(
        PublishRefusedError,
        match=r"ml\.customer_segments has 1001 rows in the analysts' copy, not 1000",
    ):
        publish(settings, NIGHT_1)
    assert not settings.published_warehouse.exists()
    assert not settings.analyst_warehouse.exists()
    assert not list(settings.published_warehouse.parent.glob(f"*{TEMP_MARK}*"))


def _page_views(prefix: str, n: int) -> list[str]:
    return [
        f'{{"event_id": "{prefix}{i}", "event_type": "page_view", '
        f'"event_ts": "{NIGHT_1}T10:{i % 60:02d}:00Z", "customer_id": "c{i}"}}'
        for i in range(n)
    ]


def test_a_night_whose_quality_gate_did_not_pass_is_not_published(tmp_path: Path) -> None:
    """`segmint run` stops at a failed gate, but each stage is a command of its own too:
    running the later stages and `publish` by hand must not publish that night."""
    from segmint.pipeline import run_stage
    from segmint.stages import QualityGateError

    day = tmp_path / "landing" / "events" / f"dt={NIGHT_1}"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text("\n".join([*_page_views("e", 8), "{not json", "{neither"]))
    settings = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=tmp_path / "landing",
        output=tmp_path / "output",
    )
    run_stage("ingest", settings, NIGHT_1)
    with pytest.raises(QualityGateError, match=r"20\.0% of its 10 rows were quarantined"):
        run_stage("validate", settings, NIGHT_1)
    make_night(settings.warehouse, NIGHT_1)  # the later stages, run by hand
    with pytest.raises(PublishRefusedError, match=r"events dt=2026-06-29 \(failed\)"):
        publish(settings, NIGHT_1)
    assert not settings.published_warehouse.exists()

    # A file delivered since the verdict: that partition is not judged until validate runs.
    (day / "b.jsonl").write_text("\n".join(_page_views("f", 32)))
    run_stage("ingest", settings, NIGHT_1)
    with pytest.raises(PublishRefusedError, match=r"events dt=2026-06-29 \(not judged\)"):
        publish(settings, NIGHT_1)
    run_stage("validate", settings, NIGHT_1)  # 2 of 42 rows quarantined: 4.8%, passes
    publish(settings, NIGHT_1)
    assert published_as_of(settings.published_warehouse) == NIGHT_1


def test_a_warehouse_transform_never_ran_on_is_not_published(tmp_path: Path) -> None:
    """`segmint run --stages ingest,validate,publish` on a new warehouse published "10
    tables" (raw and ops only), exit 0: analysts got a copy without a single mart. The
    audit skipped every nightly table that did not exist. marts.customer_features must
    exist; ml.customer_segments may not (a warehouse without the segment stage)."""
    from segmint.pipeline import run_stage

    day = tmp_path / "landing" / "events" / f"dt={NIGHT_1}"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text("\n".join(_page_views("e", 8)))
    settings = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=tmp_path / "landing",
        output=tmp_path / "output",
    )
    run_stage("ingest", settings, NIGHT_1)
    run_stage("validate", settings, NIGHT_1)
    with pytest.raises(
        PublishRefusedError,
        match=r"marts.customer_features does not exist: the transform stage has never run "
        r"on this warehouse, .* --stages transform before publish",
    ):
        publish(settings, NIGHT_1)
    assert not settings.published_warehouse.exists()

    make_night(settings.warehouse, NIGHT_1)
    con = connect(settings.warehouse)
    con.execute("drop table ml.customer_segments")
    con.close()
    publish(settings, NIGHT_1)
    assert published_as_of(settings.published_warehouse) == NIGHT_1


def test_publish_removes_the_model_files_no_night_needs_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    """A segmentation model was saved every night and a recommendation model at every
    retrain, and nothing deleted them: <warehouse>/artifacts grew by a model a night for
    good. Publishing a night now deletes the files of the nights before the newest
    `keep_nights` (2 here), but never the newest published model of a kind and horizon
    (the next night scores with it, whatever its age), one a kept night scored with, or a
    file ml.model_runs does not name."""
    import dataclasses
    from datetime import timedelta

    from ml.registry import ModelMetadata, save_model
    from segmint.config import ModelSettings

    settings = dataclasses.replace(settings_for(tmp_path), models=ModelSettings(keep_nights=2))
    nights = [NIGHT_2 - timedelta(days=4 - i) for i in range(5)]  # 06-26 .. 06-30
    for night in nights:
        make_night(settings.warehouse, night)
    runs = []  # (run_id, model, night, horizon, status, the file it scored with)

    def run(model: str, i: int, status: str = "published", horizon=None, uses=None) -> str:
        run_id = f"{model}-{nights[i]}" + (f"-h{horizon}" if horizon else "")
        if uses is None:  # fitted tonight: a real file and its sidecar
            meta = ModelMetadata(run_id, model, str(nights[i]), ["recency"])
            save_model(settings.artifacts_dir, {"weights": [i]}, meta)
        runs.append((run_id, model, nights[i], horizon, status, uses or run_id))
        return run_id

    for i in range(5):
        run("segmentation", i)
    purchase = run("purchase", 0, horizon=30)
    for i in range(1, 5):  # scored with the 06-26 model since: rows of their own, no file
        run("purchase", i, horizon=30, uses=purchase)
    run("purchase", 1, horizon=45)  # a horizon tried once: still the newest for 45 days
    run("recommendations", 0)
    run("recommendations", 2, status="not_published")
    run("recommendations", 3)
    orphan = ModelMetadata("segmentation-orphan", "segmentation", str(nights[0]), ["recency"])
    save_model(settings.artifacts_dir, {"weights": []}, orphan)
    con = connect(settings.warehouse)
    con.execute(
        "create table ml.model_runs (run_id varchar primary key, model_name varchar, "
        "as_of_date date, params json, artifact_path varchar, status varchar, "
        "created_at timestamp)"
    )
    for run_id, model, night, horizon, status, uses in runs:
        con.execute(
            "insert into ml.model_runs values (?, ?, ?, ?, ?, ?, ?)",
            [run_id, model, night, f'{{"horizon_days": {horizon}}}' if horizon else "{}",
             str(settings.artifacts_dir / model / f"{uses}.joblib"), status,
             datetime(2026, 7, 1)],
        )  # fmt: skip
    con.close()

    def files() -> list[str]:
        return sorted(p.stem for p in settings.artifacts_dir.glob("*/*.joblib"))

    before = files()
    result = publish(settings, NIGHT_2)

    assert files() == [
        "purchase-2026-06-26-h30",  # the file 06-29 and 06-30 scored with
        "purchase-2026-06-27-h45",  # the newest published 45-day model
        "recommendations-2026-06-29",  # the newest published one
        "segmentation-2026-06-29",
        "segmentation-2026-06-30",
        "segmentation-orphan",  # not in ml.model_runs: not segmint's to judge
    ]
    removed = sorted(set(before) - set(files()))
    assert removed == [
        "recommendations-2026-06-26",
        "recommendations-2026-06-28",
        "segmentation-2026-06-26",
        "segmentation-2026-06-27",
        "segmentation-2026-06-28",
    ]
    assert sorted(p.stem for p in settings.artifacts_dir.glob("*/*.json")) == files()
    assert sorted(result.details["models_removed"]["run_ids"]) == removed
    assert (
        f"; removed 5 models ({result.details['models_removed']['bytes'] / 2**20:.1f} MiB) of "
        f"nights before 2026-06-29 from {settings.artifacts_dir} ([models] keep_nights = 2)"
    ) in result.summary
    assert fetch(settings.warehouse, "select count(*) from ml.model_runs") == [(len(runs),)]
    # keep_nights = 0 keeps every file.
    keep_all = dataclasses.replace(settings, models=ModelSettings(keep_nights=0))
    make_night(settings.warehouse, NIGHT_2)
    for night in nights[:3]:
        save_model(
            settings.artifacts_dir,
            {},
            ModelMetadata(f"segmentation-{night}", "segmentation", str(night), ["recency"]),
        )
    assert "models_removed" not in publish(keep_all, NIGHT_2).details
    assert len(files()) == 9


@pytest.mark.parametrize("keep", [1, -3])
def test_keep_nights_of_one_is_refused(tmp_path: Path, keep: int) -> None:
    """One night kept would delete the models a rerun of the newest night reads (it scores
    with the newest model of the nights before it) and the one the drift check reads."""
    from segmint.config import ConfigError, load_settings

    config = tmp_path / "segmint.toml"
    config.write_text(f"[models]\nkeep_nights = {keep}\n")
    with pytest.raises(ConfigError, match=r"\[models\] keep_nights must be 0 .* or at least 2"):
        load_settings(config, environ={})


def test_publish_removes_old_nights_data_docs_and_export_files(tmp_path: Path) -> None:
    """output/<date>/ grew by 4.8 MiB a night at 20,000 customers (4.3 MiB of Data Docs), and
    the export files with clear-text e-mails and phones were kept forever. Publishing a night
    now deletes the Data Docs, validation results and export files of the nights more than
    `[outputs] keep_nights` days before it; the reports, the published night, later nights
    and folders not named as a night stay; 0 keeps everything."""
    import dataclasses

    from segmint.config import OutputSettings

    settings = dataclasses.replace(settings_for(tmp_path), outputs=OutputSettings(keep_nights=2))
    out = settings.output
    nights = ["2026-06-27", "2026-06-28", "2026-06-29", "2026-06-30", "2026-07-01"]
    for night in nights:
        for rel in ("report.html", "data_docs/index.html", "validation_results/r.json"):
            (out / night / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / night / rel).write_text("x" * 100)
        (out / night / "audiences").mkdir()
        (out / night / "audiences" / "a_google_customer_match.csv").write_text("em\nabc\n")
    (out / "2020-01-01-mine" / "audiences").mkdir(parents=True)
    (out / "notes" / "audiences").mkdir(parents=True)
    make_night(settings.warehouse, NIGHT_2)
    result = publish(settings, NIGHT_2)

    def left(night: str) -> list[str]:
        return sorted(str(p.relative_to(out / night)) for p in (out / night).rglob("*"))

    for night in ("2026-06-27", "2026-06-28"):
        assert left(night) == ["report.html"]
    full = [
        "audiences",
        "audiences/a_google_customer_match.csv",
        "data_docs",
        "data_docs/index.html",
        "report.html",
        "validation_results",
        "validation_results/r.json",
    ]
    for night in ("2026-06-29", "2026-06-30", "2026-07-01"):
        assert left(night) == full
    assert (out / "2020-01-01-mine" / "audiences").is_dir() and (out / "notes").is_dir()
    removed = result.details["outputs_removed"]
    assert removed["nights"] == ["2026-06-27", "2026-06-28"]
    assert removed["export_files"] == [
        str(out / n / "audiences" / "a_google_customer_match.csv")
        for n in ("2026-06-27", "2026-06-28")
    ]
    assert (
        f"; removed the Data Docs and export files of 2 nights before 2026-06-29 (6 files, "
        f"0.0 MiB, 2 export files; their audiences.exports rows stay) from {out} "
        "([outputs] keep_nights = 2)"
    ) in result.summary
    # keep_nights = 0 keeps every file.
    keep_all = dataclasses.replace(settings, outputs=OutputSettings(keep_nights=0))
    make_night(settings.warehouse, date(2026, 7, 5))
    assert "outputs_removed" not in publish(keep_all, date(2026, 7, 5)).details
    assert left("2026-06-29") == full


def test_outputs_keep_nights_is_read_from_the_settings_file(tmp_path: Path) -> None:
    from segmint.config import ConfigError, load_settings

    config = tmp_path / "segmint.toml"
    config.write_text("[outputs]\nkeep_nights = 7\n")
    assert load_settings(config, environ={}).outputs.keep_nights == 7
    config.write_text("[outputs]\nkeep_nights = -1\n")
    with pytest.raises(ConfigError, match=r"\[outputs\] keep_nights must be 0"):
        load_settings(config, environ={})


def test_a_failed_nights_error_quoting_delivered_values_is_masked_for_analysts(
    tmp_path: Path,
) -> None:
    """A failed night's error quotes what was delivered: the gate's the values it quarantined
    (a CRM export with its e-mail and updated_at columns swapped: "got 'ann@...' 3"), the
    ingest's the header of a CSV file without one (its first record: e-mail, phone, name).
    Recorded in ops.pipeline_runs.error, they reached the analysts' copy (readable by
    everyone) in clear once a later night published. There the quoted values are withheld;
    the full copy keeps them for the pipeline's operators."""
    from segmint.ops import TaskRun, record_task_run
    from segmint.pipeline import run_stage
    from segmint.stages import QualityGateError, SegmintError

    day = tmp_path / "landing" / "crm" / f"dt={NIGHT_1}"
    day.mkdir(parents=True)
    settings = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=tmp_path / "landing",
        output=tmp_path / "output",
    )
    errors = {}

    def failed(task: str, exc: BaseException) -> None:
        # The Airflow failure callback records it so (segmint.ops.failure_message).
        errors[task] = f"{type(exc).__name__}: {exc}"
        run = TaskRun("segmint_nightly", "scheduled__2026-06-29", task, "failed", NIGHT_1)
        run.error = errors[task]
        record_task_run(settings.warehouse, run)

    (day / "export.csv").write_text(f"C0,{NIGHT_1}T08:00:00Z,head.leak@example.com,Hedda\n")
    with pytest.raises(SegmintError) as ingest:
        run_stage("ingest", settings, NIGHT_1)
    failed("ingest", ingest.value)
    (day / "export.csv").unlink()  # withdrawn; the next delivery has its columns swapped
    good = [f"C{i},{NIGHT_1}T08:00:00Z,c{i}@shop.org" for i in range(7)]
    swapped = [f"C{i},o'leak{i}@example.com,{NIGHT_1}T08:00:00Z" for i in range(7, 10)]
    header = "customer_id,updated_at,email"
    (day / "customers.csv").write_text("\n".join([header, *good, *swapped]) + "\n")
    run_stage("ingest", settings, NIGHT_1)
    with pytest.raises(QualityGateError) as validate:
        run_stage("validate", settings, NIGHT_1)
    failed("validate", validate.value)
    # The operators' messages name the values.
    assert "head.leak@example.com" in errors["ingest"]
    assert "o'leak7@example.com" in errors["validate"]
    # Re-delivered corrected: the night after passes and publishes.
    (day / "customers.csv").write_text("\n".join([header, *good]) + "\n")
    run_stage("ingest", settings, NIGHT_2)
    run_stage("validate", settings, NIGHT_2)
    make_night(settings.warehouse, NIGHT_2)
    publish(settings, NIGHT_2)

    query = "select task_id, error from ops.pipeline_runs order by 1"
    analysts = dict(fetch(settings.analyst_warehouse, query))
    assert not [e for e in analysts.values() if "leak" in e], analysts
    assert "(header is: (withheld in the analysts' copy))" in analysts["ingest"]
    assert (
        "updated_at is not an ISO-8601 timestamp (3; got (values withheld" in (analysts["validate"])
    )
    assert dict(fetch(settings.published_warehouse, query)) == errors
