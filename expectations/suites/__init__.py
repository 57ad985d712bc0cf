"""GX expectation suites, one module per landing source, defined as code.

Each module has ``build_suite(settings) -> great_expectations.ExpectationSuite``. Every
expectation carries ``meta``:

- ``rule``: a stable name, stored in ``ops.validation_runs.rule``;
- ``level``: ``record`` (an unexpected row is quarantined), ``warning`` (the row is kept and
  ``meta["field"]`` is nulled) or ``batch`` (decides the quality gate only);

and ``description``: the reason a person reads in ``ops.quarantine.reasons``.

The suites run on the pandas engine over the typed batch that :mod:`segmint.ingest` builds
in DuckDB: typed columns named like the contract, plus ``<field>_text`` (the trimmed text as
it arrived) where telling "missing" from "invalid" needs it, ``identity`` (customer_id, else
anonymous_id) and ``_line`` (the record's line in its file).
"""

from __future__ import annotations

from typing import Any

SUITE_MODULES = {
    "events": "expectations.suites.events",
    "crm": "expectations.suites.crm",
    "partitions": "expectations.suites.partitions",
}


def id_expectations() -> list[Any]:
    """The record rules on the shape of every id field, the same in each source's suite: the
    loader lists the offending id fields of a record in ``_id_not_scalar``, ``_id_boolean``,
    ``_id_rounded``, ``_id_control`` and ``_id_too_long``."""
    import great_expectations.expectations as gxe

    from segmint.ingest.contract import ID_MAX_LENGTH

    def rec(rule: str, description: str) -> dict:
        return {"meta": {"rule": rule, "level": "record"}, "description": description}

    return [
        # {"id": "c9"} read as text would be an id nobody has.
        gxe.ExpectColumnValuesToBeNull(
            column="_id_not_scalar",
            **rec("ids_are_scalars", "an id field holds a JSON object or array, not an id"),
        ),
        # {"customer_id": true}: a boolean read as text would be the id 'true', every such
        # record one customer.
        gxe.ExpectColumnValuesToBeNull(
            column="_id_boolean",
            **rec("ids_not_boolean", "an id field holds a JSON true or false, not an id"),
        ),
        # 7.21045E+12: a long id Excel wrote in scientific notation, its digits lost, or a
        # float beyond 2**53.
        gxe.ExpectColumnValuesToBeNull(
            column="_id_rounded",
            **rec(
                "ids_not_rounded",
                "an id field holds a long number written as a float (Excel's 7.21045E+12, "
                "JSON's 1.5e22 or 12345678901234567890123.0): its last digits are lost, and two "
                "ids may now be one",
            ),
        ),
        # 'c42\r' (a carriage return kept in a quoted CSV cell), a tab, NUL, ESC, a C1
        # control (U+0080-U+009F: Windows-1252 bytes read as Latin-1): invisible, yet another
        # id than 'c42'.
        gxe.ExpectColumnValuesToBeNull(
            column="_id_control",
            **rec(
                "ids_without_control_characters",
                "an id field holds a control character (a tab, a line break, NUL, ESC, DEL or "
                "a C1 control such as NEL): invisible, it makes another id of the same one; "
                "clean the ids at the source",
            ),
        ),
        # A document pasted into a cell is no id.
        gxe.ExpectColumnValuesToBeNull(
            column="_id_too_long",
            **rec(
                "ids_not_too_long",
                f"an id field is longer than {ID_MAX_LENGTH:,} characters: a text pasted into "
                "it, not an id",
            ),
        ),
    ]
