"""The ``segmint`` command line.

Every subcommand that touches data takes ``--warehouse`` (and ``--landing`` where it reads
files), defaulting to the settings (:mod:`segmint.config`). Exit code 0 on success; on
failure a one-line reason on stderr and a non-zero code (``SEGMINT_DEBUG=1`` shows the
traceback). Heavy libraries are imported by the stage that needs them, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import NoReturn

from segmint.audiences.formats import EXPORT_FORMATS
from segmint.audiences.readout_parameters import PARAMETERS, Parameter
from segmint.config import ConfigError, Settings, landing_problem, load_settings
from segmint.pipeline import STAGES, check_as_of
from segmint.process import BROKEN_PIPE, exit_now
from segmint.stages import SegmintError, StageResult, failed_last_stage, failed_stage

PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
# It said "default 30" whatever the settings file set.
HORIZON_HELP = (
    "propensity prediction horizon in days (default: settings, [propensity] horizon_days, else 30)"
)
# The landing zone's source folders (segmint.ingest.contract.SOURCES, which imports DuckDB).
LANDING_SOURCES = ("events", "crm")
# The longest history `segmint generate` writes: ten years of daily partitions.
GENERATE_MAX_DAYS = 3660
# The most customers it simulates at once: the largest benchmark shop (bench/run.py's 50M
# events). Its whole world is in memory, about 3.5 GiB per 200,000 customers over 90 days;
# `--customers 10000000000` was "unexpected MemoryError" after a pause, and its seven-digit
# customer ids cannot number more than nine million.
GENERATE_MAX_CUSTOMERS = 1_000_000


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive_int(value: str) -> int:
    number = _whole_number(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def _whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def _int_up_to(high: int, meaning: str) -> Callable[[str], int]:
    """A positive whole number of at most ``high``: `generate --days 90000` (for 90) wrote
    a partition a day back to 1780 until the disk was full."""

    def parse(value: str) -> int:
        number = _positive_int(value)
        if number > high:
            raise argparse.ArgumentTypeError(f"must be at most {high} ({meaning}): {value!r}")
        return number

    return parse


def _non_negative_int(value: str) -> int:
    """A random seed: `generate --seed -1` was "unexpected ValueError: expected non-negative
    integer", exit code 2, naming no option."""
    number = _whole_number(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value!r}")
    return number


def _number_in(
    low: float, high: float, example: str, *, open_low: bool = True, open_high: bool = True
) -> Callable[[str], float]:
    """A number between ``low`` and ``high`` (each end excluded unless said), refused by
    the command line with its usage, naming the option and the range: `generate
    --dirt-rate 2` was a one-line error after the settings were read, and a NaN passed
    every comparison."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        above = low < number if open_low else low <= number
        below = number < high if open_high else number <= high
        if not (above and below):  # NaN too
            if not (open_low or open_high):
                ends = f"between {low:g} and {high:g}"
            else:
                ends = f"{'above' if open_low else 'at least'} {low:g}" + (
                    ""
                    if high == math.inf
                    else f" and {'below' if open_high else 'at most'} {high:g}"
                )
            raise argparse.ArgumentTypeError(f"must be {ends} ({example}): {value!r}")
        return number

    return parse


def _parameter(parameter: Parameter) -> Callable[[str], float]:
    """A readout parameter, refused with the usage naming its range (the readout's own
    check, :mod:`segmint.audiences.readout_parameters`)."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        problem = parameter.problem(number)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}: {value!r}")
        return number

    return parse


def latest_partition(landing: Path, marker: str = "") -> date | None:
    """The newest ``dt=`` partition date under any source folder of the landing zone that
    holds a data file (else the newest folder: an empty landing zone's error names it). A
    folder named like one but not a date (``dt=2026-06-31``) is no partition: ingest
    reports it and loads nothing from it. A folder holding no file the ingest would load
    (none yet, or only work in progress: Spark's ``_temporary/``, a ``.part`` file) is not
    the night either: a cron job's ``segmint run`` without ``--as-of``, started while the
    exporter wrote the next day's folder so, ran and published that next day, with none of
    its data, and its own day never ran as a night. With ``marker`` (``[ingest]
    partition_ready_marker``, ``_SUCCESS``) a day whose events folder holds data files but
    not the marker is still being written, as the DAG's wait reads it
    (:func:`segmint.ingest.files.as_of_delivery`)."""
    return _partitions(landing, marker)[0]


