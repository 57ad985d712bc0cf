"""Reading a DuckDB file in a test, the way an analyst would: read-only, closed at once."""

from __future__ import annotations

from pathlib import Path

import duckdb


def fetch(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Every row of ``sql`` run on the DuckDB file ``path``, opened read-only."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
