"""Point-in-time training and scoring frames for the propensity models.

A training row is a customer's feature snapshot *as of a cut-off date* (read from
``marts.customer_feature_history``, which dbt computes from events at or before the end of
that day only) joined to a label computed from the customer's daily activity in the window
``(cutoff, cutoff + H]``: ``marts.customer_daily_activity`` (attributed at the time) and the
anonymous days of ``intermediate.int_anonymous_activity_attributed`` (a visitor's days before
the first login, the first linked customer's) whose login was by the end of the window
(``attributed_from_date <= cutoff + H``). Nothing else is read: the features of a cut-off
never see the activity after it, and the label never sees activity, or a login, after
``cutoff + H`` (a training set built later gives an ended window the same labels).

Eligibility (who gets a training row, and who is scored):

* ``purchase``: every customer in the snapshot who was known at the cut-off
  (``first_seen_at`` on or before the end of the cut-off day; every snapshot row has one, a
  CRM-only customer's being when the CRM first knew them). For scoring, a row without
  ``first_seen_at`` (only snapshots an older release built hold one) is scored too; for
  training it is left out because nothing proves the customer existed at the cut-off.
* ``churn``: customers *active* at the cut-off, i.e. who purchased or visited within the
  lookback: ``recency_days < L`` or ``days_since_last_visit < L`` (``L`` =
  ``active_lookback_days``; the same inclusive trailing window as the ``Nd`` features).

Labels:

* ``purchase`` = at least one order in ``(cutoff, cutoff + H]``;
* ``churn`` = no order and no session in ``(cutoff, cutoff + H]``.

A guest order in the window on an anonymous id first linked to the customer by the window's
end is theirs (purchase 1, not churned), and so is anonymous browsing (a session: not
churned); a login after the window end, or a later customer of a shared device (not the
first linked), gives the window nothing. A warehouse without the view (built by a release
before 2026-12-07) labels from ``marts.customer_daily_activity`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from ml.io import read_frame

FEATURE_HISTORY = "marts.customer_feature_history"
DAILY_ACTIVITY = "marts.customer_daily_activity"
# A visitor's anonymous days before the first login, with that customer and the login's day
# (attributed_from_date); the labels count those whose login was by the window's end.
ATTRIBUTED_ACTIVITY = "intermediate.int_anonymous_activity_attributed"
MODELS = ("purchase", "churn")

# Contract columns of the feature snapshot used as numeric model inputs.
NUMERIC_FEATURES = (
    "order_count",
    "revenue_total",
    "avg_order_value",
    "recency_days",
    "tenure_days",
    "r_score",
    "f_score",
    "m_score",
    "orders_30d",
    "orders_90d",
    "revenue_30d",
    "revenue_90d",
    "sessions_7d",
    "sessions_30d",
    "sessions_90d",
    "page_views_7d",
    "page_views_30d",
    "page_views_90d",
    "product_views_7d",
    "product_views_30d",
    "product_views_90d",
    "searches_7d",
    "searches_30d",
    "searches_90d",
    "cart_adds_7d",
    "cart_adds_30d",
    "cart_adds_90d",
    "cart_abandonment_rate_90d",
    "avg_session_duration_s_30d",
    "pages_per_session_30d",
    "email_opens_30d",
    "email_clicks_30d",
    "email_opens_90d",
    "email_clicks_90d",
    "days_since_last_visit",
    "mobile_session_share_90d",
)
# Not model inputs: ``email_opt_in`` / ``ads_opt_in`` decide who may be contacted (audiences),
# not how likely someone is to buy. (The feature history takes them from the CRM version valid
# on the snapshot day; when it took the latest record they leaked later consent changes into
# past cut-offs, caught by tests/e2e/test_propensity_quality.py.)
CATEGORICAL_FEATURES = ("rfm_segment", "favourite_category")
# Derived in SQL from the snapshot itself (so still point-in-time).
DERIVED_FEATURES = ("days_since_first_order", "days_since_last_activity")
# Snapshot columns the baselines need, carried beside the features.
SUMMARY_COLUMNS = ("first_seen_at", "first_order_at", "last_order_at")


@dataclass(frozen=True)
class FeatureSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    missing: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]


def _columns(warehouse: Path, qualified: str) -> list[str]:
    schema, name = qualified.split(".", 1)
    frame = read_frame(
        warehouse,
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    )
    return frame["column_name"].tolist()


def feature_spec(warehouse: Path) -> FeatureSpec:
    """The contract's feature columns present in the history table (missing ones named)."""
    present = set(_columns(warehouse, FEATURE_HISTORY))
    if not present:
        raise LookupError(f"{FEATURE_HISTORY} does not exist in {warehouse}; run transform first")
    numeric = tuple(c for c in NUMERIC_FEATURES if c in present)
    categorical = tuple(c for c in CATEGORICAL_FEATURES if c in present)
    derived = tuple(
        name
        for name, needs in (
            ("days_since_first_order", {"first_order_at"}),
            ("days_since_last_activity", {"recency_days", "days_since_last_visit"}),
        )
        if needs <= present
    )
    missing = tuple(
        c for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, *SUMMARY_COLUMNS) if c not in present
    )
    return FeatureSpec(numeric=numeric + derived, categorical=categorical, missing=missing)


