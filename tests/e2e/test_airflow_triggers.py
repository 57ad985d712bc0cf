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

import os
import time
from datetime import date
from pathlib import Path

import pytest

from segmint.airflow_env import airflow_environ, ensure_ready
from tests.dags.stubs import stub_dag
from tests.db import fetch
from tests.e2e.airflow_support import Scheduler, airflow, dag_runs, free_port

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
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "triggers_stages.py").write_text(STAGES_MODULE)
    (dags / "triggers_dag.py").write_text(
        stub_dag("triggers", {s: f"triggers_stages:{s}" for s in ("ingest", "transform")})
    )
    warehouse = tmp_path / "warehouse" / "segmint.duckdb"
    port = str(free_port())
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))}
    env = airflow_environ(tmp_path / "airflow_home", base=base)
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "PYTHONPATH": str(dags),
            "SEGMINT_WAREHOUSE": str(warehouse),
            "AIRFLOW__API__PORT": port,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }
    )
    ensure_ready(env)
    logs = tmp_path / "logs"
    logs.mkdir()
    scheduler = Scheduler(env, logs)
    scheduler.start()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while DAG not in airflow(env, "dags", "list", "--output", "plain"):
            scheduler.assert_alive()
            assert time.monotonic() < deadline, f"the DAG was never parsed; logs in {logs}"
            time.sleep(2)
        # Both queued before the scheduler may start either: the later night first.
        for night in (LATER, EARLIER):
            airflow(env, "dags", "trigger", DAG, "--logical-date", f"{night}T00:00:00+00:00")
        airflow(env, "dags", "unpause", DAG)
        while not (
            len(states := _states(env)) == 2 and set(states.values()) <= {"success", "failed"}
        ):
            scheduler.assert_alive()
            assert time.monotonic() < deadline, f"nights stuck: {states}; logs in {logs}"
            time.sleep(2)
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