def _partitions(landing: Path, marker: str = "") -> tuple[date | None, date | None]:
    """The newest partition date holding a data file (:func:`latest_partition`), and the
    newest ``dt=`` folder's date."""
    from segmint.ingest.files import holds_data_file

    by_day: dict[date, list[Path]] = {}
    for source in LANDING_SOURCES:
        if (landing / source).is_dir():
            for part in (landing / source).iterdir():
                if (m := PARTITION_RE.match(part.name)) and (day := _calendar_date(m.group(1))):
                    by_day.setdefault(day, []).append(part)
    newest = max(by_day, default=None)
    for day in sorted(by_day, reverse=True):
        landed = [part for part in by_day[day] if part.is_dir() and holds_data_file(part)]
        unmarked = marker and any(
            part.parent.name == "events" and not (part / marker).is_file() for part in landed
        )
        if landed and not unmarked:
            return day, newest
    return newest, newest


def _calendar_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _add_warehouse(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warehouse", metavar="FILE", help="DuckDB warehouse file (default: settings)")


def _add_landing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", metavar="DIR", help="landing zone folder (default: settings)")


def _add_as_of(p: argparse.ArgumentParser, reads_landing: bool) -> None:
    # Not argparse's required=True: a missing --as-of is one line, exit code 1 (README).
    # The help said "(default: required)" beside a bracketed [--as-of DATE].
    needed = (
        "default: the newest dt= partition in the landing zone holding a data file"
        if reads_landing
        else "required"
    )
    p.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help=f"as-of date, at most tomorrow in UTC ({needed})",
    )


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    return settings.with_overrides(
        warehouse=getattr(args, "warehouse", None),
        landing=getattr(args, "landing", None),
        output=getattr(args, "output", None),
        audiences=getattr(args, "audiences", None),
    )


def partition_folders(landing: Path, day: date) -> list[Path]:
    """The ``dt=`` folders of ``day`` under the source folders of the landing zone."""
    folders = (landing / source / f"dt={day.isoformat()}" for source in LANDING_SOURCES)
    return [folder for folder in folders if folder.is_dir()]


def _resolve_as_of(args: argparse.Namespace, settings: Settings) -> date:
    """The as-of date of a command: ``--as-of``, else the newest partition; a date later
    than tomorrow (UTC) is refused here, before anything runs (:func:`check_as_of`)."""
    if getattr(args, "as_of", None):
        check_as_of(args.as_of, origin="--as-of", fix="check --as-of for a typo (YYYY-MM-DD)")
        return args.as_of
    if hasattr(args, "landing"):
        marker = settings.ingest.partition_ready_marker
        found, newest = _partitions(settings.landing, marker)
        if found and newest != found:
            folders = " and ".join(map(str, partition_folders(settings.landing, newest)))
            unmarked = f", or events files without the {marker} marker" if marker else ""
            print(
                f"{_command(args)}: warning: as-of date {found}, the newest partition holding "
                f"a data file: {folders} holds none yet (empty, or only files still being "
                f"written, named _ or .{unmarked}); pass --as-of {newest} to run that night",
                file=sys.stderr,
            )
        if found:
            folders = " and ".join(map(str, partition_folders(settings.landing, found)))
            check_as_of(
                found,
                origin=f"the newest partition, {folders}",
                fix="move that misdated folder to its real date, or pass --as-of DATE",
            )
            return found
        # A mistyped --landing: "pass --as-of" would only lead to the same fault, said later.
        raise SegmintError(landing_problem(settings.landing) or _no_partitions(settings.landing))
    raise SegmintError("--as-of DATE is required")


def _no_partitions(landing: Path, shown: int = 6) -> str:
    """Why a landing zone with no ``dt=`` partition has no night to run, with what it holds.

    It said "no dt=YYYY-MM-DD partitions under ...; pass --as-of", and a first-time user who
    passed --as-of ingested nothing and failed later; the files put beside the contract's
    folders (``events/2026-06-30/``, files at the top) were not named."""
    entries = []
    for entry in sorted(landing.iterdir()):
        if entry.name.startswith("."):
            continue
        entries.append(entry.name + ("/" if entry.is_dir() else ""))
        if entry.is_dir() and entry.name in LANDING_SOURCES:
            entries += [
                f"{entry.name}/{sub.name}" + ("/" if sub.is_dir() else "")
                for sub in sorted(entry.iterdir())
                if not sub.name.startswith(".")
            ]
    holds = "it is empty"
    if entries:
        more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
        holds = f"it holds {', '.join(entries[:shown])}{more}"
    return (
        f"the landing zone {landing} has no partition to load ({holds}): segmint reads "
        f"{landing}/events/dt=YYYY-MM-DD/ and {landing}/crm/dt=YYYY-MM-DD/ "
        "(docs/data-contract.md); deliver the files there, or pass --landing the folder that "
        "holds events/ and crm/"
    )


