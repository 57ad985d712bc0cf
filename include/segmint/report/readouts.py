"""Audience readouts for the report: every audience in one query, light statistics.

The same tests as ``segmint audience readout`` (:mod:`segmint.audiences.readout`): the
two-proportion z-test on conversion (pooled variance for the p-value; Fisher's exact p-value
when an expected count is below 5; the report shows no interval of the difference) and
Welch's t-test on revenue per customer. The report computes them from one aggregate query
over all audiences and with the standard library's normal distribution and
``scipy.special.stdtr``: importing ``scipy.stats`` alone costs the report seconds. A test
checks these figures against the audiences module's. The verdict is the audiences module's
:func:`~segmint.audiences.readout.plain_verdict`, so the report and the command line say the
same words for the same result.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist

import duckdb
import pandas as pd

from segmint.audiences.readout import conversion_z_p, plain_verdict
from segmint.audiences.readout_parameters import ALPHA, MDE, POWER

_NORMAL = NormalDist()


def aggregate(
    con: duckdb.DuckDBPyConnection, as_of: date, lookback_days: int, built_only: bool
) -> pd.DataFrame:
    """Per audience and group: the snapshot read out, customers, converted, revenue stats.

    The snapshot is each audience's newest built snapshot at least ``lookback_days`` old
    (else its oldest one before ``as_of``); outcomes are the orders from the day after it
    through ``as_of``.
    """
    status = "and status = 'built'" if built_only else ""
    return con.execute(
        f"""
        with snapshots as (
            select
                audience,
                coalesce(max(as_of_date) filter (where as_of_date <= ?), min(as_of_date))
                    as snapshot
            from audiences.summary
            where as_of_date < ? {status}
            group by audience
        ),
        per_customer as (
            select
                m.audience,
                s.snapshot,
                m."group",
                m.customer_id,
                count(o.customer_id) > 0 as converted,
                cast(coalesce(sum(o.revenue), 0) as double) as revenue
            from snapshots as s
            inner join audiences.members as m
                on m.audience = s.audience and m.as_of_date = s.snapshot
            left join marts.orders as o
                on o.customer_id = m.customer_id
                and o.order_date between s.snapshot + 1 and ?
            group by all
        )
        select
            audience,
            snapshot,
            "group",
            count(*) as customers,
            count(*) filter (where converted) as converted,
            avg(revenue) as revenue_mean,
            coalesce(var_samp(revenue), 0) as revenue_var
        from per_customer
        group by all
        order by audience, "group"
        """,
        [as_of - timedelta(days=lookback_days), as_of, as_of],
    ).df()


def conversion_test(x_t: int, n_t: int, x_h: int, n_h: int) -> dict[str, float | str | None]:
    """Two-sided two-proportion z-test (pooled variance), as the audiences readout: Fisher's
    exact p-value when an expected count is below 5 (``test`` says which)."""
    p_t, p_h = x_t / n_t, x_h / n_h
    diff = p_t - p_h
    z, p, test = conversion_z_p(x_t, n_t, x_h, n_h)
    return {
        "rate_target": p_t,
        "rate_holdout": p_h,
        "difference": diff,
        "relative_uplift": diff / p_h if p_h > 0 else None,
        "z": z,
        "p_value": p,
        "test": test,
    }


def welch_test(
    mean_t: float, var_t: float, n_t: int, mean_h: float, var_h: float, n_h: int
) -> dict[str, float]:
    """Two-sided Welch's t-test from means and sample variances, as the audiences readout."""
    from scipy.special import stdtr

    a, b = var_t / n_t, var_h / n_h
    diff = mean_t - mean_h
    se = math.sqrt(a + b)
    if se == 0:
        return {"difference": diff, "t": 0.0, "df": float(n_t + n_h - 2), "p_value": 1.0}
    t = diff / se
    df = (a + b) ** 2 / (a * a / (n_t - 1) + b * b / (n_h - 1))
    return {"difference": diff, "t": t, "df": df, "p_value": float(2 * stdtr(df, -abs(t)))}


