"""Reproducible persona names and one-sentence descriptions for segments.

A segment's centroid in the scaled space is a vector of z-scores: how far the segment sits
from the population mean on each feature, in standard deviations (of the log-transformed
feature where the feature is logged). With a crowd kept whole (``features.CrowdKMeans``),
the other segments' z-scores are among the other customers alone, the crowd's among
everyone (:func:`name_segments`). Each persona below scores a centroid with fixed
weights (a weighted mean of z-scores); segments that need a name get distinct personas by
the Hungarian assignment maximising the total score. Same centroids, same names.

Precedence: a name pinned in settings (``[segmentation] pinned_names = {"3" = "VIP"}``)
wins; then a segment matched to the previous run keeps its name; then the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

# name -> weights over features (z-scores of the centroid). Features absent from the model
# are ignored. "Regulars" has no weights: a fixed score that wins when nothing else fits.
# "Never visited" has none either: it is a fact, not a profile (NEVER_VISITED below).
PERSONAS: dict[str, dict[str, float]] = {
    "Champions": {
        "order_count": 1.0,
        "avg_order_value": 1.0,
        "recency_days": -1.0,
        "tenure_days": 0.5,
    },
    "Bargain hunters": {
        "searches_90d": 1.0,
        "searches_per_session_90d": 1.0,
        "email_clicks_90d": 1.0,
        "avg_order_value": -1.0,
    },
    "Window shoppers": {
        "pages_per_session_30d": 1.0,
        "avg_session_duration_s_30d": 1.0,
        "mobile_session_share_90d": 0.5,
        "order_count": -1.0,
    },
    "New customers": {"tenure_days": -2.0, "recent_session_share": 0.5},
    "Lapsing": {
        "recent_session_share": -1.0,
        "days_since_last_visit": 1.0,
        "recency_days": 0.5,
        "order_count": 0.25,
    },
    "Occasional buyers": {
        "sessions_90d": -1.0,
        "days_since_last_visit": 0.5,
        "order_count": -0.25,
        "tenure_days": 0.25,
    },
    "Prospects": {"order_count": -1.0, "tenure_days": -0.5},
    "Dormant": {
        "sessions_90d": -1.0,
        "days_since_last_visit": 1.0,
        "order_count": -1.0,
        "email_opens_90d": -0.5,
    },
    "Email engaged": {
        "email_opens_90d": 1.0,
        "email_clicks_90d": 1.0,
        "searches_per_session_90d": -1.0,
    },
    "Regulars": {},
    "Never visited": {},
}
REGULARS_SCORE = 0.2

# A segment whose typical customer has neither ordered nor visited the site (a CRM of
# newsletter subscribers who never came, 99% of a shop): its centroid is the population's,
# every z-score about 0, and the fixed score of "Regulars" named it, which marketing reads
# as "comes back often". Such a segment (at least MIN_NEVER_VISITED_SHARE of its customers
# without an order or a visit) is "Never visited" (or "Email engaged", which it may be),
# never a persona of visitors or buyers; no other segment is. A matched segment keeps its
# name only while that stays true.
NEVER_VISITED = "Never visited"
NEVER_VISITED_SCORE = 1.0
MIN_NEVER_VISITED_SHARE = 0.5
# The personas a segment of customers who never visited may take besides NEVER_VISITED.
NEVER_VISITED_MAY_BE = (NEVER_VISITED, "Email engaged")

# What a persona's name says of its customers must be true of the shop and the segment, or
# a z-score of 0 on a feature nobody has lets the other weights pick the name: a shop
# without e-mail events got "Email engaged" for its customers who search less, a shop where
# nobody has ordered yet "Occasional buyers". A persona is only given when at least one of
# its REQUIRES features varies among the customers; BUYERS only to a segment in which at
# least MIN_BUYER_SHARE of the customers have ordered, NON_BUYERS only to one in which fewer
# have: "Window shoppers" browse and never buy, yet its weights (long visits, many pages) named
# a segment of repeat buyers who all browse longer than the rest (a shop with no orders in its
# last 60 days: every customer of that segment had ordered, median 2 orders).
REQUIRES: dict[str, tuple[str, ...]] = {
    "Champions": ("order_count", "avg_order_value"),
    "Bargain hunters": ("searches_90d", "searches_per_session_90d", "avg_order_value"),
    "Window shoppers": ("pages_per_session_30d", "avg_session_duration_s_30d"),
    "New customers": ("tenure_days",),
    "Lapsing": ("recent_session_share", "days_since_last_visit"),
    "Occasional buyers": ("order_count",),
    "Dormant": ("sessions_90d", "days_since_last_visit"),
    "Email engaged": ("email_opens_90d", "email_clicks_90d"),
}
# "Regulars" (comes back often) has no weights, so its fixed score named whatever nothing
# else described: a shop's crowd of one-time buyers who never came back (4,000 who ordered
# once 40-240 days ago beside 400 active customers) was "Regulars", 93% of the shop. It is
# only given to a segment in which at least MIN_RETURNING_SHARE of the customers came back:
# ordered more than once, or visited in the last 30 days (RETURNING in model.py).
REGULARS = "Regulars"
MIN_RETURNING_SHARE = 0.5
BUYERS = ("Champions", "Bargain hunters", "Occasional buyers")
NON_BUYERS = ("Prospects", "Window shoppers")
MIN_BUYER_SHARE = 0.5
# The one segment of a shop too small or too uniform to split (k = 1) is everyone: no
# persona, which would describe it against itself.
ALL_CUSTOMERS = "All customers"
INELIGIBLE = -1e9

# feature -> (phrase when above the population, phrase when below)
PHRASES: dict[str, tuple[str, str]] = {
    "order_count": ("many orders", "few or no orders"),
    "orders_90d": ("frequent recent orders", "few recent orders"),
    "avg_order_value": ("high order values", "low order values"),
    "recency_days": ("a long time since the last order", "ordered recently"),
    "tenure_days": ("long-standing", "joined recently"),
    "sessions_90d": ("visit often", "rarely visit"),
    "product_views_90d": ("browse many products", "browse little"),
    "cart_adds_90d": ("fill carts often", "rarely add to cart"),
    "email_opens_90d": ("open e-mails", "ignore e-mails"),
    "email_clicks_90d": ("click through e-mails", "rarely click e-mails"),
    "days_since_last_visit": ("not seen on the site lately", "seen on the site recently"),
    "cart_abandonment_rate_90d": ("high cart abandonment", "low cart abandonment"),
    "pages_per_session_30d": ("many pages per visit", "few pages per visit"),
    "avg_session_duration_s_30d": ("long visits", "short visits"),
    "mobile_session_share_90d": ("mostly on mobile", "mostly on desktop"),
    "searches_90d": ("search a lot", "rarely search"),
    "searches_per_session_90d": ("search on most visits", "seldom search"),
    "recent_session_share": ("visiting more lately", "visiting less lately"),
}
MIN_NOTABLE_Z = 0.25


@dataclass
class Naming:
    names: list[str]
    descriptions: list[str]
    is_pinned: list[bool]


def persona_scores(
    z: np.ndarray,
    features: Sequence[str],
    varying: Sequence[str] | None = None,
    buyer_share: Sequence[float] | None = None,
    never_visited_share: Sequence[float] | None = None,
    returning_share: Sequence[float] | None = None,
) -> np.ndarray:
    """Score matrix (segments x personas, in :data:`PERSONAS` order).

    ``varying``: the features that vary among the customers (default: all); ``buyer_share``:
    per segment, the share of its customers with an order (default: unknown, no check);
    ``never_visited_share``: per segment, the share of its customers with neither an order
    nor a visit (default: unknown, no :data:`NEVER_VISITED`); ``returning_share``: per
    segment, the share of its customers who came back (default: unknown, no check). A persona
    they rule out (:data:`REQUIRES`, :data:`BUYERS`, :data:`NEVER_VISITED_MAY_BE`,
    :data:`MIN_RETURNING_SHARE`) scores :data:`INELIGIBLE`."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    pos = {f: i for i, f in enumerate(features)}
    known = set(features if varying is None else varying)
    out = np.empty((len(z), len(PERSONAS)))
    for j, (name, weights) in enumerate(PERSONAS.items()):
        used = {f: w for f, w in weights.items() if f in pos}
        if name == NEVER_VISITED:
            out[:, j] = INELIGIBLE
            continue
        if not used:
            out[:, j] = REGULARS_SCORE
            continue
        cols = [pos[f] for f in used]
        w = np.asarray(list(used.values()))
        out[:, j] = z[:, cols] @ w / np.abs(w).sum()
        if name in REQUIRES and not known.intersection(REQUIRES[name]):
            out[:, j] = INELIGIBLE
    if buyer_share is not None:
        share = np.asarray(buyer_share, dtype=float)
        for j, name in enumerate(PERSONAS):
            if name in BUYERS:
                out[share < MIN_BUYER_SHARE, j] = INELIGIBLE
            elif name in NON_BUYERS:
                out[share >= MIN_BUYER_SHARE, j] = INELIGIBLE
    if returning_share is not None:
        rare = np.asarray(returning_share, dtype=float) < MIN_RETURNING_SHARE
        out[rare, list(PERSONAS).index(REGULARS)] = INELIGIBLE
    if never_visited_share is not None:
        never = np.asarray(never_visited_share, dtype=float) >= MIN_NEVER_VISITED_SHARE
        for j, name in enumerate(PERSONAS):
            if name == NEVER_VISITED:
                out[never, j] = NEVER_VISITED_SCORE
            elif name not in NEVER_VISITED_MAY_BE:
                out[never, j] = INELIGIBLE
    return out


