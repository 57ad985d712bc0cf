"""A nightly increment leaves exactly the marts a full rebuild leaves: build day D in full,
land day D+1 (with a reloaded file, a day whose events all vanished, a late login that
re-attributes older anonymous events, and a new CRM version) and build D+1 incrementally;
compare every mart with a fresh full build of the same raw rows as of D+1."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from segmint.config import Settings, TransformSettings
from segmint.stages import StageResult
from segmint.transform import run_dbt, run_transform
from segmint.warehouse import connect, ensure_raw_tables, table_hash
from tests.dbt import synthetic
from tests.dbt.warehouse_data import CUSTOMERS, END, START, insert_before, settings_for

DAY = date(2026, 6, 29)  # D: the full build
NEXT = END  # D+1: the increment
RELOADED_FILE = "events/dt=2026-06-10/part-0.jsonl"
EMPTIED_DAY = date(2026, 6, 12)  # a reload leaves no event of this day
# A late purchase event of an existing order (first event on LATE_ORDER_DAY) lands on the
# earlier EARLY_DAY with an earlier timestamp: the order moves to EARLY_DAY, and
# LATE_ORDER_DAY, unchanged in raw.events, must stop counting it. EARLY_DAY has no other
# event, so no identity link re-opens LATE_ORDER_DAY. Another order sent again on LATER_DAY,
# after its first event: it stays where it was.
EARLY_DAY = date(2026, 3, 31)
LATE_ORDER_DAY = date(2026, 6, 20)
LATER_DAY = date(2026, 6, 24)
LATE_FILE = "events/dt=2026-06-30/late-purchases.jsonl"

# Tables rebuilt whole or by date: equal in full.
MARTS = (
    "intermediate.int_events_sessionised",
    "intermediate.int_identity_links",
    "intermediate.int_customer_category_daily",
    "marts.identity_map",
    "marts.identity_conflicts",
    "marts.sessions",
    "marts.orders",
    "marts.customers",
    "marts.customer_daily_activity",
    "marts.customer_product_daily",
    "marts.anonymous_product_daily",
    "marts.customer_features",
)
# Tables keyed by as-of date: the increment also keeps the snapshots of night D.
SNAPSHOTS = ("marts.customer_feature_history", "marts.customer_rule_segments")


def _load_until_day(con) -> None:
    insert_before(con)
    synthetic.insert_raw(con, CUSTOMERS, 1100, date(2026, 6, 1), DAY, seed=2, with_customers=False)


def _withdraw_consent(con, loaded: datetime) -> None:
    """A new CRM version of customer C000002, consent withdrawn (updated 2026-06-30 15:00 in
    the CRM file of that day), loaded at ``loaded``."""
    con.execute(
        """
        INSERT INTO raw.customers
        SELECT * REPLACE (
            TIMESTAMP '2026-06-30 15:00:00' AS updated_at, false AS email_opt_in,
            'crm/dt=2026-06-30/customers.csv' AS _source_file, DATE '2026-06-30' AS _partition_date,
            CAST(? AS TIMESTAMP) AS _loaded_at)
        FROM raw.customers WHERE customer_id = 'C000002'
        ORDER BY updated_at DESC LIMIT 1
        """,
        [loaded],
    )


def _land_next_day(con) -> None:
    """Day D+1 as ingest would leave it after the next night's landing files."""
    loaded = datetime(2026, 7, 1, 3, 0)
    synthetic.insert_raw(
        con, CUSTOMERS, 60, NEXT, NEXT, seed=3, loaded_at=loaded, with_customers=False
    )
    # A changed file is reloaded: its rows are replaced (a tenth of them are gone).
    con.execute(
        """
        CREATE TEMP TABLE reloaded AS
        SELECT * REPLACE (CAST(? AS TIMESTAMP) AS _loaded_at)
        FROM raw.events WHERE _source_file = ? AND hash(event_id) % 10 <> 0
        """,
        [loaded, RELOADED_FILE],
    )
    con.execute("DELETE FROM raw.events WHERE _source_file = ?", [RELOADED_FILE])
    con.execute("INSERT INTO raw.events SELECT * FROM reloaded")
    con.execute("DELETE FROM raw.events WHERE CAST(event_ts AS DATE) = ?", [EMPTIED_DAY])
    # A late login on an old day by a visitor who browsed anonymously before and after it:
    # attribution of those later anonymous days changes.
    visitor, first_day = con.execute(
        """
        SELECT anonymous_id, min(CAST(event_ts AS DATE))
        FROM raw.events
        WHERE customer_id IS NULL AND anonymous_id LIKE 'V%'
        GROUP BY anonymous_id
        HAVING count(DISTINCT CAST(event_ts AS DATE)) >= 3
        ORDER BY anonymous_id
        LIMIT 1
        """
    ).fetchone()
    con.execute(
        """
        INSERT INTO raw.events (event_id, event_type, event_ts, customer_id, anonymous_id,
            _source_file, _source_line, _partition_date, _loaded_at)
        VALUES ('late-login', 'login', CAST(? AS TIMESTAMP) + INTERVAL 1 HOUR, 'C000001', ?,
            'events/dt=2026-06-30/late.jsonl', 1, DATE '2026-06-30', ?)
        """,
        [first_day, visitor, loaded],
    )
    # An order sent again on D+1 whose first purchase event (on an old day) is then deleted:
    # the order moves to D+1. And a second old order sent again on D+1: it stays where it was.
    moved, kept = (
        row[0]
        for row in con.execute(
            """
            SELECT order_id FROM raw.events
            WHERE event_type = 'purchase' AND CAST(event_ts AS DATE) = DATE '2026-06-05'
            GROUP BY order_id HAVING count(*) = 1
            ORDER BY order_id LIMIT 2
            """
        ).fetchall()
    )
    con.execute(
        """
        INSERT INTO raw.events
        SELECT * REPLACE (
            event_id || '-again' AS event_id,
            CAST(? AS TIMESTAMP) + INTERVAL 9 HOUR AS event_ts,
            'events/dt=2026-06-30/again.jsonl' AS _source_file,
            DATE '2026-06-30' AS _partition_date,
            CAST(? AS TIMESTAMP) AS _loaded_at)
        FROM raw.events WHERE order_id IN (?, ?)
        """,
        [NEXT, loaded, moved, kept],
    )
    con.execute(
        "DELETE FROM raw.events WHERE order_id = ? AND NOT ends_with(event_id, '-again')", [moved]
    )
    _withdraw_consent(con, loaded)


