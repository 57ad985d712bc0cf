"""Choosing the number of segments.

Every candidate k is fitted on one fixed search sample of the scaled features; inertia (for
the elbow) is measured on that sample and the silhouette on a smaller fixed sample (the
silhouette is quadratic in rows, so it is never computed on all of them).

Rule (see docs/segmentation.md):

1. take the k with the best silhouette;
2. elbow sanity check: if the elbow of the inertia curve lies at a larger k and that k's
   silhouette is within ``silhouette_tolerance`` of the best, take the elbow instead
   (silhouette alone favours very few, coarse segments);
3. stability: if the previous run's k scores within ``silhouette_tolerance`` of the best,
   keep it, so the number of segments does not flap between nights.

A crowd (at the best silhouette's k one segment holds more than ``CROWD_SHARE`` of the
customers: a long tail of one-time buyers, a CRM of subscribers who never came) replaces
steps 2 and 3: the silhouette is a mean over customers, so it mostly measures how well the
crowd stands apart, and the other customers stayed in one or two segments whatever their
own structure. The crowd stays one segment and the other customers, scaled by their own
spread (a crowd tens of times larger than they are set everyone's), are segmented among
themselves by the same rule (:func:`segment_the_rest`); k is one more than theirs.

A configured ``fixed_k`` skips the rule but the candidates are still scored for the record.

k never exceeds the number of distinct customer profiles (rows of the scaled features): a
shop whose customers all look alike tonight (a first night with CRM records and no events,
say) gets one segment, not clusters without a member. Nor does it exceed the customers over
``min_segment_customers`` (on average): thirty customers make one segment, not eight
segments of three to four customers that marketing could not tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from ml.segmentation.features import CrowdKMeans, crowd_labels, make_kmeans, nearest

# A segment holding more than this share of the customers at the best silhouette's k is a
# crowd (see the module docstring). Generated shops' largest segment holds 26-35% of the
# customers; a long tail of one-time buyers ten times the active customers, 93%.
CROWD_SHARE = 0.75


@dataclass
class KChoice:
    k: int
    reason: str
    scores: pd.DataFrame  # k, inertia, silhouette, is_chosen
    models: dict[int, KMeans | CrowdKMeans]  # CrowdKMeans: the chosen k with a crowd
    elbow_k: int | None
    search_rows: int
    silhouette_rows: int


def sample_index(n: int, size: int, random_state: int) -> np.ndarray:
    """A fixed, sorted sample of row positions (all rows when ``size >= n``)."""
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=size, replace=False))


def silhouettes(X: np.ndarray, labels_by_k: dict[int, np.ndarray], block: int = 512) -> dict:
    """Mean silhouette of several labelings of the same rows, in one pass over the distances.

    Same definition as :func:`sklearn.metrics.silhouette_score`, but the pairwise distances
    are computed once (in row blocks, so memory stays ~``block * n`` floats) and summed per
    cluster for every candidate k together, instead of once per k.
    """
    X = np.asarray(X, dtype=float)
    n = len(X)
    ks = list(labels_by_k)
    onehot = np.hstack(
        [np.eye(k, dtype=float)[np.asarray(labels_by_k[k])] for k in ks]
    )  # n x sum(k)
    sq = (X**2).sum(axis=1)
    sums = np.empty((n, onehot.shape[1]))
    for start in range(0, n, block):
        stop = min(start + block, n)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (X[start:stop] @ X.T)
        sums[start:stop] = np.sqrt(np.clip(d2, 0.0, None)) @ onehot
    out, offset, rows = {}, 0, np.arange(n)
    for k in ks:
        labels = np.asarray(labels_by_k[k])
        per_cluster = sums[:, offset : offset + k]
        offset += k
        counts = np.bincount(labels, minlength=k).astype(float)
        if np.count_nonzero(counts) < 2 or np.count_nonzero(counts) >= n:
            out[k] = float("nan")
            continue
        own = counts[labels]
        a = per_cluster[rows, labels] / np.maximum(own - 1, 1)
        mean_other = per_cluster / np.where(counts > 0, counts, np.nan)
        mean_other[rows, labels] = np.inf
        mean_other[:, counts == 0] = np.inf
        b = mean_other.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(own > 1, (b - a) / np.maximum(a, b), 0.0)
        out[k] = float(np.nan_to_num(s).mean())
    return out


def elbow(ks: list[int], inertias: list[float]) -> int | None:
    """The knee of the inertia curve: the point farthest below the first-to-last chord."""
    if len(ks) < 3:
        return None
    x = np.asarray(ks, dtype=float)
    y = np.asarray(inertias, dtype=float)
    span_x, span_y = x[-1] - x[0], y[0] - y[-1]
    if span_y <= 0:
        return None
    xn = (x - x[0]) / span_x
    yn = (y - y[-1]) / span_y  # 1 at the first k, 0 at the last
    gap = (1.0 - xn) - yn  # distance below the chord
    return int(ks[int(np.argmax(gap))])


def distinct_rows(X: np.ndarray) -> int:
    """How many distinct rows ``X`` has.

    Counted on a fixed random projection of the rows: equal rows project equally, distinct
    rows coincide with probability zero (and a coincidence would only lower the count, so
    fewer segments). Milliseconds where comparing whole rows takes a third of a second.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or not len(X):
        return len(X)
    w = np.random.default_rng(0).standard_normal(X.shape[1])
    return len(np.unique(X @ w))