def _select_list(spec: FeatureSpec) -> str:
    parts = ["f.customer_id", "f.as_of_date"]
    parts += [f"cast(f.{c} as varchar) as {c}" for c in spec.categorical]
    for column in spec.numeric:
        if column == "days_since_first_order":
            parts.append(
                "cast(date_diff('day', cast(f.first_order_at as date), f.as_of_date) as double)"
                " as days_since_first_order"
            )
        elif column == "days_since_last_activity":
            # Days since the last purchase or visit, whichever was later (the churn clock).
            parts.append(
                "cast(least(f.recency_days, f.days_since_last_visit) as double)"
                " as days_since_last_activity"
            )
        else:
            parts.append(f"cast(f.{column} as double) as {column}")
    for column in SUMMARY_COLUMNS:
        if column not in spec.missing:
            parts.append(f"f.{column}")
        else:
            parts.append(f"cast(null as timestamp) as {column}")
    return ",\n        ".join(parts)


def _eligibility(model: str, training: bool, lookback_days: int) -> str:
    known = "f.first_seen_at < f.as_of_date + interval 1 day"
    if not training:
        known = f"(f.first_seen_at is null or {known})"
    if model == "purchase":
        return known
    if model == "churn":
        return (
            f"{known} and (coalesce(f.recency_days < {int(lookback_days)}, false) "
            f"or coalesce(f.days_since_last_visit < {int(lookback_days)}, false))"
        )
    raise ValueError(f"unknown propensity model {model!r}; models are {', '.join(MODELS)}")


def _label(model: str) -> str:
    if model == "purchase":
        return "cast(coalesce(future.orders, 0) >= 1 as integer)"
    return "cast(coalesce(future.orders, 0) = 0 and coalesce(future.sessions, 0) = 0 as integer)"


def _active(lookback_days: int) -> str:
    return (
        f"(coalesce(f.recency_days < {int(lookback_days)}, false) "
        f"or coalesce(f.days_since_last_visit < {int(lookback_days)}, false))"
    )


# Extra columns of the shared frames, dropped when a model's frame is taken from them.
_SHARED = ["label_purchase", "label_churn", "is_active"]


def labelled_frame(
    warehouse: Path,
    cutoff: date,
    horizon_days: int,
    spec: FeatureSpec,
    lookback_days: int = 90,
) -> pd.DataFrame:
    """Every customer known at ``cutoff`` with both models' labels and the churn flag.

    One read serves both models (:func:`select_training` takes each model's rows). Reads
    the snapshot with ``as_of_date = cutoff`` and the daily activity strictly after the
    cut-off and up to ``cutoff + horizon_days`` inclusive, the anonymous days among it only
    when their first login was by then too, nothing else.
    """
    end = cutoff + timedelta(days=horizon_days)
    params: list[date] = [cutoff, cutoff, end]
    attributed = ""
    if _columns(warehouse, ATTRIBUTED_ACTIVITY):
        attributed = f"""
            union all
            select customer_id, orders, sessions
            from {ATTRIBUTED_ACTIVITY}
            where activity_date > ? and activity_date <= ? and attributed_from_date <= ?"""
        params += [cutoff, end, end]
    sql = f"""
    with snapshot as (
        select *
        from {FEATURE_HISTORY}
        where as_of_date = ?
    ),

    future as (
        select
            customer_id,
            sum(orders) as orders,
            sum(sessions) as sessions,
        from (
            select customer_id, orders, sessions
            from {DAILY_ACTIVITY}
            where activity_date > ? and activity_date <= ?{attributed}
        )
        group by customer_id
    )

    select
        {_select_list(spec)},
        {_label("purchase")} as label_purchase,
        {_label("churn")} as label_churn,
        {_active(lookback_days)} as is_active,
    from snapshot as f
    left join future on f.customer_id = future.customer_id
    where {_eligibility("purchase", True, lookback_days)}
    order by f.customer_id
    """
    return read_frame(warehouse, sql, params)


