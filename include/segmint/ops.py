"""Run bookkeeping for the orchestrator: ``ops.pipeline_runs`` and the Airflow task glue.

The DAG (``dags/segmint_nightly.py``) stays a config file: each task calls
:func:`run_stage_task`, and every task has :func:`on_task_failure` /
:func:`on_task_retry` as callbacks. This module is imported when the DAG file is parsed, so
it imports nothing heavy at top level (no DuckDB, no Airflow): those come inside functions.

``ops.pipeline_runs`` has one row per DAG run and task (``dag_id, run_id, task_id``): a
retry or a rerun of the same task in the same DAG run replaces the row, so the table shows
the latest attempt, with ``try_number`` telling how many it took.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from segmint.config import ConfigError
from segmint.stages import (
    DbtKilledError,
    DiskFaultError,
    SegmintError,
    StageResult,
    StageTimeoutError,
    WarehouseBusyError,
)

log = logging.getLogger(__name__)

# Every task that writes the warehouse runs in this pool; it has one slot (DuckDB has one
# writing process per file). `segmint.airflow_env` creates it in the local Airflow.
WAREHOUSE_POOL = "segmint_warehouse"

PIPELINE_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS ops.pipeline_runs (
    dag_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    task_id VARCHAR NOT NULL,
    as_of_date DATE,
    status VARCHAR NOT NULL,          -- 'success' | 'failed' | 'up_for_retry'
    try_number INTEGER,
    started_at TIMESTAMP,             -- UTC
    ended_at TIMESTAMP,               -- UTC
    duration_s DOUBLE,
    rows_in BIGINT,
    rows_out BIGINT,
    summary VARCHAR,
    error VARCHAR,
    log_location VARCHAR,
    hostname VARCHAR,
    recorded_at TIMESTAMP NOT NULL,   -- UTC
    warnings VARCHAR                  -- the stage's warnings, one a line; NULL: none
)
"""
# Warehouses made before the warnings column: a night without its events partition was
# recorded as "quality gate passed for 0 partition(s)", its warning in the task log alone.
PIPELINE_RUNS_MIGRATIONS = (
    "ALTER TABLE ops.pipeline_runs ADD COLUMN IF NOT EXISTS warnings VARCHAR",
)

# Only faults of the environment are worth a retry: a file lock still held by a dying
# process, memory, disk, the network, a timeout. A gate that said no, bad input or
# configuration (every SegmintError is a message for a person) and bugs (AttributeError,
# TypeError, ...) fail the same way every time: those fail at once, so a night does not sit
# through the back-off before telling anyone. One SegmintError is transient: another segmint
# process (an export, an erasure, `segmint run` by hand) kept the warehouse past the 30 min
# wait (WarehouseBusyError); it said "run it again when that is done", and was not retried.
# Nor was dbt's full disk (the transform tells it as DiskFaultError), while every other
# stage's was: the same fault, retried as the OSError or DuckDB error it is.
# A task whose process is killed (kill -9, the OOM killer) never gets here: the scheduler
# sees it die and retries it.
RETRYABLE: tuple[type[BaseException], ...] = (OSError, MemoryError, TimeoutError)
# DuckDB's own exceptions for the same faults (matched by name: no DuckDB import here).
RETRYABLE_DUCKDB = {"IOException", "OutOfMemoryException", "ConnectionException"}


def is_retryable(exc: BaseException) -> bool:
    """Whether a retry of the stage could succeed where this attempt failed."""
    if isinstance(exc, WarehouseBusyError | DiskFaultError | DbtKilledError):
        return True
    if isinstance(exc, SegmintError | ConfigError):
        return False
    if isinstance(exc, RETRYABLE) or _disk_fault(exc) is not None:
        return True  # a disk fault: DuckDB's FatalException of a checkpoint that found no room
    return any(
        cls.__name__ in RETRYABLE_DUCKDB and cls.__module__.lstrip("_").startswith("duckdb")
        for cls in type(exc).__mro__
    )


@dataclass
class TaskRun:
    """One row of ``ops.pipeline_runs``."""

    dag_id: str
    run_id: str
    task_id: str
    status: str
    as_of_date: date | None = None
    try_number: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    summary: str | None = None
    error: str | None = None
    log_location: str | None = None
    hostname: str | None = None
    warnings: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.ended_at:
            return round((self.ended_at - self.started_at).total_seconds(), 3)
        return None


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def record_task_run(warehouse: Path, run: TaskRun, attempts: int = 5) -> None:
    """Upsert ``run`` into ``ops.pipeline_runs`` of the working warehouse.

    Retries a few times when another process holds the file (a stage that is still shutting
    down); raises the last error after that so the caller can log it.
    """
    from segmint.warehouse import exclusive

    # Waits for a segmint process using the file (an export) like the stages do; the retries
    # below are for a process outside segmint's lock (a dying stage's dbt child).
    with exclusive(warehouse, f"recording task {run.task_id}", wait_s=10 * 60):
        _record_task_run(warehouse, run, attempts)


def _record_task_run(warehouse: Path, run: TaskRun, attempts: int) -> None:
    from segmint.warehouse import connect, transaction

    row = asdict(run)
    row["started_at"] = _naive_utc(run.started_at)
    row["ended_at"] = _naive_utc(run.ended_at)
    row["duration_s"] = run.duration_s
    row["recorded_at"] = _naive_utc(datetime.now(UTC))
    columns = list(row)
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            con = connect(warehouse)
        except Exception as exc:
            if attempt == attempts or not _is_lock_error(exc):
                raise
            time.sleep(delay)
            delay *= 2
            continue
        try:
            con.execute(PIPELINE_RUNS_DDL)
            for migration in PIPELINE_RUNS_MIGRATIONS:
                con.execute(migration)
            with transaction(con):
                con.execute(
                    "DELETE FROM ops.pipeline_runs WHERE dag_id = ? AND run_id = ? AND task_id = ?",
                    [run.dag_id, run.run_id, run.task_id],
                )
                con.execute(
                    f"INSERT INTO ops.pipeline_runs ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    [row[c] for c in columns],
                )
        finally:
            con.close()
        return


# --- as-of date of a DAG run -------------------------------------------------------------


