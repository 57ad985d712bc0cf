"""Next-best products per customer: implicit ALS with cold-start fallbacks, gated on popularity.

The ``recommend`` stage of ``segmint run``. Importing this package is cheap (the Airflow DAG
imports the pipeline at parse time): numpy, scipy and the warehouse are imported by
:func:`run_recommendations` when it runs. See docs/recommendations.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

    from segmint.config import Settings
    from segmint.stages import StageResult

__all__ = ["run_recommendations"]


def run_recommendations(settings: Settings, as_of: date) -> StageResult:
    """Evaluate against popularity, gate, and write the top-N lists for ``as_of``."""
    from ml.recommendations.stage import run_recommendations as run

    return run(settings, as_of)
