"""What Airflow costs on top of segmint: DAG parse time and the DAG's overhead over `segmint run`.

    .venv/bin/python bench/bench_airflow.py                      # demo data (make run's)
    .venv/bin/python bench/bench_airflow.py --scale 10M          # bench/data/10M (bench/run.py)
    .venv/bin/python bench/bench_airflow.py --parse-only

1. **Parse time**: a fresh interpreter imports Airflow, then parses ``dags/`` with a
   ``DagBag``; the file's own parse time (what the DAG processor pays every
   ``min_file_process_interval``) is reported apart from the one-off Airflow import. Median
   of ``--repeat`` runs.
2. **Overhead**: the same night (same landing zone, same as-of date, a fresh warehouse each)
   run twice: ``segmint run`` (the stages in one process) and ``airflow dags test
   segmint_nightly`` (one task per stage, project-local Airflow, metadata DB already
   created). Overhead = DAG wall time - CLI wall time; the per-stage times of the DAG run come
   from ``ops.pipeline_runs``.

Results go to ``bench/results/airflow-<timestamp>.json`` and are printed as Markdown. No
pass/fail: the issue's target (parse < 2 s per file) is printed beside the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
DEMO = {"customers": 20_000, "days": 90, "end": date(2026, 6, 30)}  # as `make run`
DEMO_LANDING = ROOT / "data" / "demo" / "landing"

PARSE_PROBE = """
import json, time
t0 = time.perf_counter()
import airflow.sdk  # noqa: F401
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder={dags!r})
t2 = time.perf_counter()
stats = {{s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}
print(json.dumps({{"airflow_import_s": t1 - t0, "dagbag_s": t2 - t1, "files": stats,
                  "errors": list(bag.import_errors)}}))
"""


def parse_time(env: dict[str, str], repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PARSE_PROBE.format(dags=str(ROOT / "dags"))],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    files = sorted(runs[0]["files"])
    return {
        "repeat": repeat,
        "airflow_import_s": round(statistics.median(r["airflow_import_s"] for r in runs), 3),
        "dagbag_s": round(statistics.median(r["dagbag_s"] for r in runs), 3),
        "per_file_s": {f: round(statistics.median(r["files"][f] for r in runs), 4) for f in files},
        "import_errors": runs[0]["errors"],
        "target_per_file_s": 2.0,
    }


def ensure_landing(scale: str | None, landing: Path, as_of: date | None) -> tuple[Path, date]:
    if scale:
        sys.path.insert(0, str(ROOT / "bench"))
        import run as harness  # bench/run.py: generates bench/data/<scale> once

        data, _ = harness.ensure_data(scale)
        return Path(data), as_of or harness.END_DATE
    if not landing.exists():
        subprocess.run(
            [
                str(BIN / "segmint"),
                "generate",
                "--landing",
                str(landing),
                "--customers",
                str(DEMO["customers"]),
                "--days",
                str(DEMO["days"]),
                "--end-date",
                DEMO["end"].isoformat(),
            ],
            check=True,
        )
    return landing, as_of or DEMO["end"]


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return time.perf_counter() - started, code


def stage_times(warehouse: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select task_id, duration_s from ops.pipeline_runs where status = 'success'"
        ).fetchall()
    finally:
        con.close()
    return {task: round(seconds, 2) for task, seconds in rows}


def overhead(landing: Path, as_of: date, work: Path) -> dict:
    from segmint.airflow_env import airflow_environ, dags_test_command, ensure_ready

    base = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_", "AIRFLOW"))}
    result: dict = {"landing": str(landing), "as_of": as_of.isoformat()}
    for mode in ("cli", "dag"):
        folder = work / mode
        env = {
            **base,
            "SEGMINT_WAREHOUSE": str(folder / "warehouse" / "segmint.duckdb"),
            "SEGMINT_LANDING": str(landing),
            "SEGMINT_OUTPUT": str(folder / "output"),
            "SEGMINT_AUDIENCES": str(folder / "audiences"),
        }
        if mode == "cli":
            cmd = [str(BIN / "segmint"), "run", "--as-of", as_of.isoformat()]
        else:
            env = airflow_environ(work / "airflow_home", base=env)
            ensure_ready(env)  # one-off set-up, not part of a night
            cmd = dags_test_command(as_of.isoformat())
        wall, code = timed(cmd, env, work / f"{mode}.log")
        result[f"{mode}_wall_s"] = round(wall, 2)
        result[f"{mode}_exit_code"] = code
        if mode == "dag" and Path(env["SEGMINT_WAREHOUSE"]).exists():
            # per-stage times of the stages that succeeded (all of them when exit code is 0)
            stages = stage_times(Path(env["SEGMINT_WAREHOUSE"]))
            result["dag_stage_s"] = stages
            result["dag_outside_stages_s"] = round(wall - sum(stages.values()), 2)
    result["dag_overhead_s"] = round(result["dag_wall_s"] - result["cli_wall_s"], 2)
    return result


def markdown(report: dict) -> str:
    p = report["parse"]
    lines = [
        "## Airflow",
        "",
        f"DAG parse (median of {p['repeat']}, fresh interpreter): "
        + ", ".join(f"{Path(f).name} {s * 1000:.0f} ms" for f, s in p["per_file_s"].items())
        + f" (target < {p['target_per_file_s']:.0f} s per file); DagBag total "
        f"{p['dagbag_s']:.2f} s; importing Airflow itself {p['airflow_import_s']:.2f} s.",
    ]
    o = report.get("overhead")
    if o:
        lines += [
            "",
            f"Night {o['as_of']} on {o['landing']}:",
            "",
            "| run | wall s | exit |",
            "|---|---:|---:|",
            f"| `segmint run` | {o['cli_wall_s']} | {o['cli_exit_code']} |",
            f"| `airflow dags test segmint_nightly` | {o['dag_wall_s']} | {o['dag_exit_code']} |",
            "",
            f"DAG overhead over the CLI: **{o['dag_overhead_s']} s**.",
        ]
        if "dag_stage_s" in o:
            lines.append(
                f"Inside the DAG run the stages took {o['dag_stage_s']}; outside them "
                f"(Airflow start-up, scheduling loop, task start-up, ops rows) "
                f"{o['dag_outside_stages_s']} s."
            )
    return "\n".join(lines)


def bench(
    scale: str | None = None,
    landing: Path = DEMO_LANDING,
    as_of: date | None = None,
    repeat: int = 5,
    parse_only: bool = False,
    keep: bool = False,
) -> dict:
    """Parse time, and unless ``parse_only`` the DAG's overhead over ``segmint run``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    work = Path(tempfile.mkdtemp(prefix="segmint-bench-airflow-"))
    env["AIRFLOW_HOME"] = str(work / "parse_home")
    report: dict = {"scale": scale or "demo", "parse": parse_time(env, repeat)}
    try:
        if not parse_only:
            data, night = ensure_landing(scale, landing, as_of)
            report["overhead"] = overhead(data, night, work)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--landing", type=Path, default=DEMO_LANDING)
    parser.add_argument("--as-of", type=date.fromisoformat)
    parser.add_argument("--scale", help="a bench/run.py scale (1M, 10M, 50M) instead of demo")
    parser.add_argument("--repeat", type=int, default=5, help="parse-time repetitions")
    parser.add_argument("--parse-only", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    report = bench(args.scale, args.landing, args.as_of, args.repeat, args.parse_only, args.keep)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"airflow-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    print(f"\n(results: {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