def _single_purchase_order(con, day: date, skip: int) -> str:
    """An order of a known customer with one purchase event, on `day`."""
    return con.execute(
        """
        SELECT order_id FROM raw.events
        WHERE order_id IS NOT NULL AND customer_id IS NOT NULL
        GROUP BY order_id
        HAVING count(*) = 1 AND bool_and(event_type = 'purchase')
            AND min(CAST(event_ts AS DATE)) = ?
        ORDER BY order_id LIMIT 1 OFFSET ?
        """,
        [day, skip],
    ).fetchone()[0]


def _land_late_purchases(con, loaded: datetime) -> None:
    """The late purchase events of two existing orders, in a late file of night D+1: one
    earlier than the order's first event (on EARLY_DAY, before LATE_ORDER_DAY), one later
    (on LATER_DAY). Without an anonymous id, so no identity link re-opens any day."""
    earlier = _single_purchase_order(con, LATE_ORDER_DAY, 0)
    later = _single_purchase_order(con, LATE_ORDER_DAY, 1)
    con.execute(
        """
        INSERT INTO raw.events
        SELECT * REPLACE (
            event_id || '-late' AS event_id,
            event_ts + CASE WHEN order_id = ? THEN INTERVAL (?) DAY ELSE INTERVAL (?) DAY END
                AS event_ts,
            NULL AS anonymous_id,
            ? AS _source_file,
            DATE '2026-06-30' AS _partition_date,
            CAST(? AS TIMESTAMP) AS _loaded_at)
        FROM raw.events WHERE order_id IN (?, ?)
        """,
        [
            earlier,
            (EARLY_DAY - LATE_ORDER_DAY).days,
            (LATER_DAY - LATE_ORDER_DAY).days,
            LATE_FILE,
            loaded,
            earlier,
            later,
        ],
    )


# The transform results of night D (a first build) and D+1, by nightly warehouse.
NIGHTS: dict[Path, tuple[StageResult, StageResult]] = {}


