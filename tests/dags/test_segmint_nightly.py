"""The DAG as Airflow sees it: it imports, its graph is the pipeline, it obeys the policies.

Parse time is printed (and measured properly by bench/bench_airflow.py), never asserted.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segmint.airflow_env import airflow_bin, airflow_environ, backfill_command, ensure_ready
from segmint.ops import WAREHOUSE_POOL, on_task_failure, on_task_retry
from segmint.pipeline import STAGES

DAG_ID = "segmint_nightly"
# Every stage of the pipeline writes the working warehouse (validate writes its results,
# publish checkpoints it before copying), so every task of the DAG is a writer.
WAREHOUSE_WRITERS = set(STAGES)


def test_dagbag_has_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags
    stats = {Path(s.file).name: s.duration.total_seconds() for s in dagbag.dagbag_stats}
    print(f"\nDAG parse: {stats} (DagBag total {dagbag.segmint_parse_s:.3f} s)")
    assert set(stats) == {"segmint_nightly.py"}, "only DAG files belong in dags/"


def test_no_unknown_pools(dagbag) -> None:
    warnings = {w.message for w in dagbag.dag_warnings}
    assert not warnings


def test_task_graph_is_the_pipeline_in_order(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    order = list(STAGES)
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task(order[0]).upstream_task_ids == set()
    assert dag.get_task("publish").downstream_task_ids == set()
    # publish is last: nothing is published unless every stage before it succeeded
    assert order[-1] == "publish"
    assert {t.trigger_rule for t in dag.tasks} == {"all_success"}


def test_each_task_runs_its_own_stage(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    for task in dag.tasks:
        assert list(task.op_args) == [task.task_id]


def test_each_task_documents_its_own_stage_in_the_ui(dagbag) -> None:
    """The UI's Task Docs of every task said the same generic line ("Run one segmint stage
    for this DAG run's as-of date..."): an on-call engineer looking at a failed `validate`
    learnt nothing of what it does or how to rerun it."""
    dag = dagbag.dags[DAG_ID]
    docs = {task.task_id: task.doc_md for task in dag.tasks}
    assert len(set(docs.values())) == len(STAGES), "every task has its own doc"
    for stage, doc in docs.items():
        assert doc.startswith(f"**{stage}**: "), doc
        assert f"airflow tasks clear segmint_nightly -t {stage} -d" in doc
    assert "not retried" in docs["validate"] and "quarantine reasons" in docs["validate"]
    assert "run_results.json" in docs["transform"]
    # a stage after transform of an older night cannot be rerun alone: the marts moved on
    for stage in ("segment", "score", "recommend", "audiences", "report", "publish"):
        assert "for a night older than that, clear from `transform`" in docs[stage], stage
    assert "older" not in docs["ingest"] + docs["transform"]


def test_dag_policies(dagbag) -> None:
    for dag in dagbag.dags.values():
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md and dag.dag_id in dag.doc_md
        assert dag.max_active_runs == 1
        assert dag.catchup is False
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{task.task_id}: set a real owner"
            assert task.retries >= 2, f"{task.task_id}: retries"
            assert task.retry_exponential_backoff >= 2, f"{task.task_id}: exponential back-off"
            assert task.max_retry_delay is not None
            assert task.execution_timeout is not None
            assert on_task_failure in task.on_failure_callback
            assert on_task_retry in task.on_retry_callback


def test_every_warehouse_writer_is_in_the_one_slot_pool(dagbag) -> None:
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id in WAREHOUSE_WRITERS:
                assert task.pool == WAREHOUSE_POOL, f"{dag.dag_id}.{task.task_id}"
                assert task.pool_slots == 1


def test_schedule_is_daily_data_interval_in_utc(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    timetable = dag.timetable
    assert type(timetable).__name__ == "CronDataIntervalTimetable"
    assert timetable.expression == "0 0 * * *"
    assert "UTC" in repr(timetable)
    assert dag.default_args["retry_delay"] >= timedelta(minutes=1)


def test_dag_file_imports_nothing_heavy() -> None:
    """Parsing the DAG must not import DuckDB, GX, dbt, sklearn or pandas."""
    code = (
        "import sys, runpy\n"
        "runpy.run_path('dags/segmint_nightly.py')\n"
        "heavy = [m for m in ('duckdb', 'great_expectations', 'dbt', 'sklearn', 'pandas') "
        "if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    heavy = [line for line in out.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], f"heavy imports at parse time: {heavy}"


def test_local_airflow_has_the_one_slot_pool(ready_airflow: dict[str, str]) -> None:
    db = Path(ready_airflow["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        query = "select slots from slot_pool where pool = ?"
        slots = con.execute(query, [WAREHOUSE_POOL]).fetchall()
    assert slots == [(1,)]


def test_metadata_db_writers_wait_for_each_other(ready_airflow: dict[str, str]) -> None:
    """CI once failed with `airflow backfill create` dying on "database is locked" while the
    scheduler wrote: SQLite's default busy timeout is 5 s. Here another connection holds the
    write lock for 12 s; an Airflow CLI write must wait for it and succeed, not fail."""
    db = Path(ready_airflow["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        assert con.execute("pragma journal_mode").fetchone() == ("wal",)

    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("begin immediate")  # the write lock, as a busy scheduler holds it
    held_s = 12
    release = threading.Timer(held_s, holder.rollback)
    started = time.monotonic()
    release.start()
    try:
        proc = subprocess.run(
            [airflow_bin(), "variables", "set", "segmint_lock_probe", "waited"],
            env=ready_airflow,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        release.join()
        holder.close()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert time.monotonic() - started >= held_s
    with sqlite3.connect(db) as con:
        keys = con.execute("select key from variable where key = 'segmint_lock_probe'")
        assert keys.fetchall() == [("segmint_lock_probe",)]


# `airflow backfill create` in one process, with a commit by another (the scheduler, say)
# between its read of `dag_run` and its first INSERT into it: Airflow creates each run inside
# a SAVEPOINT (`session.begin_nested()`), and a transaction that SQLite began as a reader
# cannot become a writer once another connection has written, whatever the busy timeout.
BACKFILL_WITH_A_WRITE_BETWEEN = """
import sqlite3, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

