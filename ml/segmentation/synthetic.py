"""Synthetic ``marts.customer_features`` rows with known behaviour types.

For tests and the benchmark only: it lets the segmentation be exercised at any size without
running the generator, ingest and dbt first. Vectorised numpy; deterministic per seed.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

TYPES = ("champion", "bargain_hunter", "window_shopper", "new_customer", "lapsing")
CATEGORIES = ("books", "electronics", "fashion", "garden", "home", "sports", "toys", "beauty")


def customer_features(
    n: int, as_of: date, seed: int = 0, shares: tuple[float, ...] = (0.15, 0.2, 0.25, 0.2, 0.2)
) -> pd.DataFrame:
    """``n`` customers with the columns the segmentation reads, plus ``latent_type``."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(len(TYPES), size=n, p=np.asarray(shares) / sum(shares))

    def per_type(values: list) -> np.ndarray:
        return np.asarray(values, dtype=float)[kind]

    orders = rng.poisson(per_type([12, 9, 0.15, 0.6, 4])) + per_type([1, 1, 0, 0, 1])
    aov = np.exp(rng.normal(per_type([4.8, 3.2, 3.8, 3.9, 4.0]), 0.35))
    tenure = rng.uniform(per_type([200, 100, 60, 0, 400]), per_type([1000, 800, 900, 30, 1200]))
    recency = np.minimum(rng.exponential(per_type([8, 12, 60, 8, 200])), tenure)
    recency = np.where(kind == TYPES.index("lapsing"), recency + 120, recency)
    sessions = rng.poisson(per_type([30, 25, 30, 6, 0.5]))
    views = rng.poisson(sessions * per_type([2, 3, 5, 3, 2]))
    carts = rng.binomial(views, per_type([0.3, 0.4, 0.1, 0.2, 0.2]))
    abandon = rng.beta(per_type([2, 6, 8, 3, 3]), per_type([8, 4, 2, 5, 5]))
    opens = rng.poisson(per_type([10, 6, 2, 3, 1]))
    last_visit = np.minimum(rng.exponential(per_type([3, 4, 3, 3, 90])), tenure)
    pages = np.exp(rng.normal(per_type([0.8, 0.8, 1.5, 0.9, 0.7]), 0.25))
    duration = np.exp(rng.normal(per_type([5.4, 5.4, 6.1, 5.6, 5.2]), 0.3))
    mobile = rng.beta(per_type([3, 5, 8, 6, 4]), per_type([5, 4, 2, 4, 4]))
    searches = rng.poisson(sessions * per_type([0.4, 1.4, 0.5, 0.6, 0.4]))
    clicks = rng.binomial(opens, per_type([0.2, 0.45, 0.1, 0.25, 0.1]))
    recent = rng.binomial(sessions, per_type([0.4, 0.4, 0.4, 0.9, 0.05]))
    has_orders = orders > 0
    has_sessions = sessions > 0
    orders_90d = np.minimum(orders, rng.poisson(per_type([4, 4, 0.1, 0.6, 0.05])))

    frame = pd.DataFrame(
        {
            "customer_id": np.char.add("C", np.char.zfill(np.arange(n).astype(str), 8)),
            "as_of_date": pd.Timestamp(as_of),
            "order_count": orders.astype("int64"),
            "orders_90d": orders_90d.astype("int64"),
            "revenue_total": np.round(orders * aov, 2),
            "avg_order_value": np.where(has_orders, np.round(aov, 2), np.nan),
            "recency_days": np.where(has_orders, np.floor(recency), np.nan),
            "tenure_days": np.floor(tenure).astype("int64"),
            "sessions_30d": recent.astype("int64"),
            "sessions_90d": sessions.astype("int64"),
            "product_views_90d": views.astype("int64"),
            "cart_adds_90d": carts.astype("int64"),
            "cart_abandonment_rate_90d": np.where(carts > 0, abandon, np.nan),
            "email_opens_30d": rng.binomial(opens, 0.4).astype("int64"),
            "email_opens_90d": opens.astype("int64"),
            "email_clicks_90d": clicks.astype("int64"),
            "searches_90d": searches.astype("int64"),
            "pages_per_session_30d": np.where(recent > 0, pages, np.nan),
            "avg_session_duration_s_30d": np.where(recent > 0, duration, np.nan),
            "mobile_session_share_90d": np.where(has_sessions, mobile, np.nan),
            "days_since_last_visit": np.where(has_sessions, np.floor(last_visit), np.nan),
            "favourite_category": np.asarray(CATEGORIES, dtype=object)[
                (kind * 2 + rng.integers(0, 3, size=n)) % len(CATEGORIES)
            ],
            "email_opt_in": rng.random(n) < per_type([0.7, 0.6, 0.4, 0.5, 0.3]),
            "ads_opt_in": rng.random(n) < 0.5,
            "latent_type": np.asarray(TYPES, dtype=object)[kind],
        }
    )
    return frame


def next_day(frame: pd.DataFrame, seed: int = 1, active_share: float = 0.02) -> pd.DataFrame:
    """The same customers one day later: ages grow by a day, a few customers visit again."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["as_of_date"] = out["as_of_date"] + timedelta(days=1)
    for col in ("tenure_days",):
        out[col] = out[col] + 1
    for col in ("recency_days", "days_since_last_visit"):
        out[col] = out[col] + 1
    visit = rng.random(len(out)) < active_share
    out.loc[visit, "days_since_last_visit"] = 0
    out.loc[visit, "sessions_90d"] = out.loc[visit, "sessions_90d"] + 1
    out.loc[visit, "sessions_30d"] = out.loc[visit, "sessions_30d"] + 1
    return out