def resolve_as_of(
    logical_date: datetime | None,
    data_interval_start: datetime | None = None,
    conf: Mapping[str, Any] | None = None,
    *,
    run_type: str | None = None,
    run_after: datetime | None = None,
) -> date:
    """The partition a DAG run processes.

    1. ``as_of`` in the run's conf (a manual trigger that names its date) wins;
    2. a manual run whose logical date is the moment it was triggered (:func:`trigger_night`:
       not 00:00 UTC, in the UTC day the run was triggered, which is not over) processes the
       last complete UTC day before it;
    3. else the logical date, in UTC. The DAG's timetable is a *data-interval* timetable,
       where a scheduled or backfill run's logical date is the start of its data interval
       (the day it processes); ``airflow dags test DAG DATE`` sets the logical date to
       DATE but infers the data interval as the period *ending* at DATE, so the logical date,
       not the interval, is what keeps ``dags test DAG DATE`` at as_of = DATE;
    4. else (a run triggered without a logical date) the start of its data interval.
    """
    if conf and conf.get("as_of"):
        value = conf["as_of"]
        try:
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            raise SegmintError(f"run conf as_of={value!r} is not a date (YYYY-MM-DD)") from None
    night = trigger_night(logical_date, run_type, run_after)
    if night is not None:
        return night
    for moment in (logical_date, data_interval_start):
        if moment is not None:
            return (_naive_utc(moment) if isinstance(moment, datetime) else moment).date()
    raise SegmintError(
        "this DAG run has neither a logical date nor a data interval: trigger it with a "
        'logical date or with conf {"as_of": "YYYY-MM-DD"}'
    )


def trigger_night(
    logical_date: datetime | None, run_type: str | None, run_after: datetime | None
) -> date | None:
    """The night a manual run builds when its logical date is the moment it was triggered,
    else None: the last complete UTC day before that moment.

    Airflow 3's Trigger form fills in the time it was opened as the logical date (as do
    `airflow dags test` without a date and a ``TriggerDagRunOperator`` without one), so a
    manual run triggered at 14:00 built as of that day, a day not over: it did not wait for
    the day's files, published a partial day and exported its audiences. Such a logical
    date is not 00:00 UTC and falls in the UTC day the run was triggered (``run_after``);
    the night it builds is the one before, the night the schedule ran last. A logical date
    at 00:00 UTC (``-l 2026-07-08``, ``dags test DAG 2026-07-08``) is a night chosen and
    keeps its day, as does a moment of a day over when the run was triggered (a past date
    picked in the form, its time left as filled in); scheduled and backfill runs are not
    manual."""
    if run_type != "manual" or logical_date is None or run_after is None:
        return None
    moment = _naive_utc(logical_date)
    triggered = _naive_utc(run_after)
    if moment is None or triggered is None or moment.time() == datetime.min.time():
        return None
    if moment.date() != triggered.date():
        return None
    return moment.date() - timedelta(days=1)


def _context_as_of(context: Mapping[str, Any]) -> date:
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    params = context.get("params") or {}
    if params.get("as_of") and not conf.get("as_of"):
        conf = {**conf, "as_of": params["as_of"]}
    return resolve_as_of(
        context.get("logical_date"),
        context.get("data_interval_start"),
        conf,
        run_type=_run_type(context),
        run_after=getattr(dag_run, "run_after", None),
    )


