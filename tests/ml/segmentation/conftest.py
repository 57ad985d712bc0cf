"""Fixtures for the segmentation tests: synthetic features and a warehouse holding them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.segmentation import run_segmentation
from ml.segmentation.synthetic import customer_features, next_day
from segmint.config import SegmentationSettings, Settings
from segmint.stages import StageResult
from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)


def query(settings: Settings, sql: str, params: list | None = None) -> pd.DataFrame:
    """Run a read-only query on the warehouse of ``settings`` (opened and closed each call)."""
    con = connect(settings.warehouse, read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


@pytest.fixture
def as_of() -> date:
    return AS_OF


@pytest.fixture(scope="session")
def features_3k() -> pd.DataFrame:
    return customer_features(3000, AS_OF, seed=11)


@pytest.fixture
def small_settings() -> SegmentationSettings:
    """Defaults, but a small search so the tests stay quick."""
    return SegmentationSettings(k_min=2, k_max=7, silhouette_sample=2000, n_init=2)


@pytest.fixture
def warehouse_with(tmp_path: Path) -> Callable[..., Settings]:
    """Write frames into marts.customer_features of a fresh warehouse; return its Settings."""

    def make(*frames: pd.DataFrame, segmentation: SegmentationSettings | None = None) -> Settings:
        path = tmp_path / "warehouse" / "segmint.duckdb"
        con = connect(path)
        try:
            data = pd.concat(frames, ignore_index=True).drop(columns="latent_type", errors="ignore")
            con.register("features", data)
            con.execute("drop table if exists marts.customer_features")
            con.execute(
                "create table marts.customer_features as "
                "select * replace (cast(as_of_date as date) as as_of_date) from features"
            )
        finally:
            con.close()
        return Settings(warehouse=path, segmentation=segmentation or SegmentationSettings())

    return make


@pytest.fixture
def two_nights(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> tuple[Settings, date, StageResult]:
    """Segmentation run for as_of and the next day: the settings, the next day and the
    second night's result."""
    tomorrow = as_of + timedelta(days=1)
    settings = warehouse_with(features_3k, next_day(features_3k), segmentation=small_settings)
    run_segmentation(settings, as_of)
    return settings, tomorrow, run_segmentation(settings, tomorrow)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Fit with one OpenMP thread, as the stage does by default (see SegmentationSettings)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
