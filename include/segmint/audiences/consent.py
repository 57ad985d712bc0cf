"""Consent holds: a customer whose current consent cannot be established is not contacted.

A CRM record is the customer's whole current state, consent included, and the record with
the latest ``updated_at`` wins (docs/data-contract.md). A quarantined CRM record (its
``updated_at`` unreadable or in the future, ...) has no usable date, so nobody can tell
whether it is newer than the customer's loaded record: it may be the one withdrawing
consent. When its ``customer_id`` could be read (``ops.quarantine.customer_id``, kept by
ingest) and no CRM record of that customer was loaded from a later partition, the customer
is **held**: left out of every audience (counted in ``without_consent``) and of every
export, whatever the loaded record says, until the record is re-delivered readable (the
corrected file under the same name replaces what it loaded and quarantined) or superseded
by a record of theirs loaded from a later partition. The quarantined record stays where it
is, with its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from segmint.warehouse import table_exists

QUARANTINE = "ops.quarantine"
RAW_CUSTOMERS = "raw.customers"
# How many quarantined records a warning names before "and N more".
SHOWN = 5
NO_HOLDS = "select null::varchar as customer_id where false"


def _has_column(con: duckdb.DuckDBPyConnection, qualified: str, column: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.columns where table_catalog = "
            "current_database() and table_schema = ? and table_name = ? and column_name = ?",
            [schema, name, column],
        ).fetchone()[0]
    )


def held_records_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """SQL of the quarantined CRM records holding their customer out (``customer_id,
    source_file, line_number, partition_date``), or None when the warehouse keeps no
    customer id of quarantined records."""
    if not table_exists(con, QUARANTINE) or not _has_column(con, QUARANTINE, "customer_id"):
        return None
    later = ""
    if table_exists(con, RAW_CUSTOMERS):
        later = f"""
            and not exists (
                select 1 from {RAW_CUSTOMERS} as r
                where r.customer_id = q.customer_id and r._partition_date > q.partition_date
            )"""
    return f"""select q.customer_id, q.source_file, q.line_number, q.partition_date
        from {QUARANTINE} as q
        where q.source = 'crm' and q.customer_id is not null{later}"""


def held_customers_sql(con: duckdb.DuckDBPyConnection) -> str:
    """A query returning the ``customer_id`` of every held customer (none: no rows)."""
    records = held_records_sql(con)
    return f"select distinct customer_id from ({records})" if records else NO_HOLDS


@dataclass
class ConsentHolds:
    customers: int = 0
    records: int = 0
    # (file, line) of the first SHOWN records, by file and line.
    shown: tuple[tuple[str, int], ...] = ()
    # Of ``customers``, those with no CRM record loaded at all: only quarantined ones.
    unloaded: int = 0

    @property
    def warning(self) -> str | None:
        """The night's warning. A customer whose only CRM records were quarantined was
        counted as one whose quarantined record "may be newer than their loaded one": they
        have none loaded; they are named apart, as held with no consent known."""
        if not self.customers:
            return None
        where = "; ".join(f"{f} line {n}" for f, n in self.shown)
        if self.records > len(self.shown):
            where += f" and {self.records - len(self.shown)} more"
        loaded = self.customers - self.unloaded
        heads = []
        if loaded:
            heads.append(
                f"{loaded} customer(s) held out of every audience and export: a CRM record of "
                "theirs was quarantined and may be newer than their loaded one, so their "
                "current consent is unknown"
            )
        if self.unloaded:
            who = (
                f"{self.unloaded} more"
                if loaded
                else f"{self.unloaded} customer(s) held out of every audience and export"
            )
            heads.append(
                f"{who} whose only CRM record was quarantined: none of theirs is loaded, so "
                "no consent of theirs is known"
            )
        return (
            f"{'; '.join(heads)} ({self.records} quarantined record(s): {where}); re-deliver "
            "the file corrected under the same name (or their record in a later partition) "
            "to release them (ops.quarantine has the reasons)"
        )


def consent_holds(con: duckdb.DuckDBPyConnection) -> ConsentHolds:
    """How many customers are held, by which quarantined records (the warning's figures)."""
    records = held_records_sql(con)
    if records is None:
        return ConsentHolds()
    con.execute(f"create or replace temp table _consent_holds as {records}")
    customers, n = con.execute(
        "select count(distinct customer_id), count(*) from _consent_holds"
    ).fetchone()
    unloaded = customers
    if customers and table_exists(con, RAW_CUSTOMERS):
        (unloaded,) = con.execute(
            f"select count(distinct h.customer_id) from _consent_holds as h where not exists "
            f"(select 1 from {RAW_CUSTOMERS} as r where r.customer_id = h.customer_id)"
        ).fetchone()
    shown = con.execute(
        "select source_file, line_number from _consent_holds "
        f"order by partition_date, source_file, line_number limit {SHOWN}"
    ).fetchall()
    con.execute("drop table _consent_holds")
    return ConsentHolds(
        int(customers), int(n), tuple((f, int(line)) for f, line in shown), int(unloaded)
    )
