"""The ``validate`` stage: decide from stored results whether the loaded partitions may go on.

A partition (source, ``dt=``) is checked when it has not passed yet, when its files changed
since it passed (new file, new checksum), and always for the as-of date. It fails when

- a file of it could not be read (status ``failed`` in ``ops.load_manifest``);
- its quarantined share (quarantined / read, over its files; records of ignored event types
  are not counted as read) exceeds ``ingest.max_quarantine_share`` and at least
  ``ingest.min_quarantined_rows`` of its rows were quarantined (1 by default; a partition
  above the share with fewer is a warning);
- its events without any identity exceed ``ingest.max_no_identity_share``;
- it holds fewer rows than ``ingest.min_rows_per_partition`` or more than
  ``ingest.max_rows_per_partition``, unless it holds none because it was withdrawn (its
  files delivered again empty after it was judged with rows) or it is a CRM partition
  (upserts: a day without one changes nothing): a warning then.

An as-of date without any events file is a warning, or a failure with
``ingest.require_as_of_events``.

These are the batch-level expectations of the GX suite ``expectations/suites/partitions.py``,
run over a frame with one row per partition built from ``ops.load_manifest`` and
``ops.validation_runs``; its row-level results name the failing partitions. Every partition
checked gets a row in ``ops.quality_gate``; the stage then raises
:class:`~segmint.stages.QualityGateError` naming each failing partition. Loaded rows stay
loaded either way: the gate stops what is published downstream, it deletes nothing.

GX's verdicts are kept in ``ops.gate_judgements``, keyed by a digest of everything they
depend on (the partition's figures, the ingest settings, the suite's source). The ingest
stage, which has imported GX anyway, judges the partitions it loaded right after loading
(:func:`judge_partitions`), so this stage usually finds every verdict made and does not
pay the seconds of ``import great_expectations`` in its own process. A partition whose
figures, thresholds or suite changed since is judged again here, by GX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from segmint.config import Settings
from segmint.ingest.files import sha256_of
from segmint.ingest.loader import ensure_ops_tables
from segmint.stages import BeforeFirstDeliveryError, QualityGateError, StageResult
from segmint.warehouse import connect, table_exists, transaction

_TOP_REASONS = 3
# The setting that loads what a whole export quarantines for a reason (a public dataset, a
# platform's export): named after the reason in the gate's message, so a first try with a
# new source says what to change without a read of docs/data-contract.md.
_SETTING_FOR = {
    "missing required field event_id": "without event ids: [ingest] event_id_from_record",
    "unknown event_type": "map names with [ingest.event_type_aliases], or drop them with "
    "[ingest] ignored_event_types",
    "event_ts is not an ISO-8601 timestamp": "Unix times: [ingest] epoch_timestamp_unit; "
    "a spreadsheet's dates (30.06.2026, 6/30/2026): [ingest] date_order",
    "updated_at is not an ISO-8601 timestamp": "a spreadsheet's dates (30.06.2026, "
    "6/30/2026): [ingest] date_order; Unix times: [ingest] epoch_timestamp_unit",
    "missing required field updated_at": "without modification times: "
    "[ingest] crm_updated_at_from_partition",
}
_SUITE_SOURCE = Path(__file__).resolve().parents[3] / "expectations" / "suites" / "partitions.py"
_JUDGEMENTS_DDL = """
create table if not exists ops.gate_judgements (
    source varchar not null,
    partition_date date not null,
    input_key varchar not null,
    failing_rules varchar[] not null,
    judged_at timestamp not null,
    primary key (source, partition_date)
)
"""


# Each loaded partition (source, dt) on or before the as-of date, with a fingerprint of its
# files: the gate's verdict holds while the fingerprint is the one it judged.
_PARTS_SQL = """
        with parts as (
            select
                source,
                partition_date,
                md5(string_agg(path || ':' || sha256 || ':' || status, ',' order by path))
                    as fingerprint,
                -- Ignored records (ignored_event_types) are not records segmint reads.
                sum(rows_read - coalesce(rows_ignored, 0)) filter (where status = 'loaded')
                    as rows_read,
                sum(rows_quarantined) filter (where status = 'loaded') as rows_quarantined,
                list(path order by path) filter (where status = 'failed') as failed_files,
            from ops.load_manifest
            where partition_date <= ?
            group by all
        )
