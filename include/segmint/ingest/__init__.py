"""Ingestion: landing files -> typed, validated, deduplicated ``raw.*`` rows, and the gate.

``run_ingest`` is the pipeline's ``ingest`` stage, ``check_quality_gate`` its ``validate``
stage. Both import DuckDB only; Great Expectations is imported when a batch is validated.
"""

from __future__ import annotations

import logging
from datetime import date

from segmint.config import Settings
from segmint.ingest import loader
from segmint.ingest.gate import check_quality_gate, judge_partitions
from segmint.stages import StageResult

__all__ = ["check_quality_gate", "run_ingest"]

log = logging.getLogger(__name__)


def run_ingest(settings: Settings, as_of: date, reload_since: date | None = None) -> StageResult:
    """Load the landing files (:func:`segmint.ingest.loader.run_ingest`); when any row was
    read, GX is imported already, so run the gate's partition suite here too and store its
    verdicts for the ``validate`` stage, which then need not import GX itself.
    ``reload_since``: see :func:`segmint.ingest.loader.run_ingest`."""
    result = loader.run_ingest(settings, as_of, reload_since)
    if result.rows_in:
        judged = judge_partitions(settings, as_of)
        log.info("ingest: partition suite judged %d partition(s) for the gate", judged)
        result.details["partitions_judged"] = judged
    return result
