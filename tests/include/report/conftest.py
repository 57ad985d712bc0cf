"""Fixtures for the report tests: a full sample warehouse and a small hand-made one."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from segmint.report.sample import build_sample_warehouse
from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)
REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO_ROOT / "output" / "test-artifacts"


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every table the report reads, four nightly runs, 1,500 customers."""
    path = tmp_path_factory.mktemp("report-sample") / "warehouse" / "segmint.duckdb"
    return build_sample_warehouse(path, customers=1_500, as_of=AS_OF, runs=4)


def make_handmade(path: Path) -> Path:
    """Two runs of two segments and one day of quarantine, numbers easy to check by hand.

    Previous run: 10 customers in A, 10 in B. This run: 2 of B moved to A and one new
    customer joined B, so A = 12 (+20%), B = 9 (-10%), 18 of 20 kept their segment.
    Quarantine on the as-of day: 3 rows for a future timestamp (one also missing an id),
    2 unparseable timestamps (reasons differing only in the "(got ...)" detail), 1 row of
    invalid JSON.
    """
    prev = AS_OF - timedelta(days=1)
    con = connect(path)
    try:
        con.execute(
            """
            create table ml.customer_segments (
                customer_id varchar not null, as_of_date date not null,
                segment_id integer not null, segment_name varchar not null,
                distance double not null, is_outlier boolean not null, run_id varchar not null
            )"""
        )
        rows = [(f"c{i:02d}", prev, 0 if i < 10 else 1) for i in range(20)]
        rows += [(f"c{i:02d}", AS_OF, 0 if i < 12 else 1) for i in range(21)]
        con.executemany(
            "insert into ml.customer_segments values (?, ?, ?, "
            "case when ? = 0 then 'Alpha' else 'Beta' end, 0.5, false, 'r')",
            [(c, d, s, s) for c, d, s in rows],
        )
        con.execute(
            """
            create table ops.quarantine (
                source_file varchar not null, line_number bigint not null,
                source varchar not null, partition_date date not null, raw_record varchar,
                reasons varchar[] not null, quarantined_at timestamp not null
            )"""
        )
        con.execute(
            """
            insert into ops.quarantine values
                ('events/dt=2026-06-30/a.jsonl', 1, 'events', date '2026-06-30', '{}',
                 ['event_ts_in_future'], timestamp '2026-07-01 01:00:00'),
                ('events/dt=2026-06-30/a.jsonl', 2, 'events', date '2026-06-30', '{}',
                 ['event_ts_in_future', 'missing_identity'], timestamp '2026-07-01 01:00:00'),
                ('events/dt=2026-06-30/a.jsonl', 3, 'events', date '2026-06-30', '{}',
                 ['event_ts_in_future'], timestamp '2026-07-01 01:00:00'),
                ('events/dt=2026-06-30/a.jsonl', 4, 'events', date '2026-06-30', 'x',
                 ['invalid_json'], timestamp '2026-07-01 01:00:00'),
                ('events/dt=2026-06-30/a.jsonl', 5, 'events', date '2026-06-30', '{}',
                 ['bad timestamp (got 31/12/2025)'], timestamp '2026-07-01 01:00:00'),
                ('events/dt=2026-06-30/a.jsonl', 6, 'events', date '2026-06-30', '{}',
                 ['bad timestamp (got yesterday)'], timestamp '2026-07-01 01:00:00')
            """
        )
    finally:
        con.close()
    return path


def quarantine_only(warehouse: Path, reasons: list[str]) -> None:
    """Replace the warehouse's quarantine with one row per reason (lines 1, 2, ... of one
    events file of the as-of partition)."""
    con = connect(warehouse)
    try:
        con.execute("delete from ops.quarantine")
        con.executemany(
            "insert into ops.quarantine values ('events/dt=2026-06-30/a.jsonl', ?, 'events', "
            "date '2026-06-30', '{}', [?], timestamp '2026-07-01 01:00:00')",
            list(enumerate(reasons, start=1)),
        )
    finally:
        con.close()


@pytest.fixture
def handmade_warehouse(tmp_path: Path) -> Path:
    return make_handmade(tmp_path / "handmade.duckdb")
