"""segmint benchmark harness: ``make bench [SCALE=1M|10M|50M|1M,10M]``.

For each scale on the ladder it

1. generates the landing zone once into ``bench/data/<scale>/`` (reused while the generator's
   inputs and source are unchanged);
2. measures the *parse floor*: DuckDB reading and parsing every event file once;
3. runs the nightly stages one by one, each in its own process, on a fresh warehouse for the
   day before the last partition (the full night), then the last day (the increment), and
   records per stage: wall and CPU seconds, the cores kept busy on average (CPU over wall),
   rows in/out, rows/s, peak RSS of the process tree (sampled from the OS) and the ratio to
   the parse floor;
4. computes quality figures against the generator's ground truth (segmentation ARI;
   purchase/churn AUC, AP, Brier; the baselines the score stage stored);
5. measures Airflow: the DAG file's parse time and the DAG's overhead over ``segmint run``
   for the same night, on the demo data and on every scale of 10M and up but 50M
   (``bench/bench_airflow.py``);
6. runs the component micro-benchmarks (``bench/bench_<component>.py``: generator, ingest,
   transform, segmentation, propensity, recommendations, report at their issue's scale; the
   phone normalisation of audience exports);
7. writes ``bench/results/<timestamp>.json`` and ``.md``; a run of the whole default ladder
   with every part also refreshes ``bench/BASELINE.md``, a ``SCALE=50M`` run of the ladder
   ``bench/BASELINE-50M.md``.

``--parts`` picks among ``ladder`` (steps 1-4), ``airflow`` and ``micro``; all by default.

There are no pass/fail assertions here: targets are printed beside the figures so a reviewer
sees regressions; the test suite never times anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH_DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
END_DATE = date(2026, 6, 30)
DAYS = 90

# events scale -> generator customers (about 55 events per customer over 90 days)
SCALES = {"1M": 20_000, "10M": 200_000, "50M": 1_000_000}
# The generator holds its whole world in memory (3.5 GiB at 10M events), so 50M events are
# five independently seeded 10M worlds side by side, every id prefixed by its world.
WORLDS = {"50M": 5}
# ids that must not collide between worlds (product ids stay shared: one catalogue)
TRUTH_TABLES = ("customers", "identities")
WORLD_ID_COLUMNS = ("event_id", "customer_id", "anonymous_id", "session_id", "order_id")
TARGETS = {
    "10M": {"night_s": 120, "peak_gib": 4, "increment_s": 30},
}
# The stages issue #10's whole-night target names. The night also runs recommend and publish
# (added by later issues); the report gives the total of every stage and of these.
TARGET_STAGES = ("ingest", "validate", "transform", "segment", "score", "audiences", "report")
PARTS = ("ladder", "airflow", "micro")
# bench/bench_<name>.py with their default arguments (each prints one JSON object last).
MICRO = ("generate", "ingest", "transform", "segment", "score", "recommend", "report", "phones")


@dataclass
class Measurement:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    exit_code: int
    rows_in: int | None = None
    rows_out: int | None = None
    summary: str = ""
    stderr_tail: str = ""
    extra: dict = field(default_factory=dict)
    # whole stdout, for the callers that parse it; left out of the results file
    stdout: str = field(default="", repr=False)

    @property
    def rows_per_s(self) -> float | None:
        if self.rows_in and self.wall_s > 0:
            return self.rows_in / self.wall_s
        return None


def measure(name: str, cmd: list[str], env: dict[str, str] | None = None) -> Measurement:
    """Run ``cmd``; sample the RSS of its whole process tree every 50 ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = psutil.Popen(
        cmd,
        # Without cached bytecode every stage would recompile scikit-learn, GX, dbt and
        # Airflow (seconds each): some shells set PYTHONDONTWRITEBYTECODE (the Makefile
        # unexports it too).
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    peak = 0
    cpu_seen: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                        cpu_seen[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                pass
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    # CPU of the child and every descendant it waited for, from the kernel (exact; the
    # sampled per-process times are only a fallback when rusage is unavailable).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = cpu or sum(cpu_seen.values())
    return Measurement(
        name=name,
        wall_s=round(wall, 2),
        cpu_s=round(cpu, 2),
        peak_rss_mib=round(peak / 2**20, 1),
        exit_code=proc.returncode,
        summary=stdout.strip().splitlines()[-1] if stdout.strip() else "",
        stderr_tail="\n".join(stderr.strip().splitlines()[-5:]),
        stdout=stdout,
    )


def as_dict(m: Measurement) -> dict:
    return {k: v for k, v in asdict(m).items() if k != "stdout"}


def generator_fingerprint(customers: int, fmt: str) -> str:
    digest = hashlib.sha256(f"{customers}|{DAYS}|{END_DATE}|{fmt}".encode())
    for path in sorted((ROOT / "include" / "segmint" / "generate").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def generate_command(landing: Path, customers: int, fmt: str, seed: int | None = None) -> list:
    cmd = [
        sys.executable,
        "-m",
        "segmint.cli",
        "generate",
        "--landing",
        str(landing),
        "--customers",
        str(customers),
        "--days",
        str(DAYS),
        "--end-date",
        str(END_DATE),
        "--format",
        fmt,
    ]
    return cmd + (["--seed", str(seed)] if seed is not None else [])


def merge_world(world: Path, tag: str, folder: Path) -> None:
    """Copy one generated world into ``folder`` (landing/ and ground_truth/), ids prefixed.

    A blank or missing id stays blank (it is dirt the pipeline must quarantine).
    """
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"create macro w(x) as case when x is null or trim(x) = '' then x else '{tag}-' || x end"
    )
    truth = folder / "ground_truth" / tag
    parquet = [
        (source, folder / "landing" / source.parent.relative_to(world / "landing"))
        for source in sorted((world / "landing" / "events").rglob("*.parquet"))
    ]
    parquet += [(world / "ground_truth" / f"{n}.parquet", truth) for n in TRUTH_TABLES]
    for source, target_dir in parquet:
        target = target_dir / (f"{tag}-{source.name}" if "landing" in source.parts else source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        columns = con.execute(
            "select name from parquet_schema(?) where name != 'schema'", [str(source)]
        ).fetchall()
        select = ", ".join(f"w({c}) as {c}" if c in WORLD_ID_COLUMNS else c for (c,) in columns)
        con.execute(
            f"copy (select {select} from read_parquet('{source}', hive_partitioning = false)) "
            f"to '{target}' (format parquet)"
        )
    for source in sorted((world / "landing" / "crm").rglob("*.csv")):
        target = folder / "landing" / source.relative_to(world / "landing")
        target = target.with_name(f"{tag}-{target.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        header, *rows = source.read_text().splitlines(keepends=True)
        # customer_id is the first field; a row without one keeps it empty
        prefixed = [r if r[:1] in ("", ",", '"', "\n") else f"{tag}-{r}" for r in rows]
        target.write_text(header + "".join(prefixed))
    con.close()


def ensure_data(scale: str) -> tuple[Path, Measurement | None]:
    customers = SCALES[scale]
    fmt = "parquet" if scale == "50M" else "jsonl.gz"
    folder = BENCH_DATA / scale
    stamp = folder / ".fingerprint"
    fingerprint = generator_fingerprint(customers, fmt) + str(WORLDS.get(scale, 1))
    if stamp.exists() and stamp.read_text() == fingerprint:
        return folder / "landing", None
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    worlds = WORLDS.get(scale, 1)
    if worlds == 1:
        m = measure(f"generate {scale}", generate_command(folder / "landing", customers, fmt))
        if m.exit_code != 0:
            raise SystemExit(f"generator failed: {m.stderr_tail}")
    else:
        m = Measurement(f"generate {scale} ({worlds} worlds)", 0.0, 0.0, 0.0, 0)
        for k in range(worlds):
            world = folder / "worlds" / f"w{k}"
            part = measure(
                f"generate {scale} world {k}",
                generate_command(world / "landing", customers // worlds, fmt, seed=7 + k),
            )
            if part.exit_code != 0:
                raise SystemExit(f"generator failed: {part.stderr_tail}")
            started = time.perf_counter()
            merge_world(world, f"W{k}", folder)
            subprocess.run(["rm", "-rf", str(world)], check=True)
            m.wall_s = round(m.wall_s + part.wall_s + time.perf_counter() - started, 2)
            m.cpu_s = round(m.cpu_s + part.cpu_s, 2)
            m.peak_rss_mib = max(m.peak_rss_mib, part.peak_rss_mib)
            print(f"  world {k}: {part.wall_s}s, peak {part.peak_rss_mib} MiB", flush=True)
    stamp.write_text(fingerprint)
    return folder / "landing", m


def parse_floor(landing: Path) -> Measurement:
    script = (
        "import duckdb, sys, glob\n"
        "root = sys.argv[1]\n"
        "con = duckdb.connect()\n"
        "files = sorted(glob.glob(root + '/events/*/*'))\n"
        "js = [f for f in files if '.jsonl' in f]\n"
        "pq = [f for f in files if f.endswith('.parquet')]\n"
        "n = 0\n"
        'if js: n += con.execute("SELECT count(json_valid(line)) FROM read_csv(?, '
        "columns={'line': 'VARCHAR'}, delim=chr(1), quote='', escape='', header=false)\", "
        "[js]).fetchone()[0]\n"
        # every column decoded (a bare count(*) would read only the Parquet metadata)
        "if pq: n += con.execute('SELECT count(*) FROM read_parquet(?, hive_partitioning=false) "
        "WHERE hash(COLUMNS(*)) IS NOT NULL', [pq]).fetchone()[0]\n"
        "print(n)\n"
    )
    m = measure("parse floor", [sys.executable, "-c", script, str(landing)])
    m.rows_in = int(m.summary) if m.summary.isdigit() else None
    return m


def run_stages(landing: Path, warehouse: Path, output: Path, as_of: date, label: str) -> list:
    from segmint.pipeline import STAGES

    results = []
    results_file = warehouse.parent / f"results-{as_of}.jsonl"
    env = {
        "SEGMINT_WAREHOUSE": str(warehouse),
        "SEGMINT_LANDING": str(landing),
        "SEGMINT_OUTPUT": str(output),
        "SEGMINT_RESULTS_FILE": str(results_file),
    }
    for stage in STAGES:
        before = results_file.read_text().count("\n") if results_file.exists() else 0
        m = measure(
            f"{label}:{stage}",
            [sys.executable, "-m", "segmint.cli", "run", "--stages", stage, "--as-of", str(as_of)],
            env,
        )
        if results_file.exists():
            lines = results_file.read_text().splitlines()[before:]
            if lines:
                record = json.loads(lines[-1])
                m.rows_in, m.rows_out = record["rows_in"], record["rows_out"]
                m.extra = {"warnings": record.get("warnings", [])}
        results.append(m)
        print(
            f"  {m.name:<22} {m.wall_s:>8.2f}s  cpu {m.cpu_s:>8.2f}s  "
            f"peak {m.peak_rss_mib:>8.1f} MiB  exit {m.exit_code}",
            flush=True,
        )
        if m.exit_code != 0:
            print(f"    {m.stderr_tail}")
            break
    return results


def quality(warehouse: Path, truth_dir: Path, as_of: date) -> dict:
    """Segmentation ARI and propensity AUC/AP/Brier against the generator's ground truth."""
    import duckdb
    from sklearn.metrics import (
        adjusted_rand_score,
        average_precision_score,
        brier_score_loss,
        roc_auc_score,
    )

    truth_files = sorted(truth_dir.rglob("customers.parquet"))  # one per world at 50M
    if not truth_files:
        return {"error": f"no ground truth under {truth_dir}"}
    con = duckdb.connect(str(warehouse), read_only=True)
    out: dict = {}
    try:
        # DDL cannot take prepared parameters
        quoted = ", ".join("'" + str(f).replace("'", "''") + "'" for f in truth_files)
        con.execute(f"CREATE TEMP VIEW truth AS SELECT * FROM read_parquet([{quoted}])")
        seg = con.execute(
            "SELECT t.latent_type, s.segment_id FROM ml.customer_segments s "
            "JOIN truth t USING (customer_id) WHERE s.as_of_date = ?",
            [as_of],
        ).df()
        if len(seg):
            out["segmentation_ari"] = round(
                adjusted_rand_score(seg["latent_type"], seg["segment_id"]), 4
            )
        scores = con.execute(
            "SELECT p.model_name, p.score, t.purchases_next_30d, t.visits_next_30d "
            "FROM ml.propensity_scores p JOIN truth t USING (customer_id) "
            "WHERE p.as_of_date = ?",
            [as_of],
        ).df()
        for model, frame in scores.groupby("model_name"):
            if model == "purchase":
                y = (frame["purchases_next_30d"] > 0).astype(int)
            else:
                y = (frame["purchases_next_30d"] == 0) & (frame["visits_next_30d"] == 0)
                y = y.astype(int)
            if y.nunique() == 2:
                out[f"{model}_vs_truth"] = {
                    "auc": round(roc_auc_score(y, frame["score"]), 4),
                    "ap": round(average_precision_score(y, frame["score"]), 4),
                    "brier": round(brier_score_loss(y, frame["score"]), 4),
                    "n": len(frame),
                }
        # holdout metrics of the model that scored the night: the latest training on or
        # before it (a model is retrained on a cadence, not every night)
        metrics = con.execute(
            "SELECT model_name, as_of_date, scorer, metric, value FROM ml.model_metrics m "
            "WHERE metric IN ('roc_auc', 'average_precision', 'brier') AND as_of_date = ("
            "  SELECT max(as_of_date) FROM ml.model_metrics x "
            "  WHERE x.model_name = m.model_name AND x.as_of_date <= ?)",
            [as_of],
        ).fetchall()
        for model_name, trained, scorer, metric, value in metrics:
            holdout = out.setdefault(f"{model_name}_holdout", {"trained_as_of": str(trained)})
            holdout.setdefault(scorer, {})[metric] = value
    except duckdb.Error as exc:
        out["error"] = str(exc).splitlines()[0]
    finally:
        con.close()
    return out


def machine() -> dict:
    import duckdb
    import sklearn

    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "scikit-learn": sklearn.__version__,
        "git": rev,
    }


def bench_scale(scale: str) -> dict:
    print(f"== scale {scale}", flush=True)
    landing, gen = ensure_data(scale)
    floor = parse_floor(landing)
    print(f"  parse floor: {floor.wall_s}s for {floor.rows_in} lines", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"segmint-bench-{scale}-") as tmp:
        warehouse = Path(tmp) / "warehouse" / "segmint.duckdb"
        output = Path(tmp) / "output"
        night = run_stages(landing, warehouse, output, END_DATE - timedelta(days=1), "night")
        increment = run_stages(landing, warehouse, output, END_DATE, "increment")
        scores = quality(warehouse, landing.parent / "ground_truth", END_DATE)
    report = {
        "scale": scale,
        "parse_floor": as_dict(floor),
        "generate": as_dict(gen) if gen else "reused",
        "night": [as_dict(m) | {"rows_per_s": m.rows_per_s} for m in night],
        "increment": [as_dict(m) | {"rows_per_s": m.rows_per_s} for m in increment],
        "quality": scores,
    }
    add_totals(report, floor.wall_s)
    return report


def add_totals(report: dict, floor_s: float | None) -> None:
    """Per part (night, increment): total wall seconds of every stage and of the stages the
    target names, peak memory, and each stage's ratio to the parse floor.

    Also the cores a stage kept busy on average (CPU over wall seconds, its processes'
    CPU): near the machine's core count, a stage is CPU-bound and gets faster only by doing
    less work; well below, it waits (one thread working, start-up, I/O) and overlapping its
    steps could help."""
    for part in ("night", "increment"):
        rows = report[part]
        report[f"{part}_total_s"] = round(sum(r["wall_s"] for r in rows), 2)
        report[f"{part}_cores_busy"] = _busy(rows)
        report[f"{part}_target_stages_s"] = round(
            sum(r["wall_s"] for r in rows if r["name"].split(":")[1] in TARGET_STAGES), 2
        )
        report[f"{part}_peak_mib"] = max((r["peak_rss_mib"] for r in rows), default=0)
        for r in rows:
            r["x_parse_floor"] = round(r["wall_s"] / floor_s, 2) if floor_s else None
            r["cores_busy"] = _busy([r])


def _busy(rows: list[dict]) -> float | None:
    wall = sum(r["wall_s"] for r in rows)
    return round(sum(r["cpu_s"] for r in rows) / wall, 2) if wall else None


def last_json(text: str) -> dict | None:
    """The last JSON object printed on stdout (a benchmark may print progress before it)."""
    decoder = json.JSONDecoder()
    starts = [i for i, line in enumerate(text.splitlines()) if line.startswith("{")]
    lines = text.splitlines()
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode("\n".join(lines[start:]))
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def bench_micro(name: str) -> dict:
    script = ROOT / "bench" / f"bench_{name}.py"
    print(f"== micro-benchmark {script.name}", flush=True)
    m = measure(f"micro:{name}", [sys.executable, str(script)])
    result = last_json(m.stdout) if m.exit_code == 0 else None
    print(f"  {m.wall_s:.1f}s, peak {m.peak_rss_mib:.0f} MiB, exit {m.exit_code}", flush=True)
    return {"name": name, "measurement": as_dict(m), "result": result}


def bench_airflow(scales: list[str]) -> list[dict]:
    import bench_airflow as airflow_bench  # bench/ is on sys.path when this runs as a script

    reports = []
    for scale in [None] + [s for s in scales if s not in ("1M", "50M")]:
        print(f"== airflow overhead on {scale or 'the demo data'}", flush=True)
        report = airflow_bench.bench(scale=scale)
        print(airflow_bench.markdown(report), flush=True)
        reports.append(report)
    return reports


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# segmint benchmark",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"DuckDB {m['duckdb']}, scikit-learn {m['scikit-learn']}, git {m['git']}.",
        "",
    ]
    for rep in results["scales"]:
        floor = rep["parse_floor"]
        lines += [
            f"## {rep['scale']} events",
            "",
            f"Parse floor (DuckDB reads and parses every event file once): "
            f"{floor['wall_s']} s for {floor['rows_in']} lines.",
            "",
        ]
        if isinstance(rep["generate"], dict):
            g = rep["generate"]
            lines += [f"Generator: {g['wall_s']} s, peak {g['peak_rss_mib']} MiB.", ""]
        for part in ("night", "increment"):
            lines += [
                f"### {part}: {rep[f'{part}_total_s']} s, peak {rep[f'{part}_peak_mib']} MiB, "
                f"{rep.get(f'{part}_cores_busy')} of {m['cores']} cores busy on average",
                "",
                "| stage | wall s | cpu s | cores busy | rows in | rows out | rows/s | peak MiB "
                "| x floor | exit |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for r in rep[part]:
                rps = f"{r['rows_per_s']:,.0f}" if r["rows_per_s"] else ""
                lines.append(
                    f"| {r['name'].split(':')[1]} | {r['wall_s']} | {r['cpu_s']} | "
                    f"{r.get('cores_busy', '')} | "
                    f"{r['rows_in'] if r['rows_in'] is not None else ''} | "
                    f"{r['rows_out'] if r['rows_out'] is not None else ''} | {rps} | "
                    f"{r['peak_rss_mib']} | {r['x_parse_floor']} | {r['exit_code']} |"
                )
            lines.append("")
        lines += [
            "### quality against ground truth",
            "",
            "```json",
            json.dumps(rep["quality"], indent=2),
            "```",
            "",
        ]
        if rep["scale"] in TARGETS:
            t = TARGETS[rep["scale"]]
            lines += [
                f"Targets: night < {t['night_s']} s (got {rep['night_total_s']} for every "
                f"stage; {rep['night_target_stages_s']} for {', '.join(TARGET_STAGES)}, the "
                f"stages the target names), peak < {t['peak_gib']} GiB (got "
                f"{rep['night_peak_mib'] / 1024:.2f}), increment < {t['increment_s']} s (got "
                f"{rep['increment_total_s']} for every stage; "
                f"{rep['increment_target_stages_s']} for the stages the target names).",
                "",
            ]
    totals = {r["scale"]: r["night_total_s"] for r in results["scales"]}
    if "1M" in totals and "10M" in totals and totals["1M"]:
        lines += [
            f"Scaling: whole night 10M/1M = {totals['10M'] / totals['1M']:.2f} "
            "(target: at most 10).",
            "",
        ]
    if results.get("airflow"):
        import bench_airflow as airflow_bench

        lines += ["# Airflow", ""]
        for report in results["airflow"]:
            section = airflow_bench.markdown(report).replace("## Airflow", "")
            lines += [f"## {report['scale']}", section.strip(), ""]
    if results.get("micro"):
        lines += [
            "# Micro-benchmarks (`bench/bench_<name>.py`, default arguments)",
            "",
            "| benchmark | wall s | peak MiB (tree) | exit | result |",
            "|---|---|---|---|---|",
        ]
        for item in results["micro"]:
            m = item["measurement"]
            result = json.dumps(item["result"], default=str) if item["result"] else ""
            if len(result) > 400:
                result = result[:400] + " ..."
            lines.append(
                f"| {item['name']} | {m['wall_s']} | {m['peak_rss_mib']} | {m['exit_code']} "
                f"| `{result}` |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1M,10M", help="comma-separated: 1M, 10M, 50M")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}"
    )
    args = parser.parse_args(argv)
    scales = [s.strip() for s in args.scale.split(",") if s.strip()]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [s for s in scales if s not in SCALES] + [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown scale(s) or part(s) {unknown}: scales {list(SCALES)}, parts {PARTS}")
    results = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scales": [bench_scale(s) for s in scales] if "ladder" in parts else [],
        "airflow": bench_airflow(scales) if "airflow" in parts else [],
        "micro": [bench_micro(name) for name in MICRO] if "micro" in parts else [],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(results)
    (RESULTS / f"{stamp}.md").write_text(text)
    if set(scales) >= {"1M", "10M"} and set(parts) == set(PARTS):
        (ROOT / "bench" / "BASELINE.md").write_text(text)
    elif scales == ["50M"] and "ladder" in parts:
        # The 50M run takes most of an hour: it is run on request and kept on its own.
        (ROOT / "bench" / "BASELINE-50M.md").write_text(text)
    else:
        print("(a partial run: bench/BASELINE.md is left as it was)")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
