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
