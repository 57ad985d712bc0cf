"""Reading a DuckDB file in a test, the way an analyst would: read-only, closed at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


def fetch(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Every row of ``sql`` run on the DuckDB file ``path``, opened read-only."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def text_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text column (VARCHAR, JSON, VARCHAR[]) of ``con``."""
    return con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type in ('VARCHAR', 'JSON', 'VARCHAR[]') order by all"
    ).fetchall()


def columns_holding(
    con: duckdb.DuckDBPyConnection, columns: list[tuple[str, str, str]], values: list[str]
) -> list[str]:
    """``schema.table.column`` of the ``columns`` in which a value contains one of the
    lower-cased ``values`` (a personal datum looked for where it must not be)."""
    return [
        f"{schema}.{table}.{column}"
        for schema, table, column in columns
        if con.execute(
            f'select count(*) from {schema}."{table}", unnest(?::varchar[]) as e(v) '
            f'where contains(lower(cast("{column}" as varchar)), v)',
            [values],
        ).fetchone()[0]
    ]


@contextmanager
def held_open(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process (a Python reading with DuckDB, as an analyst's notebook would) holding
    the DuckDB file ``path`` open read-only while the block runs; killed after it."""
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); time.sleep(120)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        yield reader
    finally:
        reader.kill()
        reader.wait()
