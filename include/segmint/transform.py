"""The ``transform`` stage: ``dbt build`` of ``dbt_project/`` against the warehouse file.

dbt runs in a child process (``dbt build``) in the warehouse's folder, pointed at the file
through the ``SEGMINT_WAREHOUSE`` environment variable that ``dbt_project/profiles.yml``
reads (the file's name); the as-of date and snapshot dates travel the same way
(``SEGMINT_AS_OF_DATE``, ``SEGMINT_SNAPSHOT_DATES``), so a new date does not invalidate
dbt's partial parse. Its ``target/`` folder (compiled SQL, ``run_results.json``, the
partial-parse state) and its logs go next to the warehouse, under ``<warehouse
folder>/dbt/``, so two warehouses never share them and nothing lands in the repository; a
warehouse without parse state starts from the last one of this environment
(:class:`ParseState`).

This module never holds the DuckDB file open while dbt runs: it counts the raw rows before
and reads the marts' figures after, each time with a short read-only connection.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from segmint.config import Settings
from segmint.outputs import written_atomically
from segmint.stages import DbtKilledError, DiskFaultError, SegmintError, StageResult

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
WAREHOUSE_ENV = "SEGMINT_WAREHOUSE"
# The published copy dbt's ``published`` target reads (the docs): where publish writes it.
PUBLISHED_WAREHOUSE_ENV = "SEGMINT_PUBLISHED_WAREHOUSE"
_FAILED = {"error", "fail", "runtime error"}
# What dbt says when an incremental model's columns changed (on_schema_change='fail').
SCHEMA_CHANGE_MESSAGE = "source and target schemas on this incremental model are out of sync"

# The version of how the models compute the rows they store. Bump it (a date) when a
# segmint release changes a computation of stored rows without changing their columns: the
# first night after the upgrade then rebuilds every model with --full-refresh, so past days
# do not keep the old rule beside tonight's new one. (A change of columns needs no bump:
# dbt refuses it, see _full_refresh_schema_changes.)
# tests/dbt/test_model_logic_version.py fails when the models change, to ask for the review.
# 2026-12-05: session gaps to the microsecond, durations in whole seconds elapsed;
# attribution on shared devices follows each customer's turns; a purchase at the cart add's
# instant is no abandonment.
# 2026-12-06: a back end's orders (purchases without a session_id, alone within the gap) are
# no session.
# 2026-12-06.2: an order whose winning event has no customer takes the customer of its first
# purchase event with one.
# 2026-12-06.3: refund events: no visit; orders, daily activity and the features net of refunds.
# 2026-12-06.4: a revised rate of a refund's day re-opens the days the order's other
# refunds count on (warehouses whose rates were revised kept stale counted refunds).
# 2026-12-06.5: the days int_events_sessionised rebuilt are rebuilt again in the later models
# after a night killed or failed between them (int_event_dates_pending): warehouses rerun after
# such a night kept stale sessions, daily activity and features of re-opened or emptied days.
# 2026-12-06.6: the snapshots customer_feature_history rebuilt are rebuilt again in
# customer_rule_segments after a night killed or failed between them
# (int_snapshot_dates_pending): a stale cut-off snapshot rebuilt by such a night kept its old
# rule segments.
# 2026-12-06.7: a snapshot whose daily activity was rebuilt after it with nothing loaded (a
# day emptied by a reload, re-opened, or re-rated) is stale (int_snapshot_dates_stale): a
# retraining night kept such a cut-off snapshot, and its rule segments, as they were; so is
# one a withdrawn CRM version changed (int_crm_dates_built). And an incremental model built
# before a first build stopped (a full disk) no longer reads the missing
# int_events_sessionised on the rerun, which failed every rerun.
# 2026-12-07.1: a cart add at midnight is judged a day later (its 24 hours end at the next
# midnight, the next day's): snapshots had called it abandoned before a purchase then.
# An order counts in its customer's daily activity on its day even when the customer has no
# event of their own then (the browser's anonymous purchase before midnight, the back end's
# copy with the customer after it): such orders were in marts.orders only.
# 2026-12-07.2: a customer known only from an identify call (no CRM record, no visit yet)
# is a customer of the feature snapshots from the call's day on, first seen at it: such a
# fresh sign-up was in marts.customers only.
# 2026-12-07.3: a one-event order buys the session's cart lines since the session's previous
# order (a second order of the same session and day bought nothing), and a tracker session's
# cart filled before midnight is bought by its order after it (customer_product_daily).
# 2026-12-07.4: a one-event order buys its tracker session's cart lines of up to
# var cart_lookback_days before it (lines two days or more back were lost), those a visitor
# carted before logging in after midnight too; a back end's order (no session) buys the
# customer's latest tracker session's cart (customer_product_daily).
# 2026-12-07.5: a one-event order buys the customer's cart across visits (their cart lines
# of any session since their previous order, within cart_lookback_days) and a visitor's lines
# of an anonymous id linked to the customer alone (customer_product_daily).
# 2026-12-07.6: any purchase empties the cart, an order line too (a shop sending both kinds:
# a one-event order after an order sent line by line bought its products again), and a
# one-event order whose lines were sent too buys nothing more (customer_product_daily).
# 2026-12-07.7: a reload of a day that deletes some events while bringing as many new ones
# (or more) rebuilds the later days whose one-event orders may have bought a deleted line, as
# a reload leaving fewer events did (customer_product_daily kept a deleted visitor's line);
# a one-event copy of an order sent line by line more than cart_lookback_days earlier buys
# nothing in an incremental run too (it bought the cart when its day was rebuilt).
# 2026-12-07.8: an anonymous id's activity on days before its first link (browsing, guest
# orders and their refunds) counts for the first linked customer in the snapshots from the
# link's UTC day on and in customers (int_anonymous_*; only the link's own day did).
MODEL_LOGIC_VERSION = "2026-12-07.8"
# A full refresh builds the snapshots asked for, the cut-offs too; the past snapshots the
# feature history held before are rebuilt after it (_keep_history, _restore_history).
_WITH_CUTOFFS = "with the cut-off snapshots"
# Where a full refresh records the snapshot dates the feature history held before it, until
# each is rebuilt: a night killed or failed in between leaves them for the next one.
HISTORY_TO_REBUILD = "ops.snapshot_dates_to_rebuild"
_HISTORY_TABLES = (("ops", "snapshot_dates_to_rebuild"), ("marts", "customer_feature_history"))
# Past snapshots rebuilt after a full refresh, in dbt runs of about this many snapshot rows
# (customers times dates) each, at least a date a run: a run joins every day of activity to
# each of its dates and aggregates every customer of each at once, so one run of a year of
# dates held them all. 31 dates of 200k customers peaked at 3.3 GB in dbt (docs/models.md,
# "A full refresh keeps the feature history").
HISTORY_BATCH_ROWS = 6_000_000
# The models a past snapshot is rebuilt in: the history and the rule segments of its dates.
HISTORY_MODELS = "customer_feature_history customer_rule_segments"


def project_dir(settings: Settings) -> Path:
    """The dbt project folder: the configured one, relative to the working directory or,
    failing that, to the repository."""
    configured = settings.transform.dbt_project_dir
    for candidate in (configured, REPO_ROOT / configured):
        if (candidate / "dbt_project.yml").is_file():
            return candidate.resolve()
    raise SegmintError(
        f"dbt project not found at {configured} (no dbt_project.yml); "
        "set [transform] dbt_project_dir in the config"
    )


def dbt_dirs(settings: Settings) -> tuple[Path, Path]:
    """Where dbt writes its target folder and its logs for this warehouse."""
    base = settings.warehouse.resolve().parent / "dbt"
    return base / "target", base / "logs"


def snapshot_dates(settings: Settings, as_of: date, data_start: date | None) -> list[date]:
    """As-of date plus the propensity cut-offs of both horizons, oldest first; dates before
    the first event are left out (there is nothing to snapshot)."""
    prop = settings.propensity
    wanted = {as_of}
    wanted.update(prop.cutoff_dates(as_of, prop.horizon_days))
    wanted.update(prop.cutoff_dates(as_of, prop.churn_horizon))
    return sorted(d for d in wanted if d == as_of or data_start is None or d >= data_start)


# The propensity models whose training reads the cut-off snapshots, with their horizon
# (ml/propensity/stage.py trains these two).
PROPENSITY_MODELS = ("purchase", "churn")


def rule_segment_names(settings: Settings) -> tuple[str, ...]:
    """The rule segments the dbt project defines (``vars.rule_segments`` of dbt_project.yml),
    in order: the names an audience may use even on a night none of them has a member."""
    import yaml

    data = yaml.safe_load((project_dir(settings) / "dbt_project.yml").read_text()) or {}
    entries = (data.get("vars") or {}).get("rule_segments") or []
    return tuple(e["name"] for e in entries if isinstance(e, dict) and e.get("name"))


def retrain_due(settings: Settings, as_of: date) -> str | None:
    """Why a propensity model may retrain tonight (None: both score with their registered
    model, so tonight's training snapshots are not read): the score stage's own decision
    (ml.propensity.cadence.retrain_reason: no model, its files refused, its age, changed
    training settings), asked before dbt runs, without unpickling a model. Two reasons are
    known only later: changed feature columns make dbt rebuild the feature history in full,
    with the cut-offs (run_transform), and a drift of tonight's scores, which the score
    stage reports with the snapshots it lacks."""
    from ml.propensity.cadence import retrain_due as propensity_retrain_due

    return propensity_retrain_due(settings, as_of)


def snapshots_tonight(
    settings: Settings, as_of: date, data_start: date | None
) -> tuple[list[date], str]:
    """The snapshot dates this run asks dbt for, and why: the as-of date always; the
    propensity cut-offs only when a model may retrain tonight (retrain_due) or
    ``[transform] cutoff_snapshots_every_night`` is set. On other nights the propensity
    stage scores with its registered model and reads no cut-off snapshot; past cut-offs are
    earlier nights' as-of snapshots, so in steady state they exist anyway. dbt builds only
    the requested snapshots that are missing or stale (macros/incremental.sql)."""
    wanted = snapshot_dates(settings, as_of, data_start)
    if settings.transform.cutoff_snapshots_every_night:
        return wanted, "cut-off snapshots every night ([transform] setting)"
    reason = retrain_due(settings, as_of)
    if reason is None:
        return [as_of], "no propensity retrain due: as-of snapshot only"
    return wanted, f"propensity retrain may be due ({reason}): with the cut-off snapshots"


AS_OF_ENV = "SEGMINT_AS_OF_DATE"
SNAPSHOT_DATES_ENV = "SEGMINT_SNAPSHOT_DATES"
REPORTING_CURRENCY_ENV = "SEGMINT_REPORTING_CURRENCY"
# DuckDB's threads and memory limit inside dbt (profiles.yml), from [transform].
DUCKDB_THREADS_ENV = "SEGMINT_DUCKDB_THREADS"
DUCKDB_MEMORY_LIMIT_ENV = "SEGMINT_DUCKDB_MEMORY_LIMIT"
# An empty [transform] duckdb_memory_limit: DuckDB's own default, said explicitly to dbt.
_DUCKDB_DEFAULT_MEMORY_LIMIT = "80%"
# Where the dbt child keeps the bytecode of the modules it imports (see dbt_env).
DBT_PYCACHE = Path(sys.prefix) / "pycache"
# Where the parsed dbt project is shared between warehouses (see ParseState).
DBT_PARSE_STATE = Path(sys.prefix) / "dbt-parse-state"
# The interpreter of a dbt child started with ``-c``. ``-P`` keeps the current folder off its
# ``sys.path``: dbt imports every top-level module whose name starts with ``dbt_`` as a plugin,
# so a ``dbt_*.py`` in the folder segmint was started from (a user's script, or an Airflow
# worker's folder) ran inside every dbt run; one that started dbt itself forked without end.
_PYTHON_SAFE_PATH = (sys.executable, "-P")


def dbt_cwd(settings: Settings) -> Path:
    """The folder a dbt child runs in: the warehouse's, so that its profile names the file by
    its name alone. dbt's parse state depends on the profile's values (its ``path``
    included): with the same relative path, every warehouse of this name shares one, and a
    new warehouse does not parse the whole project again (see :class:`ParseState`)."""
    return settings.warehouse.resolve().parent


def dbt_env(settings: Settings, as_of: date, dates: list[date]) -> dict[str, str]:
    """The environment of a dbt run: the warehouse file, the as-of date, the snapshot
    dates, the reporting currency and DuckDB's threads and memory limit (``[transform]``;
    an empty limit is DuckDB's default, 80% of the memory). They travel as environment
    variables, not ``--vars``: a ``--vars`` value that changes every night makes dbt re-parse
    the whole project, while a changed environment variable re-parses only the few files
    that read it (dbt_project/macros/vars.sql).

    dbt imports ~2,000 modules at every start. Where bytecode writing is off
    (``PYTHONDONTWRITEBYTECODE``, and installers such as uv ship no ``.pyc``), Python compiles
    them all again in every run: 3.8 s against 2.5 s with a cache, measured on the bench
    machine, a second or more of every night's increment. So the dbt child writes and reuses
    its bytecode under ``DBT_PYCACHE`` (``PYTHONPYCACHEPREFIX``, in the environment's own
    folder, ~25 MB), whatever the parent's setting; the parent process is left as it is."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,
        "PYTHONPYCACHEPREFIX": str(DBT_PYCACHE),
        # The file's name only: dbt runs in its folder (dbt_cwd). Both of the file itself: a
        # warehouse path that is a link names the file it points to.
        WAREHOUSE_ENV: settings.warehouse.resolve().name,
        # Only the docs' target reads it; the build's parse state does not depend on it.
        PUBLISHED_WAREHOUSE_ENV: str(settings.published_warehouse.absolute()),
        AS_OF_ENV: as_of.isoformat(),
        SNAPSHOT_DATES_ENV: ",".join(d.isoformat() for d in dates),
        REPORTING_CURRENCY_ENV: settings.transform.reporting_currency,
        DUCKDB_THREADS_ENV: str(settings.transform.duckdb_thread_count),
        DUCKDB_MEMORY_LIMIT_ENV: settings.transform.duckdb_memory_limit
        or _DUCKDB_DEFAULT_MEMORY_LIMIT,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
        "DBT_PRINTER_WIDTH": "100",
    }


