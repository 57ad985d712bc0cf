"""A project-local Airflow: ``make run`` and ``make airflow`` go through here.

Everything lives in ``AIRFLOW_HOME`` (``.airflow/`` in the repository unless the variable is
set): a SQLite metadata database created on first use (see :data:`SQLITE_CONNECT_ARGS` for
how its processes share it), ``airflow.cfg``, logs. The DAG
folder is the repository's ``dags/``; Airflow's example DAGs are off. The one-slot pool
``segmint_warehouse`` (DuckDB has one writer) is created with the database.

Usage::

    python -m segmint.airflow_env init                 # create/upgrade the metadata DB, pool
    python -m segmint.airflow_env dags-test 2026-06-30 # airflow dags test segmint_nightly DATE
    python -m segmint.airflow_env standalone           # UI on http://127.0.0.1:8080
    python -m segmint.airflow_env backfill A B         # nights A..B, run by the scheduler
    python -m segmint.airflow_env backfill A B --reprocess failed   # and redo failed nights
    python -m segmint.airflow_env env                  # print the variables, PATH (for a shell)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

from segmint.ops import WAREHOUSE_POOL

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "segmint_nightly"
READY_STAMP = ".segmint-ready"

# The scheduler, the dag-processor, the API server, every task's supervisor and the CLI
# (`airflow backfill create`, `tasks clear`) all write the one SQLite metadata database.
# With SQLite's defaults (rollback journal, 5 s busy timeout) a busy scheduler on 2 cores
# made `airflow backfill create` fail half way with "database is locked", leaving a backfill
# row without its runs. Three settings make them queue instead:
# - WAL journal mode (set on the file by :func:`ensure_ready`; Airflow 3 sets it too, on each
#   connection): readers no longer block a writer's commit, so only writer-writer waits
#   remain;
# - a 60 s busy timeout on every connection (Airflow reads this dict through
#   ``[database] sql_alchemy_connect_args``), so a writer waits its turn;
# - a transaction that starts with a SAVEPOINT takes the write lock at once (see
#   :class:`_WriteFirstConnection`): the busy timeout alone did not help there.


class _WriteFirstCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        if not self.connection.in_transaction and sql.lstrip()[:9].upper() == "SAVEPOINT":
            super().execute("BEGIN IMMEDIATE")
        return super().execute(sql, parameters)


class _WriteFirstConnection(sqlite3.Connection):
    """A SQLite connection whose savepoint transactions begin as writers.

    Python's sqlite3 begins a transaction only before an INSERT/UPDATE/DELETE, as the writer
    it is, so the busy timeout applies. A SAVEPOINT outside a transaction begins one as a
    reader instead, and SQLite refuses *at once* ("database is locked", no busy timeout) to
    let a reader write once another connection has written since its read. Airflow creates
    each backfill run in a savepoint that reads ``dag_run`` first, so `airflow backfill
    create` (and the UI's backfill) failed beside a busy scheduler with the 60 s timeout set.
    """

    def cursor(self, factory=_WriteFirstCursor):
        return super().cursor(factory)


SQLITE_CONNECT_ARGS = {"timeout": 60, "factory": _WriteFirstConnection}
SQLITE_JOURNAL_MODE = "wal"
MODULE = "segmint.airflow_env"  # not __name__: that is "__main__" under `python -m`


def airflow_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("AIRFLOW_HOME") or REPO_ROOT / ".airflow").resolve()


def dags_folder() -> Path:
    return REPO_ROOT / "dags"


def airflow_bin() -> str:
    """The ``airflow`` script of this interpreter's environment."""
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow_environ(
    home: Path | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for every Airflow command of the project-local installation."""
    env = dict(os.environ if base is None else base)
    home = (home or airflow_home(env)).resolve()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{MODULE}.SQLITE_CONNECT_ARGS",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        }
    )
    # `airflow standalone` starts its components as `airflow ...` found on PATH: put this
    # environment's scripts first even when the venv is not activated (make calls .venv/bin/).
    scripts = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != scripts:
        env["PATH"] = os.pathsep.join([scripts, env.get("PATH", os.defpath)])
    # Tasks may run with another working directory: make the segmint paths absolute.
    for key in ("SEGMINT_WAREHOUSE", "SEGMINT_LANDING", "SEGMINT_OUTPUT", "SEGMINT_AUDIENCES"):
        if env.get(key):
            env[key] = str(Path(env[key]).resolve())
    return env


def _run(args: list[str], env: Mapping[str, str], quiet: bool = False) -> None:
    log_file = airflow_home(env) / "logs" / "segmint-setup.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as out:
        proc = subprocess.run(
            [airflow_bin(), *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    if proc.returncode != 0:
        raise SystemExit(f"`airflow {' '.join(args)}` failed; see {log_file}")
    if not quiet:
        print(f"airflow {' '.join(args)}: ok")


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


def ensure_ready(env: Mapping[str, str]) -> Path:
    """Create or upgrade the metadata database and the pool, once per Airflow version."""
    home = airflow_home(env)
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / READY_STAMP
    wanted = f"{_airflow_version()} {dags_folder()} journal={SQLITE_JOURNAL_MODE}"
    if stamp.exists() and stamp.read_text().strip() == wanted and (home / "airflow.db").exists():
        return home
    print(f"Setting up a local Airflow in {home} (first use: about 15 s)")
    _run(["db", "migrate"], env)
    _set_journal_mode(home / "airflow.db")
    _run(
        [
            "pools",
            "set",
            WAREHOUSE_POOL,
            "1",
            "DuckDB allows one writing process: every task that writes the warehouse",
        ],
        env,
    )
    stamp.write_text(wanted + "\n")
    return home


def _set_journal_mode(db: Path) -> None:
    """Put the metadata database in WAL mode; the mode is kept in the file."""
    con = sqlite3.connect(db, timeout=SQLITE_CONNECT_ARGS["timeout"])
    try:
        mode = con.execute(f"pragma journal_mode={SQLITE_JOURNAL_MODE}").fetchone()[0]
    finally:
        con.close()
    if mode != SQLITE_JOURNAL_MODE:
        raise SystemExit(
            f"could not put {db} in {SQLITE_JOURNAL_MODE} mode (it says {mode!r}): stop every "
            "Airflow process using it (`make airflow`, a scheduler) and run `make run` again"
        )


def dags_test_command(as_of: str) -> list[str]:
    return [airflow_bin(), "dags", "test", DAG_ID, as_of]


REPROCESS = ("none", "failed", "completed")


def backfill_command(from_date: str, to_date: str, reprocess: str = "none") -> list[str]:
    """``airflow backfill create`` for the nights ``from_date``..``to_date``, one at a time.

    The DAG keeps nights in order by itself (its first task waits for an unfinished earlier
    night), and ``--max-active-runs 1`` says so to the scheduler too, so a backfill does not
    queue a month of runs that only wait. ``reprocess`` is Airflow's ``--reprocess-behavior``:
    whether nights that already have a finished run are run again (``failed``: the failed
    ones; ``completed``: all); by default they are skipped.
    """
    command = [
        airflow_bin(),
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        from_date,
        "--to-date",
        to_date,
        "--max-active-runs",
        "1",
    ]
    if reprocess != "none":
        command += ["--reprocess-behavior", reprocess]
    return command


def unfinished_backfill(env: Mapping[str, str]) -> str:
    """Why a new backfill cannot be created yet: an earlier backfill of the DAG is not
    finished (Airflow runs one backfill of a DAG at a time); "" when none is.

    ``airflow backfill create`` refused it with a 20-line traceback ending in
    ``AlreadyRunningBackfill``. A backfill created with no scheduler running (``make
    backfill`` before ``make airflow``) stays unfinished until one runs it, so this is met by
    a data engineer who fixes the range and runs ``make backfill`` again. Read from the
    project-local metadata database.
    """
    db = airflow_home(env) / "airflow.db"
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        row = con.execute(
            """
            select
                b.id, date(b.from_date), date(b.to_date), b.is_paused,
                count(r.id) filter (where r.state in ('queued', 'running')),
                count(r.id) filter (where r.state in ('success', 'failed'))
            from backfill as b
            left join backfill_dag_run as br on br.backfill_id = b.id
            left join dag_run as r on r.id = br.dag_run_id
            where b.dag_id = ? and b.completed_at is null
            group by b.id
            order by b.id desc
            limit 1
            """,
            (DAG_ID,),
        ).fetchone()
    finally:
        con.close()
    if row is None:
        return ""
    backfill_id, first, last, paused, left, done = row
    return (
        f"the backfill {backfill_id} of {DAG_ID} ({first}..{last}) is not finished"
        + (" and paused" if paused else "")
        + f": {left} of its night(s) queued or running, {done} done. Airflow runs one backfill "
        "of a DAG at a time: let the scheduler finish it (`make airflow`, the DAG unpaused"
        + ("; the backfill too: Unpause backfill on the DAG's page" if paused else "")
        + "), then run this `make backfill` again; or cancel it (the DAG's page in the UI: "
        f"Cancel backfill; or PUT /api/v2/backfills/{backfill_id}/cancel)"
    )


def ensure_dag_serialised(env: Mapping[str, str]) -> None:
    """Parse the DAG into the metadata database when it is not there yet.

    In Airflow 3 a backfill is created from the serialised DAG, which only a running
    dag-processor writes: ``make backfill`` on a fresh ``.airflow`` (before ``make
    airflow`` ever parsed the DAG) failed with a traceback ending in ``DagNotFound: Could
    not find dag segmint_nightly``. ``airflow dags reserialize`` writes it (about 15 s).
    """
    db = airflow_home(env) / "airflow.db"

    def serialised() -> bool:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            return (
                con.execute("select 1 from serialized_dag where dag_id = ?", (DAG_ID,)).fetchone()
                is not None
            )
        finally:
            con.close()

    if serialised():
        return
    print(f"Parsing the DAG {DAG_ID} into {db} (no scheduler has yet: about 15 s)")
    _run(["dags", "reserialize"], env, quiet=True)
    if not serialised():
        raise SystemExit(
            f"the DAG {DAG_ID} could not be parsed from {dags_folder()}: see `airflow dags "
            'list-import-errors` (in the shell of `eval "$(.venv/bin/python -m '
            'segmint.airflow_env env)"`)'
        )


def backfill_summary(env: Mapping[str, str], from_date: str, to_date: str) -> str:
    """What the backfill just created for ``from_date``..``to_date`` will do: the nights it
    runs, and those it skips because they already have a run, each with that run's state.

    Airflow skips such nights without a word, so "created" alone read as if the whole range
    would be run again. Read from the project-local metadata database (Airflow's
    ``backfill_dag_run`` rows of the DAG's latest backfill).
    """
    db = airflow_home(env) / "airflow.db"
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        rows = con.execute(
            """
            select date(b.logical_date), b.dag_run_id is not null, r.state
            from backfill_dag_run as b
            left join dag_run as r
                on r.dag_id = ? and date(r.logical_date) = date(b.logical_date)
                and r.id = (
                    select max(id) from dag_run
                    where dag_id = ? and date(logical_date) = date(b.logical_date)
                )
            where b.backfill_id = (select max(id) from backfill where dag_id = ?)
            order by b.sort_ordinal
            """,
            (DAG_ID, DAG_ID, DAG_ID),
        ).fetchall()
    finally:
        con.close()
    runs = [day for day, created, _ in rows if created]
    head = f"Backfill of {DAG_ID} {from_date}..{to_date} created"
    lines = [
        f"{head}: {len(runs)} night(s) to run ({_days(runs)})."
        if runs
        else f"{head}, but it runs no night."
    ]
    skipped = [(day, state) for day, created, state in rows if not created]
    if skipped:
        lines.append(
            f"{len(skipped)} night(s) already have a run and are not run again: "
            + ", ".join(f"{day} ({state or 'unknown'})" for day, state in skipped)
            + ". REPROCESS=failed runs the failed ones again, REPROCESS=completed every "
            "finished one (`make backfill FROM=... TO=... REPROCESS=failed`); a queued or "
            "running night is never run twice."
        )
    return "\n".join(lines)


def nights_not_over(from_date: str, to_date: str, today: date | None = None) -> list[date]:
    """The nights of ``from_date``..``to_date`` whose UTC day is not over yet (today and
    tomorrow, which :func:`check_nights` lets through).

    Airflow creates a backfill run only for a night whose data interval has ended and drops
    the others without a word: ``make backfill FROM=<yesterday> TO=<tomorrow>`` said "1
    night(s) to run" and nothing of the two it left out, and a range of only such nights
    ended in the traceback of ``NoBackfillRunsToCreate``.
    """
    from datetime import UTC, datetime, timedelta

    today = today or datetime.now(UTC).date()
    first, last = date.fromisoformat(from_date), date.fromisoformat(to_date)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [day for day in days if day >= today]


def _not_over_words(nights: list[date]) -> str:
    from datetime import UTC, datetime

    shown = str(nights[0]) if len(nights) == 1 else f"{nights[0]}..{nights[-1]}"
    return (
        f"{shown}: not over yet (today is {datetime.now(UTC).date()} UTC; a night runs once "
        "its UTC day has ended): the scheduled run of each does it, or a backfill once it is "
        "over"
    )


def nights_without_events(
    from_date: str, to_date: str, env: Mapping[str, str] | None = None
) -> str:
    """A line naming the nights of ``from_date``..``to_date`` whose events partition
    (``events/dt=DATE/``) holds no data file in the landing zone of the settings, or "".

    Such a night runs without that day's events (its validate task only warns), and one
    before the first delivery fails at ``segment``, with nothing to segment: a backfill over
    a month whose first days had no files showed nothing of it until the nights failed or
    published short, one by one. Said before they run, with the days, so a wrong range or a
    landing zone not synced yet is caught now.
    """
    from datetime import UTC, datetime, timedelta

    from segmint.config import load_settings
    from segmint.ingest.files import as_of_delivery

    try:
        landing = load_settings(environ=env).landing
    except Exception:  # a broken config is said by the night's first task
        return ""
    first, last = date.fromisoformat(from_date), date.fromisoformat(to_date)
    now = datetime.now(UTC)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    empty = [day for day in days if as_of_delivery(landing, day, now, 0).status != "landed"]
    if not empty:
        return ""
    spans: list[list[date]] = []
    for day in empty:
        if spans and day - spans[-1][-1] == timedelta(days=1):
            spans[-1][-1] = day
        else:
            spans.append([day, day])
    shown = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in spans)
    return (
        f"{len(empty)} of the {len(days)} night(s) have no events file in {landing}/events "
        f"(dt=DATE): {shown}. They run without that day's events (the validate task warns); "
        "a night with nothing loaded up to it fails at validate, before the transform. "
        "Check the dates and the landing zone (SEGMINT_LANDING) if that is not what you meant."
    )


def unpausing_runs_a_night(env: Mapping[str, str], today: date | None = None) -> str:
    """A warning for ``make backfill`` when unpausing the DAG, which its backfill needs, would
    also start a scheduled night with no events for it in the landing zone; "" otherwise.

    With ``catchup=False`` unpausing creates the run of the latest day over, yesterday. On
    the demo data (``make run``, then ``make airflow`` and ``make backfill`` as the README
    says) that night is months after the last partition: it ran on what was loaded and
    published it, and from then on no night of the demo published (readers never go back
    a night): ``make run`` and the backfill said "not published: ... holds the later night".
    Said while the DAG is still paused, with the setting that keeps such a night from
    running. Read from the project-local metadata database and the settings.
    """
    from datetime import UTC, datetime

    from segmint.cli import latest_partition
    from segmint.config import load_settings
    from segmint.ingest.files import as_of_delivery

    now = datetime.now(UTC)
    night = (today or now.date()) - timedelta(days=1)
    db = airflow_home(env) / "airflow.db"
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        paused = con.execute("select is_paused from dag where dag_id = ?", (DAG_ID,)).fetchone()
        ran = con.execute(
            "select 1 from dag_run where dag_id = ? and date(logical_date) = ?",
            (DAG_ID, str(night)),
        ).fetchone()
    finally:
        con.close()
    if not (paused and paused[0]) or ran:
        return ""
    try:
        settings = load_settings(environ=env)
    except Exception:  # a broken config is said by the night's first task
        return ""
    if settings.ingest.require_as_of_events:
        return ""
    landing = settings.landing
    if as_of_delivery(landing, night, now, 0).status == "landed":
        return ""
    newest = latest_partition(landing) if landing.is_dir() else None
    return (
        f"The DAG is paused. Unpausing it also starts its scheduled night of {night} (catchup "
        "is off: the latest day over), and the landing zone has no events for it "
        f"({landing}/events/dt={night}; "
        + (f"the newest partition is dt={newest}" if newest else "it holds no partition")
        + f"): that night runs on what is loaded and publishes {night}, and after it no "
        "earlier night publishes (readers never go back a night), this backfill's "
        "included. To keep it from running, set `[ingest] require_as_of_events = true` in "
        "the settings file (segmint.toml, or $SEGMINT_CONFIG) before unpausing: it then "
        'fails at its first task, loading nothing (docs/operations.md, "Backfills and '
        'reruns").'
    )


def _days(days: list[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]} ... {days[-1]}"


def check_nights(*days: str) -> None:
    """Refuse dates of ``make backfill``/``dags-test`` that are no nights, before Airflow
    is asked: a reversed range failed with a 20-line traceback of Airflow's, ``2026/06/01``
    was taken, and a date from the future created runs that fail one by one."""
    from segmint.pipeline import check_as_of
    from segmint.stages import SegmintError

    try:
        nights = [date.fromisoformat(day) for day in days]
        for night in nights:
            check_as_of(night, fix="check the date for a typo (YYYY-MM-DD)")
    except ValueError:
        raise SystemExit(f"not dates (YYYY-MM-DD): {' '.join(days)}") from None
    except SegmintError as exc:
        raise SystemExit(str(exc)) from None
    if nights != sorted(nights):
        raise SystemExit(f"the first night {days[0]} is after the last {days[-1]}")


DEMO_DEFAULTS = "SEGMINT_DEMO_DEFAULTS"


def _settings_file(env: Mapping[str, str]) -> tuple[Path, dict]:
    """The settings file the DAG's tasks read (``$SEGMINT_CONFIG``, else ``./segmint.toml``)
    and its keys; no keys when there is none or it is broken (the night's first task says
    so)."""
    import tomllib

    from segmint.config import DEFAULT_CONFIG_FILE, ENV_PREFIX

    path = Path(env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_FILE)
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path, {}


def demo_paths_yield(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``env`` without the demo's paths that the settings file sets itself, and a line for
    each path so given back to the file.

    The Makefile exports the demo's ``SEGMINT_LANDING``, ``SEGMINT_WAREHOUSE``,
    ``SEGMINT_OUTPUT`` and ``SEGMINT_AUDIENCES`` when the caller did not set them, and names
    those in ``SEGMINT_DEMO_DEFAULTS``. A variable wins over the settings file, so a data
    engineer who put their own landing zone and warehouse in ``segmint.toml`` and ran ``make
    airflow`` had every night run on the demo's. For ``make airflow`` and ``make backfill``
    the file's own paths now win over those defaults; a variable the caller set still wins
    (settings_file_overridden warns of it). ``make run`` stays on the demo."""
    from segmint.config import ENV_PREFIX

    out = {k: v for k, v in env.items() if k != DEMO_DEFAULTS}
    defaults = set(env.get(DEMO_DEFAULTS, "").split())
    if not defaults:
        return out, []
    path, data = _settings_file(env)
    said = []
    for key in ("landing", "warehouse", "output", "audiences"):
        name = f"{ENV_PREFIX}{key.upper()}"
        if name in defaults and isinstance(data.get(key), str) and name in out:
            del out[name]
            said.append(f"{key} = {data[key]!r} from {path} (not the demo's {env[name]})")
    return out, said


def settings_error(env: Mapping[str, str]) -> str:
    """Why the settings the DAG's tasks would read with ``env`` are refused (a settings file
    that is not TOML, an unknown key, a value of the wrong type, a misspelt ``SEGMINT_*``
    variable: :class:`segmint.config.ConfigError`, naming the file and the key), or "".

    Every night fails at its first task on such settings, not retried, so a backfill created
    over them ran as many failed nights as it had, each a failure alert, and needed
    ``REPROCESS=failed`` once the file was fixed: ``make backfill`` now refuses it first."""
    from segmint.config import ConfigError, load_settings

    try:
        load_settings(environ=env)
    except ConfigError as exc:
        return str(exc)
    return ""


def settings_file_overridden(env: Mapping[str, str]) -> str:
    """A warning naming the paths of the settings file that ``SEGMINT_*`` variables of
    ``env`` override, for the DAG's tasks; "" when none does. A variable wins over the file;
    the Makefile's demo defaults no longer do (:func:`demo_paths_yield`), but a variable set
    in the shell and forgotten there would move every night to other paths without a word.
    """
    from segmint.config import ENV_PREFIX

    path, data = _settings_file(env)
    base = path.absolute().parent
    overridden = [
        f"{key} = {str(data[key])!r} by {ENV_PREFIX}{key.upper()}={env[name]}"
        for key in ("warehouse", "landing", "output", "audiences")
        if isinstance(data.get(key), str)
        and (name := f"{ENV_PREFIX}{key.upper()}") in env
        and env[name]
        and (base / data[key]).resolve() != Path(env[name]).resolve()
    ]
    if not overridden:
        return ""
    return (
        f"Warning: the environment overrides {len(overridden)} path(s) of the settings file "
        f"{path}: {'; '.join(overridden)}. The DAG's tasks use the variables; unset them "
        "to use the file's paths."
    )


def standalone(env: Mapping[str, str]) -> int:
    """``airflow standalone`` on 127.0.0.1 with the DAG loaded; returns its exit code."""
    env = dict(env)
    port = env.get("AIRFLOW__API__PORT", "8080")
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.setdefault("AIRFLOW__API__PORT", port)
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{port}/execution/")
    # Local, single-user UI bound to 127.0.0.1: no login form.
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    ensure_ready(env)
    overridden = settings_file_overridden(env)
    if overridden:
        print(overridden)
    broken = settings_error(env)
    if broken:
        print(
            f"Warning: the settings the DAG's tasks read are refused: {broken}. Every night "
            "(scheduled, triggered or of a backfill) fails at its first task until that is "
            "fixed; the tasks read the settings when they run, so fixing the file is enough."
        )
    print(
        f"Airflow UI: http://127.0.0.1:{port}  (DAG {DAG_ID}; it starts paused: unpause it "
        "for the scheduler to run nights and backfills, which also runs yesterday's night "
        '(docs/operations.md, "Backfills and reruns"), or press Trigger and give its as_of '
        "date). Ctrl-C stops every component."
    )
    try:
        return subprocess.call([airflow_bin(), "standalone"], env=env)
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segmint.airflow_env", description="project-local Airflow"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create/upgrade the metadata database and the pool")
    p = sub.add_parser("dags-test", help=f"airflow dags test {DAG_ID} DATE")
    p.add_argument("as_of", metavar="DATE")
    sub.add_parser("standalone", help="start airflow standalone (UI on 127.0.0.1:8080)")
    p = sub.add_parser(
        "backfill",
        help="create a backfill of nights A..B (inclusive); the scheduler of "
        "`make airflow` runs them, oldest first",
    )
    p.add_argument("from_date", metavar="A")
    p.add_argument("to_date", metavar="B")
    p.add_argument(
        "--reprocess",
        choices=REPROCESS,
        default="none",
        help="nights that already have a finished run: skip them (none, the default), run "
        "the failed ones again (failed) or every one (completed)",
    )
    sub.add_parser("env", help="print the environment as shell exports")
    args = parser.parse_args(argv)

    env = airflow_environ()
    if args.command in ("standalone", "backfill", "env"):
        env, yielded = demo_paths_yield(env)
        if yielded and args.command != "env":
            print("The settings file's own paths: " + "; ".join(yielded) + ".")
    if args.command == "init":
        ensure_ready(env)
        return 0
    if args.command == "dags-test":
        check_nights(args.as_of)
        ensure_ready(env)
        return subprocess.call(dags_test_command(args.as_of), env=env)
    if args.command == "standalone":
        return standalone(env)
    if args.command == "backfill":
        check_nights(args.from_date, args.to_date)
        not_over = nights_not_over(args.from_date, args.to_date)
        if not_over and str(not_over[0]) == args.from_date:
            raise SystemExit(f"no backfill created: every night of it, {_not_over_words(not_over)}")
        broken = settings_error(env)
        if broken:
            raise SystemExit(
                f"no backfill created: the settings its nights would run with are refused: "
                f"{broken}. Every night would fail at its first task; fix that, then run "
                "this `make backfill` again"
            )
        ensure_ready(env)
        unfinished = unfinished_backfill(env)
        if unfinished:
            raise SystemExit(f"no backfill created: {unfinished}")
        ensure_dag_serialised(env)
        command = backfill_command(args.from_date, args.to_date, args.reprocess)
        code = subprocess.call(command, env=env)
        if code == 0:
            print(backfill_summary(env, args.from_date, args.to_date))
            last = str(not_over[0] - timedelta(days=1)) if not_over else args.to_date
            if not_over:
                print(f"Not in the backfill: {_not_over_words(not_over)}.")
            empty = nights_without_events(args.from_date, last, env)
            if empty:
                print(empty)
            unpausing = unpausing_runs_a_night(env)
            if unpausing:
                print(unpausing)
            overridden = settings_file_overridden(env)
            if overridden:
                print(overridden)
            print(
                "The scheduler runs it (start one with `make airflow`); the DAG must be unpaused."
            )
        return code
    # PATH too: `eval "$(... env)"` then `airflow ...` must find this environment's airflow
    # in a shell where the venv is not activated (docs/operations.md, "Backfills and reruns").
    for key in sorted(env):
        if key.startswith(("AIRFLOW", "SEGMINT_")) or key == "PATH":
            print(f"export {key}={shlex.quote(env[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