def _print_results(results: list[StageResult]) -> None:
    for result in results:
        print("\n".join(_result_lines(result)))


def _result_lines(result: StageResult) -> list[str]:
    return [result.line()] + [f"  warning: {warning}" for warning in result.warnings]


def _print_come_what_may(*lines: str) -> None:
    """Print the lines of a night's progress at once (a pipe such as `segmint run | tee
    log` held them until the night ended), and go on without them if the reader is gone.

    `segmint run | head -1`, a `tee` that was killed or a cron job's closed output stopped
    the night between two stages (a BrokenPipeError, exit code 141), not published: a
    reader of the output is not a reason to leave a night half done. The rest of the output
    is dropped; the exit code is the night's."""
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        _silence(sys.stdout)


# --- commands --------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from segmint.generate import generate

    settings = _settings(args)
    summary = generate(
        settings.landing,
        customers=args.customers,
        days=args.days,
        end_date=args.end_date,
        seed=args.seed,
        fmt=args.format,
        dirt_rate=args.dirt_rate,
        truth_dir=Path(args.truth) if args.truth else None,
    )
    print(summary)
    return 0


def _stage_command(stage: str, *, needs_landing: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from segmint.pipeline import run_stage

        settings = _settings(args)
        settings = _apply_stage_flags(args, settings)
        as_of = _resolve_as_of(args, settings)
        options = {}
        if getattr(args, "reload_since", None):
            options["reload_since"] = args.reload_since
        with _night(settings, as_of, f"segmint {stage}", [stage]):
            result = run_stage(stage, settings, as_of, log_progress=args.verbose, **options)
            _print_results([result])
        return 0

    command.__name__ = f"cmd_{stage}"
    return command


@contextlib.contextmanager
def _night(settings: Settings, as_of: date, command: str, stages: list[str]) -> Iterator[None]:
    """The warehouse for this command's night alone: no stage of another night runs between
    its stages, nor this stage between another night's (:func:`segmint.ops.command_night`).

    A warehouse that does not exist is refused unless ``stages`` begin the night with
    ``ingest``, which creates it: a mistyped ``--warehouse`` on a later stage's command
    created an empty warehouse there (and its folder), and `segmint publish` of that
    path then said it published 9 tables, 0 rows, exit code 0. The refusal creates
    nothing there."""
    from segmint.ops import command_night, night_path
    from segmint.pipeline import check_warehouse_path
    from segmint.warehouse import lock_path

    check_warehouse_path(settings.warehouse)

    def refuse_a_missing_warehouse() -> None:
        if "ingest" not in stages:
            _refuse_a_missing_warehouse(settings)

    # No lock or night file beside it: no segmint process is creating it there. (Taking
    # the night first left a .lock and a .night file beside a mistyped path.)
    if not any(p.exists() for p in (lock_path(settings.warehouse), night_path(settings.warehouse))):
        refuse_a_missing_warehouse()
    # Else checked once the night is this command's: another night's ingest may create it.
    with command_night(settings.warehouse, as_of, command):
        refuse_a_missing_warehouse()
        yield


def _refuse_a_missing_warehouse(settings: Settings, done: str = "") -> None:
    """Stop a command that needs the working warehouse when it does not exist (a typo in
    --warehouse) or cannot be one: ``done`` says what was therefore not done.

    The folder given for the file (``--warehouse warehouse``) was "unexpected IOException:
    ... Is a directory", exit code 2, from `report`, `erase` and the audience commands, and
    left ``warehouse.lock`` beside it."""
    from segmint.pipeline import check_warehouse_path

    check_warehouse_path(settings.warehouse)
    if not settings.warehouse.exists():
        raise SegmintError(
            f"the warehouse {settings.warehouse} does not exist{done}: only the ingest stage "
            "creates one (segmint run, segmint ingest); check --warehouse, "
            "SEGMINT_WAREHOUSE or warehouse in the settings file for a typo"
        )


def _apply_stage_flags(args: argparse.Namespace, settings: Settings) -> Settings:
    import dataclasses

    horizon = getattr(args, "horizon_days", None)
    if horizon:
        settings = dataclasses.replace(
            settings, propensity=dataclasses.replace(settings.propensity, horizon_days=horizon)
        )
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from segmint.pipeline import run_pipeline

    settings = _apply_stage_flags(args, _settings(args))
    as_of = _resolve_as_of(args, settings)
    stages = list(STAGES)
    if args.stages is not None:  # "ingest, validate" is meant as two stages; "" as none
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        if not stages:
            raise SegmintError(f"--stages names no stage; stages: {', '.join(STAGES)}")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SegmintError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    # In the night's order, each once: "validate,ingest" validated before loading (and
    # failed), "publish,transform" published the marts of the night before.
    stages = [s for s in STAGES if s in stages]
    _print_come_what_may(
        f"segmint run: as_of={as_of} warehouse={settings.warehouse} landing={settings.landing}"
    )
    # Each stage's wall time, for the last line: the stage lines said what each did, never
    # how long it took, and a night run by hand or from cron records no ops.pipeline_runs.
    timings: list[tuple[str, float]] = []
    started = last = 0.0

    def done(result: StageResult) -> None:
        nonlocal last
        now = time.monotonic()
        timings.append((result.stage, now - last))
        last = now
        _print_come_what_may(*_result_lines(result))

    with _night(settings, as_of, "segmint run", stages):
        if {"ingest", "audiences", "report"} & set(stages):  # the stages that write there
            _check_output_folder(settings)
        started = last = time.monotonic()  # after any wait for another night
        try:
            run_pipeline(
                settings,
                as_of,
                stages,
                on_result=done,
                log_progress=args.verbose,  # the results and their warnings are printed
            )
        except BaseException as exc:
            from segmint.report.failed import leave_failure_page

            if (stage := failed_stage(exc)) is not None:
                leave_failure_page(settings, as_of, stage, exc, stages)
                _note_published(exc, settings, as_of)
            raise
    stage_times = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings)
    _print_come_what_may(
        f"segmint run: {len(timings)} stage(s) done for as_of={as_of} in "
        f"{time.monotonic() - started:.1f} s ({stage_times})"
    )
    return 0


