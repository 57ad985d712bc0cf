"""The persona cards of a real night on a shop with one absurd order.

A red team found the cards showing Champions revenue "28,580,420, 2.3x" and every other
segment "0.0x" on a small shop with one order of 1e9: the report averaged money over every
customer. The cards now show medians over the non-outliers, the figures
``ml.segment_profiles`` stores as ``median_<feature>``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb

from tests.include.report.shops import night_report, visiting_shop, write_events

AS_OF = date(2026, 6, 30)


def write_shop(landing: Path) -> None:
    """60 customers over four days; every third buys (20-80 per order), one order is 1e9
    and one account spends 50,000 an order (a B2B buyer)."""

    def revenue(c: int, k: int) -> float | None:
        if c % 3:
            return None
        return 1e9 if (c, k) == (0, 0) else 50_000.0 if c == 3 else 20.0 + c

    write_events(landing, AS_OF, visiting_shop(60, AS_OF - timedelta(days=20), 4, revenue))


def card_figures(html: str) -> dict[str, dict[str, str]]:
    """{segment name: {label: figure}} read from the persona cards."""
    cards = {}
    for card in re.findall(r'<div class="card">(.*?)</div></div>(?=<div class="card">|$)', html):
        name = re.search(r"<h4>(.*?)</h4>", card).group(1)
        cards[name] = dict(re.findall(r"<span>median ([^:<]+): <b>([^<]+)</b>", card))
    return cards


def test_cards_show_medians_of_the_non_outliers_as_the_profiles(tmp_path: Path) -> None:
    write_shop(tmp_path / "landing")
    warehouse, html = night_report(tmp_path, AS_OF)
    section = html[html.index('<div class="cards">') :]
    cards = card_figures(section[: section.index('<div class="block">')])

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        profiles = con.execute(
            "select segment_name, median_revenue_total, median_avg_order_value, outliers "
            "from ml.segment_profiles where as_of_date = ? and customers > 0",
            [AS_OF],
        ).fetchall()
    finally:
        con.close()
    assert {name for name, *_ in profiles} == set(cards)
    buyers = 0
    for name, revenue, order_value, outliers in profiles:
        assert outliers == 0  # 60 customers: fewer than 1 / (1 - 0.99), nobody is an outlier
        assert cards[name].get("revenue per customer to date (USD)", "0") == f"{revenue or 0:,.0f}"
        if order_value is not None:
            buyers += 1
            assert cards[name]["order value (USD)"] == f"{order_value:,.0f}"
            # Typical orders are 20-80: neither 1e9 nor 50,000 moves a median.
            assert 20 <= order_value <= 80
    assert buyers >= 1
    assert "medians per customer" in html
    # The mean the red team saw (tens of millions) is nowhere on the cards.
    assert not re.search(r"<b>\d{1,3}(,\d{3}){2,}</b>", section)