def _full_rebuild(
    nightly: Path, full: Path, settings: Callable[[Path], Settings] = settings_for
) -> Path:
    """A fresh warehouse ``full`` holding ``nightly``'s raw rows, built in full as of NEXT
    (with the ``settings`` of its path)."""
    full.parent.mkdir()
    con = connect(full)
    ensure_raw_tables(con)
    con.execute(f"ATTACH '{nightly}' AS nightly (READ_ONLY)")
    con.execute("INSERT INTO raw.events SELECT * FROM nightly.raw.events")
    con.execute("INSERT INTO raw.customers SELECT * FROM nightly.raw.customers")
    con.execute("DETACH nightly")
    con.close()
    run_transform(settings(full), NEXT)
    return full


def _build_night_then_increment(
    root: Path,
    land: Callable[[Any], None],
    before: Callable[[Any], None] | None = None,
    interrupted: bool = False,
) -> tuple[Path, Path]:
    """Night D in full (with `before`'s rows too), `land` the next night's rows, night D+1
    incrementally (`interrupted`: after a first try of it that stopped right after
    int_events_sessionised); and a fresh full build of the same raw rows as of D+1. Returns
    (nightly, full) warehouse paths."""
    nightly = root / "nightly" / "segmint.duckdb"
    con = connect(nightly)
    ensure_raw_tables(con)
    _load_until_day(con)
    if before is not None:
        before(con)
    con.close()
    first = run_transform(settings_for(nightly), DAY)
    con = connect(nightly)
    land(con)
    con.close()
    if interrupted:
        # What a night killed (or failed) right after int_events_sessionised committed leaves:
        # that model and the ones it reads built, every later one as night D left it.
        completed = run_dbt(settings_for(nightly), NEXT, [NEXT], select="+int_events_sessionised")
        assert completed.returncode == 0, completed.stdout[-3000:]
    NIGHTS[nightly] = (first, run_transform(settings_for(nightly), NEXT))

    return nightly, _full_rebuild(nightly, root / "full" / "segmint.duckdb")


@pytest.fixture(scope="module")
def two_warehouses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("increment")
    yield _build_night_then_increment(root, _land_next_day)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def interrupted_warehouses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("interrupted")
    yield _build_night_then_increment(root, _land_next_day, interrupted=True)
    shutil.rmtree(root, ignore_errors=True)


def _land_next_day_and_late_purchases(con) -> None:
    """Only the new day D+1 and the late purchase events of two old orders: no reload, no
    late login, so no other old day is rebuilt."""
    loaded = datetime(2026, 7, 1, 3, 0)
    synthetic.insert_raw(
        con, CUSTOMERS, 60, NEXT, NEXT, seed=3, loaded_at=loaded, with_customers=False
    )
    _land_late_purchases(con, loaded)


