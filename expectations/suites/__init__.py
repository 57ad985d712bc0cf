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

SUITE_MODULES = {
    "events": "expectations.suites.events",
    "crm": "expectations.suites.crm",
    "partitions": "expectations.suites.partitions",
}
