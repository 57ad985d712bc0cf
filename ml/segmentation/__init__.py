"""Nightly K-Means customer segmentation with stable, named segments.

Importing this package is cheap: scikit-learn, scipy and pandas are imported only when
:func:`run_segmentation` runs (the Airflow DAG imports the pipeline at parse time).
See docs/segmentation.md.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segmint.config import Settings
    from segmint.stages import StageResult

__all__ = ["run_segmentation"]


def run_segmentation(settings: Settings, as_of: date) -> StageResult:
    """The ``segment`` stage: segment ``marts.customer_features`` of ``as_of`` and write
    ``ml.customer_segments`` and its companion tables in one transaction."""
    from ml.segmentation.stage import run_segmentation as run

    return run(settings, as_of)