@pytest.fixture(scope="module")
def late_purchase_warehouses(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("late-purchase")
    yield _build_night_then_increment(root, _land_next_day_and_late_purchases)
    shutil.rmtree(root, ignore_errors=True)


# Refunds: of two orders loaded weeks before night D, and of an order that arrives only on
# night D+1, after its refund. In March, before the synthetic rows (START): no identity link
# re-opens these days, only the refunds do.
OLD_ORDERS = {"old-a": ("C000005", date(2026, 3, 20), "100.00"),
              "old-b": ("C000006", date(2026, 3, 21), "50.00")}  # fmt: skip
EARLY_REFUND_DAY = date(2026, 3, 23)  # night D+1's full refund of old-b ...
LATE_REFUND_DAY = date(2026, 3, 25)  # ... before night D's refund of it, which then counts 0
LATE_ORDER = "late-order"
LATE_ORDER_PLACED = date(2026, 3, 27)
REFUND_BEFORE_ORDER_LOADED = date(2026, 3, 28)


def _event(con, event_id: str, event_type: str, customer_id: str, order_id: str, day: date,
           amount: str, loaded: datetime) -> None:  # fmt: skip
    """A purchase or refund row of the shop's back end (no session, no anonymous id)."""
    con.execute(
        """
        INSERT INTO raw.events (event_id, event_type, event_ts, customer_id, order_id, revenue,
            _source_file, _source_line, _partition_date, _loaded_at)
        VALUES (?, ?, CAST(? AS TIMESTAMP) + INTERVAL 8 HOUR, ?, ?, CAST(? AS DECIMAL(18, 2)),
            ?, 1, CAST(? AS DATE), ?)
        """,
        [event_id, event_type, day, customer_id, order_id, amount,
         f"events/dt={day}/back-end-{event_id}.csv", day, loaded],
    )  # fmt: skip


def _refund(con, event_id: str, order_id: str, day: date, amount: str, loaded: datetime) -> None:
    """A refund naming another customer than the order's."""
    _event(con, event_id, "refund", "C000007", order_id, day, amount, loaded)


def _refunds_before_night(con) -> None:
    """Night D: the two old orders, a small refund of old-b, and a refund of LATE_ORDER,
    whose purchase is not loaded yet."""
    loaded = datetime(2026, 6, 30, 3, 0)
    for order_id, (customer_id, day, revenue) in OLD_ORDERS.items():
        _event(con, f"{order_id}-purchase", "purchase", customer_id, order_id, day, revenue, loaded)
    _refund(con, "refund-small", "old-b", LATE_REFUND_DAY, "1.00", loaded)
    _refund(con, "refund-early", LATE_ORDER, REFUND_BEFORE_ORDER_LOADED, "30.00", loaded)


def _land_next_day_and_refunds(con) -> None:
    """Night D+1: the new day; a partial refund of old-a and one beyond what is left of it
    (both on D+1); a full refund of old-b, dated before night D's refund of it; and
    LATE_ORDER's purchase, dated before its refund."""
    loaded = datetime(2026, 7, 1, 3, 0)
    synthetic.insert_raw(
        con, CUSTOMERS, 60, NEXT, NEXT, seed=3, loaded_at=loaded, with_customers=False
    )
    _refund(con, "refund-part", "old-a", NEXT, "5.00", loaded)
    _refund(con, "refund-rest", "old-a", NEXT, "100.00", loaded)
    _refund(con, "refund-full", "old-b", EARLY_REFUND_DAY, "50.00", loaded)
    _event(con, "late-order-purchase", "purchase", "C000003", LATE_ORDER, LATE_ORDER_PLACED,
           "80.00", loaded)  # fmt: skip


@pytest.fixture(scope="module")
def refund_warehouses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("refunds")
    yield _build_night_then_increment(root, _land_next_day_and_refunds, _refunds_before_night)
    shutil.rmtree(root, ignore_errors=True)


def _assert_marts_equal(nightly: Path, full: Path, tables: tuple[str, ...] = MARTS) -> None:
    """Every mart of the increment equals the full rebuild's (the snapshot tables on the
    as-of dates a full build of D+1 makes: night D left others too)."""
    inc = connect(nightly, read_only=True)
    ref = connect(full, read_only=True)
    try:
        for table in tables:
            assert inc.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
            assert table_hash(inc, table) == table_hash(ref, table), table
        dates = [
            r[0]
            for r in ref.execute(
                "SELECT DISTINCT as_of_date FROM marts.customer_feature_history ORDER BY 1"
            ).fetchall()
        ]
        assert NEXT in dates
        for table in SNAPSHOTS:
            query = (
                f"SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY CAST(t AS VARCHAR))) "
                f"FROM {table} AS t WHERE list_contains(?, t.as_of_date)"
            )
            assert (
                inc.execute(query, [dates]).fetchone()[0]
                == ref.execute(query, [dates]).fetchone()[0]
            ), table
    finally:
        inc.close()
        ref.close()


def test_increment_equals_full_rebuild(two_warehouses: tuple[Path, Path]) -> None:
    nightly, full = two_warehouses
    _assert_marts_equal(nightly, full)
    inc = connect(nightly, read_only=True)
    try:
        # Of the two old orders sent again on D+1, the one whose first event was deleted
        # moved to D+1 (now won by its repeat); the other kept its first event.
        again = inc.execute(
            "SELECT order_date FROM marts.orders WHERE ends_with(event_id, '-again')"
        ).fetchall()
        assert again == [(NEXT,)]
    finally:
        inc.close()


def test_rerun_after_a_night_stopped_after_sessionising_equals_full_rebuild(
    interrupted_warehouses: tuple[Path, Path],
) -> None:
    """A night killed after int_events_sessionised rebuilt its days, then run again: the
    rerun finds int_events_sessionised up to date with raw.events, yet the later models
    still hold the old rows of the days it rebuilt. Before int_event_dates_pending, the rerun
    rebuilt only the days loaded after their own newest load: the later days a late login
    re-attributes, the day an order moved from and the day a reload emptied kept their old
    rows in sessions, daily activity and features."""
    _assert_marts_equal(*interrupted_warehouses)
    con = connect(interrupted_warehouses[0], read_only=True)
    try:
        # The whole rerun built every model: nothing is left to rebuild next night.
        assert (
            con.execute("SELECT count(*) FROM intermediate.int_event_dates_pending").fetchone()[0]
            == 0
        )
    finally:
        con.close()


def test_late_purchases_increment_equals_full_rebuild(
    late_purchase_warehouses: tuple[Path, Path],
) -> None:
    nightly, full = late_purchase_warehouses
    _assert_marts_equal(nightly, full)


def test_late_earlier_purchase_moves_the_order_without_double_count(
    late_purchase_warehouses: tuple[Path, Path],
) -> None:
    """The late purchase event earlier than the order's first event wins: the order is
    counted once, on EARLY_DAY, in orders, daily activity and the features, as a full
    rebuild counts it; the later late event changes nothing but its own day."""
    nightly, full = late_purchase_warehouses
    inc = connect(nightly, read_only=True)
    ref = connect(full, read_only=True)
    try:
        late = inc.execute(
            "SELECT order_date, customer_id FROM marts.orders "
            "WHERE event_id IN (SELECT event_id FROM raw.events WHERE _source_file = ?) "
            "ORDER BY order_date",
            [LATE_FILE],
        ).fetchall()
        assert [day for day, _ in late] == [EARLY_DAY]
        customer = late[0][1]
        kept = inc.execute(
            "SELECT order_date FROM marts.orders WHERE order_id IN ("
            "SELECT order_id FROM raw.events WHERE _source_file = ? AND "
            "CAST(event_ts AS DATE) = ?)",
            [LATE_FILE, LATER_DAY],
        ).fetchall()
        assert kept == [(LATE_ORDER_DAY,)]
        query = (
            "SELECT activity_date, orders, revenue FROM marts.customer_daily_activity "
            "WHERE customer_id = ? AND orders > 0 ORDER BY activity_date"
        )
        assert (
            inc.execute(query, [customer]).fetchall() == ref.execute(query, [customer]).fetchall()
        )
        # Each customer's daily orders add up to the orders mart, in both warehouses.
        for con in (inc, ref):
            mismatched = con.execute(
                """
                SELECT count(*) FROM (
                    SELECT customer_id, count(*) AS n, sum(revenue) AS revenue
                    FROM marts.orders WHERE customer_id IS NOT NULL GROUP BY customer_id
                ) AS o
                FULL JOIN (
                    SELECT customer_id, sum(orders) AS n, sum(revenue) AS revenue
                    FROM marts.customer_daily_activity WHERE orders > 0 GROUP BY customer_id
                ) AS a USING (customer_id)
                WHERE o.n IS DISTINCT FROM a.n OR o.revenue IS DISTINCT FROM a.revenue
                """
            ).fetchone()[0]
            assert mismatched == 0
        features = (
            "SELECT order_count, revenue_total FROM marts.customer_features WHERE customer_id = ?"
        )
        assert (
            inc.execute(features, [customer]).fetchall()
            == ref.execute(features, [customer]).fetchall()
        )
    finally:
        inc.close()
        ref.close()


def test_refunds_of_old_and_late_orders_increment_equals_full_rebuild(
    refund_warehouses: tuple[Path, Path],
) -> None:
    """Refunds landing for orders loaded weeks earlier, one that makes an earlier-loaded
    refund count nothing, and an order arriving after its refund: the nightly marts equal a
    full rebuild's, and the refunds count where they should."""
    nightly, full = refund_warehouses
    _assert_marts_equal(nightly, full, (*MARTS, "marts.refunds"))
    inc = connect(nightly, read_only=True)
    try:
        refunds = dict(
            inc.execute(
                "SELECT event_id, (applied_date, applied_amount = amount, applied_amount > 0) "
                "FROM marts.refunds"
            ).fetchall()
        )
        assert refunds["refund-part"] == (NEXT, True, True)
        assert refunds["refund-rest"] == (NEXT, False, True), "capped at what is left"
        assert refunds["refund-full"] == (EARLY_REFUND_DAY, True, True)
        assert refunds["refund-small"] == (LATE_REFUND_DAY, False, False), "nothing left"
        assert refunds["refund-early"] == (REFUND_BEFORE_ORDER_LOADED, True, True), "order arrived"
        # Each order's refunds add up in orders, and each customer's in daily activity.
        mismatched = inc.execute(
            """
            SELECT count(*) FROM (
                SELECT customer_id, sum(refunded_amount) AS refunded
                FROM marts.orders WHERE customer_id IS NOT NULL GROUP BY customer_id
            ) AS o
            FULL JOIN (
                SELECT customer_id, sum(refunded_amount) AS refunded
                FROM marts.customer_daily_activity GROUP BY customer_id
            ) AS a USING (customer_id)
            WHERE coalesce(o.refunded, 0) <> coalesce(a.refunded, 0)
            """
        ).fetchone()[0]
        assert mismatched == 0
        assert inc.execute(
            "SELECT order_date, refunded_amount, net_revenue FROM marts.orders WHERE order_id = ?",
            [LATE_ORDER],
        ).fetchall() == [(LATE_ORDER_PLACED, 30, 50)]
    finally:
        inc.close()


def _rebuilt_days(warehouse: Path) -> tuple[set[date], int]:
    """The days the last run rebuilt, and how many days the warehouse holds."""
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            "SELECT event_date, is_rebuilt FROM intermediate.int_event_dates_changed"
        ).fetchall()
    finally:
        con.close()
    return {day for day, is_rebuilt in rows if is_rebuilt}, len(rows)