def trigger_night_note(context: Mapping[str, Any], as_of: date) -> str | None:
    """What the task log and the run record say when :func:`trigger_night` chose the night
    of a manual run (its conf gave no ``as_of``), else None."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    params = context.get("params") or {}
    if conf.get("as_of") or params.get("as_of"):
        return None
    logical = context.get("logical_date")
    if trigger_night(logical, _run_type(context), getattr(dag_run, "run_after", None)) != as_of:
        return None
    moment = (_naive_utc(logical) or logical).isoformat(sep=" ", timespec="seconds")
    return (
        f"this manual run's logical date, {moment} UTC, is the moment it was triggered, in a "
        f"day not over: it builds the last complete day, {as_of} (the night the schedule ran "
        "last). To build another night, trigger it with conf "
        '{"as_of": "YYYY-MM-DD"} or a logical date at 00:00 UTC'
    )


# --- Airflow task glue ---------------------------------------------------------------------


def log_location(context: Mapping[str, Any]) -> str:
    """Where the task's log is: the file under Airflow's log folder, and the UI address."""
    ti = context["ti"]
    parts = []
    try:
        from airflow.configuration import conf as airflow_conf

        base = Path(airflow_conf.get("logging", "base_log_folder"))
        map_part = f"map_index={ti.map_index}/" if getattr(ti, "map_index", -1) >= 0 else ""
        path = (
            base / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
        ) / f"{map_part}attempt={ti.try_number}.log"
        if path.exists():
            parts.append(str(path))
        else:
            parts.append(f"{path} (or the console, under `airflow dags test`)")
    except Exception:  # the log location is a courtesy; never fail the callback on it
        pass
    url = getattr(ti, "log_url", None)
    if url:
        parts.append(url)
    return "; ".join(parts) or "the Airflow task log"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# A stage's details may list every file or partition it touched: ingest's replaced_files
# after a `--reload-since` of a year of hourly files is thousands of paths. The XCom keeps
# the first few of any list and a note of how many more; the summary, the log and the
# stage's tables hold the rest.
XCOM_LIST_ITEMS = 20


def _bounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _bounded(item) for key, item in value.items()}
    if isinstance(value, list):
        kept = [_bounded(item) for item in value[:XCOM_LIST_ITEMS]]
        more = len(value) - XCOM_LIST_ITEMS
        return [*kept, f"... and {more:,} more (not kept in the XCom)"] if more > 0 else kept
    return value


def stage_xcom(result: StageResult, as_of: date) -> dict[str, Any]:
    """What a task returns (shown in the UI's XCom tab): small and JSON-safe."""
    return {
        "stage": result.stage,
        "as_of": as_of.isoformat(),
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "summary": result.summary,
        "warnings": _bounded(list(result.warnings)),
        "details": _bounded(_jsonable(result.details)),
    }


# The unique_id prefixes of a dbt project's nodes in run_results.json (hooks are "operation.").
_DBT_NODE_TYPES = ("model.", "test.", "seed.", "unit_test.", "snapshot.")


def dbt_run_summary(run_results: Path, slowest: int = 5) -> dict[str, Any]:
    """Counts by status and the slowest nodes of a dbt ``run_results.json``.

    The transform stage is one ``dbt build`` task; this is how its models and tests show in
    the task log and the XCom tab without a task per model. ``nodes`` and ``by_status`` count
    the project's nodes only (models, tests, seeds, unit tests, snapshots); the project's
    hooks (``operation.*``: the on-run-end hook is a result of its own) are counted apart, in
    ``hooks``, so a run of 40 models and 60 tests says 100 nodes, not 101.
    """
    data = json.loads(run_results.read_text())
    results = data.get("results", [])
    nodes = 0
    by_status: dict[str, int] = {}
    hooks: dict[str, int] = {}
    for result in results:
        is_node = str(result.get("unique_id", "")).startswith(_DBT_NODE_TYPES)
        nodes += is_node
        counts = by_status if is_node else hooks
        counts[result.get("status", "?")] = counts.get(result.get("status", "?"), 0) + 1
    timed = sorted(results, key=lambda r: r.get("execution_time") or 0, reverse=True)
    return {
        "run_results": str(run_results),
        "elapsed_s": round(data.get("elapsed_time") or 0, 2),
        "nodes": nodes,
        "by_status": by_status,
        "hooks": hooks,
        "slowest": [
            {"node": r.get("unique_id"), "s": round(r.get("execution_time") or 0, 2)}
            for r in timed[:slowest]
        ],
    }


def _surface_dbt(result: StageResult) -> dict[str, Any] | None:
    path = result.details.get("run_results") if isinstance(result.details, dict) else None
    if not path or not Path(path).is_file():
        return None
    try:
        summary = dbt_run_summary(Path(path))
    except (OSError, ValueError) as exc:
        log.warning("segmint: could not read dbt run results %s: %s", path, exc)
        return None
    log.info(
        "segmint: dbt build: %s nodes %s (hooks %s) in %.1f s; slowest: %s; run results: %s",
        summary["nodes"],
        summary["by_status"],
        summary["hooks"],
        summary["elapsed_s"],
        ", ".join(f"{n['node']} {n['s']}s" for n in summary["slowest"]),
        path,
    )
    return summary


# A night waits, without holding the warehouse pool, while an earlier night is unfinished.
EARLIER_NIGHT_POLL = timedelta(seconds=20)
_UNFINISHED = {"queued", "running"}


def _is_backfill(run: Any) -> bool:
    return str(getattr(run.run_type, "value", run.run_type)) == "backfill"


def earlier_night_in_flight(ti: Any, dag_run: Any = None) -> str | None:
    """The run id of this DAG's previous run (earlier logical date) if it is unfinished.

    Nights build on each other (ingest loads every file up to the as-of date, the features
    and models carry state forward), so they must run one after the other, oldest first.
    ``max_active_runs=1`` gives that for scheduled runs, but Airflow 3 applies a backfill's
    own ``max_active_runs`` (default 10) instead, and the one-slot pool alone would let the
    stages of two nights interleave. So the first stage of a night checks this and
    reschedules itself until the earlier night is done.

    A *queued* earlier run of the same kind as ``dag_run`` (this run: both scheduled or
    manual, or both of the backfill) is not waited for: Airflow starts the queued runs of a
    kind only while fewer than its ``max_active_runs`` run, and this one is among them, so
    waiting held both forever. Two nights triggered together, the later first (Airflow
    starts manual runs in the order they were triggered), or a night triggered for an
    earlier date while tonight's run waits for its files, did: the later night rescheduled
    itself every 20 s for good and the earlier one stayed queued. The later night runs first
    then, and the earlier one after it (not published: readers never go back a night). A
    queued night of the other kind (a backfill's, behind tonight's run) is waited for:
    nothing of this run holds it back.
    """
    previous = ti.get_previous_dagrun()
    if previous is None:
        return None
    state = str(getattr(previous.state, "value", previous.state))
    if (
        state == "queued"
        and dag_run is not None
        and _is_backfill(previous) == _is_backfill(dag_run)
    ):
        return None
    return previous.run_id if state in _UNFINISHED else None


# Task states of a run that has not finished its work (a run marked failed or success in
# the UI leaves none of these behind).
_UNFINISHED_TASK = {
    None,
    "none",
    "scheduled",
    "queued",
    "running",
    "up_for_retry",
    "up_for_reschedule",
    "restarting",
    "deferred",
}


def _logical_day(run: Any) -> str | None:
    """A DAG run's logical date, as its night (``2026-06-29``), or None. A run of `airflow
    dags test` is named after the time it ran (``manual__2026-07-01T02:10:03...``), so its
    run id alone did not say which night was left running."""
    logical = getattr(run, "logical_date", None)
    if not isinstance(logical, datetime):
        return None
    return (_naive_utc(logical) or logical).date().isoformat()


def _finish_it(dag_id: str, night: str | None) -> str:
    """The start of the way out of a night that `airflow dags test` left unfinished: the
    command that runs it again to its end, when its date is known."""
    if not night:
        return "Mark"
    return (
        f"Run that night again to its end (`airflow dags test {dag_id} {night}`, for make "
        f"run's Airflow `python -m segmint.airflow_env dags-test {night}`: it replaces that "
        "run), mark"
    )


def _night_of_run(dag_id: str, run_id: str) -> str | None:
    """The night (as-of date) DAG run ``run_id`` is running, from the night file of the
    warehouse its stages claimed (:func:`night_on_the_warehouse`), or None when the file
    names another run or cannot be read."""
    try:
        from segmint.config import load_settings

        owner = json.loads(night_path(load_settings().warehouse).read_text())
    except Exception:  # the message is only the poorer for it
        return None
    if not isinstance(owner, dict) or (owner.get("dag_id"), owner.get("run_id")) != (
        dag_id,
        run_id,
    ):
        return None
    return str(owner.get("as_of") or "") or None


def other_night_in_progress(ti: Any, first_stage: str) -> str | None:
    """The run id of another run of this DAG that is past its first stage and unfinished.

    :func:`earlier_night_in_flight` keeps a night behind the nights *before* it. A run of a
    *later* night can be in progress too: a backfill of past nights created while tonight's
    scheduled run is running, or a run triggered with conf ``as_of`` (its logical date is
    the trigger's time) during a backfill. Airflow applies ``max_active_runs=1`` to neither
    pair, so their stages interleaved in the one-slot pool: the backfill's ``transform``
    rebuilt the marts for its own date between the scheduled night's ``transform`` and
    ``segment``, and that night failed ("marts.customer_features has no rows for as_of_date").
    A run counts once its first stage succeeded: a run still at its first stage (waiting
    for its files or for this night) does not, so two nights never wait for each other.
    """
    running = ti.get_dr_count(dag_id=ti.dag_id, states=["running"])
    if running <= 1:  # this run alone
        return None
    states = ti.get_task_states(dag_id=ti.dag_id)
    for run_id, tasks in sorted(states.items()):
        if run_id == ti.run_id or str(tasks.get(first_stage)) != "success":
            continue
        if not any(
            (None if state is None else str(getattr(state, "value", state))) in _UNFINISHED_TASK
            for state in tasks.values()
        ):
            continue
        state = ti.get_dagrun_state(dag_id=ti.dag_id, run_id=run_id)
        if str(getattr(state, "value", state)) in _UNFINISHED:
            return run_id
    return None


def night_path(warehouse: str | Path) -> Path:
    """``<warehouse>.night`` beside the working warehouse: which DAG run's night is on it."""
    from segmint.warehouse import lock_path

    lock = lock_path(warehouse)
    return lock.with_name(lock.name.removesuffix(".lock") + ".night")


def night_on_the_warehouse(ti: Any, warehouse: str | Path, as_of: date) -> dict | None:
    """Claim the working warehouse for this DAG run's night, unless another run's night is
    half way through on it: then return that night (``dag_id``, ``run_id``, ``as_of``).

    Every stage of a night reads what the stages before it wrote for its as-of date (the
    marts of ``transform``, the segments of ``segment``), so no stage of another night may
    run between them. The first stage's checks (:func:`earlier_night_in_flight`,
    :func:`other_night_in_progress`) keep nights that *start* in turn, but a task cleared in
    the middle of a night (``airflow tasks clear -t transform -d``) is no first stage: the
    cleared night's ``transform`` ran between a backfill night's ``transform`` and
    ``segment`` (the one-slot pool orders tasks, not nights), and the backfill night's
    ``segment`` found no features for its date. Airflow's ``max_active_runs=1`` does not
    hold between a backfill's runs and the others either.

    The claim is a small file, :func:`night_path`, naming the run that last ran a stage on
    the warehouse; it holds while that run is ``running`` in Airflow (a retry, a stage in
    the pool's queue) and lapses when the run succeeds or fails, or is queued again by a
    clear (its tasks then claim it again as they run). Read and written under the
    warehouse's lock.
    """
    from segmint.outputs import written_atomically
    from segmint.warehouse import exclusive

    path = night_path(warehouse)
    mine = {"dag_id": ti.dag_id, "run_id": ti.run_id, "as_of": as_of.isoformat()}
    with exclusive(warehouse, f"night check of {ti.run_id}"):
        command = _command_night(path)
        if command is not None:  # a `segmint run` on the command line, between two stages
            return command
        try:
            owner = json.loads(path.read_text())
            key = (owner["dag_id"], owner["run_id"])
        except (OSError, ValueError, TypeError, KeyError):
            owner, key = None, None
        if owner is not None and key != (ti.dag_id, ti.run_id):
            try:
                state = ti.get_dagrun_state(dag_id=key[0], run_id=key[1])
            except Exception:  # a run deleted since: it holds nothing
                state = None
            if str(getattr(state, "value", state)) == "running":
                return owner
        if owner != mine:
            with written_atomically(path) as tmp:
                tmp.write_text(json.dumps(mine) + "\n")
    return None


def describe_night(owner: Mapping[str, Any]) -> str:
    """``the night 2026-06-29 (DAG run ...)`` or ``(segmint run, pid 4242 on host, since
    ...)``: whose night :func:`night_on_the_warehouse` or :func:`command_night` found."""
    night = f"the night {owner['as_of']}" if owner.get("as_of") else "a night"
    if "run_id" in owner:
        return f"{night} (DAG run {owner['run_id']})"
    who = [str(owner.get("command") or "a segmint command")]
    if owner.get("pid"):
        who.append(f"pid {owner['pid']} on {owner.get('host')}")
    if owner.get("since"):
        who.append(f"since {owner['since']} UTC")
    return f"{night} ({', '.join(who)})"


def _command_night(path: Path) -> dict | None:
    """The night a segmint command holds on the warehouse (:func:`command_night`), if its
    process is alive: it holds a lock on :func:`night_path` while its night runs."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = json.loads(os.pread(fd, 4096, 0).decode(errors="replace"))
            except ValueError:
                owner = None
            return owner if isinstance(owner, dict) else {"command": "a segmint command"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# Nights this process holds on a warehouse (night file -> descriptor): re-entrant, so the
# stages of a `segmint run` inside its night do not claim it again.
_nights_held: dict[Path, int] = {}
NIGHT_POLL_S = 1.0


@contextlib.contextmanager
def command_night(warehouse: str | Path, as_of: date, command: str) -> Iterator[None]:
    """Have the working warehouse for this command's night, from its first stage to its
    last: no stage of another night runs in between.

    The warehouse's lock (:func:`segmint.warehouse.exclusive`) is taken per stage, so two
    ``segmint run`` started together (2026-06-29 and 2026-06-30) took turns stage by stage:
    one night's ``transform`` could run between the other's ``transform`` and ``segment``,
    which then found no features for its date, and the second waited at most 30 minutes per
    stage. Now the command holds a lock on :func:`night_path` (naming its night, process and
    start) for its whole night, and another command's night waits for it, saying whom it
    waits for, up to :data:`segmint.warehouse.WAIT_FOR_WAREHOUSE_S`, then fails naming it
    (:class:`WarehouseBusyError`). An export, an erasure or a report still runs between two
    stages: they take only the warehouse's lock. The DAG's stages wait for such a night too
    (:func:`night_on_the_warehouse`). A process that dies releases its night with it.
    """
    from segmint import warehouse as wh

    path = night_path(warehouse)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; nights do not take turns
        yield
        return
    if path in _nights_held:
        yield
        return
    what = f"{command} of {as_of}"
    deadline = time.monotonic() + wh.WAIT_FOR_WAREHOUSE_S
    waited_for = None
    while True:
        # Looked at without the warehouse's lock, which the other night's stages hold most
        # of the time: waiting for that lock named a stage, not the night.
        owner = _command_night(path)
        if owner is None:
            with wh.exclusive(warehouse, what):  # an export, an erasure, a DAG's stage
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
                except OSError as exc:  # a read-only folder: used unclaimed, as for the lock
                    log.debug("warehouse %s used without its night file: %s", warehouse, exc)
                    fd = -1
                if fd >= 0:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        owner = _command_night(path) or {"command": "a segmint command"}
                        os.close(fd)
                    else:
                        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                        mine = {
                            "command": command,
                            "as_of": as_of.isoformat(),
                            "pid": os.getpid(),
                            "host": socket.gethostname(),
                            "since": since,
                        }
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, (json.dumps(mine) + "\n").encode(), 0)
                        break
            if fd < 0:
                yield
                return
        other = describe_night(owner)
        if other != waited_for:
            waited_for = other
            log.warning(
                "%s waits for %s to finish its stages on the warehouse %s (one night at a time)",
                what,
                other,
                warehouse,
            )
        if time.monotonic() >= deadline:
            wait_s = wh.WAIT_FOR_WAREHOUSE_S
            waited = f"{wait_s / 60:.0f} min" if wait_s >= 120 else f"{wait_s:g} s"
            raise WarehouseBusyError(
                f"{other} is on the warehouse {warehouse} and was not done after {waited}; "
                f"{what} did not start (one night at a time: a stage reads what the stages "
                "before it wrote for its date): run it again when that night is done"
            )
        time.sleep(NIGHT_POLL_S)
    _nights_held[path] = fd
    try:
        yield
    finally:
        del _nights_held[path]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


def under_dags_test() -> bool:
    """Whether this task runs inside ``airflow dags test`` (``make run``), which runs one
    DAG run's tasks in its own process and nothing else: an earlier night left queued or
    running there (a killed ``dags test``, a backfill with no scheduler) never finishes, and
    waiting for it hung the night for good, rescheduling every 20 s, printing nothing to
    ``make run``."""
    return sys.argv[1:3] == ["dags", "test"]


LANDING_POLL = timedelta(minutes=5)


def wait_for_delivery(
    settings: Any, as_of: date, now: datetime | None = None, run_type: str | None = None
) -> None:
    """The first stage's sensor: return when the as-of date's events have landed.

    While they have not and ``[ingest] wait_for_as_of_events_hours`` (by default 6 h for a
    scheduled run, none for others: ``IngestSettings.as_of_events_wait_hours``) has not
    run out, the task is rescheduled (it frees its worker and the warehouse pool slot, and
    Airflow shows it *up for reschedule*). When the time is up: with
    ``require_as_of_events`` the night fails, not retried, with a message naming the
    folder; without it the night runs without the day's events and the validate stage
    warns.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

    from segmint.ingest.files import as_of_delivery

    now = now or datetime.now(UTC)
    delivery = as_of_delivery(
        settings.landing,
        as_of,
        now,
        settings.ingest.as_of_events_wait_hours(run_type),
        settings.ingest.partition_ready_marker,
    )
    if delivery.status == "landed":
        log.info("segmint: as_of=%s landed: %s", as_of, delivery.message)
    elif delivery.status == "waiting":
        log.info("segmint: %s; checking again in %s", delivery.message, LANDING_POLL)
        raise AirflowRescheduleException(min(delivery.deadline, now + LANDING_POLL))
    elif settings.ingest.require_as_of_events:
        error = SegmintError(
            f"{delivery.message}; the night does not run ([ingest] require_as_of_events is "
            "true). Clear this task to rerun the night once the files have landed"
        )
        raise AirflowFailException(str(error)) from error
    else:
        log.warning(
            "segmint: %s; the night runs without them ([ingest] require_as_of_events is false)",
            delivery.message,
        )


def _run_type(context: Mapping[str, Any]) -> str | None:
    """The DAG run's type as Airflow spells it: ``scheduled``, ``backfill``, ``manual``..."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return None if run_type is None else str(getattr(run_type, "value", run_type))


# How close to its execution_timeout a try must have failed to count as timed out: the
# timeout's alarm interrupts a DuckDB query as DuckDB's own "Query interrupted" error, not
# as Airflow's AirflowTaskTimeout, so the time spent is what tells.
TIMEOUT_TOLERANCE_S = 1.0


def run_stage_task(stage: str) -> dict[str, Any]:
    """Body of every DAG task: run one stage for the DAG run's as-of date, record it.

    A try stopped by the task's ``execution_timeout`` fails the night at once, not retried
    (:class:`~segmint.stages.StageTimeoutError`): Airflow retried it like any error, so a
    stuck stage held the one-slot warehouse pool for 3 tries x 3 h (plus the back-off)
    before the night failed, and the message said only "AirflowTaskTimeout: Timeout, PID:
    N". A timeout met inside a DuckDB query was not retried but said "RuntimeError: Query
    interrupted", which did not name the timeout either."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowRescheduleException,
        AirflowTaskTimeout,
    )

    context = get_current_context()
    entered = time.monotonic()
    try:
        return _run_stage_task(stage, context)
    except AirflowRescheduleException:
        raise
    except BaseException as exc:
        limit = getattr(context["ti"].task, "execution_timeout", None)
        spent = time.monotonic() - entered
        if limit is None or not (
            isinstance(exc, AirflowTaskTimeout)
            or spent >= limit.total_seconds() - TIMEOUT_TOLERANCE_S
        ):
            raise
        cause = exc.__cause__ if isinstance(exc, AirflowFailException) else exc
        error = StageTimeoutError(
            f"stage {stage} ran past its execution_timeout of {limit} and was stopped "
            f"({type(cause).__name__}: {cause}); not retried: every try would hold the "
            "warehouse pool as long again. The last lines of this log say what it was doing. "
            "If the night's data has outgrown the limit, raise execution_timeout in "
            "dags/segmint_nightly.py; then clear this task with its downstream tasks"
        )
        error.__cause__ = exc
        raise AirflowFailException(str(error)) from error