def required_holdout(
    baseline: float, ratio: float, mde: float = MDE, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Holdout size to detect a relative uplift ``mde`` (normal approximation, two-sided)."""
    p0, p1 = baseline, min(baseline * (1 + mde), 0.999999)
    if not 0 < p0 < 1 or p1 == p0:
        return None
    pbar = (ratio * p1 + p0) / (ratio + 1)
    z_a, z_b = _NORMAL.inv_cdf(1 - alpha / 2), _NORMAL.inv_cdf(power)
    num = z_a * math.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio)) + z_b * math.sqrt(
        p1 * (1 - p1) / ratio + p0 * (1 - p0)
    )
    return math.ceil(num**2 / (p1 - p0) ** 2)


def readouts(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    lookback_days: int = 28,
    built_only: bool = True,
    alpha: float = ALPHA,
    currency: str | None = None,
) -> pd.DataFrame:
    """One row per audience: groups, conversion and revenue tests, a short verdict."""
    groups = aggregate(con, as_of, lookback_days, built_only)
    rows = []
    for (audience, snapshot), part in groups.groupby(["audience", "snapshot"], sort=True):
        by = part.set_index("group")
        t = by.loc["target"] if "target" in by.index else None
        h = by.loc["holdout"] if "holdout" in by.index else None
        row = {
            "audience": audience,
            "snapshot": snapshot,
            "target": int(t["customers"]) if t is not None else 0,
            "holdout": int(h["customers"]) if h is not None else 0,
        }
        conv = rev = None
        if row["target"] and row["holdout"]:
            conv = conversion_test(
                int(t["converted"]), row["target"], int(h["converted"]), row["holdout"]
            )
        if row["target"] >= 2 and row["holdout"] >= 2:
            rev = welch_test(
                float(t["revenue_mean"]),
                float(t["revenue_var"]),
                row["target"],
                float(h["revenue_mean"]),
                float(h["revenue_var"]),
                row["holdout"],
            )
        row.update(
            {
                "conv. target": conv["rate_target"] if conv else None,
                "conv. holdout": conv["rate_holdout"] if conv else None,
                "uplift": conv["relative_uplift"] if conv else None,
                "p conv.": conv["p_value"] if conv else None,
                "Δ revenue/cust.": rev["difference"] if rev else None,
                "p rev.": rev["p_value"] if rev else None,
                "verdict": plain_verdict(
                    conv,
                    rev,
                    row["target"],
                    row["holdout"],
                    _needed(conv, row, alpha),
                    alpha,
                    currency=currency,
                ),
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        reached = _reached(con, frame[["audience", "snapshot"]])
        frame.insert(len(frame.columns) - 1, "reached", frame["audience"].map(reached))
        frame["reached"] = frame["reached"] / frame["target"].where(frame["target"] > 0)
    return frame


def _needed(conv: dict | None, row: dict, alpha: float) -> int | None:
    """The holdout size that would see a 10% uplift, as ``segmint audience readout`` finds
    it: on the holdout's conversion rate, else (none or all converted) the pooled rate."""
    if conv is None:
        return None
    baseline = conv["rate_holdout"]
    if not 0 < baseline < 1:
        baseline = (conv["rate_target"] * row["target"] + baseline * row["holdout"]) / (
            row["target"] + row["holdout"]
        )
    return required_holdout(baseline, row["target"] / row["holdout"], alpha=alpha)


def _reached(con: duckdb.DuckDBPyConnection, snapshots: pd.DataFrame) -> dict[str, int]:
    """Per audience, the target customers of its snapshot in any of the snapshot's export
    files (``audiences.export_members``), as ``segmint audience readout`` counts them; an
    audience with no export of its snapshot recorded is left out (no share to give)."""
    ((tables,),) = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'audiences' "
        "and table_name in ('exports', 'export_members')"
    ).fetchall()
    if tables < 2:
        return {}
    con.register("readout_snapshots", snapshots)
    try:
        rows = con.execute(
            """
            select s.audience, count(distinct m.customer_id)
            from readout_snapshots as s
            inner join audiences.exports as e
                on e.audience = s.audience and e.as_of_date = cast(s.snapshot as date)
            left join audiences.export_members as x on x.export_id = e.export_id
            left join audiences.members as m
                on m.audience = s.audience and m.as_of_date = e.as_of_date
                and m.customer_id = x.customer_id and m."group" = 'target'
            group by 1
            """
        ).fetchall()
    finally:
        con.unregister("readout_snapshots")
    return {a: int(n) for a, n in rows}
