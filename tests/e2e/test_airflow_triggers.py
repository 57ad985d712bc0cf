"""Two nights triggered together, the later one first, under a real scheduler.

Airflow starts the queued manual runs of a DAG in the order they were triggered, one at a
time (`max_active_runs=1`). The later night started first, and its first task waited for
the earlier night, which was queued (segmint.ops.earlier_night_in_flight): the earlier run
could not start while the later one ran, so the later one rescheduled itself every 20 s
for good and neither night ever ran (as on a scheduled night waiting for its files when an
earlier date is triggered). The stages are stubs run by segmint's own task glue, so the
test needs no data.

A night triggered "now" (`-l` the current time, what Airflow 3's Trigger form fills in)
built as of today, a day not over; it builds the last complete day
(segmint.ops.trigger_night).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.db import fetch
from tests.e2e.airflow_support import airflow, dag_runs, scheduling, stub_night_env, wait_until

pytestmark = pytest.mark.slow

DAG = "segmint_triggers"
TIMEOUT_S = 600
LATER, EARLIER = date(2026, 5, 9), date(2026, 5, 8)

STAGES_MODULE = """
from segmint.stages import StageResult


def ingest(settings, as_of):
    return StageResult("ingest", summary=f"ingested {as_of}")


def transform(settings, as_of):
    return StageResult("transform", summary=f"transformed {as_of}")
"""


def _states(env: dict[str, str]) -> dict[str, str]:
    return {r["logical_date"][:10]: r["state"] for r in dag_runs(env, DAG)}


def _airflow(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A project-local Airflow under ``tmp_path`` whose dags folder holds the stub DAG, and
    the warehouse its nights record in."""
    env = stub_night_env(tmp_path, "triggers", STAGES_MODULE, ("ingest", "transform"))
    return env, Path(env["SEGMINT_WAREHOUSE"])


def _run_until_done(env: dict[str, str], tmp_path: Path, runs: int, *triggers: list[str]) -> None:
    """Start the scheduler, make the ``triggers`` (`airflow dags trigger` arguments) and
    unpause the DAG, and wait until ``runs`` runs have finished."""
    with scheduling(env, tmp_path, DAG, TIMEOUT_S) as (scheduler, deadline):
        for args in triggers:
            airflow(env, "dags", "trigger", DAG, *args)
        airflow(env, "dags", "unpause", DAG)

        def states() -> list[str]:
            return [r["state"] for r in dag_runs(env, DAG)]

        wait_until(
            f"{runs} runs to finish",
            lambda: len(s := states()) == runs and set(s) <= {"success", "failed"},
            scheduler,
            deadline,
            show=states,
        )


def test_two_nights_triggered_later_first_both_run(tmp_path: Path) -> None:
    env, warehouse = _airflow(tmp_path)
    # Both queued before the scheduler may start either: the later night first.
    _run_until_done(
        env, tmp_path, 2, *[["--logical-date", f"{n}T00:00:00+00:00"] for n in (LATER, EARLIER)]
    )

    assert _states(env) == {str(LATER): "success", str(EARLIER): "success"}
    rows = fetch(
        warehouse,
        "select as_of_date, task_id from ops.pipeline_runs "
        f"where dag_id = '{DAG}' and status = 'success' order by started_at",
    )
    # one night at a time: the later one (started first) whole, then the earlier one
    assert rows == [
        (LATER, "ingest"),
        (LATER, "transform"),
        (EARLIER, "ingest"),
        (EARLIER, "transform"),
    ]


def test_a_night_triggered_now_builds_the_last_complete_day(tmp_path: Path) -> None:
    """`airflow dags trigger -l <now>` (the logical date Airflow 3's Trigger form fills in)
    under a real scheduler built as of today, a day not over; it builds yesterday (UTC) and
    its first task's row says why. `airflow dags trigger` without `-l` makes a run with no
    logical date, which fails at its first task saying how to give the night."""
    env, warehouse = _airflow(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    _run_until_done(env, tmp_path, 2, ["--logical-date", now.isoformat()], [])
    states = sorted((r["logical_date"], r["state"]) for r in dag_runs(env, DAG))
    assert states == [("", "failed"), (now.isoformat(), "success")]
    rows = fetch(
        warehouse,
        "select task_id, status, as_of_date, warnings, error from ops.pipeline_runs "
        f"where dag_id = '{DAG}' order by started_at",
    )
    yesterday = now.date() - timedelta(days=1)
    night = [r for r in rows if r[1] == "success"]
    assert [(r[0], r[2]) for r in night] == [("ingest", yesterday), ("transform", yesterday)]
    assert f"it builds the last complete day, {yesterday}" in night[0][3]
    (task, status, _, _, error), *_ = [r for r in rows if r[1] == "failed"]
    assert (task, status) == ("ingest", "failed")
    assert "this DAG run has neither a logical date nor a data interval" in error
    assert 'conf {"as_of": "YYYY-MM-DD"}' in error
