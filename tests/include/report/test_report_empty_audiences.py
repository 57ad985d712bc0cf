"""Why an audience is empty, on a real night of a shop whose customers gave no consent.

The report said "vip_email was built with no members" and nothing more, on the page and in
the summary: marketing could not tell a campaign nobody matched from one whose matches all
lacked consent. It now says which, from the build's counts in ``audiences.summary``.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

from segmint.cli import main
from tests.include.ingest.conftest import event, write_jsonl

AS_OF = date(2026, 6, 30)
CRM = ["customer_id", "updated_at", "email", "email_opt_in", "ads_opt_in"]


def write_shop(landing: Path, audiences: Path) -> None:
    """30 customers who visit and buy, none of them consenting to e-mail or ads, and two
    audiences: every buyer by e-mail, and buyers of a thousand orders (nobody)."""
    records, n = [], 0
    for c in range(30):
        for k in range(1 + c % 3):
            day = AS_OF - timedelta(days=10 - k)
            session = {"customer_id": f"c{c}", "session_id": f"s{c}-{k}"}
            n += 1
            records.append(event(f"e{n}", day, **session))
            n += 1
            records.append(
                event(f"e{n}", day, event_type="purchase", order_id=f"o{n}", revenue=30.0 + c,
                      currency="USD", **session)
            )  # fmt: skip
    write_jsonl(landing / "events" / f"dt={AS_OF}" / "part-0.jsonl", records)
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
    landing, audiences = tmp_path / "landing", tmp_path / "audiences"
    warehouse, output = tmp_path / "w.duckdb", tmp_path / "out"
    write_shop(landing, audiences)
    code = main(["run", "--landing", str(landing), "--warehouse", str(warehouse),
                 "--output", str(output), "--audiences", str(audiences),
                 "--as-of", AS_OF.isoformat(),
                 "--stages", "ingest,validate,transform,segment,audiences,report"])  # fmt: skip
    assert code == 0
    html = (output / AS_OF.isoformat() / "report.html").read_text(encoding="utf-8")
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