def _check_output_folder(settings: Settings) -> None:
    """Refuse a run outputs folder where no file can be created, before the night runs.

    `segmint run --output /proc/out` (or an ``output`` on a share that is not mounted, a
    folder of another user) loaded, built, segmented and scored the night, and failed at
    its audiences stage, the first to write there: the night's work, unpublished, and the
    whole of it again once the folder was fixed. The folder is made, as the night would; a
    probe file is made in it and removed."""
    folder = settings.output
    probe = folder / f".segmint-write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.open("wb").close()
        probe.unlink()
    except OSError as exc:
        named = exc.filename and Path(exc.filename) not in (folder, probe)
        where = f" ({exc.filename})" if named else ""
        raise SegmintError(
            f"the run outputs folder {folder} cannot hold files: {exc.strerror or exc}{where}; "
            "nothing was run: check --output, SEGMINT_OUTPUT or output in the settings file, "
            "or let this user create files there"
        ) from exc


# --- audiences and erasure (segmint.audiences) ------------------------------------------


def cmd_audience_build(args: argparse.Namespace) -> int:
    from segmint.pipeline import run_stage

    settings = _settings(args)
    as_of = _resolve_as_of(args, settings)
    with _night(settings, as_of, "segmint audience build", ["audiences"]):
        _check_output_folder(settings)  # the declared exports go there
        _print_results([run_stage("audiences", settings, as_of, log_progress=args.verbose)])
    return 0


def cmd_audience_validate(args: argparse.Namespace) -> int:
    from segmint.audiences.build import defined_names
    from segmint.audiences.compile import Catalog, check_names, missing_inputs, unseen_values
    from segmint.audiences.definitions import DefinitionError, load_definitions
    from segmint.warehouse import connect, exclusive

    settings = _settings(args)
    # It left a lock file, and the folder a mistyped --warehouse named, behind it.
    _refuse_a_missing_warehouse(settings, ", so no definition was checked against it")
    # Leniently, then the names: every fault of the folder at once, those of the files'
    # structure and the names the warehouse does not know.
    defs = load_definitions(settings.audiences, strict=False)
    with exclusive(settings.warehouse, "audience validate"):
        con = connect(settings.warehouse, read_only=True)
        try:
            cat = Catalog.read(con, _resolve_as_of(args, settings), **defined_names(settings))
            unseen = unseen_values(con, defs, cat)
        finally:
            con.close()
    problems = defs.problems + check_names(defs, cat, strict=False)
    if problems:
        raise DefinitionError(problems)
    for aud in defs.audiences.values():
        missing = missing_inputs(aud, defs, cat)
        state = "ok" if not missing else "cannot build: " + "; ".join(missing)
        print(f"{aud.name:<32} {aud.file}  {state}")
    for warning in defs.warnings + [w for _, w in unseen]:
        print(f"warning: {warning}")
    print(
        f"{len(defs.audiences)} audience(s), {len(defs.suppressions)} suppression list(s), "
        f"{len(defs.groups)} priority group(s) valid"
    )
    return 0


