"""A backfill run by a real Airflow scheduler gives the state of the nights run one by one.

The nights of a backfill are created by ``airflow backfill create`` and run by the
scheduler (LocalExecutor, with the dag-processor and the API server the task runners talk
to), exactly as in production. The backfill is created with Airflow's default concurrency
(several runs active at once): the DAG itself must keep the nights in order, oldest first,
with no stage of one night between the stages of another. The reference is the same dates
run one by one with ``segmint run`` on a second copy of the landing zone: the published
tables must hash the same.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from segmint.airflow_env import DAG_ID, airflow_environ, ensure_ready
from segmint.pipeline import STAGES
from tests.db import fetch
from tests.e2e.airflow_support import (
    AS_OF,
    Scheduler,
    airflow,
    dag_runs,
    differing_tables,
    explain_differences,
    free_port,
    published_hashes,
    published_path,
    published_stamp,
    segmint_script,
    small_night,
)

pytestmark = pytest.mark.slow

NIGHTS = [AS_OF - timedelta(days=1), AS_OF]
TIMEOUT_S = 1200


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("airflow_backfill")
    base = small_night(root)
    port = str(free_port())
    env = airflow_environ(root / "airflow_home", base=base)
    env.update(
        {
            "AIRFLOW__API__PORT": port,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            # only the backfill's runs: no scheduled run of "yesterday" on top of them
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }
    )
    ensure_ready(env)
    logs = root / "logs"
    logs.mkdir()
    scheduler = Scheduler(env, logs)
    scheduler.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while DAG_ID not in airflow(env, "dags", "list", "--output", "plain"):
            scheduler.assert_alive()
            assert time.monotonic() < deadline, "the dag-processor never parsed the DAG"
            time.sleep(2)
        airflow(env, "dags", "unpause", DAG_ID)
        # Airflow's default backfill concurrency: the DAG must serialise the nights itself.
        airflow(
            env,
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            NIGHTS[0].isoformat(),
            "--to-date",
            NIGHTS[-1].isoformat(),
        )
        while True:
            runs = dag_runs(env)
            if len(runs) == len(NIGHTS) and all(r["state"] in ("success", "failed") for r in runs):
                break
            scheduler.assert_alive()
            assert time.monotonic() < deadline, f"backfill unfinished: {runs}; logs {logs}"
            time.sleep(5)
    finally:
        scheduler.stop()
    return {"root": root, "env": base, "runs": runs, "airflow_logs": root / "airflow_home"}


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same nights with ``segmint run``, one after the other, on their own warehouse."""
    root = tmp_path_factory.mktemp("one_by_one")
    env = small_night(root)
    for night in NIGHTS:
        proc = subprocess.run(
            [segmint_script(), "run", "--as-of", night.isoformat()],
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"segmint run {night}:\n{proc.stderr[-4000:]}"
    return Path(env["SEGMINT_WAREHOUSE"])


def test_backfill_runs_every_night_with_its_own_as_of_date(backfilled: dict) -> None:
    runs = sorted(backfilled["runs"], key=lambda r: r["logical_date"])
    assert [r["state"] for r in runs] == ["success"] * len(NIGHTS), runs
    assert [r["run_id"].startswith("backfill__") for r in runs] == [True] * len(NIGHTS)
    assert [r["logical_date"][:10] for r in runs] == [d.isoformat() for d in NIGHTS]
    warehouse = Path(backfilled["env"]["SEGMINT_WAREHOUSE"])
    assert published_stamp(published_path(warehouse))[0] == NIGHTS[-1]


def test_nights_of_a_backfill_never_interleave(backfilled: dict) -> None:
    """Every stage of a night starts after the previous night's last stage ended."""
    warehouse = Path(backfilled["env"]["SEGMINT_WAREHOUSE"])
    rows = fetch(
        warehouse,
        "select as_of_date, task_id, started_at, ended_at from ops.pipeline_runs "
        "where status = 'success' order by started_at",
    )
    assert [r[0] for r in rows] == [n for n in NIGHTS for _ in STAGES], rows
    assert [r[1] for r in rows] == list(STAGES) * len(NIGHTS)
    for earlier, later in itertools.pairwise(rows):
        assert later[2] >= earlier[3], f"{later[:2]} started before {earlier[:2]} ended"


def test_backfill_equals_the_nights_run_one_by_one(backfilled: dict, one_by_one: Path) -> None:
    backfill = published_path(Path(backfilled["env"]["SEGMINT_WAREHOUSE"]))
    reference = published_path(one_by_one)
    ours, theirs = published_hashes(backfill), published_hashes(reference)
    assert len(ours) > 10
    differing = differing_tables(ours, theirs)
    assert not differing, explain_differences(reference, backfill, differing)
