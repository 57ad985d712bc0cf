"""Fixtures for ingestion tests: a landing zone and warehouse under tmp_path, file writers."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest

from segmint.config import Settings
from segmint.warehouse import table_hash

TABLES = (
    "raw.events",
    "raw.customers",
    "ops.load_manifest",
    "ops.quarantine",
    "ops.duplicates",
    "ops.validation_runs",
)
TIMESTAMPS = ("_loaded_at", "first_loaded_at", "updated_at", "quarantined_at", "validated_at")
D1, D2, D3 = date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)


def event(event_id: str, day: date = D1, **fields) -> dict:
    record = {
        "event_id": event_id,
        "event_type": "page_view",
        "event_ts": f"{day.isoformat()}T10:00:00Z",
        "customer_id": "c1",
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def write_lines(path: Path, lines: list[str], gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_jsonl(path: Path, records: list[dict | str], gz: bool = False) -> Path:
    return write_lines(path, [r if isinstance(r, str) else json.dumps(r) for r in records], gz=gz)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings().with_overrides(
        warehouse=tmp_path / "wh" / "segmint.duckdb",
        landing=tmp_path / "landing",
        output=tmp_path / "output",
    )


@pytest.fixture
def landing(settings: Settings) -> Path:
    settings.landing.mkdir(parents=True, exist_ok=True)
    return settings.landing


@pytest.fixture
def query(settings: Settings) -> Callable[..., list[tuple]]:
    """Run a read-only query on the warehouse (opened and closed each call)."""

    def run(sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    return run


def warehouse_hashes(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: table_hash(con, t, exclude=TIMESTAMPS) for t in TABLES}
    finally:
        con.close()
