"""The task glue and callbacks under a real `airflow dags test`: success rows, a retry after
a transient error, a gate failure that is not retried and says which stage and where the
log is, and nothing downstream of a failure runs.

The stages here are tiny functions registered in a throw-away DAG folder, so the test
needs none of the real stages and runs in seconds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from segmint.airflow_env import airflow_bin
from segmint.pipeline import STAGES
from tests.dags.stubs import stub_dag
from tests.db import fetch

STAGES_MODULE = textwrap.dedent(
    """
    from pathlib import Path
    from segmint.stages import QualityGateError, StageResult

    def fine(settings, as_of):
        return StageResult(
            "fine",
            rows_in=5,
            rows_out=4,
            summary=f"fine for {as_of}",
            warnings=["1 row had no customer id"],
        )

    def flaky(settings, as_of):
        marker = settings.warehouse.parent / "flaky-tried"
        if not marker.exists():
            marker.touch()
            raise OSError("transient: the disk hiccuped")
        return StageResult("flaky", rows_in=1, rows_out=1, summary="second time lucky")

    def gate(settings, as_of):
        raise QualityGateError("events 2026-06-30: 12% of rows quarantined (limit 5%)")

    def report(settings, as_of):
        raise AssertionError("must never run after a failed gate")
    """
)

DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime, timedelta

    from airflow.sdk import dag, task
    import segmint.pipeline
    from segmint.ops import on_task_failure, on_task_retry

    for name in ("fine", "flaky", "gate", "report"):
        segmint.pipeline.STAGES[name] = f"glue_stages:{name}"


    @task
    def run_stage(stage: str) -> dict:
        from segmint.ops import run_stage_task

        return run_stage_task(stage)


    @dag(
        dag_id="segmint_glue",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        default_args={
            "owner": "segmint",
            "retries": 2,
            "retry_delay": timedelta(seconds=1),
            "on_failure_callback": on_task_failure,
            "on_retry_callback": on_task_retry,
        },
    )
    def segmint_glue():
        tasks = [run_stage.override(task_id=n)(n) for n in ("fine", "flaky", "gate", "report")]
        for up, down in zip(tasks, tasks[1:]):
            up >> down


    segmint_glue()
    """
)


