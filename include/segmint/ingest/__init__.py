"""Ingestion: landing files -> typed, validated, deduplicated ``raw.*`` rows, and the gate.

``run_ingest`` is the pipeline's ``ingest`` stage, ``check_quality_gate`` its ``validate``
stage. Both import DuckDB only; Great Expectations is imported when a batch is validated.
"""

from __future__ import annotations

from segmint.ingest.gate import check_quality_gate
from segmint.ingest.loader import run_ingest

__all__ = ["check_quality_gate", "run_ingest"]
