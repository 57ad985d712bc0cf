"""An independent pandas computation of what the marts must contain, straight from the raw
rows, following the documented rules (docs/models.md): point-in-time attribution (and a
visitor's anonymous days before the first login counted for the first linked customer from
the login's day on), sessions
(session_id, else 30 minutes of inactivity per person, cut at midnight UTC; purchases alone
are none), first purchase
event per order wins."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

EMAIL = ("email_open", "email_click")


def _clean(s: pd.Series) -> pd.Series:
    s = s.str.strip()
    return s.mask(s == "")


def attributed_events(raw: pd.DataFrame) -> pd.DataFrame:
    ev = raw.copy()
    for col in ("event_id", "customer_id", "anonymous_id", "session_id", "order_id"):
        ev[col] = _clean(ev[col])
    ev["event_type"] = ev["event_type"].str.strip().str.lower()
    ev["ts"] = pd.to_datetime(ev["event_ts"])
    ev["day"] = ev["ts"].dt.floor("D")

    # Every event carrying both ids links them.
    links = (
        ev.dropna(subset=["customer_id", "anonymous_id"])[["anonymous_id", "customer_id", "ts"]]
        .rename(columns={"ts": "linked", "customer_id": "linked_customer"})
        .sort_values(["linked", "linked_customer"])
    )
    anon = ev[ev["customer_id"].isna() & ev["anonymous_id"].notna()][
        ["event_id", "anonymous_id", "ts", "day"]
    ].sort_values("ts")
    # The customer of the latest link at or before the event.
    back = pd.merge_asof(
        anon, links, left_on="ts", right_on="linked", by="anonymous_id", direction="backward"
    )
    # Otherwise the first link, when it happens on the event's day.
    first = links.drop_duplicates("anonymous_id", keep="first")
    back = back.merge(
        first.rename(columns={"linked": "first_linked", "linked_customer": "first_customer"}),
        on="anonymous_id",
        how="left",
    )
    same_day = back["linked_customer"].isna() & (
        back["first_linked"] < back["day"] + pd.Timedelta(days=1)
    )
    back["resolved"] = back["linked_customer"].where(
        back["linked_customer"].notna(), back["first_customer"].where(same_day)
    )
    ev = ev.merge(back[["event_id", "resolved"]], on="event_id", how="left")
    ev["customer"] = ev["customer_id"].fillna(ev["resolved"])
    ev["person"] = np.where(
        ev["customer"].notna(),
        "c:" + ev["customer"].fillna(""),
        "a:" + ev["anonymous_id"].fillna(""),
    )
    ev.loc[ev["customer"].isna() & ev["anonymous_id"].isna(), "person"] = None
    return ev


def sessions(ev: pd.DataFrame) -> pd.DataFrame:
    site = ev[~ev["event_type"].isin(EMAIL) & ev["person"].notna()].copy()
    with_id = site[site["session_id"].notna()].copy()
    with_id["part"] = "s:" + with_id["session_id"]
    no_id = site[site["session_id"].isna()].sort_values(["person", "day", "ts", "event_id"]).copy()
    gap = no_id.groupby(["person", "day"])["ts"].diff()
    no_id["part"] = "i:" + (
        (gap.isna() | (gap > pd.Timedelta(minutes=30)))
        .astype(int)
        .groupby([no_id["person"], no_id["day"]])
        .cumsum()
    ).astype(str)
    # A run of purchases alone (a back end's orders) is no visit.
    visit = (
        (no_id["event_type"] != "purchase")
        .groupby([no_id["person"], no_id["day"], no_id["part"]])
        .transform("any")
    )
    both = pd.concat([with_id, no_id[visit]])
    return both.groupby(["person", "day", "part"], as_index=False).agg(
        customer=("customer", "max"),
        anonymous_id=("anonymous_id", "min"),
        started=("ts", "min"),
        ended=("ts", "max"),
        events=("event_id", "count"),
    )


def _as_of_customer(frame: pd.DataFrame, ev: pd.DataFrame, as_of: date) -> pd.Series:
    """Each row's customer as of ``as_of``: its own, else its anonymous id's first linked
    customer when the link's day is ``as_of`` or earlier."""
    first = (
        ev.dropna(subset=["customer_id", "anonymous_id"])
        .sort_values(["ts", "customer_id"])
        .drop_duplicates("anonymous_id")
        .set_index("anonymous_id")
    )
    linked = first[first["day"] <= pd.Timestamp(as_of)]["customer_id"]
    return frame["customer"].fillna(frame["anonymous_id"].map(linked))


def orders(ev: pd.DataFrame) -> pd.DataFrame:
    buys = ev[(ev["event_type"] == "purchase") & ev["order_id"].notna()]
    ordered = buys.sort_values(["ts", "event_id"])
    first = ordered.drop_duplicates("order_id", keep="first")
    out = first[["order_id", "customer", "ts", "revenue", "anonymous_id"]].copy()
    # No customer on the winning event: the first purchase event's of the order with one.
    known = ordered.dropna(subset=["customer"]).drop_duplicates("order_id", keep="first")
    out["customer"] = out["customer"].fillna(
        out["order_id"].map(known.set_index("order_id")["customer"])
    )
    out["revenue"] = out["revenue"].astype(float)
    return out


def customer_figures(ev: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Per customer as of a date: orders, revenue, recency, 30-day sessions."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    ev = ev[ev["ts"] < end]
    o = orders(ev)
    o["customer"] = _as_of_customer(o, ev, as_of)
    o = o.dropna(subset=["customer"])
    per = o.groupby("customer").agg(
        order_count=("order_id", "count"), revenue_total=("revenue", "sum"), last=("ts", "max")
    )
    per["recency_days"] = (pd.Timestamp(as_of) - per["last"].dt.floor("D")).dt.days
    s = sessions(ev)
    s["customer"] = _as_of_customer(s, ev, as_of)
    s = s.dropna(subset=["customer"])
    recent = s[s["day"] > pd.Timestamp(as_of) - pd.Timedelta(days=30)]
    per = per.join(recent.groupby("customer").size().rename("sessions_30d"), how="outer")
    return per.drop(columns="last")
