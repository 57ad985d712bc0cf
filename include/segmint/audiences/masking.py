"""PII-masked views for analysts: schema ``analyst`` mirrors ``marts``.

Every table and view of ``marts`` gets a view ``analyst.<name>`` with the same columns, in
the same order, where personal columns are masked by default:

========================  =====================================================
column                    in ``analyst``
========================  =====================================================
email                     sha256 of the trimmed, lower-cased, NFC address (joinable
                          with hashed lists; not reversible without a guess list)
phone                     ``***`` and the last two digits
first_name, last_name     first letter and ``***``
birth_date                1 January of the birth year
postal_code               first two characters and ``***``
street, address, ...      ``***``
customer_id, anonymous_id an id that is an e-mail address (it holds ``@``: shops whose
and ``*_customer_id``     CRM or tracker keys people by address): sha256 of the id as
                          written, so tables still join, distinct ids stay distinct, and
                          an id written as ``email`` is normalised (trimmed, lower case)
                          matches the ``email`` column; other ids stay as they are
customer_ids and          a list of such ids (``a@x.com, b@x.com``, the conflict marts):
``*_customer_ids``        each address of it hashed so
========================  =====================================================

The unmasked ``raw``, ``staging``, ``intermediate`` and ``marts`` tables and
``ops.quarantine`` (a quarantined CRM line as delivered) are restricted (:data:`RESTRICTED`):
pipeline stages and people with a data-protection reason only (docs/tables.md).
The audiences stage refreshes the views every night, so new columns appear masked.
In the analysts' copy, the values a failed night's error quotes from delivered records
(``ops.pipeline_runs.error``, ``ops.quality_gate.message``) are withheld too
(:data:`QUOTING_COLUMNS`).
"""

from __future__ import annotations

import duckdb

MASKED_SCHEMA = "analyst"
SOURCE_SCHEMA = "marts"
# Schemas and tables that hold personal data unmasked: the pipeline's and data-protection
# work's only (docs/tables.md). Analysts read everything else.
RESTRICTED = ("raw", "staging", "intermediate", "marts", "ops.quarantine")

_MASKS = {
    "email": "sha256(nfc_normalize(lower(trim({c}))))",
    "phone": "case when {c} is null then null else '***' || "
    "right(regexp_replace({c}, '[^0-9]', '', 'g'), 2) end",
    "first_name": "case when {c} is null then null else left(trim({c}), 1) || '***' end",
    "last_name": "case when {c} is null then null else left(trim({c}), 1) || '***' end",
    "birth_date": "cast(date_trunc('year', {c}) as date)",
    "postal_code": "case when {c} is null then null else left(trim({c}), 2) || '***' end",
    "street": "case when {c} is null then null else '***' end",
    "address": "case when {c} is null then null else '***' end",
    "address_line_1": "case when {c} is null then null else '***' end",
    "address_line_2": "case when {c} is null then null else '***' end",
}
PII_COLUMNS = tuple(_MASKS)
# A person's id is no personal data unless it is their address: some shops key customers by
# e-mail (a newsletter platform's list, a tracker's userId), and every table analysts read
# then held the addresses the email column hides. Hashed as written, not normalised like
# email: ids differing in case are two people to segmint (Ann@Example.com and ann@example.com
# are two visitors), and one hash for both duplicated the keys of identity_map and customers.
_ID_MASK = "case when contains({c}, '@') then sha256({c}) else {c} end"


def id_mask(value: str) -> str:
    """:func:`id_mask_sql` in Python: a customer id as the analysts' copy shows it (sha256
    of the id when it is an address), for ids named in a warning outside SQL."""
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest() if "@" in value else value


def id_mask_sql(column: str) -> str:
    """SQL: the id in ``column`` as the analysts' copy shows it (hashed if an address), for
    any other place a person's id leaves the warehouse (a warning in a task log)."""
    return _ID_MASK.format(c=column)


# The conflict marts list a person's ids in one text, "id, id" (dbt.listagg): each is hashed.
_IDS_MASK = (
    "case when contains({c}, '@') then array_to_string(list_transform(string_split({c}, ', '), "
    + f"lambda x: {_ID_MASK.format(c='x')}), ', ') else {{c}} end"
)


