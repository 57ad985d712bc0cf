"""Two nights triggered together, the later one first, under a real scheduler.

Airflow starts the queued manual runs of a DAG in the order they were triggered, one at a
time (`max_active_runs=1`). The later night started first, and its first task waited for
the earlier night, which was queued (segmint.ops.earlier_night_in_flight): the earlier run
could not start while the later one ran, so the later one rescheduled itself every 20 s
for good and neither night ever ran (as on a scheduled night waiting for its files when an
earlier date is triggered). The stages are stubs run by segmint's own task glue, so the
test needs no data.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from tests.db import fetch
from tests.e2e.airflow_support import Scheduler, airflow, dag_runs, stub_night_env, wait_until

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


def test_two_nights_triggered_later_first_both_run(tmp_path: Path) -> None:
    env = stub_night_env(tmp_path, "triggers", STAGES_MODULE, ("ingest", "transform"))
    warehouse = Path(env["SEGMINT_WAREHOUSE"])
    logs = tmp_path / "logs"
    logs.mkdir()
    scheduler = Scheduler(env, logs)
    scheduler.start()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        wait_until(
            "the DAG to be parsed",
            lambda: DAG in airflow(env, "dags", "list", "--output", "plain"),
            scheduler,
            deadline,
        )
        # Both queued before the scheduler may start either: the later night first.
        for night in (LATER, EARLIER):
            airflow(env, "dags", "trigger", DAG, "--logical-date", f"{night}T00:00:00+00:00")
        airflow(env, "dags", "unpause", DAG)
        wait_until(
            "both nights to finish",
            lambda: len(s := _states(env)) == 2 and set(s.values()) <= {"success", "failed"},
            scheduler,
            deadline,
            show=lambda: _states(env),
        )
    finally:
        scheduler.stop()

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
