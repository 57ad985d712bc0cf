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

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from segmint.config import Settings
from segmint.ingest.contract import FIELDS, OPS_DDL, RAW_TABLE
from segmint.ingest.files import LandingFile, discover, read_batch
from segmint.stages import InputError, StageResult
from segmint.warehouse import connect, ensure_raw_tables, transaction

log = logging.getLogger(__name__)

# Kinds whose landing text is kept beside the typed value so the suite can tell a missing
# value from an invalid one.
_TEXT_KINDS = ("ts", "date", "decimal", "int", "double", "bool")
# New files are read, validated and written in batches of about this many bytes of text
# (a few million records): GX's cost is mostly per validation, DuckDB's per statement, and a
# batch bounds the temp tables and the pandas frame.
BATCH_BYTES = 1 << 30
# Besides every row the SQL pre-filter flags, GX also sees one in this many of the others,
# to prove the pre-filter and the suite agree (see BatchValidator.prefilter).
CHECK_SAMPLE = 200
MEMORY_LIMIT = "1536MB"
THREADS = 2


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
            _file,
            _line,
            {select_list},
            case when len(extra_keys) > 0 then to_json(map_from_entries(list_transform(
                extra_keys,
                lambda k: {{'k': k, 'v': json_extract(doc, '$."' || replace(k, '"', '\\"') || '"')}}
            ))) end as _extra,
        from (
            select
                _file,
                _line,
                doc,
                json_extract_string(doc, [{paths}]) as v,
                -- Keys outside the contract whose value is not JSON null. Most records have
                -- none: the per-key extraction runs only for the few that do.
                case
                    when len(unknown) > 0 then list_filter(
                        unknown,
                        lambda k: json_extract_string(
                            doc, '$."' || replace(k, '"', '\\"') || '"'
                        ) is not null
                    )
                    else []
                end as extra_keys,
            from (
                select
                    _file,
                    _line,
                    doc,
                    list_filter(json_keys(doc), lambda k: not list_contains([{known}], k))
                        as unknown,
                from (
                    select _file, _line, coalesce(doc, raw) as doc
                    from {records}
                    where _error is null
                )
            )
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

    # --- one batch of one source: read, type, validate (outside any transaction) --------

    def read(self, con: duckdb.DuckDBPyConnection, files: list[LandingFile]) -> list[FileOutcome]:
        """Read and type the files of one source into ``_rec_<source>``/``_typed_<source>``.

        ``files`` are in load order; a row's ``_file`` is its file's position in the list,
        so ordering by ``(_file, _line)`` is ordering by ``(partition date, path, line)``.
        """
        source = files[0].source
        tag = source
        outs = [FileOutcome(file=f, tag=tag) for f in files]
        failed = read_batch(con, files, f"_rec_{tag}")
        for i, error in failed.items():
            outs[i].status, outs[i].error = "failed", error
        values = ", ".join(
            f"({i}, {_lit(f.path)}, DATE '{f.partition_date}')" for i, f in enumerate(files)
        )
        con.execute(
            f"create or replace temp table _files_{tag} as select * from (values {values}) "
            "t(_file, _f_path, _f_date)"
        )
        con.execute(
            f"create or replace temp table _typed_{tag} as {typed_select(source, f'_rec_{tag}')}"
        )
        for i, n in con.execute(f"select _file, count(*) from _rec_{tag} group by 1").fetchall():
            outs[i].rows_read = n
        return outs

    def validate(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        """One GX validation over the typed rows of every file of ``outs`` (one source).

        GX's cost is mostly a fixed overhead per validation, so the loader validates many
        files at once; ``_file`` (position in ``outs``) and ``_line`` route each failing row.
        """
        if not any(o.status == "loaded" for o in outs):
            self._store_results(con, outs, [], None)
            return
        validator = self.validator
        source, tag = outs[0].file.source, outs[0].tag
        available = [r[0] for r in con.execute(f"describe _typed_{tag}").fetchall()]
        limit_col = validator.ts_limit_column(source)
        cols = [c for c in validator.columns(source, [*available, limit_col])]
        select = ", ".join(
            f"t.{c}::DOUBLE as {c}" if c in ("revenue", "price") else f"t.{c}"
            for c in cols
            if c not in ("_file", limit_col)
        )
        tolerance = self.settings.ingest.future_tolerance_hours
        checks = validator.prefilter(source)
        suspect = " or ".join(f"coalesce({bad}, false)" for _, _, bad in checks)
        con.execute(
            f"""
            create or replace temp table _batch as
            select *, {suspect} as _suspect
            from (
                select
                    t._file::INTEGER as _file,
                    {select},
                    (f._f_date + 1)::TIMESTAMP + to_microseconds({int(tolerance * 3600 * 1e6)})
                        as {limit_col},
                from _typed_{tag} t
                join _files_{tag} f using (_file)
            )
            """
        )
        counts = ", ".join(
            f'count(*) filter (where coalesce({dom}, false)) as "{rule}"' for rule, dom, _ in checks
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
        loaded = [o for o in outs if o.status == "loaded"]
        first, last = loaded[0].file.path, loaded[-1].file.path
        name = f"{first}..{last}" if len(loaded) > 1 else first
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
        for r in results:
            if r.text_column and r.failing is not None and len(r.failing):
                import pandas as pd

                text = frame.set_index(["_file", "_line"])[r.text_column]
                keys = pd.MultiIndex.from_frame(r.failing[["_file", "_line"]])
                r.failing["value"] = text.reindex(keys).astype("string").to_numpy()
        del frame
        self._store_results(con, outs, results, domain)

    def _store_results(self, con, outs: list[FileOutcome], results, domain) -> None:
        """Temp tables ``_runs_<tag>`` (validation rows per file) and ``_fails_<tag>``."""
        import pandas as pd

        tag = outs[0].tag
        parsed = {
            i: (total, errors)
            for i, total, errors in con.execute(
                f"select _file, count(*), count(*) filter (where _error is not null) "
                f"from _rec_{tag} group by 1"
            ).fetchall()
        }
        per_rule = {}
        for r in results:
            if r.failing is not None and len(r.failing):
                per_rule[r.rule] = r.failing["_file"].value_counts().to_dict()
            else:
                per_rule[r.rule] = {}
        rows = []
        for i, out in enumerate(outs):
            if out.status != "loaded":
                continue
            f = out.file
            total, parse_errors = parsed.get(i, (0, 0))
            rows.append(
                {
                    "_file": i,
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
            )
            for r in results:
                elements = int(domain.at[i, r.rule]) if i in domain.index else 0
                unexpected = int(per_rule[r.rule].get(i, 0))
                share = unexpected / elements if elements else 0.0
                rows.append(
                    {
                        "_file": i,
                        "rule": r.rule,
                        "expectation_type": r.expectation_type,
                        "column_name": r.column,
                        "level": r.level,
                        "description": r.description,
                        "success": share <= 1.0 - r.mostly + 1e-12,
                        "element_count": elements,
                        "unexpected_count": unexpected,
                        "unexpected_percent": 100.0 * share,
                        "observed_value": r.observed_value,
                        "kwargs": r.kwargs,
                    }
                )
        failing = []
        for r in results:
            if r.failing is not None and len(r.failing) and r.level in ("record", "warning"):
                part = r.failing.copy()
                part["rule_order"] = r.order
                part["level"] = r.level
                part["field"] = r.field
                detail = (" (got " + part["value"].str.replace("\n", " ") + ")").fillna("")
                part["reason"] = r.description + detail
                part["description"] = r.description
                failing.append(
                    part[
                        ["_file", "_line", "rule_order", "level", "field", "reason", "description"]
                    ]
                )
        runs = pd.DataFrame(
            rows,
            columns=[
                "_file",
                "rule",
                "expectation_type",
                "column_name",
                "level",
                "description",
                "success",
                "element_count",
                "unexpected_count",
                "unexpected_percent",
                "observed_value",
                "kwargs",
            ],
        )
        con.register("_runs_df", runs)
        con.execute(
            f"create or replace temp table _runs_{tag} as select _file::INTEGER as _file, "
            "rule::VARCHAR as rule, expectation_type::VARCHAR as expectation_type, "
            "column_name::VARCHAR as column_name, level::VARCHAR as level, "
            "description::VARCHAR as description, success::BOOLEAN as success, "
            "element_count::BIGINT as element_count, unexpected_count::BIGINT as "
            "unexpected_count, unexpected_percent::DOUBLE as unexpected_percent, "
            "observed_value::VARCHAR as observed_value, kwargs::VARCHAR as kwargs from _runs_df"
        )
        con.unregister("_runs_df")
        fails = (
            pd.concat(failing, ignore_index=True)
            if failing
            else pd.DataFrame(
                {
                    "_file": pd.Series([], dtype="int64"),
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
            "select _file::INTEGER as _file, _line::BIGINT as _line,"
            " rule_order::BIGINT as rule_order, level::VARCHAR as level,"
            " field::VARCHAR as field, reason::VARCHAR as reason,"
            " description::VARCHAR as description from _fails_df"
        )
        con.unregister("_fails_df")
        # Warnings: null the offending optional field, keep the record.
        for (fld,) in con.execute(
            f"select distinct field from _fails_{tag} where level = 'warning' order by 1"
        ).fetchall():
            con.execute(
                f"update _typed_{tag} t set {fld} = null from (select distinct _file, _line "
                f"from _fails_{tag} where level = 'warning' and field = ?) w "
                "where t._file = w._file and t._line = w._line",
                [fld],
            )

    # --- one batch of one source: write (inside the unit's transaction) -----------------

    def delete_files(self, con: duckdb.DuckDBPyConnection, source: str, paths: list[str]) -> None:
        con.execute(
            f"delete from {RAW_TABLE[source]} where list_contains(?, _source_file)", [paths]
        )
        for table in ("ops.quarantine", "ops.duplicates", "ops.validation_runs"):
            con.execute(f"delete from {table} where list_contains(?, source_file)", [paths])

    def write(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        paths = [o.file.path for o in outs]
        source = outs[0].file.source
        known = {
            path: (first, status)
            for path, first, status in con.execute(
                "select path, first_loaded_at, status from ops.load_manifest "
                "where list_contains(?, path)",
                [paths],
            ).fetchall()
        }
        con.execute("delete from ops.load_manifest where list_contains(?, path)", [paths])
        replaced = [p for p in paths if known.get(p, (None, None))[1] == "loaded"]
        if replaced:
            # Only a file loaded before has rows to replace (scanning raw.* costs).
            self.delete_files(con, source, replaced)
        if any(o.status == "loaded" for o in outs):
            self._write_rows(con, outs)
        rows = []
        for o in outs:
            f = o.file
            first = known.get(f.path, (None, None))[0]
            rows.append(
                [
                    f.path,
                    f.size_bytes,
                    f.sha256,
                    f.source,
                    f.partition_date,
                    o.rows_read,
                    o.rows_loaded,
                    o.rows_quarantined,
                    o.rows_duplicate,
                    o.rows_warned,
                    o.status,
                    o.error,
                    first if o.status == "failed" else (first or self.now),
                    self.now,
                ]
            )
        con.executemany(
            "insert into ops.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _write_rows(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        source, tag = outs[0].file.source, outs[0].tag
        files = f"_files_{tag}"
        con.execute(
            f"""
            insert into ops.validation_runs
            select f._f_path, ?, f._f_date, s.sha256, ?, rule, expectation_type, column_name,
                level, description, success, element_count, unexpected_count,
                unexpected_percent, observed_value, kwargs::JSON, ?
            from _runs_{tag} r
            join {files} f using (_file)
            join (select unnest(?) as _file, unnest(?) as sha256) s using (_file)
            """,
            [
                source,
                self.validator.suite_name(source),
                self.now,
                list(range(len(outs))),
                [o.file.sha256 for o in outs],
            ],
        )
        # Quarantine: unparseable records and records failing a record-level expectation.
        con.execute(
            f"""
            create or replace temp table _bad_{tag} as
            select _file, _line, list(reason order by rule_order, reason) as reasons
            from _fails_{tag}
            where level = 'record'
            group by _file, _line
            union all
            select _file, _line, [_error] from _rec_{tag} where _error is not null
            """
        )
        con.execute(
            f"""
            insert into ops.quarantine
            select f._f_path, b._line, ?, f._f_date, r.raw, b.reasons, ?
            from _bad_{tag} b
            join _rec_{tag} r using (_file, _line)
            join {files} f using (_file)
            """,
            [source, self.now],
        )
        # Candidates: good records, the first copy (smallest file, line) within the batch.
        # Deduplication works on narrow (file, line, key) tables; the wide typed rows are
        # read once, by the insert.
        key = self._key_sql(source)
        con.execute(
            f"""
            create or replace temp table _good_{tag} as
            select _file, _line, {key} as _key
            from _typed_{tag} t
            anti join _bad_{tag} b using (_file, _line)
            """
        )
        con.execute(
            f"""
            create or replace temp table _cand_{tag} as
            select * from _good_{tag}
            qualify row_number() over (partition by _key order by _file, _line) = 1
            """
        )
        table = RAW_TABLE[source]
        existing_key = self._key_sql(source, "e")
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
                    f._f_date < e._partition_date
                    or (f._f_date = e._partition_date and f._f_path < e._source_file)
                ) as new_wins,
            from _cand_{tag} c
            join {files} f using (_file)
            join {table} e on {existing_key} = c._key
            """
        )
        displaced = con.execute(f"select count(*) from _clash_{tag} where new_wins").fetchall()[0][
            0
        ]
        if displaced:
            con.execute(
                f"""
                insert into ops.duplicates
                select ?, old_file, old_line, old_partition, _key from _clash_{tag} where new_wins
                """,
                [source],
            )
            con.execute(
                f"""
                delete from {table} e using _clash_{tag} c
                where c.new_wins and e._source_file = c.old_file and e._source_line = c.old_line
                """
            )
            con.execute(
                f"""
                update ops.load_manifest m
                set rows_loaded = rows_loaded - d.n, rows_duplicate = rows_duplicate + d.n,
                    updated_at = ?
                from (
                    select old_file, count(*) as n from _clash_{tag} where new_wins group by 1
                ) d
                where m.path = d.old_file
                """,
                [self.now],
            )
        # The rows that go in: candidates that do not lose to a copy loaded before.
        con.execute(
            f"""
            create or replace temp table _win_{tag} as
            select _file, _line from _cand_{tag}
            anti join (select _key from _clash_{tag} where not new_wins) using (_key)
            """
        )
        # Duplicates of this batch: later copies within it, and copies that lose to a loaded one.
        con.execute(
            f"""
            insert into ops.duplicates
            select ?, f._f_path, g._line, f._f_date, g._key
            from (select _file, _line, _key from _good_{tag}
                anti join _win_{tag} w using (_file, _line)) g
            join {files} f using (_file)
            """,
            [source],
        )
        contract = [fl.name for fl in FIELDS[source]]
        select = ", ".join(
            f"coalesce({c}, false)" if c in ("email_opt_in", "ads_opt_in") else c for c in contract
        )
        con.execute(
            f"""
            insert into {table} ({", ".join(contract)},
                _source_file, _source_line, _partition_date, _extra, _loaded_at)
            select {select}, f._f_path, t._line, f._f_date, t._extra::JSON, ?
            from _typed_{tag} t
            semi join _win_{tag} using (_file, _line)
            join {files} f using (_file)
            """,
            [self.now],
        )
        counts = {
            i: (quarantined, duplicate, loaded, warned)
            for i, quarantined, duplicate, loaded, warned in con.execute(
                f"""
                with ids as (select _file from {files}),
                bad as (select _file, count(*) as n from _bad_{tag} group by 1),
                good as (select _file, count(*) as n from _good_{tag} group by 1),
                win as (select _file, count(*) as n from _win_{tag} group by 1),
                warned as (
                    select _file, count(distinct _line) as n
                    from _fails_{tag}
                    semi join _win_{tag} using (_file, _line)
                    where level = 'warning'
                    group by 1
                )
                select
                    ids._file,
                    coalesce(bad.n, 0),
                    coalesce(good.n, 0) - coalesce(win.n, 0),
                    coalesce(win.n, 0),
                    coalesce(warned.n, 0),
                from ids
                left join bad using (_file)
                left join good using (_file)
                left join win using (_file)
                left join warned using (_file)
                """
            ).fetchall()
        }
        warned = con.execute(
            f"select _file, description, count(*) from _fails_{tag} "
            "where level = 'warning' group by 1, 2"
        ).fetchall()
        for i, o in enumerate(outs):
            if o.status != "loaded":
                continue
            o.rows_quarantined, o.rows_duplicate, o.rows_loaded, o.rows_warned = counts[i]
        for i, description, n in warned:
            outs[i].warnings[description] = n

    def drop_temp(self, con: duckdb.DuckDBPyConnection, tag: str) -> None:
        for name in ("rec", "typed", "files", "runs", "fails", "bad", "good", "cand", "clash"):
            con.execute(f"drop table if exists _{name}_{tag}")
        con.execute(f"drop table if exists _win_{tag}")


def _batch_size(f: LandingFile) -> int:
    """About how many bytes of text ``f`` holds (compressed files count several times)."""
    return f.size_bytes * (6 if f.abspath.name.lower().endswith(".gz") else 1)


def run_ingest(settings: Settings, as_of: date) -> StageResult:
    """Load every landing file with partition date <= ``as_of`` not loaded yet (or changed)."""
    ingest = Ingest(settings, as_of)
    files, ignored = discover(settings.landing)
    outcomes: list[FileOutcome] = []
    con = connect(settings.warehouse)

    def flush(batch: list[LandingFile]) -> None:
        groups = []
        for source in sorted({f.source for f in batch}):
            part = sorted((f for f in batch if f.source == source), key=lambda x: x.order_key)
            log.info("ingest: reading %d %s file(s)", len(part), source)
            outs = ingest.read(con, part)
            ingest.validate(con, outs)
            groups.append(outs)
        with transaction(con):
            for outs in groups:
                ingest.write(con, outs)
        for outs in groups:
            ingest.drop_temp(con, outs[0].tag)
            outcomes.extend(outs)

    try:
        # Bounded memory: DuckDB spills the batch's temp tables to disk beyond this.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"SET threads = {THREADS}")
        con.execute("SET preserve_insertion_order = true")
        ensure_ops_tables(con)
        units, skipped = ingest.plan(con, files)
        pending: list[LandingFile] = []
        size = 0
        for unit in units:
            if len(unit) > 1 or (unit is units[0] and ingest.replacing):
                # A changed file and the files that depend on it: one transaction.
                flush(unit)
                continue
            pending.append(unit[0])
            size += _batch_size(unit[0])
            if size >= BATCH_BYTES:
                flush(pending)
                pending, size = [], 0
        if pending:
            flush(pending)
        if outcomes and ingest._validator is not None:
            ingest.validator.build_docs()
    finally:
        con.close()
    outcomes.sort(key=lambda o: o.file.order_key)
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