def _run_stage_task(stage: str, context: Mapping[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

    from segmint.config import load_settings
    from segmint.pipeline import STAGES, check_as_of, run_stage

    ti = context["ti"]
    if stage == next(iter(STAGES)):
        blocker = earlier_night_in_flight(ti, context.get("dag_run"))
        subject, state = f"the earlier night {blocker}", "is still queued or running"
        night = _logical_day(ti.get_previous_dagrun()) if blocker is not None else None
        if night:
            subject += f" (logical date {night})"
        if blocker is None:
            blocker = other_night_in_progress(ti, stage)
            # It said "the night manual__2026-12-06T23:00:00... of this DAG is half way",
            # the time a `dags test` ran, not the night, and no command that finishes it.
            night = _night_of_run(ti.dag_id, blocker) if blocker is not None else None
            subject = f"the night {night} (DAG run {blocker})" if night else f"the night {blocker}"
            state = "is half way through its stages"
        if blocker is not None and under_dags_test():
            raise AirflowFailException(
                f"{subject} of this DAG {state}, "
                "and under `airflow dags test` (make run) no scheduler will finish it: it is a "
                "backfill never run or a night whose `airflow dags test` was killed. "
                f"{_finish_it(ti.dag_id, night)} it failed (or success) in the UI (make "
                "airflow), or start the project-local Airflow afresh (rm -rf .airflow), "
                "then rerun"
            )
        if blocker is not None:
            log.info(
                "segmint: run %s waits for %s to finish (%s; one night at a time, oldest "
                "first); checking again in %s s",
                ti.run_id,
                subject,
                state.removeprefix("is "),
                int(EARLIER_NIGHT_POLL.total_seconds()),
            )
            raise AirflowRescheduleException(datetime.now(UTC) + EARLIER_NIGHT_POLL)
    # A broken config file, a conf as_of that is not a date or a night from the future fails
    # every try the same way: fail at once (not after the retries' back-off), and before the
    # sensor below waits hours for files of a day that has not come.
    try:
        settings = load_settings()
        as_of = _context_as_of(context)
        check_as_of(
            as_of,
            origin="this DAG run's logical date or conf as_of",
            fix='trigger the night with its own date (conf {"as_of": "YYYY-MM-DD"})',
        )
    except (SegmintError, ConfigError) as exc:
        raise AirflowFailException(str(exc)) from exc
    chosen = trigger_night_note(context, as_of)
    if chosen:
        log.warning("segmint: %s", chosen)
    run_type = _run_type(context)
    if stage == next(iter(STAGES)) and settings.ingest.as_of_events_wait_hours(run_type) > 0:
        wait_for_delivery(settings, as_of, run_type=run_type)
    night = night_on_the_warehouse(ti, settings.warehouse, as_of)
    if night is not None:
        subject = describe_night(night)
        if under_dags_test() and "run_id" not in night:
            raise AirflowFailException(
                f"{subject} is half way through its stages on the warehouse "
                f"{settings.warehouse}: run this night again when that command is done"
            )
        if under_dags_test():
            finish = _finish_it(night.get("dag_id", ti.dag_id), night.get("as_of"))
            raise AirflowFailException(
                f"{subject} is half way through its stages on the warehouse "
                f"{settings.warehouse}, and under `airflow dags test` (make run) no scheduler "
                f"will finish it. {finish} it failed (or success) in the UI (make airflow), "
                "or start the project-local Airflow afresh (rm -rf .airflow), then rerun"
            )
        log.info(
            "segmint: stage %s of run %s waits for %s to finish its stages on the warehouse "
            "(one night at a time); checking again in %s s",
            stage,
            ti.run_id,
            subject,
            int(EARLIER_NIGHT_POLL.total_seconds()),
        )
        raise AirflowRescheduleException(datetime.now(UTC) + EARLIER_NIGHT_POLL)
    started = datetime.now(UTC)
    log.info(
        "segmint: stage %s starting for as_of=%s (warehouse %s)", stage, as_of, settings.warehouse
    )
    try:
        result = run_stage(stage, settings, as_of, log_progress=False)
    except Exception as exc:
        if is_retryable(exc):
            raise
        # Retrying would fail the same way: fail now; the failure callback records it.
        raise AirflowFailException(f"{type(exc).__name__}: {in_airflow(exc, ti.dag_id)}") from exc
    # The first task's row says why a manual run built the night before its logical date.
    warnings = [chosen] if chosen and stage == next(iter(STAGES)) else []
    warnings += result.warnings
    run = TaskRun(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        status="success",
        as_of_date=as_of,
        try_number=ti.try_number,
        started_at=started,
        ended_at=datetime.now(UTC),
        rows_in=result.rows_in,
        rows_out=result.rows_out,
        summary=_summary_with_warnings(result.summary, warnings),
        hostname=socket.gethostname(),
        warnings="\n".join(warnings) or None,
    )
    record_task_run(settings.warehouse, run)
    log.info(
        "segmint: stage %s done for as_of=%s in %.1f s: %s",
        stage,
        as_of,
        (run.ended_at - started).total_seconds(),
        result.summary,
    )
    for warning in result.warnings:
        log.warning("segmint: stage %s warning: %s", stage, warning)
    payload = stage_xcom(result, as_of)
    payload["warnings"] = _bounded(warnings)
    dbt = _surface_dbt(result)
    if dbt:
        payload["dbt"] = dbt
    return payload


def _summary_with_warnings(summary: str, warnings: list[str]) -> str:
    """A success row's summary, with how many warnings the stage gave (in ``warnings``):
    a night without its events partition said "quality gate passed for 0 partition(s)"
    and read as a clean pass."""
    if not warnings:
        return summary
    count = f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}"
    return f"{summary} ({count}: see the warnings column)"


def in_airflow(exc: BaseException, dag_id: str) -> str:
    """A stage's error as a DAG run's log says it: an error whose fix is worded for the
    command line (``--as-of``, ``segmint run``) has its Airflow wording
    (:meth:`segmint.stages.BeforeFirstDeliveryError.in_airflow`)."""
    words = getattr(exc, "in_airflow", None)
    return words(dag_id) if callable(words) else str(exc)


# DuckDB's words for the process holding a file: 'Conflicting lock is held in
# /usr/bin/python3.11 (PID 4242)'.
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def lock_holder(exc: BaseException) -> str:
    """Who holds the warehouse open, from DuckDB's error: the program and its PID, and when
    this machine's /proc knows the process, its user and command line (the program's name
    and arguments, cut to 60 characters): ``python3.11 (PID 4242, user ana: jupyter-lab
    --no-browser)``."""
    found = _LOCK_HOLDER.search(str(exc))
    if found is None:
        return "another process"
    program, pid = found.groups()
    who = f"{Path(program).name} (PID {pid}"
    try:
        import pwd

        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        user = pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name
    except (ImportError, OSError, KeyError):
        return who + ")"
    text = " ".join(" ".join([Path(argv[0]).name, *argv[1:]]).split())
    if not text:  # a process that has ended (its exit not yet collected) or a kernel thread
        return who + f", user {user})"
    text = text if len(text) <= 60 else text[:57] + "..."
    return who + f", user {user}: {text})"


def lock_message(exc: BaseException | None, settings: Any, now: str) -> str:
    """One line for an ``exc`` saying another process holds the working warehouse open (an
    analyst's notebook, a SQL client), else "": who holds it, ``now`` (what segmint does
    now), and what the operator can do. It was DuckDB's paragraph (its read-only advice and
    documentation link) followed by a hint of three sentences."""
    if exc is None or not _is_lock_error(exc):
        return ""
    return (
        f"the working warehouse {settings.warehouse} is held open by {lock_holder(exc)}; "
        f"{now}; close that connection (readers open the published copy "
        f"{settings.published_warehouse}, read-only)"
    )


# Faults of a disk that a person must fix, by errno, with the words of their strerror (DuckDB
# quotes those in its messages: 'Could not write file "...": No space left on device').
_DISK_FAULTS = {
    errno.ENOSPC: "No space left on device",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EFBIG: "File too large",
    errno.EROFS: "Read-only file system",
    errno.EACCES: "Permission denied",
}
# The hidden name a file is written under before it replaces the real one (outputs.py's
# ".NAME.tmp", publish.py's ".NAME.publishing-PID"): the message names the real one.
_TEMPORARY = re.compile(r"^\.(.+)\.(?:tmp|publishing-\d+)$")


def _disk_fault(exc: BaseException) -> tuple[int, str | None] | None:
    """``(errno, path)`` when ``exc`` (or what caused it) is a disk fault of
    :data:`_DISK_FAULTS`: an ``OSError`` with that errno, or a DuckDB error quoting its
    words (an ``IOException``, or the ``FatalException`` of a checkpoint that could not write
    the file); ``path`` is the file or folder named, when one is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FAULTS:
            name = current.filename
            return current.errno, os.fsdecode(name) if name is not None else None
        if type(current).__module__.lstrip("_").startswith("duckdb"):
            found = disk_fault_in_text(str(current))
            if found is not None:
                return found
        current = current.__cause__ or current.__context__
    return None


def disk_fault_in_text(text: str) -> tuple[int, str | None] | None:
    """``(errno, path)`` of the first disk fault of :data:`_DISK_FAULTS` a message tells of:
    DuckDB's 'Could not write file "PATH": No space left on device' (at times inside JSON,
    its quotes escaped), or Python's "[Errno 28] No space left on device: 'PATH'" (as dbt
    prints it). ``path`` is None when the message names no file."""
    text = text.replace('\\"', '"')
    for code, words in _DISK_FAULTS.items():
        if words in text:
            named = re.search(rf'"([^"]+)": {re.escape(words)}', text) or re.search(
                rf"\[Errno {code}\] {re.escape(words)}: '([^']+)'", text
            )
            return code, named.group(1) if named else None
    return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _what(path: Path, settings: Any) -> str:
    """Which setting ``path`` belongs to, for the message (" (the warehouse, --warehouse)")."""
    if settings is None:
        return ""
    warehouse = Path(settings.warehouse).absolute()
    places = [
        (warehouse.parent / "published", "the published copy, beside the warehouse"),
        (Path(settings.output).absolute(), "the run outputs folder, --output or SEGMINT_OUTPUT"),
        (warehouse.parent, "the warehouse's folder, --warehouse or SEGMINT_WAREHOUSE"),
    ]
    if path.parent == warehouse.parent and path.name.startswith(warehouse.name):
        return " (the warehouse, --warehouse or SEGMINT_WAREHOUSE)"
    for folder, what in places:
        if path == folder or folder in path.parents:
            return f" ({what})"
    return ""


def _existing(path: Path) -> Path:
    """``path`` or its nearest folder that exists (where ``df`` and ``ls -ld`` can look)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def disk_fault_message(
    exc: BaseException, settings: Any = None, rerun: str = "run the same command again"
) -> str:
    """One line for a person when ``exc`` is a fault of the disk (full, over quota, over the
    file-size limit, read-only, not writable for this user), else "".

    These are not bugs: the file named, what happened and what to do, and that the same
    command can be run again once that is done (every stage commits its work in one
    transaction and a rerun goes on from what was committed)."""
    import shutil

    found = _disk_fault(exc)
    if found is None:
        return ""
    code, name = found
    path = Path(name).absolute() if name else None
    temporary = _TEMPORARY.match(path.name) if path else None
    if path and temporary:
        path = path.with_name(temporary.group(1))
    where = f"{path}{_what(path, settings)}" if path else "a file"
    folder = _existing(path.parent) if path else None
    if code == errno.ENOSPC:
        notes = []
        with contextlib.suppress(OSError):
            notes += [f"{_size(shutil.disk_usage(folder).free)} free now"] if folder else []
        notes += [n for n in [_publish_needs(path, settings)] if n]
        free = f" ({'; '.join(notes)})" if notes else ""
        on = f"the file system of {folder}{free}" if folder else "its file system"
        fix = f"free space on {on}, or use a folder on one with room"
    elif code == errno.EDQUOT:
        fix = "free space within this user's disk quota (quota -s) or have it raised"
    elif code == errno.EFBIG:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        fix = (
            f"the file reached this process's file-size limit of {_size(limit)} (ulimit -f): "
            "raise it (ulimit -f unlimited) in the shell or service that starts segmint"
            if limit != resource.RLIM_INFINITY
            else "the file reached the largest file its file system allows: move it to "
            "another file system (ext4, xfs)"
        )
    elif code == errno.EROFS:
        fix = f"the file system{f' of {folder}' if folder else ''} is mounted read-only: "
        fix += "remount it read-write"
    else:
        look = f" (ls -ld {folder})" if folder else ""
        fix = f"let this user ({_user()}) read and write it and its folder{look}"
    verb = "cannot use" if code == errno.EACCES else "cannot write"
    return (
        f"{verb} {where}: {_DISK_FAULTS[code]}; {fix}, then {rerun} "
        "(what was committed before the fault is kept)"
    )


