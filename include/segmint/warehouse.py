"""The DuckDB warehouse: connections, schemas, the raw/ops table contracts, transactions.

DuckDB allows one writing process per file, and any other process holding the file open
makes writes fail. segmint therefore has exactly one writer (the pipeline, one stage at a
time, each closing its connection before the next starts) and readers use the published
copy (:mod:`segmint.publish`), never the working file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from segmint.stages import WarehouseBusyError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; segmint's processes do not take turns
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "ops", "staging", "intermediate", "marts", "ml", "audiences")

EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "purchase",
    "email_open",
    "email_click",
    "login",
    # A tracker's identify call (Segment, RudderStack): "this anonymous id is this customer".
    # It links the two ids for identity stitching and is no visit: no session, no engagement.
    "identify",
    # A refund of (part of) an order, from a shop's back end: order_id and revenue (the amount
    # refunded) are required; it reduces the order's customer's net revenue and is no visit.
    "refund",
)

# Load metadata carried by every raw row.
_LOAD_METADATA = """
    _source_file VARCHAR NOT NULL,    -- landing path, relative to the landing root
    _source_line BIGINT NOT NULL,     -- 1-based line (JSONL/CSV data line) or row (Parquet)
    _partition_date DATE NOT NULL,    -- the dt= partition the file came from
    _extra JSON,                      -- unknown columns, kept but ignored
    _loaded_at TIMESTAMP NOT NULL     -- UTC
"""

RAW_DDL = f"""
CREATE TABLE IF NOT EXISTS raw.events (
    -- A random string in every tracker (a UUID). Left uncompressed, a batch inserts 14%
    -- faster and the table is a third larger (dbt_project/macros/column_compression.sql).
    event_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
    event_type VARCHAR NOT NULL,
    event_ts TIMESTAMP NOT NULL,      -- UTC, naive
    customer_id VARCHAR,
    anonymous_id VARCHAR,
    session_id VARCHAR,
    page_url VARCHAR,
    page_type VARCHAR,
    referrer VARCHAR,
    product_id VARCHAR,
    product_category VARCHAR,
    price DECIMAL(18, 2),
    quantity INTEGER,
    search_query VARCHAR,
    device_type VARCHAR,
    country VARCHAR,
    utm_source VARCHAR,
    utm_medium VARCHAR,
    utm_campaign VARCHAR,
    time_on_page_s DOUBLE,
    scroll_depth DOUBLE,
    order_id VARCHAR,
    revenue DECIMAL(18, 2),
    currency VARCHAR,
    {_LOAD_METADATA}
);
CREATE TABLE IF NOT EXISTS raw.customers (
    customer_id VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL,    -- UTC, naive
    email VARCHAR,
    phone VARCHAR,
    first_name VARCHAR,
    last_name VARCHAR,
    birth_date DATE,
    gender VARCHAR,
    country VARCHAR,
    city VARCHAR,
    postal_code VARCHAR,
    signup_date DATE,
    loyalty_tier VARCHAR,
    email_opt_in BOOLEAN NOT NULL,    -- absent in the file = no consent = false
    ads_opt_in BOOLEAN NOT NULL,
    {_LOAD_METADATA}
);
-- Exchange rates into the reporting currency, replaced from `[transform] currency_rates`
-- (a CSV file) at every transform run (segmint.transform.load_currency_rates).
CREATE TABLE IF NOT EXISTS raw.currency_rates (
    currency_code VARCHAR NOT NULL,   -- ISO 4217, upper case: the currency converted from
    valid_from DATE NOT NULL,         -- first UTC day the rate applies to
    to_currency VARCHAR NOT NULL,     -- ISO 4217, upper case: the currency converted to
    rate DOUBLE NOT NULL,             -- units of to_currency for one unit of currency_code
    _source_file VARCHAR NOT NULL,
    _source_line BIGINT NOT NULL,     -- 1-based line of the CSV file (the header is line 1)
    _loaded_at TIMESTAMP NOT NULL
);
"""


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file, creating its folder and schemas when writable."""
    path = Path(path)
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"warehouse {path} does not exist; run `segmint run` first")
        return duckdb.connect(str(path), read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return con


# How long a segmint process waits for another one that has the same warehouse open (a
# stage of the night, an export, an erasure) before it gives up and names it.
WAIT_FOR_WAREHOUSE_S = 30 * 60
# Lock files this process holds: path -> [descriptor, depth] (re-entrant).
_held: dict[Path, list[int]] = {}


def lock_path(warehouse: str | Path) -> Path:
    """``<warehouse>.lock`` beside the file a warehouse path (perhaps a link) names."""
    real = Path(warehouse).resolve()
    return real.with_name(real.name + ".lock")


@contextlib.contextmanager
def exclusive(
    warehouse: str | Path, what: str, wait_s: float = WAIT_FOR_WAREHOUSE_S
) -> Iterator[None]:
    """Have the working warehouse to this process alone while inside: segmint's own
    processes take turns instead of failing.

    DuckDB lets one process open a file for writing, and any other process holding it open,
    even read-only, makes that open fail at once ("Could not set lock on file"). So the
    night's stages, ``audience export``, ``erase``, ``audience readout`` and ``report`` each
    hold an advisory lock on ``<warehouse>.lock`` while they use the file; the next one
    waits (up to ``wait_s``), saying whom it waits for, rather than failing the night or the
    export. Re-entrant within a process. Readers outside segmint open the published copy.
    A folder where the lock file cannot be created (a read-only mount) is used unlocked.
    """
    lock = lock_path(warehouse)
    if fcntl is None:
        yield
        return
    if lock in _held:
        _held[lock][1] += 1
        try:
            yield
        finally:
            _held[lock][1] -= 1
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError as exc:
        log.debug("warehouse %s used without its lock file: %s", warehouse, exc)
        yield
        return
    try:
        _acquire(fd, lock, warehouse, what, wait_s)
        _held[lock] = [fd, 1]
        try:
            yield
        finally:
            del _held[lock]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, lock: Path, warehouse: str | Path, what: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    holder = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            waited = f"{wait_s / 60:.0f} min" if wait_s >= 120 else f"{wait_s:g} s"
            if holder is None:
                holder = lock.read_text(errors="replace").strip() or "another process"
                log.warning("%s", _wait_line(what, holder, warehouse, wait_s, waited))
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the warehouse {warehouse} is in use by {holder} and was not free after "
                    f"{waited}; {what} did not run: run it again when that is done"
                ) from None
            time.sleep(0.2)
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{what} (pid {os.getpid()}, since {since} UTC)\n".encode(), 0)