"""


# Every day from the first events partition to the as-of date without any events file gets
# a 'missing' row, so that an analyst reading ops.quality_gate tells "no data arrived" from
# "not checked". A day's files landing later are judged on their night, which replaces the
# row with the verdict; rows are recomputed up to the as-of date each time.
_MISSING_DAYS_SQL = """
        insert into ops.quality_gate
        select 'events', day::date, '', 'missing', 0, 0, 0.0,
            'no events file has landed for this day: its visits and orders are not in the '
            || 'marts; files delivered later into events/dt=' || strftime(day, '%Y-%m-%d')
            || '/ are loaded and judged by the next night', $now
        from range(
            (select min(partition_date) from ops.load_manifest where source = 'events')::timestamp,
            ($as_of::date + 1)::timestamp,
            interval 1 day
        ) as days(day)
        where day::date not in (
            select partition_date from ops.load_manifest where source = 'events'
        )
"""


def _partitions_to_check(con, as_of: date) -> list[tuple]:
    return con.execute(
        _PARTS_SQL
        + """
        select p.source, p.partition_date, p.fingerprint, coalesce(p.rows_read, 0),
            coalesce(p.rows_quarantined, 0), p.failed_files
        from parts p
        left join ops.quality_gate g using (source, partition_date)
        where g.status is distinct from 'passed'
            or g.fingerprint <> p.fingerprint
            or p.partition_date = ?
        order by p.partition_date, p.source
        """,
        [as_of, as_of],
    ).fetchall()


def unpassed_partitions(con, as_of: date) -> list[str]:
    """Loaded partitions on or before ``as_of`` without a passing gate verdict for the files
    they hold now: ``events dt=2026-06-30 (failed)``, or ``(not judged)`` when the validate
    stage has not judged them since a file came or changed. Publish refuses the night while
    there are any."""
    from segmint.warehouse import table_exists

    if not table_exists(con, "ops.load_manifest"):
        return []
    if table_exists(con, "ops.quality_gate"):
        gate = "left join ops.quality_gate as g using (source, partition_date)"
        status = "case when g.fingerprint = p.fingerprint then g.status end"
    else:
        gate, status = "", "null"
    rows = con.execute(
        _PARTS_SQL
        + f"""
        select p.source, p.partition_date, coalesce({status}, 'not judged')
        from parts as p
        {gate}
        where coalesce({status}, '') <> 'passed'
        order by p.partition_date, p.source
        """,
        [as_of],
    ).fetchall()
    return [f"{source} dt={day} ({verdict})" for source, day, verdict in rows]


def _top_reasons(con, source: str, partition_date: date) -> str:
    """The most frequent reasons, each with the values it quotes most often: a whole
    public dataset quarantined as "unknown event_type" must say which names to map
    (``'view' 1650, 'cart' 130``), and "not an ISO-8601 timestamp" what the times look like
    (``'12/1/2009 7:45'``, a Unix time), without a query of ops.quarantine."""
    rows = con.execute(
        """
        with quoted as (
            select
                regexp_replace(reason, ' \\(got .*\\)$', '') as reason,
                regexp_extract(reason, ' \\(got (.*)\\)$', 1) as got
            from (select unnest(reasons) as reason from ops.quarantine
                  where source = ? and partition_date = ?)
        ),
        top as (
            select reason, count(*) as n from quoted group by 1 order by n desc, reason limit ?
        ),
        got as (
            select reason, got, count(*) as n from quoted semi join top using (reason)
            where got <> '' group by 1, 2
        )
        select reason, top.n, (
            select list((got.got, got.n) order by got.n desc, got.got)[1:?]
            from got where got.reason = top.reason
        )
        from top order by top.n desc, reason
        """,
        [source, partition_date, _TOP_REASONS, _TOP_REASONS],
    ).fetchall()
    out = []
    for reason, n, values in rows:
        shown = ", ".join(
            f"{v[:40]!r}" + ("..." if len(v) > 40 else "") + f" {k}" for v, k in values or []
        )
        setting = next(
            # the reason itself, or with the names its field was looked for under
            (v for k, v in _SETTING_FOR.items() if reason == k or reason.startswith(f"{k} (")),
            None,
        )
        out.append(
            f"{reason} ({n}"
            + (f"; got {shown}" if shown else "")
            + (f"; {setting}" if setting else "")
            + ")"
        )
    return ", ".join(out)


def _quarantined_files(con, landing: Path, source: str, partition_date: date) -> str:
    """The files holding a partition's quarantined rows, most first: what to fix or
    re-deliver. A file gone from the landing zone keeps its rows (docs/data-contract.md), so
    a rerun alone cannot clear it: say so, and how to withdraw them."""
    rows = con.execute(
        """
        select path, rows_quarantined, size_bytes, sha256 from ops.load_manifest
        where source = ? and partition_date = ? and status = 'loaded' and rows_quarantined > 0
        order by rows_quarantined desc, path
        """,
        [source, partition_date],
    ).fetchall()
    named = []
    for path, n, size, sha in rows[:_TOP_REASONS]:
        gone = not (landing / path).exists()
        note = ""
        if gone:
            note = (
                ", gone from the landing zone: its rows stay loaded until a file of that "
                "name is delivered again, corrected or empty"
            )
        elif _changed_since_loaded(landing / path, size, sha):
            note = (
                ", changed since it was loaded: these are its old rows, and only the ingest "
                "stage loads the new ones; rerun the night from ingest (under Airflow clear "
                "the night's `ingest` task with its downstream tasks, not `validate` alone)"
            )
        named.append(f"{path} ({n}{note})")
    more = f" and {len(rows) - _TOP_REASONS} more file(s)" if len(rows) > _TOP_REASONS else ""
    return ", ".join(named) + more


def _changed_since_loaded(path: Path, size: int, sha256: str) -> bool:
    """Whether the file on disk is no longer the one loaded (a fix not ingested yet)."""
    try:
        return path.stat().st_size != size or sha256_of(path) != sha256
    except OSError:
        return False


def _no_identity_share(con, source: str, partition_date: date) -> float | None:
    if source != "events":
        return None
    row = con.execute(
        """
        select sum(v.unexpected_count), sum(v.element_count)
        from ops.validation_runs v
        join ops.load_manifest m on m.path = v.source_file and m.status = 'loaded'
        where v.source = ? and v.partition_date = ? and v.rule = 'has_identity'
        """,
        [source, partition_date],
    ).fetchall()
    missing, total = row[0] if row else (None, None)
    return (missing or 0) / total if total else 0.0


def _input_key(settings: Settings, part: dict) -> str:
    """A digest of everything a partition's GX verdict depends on."""
    suite = _SUITE_SOURCE.read_bytes() if _SUITE_SOURCE.exists() else b""
    payload = json.dumps(
        [
            {k: v for k, v in part.items() if k != "fingerprint"},
            dataclasses.asdict(settings.ingest),
            hashlib.sha256(suite).hexdigest(),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _run_suite(settings: Settings, parts: list[dict]) -> dict[tuple[str, str], list[str]]:
    """Run the partition suite (GX) over one row per partition; failing rules per partition."""
    import pandas as pd

    from segmint.validation import BatchValidator

    frame = pd.DataFrame(parts).drop(columns=["fingerprint"])
    frame["no_identity_share"] = frame["no_identity_share"].astype("float64")
    frame["failed_files"] = frame["failed_files"].astype("string")
    results = BatchValidator(settings.ingest).validate("partitions", frame, run_name="gate")
    failing: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.failing is None:
            if not r.success:
                # A batch expectation that failed without naming rows (for example a GX
                # error on its own arguments) fails every partition: a gate never passes
                # silently.
                for key in zip(frame["source"], frame["partition_date"], strict=True):
                    failing.setdefault((str(key[0]), str(key[1])), []).append(r.rule)
            continue
        for key in zip(r.failing["source"], r.failing["partition_date"], strict=True):
            failing.setdefault((str(key[0]), str(key[1])), []).append(r.rule)
    return failing


def _judge(
    con, settings: Settings, parts: list[dict]
) -> tuple[dict[tuple[str, str], list[str]], int]:
    """GX's failing rules per partition (stored verdicts where still valid, else a GX run),
    and how many partitions GX judged now."""
    con.execute(_JUDGEMENTS_DDL)
    keys = {(p["source"], p["partition_date"]): _input_key(settings, p) for p in parts}
    stored = {
        (source, pdate.isoformat()): (key, rules)
        for source, pdate, key, rules in con.execute(
            "select source, partition_date, input_key, failing_rules from ops.gate_judgements"
        ).fetchall()
    }
    failing: dict[tuple[str, str], list[str]] = {}
    todo = []
    for p in parts:
        part = (p["source"], p["partition_date"])
        if part in stored and stored[part][0] == keys[part]:
            if stored[part][1]:
                failing[part] = list(stored[part][1])
        else:
            todo.append(p)
    if todo:
        judged = _run_suite(settings, todo)
        failing.update(judged)
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [
            (*part, keys[part], judged.get(part, []), now)
            for part in ((p["source"], p["partition_date"]) for p in todo)
        ]
        with transaction(con):
            con.executemany(
                "insert or replace into ops.gate_judgements values (?, ?::date, ?, ?, ?)", rows
            )
    return failing, len(todo)


def _collect_parts(con, as_of: date) -> list[dict]:
    parts = []
    for source, pdate, fingerprint, rows_read, rows_q, failed_files in _partitions_to_check(
        con, as_of
    ):
        parts.append(
            {
                "source": source,
                "partition_date": pdate.isoformat(),
                "fingerprint": fingerprint,
                "rows_read": rows_read,
                "rows_quarantined": rows_q,
                "quarantined_share": rows_q / rows_read if rows_read else 0.0,
                "no_identity_share": _no_identity_share(con, source, pdate),
                "failed_files": ", ".join(failed_files) if failed_files else None,
            }
        )
    return parts


def judge_partitions(settings: Settings, as_of: date) -> int:
    """Store GX's verdict on every partition the validate stage will check; returns how many
    were judged by GX now (the rest already had a valid verdict)."""
    con = connect(settings.warehouse)
    try:
        ensure_ops_tables(con)
        parts = _collect_parts(con, as_of)
        return _judge(con, settings, parts)[1] if parts else 0
    finally:
        con.close()


def _share_passed_by_count(settings: Settings, p: dict) -> bool:
    """The partition's quarantined share is above the threshold, but it was not judged: too
    few rows were quarantined (``ingest.min_quarantined_rows``)."""
    ingest = settings.ingest
    return (
        p["quarantined_share"] > ingest.max_quarantine_share
        and p["rows_quarantined"] < ingest.min_quarantined_rows
    )


def _explain(con, settings: Settings, rule: str, p: dict) -> str:
    ingest = settings.ingest
    if rule == "quarantined_share":
        pdate = date.fromisoformat(p["partition_date"])
        return (
            f"{p['quarantined_share']:.1%} of its {p['rows_read']} rows were quarantined "
            f"(threshold {ingest.max_quarantine_share:.1%}); top reasons: "
            f"{_top_reasons(con, p['source'], pdate)}; in "
            f"{_quarantined_files(con, settings.landing, p['source'], pdate)}"
        )
    if rule == "no_identity_share":
        return (
            f"{p['no_identity_share']:.1%} of events have no customer_id or anonymous_id "
            f"(threshold {ingest.max_no_identity_share:.1%})"
        )
    if rule == "row_count":
        files = ""
        if not p["rows_read"]:
            pdate = date.fromisoformat(p["partition_date"])
            files = f" ({_files_without_records(con, p['source'], pdate)})"
        return (
            f"{p['rows_read']} rows, outside the expected {ingest.min_rows_per_partition}"
            f"-{ingest.max_rows_per_partition}{files}"
        )
    return f"unreadable file(s): {p['failed_files']}"


def _files_without_records(con, source: str, partition_date: date) -> str:
    """The files of a partition that loaded no record, with their sizes: what to deliver
    again. The validate task's failure named the day alone ("events dt=2026-10-28: 0 rows,
    outside the expected 1-50000000"), and its one file, 0 bytes (an upload cut off), was
    named only in the ingest task's log."""
    rows = con.execute(
        "select path, size_bytes from ops.load_manifest "
        "where source = ? and partition_date = ? and status = 'loaded' order by path",
        [source, partition_date],
    ).fetchall()
    if not rows:
        return "no file loaded"
    shown = [f"{path}, {'0 bytes' if not size else f'{size:,} bytes'}" for path, size in rows]
    more = f" and {len(rows) - _TOP_REASONS} more" if len(rows) > _TOP_REASONS else ""
    empty = " (a 0-byte file: an upload cut off?)" if any(not size for _, size in rows) else ""
    return (
        f"its file(s) without a record: {'; '.join(shown[:_TOP_REASONS])}{more}{empty}; "
        "deliver the day's files again under the same names"
    )


def _held_rows_before(con) -> dict[tuple[str, str], tuple[str, int]]:
    """Each partition's last verdict: its status and the rows it held then."""
    return {
        (source, pdate.isoformat()): (status, rows_read)
        for source, pdate, status, rows_read in con.execute(
            "select source, partition_date, status, rows_read from ops.quality_gate"
        ).fetchall()
    }


def _empty_but_sound(p: dict, rules: list[str], before: tuple[str, int] | None) -> str | None:
    """Why a partition without a record passes, if it does: a CRM partition (its records are
    upserts), or one whose files were delivered again empty, the landing-zone contract's way
    to withdraw what they loaded (docs/data-contract.md).

    A partition judged before with rows (or passed with none: withdrawn already) that now
    reads none, every file of it loaded, was withdrawn on purpose; one never seen with a
    row is an export that wrote nothing, and still fails the row count."""
    if "row_count" not in rules or p["rows_read"] != 0 or p["failed_files"]:
        return None
    status, rows_before = before or ("failed", 0)
    if rows_before or (status == "passed" and p["source"] == "events"):
        held = f" (it held {rows_before} when last judged)" if rows_before else ""
        return (
            f"withdrawn: its files were delivered again without records, so it holds 0 rows"
            f"{held}; if that was not meant, deliver the day's files again"
        )
    if p["source"] == "crm":
        # CRM records are upserts: a day without one changes no customer (a delta export on
        # a day nobody changed writes its header alone), and nothing published is wrong.
        return (
            "no customer record: nothing changes (a delta export on a day no customer "
            "changed; if the export should have held records, deliver it again)"
        )
    return None


def _nothing_loaded_up_to(con: duckdb.DuckDBPyConnection, as_of: date) -> list[date] | None:
    """None when a record of a partition on or before ``as_of`` is loaded; else the
    partition dates loaded after it (none on a fresh warehouse)."""
    later: list[date] = []
    for table in ("raw.events", "raw.customers"):
        if not table_exists(con, table):
            continue
        before, first = con.execute(
            f"select count(*) filter (where _partition_date <= ?) > 0, "
            f"min(_partition_date) filter (where _partition_date > ?) from {table}",
            [as_of, as_of],
        ).fetchone()
        if before:
            return None
        if first is not None:
            later.append(first)
    return later


def _before_first_delivery(
    settings: Settings, as_of: date, loaded_later: list[date]
) -> BeforeFirstDeliveryError | None:
    """The error of a night with nothing loaded up to it, naming the first delivery.

    A backfill that started before the shop's first delivery (or an as-of date mistyped into
    the past) ingested nothing, ran the whole transform (29 s for a small shop) and failed
    only at segment, "check --as-of", which an Airflow log has no such flag for. None when
    files were delivered up to it but held no record (withdrawn days: the gate's verdicts
    say so, and the segment stage stops the night)."""
    from segmint.config import landing_problem
    from segmint.ingest.files import first_delivery

    folder = first_delivery(settings.landing)
    firsts = [(date.fromisoformat(folder.name.removeprefix("dt=")), str(folder))] if folder else []
    firsts += [(day, f"loaded in the warehouse {settings.warehouse}") for day in loaded_later]
    head = f"nothing is loaded up to the as-of date {as_of}"
    if not firsts:
        where = landing_problem(settings.landing) or (
            f"the landing zone {settings.landing} holds no data file in an events/ or crm/ "
            "partition (dt=YYYY-MM-DD)"
        )
        return BeforeFirstDeliveryError(f"{head}: {where}", None, settings.landing)
    first, where = min(firsts)
    if first <= as_of:  # files delivered without a record (withdrawn): the gate judged them
        return None
    return BeforeFirstDeliveryError(
        f"{head}: the first partition delivered is dt={first} ({where}), after it",
        first,
        settings.landing,
    )


def check_quality_gate(settings: Settings, as_of: date) -> StageResult:
    """Apply the quality gate to every loaded partition <= ``as_of`` not yet passed."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con = connect(settings.warehouse)
    failures: list[str] = []
    warnings: list[str] = []
    checked = judged = 0
    rows_in = 0
    try:
        ensure_ops_tables(con)
        parts = _collect_parts(con, as_of)
        checked = len(parts)
        rows_in = sum(p["rows_read"] for p in parts)
        problems, judged = _judge(con, settings, parts) if parts else ({}, 0)
        held_rows = _held_rows_before(con)
        verdicts = []
        for p in parts:
            key = (p["source"], p["partition_date"])
            rules = problems.get(key, [])
            empty = _empty_but_sound(p, rules, held_rows.get(key))
            if empty:
                rules = [r for r in rules if r != "row_count"]
                warnings.append(f"{p['source']} dt={p['partition_date']}: {empty}")
            details = []
            for rule in rules:
                details.append(_explain(con, settings, rule, p))
            message = "; ".join(details) or None
            if message:
                failures.append(f"{p['source']} dt={p['partition_date']}: {message}")
            if _share_passed_by_count(settings, p):
                note = (
                    f"{p['quarantined_share']:.1%} of its {p['rows_read']} rows were "
                    f"quarantined (threshold {settings.ingest.max_quarantine_share:.1%}), but "
                    f"only {p['rows_quarantined']}, fewer than [ingest] min_quarantined_rows "
                    f"({settings.ingest.min_quarantined_rows}): not stopping the night"
                )
                warnings.append(f"{p['source']} dt={p['partition_date']}: {note}")
                message = message or note  # ops.quality_gate says why it passed
            message = message or empty
            verdicts.append(
                (
                    p["source"],
                    date.fromisoformat(p["partition_date"]),
                    p["fingerprint"],
                    "failed" if details else "passed",
                    p["rows_read"],
                    p["rows_quarantined"],
                    p["quarantined_share"],
                    message,
                    now,
                )
            )
        with transaction(con):
            for v in verdicts:
                con.execute(
                    "delete from ops.quality_gate where source = ? and partition_date = ?",
                    [v[0], v[1]],
                )
                con.execute(
                    "insert into ops.quality_gate values (?, ?, ?, ?, ?, ?, ?, ?, ?)", list(v)
                )
            con.execute(
                "delete from ops.quality_gate where status = 'missing' and partition_date <= ?",
                [as_of],
            )
            con.execute(_MISSING_DAYS_SQL, {"as_of": as_of, "now": now})
        nothing_loaded = _nothing_loaded_up_to(con, as_of)
        as_of_events, newest, as_of_crm = con.execute(
            "select count(*) filter (where source = 'events' and partition_date = $d), "
            "max(partition_date) filter (where source = 'events'), "
            "count(*) filter (where source = 'crm' and partition_date = $d) "
            "from ops.load_manifest where partition_date <= $d",
            {"d": as_of},
        ).fetchall()[0]
    finally:
        con.close()
    if not as_of_events and settings.ingest.require_as_of_events:
        failures.append(
            f"events dt={as_of}: no events file for the as-of date has landed (a late or "
            "missing delivery; [ingest] require_as_of_events is true)"
        )
    if failures:
        raise QualityGateError(
            f"quality gate failed for {len(failures)} partition(s); nothing downstream may be "
            "published (the good rows stay loaded; fix or re-deliver the files, then rerun from "
            "ingest, which loads them: under Airflow clear the `ingest` task and downstream; "
            "after fixing an [ingest] setting instead, `segmint ingest --reload-since DATE` "
            "reads the loaded files again): " + " | ".join(failures)
        )
    if nothing_loaded is not None:
        error = _before_first_delivery(settings, as_of, nothing_loaded)
        if error is not None:
            raise error
    if not as_of_events:
        # A feed that stopped makes every customer drift toward 'at risk' and 'churned':
        # say how stale the data is, not only that today's files are missing.
        stale = (
            f"; the newest events partition is dt={newest}, {(as_of - newest).days} day(s) "
            "before it"
            if newest
            else "; no events partition on or before it"
        )
        # Only the CRM's files of the day (the events export late or stopped, not the whole
        # delivery): the night goes on and publishes, as the CRM's changes (a consent
        # withdrawn, an erasure's record) must reach tonight's audiences; docs/operations.md.
        crm = (
            "; the CRM files of that day did land: the events export alone is late or "
            "stopped (tonight's consent and profile changes go out; visits and orders of "
            "the day are missing from the features)"
            if as_of_crm
            else ""
        )
        warnings.append(f"no events files for the as-of date {as_of}{stale}{crm}")
    return StageResult(
        stage="validate",
        rows_in=rows_in,
        rows_out=rows_in,
        summary=f"quality gate passed for {checked} partition(s)",
        details={"partitions_checked": checked, "judged_by_gx_here": judged},
        warnings=warnings,
    )
