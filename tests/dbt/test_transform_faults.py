"""The transform on a disk without room: dbt's failure says so, and the rerun completes it."""

from __future__ import annotations

from pathlib import Path

from segmint.transform import run_transform
from tests.db import fetch
from tests.dbt import synthetic
from tests.dbt.warehouse_data import END, new_warehouse, settings_in
from tests.e2e.airflow_support import published_hashes
from tests.include.test_cli import cli_with_file_size_limit, python_with_file_size_limit

# settings_for's, as a settings file the command line reads
SETTINGS = f"""
[transform]
reporting_currency = "{synthetic.CURRENCY}"
[propensity]
horizon_days = 30
training_cutoffs = 1
"""

# The transform of END in the folder sys.argv[1] (settings_in's), its error's class and
# whether the DAG retries it (segmint.ops.is_retryable).
TRANSFORM_FAULT = f"""
import sys
from pathlib import Path
from segmint.ops import is_retryable
from segmint.transform import run_transform
from tests.dbt.warehouse_data import END, settings_in
try:
    run_transform(settings_in(Path(sys.argv[1]), {SETTINGS!r}), END)
except Exception as exc:
    print(type(exc).__name__, "retried" if is_retryable(exc) else "not retried")
"""


def test_a_dbt_build_without_room_says_so_and_the_rerun_completes(
    tmp_path: Path, full_warehouse: Path
) -> None:
    """dbt failed on a full disk or a file-size limit (the warehouse's write-ahead log, or
    its own artifacts beside it): the error quoted a dozen lines of dbt's traceback or node
    errors, none saying what to do. It is one line naming the file and the fix.

    And the rerun failed, every time: the first build had stopped after an incremental
    model (int_identity_links_daily) and before int_events_sessionised, which that model
    reads without depending on it; now the rerun builds what an uninterrupted night does."""
    settings = settings_in(tmp_path, SETTINGS)
    new_warehouse(settings.warehouse, after=True)
    args = ["--config", tmp_path / "segmint.toml", "transform"]
    args += ["--warehouse", settings.warehouse, "--as-of", END.isoformat()]
    # Room for dbt's own artifacts (the manifest outgrew the warehouse file as models were
    # added: the limit then stopped dbt before any node), not for the night's tables.
    target = full_warehouse.parent / "dbt" / "target"
    artifacts = [target / "manifest.json", target / "partial_parse.msgpack"]
    limit = max([settings.warehouse.stat().st_size] + [a.stat().st_size for a in artifacts])
    limit += 2**16
    faulted = cli_with_file_size_limit(limit, *args)
    assert faulted.returncode == 1, faulted.stderr
    first = faulted.stderr.splitlines()[0]
    assert first.startswith(f"segmint transform: error: dbt build failed for as-of {END}: ")
    assert "cannot write " in first and "File too large" in first, faulted.stderr
    assert "(ulimit -f)" in first and "then run the same command again" in first
    assert [line.split(":")[0] for line in faulted.stderr.splitlines()[1:]] == [
        "run results",
        "dbt log",
    ]
    # The same fault seen by the DAG: retried, as every other stage's disk fault is (it
    # was a SegmintError, failed at once: a night lost to a disk freed minutes later).
    again = python_with_file_size_limit(limit, "-c", TRANSFORM_FAULT, tmp_path)
    assert again.stdout.split() == ["DiskFaultError", "retried"], again.stderr
    # What the rerun starts from: an incremental model built, the table it reads missing.
    built = fetch(
        settings.warehouse,
        "select table_name from information_schema.tables where table_schema = 'intermediate'",
    )
    assert ("int_identity_links_daily",) in built
    assert ("int_events_sessionised",) not in built

    run_transform(settings, END)
    assert published_hashes(settings.warehouse) == published_hashes(full_warehouse)


def test_a_closing_checkpoint_without_room_fails_the_stage_and_the_rerun_completes(
    tmp_path: Path, full_warehouse: Path
) -> None:
    """dbt built every model, then the checkpoint of its closing database could not grow
    the warehouse file (a full disk, ``ulimit -f``): dbt-duckdb does not report it and dbt
    exits 0, so the stage said done, exit code 0, the night's marts only in the
    ``segmint.duckdb.wal`` every later process replayed. It fails with the one line that
    names the file and the fix, and the rerun completes it."""
    settings = settings_in(tmp_path, SETTINGS)
    # The night run again, on a copy without free blocks: a checkpoint writes into the
    # file's free blocks before it grows it, and how many a full build leaves free varies
    # (the test once found room). Any block the night adds now grows the file.
    _compact_copy(full_warehouse, settings.warehouse)
    args = ["--config", tmp_path / "segmint.toml", "transform"]
    args += ["--warehouse", settings.warehouse, "--as-of", END.isoformat()]
    wal = settings.warehouse.with_name(settings.warehouse.name + ".wal")
    # Room for dbt's writes (its log, its artifacts, the write-ahead log of a night's
    # increment), not for the checkpoint that grows the file.
    # Room for dbt's own artifacts (the manifest outgrew the warehouse file as models were
    # added: the limit then stopped dbt before any node), not for the night's tables.
    target = full_warehouse.parent / "dbt" / "target"
    artifacts = [target / "manifest.json", target / "partial_parse.msgpack"]
    limit = max([settings.warehouse.stat().st_size] + [a.stat().st_size for a in artifacts])
    limit += 2**16
    faulted = cli_with_file_size_limit(limit, *args)
    assert wal.exists(), "the checkpoint found room: the test no longer tests it"
    assert faulted.returncode == 1, faulted.stderr
    assert faulted.stderr.startswith(
        f"segmint transform: error: cannot write {settings.warehouse} (the warehouse"
    ), faulted.stderr
    assert "File too large" in faulted.stderr and "(ulimit -f)" in faulted.stderr

    run_transform(settings, END)
    assert not wal.exists()
    assert published_hashes(settings.warehouse) == published_hashes(full_warehouse)


def _compact_copy(source: Path, target: Path) -> None:
    """Copy the warehouse ``source`` to ``target`` (a new file of the same name) with DuckDB's
    COPY FROM DATABASE: every table and view, no free block."""
    import duckdb

    assert source.name == target.name, "the catalog is named after the file"
    con = duckdb.connect()
    try:
        con.execute(f"attach '{source}' as source_db (read_only)")
        con.execute(f"attach '{target}'")
        con.execute(f"copy from database source_db to {target.stem}")
        con.execute(f"detach {target.stem}")
    finally:
        con.close()
    con = duckdb.connect(str(target), read_only=True)
    try:
        free = con.execute("select free_blocks from pragma_database_size()").fetchone()[0]
    finally:
        con.close()
    assert free == 0, f"{free} free block(s) in the copy"
