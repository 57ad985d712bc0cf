"""``make run``: the whole night through Airflow on the demo data, then a summary.

1. sets up the project-local Airflow (:mod:`segmint.airflow_env`: ``.airflow/``, SQLite,
   created on first use);
2. runs ``airflow dags test segmint_nightly DATE`` (the DAG's as-of date is DATE), writing
   Airflow's full output to ``.airflow/logs/make-run-DATE.log`` and echoing segmint's own
   progress lines;
3. prints a summary read from the *published* warehouse, the file analysts open: rows loaded
   and quarantined, segments with their sizes, the top propensity deciles, and where the
   report, exports, published warehouse and Data Docs are. A table that an unfinished stage
   has not produced yet is reported as missing, not as a crash.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from segmint.config import ConfigError, Settings, load_settings

# segmint.ops logs "segmint: stage ..." lines; Airflow adds a timestamp, level and logger.
PROGRESS = re.compile(r"(segmint: (?:stage|run) .*?)\s+\[segmint\.ops\]")


def _table_exists(con, qualified: str) -> bool:
    from segmint.warehouse import table_exists

    return table_exists(con, qualified)


def _columns(con, qualified: str) -> set[str]:
    schema, name = qualified.split(".", 1)
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
    }


def _missing(table: str) -> str:
    return f"  (no {table} yet: its stage has not produced it)"


def summary_lines(published: Path, settings: Settings, as_of: date) -> list[str]:
    """The summary, read from the published warehouse only."""
    import duckdb

    lines = [f"segmint night {as_of}: summary from the published warehouse {published}"]
    if not published.exists():
        return [*lines, "  no published warehouse: the night did not publish"]
    con = duckdb.connect(str(published), read_only=True)
    try:
        if _table_exists(con, "ops.publication"):
            stamp = con.execute("SELECT as_of_date, published_at FROM ops.publication").fetchone()
            lines.append(f"  published as of {stamp[0]} at {stamp[1]:%Y-%m-%d %H:%M:%S} UTC")
            if stamp[0] != as_of:
                # A later night published first (unpausing the DAG runs yesterday's): this
                # one was refused, and the lines below are its rows in that copy's history.
                lines.append(
                    f"  {as_of} is not the night published: readers have {stamp[0]} (the "
                    f"publish stage says why); below, {as_of}'s rows in that copy"
                )
        lines += _load_lines(con, as_of)
        lines += _segment_lines(con, as_of)
        lines += _decile_lines(con, as_of)
    finally:
        con.close()
    lines += _where_lines(published, settings, as_of)
    return lines


def _load_lines(con, as_of: date) -> list[str]:
    lines = ["Rows loaded / quarantined:"]
    if _table_exists(con, "ops.load_manifest"):
        rows = con.execute(
            """
            select
                coalesce(sum(rows_loaded), 0),
                coalesce(sum(rows_quarantined), 0),
                coalesce(sum(rows_loaded) filter (where partition_date = ?), 0),
                coalesce(sum(rows_quarantined) filter (where partition_date = ?), 0),
                count(*) filter (where status = 'failed'),
            from ops.load_manifest
            """,
            [as_of, as_of],
        ).fetchone()
        lines.append(
            f"  all partitions: {rows[0]:,} loaded, {rows[1]:,} quarantined; "
            f"partition {as_of}: {rows[2]:,} loaded, {rows[3]:,} quarantined"
            + (f"; {rows[4]} file(s) failed to load" if rows[4] else "")
        )
    else:
        for table in ("raw.events", "raw.customers", "ops.quarantine"):
            if _table_exists(con, table):
                n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                lines.append(f"  {table}: {n:,} rows")
        if len(lines) == 1:
            lines.append(_missing("ops.load_manifest"))
    return lines


def _segment_lines(con, as_of: date) -> list[str]:
    lines = [f"Segments ({as_of}):"]
    table = "ml.customer_segments"
    if not _table_exists(con, table):
        return [*lines, _missing(table)]
    name = "segment_name" if "segment_name" in _columns(con, table) else "segment_id"
    rows = con.execute(
        f"""
        select {name}, count(*) as customers
        from {table}
        where as_of_date = ?
        group by all
        order by customers desc
        """,
        [as_of],
    ).fetchall()
    total = sum(r[1] for r in rows) or 1
    lines += [f"  {r[0]!s:<32} {r[1]:>8,}  {100 * r[1] / total:5.1f}%" for r in rows]
    return lines if rows else [*lines, "  (no rows for this date)"]


def _decile_lines(con, as_of: date, top: int = 3) -> list[str]:
    lines = [f"Top propensity deciles ({as_of}):"]
    table = "ml.propensity_scores"
    if not _table_exists(con, table):
        return [*lines, _missing(table)]
    cols = _columns(con, table)
    if not {"score", "decile"} <= cols:
        return [*lines, f"  ({table} has no score/decile columns)"]
    model = "model_name" if "model_name" in cols else "'score'"
    rows = con.execute(
        f"""
        with by_decile as (
            select
                {model} as model_name,
                decile,
                count(*) as customers,
                avg(score) as mean_score,
                min(score) as min_score,
            from {table}
            where as_of_date = ?
            group by all
        )
        select model_name, decile, customers, mean_score, min_score
        from by_decile
        qualify row_number() over (partition by model_name order by mean_score desc) <= ?
        order by model_name, mean_score desc
        """,
        [as_of, top],
    ).fetchall()
    lines += [
        f"  {r[0]:<12} decile {r[1]:>2}: {r[2]:>7,} customers, mean score {r[3]:.3f} "
        f"(from {r[4]:.3f})"
        for r in rows
    ]
    if rows and "ranked_by" in cols:
        # No model published: a baseline rule ranked the model's customers, and its score is
        # a rank (the share ranked below), which read here as a 0.94 chance of buying.
        ruled = con.execute(
            f"select model_name, any_value(ranked_by) from {table} where as_of_date = ? "
            "and coalesce(ranked_by, 'model') <> 'model' group by 1 order by 1",
            [as_of],
        ).fetchall()
        lines += [
            f"  ({name}: no model published; ranked by the rule {rule}, the score is the share "
            "of customers it ranks below, not a probability)"
            for name, rule in ruled
        ]
    if rows:
        return lines
    return [*lines, "  (no scores for this date)", *_withheld_models(con, as_of)]


def _withheld_models(con, as_of: date) -> list[str]:
    """Why a model published no scores: its ``ml.model_runs`` message, when recorded."""
    if not _table_exists(con, "ml.model_runs"):
        return []
    rows = con.execute(
        """
        select model_name, status, message
        from ml.model_runs
        where as_of_date = ? and status <> 'published'
        qualify row_number() over (partition by model_name order by created_at desc) = 1
        order by model_name
        """,
        [as_of],
    ).fetchall()
    return [f"  {name}: {status}: {message}" for name, status, message in rows]


def _where_lines(published: Path, settings: Settings, as_of: date) -> list[str]:
    out = settings.run_output_dir(as_of)

    def show(label: str, path: Path | None) -> str:
        if path is not None and path.exists():
            return f"  {label:<20} {path.resolve()}"
        return f"  {label:<20} (not produced yet)"

    reports = sorted(out.glob("report*.html")) if out.is_dir() else []
    report = reports[0] if reports else None
    # Great Expectations writes its site's index here (segmint.validation). Any index.html
    # under the night's folder was taken: `segmint docs` writes the dbt docs page to
    # dbt_docs/index.html, shown as "GX Data Docs" once data_docs/ was pruned.
    docs = out / "data_docs" / "index.html"
    exports: Path | None = out / "audiences"  # written by the audiences stage
    if not exports.is_dir() or not any(exports.iterdir()):
        exports = None
    return [
        "Where things are:",
        show("published warehouse", published),
        show("analysts' copy", settings.analyst_warehouse),
        show("report", report),
        show("audience exports", exports),
        show("GX Data Docs", docs),
        show("run outputs", out),
        f"  {'analysts connect':<20} {analyst_query_command(settings.analyst_warehouse)}",
        f"  {'table docs':<20} .venv/bin/segmint docs   (every table and column, one HTML page)",
    ]


def analyst_query_command(analyst_copy: Path) -> str:
    """A shell command that opens the analysts' copy read-only and shows a few rows, with the
    DuckDB package of ``.venv/`` (run from the project folder, as ``make run`` is).

    It said ``duckdb -readonly FILE``, the DuckDB command-line client, which ``make`` does
    not install: on a fresh machine the summary's one command to try said "command not
    found". The path is quoted for the shell and for Python (a folder with a space)."""
    code = (
        f"import duckdb; print(duckdb.connect({str(analyst_copy)!r}, read_only=True)"
        ".sql('from marts.customer_features limit 5'))"
    )
    quoted = f'"{code}"' if not set(code) & set('"$`\\!') else shlex.quote(code)
    return f".venv/bin/python -c {quoted}"