def max_segments(n: int, min_segment_customers: int) -> int:
    """The most segments ``n`` customers make with ``min_segment_customers`` each on average."""
    return n // max(1, min_segment_customers)


def largest_share(labels: np.ndarray, k: int) -> float:
    """The share of the rows in the largest of ``k`` segments."""
    labels = np.asarray(labels)
    return float(np.bincount(labels, minlength=k).max() / len(labels)) if len(labels) else 0.0


def segment_the_rest(
    Xs: np.ndarray,
    best: KMeans,
    k_min: int,
    k_max: int,
    *,
    random_state: int,
    n_init: int,
    silhouette_sample: int,
    silhouette_tolerance: float,
    previous_k: int | None,
    min_segment_customers: int,
) -> tuple[KMeans, str] | None:
    """With a crowd at the best silhouette's k (``best``), the model of the crowd as one
    segment and the other customers segmented among themselves by :func:`choose_k` (k from
    ``k_min - 1`` to ``k_max - 1``; the previous run's k less one for its stability step),
    and that choice's reason; None without a crowd, or when the others make one segment.

    The others are standardised by their own spread before the search, and the model is a
    :class:`CrowdKMeans` fitted on all of ``Xs``, starting from the crowd's centroid and
    the others' search centroids, so that the final fit finds the same segments.
    """
    k = int(best.n_clusters)
    labels = np.asarray(best.labels_)
    crowd = int(np.bincount(labels, minlength=k).argmax())
    if largest_share(labels, k) <= CROWD_SHARE or k_max < 3:
        return None
    others = Xs[labels != crowd]
    # The others' own spread: a crowd tens of times larger than they are set everyone's.
    scaler = StandardScaler().fit(others)
    choice = choose_k(
        scaler.transform(others),
        max(2, k_min - 1),
        k_max - 1,
        random_state=random_state,
        n_init=n_init,
        search_sample=len(others),
        silhouette_sample=silhouette_sample,
        silhouette_tolerance=silhouette_tolerance,
        previous_k=previous_k - 1 if previous_k and previous_k > 2 else None,
        min_segment_customers=min_segment_customers,
    )
    if choice.k < 2 or choice.k + 1 < k_min:
        return None
    init = np.vstack(
        [
            best.cluster_centers_[crowd],
            scaler.inverse_transform(choice.models[choice.k].cluster_centers_),
        ]
    )
    model = CrowdKMeans(init, crowd=0, random_state=random_state).fit(Xs)
    return model, f"{len(others)} customers: {choice.reason}"


