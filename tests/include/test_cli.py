"""The CLI conventions: --help everywhere, one-line errors, non-zero exit codes."""

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from segmint.cli import build_parser, latest_partition, main
from segmint.config import Settings
from segmint.pipeline import STAGES, check_as_of, run_stage
from segmint.stages import SegmintError
from tests.db import fetch, held_open

SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: segmint" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["transform"], "(required)"),
        (["publish"], "(required)"),
        (["audience", "build"], "(required)"),
        (["ingest"], "(default: the newest dt= partition in the landing zone holding a data file)"),
    ],
)
def test_as_of_help_says_whether_it_is_required(
    command: list[str], said: str, capsys: pytest.CaptureFixture
) -> None:
    """The stages after ingest said "--as-of DATE ... (default: required)"; they need it."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert f"--as-of DATE as-of date, at most tomorrow in UTC {said}" in helped
    assert "default: required" not in helped


def test_generate_help_says_what_it_writes(capsys: pytest.CaptureFixture) -> None:
    """`segmint generate --help` was only its usage and options, no description."""
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert "Write a synthetic shop's events and CRM files" in helped


def test_every_command_and_audience_action_has_a_description() -> None:
    """`segmint generate --help` and `segmint audience build|validate|export|readout --help`
    were their usage and options only: nothing said what the command does."""

    def undescribed(parser, name: str) -> list[str]:
        found = []
        for action in parser._subparsers._group_actions if parser._subparsers else []:
            for command, sub in action.choices.items():
                if not sub.description:
                    found.append(f"{name} {command}")
                found += undescribed(sub, f"{name} {command}")
        return found

    assert undescribed(build_parser(), "segmint") == []


@pytest.mark.parametrize("command", ["run", "score"])
def test_horizon_help_names_the_setting(command: str, capsys: pytest.CaptureFixture) -> None:
    """`segmint run --help` said "default 30" whatever [propensity] horizon_days was set to."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert "--horizon-days N propensity prediction horizon in days (default: settings, " in (helped)
    assert "[propensity] horizon_days, else 30)" in helped


def test_data_commands_take_warehouse_and_landing() -> None:
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    for name, sub in choices.items():
        options = {o for action in sub._actions for o in action.option_strings}
        if name in {"ingest", "run", "validate"}:
            assert {"--warehouse", "--landing"} <= options, name
        if name in {"transform", "segment", "score", "publish"}:
            assert "--warehouse" in options, name


def _ingest(tmp_path: Path, landing: Path) -> subprocess.CompletedProcess:
    """`segmint ingest` of ``landing`` into a warehouse and output folder under tmp_path."""
    return _cli(
        "ingest",
        "--landing",
        landing,
        "--warehouse",
        tmp_path / "w.duckdb",
        "--output",
        tmp_path / "out",
    )


def _one_page_view(landing: Path, day: str) -> None:
    """A landing zone of one page view of customer c1 at 10:00 UTC on ``day``."""
    folder = landing / "events" / f"dt={day}"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text(
        f'{{"event_id": "e1", "event_type": "page_view", "event_ts": "{day}T10:00:00Z", '
        '"customer_id": "c1"}\n'
    )


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    """``python -m segmint.cli ARGS`` in a child process (stdout and stderr captured)."""
    return subprocess.run(
        [sys.executable, "-m", "segmint.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_failure_is_one_line_and_non_zero(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _cli("run", "--landing", tmp_path / "empty", "--warehouse", tmp_path / "w.duckdb")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (
        f"segmint run: error: the landing zone {tmp_path / 'empty'} has no partition to load "
        f"(it is empty): segmint reads {tmp_path / 'empty'}/events/dt=YYYY-MM-DD/ and "
        f"{tmp_path / 'empty'}/crm/dt=YYYY-MM-DD/ (docs/data-contract.md); deliver the files "
        "there, or pass --landing the folder that holds events/ and crm/"
    )


def test_a_failed_run_is_one_line_naming_the_stage(tmp_path: Path) -> None:
    """A stage that failed in `segmint run` printed two lines on stderr, a logged "ERROR
    segmint.pipeline: stage ingest failed ..." and then the error; the README promises one.
    The one line names the stage, and ends with the night the published copy holds; -v logs
    it as before."""
    day = tmp_path / "landing" / "events" / "dt=2026-06-30"
    day.mkdir(parents=True)
    (day / "a.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 cut short")
    common = ("--landing", tmp_path / "landing", "--warehouse", tmp_path / "w.duckdb")
    result = _cli("run", *common, "--output", tmp_path / "out", "--as-of", "2026-06-30")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "segmint run: error: stage ingest failed, the stages after it did not run: could not "
        "read 1 landing file(s): events/dt=2026-06-30/a.jsonl.gz: "
    ), lines[0]
    # and what analysts read meanwhile, as the DAG's failure message says
    published = tmp_path / "published" / "w.duckdb"
    assert lines[0].endswith(
        f" Nothing is published yet (no {published}): analysts have no copy."
    ), lines[0]
    verbose = _cli("-v", "run", *common, "--output", tmp_path / "out", "--as-of", "2026-06-30")
    assert "stage ingest failed for as_of=2026-06-30; the stages after it" in verbose.stderr
    # the run's last stage: no stage after it was left out, and the line does not say so
    alone = _cli(
        "run", *common, "--stages", "ingest", "--output", tmp_path / "out", "--as-of", "2026-06-30"
    )
    assert alone.stderr.startswith(
        "segmint run: error: stage ingest failed: could not read 1 landing file(s)"
    ), alone.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_run_outputs_folder_that_cannot_hold_files_is_refused_before_the_night(
    tmp_path: Path,
) -> None:
    """`segmint run --output /proc/out` ran ingest, the transform, the models and the
    audiences' snapshots, and failed at the first export file: a night's work for nothing.
    It is refused before the ingest, which creates no warehouse."""
    _one_page_view(tmp_path / "landing", "2026-06-30")
    common = ("--landing", tmp_path / "landing", "--warehouse", tmp_path / "w.duckdb")
    result = _cli("run", *common, "--output", "/proc/segmint-out", "--as-of", "2026-06-30")
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "segmint run: error: the run outputs folder /proc/segmint-out cannot hold files: No "
        "such file or directory; nothing was run: check --output, SEGMINT_OUTPUT or output in "
        "the settings file, or let this user create files there\n"
    )
    assert len(result.stdout.splitlines()) == 1  # "segmint run: as_of=... warehouse=..."
    assert not (tmp_path / "w.duckdb").exists()  # nothing ingested
    # Stages that write nothing there run as before.
    alone = _cli("run", *common, "--output", "/proc/segmint-out", "--stages", "transform",
                 "--as-of", "2026-06-30")  # fmt: skip
    assert "the run outputs folder" not in alone.stderr