def _publish_needs(path: Path | None, settings: Any) -> str:
    """How much room a publish needs, when ``path`` is in the published folder: it writes
    both copies beside the published ones before it swaps them in, and removes them when it
    fails, so the space "free now" looked like room enough (22 MiB free for copies of 24)."""
    if path is None or settings is None:
        return ""
    published = Path(settings.published_warehouse).absolute()
    if path.parent != published.parent:
        return ""
    try:
        full = Path(settings.warehouse).stat().st_size
    except OSError:
        return ""
    try:
        analyst = Path(settings.analyst_warehouse).stat().st_size
    except OSError:
        return (
            f"publish needs room there for the full copy, {_size(full)} as the working "
            "warehouse, and the analysts' copy, written beside the published files"
        )
    return (
        f"publish needs about {_size(full + analyst)} there: the full copy, {_size(full)} as "
        f"the working warehouse, and the analysts' copy, about {_size(analyst)} as the last "
        "one, written beside the published files before they are swapped in"
    )


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


# "run `segmint transform` first", "run `segmint transform --as-of 2026-06-24` first": the
# next step as a stage's error words it for the command line.
_COMMAND_FIRST = re.compile(r"run `segmint (\w+)[^`]*` first")
# The quality gate's own Airflow wording (segmint.ingest.gate), which named no command.
_CLEAR_FROM = re.compile(r"under Airflow clear the (?:night's )?`(\w+)` task")