db, argv = sys.argv[1], sys.argv[2:]
other = sqlite3.connect(db, timeout=0, isolation_level=None)
probe = []

@event.listens_for(Engine, "before_cursor_execute")
def another_process_writes(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith("INSERT INTO dag_run ") and not probe:
        try:
            other.execute("insert or replace into variable (key, val, is_encrypted) "
                          "values ('segmint_between', 'x', 0)")
            probe.append("committed")
        except sqlite3.OperationalError as exc:  # the backfill already holds the write lock
            probe.append(str(exc))

from airflow.__main__ import main
sys.argv = ["airflow", *argv]
try:
    main()
finally:
    print("probe:", probe)
"""


def _airflow_of_its_own(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A project-local Airflow in ``tmp_path`` with the DAG serialised (a backfill needs it),
    not the session's: its environment and metadata database."""
    env = airflow_environ(
        tmp_path / "airflow_home",
        base={k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))},
    )
    ensure_ready(env)
    reserialize = [airflow_bin(), "dags", "reserialize"]
    subprocess.run(reserialize, env=env, capture_output=True, check=True)
    return env, Path(env["AIRFLOW_HOME"]) / "airflow.db"


@pytest.mark.slow
def test_backfill_create_survives_a_write_between_its_read_and_its_insert(
    tmp_path: Path,
) -> None:
    """CI failed: `airflow backfill create` died with "database is locked" beside a busy
    scheduler, and the 60 s busy timeout did not help: the runs are created in a savepoint
    that reads `dag_run` first, and SQLite refuses at once (no waiting) to let a reader
    write after another connection wrote. Reproduced here deterministically: another
    connection commits between that read and the INSERT."""
    env, db = _airflow_of_its_own(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            BACKFILL_WITH_A_WRITE_BETWEEN,
            str(db),
            *backfill_command("2026-05-01", "2026-05-03")[1:],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "probe: [" in proc.stdout and "probe: []" not in proc.stdout, proc.stdout[-2000:]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with sqlite3.connect(db) as con:
        runs = con.execute(
            "select date(logical_date) from dag_run where run_type = 'backfill' order by 1"
        ).fetchall()
    assert runs == [("2026-05-01",), ("2026-05-02",), ("2026-05-03",)]


@pytest.mark.slow
def test_backfill_maps_logical_dates_to_as_of_dates(ready_airflow: dict[str, str]) -> None:
    """A backfill over A..B creates one run per day whose logical date is the as-of date."""
    reserialize = [airflow_bin(), "dags", "reserialize"]
    subprocess.run(reserialize, env=ready_airflow, capture_output=True, check=True)
    proc = subprocess.run(
        [*backfill_command("2026-05-01", "2026-05-03"), "--dry-run"],
        env=ready_airflow,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 2026")]
    runs = [line.split("|")[1].strip() for line in rows]
    assert runs == [
        "2026-05-01 00:00:00+00:00",
        "2026-05-02 00:00:00+00:00",
        "2026-05-03 00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("nights", "message"),
    [
        (["2026-06-30", "2026-06-01"], "the first night 2026-06-30 is after the last 2026-06-01"),
        (["2026/06/01", "2026-06-30"], "not dates (YYYY-MM-DD): 2026/06/01 2026-06-30"),
        (["2026-06-01", "2999-06-30"], "as-of date 2999-06-30 is in the future"),
    ],
)
def test_make_backfill_refuses_dates_that_are_no_nights(
    nights: list[str], message: str, tmp_path: Path
) -> None:
    """Checked before Airflow is asked (no AIRFLOW_HOME is created): a reversed range used
    to end in Airflow's 20-line traceback, 2026/06/01 was taken as a date."""
    home = tmp_path / "airflow"
    proc = _make_backfill({**os.environ, "AIRFLOW_HOME": str(home)}, *nights)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not home.exists()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[ingest]\nwiat_for_as_of_events_hours = 8\n",
            "[ingest]: unknown key(s) wiat_for_as_of_events_hours; known: ",
        ),
        (
            '[transform]\nthreads = "two"\n',
            "[transform].threads: expected a number, got 'two'",
        ),
        ("[ingest\nrequire_as_of_events = true\n", ": invalid TOML: "),
    ],
)
def test_make_backfill_refuses_settings_its_nights_would_fail_on(
    toml: str, message: str, tmp_path: Path
) -> None:
    """A broken settings file fails every night at its first task, not retried: a backfill
    created over it (it was, `created: 30 night(s) to run`) ran 30 failed nights, each a
    failure alert, and needed REPROCESS=failed once the file was fixed. Refused before
    Airflow is asked (no AIRFLOW_HOME is created), naming the file and the key."""
    config = tmp_path / "segmint.toml"
    config.write_text(toml)
    home = tmp_path / "airflow"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "SEGMINT_CONFIG": str(config)}
    proc = _make_backfill(env, "2026-06-01", "2026-06-30")
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith(
        f"no backfill created: the settings its nights would run with are refused: {config}"
    ), line
    assert message in line
    assert line.endswith(
        "Every night would fail at its first task; fix that, then run this `make backfill` again"
    )
    assert not home.exists()


