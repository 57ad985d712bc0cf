"""Fixtures for the propensity tests: a simulated shop in a real DuckDB (see simshop.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ml.propensity.simshop import build_warehouse


@pytest.fixture(scope="session")
def sim_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only template warehouse; tests copy it before writing."""
    path = tmp_path_factory.mktemp("sim") / "template.duckdb"
    build_warehouse(path)
    return path


@pytest.fixture
def warehouse(sim_warehouse: Path, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse" / "segmint.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copy(sim_warehouse, target)
    return target