def cmd_audience_export(args: argparse.Namespace) -> int:
    from segmint.audiences.export import export_audience

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    settings = _settings(args)
    # It created an empty warehouse there and said "marts.customers does not exist: run the
    # transform stage first"; the next command then found that empty file.
    _refuse_a_missing_warehouse(settings, ", so nothing was exported")
    result = export_audience(settings, args.name, args.format, Path(args.out), args.as_of, columns)
    print(result.line())
    return 0


def cmd_audience_readout(args: argparse.Namespace) -> int:
    import json

    from segmint.audiences.readout import readout

    settings = _settings(args)
    # It left a lock file, and the folder a mistyped --warehouse named, behind it.
    _refuse_a_missing_warehouse(settings, ", so nothing was read out")
    result = readout(
        settings,
        args.name,
        args.date_from,
        args.date_to,
        snapshot=args.snapshot,
        alpha=args.alpha,
        power=args.power,
        mde=args.mde,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print("\n".join(result.lines()))
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from segmint.audiences.erasure import erase_customers, read_id_file

    ids = list(args.customer_id or [])
    if args.file:
        ids += read_id_file(Path(args.file))
    settings = _settings(args)
    # A mistyped --warehouse created an empty warehouse, tombstoned the ids in it and said
    # "erasure ...: 0 row(s) deleted", exit code 0: the customers' rows stayed where they
    # were, and the request looked done.
    _refuse_a_missing_warehouse(settings, ", so nothing was erased")
    result = erase_customers(settings, ids, note=args.note)
    print("\n".join(result.lines()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from segmint.report import report_command

    out = Path(args.out) if args.out else None
    settings = _settings(args)
    # It left a lock file, and the folder a mistyped --warehouse named, behind it.
    _refuse_a_missing_warehouse(settings, ", so no report was written")
    print(report_command(settings, args.as_of, out))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from segmint.transform import reader_docs

    print(reader_docs(_settings(args), Path(args.out) if args.out else None).resolve())
    return 0


def _add_docs_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "docs",
        help="write the dbt docs of the published warehouse as one HTML page",
        description="Every model, column and test with its description, the SQL and the "
        "lineage, as one self-contained page for readers who cannot run dbt (docs/models.md); "
        "rendered from the published copy, read-only, so it can run while the pipeline does.",
    )
    _add_warehouse(p)
    p.add_argument("--output", metavar="DIR", help="run outputs folder (default: settings)")
    p.add_argument(
        "--out", metavar="PATH", help="default: <output>/<published night>/dbt_docs/index.html"
    )
    p.set_defaults(func=cmd_docs)


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the nightly report: one self-contained HTML page (docs/report.md)",
        description="Segments, propensity, audiences, data quality and drift in one offline "
        "HTML file; the warehouse is opened read-only.",
    )
    _add_warehouse(p)
    p.add_argument("--as-of", type=_date, metavar="DATE", help="default: the latest run")
    p.add_argument("--output", metavar="DIR", help="run outputs folder (default: settings)")
    p.add_argument("--out", metavar="PATH", help="default: <output>/<as-of>/report.html")
    p.set_defaults(func=cmd_report)


def _add_audience_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audience",
        help="build, validate, export and read out marketing audiences",
        description="Audiences defined in YAML (docs/audiences.md).",
    )
    asub = p.add_subparsers(dest="audience_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        _add_warehouse(q)
        q.add_argument("--audiences", metavar="DIR", help="definitions folder (default: settings)")

    q = asub.add_parser(
        "build",
        help="build every audience for an as-of date",
        description="Build every audience of the definitions folder for an as-of date: its "
        "membership snapshot (audiences.members, holdouts included) and the export files the "
        "definitions declare. The nightly audiences stage, on its own.",
    )
    common(q)
    _add_as_of(q, False)
    q.add_argument("--output", metavar="DIR", help="run outputs (declared exports)")
    q.set_defaults(func=cmd_audience_build)

    q = asub.add_parser(
        "validate",
        help="check the definitions against the warehouse",
        description="Check every definition against the warehouse (features, segments, models "
        "and values it names) and list every fault at once; exit code 1 on any (for CI).",
    )
    common(q)
    _add_as_of(q, False)
    q.set_defaults(func=cmd_audience_validate)

    q = asub.add_parser(
        "export",
        help="write an audience file (consent always enforced)",
        description="Write an audience snapshot as one file in a format for an e-mail tool or "
        "an ad platform; only members with the definition's consent are written, and the "
        "export is logged (audiences.exports).",
    )
    common(q)
    q.add_argument("name", help="audience name")
    q.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    q.add_argument("--out", required=True, metavar="PATH", help="file to write")
    q.add_argument("--as-of", type=_date, metavar="DATE", help="snapshot (default: latest)")
    q.add_argument("--columns", metavar="A,B", help="profile columns for csv/parquet")
    q.set_defaults(func=cmd_audience_export)

    q = asub.add_parser(
        "readout",
        help="target vs holdout: conversion and revenue uplift",
        description="Compare the targets and the holdout of an audience snapshot over the "
        "orders of --from..--to: conversion and revenue per customer, their uplift, interval "
        "and p-value, and a verdict in words.",
    )
    common(q)
    q.add_argument("name", help="audience name")
    q.add_argument(
        "--from",
        dest="date_from",
        type=_date,
        required=True,
        metavar="DATE",
        help="first order date of the campaign window",
    )
    q.add_argument(
        "--to",
        dest="date_to",
        type=_date,
        required=True,
        metavar="DATE",
        help="last order date of the window, included",
    )
    q.add_argument(
        "--snapshot", type=_date, metavar="DATE", help="default: the newest built before --from"
    )
    for name, parameter in PARAMETERS.items():
        q.add_argument(
            parameter.option,
            dest=name,
            type=_parameter(parameter),
            default=parameter.default,
            help=parameter.help(),
        )
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=cmd_audience_readout)

    p = sub.add_parser(
        "erase",
        help="erase customers from every table and keep them from coming back",
        description="Delete every row of the customers, record tombstones (hashed ids), "
        "list past export files that contained them; logged in ops.erasures. Ids match "
        "exactly (but '123, Excel's text mark, is 123, as the ingest reads it): an id with "
        "no row anywhere is still tombstoned, with a warning naming stored ids "
        "that differ only in case or spaces (exit code 0).",
    )
    _add_warehouse(p)
    p.add_argument("--customer-id", action="append", metavar="ID", help="repeatable")
    p.add_argument("--file", metavar="PATH", help="ids, one a line (or CSV with customer_id)")
    p.add_argument("--note", help="reference of the request (no personal data)")
    p.set_defaults(func=cmd_erase)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segmint",
        description="Batch customer analytics on your own warehouse: ingest, validate, "
        "model, segment, score, publish.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (default: $SEGMINT_CONFIG, else ./segmint.toml if present)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "generate",
        help="write a realistic synthetic landing zone",
        description="Write a synthetic shop's events and CRM files, with injected dirt "
        "(duplicates, late events, malformed lines), into a landing zone, and its ground "
        "truth (latent customer types, future purchases) beside it; `make run` uses it.",
    )
    _add_landing(p)
    p.add_argument(
        "--customers",
        type=_int_up_to(GENERATE_MAX_CUSTOMERS, "about 17 GiB of memory over 90 days"),
        default=20_000,
        help=f"customers to simulate, 1 to {GENERATE_MAX_CUSTOMERS}, default 20000",
    )
    p.add_argument(
        "--days",
        type=_int_up_to(GENERATE_MAX_DAYS, "ten years"),
        default=90,
        help=f"days of events, 1 to {GENERATE_MAX_DAYS}, default 90",
    )
    p.add_argument(
        "--end-date",
        type=_date,
        default=date(2026, 6, 30),
        help="last partition date, default 2026-06-30",
    )
    p.add_argument(
        "--seed", type=_non_negative_int, default=7, help="random seed, 0 or more, default 7"
    )
    p.add_argument(
        "--format",
        choices=["jsonl", "jsonl.gz", "parquet"],
        default="jsonl.gz",
        help="event file format, default jsonl.gz",
    )
    p.add_argument(
        "--dirt-rate",
        type=_number_in(0, 0.2, "0.002 for 0.2%", open_low=False, open_high=False),
        default=0.002,
        help="share of records made dirty (duplicates, late, malformed), 0 to 0.2, default 0.002",
    )
    p.add_argument(
        "--truth",
        metavar="DIR",
        help="ground-truth folder (default: ground_truth/ beside the landing zone)",
    )
    p.set_defaults(func=cmd_generate)

    stage_help = {
        "ingest": ("load new landing files into raw.*, quarantining bad records", True),
        "validate": ("apply the quality gate to the as-of partition's validation results", True),
        "transform": ("build the dbt models (staging, intermediate, marts)", False),
        "segment": ("fit K-Means segments and write ml.customer_segments", False),
        "score": ("train and score purchase/churn propensity models", False),
        "recommend": ("next-best products per customer (ml.recommendations)", False),
        "publish": ("atomically publish a read-only copy of the warehouse", False),
    }
    for stage, (help_text, needs_landing) in stage_help.items():
        p = sub.add_parser(stage, help=help_text, description=help_text)
        _add_warehouse(p)
        if needs_landing:
            _add_landing(p)
        _add_as_of(p, needs_landing)
        if stage == "score":
            p.add_argument("--horizon-days", type=_positive_int, metavar="N", help=HORIZON_HELP)
        if stage == "ingest":
            p.add_argument("--output", metavar="DIR", help="run outputs (GX Data Docs)")
            p.add_argument(
                "--reload-since",
                type=_date,
                metavar="DATE",
                help="also read again the files already loaded for partitions from DATE on, "
                "replacing what they loaded (after changing an [ingest] setting that "
                "quarantined their rows, such as epoch_timestamp_unit or field_aliases)",
            )
        p.set_defaults(func=_stage_command(stage, needs_landing=needs_landing))

    p = sub.add_parser(
        "run",
        help="run the whole nightly pipeline for one as-of date",
        description=f"Run every stage in order: {', '.join(STAGES)}.",
    )
    _add_warehouse(p)
    _add_landing(p)
    _add_as_of(p, True)
    p.add_argument("--output", metavar="DIR", help="run outputs folder (default: settings)")
    p.add_argument("--horizon-days", type=_positive_int, metavar="N", help=HORIZON_HELP)
    p.add_argument(
        "--audiences", metavar="DIR", help="audience definitions folder (default: settings)"
    )
    p.add_argument(
        "--stages", metavar="A,B", help="comma-separated subset of stages, run in the night's order"
    )
    p.set_defaults(func=cmd_run)

    _add_audience_parsers(sub)
    _add_report_parser(sub)
    _add_docs_parser(sub)
    _take_global_options_after_the_command(parser)
    return parser


