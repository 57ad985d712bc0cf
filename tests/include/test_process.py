"""segmint.process: a process ends without the interpreter's teardown, and loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from segmint.process import exit_code

_CHILD = """
import atexit, sys, threading, time
from pathlib import Path

import duckdb

from segmint.process import run_then_exit

out = Path(sys.argv[1])

def late_writer():
    time.sleep(0.3)
    (out / "thread.txt").write_text("joined")

threading.Thread(target=late_writer).start()
atexit.register(lambda: (out / "atexit.txt").write_text("ran"))
con = duckdb.connect(str(out / "w.duckdb"))
con.execute("create table t as select range as i from range(100000)")
atexit.register(con.close)  # as dbt-duckdb closes its database: checkpointed, no WAL left
sys.stdout.write("x" * 200_000)  # more than a pipe holds: flushed at the end
print("done", file=sys.stderr)
def main():
    if sys.argv[2].isdigit():
        return int(sys.argv[2])  # a main that returns its code
    raise SystemExit(sys.argv[2])  # one that raises, as click's commands do

run_then_exit(main)
"""


def _child(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(tmp_path), code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("code", ["0", "3"])
def test_exit_now_keeps_what_an_ordinary_exit_does(tmp_path: Path, code: str) -> None:
    done = _child(tmp_path, code)
    assert done.returncode == int(code), done.stderr
    assert done.stdout == "x" * 200_000  # buffered output flushed
    assert done.stderr == "done\n"
    assert (tmp_path / "thread.txt").read_text() == "joined"  # non-daemon threads joined
    assert (tmp_path / "atexit.txt").read_text() == "ran"  # atexit handlers ran
    assert not (tmp_path / "w.duckdb.wal").exists()
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("select count(*), sum(i) from t").fetchone() == (100000, 4999950000)
    con.close()


def test_exit_now_with_a_message_prints_it_and_fails(tmp_path: Path) -> None:
    done = _child(tmp_path, "dbt failed")
    assert done.returncode == 1
    assert done.stderr == "done\ndbt failed\n"


def test_exit_code_reads_codes_as_sys_exit_does(capsys: pytest.CaptureFixture) -> None:
    assert exit_code(None) == 0
    assert exit_code(0) == 0
    assert exit_code(2) == 2
    assert exit_code("no such model") == 1
    assert capsys.readouterr().err == "no such model\n"


def test_a_profiled_run_still_writes_its_profile(tmp_path: Path) -> None:
    """Profilers and coverage write their results at the interpreter's exit: under them
    exit_now is an ordinary exit."""
    script = tmp_path / "child.py"
    script.write_text("from segmint.process import exit_now\nexit_now(4)\n")
    profile = tmp_path / "child.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == ""  # (cProfile itself ends with 0, whatever the script's code)
    assert profile.stat().st_size > 0