def test_make_airflow_warns_of_settings_every_night_would_fail_on(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """`make airflow` on a broken settings file started the UI without a word; the first
    night (unpausing runs yesterday's) failed at its first task. It now says so before the
    UI line, naming the file and the key. Airflow itself is stopped as soon as that line
    is read."""
    from tests.e2e.airflow_support import free_port

    config = tmp_path / "segmint.toml"
    config.write_text("[ingest]\nwiat_for_as_of_events_hours = 8\n")
    env = {
        **ready_airflow,
        "SEGMINT_CONFIG": str(config),
        "AIRFLOW__API__PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmint.airflow_env", "standalone"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Airflow UI:"):
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    warnings = [line.rstrip() for line in lines if line.startswith("Warning: the settings")]
    assert len(warnings) == 1, "".join(lines)
    assert warnings[0].startswith(
        "Warning: the settings the DAG's tasks read are refused: "
        f"{config} [ingest]: unknown key(s) wiat_for_as_of_events_hours; known: "
    )
    assert warnings[0].endswith(
        "Every night (scheduled, triggered or of a backfill) fails at its first task until "
        "that is fixed; the tasks read the settings when they run, so fixing the file is "
        "enough."
    )


def _make_backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segmint.airflow_env", "backfill", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_make_backfill_names_the_nights_it_skips_and_how_to_run_them_again(
    tmp_path: Path,
) -> None:
    """Airflow skips, without a word, the nights of a backfill that already have a run, and
    `make backfill` said "created" as if the whole range would run again: a data engineer
    backfilling after a fix got only the nights that had never run."""
    env, db = _airflow_of_its_own(tmp_path)

    def scheduler_ran(states: dict[str, str]) -> None:
        """What a scheduler would have left: the runs in these states, the backfill done."""
        with sqlite3.connect(db) as con:
            for day, state in states.items():
                con.execute(
                    "update dag_run set state = ? where date(logical_date) = ?", (state, day)
                )
            con.execute("update backfill set completed_at = current_timestamp")

    first = _make_backfill(env, "2026-05-01", "2026-05-03")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "created: 3 night(s) to run (2026-05-01 ... 2026-05-03)." in first.stdout
    assert "already have a run" not in first.stdout
    scheduler_ran({"2026-05-01": "success", "2026-05-02": "failed"})  # 05-03 still queued

    again = _make_backfill(env, "2026-05-01", "2026-05-04")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "created: 1 night(s) to run (2026-05-04)." in again.stdout
    assert (
        "3 night(s) already have a run and are not run again: 2026-05-01 (success), "
        "2026-05-02 (failed), 2026-05-03 (queued). REPROCESS=failed runs the failed ones again"
    ) in again.stdout
    scheduler_ran({"2026-05-03": "success", "2026-05-04": "success"})

    redo = _make_backfill(env, "2026-05-01", "2026-05-02", "--reprocess", "failed")
    assert redo.returncode == 0, redo.stdout[-2000:] + redo.stderr[-2000:]
    assert "created: 1 night(s) to run (2026-05-02)." in redo.stdout
    assert "1 night(s) already have a run and are not run again: 2026-05-01 (success)" in (
        redo.stdout
    )
    scheduler_ran({"2026-05-02": "success"})

    nothing = _make_backfill(env, "2026-05-01", "2026-05-01")
    assert nothing.returncode == 0, nothing.stdout[-2000:] + nothing.stderr[-2000:]
    assert (
        "2026-05-01..2026-05-01 created, but it runs no night.\n"
        "1 night(s) already have a run and are not run again: 2026-05-01 (success)."
    ) in nothing.stdout


@pytest.mark.slow
def test_make_backfill_before_any_scheduler_then_again_while_the_first_is_unfinished(
    tmp_path: Path,
) -> None:
    """`make backfill` on a fresh `.airflow` (no dag-processor has parsed the DAG yet)
    failed with Airflow's traceback `DagNotFound: Could not find dag segmint_nightly`; a
    second `make backfill` while the first was unfinished (no scheduler had run it yet)
    with one ending in `AlreadyRunningBackfill`. The first now parses the DAG and creates
    the backfill; the second is refused in one line naming the unfinished backfill and the
    way out, and creates nothing."""
    env = airflow_environ(
        tmp_path / "airflow_home",
        base={k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))},
    )
    ensure_ready(env)  # what `make backfill` finds on first use: no DAG serialised
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"

    first = _make_backfill(env, "2026-05-01", "2026-05-02")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "created: 2 night(s) to run (2026-05-01 ... 2026-05-02)." in first.stdout

    second = _make_backfill(env, "2026-05-03", "2026-05-03")
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    assert second.stderr.strip().splitlines() == [
        "no backfill created: the backfill 1 of segmint_nightly (2026-05-01..2026-05-02) is "
        "not finished: 2 of its night(s) queued or running, 0 done. Airflow runs one "
        "backfill of a DAG at a time: let the scheduler finish it (`make airflow`, the DAG "
        "unpaused), then run this `make backfill` again; or cancel it (the DAG's page in the "
        "UI: Cancel backfill; or PUT /api/v2/backfills/1/cancel)"
    ]
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from backfill").fetchone() == (1,)
        con.execute("update backfill set is_paused = 1")  # paused in the UI
    paused = _make_backfill(env, "2026-05-03", "2026-05-03")
    assert paused.returncode == 1
    assert (
        "(2026-05-01..2026-05-02) is not finished and paused: 2 of its night(s) queued or "
        "running, 0 done. Airflow runs one backfill of a DAG at a time: let the scheduler "
        "finish it (`make airflow`, the DAG unpaused; the backfill too: Unpause backfill on "
        "the DAG's page), then"
    ) in paused.stderr
    with sqlite3.connect(db) as con:
        # what the scheduler leaves once it ran both nights
        con.execute("update dag_run set state = 'success'")
        con.execute("update backfill set completed_at = current_timestamp")

    third = _make_backfill(env, "2026-05-03", "2026-05-03")
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-2000:]
    assert "created: 1 night(s) to run (2026-05-03)." in third.stdout


