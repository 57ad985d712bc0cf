"""segmint's own processes take turns on the working warehouse instead of failing.

DuckDB lets one process have a file open for writing, and any other process holding it open
makes that open fail at once. A marketer's `segmint audience export` beside the night made
the night fail ("Could not set lock on file"), and the night made the exports fail. Both now
wait for each other (segmint.warehouse.exclusive), with real processes here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import date

import pytest

from segmint.audiences import build_audiences
from segmint.stages import SegmintError
from segmint.warehouse import connect, exclusive, lock_path

AS_OF = date(2026, 6, 30)
SEGMINT = [sys.executable, "-m", "segmint.cli"]


def _hold(warehouse, seconds: float) -> subprocess.Popen:
    """Another process: a stage holding the warehouse open for writing for ``seconds``."""
    code = (
        "import sys, time\n"
        "from segmint.warehouse import connect, exclusive\n"
        f"with exclusive({str(warehouse)!r}, 'stage transform of 2026-06-30'):\n"
        f"    con = connect({str(warehouse)!r})\n"
        "    print('holding', flush=True)\n"
        f"    time.sleep({seconds})\n"
        "    con.close()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_an_export_beside_a_stage_waits_for_it_then_runs(settings, defs_folder, tmp_path):
    defs_folder(a="name: a\nconsent: email\nwhere: {feature: order_count, gte: 0}\n")
    build_audiences(settings, AS_OF)
    stage = _hold(settings.warehouse, 3)
    out = tmp_path / "a.csv"
    started = time.monotonic()
    export = subprocess.run(
        [
            *SEGMINT,
            "audience",
            "export",
            "a",
            "--warehouse",
            str(settings.warehouse),
            "--audiences",
            str(settings.audiences),
            "--format",
            "csv",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stage.wait(timeout=60) == 0
    assert export.returncode == 0, export.stderr
    assert "exported a csv as of 2026-06-30" in export.stdout and out.is_file()
    # It waited for the stage rather than failing on DuckDB's lock.
    assert time.monotonic() - started > 1.5
    # One line says whom it waits for, what it does meanwhile and what the operator can do
    # (it said whom, and nothing of how long nor of a stuck process).
    (line,) = [x for x in export.stderr.splitlines() if " waits for " in x]
    assert re.search(
        rf"export of audience a waits for stage transform of 2026-06-30 \(pid {stage.pid}, "
        rf"since [^)]+ UTC\) to finish with {re.escape(str(settings.warehouse))}: it starts "
        r"by itself once that is done, or gives up at \d\d:\d\d:\d\d UTC \(30 min\); "
        rf"nothing to do unless that process is stuck \(kill {stage.pid}\)$",
        line,
    ), line


def test_a_stage_waits_for_an_export_and_names_it_when_it_gives_up(settings):
    holder = _hold(settings.warehouse, 30)
    try:
        busy = exclusive(settings.warehouse, "stage ingest of 2026-07-01", wait_s=0.5)
        with pytest.raises(SegmintError) as info, busy:
            pass
        message = str(info.value)
        assert f"is in use by stage transform of 2026-06-30 (pid {holder.pid}" in message
        assert "stage ingest of 2026-07-01 did not run" in message
    finally:
        holder.kill()
        holder.wait()
    # A lock whose process died is free at once (the kernel drops it with the process).
    with exclusive(settings.warehouse, "stage ingest of 2026-07-01", wait_s=0.5):
        connect(settings.warehouse).close()


def test_the_lock_is_reentrant_and_follows_links(settings, tmp_path):
    link = tmp_path / "current.duckdb"
    link.symlink_to(settings.warehouse)
    assert lock_path(link) == lock_path(settings.warehouse)
    with exclusive(link, "stage segment of 2026-06-30", wait_s=0.5):
        # The stage's own export of a declared audience, inside the stage.
        with exclusive(settings.warehouse, "export of audience a", wait_s=0.5):
            connect(settings.warehouse).close()
        assert "stage segment of 2026-06-30" in lock_path(link).read_text()
    assert lock_path(link).read_text() == ""