def command_hint(error: str, dag_id: str, logical_date: Any, as_of: date | None) -> str:
    """The Airflow way to the next step an error names as a ``segmint`` command, or "".

    A stage's input missing says what to run on the command line: a ``segment`` cleared for
    a night older than the last ``transform`` said "marts.customer_features has no rows for
    as_of_date 2026-06-24 (latest dates: 2026-06-25); run `segmint transform` first", and
    an operator of the DAG was left to work out that this means clearing the night from its
    ``transform`` task (the marts hold the latest night built).

    A failed quality gate said "under Airflow clear the `ingest` task and downstream" and
    no more: ``airflow tasks clear segmint_nightly -t ingest -d`` without ``-s``/``-e``
    clears that task in every run of the DAG, and once confirmed the scheduler runs every
    past night again. It gets the same line, with the night's dates (the run's logical date
    itself when it is not 00:00 UTC, a run triggered at a moment: `-e DAY` left it out)."""
    from segmint.pipeline import STAGES

    found = _COMMAND_FIRST.search(error or "")
    if found is not None:
        command = found.group(1)
        task = next(iter(STAGES)) if command == "run" else command
    else:
        found = _CLEAR_FROM.search(error or "")
        if found is None:
            return ""
        task = found.group(1)
    if task not in STAGES:
        return ""
    moment = _naive_utc(logical_date) if isinstance(logical_date, datetime) else None
    day: Any = moment.date() if moment is not None else as_of
    if moment is not None and moment.time() != datetime.min.time():
        # A manual run triggered at a moment (the Trigger form's default): `-e DAY` is 00:00
        # of that day, before the run's logical date, and the command cleared nothing.
        day = f"{moment.isoformat()}+00:00"
    return (
        f" Next: in Airflow, run this night from its `{task}` task: `airflow tasks clear "
        f"{dag_id} -t {task} -d -s {day} -e {day}`."
    )