def test_increment_rebuilt_only_the_changed_days(two_warehouses: tuple[Path, Path]) -> None:
    nightly, _ = two_warehouses
    rebuilt, all_days = _rebuilt_days(nightly)
    # The new day, the reloaded file's day and the days on which anonymous ids linked on
    # changed days (the late login's visitor among them) browsed after their link; the days
    # before the late login are left alone.
    assert NEXT in rebuilt
    assert date(2026, 6, 10) in rebuilt
    assert EMPTIED_DAY in rebuilt
    assert min(rebuilt) > START
    assert len(rebuilt) < all_days


def test_late_purchase_reopens_only_its_orders_days(
    late_purchase_warehouses: tuple[Path, Path],
) -> None:
    """The day the moved order leaves is rebuilt though raw.events did not change there; the
    days between it and the late event's day are left alone."""
    nightly, _ = late_purchase_warehouses
    rebuilt, _ = _rebuilt_days(nightly)
    assert {EARLY_DAY, LATE_ORDER_DAY, LATER_DAY, NEXT} <= rebuilt
    assert not {d for d in rebuilt if EARLY_DAY < d < LATE_ORDER_DAY}


def test_the_increment_names_the_past_days_it_recomputed(
    late_purchase_warehouses: tuple[Path, Path],
) -> None:
    """An operator sees in the night's summary which past days changed under the analysts;
    a first build, which computes every day, says nothing of the kind."""
    nightly, _ = late_purchase_warehouses
    first, increment = NIGHTS[nightly]
    rebuilt, _ = _rebuilt_days(nightly)
    past = sorted(d for d in rebuilt if d < NEXT)
    assert past
    assert increment.details["rebuilt_past_days"] == [d.isoformat() for d in past]
    assert f"recomputed {len(past)} past day(s)" in increment.summary
    assert EARLY_DAY.isoformat() in increment.summary
    assert "recomputed" not in first.summary
    assert len(first.details["rebuilt_past_days"]) > len(past)


