"""``segmint ingest``: load new or changed landing files into ``raw.*``, accounting for every row.

For each file (in ``(partition_date, path)`` order) the loader

1. reads every record as text with its line number (:mod:`segmint.ingest.files`);
2. types it in DuckDB with the contract's explicit cast rules (:mod:`segmint.ingest.contract`);
3. validates the typed batch with the source's GX suite (:mod:`segmint.validation`); the
   suite's row-level results decide: a record failing a ``record`` expectation is quarantined
   with every reason that applied, a ``warning`` nulls the offending optional field;
4. deduplicates what is left and inserts it, writing the manifest row in the same transaction.

Duplicates: the copy with the smallest ``(partition_date, file path, line)`` wins, whatever
order the files were loaded in. When a file loaded later holds an earlier copy, the copy
already in ``raw.*`` is moved to ``ops.duplicates`` and its file's counts are adjusted, so
loading partitions out of order converges to the in-order result.

A file whose checksum changed is reloaded: its earlier rows (raw, quarantine, duplicates,
validation results) are deleted and the new content loaded in one transaction, together with
any file that had a duplicate of one of its records (that copy may win now).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from segmint.config import Settings
from segmint.ingest.contract import FIELDS, OPS_DDL, RAW_TABLE
from segmint.ingest.files import LandingFile, UnreadableFile, discover, read_records
from segmint.stages import InputError, StageResult
from segmint.warehouse import connect, ensure_raw_tables, transaction

log = logging.getLogger(__name__)

# Kinds whose landing text is kept beside the typed value so the suite can tell a missing
# value from an invalid one.
_TEXT_KINDS = ("ts", "date", "decimal", "int", "double", "bool")
# New files are validated and written in batches of about this many records: GX's cost is
# mostly per validation, DuckDB's per transaction, and a batch bounds the pandas frame.
BATCH_ROWS = 1_000_000
# Besides every row the SQL pre-filter flags, GX also sees one in this many of the others,
# to prove the pre-filter and the suite agree (see BatchValidator.prefilter).
CHECK_SAMPLE = 200
MEMORY_LIMIT = "1536MB"


def ensure_ops_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure_raw_tables(con)
    con.execute(OPS_DDL)


@dataclass
class FileOutcome:
    file: LandingFile
    tag: str = ""
    status: str = "loaded"
    error: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_warned: int = 0
    warnings: dict[str, int] = field(default_factory=dict)


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def typed_select(source: str, records: str) -> str:
    """SQL typing the ``doc`` of every well-formed record of ``records`` (one JSON parse)."""
    fields = FIELDS[source]
    paths = ", ".join(_lit(f'$."{f.name}"') for f in fields)
    known = ", ".join(_lit(f.name) for f in fields)
    from segmint.ingest.contract import cast_sql

    cols = []
    for i, f in enumerate(fields, start=1):
        cols.append(f"{cast_sql(f.kind, f'v[{i}]')} as {f.name}")
        if f.kind in _TEXT_KINDS:
            cols.append(f"nullif(trim(v[{i}]), '') as {f.name}_text")
    if source == "events":
        cols.append(
            "coalesce(" + cast_sql("id", "v[4]") + ", " + cast_sql("id", "v[5]") + ") as identity"
        )
    select_list = ",\n            ".join(cols)
    return f"""
        select
            _line,
            {select_list},
            case when len(extra_keys) > 0 then to_json(map_from_entries(list_transform(
                extra_keys,
                lambda k: {{'k': k, 'v': json_extract(doc, '$."' || replace(k, '"', '\\"') || '"')}}
            ))) end as _extra,
        from (
            select
                _line,
                doc,
                json_extract_string(doc, [{paths}]) as v,
                list_filter(
                    json_keys(doc),
                    lambda k: not list_contains([{known}], k)
                        and json_extract_string(doc, '$."' || replace(k, '"', '\\"') || '"')
                            is not null
                ) as extra_keys,
            from {records}
            where _error is null
        )
    """


class Ingest:
    """One ingest run over the landing zone for ``as_of``."""

    def __init__(self, settings: Settings, as_of: date) -> None:
        self.settings = settings
        self.as_of = as_of
        self.now = datetime.now(UTC).replace(tzinfo=None)
        self._validator = None
        self.replacing = False

    @property
    def validator(self):
        if self._validator is None:
            from segmint.validation import BatchValidator

            docs = self.settings.run_output_dir(self.as_of) / "data_docs"
            docs.mkdir(parents=True, exist_ok=True)
            self._validator = BatchValidator(self.settings.ingest, docs_dir=docs)
        return self._validator

    # --- planning ---------------------------------------------------------------------

    def plan(
        self, con: duckdb.DuckDBPyConnection, files: list[LandingFile]
    ) -> tuple[list[list[LandingFile]], int]:
        """Units of work (files loaded in one transaction each) and the count left as is."""
        manifest = {
            path: (sha, status)
            for path, sha, status in con.execute(
                "select path, sha256, status from ops.load_manifest"
            ).fetchall()
        }
        by_path = {f.path: f for f in files}
        due = [f for f in files if f.partition_date <= self.as_of]
        new, changed = [], []
        for f in due:
            known = manifest.get(f.path)
            if known is None or known[1] == "failed":
                new.append(f)
            elif known[0] != f.sha256:
                changed.append(f)
        skipped = len(due) - len(new) - len(changed)
        units = [[f] for f in new]
        if changed:
            # Files holding a duplicate of a record of a changed file are reloaded with it.
            group = {f.path: f for f in changed}
            for f in changed:
                for (path,) in self._dependents(con, f).fetchall():
                    if (
                        path in by_path
                        and path not in group
                        and manifest.get(path, ("", ""))[1] == "loaded"
                    ):
                        group[path] = by_path[path]
            units.insert(0, sorted(group.values(), key=lambda x: x.order_key))
            self.replacing = True
        return units, skipped

    def _dependents(self, con: duckdb.DuckDBPyConnection, f: LandingFile):
        keys = self._key_sql(f.source)
        return con.execute(
            f"""
            select distinct d.source_file
            from ops.duplicates d
            where d.source = ? and d.source_file <> ? and d.record_key in (
                select {keys} from {RAW_TABLE[f.source]} where _source_file = ?
            )
            order by 1
            """,
            [f.source, f.path, f.path],
        )

    @staticmethod
    def _key_sql(source: str, alias: str = "") -> str:
        """SQL for a row's deduplication key: the event id, or the CRM record's content hash."""
        p = f"{alias}." if alias else ""
        if source == "events":
            return f"{p}event_id"
        cols = ", ".join(f"{_lit(f.name)}: {p}{f.name}" for f in FIELDS["crm"])
        return f"md5(to_json({{{cols}}}))"

    # --- one file: read, type, validate (outside any transaction) ----------------------

    def read(self, con: duckdb.DuckDBPyConnection, f: LandingFile, tag: str) -> FileOutcome:
        """Read and type one file into temp tables ``_rec_<tag>`` and ``_typed_<tag>``."""
        out = FileOutcome(file=f, tag=tag)
        records = f"_rec_{tag}"
        try:
            read_records(con, f, records)
        except UnreadableFile as exc:
            out.status, out.error = "failed", str(exc)
            return out
        con.execute(
            f"create or replace temp table _typed_{tag} as {typed_select(f.source, records)}"
        )
        out.rows_read = con.execute(f"select count(*) from {records}").fetchall()[0][0]
        return out

    def validate(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        """One GX validation per source over the typed rows of all ``outs`` (row-level results).

        GX's cost is mostly a fixed overhead per validation, so the loader validates many
        files at once; ``_file`` (position in ``outs``) and ``_line`` route each failing row.
        """
        validator = self.validator
        for source in sorted({o.file.source for o in outs if o.status == "loaded"}):
            batch = [
                (i, o)
                for i, o in enumerate(outs)
                if o.status == "loaded" and o.file.source == source
            ]
            available = [r[0] for r in con.execute(f"describe _typed_{batch[0][1].tag}").fetchall()]
            limit_col = validator.ts_limit_column(source)
            cols = [c for c in validator.columns(source, [*available, "_file", limit_col])]
            select = ", ".join(
                f"{c}::DOUBLE as {c}" if c in ("revenue", "price") else c
                for c in cols
                if c not in ("_file", limit_col)
            )
            tolerance = self.settings.ingest.future_tolerance_hours
            union = " union all ".join(
                f"select {i}::INTEGER as _file, {select}, "
                f"(DATE '{o.file.partition_date + timedelta(days=1)}'::TIMESTAMP "
                f"+ to_microseconds({int(tolerance * 3600 * 1e6)})) as {limit_col} "
                f"from _typed_{o.tag}"
                for i, o in batch
            )
            checks = validator.prefilter(source)
            suspect = " or ".join(f"coalesce({bad}, false)" for _, _, bad in checks)
            con.execute(
                f"create or replace temp table _batch as select *, {suspect} as _suspect "
                f"from ({union})"
            )
            counts = ", ".join(
                f'count(*) filter (where coalesce({dom}, false)) as "{rule}"'
                for rule, dom, _ in checks
            )
            domain = (
                con.execute(f"select _file, {counts} from _batch group by _file")
                .df()
                .set_index("_file")
            )
            frame = con.execute(
                f"""
                select * from _batch
                where _suspect or hash(_file, _line) % {CHECK_SAMPLE} = 0
                order by _file, _line
                """
            ).df()
            con.execute("drop table _batch")
            first, last = batch[0][1].file.path, batch[-1][1].file.path
            name = f"{first}..{last}" if len(batch) > 1 else first
            results = validator.validate(source, frame, run_name=name.replace("/", "__"))
            clean = frame.loc[~frame["_suspect"], ["_file", "_line"]]
            for r in results:
                if r.failing is not None and len(r.failing) and len(clean):
                    hit = r.failing.merge(clean, on=["_file", "_line"])
                    if len(hit):
                        raise RuntimeError(
                            f"GX rule {r.rule} failed rows the SQL pre-filter passed "
                            f"(e.g. line {hit['_line'].iloc[0]}); the pre-filter of "
                            "segmint.validation.unexpected_sql is out of step with the suite"
                        )
            self._route(con, frame, results, [o for _, o in batch], [i for i, _ in batch], domain)
            del frame

    def _route(self, con, frame, results, outs: list[FileOutcome], ids: list[int], domain) -> None:
        """Split the batch's results by file: validation rows, failing rows, nulled fields."""
        import pandas as pd

        for r in results:
            if r.text_column and r.failing is not None and len(r.failing):
                text = frame.set_index(["_file", "_line"])[r.text_column]
                keys = pd.MultiIndex.from_frame(r.failing[["_file", "_line"]])
                r.failing["value"] = text.reindex(keys).astype("string").to_numpy()
        for out, fid in zip(outs, ids, strict=True):
            per_file = []
            for r in results:
                failing = None
                if r.failing is not None and len(r.failing):
                    failing = r.failing[r.failing["_file"] == fid]
                elements = int(domain.at[fid, r.rule]) if fid in domain.index else 0
                unexpected = 0 if failing is None else len(failing)
                share = unexpected / elements if elements else 0.0
                per_file.append(
                    dataclasses.replace(
                        r,
                        failing=failing,
                        element_count=elements,
                        unexpected_count=unexpected,
                        unexpected_percent=100.0 * share,
                        success=share <= 1.0 - r.mostly + 1e-12,
                    )
                )
            self._store_results(con, out.file, out.tag, per_file)

    def _store_results(self, con, f: LandingFile, tag: str, results) -> None:
        import pandas as pd

        parse_errors = con.execute(
            f"select count(*) from _rec_{tag} where _error is not null"
        ).fetchall()[0][0]
        total = con.execute(f"select count(*) from _rec_{tag}").fetchall()[0][0]
        rows = [
            {
                "rule": "well_formed",
                "expectation_type": "segmint_record_parser",
                "column_name": None,
                "level": "record",
                "description": "the record is well-formed "
                + ("JSON" if f.fmt == "jsonl" else f.fmt.upper()),
                "success": parse_errors == 0,
                "element_count": total,
                "unexpected_count": parse_errors,
                "unexpected_percent": 100.0 * parse_errors / total if total else 0.0,
                "observed_value": None,
                "kwargs": "{}",
            }
        ]
        failing = []
        for r in results:
            rows.append(
                {
                    "rule": r.rule,
                    "expectation_type": r.expectation_type,
                    "column_name": r.column,
                    "level": r.level,
                    "description": r.description,
                    "success": r.success,
                    "element_count": r.element_count,
                    "unexpected_count": r.unexpected_count,
                    "unexpected_percent": r.unexpected_percent,
                    "observed_value": r.observed_value,
                    "kwargs": r.kwargs,
                }
            )
            if r.failing is not None and len(r.failing) and r.level in ("record", "warning"):
                part = r.failing.copy()
                part["rule_order"] = r.order
                part["level"] = r.level
                part["field"] = r.field
                detail = (" (got " + part["value"].str.replace("\n", " ") + ")").fillna("")
                part["reason"] = r.description + detail
                part["description"] = r.description
                failing.append(
                    part[["_line", "rule_order", "level", "field", "reason", "description"]]
                )
        runs = pd.DataFrame(rows)
        con.register("_runs_df", runs)
        con.execute(f"create or replace temp table _runs_{tag} as select * from _runs_df")
        con.unregister("_runs_df")
        fails = (
            pd.concat(failing, ignore_index=True)
            if failing
            else pd.DataFrame(
                {
                    "_line": pd.Series([], dtype="int64"),
                    "rule_order": pd.Series([], dtype="int64"),
                    "level": pd.Series([], dtype="string"),
                    "field": pd.Series([], dtype="string"),
                    "reason": pd.Series([], dtype="string"),
                    "description": pd.Series([], dtype="string"),
                }
            )
        )
        fails["field"] = fails["field"].astype("string")
        con.register("_fails_df", fails)
        con.execute(
            f"create or replace temp table _fails_{tag} as "
            "select _line::BIGINT as _line, rule_order::BIGINT as rule_order,"
            " level::VARCHAR as level,"
            " field::VARCHAR as field, reason::VARCHAR as reason,"
            " description::VARCHAR as description from _fails_df"
        )
        con.unregister("_fails_df")
        # Warnings: null the offending optional field, keep the record.
        for (fld,) in con.execute(
            f"select distinct field from _fails_{tag} where level = 'warning' order by 1"
        ).fetchall():
            con.execute(
                f"update _typed_{tag} set {fld} = null where _line in "
                f"(select _line from _fails_{tag} where level = 'warning' and field = ?)",
                [fld],
            )

    # --- one file: write (inside the unit's transaction) --------------------------------

    def delete_file(self, con: duckdb.DuckDBPyConnection, f: LandingFile) -> None:
        con.execute(f"delete from {RAW_TABLE[f.source]} where _source_file = ?", [f.path])
        for table, col in (
            ("ops.quarantine", "source_file"),
            ("ops.duplicates", "source_file"),
            ("ops.validation_runs", "source_file"),
        ):
            con.execute(f"delete from {table} where {col} = ?", [f.path])

    def write(self, con: duckdb.DuckDBPyConnection, out: FileOutcome, tag: str) -> None:
        f = out.file
        known = con.execute(
            "select first_loaded_at, status from ops.load_manifest where path = ?", [f.path]
        ).fetchall()
        first_loaded = known[0] if known else None
        con.execute("delete from ops.load_manifest where path = ?", [f.path])
        if known and known[0][1] == "loaded":
            # Only a file loaded before has rows to replace (scanning raw.* costs).
            self.delete_file(con, f)
        if out.status == "loaded":
            self._write_rows(con, out, tag)
        con.execute(
            """
            insert into ops.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                f.path,
                f.size_bytes,
                f.sha256,
                f.source,
                f.partition_date,
                out.rows_read,
                out.rows_loaded,
                out.rows_quarantined,
                out.rows_duplicate,
                out.rows_warned,
                out.status,
                out.error,
                (first_loaded[0] if first_loaded and first_loaded[0] else None)
                if out.status == "failed"
                else (first_loaded[0] if first_loaded and first_loaded[0] else self.now),
                self.now,
            ],
        )

    def _write_rows(self, con: duckdb.DuckDBPyConnection, out: FileOutcome, tag: str) -> None:
        f = out.file
        params = [f.path, f.source, f.partition_date, self.now]
        con.execute(
            f"""
            insert into ops.validation_runs
            select ?, ?, ?, ?, ?, rule, expectation_type, column_name, level, description,
                success, element_count, unexpected_count, unexpected_percent, observed_value,
                kwargs::JSON, ?
            from _runs_{tag}
            """,
            [
                f.path,
                f.source,
                f.partition_date,
                f.sha256,
                self.validator.suite_name(f.source),
                self.now,
            ],
        )
        # Quarantine: unparseable records and records failing a record-level expectation.
        con.execute(
            f"""
            create or replace temp table _bad_{tag} as
            select _line, list(reason order by rule_order, reason) as reasons
            from _fails_{tag}
            where level = 'record'
            group by _line
            union all
            select _line, [_error] from _rec_{tag} where _error is not null
            """
        )
        con.execute(
            f"""
            insert into ops.quarantine
            select ?, b._line, ?, ?, r.raw, b.reasons, ?
            from _bad_{tag} b join _rec_{tag} r using (_line)
            """,
            params,
        )
        out.rows_quarantined = con.execute(f"select count(*) from _bad_{tag}").fetchall()[0][0]
        # Candidates: good records, first copy within the file.
        key = self._key_sql(f.source)
        con.execute(
            f"""
            create or replace temp table _good_{tag} as
            select t.*, {key} as _key
            from _typed_{tag} t
            where _line not in (select _line from _bad_{tag})
            """
        )
        con.execute(
            f"""
            create or replace temp table _cand_{tag} as
            select * from _good_{tag}
            qualify row_number() over (partition by _key order by _line) = 1
            """
        )
        table = RAW_TABLE[f.source]
        existing_key = self._key_sql(f.source, "e")
        join_col = "event_id" if f.source == "events" else "customer_id"
        # Copies already loaded from other files with the same key; does the new copy win?
        con.execute(
            f"""
            create or replace temp table _clash_{tag} as
            select
                c._key,
                e._source_file as old_file,
                e._source_line as old_line,
                e._partition_date as old_partition,
                (
                    $pd < e._partition_date
                    or ($pd = e._partition_date and $path < e._source_file)
                ) as new_wins,
            from _cand_{tag} c
            join {table} e on e.{join_col} = c.{join_col} and {existing_key} = c._key
            """,
            {"pd": f.partition_date, "path": f.path},
        )
        displaced = con.execute(
            f"select old_file, count(*) from _clash_{tag} where new_wins group by 1 order by 1"
        ).fetchall()
        if displaced:
            con.execute(
                f"""
                insert into ops.duplicates
                select ?, old_file, old_line, old_partition, _key from _clash_{tag} where new_wins
                """,
                [f.source],
            )
            con.execute(
                f"""
                delete from {table} e using _clash_{tag} c
                where c.new_wins and e._source_file = c.old_file and e._source_line = c.old_line
                """
            )
            for old_file, n in displaced:
                con.execute(
                    "update ops.load_manifest set rows_loaded = rows_loaded - ?, "
                    "rows_duplicate = rows_duplicate + ?, updated_at = ? where path = ?",
                    [n, n, self.now, old_file],
                )
        # Duplicates of this file: later copies within it, and copies that lose to a loaded one.
        con.execute(
            f"""
            insert into ops.duplicates
            select ?, ?, _line, ?, _key
            from _good_{tag}
            where _line not in (select _line from _cand_{tag})
                or _key in (select _key from _clash_{tag} where not new_wins)
            """,
            [f.source, f.path, f.partition_date],
        )
        out.rows_duplicate = con.execute(
            "select count(*) from ops.duplicates where source_file = ?", [f.path]
        ).fetchall()[0][0]
        contract = [fl.name for fl in FIELDS[f.source]]
        select = ", ".join(
            f"coalesce({c}, false)" if c in ("email_opt_in", "ads_opt_in") else c for c in contract
        )
        inserted = con.execute(
            f"""
            insert into {table} ({", ".join(contract)},
                _source_file, _source_line, _partition_date, _extra, _loaded_at)
            select {select}, ?, _line, ?, _extra::JSON, ?
            from _cand_{tag}
            where _key not in (select _key from _clash_{tag} where not new_wins)
            order by _line
            """,
            [f.path, f.partition_date, self.now],
        )
        out.rows_loaded = inserted.fetchall()[0][0]
        out.rows_warned = con.execute(
            f"""
            select count(distinct _line) from _fails_{tag}
            where level = 'warning' and _line in (
                select _line from _cand_{tag}
                where _key not in (select _key from _clash_{tag} where not new_wins)
            )
            """
        ).fetchall()[0][0]
        warned = con.execute(
            f"select description, count(*) from _fails_{tag} where level = 'warning' group by 1"
        ).fetchall()
        out.warnings = dict(warned)

    def drop_temp(self, con: duckdb.DuckDBPyConnection, tag: str) -> None:
        for name in ("rec", "typed", "runs", "fails", "bad", "good", "cand", "clash"):
            con.execute(f"drop table if exists _{name}_{tag}")


def run_ingest(settings: Settings, as_of: date) -> StageResult:
    """Load every landing file with partition date <= ``as_of`` not loaded yet (or changed)."""
    ingest = Ingest(settings, as_of)
    files, ignored = discover(settings.landing)
    outcomes: list[FileOutcome] = []
    con = connect(settings.warehouse)
    tags = iter(range(1 << 62))

    def flush(batch: list[FileOutcome]) -> None:
        ingest.validate(con, batch)
        with transaction(con):
            for out in batch:
                ingest.write(con, out, out.tag)
        for out in batch:
            ingest.drop_temp(con, out.tag)
        outcomes.extend(batch)

    try:
        # Bounded memory: DuckDB spills the batch's temp tables to disk beyond this.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        ensure_ops_tables(con)
        units, skipped = ingest.plan(con, files)
        pending: list[FileOutcome] = []
        rows = 0
        for unit in units:
            if len(unit) > 1 or (unit is units[0] and ingest.replacing):
                # A changed file and the files that depend on it: one transaction.
                flush([ingest.read(con, f, str(next(tags))) for f in unit])
                continue
            log.info("ingest: reading %s", unit[0].path)
            out = ingest.read(con, unit[0], str(next(tags)))
            pending.append(out)
            rows += out.rows_read
            if rows >= BATCH_ROWS:
                flush(pending)
                pending, rows = [], 0
        if pending:
            flush(pending)
        if outcomes and ingest._validator is not None:
            ingest.validator.build_docs()
    finally:
        con.close()
    return _result(outcomes, skipped, ignored, settings, as_of)


def _result(
    outcomes: list[FileOutcome], skipped: int, ignored: list[str], settings: Settings, as_of: date
) -> StageResult:
    per_source: dict[str, dict[str, int]] = {}
    for o in outcomes:
        s = per_source.setdefault(
            o.file.source,
            {
                "files": 0,
                "failed": 0,
                "read": 0,
                "loaded": 0,
                "quarantined": 0,
                "duplicates": 0,
                "warned": 0,
            },
        )
        s["files"] += 1
        s["failed"] += o.status == "failed"
        s["read"] += o.rows_read
        s["loaded"] += o.rows_loaded
        s["quarantined"] += o.rows_quarantined
        s["duplicates"] += o.rows_duplicate
        s["warned"] += o.rows_warned
    total = {
        k: sum(s[k] for s in per_source.values())
        for k in ("files", "failed", "read", "loaded", "quarantined", "duplicates", "warned")
    }
    failed = [o for o in outcomes if o.status == "failed"]
    warnings = [f"ignored {p}: not a supported landing file or partition" for p in ignored]
    counts: dict[str, int] = {}
    for o in outcomes:
        for reason, n in o.warnings.items():
            counts[reason] = counts.get(reason, 0) + n
    warnings += [f"field nulled on {n} row(s): {r}" for r, n in sorted(counts.items())]
    summary = (
        f"loaded {total['loaded']} rows, quarantined {total['quarantined']}, "
        f"duplicates {total['duplicates']} from {total['files'] - total['failed']} file(s)"
        f" ({skipped} already loaded)" + (f"; {total['failed']} file(s) failed" if failed else "")
    )
    result = StageResult(
        stage="ingest",
        rows_in=total["read"],
        rows_out=total["loaded"],
        summary=summary,
        details={
            "sources": per_source,
            "skipped_files": skipped,
            "data_docs": str(settings.run_output_dir(as_of) / "data_docs"),
        },
        warnings=warnings,
    )
    if failed:
        names = "; ".join(f"{o.file.path}: {o.error}" for o in failed)
        raise InputError(
            f"could not read {len(failed)} landing file(s): {names}. They are marked 'failed' "
            "in ops.load_manifest and retried on the next run; every other file was loaded "
            f"({summary})."
        )
    return result