def published_line(settings: Any, as_of: date | None) -> str:
    """What analysts read while this night is not published: the night the published copy
    holds (``ops.publication``), and how far behind this one it is.

    It said "Yesterday's published warehouse ... is unchanged" every time: on the third night
    of a failing data test the copy held the night of four days before, on a first night
    there was no copy at all, and a rerun of an old night does not publish anyway."""
    from segmint.publish import published_as_of

    path = settings.published_warehouse
    night = published_as_of(path)
    if night is None and path.exists():
        return f" The published warehouse {path} is unchanged (its night could not be read)."
    if night is None:
        return f" Nothing is published yet (no {path}): analysts have no copy."
    behind = (as_of - night).days if as_of is not None else 0
    if behind > 1:
        return (
            f" The published warehouse {path} still holds the night {night}, {behind} days "
            f"before this one: analysts read that night until a night publishes (each "
            "night's failure in ops.pipeline_runs)."
        )
    return f" The published warehouse {path} is unchanged (the night {night})."


def settings_despite_error() -> Any | None:
    """The settings of a failure report when the settings are refused (a settings file that
    is not TOML, an unknown key, a value of the wrong type): defaults, with the warehouse
    ``SEGMINT_WAREHOUSE`` names, else the file's own top-level ``warehouse`` when the file
    still reads as TOML; None when neither names a warehouse that exists (the default path,
    relative to a worker's folder, would be a new, empty warehouse there).

    Without it, the night a broken file failed left no row in ``ops.pipeline_runs`` (`could
    not record the failure`) and its message did not say what analysts still read."""
    import tomllib

    from segmint.config import DEFAULT_CONFIG_FILE, ENV_PREFIX, Settings

    warehouse = os.environ.get(f"{ENV_PREFIX}WAREHOUSE")
    if warehouse:
        path = Path(warehouse)
    else:
        config = Path(os.environ.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_FILE)
        try:
            value = tomllib.loads(config.read_text(encoding="utf-8")).get("warehouse")
        except (OSError, ValueError):
            return None
        if not isinstance(value, str):
            return None
        path = config.absolute().parent / Path(value).expanduser()
    return Settings(warehouse=path) if path.is_file() else None