def test_make_backfill_of_nights_not_over_yet_is_refused_in_one_line(tmp_path: Path) -> None:
    """Today and tomorrow pass the date check, but Airflow creates no backfill run for a
    night whose UTC day is not over: a range of only such nights ended in the traceback of
    `NoBackfillRunsToCreate`. Refused before Airflow is asked (no AIRFLOW_HOME created)."""
    today = datetime.now(UTC).date()
    home = tmp_path / "airflow"
    nights = [str(today), str(today + timedelta(days=1))]
    proc = _make_backfill({**os.environ, "AIRFLOW_HOME": str(home)}, *nights)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"no backfill created: every night of it, {today}..{today + timedelta(days=1)}: not "
        f"over yet (today is {today} UTC; a night runs once its UTC day has ended): the "
        "scheduled run of each does it, or a backfill once it is over"
    ]
    assert not home.exists()


@pytest.mark.slow
def test_make_backfill_up_to_tomorrow_names_the_nights_airflow_leaves_out(
    tmp_path: Path,
) -> None:
    """Airflow dropped today and tomorrow from a backfill without a word, and `make
    backfill` said only "1 night(s) to run": the nights left out are now named."""
    env, db = _airflow_of_its_own(tmp_path)
    today = datetime.now(UTC).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    proc = _make_backfill(env, str(yesterday), str(tomorrow))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"created: 1 night(s) to run ({yesterday})." in proc.stdout
    assert (
        f"Not in the backfill: {today}..{tomorrow}: not over yet (today is {today} UTC; a "
        "night runs once its UTC day has ended)"
    ) in proc.stdout
    with sqlite3.connect(db) as con:
        runs = con.execute("select date(logical_date) from dag_run").fetchall()
    assert runs == [(str(yesterday),)]


