"""The CLI conventions: --help everywhere, one-line errors, non-zero exit codes."""

import subprocess
import sys
from pathlib import Path

import pytest

from segmint.cli import build_parser, latest_partition, main

SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: segmint" in capsys.readouterr().out


def test_data_commands_take_warehouse_and_landing() -> None:
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    for name, sub in choices.items():
        options = {o for action in sub._actions for o in action.option_strings}
        if name in {"ingest", "run", "validate"}:
            assert {"--warehouse", "--landing"} <= options, name
        if name in {"transform", "segment", "score", "publish"}:
            assert "--warehouse" in options, name


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    """``python -m segmint.cli ARGS`` in a child process (stdout and stderr captured)."""
    return subprocess.run(
        [sys.executable, "-m", "segmint.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_failure_is_one_line_and_non_zero(tmp_path: Path) -> None:
    result = _cli("run", "--landing", tmp_path / "empty", "--warehouse", tmp_path / "w.duckdb")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no dt=YYYY-MM-DD partitions under" in lines[0]


def test_bad_date_flag_is_rejected(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--as-of", "2026-13-01"])
    assert exit_.value.code == 2
    assert "not a date" in capsys.readouterr().err


def test_latest_partition(tmp_path: Path) -> None:
    for part in (
        "events/dt=2026-01-01",
        "events/dt=2026-01-03",
        "crm/dt=2026-01-02",
        "events/not-a-partition",
    ):
        (tmp_path / part).mkdir(parents=True)
    assert str(latest_partition(tmp_path)) == "2026-01-03"
    assert latest_partition(tmp_path / "nowhere") is None


def test_ingest_stderr_holds_no_library_chatter(tmp_path: Path) -> None:
    """Without -v a successful ingest writes nothing to stderr: GX pins one of its loggers
    at INFO ("Created temporary directory ... for ephemeral docs site"), segmint unpins it."""
    day = tmp_path / "landing" / "events" / "dt=2026-06-01"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text(
        '{"event_id": "e1", "event_type": "page_view", "event_ts": "2026-06-01T10:00:00Z", '
        '"customer_id": "c1"}\n'
    )
    result = _cli(
        "ingest",
        "--landing",
        tmp_path / "landing",
        "--warehouse",
        tmp_path / "w.duckdb",
        "--output",
        tmp_path / "out",
    )
    assert result.returncode == 0, result.stderr
    assert "loaded 1 rows" in result.stdout
    assert result.stderr == ""