@pytest.fixture(scope="module")
def glue_run(ready_airflow: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("glue")
    warehouse = root / "warehouse" / "segmint.duckdb"
    env = {"SEGMINT_WAREHOUSE": str(warehouse), "SEGMINT_OUTPUT": str(root / "output")}
    return _glue_dags_test(ready_airflow, root, env), warehouse


def _dags_test(dag_id: str, night: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`airflow dags test dag_id night` in ``env``, its output captured as text."""
    return subprocess.run(
        [airflow_bin(), "dags", "test", dag_id, night],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _glue_dags_test(
    ready_airflow: dict[str, str], root: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`airflow dags test` of the glue DAG for 2026-06-30, its files written under root."""
    dags = root / "dags"
    dags.mkdir()
    (dags / "glue_stages.py").write_text(STAGES_MODULE)
    (dags / "glue_dag.py").write_text(DAG_FILE)
    return _dags_test(
        "segmint_glue",
        "2026-06-30",
        {**ready_airflow, "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "PYTHONPATH": str(dags), **env},
    )


def pipeline_runs(warehouse: Path) -> dict[str, tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select task_id, status, try_number, as_of_date::varchar, rows_in, rows_out, "
            "summary, error, log_location, duration_s from ops.pipeline_runs "
            "where dag_id = 'segmint_glue'"
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def test_failed_gate_fails_the_run(glue_run) -> None:
    proc, _ = glue_run
    assert proc.returncode != 0
    assert "DagRun failed" in proc.stdout + proc.stderr


def test_success_rows_carry_row_counts_and_timings(glue_run) -> None:
    _, warehouse = glue_run
    runs = pipeline_runs(warehouse)
    status, tries, as_of, rows_in, rows_out, summary, error, _, duration = runs["fine"]
    assert (status, tries, as_of, rows_in, rows_out) == ("success", 1, "2026-06-30", 5, 4)
    # the stage's one warning: counted in the summary, kept in the warnings column
    assert summary == "fine for 2026-06-30 (1 warning: see the warnings column)"
    assert fetch(warehouse, "select warnings from ops.pipeline_runs where task_id = 'fine'") == [
        ("1 row had no customer id",)
    ]
    assert error is None
    assert duration is not None and duration >= 0


def test_each_progress_line_is_in_the_task_log_once(glue_run) -> None:
    """The glue and `segmint.pipeline.run_stage` both logged a stage's start, end and every
    warning, so each was in the task log twice."""
    proc, _ = glue_run
    output = proc.stdout + proc.stderr
    assert output.count("stage fine starting for as_of=2026-06-30") == 1
    assert output.count("fine for 2026-06-30 [") == 1  # the done line; the XCom is quoted
    # ... with the stage's duration (the line said what, not how long)
    assert re.search(r"stage fine done for as_of=2026-06-30 in \d+\.\d s: fine for", output)
    assert output.count("1 row had no customer id [") == 1
    assert "segmint: stage fine warning: 1 row had no customer id" in output


def test_transient_error_is_retried_and_the_night_goes_on(glue_run) -> None:
    proc, warehouse = glue_run
    status, tries, *_ = pipeline_runs(warehouse)["flaky"]
    assert (status, tries) == ("success", 2)
    assert "segmint: stage 'flaky' up for retry for as_of=2026-06-30" in proc.stdout + proc.stderr


def test_gate_failure_is_not_retried_and_says_what_and_where(glue_run) -> None:
    proc, warehouse = glue_run
    runs = pipeline_runs(warehouse)
    status, tries, as_of, *_, error, log_location, _ = runs["gate"]
    assert (status, tries, as_of) == ("failed", 1, "2026-06-30")
    assert error.startswith("QualityGateError: events 2026-06-30: 12% of rows quarantined")
    assert "task_id=gate" in log_location
    output = proc.stdout + proc.stderr
    assert "segmint: stage 'gate' failed for as_of=2026-06-30" in output
    assert "the night is NOT published" in output
    assert "report" not in runs, "nothing downstream of a failed gate runs"


def test_a_night_failed_before_its_report_leaves_a_page_saying_so(glue_run) -> None:
    """The report folder showed yesterday's page as the newest; the failed night's folder
    now holds a page naming the failed task (segmint.report.failed)."""
    _, warehouse = glue_run
    page = (warehouse.parent.parent / "output" / "2026-06-30" / "report.html").read_text()
    assert 'data-failed-stage="gate"' in page
    assert "failed at its 'gate' stage (QualityGateError)" in page


def test_a_future_as_of_fails_the_first_task_at_once(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """A logical date later than tomorrow (a typo in a manual trigger) is refused before any
    stage runs, and not retried: published, it would block every real night."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "glue_stages.py").write_text(STAGES_MODULE)
    (dags / "glue_dag.py").write_text(DAG_FILE)
    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    future = date(datetime.now(UTC).year + 1, 6, 30).isoformat()
    env = {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SEGMINT_WAREHOUSE": str(warehouse),
        "PYTHONPATH": str(dags),
    }
    proc = _dags_test("segmint_glue", future, env)
    assert proc.returncode != 0
    status, tries, as_of, *_, error, _, _ = pipeline_runs(warehouse)["fine"]
    assert (status, tries, as_of) == ("failed", 1, future)
    assert f"as-of date {future} (this DAG run's logical date or conf as_of) is in the future" in (
        error
    )
    assert "flaky" not in pipeline_runs(warehouse)


def test_a_broken_config_fails_the_first_task_at_once(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """A misspelt key in the config file fails the night at its first task, naming the file
    and the key, and is not retried: every retry would read the same file (with the real
    DAG's back-off, `make run` sat 6 minutes before saying so)."""
    config = tmp_path / "segmint.toml"
    config.write_text("[ingest]\nmax_quarantine_shar = 0.1\n")
    env = {
        "SEGMINT_WAREHOUSE": str(tmp_path / "warehouse" / "segmint.duckdb"),
        "SEGMINT_CONFIG": str(config),
    }
    proc = _glue_dags_test(ready_airflow, tmp_path, env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "segmint: stage 'fine' failed for as_of=2026-06-30" in output
    assert "try 1 of 3); not retried" in output
    assert f"ConfigError: {config} [ingest]: unknown key(s) max_quarantine_shar" in output
    assert "up for retry" not in output


def test_a_night_failed_by_a_broken_config_is_recorded_with_what_analysts_read(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """The night a broken settings file failed left no row in ops.pipeline_runs (`could not
    record the failure in ops.pipeline_runs: <the same error>`) and its message did not say
    which night analysts still read: both need the warehouse, whose path the refused
    settings were to give. The path of SEGMINT_WAREHOUSE (here) or the file's own top-level
    `warehouse` still names it."""
    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    published = warehouse.parent / "published" / warehouse.name
    for path, night in ((warehouse, None), (published, "2026-06-29")):
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        con.execute("create schema ops")
        if night:
            con.execute(f"create table ops.publication as select date '{night}' as as_of_date")
        con.close()
    config = tmp_path / "segmint.toml"
    config.write_text('[transform]\nthreads = "two"\n')
    env = {"SEGMINT_WAREHOUSE": str(warehouse), "SEGMINT_CONFIG": str(config)}
    proc = _glue_dags_test(ready_airflow, tmp_path, env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "could not record the failure" not in output
    assert f"The published warehouse {published} is unchanged (the night 2026-06-29)" in output
    status, tries, as_of, *_, error, log, _ = pipeline_runs(warehouse)["fine"]
    assert (status, tries, as_of) == ("failed", 1, "2026-06-30")
    assert error == f"ConfigError: {config} [transform].threads: expected a number, got 'two'"
    assert "task_id=fine" in log


KILLED_STAGES = textwrap.dedent(
    """
    import os
    import signal
    from datetime import date

    from segmint.stages import StageResult

    def first(settings, as_of):
        if as_of == date(2026, 6, 29):
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 of `airflow dags test` mid-night
        return StageResult("ingest", summary=f"ran for {as_of}")
    """
)


def _killed_env(ready_airflow: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment of :func:`_killed_then_next`'s DAGs: the dags folder and warehouse
    under ``tmp_path``."""
    return {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "SEGMINT_WAREHOUSE": str(tmp_path / "warehouse" / "segmint.duckdb"),
        "PYTHONPATH": str(tmp_path / "dags"),
    }


def _killed_then_next(
    ready_airflow: dict[str, str],
    tmp_path: Path,
    name: str,
    files: dict[str, str],
    killed_night: str,
    next_night: str,
) -> tuple[subprocess.CompletedProcess, str]:
    """``airflow dags test`` of DAG ``segmint_<name>`` (``files``: the dags folder) for
    ``killed_night``, which must end by a kill -9, then of ``next_night``: its process and
    output."""
    dags = tmp_path / "dags"
    dags.mkdir()
    for file, text in files.items():
        (dags / file).write_text(text)
    env = _killed_env(ready_airflow, tmp_path)
    command = [airflow_bin(), "dags", "test", f"segmint_{name}"]
    killed = subprocess.run([*command, killed_night], env=env, capture_output=True, timeout=600)
    assert killed.returncode == -9
    proc = subprocess.run(
        [*command, next_night], env=env, capture_output=True, text=True, timeout=120
    )
    return proc, proc.stdout + proc.stderr


def test_a_night_after_a_killed_dags_test_fails_at_once_instead_of_waiting_forever(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """`airflow dags test` killed mid-night leaves its run 'running', and no scheduler will
    ever finish it. The next night's first task waited for it, rescheduling every 20 s
    forever (measured: 10 minutes, then killed), while `make run` printed nothing."""
    proc, output = _killed_then_next(
        ready_airflow,
        tmp_path,
        "killed",
        {
            "killed_stages.py": KILLED_STAGES,
            "killed_dag.py": stub_dag("killed", {"ingest": "killed_stages:first"}),
        },
        "2026-06-29",
        "2026-06-30",
    )
    assert proc.returncode != 0
    assert "is still queued or running, and under `airflow dags test`" in output
    assert "segmint: stage 'ingest' failed for as_of=2026-06-30" in output
    assert "try 1 of 3); not retried" in output
    assert "waits for the earlier night" not in output


KILLED_ONCE_STAGES = textwrap.dedent(
    """
    import os
    import signal
    from datetime import date
    from pathlib import Path

    from segmint.stages import StageResult

    def first(settings, as_of):
        killed = Path(settings.warehouse).with_name("killed-once")
        if as_of == date(2026, 6, 29) and not killed.exists():
            killed.parent.mkdir(parents=True, exist_ok=True)
            killed.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 of `airflow dags test` mid-night
        return StageResult("ingest", summary=f"ran for {as_of}")
    """
)


def test_the_night_a_killed_dags_test_left_running_is_named_with_its_date_and_way_out(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """The run a killed `airflow dags test` left 'running' is named after the time it ran
    (manual__2026-12-06T23:00:00...), so the next night's failure did not say which night it
    was, and its ways out were the UI or `rm -rf .airflow` (every run's history gone). It
    names the night's logical date and the command that runs it again to its end, replacing
    the stuck run; after that the next night runs."""
    proc, output = _killed_then_next(
        ready_airflow,
        tmp_path,
        "killed_once",
        {
            "killed_once_stages.py": KILLED_ONCE_STAGES,
            "killed_once_dag.py": stub_dag("killed_once", {"ingest": "killed_once_stages:first"}),
        },
        "2026-06-29",
        "2026-06-30",
    )
    assert proc.returncode != 0
    assert "(logical date 2026-06-29) of this DAG is still queued or running" in output
    assert (
        "Run that night again to its end (`airflow dags test segmint_killed_once 2026-06-29`, "
        "for make run's Airflow `python -m segmint.airflow_env dags-test 2026-06-29`: it "
        "replaces that run)"
    ) in output

    env = _killed_env(ready_airflow, tmp_path)
    for night in ("2026-06-29", "2026-06-30"):  # the way out, then the next night
        again = _dags_test("segmint_killed_once", night, env)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert f"ran for {night}" in again.stdout + again.stderr


HALF_WAY_STAGES = textwrap.dedent(
    """
    import os
    import signal
    from datetime import date
    from pathlib import Path

    from segmint.stages import StageResult

    def first(settings, as_of):
        return StageResult("ingest", summary=f"ingested {as_of}")

    def second(settings, as_of):
        killed = Path(settings.warehouse).with_name("killed-once")
        if as_of == date(2026, 6, 30) and not killed.exists():
            killed.parent.mkdir(parents=True, exist_ok=True)
            killed.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # the night stops half way, still 'running'
        return StageResult("transform", summary=f"transformed {as_of}")
    """
)


def test_an_earlier_night_does_not_start_while_a_later_one_is_half_way(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """A night waited only for the nights before it. An earlier night started while a
    later one was half way through its stages (a backfill created while tonight's run was
    running, seen under `make airflow`) ran its stages between the later night's: its
    transform replaced the marts between the later night's transform and segment, which
    then failed. The later night here is left running by a kill -9 after its first stage,
    so under `airflow dags test` the earlier night fails at once, naming it: by its date
    and with the command that finishes it (it named the run id of a `dags test`, the time
    it ran, and only the UI or `rm -rf .airflow` as ways out). That command then finishes
    it, and the earlier night runs."""
    proc, output = _killed_then_next(
        ready_airflow,
        tmp_path,
        "half_way",
        {
            "half_way_stages.py": HALF_WAY_STAGES,
            "half_way_dag.py": stub_dag(
                "half_way",
                {"ingest": "half_way_stages:first", "transform": "half_way_stages:second"},
            ),
        },
        "2026-06-30",
        "2026-06-29",
    )
    assert proc.returncode != 0
    assert re.search(
        r"the night 2026-06-30 \(DAG run manual__\S+\) of this DAG is half way through its "
        r"stages, and under `airflow dags test`",
        output,
    ), output[-3000:]
    assert (
        "Run that night again to its end (`airflow dags test segmint_half_way 2026-06-30`, "
        "for make run's Airflow `python -m segmint.airflow_env dags-test 2026-06-30`: it "
        "replaces that run)"
    ) in output
    assert "segmint: stage 'ingest' failed for as_of=2026-06-29" in output
    assert "transformed 2026-06-29" not in output

    env = _killed_env(ready_airflow, tmp_path)
    for night in ("2026-06-30", "2026-06-29"):  # the way out, then the earlier night
        again = _dags_test("segmint_half_way", night, env)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert f"transformed {night}" in again.stdout + again.stderr


STUCK_STAGES = textwrap.dedent(
    """
    import time
    from datetime import date

    import duckdb

    from segmint.stages import StageResult

    def stuck(settings, as_of):
        if as_of == date(2026, 6, 29):
            time.sleep(3600)  # a hung stage in Python: a lock, a mount, a child process
        con = duckdb.connect(str(settings.warehouse))
        con.execute("select count(*) from range(1000000000000)")  # a query that never ends
        return StageResult("transform", summary="never")

    def after(settings, as_of):
        return StageResult("segment", summary=f"segmented {as_of}")
    """
)


def test_a_stage_past_its_execution_timeout_fails_the_night_at_once(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """A stage stopped by its task's execution_timeout (3 h in the real DAG) was retried
    twice like any error: a stuck stage held the one-slot warehouse pool for about 9 h
    before the night failed, and each try's message said only "AirflowTaskTimeout:
    Timeout, PID: N". One stuck inside a DuckDB query failed at once but said "RuntimeError:
    Query interrupted", which did not say it was the timeout. Both now fail at the first
    try, naming the timeout and what to do."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "stuck_stages.py").write_text(STUCK_STAGES)
    (dags / "stuck_dag.py").write_text(
        stub_dag(
            "stuck",
            {"transform": "stuck_stages:stuck", "segment": "stuck_stages:after"},
            default_args='"execution_timeout": timedelta(seconds=4),',
        )
    )
    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    env = {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SEGMINT_WAREHOUSE": str(warehouse),
        "PYTHONPATH": str(dags),
    }
    for night, stopped_in in (
        ("2026-06-29", "AirflowTaskTimeout"),
        ("2026-06-30", "RuntimeError: Query interrupted"),
    ):
        proc = _dags_test("segmint_stuck", night, env)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "up for retry" not in output
        assert f"segmint: stage 'transform' failed for as_of={night}" in output
        assert "try 1 of 3); not retried; the night is NOT published" in output
        assert f"segmented {night}" not in output
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            status, tries, error = con.execute(
                "select status, try_number, error from ops.pipeline_runs "
                "where task_id = 'transform' and as_of_date = ?",
                [night],
            ).fetchone()
        finally:
            con.close()
        assert (status, tries) == ("failed", 1)
        assert error.startswith(
            "StageTimeoutError: stage transform ran past its execution_timeout of 0:00:04 "
            f"and was stopped ({stopped_in}"
        ), error
        assert "raise execution_timeout in dags/segmint_nightly.py" in error


NEXT_STEP_STAGES = textwrap.dedent(
    """
    from segmint.stages import StageResult

    def ingest(settings, as_of):
        return StageResult("ingest", summary=f"ingested {as_of}")
    """
)


def test_a_failed_quality_gate_names_the_clear_command_of_its_night(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """The real ingest and validate stages on a partition with a quarter of its rows
    quarantined. The gate said "under Airflow clear the `ingest` task and downstream" and
    no more; `airflow tasks clear segmint_nightly -t ingest -d` without -s/-e clears that
    task in every run of the DAG (once confirmed, every past night runs again). The log now
    gives the command with the night's dates."""
    partition = tmp_path / "landing" / "events" / "dt=2026-06-30"
    partition.mkdir(parents=True)
    events = [
        {
            "event_type": "product_view",
            "event_id": f"e{i}",
            "event_ts": "garbage" if i % 4 == 0 else f"2026-06-30T10:{i:02d}:00Z",
            "customer_id": f"C{i}",
            "product_id": "SKU-1",
            "price": 1.0,
        }
        for i in range(20)
    ]
    (partition / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "gate_dag.py").write_text(
        stub_dag("gate", {s: STAGES[s] for s in ("ingest", "validate")})
    )
    env = {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SEGMINT_WAREHOUSE": str(tmp_path / "warehouse" / "segmint.duckdb"),
        "SEGMINT_LANDING": str(tmp_path / "landing"),
        "SEGMINT_OUTPUT": str(tmp_path / "output"),
    }
    proc = _dags_test("segmint_gate", "2026-06-30", env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "segmint: stage 'validate' failed for as_of=2026-06-30" in output
    assert "QualityGateError: quality gate failed for 1 partition(s)" in output
    assert (
        "Next: in Airflow, run this night from its `ingest` task: `airflow tasks clear "
        "segmint_gate -t ingest -d -s 2026-06-30 -e 2026-06-30`."
    ) in output


def test_a_stage_missing_its_input_names_the_task_to_clear(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """A stage whose input is missing says what to run on the command line ("run `segmint
    transform` first"): a `segment` cleared alone for a night older than the last
    `transform` failed so, and the task log left the operator to translate it. The log
    now names the Airflow step: clear the night from that task."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "next_stages.py").write_text(NEXT_STEP_STAGES)
    (dags / "next_dag.py").write_text(
        stub_dag(
            "next", {"ingest": "next_stages:ingest", "segment": "ml.segmentation:run_segmentation"}
        )
    )
    env = {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SEGMINT_WAREHOUSE": str(tmp_path / "warehouse" / "segmint.duckdb"),
        "PYTHONPATH": str(dags),
    }
    proc = _dags_test("segmint_next", "2026-06-30", env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "segmint: stage 'segment' failed for as_of=2026-06-30" in output
    assert "run `segmint transform` first" in output
    assert (
        "Next: in Airflow, run this night from its `transform` task: `airflow tasks clear "
        "segmint_next -t transform -d -s 2026-06-30 -e 2026-06-30`."
    ) in output


def test_a_night_without_its_events_says_so_in_its_run_record(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """The real ingest and quality gate on a landing zone whose events partition of the
    night is missing: the validate row of ops.pipeline_runs said "quality gate passed for 0
    partition(s)" and nothing else, read as a clean pass; the warning was only in the task
    log and the XCom. The row now carries the warning, and its summary says there is one."""
    from segmint.generate import generate

    landing = tmp_path / "landing"
    generate(landing, customers=60, days=4, end_date=date(2026, 6, 30))
    shutil.rmtree(landing / "events" / "dt=2026-06-30")
    dags = tmp_path / "dags"
    dags.mkdir()
    stages = {"ingest": STAGES["ingest"], "validate": STAGES["validate"]}
    (dags / "missing_dag.py").write_text(stub_dag("missing", stages))
    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    env = {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "PYTHONPATH": str(dags),
        "SEGMINT_WAREHOUSE": str(warehouse),
        "SEGMINT_LANDING": str(landing),
        "SEGMINT_OUTPUT": str(tmp_path / "output"),
    }
    proc = _dags_test("segmint_missing", "2026-06-30", env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    (summary, warnings), *_ = fetch(
        warehouse,
        "select summary, warnings from ops.pipeline_runs "
        "where dag_id = 'segmint_missing' and task_id = 'validate' and status = 'success'",
    )
    assert summary.startswith("quality gate passed for ")
    assert summary.endswith("(1 warning: see the warnings column)")
    assert warnings == (
        "no events files for the as-of date 2026-06-30; the newest events partition is "
        "dt=2026-06-29, 1 day(s) before it; the CRM files of that day did land: the events "
        "export alone is late or stopped (tonight's consent and profile changes go out; "
        "visits and orders of the day are missing from the features)"
    )


def test_the_run_record_of_an_older_warehouse_gains_the_warnings_column(tmp_path: Path) -> None:
    """A warehouse made before the warnings column: its table is migrated, its rows kept."""
    from segmint.ops import TaskRun, record_task_run

    warehouse = tmp_path / "segmint.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema ops")
    con.execute(
        "create table ops.pipeline_runs (dag_id varchar not null, run_id varchar not null, "
        "task_id varchar not null, as_of_date date, status varchar not null, try_number "
        "integer, started_at timestamp, ended_at timestamp, duration_s double, rows_in "
        "bigint, rows_out bigint, summary varchar, error varchar, log_location varchar, "
        "hostname varchar, recorded_at timestamp not null)"
    )
    con.execute(
        "insert into ops.pipeline_runs (dag_id, run_id, task_id, status, recorded_at) "
        "values ('segmint_nightly', 'old', 'ingest', 'success', now())"
    )
    con.close()
    record_task_run(
        warehouse,
        TaskRun("segmint_nightly", "new", "validate", "success", warnings="no events files"),
    )
    assert fetch(warehouse, "select run_id, warnings from ops.pipeline_runs order by 1") == [
        ("new", "no events files"),
        ("old", None),
    ]


NIGHT_STAGES = textwrap.dedent(
    """
    from segmint.stages import StageResult

    def ingest(settings, as_of):
        return StageResult("ingest", summary=f"ingested {as_of}")

    def transform(settings, as_of):
        return StageResult("transform", summary=f"transformed {as_of}")
    """
)


def _night_dags_test(
    ready_airflow: dict[str, str], tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`airflow dags test segmint_night ARGS` of a two-stage stub DAG run by segmint's glue."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "night_stages.py").write_text(NIGHT_STAGES)
    stages = {s: f"night_stages:{s}" for s in ("ingest", "transform")}
    (dags / "night_dag.py").write_text(stub_dag("night", stages))
    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    env = {
        **ready_airflow,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "PYTHONPATH": str(dags),
        "SEGMINT_WAREHOUSE": str(warehouse),
        "SEGMINT_OUTPUT": str(tmp_path / "output"),
    }
    proc = subprocess.run(
        [airflow_bin(), "dags", "test", "segmint_night", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, warehouse


def test_a_manual_run_triggered_now_builds_the_last_complete_night(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """Airflow 3's Trigger form fills in the moment it was opened as the logical date, as
    `airflow dags test DAG` without a date does: the run built as of today, a day not over,
    and published a partial day. It now builds yesterday (UTC), the night the schedule ran
    last, and its task log and its first task's row in ops.pipeline_runs say why."""
    before = datetime.now(UTC).date()
    proc, warehouse = _night_dags_test(ready_airflow, tmp_path)
    after = datetime.now(UTC).date()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    rows = fetch(
        warehouse,
        "select task_id, as_of_date, summary, warnings from ops.pipeline_runs "
        "where dag_id = 'segmint_night' order by started_at",
    )
    yesterday = rows[0][1]
    assert yesterday in {before - timedelta(days=1), after - timedelta(days=1)}
    assert [(r[0], r[1], r[2].split(" (")[0]) for r in rows] == [
        ("ingest", yesterday, f"ingested {yesterday}"),
        ("transform", yesterday, f"transformed {yesterday}"),
    ]
    note = f"in a day not over: it builds the last complete day, {yesterday} (the night"
    assert note in rows[0][3] and 'conf {"as_of": "YYYY-MM-DD"}' in rows[0][3]
    assert rows[0][2].endswith("(1 warning: see the warnings column)")
    assert rows[1][3] is None
    assert f"segmint: this manual run's logical date, {yesterday + timedelta(days=1)}" in output


def test_a_manual_run_given_its_night_keeps_it(
    ready_airflow: dict[str, str], tmp_path: Path
) -> None:
    """A night given as a date (`-l 2026-07-08`, `dags test DAG 2026-07-08`: 00:00 UTC) or
    in conf is the night built, with no note."""
    proc, warehouse = _night_dags_test(
        ready_airflow, tmp_path, "2026-07-09T15:30:00+00:00", "-c", '{"as_of": "2026-07-08"}'
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    rows = fetch(
        warehouse,
        "select task_id, as_of_date::varchar, warnings from ops.pipeline_runs order by started_at",
    )
    assert rows == [("ingest", "2026-07-08", None), ("transform", "2026-07-08", None)]
    assert "this manual run's logical date" not in proc.stdout + proc.stderr
