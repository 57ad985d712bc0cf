"""Erasure on request: remove a customer everywhere and keep them from coming back.

:func:`erase_customers` deletes every row of the given customers from every base table
that has a ``customer_id`` column (raw, staging, intermediate, marts, ml, audiences; found
through ``information_schema``), every row keyed by one of their ``anonymous_id`` values
(events before login, sessions, the identity map), every row naming them in another id
column (the conflict tables' ``kept_customer_id``, ``candidate_customer_ids``, ...), and
quarantined records that mention them (an id of theirs, or an e-mail address or phone
number only their CRM rows hold), and their records ingest set aside as duplicates
(``ops.duplicates``). It records a tombstone per id:
``sha256('segmint-erasure:' || id)``, never the id, so a later load of an old landing
file or a backfill cannot bring them back:

* ingest excludes tombstoned rows on load with :func:`tombstone_filter_sql`;
* as a safety net, the audiences stage calls :func:`purge_tombstoned` before it builds,
  so rows that came back through any path are removed before anything is published.

Deleting rows does not remove their bytes: DuckDB only marks the blocks free, so the e-mail
and ids stay readable in the file, and in every byte copy of it such as the published copy.
After the deletes commit, the warehouse file is therefore rewritten without them
(:func:`segmint.warehouse.compact`, ~20 s per GB); the next publish copies the clean file.

Each erasure is logged in ``ops.erasures`` with counts, table names and the past export
files that contained the customers; the log holds no id, e-mail or other personal data.

An id with no row anywhere is still tombstoned (a request may arrive before the customer's
data does), but the result warns about it, naming stored ids that differ from it only in
case or surrounding spaces (``ErasureResult.warnings``): an id typed in the wrong case
erases nothing. Like a stage warning, it does not change the exit code.
"""

from __future__ import annotations

import csv
import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from segmint.audiences.tables import ensure_audience_tables
from segmint.config import Settings
from segmint.stages import SegmintError
from segmint.warehouse import compact, connect, exclusive, table_exists, transaction

TOMBSTONE_PREFIX = "segmint-erasure:"
TOMBSTONES = "ops.erasure_tombstones"
ID_COLUMNS = ("customer_id", "anonymous_id")


def id_hash_sql(column: str) -> str:
    """The SQL expression hashing an id column the way tombstones are stored."""
    return f"sha256('{TOMBSTONE_PREFIX}' || {column})"


def raw_tokens_sql(expr: str) -> str:
    """SQL: the words of a raw record's text (``expr``), as a list, to find ids in it.

    Two splits: at every character no usual id has (so ``C1`` is a word of
    ``{"customer_id":"C1"}`` and of ``C1;x``), and at white space, quotes, commas,
    semicolons and brackets only, which keeps whole the ids that hold ``:``, ``/`` or ``|``
    (``gid://shopify/Customer/7001``, Auth0's ``auth0|5f7c8e...``) that the first split cuts
    into pieces.
    """
    return (
        f"list_concat(regexp_split_to_array({expr}, '[^A-Za-z0-9_.@+-]+'), "
        f"""regexp_split_to_array({expr}, '[\\s"'',;{{}}\\[\\]]+'))"""
    )


def raw_id_tokens_sql(expr: str) -> str:
    """SQL: :func:`raw_tokens_sql` of ``expr``, and the words holding ``@`` lower-cased, as
    an erased customer's own e-mail addresses are tombstoned (an address is compared in any
    case, an id exactly)."""
    tokens = raw_tokens_sql(expr)
    return (
        f"list_concat({tokens}, "
        f"list_transform(list_filter({tokens}, lambda t: contains(t, '@')), lambda t: lower(t)))"
    )


def tombstoned_ids_sql(column: str = "customer_id") -> str:
    """A SQL predicate, true when ``column`` holds an erased id.

    Needs ``ops.erasure_tombstones`` to exist; :func:`tombstone_filter_sql` checks that.
    """
    return (
        f"({column} is not null and {id_hash_sql(column)} in (select id_sha256 from {TOMBSTONES}))"
    )


