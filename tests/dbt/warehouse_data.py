"""The raw data of the dbt tests: two loads of synthetic rows (before and after CUTOFF)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from segmint.config import PropensitySettings, Settings, TransformSettings, load_settings
from segmint.warehouse import connect, ensure_raw_tables
from tests.dbt import synthetic

START = date(2026, 4, 1)
CUTOFF = date(2026, 5, 31)  # as-of date of the first build; a propensity cut-off later
END = date(2026, 6, 30)
CUSTOMERS = 300
SESSIONS_BEFORE = 2400  # 2026-04-01 .. 2026-05-31
SESSIONS_AFTER = 1200  # 2026-06-01 .. 2026-06-30


def settings_for(warehouse: Path) -> Settings:
    # One 30-day horizon and one cut-off: as of END the snapshots are END and CUTOFF.
    return Settings(
        warehouse=warehouse,
        propensity=PropensitySettings(horizon_days=30, training_cutoffs=1),
        transform=TransformSettings(reporting_currency=synthetic.CURRENCY),
    )


def settings_in(root: Path, toml: str) -> Settings:
    """The settings of the ``segmint.toml`` text ``toml``, written in ``root``, with the
    warehouse, landing zone and output there too."""
    config = root / "segmint.toml"
    config.write_text(toml, encoding="utf-8")
    return load_settings(config, environ={}).with_overrides(
        warehouse=root / "segmint.duckdb", landing=root / "landing", output=root / "output"
    )


def insert_before(con) -> None:
    synthetic.insert_raw(con, CUSTOMERS, SESSIONS_BEFORE, START, CUTOFF, seed=1)


def insert_after(con) -> None:
    """Events after CUTOFF, loaded later (one load per run)."""
    synthetic.insert_raw(
        con,
        CUSTOMERS,
        SESSIONS_AFTER,
        date(2026, 6, 1),
        END,
        seed=2,
        loaded_at=datetime(2026, 7, 1, 3, 0),
        with_customers=False,
    )


def new_warehouse(path: Path, *, after: bool) -> Path:
    con = connect(path)
    ensure_raw_tables(con)
    insert_before(con)
    if after:
        insert_after(con)
    con.close()
    return path
