"""Fixtures for the DAG tests: one project-local Airflow per test session, in pytest's tmp.

The DAG file is parsed in this process (DagBag); anything that needs the metadata database
(`airflow dags test`, `airflow backfill create --dry-run`) runs Airflow as a subprocess with
the environment from :func:`segmint.airflow_env.airflow_environ`, exactly as `make run` does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from segmint.airflow_env import airflow_environ, dags_folder, ensure_ready
from segmint.ops import WAREHOUSE_POOL


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by every Airflow test of the session (tests/dags and tests/e2e use the same path).
    return tmp_path_factory.getbasetemp() / "airflow_home"


@pytest.fixture(scope="session")
def airflow_env(airflow_home: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))}
    return airflow_environ(airflow_home, base=base)


@pytest.fixture(scope="session")
def ready_airflow(airflow_env: dict[str, str]) -> dict[str, str]:
    """The session's Airflow with its metadata database and pool created."""
    ensure_ready(airflow_env)
    return airflow_env


@pytest.fixture(scope="session")
def dagbag(airflow_env: dict[str, str]):
    """The repository's dags/ folder parsed in this process, with its parse time."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in airflow_env.items() if k.startswith("AIRFLOW")})
    try:
        from airflow.dag_processing.dagbag import DagBag

        started = time.perf_counter()
        bag = DagBag(dag_folder=str(dags_folder()), known_pools={"default_pool", WAREHOUSE_POOL})
        bag.segmint_parse_s = time.perf_counter() - started
        yield bag
    finally:
        os.environ.clear()
        os.environ.update(saved)