def erased_row_sql(
    columns: tuple[str, ...] = ID_COLUMNS, is_erased: Callable[[str], str] = tombstoned_ids_sql
) -> str:
    """A SQL predicate, true for a row of an erased customer, over the id ``columns`` a table
    has: its ``customer_id`` is erased, or it has no customer and its ``anonymous_id`` is.
    ``is_erased(column)``: the SQL telling an erased id (by default its tombstone; ingest
    passes a lookup of the ids it found tombstoned).

    A row of another customer is never theirs, whatever device it came from: an anonymous id
    seen with several customers (a shop's tablet, a family computer) is not tombstoned, and
    one that was (a device later sold) must not take its next owner's rows with it.
    """
    parts = [
        f"(customer_id is null and {is_erased(c)})"
        if c == "anonymous_id" and "customer_id" in columns
        else is_erased(c)
        for c in columns
    ]
    return "(" + " or ".join(parts) + ")"


def tombstone_filter_sql(
    con: duckdb.DuckDBPyConnection, columns: tuple[str, ...] = ID_COLUMNS
) -> str:
    """A SQL predicate keeping only rows that are not an erased customer's
    (:func:`erased_row_sql`).

    For ingest: ``insert into raw.events select ... from new_rows where <this>``. Returns
    ``true`` when nothing was ever erased, so it costs nothing on most warehouses.
    """
    if not table_exists(con, TOMBSTONES):
        return "true"
    if con.execute(f"select count(*) from {TOMBSTONES}").fetchone()[0] == 0:
        return "true"
    return f"not {erased_row_sql(columns)}"


