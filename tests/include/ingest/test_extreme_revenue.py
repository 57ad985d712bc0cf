"""Batch-level warning for a purchase whose revenue is absurd next to the batch's orders.

A red team loaded an order of 1e9 among orders of 20-80: nothing warned, and the report's
segment cards showed Champions revenue in the tens of millions. The ingest now names such
purchases (file, line, value) in its warnings and in ops.validation_runs, loads them as
they are, and the quality gate still passes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from segmint.config import ConfigError, IngestSettings, Settings
from segmint.ingest import check_quality_gate, run_ingest
from tests.include.ingest.conftest import D1, event, write_jsonl

FILE = f"events/dt={D1}/part-0.jsonl"


def write_orders(landing: Path, revenues: list[float], currencies: list[str] | None = None) -> None:
    """One purchase a line (line i + 1 holds revenues[i], in currencies[i], default USD)."""
    currencies = currencies or ["USD"] * len(revenues)
    write_jsonl(
        landing / FILE,
        [
            event(f"e{i}", event_type="purchase", order_id=f"o{i}", revenue=r, currency=c)
            for i, (r, c) in enumerate(zip(revenues, currencies, strict=True))
        ],
    )


def test_an_absurd_order_is_named_loaded_and_does_not_fail_the_gate(
    settings: Settings, landing: Path, query
) -> None:
    revenues = [20.0 + i for i in range(40)]  # 20-59
    revenues[6] = 1e9  # line 7
    write_orders(landing, revenues)

    result = run_ingest(settings, D1)

    extreme = [w for w in result.warnings if "revenue far above" in w]
    assert len(extreme) == 1, result.warnings
    assert "on 1 purchase(s)" in extreme[0]
    assert f"{FILE} line 7: 1,000,000,000.00" in extreme[0]
    # 26 became 1e9: the 36th of 40 sorted values is 56, whatever the outlier is.
    assert "0.9 quantile 56.00 of 40 orders" in extreme[0]
    assert result.rows_out == 40  # loaded, not quarantined
    assert query("select count(*) from ops.quarantine") == [(0,)]
    assert query("select max(revenue) from raw.events") == [(1_000_000_000,)]
    runs = query(
        "select source_file, level, success, element_count, unexpected_count "
        "from ops.validation_runs where rule = 'revenue_not_extreme'"
    )
    assert runs == [(FILE, "warning", False, 40, 1)]
    gate = check_quality_gate(settings, D1)
    assert gate.summary == "quality gate passed for 1 partition(s)"


def test_ordinary_spread_small_batches_and_the_switch_stay_quiet(
    settings: Settings, landing: Path, query
) -> None:
    # A wide but ordinary spread (1 to 2,000: at most 100 x the 0.9 quantile) is no warning.
    write_orders(landing, [1.0 + 50 * i for i in range(40)])
    assert not [w for w in run_ingest(settings, D1).warnings if "revenue far above" in w]
    assert query(
        "select success, unexpected_count from ops.validation_runs "
        "where rule = 'revenue_not_extreme'"
    ) == [(True, 0)]

    # Fewer purchases than extreme_revenue_min_orders: not judged.
    few = dataclasses.replace(
        settings,
        warehouse=settings.warehouse.with_name("few.duckdb"),
        ingest=IngestSettings(extreme_revenue_min_orders=41),
    )
    write_orders(landing, [20.0] * 39 + [1e9])
    assert not [w for w in run_ingest(few, D1).warnings if "revenue far above" in w]

    # extreme_revenue_multiple = 0 turns the check off.
    off = dataclasses.replace(
        few,
        warehouse=settings.warehouse.with_name("off.duckdb"),
        ingest=IngestSettings(extreme_revenue_multiple=0),
    )
    assert not [w for w in run_ingest(off, D1).warnings if "revenue far above" in w]


def test_each_currency_is_judged_against_its_own_orders(
    settings: Settings, landing: Path, query
) -> None:
    """A shop selling in yen and dollars: 200 USD orders of 20-59 and 20 JPY orders of
    6,000-44,000 (100-2,000x larger, under 10% of the orders, so all above 100 x the
    batch-wide 0.9 quantile) are ordinary; only the absurd yen order is named, against the
    yen orders."""
    usd = [20.0 + i % 40 for i in range(200)]
    jpy = [6000.0 + 2000 * i for i in range(20)]
    jpy[3] = 9e9  # line 204
    write_orders(landing, usd + jpy, ["USD"] * 200 + ["JPY"] * 20)

    result = run_ingest(settings, D1)

    extreme = [w for w in result.warnings if "revenue far above" in w]
    assert len(extreme) == 1, result.warnings
    assert "on 1 purchase(s)" in extreme[0]
    assert f"{FILE} line 204: 9,000,000,000.00 JPY" in extreme[0]
    runs = query(
        "select success, element_count, unexpected_count from ops.validation_runs "
        "where rule = 'revenue_not_extreme'"
    )
    assert runs == [(False, 220, 1)]

    # Too few orders in a currency to judge it: its orders are left alone.
    few = dataclasses.replace(settings, warehouse=settings.warehouse.with_name("few.duckdb"))
    write_orders(landing, usd + jpy[:5], ["USD"] * 200 + ["JPY"] * 5)
    assert not [w for w in run_ingest(few, D1).warnings if "revenue far above" in w]


def test_the_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="extreme_revenue_quantile"):
        IngestSettings(extreme_revenue_quantile=90)
    with pytest.raises(ConfigError, match="extreme_revenue_min_orders"):
        IngestSettings(extreme_revenue_min_orders=0)


def _day_of_orders(landing: Path, day, revenues: list[float], currency: str = "USD") -> None:
    write_jsonl(
        landing / f"events/dt={day}/orders.jsonl",
        [
            event(
                f"{day}-{i}",
                day,
                event_type="purchase",
                order_id=f"{day}-{i}",
                revenue=r,
                currency=currency,
            )
            for i, r in enumerate(revenues)
        ],
    )


def test_a_day_whose_orders_switched_to_cents_is_named(
    settings: Settings, landing: Path, query
) -> None:
    """A tracker switching to cents made every order of its days 100x, in silence: next to
    each other its orders are ordinary, so the extreme-revenue check (within the batch) never
    fired, and every buyer of those days became high value. The batch's median is compared
    with the median of the orders loaded before it, per currency."""
    from datetime import timedelta

    d2, d3 = D1 + timedelta(days=1), D1 + timedelta(days=2)
    _day_of_orders(landing, D1, [20.0 + i for i in range(40)])
    assert not [w for w in run_ingest(settings, D1).warnings if "median order" in w]

    # A sale day (orders about twice the usual) and another currency are ordinary.
    _day_of_orders(landing, d2, [45.0 + i for i in range(30)])
    write_jsonl(
        landing / f"events/dt={d2}/yen.jsonl",
        [
            event(
                f"y{i}",
                d2,
                event_type="purchase",
                order_id=f"y{i}",
                revenue=3_000.0 + i,
                currency="JPY",
            )
            for i in range(30)
        ],
    )
    assert not [w for w in run_ingest(settings, d2).warnings if "median order" in w]

    _day_of_orders(landing, d3, [100 * (20.0 + i) for i in range(25)])
    result = run_ingest(settings, d3)
    [shift] = [w for w in result.warnings if "median order" in w]
    assert shift == (
        "the median order in USD of 1 file(s) is 3,200.00 over 25 purchase(s), 54x the median "
        "of the 30 loaded before (59.50): did the export switch to cents, to another unit or "
        f"to another currency? Loaded as they are (events/dt={d3}/orders.jsonl); fix the export "
        "or the settings, then segmint ingest --reload-since the first wrong day"
    )
    assert query(f"select count(*) from raw.events where _partition_date = '{d3}'") == [(25,)]


def test_a_reload_of_the_corrected_days_is_not_compared_with_the_rows_it_replaces(
    settings: Settings, landing: Path, query
) -> None:
    """The warning's remedy: correct the export, then --reload-since the first wrong day.
    The old rows of the reloaded files are still in raw.events while the batch is checked;
    compared with them, the corrected orders were named 1/81 of the median 'loaded before'
    (2,600.00, the cents they replace), telling the user to do again what they just did."""
    from datetime import timedelta

    wrong = [D1 + timedelta(days=1), D1 + timedelta(days=2)]
    _day_of_orders(landing, D1, [20.0 + i for i in range(25)])
    run_ingest(settings, D1)
    for day in wrong:
        _day_of_orders(landing, day, [100 * (20.0 + i) for i in range(25)])
    assert [w for w in run_ingest(settings, wrong[-1]).warnings if "median order" in w]

    for day in wrong:
        _day_of_orders(landing, day, [20.0 + i for i in range(25)])
    result = run_ingest(settings, wrong[-1], reload_since=wrong[0])
    assert not [w for w in result.warnings if "median order" in w]
    assert query("select max(revenue) from raw.events") == [(44.0,)]


def test_a_switch_to_cents_is_named_once_not_every_night_after(
    settings: Settings, landing: Path, query
) -> None:
    """The night a tracker switched to cents was named, and then every night after it too:
    each new day in cents was compared with the whole history, mostly in the old unit, so
    the same warning came back night after night (for as many nights as the history had
    days), and a warning that repeats forever is ignored. A batch is now compared with the
    latest orders loaded before its days: the switch is named once, on its night, and the
    switch back (the export fixed, the cents days not reloaded) once, on its night."""
    from datetime import timedelta

    days = [D1 + timedelta(days=n) for n in range(6)]
    for day in days[:3]:
        _day_of_orders(landing, day, [20.0 + i for i in range(25)])
        assert not [w for w in run_ingest(settings, day).warnings if "median order" in w]

    _day_of_orders(landing, days[3], [100 * (20.0 + i) for i in range(25)])
    [shift] = [w for w in run_ingest(settings, days[3]).warnings if "median order" in w]
    assert "100x the median of the 25 loaded before (32.00)" in shift, shift
    assert f"events/dt={days[3]}/orders.jsonl" in shift

    # The next night in cents: the same switch, not named again.
    _day_of_orders(landing, days[4], [100 * (21.0 + i) for i in range(25)])
    assert not [w for w in run_ingest(settings, days[4]).warnings if "median order" in w]
    # The record of every night's comparison: the switch's night failed it.
    assert query(
        "select source_file, level, success, element_count, unexpected_count "
        "from ops.validation_runs where rule = 'revenue_scale_steady' order by source_file"
    ) == [
        (f"events/dt={day}/orders.jsonl", "warning", day != days[3], 25, 25 * (day == days[3]))
        for day in days[1:5]
    ]

    # The export fixed without a reload of the cents days: that change is named, once.
    _day_of_orders(landing, days[5], [20.0 + i for i in range(25)])
    [back] = [w for w in run_ingest(settings, days[5]).warnings if "median order" in w]
    assert "1/103 the median of the 25 loaded before (3,300.00)" in back, back
