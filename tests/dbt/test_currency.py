"""Money in one reporting currency: amounts paid in another currency are converted at the
rate of their UTC day (``[transform] currency_rates``, ``reporting_currency``); a currency
without a rate fails the run instead of being summed with other currencies; adding or
revising a rate rebuilds exactly the days it changes. Real ``dbt build`` on a DuckDB file."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from segmint.config import ConfigError, Settings, TransformSettings
from segmint.currency import CurrencyRatesError, load_currency_rates, read_rates
from segmint.stages import SegmintError
from segmint.transform import run_transform
from segmint.warehouse import connect, ensure_raw_tables, table_hash
from tests.dbt import synthetic

AS_OF = date(2026, 6, 30)
HEADER = "currency_code,valid_from,to_currency,rate\n"
# EUR to USD: one rate from January, another from 2026-06-10 on; a row to another currency
# that a USD warehouse ignores.
RATES = HEADER + "EUR,2026-01-01,USD,1.10\neur,2026-06-10,usd,1.20\nEUR,2026-01-01,GBP,0.85\n"
REVISED = HEADER + "EUR,2026-01-01,USD,1.10\nEUR,2026-06-10,USD,1.25\n"
MARTS = (
    "intermediate.int_events_sessionised",
    "marts.orders",
    "marts.customers",
    "marts.customer_daily_activity",
    "marts.customer_product_daily",
    "marts.customer_features",
)


def _settings(warehouse: Path, rates: Path | None) -> Settings:
    return Settings(
        warehouse=warehouse,
        transform=TransformSettings(reporting_currency="USD", currency_rates=rates),
    )


def _raw_warehouse(path: Path) -> Path:
    """Synthetic rows whose purchases are paid in EUR (synthetic.CURRENCY)."""
    con = connect(path)
    ensure_raw_tables(con)
    synthetic.insert_raw(con, 40, 150, date(2026, 6, 1), AS_OF, seed=5)
    con.close()
    return path


def _expected_orders(warehouse: Path) -> dict[str, float]:
    """Each order's revenue in USD computed here from raw.events: the first purchase event
    of the order (event_ts, then event_id), its amount times the rate of its day."""
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            """
            SELECT order_id, event_ts, event_id,
                   coalesce(revenue, price * coalesce(quantity, 1)), currency
            FROM raw.events WHERE event_type = 'purchase' AND order_id IS NOT NULL
            """
        ).fetchall()
    finally:
        con.close()
    first: dict[str, tuple] = {}
    for order_id, ts, event_id, amount, currency in rows:
        if order_id not in first or (ts, event_id) < first[order_id][:2]:
            first[order_id] = (ts, event_id, amount, currency)
    assert {row[3] for row in first.values()} == {"EUR"}
    return {
        order_id: float(amount) * (1.20 if ts.date() >= date(2026, 6, 10) else 1.10)
        for order_id, (ts, _, amount, _) in first.items()
    }


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """A warehouse whose first night failed for want of a EUR rate and whose rerun, with the
    rates file, converted incrementally; a warehouse built once with the rates; the file."""
    root = tmp_path_factory.mktemp("currency")
    rates = root / "rates.csv"
    rates.write_text(RATES)
    nightly = _raw_warehouse(root / "nightly" / "segmint.duckdb")
    with pytest.raises(SegmintError) as caught:
        run_transform(_settings(nightly, None), AS_OF)
    assert "every_currency_has_a_rate_to_the_reporting_currency" in str(caught.value)
    # ... and the message says which currency, on which days, and what to do
    assert re.search(r"no rate from EUR to USD: [\d,]+ event\(s\) on 2026-06-", str(caught.value))
    assert (
        "add rates (currency_code,valid_from,to_currency,rate) to [transform] currency_rates"
        in (str(caught.value))
    )
    result = run_transform(_settings(nightly, rates), AS_OF)
    assert result.details["reporting_currency"] == "USD"
    assert result.details["currency_rates"] == 3
    full = _raw_warehouse(root / "full" / "segmint.duckdb")
    run_transform(_settings(full, rates), AS_OF)
    yield nightly, full, rates
    shutil.rmtree(root, ignore_errors=True)


def test_orders_and_features_are_in_the_reporting_currency(converted) -> None:
    _, full, _ = converted
    expected = _expected_orders(full)
    con = connect(full, read_only=True)
    try:
        orders = con.execute("SELECT order_id, revenue, currency, fx_rate FROM marts.orders")
        got = {order_id: (float(rev), cur, rate) for order_id, rev, cur, rate in orders.fetchall()}
        per_customer = dict(
            con.execute(
                "SELECT customer_id, sum(revenue) FROM marts.orders "
                "WHERE customer_id IS NOT NULL GROUP BY 1"
            ).fetchall()
        )
        features = dict(
            con.execute(
                "SELECT customer_id, revenue_total FROM marts.customer_features "
                "WHERE order_count > 0"
            ).fetchall()
        )
    finally:
        con.close()
    assert got.keys() == expected.keys() and len(got) > 20
    for order_id, (revenue, currency, rate) in got.items():
        assert currency == "EUR"
        assert rate in (1.10, 1.20)
        assert revenue == pytest.approx(expected[order_id], abs=0.006), order_id
    assert {rate for _, _, rate in got.values()} == {1.10, 1.20}
    assert features == per_customer
    con = connect(full, read_only=True)
    try:
        assert con.execute("SELECT * FROM marts.reporting_currency").fetchall() == [("USD",)]
    finally:
        con.close()


def test_a_rerun_after_adding_the_missing_rate_equals_a_full_build(converted) -> None:
    nightly, full, _ = converted
    inc = connect(nightly, read_only=True)
    ref = connect(full, read_only=True)
    try:
        for table in MARTS:
            assert table_hash(inc, table) == table_hash(ref, table), table
        # The failed night left its days unconverted (fx_rate null); the rerun rebuilt them.
        rebuilt = inc.execute(
            "SELECT count(*) FROM intermediate.int_event_dates_changed WHERE is_rebuilt"
        ).fetchone()[0]
        assert rebuilt > 0
    finally:
        inc.close()
        ref.close()


def test_a_revised_rate_rebuilds_exactly_the_days_it_changes(converted, tmp_path) -> None:
    nightly, _, _ = converted
    work = tmp_path / "nightly" / "segmint.duckdb"
    work.parent.mkdir()
    shutil.copy(nightly, work)
    revised = tmp_path / "revised.csv"
    revised.write_text(REVISED)
    run_transform(_settings(work, revised), AS_OF)
    con = connect(work, read_only=True)
    try:
        rebuilt = {
            row[0]
            for row in con.execute(
                "SELECT event_date FROM intermediate.int_event_dates_changed WHERE is_rebuilt"
            ).fetchall()
        }
        eur_days = {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT CAST(event_ts AS DATE) FROM raw.events "
                "WHERE currency = 'EUR' AND (revenue IS NOT NULL OR price IS NOT NULL)"
            ).fetchall()
        }
        rates = dict(
            con.execute(
                "SELECT order_date >= DATE '2026-06-10', min(fx_rate) FROM marts.orders GROUP BY 1"
            ).fetchall()
        )
    finally:
        con.close()
    assert rebuilt == {d for d in eur_days if d >= date(2026, 6, 10)}
    assert rates == {False: 1.10, True: 1.25}


def test_amounts_in_the_reporting_currency_need_no_rate(tmp_path: Path) -> None:
    """A warehouse reporting in the currency its orders were paid in converts nothing."""
    warehouse = _raw_warehouse(tmp_path / "segmint.duckdb")
    settings = Settings(warehouse=warehouse, transform=TransformSettings(reporting_currency="eur"))
    assert settings.transform.reporting_currency == "EUR"
    run_transform(settings, AS_OF)
    con = connect(warehouse, read_only=True)
    try:
        assert con.execute("SELECT DISTINCT fx_rate FROM marts.orders").fetchall() == [(1.0,)]
    finally:
        con.close()


def test_reporting_currency_must_be_an_iso_code() -> None:
    with pytest.raises(ConfigError, match="reporting_currency"):
        TransformSettings(reporting_currency="euro")


def test_bad_rates_files_name_the_file_and_every_line(tmp_path: Path) -> None:
    warehouse = tmp_path / "segmint.duckdb"
    con = connect(warehouse)
    ensure_raw_tables(con)
    good = tmp_path / "good.csv"
    good.write_text(RATES)
    assert load_currency_rates(con, good) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "EUR,2026-01-01,USD,1.1\n"
        + "EURO,2026-01-01,USD,1.1\n"  # line 3
        + "GBP,1 June,USD,1.3\n"  # line 4
        + "CHF,2026-01-01,USD,-1\n"  # line 5
        + "\n"  # a blank line: skipped
        + "EUR,2026-01-01,USD,1.2\n"  # line 7: the same key as line 2
    )
    with pytest.raises(CurrencyRatesError) as caught:
        load_currency_rates(con, bad)
    message = str(caught.value)
    assert "4 unusable row(s)" in message
    for line, words in (
        (3, "currency_code 'EURO'"),
        (4, "valid_from '1 June'"),
        (5, "rate '-1'"),
        (7, "(first on line 2)"),
    ):
        assert f"{bad}, line {line}: " in message and words in message
    # Nothing was loaded: the table still holds the good file's rows.
    assert con.execute("SELECT count(*) FROM raw.currency_rates").fetchall() == [(3,)]
    missing = tmp_path / "missing-column.csv"
    missing.write_text("currency_code,valid_from,rate\nEUR,2026-01-01,1.1\n")
    with pytest.raises(CurrencyRatesError, match=r"line 1: missing column\(s\) to_currency"):
        load_currency_rates(con, missing)
    with pytest.raises(CurrencyRatesError, match="does not exist"):
        load_currency_rates(con, tmp_path / "nowhere.csv")
    # No file configured: no rates.
    assert load_currency_rates(con, None) == 0
    assert con.execute("SELECT count(*) FROM raw.currency_rates").fetchall() == [(0,)]
    con.close()


def test_excel_semicolon_files_with_decimal_commas_read(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffCurrency_Code;Valid_From;To_Currency;Rate\r\nEUR;2026-01-01;USD;1,0825\r\n".encode()
    )
    assert read_rates(path) == [("EUR", date(2026, 1, 1), "USD", 1.0825, 2)]


def test_rates_settings_come_from_the_config_file(tmp_path: Path) -> None:
    from segmint.config import load_settings

    config = tmp_path / "segmint.toml"
    config.write_text('[transform]\nreporting_currency = "gbp"\ncurrency_rates = "fx.csv"\n')
    settings = load_settings(config)
    assert settings.transform == dataclasses.replace(
        TransformSettings(), reporting_currency="GBP", currency_rates=tmp_path / "fx.csv"
    )


# Refunds paid in GBP of orders paid in USD (a shop's back end refunds in the customer's
# currency). Ra: an order of 100, a GBP refund of 50 and, later, a USD refund of 60 that
# only counts for what the GBP one left of the order; Rb: an order of 80 with a GBP refund
# dated the day before it (it counts on the order's day). Only these refunds are in GBP.
REFUND_ROWS = [
    ("Ra-p", "purchase", "Ra", "Ra-o", "2026-06-05 10:00:00", "100.00", "USD"),
    ("Ra-r1", "refund", "Ra", "Ra-o", "2026-06-12 10:00:00", "50.00", "GBP"),
    ("Ra-r2", "refund", "Ra", "Ra-o", "2026-06-20 10:00:00", "60.00", "USD"),
    ("Rb-p", "purchase", "Rb", "Rb-o", "2026-06-15 10:00:00", "80.00", "USD"),
    ("Rb-r1", "refund", "Rb", "Rb-o", "2026-06-14 23:00:00", "20.00", "GBP"),
]


def _raw_warehouse_with_refunds(path: Path) -> Path:
    _raw_warehouse(path)
    con = connect(path)
    con.executemany(
        """
        INSERT INTO raw.events (event_id, event_type, customer_id, order_id, event_ts, revenue,
            currency, _source_file, _source_line, _partition_date, _loaded_at)
        VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMP), CAST(? AS DECIMAL(18, 2)), ?,
            'events/dt=2026-06-20/back-end.csv', 1, DATE '2026-06-20',
            TIMESTAMP '2026-06-21 02:00:00')
        """,
        REFUND_ROWS,
    )
    con.close()
    return path


def test_a_revised_rate_of_a_refund_day_recounts_the_orders_other_refund_days(tmp_path) -> None:
    """The GBP rate of the refunds is revised: the increment equals a full build with the new
    rate, on the days where the order's later refund and the refund dated before its order
    count too (what they count depends on the revised amount), not only on the GBP days."""
    rates, revised = tmp_path / "rates.csv", tmp_path / "revised.csv"
    rates.write_text(RATES + "GBP,2026-01-01,USD,1.20\n")
    revised.write_text(RATES + "GBP,2026-01-01,USD,1.25\n")
    nightly = _raw_warehouse_with_refunds(tmp_path / "nightly" / "segmint.duckdb")
    run_transform(_settings(nightly, rates), AS_OF)
    run_transform(_settings(nightly, revised), AS_OF)
    full = _raw_warehouse_with_refunds(tmp_path / "full" / "segmint.duckdb")
    run_transform(_settings(full, revised), AS_OF)
    inc = connect(nightly, read_only=True)
    ref = connect(full, read_only=True)
    try:
        for table in (*MARTS, "marts.refunds"):
            assert table_hash(inc, table) == table_hash(ref, table), table
        totals = inc.execute(
            "SELECT customer_id, revenue_total, refund_total FROM marts.customers "
            "WHERE customer_id IN ('Ra', 'Rb') ORDER BY 1"
        ).fetchall()
    finally:
        inc.close()
        ref.close()
    # Ra: 50 GBP at 1.25 = 62.50, then 37.50 of the 60 USD; Rb: 20 GBP at 1.25 = 25.00.
    assert totals == [("Ra", 0, 100), ("Rb", 55, 25)]


def test_nights_failing_in_a_row_say_what_waits_and_the_fix_builds_it_once(
    tmp_path: Path,
) -> None:
    """A dbt test failing night after night (a new currency without a rate) said the same
    lines every night, nothing of the days piling up behind it, nor that the marts still
    held the night before the first failure. Each failure now names both; the night after
    the fix builds every waiting day, once, and nothing waits after it."""
    rates = tmp_path / "rates.csv"
    rates.write_text(HEADER + "EUR,2026-01-01,USD,1.10\n")
    warehouse = tmp_path / "segmint.duckdb"
    settings = _settings(warehouse, rates)
    con = connect(warehouse)
    ensure_raw_tables(con)
    synthetic.insert_raw(con, 40, 150, date(2026, 6, 1), AS_OF, seed=5)
    con.execute("create table held as from raw.events where _partition_date > '2026-06-28'")
    con.execute("delete from raw.events where _partition_date > '2026-06-28'")
    con.close()
    run_transform(settings, date(2026, 6, 28))

    for night, waiting in (("2026-06-29", "1 day(s)"), ("2026-06-30", "2 day(s)")):
        con = connect(warehouse)  # the night's events land, paid in GBP (no rate)
        con.execute(f"insert into raw.events from held where _partition_date = '{night}'")
        con.execute(
            "update raw.events set currency = 'GBP' where currency = 'EUR' "
            f"and _partition_date = '{night}'"
        )
        con.close()
        with pytest.raises(SegmintError) as caught:
            run_transform(settings, date.fromisoformat(night))
        assert (
            "marts.customer_features holds the night 2026-06-28, the last build that passed"
            in str(caught.value)
        )
        span = "2026-06-29" if night == "2026-06-29" else "2026-06-29..2026-06-30"
        assert (
            f"{waiting} rebuilt by builds that did not pass wait to be built through the "
            f"marts: {span} (intermediate.int_event_dates_pending); the next build that "
            "passes builds them, once: fix the cause, then run the nights from 2026-06-29 on "
            "again, oldest first (segmint run --as-of 2026-06-29, ...; under Airflow `make "
            f"backfill FROM=2026-06-29 TO={night} REPROCESS=failed`)"
        ) in str(caught.value)

    rates.write_text(HEADER + "EUR,2026-01-01,USD,1.10\nGBP,2026-01-01,USD,1.30\n")
    result = run_transform(settings, AS_OF)
    assert result.details["rebuilt_past_days"] == ["2026-06-29"]
    con = connect(warehouse, read_only=True)
    try:
        assert con.execute("from intermediate.int_event_dates_pending").fetchall() == []
        assert (
            con.execute(
                "select count(*) from marts.orders where currency = 'GBP' and fx_rate = 1.30"
            ).fetchone()[0]
            > 0
        )
    finally:
        con.close()
