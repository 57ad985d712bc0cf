"""
# segmint_nightly

The nightly segmint pipeline: one run per day processes the partition of its as-of date.

`ingest` -> `validate` -> `transform` -> `segment` -> `score` -> `recommend` ->
`audiences` -> `report` -> `publish` (the stages of `segmint.pipeline.STAGES`, in order;
`segmint run` runs the same functions).

- **as-of date**: the logical date of the run, which for this daily data-interval
  timetable is the start of the day being processed: the run for 2026-06-30 starts after
  2026-07-01 00:00 UTC. `airflow dags test segmint_nightly 2026-06-30` and
  `make run` process 2026-06-30 too. A manual trigger may name its date:
  conf `{"as_of": "2026-06-30"}`, or a logical date at 00:00 UTC. Triggered with the
  form's default logical date (the moment it was opened, a day not over) it builds the
  last complete UTC day, and its first task says so. A date later than tomorrow (UTC)
  fails the run at its first task, not retried: it is a typo, and once published it would
  block every real night.
- **One writer**: DuckDB allows one writing process per file, so every task runs in the
  one-slot pool `segmint_warehouse` and `max_active_runs=1`; a task of another night (a
  cleared task, a backfill beside a scheduled run) waits while a night is half way
  through its stages.
- **Write-audit-publish**: readers never open the working warehouse. `publish` runs only
  when every gate before it passed (GX quality gate, `dbt build` tests, model rules), audits
  a copy and swaps it in atomically as `warehouse/published/segmint.duckdb` (full, owner and
  group only) with `segmint_analyst.duckdb` beside it (personal data masked); a failed night
  leaves yesterday's published file untouched.
- **Late files**: a scheduled night's `ingest` first waits for the day's events partition
  until 06:00 UTC (`[ingest] wait_for_as_of_events_hours`; backfills and manual runs do not
  wait unless it is set), rescheduling itself every 5 minutes without holding the pool.
- **Failures**: retries with exponential back-off (not for a gate that said no, nor for a
  stage stopped by its 3 h `execution_timeout`); each task's latest attempt is recorded in
  `ops.pipeline_runs` (one row per run and task: a retry or a clear replaces it, the try
  number counts them), and a failure logs which stage failed, the error and where the log is.
- **Backfill**: `airflow backfill create --dag-id segmint_nightly --from-date A --to-date B`
  runs the nights one by one, oldest first.

See `docs/operations.md`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from segmint.ops import WAREHOUSE_POOL, on_task_failure, on_task_retry
from segmint.pipeline import STAGE_DOCS, STAGES


@task(multiple_outputs=False)
def run_stage(stage: str) -> dict:
    """Run one segmint stage for this DAG run's as-of date and record it in ops.pipeline_runs."""
    from segmint.ops import run_stage_task

    return run_stage_task(stage)


@dag(
    dag_id="segmint_nightly",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["segmint", "nightly", "duckdb"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Process this date instead of the run's logical date (YYYY-MM-DD).",
        )
    },
    default_args={
        "owner": "segmint",
        "pool": WAREHOUSE_POOL,
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=3),
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
    },
)
def segmint_nightly() -> None:
    previous = None
    for stage in STAGES:
        current = run_stage.override(task_id=stage, doc_md=STAGE_DOCS.get(stage))(stage)
        if previous is not None:
            previous >> current
        previous = current


segmint_nightly()
