"""Benchmark: ingest + GX validation of generated events (``python bench/bench_ingest.py``).

Generates the landing zone once with ``segmint.generate`` into ``bench/data/ingest_<scale>/``
(reused while it exists), then runs the ``ingest`` and ``validate`` stages on a fresh
warehouse in a child process and prints one JSON object: wall seconds, rows/s, peak RSS of
the child. Target for 10M events on the 2-core reference machine: < 30 s and < 3 GiB.

Beside it, the **engine floor**: DuckDB's own JSON reader loading the same event files into
a table (``create table as select * from read_json(...)``, types inferred), in a child
process on a fresh database. It keeps no line numbers, validates nothing and drops what it
cannot parse, so it is a lower bound for any loader on this machine, not a competitor; the
ratio says how much the accounting (line numbers, quarantine, GX, dedup) costs on top.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END = date(2026, 6, 30)
# events -> (customers, days): about 55 events per customer over 90 days.
SCALES = {"100k": (2_000, 90), "1M": (20_000, 90), "10M": (200_000, 90)}
TARGET = {"seconds": 30.0, "peak_gib": 3.0}

_CHILD = """
import json, sys, time
from datetime import date
from segmint.config import Settings
from segmint.stages import SegmintError
from segmint.pipeline import run_stage
settings = Settings().with_overrides(warehouse=sys.argv[1], landing=sys.argv[2], output=sys.argv[3])
as_of = date.fromisoformat(sys.argv[4])
out = {}
for stage in ("ingest", "validate"):
    began = time.perf_counter()
    try:
        r = run_stage(stage, settings, as_of)
        out[stage] = {"seconds": time.perf_counter() - began, "rows_in": r.rows_in,
                      "rows_out": r.rows_out, "summary": r.summary, "details": r.details}
    except SegmintError as exc:
        out[stage] = {"seconds": time.perf_counter() - began, "error": str(exc)[:500]}
import resource
out["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out, default=str))
"""

_FLOOR = """
import glob, json, sys, time
import duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET threads = 2")
con.execute("SET memory_limit = '2GB'")
files = sorted(glob.glob(sys.argv[2] + "/events/*/*.jsonl*"))
began = time.perf_counter()
con.execute(
    "create table events as select * from read_json(?, format = 'newline_delimited', "
    "ignore_errors = true)",
    [files],
)
con.execute("checkpoint")
rows = con.execute("select count(*) from events").fetchone()[0]
print(json.dumps({"seconds": time.perf_counter() - began, "rows": rows}))
"""

_GENERATE = """
import json, sys
from datetime import date
from pathlib import Path
from segmint.generate import generate
generate(Path(sys.argv[1]), customers=int(sys.argv[2]), days=int(sys.argv[3]),
         end_date=date.fromisoformat(sys.argv[4]), truth_dir=Path(sys.argv[5]))
print(json.dumps({}))
"""


def _child(code: str, *args: str) -> tuple[dict, float, float]:
    """Run ``code`` in a fresh interpreter: its last JSON line, wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"bench child failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, cpu


def _sizes(warehouse: Path, out: Path) -> dict[str, float]:
    """MiB on disk of the warehouse file and of each folder of the night's output."""

    def mib(path: Path) -> float:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        return round(sum(p.stat().st_size for p in files) / 1024**2, 1)

    sizes = {"warehouse": mib(warehouse)}
    for folder in sorted(out.glob("*/*")):
        if folder.is_dir():
            sizes[folder.name] = mib(folder)
            for sub in sorted(folder.iterdir()):
                if sub.is_dir():
                    sizes[f"{folder.name}/{sub.name}"] = mib(sub)
    return sizes


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="10M")
    args = parser.parse_args(argv)
    customers, days = SCALES[args.scale]
    base = ROOT / "bench" / "data" / f"ingest_{args.scale}"
    landing = base / "landing"
    gen_seconds = None
    if not (base / ".generated").exists():
        shutil.rmtree(base, ignore_errors=True)
        # In a child of its own: a process started by one that holds the generator's world
        # (3.5 GiB at 10M) reports that as its own ru_maxrss (Linux keeps the high-water mark
        # across exec), which made the ingest's peak read 3.45 GiB instead of ~2 GiB.
        _, gen_seconds, _ = _child(
            _GENERATE, str(landing), str(customers), str(days), END.isoformat(),
            str(base / "truth"),
        )  # fmt: skip
        (base / ".generated").touch()
    run = base / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    stages, wall, cpu = _child(
        _CHILD, str(run / "w.duckdb"), str(landing), str(run / "out"), END.isoformat()
    )
    rows = stages["ingest"].get("rows_in") or 0
    ingest_s = stages["ingest"]["seconds"] + stages["validate"]["seconds"]
    # The child's own peak (KiB on Linux); RUSAGE_CHILDREN would include the generator.
    peak_gib = stages.pop("peak_rss_kib") / 1024**2
    load_after = os.getloadavg()[0]
    written = _sizes(run / "w.duckdb", run / "out")
    floor, floor_wall, floor_cpu = _child(_FLOOR, str(run / "floor.duckdb"), str(landing))
    shutil.rmtree(run, ignore_errors=True)
    result = {
        "benchmark": "ingest+validate",
        "scale": args.scale,
        "events_read": rows,
        "generate_seconds": gen_seconds,
        "process_seconds": round(wall, 2),
        "ingest_validate_seconds": round(ingest_s, 2),
        # DuckDB's read_json into a table, same files (see the module docstring).
        "engine_floor_seconds": round(floor["seconds"], 2),
        "ingest_over_engine_floor": round(ingest_s / floor["seconds"], 2),
        "rows_per_s": round(rows / ingest_s) if ingest_s else None,
        "peak_rss_gib": round(peak_gib, 3),
        "cpu_seconds": round(cpu, 1),
        # Cores busy on average (CPU over the process's wall time): near 2, CPU-bound.
        "cores_busy": round(cpu / wall, 2) if wall else None,
        # The machine is shared: with other work running, CPU time is the steadier figure.
        "rows_per_cpu_s": round(rows / cpu) if cpu else None,
        "load_average_1m": [round(load_before, 1), round(load_after, 1)],
        "engine_floor": {
            "process_seconds": round(floor_wall, 2),
            "cpu_seconds": round(floor_cpu, 1),
            "rows": floor["rows"],
        },
        "target": TARGET,
        # What the night leaves on disk: the warehouse, the Data Docs and the GX results.
        "written_mib": written,
        "stages": stages,
    }
    print(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
