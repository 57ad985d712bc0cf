"""A night the segment and score stages did not run for (skipped, or failed before them),
on real nights.

The page said "ml.customer_segments has no rows for 2026-07-01" in every segment block and
"No segmentation for this date yet." in the summary, as on a shop never segmented: neither
why, nor that the newest segments are the night before's.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from segmint.cli import main
from tests.include.ingest.conftest import event, write_jsonl

NIGHT = date(2026, 6, 30)


def write_day(landing: Path, day: date, buying: bool = True) -> None:
    """40 customers visiting, every other one buying (unless not ``buying``)."""
    records = []
    for c in range(40):
        session = {"customer_id": f"c{c}", "session_id": f"s{c}-{day}"}
        records.append(event(f"v{c}-{day}", day, **session))
        if c % 2 and buying:
            records.append(
                event(f"p{c}-{day}", day, event_type="purchase", order_id=f"o{c}-{day}",
                      revenue=20.0 + c, currency="USD", **session)
            )  # fmt: skip
    write_jsonl(landing / "events" / f"dt={day}" / "part-0.jsonl", records)


def test_a_night_without_segments_says_the_segment_stage_did_not_run(tmp_path: Path) -> None:
    landing, warehouse, output = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    tonight = NIGHT + timedelta(days=1)
    args = ["run", "--landing", str(landing), "--warehouse", str(warehouse),
            "--output", str(output)]  # fmt: skip
    write_day(landing, NIGHT)
    stages = "ingest,validate,transform,segment,score,report"
    assert main([*args, "--as-of", NIGHT.isoformat(), "--stages", stages]) == 0
    write_day(landing, tonight)
    stages = "ingest,validate,transform,report"
    assert main([*args, "--as-of", tonight.isoformat(), "--stages", stages]) == 0
    html = (output / tonight.isoformat() / "report.html").read_text(encoding="utf-8")
    why = (
        "no segments for 2026-07-01: the segment stage did not run for it (skipped, or the "
        "night failed before it); the newest segmentation is of 2026-06-30"
    )
    section = html[html.index('<section id="segments"') : html.index('<section id="propensity"')]
    assert section.count(why) >= 3  # sizes, personas, RFM: each block says it
    assert "ml.customer_segments has no rows" not in html
    assert "No segmentation for this date yet." not in html
    assert (
        "No segments for 2026-07-01: the segment stage did not run for it; the newest "
        "segmentation is of 2026-06-30, in that night&#x27;s report."
    ) in html
    # Nor did the score stage run: each model's status line says so, and no block under it
    # says "ml.model_metrics has no rows for model purchase on or before 2026-07-01" (the
    # models were never evaluated: too little history).
    propensity = html[
        html.index('<section id="propensity"') : html.index('<section id="audiences"')
    ]
    for model in ("purchase", "churn"):
        assert f"No {model} scores for 2026-07-01</span>: the score stage did not run" in (
            propensity
        )
    assert "ml.model_metrics has no rows" not in html
    assert "ml.feature_importance has no rows" not in html
    # The first night's own report still has its segments.
    first = (output / NIGHT.isoformat() / "report.html").read_text(encoding="utf-8")
    assert "customers in" in first and "No segmentation" not in first


def test_a_day_without_any_order_after_days_of_orders_is_flagged(tmp_path: Path) -> None:
    """A tracker that stopped sending purchase events: the night's visits loaded, its orders
    0 after 20 the day before, and the page never said so."""
    landing, warehouse, output = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    tonight = NIGHT + timedelta(days=1)
    args = ["run", "--landing", str(landing), "--warehouse", str(warehouse),
            "--output", str(output), "--stages", "ingest,validate,transform,report"]  # fmt: skip
    write_day(landing, NIGHT)
    assert main([*args, "--as-of", NIGHT.isoformat()]) == 0
    first = (output / NIGHT.isoformat() / "report.html").read_text(encoding="utf-8")
    assert "No order on" not in first
    write_day(landing, tonight, buying=False)
    assert main([*args, "--as-of", tonight.isoformat()]) == 0
    html = (output / tonight.isoformat() / "report.html").read_text(encoding="utf-8")
    warning = (
        "No order on 2026-07-01, where the 1 day before had 20 (20.0 a day): a day without "
        "any purchase is more likely a tracking or export fault than a quiet day"
    )
    summary = html[html.index('<section id="summary"') : html.index('<section id="segments"')]
    quality = html[html.index('<section id="data-quality"') : html.index('<section id="drift"')]
    assert warning in summary
    assert warning in quality
