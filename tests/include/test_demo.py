"""The `make run` summary: read from the published warehouse, tolerant of missing tables."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from segmint.config import Settings
from segmint.demo import summary_lines
from segmint.publish import publish
from segmint.warehouse import connect, ensure_raw_tables

AS_OF = date(2026, 6, 30)


def _transformed(con: duckdb.DuckDBPyConnection) -> None:
    """The night's features, as its transform stage leaves them: publish refuses a warehouse
    on which transform never ran."""
    con.execute("create schema if not exists marts")
    con.execute(
        "create table marts.customer_features as select 'c0' as customer_id, "
        f"DATE '{AS_OF}' as as_of_date"
    )


def _published(folder: Path, out: Path) -> Settings:
    """A warehouse in ``folder`` holding a transformed night, published: what the summary
    reads after `make run`."""
    settings = Settings(warehouse=folder / "segmint.duckdb", output=out)
    con = connect(settings.warehouse)
    ensure_raw_tables(con)
    _transformed(con)
    con.close()
    publish(settings, AS_OF)
    return settings


def test_summary_of_a_night_before_any_ml_stage_ran(tmp_path: Path) -> None:
    settings = _published(tmp_path / "wh", tmp_path / "out")

    text = "\n".join(summary_lines(settings.published_warehouse, settings, AS_OF))

    assert f"published as of {AS_OF}" in text
    assert "raw.events: 0 rows" in text
    assert "(no ml.customer_segments yet" in text
    assert "(no ml.propensity_scores yet" in text
    assert "report               (not produced yet)" in text
    assert "analysts connect     .venv/bin/python -c " in text


def test_the_summary_command_for_analysts_runs_as_printed(tmp_path: Path) -> None:
    """The summary told analysts to connect with `duckdb -readonly FILE`, the DuckDB client,
    which `make` does not install: "command not found" after `make run` on a fresh machine.
    The line it prints now runs in a shell from the project folder, as printed, also when
    the warehouse's folder holds a space and a quote."""
    folder = tmp_path / "Bob's night" / "wh"
    settings = _published(folder, tmp_path / "out")
    lines = summary_lines(settings.published_warehouse, settings, AS_OF)
    (line,) = [line for line in lines if line.startswith("  analysts connect")]
    command = line.removeprefix("  analysts connect").strip()
    project = Path(__file__).resolve().parents[2]
    ran = subprocess.run(
        ["bash", "-c", command], cwd=project, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert "customer_id" in ran.stdout and "c0" in ran.stdout, ran.stdout


def test_summary_of_a_full_night(tmp_path: Path) -> None:
    settings = Settings(
        warehouse=tmp_path / "wh" / "segmint.duckdb",
        output=tmp_path / "out",
        audiences=tmp_path / "audiences",
    )
    con = connect(settings.warehouse)
    _transformed(con)
    con.execute(
        "create table ml.customer_segments as select 'c' || range as customer_id, "
        "DATE '2026-06-30' as as_of_date, "
        "case when range < 60 then 'Loyal big spenders' else 'Lapsed' end as segment_name "
        "from range(100)"
    )
    con.execute(
        "create table ml.propensity_scores as select 'c' || range as customer_id, "
        "DATE '2026-06-30' as as_of_date, m as model_name, range / 100 as score, "
        "1 + range // 10 as decile, "
        # no purchase model published: the recency rule ranked (docs/propensity.md)
        "case m when 'purchase' then 'baseline_recency' else 'model' end as ranked_by "
        "from range(100), (values ('purchase'), ('churn')) t(m)"
    )
    con.close()
    publish(settings, AS_OF)
    # The load figures the summary reads, as the published copy of a night would hold them
    # (written into the copy: publish refuses a night with a file that failed to load).
    con = duckdb.connect(str(settings.published_warehouse))
    con.execute(
        "create table ops.load_manifest as select * from (values "
        "('events/dt=2026-06-30/a.jsonl', DATE '2026-06-30', 900, 10, 'loaded'), "
        "('events/dt=2026-06-29/a.jsonl', DATE '2026-06-29', 1000, 0, 'loaded'), "
        "('events/dt=2026-06-29/b.jsonl', DATE '2026-06-29', 0, 0, 'failed')) "
        "t(path, partition_date, rows_loaded, rows_quarantined, status)"
    )
    con.close()
    report = settings.run_output_dir(AS_OF) / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    docs = settings.run_output_dir(AS_OF) / "data_docs" / "index.html"
    docs.parent.mkdir()
    docs.write_text("<html></html>")

    lines = summary_lines(settings.published_warehouse, settings, AS_OF)
    text = "\n".join(lines)

    assert "all partitions: 1,900 loaded, 10 quarantined; partition 2026-06-30: 900 loaded" in text
    assert "1 file(s) failed to load" in text
    assert any(line.split()[:4] == ["Loyal", "big", "spenders", "60"] for line in lines)
    top = [line for line in lines if " decile " in line]
    assert len(top) == 6  # three per model
    assert top[0].split()[:3] == ["churn", "decile", "10:"]
    # The rule's score is a rank, said so (it read as a 0.94 chance of buying).
    assert (
        "  (purchase: no model published; ranked by the rule baseline_recency, the score is "
        "the share of customers it ranks below, not a probability)"
    ) in lines
    assert not [line for line in lines if line.startswith("  (churn: no model")]
    assert str(report.resolve()) in text
    assert str(docs.resolve()) in text
    assert "audience exports     (not produced yet)" in text


def test_summary_does_not_show_the_dbt_docs_page_as_the_data_docs(tmp_path: Path) -> None:
    """`segmint docs` (the summary's last line) writes <output>/<night>/dbt_docs/index.html;
    the summary took any index.html under the night's folder for the GX Data Docs, so with
    data_docs/ pruned (a later night published, [outputs] keep_nights) it showed the dbt
    docs page as "GX Data Docs"."""
    settings = _published(tmp_path / "wh", tmp_path / "out")
    dbt_docs = settings.run_output_dir(AS_OF) / "dbt_docs" / "index.html"
    dbt_docs.parent.mkdir(parents=True)
    dbt_docs.write_text("<html></html>")

    lines = summary_lines(settings.published_warehouse, settings, AS_OF)
    assert "  GX Data Docs         (not produced yet)" in lines

    data_docs = settings.run_output_dir(AS_OF) / "data_docs" / "index.html"
    (data_docs.parent / "validations" / "events").mkdir(parents=True)
    (data_docs.parent / "validations" / "events" / "index.html").write_text("<html></html>")
    data_docs.write_text("<html></html>")
    lines = summary_lines(settings.published_warehouse, settings, AS_OF)
    assert f"  GX Data Docs         {data_docs.resolve()}" in lines


def test_summary_says_when_a_later_night_is_the_one_published(tmp_path: Path) -> None:
    """After the DAG was unpaused on the demo data (its scheduled night of yesterday
    published), `make run` for 2026-06-30 was not published, and the summary "from the
    published warehouse" showed that night's figures under "published as of <yesterday>"
    without a word that the copy is another night."""
    settings = Settings(warehouse=tmp_path / "wh" / "segmint.duckdb", output=tmp_path / "out")
    con = connect(settings.warehouse)
    ensure_raw_tables(con)
    _transformed(con)
    con.execute("insert into marts.customer_features values ('c0', DATE '2026-12-06')")
    con.close()
    publish(settings, date(2026, 12, 6))

    lines = summary_lines(settings.published_warehouse, settings, AS_OF)
    assert lines[1].startswith("  published as of 2026-12-06 at ")
    assert lines[2] == (
        f"  {AS_OF} is not the night published: readers have 2026-12-06 (the publish stage "
        f"says why); below, {AS_OF}'s rows in that copy"
    )
    same = summary_lines(settings.published_warehouse, settings, date(2026, 12, 6))
    assert "is not the night published" not in "\n".join(same)


def test_a_broken_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "segmint.toml"
    config.write_text("[ingest]\nmax_quarantine_shar = 0.1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "segmint.demo", "--as-of", "2026-06-30", "--no-run"],
        env={**os.environ, "SEGMINT_CONFIG": str(config)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"make run: error: {config} [ingest]: unknown key(s) max_quarantine_shar; known: "
        + proc.stderr.split("; known: ", 1)[1].strip()
    ]


def test_make_generates_the_demo_data_over_a_generation_cut_short(tmp_path: Path) -> None:
    """`make run` interrupted while generating (Ctrl-C) left a landing zone without the
    stamp, and every later `make run` failed: the generator never writes into a landing zone
    that is not empty. The Makefile now generates beside the folder and moves it into place."""
    demo = tmp_path / "demo"
    half = demo / "landing" / "events" / "dt=2026-06-29" / "events_00.jsonl"
    half.parent.mkdir(parents=True)
    half.write_text('{"event_id": "e1", "event_ty')
    root = Path(__file__).resolve().parents[2]
    made = subprocess.run(
        [
            "make",
            "-C",
            str(root),
            f"DEMO_DIR={demo}",
            "DEMO_CUSTOMERS=50",
            "DEMO_DAYS=3",
            f"{demo}/.generated",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert (demo / ".generated").is_file()
    partitions = sorted(p.name for p in (demo / "landing" / "events").iterdir())
    assert partitions == ["dt=2026-06-28", "dt=2026-06-29", "dt=2026-06-30"]
    assert not half.exists(), "the half-written file is gone with its landing zone"
    assert (demo / "ground_truth").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], "no scratch folder left"
    # The generator names the scratch folder, gone once moved: a line after it names the real one.
    assert (
        f"demo data moved into place (the lines above name {demo}.partial): landing zone "
        f"{demo}/landing, ground truth {demo}/ground_truth"
    ) in made.stdout.splitlines()


def test_make_generates_the_demo_data_again_for_other_values(tmp_path: Path) -> None:
    """`make run DEMO_CUSTOMERS=...` after a first `make run` ran on the first demo data
    without a word: the stamp said "generated" whatever the values. The stamp now holds the
    generator's arguments; other values generate again, except into a demo warehouse that
    holds nights of the old data, where make stops and says to `make clean` first."""
    demo, warehouse = tmp_path / "demo", tmp_path / "warehouse" / "segmint.duckdb"
    root = Path(__file__).resolve().parents[2]

    make_demo = ["make", "-C", str(root), f"DEMO_DIR={demo}", "DEMO_CUSTOMERS=40"]

    def make(days: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*make_demo, f"DEMO_DAYS={days}", f"{demo}/.generated"],
            env={**os.environ, "SEGMINT_WAREHOUSE": str(warehouse)},
            capture_output=True,
            text=True,
            check=False,
        )

    def partitions() -> list[str]:
        return sorted(p.name for p in (demo / "landing" / "events").iterdir())

    first = make(3)
    assert first.returncode == 0, first.stdout + first.stderr
    assert partitions() == ["dt=2026-06-28", "dt=2026-06-29", "dt=2026-06-30"]
    again = make(3)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "segmint generate" not in again.stdout, "the same values generate nothing"

    other = make(2)
    assert other.returncode == 0, other.stdout + other.stderr
    assert partitions() == ["dt=2026-06-29", "dt=2026-06-30"]
    assert (demo / ".generated").read_text() == "--customers 40 --days 2 --end-date 2026-06-30\n"

    warehouse.parent.mkdir()
    warehouse.write_bytes(b"nights of the 2-day data")
    refused = make(3)
    assert refused.returncode != 0
    assert (
        "make run: the demo data was generated with '--customers 40 --days 2 --end-date "
        f"2026-06-30', not '--customers 40 --days 3 --end-date 2026-06-30', and the warehouse "
        f"{warehouse} holds nights of it. Run 'make clean' first"
    ) in refused.stderr
    assert partitions() == ["dt=2026-06-29", "dt=2026-06-30"], "the old data is left as it was"