@pytest.mark.slow
def test_make_backfill_names_the_nights_without_events_files(tmp_path: Path) -> None:
    """A backfill over days with no files said nothing: those nights ran without their day's
    events (the validate task only warns) or, before the first delivery, failed one by one
    at segment. `make backfill` now names them, as spans, before the scheduler runs them."""
    env, _ = _airflow_of_its_own(tmp_path)
    landing = tmp_path / "landing"
    for day in ("2026-05-03", "2026-05-06"):
        partition = landing / "events" / f"dt={day}"
        partition.mkdir(parents=True)
        (partition / "events.jsonl").write_text('{"event_id": "e1"}\n')
    (landing / "events" / "dt=2026-05-04").mkdir()  # a folder without a file: no delivery
    proc = _make_backfill({**env, "SEGMINT_LANDING": str(landing)}, "2026-05-01", "2026-05-06")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "created: 6 night(s) to run" in proc.stdout
    assert (
        f"4 of the 6 night(s) have no events file in {landing}/events (dt=DATE): "
        "2026-05-01..2026-05-02, 2026-05-04..2026-05-05. They run without that day's events"
    ) in proc.stdout


@pytest.mark.slow
def test_make_backfill_says_unpausing_would_publish_a_night_without_events(
    tmp_path: Path,
) -> None:
    """After `make run`, `make airflow` and `make backfill` on the demo data (the README's
    first day), unpausing the DAG for the backfill also ran yesterday's scheduled night,
    months after the demo's last partition: it published that night, and from then on no
    night of the demo published ("holds the later night"). `make backfill` says so while
    the DAG is still paused, with the setting that keeps such a night from running."""
    env, db = _airflow_of_its_own(tmp_path)
    landing = tmp_path / "landing"
    partition = landing / "events" / "dt=2026-06-30"
    partition.mkdir(parents=True)
    (partition / "events.jsonl").write_text('{"event_id": "e1"}\n')
    env = {**env, "SEGMINT_LANDING": str(landing)}
    yesterday = datetime.now(UTC).date() - timedelta(days=1)

    proc = _make_backfill(env, "2026-06-29", "2026-06-30")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (
        f"The DAG is paused. Unpausing it also starts its scheduled night of {yesterday} "
        "(catchup is off: the latest day over), and the landing zone has no events for it "
        f"({landing}/events/dt={yesterday}; the newest partition is dt=2026-06-30): that "
        f"night runs on what is loaded and publishes {yesterday}, and after it no earlier "
        "night publishes"
    ) in proc.stdout
    assert "set `[ingest] require_as_of_events = true` in the settings file" in proc.stdout

    def finished() -> None:
        with sqlite3.connect(db) as con:
            con.execute("update backfill set completed_at = current_timestamp")

    finished()
    config = tmp_path / "segmint.toml"
    config.write_text("[ingest]\nrequire_as_of_events = true\n")
    required = _make_backfill({**env, "SEGMINT_CONFIG": str(config)}, "2026-06-28", "2026-06-28")
    assert required.returncode == 0, required.stdout[-2000:] + required.stderr[-2000:]
    assert "The DAG is paused" not in required.stdout  # that night fails, loading nothing

    finished()
    with sqlite3.connect(db) as con:
        con.execute("update dag set is_paused = 0")  # unpaused: that night ran already
    unpaused = _make_backfill(env, "2026-06-27", "2026-06-27")
    assert unpaused.returncode == 0, unpaused.stdout[-2000:] + unpaused.stderr[-2000:]
    assert "The DAG is paused" not in unpaused.stdout