def _built_as_of_next(
    nightly: Path, settings_of: Callable[[Path], Settings] = settings_for
) -> Settings:
    """A warehouse holding the raw rows up to NEXT (_load_until_day), built as of NEXT with
    the settings ``settings_of`` gives its path; those settings."""
    con = connect(nightly)
    ensure_raw_tables(con)
    _load_until_day(con)
    con.close()
    settings = settings_of(nightly)
    run_transform(settings, NEXT)
    return settings


def test_rerun_after_a_night_stopped_after_a_stale_cutoff_snapshot_equals_full_rebuild(
    tmp_path: Path,
) -> None:
    """A late order lands on a day before a cut-off snapshot both snapshot tables hold, so a
    retraining night rebuilds that stale snapshot in customer_feature_history; the night is
    killed (or a test fails) before customer_rule_segments. The rerun finds the snapshot
    fresh: its rule segments must still be rebuilt, or they keep the old membership."""
    nightly = tmp_path / "nightly" / "segmint.duckdb"
    settings = _built_as_of_next(nightly)
    cutoff = settings.propensity.cutoff_dates(NEXT)[0]
    con = connect(nightly)
    buyer = con.execute(
        "SELECT customer_id FROM marts.customer_feature_history "
        "WHERE as_of_date = ? AND revenue_total < 100 ORDER BY customer_id LIMIT 1",
        [cutoff],
    ).fetchone()[0]
    # The next night's late file: a large order of that customer, on a day before the cut-off.
    _event(con, "late-big-order", "purchase", buyer, "late-big-order", cutoff - timedelta(days=3),
           "5000.00", datetime(2026, 7, 1, 3, 0))  # fmt: skip
    con.close()
    completed = run_dbt(settings, NEXT, [cutoff, NEXT], select="+customer_feature_history")
    assert completed.returncode == 0, completed.stdout[-3000:]
    run_transform(settings, NEXT)

    full = _full_rebuild(nightly, tmp_path / "full" / "segmint.duckdb")
    _assert_marts_equal(nightly, full)
    con = connect(nightly, read_only=True)
    try:
        segments = con.execute(
            "SELECT list(segment ORDER BY segment) FROM marts.customer_rule_segments "
            "WHERE as_of_date = ? AND customer_id = ?",
            [cutoff, buyer],
        ).fetchone()[0]
    finally:
        con.close()
    assert "high_value" in segments


