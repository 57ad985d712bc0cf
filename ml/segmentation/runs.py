"""What the segment stage reads of earlier runs: pandas frames, no scikit-learn."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd


@dataclass
class PreviousRun:
    """What tonight needs to know of the last run before it."""

    as_of_date: date
    run_id: str
    # Active segments: segment_id, segment_name, centroid (JSON, log-feature space).
    segments: pd.DataFrame
    # customer_id, segment_id, segment_name.
    assignments: pd.DataFrame
    # Feature reference distribution (for PSI), from that run's ml.model_runs metrics.
    reference: dict[str, Any] = field(default_factory=dict)
    # The last night whose run searched k (None: unknown, search tonight).
    k_searched_as_of: date | None = None
    # The dbt vars its features were built with (None: not recorded, before 2026-12-07).
    feature_vars: dict[str, str] | None = None
    # The segment its model kept whole as a crowd, the others scaled by their own spread.
    crowd_segment_id: int | None = None
    # It segmented a crowd before 2026-12-07 (everyone scaled together) and did not record
    # which segment that was: its space cannot be rebuilt, so k is searched again.
    crowd_unrecorded: bool = False


@dataclass
class StoredSegments:
    """Active segments already stored for another night (or the same night's earlier run),
    to take segment ids from."""

    as_of_date: date
    # segment_id, segment_name, centroid (JSON, log-feature space).
    segments: pd.DataFrame