def run_dag(as_of: date, log_path: Path, env: dict[str, str]) -> int:
    """``airflow dags test`` with Airflow's output to ``log_path``; progress to stdout."""
    from segmint.airflow_env import dags_test_command

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            dags_test_command(as_of.isoformat()),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log_file.write(line)
            match = PROGRESS.search(line)
            if match:
                print(f"  {match.group(1)}", flush=True)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segmint.demo",
        description="Run the nightly DAG through `airflow dags test` and print a summary.",
    )
    parser.add_argument("--as-of", required=True, type=date.fromisoformat, metavar="DATE")
    parser.add_argument("--no-run", action="store_true", help="only print the summary")
    args = parser.parse_args(argv)

    from segmint.airflow_env import airflow_environ, ensure_ready

    try:  # `make run` with a broken segmint.toml: one line, not a traceback
        settings = load_settings()
    except ConfigError as exc:
        print(f"make run: error: {exc}", file=sys.stderr)
        return 2
    env = airflow_environ()
    if not args.no_run:
        home = ensure_ready(env)
        log_path = home / "logs" / f"make-run-{args.as_of}.log"
        print(f"Running DAG segmint_nightly for as_of={args.as_of} (airflow dags test)")
        print(f"  Airflow output: {log_path}")
        started = time.perf_counter()
        code = run_dag(args.as_of, log_path, env)
        took = time.perf_counter() - started
        if code != 0:
            print(
                f"\nThe night FAILED after {took:.0f} s. The lines above name the stage and the "
                f"error; Airflow's full output is in {log_path}. The published warehouse "
                f"{settings.published_warehouse} still holds the last good night.",
                file=sys.stderr,
            )
            return code
        print(f"DAG run succeeded in {took:.0f} s.\n")
    for line in summary_lines(settings.published_warehouse, settings, args.as_of):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