def _report_settings() -> Any | None:
    """The settings a failure is reported with: :func:`settings_despite_error` when they
    are refused."""
    from segmint.config import load_settings

    try:
        return load_settings()
    except Exception:  # a broken config must not hide the failure being reported
        return settings_despite_error()


def failure_message(context: Mapping[str, Any], status: str = "failed") -> tuple[str, TaskRun]:
    """The message a person reads first, and the row for ``ops.pipeline_runs``."""
    ti = context["ti"]
    exc = context.get("exception")
    settings = _report_settings()
    try:
        as_of: date | None = _context_as_of(context)
    except SegmintError:
        as_of = None
    where = log_location(context)
    cause = getattr(exc, "__cause__", None)
    if exc is None:
        error = "unknown error (no exception)"
    elif type(exc).__name__ == "AirflowFailException" and cause is not None:
        # raised by run_stage_task: not retried
        error = f"{type(cause).__name__}: {in_airflow(cause, ti.dag_id)}"
    else:
        error = f"{type(exc).__name__}: {exc}"
        if cause is not None and str(cause) not in error:
            error += f" (caused by {type(cause).__name__}: {cause})"
    max_tries = getattr(ti, "max_tries", None)
    tries = f"try {ti.try_number}" + (f" of {max_tries + 1}" if max_tries is not None else "")
    if status == "up_for_retry":
        next_step = "will retry"
    elif isinstance(cause, StageTimeoutError):
        next_step = "not retried; the night is NOT published"
    elif type(exc).__name__ == "AirflowFailException":
        next_step = "not retried (it would fail the same way); the night is NOT published"
    else:
        next_step = "the night is NOT published"
    published = published_line(settings, as_of) if settings is not None else ""
    hint = ""
    held = (
        lock_message(
            cause or exc,
            settings,
            "Airflow runs the task again in a few minutes"
            if status == "up_for_retry"
            else "its retries are used up: clear the task once it is closed",
        )
        if settings is not None
        else ""
    )
    # One line in place of DuckDB's paragraph; ops.pipeline_runs keeps the error.
    message_error = held or error.rstrip(".")
    rerun = "clear the task to run it again"
    fault = disk_fault_message(cause or exc, settings, rerun) if exc is not None else ""
    if fault:
        hint += f" Hint: {fault}."
    hint += command_hint(error, ti.dag_id, context.get("logical_date"), as_of)
    message = (
        f"segmint: stage '{ti.task_id}' {status.replace('_', ' ')} for as_of={as_of} "
        f"(DAG run {ti.run_id}, {tries}); {next_step}. Error: {message_error}."
        f"{hint} Log: {where}.{published}"
    )
    started = getattr(ti, "start_date", None)
    run = TaskRun(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        status=status,
        as_of_date=as_of,
        try_number=ti.try_number,
        started_at=started,
        ended_at=getattr(ti, "end_date", None) or datetime.now(UTC),
        error=error,
        log_location=where,
        hostname=socket.gethostname(),
    )
    return message, run


def _on_problem(context: Mapping[str, Any], status: str) -> None:
    try:
        message, run = failure_message(context, status)
    except Exception:
        log.exception("segmint: could not build the failure message")
        return
    log.error(message)
    try:
        settings = _report_settings()
        if settings is None:
            from segmint.config import load_settings

            settings = load_settings()  # raises the error that says why
        record_task_run(settings.warehouse, run)
    except Exception as exc:
        log.error("segmint: could not record the failure in ops.pipeline_runs: %s", exc)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Task ``on_failure_callback``: the message to the task log and ``ops.pipeline_runs``;
    when the DAG's ``report`` task is this one or after it, the page saying the night
    failed where its report would be (:mod:`segmint.report.failed`)."""
    _on_problem(context, "failed")
    try:
        from segmint.config import load_settings
        from segmint.pipeline import check_as_of
        from segmint.report.failed import leave_failure_page

        as_of = _context_as_of(context)
        check_as_of(as_of)  # a night from the future is refused, not a night that failed
        settings = load_settings()
    except Exception:  # the message above says why; no night to write a page for
        return
    task = context["ti"].task_id
    node = context.get("task")
    after = sorted(node.get_flat_relative_ids(upstream=False)) if node is not None else []
    exc = context.get("exception")
    exc = getattr(exc, "__cause__", None) or exc or RuntimeError("unknown error")
    leave_failure_page(settings, as_of, task, exc, [task, *after])


def on_task_retry(context: Mapping[str, Any]) -> None:
    """Task ``on_retry_callback``: same as a failure, with status ``up_for_retry``."""
    _on_problem(context, "up_for_retry")
