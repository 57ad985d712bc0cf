"""The columns the segmentation reads and how each is treated: plain names, no libraries.

Kept apart from :mod:`ml.segmentation.features` (the scikit-learn Pipeline) so the stage can
read the warehouse while scikit-learn imports (a second or more of every night).
"""

from __future__ import annotations

from collections.abc import Sequence

# The columns the clustering sees, and how each is treated. All come from
# marts.customer_features; the two ratios are derived from its columns inside the Pipeline.
# Skewed money, count and duration columns are log1p-transformed; shares are not.
LOG_FEATURES: tuple[str, ...] = (
    "order_count",
    "avg_order_value",
    "recency_days",
    "tenure_days",
    "sessions_90d",
    "days_since_last_visit",
    "pages_per_session_30d",
    "avg_session_duration_s_30d",
    "email_opens_90d",
    "email_clicks_90d",
    "searches_90d",
)
# Derived share features: name -> (numerator, denominator); 0 when the denominator is 0.
RATIOS: dict[str, tuple[str, str]] = {
    "recent_session_share": ("sessions_30d", "sessions_90d"),
    "searches_per_session_90d": ("searches_90d", "sessions_90d"),
}
LINEAR_FEATURES: tuple[str, ...] = ("mobile_session_share_90d", *RATIOS)
FEATURES: tuple[str, ...] = LOG_FEATURES + LINEAR_FEATURES

# Null means "no such event yet" (no order, no visit). Those columns are filled with one day
# more than the largest value seen at fit time: "longer ago than anyone else".
FILL_LONGEST_AGO: tuple[str, ...] = ("recency_days", "days_since_last_visit")

# Days since a date that never moves (first seen): every customer's value grows by one a
# night, so the drift PSI compares it with the previous run's reference aged by the days
# between the runs. Unaged, customers who share a first day (a CRM migrated with one signup
# date, everyone seen on the tracker's first day) crossed a bin edge together every night:
# PSI 18.4, a warning every night for no change at all. recency_days and
# days_since_last_visit are not aged: an order or a visit resets them, so a shop buying and
# visiting as usual keeps their distribution, and one that stops (a tracker outage) shows.
AGEING_FEATURES: tuple[str, ...] = ("tenure_days",)

# Columns summarised per segment in ml.segment_profiles (mean and median, nulls skipped).
PROFILE_FEATURES: tuple[str, ...] = (
    "recency_days",
    "order_count",
    "revenue_total",
    "avg_order_value",
    "orders_90d",
    "sessions_30d",
    "cart_abandonment_rate_90d",
    "email_opens_30d",
    "tenure_days",
    "days_since_last_visit",
)
PROFILE_EXTRA: tuple[str, ...] = ("favourite_category", "email_opt_in", "ads_opt_in")


def source_columns(features: Sequence[str] = FEATURES) -> list[str]:
    """The columns of marts.customer_features that ``features`` are computed from."""
    cols: list[str] = []
    for f in features:
        cols.extend(RATIOS.get(f, (f,)))
    return list(dict.fromkeys(cols))


def numeric_columns(features: Sequence[str] = FEATURES) -> list[str]:
    """Every numeric column the stage reads, in a fixed order."""
    return list(dict.fromkeys([*source_columns(features), *PROFILE_FEATURES]))
