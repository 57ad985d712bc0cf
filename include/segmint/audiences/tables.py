"""DDL of the ``audiences.*`` and ``ops.erasure*`` tables (contracts in docs/tables.md)."""

from __future__ import annotations

import duckdb

AUDIENCES_DDL = """
create schema if not exists audiences;
create schema if not exists ops;
create table if not exists audiences.members (
    audience varchar not null,
    as_of_date date not null,
    customer_id varchar not null,
    "group" varchar not null            -- 'target' | 'holdout'
);
create table if not exists audiences.changes (
    audience varchar not null,
    as_of_date date not null,
    customer_id varchar not null,
    change varchar not null,            -- 'entered' | 'exited'
    "group" varchar not null,           -- group now (entered) or before (exited)
    previous_as_of_date date            -- null for an audience's first snapshot
);
create table if not exists audiences.summary (
    as_of_date date not null,
    audience varchar not null,
    status varchar not null,            -- 'built' | 'failed'
    error varchar,
    description varchar,
    consent varchar,                    -- null: a failed file that names none
    priority_group varchar,
    priority integer,
    matched bigint,                     -- customers meeting the conditions
    without_consent bigint,             -- of those, removed for lack of consent
    suppressed bigint,                  -- removed by suppression lists
    claimed_by_higher_priority bigint,  -- already in a higher audience of the group
    over_size_limit bigint,             -- cut by limit.size
    members bigint,
    target bigint,
    holdout bigint,
    holdout_percent double,
    entered bigint,
    exited bigint,
    previous_as_of_date date,
    definition_file varchar,
    definition_sha256 varchar,
    compiled_sql varchar,
    built_at timestamp not null,
    note varchar                        -- why a built audience is empty, when known
);
create table if not exists audiences.overlap (
    as_of_date date not null,
    audience varchar not null,
    other_audience varchar not null,
    customers bigint not null
);
create table if not exists audiences.exports (
    export_id varchar not null,
    audience varchar not null,
    format varchar not null,
    as_of_date date not null,
    row_count bigint not null,
    file_sha256 varchar not null,
    destination varchar not null,
    baseline_as_of_date date,           -- diff format: the snapshot compared against
    exported_at timestamp not null,
    target_members bigint,              -- the snapshot's target group (audiences.members)
    without_consent bigint,             -- of it, left out: no consent the file needs now,
                                        -- held, or suppressed since the snapshot
    shared_address bigint,              -- left out: address on a record without consent
    without_contact bigint,             -- left out: no usable address (ESP), nothing to
                                        -- match (Google, Meta)
    hostname varchar                    -- the machine whose disk the file was written to
);
create table if not exists audiences.export_members (
    export_id varchar not null,
    customer_id varchar not null
);
create table if not exists ops.erasure_tombstones (
    id_sha256 varchar not null,         -- sha256 of 'segmint-erasure:' || customer_id
    erased_at timestamp not null
);
create table if not exists ops.erasure_purges (
    purged_at timestamp not null,       -- rows loaded since then were checked next time
    rows_removed bigint not null,
    full_scan boolean not null
);
create table if not exists ops.erasures (
    erasure_id varchar not null,
    requested_at timestamp not null,
    ids_requested bigint not null,
    ids_new bigint not null,            -- not tombstoned before
    rows_deleted bigint not null,
    tables json not null,               -- {"schema.table": rows deleted}
    export_files varchar[] not null,    -- past export files that contained them
    landing_files varchar[] not null,   -- landing files holding their records (read-only to us)
    note varchar,
    export_hosts json                   -- {export file: [machines it was written on]}
);
"""


EXPORT_COUNTS = ("target_members", "without_consent", "shared_address", "without_contact")


def ensure_audience_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(AUDIENCES_DDL)
    # Warehouses made before an invalid file got its own failed row had consent not null.
    (nullable,) = con.execute(
        "select is_nullable from information_schema.columns where table_schema = 'audiences' "
        "and table_name = 'summary' and column_name = 'consent'"
    ).fetchone()
    if nullable == "NO":
        con.execute("alter table audiences.summary alter column consent drop not null")
    # Warehouses made before the exports said who of the target group a file left out.
    for column in EXPORT_COUNTS:
        con.execute(f"alter table audiences.exports add column if not exists {column} bigint")
    # Warehouses made before an export said which machine's disk it was written to, and an
    # erasure which machines hold its files.
    con.execute("alter table audiences.exports add column if not exists hostname varchar")
    con.execute("alter table ops.erasures add column if not exists export_hosts json")
    # Warehouses made before a built audience said why it is empty (a rule's ranking).
    con.execute("alter table audiences.summary add column if not exists note varchar")