def _take_global_options_after_the_command(parser: argparse.ArgumentParser) -> None:
    """Accept ``--config`` and ``-v`` after the command too (``segmint run ... -v``): they
    were refused there, "unrecognized arguments: -v", exit code 2, where an operator adds
    them to a command line. Given on both sides, the one after the command wins."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for sub in set(action.choices.values()):
            sub.add_argument(
                "--config", metavar="FILE", default=argparse.SUPPRESS, help="as segmint --config"
            )
            sub.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                help="log progress to stderr",
            )  # fmt: skip
            _take_global_options_after_the_command(sub)


def _settings_or_none(args: argparse.Namespace) -> Settings | None:
    try:
        return _settings(args)
    except Exception:  # the error being reported matters more than a hint
        return None


def _lock_message(args: argparse.Namespace, exc: BaseException) -> str:
    """One line when DuckDB could not lock the warehouse because another process holds it
    (who, what segmint did, what to do: as the DAG's failure message says), or "" for any
    other error."""
    from segmint.ops import lock_message

    settings = _settings_or_none(args)
    if settings is None:
        return ""
    now = "segmint stopped, without waiting for it (what was committed before is kept)"
    held = lock_message(exc, settings, now)
    return held + ", then run the same command again" if held else ""


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (Linux and macOS poll it as an
    error); a file, a terminal or a captured stream is not."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _silence(stream: object) -> None:
    """Point ``stream``'s file descriptor at /dev/null: what is still buffered for it is
    dropped at the exit instead of failing ("Exception ignored ... BrokenPipeError")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (SegmintError, ConfigError, FileNotFoundError) as exc:
        if _debug():
            raise
        print(
            f"{_command(args)}: error: {_published(exc, f'{_in_stage(exc)}{exc}')}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        return _ended_by_signal(args, signal.SIGINT)
    except Terminated:
        return _ended_by_signal(args, signal.SIGTERM)
    except Exception as exc:  # one line for people; SEGMINT_DEBUG=1 for the traceback
        if _signalled or _query_interrupted(exc):
            # Ctrl-C during a DuckDB query: DuckDB stops it and raises its own RuntimeError
            # ("Query interrupted") in place of the KeyboardInterrupt.
            return _ended_by_signal(args, _signalled[0] if _signalled else signal.SIGINT)
        if isinstance(exc, BrokenPipeError) and _stdout_gone():
            # The reader of the output is gone (`segmint ... | head -1`): end quietly, as
            # Unix tools do. Output is printed only after the work it reports is committed,
            # so the command stops between two pieces of work, never inside one.
            _silence(sys.stdout)
            return BROKEN_PIPE
        if _debug():
            raise
        held = _lock_message(args, exc)
        if held:  # not a bug: someone else has the working warehouse open
            print(
                f"{_command(args)}: error: {_published(exc, f'{_in_stage(exc)}{held}')}",
                file=sys.stderr,
            )
            return 1
        from segmint.ops import disk_fault_message

        fault = disk_fault_message(exc, _settings_or_none(args))
        if fault:  # not a bug either: a full disk, a file-size limit, a read-only folder
            print(
                f"{_command(args)}: error: {_published(exc, f'{_in_stage(exc)}{fault}')}",
                file=sys.stderr,
            )
            return 1
        print(
            f"{_command(args)}: unexpected {type(exc).__name__}: "
            + _published(exc, f"{_in_stage(exc)}{exc} (set SEGMINT_DEBUG=1 for the traceback)"),
            file=sys.stderr,
        )
        return 2


def _debug() -> bool:
    """Whether ``SEGMINT_DEBUG`` asks for tracebacks. ``SEGMINT_DEBUG=0`` (a cron line or a
    unit file that says so) asked for them too, any text being set: every error became a
    traceback, exit code 1, an unforeseen one too (the README's code for those is 2)."""
    return os.environ.get("SEGMINT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _command(args: argparse.Namespace) -> str:
    """The command as the user typed it, for its error line: `segmint audience export`
    (it said `segmint audience`, whichever of build, validate, export, readout failed)."""
    action = getattr(args, "audience_command", None)
    return f"segmint {args.command}" + (f" {action}" if action else "")


def _note_published(exc: BaseException, settings: Settings, as_of: date) -> None:
    """Keep on ``exc`` what analysts read while this night is not published (the night the
    published copy holds, :func:`segmint.ops.published_line`), for the end of its error line:
    the DAG's failure message said so, `segmint run`'s did not."""
    from segmint.ops import published_line

    with contextlib.suppress(Exception):  # the failure being reported matters more
        exc.segmint_published = published_line(settings, as_of)  # type: ignore[attr-defined]


def _published(exc: BaseException, message: str) -> str:
    """``message`` and then, when kept on ``exc``, the night the published copy holds: a
    sentence of its own, so a message without a full stop gets one ("... has nothing to
    build Nothing is published yet" read as one sentence)."""
    note = getattr(exc, "segmint_published", "")
    if note and message and not message.rstrip().endswith((".", "!", "?")):
        message = message.rstrip() + "."
    return message + note


def _in_stage(exc: BaseException) -> str:
    """Which stage of ``segmint run`` failed, said before the error (it was a second line on
    stderr, logged), or "" for an error outside a run's stages."""
    stage = failed_stage(exc)
    if not stage:
        return ""
    return (
        f"stage {stage} failed: "
        if failed_last_stage(exc)
        else f"stage {stage} failed, the stages after it did not run: "
    )


def _ended_by_signal(args: argparse.Namespace, signum: int) -> int:
    """The line and exit status (128 + the signal, as a shell reports it) of a command that
    Ctrl-C or SIGTERM ended."""
    if signum == signal.SIGINT:
        print(f"{_command(args)}: interrupted", file=sys.stderr)
    else:
        print(
            f"{_command(args)}: terminated (SIGTERM); what was committed before is "
            "kept: run the same command again",
            file=sys.stderr,
        )
    return 128 + signum


# The signal that is ending this process (SIGTERM), once it came.
_signalled: list[int] = []


def _query_interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB's word for a query that Ctrl-C stopped (DuckDB catches the
    SIGINT itself while a query runs; segmint never interrupts a query of its own)."""
    name = type(exc).__name__
    return name == "InterruptException" or (
        name == "RuntimeError" and str(exc) == "Query interrupted"
    )


class Terminated(BaseException):
    """SIGTERM came (``kill``, a service or container stopping, a scheduler giving up).
    A BaseException, like KeyboardInterrupt, so no ``except Exception`` takes it for a
    failure of its own."""


def _on_sigterm(signum: int, frame: object) -> None:
    # By default SIGTERM ended the process on the spot, silently: no line saying why, no
    # ``finally`` (a stage's temporary files stayed, its dbt child was killed only by the
    # kernel). Now it ends as Ctrl-C does: the stage's open transaction rolls back and its
    # clean-ups run. A second SIGTERM ends it at once.
    _signalled.append(signum)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated


def entry() -> NoReturn:
    """The ``segmint`` command: :func:`main`, then the process ends without the interpreter's
    teardown (:mod:`segmint.process`)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    exit_now(main())


if __name__ == "__main__":
    entry()