def _wait_line(what: str, holder: str, warehouse: str | Path, wait_s: float, waited: str) -> str:
    """The one line logged when ``what`` starts to wait for the segmint process ``holder``
    (``report of 2026-06-30 (pid 4242, since ... UTC)``): who holds the warehouse, what this
    process does now, and what the operator can do. It said who and nothing more, so a
    command that seemed to hang gave no hint of how long, nor of what to do about it."""
    until = (datetime.now(UTC) + timedelta(seconds=wait_s)).strftime("%H:%M:%S")
    pid = re.search(r"\(pid (\d+)", holder)
    stop = f"kill {pid.group(1)}" if pid else "stop it"
    return (
        f"{what} waits for {holder} to finish with {warehouse}: it starts by itself once that "
        f"is done, or gives up at {until} UTC ({waited}); nothing to do unless that process "
        f"is stuck ({stop})"
    )


def checkpoint_wal(path: str | Path) -> None:
    """Fold into the warehouse file a write-ahead log a closed connection left beside it.

    DuckDB checkpoints when the last connection closes, and a checkpoint that fails there
    (a full disk, ``ulimit -f``) is not reported: not by ``close()``, not by dbt-duckdb at
    dbt's exit. The stage said done, exit code 0, its committed work only in
    ``<warehouse>.wal``, which every later process replayed and failed to fold in, unseen.
    Checkpointing here raises DuckDB's error, which names the file
    (:func:`segmint.ops.disk_fault_message`); nothing is lost, the rerun replays the log.
    No log, nothing to do: the usual end of a stage."""
    path = Path(path)
    if not path.with_name(path.name + ".wal").exists():
        return
    con = connect(path)
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()


def limit_resources(con: duckdb.DuckDBPyConnection, threads: int, memory_limit: str) -> None:
    """Set DuckDB's threads and, unless empty (DuckDB's default), its memory limit (a value
    the settings checked: ``[ingest] duckdb_memory_limit``)."""
    con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw.events``, ``raw.customers`` (the contract's columns) and
    ``raw.currency_rates``."""
    con.execute(RAW_DDL)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All statements inside commit together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fsync_file(path)


COMPACT_MARK = ".compact-"


def compact(path: str | Path) -> tuple[int, int]:
    """Rewrite the warehouse file so that no deleted row survives in its bytes.

    DuckDB marks the blocks of deleted rows free and reuses them later, but does not
    overwrite them: after an erasure the customer's e-mail and ids can still be read from
    the file with ``strings``, and from every byte copy of it (the published copy). Here every
    schema, table, view, constraint and row is copied (``COPY FROM DATABASE``) into a new file
    beside it, which then replaces it atomically. A crash leaves the old file whole and a
    stray ``.<name>.compact-<pid>`` file, which the next compaction removes.

    Needs the only connection to the file, like any write, and disk space for a second copy;
    29 s and 3.1 GiB peak for the 1.5 GB warehouse of 10M events on 2 cores. Returns the
    sizes in bytes before and after.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}{COMPACT_MARK}*"):
        stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}{COMPACT_MARK}{os.getpid()}"
    before = path.stat().st_size
    con = connect(path)
    try:
        catalog = con.execute("SELECT current_database()").fetchone()[0]
        con.execute("SET enable_progress_bar = false")  # a CLI command's stdout is its report
        con.execute("CHECKPOINT")
        con.execute(f"ATTACH '{tmp}' AS _segmint_compact")
        try:
            con.execute(f'COPY FROM DATABASE "{catalog}" TO _segmint_compact')
        finally:
            con.execute("DETACH _segmint_compact")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return before, path.stat().st_size


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".", 1)
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def table_hash(
    con: duckdb.DuckDBPyConnection, qualified: str, exclude: tuple[str, ...] = ()
) -> str:
    """A content hash of a table, independent of physical row order.

    Used to prove reruns idempotent: equal hashes mean equal multisets of rows. Columns in
    ``exclude`` (for example load timestamps or run ids) are left out.
    """
    schema, name = qualified.split(".", 1)
    cols = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
        if r[0] not in exclude
    ]
    if not cols:
        raise ValueError(f"table {qualified} not found or has no columns left to hash")
    row = ", ".join(f'"{c}"' for c in cols)
    rows = con.execute(
        f"SELECT md5(CAST(ROW({row}) AS VARCHAR)) AS h FROM {qualified} ORDER BY h"
    ).fetchall()
    digest = hashlib.sha256()
    for (h,) in rows:
        digest.update(h.encode())
    return digest.hexdigest()
