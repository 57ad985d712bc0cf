"""Benchmark of the ``segment`` stage at 1 million customers (target: under 60 s).

    .venv/bin/python bench/bench_segment.py [--customers N] [--keep DIR]

Synthetic ``marts.customer_features`` rows (:mod:`ml.segmentation.synthetic`) are written to
a fresh DuckDB file by a separate process, so the figures below cover the stage alone:

- ``night``: the first run, including the search over every candidate k (default 2..10);
- ``next_night``: the following day (one day older, 2% of customers visited), which reads
  the previous run, matches centroids and computes drift and transitions.

Each run's wall time, the stage's own breakdown and the peak resident memory of this process
(``ru_maxrss``, which covers both runs) are printed as JSON. No pass/fail: the target is
printed beside the figure.

    .venv/bin/python bench/bench_segment.py --nights 2 [--scale 10M]

runs the stage on the generated warehouse for a first night (k search) and the next one (k
kept, no search), each in its own process, as ``bench_score.py --nights`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 6, 30)
TARGET_S = 60.0

_PREPARE = """
import sys
from datetime import date
from ml.segmentation.synthetic import customer_features, next_day
from segmint.warehouse import connect

path, n = sys.argv[1], int(sys.argv[2])
day1 = customer_features(n, date.fromisoformat(sys.argv[3]), seed=7)
day2 = next_day(day1)
con = connect(path)
for i, frame in enumerate((day1, day2)):
    con.register("f", frame.drop(columns="latent_type"))
    verb = "create table marts.customer_features as" if i == 0 else (
        "insert into marts.customer_features"
    )
    con.execute(f"{verb} select * replace (cast(as_of_date as date) as as_of_date) from f")
    con.unregister("f")
con.close()
day1[["customer_id", "latent_type"]].to_parquet(sys.argv[4])
"""


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(customers: int, workdir: Path) -> dict:
    from ml.segmentation import run_segmentation
    from segmint.config import Settings

    warehouse = workdir / "segmint.duckdb"
    truth = workdir / "truth.parquet"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _PREPARE, str(warehouse), str(customers), AS_OF.isoformat(),
         str(truth)],
        check=True,
        cwd=ROOT,
    )  # fmt: skip
    prepare_s = time.perf_counter() - t
    settings = Settings(warehouse=warehouse)
    rss_before = _peak_rss_mib()

    nights = {}
    for name, as_of in (("night", AS_OF), ("next_night", AS_OF + timedelta(days=1))):
        t = time.perf_counter()
        cpu = time.process_time()
        result = run_segmentation(settings, as_of)
        nights[name] = {
            "wall_s": round(time.perf_counter() - t, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
            "customers": result.rows_in,
            "k": result.details["k"],
            "k_reason": result.details["k_reason"],
            "silhouette": round(result.details["silhouette"] or float("nan"), 4),
            "breakdown_s": result.details["timings"],
            "summary": result.summary,
            "warnings": result.warnings,
        }

    quality = _quality(warehouse, truth)
    import sklearn

    return {
        "benchmark": "segment",
        "customers": customers,
        "target_s": TARGET_S,
        "within_target": nights["night"]["wall_s"] < TARGET_S,
        "prepare_s": round(prepare_s, 2),
        **nights,
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "peak_rss_mib_before_runs": round(rss_before, 1),
        **quality,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
        },
    }


def _quality(warehouse: Path, truth: Path) -> dict:
    import duckdb
    from sklearn.metrics import adjusted_rand_score

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        both = con.execute(
            "select t.latent_type, s.as_of_date, s.segment_id from ml.customer_segments s "
            "join read_parquet(?) t using (customer_id) order by s.as_of_date, customer_id",
            [str(truth)],
        ).df()
    finally:
        con.close()
    day1 = both[both["as_of_date"] == both["as_of_date"].min()]
    day2 = both[both["as_of_date"] == both["as_of_date"].max()]
    return {
        "synthetic_ari": round(adjusted_rand_score(day1["latent_type"], day1["segment_id"]), 4),
        "same_segment_next_night": round(
            float((day1["segment_id"].to_numpy() == day2["segment_id"].to_numpy()).mean()), 4
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="DIR", help="work folder to keep (default: temporary)")
    parser.add_argument("--nights", type=int, choices=(1, 2), help="run on generated nights")
    parser.add_argument("--scale", default="10M", help="generated data set for --nights")
    args = parser.parse_args(argv)
    if args.nights:
        sys.path.insert(0, str(ROOT / "bench"))
        from bench_score import run_nights

        report = run_nights(["segment"], args.scale, count=args.nights)
        print(json.dumps(report, indent=2, default=str))
        return 0
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
        for old in workdir.glob("segmint.duckdb*"):
            old.unlink()
        report = run(args.customers, workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="segmint-bench-segment-") as tmp:
            report = run(args.customers, Path(tmp))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
