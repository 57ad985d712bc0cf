"""Benchmark of the rebuild of past feature snapshots after a full refresh: a year of nightly
snapshots. ``python bench/bench_history_rebuild.py [--sessions-per-day N] [--dates N]
[--batches 7,31,92]`` prints one JSON object.

A year of synthetic events (tests/dbt/synthetic.py, 200,000 customers) is built as of its
last day (``run_transform``, a full build). Then the transform stage's rebuild of past
snapshots (``segmint.transform._restore_history``) rebuilds the last ``--dates`` dates
before it, as after a full refresh of a warehouse holding one snapshot a night, once for
each batch size of ``--batches`` (the snapshots deleted again between two), reporting wall
and CPU seconds and the peak resident memory of the dbt child (sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dbt"))

import synthetic  # noqa: E402

from segmint import transform  # noqa: E402
from segmint.config import Settings, TransformSettings  # noqa: E402
from segmint.warehouse import connect, ensure_raw_tables  # noqa: E402

DATA = ROOT / "bench" / "data" / "history"
START = date(2025, 7, 1)
AS_OF = date(2026, 6, 30)
CUSTOMERS = 200_000


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class PeakRss:
    """The largest resident memory of this process's children, sampled while it runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    self.peak = max(self.peak, child.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions-per-day", type=int, default=6_000)
    parser.add_argument("--dates", type=int, default=364)
    parser.add_argument("--batches", default="31")
    args = parser.parse_args(argv)

    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    warehouse = DATA / "segmint.duckdb"
    con = connect(warehouse)
    ensure_raw_tables(con)
    days = (AS_OF - START).days + 1
    synthetic.insert_raw(con, CUSTOMERS, args.sessions_per_day * days, START, AS_OF, seed=1)
    events = con.execute("select count(*) from raw.events").fetchone()[0]
    con.close()
    settings = Settings(
        warehouse=warehouse, transform=TransformSettings(reporting_currency=synthetic.CURRENCY)
    )
    started = time.perf_counter()
    transform.run_transform(settings, AS_OF)
    full_s = time.perf_counter() - started
    con = connect(warehouse, read_only=True)
    activity_rows = con.execute("select count(*) from marts.customer_daily_activity").fetchone()[0]
    con.close()

    dates = [AS_OF - timedelta(days=n) for n in range(args.dates, 0, -1)]
    runs = []
    for batch in (int(b) for b in args.batches.split(",")):
        con = connect(warehouse)
        for table in ("customer_feature_history", "customer_rule_segments"):
            con.execute(f"delete from marts.{table} where as_of_date < ?", [AS_OF])
        con.execute(f"create table if not exists {transform.HISTORY_TO_REBUILD} (as_of_date date)")
        con.execute(f"delete from {transform.HISTORY_TO_REBUILD}")
        con.execute(f"insert into {transform.HISTORY_TO_REBUILD} select unnest(?)", [dates])
        con.close()
        # Runs of `batch` dates: the snapshots have about CUSTOMERS rows each.
        con = connect(warehouse, read_only=True)
        per_date = con.execute(
            "select count(*) from marts.customer_feature_history where as_of_date = ?", [AS_OF]
        ).fetchone()[0]
        con.close()
        transform.HISTORY_BATCH_ROWS = batch * per_date
        started, cpu = time.perf_counter(), _cpu_s()
        with PeakRss() as peak:
            _completed, problems, rebuilt = transform._restore_history(settings, AS_OF, None)
        if problems:
            raise SystemExit("\n".join(problems))
        wall = time.perf_counter() - started
        runs.append(
            {
                "batch_dates": batch,
                "dates_rebuilt": len(rebuilt),
                "wall_s": round(wall, 1),
                "cpu_s": round(_cpu_s() - cpu, 1),
                "peak_dbt_rss_mb": round(peak.peak / 2**20),
            }
        )
        print(json.dumps(runs[-1]), file=sys.stderr)
    con = connect(warehouse, read_only=True)
    history_rows = con.execute("select count(*) from marts.customer_feature_history").fetchone()[0]
    con.close()
    result = {
        "bench": "history_rebuild",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "events": events,
        "customers": CUSTOMERS,
        "activity_rows": activity_rows,
        "history_rows": history_rows,
        "full_build_s": round(full_s, 1),
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
