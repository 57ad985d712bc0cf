"""Purchase and churn propensity: point-in-time training, calibrated scores, baselines.

The ``score`` stage of ``segmint run``. Importing this package is cheap (the Airflow DAG
imports the pipeline at parse time): scikit-learn, scipy and the warehouse are imported by
:func:`run_propensity` when it runs. See docs/propensity.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

    from segmint.config import Settings
    from segmint.stages import StageResult

__all__ = ["run_propensity"]


def run_propensity(settings: Settings, as_of: date) -> StageResult:
    """Train, evaluate, gate and score the purchase and churn models for ``as_of``."""
    from ml.propensity.stage import run_propensity as run

    return run(settings, as_of)
