"""Point in time and incrementality: features as of a date do not change when later events
arrive, and the nightly incremental run leaves the same tables as a full build."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from segmint.transform import run_transform
from segmint.warehouse import connect, table_hash
from tests.dbt.warehouse_data import CUTOFF, END, insert_after, new_warehouse, settings_for

SAME_AFTER_INCREMENT = (
    "marts.identity_map",
    "marts.identity_conflicts",
    "marts.sessions",
    "marts.orders",
    "marts.customers",
    "marts.customer_daily_activity",
    "marts.customer_features",
)


def read(path: Path, sql: str) -> pd.DataFrame:
    con = connect(path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def snapshot(path: Path, table: str, as_of) -> pd.DataFrame:
    frame = read(path, f"SELECT * FROM {table} WHERE as_of_date = DATE '{as_of}'")
    frame = frame.drop(columns=[c for c in frame.columns if c == "_loaded_at"])
    return frame.sort_values("customer_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def nightly(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, pd.DataFrame, dict]]:
    """A warehouse built as of CUTOFF, then given the later events and rebuilt
    incrementally as of END. Yields it, the features it had as of CUTOFF and the details of
    that first night's transform."""
    path = new_warehouse(tmp_path_factory.mktemp("nightly") / "segmint.duckdb", after=False)
    first = run_transform(settings_for(path), CUTOFF)
    assert first.rows_out > 0
    features_then = snapshot(path, "marts.customer_features", CUTOFF)
    con = connect(path)
    insert_after(con)
    con.close()
    run_transform(settings_for(path), END)
    yield path, features_then, first.details
    shutil.rmtree(path.parent, ignore_errors=True)


def test_features_as_of_a_date_ignore_later_events(
    nightly: tuple[Path, pd.DataFrame, dict], full_warehouse: Path
) -> None:
    path, features_then, _ = nightly
    # Recomputed from scratch with a month of later events in raw.events ...
    recomputed = snapshot(full_warehouse, "marts.customer_feature_history", CUTOFF)
    assert read(full_warehouse, "SELECT max(event_ts) AS m FROM raw.events")["m"][0] > pd.Timestamp(
        END
    )
    # ... the features as of CUTOFF are exactly those computed before they arrived.
    pd.testing.assert_frame_equal(features_then, recomputed)
    kept = snapshot(path, "marts.customer_feature_history", CUTOFF)
    pd.testing.assert_frame_equal(features_then, kept)
    # And the later events did change the later snapshot (the test is not vacuous).
    later = snapshot(full_warehouse, "marts.customer_features", END)
    assert later["order_count"].sum() > features_then["order_count"].sum()


def test_incremental_run_equals_full_build(
    nightly: tuple[Path, pd.DataFrame, dict], full_warehouse: Path
) -> None:
    path, _, _ = nightly
    incremental = connect(path, read_only=True)
    full = connect(full_warehouse, read_only=True)
    try:
        for table in SAME_AFTER_INCREMENT:
            assert table_hash(incremental, table) == table_hash(full, table), table
    finally:
        incremental.close()
        full.close()
    # The nightly warehouse also keeps the snapshots of its first night; the snapshots both
    # have are equal, and so are the rule segments computed from them.
    for as_of in (CUTOFF, END):
        pd.testing.assert_frame_equal(
            snapshot(path, "marts.customer_feature_history", as_of),
            snapshot(full_warehouse, "marts.customer_feature_history", as_of),
        )
        segments = "marts.customer_rule_segments"
        pd.testing.assert_frame_equal(
            snapshot(path, segments, as_of).sort_values(
                ["customer_id", "segment"], ignore_index=True
            ),
            snapshot(full_warehouse, segments, as_of).sort_values(
                ["customer_id", "segment"], ignore_index=True
            ),
        )


def test_a_backfilled_night_counts_its_own_orders_and_sessions(
    nightly: tuple[Path, pd.DataFrame, dict], tmp_path: Path
) -> None:
    """Rerun as of CUTOFF with a month of later events loaded: the summary said "... with
    features as of CUTOFF, <every order> orders, <every session> sessions"."""
    path, _, first = nightly
    copy = tmp_path / "segmint.duckdb"
    shutil.copy(path, copy)
    # A visitor anonymous up to CUTOFF logs in after it.
    con = connect(copy)
    con.execute(
        """
        insert into raw.events (event_id, event_type, event_ts, customer_id, anonymous_id,
            _source_file, _source_line, _partition_date, _loaded_at)
        select 'late-login', 'login', ? + interval 3 day, 'C-LATE', min(anonymous_id),
            'events/late.jsonl', 1, ? + interval 3 day, now()
        from marts.sessions
        where customer_id is null and session_date <= ?
            and anonymous_id not in (select anonymous_id from marts.identity_map)
        """,
        [CUTOFF, CUTOFF, CUTOFF],
    )
    con.close()
    result = run_transform(settings_for(copy), CUTOFF)
    counts = read(
        copy,
        f"""
        select
            (select count(*) from marts.orders where order_date <= date '{CUTOFF}') as orders,
            (select count(*) from marts.orders) as all_orders,
            (select count(*) from marts.sessions where session_date <= date '{CUTOFF}')
                as sessions,
            (select count(*) from marts.sessions) as all_sessions
        """,
    ).iloc[0]
    assert counts["all_orders"] > counts["orders"] > 0
    assert counts["all_sessions"] > counts["sessions"] > 0
    assert result.details["orders"] == counts["orders"]
    assert result.details["sessions"] == counts["sessions"]
    assert f"as of {CUTOFF}, {counts['orders']} orders, {counts['sessions']} sessions" in (
        result.summary
    )
    # Anonymous visitors and linked ids as the night counted them, not with the links the
    # later events made (the identity map is today's).
    for figure in ("anonymous_visitors", "linked_anonymous_ids"):
        assert result.details[figure] == first[figure], figure
    now = read(copy, "select count(*) as n from marts.identity_map")["n"].iloc[0]
    assert now > first["linked_anonymous_ids"]
