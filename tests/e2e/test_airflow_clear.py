"""A task cleared in the middle of a night while a backfill runs, under a real scheduler.

The one-slot pool and segmint's warehouse lock keep two stages from writing the warehouse
at once (every stage below ends before the next starts), but they order tasks, not nights:
a cleared `transform` of another night ran between a backfill night's `transform` and
`segment`. With the real stages that `segment` finds no features for its date (the
marts were rebuilt for the other night) and the backfill night fails. The stages here are
stubs run by segmint's own task glue, so the test needs no data.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from segmint.airflow_env import backfill_command
from segmint.ops import WAREHOUSE_POOL
from tests.db import fetch
from tests.e2e.airflow_support import airflow, dag_runs, scheduling, stub_night_env, wait_until

pytestmark = pytest.mark.slow

DAG = "segmint_clear"
TIMEOUT_S = 900
BACKFILL_NIGHT = date(2026, 5, 4)
CLEARED_NIGHT = date(2026, 5, 10)

STAGES_MODULE = """
import time
from datetime import date

from segmint.stages import StageResult


def ingest(settings, as_of):
    return StageResult("ingest", summary=f"ingested {as_of}")


def transform(settings, as_of):
    if as_of == date(2026, 5, 4):
        # the backfill night's transform runs on until the other night's task is cleared
        folder = settings.warehouse.parent
        (folder / "transform-started").touch()
        deadline = time.monotonic() + 600
        while not (folder / "cleared").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
    return StageResult("transform", summary=f"transformed {as_of}")


def segment(settings, as_of):
    return StageResult("segment", summary=f"segmented {as_of}")
"""


def _states(env: dict[str, str]) -> dict[str, str]:
    return {r["logical_date"][:10]: r["state"] for r in dag_runs(env, DAG)}


def test_a_task_cleared_mid_backfill_waits_for_the_night_in_progress(tmp_path: Path) -> None:
    env = stub_night_env(
        tmp_path,
        "clear",
        STAGES_MODULE,
        ("ingest", "transform", "segment"),
        default_args=f'"pool": "{WAREHOUSE_POOL}",',
    )
    warehouse = Path(env["SEGMINT_WAREHOUSE"])
    with scheduling(env, tmp_path, DAG, TIMEOUT_S) as (scheduler, deadline):
        airflow(env, "dags", "unpause", DAG)
        # a night that ran before (a manual or scheduled run)
        airflow(env, "dags", "trigger", DAG, "--logical-date", f"{CLEARED_NIGHT}T00:00:00+00:00")
        wait_until(
            f"the night {CLEARED_NIGHT}",
            lambda: _states(env).get(str(CLEARED_NIGHT)) == "success",
            scheduler,
            deadline,
        )
        # a backfill of an earlier night, and that night's task cleared while it runs
        command = backfill_command(str(BACKFILL_NIGHT), str(BACKFILL_NIGHT))
        command[command.index("segmint_nightly")] = DAG
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
        wait_until(
            "the backfill night's transform",
            (warehouse.parent / "transform-started").exists,
            scheduler,
            deadline,
        )
        airflow(env, "tasks", "clear", DAG, "-t", "transform", "-d", "-y", "-s",
                str(CLEARED_NIGHT), "-e", str(CLEARED_NIGHT))  # fmt: skip
        (warehouse.parent / "cleared").touch()
        wait_until(
            "both nights to finish",
            lambda: set(_states(env).values()) <= {"success", "failed"} and len(_states(env)) == 2,
            scheduler,
            deadline,
        )

    assert _states(env) == {str(BACKFILL_NIGHT): "success", str(CLEARED_NIGHT): "success"}
    rows = fetch(
        warehouse,
        "select as_of_date, task_id, started_at, ended_at from ops.pipeline_runs "
        f"where dag_id = '{DAG}' and status = 'success' order by started_at",
    )
    night = [r for r in rows if r[0] == BACKFILL_NIGHT]
    assert [r[1] for r in night] == ["ingest", "transform", "segment"], rows
    begun, ended = night[0][2], night[-1][3]
    between = [r[:2] for r in rows if r[0] != BACKFILL_NIGHT and begun <= r[2] <= ended]
    assert not between, f"stages of another night ran inside {BACKFILL_NIGHT}'s: {between}"
    cleared = [r[1] for r in rows if r[0] == CLEARED_NIGHT and r[2] > ended]
    assert cleared == ["transform", "segment"], rows
    task_logs = "".join(
        p.read_text(errors="replace")
        for p in (Path(env["AIRFLOW_HOME"]) / "logs").rglob("*.log")
        if "task_id=transform" in str(p)
    )
    assert f"waits for the night {BACKFILL_NIGHT} (DAG run backfill__" in task_logs