def select_training(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's training rows (its eligibility) and ``label`` from a labelled frame."""
    if model not in MODELS:
        raise ValueError(f"unknown propensity model {model!r}; models are {', '.join(MODELS)}")
    rows = frame if model == "purchase" else frame[frame["is_active"].to_numpy(dtype=bool)]
    out = rows.drop(columns=_SHARED)
    out["label"] = rows[f"label_{model}"].to_numpy()
    return out.reset_index(drop=True)


def training_frame(
    warehouse: Path,
    model: str,
    cutoff: date,
    horizon_days: int,
    spec: FeatureSpec,
    lookback_days: int = 90,
) -> pd.DataFrame:
    """Eligible customers' features as of ``cutoff`` and their label over the next H days."""
    if model not in MODELS:
        raise ValueError(f"unknown propensity model {model!r}; models are {', '.join(MODELS)}")
    return select_training(
        labelled_frame(warehouse, cutoff, horizon_days, spec, lookback_days), model
    )


def scoring_base(
    warehouse: Path, as_of: date, spec: FeatureSpec, lookback_days: int = 90
) -> pd.DataFrame:
    """Every customer the purchase model scores as of ``as_of``, with the churn flag."""
    sql = f"""
    select
        {_select_list(spec)},
        {_active(lookback_days)} as is_active,
    from {FEATURE_HISTORY} as f
    where f.as_of_date = ? and {_eligibility("purchase", False, lookback_days)}
    order by f.customer_id
    """
    return read_frame(warehouse, sql, [as_of])


def select_scoring(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's scoring rows (its eligibility) from :func:`scoring_base`."""
    if model not in MODELS:
        raise ValueError(f"unknown propensity model {model!r}; models are {', '.join(MODELS)}")
    rows = frame if model == "purchase" else frame[frame["is_active"].to_numpy(dtype=bool)]
    return rows.drop(columns=["is_active"]).reset_index(drop=True)


def scoring_frame(
    warehouse: Path, model: str, as_of: date, spec: FeatureSpec, lookback_days: int = 90
) -> pd.DataFrame:
    """Eligible customers' features as of ``as_of`` (no label: the future is unknown)."""
    if model not in MODELS:
        raise ValueError(f"unknown propensity model {model!r}; models are {', '.join(MODELS)}")
    return select_scoring(scoring_base(warehouse, as_of, spec, lookback_days), model)


@dataclass(frozen=True)
class History:
    """What the warehouse holds for deciding which cut-offs can be trained on."""

    first_activity: date | None
    last_activity: date | None
    snapshots: dict[date, int]


def history(warehouse: Path, dates: list[date]) -> History:
    span = read_frame(
        warehouse,
        f"select min(activity_date) as lo, max(activity_date) as hi from {DAILY_ACTIVITY}",
    )
    lo, hi = span["lo"].iloc[0], span["hi"].iloc[0]
    counts: dict[date, int] = {}
    if dates:
        marks = ", ".join("?" for _ in dates)
        frame = read_frame(
            warehouse,
            f"select as_of_date, count(*) as n from {FEATURE_HISTORY} "
            f"where as_of_date in ({marks}) group by as_of_date",
            dates,
        )
        pairs = zip(frame.as_of_date, frame.n, strict=True)
        counts = {pd.Timestamp(d).date(): int(n) for d, n in pairs}
    return History(
        first_activity=None if pd.isna(lo) else pd.Timestamp(lo).date(),
        last_activity=None if pd.isna(hi) else pd.Timestamp(hi).date(),
        snapshots=counts,
    )


def censored_cutoffs(hist: History, cutoffs: list[date], horizon_days: int) -> list[date]:
    """Cut-offs whose label window ``(c, c + H]`` ends after the newest day with any activity:
    the days after it are missing, not quiet (an as-of date past the loaded data, a day whose
    files have not landed), and would label every customer as neither buying nor visiting."""
    if hist.last_activity is None:
        return []
    return [c for c in cutoffs if c + timedelta(days=horizon_days) > hist.last_activity]


def usable_cutoffs(
    hist: History, cutoffs: list[date], min_history_days: int, horizon_days: int | None = None
) -> list[date]:
    """Cut-offs (newest first) with a snapshot and at least ``min_history_days`` before them
    (and, given ``horizon_days``, a label window the activity covers: :func:`censored_cutoffs`)."""
    if hist.first_activity is None:
        return []
    censored = set() if horizon_days is None else set(censored_cutoffs(hist, cutoffs, horizon_days))
    return [
        c
        for c in cutoffs
        if hist.snapshots.get(c, 0) > 0
        and (c - hist.first_activity).days + 1 >= min_history_days
        and c not in censored
    ]