def single_segment(X: np.ndarray, reason: str, *, random_state: int, n_init: int) -> KChoice:
    """k = 1: every customer in one segment (too few customers or distinct profiles)."""
    model = make_kmeans(1, random_state, n_init).fit(X)
    scores = pd.DataFrame(
        {"k": [1], "inertia": [float(model.inertia_)], "silhouette": [np.nan], "is_chosen": [True]}
    )
    return KChoice(
        k=1,
        reason=reason,
        scores=scores,
        models={1: model},
        elbow_k=None,
        search_rows=len(X),
        silhouette_rows=0,
    )


def choose_k(
    X: np.ndarray,
    k_min: int,
    k_max: int,
    *,
    random_state: int,
    n_init: int,
    search_sample: int,
    silhouette_sample: int,
    fixed_k: int | None = None,
    silhouette_tolerance: float = 0.05,
    previous_k: int | None = None,
    min_segment_customers: int = 1,
) -> KChoice:
    """Score every k in ``k_min..k_max`` on fixed samples of ``X`` (already scaled), k at most
    ``len(X) // min_segment_customers``."""
    n = len(X)
    search_idx = sample_index(n, search_sample, random_state)
    Xs = X[search_idx]
    distinct = distinct_rows(Xs)
    room = max_segments(n, min_segment_customers)
    capped = ""
    if fixed_k is not None and fixed_k > distinct:
        # A setting tonight's customers cannot honour (a shop's first nights, CRM records
        # without events): as many segments as there are distinct profiles, said in the
        # reason, rather than a failed night that stops scores, audiences and publishing.
        capped = (
            f"fixed_k={fixed_k} capped at {distinct}: {n} customer(s) with {distinct} "
            "distinct profile(s) tonight"
        )
        if distinct < 2:
            return single_segment(
                X, f"one segment: {capped}", random_state=random_state, n_init=n_init
            )
        fixed_k = distinct
    if fixed_k is None and (n < 3 or distinct < 2 or room < 2):
        why = f"{distinct} distinct profile(s)"
        if room < 2 and n >= 3 and distinct >= 2:
            why = f"fewer than 2 x min_segment_customers = {2 * min_segment_customers}"
        return single_segment(
            X,
            f"one segment: {n} customer(s) with {why}",
            random_state=random_state,
            n_init=n_init,
        )
    k_max = max(1, min(k_max, n - 1, distinct, room))
    k_min = max(min(2, k_max), min(k_min, k_max))
    sil_pos = sample_index(len(Xs), silhouette_sample, random_state + 1)
    Xsil = Xs[sil_pos]

    ks = list(range(k_min, k_max + 1))
    if fixed_k is not None and fixed_k not in ks:
        ks = sorted({*ks, fixed_k})
    models = {k: make_kmeans(k, random_state, n_init).fit(Xs) for k in ks}
    sil = silhouettes(Xsil, {k: km.predict(Xsil) for k, km in models.items()})
    scores = pd.DataFrame(
        {
            "k": ks,
            "inertia": [float(models[k].inertia_) for k in ks],
            "silhouette": [sil[k] for k in ks],
        }
    )
    elbow_k = elbow(scores["k"].tolist(), scores["inertia"].tolist())

    if fixed_k is not None:
        chosen, reason = fixed_k, capped or f"fixed_k={fixed_k} from settings"
    else:
        valid = scores.dropna(subset=["silhouette"])
        if valid.empty:
            chosen, reason = k_min, "no silhouette could be computed; smallest k"
        else:
            best = valid.loc[valid["silhouette"].idxmax()]
            best_k = int(best["k"])
            chosen = best_k
            reason = f"best silhouette {best['silhouette']:.3f} at k={chosen}"
            crowded = segment_the_rest(
                Xs,
                models[best_k],
                k_min,
                k_max,
                random_state=random_state,
                n_init=n_init,
                silhouette_sample=silhouette_sample,
                silhouette_tolerance=silhouette_tolerance,
                previous_k=previous_k,
                min_segment_customers=min_segment_customers,
            )
            if crowded is not None:
                model, why = crowded
                chosen = int(model.n_clusters)
                reason = (
                    f"a crowd: the best silhouette, {best['silhouette']:.3f} at k={best_k}, put "
                    f"{largest_share(models[best_k].labels_, best_k):.0%} of the customers in "
                    f"one segment and the others in {best_k - 1}; the crowd stays one segment "
                    f"and the others were scaled by their own spread and segmented among "
                    f"themselves ({why}), so k={chosen}"
                )
                models[chosen] = model
                row = {
                    "k": chosen,
                    "inertia": float(model.inertia_),
                    "silhouette": silhouettes(Xsil, {chosen: model.predict(Xsil)})[chosen],
                }
                scores = (
                    pd.concat([scores[scores["k"] != chosen], pd.DataFrame([row])])
                    .sort_values("k")
                    .reset_index(drop=True)
                )
            else:
                if elbow_k is not None and elbow_k > chosen:
                    at_elbow = valid.loc[valid["k"] == elbow_k, "silhouette"]
                    if (
                        len(at_elbow)
                        and at_elbow.iloc[0] >= best["silhouette"] - silhouette_tolerance
                    ):
                        reason = (
                            f"elbow k={elbow_k} (silhouette {at_elbow.iloc[0]:.3f}) within "
                            f"{silhouette_tolerance} of the best {best['silhouette']:.3f} at "
                            f"k={chosen}"
                        )
                        chosen = elbow_k
                at_previous = valid.loc[valid["k"] == previous_k, "silhouette"]
                if (
                    previous_k is not None
                    and previous_k != chosen
                    and len(at_previous)
                    and at_previous.iloc[0] >= best["silhouette"] - silhouette_tolerance
                ):
                    reason = (
                        f"previous run's k={previous_k} kept (silhouette "
                        f"{at_previous.iloc[0]:.3f}, best {best['silhouette']:.3f} at k={best_k})"
                    )
                    chosen = previous_k
    scores["is_chosen"] = scores["k"] == chosen
    return KChoice(
        k=chosen,
        reason=reason,
        scores=scores,
        models=models,
        elbow_k=elbow_k,
        search_rows=len(Xs),
        silhouette_rows=len(Xsil),
    )