def dbt_command(
    settings: Settings,
    select: str | None = None,
    verb: str = "build",
    full_refresh: bool = False,
    target_path: Path | None = None,
) -> list[str]:
    """The dbt command line of ``verb`` (build, test, docs generate) for this warehouse;
    ``select`` may hold several space-separated selectors."""
    exe = Path(sys.executable).with_name("dbt")
    base = [str(exe)] if exe.exists() else [*_PYTHON_SAFE_PATH, "-c", _DBT_MAIN]
    return [*base, *dbt_args(settings, select, verb, full_refresh, target_path)]


def dbt_args(
    settings: Settings,
    select: str | None = None,
    verb: str = "build",
    full_refresh: bool = False,
    target_path: Path | None = None,
) -> list[str]:
    """The arguments of :func:`dbt_command`, without the program; dbt's files go to
    ``target_path``, by default the warehouse's (:func:`dbt_dirs`)."""
    default_target, log_path = dbt_dirs(settings)
    target_path = target_path or default_target
    args = [
        *verb.split(),
        "--project-dir",
        str(project_dir(settings)),
        "--profiles-dir",
        str(project_dir(settings)),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
        "--threads",
        str(settings.transform.threads),
    ]
    if verb == "build":
        # Unit tests check the SQL, not the data: CI runs them (tests/dbt), nights do not.
        args += ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", *select.split()]
    return args


# dbt's entry point raises SystemExit; the child then ends without the interpreter's teardown
# (0.5 s after a build; segmint.process), the warehouse closed and checkpointed by then.
_DBT_MAIN = """
from dbt.cli.main import cli
from segmint.process import run_then_exit
run_then_exit(cli)
"""


def _disk_fault(
    settings: Settings,
    problems: list[str],
    completed: subprocess.CompletedProcess[str],
    dbt_folder: Path,
) -> str:
    """What to do when dbt failed on a full disk, a file-size limit or a read-only folder
    (else ""): its traceback or a node's DuckDB error says so, naming a file or not (dbt's
    own artifacts, written in ``dbt_folder``, name none)."""
    from segmint.ops import disk_fault_in_text, disk_fault_message

    found = disk_fault_in_text("\n".join([*problems, completed.stdout, completed.stderr]))
    if found is None:
        return ""
    code, path = found
    return disk_fault_message(OSError(code, os.strerror(code), path or str(dbt_folder)), settings)


def _killed_words(completed: subprocess.CompletedProcess[str]) -> tuple[str, int, str]:
    """The signal that killed the dbt child (its return code is minus the signal): its name,
    its number, and its likely cause with what to do."""
    import signal

    number = -completed.returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    why = (
        "on Linux most often the out-of-memory killer, which picks the largest process, "
        "dbt's DuckDB (`dmesg` or `journalctl -k` then shows an \"Out of memory: Killed "
        'process" line): lower [transform] duckdb_memory_limit or duckdb_threads '
        '(docs/operations.md, "Sizing") or give the machine more memory'
        if number == signal.SIGKILL
        else "something outside segmint stopped it"
    )
    return name, number, why


def _killed_message(
    settings: Settings,
    as_of: date,
    completed: subprocess.CompletedProcess[str],
    seconds: float,
    run_results: Path,
) -> str:
    """What to do when the dbt child died of a signal (its return code is minus the signal):
    the OOM killer's SIGKILL most often. The failure said "dbt build failed (4 problem(s))",
    quoting dbt's start-up lines as the problems and "dbt stopped before any node ran", and
    was not retried in Airflow, as for a failing model."""
    name, number, why = _killed_words(completed)
    log_path = dbt_dirs(settings)[1] / "dbt.log"
    return (
        f"dbt build for as-of {as_of} was killed by {name} (signal {number}) after "
        f"{seconds:.1f} s, before it finished: {why}; then run the same command again (each "
        "model dbt finished is committed, the rerun builds the night's models again)"
        f"\nrun results: {run_results}"
        + ("" if run_results.is_file() else " (not written: dbt was killed before its end)")
        + f"\ndbt log: {log_path}"
    )