def test_a_full_refresh_of_everything_after_sessionising_leaves_no_day_pending(
    tmp_path: Path,
) -> None:
    """The transform stage rebuilds a model whose columns changed and every model after it
    with `dbt build --full-refresh --select m+` (_full_refresh_schema_changes). For
    int_events_sessionised+ that run built every later model, yet it left every day of the
    history in int_event_dates_pending (a --select run never emptied it), so the next night
    rebuilt the whole history once more. A selection leaving a later model out still keeps
    them."""
    nightly = tmp_path / "segmint.duckdb"
    settings = _built_as_of_next(nightly)

    def pending() -> int:
        con = connect(nightly, read_only=True)
        try:
            query = "SELECT count(*) FROM intermediate.int_event_dates_pending"
            return con.execute(query).fetchone()[0]
        finally:
            con.close()

    completed = run_dbt(settings, NEXT, [NEXT], select="+int_events_sessionised", full_refresh=True)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert pending() > 0
    completed = run_dbt(settings, NEXT, [NEXT], select="int_events_sessionised+", full_refresh=True)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert pending() == 0


def _night_without_cutoffs(settings: Settings) -> None:
    """A night that asks for the as-of snapshot only (no retrain due)."""
    completed = run_dbt(settings, NEXT, [NEXT])
    assert completed.returncode == 0, completed.stdout[-3000:]


def _retrain_equals_a_full_build(
    settings: Settings, cutoff: date, nights_between: int, tmp_path: Path
) -> None:
    """``nights_between`` nights that do not ask for the cut-offs, then a retraining night
    that rebuilds the ``cutoff`` snapshot: every mart equals a full build of the same raw
    rows."""
    for _ in range(nights_between):
        _night_without_cutoffs(settings)
    assert cutoff.isoformat() in run_transform(settings, NEXT).details["snapshot_dates"]

    full = _full_rebuild(settings.warehouse, tmp_path / "full" / "segmint.duckdb")
    _assert_marts_equal(settings.warehouse, full)


@pytest.mark.parametrize(("nights_between", "whole_day"), [(0, True), (1, True), (0, False)])
def test_a_day_emptied_before_a_cutoff_snapshot_rebuilds_it(
    tmp_path: Path, nights_between: int, whole_day: bool
) -> None:
    """A corrected export withdraws the events of a day before a cut-off snapshot both
    snapshot tables hold (the day's file delivered again empty), or half of them (one of the
    day's two files: the other keeps its old load time, and the quality gate passes the
    partition): the reload loads nothing, so no activity was loaded after the snapshot was
    built. The next retraining night (that one, or one after a night that did not ask for the
    cut-offs) must still rebuild that snapshot and its rule segments from what is left."""
    nightly = tmp_path / "nightly" / "segmint.duckdb"
    settings = _built_as_of_next(nightly)
    cutoff = settings.propensity.cutoff_dates(NEXT)[0]
    emptied = cutoff - timedelta(days=3)
    con = connect(nightly)
    con.execute(
        "DELETE FROM raw.events WHERE CAST(event_ts AS DATE) = ? AND (? OR hash(event_id) % 2 = 0)",
        [emptied, whole_day],
    )
    con.close()
    _retrain_equals_a_full_build(settings, cutoff, nights_between, tmp_path)


