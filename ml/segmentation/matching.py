"""Stable segment identities across nightly refits.

Tonight's centroids are matched to stored ones by the Hungarian assignment
(:func:`scipy.optimize.linear_sum_assignment`) on Euclidean distance in tonight's scaled
space: first to the night's own earlier run (a rerun keeps its ids), then to the previous
run, then to the next later night (a backfill takes the ids later nights already use). The
stored centroids are in the log-feature space (before scaling) and are scaled with tonight's
scaler, so both sets are compared in one consistent space even though the scaler is refitted
every night.
When the stage passes ``shared`` (a shop where one segment holds most customers), a previous
segment farther than the threshold is still continued by a cluster holding mostly its
customers (:func:`same_customers`): such a crowd shrinks the scale the distance is measured in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class Match:
    segment_ids: list[int]  # one per new centroid, same order
    # Distance to the previous run's centroid of the same id; None if the id was not active
    # in the previous run (a new id, or one taken from another night).
    distances: list[float | None]
    kept: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    # Per new centroid, the label of the reference its id came from (None: a new id).
    sources: list[str | None] = field(default_factory=list)


def centroid_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between the rows of ``a`` and of ``b``."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))


def same_customers(shared: np.ndarray) -> np.ndarray:
    """Pairs (new cluster, previous segment) holding mostly the same customers: more than
    half of each side's customers that the other night also segmented are in both.

    Distances alone fail where one crowd dominates the scaling: 500 000 newsletter
    subscribers who never visited, beside 5 000 visitors, shrink every feature's standard
    deviation to a sliver, so a visitors' segment moves by 5-12 "standard deviations" a
    night without losing a customer, and every segment was retired every night."""
    prev_total = shared.sum(axis=0, keepdims=True)
    new_total = shared.sum(axis=1, keepdims=True)
    return (shared * 2 > prev_total) & (shared * 2 > new_total)


@dataclass
class Reference:
    """Segments already stored for some night, as a source of ids: centroids in tonight's
    scaled space, their ids, and a label saying which night they are (for the metrics)."""

    label: str
    centroids: np.ndarray
    ids: Sequence[int]


def match_segments(
    new_centroids: np.ndarray,
    prev_centroids: np.ndarray | None,
    prev_ids: Sequence[int],
    max_distance: float,
    next_id: int,
    order: Sequence[int] | None = None,
    *,
    before: Sequence[Reference] = (),
    after: Sequence[Reference] = (),
    shared: np.ndarray | None = None,
) -> Match:
    """Give each new centroid a segment id.

    The new centroids are matched, in turn, to the centroids of ``before`` (the night's own
    earlier run, when it is rerun), of the previous run, then of ``after`` (the next later
    night, for a backfill). Each step is a Hungarian assignment between the new centroids
    still without an id and the step's ids not given yet; a pair no farther apart than
    ``max_distance`` takes the id, and so does a lone new centroid paired with a step's lone
    centroid (one segment on both nights is everyone on both). Every other new centroid gets
    a fresh id from ``next_id`` upwards (skipping ids given by a step), handed out in
    ``order`` (default: as given; the stage passes largest segment first). Previous ids
    given to no centroid are retired.
    ``shared[r, c]`` (optional) counts the customers in new cluster ``r`` tonight who were in
    the previous run's segment ``prev_ids[c]``. A previous-run pair farther apart than
    ``max_distance`` still takes the id when they hold mostly the same customers: more than
    half of the previous segment's customers still here are in the cluster, and more than
    half of the cluster's customers who were segmented before came from that segment.
    ``distances`` are to the previous run's centroid of the same id (its drift), whichever
    step gave the id.
    """
    new_centroids = np.asarray(new_centroids, dtype=float)
    k = len(new_centroids)
    ids: list[int | None] = [None] * k
    sources: list[str | None] = [None] * k
    prev_ids = [int(i) for i in prev_ids]
    steps = list(before)
    if prev_centroids is not None and len(prev_ids):
        steps.append(Reference("previous", np.asarray(prev_centroids, dtype=float), prev_ids))
    steps.extend(after)
    for step in steps:
        given = {i for i in ids if i is not None}
        rows_open = [r for r in range(k) if ids[r] is None]
        cols_open = [c for c, i in enumerate(step.ids) if int(i) not in given]
        if not rows_open or not cols_open:
            continue
        cost = centroid_distances(
            new_centroids[rows_open], np.asarray(step.centroids, dtype=float)[cols_open]
        )
        rows, cols = linear_sum_assignment(cost)
        # One segment tonight and one in the reference: both are the whole shop, whatever
        # its centroid did. A young shop's centroid moves by several standard deviations a
        # night (tenure and recency grow, a handful of customers), and the distance rule
        # retired "All customers" every night for a new id with everyone "moved".
        whole_shop = k == 1 and len(step.ids) == 1
        same = np.zeros(cost.shape, dtype=bool)
        if step.label == "previous" and shared is not None:
            same = same_customers(np.asarray(shared, dtype=float))[np.ix_(rows_open, cols_open)]
        for r, c in zip(rows, cols, strict=True):
            if whole_shop or cost[r, c] <= max_distance or same[r, c]:
                ids[rows_open[r]] = int(step.ids[cols_open[c]])
                sources[rows_open[r]] = step.label
    kept = [i for i in ids if i is not None]
    new: list[int] = []
    for r in order if order is not None else range(k):
        if ids[r] is None:
            # next_id counts past the ids of the other nights; the night's own earlier run
            # (a rerun with another k) may have handed out ids from there on too.
            while next_id in kept:
                next_id += 1
            ids[r] = next_id
            new.append(next_id)
            next_id += 1
    dists: list[float | None] = [None] * k
    if prev_centroids is not None and len(prev_ids):
        shift = centroid_distances(new_centroids, prev_centroids)
        column = {i: c for c, i in enumerate(prev_ids)}
        dists = [float(shift[r, column[i]]) if i in column else None for r, i in enumerate(ids)]
    retired = [i for i in prev_ids if i not in set(ids)]
    return Match(
        segment_ids=[int(i) for i in ids],  # type: ignore[arg-type]
        distances=dists,
        kept=sorted(kept),
        new=new,
        retired=sorted(retired),
        sources=sources,
    )
