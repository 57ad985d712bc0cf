"""Small shops for the report tests that run a real night: landing events and the night's
report, with the real command line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

from segmint.cli import main
from tests.include.ingest.conftest import event, write_jsonl


def visiting_shop(
    customers: int, first_day: date, visits: int, revenue: Callable[[int, int], float | None]
) -> list[dict]:
    """Events of customers ``c0``... each visiting on ``1 + c % visits`` days from
    ``first_day`` (one session a day, one page view) and, on visit ``k``, buying an order of
    ``revenue(c, k)`` USD when that is not None. Event ids ``e1``... in order; an order's id is
    its purchase event's number."""
    records: list[dict] = []
    for c in range(customers):
        for k in range(1 + c % visits):
            day = first_day + timedelta(days=k)
            session = {"customer_id": f"c{c}", "session_id": f"s{c}-{k}"}
            records.append(event(f"e{len(records) + 1}", day, **session))
            amount = revenue(c, k)
            if amount is not None:
                n = len(records) + 1
                records.append(
                    event(f"e{n}", day, event_type="purchase", order_id=f"o{n}",
                          revenue=amount, currency="USD", **session)
                )  # fmt: skip
    return records


def write_events(landing: Path, day: date, records: list[dict]) -> None:
    """The records as the events partition of ``day``."""
    write_jsonl(landing / "events" / f"dt={day}" / "part-0.jsonl", records)


def night_report(
    tmp_path: Path,
    as_of: date,
    stages: str = "ingest,validate,transform,segment,report",
    extra: Sequence[str] = (),
) -> tuple[Path, str]:
    """Run the night ``as_of`` of the landing zone ``tmp_path/landing`` into
    ``tmp_path/w.duckdb`` (it must succeed): the warehouse and the night's report HTML."""
    warehouse, output = tmp_path / "w.duckdb", tmp_path / "out"
    code = main(["run", "--landing", str(tmp_path / "landing"), "--warehouse", str(warehouse),
                 "--output", str(output), *extra, "--as-of", as_of.isoformat(),
                 "--stages", stages])  # fmt: skip
    assert code == 0
    return warehouse, (output / as_of.isoformat() / "report.html").read_text(encoding="utf-8")