def test_a_revised_rate_before_a_cutoff_snapshot_rebuilds_it(tmp_path: Path) -> None:
    """A revised rate changes the revenue of days before a cut-off snapshot both snapshot
    tables hold, with no row loaded: the next retraining night must rebuild that snapshot
    and its rule segments at the new rate, as a full build with the revised rates does."""
    rates = tmp_path / "rates.csv"
    header = "currency_code,valid_from,to_currency,rate\n"
    rates.write_text(header + "EUR,2026-01-01,USD,1.10\nEUR,2026-05-20,USD,1.20\n")

    def in_usd(warehouse: Path) -> Settings:
        return dataclasses.replace(
            settings_for(warehouse),
            transform=TransformSettings(reporting_currency="USD", currency_rates=rates),
        )

    nightly = tmp_path / "nightly" / "segmint.duckdb"
    settings = _built_as_of_next(nightly, in_usd)
    rates.write_text(header + "EUR,2026-01-01,USD,1.10\nEUR,2026-05-20,USD,1.60\n")
    assert settings.propensity.cutoff_dates(NEXT)[0] > date(2026, 5, 20)
    run_transform(settings, NEXT)

    full = _full_rebuild(nightly, tmp_path / "full" / "segmint.duckdb", in_usd)
    _assert_marts_equal(nightly, full)


@pytest.mark.parametrize("nights_between", [0, 1])
def test_a_crm_version_withdrawn_before_a_cutoff_snapshot_rebuilds_it(
    tmp_path: Path, nights_between: int
) -> None:
    """A CRM export of a day before a cut-off snapshot changed two customers' consent; the
    export is then withdrawn (delivered again empty): nothing is loaded, yet the versions
    valid on the cut-off are the older ones again. The next retraining night (that one, or
    one after a night that did not ask for the cut-offs) must rebuild that snapshot and its
    rule segments without the withdrawn versions."""
    nightly = tmp_path / "nightly" / "segmint.duckdb"
    cutoff = settings_for(nightly).propensity.cutoff_dates(NEXT)[0]
    withdrawn = f"crm/dt={cutoff - timedelta(days=5)}/customers.csv"
    con = connect(nightly)
    ensure_raw_tables(con)
    _load_until_day(con)
    con.execute(
        """
        INSERT INTO raw.customers
        SELECT * REPLACE (
            CAST(? AS TIMESTAMP) + INTERVAL 10 HOUR AS updated_at,
            NOT coalesce(email_opt_in, false) AS email_opt_in,
            NOT coalesce(ads_opt_in, false) AS ads_opt_in,
            ? AS _source_file, CAST(? AS DATE) AS _partition_date,
            TIMESTAMP '2026-06-01 03:00:00' AS _loaded_at)
        FROM raw.customers WHERE customer_id IN ('C000002', 'C000003')
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC) = 1
        """,
        [cutoff - timedelta(days=5), withdrawn, cutoff - timedelta(days=5)],
    )
    con.close()
    settings = settings_for(nightly)
    run_transform(settings, NEXT)
    con = connect(nightly)
    con.execute("DELETE FROM raw.customers WHERE _source_file = ?", [withdrawn])
    con.close()
    _retrain_equals_a_full_build(settings, cutoff, nights_between, tmp_path)


def test_a_retraining_night_with_changes_after_the_cutoff_rebuilds_no_cutoff_snapshot(
    tmp_path: Path,
) -> None:
    """The stale records cost nothing when nothing before a cut-off changed: a late order
    and a new CRM version, both after the cut-off, leave the cut-off snapshot as it was."""
    nightly = tmp_path / "nightly" / "segmint.duckdb"
    settings = _built_as_of_next(nightly)
    cutoff = settings.propensity.cutoff_dates(NEXT)[0]
    loaded = datetime(2026, 7, 1, 3, 0)
    con = connect(nightly)
    _event(con, "late-order-next", "purchase", "C000004", "late-order-next", NEXT, "10.00", loaded)
    _withdraw_consent(con, loaded)
    con.close()
    assert cutoff.isoformat() in run_transform(settings, NEXT).details["snapshot_dates"]
    con = connect(nightly, read_only=True)
    try:
        built = con.execute("SELECT as_of_date FROM intermediate.int_snapshot_dates_built")
        assert built.fetchall() == [(NEXT,)]
        stale = con.execute("SELECT as_of_date FROM intermediate.int_snapshot_dates_stale")
        assert stale.fetchall() == []
    finally:
        con.close()