def keep_k(
    X: np.ndarray,
    k: int,
    centers: np.ndarray,
    *,
    random_state: int,
    search_sample: int,
    silhouette_sample: int,
    reason: str,
    crowd: int | None = None,
) -> KChoice:
    """The previous run's k without a search: one scored row for the record.

    Inertia and silhouette are measured on the same fixed samples a search uses, with the
    labels of the nearest of ``centers`` (the previous centroids in tonight's scaled space),
    so the figures compare with a searching night's. With a ``crowd`` (its row of
    ``centers``), the others are labelled in their own space, as :class:`CrowdKMeans` does.
    """
    n = len(X)
    search_idx = sample_index(n, search_sample, random_state)
    Xs = X[search_idx]
    sil_pos = sample_index(len(Xs), silhouette_sample, random_state + 1)
    Xsil = Xs[sil_pos]
    centers = np.asarray(centers, dtype=float)
    labels = crowd_labels(Xs, centers, crowd) if crowd is not None else nearest(Xs, centers)[0]
    sq = ((Xs - centers[labels]) ** 2).sum(axis=1)
    labels_sil = labels[sil_pos]
    sil = silhouettes(Xsil, {k: labels_sil})
    scores = pd.DataFrame(
        {"k": [k], "inertia": [float(sq.sum())], "silhouette": [sil[k]], "is_chosen": [True]}
    )
    return KChoice(
        k=k,
        reason=reason,
        scores=scores,
        models={},
        elbow_k=None,
        search_rows=len(Xs),
        silhouette_rows=len(Xsil),
    )