def test_what_analysts_read_is_a_sentence_of_its_own(tmp_path: Path) -> None:
    """A night before the first delivery ended "... a night before 2026-06-01 has nothing to
    build Nothing is published yet (...)": the published copy's note ran on from an error
    without a full stop, as the quality gate's does ("... events.jsonl (4) Nothing ...")."""
    _one_page_view(tmp_path / "landing", "2026-06-01")
    common = ("--landing", tmp_path / "landing", "--warehouse", tmp_path / "w.duckdb")
    result = _cli("run", *common, "--output", tmp_path / "out", "--as-of", "2026-05-30")
    assert result.returncode == 1
    published = tmp_path / "published" / "w.duckdb"
    assert result.stderr.strip().endswith(
        "a night before 2026-06-01 has nothing to build. "
        f"Nothing is published yet (no {published}): analysts have no copy."
    ), result.stderr


def test_a_failed_night_leaves_a_page_saying_so_where_its_report_would_be(
    tmp_path: Path,
) -> None:
    """A night that failed before its report stage wrote no report.html, and the newest page
    in the output folder was yesterday's, read by marketing as tonight's. The failed night's
    folder now holds a page naming the stage and linking the newest real report."""
    day = tmp_path / "landing" / "events" / "dt=2026-06-30"
    day.mkdir(parents=True)
    (day / "a.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 cut short")
    out = tmp_path / "out"
    for night in ("2026-06-28", "2026-06-29"):
        (out / night).mkdir(parents=True)
    (out / "2026-06-28" / "report.html").write_text("<html>the report of 06-28</html>")
    result = _cli(
        "run", "--landing", tmp_path / "landing", "--warehouse", tmp_path / "w.duckdb",
        "--output", out, "--as-of", "2026-06-30",
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    page = (out / "2026-06-30" / "report.html").read_text()
    assert "segmint nightly report · 2026-06-30 · FAILED, no report" in page
    assert 'data-failed-stage="ingest"' in page
    assert "failed at its 'ingest' stage (InputError)" in page
    assert '<a href="../2026-06-28/report.html">2026-06-28</a>' in page
    assert "a.jsonl.gz" not in page  # the error's message stays in the operator's log


def test_a_landing_zone_without_partitions_names_what_it_holds(tmp_path: Path) -> None:
    """Files put beside the contract's folders: the error said "no dt=YYYY-MM-DD partitions
    under ...; pass --as-of", and passing --as-of ran a night of nothing."""
    landing = tmp_path / "landing"
    (landing / "events" / "2026-06-30").mkdir(parents=True)
    (landing / "events" / "2026-06-30" / "a.jsonl").write_text("{}\n")
    (landing / "customers.csv").write_text("customer_id\n")
    result = _cli("run", "--landing", landing, "--warehouse", tmp_path / "w.duckdb")
    assert result.returncode == 1
    assert "(it holds customers.csv, events/, events/2026-06-30/): segmint reads " in (
        result.stderr
    )
    assert "pass --as-of" not in result.stderr


def test_a_landing_zone_that_does_not_exist_is_named_without_as_of(tmp_path: Path) -> None:
    """A mistyped --landing and no --as-of: the error said "no dt=YYYY-MM-DD partitions
    under ...; pass --as-of", and with --as-of the run failed on the landing zone."""
    missing = tmp_path / "landnig"
    for as_of in ([], ["--as-of", "2026-06-30"]):
        wh = ("--warehouse", tmp_path / "w.duckdb", "--output", tmp_path / "out")
        result = _cli("run", "--landing", missing, *wh, *as_of)
        assert result.returncode == 1
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("segmint run: error: "), line
        assert (
            f"the landing zone {missing} does not exist: pass --landing, or set "
            "SEGMINT_LANDING or landing (top level) in the settings file, to the folder "
            "holding events/ and crm/"
        ) in line, line


def test_bad_date_flag_is_rejected(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--as-of", "2026-13-01"])
    assert exit_.value.code == 2
    assert "not a date" in capsys.readouterr().err


READOUT = ("audience", "readout", "a", "--from", "2026-06-01", "--to", "2026-06-10")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ("generate", "--dirt-rate", "2"),
            "argument --dirt-rate: must be between 0 and 0.2 (0.002 for 0.2%): '2'",
        ),
        (
            ("generate", "--dirt-rate", "nan"),
            "argument --dirt-rate: must be between 0 and 0.2 (0.002 for 0.2%): 'nan'",
        ),
        (("generate", "--dirt-rate", "-0.01"), "argument --dirt-rate: must be between 0 and 0.2"),
        (("generate", "--seed", "-1"), "argument --seed: must be 0 or more: '-1'"),
        (("generate", "--days", "90000"), "argument --days: must be at most 3660 (ten years)"),
        (("generate", "--customers", "0"), "argument --customers: must be positive: '0'"),
        (
            ("generate", "--customers", "10000000000"),
            "argument --customers: must be at most 1000000 (about 17 GiB of memory over 90 "
            "days): '10000000000'",
        ),
        (
            (*READOUT, "--alpha", "5"),
            "argument --alpha: must be above 0 and below 1 (0.05 for 5%): '5'",
        ),
        ((*READOUT, "--power", "1"), "argument --power: must be above 0 and below 1"),
        ((*READOUT, "--mde", "0"), "argument --mde: must be above 0 (0.1 for 10%): '0'"),
        ((*READOUT, "--mde", "inf"), "argument --mde: must be above 0 (0.1 for 10%): 'inf'"),
        (("score", "--horizon-days", "0"), "argument --horizon-days: must be positive"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error_naming_the_range(
    tmp_path: Path, argv: tuple[str, ...], error: str
) -> None:
    """`generate --dirt-rate 2` was a one-line error from inside the generator (exit code
    1), `--seed -1` an "unexpected ValueError" naming no option (exit code 2), `--days
    90000` wrote partitions back to 1780 until stopped, and `audience readout --alpha 5`
    was refused only once the warehouse was open. Each is now the command's usage and the
    option's range, exit code 2, before anything is read or written."""
    landing = tmp_path / "landing"
    where = "--landing" if argv[0] == "generate" else "--warehouse"
    result = subprocess.run(
        [sys.executable, "-m", "segmint.cli", *argv, where, landing],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: segmint ")
    assert f"error: {error}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_global_options_are_taken_after_the_command_too(tmp_path: Path) -> None:
    """`segmint run ... -v` and `segmint run --config FILE` were refused, "unrecognized
    arguments", exit code 2: -v and --config were read only before the command."""
    parser = build_parser()
    for argv in (["-v", "run"], ["run", "-v"], ["audience", "build", "--verbose"]):
        assert parser.parse_args(argv).verbose is True, argv
    assert parser.parse_args(["run"]).verbose is False
    assert parser.parse_args(["--config", "a.toml", "run"]).config == "a.toml"
    assert parser.parse_args(["--config", "a.toml", "run", "--config", "b.toml"]).config == (
        "b.toml"
    )
    assert parser.parse_args(["report"]).config is None
    result = _cli("run", "--landing", tmp_path, "-v", "--config", tmp_path / "nope.toml")
    assert result.returncode == 1
    assert f"segmint run: error: config file {tmp_path / 'nope.toml'} (--config) does not" in (
        result.stderr
    )


def test_latest_partition(tmp_path: Path) -> None:
    for part in (
        "events/dt=2026-01-01",
        "events/dt=2026-01-03",
        "crm/dt=2026-01-02",
        "events/not-a-partition",
        "events/dt=2026-02-31",  # no such day: ingest ignores it, so does the as-of date
        "crm/dt=2026-13-01",
    ):
        (tmp_path / part).mkdir(parents=True)
    assert str(latest_partition(tmp_path)) == "2026-01-03"
    assert latest_partition(tmp_path / "nowhere") is None


def test_the_default_as_of_is_the_newest_partition_holding_a_data_file(tmp_path: Path) -> None:
    """A cron job's `segmint run` without --as-of, started while the exporter wrote the next
    day's folder (Spark's `_temporary/`, a `.part` file) or had only made it, ran that next
    day, with none of its data, and published it; the day the files were for never ran. The
    night is now the newest partition holding a file the ingest loads, and a warning names
    the folder passed over."""
    landing = tmp_path / "landing"
    _one_page_view(landing, "2026-06-29")
    _one_page_view(landing, "2026-06-30")
    spark = landing / "events/dt=2026-07-01/_temporary/0/task_0"
    spark.mkdir(parents=True)
    (spark / "part-00000.jsonl").write_text('{"event_id": "partial"}\n')
    (landing / "events/dt=2026-07-01/.part-00001.jsonl").write_text("")
    (landing / "crm/dt=2026-07-02").mkdir(parents=True)  # made, nothing in it yet
    assert latest_partition(landing) == date(2026, 6, 30)

    warehouse = tmp_path / "wh" / "segmint.duckdb"
    out = tmp_path / "out"
    result = _cli(
        "run", "--stages", "ingest", "--landing", landing, "--warehouse", warehouse, "--output", out
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("segmint run: as_of=2026-06-30 "), result.stdout
    assert "from 2 file(s)" in result.stdout, result.stdout
    assert result.stderr.strip() == (
        "segmint run: warning: as-of date 2026-06-30, the newest partition holding a data "
        f"file: {landing}/crm/dt=2026-07-02 holds none yet (empty, or only files still being "
        "written, named _ or .); pass --as-of 2026-07-02 to run that night"
    )
    # The files land: that night is the default again, with no warning.
    (landing / "events/dt=2026-07-01/part-00000.jsonl").write_text(
        '{"event_id": "e3", "event_type": "page_view", "event_ts": "2026-07-01T10:00:00Z", '
        '"customer_id": "c1"}\n'
    )
    assert latest_partition(landing) == date(2026, 7, 1)


def test_with_a_ready_marker_the_default_as_of_skips_a_day_still_being_written(
    tmp_path: Path,
) -> None:
    """With `[ingest] partition_ready_marker`, the DAG waits for the marker; the command line's
    default night took the newest folder holding a data file, so a cron `segmint run` started
    while the exporter wrote that folder (the marker comes last) ran it half-delivered. A day
    whose events folder has files but no marker is not the night yet; the warning says why."""
    landing = tmp_path / "landing"
    _one_page_view(landing, "2026-06-29")
    (landing / "events/dt=2026-06-29/_SUCCESS").touch()
    _one_page_view(landing, "2026-06-30")  # its first file is there, not yet its marker
    assert latest_partition(landing) == date(2026, 6, 30)
    assert latest_partition(landing, "_SUCCESS") == date(2026, 6, 29)

    config = tmp_path / "segmint.toml"
    config.write_text('[ingest]\npartition_ready_marker = "_SUCCESS"\n')
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    result = _cli(
        "--config", config, "run", "--stages", "ingest", "--landing", landing,
        "--warehouse", warehouse, "--output", tmp_path / "out",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("segmint run: as_of=2026-06-29 "), result.stdout
    assert result.stderr.strip() == (
        "segmint run: warning: as-of date 2026-06-29, the newest partition holding a data "
        f"file: {landing}/events/dt=2026-06-30 holds none yet (empty, or only files still "
        "being written, named _ or ., or events files without the _SUCCESS marker); pass "
        "--as-of 2026-06-30 to run that night"
    )
    (landing / "events/dt=2026-06-30/_SUCCESS").touch()
    assert latest_partition(landing, "_SUCCESS") == date(2026, 6, 30)


def test_ingest_stderr_holds_no_library_chatter(tmp_path: Path) -> None:
    """Without -v a successful ingest writes nothing to stderr: GX pins one of its loggers
    at INFO ("Created temporary directory ... for ephemeral docs site"), segmint unpins it."""
    _one_page_view(tmp_path / "landing", "2026-06-01")
    result = _ingest(tmp_path, tmp_path / "landing")
    assert result.returncode == 0, result.stderr
    assert "loaded 1 rows" in result.stdout
    assert result.stderr == ""
    assert not (tmp_path / "w.duckdb.wal").exists(), "the warehouse was closed and checkpointed"


def _today() -> date:
    return datetime.now(UTC).date()


def _landing_with(tmp_path: Path, *days: date) -> Path:
    for day in days:
        part = tmp_path / "landing" / "events" / f"dt={day.isoformat()}"
        part.mkdir(parents=True)
        (part / "a.jsonl").write_text(
            f'{{"event_id": "e-{day}", "event_type": "page_view", '
            f'"event_ts": "{day}T10:00:00Z", "customer_id": "c1"}}\n'
        )
    return tmp_path / "landing"


def test_future_as_of_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """A typo (2027 for 2026) used to run the night, export and publish it, and then block
    the publication of every real night after it."""
    today = _today()
    typo = date(today.year + 1, today.month, min(today.day, 28))
    landing = _landing_with(tmp_path, date(2026, 6, 30))
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    wh = ["--landing", landing, "--warehouse", warehouse, "--output", tmp_path / "out"]
    for command in (["run"], ["ingest"], ["publish"]):
        args = [*command, *wh] if command != ["publish"] else [*command, "--warehouse", warehouse]
        result = _cli(*args, "--as-of", typo.isoformat())
        assert result.returncode == 1, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0] in {
            f"segmint {command[0]}: error: as-of date {typo} (--as-of) is in the future: "
            f"today is {day} (UTC) and no night after {day + timedelta(days=1)} can be "
            "processed; check --as-of for a typo (YYYY-MM-DD)"
            for day in (today, _today())  # the test may straddle midnight
        }
        assert result.stdout == ""
    assert not warehouse.parent.exists() and not (tmp_path / "out").exists()


def test_misdated_newest_partition_is_refused_and_named(tmp_path: Path) -> None:
    """Without --as-of the newest dt= partition is the night: a misdated one is named."""
    today = _today()
    misdated = today + timedelta(days=400)
    landing = _landing_with(tmp_path, date(2026, 6, 30), misdated)
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    result = _cli("run", "--landing", landing, "--warehouse", warehouse)
    assert result.returncode == 1
    folder = landing / "events" / f"dt={misdated}"
    assert result.stderr.strip() in {
        f"segmint run: error: as-of date {misdated} (the newest partition, {folder}) is in the "
        f"future: today is {day} (UTC) and no night after {day + timedelta(days=1)} can be "
        "processed; move that misdated folder to its real date, or pass --as-of DATE"
        for day in (today, _today())
    }
    assert not warehouse.parent.exists()


def test_as_of_tomorrow_is_accepted(tmp_path: Path) -> None:
    """A landing zone dated in a time zone ahead of UTC may hold tomorrow's partition."""
    tomorrow = _today() + timedelta(days=1)
    landing = _landing_with(tmp_path, tomorrow)
    result = _ingest(tmp_path, landing)
    assert result.returncode == 0, result.stderr
    assert "loaded 1 rows" in result.stdout


def test_check_as_of_bounds_and_the_stage_entry_point(tmp_path: Path) -> None:
    today = date(2026, 12, 4)
    check_as_of(date(2026, 12, 5), today=today)
    check_as_of(date(2020, 1, 1), today=today)
    with pytest.raises(SegmintError, match=r"as-of date 2026-12-06 is in the future: today is"):
        check_as_of(date(2026, 12, 6), today=today)
    # The DAG and the Python API go through run_stage: refused before the stage runs (the
    # publish stage would otherwise say the warehouse does not exist).
    settings = Settings(warehouse=tmp_path / "w.duckdb", landing=tmp_path / "landing")
    with pytest.raises(SegmintError, match=r"is in the future.*give the date of the night"):
        run_stage("publish", settings, _today() + timedelta(days=2))


@pytest.mark.parametrize(
    "command",
    [
        ("run",),
        ("report",),
        ("erase", "--customer-id", "c1"),
        ("audience", "export", "a", "--format", "csv", "--out", "x.csv"),
        ("audience", "readout", "a", "--from", "2026-06-01", "--to", "2026-06-10"),
        ("audience", "validate", "--as-of", "2026-06-30"),
    ],
)
def test_a_warehouse_that_cannot_be_a_file_is_refused_naming_the_setting(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A folder as the warehouse used to fail inside the first stage with DuckDB's
    "unexpected IOException: ... Is a directory"; `report`, `erase` and the audience
    commands still did (exit code 2), leaving a ``.lock`` file beside the folder."""
    landing = _landing_with(tmp_path, date(2026, 6, 30))
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "warehouse"
    folder.mkdir()
    before = sorted(tmp_path.rglob("*"))
    for warehouse, message in (
        (folder, f"the warehouse {folder} is a folder, not a DuckDB file"),
        (tmp_path / "a-file" / "w.duckdb", f"{tmp_path / 'a-file'} is a file, not a folder"),
    ):
        where = ("--landing", landing) if command == ("run",) else ()
        result = _cli(*command, *where, "--warehouse", warehouse)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "--warehouse, or set SEGMINT_WAREHOUSE" in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("folder", ["typo", ""])
def test_a_warehouse_that_does_not_exist_is_created_only_by_ingest(
    tmp_path: Path, folder: str
) -> None:
    """A mistyped --warehouse on a later stage's command created an empty warehouse there
    (`segmint audience build` did, and failed), and `segmint publish` of that path then
    published it: "published 9 tables (0 rows)", exit code 0. In a folder that exists, the
    refusal left a ``.lock`` and a ``.night`` file beside the missing warehouse."""
    warehouse = tmp_path / folder / "segmint.duckdb"
    wh = ("--warehouse", warehouse, "--as-of", "2026-06-30")
    landing = tmp_path / "landing"
    landing.mkdir()
    run = ["run", "--stages", "transform,segment", "--landing", landing]
    for command in (["segment"], ["validate", "--landing", landing], ["audience", "build"], run):
        result = _cli(*command, *wh)
        assert result.returncode == 1, (command, result.stderr)
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .endswith(
                f"error: the warehouse {warehouse} does not exist: only the ingest stage creates "
                "one (segmint run, segmint ingest); check --warehouse, SEGMINT_WAREHOUSE or "
                "warehouse in the settings file for a typo"
            )
        ), result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]
        if command[0] == "audience":  # it said `segmint audience: error:`
            assert result.stderr.startswith("segmint audience build: error: the warehouse ")


def test_stages_are_trimmed_and_an_empty_list_is_refused(tmp_path: Path) -> None:
    """`--stages ""` used to run every stage; `--stages "ingest, validate"` failed on the
    stage " validate"."""
    landing = _landing_with(tmp_path, date(2026, 6, 30))
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    empty = _cli("run", "--landing", landing, "--warehouse", warehouse, "--stages", " , ")
    assert empty.returncode == 1
    assert "--stages names no stage" in empty.stderr
    assert not warehouse.exists()
    two = _cli(
        *("run", "--landing", landing, "--warehouse", warehouse, "--output", tmp_path / "out"),
        *("--stages", "ingest, validate"),
    )
    assert two.returncode == 0, two.stderr
    assert [line.split()[0] for line in two.stdout.splitlines()[1:-1]] == ["ingest", "validate"]
    # The last line: how long the night and each stage took (it said nothing of time).
    assert re.fullmatch(
        r"segmint run: 2 stage\(s\) done for as_of=2026-06-30 in \d+\.\d s "
        r"\(ingest \d+\.\d s, validate \d+\.\d s\)",
        two.stdout.splitlines()[-1],
    ), two.stdout


def test_stages_run_in_the_nights_order_each_once(tmp_path: Path) -> None:
    """`--stages validate,ingest` ran validate first, on nothing loaded, and failed;
    `publish,transform` would publish the marts of the night before."""
    _one_page_view(tmp_path / "landing", "2026-06-30")
    result = _cli(
        "run", "--stages", "validate,ingest,validate", "--landing", tmp_path / "landing",
        "--warehouse", tmp_path / "w.duckdb", "--output", tmp_path / "out",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    firsts = [line.split()[0] for line in result.stdout.splitlines() if line[:1].isalpha()]
    assert [word for word in firsts if word in STAGES] == ["ingest", "validate"]


def test_a_warehouse_held_open_by_another_process_names_the_published_copy(
    tmp_path: Path,
) -> None:
    """An analyst's notebook on the working file: the stage used to end with "unexpected
    IOException" and a hint to set SEGMINT_DEBUG, as if segmint had a bug."""
    landing = _landing_with(tmp_path, date(2026, 6, 30))
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    ingest = ["ingest", "--landing", landing, "--warehouse", warehouse]
    ingest += ["--output", tmp_path / "out"]
    assert _cli(*ingest).returncode == 0
    with held_open(warehouse) as reader:
        result = _cli(*ingest)
    assert result.returncode == 1
    assert "unexpected" not in result.stderr
    # One line: who holds it, what segmint did, what to do. It was DuckDB's paragraph (its
    # read-only advice, a documentation link) and a hint of three sentences.
    published = warehouse.parent / "published" / "segmint.duckdb"
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"segmint ingest: error: the working warehouse {warehouse} is held open by "
        f"{Path(sys.executable).resolve().name} (PID {reader.pid}, user "
    )
    assert " -c import duckdb, sys, time; " in line  # its command line, cut to 60 characters
    assert line.endswith(
        "...); segmint stopped, "
        "without waiting for it (what was committed before is kept); close that connection "
        f"(readers open the published copy {published}, read-only), then run the same "
        "command again"
    )
    assert "Conflicting lock" not in line and "https://" not in line


def cli_with_file_size_limit(limit: int, *args: str | Path) -> subprocess.CompletedProcess:
    """:func:`_cli` in a child that may write no file beyond ``limit`` bytes (``ulimit -f``):
    its writes past the limit fail with EFBIG, as on a file system without room."""
    return python_with_file_size_limit(limit, "-m", "segmint.cli", *args)


def python_with_file_size_limit(limit: int, *args: str | Path) -> subprocess.CompletedProcess:
    """``python ARGS`` in a child that may write no file beyond ``limit`` bytes. The child
    writes no bytecode: Python's cache of a module it imports would be cut at the limit and
    break the module for every later process of the virtualenv ("marshal data too short")."""
    import os
    import resource

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=limit_file_size,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_a_warehouse_checkpoint_over_the_file_size_limit_is_one_line_and_the_rerun_completes(
    tmp_path: Path,
) -> None:
    """DuckDB's checkpoint could not grow the warehouse file (a full disk, ``ulimit -f``):
    the stage ended with "unexpected FatalException ... (set SEGMINT_DEBUG=1 for the
    traceback)", exit code 2, as if segmint had a bug. It is one line naming the file and
    what to do, exit code 1; the work committed before is kept and the rerun completes it."""
    import duckdb

    from tests.e2e.airflow_support import published_hashes

    landing = _landing_with(tmp_path, date(2026, 6, 30))
    nights = {}
    for name in ("faulted", "uninterrupted"):
        warehouse = tmp_path / name / "segmint.duckdb"
        warehouse.parent.mkdir()
        # Work an earlier process committed to the write-ahead log (as a stage leaves it
        # whose closing checkpoint failed): folding it into the file needs more room.
        con = duckdb.connect(str(warehouse))
        con.execute(
            "create table main.history as select range as n, md5(range::varchar) as h "
            "from range(400000)"
        )
        con.close()
        con = duckdb.connect(str(warehouse))
        con.execute("pragma disable_checkpoint_on_shutdown")
        con.execute("delete from main.history where n % 2 = 0")
        con.close()
        nights[name] = warehouse
    warehouse = nights["faulted"]
    ingest = ["ingest", "--landing", landing, "--warehouse", warehouse, "--as-of", "2026-06-30"]
    ingest += ["--output", tmp_path / "out"]
    limit = max(warehouse.stat().st_size, Path(f"{warehouse}.wal").stat().st_size) + 2**18
    faulted = cli_with_file_size_limit(limit, *ingest)
    assert faulted.returncode == 1, faulted.stderr
    line = faulted.stderr.strip().splitlines()[-1]
    assert line.startswith(f"segmint ingest: error: cannot write {warehouse} (the warehouse")
    assert "File too large" in line and "(ulimit -f)" in line
    assert "unexpected" not in faulted.stderr and "Traceback" not in faulted.stderr

    rerun = _cli(*ingest)
    assert rerun.returncode == 0, rerun.stderr
    reference = ["--warehouse", nights["uninterrupted"], "--output", tmp_path / "out2"]
    assert _cli(*ingest[:3], *reference, "--as-of", "2026-06-30").returncode == 0
    assert published_hashes(warehouse) == published_hashes(nights["uninterrupted"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from main.history").fetchone() == (200000,)


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_output_piped_into_a_reader_that_is_gone_ends_quietly(
    tmp_path: Path, buffered: bool
) -> None:
    """`segmint generate ... | head -1`: the reader closed the pipe, and the command ended
    with "unexpected BrokenPipeError ... (set SEGMINT_DEBUG=1 for the traceback)", exit code
    2 (unbuffered output, PYTHONUNBUFFERED=1 as in Airflow's and most Docker images), or
    exit code 1 and no word (buffered). It ends quietly with 141, the status of a Unix tool
    killed by SIGPIPE, and what it wrote before printing is whole."""
    import os

    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    generate = ["generate", "--customers", "40", "--days", "2", "--end-date", "2026-06-30"]
    ended = _run_into_a_gone_reader(
        [sys.executable, "-m", "segmint.cli", *generate, "--landing", tmp_path / "a/landing"], env
    )
    assert (ended.returncode, ended.stderr) == (141, "")
    reference = _cli(*generate, "--landing", tmp_path / "b/landing")
    assert reference.returncode == 0, reference.stderr
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def _run_into_a_gone_reader(argv: list, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``argv`` with its stdout a pipe whose reader is gone before the first line, as
    `| head -0`."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, text=True, check=False, env=env
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("stdout", ["buffered", "unbuffered", "closed"])
def test_a_run_whose_output_reader_is_gone_finishes_the_night(tmp_path: Path, stdout: str) -> None:
    """`segmint run | head -1`, a killed `tee`, a cron job's closed output: the night
    stopped between two stages, exit code 141 (unbuffered: before the first stage; buffered:
    at the end, the night done but said failed); started with stdout closed (`>&-`), it
    ended in a traceback, exit code 1. A closed stdout is no reason to stop a night: it
    runs every stage, drops the rest of its output and exits with its own code."""
    _one_page_view(tmp_path / "landing", "2026-06-30")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if stdout == "unbuffered":
        env["PYTHONUNBUFFERED"] = "1"
    # `exec ... >&-`: the command starts with its stdout closed
    closed = ["sh", "-c", 'exec "$@" >&-', "sh"] if stdout == "closed" else []
    warehouse = tmp_path / "w.duckdb"
    run = ["run", "--stages", "ingest,validate", "--landing", tmp_path / "landing"]
    run += ["--warehouse", warehouse, "--output", tmp_path / "out"]
    ended = _run_into_a_gone_reader([*closed, sys.executable, "-m", "segmint.cli", *run], env)
    assert (ended.returncode, ended.stderr) == (0, "")
    assert fetch(warehouse, "select count(*) from ops.quality_gate") == [(1,)]


def test_ctrl_c_during_a_duckdb_query_ends_as_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Ctrl-C while DuckDB runs a query (most of a stage's time): DuckDB stops the query and
    raises its own RuntimeError("Query interrupted") in place of the KeyboardInterrupt, so
    the command ended with "unexpected RuntimeError: Query interrupted (set SEGMINT_DEBUG=1
    for the traceback)", exit code 2, as if segmint had a bug. Here DuckDB's own interrupt
    (what its SIGINT handler calls) stops the query, sent until it has."""
    import threading

    import duckdb

    def long_query(args: object) -> int:
        con = duckdb.connect()
        done = threading.Event()

        def interrupt() -> None:
            while not done.wait(0.05):
                con.interrupt()

        thread = threading.Thread(target=interrupt)
        thread.start()
        try:
            con.execute("select count(*) from range(100000000000) t(i) where hash(i) % 7 = 3")
        finally:
            done.set()
            thread.join()
        return 0

    monkeypatch.setattr("segmint.cli.cmd_generate", long_query)
    assert main(["generate"]) == 130
    assert capsys.readouterr().err == "segmint generate: interrupted\n"


def _night_holder(warehouse: Path, as_of: str, seconds: float) -> subprocess.Popen:
    """Another process: a `segmint run` of ``as_of`` between two of its stages (it holds
    its night, not the warehouse's lock) for ``seconds``."""
    code = (
        "import time\n"
        "from datetime import date\n"
        "from segmint.ops import command_night\n"
        f"with command_night({str(warehouse)!r}, date.fromisoformat({as_of!r}), 'segmint run'):\n"
        "    print('holding', flush=True)\n"
        f"    time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_stage_of_another_night_does_not_run_between_the_stages_of_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warehouse's lock was held per stage, so two `segmint run` started a second apart
    took turns stage by stage: one night's transform could run between the other's
    transform and segment (which then found no features for its date), and the second run
    waited at most 30 min per stage. A night now holds the warehouse from its first stage
    to its last; another night waits for it, naming it, then gives up naming it."""
    import segmint.ops
    import segmint.warehouse
    from segmint.ops import command_night, night_on_the_warehouse, night_path
    from segmint.warehouse import exclusive

    warehouse = tmp_path / "wh" / "segmint.duckdb"
    monkeypatch.setattr(segmint.warehouse, "WAIT_FOR_WAREHOUSE_S", 1.0)
    monkeypatch.setattr(segmint.ops, "NIGHT_POLL_S", 0.1)
    holder = _night_holder(warehouse, "2026-06-29", 60)
    try:
        code = main(["segment", "--warehouse", str(warehouse), "--as-of", "2026-06-30"])
        err = capsys.readouterr().err
        assert code == 1
        assert f"the night 2026-06-29 (segmint run, pid {holder.pid} on " in err
        assert "segmint segment of 2026-06-30 did not start" in err
        assert "no rows" not in err  # the stage itself never ran
        # An export or an erasure between two stages still runs: they take the lock only.
        with exclusive(warehouse, "export of audience a", wait_s=0.5):
            pass
        # The DAG's stages wait for the command's night too, and leave its claim alone.
        ti = SimpleNamespace(dag_id="segmint_nightly", run_id="manual__1")
        night = night_on_the_warehouse(ti, warehouse, date(2026, 6, 30))
        assert night is not None and night["pid"] == holder.pid
        assert '"segmint run"' in night_path(warehouse).read_text()
    finally:
        holder.kill()
        holder.wait()
    # A night whose process died holds nothing; a night that ends leaves no claim.
    with command_night(warehouse, date(2026, 6, 30), "segmint run"):
        assert f'"pid": {os.getpid()}' in night_path(warehouse).read_text()
    assert night_path(warehouse).read_text() == ""


def test_a_run_waits_for_the_night_on_the_warehouse_then_runs(tmp_path: Path) -> None:
    """The second night waits for the first (as a stage waits for an export), saying whom it
    waits for, and starts once it is done."""
    warehouse = tmp_path / "wh" / "segmint.duckdb"
    holder = _night_holder(warehouse, "2026-06-29", 2)
    second = _cli(
        "validate", "--warehouse", warehouse, "--landing", tmp_path, "--as-of", "2026-06-30"
    )
    assert holder.wait(timeout=60) == 0
    assert (
        f"segmint validate of 2026-06-30 waits for the night 2026-06-29 (segmint run, pid "
        f"{holder.pid}" in second.stderr
    )
    assert "did not start" not in second.stderr
    # Then it went on: the holder stands for a night that never created the warehouse.
    assert f"segmint validate: error: the warehouse {warehouse} does not exist" in second.stderr


def test_a_stage_warning_is_printed_once(tmp_path: Path) -> None:
    """A warning of a stage was printed to stdout with the stage's line and logged to stderr
    too, so without -v each one was on the terminal twice."""
    _one_page_view(tmp_path / "landing", "2026-06-01")
    common = ("--warehouse", tmp_path / "w.duckdb", "--landing", tmp_path / "landing")
    assert _cli("ingest", *common, "--output", tmp_path / "out").returncode == 0
    result = _cli("validate", *common, "--as-of", "2026-06-02")
    assert result.returncode == 0, result.stderr
    assert "  warning: no events files for the as-of date 2026-06-02" in result.stdout
    assert result.stderr == ""
    verbose = _cli("-v", "validate", *common, "--as-of", "2026-06-02")
    assert "stage validate: no events files for the as-of date" in verbose.stderr


def test_an_ingest_warning_is_printed_once(tmp_path: Path) -> None:
    """The ingest's warnings of a batch (here a CRM delta that dropped email_opt_in) were
    logged as they arose and printed under the stage's line too: without -v each was on the
    terminal twice, with -v three times. A run that fails still says them, before its error
    (it has no stage line to print them under)."""
    landing = tmp_path / "landing"
    for day, header, row in [
        ("2026-06-01", "customer_id,updated_at,email_opt_in", "c1,2026-06-01T10:00:00Z,true"),
        ("2026-06-02", "customer_id,updated_at", "c1,2026-06-02T10:00:00Z"),
    ]:
        (landing / "crm" / f"dt={day}").mkdir(parents=True)
        (landing / "crm" / f"dt={day}" / "c.csv").write_text(f"{header}\n{row}\n")
    dropped = "1 crm file(s) have no column for email_opt_in, which the customer records"
    result = _ingest(tmp_path, landing)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(dropped) == 1, result.stdout
    assert result.stderr == ""
    common = ("--landing", landing, "--output", tmp_path / "out")
    verbose = _cli("-v", "ingest", "--warehouse", tmp_path / "v.duckdb", *common)
    assert verbose.stdout.count(dropped) == 1
    assert verbose.stderr.count(dropped) == 1, verbose.stderr
    # the same night, but an events file of it cannot be read: the error, and the warning
    (landing / "events" / "dt=2026-06-02").mkdir(parents=True)
    (landing / "events" / "dt=2026-06-02" / "a.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 cut")
    failed = _cli("ingest", "--warehouse", tmp_path / "f.duckdb", *common)
    assert failed.returncode == 1
    assert failed.stderr.count(dropped) == 1, failed.stderr
    assert "segmint ingest: error: could not read 1 landing file(s)" in failed.stderr


@pytest.mark.parametrize("folder", ["typo dir", ""])
@pytest.mark.parametrize(
    ("command", "done"),
    [
        (("erase", "--customer-id", "c1"), "nothing was erased"),
        (
            ("audience", "export", "mail", "--format", "csv", "--out", "x.csv"),
            "nothing was exported",
        ),
        (("report",), "no report was written"),
        (
            ("audience", "readout", "mail", "--from", "2026-06-01", "--to", "2026-06-10"),
            "nothing was read out",
        ),
        (
            ("audience", "validate", "--as-of", "2026-06-30"),
            "no definition was checked against it",
        ),
    ],
)
def test_commands_that_need_the_warehouse_refuse_one_that_does_not_exist(
    tmp_path: Path, command: tuple[str, ...], done: str, folder: str
) -> None:
    """A mistyped --warehouse created an empty warehouse (and its folder): `segmint erase`
    tombstoned the ids there and said "0 row(s) deleted", exit code 0, while the customers'
    rows stayed in the real one; `audience export` said "marts.customers does not exist: run
    the transform stage first". `report`, `audience readout` and `audience validate` left
    the folder and a ``.lock`` file beside the missing file. All stop now, naming the file,
    and create nothing."""
    audiences = tmp_path / "audiences"
    audiences.mkdir()  # validate would otherwise stop at the missing definitions folder
    warehouse = tmp_path / folder / "segmint.duckdb"
    before = sorted(tmp_path.rglob("*"))
    chosen = ("--audiences", audiences) if command[0] == "audience" else ()
    result = _cli(*command, "--warehouse", warehouse, *chosen)
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip().splitlines() == [
        f"segmint {' '.join(command[:2]) if command[0] == 'audience' else command[0]}: error: "
        f"the warehouse {warehouse} does not exist, so {done}: only the ingest stage creates "
        "one (segmint run, segmint ingest); check --warehouse, SEGMINT_WAREHOUSE or warehouse "
        "in the settings file for a typo"
    ]
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("value", ["0", "false", ""])
def test_segmint_debug_set_off_shows_no_traceback(
    tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEGMINT_DEBUG=0 (a cron line or a unit file saying debugging is off) showed the
    traceback of every error, any text being set, exit code 1. Off, the error is one line;
    SEGMINT_DEBUG=1 still shows the traceback."""
    monkeypatch.setenv("SEGMINT_DEBUG", value)
    result = _cli("transform", "--warehouse", tmp_path / "w.duckdb")
    assert result.returncode == 1
    assert result.stderr == "segmint transform: error: --as-of DATE is required\n"
    monkeypatch.setenv("SEGMINT_DEBUG", "1")
    debug = _cli("transform", "--warehouse", tmp_path / "w.duckdb")
    assert "Traceback (most recent call last)" in debug.stderr
