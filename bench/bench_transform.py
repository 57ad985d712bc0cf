"""Benchmark of the transform stage (dbt build): full build on ~10M events, then a one-day
increment. ``python bench/bench_transform.py [--scale 10M|1M] [--sessions N]`` prints one JSON
object with wall and CPU seconds (CPU: this process and its children, i.e. dbt).

The raw data is synthetic (tests/dbt/synthetic.py: DuckDB SQL, independent of the real
generator) and cached in bench/data/transform/ while its inputs are unchanged. The full
build runs ``run_transform`` on a copy holding 90 days (as of the last one); the increment
then loads one more day of events and runs ``run_transform`` for that day. Targets: full
build < 30 s, increment < 1/4 of the full build.

Steady state: a night rebuilds the snapshot of its as-of date. The bench warehouse holds no
propensity model, so both nights count as nights a retrain is due and also ask for the
propensity cut-off snapshots (as-of minus 30, 60, 90 days): the weekly worst case (between
retrainings a night asks for its own snapshot only, segmint.transform.snapshots_tonight).
Those cut-offs were the as-of dates of earlier nights and already exist; the first night of
the bench cannot have them, so before the timed increment an untimed
``dbt build --select customer_feature_history customer_rule_segments`` builds them and their
rule segments, as those earlier nights would have (reported as ``cutoff_prebuild_s``; until
2026-12-07 it built the snapshots alone, so the timed increment also built three missing
dates of rule segments, 1.2M rows, which no nightly run of a real warehouse does).

CPU seconds are the fairer figure on a shared machine; the 1-minute load average before and
after the full build is reported with them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dbt"))

import synthetic  # noqa: E402

from segmint.config import Settings, TransformSettings  # noqa: E402
from segmint.transform import dbt_dirs, run_transform  # noqa: E402
from segmint.warehouse import connect, ensure_raw_tables  # noqa: E402

DATA = ROOT / "bench" / "data" / "transform"
START = date(2026, 4, 1)
LAST_FULL_DAY = date(2026, 6, 29)
INCREMENT_DAY = date(2026, 6, 30)
CUSTOMERS = 200_000
SESSIONS_10M = 2_110_000  # about 4.75 events a session -> ~10M events over 90 days
SCALES = {"10M": SESSIONS_10M, "1M": SESSIONS_10M // 10}


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _raw_file(sessions: int) -> Path:
    key = hashlib.sha256(
        f"{sessions}|{CUSTOMERS}|{START}|{LAST_FULL_DAY}".encode()
        + (ROOT / "tests" / "dbt" / "synthetic.py").read_bytes()
    ).hexdigest()[:12]
    path = DATA / f"raw-{key}.duckdb"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        for old in DATA.glob("raw-*.duckdb"):
            old.unlink()
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        con = connect(tmp)
        ensure_raw_tables(con)
        synthetic.insert_raw(con, CUSTOMERS, sessions, START, LAST_FULL_DAY, seed=1)
        con.execute("CHECKPOINT")
        con.close()
        tmp.rename(path)
    return path


def _model_seconds(settings: Settings) -> dict[str, float]:
    run_results = dbt_dirs(settings)[0] / "run_results.json"
    data = json.loads(run_results.read_text())
    tests = sorted(
        (r for r in data["results"] if r["unique_id"].startswith("test.")),
        key=lambda r: -r["execution_time"],
    )
    return {
        r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
        for r in data["results"]
        if r["unique_id"].startswith("model.")
    } | {
        "tests": len(tests),
        "tests_sum": round(sum(r["execution_time"] for r in tests), 2),
        "slowest_tests": {
            r["unique_id"].split(".")[2][:70]: round(r["execution_time"], 2) for r in tests[:3]
        },
        "dbt_elapsed": round(data.get("elapsed_time", 0.0), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="10M")
    parser.add_argument("--sessions", type=int, help="sessions to generate (overrides --scale)")
    args = parser.parse_args(argv)
    args.sessions = args.sessions or SCALES[args.scale]

    raw = _raw_file(args.sessions)
    work = DATA / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warehouse = work / "segmint.duckdb"
    shutil.copy(raw, warehouse)
    settings = Settings(
        warehouse=warehouse, transform=TransformSettings(reporting_currency=synthetic.CURRENCY)
    )
    con = connect(warehouse, read_only=True)
    events = con.execute("SELECT count(*) FROM raw.events").fetchone()[0]
    con.close()

    load_before = os.getloadavg()[0]
    started, cpu = time.perf_counter(), _cpu_s()
    full = run_transform(settings, LAST_FULL_DAY)
    full_s = time.perf_counter() - started
    full_cpu_s = _cpu_s() - cpu
    full_models = _model_seconds(settings)

    con = connect(warehouse)
    synthetic.insert_raw(
        con,
        CUSTOMERS,
        args.sessions // 90,
        INCREMENT_DAY,
        INCREMENT_DAY,
        seed=2,
        loaded_at=datetime.combine(INCREMENT_DAY + timedelta(days=1), datetime.min.time()),
        with_customers=False,
    )
    new_events = con.execute(
        "SELECT count(*) FROM raw.events WHERE CAST(event_ts AS DATE) = ?", [INCREMENT_DAY]
    ).fetchone()[0]
    con.close()

    from segmint.transform import run_dbt, snapshot_dates

    cutoffs = [d for d in snapshot_dates(settings, INCREMENT_DAY, START) if d != INCREMENT_DAY]
    started = time.perf_counter()
    prebuild = run_dbt(
        settings, LAST_FULL_DAY, cutoffs, select="customer_feature_history customer_rule_segments"
    )
    prebuild_s = time.perf_counter() - started
    if prebuild.returncode != 0:
        raise SystemExit(prebuild.stdout[-2000:])

    started, cpu = time.perf_counter(), _cpu_s()
    increment = run_transform(settings, INCREMENT_DAY)
    increment_s = time.perf_counter() - started
    increment_cpu_s = _cpu_s() - cpu
    increment_models = _model_seconds(settings)

    result = {
        "bench": "transform",
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "dbt_threads": settings.transform.threads,
        "events": events,
        "customers_with_features": full.rows_out,
        "full_build_s": round(full_s, 2),
        "full_build_cpu_s": round(full_cpu_s, 2),
        "full_build_target_s": 30,
        # Cores busy on average (CPU over wall): near 2, the build is CPU-bound.
        "full_build_cores_busy": round(full_cpu_s / full_s, 2),
        "cutoff_prebuild_s": round(prebuild_s, 2),
        "increment_events": new_events,
        "increment_s": round(increment_s, 2),
        "increment_cpu_s": round(increment_cpu_s, 2),
        "increment_cores_busy": round(increment_cpu_s / increment_s, 2),
        "increment_share_of_full": round(increment_s / full_s, 3),
        # The same in CPU seconds: the full build keeps both cores busier than the increment.
        "increment_cpu_share_of_full": round(increment_cpu_s / full_cpu_s, 3),
        "increment_share_target": 0.25,
        "snapshots_full": full.details["snapshot_dates"],
        "snapshots_increment": increment.details["snapshot_dates"],
        "snapshots_increment_reason": increment.details["snapshot_dates_reason"],
        "full_model_s": full_models,
        "increment_model_s": increment_models,
        "summary_full": full.summary,
        "summary_increment": increment.summary,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
