"""Stable segment identities across nightly refits.

Tonight's centroids are matched to the previous run's by the Hungarian assignment
(:func:`scipy.optimize.linear_sum_assignment`) on Euclidean distance in tonight's scaled
space. The previous centroids are stored in the log-feature space (before scaling) and are
scaled with tonight's scaler, so both sets are compared in one consistent space even though
the scaler is refitted every night.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class Match:
    segment_ids: list[int]  # one per new centroid, same order
    distances: list[float | None]  # distance to the matched previous centroid, None if new
    kept: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)


def centroid_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between the rows of ``a`` and of ``b``."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))


def match_segments(
    new_centroids: np.ndarray,
    prev_centroids: np.ndarray | None,
    prev_ids: Sequence[int],
    max_distance: float,
    next_id: int,
    order: Sequence[int] | None = None,
) -> Match:
    """Give each new centroid a segment id.

    A new centroid assigned to a previous one no farther than ``max_distance`` takes its id;
    every other new centroid gets a fresh id from ``next_id`` upwards, handed out in
    ``order`` (default: as given; the stage passes largest segment first); previous ids left
    without a partner are retired.
    """
    k = len(new_centroids)
    ids: list[int | None] = [None] * k
    dists: list[float | None] = [None] * k
    prev_ids = list(prev_ids)
    if prev_centroids is not None and len(prev_ids):
        cost = centroid_distances(new_centroids, prev_centroids)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if cost[r, c] <= max_distance:
                ids[r] = int(prev_ids[c])
                dists[r] = float(cost[r, c])
    kept = [i for i in ids if i is not None]
    new: list[int] = []
    for r in order if order is not None else range(k):
        if ids[r] is None:
            ids[r] = next_id
            new.append(next_id)
            next_id += 1
    retired = [i for i in prev_ids if i not in set(kept)]
    return Match(
        segment_ids=[int(i) for i in ids],  # type: ignore[arg-type]
        distances=dists,
        kept=sorted(kept),
        new=new,
        retired=sorted(retired),
    )
