"""Benchmark: the ``recommend`` stage for 200k customers x 5k products.

Synthetic interactions with known taste (:mod:`ml.recommendations.synthetic`: ~12 product
events per customer over 90 days, 10% cold customers) are written to a fresh DuckDB file as
``marts.customer_product_daily`` and ``marts.customer_features``; then the stage runs in a
child process, exactly as the pipeline calls it: read the marts, holdout evaluation of ALS and
popularity, the gate, the refit, top-10 for every customer, one write transaction.

    .venv/bin/python bench/bench_recommend.py [--customers 200000] [--products 5000]

Prints one JSON object. Targets on this machine (2 cores, shared): ``seconds`` (the stage
call) < 60 and ``peak_rss_gib`` (the child's peak) < 3. ``import_seconds`` (numpy, scipy,
scikit-learn, duckdb, loaded once per process) is reported beside it.

    .venv/bin/python bench/bench_recommend.py --nights 2 [--scale 10M]

measures a first night (evaluation, fit, every list) and the next one (the registered model:
customers with new interactions folded in and re-ranked, the other lists carried over) on
the generated warehouse, as ``bench_score.py --nights`` does (the segment stage runs first
each night, as in the pipeline, and is reported but not counted).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "include"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

TARGET_S = 60.0
TARGET_GIB = 3.0
AS_OF = date(2026, 6, 30)

CHILD = """
import json, resource, sys, time
began = time.perf_counter()
import duckdb, numpy, scipy.sparse, sklearn  # noqa: F401
from datetime import date
from pathlib import Path
from segmint.config import Settings
from ml.recommendations import run_recommendations
imported = time.perf_counter()
result = run_recommendations(Settings(warehouse=Path(sys.argv[1])), date.fromisoformat(sys.argv[2]))
done = time.perf_counter()
print(json.dumps({
    "import_seconds": round(imported - began, 2),
    "seconds": round(done - imported, 2),
    "cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
    "summary": result.summary,
    "details": result.details,
    "warnings": result.warnings,
}, default=str))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nights", type=int, choices=(1, 2), help="run on generated nights")
    parser.add_argument("--scale", default="10M", help="generated data set for --nights")
    args = parser.parse_args(argv)
    if args.nights:
        from bench_score import run_nights  # bench/ is on sys.path when run as a script

        report = run_nights(
            ["segment", "recommend"], args.scale, measured=("recommend",), count=args.nights
        )
        print(json.dumps(report, indent=2, default=str))
        return 0

    from ml.recommendations.synthetic import simulate, write_marts

    with tempfile.TemporaryDirectory(prefix="bench_recommend_") as tmp:
        warehouse = Path(tmp) / "segmint.duckdb"
        began = time.perf_counter()
        interactions, customers = simulate(args.customers, args.products, seed=args.seed)
        write_marts(warehouse, interactions, customers, AS_OF)
        prepared = time.perf_counter() - began
        rows = len(interactions)
        del interactions, customers
        env_path = f"{ROOT}:{ROOT / 'include'}"
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(warehouse), AS_OF.isoformat()],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    holdout = child["details"].get("holdout", {})
    out = {
        "bench": "recommend",
        "customers": args.customers,
        "products": args.products,
        "event_rows": rows,
        "prepare_seconds": round(prepared, 2),
        "import_seconds": child["import_seconds"],
        "seconds": child["seconds"],
        "cpu_seconds": child["cpu_seconds"],
        "evaluate_seconds": child["details"].get("evaluate_s"),
        "peak_rss_gib": round(peak_gib, 3),
        "target_seconds": TARGET_S,
        "target_gib": TARGET_GIB,
        "within_target": child["seconds"] < TARGET_S and peak_gib < TARGET_GIB,
        "published": child["details"].get("published"),
        "recall_at_10": {s: m.get("recall_at_10") for s, m in holdout.items()},
        "map_at_10": {s: m.get("map_at_10") for s, m in holdout.items()},
        "coverage_at_10": {s: m.get("coverage_at_10") for s, m in holdout.items()},
        "sources": child["details"].get("sources"),
        "summary": child["summary"],
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
