"""Why an audience is empty, on a real night of a shop whose customers gave no consent.

The report said "vip_email was built with no members" and nothing more, on the page and in
the summary: marketing could not tell a campaign nobody matched from one whose matches all
lacked consent. It now says which, from the build's counts in ``audiences.summary``.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

from tests.include.report.shops import night_report, visiting_shop, write_events

AS_OF = date(2026, 6, 30)
CRM = ["customer_id", "updated_at", "email", "email_opt_in", "ads_opt_in"]


def write_shop(landing: Path, audiences: Path) -> None:
    """30 customers who visit and buy, none of them consenting to e-mail or ads, and two
    audiences: every buyer by e-mail, and buyers of a thousand orders (nobody)."""
    shop = visiting_shop(30, AS_OF - timedelta(days=10), 3, lambda c, k: 30.0 + c)
    write_events(landing, AS_OF, shop)
    crm = landing / "crm" / f"dt={AS_OF}" / "customers.csv"
    crm.parent.mkdir(parents=True)
    with crm.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CRM)
        for c in range(30):
            writer.writerow([f"c{c}", "2026-06-01T00:00:00Z", f"c{c}@example.com", "false", "no"])
    audiences.mkdir()
    for name, consent, orders in (("buyers_email", "email", 1), ("whales_ads", "ads", 1000)):
        (audiences / f"{name}.yml").write_text(
            f"name: {name}\ndescription: Test.\nconsent: {consent}\n"
            f"where:\n  feature: order_count\n  gte: {orders}\n",
            encoding="utf-8",
        )


def test_an_empty_audience_says_whether_nobody_matched_or_nobody_consented(
    tmp_path: Path,
) -> None:
    audiences = tmp_path / "audiences"
    write_shop(tmp_path / "landing", audiences)
    _, html = night_report(
        tmp_path,
        AS_OF,
        "ingest,validate,transform,segment,audiences,report",
        ["--audiences", str(audiences)],
    )
    assert (
        "<b>buyers_email</b> was built with no members: none of the 30 customers its "
        "conditions matched has e-mail consent</li>"
    ) in html
    assert "<b>whales_ads</b> was built with no members: no customer met its conditions</li>" in (
        html
    )
    summary = html[html.index('<section id="summary"') : html.index('<section id="segments"')]
    assert (
        "Built with no members: buyers_email (none of the 30 matched has e-mail consent), "
        "whales_ads (no customer met its conditions)."
    ) in summary


def test_the_reason_names_where_the_matched_customers_went() -> None:
    """Suppression lists, a higher-priority audience and the size limit take the rest:
    matched = without consent + suppressed + claimed + over the limit."""
    from segmint.report.sections import _empty_reason

    assert _empty_reason("email", 23, 3, 20, 0, 0) == (
        "its conditions matched 23 customers: 3 without e-mail consent, 20 on a suppression list",
        "23 matched: 3 without e-mail consent, 20 on a suppression list",
    )
    assert _empty_reason("ads", 1, 1, 0, 0, 0)[0] == (
        "the one customer its conditions matched has no ads consent"
    )
    assert _empty_reason("ads", 4, 0, 0, 4, 0)[1] == (
        "4 matched: 4 taken by a higher-priority audience"
    )
    assert _empty_reason("email", 5, 1, 0, 0, 0) is None  # counts that do not add up
    assert _empty_reason("email", None, None, None, None, None) is None
