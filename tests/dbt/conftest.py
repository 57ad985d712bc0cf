"""Fixtures for the dbt tests: a real DuckDB file with synthetic raw rows, built by the real
``dbt build`` through :func:`segmint.transform.run_transform`. dbt start-up costs seconds, so
each warehouse is built once (per session or module) and shared by the tests reading it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbt.warehouse_data import END, new_warehouse, settings_for


@pytest.fixture(scope="session")
def full_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """All raw rows (through END), one full build as of END."""
    from segmint.transform import run_transform

    path = new_warehouse(tmp_path_factory.mktemp("full") / "segmint.duckdb", after=True)
    result = run_transform(settings_for(path), END)
    assert result.rows_out > 0
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)