def _id_tables(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    """Every base table with an id column, and which of ID_COLUMNS it has."""
    out: dict[str, tuple[str, ...]] = {}
    for column in ID_COLUMNS:
        for table in _tables_with(con, column):
            out[table] = (*out.get(table, ()), column)
    return out


def _tables_with(con: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    rows = con.execute(
        """
        select c.table_schema || '.' || c.table_name
        from information_schema.columns as c
        inner join information_schema.tables as t
            on t.table_schema = c.table_schema and t.table_name = c.table_name
        where c.column_name = ?
            and t.table_type = 'BASE TABLE'
            and t.table_catalog = current_database()
            and c.table_catalog = current_database()
            and c.table_schema not in ('information_schema', 'pg_catalog')
        order by 1
        """,
        [column],
    ).fetchall()
    return [r[0] for r in rows if r[0] != TOMBSTONES]


def _other_id_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Base tables naming customers in columns other than ``customer_id``, with, per column,
    the SQL of the ids it holds as a list: one id (``order_conflicts.kept_customer_id``,
    ``identity_conflicts.chosen_customer_id``) or several (``customer_ids``,
    ``candidate_customer_ids``: text joined with ``', '`` by dbt's ``listagg``, or a list)."""
    rows = con.execute(
        """
        select c.table_schema || '.' || c.table_name, c.column_name, c.data_type
        from information_schema.columns as c
        inner join information_schema.tables as t
            on t.table_schema = c.table_schema and t.table_name = c.table_name
        where (c.column_name like '%\\_customer\\_id' escape '\\'
                or c.column_name like '%customer\\_ids' escape '\\')
            and t.table_type = 'BASE TABLE'
            and t.table_catalog = current_database()
            and c.table_catalog = current_database()
            and c.table_schema not in ('information_schema', 'pg_catalog')
        order by 1, 2
        """
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column, data_type in rows:
        if data_type.endswith("[]"):
            items = f'"{column}"'
        elif column.endswith("_ids"):
            items = f"""regexp_split_to_array("{column}", '\\s*,\\s*')"""
        else:
            items = f'["{column}"]'
        out.setdefault(table, []).append(items)
    return out


def _names_erased_sql(items: list[str], erased: str, hashed: bool) -> str:
    """A SQL predicate, true when one of the id lists ``items`` holds an id of the list
    ``erased`` (the ids themselves, or with ``hashed`` their tombstones)."""
    if hashed:
        items = [f"list_transform({i}, lambda x: {id_hash_sql('x')})" for i in items]
    return "(" + " or ".join(f"list_has_any({i}, {erased})" for i in items) + ")"


def purge_tombstoned(con: duckdb.DuckDBPyConnection) -> int:
    """Delete rows of erased customers from every table; return how many were removed.

    Hashing every id of every table each night would cost seconds per 10M rows, so the
    check is incremental: rows loaded (``_loaded_at``) since the last purge are looked at
    first, and only when an erased id came back (or on the first purge) are all tables
    scanned. Each purge is recorded in ``ops.erasure_purges``.
    """
    if not table_exists(con, TOMBSTONES):
        return 0
    if con.execute(f"select count(*) from {TOMBSTONES}").fetchone()[0] == 0:
        return 0
    started = datetime.now(UTC).replace(tzinfo=None)
    watermark = con.execute("select max(purged_at) from ops.erasure_purges").fetchone()[0]
    loaded = [(t, c) for t, c in _id_tables(con).items() if t in _tables_with(con, "_loaded_at")]
    if watermark is not None and loaded:
        came_back = sum(
            con.execute(
                f"select count(*) from {t} where _loaded_at >= ? and {erased_row_sql(c)}",
                [watermark],
            ).fetchone()[0]
            for t, c in loaded
        )
        if not came_back:
            con.execute("insert into ops.erasure_purges values (?, 0, false)", [started])
            return 0
    removed = 0
    with transaction(con):
        for table, columns in _id_tables(con).items():
            n = con.execute(f"delete from {table} where {erased_row_sql(columns)}").fetchone()[0]
            removed += int(n)
        tombstones = f"(select list(id_sha256) from {TOMBSTONES})"
        for table, items in _other_id_columns(con).items():
            where = _names_erased_sql(items, tombstones, hashed=True)
            removed += int(con.execute(f"delete from {table} where {where}").fetchone()[0])
        con.execute("insert into ops.erasure_purges values (?, ?, true)", [started, removed])
    return removed


@dataclass
class ErasureResult:
    erasure_id: str
    ids_requested: int
    ids_new: int
    rows_deleted: int
    tables: dict[str, int] = field(default_factory=dict)
    export_files: list[str] = field(default_factory=list)
    # The machines each export file was written on (audiences.exports.hostname), when known.
    export_hosts: dict[str, list[str]] = field(default_factory=dict)
    landing_files: list[str] = field(default_factory=list)
    # Requested ids with no row anywhere, each with the stored ids that differ from it only
    # in case or surrounding spaces; and those of them tombstoned by an earlier erasure.
    not_found: dict[str, list[str]] = field(default_factory=dict)
    erased_before: list[str] = field(default_factory=list)
    # Size of the warehouse file before and after it was rewritten without the deleted rows
    # (segmint.warehouse.compact), in bytes.
    file_bytes: tuple[int, int] | None = None
    # Saved models rewritten without the customers' rows, and model files that could not be
    # checked (ml.recommendations.stage.erase_from_models).
    model_files: list[str] = field(default_factory=list)
    unchecked_model_files: list[str] = field(default_factory=list)
    # The night the published copies hold (they keep the erased rows until it is published
    # again); None when nothing was published.
    published_as_of: date | None = None
    # Published copies there whose night could not be read (segmint.publish.published_nights):
    # they may hold the customers too.
    published_unreadable: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """One line per requested id never erased before that matched no row anywhere."""
        out = []
        for customer_id, similar in self.not_found.items():
            if similar:
                hint = f"did you mean {' or '.join(map(_shown, similar))}?"
            elif customer_id in self.erased_before:
                continue  # erased before: nothing left is what was asked for
            else:
                hint = "check the id"
            out.append(
                f"no rows for customer {_shown(customer_id)} in any table; {hint} (its tombstone "
                "is recorded, so its records are dropped if they arrive later)"
            )
        return out

    def _gone(self, path: str) -> str:
        """A note for a past export file not on this machine's disk: removed by the run
        outputs' retention (``[outputs] keep_nights``), or moved, when it was written here;
        when it was written on another machine, that it may still be there. Before, a file
        written by another machine (an Airflow worker) was said to be "no longer on disk"
        to whoever erased on their own: it was never on theirs, and stayed where it was."""
        if path not in self.export_files or Path(path).exists():
            return ""
        here = socket.gethostname()
        hosts = self.export_hosts.get(path, [])
        others = [h for h in hosts if h != here]
        if others:
            return (
                f" (written on {' and '.join(others)}, not on this machine ({here}): delete it "
                "there; if it is gone there too, whoever it was sent to may still hold them)"
            )
        if hosts:
            return " (no longer on disk: removed by [outputs] keep_nights, or moved; re-send)"
        return (
            " (not on this machine's disk: removed by [outputs] keep_nights, moved, or written "
            "on another machine)"
        )

    def lines(self) -> list[str]:
        missing = len(self.warnings)
        out = [
            f"erasure {self.erasure_id}: {self.ids_requested} id(s) "
            f"({self.ids_new} not erased before), {self.rows_deleted} row(s) deleted"
            + (f"; {missing} id(s) not found" if missing else "")
        ]
        out += [f"  {t}: {n} row(s)" for t, n in self.tables.items() if n]
        out += [
            f"  {_shown(i)}: no rows left (erased before)"
            for i in self.erased_before
            if i in self.not_found and not self.not_found[i]
        ]
        for header, files in (
            ("past export files that contained them (delete or re-send these)", self.export_files),
            (
                "landing files holding their records (read-only to segmint; erase at source)",
                self.landing_files,
            ),
        ):
            if files:
                out += [f"  {header}:", *(f"    {p}{self._gone(p)}" for p in files)]
        if self.file_bytes:
            before, after = (round(n / 2**20, 1) for n in self.file_bytes)
            out.append(
                f"  warehouse file rewritten so their deleted rows leave no bytes behind "
                f"({before} MiB -> {after} MiB)"
            )
        for header, files in (
            ("saved models rewritten without their rows", self.model_files),
            (
                "saved models that could not be checked (not loadable here): delete them, "
                "the stage trains a new one",
                self.unchecked_model_files,
            ),
        ):
            if files:
                out += [f"  {header}:", *(f"    {p}" for p in files)]
        if self.published_as_of:
            out.append(
                "  the published read-only copies (full and analysts') keep them until the "
                f"next publish; run `segmint publish --as-of {self.published_as_of}` to "
                "replace them now"
            )
        elif self.published_unreadable:
            out.append(
                "  the published read-only copies may keep them, but which night they hold "
                f"could not be read ({'; '.join(self.published_unreadable)}); run `segmint "
                "publish --as-of` the newest night to replace them now"
            )
        out += [f"  warning: {w}" for w in self.warnings]
        return out


def _shown(customer_id: str) -> str:
    """An id as the operator should type it; quoted when spaces make it ambiguous."""
    return repr(customer_id) if customer_id != customer_id.strip() else customer_id


def read_id_file(path: Path) -> list[str]:
    """Ids from a file: one per line, or a CSV whose header has ``customer_id``, separated by
    ``,``, ``;`` (Excel's in much of Europe) or a tab, as a spreadsheet saves it: a byte-order
    mark ("CSV UTF-8") and quotes are no part of the header or ids."""
    path = Path(path)
    if path.is_dir():  # it said "id file does not exist" of a folder that does
        raise SegmintError(f"{path}: is a folder, not an id file")
    if not path.is_file():
        raise SegmintError(f"{path}: id file does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SegmintError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save it as CSV UTF-8"
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    delimiter = next((d for d in (",", ";", "\t") if lines and d in lines[0]), None)
    if delimiter:
        # Before, only "," was read as a CSV: "customer_id;reason" and "C01;complaint" were
        # taken as ids, and C01 was not erased.
        rows = list(csv.reader(lines, delimiter=delimiter))
        header = [h.strip() for h in rows[0]]
        if "customer_id" not in header:
            raise SegmintError(f"{path}:1: CSV header has no customer_id column")
        i = header.index("customer_id")
        ids = []
        for n, cells in enumerate(rows[1:], start=2):
            if len(cells) <= i:
                raise SegmintError(f"{path}:{n}: no customer_id value")
            ids.append(cells[i].strip())
        return [x for x in ids if x]
    if lines and lines[0].strip('"') == "customer_id":
        lines = lines[1:]
    return lines


def stored_id(customer_id: str) -> str:
    """``customer_id`` as the ingest stores it: trimmed, and a number with Excel's leading
    apostrophe ('7210448301122, Shopify's Customer ID) is that number (``cast_sql``), so an
    erasure request pasted from the export the CRM was loaded from finds the customer, and
    its tombstone stops their later records."""
    customer_id = customer_id.strip()
    if customer_id[1:].isascii() and customer_id[1:].isdigit() and customer_id[0] == "'":
        return customer_id[1:]
    return customer_id


def erase_customers(settings: Settings, customer_ids: list[str], note: str | None = None):
    """Erase ``customer_ids`` from the working warehouse; see the module docstring."""
    ids = sorted({stored_id(i) for i in customer_ids if i and i.strip()})
    if not ids:
        raise SegmintError("no customer id given to erase")
    with exclusive(settings.warehouse, "erasure"):
        return _erase_and_compact(settings, ids, note)


def _erase_and_compact(settings: Settings, ids: list[str], note: str | None) -> ErasureResult:
    from ml.recommendations.stage import erase_from_models
    from segmint.publish import published_nights

    con = connect(settings.warehouse)
    try:
        result = erase_with_connection(con, ids, note)
    finally:
        con.close()
    # The recommendations model keeps a factor row per customer and is reused for days.
    result.model_files, result.unchecked_model_files = erase_from_models(
        settings.artifacts_dir, ids
    )
    # Both copies: with the full one damaged, the analysts' copy still holds them (it was
    # not said, the full copy's night being unreadable).
    nights, result.published_unreadable = published_nights(settings)
    result.published_as_of = max(nights.values(), default=None)
    # Deleted rows stay readable in the file's free blocks (and in every byte copy of it,
    # such as the published copy) until the file is rewritten.
    try:
        result.file_bytes = compact(settings.warehouse)
    except (OSError, duckdb.Error) as exc:
        raise SegmintError(
            f"erasure {result.erasure_id} deleted {result.rows_deleted} row(s), but rewriting "
            f"{settings.warehouse} without their bytes failed: {exc}. Free the space or close "
            "the process holding the file, then run the same erasure again (it is idempotent) "
            "before the next publish"
        ) from exc
    return result


def erase_with_connection(
    con: duckdb.DuckDBPyConnection, ids: list[str], note: str | None = None
) -> ErasureResult:
    ensure_audience_tables(con)
    con.execute("create or replace temp table _erase_ids (customer_id varchar)")
    con.executemany("insert into _erase_ids values (?)", [[i] for i in ids])
    # Anonymous ids that are theirs alone: linked to them and to no other customer anywhere
    # (events before login, sessions, the identity map). A device shared with others (a
    # shop's tablet) is not theirs: its rows of other customers stay, and it is not
    # tombstoned, so the others' next visits on it still load.
    anon_sources = [
        t for t in _tables_with(con, "anonymous_id") if t in _tables_with(con, "customer_id")
    ]
    links = (
        " union ".join(
            f"select anonymous_id, customer_id from {t} "
            "where anonymous_id is not null and customer_id is not null"
            for t in anon_sources
        )
        or "select null::varchar as anonymous_id, null::varchar as customer_id where false"
    )
    con.execute(
        f"""create or replace temp table _erase_anon as
        select anonymous_id
        from ({links})
        group by anonymous_id
        having bool_or(customer_id in (select customer_id from _erase_ids))
            and bool_and(customer_id in (select customer_id from _erase_ids))"""
    )
    # Events attributed to them that carry no customer id: their browsing before login on a
    # shared device, found through the tables that attribute events (int_events_sessionised).
    con.execute("create or replace temp table _erase_events (event_id varchar)")
    for t in _tables_with(con, "event_id"):
        if t in _tables_with(con, "customer_id"):
            con.execute(
                f"insert into _erase_events select distinct event_id from {t} "
                "where customer_id in (select customer_id from _erase_ids)"
            )
    # Their e-mail addresses and phone numbers that are theirs alone (no other customer's
    # row has them), to find quarantined records of theirs that hold no readable id: a CRM
    # line whose customer_id was missing or unusable still carries their address, phone and
    # name. Tombstoned like the ids, so ingest drops such a record when its file is read
    # again (a record whose ids were read belongs to those ids only).
    con.execute("create or replace temp table _erase_contacts (token varchar)")
    for column, value, valid in (
        ("email", "lower(trim(email))", "contains(v, '@')"),
        ("phone", "trim(phone)", "length(regexp_replace(v, '[^0-9]', '', 'g')) >= 6"),
    ):
        sources = [t for t in _tables_with(con, column) if t in _tables_with(con, "customer_id")]
        if not sources:
            continue
        contacts = " union all ".join(
            f"select {value} as v, customer_id in (select customer_id from _erase_ids) as theirs "
            f"from {t} where {column} is not null"
            for t in sources
        )
        con.execute(
            f"insert into _erase_contacts select v from ({contacts}) "
            f"where {valid} group by v having bool_and(theirs)"
        )
    _duplicate_keys(con)
    not_found = _ids_not_found(con)
    erased_before = [
        r[0]
        for r in con.execute(
            f"select customer_id from _erase_ids where {id_hash_sql('customer_id')} in "
            f"(select id_sha256 from {TOMBSTONES}) order by 1"
        ).fetchall()
    ]
    # Each file with the machines it was written on (none known for exports logged before
    # they said so): a file that is not on this machine's disk may be on theirs.
    export_hosts = {
        r[0]: r[1] or []
        for r in con.execute(
            """select e.destination, list(distinct e.hostname order by e.hostname)
                filter (where e.hostname is not null)
            from audiences.exports as e
            inner join audiences.export_members as m on m.export_id = e.export_id
            where m.customer_id in (select customer_id from _erase_ids)
            group by 1
            order by 1"""
        ).fetchall()
    }
    export_files = list(export_hosts)
    landing_files: set[str] = set()
    for t in _tables_with(con, "_source_file"):
        if t not in _tables_with(con, "customer_id"):
            continue
        landing_files.update(
            r[0]
            for r in con.execute(
                f"select distinct _source_file from {t} "
                "where customer_id in (select customer_id from _erase_ids)"
            ).fetchall()
        )
    erasure_id = uuid.uuid4().hex
    now = datetime.now(UTC).replace(tzinfo=None)
    tables: dict[str, int] = {}
    with transaction(con):
        new = con.execute(
            f"""insert into {TOMBSTONES}
            select distinct h, ?::timestamp from (
                select {id_hash_sql("customer_id")} as h from _erase_ids
                union
                select {id_hash_sql("anonymous_id")} from _erase_anon
                union
                select {id_hash_sql("token")} from _erase_contacts
            )
            where h not in (select id_sha256 from {TOMBSTONES})""",
            [now],
        ).fetchone()[0]
        ids_new = con.execute(
            f"select count(*) from _erase_ids where {id_hash_sql('customer_id')} in "
            f"(select id_sha256 from {TOMBSTONES} where erased_at = ?::timestamp)",
            [now],
        ).fetchone()[0]
        del new
        for table in _tables_with(con, "customer_id"):
            n = con.execute(
                f"delete from {table} where customer_id in (select customer_id from _erase_ids)"
            ).fetchone()[0]
            tables[table] = tables.get(table, 0) + int(n)
        with_customer = set(_tables_with(con, "customer_id"))
        # Rows naming them under another column (the conflict tables: the order kept for
        # them, the candidates of a shared device); the next transform rebuilds these tables
        # from what is left.
        for table, items in _other_id_columns(con).items():
            where = _names_erased_sql(items, "(select list(customer_id) from _erase_ids)", False)
            n = con.execute(f"delete from {table} where {where}").fetchone()[0]
            tables[table] = tables.get(table, 0) + int(n)
        # Their anonymous ids' rows and their attributed events, never a row that carries
        # another customer's id.
        for column, source in (("anonymous_id", "_erase_anon"), ("event_id", "_erase_events")):
            for table in _tables_with(con, column):
                others = " and customer_id is null" if table in with_customer else ""
                n = con.execute(
                    f"delete from {table} where {column} in (select {column} from {source}){others}"
                ).fetchone()[0]
                tables[table] = tables.get(table, 0) + int(n)
        if table_exists(con, "ops.duplicates"):
            # Their records that ingest counted as duplicates: the file, line and key of a
            # record of theirs, still pointing at it after their rows were gone.
            theirs = (
                "(source, record_key) in (select source, record_key from _erase_duplicate_keys)"
            )
            landing_files.update(
                r[0]
                for r in con.execute(
                    f"select distinct source_file from ops.duplicates where {theirs}"
                ).fetchall()
            )
            n = con.execute(f"delete from ops.duplicates where {theirs}").fetchone()[0]
            tables["ops.duplicates"] = tables.get("ops.duplicates", 0) + int(n)
        if table_exists(con, "ops.quarantine"):
            # A quarantined record is raw text: match whole tokens, not substrings. (A CRM
            # record whose customer_id was read went with the tables above; added to them.)
            # A record holding one of their own e-mail addresses or phone numbers is theirs
            # too, whatever its id (a CRM line quarantined for a missing customer_id).
            tokens = raw_tokens_sql("cast(q.raw_record as varchar)")
            lower_tokens = raw_tokens_sql("lower(cast(q.raw_record as varchar))")
            theirs = f"""exists (
                    select 1
                    from (
                        select customer_id as token from _erase_ids
                        union all
                        select anonymous_id from _erase_anon
                    ) as e
                    where list_contains({tokens}, e.token)
                )
                or list_has_any({lower_tokens}, (select list(token) from _erase_contacts))"""
            # The landing files of their quarantined records hold them too.
            landing_files.update(
                r[0]
                for r in con.execute(
                    f"select distinct source_file from ops.quarantine as q where {theirs}"
                ).fetchall()
                if r[0]
            )
            n = con.execute(f"delete from ops.quarantine as q where {theirs}").fetchone()[0]
            tables["ops.quarantine"] = tables.get("ops.quarantine", 0) + int(n)
        rows_deleted = sum(tables.values())
        con.execute(
            "insert into ops.erasures (erasure_id, requested_at, ids_requested, ids_new, "
            "rows_deleted, tables, export_files, landing_files, note, export_hosts) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                erasure_id,
                now,
                len(ids),
                int(ids_new),
                rows_deleted,
                json.dumps({t: n for t, n in tables.items() if n}),
                export_files,
                sorted(landing_files),
                note,
                json.dumps({f: h for f, h in export_hosts.items() if h}),
            ],
        )
    con.execute("checkpoint")
    return ErasureResult(
        erasure_id=erasure_id,
        ids_requested=len(ids),
        ids_new=int(ids_new),
        rows_deleted=rows_deleted,
        tables=tables,
        export_files=export_files,
        export_hosts={f: h for f, h in export_hosts.items() if h},
        landing_files=sorted(landing_files),
        not_found=not_found,
        erased_before=erased_before,
    )


def _duplicate_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``_erase_duplicate_keys`` with the ``(source, record_key)`` of ``ops.duplicates``
    (:meth:`segmint.ingest.loader.Ingest._key_sql`) of the customers' loaded records: their
    events (with their id, or none and one of their own anonymous ids, or attributed to
    them) and their CRM records."""
    from segmint.ingest.loader import Ingest

    con.execute(
        "create or replace temp table _erase_duplicate_keys (source varchar, record_key varchar)"
    )
    if table_exists(con, "raw.events"):
        con.execute(
            """insert into _erase_duplicate_keys
            select 'events', event_id from _erase_events
            union
            select 'events', event_id from raw.events
            where customer_id in (select customer_id from _erase_ids)
                or (customer_id is null
                    and anonymous_id in (select anonymous_id from _erase_anon))"""
        )
    if table_exists(con, "raw.customers"):
        con.execute(
            f"""insert into _erase_duplicate_keys
            select distinct 'crm', {Ingest._key_sql("crm")} from raw.customers
            where customer_id in (select customer_id from _erase_ids)"""
        )


def _ids_not_found(con: duckdb.DuckDBPyConnection, limit: int = 5) -> dict[str, list[str]]:
    """The ids of ``_erase_ids`` with no row in any table with a ``customer_id`` column (or
    another column naming customers) and no quarantined record holding them, each with up
    to ``limit`` stored ids equal to it but for case and surrounding spaces (``c6256419`` for
    ``C6256419``, ``'c1 '`` for ``c1``) and not requested themselves.
    """
    tables = _tables_with(con, "customer_id")
    found: set[str] = set()
    for t in tables:
        found.update(
            r[0]
            for r in con.execute(
                f"select distinct customer_id from {t} "
                "where customer_id in (select customer_id from _erase_ids)"
            ).fetchall()
        )
    for t, items in _other_id_columns(con).items():
        found.update(
            r[0]
            for r in con.execute(
                f"select e.customer_id from _erase_ids as e where exists (select 1 from {t} "
                f"where {_names_erased_sql(items, '[e.customer_id]', hashed=False)})"
            ).fetchall()
        )
    if table_exists(con, "ops.quarantine"):
        tokens = raw_tokens_sql("cast(q.raw_record as varchar)")
        found.update(
            r[0]
            for r in con.execute(
                f"""select distinct e.customer_id
                from _erase_ids as e, ops.quarantine as q
                where list_contains({tokens}, e.customer_id)"""
            ).fetchall()
        )
    missing = [r[0] for r in con.execute("select customer_id from _erase_ids").fetchall()]
    missing = sorted(set(missing) - found)
    if not missing:
        return {}
    con.execute("create or replace temp table _erase_missing (customer_id varchar)")
    con.executemany("insert into _erase_missing values (?)", [[i] for i in missing])
    similar: dict[str, set[str]] = {i: set() for i in missing}
    for t in tables:
        for requested, stored in con.execute(
            f"""select distinct m.customer_id, t.customer_id
            from {t} as t
            inner join _erase_missing as m on lower(trim(t.customer_id)) = lower(m.customer_id)"""
        ).fetchall():
            similar[requested].add(stored)
    requested = set(missing) | found
    return {i: sorted(similar[i] - requested)[:limit] for i in missing}
