"""Benchmark: the landing-zone generator (``python bench/bench_generate.py``).

Runs ``segmint generate`` in a child process into a temporary folder (deleted afterwards)
and prints one JSON object: wall and CPU seconds, event rows written, rows/s, bytes written,
the child's peak RSS, and the load average before the run (the reference machine is shared,
so a busy machine explains a slow figure). Target on the 2-core reference machine:
``--customers 200000 --days 90`` (about 10 million events) in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0

_CHILD = """
import json, sys
from datetime import date
from pathlib import Path
from segmint.generate import generate
s = generate(Path(sys.argv[1]), customers=int(sys.argv[2]), days=int(sys.argv[3]),
             end_date=date(2026, 6, 30), seed=7, fmt=sys.argv[4], dirt_rate=0.002)
print(json.dumps({"events": s.events_written, "sessions": s.sessions, "orders": s.orders,
                  "files": s.event_files + s.crm_files, "inner_seconds": round(s.seconds, 2)}))
"""


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--format", choices=["jsonl", "jsonl.gz", "parquet"], default="jsonl.gz")
    parser.add_argument("--keep", metavar="DIR", help="generate here and keep the output")
    args = parser.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="segmint_bench_gen_"))
    landing = root / "landing"
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(landing),
                str(args.customers),
                str(args.days),
                args.format,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"generator failed: {proc.stderr.strip().splitlines()[-3:]}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        written = _folder_bytes(landing)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    result = {
        "benchmark": "generate",
        "customers": args.customers,
        "days": args.days,
        "format": args.format,
        "events": child["events"],
        "sessions": child["sessions"],
        "orders": child["orders"],
        "files": child["files"],
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
        ),
        "events_per_second": round(child["events"] / wall),
        "landing_mib": round(written / 2**20, 1),
        # ru_maxrss is in KiB on Linux: the largest child, here the only one.
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "cpus": os.cpu_count(),
        "target_seconds": TARGET_SECONDS,
        "meets_target": wall < TARGET_SECONDS,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
