from pathlib import Path

import duckdb
import pytest

from segmint.warehouse import (
    SCHEMAS,
    connect,
    ensure_raw_tables,
    limit_resources,
    table_exists,
    table_hash,
    transaction,
)


def test_connect_creates_file_and_schemas(tmp_path: Path) -> None:
    con = connect(tmp_path / "sub" / "w.duckdb")
    ensure_raw_tables(con)
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert set(SCHEMAS) <= schemas
    assert table_exists(con, "raw.events")
    assert table_exists(con, "raw.customers")
    assert not table_exists(con, "raw.nothing")
    con.close()


def test_read_only_connection_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="segmint run"):
        connect(tmp_path / "missing.duckdb", read_only=True)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    con.execute("CREATE TABLE ops.t (x INTEGER)")
    with pytest.raises(RuntimeError), transaction(con):
        con.execute("INSERT INTO ops.t VALUES (1)")
        raise RuntimeError("boom")
    assert con.execute("SELECT count(*) FROM ops.t").fetchone()[0] == 0
    with transaction(con):
        con.execute("INSERT INTO ops.t VALUES (2)")
    assert con.execute("SELECT sum(x) FROM ops.t").fetchone()[0] == 2


def test_table_hash_ignores_row_order_but_not_content(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    con.execute("CREATE SCHEMA s")
    con.execute("CREATE TABLE s.a AS SELECT * FROM (VALUES (1, 'x', 10), (2, 'y', 20)) t(i, v, ts)")
    con.execute("CREATE TABLE s.b AS SELECT * FROM (VALUES (2, 'y', 99), (1, 'x', 98)) t(i, v, ts)")
    assert table_hash(con, "s.a") != table_hash(con, "s.b")
    assert table_hash(con, "s.a", exclude=("ts",)) == table_hash(con, "s.b", exclude=("ts",))
    con.execute("UPDATE s.b SET v = 'z' WHERE i = 1")
    assert table_hash(con, "s.a", exclude=("ts",)) != table_hash(con, "s.b", exclude=("ts",))
    with pytest.raises(ValueError, match="not found"):
        table_hash(con, "s.missing")


def test_limit_resources_sets_threads_and_keeps_the_default_memory_when_empty(
    tmp_path: Path,
) -> None:
    con = connect(tmp_path / "w.duckdb")
    default_memory = con.execute("select current_setting('memory_limit')").fetchone()[0]
    limit_resources(con, 1, "")
    assert con.execute(
        "select current_setting('threads'), current_setting('memory_limit')"
    ).fetchone() == (1, default_memory)
    limit_resources(con, 3, "1.5GB")
    assert con.execute(
        "select current_setting('threads'), current_setting('memory_limit')"
    ).fetchone() == (3, "1.3 GiB")
    con.close()