def describe(name: str, z_row: np.ndarray, features: Sequence[str], top: int = 3) -> str:
    """One sentence: the name and the (up to) three features that set the segment apart."""
    order = np.argsort(-np.abs(z_row), kind="stable")
    phrases = []
    for i in order:
        feature = features[i]
        if abs(z_row[i]) < MIN_NOTABLE_Z or feature not in PHRASES:
            continue
        phrases.append(PHRASES[feature][0 if z_row[i] > 0 else 1])
        if len(phrases) == top:
            break
    if not phrases:
        return f"{name}: close to the average customer on every feature."
    text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{name}: {text}."


def name_segments(
    z: np.ndarray,
    features: Sequence[str],
    segment_ids: Sequence[int],
    kept_names: Mapping[int, str] | None = None,
    pinned: Mapping[str, str] | None = None,
    varying: Sequence[str] | None = None,
    buyer_share: Sequence[float] | None = None,
    never_visited_share: Sequence[float] | None = None,
    returning_share: Sequence[float] | None = None,
    crowd: int | None = None,
    others_varying: Sequence[str] | None = None,
) -> Naming:
    """Names, descriptions and pinned flags for segments with centroids ``z`` (scaled).

    One segment is :data:`ALL_CUSTOMERS` (unless pinned); with more, a kept name
    :data:`ALL_CUSTOMERS` is given up, and so is a kept name that says the wrong thing of
    whether the segment's customers ever visited (:data:`NEVER_VISITED`) or came back
    (:data:`REGULARS`). ``varying``, ``buyer_share``, ``never_visited_share`` and
    ``returning_share``: see :func:`persona_scores`.

    ``crowd``: the row of the segment kept whole as a crowd (``features.CrowdKMeans``), or
    None. Its row of ``z`` is then its z-scores among everyone (scored with ``varying``),
    and every other row the z-scores of a segment of the others among the others alone
    (``CrowdKMeans.own_centers``; scored with ``others_varying``, the features that vary
    among them, default ``varying``). Judged against everyone, a crowd tens of times
    larger than the others is the average and every other segment looks extreme beside
    it: a shop's lapsing customers, beside 15,000 one-time buyers who never came back,
    visit more (z +1.8) and open more e-mails (+1.9) than "everyone", so "Lapsing" scored
    -0.14 for them and they were "Email engaged" (0.48); among the others they are
    Lapsing (0.99). The assignment is one for all segments, so names stay distinct."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    if len(segment_ids) == 1:
        kept_names = {segment_ids[0]: ALL_CUSTOMERS}
    else:
        kept_names = {i: n for i, n in (kept_names or {}).items() if n != ALL_CUSTOMERS}
        if never_visited_share is not None:
            never = {
                sid: share >= MIN_NEVER_VISITED_SHARE
                for sid, share in zip(segment_ids, never_visited_share, strict=True)
            }
            # A name of the rules that is no longer true of the segment: "Regulars" kept by
            # a crowd that never visited, "Never visited" by one that now has.
            kept_names = {
                i: n
                for i, n in kept_names.items()
                if n not in PERSONAS
                or (n in NEVER_VISITED_MAY_BE if never.get(i) else n != NEVER_VISITED)
            }
        if returning_share is not None:
            rare = {
                sid
                for sid, share in zip(segment_ids, returning_share, strict=True)
                if share < MIN_RETURNING_SHARE
            }
            kept_names = {i: n for i, n in kept_names.items() if n != REGULARS or i not in rare}
    pinned = {str(k): v for k, v in (pinned or {}).items()}
    names: list[str | None] = [None] * len(segment_ids)
    is_pinned = [False] * len(segment_ids)
    for i, sid in enumerate(segment_ids):
        if str(sid) in pinned:
            names[i], is_pinned[i] = pinned[str(sid)], True
        elif sid in kept_names:
            names[i] = kept_names[sid]

    need = [i for i, n in enumerate(names) if n is None]
    taken = {n for n in names if n is not None}
    free = [j for j, p in enumerate(PERSONAS) if p not in taken]
    persona_names = list(PERSONAS)
    if need and free:
        shares = None if buyer_share is None else np.asarray(buyer_share, dtype=float)[need]
        never_shares = (
            None
            if never_visited_share is None
            else np.asarray(never_visited_share, dtype=float)[need]
        )
        returning = (
            None if returning_share is None else np.asarray(returning_share, dtype=float)[need]
        )
        scores = persona_scores(z[need], features, varying, shares, never_shares, returning)
        if crowd is not None:
            among_others = persona_scores(
                z[need],
                features,
                varying if others_varying is None else others_varying,
                shares,
                never_shares,
                returning,
            )
            is_other = np.asarray(need) != crowd
            scores[is_other] = among_others[is_other]
        scores = scores[:, free]
        rows, cols = linear_sum_assignment(-scores)
        for r, c in zip(rows, cols, strict=True):
            if scores[r, c] > 0:
                names[need[r]] = persona_names[free[c]]
    for i, sid in enumerate(segment_ids):
        if names[i] is None:
            names[i] = f"Segment {sid}"
    final = [str(n) for n in names]
    if len(final) == 1:
        descriptions = [
            f"{final[0]}: one segment holding every customer, too few or too alike to split."
        ]
    else:
        descriptions = [
            f"{NEVER_VISITED}: most of them have neither visited the site nor ordered."
            if final[i] == NEVER_VISITED
            else describe(final[i], z[i], features)
            for i in range(len(final))
        ]
    return Naming(names=final, descriptions=descriptions, is_pinned=is_pinned)
