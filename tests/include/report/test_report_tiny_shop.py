"""The report of a real night of a shop of 12 customers: one segment, too few buyers to
score R/F/M.

Two charts drew nothing a marketer could read: the R/F/M heatmap put every segment at
100% "none = no order, no score" beside a card saying 5 of 12 customers had ordered (the
marts score nobody below ``rfm_min_customers`` buyers), and "Choosing k" drew one dot of
inertia beside an empty silhouette panel (one segment has no silhouette). Both are now a
line saying why.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.include.report.shops import night_report, visiting_shop, write_events

AS_OF = date(2026, 6, 30)


def write_shop(landing: Path) -> None:
    """12 customers visiting over three days, 5 of them buying."""
    shop = visiting_shop(12, AS_OF - timedelta(days=5), 3, lambda c, k: 25.0 + c if c < 5 else None)
    write_events(landing, AS_OF, shop)


def test_a_tiny_shop_gets_reasons_not_empty_charts(tmp_path: Path) -> None:
    write_shop(tmp_path / "landing")
    _, html = night_report(tmp_path, AS_OF)
    assert "12 customers in 1 segment" in html
    assert 'data-chart="segment-rfm"' not in html
    assert (
        "no R/F/M scores for 2026-06-30: 5 customers of 12 ordered, too few to rank into "
        "quintiles (dbt var rfm_min_customers; marts.customer_features.rfm_segment says "
        "&#x27;Too few buyers&#x27;)"
    ) in html
    assert 'data-chart="k-selection"' not in html
    assert "No choice to show: the run of 2026-06-30 tried only k = 1 (one segment: " in html
    assert "Could not be drawn" not in html
