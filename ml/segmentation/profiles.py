"""Per-segment profiles, transitions between runs, and drift (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ml.segmentation.columns import PROFILE_FEATURES

TOP_CATEGORIES = 3
PSI_BINS = 10
PSI_FLOOR = 1e-4
# Sampling alone moves a PSI: with no change at all, PSI is about chi-square with (bins - 1)
# degrees of freedom times (1/N + 1/M) for N and M customers (Yurdakul, "Statistical
# properties of the population stability index", 2018). A PSI is a drift warning only above
# the level sampling exceeds with probability PSI_NOISE_ALPHA (0.1% a feature; 14 features
# a night). At 150 customers that level is about 0.37 for ten bins; at 400, 0.14 (below the
# 0.2 threshold, which then decides alone); at 5,000, 0.011.
PSI_NOISE_ALPHA = 0.001


def segment_profiles(
    frame: pd.DataFrame,
    segment_id: np.ndarray,
    is_outlier: np.ndarray,
    features: Sequence[str] = PROFILE_FEATURES,
) -> pd.DataFrame:
    """One row per segment: size, share, outliers, mean/median of ``features`` over the
    segment's non-outliers, top favourite categories and consent shares (all members)."""
    seg = pd.Series(np.asarray(segment_id), index=frame.index, name="segment_id")
    total = len(frame)
    sizes = seg.value_counts().rename("customers")
    outliers = seg[np.asarray(is_outlier)].value_counts().rename("outliers")
    out = pd.concat([sizes, outliers], axis=1).fillna({"outliers": 0})
    out["share"] = out["customers"] / total if total else 0.0

    inliers = frame.loc[~np.asarray(is_outlier), list(features)].astype("float64")
    grouped = inliers.groupby(seg[~np.asarray(is_outlier)])
    means = grouped.mean().add_prefix("mean_")
    medians = grouped.median().add_prefix("median_")
    out = out.join(means).join(medians)

    consent = frame[["email_opt_in", "ads_opt_in"]].astype("float64").groupby(seg).mean()
    out["email_opt_in_share"] = consent["email_opt_in"]
    out["ads_opt_in_share"] = consent["ads_opt_in"]

    cats = pd.DataFrame(
        {"segment_id": seg[~np.asarray(is_outlier)], "category": frame["favourite_category"]}
    ).dropna()
    counts = cats.groupby(["segment_id", "category"]).size().rename("n").reset_index()
    counts["share"] = counts["n"] / counts.groupby("segment_id")["n"].transform("sum")
    counts = counts.sort_values(["segment_id", "n", "category"], ascending=[True, False, True])
    top = counts.groupby("segment_id").head(TOP_CATEGORIES)
    top = top.assign(
        item=[
            {"category": c, "share": round(float(v), 4)}
            for c, v in zip(top["category"], top["share"], strict=True)
        ]
    )  # at most k * 3 rows
    top_json = top.groupby("segment_id")["item"].agg(lambda items: json.dumps(list(items)))
    out["top_categories"] = top_json.reindex(out.index).astype(object).fillna("[]")
    out.index.name = "segment_id"
    return out.reset_index()


def segment_transitions(previous: pd.DataFrame | None, current: pd.DataFrame) -> pd.DataFrame:
    """Customers moving between segments: counts per (from, to) pair.

    Both frames have ``customer_id, segment_id, segment_name``. A customer new tonight has a
    null ``from_segment_id``; one gone since the previous run a null ``to_segment_id``.
    """
    cols = ["customer_id", "segment_id", "segment_name"]
    if previous is None or previous.empty:
        previous = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    merged = previous[cols].merge(
        current[cols], on="customer_id", how="outer", suffixes=("_from", "_to")
    )
    counts = (
        merged.groupby(
            ["segment_id_from", "segment_name_from", "segment_id_to", "segment_name_to"],
            dropna=False,
        )
        .size()
        .rename("customers")
        .reset_index()
        .rename(
            columns={
                "segment_id_from": "from_segment_id",
                "segment_name_from": "from_segment_name",
                "segment_id_to": "to_segment_id",
                "segment_name_to": "to_segment_name",
            }
        )
    )
    for col in ("from_segment_id", "to_segment_id"):
        counts[col] = pd.to_numeric(counts[col]).astype("Int64")
    return counts.sort_values(["from_segment_id", "to_segment_id"]).reset_index(drop=True)


def reference_distribution(values: pd.DataFrame, bins: int = PSI_BINS) -> dict[str, dict]:
    """Per feature: decile edges of the known values and the share of rows in each bin.

    Missing values (no order, no visit) get a bin of their own, the last one, so the rule
    used to fill them cannot move them from bin to bin between nights.
    """
    ref = {}
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    for col in values.columns:
        x = values[col].to_numpy(dtype=float)
        known = x[np.isfinite(x)]
        edges = np.unique(np.quantile(known, qs, method="lower")) if len(known) else np.array([])
        ref[col] = {"edges": edges.tolist(), "shares": bin_shares(x, edges).tolist()}
    return ref


def bin_shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``x`` in each of ``len(edges) + 2`` bins.

    The bins are ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` (so a value tied with many
    others, say 0 orders, gets a bin of its own), then one bin for missing values.
    """
    x = np.asarray(x, dtype=float)
    missing = ~np.isfinite(x)
    idx = np.searchsorted(np.asarray(edges, dtype=float), x[~missing], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    return counts / max(len(x), 1)


def psi(reference: Mapping[str, Sequence[float]], x: np.ndarray) -> float:
    """Population stability index of ``x`` against a stored reference distribution."""
    expected = np.maximum(np.asarray(reference["shares"], dtype=float), PSI_FLOOR)
    actual = np.maximum(bin_shares(np.asarray(x, dtype=float), reference["edges"]), PSI_FLOOR)
    if len(actual) != len(expected):
        raise ValueError("reference distribution has another number of bins")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_noise_limit(
    reference: Mapping[str, Sequence[float]],
    x: np.ndarray,
    n_reference: int,
    alpha: float = PSI_NOISE_ALPHA,
) -> float:
    """The PSI of ``x`` against ``reference`` that sampling alone exceeds with probability
    ``alpha``: the chi-square quantile for the bins either side holds, times
    ``1 / n_reference + 1 / len(x)``. 0 when there is nothing to compare."""
    from scipy.special import chdtri

    x = np.asarray(x, dtype=float)
    tonight = bin_shares(x, reference["edges"])
    bins = int(np.count_nonzero((np.asarray(reference["shares"]) > 0) | (tonight > 0)))
    if bins < 2 or n_reference <= 0 or len(x) == 0:
        return 0.0
    return float(chdtri(bins - 1, alpha) * (1 / n_reference + 1 / len(x)))
