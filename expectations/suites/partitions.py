"""GX suite for the quality gate: batch-level expectations over one row per partition.

The ``validate`` stage builds a frame with one row per (source, partition) to judge, from
``ops.load_manifest`` and ``ops.validation_runs``, and runs this suite on it; the failing
partitions (routed by ``unexpected_index_column_names``) fail the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segmint.config import IngestSettings

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

SUITE_NAME = "segmint_partitions"


def build_suite(settings: IngestSettings) -> ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    def gate(rule: str, description: str) -> dict:
        return {"meta": {"rule": rule, "level": "batch"}, "description": description}

    return gx.ExpectationSuite(
        name=SUITE_NAME,
        expectations=[
            # Judged only for partitions with at least min_quarantined_rows quarantined.
            gxe.ExpectColumnValuesToBeBetween(
                column="quarantined_share",
                max_value=settings.max_quarantine_share,
                row_condition=Column("rows_quarantined") >= settings.min_quarantined_rows,
                **gate(
                    "quarantined_share",
                    f"at most {settings.max_quarantine_share:.1%} of its rows quarantined"
                    + (
                        f" (when at least {settings.min_quarantined_rows} are)"
                        if settings.min_quarantined_rows > 1
                        else ""
                    ),
                ),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="no_identity_share",
                max_value=settings.max_no_identity_share,
                **gate(
                    "no_identity_share",
                    f"at most {settings.max_no_identity_share:.1%} of its events "
                    "without customer_id or anonymous_id",
                ),
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="rows_read",
                min_value=settings.min_rows_per_partition,
                max_value=settings.max_rows_per_partition,
                **gate(
                    "row_count",
                    f"between {settings.min_rows_per_partition} and "
                    f"{settings.max_rows_per_partition} rows",
                ),
            ),
            gxe.ExpectColumnValuesToBeNull(
                column="failed_files", **gate("files_readable", "every file readable")
            ),
        ],
    )
