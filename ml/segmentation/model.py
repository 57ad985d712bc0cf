"""The segmentation of one as-of date as a pure function: frames in, frames out.

:func:`fit_segments` takes the customer features and what is known of the previous run and
returns every output table (without run ids), the fitted Pipeline and the run's metrics. It
touches neither the warehouse nor the file system; :mod:`ml.segmentation.stage` does that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline

from ml.segmentation.columns import AGEING_FEATURES
from ml.segmentation.features import (
    FEATURES,
    CrowdKMeans,
    assemble,
    assign,
    build_preprocessor,
    make_kmeans,
    nearest,
    transformed_names,
)
from ml.segmentation.kselect import choose_k, distinct_rows, keep_k, max_segments
from ml.segmentation.matching import Match, Reference, centroid_distances, match_segments
from ml.segmentation.personas import name_segments
from ml.segmentation.profiles import (
    psi,
    psi_noise_limit,
    reference_distribution,
    segment_profiles,
    segment_transitions,
)
from ml.segmentation.runs import PreviousRun, StoredSegments
from segmint.config import SegmentationSettings
from segmint.stages import plural


@dataclass
class SegmentationOutput:
    pipeline: Pipeline
    assignments: pd.DataFrame
    profiles: pd.DataFrame
    k_selection: pd.DataFrame
    drift: pd.DataFrame
    transitions: pd.DataFrame
    metrics: dict[str, Any]
    warnings: list[str]
    timings: dict[str, float]


def _stored_centroids(
    segments: pd.DataFrame | None, names: list[str], what: str
) -> tuple[np.ndarray | None, list[int], dict[int, str], str | None]:
    """Stored active centroids (log-feature space, in ``names`` order), ids, names."""
    if segments is None or segments.empty:
        return None, [], {}, None
    rows = [json.loads(c) for c in segments["centroid"]]
    missing = sorted({n for n in names for r in rows if n not in r})
    if missing:
        return (
            None,
            [],
            {},
            f"{what} used other features (missing {', '.join(missing)}); "
            "its segment ids are not matched",
        )
    ids = [int(i) for i in segments["segment_id"]]
    centroids = np.asarray([[r[n] for n in names] for r in rows], dtype=float)
    return centroids, ids, dict(zip(ids, segments["segment_name"], strict=True)), None


def _retired_warning(
    row: Any,
    match: Match,
    centroids: np.ndarray,
    prev_scaled: np.ndarray,
    prev_ids: list[int],
    max_distance: float,
) -> str:
    """Why a previous segment is retired: no cluster near it tonight, or the cluster near it
    has another id (the one a rerun's earlier run or the next night gave it, when nights are
    built out of order; or another previous segment's, nearer to it)."""
    head = f"segment {row.segment_id} '{row.segment_name}' retired: "
    gap = centroid_distances(prev_scaled[[prev_ids.index(row.segment_id)]], centroids)[0]
    nearest = int(gap.argmin())
    if gap[nearest] > max_distance:
        return f"{head}no cluster within {max_distance} of its centroid tonight"
    why = {
        "same night": "the id this night's earlier run gave it",
        "next night": "the id the next night's run gave it",
        "previous": "that previous segment is nearer to it",
        None: "a new id: the assignment paired the centroids otherwise",
    }[match.sources[nearest]]
    return (
        f"{head}tonight's nearest cluster, {gap[nearest]:.3f} from it, is segment "
        f"{match.segment_ids[nearest]} ({why})"
    )


def _shared_customers(
    frame: pd.DataFrame,
    labels: np.ndarray,
    k: int,
    previous: PreviousRun | None,
    prev_ids: list[int],
) -> np.ndarray | None:
    """Customers in each (cluster tonight, previous segment) pair, for matching."""
    if previous is None or not prev_ids or previous.assignments.empty:
        return None
    before = previous.assignments.set_index("customer_id")["segment_id"]
    was = pd.Series(frame["customer_id"].to_numpy()).map(before)
    column = {int(i): c for c, i in enumerate(prev_ids)}
    col = was.map(column).to_numpy(dtype=float, na_value=np.nan)
    known = np.isfinite(col)
    shared = np.zeros((k, len(prev_ids)))
    np.add.at(shared, (labels[known], col[known].astype(int)), 1)
    return shared


def fit_segments(
    frame: pd.DataFrame,
    cfg: SegmentationSettings,
    as_of: date,
    previous: PreviousRun | None = None,
    next_id: int = 1,
    features: tuple[str, ...] = FEATURES,
    same_night: StoredSegments | None = None,
    later: StoredSegments | None = None,
    vars_changed: str | None = None,
) -> SegmentationOutput:
    """Segment ``frame`` (one row per customer, sorted by ``customer_id``).

    Segment ids come, in this order, from ``same_night`` (the segments an earlier run of
    ``as_of`` stored: a rerun keeps its ids), ``previous`` and ``later`` (the next night
    after ``as_of`` that has segments: a backfill takes the ids later nights use); clusters
    that match none of them get new ids from ``next_id``. Everything else (k, the fit's
    start, drift, transitions, retired segments) is measured against ``previous`` only.
    ``vars_changed``: the dbt vars the features are built with that changed since
    ``previous`` (in words): k is searched again.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=cfg.threads or None):
        return _fit_segments(
            frame, cfg, as_of, previous, next_id, features, same_night, later, vars_changed
        )


def _fit_segments(
    frame: pd.DataFrame,
    cfg: SegmentationSettings,
    as_of: date,
    previous: PreviousRun | None,
    next_id: int,
    features: tuple[str, ...],
    same_night: StoredSegments | None,
    later: StoredSegments | None,
    vars_changed: str | None = None,
) -> SegmentationOutput:
    timings: dict[str, float] = {}
    warnings: list[str] = []
    t = perf_counter()

    pre = build_preprocessor(features)
    X = pre.fit_transform(frame)
    names = transformed_names(pre)
    scaler = pre.named_steps["scale"]
    timings["preprocess_s"] = perf_counter() - t

    prev_unscaled, prev_ids, prev_names, problem = _stored_centroids(
        previous.segments if previous is not None else None,
        names,
        f"previous run {previous.run_id}" if previous is not None else "",
    )
    if problem:
        warnings.append(problem)
    prev_scaled = scaler.transform(prev_unscaled) if prev_unscaled is not None else None
    # Other stored segments to take ids from: the night's own earlier run, the next night.
    references: dict[str, Reference] = {}
    stored_names: dict[str, dict[int, str]] = {"previous": prev_names}
    for label, stored in (("same night", same_night), ("next night", later)):
        if stored is None:
            continue
        unscaled, ids, ref_names, problem = _stored_centroids(
            stored.segments, names, f"the run of {stored.as_of_date}"
        )
        if problem:
            warnings.append(problem)
        if unscaled is not None:
            references[label] = Reference(label, scaler.transform(unscaled), ids)
            stored_names[label] = ref_names

    # The previous run's crowd (a segment kept whole, the others segmented in their own
    # space): its position among the previous centroids, so that a night without a search
    # identifies the crowd, and scales the others, as the night that searched did.
    crowd_at = (
        prev_ids.index(previous.crowd_segment_id)
        if previous is not None and previous.crowd_segment_id in prev_ids
        else None
    )

    t = perf_counter()
    every = cfg.k_search_every_days
    search_reason = None
    if previous is None or not prev_ids:
        search_reason = "no previous run to take k from"
    elif vars_changed:  # the features mean something else: the previous k was not for them
        search_reason = (
            f"feature definition changed since {previous.run_id} (dbt vars: {vars_changed})"
        )
    elif every <= 0:
        search_reason = "k_search_every_days = 0"
    elif previous.k_searched_as_of is None:
        search_reason = f"previous run {previous.run_id} does not say when k was searched"
    elif previous.crowd_unrecorded:
        # Before 2026-12-07 a crowd's model scaled everyone together and did not record
        # which segment was the crowd: its space cannot be rebuilt, so search again.
        search_reason = (
            f"previous run {previous.run_id} segmented a crowd without recording it (before "
            "2026-12-07, the others scaled by everyone's spread)"
        )
    elif (as_of - previous.k_searched_as_of).days >= every:
        search_reason = f"k last searched on {previous.k_searched_as_of}"
    elif not cfg.k_min <= len(prev_ids) <= cfg.k_max and cfg.fixed_k != len(prev_ids):
        search_reason = f"previous k={len(prev_ids)} is outside {cfg.k_min}..{cfg.k_max}"
    elif cfg.fixed_k is not None and cfg.fixed_k != len(prev_ids):
        search_reason = f"fixed_k={cfg.fixed_k} differs from the previous k={len(prev_ids)}"
    elif distinct_rows(X) < len(prev_ids):
        search_reason = f"fewer distinct profiles tonight than the previous k={len(prev_ids)}"
    elif max_segments(len(X), cfg.min_segment_customers) < len(prev_ids):
        search_reason = (
            f"{len(X)} customers are too few for the previous k={len(prev_ids)} "
            f"(min_segment_customers = {cfg.min_segment_customers})"
        )
    elif crowd_at is not None:
        # The previous crowd's rule tonight: a crowd of nobody, or too few others for the
        # others' segments (the customers outside it erased), cannot keep that model.
        in_crowd = int((nearest(X, prev_scaled)[0] == crowd_at).sum())
        if not in_crowd or len(X) - in_crowd < len(prev_ids) - 1:
            search_reason = (
                f"the previous run's crowd (segment {previous.crowd_segment_id}) holds "
                f"{in_crowd} of {len(X)} customers tonight, too "
                f"{'few' if not in_crowd else 'many'} to keep its k={len(prev_ids)}"
            )
    if search_reason is None:
        assert previous is not None and previous.k_searched_as_of is not None
        choice = keep_k(
            X,
            len(prev_ids),
            prev_scaled,
            crowd=crowd_at,
            random_state=cfg.random_state,
            search_sample=cfg.k_search_sample,
            silhouette_sample=cfg.silhouette_sample,
            reason=(
                f"previous run's k={len(prev_ids)} kept without a search (k searched on "
                f"{previous.k_searched_as_of}; every {plural(every, 'day')})"
            ),
        )
        k_searched_as_of = previous.k_searched_as_of
    else:
        k_searched_as_of = as_of
        choice = choose_k(
            X,
            cfg.k_min,
            cfg.k_max,
            random_state=cfg.random_state,
            n_init=cfg.n_init,
            search_sample=cfg.k_search_sample,
            silhouette_sample=cfg.silhouette_sample,
            fixed_k=cfg.fixed_k,
            silhouette_tolerance=cfg.silhouette_tolerance,
            previous_k=len(prev_ids) or None,
            min_segment_customers=cfg.min_segment_customers,
        )
    timings["k_search_s"] = perf_counter() - t
    if cfg.fixed_k is not None and choice.k != cfg.fixed_k:
        warnings.append(choice.reason)

    # Final fit on every row. With yesterday's number of segments, start from yesterday's
    # centroids (in tonight's scaled space): the same local optimum is found again when the
    # data barely moved, which keeps segments stable. Otherwise start from the search fit.
    # A crowd (found by tonight's search, or the previous run's on a night that keeps its
    # k) stays one segment and the others are segmented in their own space (CrowdKMeans).
    t = perf_counter()
    k = choice.k
    searched_crowd = isinstance(choice.models.get(k), CrowdKMeans)
    init = prev_scaled if prev_scaled is not None and len(prev_ids) == k else None
    crowd = crowd_at if init is not None else None
    if search_reason is not None and not searched_crowd:
        crowd = None  # tonight's search found no crowd
    if searched_crowd and crowd is None:
        init, crowd = choice.models[k].cluster_centers_, choice.models[k].crowd
    if init is None:
        init = choice.models[k].cluster_centers_
    kmeans: KMeans | CrowdKMeans | None = None
    if crowd is not None:
        try:
            kmeans = CrowdKMeans(np.asarray(init), crowd, cfg.random_state).fit(X)
        except ValueError as exc:
            warnings.append(
                f"the crowd was not kept apart tonight ({exc}): one K-Means of everyone"
            )
    if kmeans is None:
        kmeans = make_kmeans(k, cfg.random_state, cfg.n_init, init=np.asarray(init)).fit(X)
    if search_reason is None and isinstance(kmeans, CrowdKMeans):
        choice.reason += (
            f"; segment {previous.crowd_segment_id} kept whole as a crowd, the others "  # type: ignore[union-attr]
            "scaled by their own spread"
        )
    labels, distance = assign(kmeans, X)
    timings["final_fit_s"] = perf_counter() - t

    t = perf_counter()
    sizes = np.bincount(labels, minlength=k)
    largest_first = np.argsort(-sizes, kind="stable")
    buyer_share = never_visited_share = returning_share = None
    if "order_count" in frame and "sessions_30d" in frame:
        # Came back: ordered more than once, or visited in the last 30 days ("Regulars").
        returning = (frame["order_count"].fillna(0).to_numpy() > 1) | (
            frame["sessions_30d"].fillna(0).to_numpy() > 0
        )
        returning_share = np.bincount(labels, weights=returning, minlength=k) / np.maximum(sizes, 1)
    if "order_count" in frame:
        bought = frame["order_count"].fillna(0).to_numpy() > 0
        buyer_share = np.bincount(labels, weights=bought, minlength=k) / np.maximum(sizes, 1)
        if "days_since_last_visit" in frame:
            # Never seen on the site (no session at all) and never ordered.
            never = ~bought & frame["days_since_last_visit"].isna().to_numpy()
            never_visited_share = np.bincount(labels, weights=never, minlength=k) / np.maximum(
                sizes, 1
            )
    # A segment holding most customers sets the standard deviations the match distance is
    # measured in, and they say little about the other segments: match those by their
    # customers too. A shop without such a crowd matches by distance alone.
    # After a feature redefinition (a dbt var the features are built with changed since
    # the previous run) the stored centroids are in the old definition's units: a segment
    # whose customers all stayed together moved "beyond the threshold" and was retired for
    # a new id, every customer counted as moved. Its customers still say which it is.
    shared = (
        _shared_customers(frame, labels, k, previous, prev_ids)
        if sizes.max() * 2 > len(X) or vars_changed
        else None
    )
    match = match_segments(
        kmeans.cluster_centers_,
        prev_scaled,
        prev_ids,
        cfg.match_max_distance,
        next_id,
        order=largest_first,
        before=[references[label] for label in ("same night",) if label in references],
        after=[references[label] for label in ("next night",) if label in references],
        shared=shared,
    )
    # Names and descriptions compare each segment with the customers it was segmented
    # among: with a crowd, the others with the others alone (their own scaler), the crowd
    # with everyone (docs/segmentation.md, "Personas").
    crowd_model = kmeans if isinstance(kmeans, CrowdKMeans) else None
    naming = name_segments(
        kmeans.cluster_centers_ if crowd_model is None else crowd_model.own_centers(),
        names,
        match.segment_ids,
        kept_names={
            i: stored_names[src][i]
            for i, src in zip(match.segment_ids, match.sources, strict=True)
            if src is not None
        },
        pinned=cfg.pinned_names,
        varying=[n for n, v in zip(names, scaler.var_, strict=True) if v > 0],
        buyer_share=buyer_share,
        never_visited_share=never_visited_share,
        returning_share=returning_share,
        crowd=None if crowd_model is None else crowd_model.crowd,
        others_varying=(
            None
            if crowd_model is None
            else [n for n, v in zip(names, crowd_model.others_scaler_.var_, strict=True) if v > 0]
        ),
    )
    cluster_ids = np.asarray(match.segment_ids)
    cluster_names = np.asarray(naming.names, dtype=object)
    segment_id = cluster_ids[labels]

    # The quantile is each segment's own: over all distances, a crowd of identical
    # customers (a CRM of newsletter subscribers who never visited) held the quantile at
    # its own distance, and every customer of every other segment was beyond it, leaving
    # those segments' profiles without a single customer.
    thresholds = np.zeros(len(cluster_ids))
    for c in range(len(cluster_ids)):  # k segments, not data rows
        members = distance[labels == c]
        if len(members) * (1 - cfg.outlier_quantile) < 1:
            # Beyond the 0.99 quantile of fewer than 100 customers is less than one
            # customer, yet the quantile falls below the largest distance: the farthest
            # customer was always flagged, one of three in a three-customer segment.
            thresholds[c] = float(members.max()) if len(members) else 0.0
        else:
            thresholds[c] = float(np.quantile(members, cfg.outlier_quantile))
    is_outlier = distance > thresholds[labels]

    assignments = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "segment_id": segment_id.astype("int32"),
            "segment_name": cluster_names[labels],
            "distance": distance,
            "is_outlier": is_outlier,
        }
    )

    centroids_unscaled = scaler.inverse_transform(kmeans.cluster_centers_)
    segments = pd.DataFrame(
        {
            "segment_id": cluster_ids.astype("int32"),
            "segment_name": naming.names,
            "description": naming.descriptions,
            # 'kept': active in the previous run; 'new': not (even when its id came from the
            # night's earlier run or a later night), so a rerun writes what the run did.
            "status": ["kept" if d is not None else "new" for d in match.distances],
            "is_pinned": naming.is_pinned,
            "centroid_shift": [np.nan if d is None else d for d in match.distances],
            "centroid": [
                json.dumps({n: round(float(v), 6) for n, v in zip(names, row, strict=True)})
                for row in centroids_unscaled
            ],
        }
    )
    stats = segment_profiles(frame, segment_id, is_outlier)
    profiles = segments.merge(stats, on="segment_id", how="left")
    if match.retired and previous is not None:
        retired = previous.segments[previous.segments["segment_id"].isin(match.retired)]
        retired = retired[["segment_id", "segment_name", "description", "centroid"]].assign(
            status="retired", is_pinned=False, customers=0, outliers=0, share=0.0
        )
        profiles = pd.concat([profiles, retired], ignore_index=True)
        warnings.extend(
            _retired_warning(
                row, match, kmeans.cluster_centers_, prev_scaled, prev_ids, cfg.match_max_distance
            )
            for row in retired.itertuples()  # a handful of segments, not data rows
        )
    profiles = profiles.sort_values("segment_id").reset_index(drop=True)
    timings["profiles_s"] = perf_counter() - t

    # Drift: centroid shift of kept segments, PSI of every feature against the last run.
    t = perf_counter()
    raw = pre.named_steps["fill"].unfilled(frame)  # PSI on values before any fill rule
    reference = reference_distribution(raw)
    # Across a feature redefinition nothing is comparable: a feature's PSI and a centroid's
    # shift measure the new definition, not the customers (mobile_device_types
    # ["mobile", "tablet"] -> ["tablet"] warned "mobile_session_share_90d drifted: PSI 2.177").
    # No drift row tonight; the next night compares like with like.
    redefined = vars_changed is not None and previous is not None
    drift_rows = [
        {
            "kind": "centroid_shift",
            "segment_id": int(sid),
            "feature": None,
            "value": float(d),
            "is_warning": False,
        }
        for sid, d in zip(match.segment_ids, match.distances, strict=True)
        if d is not None and not redefined
    ]
    prev_reference = previous.reference if previous is not None and not redefined else {}
    prev_customers = len(previous.assignments) if previous is not None else 0
    noise_limits: dict[str, float] = {}
    for col in raw.columns:
        ref = prev_reference.get(col)
        if not ref or len(ref["shares"]) != len(ref["edges"]) + 2:
            continue  # not measured by the previous run (or stored in an older layout)
        if col in AGEING_FEATURES:  # everyone is older by the days between the runs
            elapsed = (as_of - previous.as_of_date).days  # type: ignore[union-attr]
            ref = {**ref, "edges": [e + elapsed for e in ref["edges"]]}
        value = psi(ref, raw[col].to_numpy())
        # Above the threshold and above what sampling alone reaches with these counts: a
        # shop of 150 customers warned "days_since_last_visit drifted: PSI 0.243" for 21 of
        # them visiting a day later than the night before (profiles.PSI_NOISE_ALPHA).
        noise = psi_noise_limit(ref, raw[col].to_numpy(), prev_customers)
        noise_limits[col] = noise
        is_warning = value > max(cfg.drift_psi_warning, noise)
        drift_rows.append(
            {
                "kind": "feature_psi",
                "segment_id": None,
                "feature": col,
                "value": value,
                "is_warning": is_warning,
            }
        )
        if is_warning:
            beyond = (
                f" and > {noise:.3f}, what sampling alone reaches with {prev_customers} and "
                f"{len(raw)} customers"
                if noise > cfg.drift_psi_warning
                else ""
            )
            warnings.append(
                f"feature {col} drifted: PSI {value:.3f} > {cfg.drift_psi_warning}{beyond} "
                f"since {previous.as_of_date}"  # type: ignore[union-attr]
            )
    drift_not_measured = None
    if redefined:
        assert previous is not None
        drift_not_measured = (
            f"the feature definition changed since {previous.run_id} (dbt vars: {vars_changed})"
        )
        warnings.append(
            f"segment drift not measured on {as_of}: {drift_not_measured}, so tonight's "
            f"features and those of {previous.as_of_date} measure different things (a "
            "feature's PSI or a centroid's shift would be the redefinition, not the "
            "customers); segments were matched to the previous ones by their customers as "
            "well, and the next night compares like with like"
        )
    drift = pd.DataFrame(
        drift_rows, columns=["kind", "segment_id", "feature", "value", "is_warning"]
    )
    drift["segment_id"] = drift["segment_id"].astype("Int32")
    transitions = segment_transitions(
        previous.assignments if previous is not None else None, assignments
    )
    timings["drift_s"] = perf_counter() - t

    chosen = choice.scores.loc[choice.scores["is_chosen"]].iloc[0]
    psi_values = drift.loc[drift["kind"] == "feature_psi", "value"]
    metrics = {
        "k": int(k),
        "k_reason": choice.reason,
        "elbow_k": choice.elbow_k,
        "silhouette": None if pd.isna(chosen["silhouette"]) else float(chosen["silhouette"]),
        "inertia": float(kmeans.inertia_),
        "candidates": choice.scores.drop(columns="is_chosen").to_dict("records"),
        "k_searched": search_reason is not None,
        "k_search_reason": search_reason,
        "k_searched_as_of": k_searched_as_of.isoformat(),
        "k_search_rows": choice.search_rows,
        "silhouette_rows": choice.silhouette_rows,
        "outlier_threshold": {
            str(i): t for i, t in zip(cluster_ids.tolist(), thresholds.tolist(), strict=True)
        },
        "outliers": int(is_outlier.sum()),
        "segments_kept": sorted(
            i for i, d in zip(match.segment_ids, match.distances, strict=True) if d is not None
        ),
        "segments_new": sorted(
            i for i, d in zip(match.segment_ids, match.distances, strict=True) if d is None
        ),
        "segments_retired": match.retired,
        # Per KMeans cluster: where its id came from ('same night', 'previous', 'next night'),
        # or None for a new id.
        "segment_id_sources": match.sources,
        "max_feature_psi": float(psi_values.max()) if len(psi_values) else None,
        "drift_not_measured": drift_not_measured,
        "feature_psi_noise_limit": noise_limits,
        "previous_run_id": previous.run_id if previous is not None else None,
        "segment_ids": [int(i) for i in cluster_ids],  # KMeans cluster index -> segment id
        # The segment kept whole as a crowd (the others scaled by their own spread), or None.
        "crowd_segment_id": (
            int(cluster_ids[kmeans.crowd]) if isinstance(kmeans, CrowdKMeans) else None
        ),
        "segment_names": naming.names,
        "feature_reference": reference,
    }
    return SegmentationOutput(
        pipeline=assemble(pre, kmeans),
        assignments=assignments,
        profiles=profiles,
        k_selection=choice.scores,
        drift=drift,
        transitions=transitions,
        metrics=metrics,
        warnings=warnings,
        timings=timings,
    )