# Texts that quote delivered values: the quality gate's reasons name what they quarantined
# (``got 'ann@example.com' 3, '+4917...' 1``: segmint.ingest.gate, top reasons; a CRM
# export with two columns swapped puts customers' addresses there), and the ingest the
# header of a CSV file it cannot read (``(header is: '...')``: a file without a header
# line shows its first record); a failed night's error in ops.pipeline_runs repeats them.
# Each quoted value (a Python repr, 'x' or "x", a cut list ending in ...) is withheld in the
# analysts' copy; the reasons and counts stay.
_REPR = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_QUOTED_VALUES = (
    (rf"got (?:{_REPR}(?:\.\.\.)? [0-9]+(?:, )?)+", "got (values withheld in the analysts' copy)"),
    (rf"header is: {_REPR}", "header is: (withheld in the analysts' copy)"),
)
_QUOTED_VALUES_MASK = "{c}"
for _pattern, _withheld in _QUOTED_VALUES:
    _QUOTED_VALUES_MASK = "regexp_replace({}, '{}', '{}', 'g')".format(
        _QUOTED_VALUES_MASK, _pattern.replace("'", "''"), _withheld.replace("'", "''")
    )
# The free-text columns that quote them, by table.
QUOTING_COLUMNS = {
    ("ops", "pipeline_runs"): ("error", "warnings"),
    ("ops", "quality_gate"): ("message",),
}


# Masks made of text functions, for a column a CRM export typed as a number (a phone or
# postal code column BIGINT, one all null INTEGER): regexp_replace(BIGINT) did not bind, and
# the audience build stopped before any audience. The mask is applied to the number's text
# (a float's whole part: "4155552671.0" would show "10" as its last digits).
_TEXT_MASKS = ("email", "phone", "first_name", "last_name", "postal_code")


def _mask(name: str, data_type: str) -> str | None:
    name = name.lower()
    if data_type == "VARCHAR" and (
        name in ("customer_id", "anonymous_id") or name.endswith("_customer_id")
    ):
        return _ID_MASK
    if data_type == "VARCHAR" and (name == "customer_ids" or name.endswith("_customer_ids")):
        return _IDS_MASK
    if name in _TEXT_MASKS and data_type != "VARCHAR":
        whole = data_type in ("FLOAT", "DOUBLE") or data_type.startswith("DECIMAL(")
        text = "cast(try_cast({c} as hugeint) as varchar)" if whole else "cast({c} as varchar)"
        return _MASKS[name].replace("{c}", text)
    return _MASKS.get(name)


def masked_select_sql(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    cols = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? and table_catalog = current_database() "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()
    items = []
    quoting = QUOTING_COLUMNS.get((schema, table), ())
    for name, data_type in cols:
        quoted = f'"{name}"'
        mask = _QUOTED_VALUES_MASK if name in quoting else _mask(name, data_type)
        items.append(f"{mask.format(c=quoted)} as {quoted}" if mask else quoted)
    return "select\n    " + ",\n    ".join(items) + f'\nfrom {schema}."{table}"'


def _names(con: duckdb.DuckDBPyConnection, schema: str, table_type: str | None = None):
    where = " and table_type = ?" if table_type else ""
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            f"where table_schema = ? and table_catalog = current_database(){where} order by 1",
            [schema] + ([table_type] if table_type else []),
        ).fetchall()
    ]


def publish_masked_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """(Re)create ``analyst.<name>`` for every table and view of ``marts``.

    A view of a mart that is gone (dropped by hand after an upgrade retired it) is dropped
    too: left behind, it no longer answers, and the publish audit, which queries every view
    of the copy, then refused every night. Other views of the schema that answer are kept.
    """
    con.execute(f"create schema if not exists {MASKED_SCHEMA}")
    tables = _names(con, SOURCE_SCHEMA)
    for orphan in sorted(set(_names(con, MASKED_SCHEMA, "VIEW")) - set(tables)):
        try:
            con.execute(f'select * from {MASKED_SCHEMA}."{orphan}" limit 0')
        except duckdb.Error:
            con.execute(f'drop view {MASKED_SCHEMA}."{orphan}"')
    made = []
    for table in tables:
        sql = masked_select_sql(con, SOURCE_SCHEMA, table)
        con.execute(f'create or replace view {MASKED_SCHEMA}."{table}" as {sql}')
        made.append(f"{MASKED_SCHEMA}.{table}")
    return made