def _output_tail(completed: subprocess.CompletedProcess[str], lines: int = 8) -> list[str]:
    """The last non-blank lines dbt printed, then the last of its stderr: what a failure
    message quotes when run_results.json cannot say more."""
    tail = [line for line in completed.stdout.splitlines() if line.strip()][-lines:]
    return tail + completed.stderr.strip().splitlines()[-(lines // 2) :]


def reader_docs(settings: Settings, out: Path | None = None) -> Path:
    """dbt's documentation site as one self-contained HTML page (``segmint docs``), for
    readers who cannot run dbt on the full published copy (analysts read only their masked
    copy): every model, column and test with its description, the SQL, the lineage, and the
    published copy's catalog (names and types: no values). Written to ``out``, by
    default ``<run output>/<published night>/dbt_docs/index.html``; returns that path.

    dbt renders it from the published copy (target ``published``, read-only), so it can run
    while the pipeline writes the working file. Its own files go to
    ``<warehouse folder>/dbt/target_docs``: the nightly build's ``run_results.json`` stays.
    """
    from segmint.publish import published_as_of

    published = settings.published_warehouse
    as_of = published_as_of(published)
    if as_of is None:
        raise SegmintError(
            f"nothing is published at {published} yet: the docs describe the published "
            "warehouse; run the pipeline first (segmint run)"
        )
    target_path, log_path = dbt_dirs(settings)
    docs_target = target_path.with_name("target_docs")
    page = docs_target / "static_index.html"
    page.unlink(missing_ok=True)
    command = [
        *dbt_command(settings, verb="docs generate", target_path=docs_target),
        "--target",
        "published",
        "--static",
    ]
    env = dbt_env(settings, as_of, [as_of])
    out = out or settings.run_output_dir(as_of) / "dbt_docs" / "index.html"
    # Opened before dbt runs: a --out where no file can be written was refused after the
    # 25 s of `dbt docs generate`.
    with written_atomically(out) as tmp:
        log.info("docs: %s", " ".join(command))
        completed = _dbt_child(settings, command, env)
        if completed.returncode != 0 or not page.is_file():
            raise SegmintError(
                f"dbt docs generate failed (exit {completed.returncode}):\n  "
                + "\n  ".join(_output_tail(completed))
                + f"\ndbt log: {log_path / 'dbt.log'}"
            )
        shutil.copyfile(page, tmp)
    return out


def _raw_figures(warehouse: Path) -> tuple[int, date | None]:
    import duckdb

    if not warehouse.exists():
        raise SegmintError(f"warehouse {warehouse} does not exist; run `segmint ingest` first")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows, first = con.execute(
            "SELECT count(*), CAST(min(event_ts) AS DATE) FROM raw.events"
        ).fetchone()
    except duckdb.CatalogException as exc:
        raise SegmintError(
            f"warehouse {warehouse} has no raw.events table; run `segmint ingest` first"
        ) from exc
    finally:
        con.close()
    return int(rows), first


def _tables_present(con, *tables: tuple[str, str]) -> set[tuple[str, str]]:
    """Which of ``tables`` (schema, name) exist in the warehouse of ``con``."""
    listed = ", ".join(f"('{schema}', '{name}')" for schema, name in tables)
    return set(
        con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where (table_schema, table_name) in ({listed})"
        ).fetchall()
    )


def _logic_outdated(warehouse: Path) -> tuple[str | None, bool, bool]:
    """Why tonight must rebuild every model from scratch, whether tonight's build is to
    be recorded in ``ops.model_logic``, and whether past snapshots wait to be rebuilt after
    an earlier full refresh (:data:`HISTORY_TO_REBUILD`; read here, in the same short
    connection, so a night without any costs nothing more). A reason when the marts were
    built by models computing their rows another way (:data:`MODEL_LOGIC_VERSION`); None
    when they were not, or when there are no marts yet (tonight builds them from scratch
    anyway)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = _tables_present(
            con, ("marts", "sessions"), ("ops", "model_logic"), _HISTORY_TABLES[0]
        )
        stored = None
        if ("ops", "model_logic") in tables:
            row = con.execute(
                "select version from ops.model_logic order by applied_at desc limit 1"
            ).fetchone()
            stored = row[0] if row else None
        history_waits = _HISTORY_TABLES[0] in tables and bool(
            con.execute(f"select count(*) from {HISTORY_TO_REBUILD}").fetchone()[0]
        )
    finally:
        con.close()
    if stored == MODEL_LOGIC_VERSION:
        return None, False, history_waits
    if ("marts", "sessions") not in tables:
        return None, True, history_waits
    return (
        (
            f"the marts were built by models of logic version {stored or 'before 2026-12-05'}, "
            f"this segmint computes stored rows as of version {MODEL_LOGIC_VERSION}"
        ),
        True,
        history_waits,
    )


def _record_logic(warehouse: Path, as_of: date) -> None:
    """Note that the marts are now built by this version's models (after a full build)."""
    from segmint.warehouse import connect

    con = connect(warehouse)
    try:
        con.execute("create schema if not exists ops")
        con.execute(
            "create table if not exists ops.model_logic ("
            "version varchar not null, as_of_date date not null, applied_at timestamp not null)"
        )
        con.execute(
            "insert into ops.model_logic values (?, ?, current_timestamp::timestamp)",
            [MODEL_LOGIC_VERSION, as_of],
        )
    finally:
        con.close()


# The dbt vars (dbt_project.yml) that shape the rows incremental models keep of past days,
# with the model reading each (itself or through a macro). A changed value reaches past days
# only through a full rebuild of that model and every model built from it: the next night
# runs it (`dbt build --full-refresh --select <model>+`), once, and ops.model_vars records
# the values the stored rows were built with. Every var of dbt_project.yml is here or in
# _VARS_NOT_REBUILT (tests/dbt/test_model_logic_version.py).
ROW_SHAPING_VARS = {
    "session_inactivity_minutes": "int_events_sessionised",
    "content_page_types": "sessions",
    "mobile_device_types": "customer_daily_activity",
    "favourite_category_days": "customer_feature_history",
    "cart_abandonment_hours": "customer_feature_history",
    "cart_abandonment_lookback_days": "customer_feature_history",
    "content_explorer_lookback_days": "customer_feature_history",
    "rfm_min_customers": "customer_feature_history",
    "cart_lookback_days": "customer_product_daily",
    "cart_scope": "customer_product_daily",
}
# The models the feature history (marts.customer_feature_history and customer_features) is
# built from, itself included: a changed var read by one of them changes what the features
# mean, so a propensity model trained before must retrain (feature_vars, ml.propensity.cadence).
FEATURE_MODELS = (
    "int_events_sessionised",
    "sessions",
    "customer_daily_activity",
    "customer_feature_history",
)
# Vars whose change rebuilds nothing: set per night by segmint (the dates), detected day by
# day by the models themselves (the reporting currency: int_event_dates_changed compares the
# rates), or applied to the snapshots built from then on by design (rule_segments: a past
# night's segments stay those its audiences were exported with; docs/models.md).
_VARS_NOT_REBUILT = ("as_of_date", "snapshot_dates", "reporting_currency", "rule_segments")
# A var's value when dbt_project.yml does not set it (the default the macro reads).
_VAR_DEFAULTS = {"cart_scope": "customer"}


# What each var of dbt_project.yml must hold: the one list of the vars' types, checked by
# check_vars before the transform stage decides anything (a full refresh for a changed var
# included) and before dbt starts. A var in the wrong form otherwise reached the models as it
# was: "thirty" minutes repeated a string into SQL after a full rebuild of every model, a
# string of page types was read letter by letter, a negative window emptied the features,
# all without naming the var. Every var of dbt_project.yml is here
# (tests/include/test_transform_vars.py); the dbt macros check_rule_segments, cart_scope and
# reporting_currency check the same vars again when dbt is run by hand.
VAR_RULES = {
    "as_of_date": "unset",
    "snapshot_dates": "unset",
    "reporting_currency": "currency",
    "session_inactivity_minutes": "positive number",
    "content_page_types": "text list",
    "mobile_device_types": "text list",
    "favourite_category_days": "positive integer",
    "cart_abandonment_hours": "positive integer",
    "cart_abandonment_lookback_days": "positive integer",
    "cart_lookback_days": "whole number",
    "cart_scope": "customer or session",
    "content_explorer_lookback_days": "positive integer",
    "rfm_min_customers": "whole number",
    "rule_segments": "list",
}
# What a rule expects, in words.
_VAR_EXPECTED = {
    "unset": "null (segmint sets it for each night; give it by hand with dbt --vars only)",
    "currency": "null (then [transform] reporting_currency of the segmint settings) or a "
    "three-letter ISO 4217 code such as USD",
    "positive number": "a number greater than 0, without quotes or unit",
    "positive integer": "a whole number greater than 0, without quotes or unit",
    "whole number": "a whole number, 0 or more, without quotes or unit",
    "text list": "a list of one or more texts, such as [mobile, tablet]",
    "customer or session": "customer or session",
    "list": "a list of segments, each {name, description, all and/or any}",
}


def _var_ok(rule: str, value: object) -> bool:
    """Whether ``value`` (as YAML read it) is of the form ``rule`` asks for."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    whole = isinstance(value, int) and not isinstance(value, bool)
    if rule == "unset":
        return value is None
    if rule == "currency":
        return value is None or (
            isinstance(value, str) and len(value.strip()) == 3 and value.strip().isalpha()
        )
    if rule == "positive number":
        return number and value > 0 and value == value and value != float("inf")
    if rule == "positive integer":
        return whole and value > 0
    if rule == "whole number":
        return whole and value >= 0
    if rule == "text list":
        # Quoted into SQL as they are (macro sql_string_list): no quote inside.
        return (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(v, str) and v.strip() and "'" not in v for v in value)
        )
    if rule == "customer or session":
        return isinstance(value, str) and value.strip() in ("customer", "session")
    return isinstance(value, list)


def _project_vars(settings: Settings) -> tuple[Path, dict[str, Any], dict[str, str]]:
    """The dbt project's ``dbt_project.yml``, its vars (``vars``, with ``vars.segmint``'s,
    the project's own, over them) and where each is set (``vars.segmint.<name>``); a
    SegmintError naming the file when it is not YAML or its ``vars`` no mapping."""
    import yaml

    path = project_dir(settings) / "dbt_project.yml"
    try:
        with path.open(encoding="utf-8") as stream:  # its marks then name the file
            data = yaml.safe_load(stream) or {}
    except yaml.YAMLError as error:
        # A tab, a bad indent: it said '"<unicode string>", line 145' and no file.
        raise SegmintError(f"transform: {path} is not valid YAML, nothing built: {error}") from None
    found = (data.get("vars") or {}) if isinstance(data, dict) else {}
    if not isinstance(found, dict):
        raise SegmintError(
            f"transform: vars in {path} is {type(found).__name__}, not a mapping of names to "
            "values, nothing built"
        )
    places = {name: f"vars.{name}" for name in found}
    scoped = found.get("segmint")
    if isinstance(scoped, dict):
        places.update({name: f"vars.segmint.{name}" for name in scoped})
        found = {**found, **scoped}
    return path, found, places


def check_vars(settings: Settings) -> None:
    """Raise SegmintError naming every var of the dbt project's ``dbt_project.yml`` (``vars``,
    and ``vars.segmint`` for the project's own) whose value is not of the form
    :data:`VAR_RULES` gives it, or that the models need and it does not set (a misspelt
    name): the var, its value, what it must be and where it is set."""
    path, found, places = _project_vars(settings)
    wrong = []
    for name, rule in VAR_RULES.items():
        if name in found:
            if not _var_ok(rule, found[name]):
                wrong.append(
                    f"dbt var {name} is {json.dumps(found[name], default=str)} ({places[name]} "
                    f"in {path}): it must be {_VAR_EXPECTED[rule]}"
                )
        elif not _var_ok(rule, _VAR_DEFAULTS.get(name)):
            # The models read it without a default: dbt failed on "NoneType", naming no var.
            unknown = [n for n in found if n not in VAR_RULES and n != "segmint"]
            near = difflib.get_close_matches(name, unknown, n=1)
            hint = f"; {places[near[0]]} is set: a misspelling?" if near else ""
            wrong.append(
                f"dbt var {name} is not set (no vars.{name} in {path}): it must be "
                f"{_VAR_EXPECTED[rule]}{hint}"
            )
    if wrong:
        raise SegmintError(
            "transform: dbt var(s) missing or of the wrong form, nothing built (fix "
            "dbt_project.yml, "
            "then run again):\n" + "\n".join(wrong)
        )


def row_shaping_vars(settings: Settings) -> dict[str, str]:
    """The values of :data:`ROW_SHAPING_VARS` in the dbt project's ``dbt_project.yml``
    (``vars``, and ``vars.segmint`` for the project's own), each as canonical JSON (a whole
    number written 30.0 as 30)."""
    _, values, _ = _project_vars(settings)
    out = {}
    for name in ROW_SHAPING_VARS:
        value = values.get(name, _VAR_DEFAULTS.get(name))
        if isinstance(value, str):
            value = value.strip()
        elif isinstance(value, float) and value.is_integer():
            # 30.0 minutes is the 30 stored: no change, no full refresh of every model.
            value = int(value)
        out[name] = json.dumps(value, sort_keys=True, default=str)
    return out


def feature_vars(settings: Settings) -> dict[str, str]:
    """The :func:`row_shaping_vars` that shape the feature history (read by a model of
    :data:`FEATURE_MODELS`), each as canonical JSON."""
    return {
        name: value
        for name, value in row_shaping_vars(settings).items()
        if ROW_SHAPING_VARS[name] in FEATURE_MODELS
    }


def _vars_changed(
    warehouse: Path, current: dict[str, str]
) -> tuple[dict[str, tuple[str, str]], bool]:
    """The row-shaping vars whose value differs from the one the stored rows were built
    with (``ops.model_vars``), as name -> (then, now), and whether tonight's values are to
    be recorded. Nothing changed when no marts exist yet (tonight builds them from scratch)
    or nothing was recorded yet (a warehouse built before 2026-12-07: tonight's values
    become the record; a var new to the record is recorded as it is)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = _tables_present(con, ("marts", "sessions"), ("ops", "model_vars"))
        stored: dict[str, str] = {}
        if ("ops", "model_vars") in tables:
            stored = dict(
                con.execute(
                    "select name, arg_max(value, applied_at) from ops.model_vars group by name"
                ).fetchall()
            )
    finally:
        con.close()
    if ("marts", "sessions") not in tables:
        return {}, True
    changed = {
        name: (stored[name], value)
        for name, value in current.items()
        if name in stored and stored[name] != value
    }
    return changed, bool(changed) or not set(current) <= set(stored)


def _record_vars(warehouse: Path, as_of: date, current: dict[str, str]) -> None:
    """Note the row-shaping vars the marts are now built with."""
    from segmint.warehouse import connect

    con = connect(warehouse)
    try:
        con.execute("create schema if not exists ops")
        con.execute(
            "create table if not exists ops.model_vars (name varchar not null, "
            "value varchar not null, as_of_date date not null, applied_at timestamp not null)"
        )
        con.executemany(
            "insert into ops.model_vars values (?, ?, ?, current_timestamp::timestamp)",
            [[name, value, as_of] for name, value in current.items()],
        )
    finally:
        con.close()


def _vars_refresh(changed: dict[str, tuple[str, str]]) -> list[str]:
    """The models to rebuild with --full-refresh for the changed vars, in their order."""
    models: list[str] = []
    for name in changed:
        if ROW_SHAPING_VARS[name] not in models:
            models.append(ROW_SHAPING_VARS[name])
    return models


def _vars_words(changed: dict[str, tuple[str, str]]) -> str:
    """cart_scope "customer" -> "session", ... (a long value by name only)."""
    return ", ".join(
        f"{name} {then} -> {now}" if len(then) + len(now) <= 80 else f"{name} (its value)"
        for name, (then, now) in changed.items()
    )


def _load_rates(settings: Settings) -> int:
    """Replace raw.currency_rates from ``[transform] currency_rates`` before dbt runs (this
    stage is the warehouse's one writer until dbt starts)."""
    from segmint.currency import load_currency_rates
    from segmint.warehouse import connect, ensure_raw_tables

    path = settings.transform.currency_rates
    con = connect(settings.warehouse.resolve())
    try:
        ensure_raw_tables(con)
        loaded = load_currency_rates(con, path)
    finally:
        con.close()
    if path is not None:
        log.info("transform: %d currency rate(s) from %s", loaded, path)
    return loaded


def _mart_figures(warehouse: Path, as_of: date) -> tuple[dict[str, int], list[date], int]:
    """The night's figures, and the event dates before the as-of date that tonight's build
    recomputed (late or corrected events, attribution or orders they moved, revised rates)
    with how many such dates the events cover (all of them: a first or full build)."""
    import duckdb

    end = as_of + timedelta(days=1)  # the end of the as-of day, UTC

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rebuilt, past = con.execute(
            """
            SELECT
                coalesce(list(event_date ORDER BY event_date) FILTER (WHERE is_rebuilt), []),
                count(*)
            FROM intermediate.int_event_dates_changed
            WHERE event_date < ?
            """,
            [as_of],
        ).fetchone()
        row = con.execute(
            """
            SELECT
                (SELECT count(*) FROM marts.customer_features WHERE as_of_date = ?),
                -- As of the night: a backfill's summary counted the later nights' too.
                (SELECT count(*) FROM marts.orders WHERE order_date <= ?),
                (SELECT count(*) FROM marts.sessions WHERE session_date <= ?),
                -- Linked by the end of the night, so a rerun of an older night counts as
                -- the night did, not with the links later nights learned.
                (SELECT count(DISTINCT anonymous_id) FROM intermediate.int_identity_links
                 WHERE first_linked_at < ?),
                (SELECT count(*) FROM marts.identity_conflicts),
                (SELECT count(*) FROM marts.order_conflicts),
                -- Refunds of orders not loaded (yet): they count nowhere until they are.
                (SELECT count(*) FROM marts.refunds WHERE NOT has_order),
                (SELECT count(DISTINCT s.anonymous_id)
                 FROM marts.sessions AS s
                 WHERE s.customer_id IS NULL AND s.anonymous_id IS NOT NULL
                   AND s.session_date <= ?
                   AND NOT EXISTS (
                       SELECT 1 FROM intermediate.int_identity_links AS l
                       WHERE l.anonymous_id = s.anonymous_id AND l.first_linked_at < ?)),
                (SELECT count(*) FROM marts.customer_rule_segments WHERE as_of_date = ?)
            """,
            [as_of, as_of, as_of, end, as_of, end, as_of],
        ).fetchone()
    finally:
        con.close()
    keys = (
        "customers",
        "orders",
        "sessions",
        "linked_anonymous_ids",
        "identity_conflicts",
        "order_conflicts",
        "refunds_without_order",
        "anonymous_visitors",
        "rule_segment_rows",
    )
    return dict(zip(keys, (int(v) for v in row), strict=True)), list(rebuilt), int(past)


# Texts that exports write for "no customer" (WooCommerce's guest 0, JavaScript's
# String(null) and String(undefined), a BI tool's N/A): read as an id, each is one customer
# holding every guest's orders. Compared trimmed and lower-cased.
PLACEHOLDER_CUSTOMER_IDS = (
    "0",
    "-1",
    "-",
    "guest",
    "unknown",
    "null",
    "none",
    "nil",
    "undefined",
    "n/a",
    "na",
    "anonymous",
)


def _placeholder_customer_ids(con) -> list[tuple[str, int, int]]:
    """Customers whose id is a placeholder: (id, orders, anonymous ids), most orders first."""
    return con.execute(
        """
            SELECT customer_id, order_count, anonymous_id_count
            FROM marts.customers
            WHERE lower(trim(customer_id)) IN (SELECT unnest(?::VARCHAR[]))
            ORDER BY order_count DESC, customer_id
            """,
        [list(PLACEHOLDER_CUSTOMER_IDS)],
    ).fetchall()


def _record_occurrences(
    warehouse: Path,
    table: str,
    columns: dict[str, str],
    as_of: date,
    tonight: dict[str, tuple],
) -> dict[str, tuple[date, bool]]:
    """Keep tonight's customer ids of a finding in ``table`` (ops.*), one row an occurrence
    (from the first night it was found to the night it was gone), with ``columns`` (name:
    type) as of the last night; ``tonight`` maps each id to those columns' values. Return
    each id's first night and whether to warn of it tonight: a new occurrence, or a rerun of
    its first night (or of an earlier one). A finding warned of every night for the same old
    rows is a warning that repeats forever and is ignored."""
    from segmint.warehouse import connect

    con = connect(warehouse)
    try:
        con.execute("create schema if not exists ops")
        con.execute(
            f"create table if not exists {table} ("
            "customer_id varchar not null, first_as_of_date date not null, "
            "last_as_of_date date not null, "
            + "".join(f"{name} {kind}, " for name, kind in columns.items())
            + "gone_as_of_date date)"
        )
        known = dict(
            con.execute(
                f"select customer_id, first_as_of_date from {table} where gone_as_of_date is null"
            ).fetchall()
        )
        names = list(columns)
        found: dict[str, tuple[date, bool]] = {}
        for customer, values in tonight.items():
            first = known.get(customer)
            if first is None:
                con.execute(
                    f"insert into {table} (customer_id, first_as_of_date, last_as_of_date"
                    + "".join(f", {name}" for name in names)
                    + ") values (?, ?, ?"
                    + ", ?" * len(names)
                    + ")",
                    [customer, as_of, as_of, *values],
                )
                found[customer] = (as_of, True)
                continue
            con.execute(
                f"update {table} set first_as_of_date = least(first_as_of_date, $as_of), "
                + "".join(
                    f"{name} = if($as_of >= last_as_of_date, $v{i}, {name}), "
                    for i, name in enumerate(names)
                )
                + "last_as_of_date = greatest(last_as_of_date, $as_of) "
                "where customer_id = $id and gone_as_of_date is null",
                {"as_of": as_of, "id": customer}
                | {f"v{i}": value for i, value in enumerate(values)},
            )
            found[customer] = (min(first, as_of), as_of <= first)
        # Gone tonight (the data or the setting fixed, and reloaded): a return is a new
        # occurrence.
        con.execute(
            f"update {table} set gone_as_of_date = ? "
            "where gone_as_of_date is null and last_as_of_date < ? "
            "and not list_contains(?, customer_id)",
            [as_of, as_of, list(found)],
        )
    finally:
        con.close()
    return found


def _record_placeholders(
    warehouse: Path, as_of: date, placeholders: list[tuple[str, int, int]]
) -> dict[str, tuple[date, bool]]:
    """Keep tonight's placeholder customer ids in ``ops.placeholder_customer_ids`` (named in
    the null values and reloaded, one is gone): see :func:`_record_occurrences`."""
    return _record_occurrences(
        warehouse,
        "ops.placeholder_customer_ids",
        {"order_count": "bigint", "anonymous_id_count": "bigint"},
        as_of,
        {customer: (orders, devices) for customer, orders, devices in placeholders},
    )


@dataclass(frozen=True)
class NearMissIds:
    """Customers without a CRM record whose id matches a CRM id but for ``what``: two
    customers each (ids are compared exactly), the consent on the CRM one. Found each night
    by ``match`` (SQL over ``o.customer_id``, the customer's, and ``c.customer_id``, the
    CRM's) and kept in ``table`` with the night each was first found; the warning names the
    new ones and gives ``advice``."""

    what: str
    table: str
    match: str
    advice: str

    def find(self, con) -> list[tuple[str, str]]:
        """(the customer's id, the CRM's), by id."""
        return con.execute(
            f"""
            SELECT o.customer_id, min(c.customer_id)
            FROM (SELECT customer_id FROM marts.customers
                  ANTI JOIN staging.stg_segmint__customers USING (customer_id)) AS o
            JOIN staging.stg_segmint__customers AS c ON {self.match}
            GROUP BY o.customer_id
            ORDER BY o.customer_id
            """
        ).fetchall()

    def record(
        self, warehouse: Path, as_of: date, pairs: list[tuple[str, str]]
    ) -> dict[str, tuple[date, bool]]:
        """Keep tonight's ``pairs`` in ``table`` (the exports made to agree and reloaded,
        one is gone): see :func:`_record_occurrences`."""
        return _record_occurrences(
            warehouse,
            self.table,
            {"crm_customer_id": "varchar"},
            as_of,
            {customer: (crm,) for customer, crm in pairs},
        )

    def warn(
        self,
        pairs: list[tuple[str, str]],
        seen: dict[str, tuple[date, bool]],
        warnings: list[str],
    ) -> None:
        """A warning naming the ``pairs`` first found tonight; those of earlier nights are
        logged, warned of on their first night."""
        new = [pair for pair in pairs if seen[pair[0]][1]]
        earlier = len(pairs) - len(new)
        if earlier:
            log.info(
                "transform: still %s customer id(s) matching a CRM id but for %s, warned of "
                "on their first night (%s): %s",
                earlier,
                self.what,
                self.table,
                ", ".join(
                    f"'{customer}' (CRM '{crm}') since {seen[customer][0]}"
                    for customer, crm in pairs
                    if not seen[customer][1]
                ),
            )
        if new:
            warnings.append(
                f"{len(new)} customer id(s) without a CRM record match a CRM id but for "
                f"{self.what} {_pairs_shown(new)}: ids are compared exactly, so each is two "
                f"customers and the consent is on the CRM one; {self.advice}"
                + (f" (and {earlier} of earlier nights)" if earlier else "")
            )


def _pairs_shown(pairs: list[tuple[str, str]]) -> str:
    """The first of the (events id, CRM id) ``pairs`` a warning names, and how many more."""
    customer, crm = pairs[0]
    more = f", and {len(pairs) - 1} more" if len(pairs) > 1 else ""
    return f"(events '{customer}', CRM '{crm}'{more})"


# 'C1' in events, 'c1' in the CRM.
IDS_DIFFERING_IN_CASE = NearMissIds(
    what="case",
    table="ops.customer_ids_differing_in_case",
    match="lower(c.customer_id) = lower(o.customer_id)",
    advice="make the exports agree",
)
# '00123' in events, '123' in the CRM (a spreadsheet drops them from a column it reads as
# numbers); all digits on both sides. '00123' and '123' may be two customers: not merged.
IDS_DIFFERING_IN_LEADING_ZEROS = NearMissIds(
    what="leading zeros",
    table="ops.customer_ids_differing_in_leading_zeros",
    match="ltrim(c.customer_id, '0') = ltrim(o.customer_id, '0') "
    "AND ltrim(o.customer_id, '0') <> '' "
    "AND regexp_full_match(o.customer_id, '[0-9]+') "
    "AND regexp_full_match(c.customer_id, '[0-9]+')",
    advice="a spreadsheet drops the zeros of a column it reads as numbers (format it as "
    "text), or they are two customers; make the exports agree",
)


# More page views, product views, searches and cart adds than this in one day is no person
# (one every 17 seconds for 24 hours): a crawler, a monitoring probe or a load test.
HEAVY_VISITOR_HITS = 5_000


def _heavy_visitors(con, as_of: date) -> list[tuple[str, bool, date, int, int, bool]]:
    """Ids with more than ``HEAVY_VISITOR_HITS`` hits on one of the days tonight's build
    rebuilt (every day in a full build): (id, anonymous, day, hits, sessions, hashed), most
    first, at most five. A crawler that never logs in was 300,000 sessions of one anonymous
    id in a day, and the night's session figure jumped 25x without a word. An id that is an
    e-mail address (a shop keying customers by address) is given hashed, as the analysts'
    copy hashes it (segmint.audiences.masking): the warning goes to the task log and the
    XCom, where the address was in clear."""
    from segmint.audiences.masking import id_mask_sql

    return con.execute(
        f"""
            SELECT {id_mask_sql("who")}, anonymous, session_date, hits, sessions,
                contains(who, '@')
            FROM (
                SELECT
                    coalesce(customer_id, anonymous_id) AS who,
                    customer_id IS NULL AS anonymous,
                    session_date,
                    sum(page_views + product_views + searches + cart_adds) AS hits,
                    count(*) AS sessions
                FROM marts.sessions
                WHERE session_date IN (
                    SELECT event_date FROM intermediate.int_event_dates_changed
                    WHERE is_rebuilt AND event_date <= ?
                )
                GROUP BY ALL
                HAVING hits > ?
            )
            ORDER BY hits DESC, 1, 3
            LIMIT 5
            """,
        [as_of, HEAVY_VISITOR_HITS],
    ).fetchall()


def _new_tonight(con) -> tuple[int, int]:
    """Order conflicts and refunds without their order on a day tonight's build rebuilt
    (every day in a full build): (conflicts, refunds)."""
    rebuilt = "(SELECT event_date FROM intermediate.int_event_dates_changed WHERE is_rebuilt)"
    row = con.execute(
        f"""
        SELECT
            (SELECT count(*) FROM marts.order_conflicts
             WHERE CAST(last_event_at AS DATE) IN {rebuilt}),
            (SELECT count(*) FROM marts.refunds
             WHERE NOT has_order AND refund_date IN {rebuilt})
        """
    ).fetchone()
    return int(row[0]), int(row[1])


def _failed_results(run_results: Path) -> list[dict[str, Any]]:
    data = json.loads(run_results.read_text())
    return [r for r in data.get("results", []) if r.get("status") in _FAILED]


def _failure_line(result: dict[str, Any]) -> str:
    unique_id = result.get("unique_id", "?")
    kind, _, rest = unique_id.partition(".")
    name = rest.split(".", 1)[-1]
    message = " ".join((result.get("message") or "").split())
    return f"{kind} {name} {result['status']}: {message}"[:500]


def failures(run_results: Path) -> list[str]:
    """One line per failed node of a dbt run_results.json: kind, name, model, message."""
    return [_failure_line(r) for r in _failed_results(run_results)]


def schema_changed_models(run_results: Path) -> list[str]:
    """The incremental models of a dbt run that failed because the columns their SQL yields
    no longer match the table built by an earlier version (``on_schema_change='fail'``)."""
    return sorted(
        r["unique_id"].rsplit(".", 1)[-1]
        for r in _failed_results(run_results)
        if r.get("unique_id", "").startswith("model.")
        and SCHEMA_CHANGE_MESSAGE in " ".join((r.get("message") or "").split())
    )


def run_dbt(
    settings: Settings,
    as_of: date,
    dates: list[date],
    select: str | None = None,
    verb: str = "build",
    full_refresh: bool = False,
    warm: WarmDbt | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run dbt in a child process for this warehouse, as-of date and snapshot dates (in
    ``warm``, a child started earlier that has imported dbt already, when given)."""
    command = dbt_command(settings, select, verb, full_refresh)
    log.info("transform: %s", " ".join(command))
    # dbt writes run_results.json only once it runs nodes: a dbt that stops before (a bad
    # profile setting, a parse error, a held lock) left the previous run's file, whose
    # failures were then reported as tonight's. No file now means "no node ran".
    target_path = dbt_dirs(settings)[0]
    # dbt would make it: it also makes the folder dbt runs in (dbt_cwd).
    target_path.mkdir(parents=True, exist_ok=True)
    (target_path / "run_results.json").unlink(missing_ok=True)
    parse_state = ParseState(settings, target_path)
    parse_state.seed()
    env = dbt_env(settings, as_of, dates)
    try:
        if warm is not None:
            args = dbt_args(settings, select, verb, full_refresh)
            return warm.run(command, args, env, dbt_cwd(settings))
        return _dbt_child(settings, command, env)
    finally:
        parse_state.keep()


def _dbt_child(
    settings: Settings, command: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a dbt command line to its end in the warehouse's folder, its output captured; the
    child dies with the stage."""
    return subprocess.run(
        command,
        env=env,
        cwd=dbt_cwd(settings),
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=die_with_parent(),
    )


class ParseState:
    """dbt's parsed project, shared by the warehouses of this environment.

    dbt saves the project it parsed in ``target/partial_parse.msgpack`` and, when it starts
    again, re-parses only the files that changed since (checked by dbt: its version, each
    file's checksum, the variables, the profile's settings, the environment variables files
    read). A new warehouse's target folder has no such file, so its first build parsed the
    whole project: 2.3-2.5 s of a full build at 10M events, on one core before any model ran.
    The profile's settings include the warehouse's path; dbt runs in the warehouse's folder
    and the profile names the file alone (:func:`dbt_cwd`), so the state another warehouse
    of the same name left is as good. :meth:`keep` copies the file dbt left to
    ``DBT_PARSE_STATE`` (one per dbt project folder, in the environment's own folder, like
    ``DBT_PYCACHE``); :meth:`seed` gives it to a target folder that has none. A stale or
    unreadable copy only costs the full parse it would have been without it. A read-only
    environment folder keeps nothing, as before."""

    FILE = "partial_parse.msgpack"

    def __init__(self, settings: Settings, target_path: Path) -> None:
        project = str(project_dir(settings))
        key = hashlib.sha256(project.encode()).hexdigest()[:16]
        self.shared = DBT_PARSE_STATE / key / self.FILE
        self.local = target_path / self.FILE

    def seed(self) -> None:
        if self.local.exists() or not self.shared.is_file():
            return
        try:
            with written_atomically(self.local) as tmp:
                shutil.copyfile(self.shared, tmp)
        except OSError as exc:
            log.debug("transform: dbt's parse state not seeded from %s: %s", self.shared, exc)

    def keep(self) -> None:
        try:
            if not self.local.is_file() or (
                self.shared.is_file()
                and self.shared.stat().st_mtime_ns >= self.local.stat().st_mtime_ns
            ):
                return
            self.shared.parent.mkdir(parents=True, exist_ok=True)
            # Two warehouses' stages may end at once: each writes its own temporary file.
            tmp = self.shared.with_name(f".{self.FILE}.{os.getpid()}.tmp")
            try:
                shutil.copyfile(self.local, tmp)
                os.replace(tmp, self.shared)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("transform: dbt's parse state not kept in %s: %s", self.shared, exc)


# The child a WarmDbt starts: it imports dbt (1.2 s, ~2,000 modules), then reads its job,
# one JSON line on stdin (the command's arguments and the variables that changed since it
# started), and runs it as the dbt command would. An empty stdin (the stage failed before
# dbt) ends it.
_DBT_WARM = """
import json, os, sys
from dbt.cli.main import cli
from segmint.process import run_then_exit
line = sys.stdin.readline()
if not line:
    sys.exit(0)
job = json.loads(line)
os.environ.update(job["env"])
os.chdir(job["cwd"])
sys.argv = ["dbt", *job["args"]]
run_then_exit(cli)
"""


class WarmDbt:
    """A dbt child started before the stage knows its run: its imports overlap the stage's
    own work before dbt (the warehouse's figures, the currency rates, the snapshot dates,
    ~0.4 s at 10M). :meth:`run` hands it the command; :meth:`close` ends it unused."""

    def __init__(self, settings: Settings, as_of: date) -> None:
        self._env = dbt_env(settings, as_of, [])
        self._proc: subprocess.Popen[str] | None = subprocess.Popen(
            [*_PYTHON_SAFE_PATH, "-c", _DBT_WARM],
            env=self._env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent(),
        )

    def run(
        self, command: list[str], args: list[str], env: dict[str, str], cwd: Path
    ) -> subprocess.CompletedProcess[str]:
        """Run dbt with ``args`` (:func:`dbt_args`) and ``env`` in the folder ``cwd``, once;
        ``command`` is the equivalent command line, for the result."""
        proc, self._proc = self._proc, None
        if proc is None:
            raise RuntimeError("this dbt child has run already")
        changed = {k: v for k, v in env.items() if self._env.get(k) != v}
        job = json.dumps({"args": args, "env": changed, "cwd": str(cwd)})
        try:
            stdout, stderr = proc.communicate(job + "\n")
        except BaseException:
            # The stage was stopped while dbt ran (Airflow's execution_timeout raises in the
            # wait, Ctrl-C, SIGTERM): dbt ran on, holding the warehouse's write lock, so the
            # failure could not be recorded in ops.pipeline_runs and, under `airflow dags
            # test`, it kept building after the night had failed. subprocess.run does the same.
            proc.kill()
            proc.communicate()
            raise
        return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)

    def close(self) -> None:
        """End the child if it was not used (it has not opened the warehouse)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.communicate()


# prctl(2) option: the signal the calling process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the dbt child be killed when the stage's process dies.

    A stage killed with ``kill -9`` (an operator, the OOM killer, Airflow giving up on a
    task) cannot stop its child: dbt ran on, orphaned, still writing the warehouse and
    holding its one write lock, so the retry or rerun of the night failed with "Conflicting
    lock is held in .../dbt" until it ended, and what it built was never checked. Linux only
    (``PR_SET_PDEATHSIG``); elsewhere None, the old behaviour. Everything the child runs is
    prepared here, in the parent, so the child between fork and exec only makes the call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call: nobody to wait for
            os._exit(1)

    return arm


def _result_ids(run_results: Path) -> set[str]:
    data = json.loads(run_results.read_text())
    return {r.get("unique_id", "") for r in data.get("results", [])}


def _keep_history(warehouse: Path) -> None:
    """Before a full refresh that may rebuild ``marts.customer_feature_history``: record
    the snapshot dates it holds in :data:`HISTORY_TO_REBUILD` (beside any a killed or failed
    night left there). A full refresh builds only the dates it is asked for, so every other
    past night's snapshot an analyst had queried was gone (its rule segments too) until
    someone asked for its date again; :func:`_restore_history` rebuilds them after it."""
    from segmint.warehouse import connect

    con = connect(warehouse)
    try:
        con.execute(f"create table if not exists {HISTORY_TO_REBUILD} (as_of_date date not null)")
        if _tables_present(con, _HISTORY_TABLES[1]):
            con.execute(
                f"""
                insert into {HISTORY_TO_REBUILD}
                select distinct as_of_date from marts.customer_feature_history
                except
                select as_of_date from {HISTORY_TO_REBUILD}
                """
            )
    finally:
        con.close()


def _restore_history(
    settings: Settings, as_of: date, completed: subprocess.CompletedProcess[str]
) -> tuple[subprocess.CompletedProcess[str], list[str], list[date], list[date]]:
    """After a build that passed: rebuild the snapshots recorded by :func:`_keep_history`
    that ``marts.customer_feature_history`` no longer holds (a full refresh dropped them),
    point in time as any snapshot, with their rule segments: incremental dbt runs of
    :data:`HISTORY_MODELS`, of :data:`HISTORY_BATCH_ROWS` snapshot rows each (as many
    dates as the newest snapshot's customers allow), newest first (analysts read recent
    nights most), each date forgotten once its run passed. No run starts once
    ``[transform] history_rebuild_minutes`` have passed (the first always runs): the dates
    left wait for the next nights. Returns the last run (``completed`` when none ran), its
    failure lines, the dates rebuilt and the dates still waiting. Called after a full
    refresh, or when :func:`_logic_outdated` found dates waiting (incremental nights skip
    it)."""
    import duckdb

    warehouse = settings.warehouse.resolve()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = _tables_present(con, *_HISTORY_TABLES)
        if _HISTORY_TABLES[0] not in tables:
            return completed, [], [], []
        recorded = [
            d for (d,) in con.execute(f"select as_of_date from {HISTORY_TO_REBUILD}").fetchall()
        ]
        if not recorded:
            return completed, [], [], []
        missing = recorded
        per_date = 1
        if _HISTORY_TABLES[1] in tables:
            per_date = con.execute(
                """
                select count(*) from marts.customer_feature_history
                where as_of_date = (select max(as_of_date) from marts.customer_feature_history)
                """
            ).fetchone()[0]
            missing = [
                d
                for (d,) in con.execute(
                    f"""
                    select as_of_date from {HISTORY_TO_REBUILD}
                    where as_of_date not in (
                        select distinct as_of_date from marts.customer_feature_history
                    )
                    order by as_of_date desc
                    """
                ).fetchall()
            ]
    finally:
        con.close()
    # Dates the history still holds (the refresh did not reach it, or built them tonight).
    _forget_history(warehouse, [d for d in recorded if d not in set(missing)])
    if not missing:
        return completed, [], [], []
    batch_dates = max(1, HISTORY_BATCH_ROWS // max(per_date, 1))
    log.warning(
        "transform: rebuilding %d past snapshot(s) of marts.customer_feature_history the "
        "full refresh dropped, with their rule segments: %s (%d dbt run(s) of up to %d dates)",
        len(missing),
        _day_spans(missing),
        -(-len(missing) // batch_dates),
        batch_dates,
    )
    rebuilt: list[date] = []
    run_results = dbt_dirs(settings)[0] / "run_results.json"
    budget_s = settings.transform.history_rebuild_minutes * 60
    started = time.monotonic()
    for start in range(0, len(missing), batch_dates):
        if rebuilt and budget_s and time.monotonic() - started >= budget_s:
            waiting = missing[start:]
            log.warning(
                "transform: %d past snapshot(s) still wait in %s after %.0f minute(s) of "
                "rebuilding ([transform] history_rebuild_minutes): %s; the next nights "
                "rebuild them",
                len(waiting),
                HISTORY_TO_REBUILD,
                (time.monotonic() - started) / 60,
                _day_spans(waiting),
            )
            return completed, [], rebuilt, waiting
        batch = missing[start : start + batch_dates]
        completed = run_dbt(settings, as_of, batch, select=HISTORY_MODELS)
        if completed.returncode != 0:
            what = f"(rebuilding past snapshots {_day_spans(batch)})"
            if completed.returncode < 0:
                name, number, why = _killed_words(completed)
                problems = [f"dbt was killed by {name} (signal {number}): {why}"]
            else:
                problems = failures(run_results) if run_results.is_file() else []
            problems = [f"{what} {line}" for line in problems or _output_tail(completed)]
            # Dates whose history dbt committed before a data test failed on them: kept as
            # built (as any night's failed test), not waiting (the next night forgot them
            # without a word, while tonight's warning said they were to be rebuilt).
            kept = _history_holds(warehouse, batch)
            if kept:
                _forget_history(warehouse, kept)
                problems.append(
                    f"marts.customer_feature_history keeps {_day_spans(kept)} as that run "
                    "built them; a data test that failed on their rows fails the next "
                    "nights' builds until their data or the test is fixed"
                )
            return completed, problems, rebuilt, [d for d in missing[start:] if d not in kept]
        _forget_history(warehouse, batch)
        rebuilt += batch
        log.info("transform: past snapshots %s rebuilt", _day_spans(batch))
    return completed, [], rebuilt, []


def _history_holds(warehouse: Path, dates: list[date]) -> list[date]:
    """Which of ``dates`` ``marts.customer_feature_history`` holds."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if not _tables_present(con, _HISTORY_TABLES[1]):
            return []
        return [
            d
            for (d,) in con.execute(
                "select distinct as_of_date from marts.customer_feature_history "
                "where list_contains(?, as_of_date) order by 1",
                [dates],
            ).fetchall()
        ]
    finally:
        con.close()


def _forget_history(warehouse: Path, dates: list[date]) -> None:
    """Remove ``dates`` from :data:`HISTORY_TO_REBUILD`: the history holds them."""
    if not dates:
        return
    from segmint.warehouse import connect

    con = connect(warehouse)
    try:
        con.execute(f"delete from {HISTORY_TO_REBUILD} where list_contains(?, as_of_date)", [dates])
    finally:
        con.close()


def _full_refresh_schema_changes(
    settings: Settings, as_of: date, dates: list[date], models: list[str]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Rebuild from scratch the incremental models whose columns changed (a new segmint
    version) and everything built from them: ``dbt build --full-refresh --select m+``.

    Their stored rows were computed by the old SQL, so adding the new columns as nulls to
    old rows (dbt's ``append_new_columns``/``sync_all_columns``) would leave derived tables
    wrong; a full refresh recomputes them from the events. customer_feature_history then
    holds tonight's requested snapshots; the others it held are rebuilt after the run
    (:func:`_restore_history`). Returns the run and its failure lines."""
    log.warning(
        "transform: the columns of incremental model(s) %s changed (a new segmint version?): "
        "dbt refused the incremental run (on_schema_change='fail'); rebuilding them and "
        "every model built from them with --full-refresh",
        ", ".join(models),
    )
    return _full_refresh(settings, as_of, dates, models)


def _full_refresh_changed_vars(
    settings: Settings,
    as_of: date,
    dates: list[date],
    models: list[str],
    changed: dict[str, tuple[str, str]],
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Rebuild from scratch the models reading a changed row-shaping var and every model
    built from them: ``dbt build --full-refresh --select m+``. Returns the run and its
    failure lines (the values stay unrecorded then: the next night tries again)."""
    log.warning(
        "transform: dbt var(s) changed since the stored rows were built (%s): rebuilding %s "
        "and every model built from them with --full-refresh",
        _vars_words(changed),
        ", ".join(models),
    )
    return _full_refresh(settings, as_of, dates, models)


def _full_refresh(
    settings: Settings, as_of: date, dates: list[date], models: list[str]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``dbt build --full-refresh --select m+`` of ``models``: the run and its failure lines,
    each naming the refresh."""
    select = " ".join(f"{model}+" for model in models)
    completed = run_dbt(settings, as_of, dates, select=select, full_refresh=True)
    target_path, _ = dbt_dirs(settings)
    run_results = target_path / "run_results.json"
    problems: list[str] = []
    if completed.returncode != 0:
        problems = failures(run_results) if run_results.is_file() else []
        problems = [f"(full refresh of {select}) {line}" for line in problems]
        if not problems:
            tail = [line for line in completed.stdout.splitlines() if line.strip()][-8:]
            problems = [f"(full refresh of {select}) dbt failed:", *tail]
    else:
        log.info("transform: full refresh of %s done", select)
    return completed, problems


# The dbt test that fails a night with amounts in a currency without a rate.
CURRENCY_TEST = "every_currency_has_a_rate_to_the_reporting_currency"


def missing_rates(settings: Settings) -> list[str]:
    """What the failed currency test found, in words: each currency without a rate to the
    reporting currency, with its event days and count, and what to do."""
    import duckdb

    try:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
    except duckdb.Error:
        return []
    try:
        rows = con.execute(
            "select currency, min(event_date), max(event_date), count(*) "
            "from intermediate.int_events_sessionised where fx_rate is null "
            "group by currency order by currency"
        ).fetchall()
    except duckdb.Error:
        return []
    finally:
        con.close()
    target = settings.transform.reporting_currency
    where = settings.transform.currency_rates or "[transform] currency_rates (not set)"
    return [
        f"no rate from {currency} to {target}: {n:,} event(s) on {first}..{last}"
        for currency, first, last, n in rows
    ] + (
        [
            f"add rates (currency_code,valid_from,to_currency,rate) to {where} and rerun: "
            "the days concerned are rebuilt, no full refresh needed"
        ]
        if rows
        else []
    )


def _day_spans(days: list[date]) -> str:
    """Days as spans: 2026-06-28..2026-06-30, 2026-07-02."""
    spans: list[list[date]] = []
    for day in sorted(days):
        if spans and (day - spans[-1][-1]).days == 1:
            spans[-1][-1] = day
        else:
            spans.append([day, day])
    return ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in spans)


def pending_after_failure(settings: Settings, as_of: date) -> list[str]:
    """What a failed build left waiting, in words: the night the features hold and the days
    rebuilt by builds that did not finish (``intermediate.int_event_dates_pending``), with
    the way out. A data test that failed night after night said the same lines each night,
    and nothing of the days piling up behind it or of how stale the marts were."""
    import duckdb

    try:
        con = duckdb.connect(str(settings.warehouse.resolve()), read_only=True)
    except duckdb.Error:
        return []
    try:
        tables = {
            (schema, name)
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        days: list[date] = []
        if ("intermediate", "int_event_dates_pending") in tables:
            days = [
                d
                for (d,) in con.execute(
                    "select distinct event_date from intermediate.int_event_dates_pending"
                ).fetchall()
            ]
        built = None
        if ("marts", "customer_features") in tables:
            built = con.execute("select max(as_of_date) from marts.customer_features").fetchone()[0]
    except duckdb.Error:
        return []
    finally:
        con.close()
    lines = []
    if built is not None and built != as_of:
        lines.append(f"marts.customer_features holds the night {built}, the last build that passed")
    if days:
        rerun = "run this night again"
        if built is not None and built < as_of:
            after = built + timedelta(days=1)
            rerun = (
                f"run the nights from {after} on again, oldest first (segmint run --as-of "
                f"{after}, ...; under Airflow `make backfill FROM={after} TO={as_of} "
                "REPROCESS=failed`), or this night alone if the nights between need no "
                "snapshot, segments, scores or audiences of their own"
            )
        lines.append(
            f"{len(days)} day(s) rebuilt by builds that did not pass wait to be built through "
            f"the marts: {_day_spans(days)} (intermediate.int_event_dates_pending); the next "
            f"build that passes builds them, once: fix the cause, then {rerun}"
        )
    return lines


def run_transform(settings: Settings, as_of: date) -> StageResult:
    """Build and test every dbt model for ``as_of``; raise SegmintError on any failure."""
    warehouse = settings.warehouse.resolve()
    warm = WarmDbt(settings, as_of)  # dbt imports in it meanwhile
    try:
        # Before dbt runs or a full refresh is decided: a var of the wrong form fails at once.
        check_vars(settings)
        rows_in, data_start = _raw_figures(warehouse)
        rates = _load_rates(settings)
        dates, dates_reason = snapshots_tonight(settings, as_of, data_start)
        outdated, record_logic, history_waits = _logic_outdated(warehouse)
        current_vars = row_shaping_vars(settings)
        var_changes, record_vars = _vars_changed(warehouse, current_vars)
        refresh = [] if outdated else _vars_refresh(var_changes)
        if "int_events_sessionised" in refresh:
            # Every model is built from it: the whole build is a full refresh.
            outdated = (
                f"dbt var(s) changed since the stored rows were built: {_vars_words(var_changes)}"
            )
            refresh = []
        if outdated:
            dates = snapshot_dates(settings, as_of, data_start)
            dates_reason = f"full refresh for a new model logic: {_WITH_CUTOFFS}"
            log.warning(
                "transform: %s; rebuilding every model with --full-refresh (once)", outdated
            )
            _keep_history(warehouse)
        log.info("transform: snapshots %s (%s)", ", ".join(map(str, dates)), dates_reason)
        started = time.perf_counter()
        completed = run_dbt(settings, as_of, dates, full_refresh=bool(outdated), warm=warm)
    finally:
        warm.close()
    target_path, log_path = dbt_dirs(settings)
    run_results = target_path / "run_results.json"
    problems: list[str] = []
    rebuilt: list[str] = []
    if completed.returncode != 0 and run_results.is_file():
        rebuilt = schema_changed_models(run_results)
        if rebuilt:
            first = _failed_results(run_results)
            # Changed feature columns also make propensity retrain tonight.
            dates = snapshot_dates(settings, as_of, data_start)
            dates_reason = f"full refresh of changed models: {_WITH_CUTOFFS}"
            _keep_history(warehouse)
            completed, problems = _full_refresh_schema_changes(settings, as_of, dates, rebuilt)
            rerun = _result_ids(run_results) if run_results.is_file() else set()
            # Failures of the first run the full refresh did not run again still stand.
            problems += [
                _failure_line(r)
                for r in first
                if r["unique_id"] not in rerun
                and SCHEMA_CHANGE_MESSAGE not in " ".join((r.get("message") or "").split())
            ]
    if refresh and completed.returncode == 0 and not problems:
        # A changed row-shaping var: the night's build passed with it (new days); past days
        # are rebuilt from the events by the models reading it and every model after them.
        if set(FEATURE_MODELS) & set(refresh):
            # Changed features also make propensity retrain tonight: the cut-offs too.
            dates = snapshot_dates(settings, as_of, data_start)
            dates_reason = f"full refresh for changed dbt vars: {_WITH_CUTOFFS}"
        _keep_history(warehouse)
        completed, problems = _full_refresh_changed_vars(
            settings, as_of, dates, refresh, var_changes
        )
    restored: list[date] = []
    history_waiting: list[date] = []
    history_failed: list[str] = []
    history_note = ""
    if completed.returncode == 0 and not problems:
        # The full refresh passed: recorded now, so a failed rebuild of the past snapshots
        # below is resumed by the next night alone, not by another full refresh.
        if record_logic:
            _record_logic(warehouse, as_of)
        if record_vars:
            _record_vars(warehouse, as_of, current_vars)
        if outdated or rebuilt or refresh or history_waits:
            rebuild, history_failed, restored, history_waiting = _restore_history(
                settings, as_of, completed
            )
            # Tonight's models and tests passed before the rebuild of past snapshots: a
            # failed or killed rebuild run (a data test failing on an old date's rows, the
            # out-of-memory killer) held tonight's segments, scores and audiences hostage,
            # night after night while it failed again. It is a warning now, its dates left
            # in HISTORY_TO_REBUILD for the next nights; a full disk still fails the night
            # (the stages after it would fail on it too).
            if history_failed and _disk_fault(
                settings, history_failed, rebuild, target_path.parent
            ):
                completed, problems, history_failed = rebuild, history_failed, []
                # The fault alone named neither the rebuild nor the dates it left.
                history_note = (
                    "\nthe fault came while rebuilding past snapshots of "
                    "marts.customer_feature_history after a full refresh (tonight's build had "
                    f"passed): {len(history_waiting)} past snapshot(s) wait in "
                    f"{HISTORY_TO_REBUILD}, {_day_spans(history_waiting)}; the rerun rebuilds "
                    "them once there is room"
                )
    seconds = time.perf_counter() - started
    if completed.returncode < 0:
        raise DbtKilledError(_killed_message(settings, as_of, completed, seconds, run_results))
    if completed.returncode != 0 or problems:
        if not problems:
            problems = failures(run_results) if run_results.is_file() else []
        if not problems:
            problems = _output_tail(completed)
        if any(CURRENCY_TEST in line for line in problems):
            problems += missing_rates(settings)
        fault = _disk_fault(settings, problems, completed, target_path.parent)
        if not fault:
            problems += pending_after_failure(settings, as_of)
        raise (DiskFaultError if fault else SegmintError)(
            (
                f"dbt build failed for as-of {as_of}: {fault}{history_note}"
                if fault
                else f"dbt build failed for as-of {as_of} ({len(problems)} problem(s)):\n  "
                + "\n  ".join(problems)
            )
            + f"\nrun results: {run_results}"
            + ("" if run_results.is_file() else " (not written: dbt stopped before any node ran)")
            + f"\ndbt log: {log_path / 'dbt.log'}"
        )
    figures, rebuilt_days, past_days = _mart_figures(warehouse, as_of)
    import duckdb

    # The night's outliers, read in one connection.
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        placeholders = _placeholder_customer_ids(con)
        # Customers without a CRM record whose id matches a CRM id but for case ('C1' in
        # events, 'c1' in the CRM): two customers each, consent on one.
        case_ids = IDS_DIFFERING_IN_CASE.find(con)
        figures["ids_differing_in_case"] = len(case_ids)
        # And those matching one but for leading zeros ('00123' in events, '123' in the CRM).
        zero_ids = IDS_DIFFERING_IN_LEADING_ZEROS.find(con)
        figures["ids_differing_in_leading_zeros"] = len(zero_ids)
        heavy = _heavy_visitors(con, as_of)
        new_conflicts, new_orphans = _new_tonight(con)
    finally:
        con.close()
    placeholders_seen = _record_placeholders(warehouse, as_of, placeholders)
    case_ids_seen = IDS_DIFFERING_IN_CASE.record(warehouse, as_of, case_ids)
    zero_ids_seen = IDS_DIFFERING_IN_LEADING_ZEROS.record(warehouse, as_of, zero_ids)
    summary = (
        f"{figures['customers']} customers with features as of {as_of}, "
        f"{figures['orders']} orders, {figures['sessions']} sessions, "
        f"{figures['identity_conflicts']} identity conflicts, "
        f"{figures['anonymous_visitors']} anonymous visitors; "
        f"snapshots {', '.join(d.isoformat() for d in dates)} in {seconds:.1f}s"
    )
    if rebuilt_days and len(rebuilt_days) < past_days:
        # An incremental night that went back in time: the operator sees which past days
        # changed under the analysts (their sessions, orders, daily activity).
        shown = ", ".join(d.isoformat() for d in rebuilt_days[:5])
        more = f" and {len(rebuilt_days) - 5} more" if len(rebuilt_days) > 5 else ""
        summary += (
            f"; recomputed {len(rebuilt_days)} past day(s) whose events, attribution, orders "
            f"or rates changed: {shown}{more}"
        )
    details: dict[str, Any] = {
        **figures,
        "snapshot_dates": [d.isoformat() for d in dates],
        "snapshot_dates_reason": dates_reason,
        # Event dates before the as-of date recomputed tonight (every one on a full build).
        "rebuilt_past_days": [d.isoformat() for d in rebuilt_days],
        "dbt_seconds": round(seconds, 2),
        "reporting_currency": settings.transform.reporting_currency,
        # DuckDB's resources inside dbt ([transform] duckdb_threads, duckdb_memory_limit).
        "duckdb": {
            "threads": settings.transform.duckdb_thread_count,
            "memory_limit": settings.transform.duckdb_memory_limit or _DUCKDB_DEFAULT_MEMORY_LIMIT,
        },
        "currency_rates": rates,
        "schema_change_full_refresh": rebuilt,
        # Past snapshots of the feature history (and their rule segments) rebuilt after a full
        # refresh, besides the snapshot dates above (ops.snapshot_dates_to_rebuild).
        "history_snapshots_rebuilt": [d.isoformat() for d in sorted(restored)],
        # Those left for the next nights ([transform] history_rebuild_minutes).
        "history_snapshots_waiting": [d.isoformat() for d in sorted(history_waiting)],
        # Why the rebuild stopped before them, when a run of it failed or was killed (each
        # line names its dates); the night passed all the same.
        "history_rebuild_failures": history_failed,
        "logic_full_refresh": outdated,
        # The dbt vars changed since the stored rows were built (name: [then, now], as JSON)
        # and the models rebuilt with --full-refresh for them, with every model after them.
        "var_full_refresh": {
            "vars": {name: list(values) for name, values in var_changes.items()},
            "models": refresh,
        }
        if refresh
        else None,
        "run_results": str(run_results),
        "placeholder_customer_ids": [customer for customer, _, _ in placeholders],
        # The night each was first found (ops.placeholder_customer_ids): warned of then only.
        "placeholder_customer_ids_since": {
            customer: first.isoformat() for customer, (first, _) in placeholders_seen.items()
        },
        # The night each was first found (ops.customer_ids_differing_in_case): warned of
        # then only.
        "ids_differing_in_case_since": {
            customer: first.isoformat() for customer, (first, _) in case_ids_seen.items()
        },
        "ids_differing_in_leading_zeros_since": {
            customer: first.isoformat() for customer, (first, _) in zero_ids_seen.items()
        },
        "heavy_visitors": [who for who, *_ in heavy],
    }
    warnings = []
    if outdated:
        warnings.append(f"rebuilt every model from scratch: {outdated}")
    if refresh:
        warnings.append(
            f"rebuilt {', '.join(refresh)} and every model built from them from scratch: "
            f"dbt var(s) changed since their stored rows were built: {_vars_words(var_changes)}"
        )
    if restored:
        warnings.append(
            f"rebuilt {len(restored)} past snapshot(s) of marts.customer_feature_history and "
            f"their rule segments with the new definition, {_day_spans(restored)}: "
            "every snapshot date the history held before the full refresh is kept"
            + (
                f"; {len(history_waiting)} older one(s) wait for the next nights "
                f"({_day_spans(history_waiting)}, [transform] history_rebuild_minutes)"
                if history_waiting and not history_failed
                else ""
            )
        )
    if history_failed:
        failed = (
            f"the rebuild of past snapshots of marts.customer_feature_history (and their "
            f"rule segments) after a full refresh failed: {'; '.join(history_failed)}. "
            "Tonight's build passed and the night goes on; "
            + (
                f"{len(history_waiting)} past snapshot(s) still wait in {HISTORY_TO_REBUILD}: "
                f"{_day_spans(history_waiting)}. Each night retries them, newest first, until "
                "a run passes: fix the cause "
                if history_waiting
                else "fix the cause "
            )
            + f"(dbt log: {log_path / 'dbt.log'})"
        )
        log.error("transform: %s", failed)
        warnings.append(failed)
    # Warned of on the night their days were built; later nights only log them (the same
    # old rows were warned of every night, a warning that repeats forever).
    conflicts, orphans = figures["order_conflicts"], figures["refunds_without_order"]
    if conflicts > new_conflicts:
        log.info(
            "transform: still %s order conflict(s) of earlier nights (marts.order_conflicts)",
            conflicts - new_conflicts,
        )
    if orphans > new_orphans:
        log.info(
            "transform: still %s refund(s) of earlier nights without their order "
            "(marts.refunds where not has_order)",
            orphans - new_orphans,
        )
    if new_conflicts:
        earlier = (
            f" (and {conflicts - new_conflicts} of earlier nights)"
            if conflicts > new_conflicts
            else ""
        )
        warnings.append(
            f"{new_conflicts} order id(s) came with more than one customer or "
            "amount: marts.orders keeps each order's first purchase event, the others count "
            "in no order, revenue or RFM figure (their sessions still show a purchase; order "
            f"numbers that restart per store?); see marts.order_conflicts{earlier}"
        )
    if new_orphans:
        earlier = (
            f" (and {orphans - new_orphans} of earlier nights)" if orphans > new_orphans else ""
        )
        warnings.append(
            f"{new_orphans} refund(s) name an order_id no purchase "
            "carries: they lower no revenue until their order is loaded (an order from before "
            "the loaded history, or ids that differ between the back end and the tracker?); "
            f"see marts.refunds where not has_order{earlier}"
        )
    IDS_DIFFERING_IN_CASE.warn(case_ids, case_ids_seen, warnings)
    IDS_DIFFERING_IN_LEADING_ZEROS.warn(zero_ids, zero_ids_seen, warnings)
    still = [p for p in placeholders if not placeholders_seen[p[0]][1]]
    if still:
        log.info(
            "transform: still placeholder customer id(s), warned of on their first night "
            "(ops.placeholder_customer_ids): %s",
            ", ".join(
                f"'{customer}' ({orders} orders) since {placeholders_seen[customer][0]}"
                for customer, orders, _ in still
            ),
        )
    placeholders = [p for p in placeholders if placeholders_seen[p[0]][1]]
    if placeholders:
        named = ", ".join(
            f"'{customer}' ({orders} orders, {devices} anonymous ids)"
            for customer, orders, devices in placeholders
        )
        warnings.append(
            f"customer id(s) {named} look like placeholders for 'no customer': read as an "
            "id, each is one customer holding everybody's orders and devices. If an export "
            "writes one for guests, name it in [ingest.null_values.events] customer_id "
            "(docs/data-contract.md) and reload the days with segmint ingest --reload-since"
        )
    if heavy:
        named = "; ".join(
            f"{'anonymous id' if anonymous else 'customer'} '{who}'"
            f"{' (an e-mail address, hashed as in analyst.*)' if hashed else ''}: "
            f"{hits:,} on {day} ({sessions:,} session(s))"
            for who, anonymous, day, hits, sessions, hashed in heavy
        )
        warnings.append(
            f"id(s) with more than {HEAVY_VISITOR_HITS:,} page views, product views, searches "
            f"and cart adds in a day, no person's pace (a crawler, a probe, a load test?): "
            f"{named}. They count in marts.sessions and the session figure, a customer's in "
            "its features and segment; drop them before landing if they are not people "
            '(docs/models.md, "Outliers")'
        )
    return StageResult(
        stage="transform",
        rows_in=rows_in,
        rows_out=figures["customers"],
        summary=summary,
        details=details,
        warnings=warnings,
    )
