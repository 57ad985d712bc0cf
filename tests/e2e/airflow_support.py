"""What the Airflow end-to-end tests share: a small generated landing zone with its segmint
environment, content hashes of a published warehouse, and a real scheduler to run DAGs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import duckdb

from segmint.airflow_env import DAG_ID, airflow_bin, airflow_environ, ensure_ready
from segmint.generate import generate
from segmint.warehouse import table_hash

AS_OF = date(2026, 6, 30)
# Columns that legitimately differ between two runs of the same night.
VOLATILE = (
    "run_id",
    "previous_run_id",
    "created_at",
    "updated_at",
    "_loaded_at",
    "loaded_at",
    "first_loaded_at",
    "quarantined_at",
    "validated_at",
    "checked_at",
    "snapshot_at",
    "exported_at",
    "built_at",
    "artifact_path",
    "model_version",
)
# Tables that log runs rather than hold results: one more row per run by design.
RUN_LOGS = ("ml.model_runs", "ops.pipeline_runs", "ops.publication")


def segmint_script() -> str:
    return str(Path(sys.executable).with_name("segmint"))


def small_night(root: Path, customers: int = 300, days: int = 35) -> dict[str, str]:
    """Generate a landing zone under ``root`` ending at :data:`AS_OF`; return the SEGMINT_*
    environment (no AIRFLOW_* variables) that points a night at it."""
    landing = root / "landing"
    generate(landing, customers=customers, days=days, end_date=AS_OF)
    config = root / "segmint.toml"
    config.write_text(
        textwrap.dedent(
            """
            [propensity]
            horizon_days = 7
            training_cutoffs = 2
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))}
    env.update(
        {
            "SEGMINT_WAREHOUSE": str(root / "warehouse" / "segmint.duckdb"),
            "SEGMINT_LANDING": str(landing),
            "SEGMINT_OUTPUT": str(root / "output"),
            "SEGMINT_AUDIENCES": str(root / "audiences"),
            "SEGMINT_CONFIG": str(config),
        }
    )
    return env


def published_path(warehouse: Path) -> Path:
    return warehouse.parent / "published" / warehouse.name


def published_hashes(path: Path) -> dict[str, str]:
    """Content hash of every marts/ml/raw/audiences table of a published file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' "
                "and table_schema in ('raw', 'marts', 'ml', 'audiences') order by 1, 2"
            ).fetchall()
        ]
        return {t: table_hash(con, t, exclude=VOLATILE) for t in tables if t not in RUN_LOGS}
    finally:
        con.close()


def published_stamp(path: Path) -> tuple:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select as_of_date, published_at from ops.publication").fetchone()
    finally:
        con.close()


def explain_differences(first: Path, now: Path, tables: list[str], limit: int = 5) -> str:
    """Rows of each table found in one file and not the other (for a failing assertion)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{first}' as a (read_only)")
        con.execute(f"attach '{now}' as b (read_only)")
        lines = []
        for table in tables:
            try:
                cols = [
                    r[0]
                    for r in con.execute(
                        "select column_name from information_schema.columns "
                        "where table_catalog = 'b' and table_schema || '.' || table_name = ? "
                        "order by ordinal_position",
                        [table],
                    ).fetchall()
                    if r[0] not in VOLATILE
                ]
                select = ", ".join(f'"{c}"' for c in cols)
                for label, x, y in (("only first", "a", "b"), ("only second", "b", "a")):
                    rows = con.execute(
                        f"select {select} from {x}.{table} except all "
                        f"select {select} from {y}.{table} limit {limit}"
                    ).fetchall()
                    lines += [f"{table} {label}: {row}" for row in rows]
            except duckdb.Error as exc:
                lines.append(f"{table}: {exc}")
        return "\n".join(lines)
    finally:
        con.close()


def differing_tables(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(t for t in set(a) | set(b) if a.get(t) != b.get(t))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [airflow_bin(), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"airflow {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


class Scheduler:
    """The scheduler, the dag-processor and the API server of one Airflow home."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        port = self.env["AIRFLOW__API__PORT"]
        for name, args in (
            ("api-server", ["api-server", "--port", port]),
            ("dag-processor", ["dag-processor"]),
            ("scheduler", ["scheduler"]),
        ):
            self.procs.append(
                subprocess.Popen(
                    [airflow_bin(), *args],
                    env=self.env,
                    stdout=(self.logs / f"{name}.log").open("w"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def assert_alive(self) -> None:
        for proc in self.procs:
            assert proc.poll() is None, f"{proc.args} died: see {self.logs}"

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def dag_runs(env: dict[str, str], dag_id: str = DAG_ID) -> list[dict]:
    out = airflow(env, "dags", "list-runs", dag_id, "--output", "json")
    # the JSON is the last line; Airflow may print warnings before it
    lines = [line for line in out.splitlines() if line.startswith("[")]
    return json.loads(lines[-1]) if lines else []


def stub_night_env(
    root: Path, name: str, stages_module: str, stages: tuple[str, ...], default_args: str = ""
) -> dict[str, str]:
    """An Airflow home under ``root`` whose only DAG is ``segmint_<name>``: segmint's task glue
    running the stub stages of ``stages_module`` (functions ``stage(settings, as_of)``), the
    warehouse ``root/warehouse/segmint.duckdb``, a scheduler of its own on free ports, no
    scheduled runs and the DAG paused at creation."""
    from tests.dags.stubs import stub_dag

    dags = root / "dags"
    dags.mkdir()
    (dags / f"{name}_stages.py").write_text(stages_module)
    (dags / f"{name}_dag.py").write_text(
        stub_dag(name, {s: f"{name}_stages:{s}" for s in stages}, default_args=default_args)
    )
    port = str(free_port())
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))}
    env = airflow_environ(root / "airflow_home", base=base)
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "PYTHONPATH": str(dags),
            "SEGMINT_WAREHOUSE": str(root / "warehouse" / "segmint.duckdb"),
            "AIRFLOW__API__PORT": port,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }
    )
    ensure_ready(env)
    return env


def wait_until(
    what: str,
    done: Callable[[], bool],
    scheduler: Scheduler,
    deadline: float,
    show: Callable[[], object] | None = None,
) -> None:
    """Poll ``done`` every 2 s while the scheduler lives, failing at ``deadline``
    (``time.monotonic()``) with what ``show`` gives (the runs' states, say)."""
    while not done():
        scheduler.assert_alive()
        seen = f" ({show()})" if show is not None and time.monotonic() >= deadline else ""
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}{seen}; logs in {scheduler.logs}"
        )
        time.sleep(2)


@contextlib.contextmanager
def scheduling(
    env: dict[str, str], root: Path, dag_id: str, timeout_s: float
) -> Iterator[tuple[Scheduler, float]]:
    """A scheduler of ``env`` running (its logs under ``root/logs``) once it has parsed
    ``dag_id``: it and the deadline (``time.monotonic()``) ``timeout_s`` from its start;
    stopped on the way out."""
    logs = root / "logs"
    logs.mkdir()
    scheduler = Scheduler(env, logs)
    scheduler.start()
    deadline = time.monotonic() + timeout_s
    try:
        wait_until(
            "the DAG to be parsed",
            lambda: dag_id in airflow(env, "dags", "list", "--output", "plain"),
            scheduler,
            deadline,
        )
        yield scheduler, deadline
    finally:
        scheduler.stop()
