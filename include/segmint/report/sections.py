"""The report's sections, each a list of blocks that degrade on their own.

A block is a function ``(ctx) -> html``. It reads through :class:`~segmint.report.data.Reader`
and raises :class:`~segmint.report.data.Missing` when its tables are not there yet; the
page then says so in one line and every other block still renders. Blocks also record short
plain-language facts in ``ctx.facts`` for the summary at the top.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmint.audiences.compile import NO_MODEL_YET, WAITING
from segmint.config import Settings
from segmint.report import charts
from segmint.report.data import (
    INDEX_COLUMNS,
    Missing,
    Reader,
    find_curve,
    parse_metrics,
    quote,
    scalar,
)
from segmint.report.page import (
    details,
    esc,
    figure,
    fmt_int,
    fmt_num,
    fmt_pct,
    grid,
    note,
    table,
)
from segmint.stages import plural
from segmint.transform import PROPENSITY_MODELS

log = logging.getLogger(__name__)

DQ_WINDOW_DAYS = 14  # data-quality charts cover the as-of day and the 13 before it
DRIFT_RUNS = 10  # drift charts cover the last this-many runs

# Persona card features: (column, label, format). Shown when marts have them. The cards
# show each feature's median over the segment's customers who are not outliers, the
# statistic ml.segment_profiles stores as median_<feature>: money per customer is heavy
# tailed (one order of 1e9, a B2B account with half the revenue), and a mean of it says
# more about the largest customer than about the segment.
#
# Each label says its unit and period in words: "sessions 30d", "tenure days" and "orders"
# were the columns' names, and did not say whether orders and revenue were of a month or of
# the customer's whole history (to date, as the marts count them).
KEY_FEATURES = (
    ("recency_days", "days since last order", "{:,.0f}"),
    ("order_count", "orders to date", "{:,.1f}"),
    ("revenue_total", "revenue per customer to date", "{:,.0f}"),
    ("avg_order_value", "order value", "{:,.0f}"),
    ("sessions_30d", "visits in the last 30 days", "{:,.1f}"),
    ("cart_abandonment_rate_90d", "cart abandonment, last 90 days", "{:.0%}"),
    ("email_opens_30d", "e-mail opens in the last 30 days", "{:,.1f}"),
    ("tenure_days", "days since first seen", "{:,.0f}"),
)


@dataclass
class Context:
    reader: Reader
    as_of: date
    settings: Settings
    out: Path
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            try:
                self.cache[key] = compute()
            except Missing as exc:
                self.cache[key] = exc
        value = self.cache[key]
        if isinstance(value, Missing):
            raise value
        return value


def run_block(
    ctx: Context, title: str, fn: Callable[[Context], str], key: str | None = None
) -> str:
    """Render one block; a missing input becomes a note, an error a note and a warning."""
    started = time.perf_counter()
    try:
        body = fn(ctx)
    except Missing as exc:
        ctx.missing.append(f"{key or title or fn.__name__}: {exc}")
        body = note(str(exc))
    except Exception as exc:  # one broken chart must not sink the night's report
        log.exception("report block %r failed", title)
        ctx.warnings.append(f"report block {title!r} failed: {type(exc).__name__}: {exc}")
        body = note(f"{type(exc).__name__}: {exc}", kind="error")
    key = key or title or fn.__name__
    ctx.timings[key] = ctx.timings.get(key, 0.0) + time.perf_counter() - started
    heading = f"<h3>{esc(title)}</h3>" if title else ""
    return f'<div class="block">{heading}{body}</div>'


def latest_date(ctx: Context, table: str, column: str = "as_of_date") -> date:
    """The newest date in ``table`` at or before the as-of date."""
    ctx.reader.require(table, column)
    dates = ctx.reader.dates(table, column, up_to=ctx.as_of)
    if not dates:
        raise Missing(f"{table} has no rows on or before {ctx.as_of}")
    return dates[0]


# --- segments ----------------------------------------------------------------------------


def _segment_sizes(ctx: Context) -> pd.DataFrame:
    r = ctx.reader
    t = "ml.customer_segments"
    r.require(t, "customer_id", "as_of_date", "segment_id")
    name_col = r.pick(t, "segment_name")
    outlier_col = r.pick(t, "is_outlier")
    previous = r.dates(t, up_to=ctx.as_of - timedelta(days=1))
    prev_date = previous[0] if previous else None
    name_expr = f"arg_max({quote(name_col)}, as_of_date)" if name_col else "null"
    outlier_expr = (
        f"count(*) filter (where as_of_date = ? and {quote(outlier_col)})" if outlier_col else "?"
    )
    frame = r.df(
        f"""
        select
            cast(segment_id as varchar) as segment_id,
            {name_expr} as segment_name,
            count(*) filter (where as_of_date = ?) as customers,
            count(*) filter (where as_of_date = ?) as previous_customers,
            {outlier_expr} as outliers
        from {t}
        where as_of_date in (?, ?)
        group by 1
        """,
        [ctx.as_of, prev_date, ctx.as_of if outlier_col else 0, ctx.as_of, prev_date],
    )
    frame = frame[frame["customers"] > 0].copy() if not frame.empty else frame
    if frame.empty:
        older = r.dates(t, up_to=ctx.as_of)
        if older:
            # The segment stage did not run tonight (skipped, or the night failed before
            # it): "ml.customer_segments has no rows for 2026-07-01" said neither why nor
            # that the newest segments are an older night's.
            ctx.facts["segments_stale"] = older[0]
            raise Missing(
                f"no segments for {ctx.as_of}: the segment stage did not run for it (skipped, "
                f"or the night failed before it); the newest segmentation is of {older[0]}"
            )
        raise Missing(f"ml.customer_segments has no rows for {ctx.as_of}")
    # Names: this run's, else the profile table's, else "Segment <id>".
    profiles = _profiles(ctx)
    if not profiles.empty and "segment_name" in profiles:
        names = profiles.set_index("segment_id")["segment_name"]
        frame["segment_name"] = frame["segment_name"].fillna(frame["segment_id"].map(names))
    frame["segment_name"] = frame["segment_name"].fillna("Segment " + frame["segment_id"])
    frame["previous_customers"] = (
        frame["previous_customers"].astype(float) if prev_date is not None else np.nan
    )
    frame = frame.sort_values("customers", ascending=False).reset_index(drop=True)
    frame.attrs["previous_date"] = prev_date
    return frame


def segment_sizes(ctx: Context) -> pd.DataFrame:
    return ctx.cached("segment_sizes", lambda: _segment_sizes(ctx))


def _profiles(ctx: Context) -> pd.DataFrame:
    """``ml.segment_profiles`` rows of this run: segment_id, name, description (if any)."""

    def load() -> pd.DataFrame:
        r, t = ctx.reader, "ml.segment_profiles"
        if not r.has(t) or not r.pick(t, "segment_id"):
            return pd.DataFrame()
        cols = {"segment_id": "cast(segment_id as varchar)"}
        if name := r.pick(t, "segment_name", "name"):
            cols["segment_name"] = quote(name)
        if desc := r.pick(t, "description", "segment_description", "persona_description"):
            cols["description"] = quote(desc)
        where, params = "", []
        if r.pick(t, "as_of_date"):
            where, params = "where as_of_date = ?", [ctx.as_of]
        select = ", ".join(f"{expr} as {alias}" for alias, expr in cols.items())
        frame = r.df(f"select {select} from {t} {where}", params)
        return frame.drop_duplicates("segment_id", keep="last")

    return ctx.cached("profiles", load)


def segment_names(ctx: Context) -> dict[str, str]:
    try:
        sizes = segment_sizes(ctx)
    except Missing:
        return {}
    return dict(zip(sizes["segment_id"], sizes["segment_name"], strict=True))


def features_relation(ctx: Context) -> tuple[str, list[Any], str]:
    """A SQL relation of customer features for the as-of date, its params and a caveat."""

    def resolve() -> tuple[str, list[Any], str]:
        r = ctx.reader
        hist = "marts.customer_feature_history"
        if r.has(hist) and r.pick(hist, "as_of_date") and r.pick(hist, "customer_id"):
            n = r.scalar(f"select count(*) from {hist} where as_of_date = ?", [ctx.as_of])
            if n:
                return f"(select * from {hist} where as_of_date = ?)", [ctx.as_of], ""
        cur = "marts.customer_features"
        r.require(cur, "customer_id")
        if r.pick(cur, "as_of_date"):
            found = r.scalar(f"select max(as_of_date) from {cur}")
            if found is None:
                raise Missing(f"{cur} is empty")
            caveat = "" if found == ctx.as_of else f"features are as of {found}, not {ctx.as_of}"
            return f"(select * from {cur} where as_of_date = ?)", [found], caveat
        return cur, [], ""

    return ctx.cached("features", resolve)


SEGMENT_FEATURE_TABLE = "_report_segment_features"


def segment_features(ctx: Context) -> tuple[str, set[str], str]:
    """A temp table joining this run's segments to the features the report uses.

    Built once (one join of two million-row tables), then personas, categories and the RFM
    heatmap aggregate it in milliseconds. Temp tables live in memory, so this works on a
    read-only connection and never touches the warehouse file.
    """

    def build() -> tuple[str, set[str], str]:
        r = ctx.reader
        segment_sizes(ctx)  # raises Missing first when there are no segments
        relation, params, caveat = features_relation(ctx)
        hist = "marts.customer_feature_history"
        available = set(r.columns(hist if hist in relation else "marts.customer_features"))
        wanted = [c for c, _, _ in KEY_FEATURES]
        wanted += ["email_opt_in", "ads_opt_in", "favourite_category"]
        wanted += ["r_score", "f_score", "m_score"]
        cols = [c for c in wanted if c in available]
        picks = "".join(f", f.{quote(c)}" for c in cols)
        outlier_col = r.pick("ml.customer_segments", "is_outlier")
        outlier = f"coalesce(s.{quote(outlier_col)}, false)" if outlier_col else "false"
        r.con.execute(
            f"""
            create or replace temp table {SEGMENT_FEATURE_TABLE} as
            select cast(s.segment_id as varchar) as segment_id,
                {outlier} as is_outlier{picks}
            from ml.customer_segments as s
            inner join {relation} as f on f.customer_id = s.customer_id
            where s.as_of_date = ?
            """,
            [*params, ctx.as_of],
        )
        n = r.scalar(f"select count(*) from {SEGMENT_FEATURE_TABLE}")
        if not n:
            raise Missing(f"no customer of the {ctx.as_of} segments is in the feature table")
        return SEGMENT_FEATURE_TABLE, set(cols), caveat

    return ctx.cached("segment_features", build)


def block_segment_sizes(ctx: Context) -> str:
    sizes = segment_sizes(ctx)
    prev_date = sizes.attrs.get("previous_date")
    total = int(sizes["customers"].sum())
    ctx.facts["customers"] = total
    ctx.facts["segments"] = len(sizes)
    outliers = int(sizes["outliers"].sum())
    if prev_date is not None:
        ctx.facts["previous_run"] = _day(prev_date)
        change = sizes.dropna(subset=["previous_customers"]).copy()
        change = change[change["previous_customers"] > 0]
        if not change.empty:
            change["rel"] = change["customers"] / change["previous_customers"] - 1
            mover = change.loc[change["rel"].abs().idxmax()]
            ctx.facts["mover"] = (
                mover["segment_name"],
                float(mover["rel"]),
                int(mover["previous_customers"]),
                int(mover["customers"]),
            )
        new = sizes[sizes["previous_customers"].fillna(0) == 0]["segment_name"].tolist()
        if new:
            ctx.facts["new_segments"] = new
    svg = charts.segment_sizes(
        sizes["segment_name"].tolist(),
        sizes["customers"].astype(int).tolist(),
        [None if pd.isna(v) else float(v) for v in sizes["previous_customers"]],
        ctx.as_of,
    )
    caption = f"{total:,} customers this run"
    if prev_date is not None:
        caption += f"; ticks show the run of {prev_date}"
    if outliers:
        caption += f"; {outliers:,} flagged as outliers (far from every centroid)"
    tbl = sizes.assign(
        share=sizes["customers"] / max(total, 1),
        change=(sizes["customers"] / sizes["previous_customers"] - 1).where(
            sizes["previous_customers"] > 0
        ),
    )[["segment_id", "segment_name", "customers", "share", "previous_customers", "change"]]
    tbl = tbl.rename(
        columns={"segment_id": "id", "segment_name": "segment", "previous_customers": "last run"}
    )
    return grid(
        figure("segment-sizes", svg, caption),
        table(
            tbl,
            formats={
                "share": fmt_pct,
                "change": lambda v: "–" if pd.isna(v) else f"{v:+.1%}",
                "customers": fmt_int,
                "last run": fmt_int,
            },
        ),
    )


def block_personas(ctx: Context) -> str:
    sizes = segment_sizes(ctx)
    profiles = _profiles(ctx)
    descriptions = (
        profiles.set_index("segment_id")["description"].to_dict()
        if "description" in profiles
        else {}
    )
    total = max(int(sizes["customers"].sum()), 1)
    stats, population, categories, caveat = None, None, {}, ""
    try:
        stats, population, categories, caveat = _persona_stats(ctx)
    except Missing as exc:
        caveat = f"feature values not available yet: {exc}"
    cards = []
    for row in sizes.itertuples(index=False):  # one card per segment (a handful)
        sid = row.segment_id
        body = [
            f"<h4>{esc(row.segment_name)}</h4>",
            f'<div class="size">segment {esc(sid)} · {row.customers:,} customers · '
            f"{row.customers / total:.1%}</div>",
        ]
        if descriptions.get(sid):
            body.append(f'<div class="desc">{esc(descriptions[sid])}</div>')
        if stats is not None and sid in stats.index:
            body.append(_feature_rows(stats.loc[sid], population, ctx.cache.get("currency")))
            consent = [
                f"{label} {stats.loc[sid, col]:.0%}"
                for col, label in (("email_opt_in", "e-mail"), ("ads_opt_in", "ads"))
                if col in stats.columns and pd.notna(stats.loc[sid, col])
            ]
            if consent:
                body.append(f'<div class="tags">consent: {esc(" · ".join(consent))}</div>')
        if categories.get(sid):
            body.append(f'<div class="tags">top categories: {esc(categories[sid])}</div>')
        if row.outliers:
            body.append(
                f'<div class="tags">{row.outliers:,} outliers, left out of the medians</div>'
            )
        cards.append('<div class="card">' + "".join(body) + "</div>")
    legend = (
        "Figures are medians per customer (half the segment's customers are above, half "
        "below), leaving out the outliers as the segmentation's profiles do; bars compare "
        "them with the median customer of the whole shop (black tick; 1.0× = same as "
        "everyone; – where that median is 0). Consent is the share of all the segment's "
        "customers; top categories leave the outliers out."
    )
    return (
        (note(caveat, "info") if caveat else "")
        + f'<p class="lead">{esc(legend)}</p><div class="cards">'
        + "".join(cards)
        + "</div>"
    )


# Whom a feature's median is over when some customers have no value (null: never ordered,
# no cart): "Never visited", 2,060 customers of whom some 60 ever ordered, read "median days
# since order: 97" as the segment's typical customer.
WHO_HAS = {
    "recency_days": "who ordered",
    "avg_order_value": "who ordered",
    "cart_abandonment_rate_90d": "with a cart in 90 days",
}


# Money per customer: its label names the currency ("median order value: 312" said not
# which money; the page header did, far above the cards).
MONEY_FEATURES = {"revenue_total", "avg_order_value"}


def _feature_rows(values: pd.Series, population: pd.Series, currency: str | None = None) -> str:
    rows = []
    members = values.get("_members")
    for col, label, fmt in KEY_FEATURES:
        if col in MONEY_FEATURES and currency:
            label = f"{label} ({currency})"
        if col not in values.index or pd.isna(values[col]):
            continue
        pop = population.get(col)
        ratio = values[col] / pop if pop and pd.notna(pop) and pop != 0 else np.nan
        width = 0 if pd.isna(ratio) else min(ratio / 3, 1) * 100
        shown = esc(fmt.format(values[col]))
        have, base = values.get(f"_n_{col}"), ""
        if members and have is not None and pd.notna(have) and have < members:
            who = WHO_HAS.get(col, "with a value")
            base = f" <small>(the {int(have):,} of {int(members):,} {esc(who)})</small>"
        rows.append(
            f'<div class="feat"><span>median {esc(label)}: <b>{shown}</b>{base}'
            f'</span><div class="bar"><span style="width:{width:.0f}%"></span>'
            f'<i style="left:33.3%"></i></div>'
            f'<span class="idx">{"–" if pd.isna(ratio) else f"{ratio:.1f}×"}</span></div>'
        )
    return "".join(rows)


def _persona_stats(ctx: Context) -> tuple[pd.DataFrame, pd.Series, dict[str, str], str]:
    def compute():
        table_, cols, caveat = segment_features(ctx)
        feats = [c for c, _, _ in KEY_FEATURES if c in cols]
        consent = [c for c in ("email_opt_in", "ads_opt_in") if c in cols]
        if not feats and not consent:
            raise Missing("marts.customer_features has none of the persona features")
        # Medians over the non-outliers, as ml.segment_profiles' median_<feature>; consent
        # shares over every member, as its <flag>_share.
        aggs = [
            f"median(cast({quote(c)} as double)) filter (where not is_outlier) as {quote(c)}"
            for c in feats
        ]
        aggs += [f"avg(cast({quote(c)} as integer)) as {quote(c)}" for c in consent]
        # How many of the non-outliers each median is over (nulls have no value to rank).
        aggs += ["count(*) filter (where not is_outlier) as _members"]
        aggs += [
            f"count({quote(c)}) filter (where not is_outlier) as {quote('_n_' + c)}" for c in feats
        ]
        frame = ctx.reader.df(
            f"""
            select segment_id, {", ".join(aggs)}
            from {table_}
            group by grouping sets ((segment_id), ())
            """
        )
        population = frame[frame["segment_id"].isna()].iloc[0] if len(frame) else pd.Series()
        stats = frame.dropna(subset=["segment_id"]).set_index("segment_id")
        categories: dict[str, str] = {}
        if "favourite_category" in cols:
            top = ctx.reader.df(
                f"""
                select segment_id, category, n, share, with_category from (
                    select
                        segment_id,
                        favourite_category as category,
                        count(*) as n,
                        count(*) / sum(count(*)) over (partition by segment_id) as share,
                        sum(count(*)) over (partition by segment_id) as with_category,
                        row_number() over (
                            partition by segment_id order by count(*) desc, favourite_category
                        ) as rank
                    from {table_}
                    where favourite_category is not null and not is_outlier
                    group by segment_id, favourite_category
                )
                where rank <= 3
                order by segment_id, n desc
                """
            )
            for sid, group in top.groupby("segment_id", sort=False):
                categories[sid] = ", ".join(
                    f"{c} {s:.0%}" for c, s in zip(group["category"], group["share"], strict=True)
                )
                members = stats["_members"].get(sid) if "_members" in stats else None
                have = int(group["with_category"].iloc[0])
                if members and have < members:
                    categories[sid] += f" (of the {have:,} of {int(members):,} with one)"
        return stats, population, categories, caveat

    return ctx.cached("persona_stats", compute)


def block_rfm_heatmap(ctx: Context) -> str:
    sizes = segment_sizes(ctx)
    table_, cols, caveat = segment_features(ctx)
    scores = [c for c in ("r_score", "f_score", "m_score") if c in cols]
    if not scores:
        raise Missing("marts.customer_features has no r_score/f_score/m_score")
    sets = ", ".join(f"(segment_id, {c})" for c in scores)
    groupings = ", ".join(f"grouping({c}) as g_{c}" for c in scores)
    frame = ctx.reader.df(
        f"""
        select segment_id, {", ".join(scores)}, {groupings}, count(*) as n
        from {table_}
        group by grouping sets ({sets})
        """
    )
    first = frame[frame[f"g_{scores[0]}"] == 0]
    if first[scores[0]].isna().all():
        # Nobody is scored: a shop with too few buyers to rank into quintiles. The chart
        # showed every segment 100% "none = no order, no score" beside cards saying 9 of
        # 12 customers had ordered.
        why = "no customer is scored"
        if "order_count" in cols:
            buyers = int(ctx.reader.scalar(f"select count(*) from {table_} where order_count > 0"))
            why = (
                f"{plural(buyers, 'customer')} of {int(first['n'].sum()):,} ordered, too few to "
                "rank into quintiles (dbt var rfm_min_customers; marts.customer_features."
                "rfm_segment says 'Too few buyers')"
                if buyers
                else "no customer has ordered yet"
            )
        raise Missing(f"no R/F/M scores for {ctx.as_of}: {why}")
    order = sizes["segment_id"].tolist()
    col_labels, blocks = [], []
    for c in scores:
        part = frame[frame[f"g_{c}"] == 0]
        letter = c[0].upper()
        pivot = part.pivot_table(
            index="segment_id", columns=part[c].fillna(0).astype(int), values="n", aggfunc="sum"
        ).reindex(index=order, columns=range(1, 6))
        per_segment = part.groupby("segment_id")["n"].sum().reindex(order)
        blocks.append(pivot.div(per_segment, axis=0).fillna(0).to_numpy())
        col_labels += [f"{letter}{i}" for i in range(1, 6)]
    unscored = first[first[scores[0]].isna()].groupby("segment_id")["n"].sum().reindex(
        order
    ).fillna(0) / first.groupby("segment_id")["n"].sum().reindex(order)
    blocks.append(unscored.fillna(0).to_numpy().reshape(-1, 1))
    col_labels.append("none")
    matrix = np.hstack(blocks)
    svg = charts.heatmap(
        "segment-rfm",
        charts.dated("Segment by R/F/M score (share of the segment)", ctx.as_of),
        matrix,
        sizes["segment_name"].tolist(),
        col_labels,
        separators=[4.5 + 5 * i for i in range(len(scores))],
        xlabel="R = recency, F = frequency, M = monetary; 5 = best; none = no order, no score",
    )
    data = pd.DataFrame(matrix, columns=col_labels)
    data.insert(0, "segment", sizes["segment_name"].tolist())
    return figure(
        "segment-rfm",
        svg,
        caveat or "Within each of R, F and M, a row plus its 'none' share sums to 100%.",
        True,
        data=table(data, formats={c: partial(fmt_pct, digits=0) for c in col_labels}),
    )


def _transition_counts(ctx: Context) -> tuple[pd.DataFrame, str]:
    """``from_id, to_id, n`` (None = new/gone) for the as-of run and where it came from."""
    r, t = ctx.reader, "ml.segment_transitions"
    if r.has(t):
        src = r.pick(t, "from_segment_id", "previous_segment_id", "from_segment", "segment_from")
        dst = r.pick(t, "to_segment_id", "to_segment", "segment_to", "segment_id")
        cnt = r.pick(t, "customers", "customer_count", "n_customers", "count", "n")
        if src and dst and cnt:
            where, params = "", []
            if r.pick(t, "as_of_date"):
                where, params = "where as_of_date = ?", [ctx.as_of]
            frame = r.df(
                f"""
                select
                    cast({quote(src)} as varchar) as from_id,
                    cast({quote(dst)} as varchar) as to_id,
                    sum({quote(cnt)}) as n
                from {t} {where}
                group by all
                """,
                params,
            )
            if not frame.empty:
                since = None
                if r.pick(t, "previous_as_of_date") and where:
                    since = r.scalar(f"select max(previous_as_of_date) from {t} {where}", params)
                since = since or segment_sizes(ctx).attrs.get("previous_date")
                frame.attrs["previous_date"] = since
                return frame, f"from {t}"
    prev = segment_sizes(ctx).attrs.get("previous_date")
    if prev is None:
        raise Missing("this is the first segmentation run: nothing to compare with yet")
    frame = r.df(
        """
        select
            cast(p.segment_id as varchar) as from_id,
            cast(c.segment_id as varchar) as to_id,
            count(*) as n
        from (select customer_id, segment_id from ml.customer_segments where as_of_date = ?) as p
        full outer join (
            select customer_id, segment_id from ml.customer_segments where as_of_date = ?
        ) as c on p.customer_id = c.customer_id
        group by all
        """,
        [prev, ctx.as_of],
    )
    frame.attrs["previous_date"] = prev
    return frame, f"computed from ml.customer_segments, {prev} to {ctx.as_of}"


def block_transitions(ctx: Context) -> str:
    frame, source = _transition_counts(ctx)
    if frame["from_id"].isna().all():
        raise Missing("this is the first segmentation run: nothing to compare with yet")
    names = segment_names(ctx)
    frame["from_id"] = frame["from_id"].fillna("(new)")
    frame["to_id"] = frame["to_id"].fillna("(gone)")
    order = list(names)
    extra_from = sorted(set(frame["from_id"]) - set(order) - {"(new)"})
    extra_to = sorted(set(frame["to_id"]) - set(order) - {"(gone)"})
    rows = order + extra_from + (["(new)"] if "(new)" in set(frame["from_id"]) else [])
    cols = order + extra_to + (["(gone)"] if "(gone)" in set(frame["to_id"]) else [])
    counts = (
        frame.pivot_table(index="from_id", columns="to_id", values="n", aggfunc="sum")
        .reindex(index=rows, columns=cols)
        .fillna(0)
    )
    row_share = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0).to_numpy()
    total = float(counts.to_numpy().sum())
    stayed = float(sum(counts.loc[x, x] for x in order if x in counts.index and x in counts))
    new = float(counts.loc["(new)"].sum()) if "(new)" in counts.index else 0.0
    gone = float(counts["(gone)"].sum()) if "(gone)" in counts.columns else 0.0
    moved = total - stayed - new - gone
    since = frame.attrs.get("previous_date")
    if total - new > 0:
        ctx.facts["stayed_share"] = stayed / (total - new)
        ctx.facts["stayed_since"] = _day(since) if since is not None else None
    before = f"segment on {_day(since)}" if since is not None else "segment last run"
    label = {**names, "(new)": "(new customers)", "(gone)": "(left)"}
    annotations = np.vectorize(lambda v: f"{v:,.0f}" if v else "")(counts.to_numpy())
    svg = charts.heatmap(
        "segment-transitions",
        "Where last run's customers are now (colour = share of the row)",
        row_share,
        [label.get(x, f"retired {x}") for x in rows],
        [label.get(x, x) for x in cols],
        annotations=annotations,
        xlabel=f"segment on {ctx.as_of}",
        ylabel=before,
        cmap="Purples",
        width=max(charts.WIDE_INCHES, 0.95 * len(cols) + 3.2),
    )
    caption = (
        (f"Since {_gap(since, ctx.as_of)}: " if since is not None else "")
        + f"{stayed:,.0f} customers kept their segment, {moved:,.0f} moved to another, "
        f"{new:,.0f} are new and {gone:,.0f} left ({source})."
    )
    data = counts.copy()
    data.columns = [label.get(x, x) for x in cols]
    data.insert(
        0,
        f"{before} (rows) → segment on {ctx.as_of} (columns)",
        [label.get(x, f"retired {x}") for x in rows],
    )
    return figure(
        "segment-transitions",
        svg,
        caption,
        wide=True,
        data=table(data, formats={c: fmt_int for c in data.columns[1:]}),
    )


def block_k_selection(ctx: Context) -> str:
    r, t = ctx.reader, "ml.k_selection"
    r.require(t, "k")
    inertia = r.pick(t, "inertia", "sse", "wcss")
    sil = r.pick(t, "silhouette", "silhouette_score", "silhouette_sample")
    if not inertia and not sil:
        raise Missing(f"{t} has neither inertia nor silhouette")
    chosen_col = r.pick(t, "is_chosen", "chosen", "selected", "is_selected")
    where, params, used, kept = "", [], None, None
    if r.pick(t, "as_of_date"):
        used = latest_date(ctx, t)
        # A night that kept the previous k without a search (docs/segmentation.md, Cadence)
        # holds one row: its chart was one dot, "Candidates k = 4..4 ... the k the rule
        # chose". Show the last search, and say tonight's k was kept.
        ks = r.rows(f"select distinct k from {t} where as_of_date = ?", [used])
        if len(ks) == 1:
            searched = r.scalar(
                f"select max(as_of_date) from (select as_of_date from {t} "
                "where as_of_date < ? group by as_of_date having count(distinct k) > 1)",
                [used],
            )
            if searched is not None:
                kept, used = (int(ks[0][0]), used), date.fromisoformat(_day(searched)[:10])
        where, params = "where as_of_date = ?", [used]
    run = None
    if r.pick(t, "run_id"):
        run = r.scalar(f"select max(run_id) from {t} {where}", params)
        where = (where + " and" if where else "where") + " run_id = ?"
        params = [*params, run]
    frame = r.df(
        f"""
        select
            k,
            avg({quote(inertia) if inertia else "null"}) as inertia,
            avg({quote(sil) if sil else "null"}) as silhouette,
            bool_or({f"cast({quote(chosen_col)} as boolean)" if chosen_col else "false"})
                as chosen
        from {t} {where}
        group by k
        order by k
        """,
        params,
    )
    if frame.empty:
        raise Missing(f"{t} has no rows for this run")
    chosen = int(frame.loc[frame["chosen"], "k"].iloc[0]) if frame["chosen"].any() else None
    if chosen is None:
        try:
            chosen = len(segment_sizes(ctx))
        except Missing:
            chosen = None
    if len(frame) == 1 and not kept:
        # No search: one candidate (a shop too small to split). The chart was one dot of
        # inertia beside an empty silhouette panel (undefined for one segment).
        k = int(frame["k"].iloc[0])
        why = _k_reason(ctx, run, used)
        return note(
            f"No choice to show: the {'run of ' + str(used) if used else 'latest run'} tried "
            f"only k = {k}" + (f" ({why})" if why else "") + ".",
            kind="info",
        )
    svg = charts.k_selection(
        frame["k"].astype(int).tolist(),
        frame["inertia"].tolist(),
        frame["silhouette"].tolist(),
        chosen,
        used,
    )
    when = f"run of {used}" if used else "latest run"
    if kept:
        when = f"search of {used}"
    caption = (
        f"Candidates k = {frame['k'].min()}..{frame['k'].max()} ({when}); the dashed line "
        'labelled "chosen k" marks the k the rule chose.'
    )
    if kept:
        caption += (
            f" The run of {kept[1]} kept k = {kept[0]} without a new search (k is searched "
            "again every few days, or when the settings change)."
        )
    scored = frame.dropna(subset=["silhouette"])
    if len(scored) > 1:
        caption += (
            " Silhouette per k (how much nearer customers are to their own segment than to "
            "the next, from -1 to 1; higher is better): "
            + ", ".join(
                f"k = {int(k)}: {s:.3f}" + (" (chosen)" if int(k) == chosen else "")
                for k, s in zip(scored["k"], scored["silhouette"], strict=True)
            )
            + "."
        )
    why = _k_reason(ctx, run, used)
    if why:
        caption += f" Why k = {chosen}: {why}."
    return figure(
        "k-selection",
        svg,
        caption,
        wide=True,
    )


def _k_reason(ctx: Context, run: Any, night: date | None) -> str | None:
    """The segment stage's reason for the k of the search shown (``metrics.k_reason`` of its
    run in ``ml.model_runs``, by run id, else by date); None when not recorded."""
    reason = _segmentation_metric(ctx, "k_reason", run, night)
    return reason.rstrip(".") if reason else None


def _drift_not_measured(ctx: Context) -> str | None:
    """Why the segment stage measured no drift tonight (``metrics.drift_not_measured`` of
    the night's segmentation run: the feature definition changed since the previous run);
    None when it did, or nothing says."""
    return _segmentation_metric(ctx, "drift_not_measured", None, ctx.as_of)


def _segmentation_metric(ctx: Context, key: str, run: Any, night: date | None) -> str | None:
    """``metrics[key]`` of a segmentation run in ``ml.model_runs``: the run ``run`` when
    given, else the night's latest; None when the table, the run or the key is missing."""
    r, t = ctx.reader, "ml.model_runs"
    if not r.has(t) or not r.pick(t, "metrics"):
        return None
    if run is not None and r.pick(t, "run_id"):
        rows = r.rows(f"select metrics from {t} where run_id = ?", [run])
    elif night is not None and r.pick(t, "as_of_date") and r.pick(t, "model_name"):
        order = "created_at desc" if r.pick(t, "created_at") else "run_id desc"
        rows = r.rows(
            f"select metrics from {t} where model_name = 'segmentation' and as_of_date = ? "
            f"order by {order} limit 1",
            [night],
        )
    else:
        return None
    if not rows or rows[0][0] is None:
        return None
    try:
        metrics = json.loads(rows[0][0]) if isinstance(rows[0][0], str) else rows[0][0]
    except ValueError:
        return None
    value = metrics.get(key) if isinstance(metrics, dict) else None
    return str(value) if value else None


# --- propensity --------------------------------------------------------------------------


def propensity_models(ctx: Context) -> list[str]:
    """Models with scores, or with classification metrics (ROC-AUC) though not scored: other
    models share ``ml.model_metrics`` (recommendations report recall@k) and are not
    propensity models."""
    r = ctx.reader
    names: list[str] = []
    window = [ctx.as_of, ctx.as_of - timedelta(days=366)]
    scored: list[str] = []
    tonight: set[str] = set()
    if r.has("ml.propensity_scores") and r.pick("ml.propensity_scores", "model_name"):
        rows = r.rows(
            "select model_name, bool_or(as_of_date = ?) from ml.propensity_scores "
            "where as_of_date <= ? and as_of_date >= ? group by model_name",
            [ctx.as_of, *window],
        )
        scored += [row[0] for row in rows]
        tonight = {row[0] for row in rows if row[1]}
    t = "ml.model_metrics"
    if r.has(t) and r.pick(t, "model_name") and r.pick(t, "metric") and r.pick(t, "as_of_date"):
        names += [
            row[0]
            for row in r.rows(
                f"select distinct model_name from {t} where as_of_date <= ? and as_of_date >= ? "
                "and lower(metric) in ('roc_auc', 'auc', 'auc_roc')",
                window,
            )
        ]
    # A model the score stage ran but never scored with (a young shop: too little history,
    # too few labelled examples, no model beat the baselines) gets its status line, which
    # carries the stage's reason from ml.model_runs: so does one whose scores are a baseline
    # rule's ranking (no model published) with no evaluation to chart.
    ruled = {m for m in scored if (kept := _scored_with(ctx, m)) and kept[0] in RULES}
    # So does one with no evaluation and no scores tonight (the score stage did not run for
    # the night): its charts were five lines of "ml.model_metrics has no rows for model
    # churn on or before 2026-07-01" under a status line that says why already.
    names += [m for m in scored if m in names or (m not in ruled and m in tonight)]
    unscored = [m for m in PROPENSITY_MODELS if m not in names and _model_run(ctx, m)]
    ctx.cache["propensity:run_only"] = set(unscored)
    names += unscored
    if not names:
        if not r.has("ml.propensity_scores"):
            raise Missing("table ml.propensity_scores does not exist yet")
        raise Missing(f"no propensity scores or metrics on or before {ctx.as_of}")
    return sorted(dict.fromkeys(n for n in names if n is not None))


def _model_run(ctx: Context, model: str) -> dict[str, Any] | None:
    r, t = ctx.reader, "ml.model_runs"
    if not r.has(t) or not r.pick(t, "model_name") or not r.pick(t, "as_of_date"):
        return None
    wanted = ("run_id", "status", "message", "metrics", "params", "created_at")
    cols = [c for c in wanted if r.pick(t, c)]
    order = "created_at desc" if "created_at" in cols else "1"
    for cond in ("model_name = ?", "model_name like '%' || ? || '%'"):
        rows = r.df(
            f"select as_of_date, {', '.join(cols)} from {t} "
            f"where {cond} and as_of_date <= ? order by as_of_date desc, {order} limit 1",
            [model, ctx.as_of],
        )
        if not rows.empty:
            return rows.iloc[0].to_dict()
    return None


def _metrics(ctx: Context, model: str) -> tuple[dict, dict, date]:
    def load():
        r, t = ctx.reader, "ml.model_metrics"
        r.require(t, "model_name", "metric", "value")
        when_col = r.pick(t, "as_of_date")
        where, params, when = "where model_name = ?", [model], None
        if when_col:
            when = r.scalar(
                f"select max(as_of_date) from {t} where model_name = ? and as_of_date <= ?",
                [model, ctx.as_of],
            )
            if when is None:
                raise Missing(f"{t} has no rows for model {model} on or before {ctx.as_of}")
            where += " and as_of_date = ?"
            params.append(when)
        if r.pick(t, "run_id"):
            run = r.scalar(f"select max(run_id) from {t} {where}", params)
            where += " and run_id = ?"
            params.append(run)
        scorer = r.pick(t, "scorer", "baseline", "model_variant")
        idx = r.pick(t, *INDEX_COLUMNS)
        select = (
            f"{f'cast({quote(scorer)} as varchar)' if scorer else repr('model')} as scorer, "
            f"metric, cast(value as double) as value" + (f", {quote(idx)} as idx" if idx else "")
        )
        frame = r.df(f"select {select} from {t} {where}", params)
        if frame.empty:
            raise Missing(f"{t} has no rows for model {model}")
        scorers = set(frame["scorer"])
        if "model" not in scorers:
            candidate = next(
                (
                    s
                    for s in sorted(scorers)
                    if s == model or any(w in s.lower() for w in ("model", "hgb", "calibrated"))
                ),
                None,
            )
            if candidate:
                frame.loc[frame["scorer"] == candidate, "scorer"] = "model"
        scalars, curves = parse_metrics(frame, "idx" if idx else None)
        return scalars, curves, when

    return ctx.cached(f"metrics:{model}", load)


def _day(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, pd.Timestamp) else str(value)


BASELINES_IN_WORDS = (
    "The dashed and dash-dotted lines are the simple rules a marketer would use without a "
    "model: the recency rule (baseline_recency) ranks customers by the days since their last "
    "order (for "
    "churn, since their last order or visit); the BG/NBD model (baseline_bgnbd) by the "
    "purchases their order history predicts."
)


def _in_words(message: str) -> str:
    """A run's stored message with the baselines named in words ("beats the recency rule")."""
    for code, name in charts.SCORER_NAMES.items():
        message = re.sub(rf"\b{code}\b", f"the {name}", message)
    return message


# The score stage's gate message ("churn: holdout AUC 0.860 does not beat baseline_recency
# 0.876; not published"), whose figures the status line and the summary already give.
_GATE_MESSAGE = re.compile(r"holdout AUC [0-9.]+ ((?:beats|does not beat) .+) [0-9.]+")
# A higher AUC within the holdout's noise ("purchase: holdout AUC 0.882 does not beat
# baseline_recency 0.866 beyond chance (p = 0.38, needs below 0.05, on 68 holdout customers,
# 15 positive): ..."): the line keeps the verdict and the p-value, its figures are beside it.
_CHANCE_MESSAGE = re.compile(
    r"holdout AUC [0-9.]+ (does not beat .+) [0-9.]+ beyond chance \(p = ([0-9.]+),.*"
)


def run_reason(model: str, status: str, message: Any, compared: bool) -> str:
    """The run's stored message without what the page says beside it: the model's name,
    the status, and, when the AUC is shown against its best rule (``compared``), the
    figures of the comparison (kept in words: "does not beat the recency rule").

    "Run churn-… : not published — churn: holdout AUC 0.860 does not beat the recency
    rule 0.876; not published" repeated the line's own AUC, rule and status."""
    if not isinstance(message, str):
        return ""
    text = _in_words(message).removeprefix(f"{model}: ")
    words = status.replace("_", " ")
    text = text.removesuffix(f"; {words}").removesuffix(words).strip("; ")
    gate = _GATE_MESSAGE.fullmatch(text)
    if gate and compared:
        return gate.group(1)
    chance = _CHANCE_MESSAGE.fullmatch(text)
    if chance and compared:
        return f"{chance.group(1)} beyond chance, p = {chance.group(2)}"
    return text


def aside(reason: str) -> str:
    """A run's reason after its status: in brackets, or after a colon when it has brackets
    of its own ("reused (scored with the registered model purchase-… (trained as of
    2026-01-01, …; retrain every 7 days))" closed two brackets at once)."""
    return f": {reason}" if "(" in reason else f" ({reason})"


def block_model_status(ctx: Context, model: str) -> str:
    parts = []
    run = _model_run(ctx, model)
    try:
        scalars, _, when = _metrics(ctx, model)
    except Missing:
        scalars, when = {}, None
    auc = scalar(scalars.get("model", {}), "auc")
    baselines = {
        s: scalar(m, "auc")
        for s, m in scalars.items()
        if s != "model" and scalar(m, "auc") is not None
    }
    fact: dict[str, Any] = {"model": model, "auc": auc}
    if auc is not None:
        text = f"Holdout ROC-AUC <b>{auc:.3f}</b>"
        if baselines:
            best = max(baselines, key=baselines.get)
            # The gate's paired test (ml.propensity: DeLong): a higher AUC on a small
            # holdout can be chance, and was shown green beside a model not published.
            p_value = scalars[best].get("model_better_p_value")
            threshold = gate_threshold(run)
            chance = p_value is not None and p_value >= threshold
            verdict = "good" if auc > baselines[best] and not chance else "bad"
            text += (
                f" against the best simple rule, the {esc(charts.scorer_label(best))} "
                f'(<code>{esc(best)}</code>) <span class="{verdict}">'
                f"{baselines[best]:.3f}</span>"
            )
            if p_value is not None and auc > baselines[best]:
                text += f", a lead chance alone gives with p = {p_value:.2f}" + (
                    f" (below {threshold:g} counts as real: not beyond chance)" if chance else ""
                )
            fact["baseline"] = (best, baselines[best])
            if p_value is not None:
                fact["p_value"], fact["gate_p_value"] = p_value, threshold
        for kind, label in (("ap", "average precision"), ("brier", "Brier score")):
            value = scalar(scalars.get("model", {}), kind)
            if value is not None:
                text += f"; {label} {value:.3f}"
        parts.append(text + (f" (evaluated {when})." if when else "."))
        who = POSITIVES.get(model, ("positives",))[0]
        parts.append(
            f"ROC-AUC, in words: how often the scores rank one of the holdout's {who} above "
            "one of the others, 0.5 being a coin toss and 1 always; measured on the "
            "holdout, customers the model never learnt from."
        )
        crowd = _crowd(scalars)
        if crowd:
            fact["crowd"] = crowd
            others = f"among the other {crowd['others']:,}: ROC-AUC <b>{crowd['auc']:.3f}</b>"
            if crowd.get("baseline"):
                name, value = crowd["baseline"]
                others += f" against the {esc(charts.scorer_label(name))} {value:.3f}"
            parts.append(
                f"{crowd['rows']:,} of {crowd['total']:,} holdout customers "
                f"({crowd['rows'] / crowd['total']:.0%}) never visited nor ordered before the "
                f"cut-off: ranking them last lifts every AUC; {others}."
            )
    if (
        run
        and _day(run.get("as_of_date")) != ctx.as_of.isoformat()
        and not _scored_with(ctx, model)
    ):
        # The score stage did not run tonight (skipped, or the night failed before it): the
        # newest run is an older night's, and "published" read as tonight's scores.
        fact["stale"] = _day(run.get("as_of_date"))
        parts.insert(
            0,
            f'<span class="bad">No {esc(model)} scores for {ctx.as_of}</span>: the score stage '
            f"did not run for it; the newest run, below, is of {esc(fact['stale'])}.",
        )
    if run:
        status = str(run.get("status") or "unknown")
        # "reused": a night between retrainings scored with the last published model
        cls = "good" if status in ("published", "reused") else "bad" if "not" in status else "warn"
        msg = run.get("message")
        fact["status"], fact["message"] = status, msg
        reason = run_reason(model, status, msg, auc is not None and bool(baselines))
        parts.append(
            f"Run <code>{esc(run.get('run_id', ''))}</code> of {esc(_day(run.get('as_of_date')))}: "
            f'<span class="{cls}">{esc(status.replace("_", " "))}</span>'
            + (esc(aside(reason)) if reason else "")
            + "."
        )
        kept = _scored_with(ctx, model) if status == "not_published" else None
        if kept and kept[0] in RULES:
            # No model published yet: the score stage ranked tonight's customers by the
            # rule (ml.propensity_scores.ranked_by), which read "come from the last
            # published model baseline_recency".
            fact["ranked_by"] = kept
            # First, in bold: under the candidate's AUC, the rule's ranking read as an
            # afterthought to a reader looking for what tonight's list is.
            parts.insert(
                0,
                f"<b>Tonight's {esc(model)} list is the {esc(charts.scorer_label(kept[0]))}'s "
                f"ranking.</b> No {esc(model)} model is published yet: tonight's {kept[1]:,} "
                f"{esc(model)} scores and the audiences built on them rank customers by the "
                f"{esc(charts.scorer_label(kept[0]))} (<code>{esc(kept[0])}</code>), not by a "
                "model: its deciles, and a score that is the share of customers it ranks "
                "below, a rank, not a probability."
                + (
                    " The AUC and the charts below evaluate tonight's candidate, which was "
                    "not published."
                    if auc is not None
                    else ""
                ),
            )
        elif auc is not None and kept and kept[0] != run.get("run_id"):
            fact["scored_with"] = kept
            parts.append(
                "The AUC above and the lift, ROC, calibration and driver charts evaluate "
                f"tonight's candidate, which was not published: tonight's {kept[1]:,} "
                "scores (the score distribution below) and the audiences built on them "
                f"come from the last published model <code>{esc(kept[0])}</code>."
            )
    ctx.facts.setdefault("models", []).append(fact)
    if not parts:
        raise Missing(f"no metrics or run record for model {model}")
    return "<p>" + "<br>".join(parts) + "</p>"


# The rules the score stage ranks by when no model scores (ml.propensity: model_version and
# ranked_by name the rule).
RULES = ("baseline_recency", "baseline_bgnbd")


def _scored_with(ctx: Context, model: str) -> tuple[str, int] | None:
    """The model version that scored the as-of date's ``model`` scores, and how many."""
    r, t = ctx.reader, "ml.propensity_scores"
    if not r.pick(t, "model_version") or not r.pick(t, "model_name"):
        return None
    row = r.rows(
        f"select max(model_version), count(*) from {t} where model_name = ? and as_of_date = ?",
        [model, ctx.as_of],
    )[0]
    return (str(row[0]), int(row[1])) if row[0] is not None else None


def _crowd(scalars: dict[str, dict[str, float]]) -> dict[str, Any] | None:
    """The never-active crowd of the holdout when it is half of it or more (the score
    stage's warning, ml.propensity ``crowd_note``), with the AUCs among the others.

    CRM sign-ups who never visited nor ordered are easy to rank last and lift every AUC:
    2,000 beside 1,300 shoppers, the page said "holdout AUC 0.965 against 0.920" where
    the customers who act were told apart at 0.880 against 0.811."""
    model = scalars.get("model", {})
    crowd, total, auc = (
        model.get("never_active_rows"),
        model.get("rows"),
        model.get("roc_auc_ever_active"),
    )
    if not crowd or not total or auc is None or crowd < total / 2:
        return None
    baselines = {
        s: m["roc_auc_ever_active"]
        for s, m in scalars.items()
        if s != "model" and m.get("roc_auc_ever_active") is not None
    }
    best = max(baselines, key=baselines.get) if baselines else None
    return {
        "rows": int(crowd),
        "total": int(total),
        "others": int(total - crowd),
        "auc": auc,
        "baseline": (best, baselines[best]) if best else None,
    }


def top_down_capture(series: pd.Series) -> pd.Series:
    """Cumulative capture indexed 1..n = "top n deciles targeted".

    Accepts what a writer may store: cumulative capture per decile counted from the top
    (ml.propensity: decile 10 = top, so it falls as the decile number rises), cumulative
    already indexed by deciles targeted (rises), or each decile's share of positives.
    """
    values = series.sort_index().to_numpy(dtype=float)
    if values.size == 0:
        return series
    steps = np.diff(values)
    if np.all(steps <= 1e-9) and values[0] > values[-1]:
        values = values[::-1]  # decile 10 = top, cumulative from the top
    elif not np.all(steps >= -1e-9) or values[-1] < 0.999:
        values = np.cumsum(values[::-1])  # per-decile shares, decile 10 = top
    return pd.Series(values, index=range(1, values.size + 1))


def roc_from_deciles(bases: dict[str, pd.Series]) -> tuple[np.ndarray, np.ndarray] | None:
    """A 10-point ROC curve from a decile table (rows and observed rate per decile).

    Cutting the ranking at each decile boundary, from the top (decile 10) down, gives the
    true positive rate (positives captured) and false positive rate (negatives captured).
    """
    rows = find_curve(bases, ["decile_rows|rows"])
    rate = find_curve(bases, ["observed"])
    if rows is None or rate is None:
        return None
    joined = pd.concat([rows, rate], axis=1, join="inner").dropna().sort_index(ascending=False)
    if joined.empty:
        return None
    positives = joined.iloc[:, 0].to_numpy() * joined.iloc[:, 1].to_numpy()
    negatives = joined.iloc[:, 0].to_numpy() - positives
    if positives.sum() <= 0 or negatives.sum() <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(positives) / positives.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(negatives) / negatives.sum()])
    return fpr, tpr


def block_lift(ctx: Context, model: str) -> str:
    _, curves, when = _metrics(ctx, model)
    lift = {s: c for s, b in curves.items() if (c := find_curve(b, ["lift"], ["cum"])) is not None}
    if not lift:
        lift = {s: c for s, b in curves.items() if (c := find_curve(b, ["lift"])) is not None}
    capture = {
        s: c for s, b in curves.items() if (c := find_curve(b, ["capture|gain"])) is not None
    }
    if not lift and not capture:
        raise Missing(f"ml.model_metrics has no lift or capture by decile for {model}")
    rows = {s: c for s, b in curves.items() if (c := find_curve(b, ["decile_rows"])) is not None}
    points = {s: capture_points(c, rows.get(s)) for s, c in capture.items()}
    model_rows = rows.get("model")
    empty = (
        sorted(int(d) for d, n in model_rows.items() if n == 0) if model_rows is not None else []
    )
    who, outcome = POSITIVES.get(model, ("positives", f"the {model} outcome"))
    svg = charts.lift_capture(f"lift-{model}", lift, points, who, empty, when or ctx.as_of)
    caption = (
        f"Positives: {who}, customers with {outcome} in the holdout's label window. Lift = "
        f"share of {who} in the decile over their share overall; capture = share of all "
        f"{who} found by targeting the customers with the highest scores. " + BASELINES_IN_WORDS
    )
    if empty:
        caption += (
            " Customers with equal scores share a decile: "
            + (
                f"deciles {_ranges(empty)} of the model hold"
                if len(empty) > 1
                else f"decile {empty[0]} of the model holds"
            )
            + " nobody, so the points of capture sit where the deciles' customers end, not "
            "every 10%."
        )
    rate = find_curve(curves.get("model", {}), ["observed"])
    if model_rows is not None and rate is not None:
        caption += top_decile_words(model_rows, rate, who)
    columns = {f"lift, {charts.scorer_label(s)}": c for s, c in lift.items()}
    columns |= {f"capture, {charts.scorer_label(s)}": c for s, c in capture.items()}
    data = pd.DataFrame(columns).sort_index(ascending=False).rename_axis("decile").reset_index()
    formats = {
        c: (partial(fmt_pct, digits=0) if c.startswith("capture") else partial(fmt_num, digits=2))
        for c in columns
    }
    return figure(f"lift-{model}", svg, caption, wide=True, data=table(data, formats=formats))


# The p-value at and above which a model's lead over its best rule is called chance when
# the run does not say which [propensity] gate_p_value judged it (runs of older releases):
# the setting's default.
CHANCE_P_VALUE = 0.05


def gate_threshold(run: dict[str, Any] | None) -> float:
    """The ``[propensity] gate_p_value`` the run's gate applied (``ml.model_runs.params``;
    on a night scoring with the registered model, the one that judged it when it was
    trained). With the gate at 0.01 the page called a lead at p = 0.03 "beyond chance"
    (green, "beats") beside the run the gate had refused, its constant being 0.05."""
    params = (run or {}).get("params")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = None
    value = params.get("gate_p_value") if isinstance(params, dict) else None
    return float(value) if isinstance(value, int | float) and 0 < value <= 1 else CHANCE_P_VALUE


# A top decile of fewer holdout customers than this: its lift is said to be too few to read.
FEW_DECILE_ROWS = 30


def top_decile_words(rows: pd.Series, rate: pd.Series, who: str) -> str:
    """How many holdout customers the model's top decile (the highest one holding any)
    rests on, and, when they are few, that its lift is too few to read: on an 80-customer
    shop it was 11 of 68 customers, where one buyer more or fewer moves the lift by 0.4."""
    rows = rows.fillna(0)
    total = float(rows.sum())
    held = rows[rows > 0].sort_index()
    if held.empty or total <= 0:
        return ""
    decile, count = int(held.index[-1]), float(held.iloc[-1])
    positives = (rows * rate.reindex(rows.index).fillna(0)).round()
    found, overall = float(positives.get(decile, 0.0)), float(positives.sum())
    text = (
        f" The model's top decile (decile {decile}) holds {count:,.0f} of the {total:,.0f} "
        f"holdout customers, {found:,.0f} of them {who}."
    )
    if count < FEW_DECILE_ROWS and overall > 0:
        step = total / (count * overall)
        text += (
            f" Too few to read: one of them more or fewer moves its lift by {step:.1f}, so "
            "take the lift as a rough guide, not a promise."
        )
    return text


def capture_points(capture: pd.Series, rows: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative capture against the share of customers targeted, top scores first.

    Equal scores share a decile (ml.propensity), so a decile may hold more than a tenth of
    the customers or nobody: 2,000 never-active sign-ups with one score fill decile 1 and
    leave 2-6 empty. Drawn against "top n deciles", the capture stayed flat from 4 to 9
    deciles, as if targeting nine tenths of the shop found no more buyers. With the stored
    ``decile_rows`` each point sits where its deciles' customers end; without them the
    deciles are taken as equal tenths."""
    top = top_down_capture(capture)
    n = len(top)
    x = np.arange(1, n + 1) / max(n, 1)
    if rows is not None and n and set(range(1, n + 1)) <= set(rows.index):
        per = rows.reindex(range(n, 0, -1)).to_numpy(dtype=float)  # top decile first
        if per.sum() > 0:
            x = np.cumsum(per) / per.sum()
    return np.concatenate([[0.0], x]), np.concatenate([[0.0], top.to_numpy(dtype=float)])


def _ranges(numbers: list[int]) -> str:
    """``[2, 3, 4, 6]`` -> ``'2-4, 6'``."""
    parts: list[tuple[int, int]] = []
    for n in numbers:
        if parts and parts[-1][1] == n - 1:
            parts[-1] = (parts[-1][0], n)
        else:
            parts.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


# Who the positives of each propensity model are, as ml.propensity labels them: the churn
# charts said "buyer rate" and "share of buyers captured" of the customers who left.
POSITIVES = {
    "purchase": ("buyers", "a purchase"),
    "churn": ("churners", "no purchase and no visit"),
}


# The score distribution's axis in words: "calibrated probability" said nothing to a
# marketer about what the score predicts.
SCORE_AXIS = {
    "purchase": "predicted chance of a purchase (0 to 1)",
    "churn": "predicted chance of churning (0 to 1)",
}


def _first(*candidates: pd.Series | None) -> pd.Series | None:
    return next((c for c in candidates if c is not None), None)


def block_calibration(ctx: Context, model: str) -> str:
    _, curves, when = _metrics(ctx, model)
    points = {}
    for scorer, bases in curves.items():
        pred = _first(
            find_curve(bases, ["calib|cal_", "pred|mean_score|prob"]),
            find_curve(bases, ["mean_pred|predicted"]),
        )
        obs = _first(
            find_curve(bases, ["calib|cal_", "obs|actual|frac|positive|true"]),
            find_curve(bases, ["observed|positive_rate|actual_rate"]),
        )
        if pred is not None and obs is not None:
            joined = pd.concat([pred, obs], axis=1, join="inner").dropna()
            if not joined.empty:
                points[scorer] = (joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy())
    if "model" in points:
        points = {"model": points["model"]}
    if not points:
        raise Missing(f"ml.model_metrics has no calibration table for {model}")
    pred, obs = next(iter(points.values()))
    data = pd.DataFrame({"mean predicted probability": pred, "observed rate": obs})
    return figure(
        f"calibration-{model}",
        charts.calibration(f"calibration-{model}", points, when or ctx.as_of),
        "Points on the diagonal mean a score of 0.3 really is about 30%.",
        data=table(data, formats={c: partial(fmt_num, digits=3) for c in data.columns}),
    )


def block_roc(ctx: Context, model: str) -> str:
    scalars, curves, when = _metrics(ctx, model)
    night = when or ctx.as_of
    aucs = {s: v for s, m in scalars.items() if (v := scalar(m, "auc")) is not None}
    roc = {}
    for scorer, bases in curves.items():
        fpr, tpr = find_curve(bases, ["fpr"]), find_curve(bases, ["tpr"])
        if fpr is not None and tpr is not None:
            joined = pd.concat([fpr, tpr], axis=1, join="inner").dropna().sort_values(0)
            roc[scorer] = (joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy())
    if roc:
        return figure(
            f"roc-{model}", charts.roc(f"roc-{model}", roc, aucs, night), "Holdout ROC curves."
        )
    roc = {s: pts for s, bases in curves.items() if (pts := roc_from_deciles(bases)) is not None}
    if roc:
        return figure(
            f"roc-{model}",
            charts.roc(f"roc-{model}", roc, aucs, night),
            "Holdout ROC curves drawn from the decile tables (one point per decile); the AUC "
            "in the legend is the exact one.",
        )
    table_ = {
        s: {
            k: v
            for k, v in (("ROC-AUC", scalar(m, "auc")), ("avg precision", scalar(m, "ap")))
            if v is not None
        }
        for s, m in scalars.items()
    }
    table_ = {s: v for s, v in table_.items() if v}
    if not table_:
        raise Missing(f"ml.model_metrics has no ROC points or AUC for {model}")
    return figure(
        f"roc-{model}",
        charts.metric_bars(f"roc-{model}", table_, night),
        "ROC points are not stored, so the holdout AUC and average precision are compared.",
    )


def block_score_distribution(ctx: Context, model: str) -> str:
    r, t = ctx.reader, "ml.propensity_scores"
    r.require(t, "model_name", "as_of_date", "score")
    bins = 40
    frame = r.df(
        f"""
        with s as (
            select score from {t}
            where model_name = ? and as_of_date = ? and score is not null
        ),
        bounds as (select min(score) as lo, max(score) as hi, avg(score) as mean from s)
        select
            least(floor((score - lo) / greatest(hi - lo, 1e-12) * {bins}), {bins - 1}) as b,
            any_value(lo) as lo,
            any_value(hi) as hi,
            any_value(mean) as mean,
            count(*) as n
        from s, bounds
        group by 1
        order by 1
        """,
        [model, ctx.as_of],
    )
    if frame.empty:
        raise Missing(f"{t} has no scores for {model} on {ctx.as_of}")
    lo, hi, mean = float(frame["lo"][0]), float(frame["hi"][0]), float(frame["mean"][0])
    width = max(hi - lo, 1e-12) / bins
    ranked = _scored_with(ctx, model)
    if ranked and ranked[0] in RULES:
        # A rule's ranking spreads evenly between 0 and 1 by construction: drawn on the
        # "predicted chance" axis it read as a model's probabilities.
        raise Missing(
            f"tonight's {model} scores are the {charts.scorer_label(ranked[0])}'s ranking, "
            "not probabilities: no distribution to draw"
        )
    counts = np.zeros(bins)
    counts[frame["b"].astype(int).to_numpy()] = frame["n"].to_numpy()
    lefts = lo + width * np.arange(bins)
    total = int(counts.sum())
    svg = charts.histogram(
        f"scores-{model}",
        lefts,
        counts,
        width,
        charts.dated("Score distribution", ctx.as_of),
        SCORE_AXIS.get(model, "predicted probability (0 to 1)"),
        marks={"mean": mean},
    )
    return figure(
        f"scores-{model}", svg, f"{total:,} customers scored on {ctx.as_of}; mean {mean:.3f}."
    )


def block_drivers(ctx: Context, model: str) -> str:
    r, t = ctx.reader, "ml.feature_importance"
    r.require(t, "model_name")
    feat = r.pick(t, "feature", "feature_name", required=True)
    imp = r.pick(
        t, "importance_mean", "importance", "mean_importance", "value", "score", required=True
    )
    std = r.pick(t, "importance_std", "std", "std_importance")
    where, params, when = "where model_name = ?", [model], None
    if r.pick(t, "as_of_date"):
        when = r.scalar(
            f"select max(as_of_date) from {t} where model_name = ? and as_of_date <= ?",
            [model, ctx.as_of],
        )
        if when is None:
            raise Missing(f"{t} has no rows for {model} on or before {ctx.as_of}")
        where += " and as_of_date = ?"
        params.append(when)
    if r.pick(t, "run_id"):
        run = r.scalar(f"select max(run_id) from {t} {where}", params)
        where += " and run_id = ?"
        params.append(run)
    frame = r.df(
        f"""
        select {quote(feat)} as feature, avg({quote(imp)}) as importance,
            {f"avg({quote(std)})" if std else "null"} as std
        from {t} {where}
        group by 1
        order by importance desc
        limit 10
        """,
        params,
    )
    if frame.empty:
        raise Missing(f"{t} has no rows for {model}")
    svg = charts.horizontal_bars(
        f"drivers-{model}",
        charts.dated("Top drivers (permutation importance)", when),
        frame["feature"].astype(str).tolist(),
        frame["importance"].astype(float).tolist(),
        frame["std"].astype(float).tolist() if std else None,
        xlabel="drop in holdout score when the feature is shuffled",
        value_fmt="{:.4f}",
    )
    data = frame.rename(columns={"importance": "drop in score", "std": "spread"})
    if not std:
        data = data.drop(columns="spread")
    return figure(
        f"drivers-{model}",
        svg,
        "Error bars: spread over the shuffles.",
        data=table(
            data,
            formats={
                "drop in score": partial(fmt_num, digits=4),
                "spread": partial(fmt_num, digits=4),
            },
        ),
    )


def section_propensity(ctx: Context) -> str:
    try:
        models = propensity_models(ctx)
    except Missing as exc:
        ctx.missing.append(f"propensity: {exc}")
        return note(str(exc))
    html = []
    for model in models:

        def block(fn: Callable[[Context, str], str], m: str = model) -> str:
            return run_block(ctx, "", lambda c: fn(c, m), f"{fn.__name__}:{m}")

        html.append(f'<h3 class="model">Model: {esc(model)}</h3>')
        html.append(block(block_model_status))
        if model in ctx.cache.get("propensity:run_only", ()):
            continue  # no scores, no evaluation: the status line says why
        html.append(block(block_lift))
        html.append(
            grid(
                block(block_roc),
                block(block_calibration),
                block(block_score_distribution),
                block(block_drivers),
            )
        )
    return "".join(html)


# --- audiences ---------------------------------------------------------------------------


def block_audiences(ctx: Context) -> str:
    r, t = ctx.reader, "audiences.members"
    problems = _audience_problems(ctx)
    try:
        r.require(t, "audience", "as_of_date", "customer_id")
        when = latest_date(ctx, t)
    except Missing as e:
        if problems:
            return problems
        if r.has(t):  # "audiences.members has no rows on or before" needed an engineer
            ctx.facts["audiences_none"] = True
            raise Missing(f"no audience built up to {ctx.as_of} (no rows in {t})") from e
        raise
    group = r.pick(t, "group", "member_group", "arm")
    group_expr = f"cast({quote(group)} as varchar)" if group else "'target'"
    frame = r.df(
        f"""
        select audience, {group_expr} as grp, count(*) as n
        from {t} where as_of_date = ?
        group by all
        """,
        [when],
    )
    pivot = frame.pivot_table(index="audience", columns="grp", values="n", aggfunc="sum").fillna(0)
    for col in ("target", "holdout"):
        if col not in pivot:
            pivot[col] = 0
    pivot["total"] = pivot.sum(axis=1)
    pivot = pivot.sort_values("total", ascending=False)
    if when == ctx.as_of:
        # Customers, not memberships: one customer in two audiences is one person to reach
        # (the sum of the targets said 341 customers where 325 were).
        distinct = r.scalar(
            f"select count(distinct customer_id) from {t} where as_of_date = ?"
            + (f" and {group_expr} = 'target'" if group else ""),
            [when],
        )
        ctx.facts["audiences"] = (len(pivot), int(distinct), int(pivot["target"].sum()))
    else:  # no audience has members tonight: the table is an older night's, not tonight's
        ctx.facts["audiences_older"] = when
    problems += _no_holdout(ctx, pivot, when)
    changes = _audience_changes(ctx, when)
    summary = pivot[["target", "holdout", "total"]].reset_index()
    summary["holdout share"] = summary["holdout"] / summary["total"].replace(0, np.nan)
    funnel = _audience_funnel(ctx, when)
    if funnel is not None:
        summary = funnel.merge(summary, on="audience", how="right")
    if changes is not None:
        summary = summary.merge(changes, on="audience", how="left")
    exports = _audience_exports(ctx)
    if exports is not None:
        summary = summary.merge(exports, on="audience", how="left")
    others = sorted(set(pivot.columns) - {"target", "holdout", "total"})
    parts = {p: pivot[p].astype(int).tolist() for p in ["target", "holdout", *others]}
    svg = charts.audience_sizes(pivot.index.astype(str).tolist(), parts, when)
    caption = f"Snapshot of {when}"
    if when != ctx.as_of:
        caption += f" (no snapshot on {ctx.as_of})"
    # What each count is of: "entered 242, exited 0" on an audience's first snapshot read as
    # 242 customers joining tonight, when everyone enters on the first.
    explained = [f"Customers per audience in the snapshot of {when}"]
    if funnel is not None:
        explained.append(
            "matched: those its conditions select; matched = without consent + other "
            "exclusions (suppressed, taken by a higher-priority audience, over the size "
            "limit) + total; total = target + holdout"
        )
    if changes is not None:
        explained.append(
            "entered, exited: customers who joined or left the audience since its previous "
            "snapshot (on its first snapshot, everyone entered)"
        )
    return (
        problems
        + '<div class="half">'
        + figure("audience-sizes", svg, caption)
        + "</div>"
        + table(
            summary,
            caption="; ".join(explained) + ".",
            formats={
                "holdout share": fmt_pct,
                **{
                    c: fmt_int
                    for c in (
                        "matched",
                        "without consent",
                        "other exclusions",
                        "target",
                        "holdout",
                        "total",
                        "entered",
                        "exited",
                    )
                },
            },
        )
    )


def _no_holdout(ctx: Context, pivot: pd.DataFrame, when: date) -> str:
    """A note naming the audiences with targets but no holdout customer.

    Their campaign can never be read out (nobody to compare the targets with), yet the
    table showed a bare "0" and "0.0%", and the readouts a verdict-less row weeks later. A
    small audience's holdout rounds to none (5% of 12 customers); a definition without
    ``holdout`` has none at all."""
    names = pivot.index[(pivot["target"] > 0) & (pivot["holdout"] == 0)].astype(str).tolist()
    if not names:
        return ""
    r, t = ctx.reader, "audiences.summary"
    percent: dict[str, float] = {}
    if r.pick(t, "holdout_percent") and r.pick(t, "audience") and r.pick(t, "as_of_date"):
        percent = dict(
            r.rows(
                f"select audience, holdout_percent from {t} where as_of_date = ?"
                " and holdout_percent is not null",
                [when],
            )
        )
    if when == ctx.as_of:
        ctx.facts["audiences_no_holdout"] = names
    lines = []
    for name in names:
        share = percent.get(name)
        members = int(pivot.loc[name, "target"])
        if share is not None and share > 0:
            why = (
                f"its {share:g}% holdout of {plural(members, 'customer')} rounded to none; "
                "a larger audience or holdout percent gives it one"
            )
        elif share is not None:
            why = "its definition sets no holdout"
        else:
            why = "no customer was held out"
        lines.append(
            f"<li><b>{esc(name)}</b> has no holdout customers ({esc(why)}): whether its "
            "campaign works can never be measured, as there is nobody to compare its "
            "targets with</li>"
        )
    return f'<ul class="note warning">{"".join(lines)}</ul>'


# A definition file's path on the server ("/srv/segmint/audiences/vip.yml:3"): the file's
# name and line say which file to fix; the folder is the operator's, not the reader's.
_PART = r"""[^\s:()'"/\\]+"""
# A relative one too ("../../audiences/vip.yml", from `segmint run --audiences ../../audiences`).
_DEFINITION_PATH = re.compile(
    rf"(?<![\w./\\])(?:(?:[A-Za-z]:)?[/\\])?(?:{_PART}[/\\])+({_PART}\.ya?ml)\b"
)


def _file_names(error: str | None) -> str | None:
    """An audience's build error with each definition file named by its file name only."""
    return _DEFINITION_PATH.sub(r"\1", error) if error else error


def _waiting_reason(error: str) -> str:
    """Why an audience waits, in words: which model has none published yet and the score
    stage's reason, its baselines named in words.

    The line read "churn_risk_winback waits for a first propensity model: audience
    'churn_risk_winback' (../../audiences/churn_risk_winback.yml) not built yet: no published
    propensity model yet: churn: holdout AUC 0.856 does not beat baseline_recency 0.872;
    not published": the audience's name and its wait said twice, the server's path to its
    file, the model's gate message with the baseline's code and "not published" in it."""
    _, found, rest = error.partition(f"{WAITING}: ")
    if not found:
        return error
    said = []
    for part in rest.split(f"; {NO_MODEL_YET}: "):
        model, colon, _ = part.partition(": ")
        if not colon or not model.isidentifier():
            said.append(_in_words(part))
            continue
        reason = run_reason(model, "not_published", part, compared=False)
        said.append(f"no {model} model published yet" + (f" ({reason})" if reason else ""))
    return "; ".join(said)


def _audience_problems(ctx: Context) -> str:
    """A note naming the night's audiences that failed to build or have no members.

    Neither has a row in ``audiences.members``, so the table alone left them out: the page
    said "2 audiences" on a night when two more had failed and one had emptied."""
    r, t = ctx.reader, "audiences.summary"
    if not r.pick(t, "audience") or not r.pick(t, "as_of_date") or not r.pick(t, "status"):
        return ""
    error = quote(r.pick(t, "error")) if r.pick(t, "error") else "null"
    # Why a built audience is empty, when the build knew (a rule ranked instead of a model).
    note = quote(r.pick(t, "note")) if r.pick(t, "note") else "null"
    members = " + ".join(f"coalesce({quote(c)}, 0)" for c in ("target", "holdout") if r.pick(t, c))
    empty = f"status = 'built' and {members} = 0" if members else "false"
    # The build's counts say why a built audience is empty (no consent, suppressed, ...).
    counts = ", ".join(
        quote(r.pick(t, c)) if r.pick(t, c) else "null" for c in ("consent", *_FUNNEL)
    )
    rows = r.rows(
        f"""
        select audience, status, {error}, {note}, {counts} from {t}
        where as_of_date = ? and (status <> 'built' or {empty})
        order by status, audience
        """,
        [ctx.as_of],
    )
    notes = {a: n for a, status, _, n, *_ in rows if status == "built" and n}
    reasons = {
        a: why
        for a, status, _, n, *funnel in rows
        if status == "built" and not n and (why := _empty_reason(*funnel))
    }
    rows = [(a, status, e) for a, status, e, *_ in rows]
    # Not built for want of a first published propensity model (a young shop, the score
    # stage's reason in the message): expected, so listed apart and not as an error.
    waiting = [(a, e) for a, status, e in rows if status != "built" and WAITING in (e or "")]
    failed = [(a, e) for a, status, e in rows if status != "built" and (a, e) not in waiting]
    empty_ = [a for a, status, _ in rows if status == "built"]
    if failed:
        ctx.facts["audiences_failed"] = [a for a, _ in failed]
    if waiting:
        ctx.facts["audiences_waiting"] = [a for a, _ in waiting]
    if empty_:
        ctx.facts["audiences_empty"] = empty_
    if notes:
        ctx.facts["audiences_empty_on_rule"] = sorted(notes)
    if reasons:
        ctx.facts["audiences_empty_why"] = {a: short for a, (_, short) in reasons.items()}
    lines = [
        f"<li><b>{esc(a)}</b> failed to build: {esc(_file_names(e) or 'no message')}</li>"
        for a, e in failed
    ]
    lines += [
        f"<li><b>{esc(a)}</b> was built with no members"
        + (f": {esc(_rule_note(notes[a]))}" if a in notes else "")
        + (f": {esc(reasons[a][0])}" if a in reasons else "")
        + "</li>"
        for a in empty_
    ]
    wait = [
        f"<li><b>{esc(a)}</b> waits for a first propensity model: {esc(_waiting_reason(e))}</li>"
        for a, e in waiting
    ]
    return (f'<ul class="note error">{"".join(lines)}</ul>' if lines else "") + (
        f'<ul class="note info">{"".join(wait)}</ul>' if wait else ""
    )


# The counts of audiences.summary that say where the customers an audience matched went.
_FUNNEL = (
    "matched",
    "without_consent",
    "suppressed",
    "claimed_by_higher_priority",
    "over_size_limit",
)
_CONSENT_WORDS = {"email": "e-mail", "ads": "ads"}


def _empty_reason(consent: Any, *funnel: Any) -> tuple[str, str] | None:
    """Why a built audience has no members, from the build's counts: ``(sentence, short)``.

    A shop whose customers gave no consent (or a suppression list holding everyone) read
    "vip_thank_you was built with no members" and nothing more, on the page and in the
    summary: marketing could not tell a campaign nobody matched from one whose matches all
    lacked consent. None when the counts are missing or do not add up to ``matched``."""
    if any(v is None for v in funnel[:2]):
        return None
    matched, without, suppressed, claimed, over = (int(v or 0) for v in funnel)
    if matched == 0:
        return "no customer met its conditions", "no customer met its conditions"
    if without + suppressed + claimed + over != matched:
        return None
    consent = _CONSENT_WORDS.get(str(consent), str(consent)) if consent else None
    if without == matched and consent:
        if matched == 1:
            return (
                f"the one customer its conditions matched has no {consent} consent",
                f"the 1 matched has no {consent} consent",
            )
        return (
            f"none of the {matched:,} customers its conditions matched has {consent} consent",
            f"none of the {matched:,} matched has {consent} consent",
        )
    parts = [
        (without, f"without {consent + ' ' if consent else ''}consent"),
        (suppressed, "on a suppression list"),
        (claimed, "taken by a higher-priority audience"),
        (over, "over the size limit"),
    ]
    went = ", ".join(f"{n:,} {what}" for n, what in parts if n)
    return (
        f"its conditions matched {plural(matched, 'customer')}: {went}",
        f"{matched:,} matched: {went}",
    )


def _rule_note(note: str) -> str:
    """The build's note without its "audience 'x' is empty on DATE: " lead (the list item
    names the audience)."""
    head, sep, rest = note.partition(": ")
    return rest if sep and head.startswith("audience ") else note


def _audience_funnel(ctx: Context, when: date) -> pd.DataFrame | None:
    """The consent an audience needs, the customers its conditions matched and how many of
    them were left out for want of that consent (``audiences.summary``).

    The table gave the members only: 207 matched VIPs of whom 25 had no e-mail consent
    showed as 182 members, and nothing on the page said consent had been applied."""
    r, t = ctx.reader, "audiences.summary"
    cols = [c for c in ("consent", "matched", "without_consent") if r.pick(t, c)]
    if not r.pick(t, "audience") or not r.pick(t, "as_of_date") or "without_consent" not in cols:
        return None
    others = [
        f"coalesce({quote(c)}, 0)"
        for c in ("suppressed", "claimed_by_higher_priority", "over_size_limit")
        if r.pick(t, c)
    ]
    # Suppression lists, a higher-priority audience and the size limit take the rest, so
    # matched = without consent + other exclusions + total.
    other = f", {' + '.join(others)} as other_exclusions" if others else ""
    frame = r.df(
        f"select audience, {', '.join(quote(c) for c in cols)}{other} "
        f"from {t} where as_of_date = ?",
        [when],
    )
    return frame.rename(
        columns={"without_consent": "without consent", "other_exclusions": "other exclusions"}
    )


def _audience_changes(ctx: Context, when: date) -> pd.DataFrame | None:
    r, t = ctx.reader, "audiences.changes"
    if not r.has(t) or not r.pick(t, "audience"):
        return None
    kind = r.pick(t, "change", "change_type", "direction", "kind", "movement", "status")
    if not kind or not r.pick(t, "as_of_date"):
        return None
    frame = r.df(
        f"""
        select
            audience,
            count(*) filter (where lower(cast({quote(kind)} as varchar)) like 'enter%') as entered,
            count(*) filter (where lower(cast({quote(kind)} as varchar)) like 'exit%') as exited
        from {t} where as_of_date = ?
        group by 1
        """,
        [when],
    )
    return frame


def _audience_exports(ctx: Context) -> pd.DataFrame | None:
    """Per audience: the date of its last export and, per file format of that date, the rows
    the file holds.

    An audience exported to three platforms showed one format (whichever came first among
    files of the same date) and its rows: the Meta file and the diff went unmentioned, and
    so would a Google file smaller than the target for want of ads consent."""
    r, t = ctx.reader, "audiences.exports"
    if not r.has(t) or not r.pick(t, "audience"):
        return None
    when = r.pick(t, "as_of_date", "as_of", "exported_at", "created_at")
    fmt = r.pick(t, "format")
    rows = r.pick(t, "row_count", "rows")
    if not when:
        return None
    fmt_expr = f"cast({quote(fmt)} as varchar)" if fmt else "'file'"
    rows_expr = quote(rows) if rows else "null"
    at = r.pick(t, "exported_at", "created_at") or when
    frame = r.df(
        f"""
        with e as (
            select audience, cast({quote(when)} as date) as day, {fmt_expr} as format,
                {rows_expr} as n, {quote(at)} as exported
            from {t} where cast({quote(when)} as date) <= ?
        ),
        last as (
            select e.audience, e.day, e.format, arg_max(e.n, e.exported) as n
            from e
            inner join (select audience, max(day) as day from e group by 1) as newest
                on newest.audience = e.audience and newest.day = e.day
            group by all
        )
        select audience, day, format, n from last order by audience, format
        """,
        [ctx.as_of],
    )
    frame["file"] = [
        export_label(f)
        + ("" if pd.isna(n) else f": {int(n):,}" + (" joined or left" if f == "diff" else ""))
        for f, n in zip(frame["format"], frame["n"], strict=True)
    ]
    return (
        frame.groupby(["audience", "day"], sort=False)["file"]
        .agg(" · ".join)
        .reset_index()
        .rename(columns={"day": "last export", "file": "rows exported"})
    )


# Export formats in words: "diff: 315 · google_customer_match: 315" was the exporter's codes,
# and a diff's rows are customers who joined or left the list, not the list.
EXPORT_LABELS = {
    "csv": "CSV file",
    "parquet": "Parquet file",
    "google_customer_match": "Google Customer Match",
    "meta_custom_audience": "Meta Custom Audience",
    "mailchimp": "Mailchimp",
    "klaviyo": "Klaviyo",
    "braze": "Braze",
    "diff": "changes since the last export (diff)",
}


def export_label(code: Any) -> str:
    """An export format for people ("Google Customer Match"); an unknown one as stored."""
    return EXPORT_LABELS.get(str(code), str(code))


READOUT_DAYS = 28  # readouts cover the orders of the last four weeks
READOUT_ALPHA = 0.05  # the readouts' significance level (segmint.report.readouts)


def block_readouts(ctx: Context) -> str:
    """Target vs holdout for each audience, over the orders since a snapshot ~4 weeks old
    (the statistics of ``segmint audience readout``, see :mod:`segmint.report.readouts`)."""
    from segmint.report.readouts import readouts

    r = ctx.reader
    for t in ("audiences.members", "audiences.summary", "marts.orders"):
        r.require(t)
    built_only = bool(r.pick("audiences.summary", "status"))
    frame = readouts(
        r.con, ctx.as_of, READOUT_DAYS, built_only, READOUT_ALPHA, ctx.cache.get("currency")
    )
    if frame.empty:
        raise Missing(f"no audience snapshot before {ctx.as_of} to read out yet")
    verdicts = "".join(
        f"<li><b>{esc(a)}</b>: {esc(v)}</li>"
        for a, v in zip(frame["audience"], frame.pop("verdict"), strict=True)
    )
    money = f"Δ revenue/cust. ({ctx.cache['currency']})" if ctx.cache.get("currency") else None
    if money:
        frame = frame.rename(columns={"Δ revenue/cust.": money})
    return (
        table(
            frame,
            formats={
                "conv. target": fmt_pct,
                "conv. holdout": fmt_pct,
                "uplift": lambda v: "–" if pd.isna(v) else f"{v:+.1%}",
                "p conv.": lambda v: fmt_num(v, 4),
                "p rev.": lambda v: fmt_num(v, 4),
                (money or "Δ revenue/cust."): lambda v: "–" if pd.isna(v) else f"{v:+,.2f}",
                "target": fmt_int,
                "holdout": fmt_int,
                "reached": lambda v: "–" if pd.isna(v) else fmt_pct(v),
            },
            caption=f"Orders from the day after each snapshot to {ctx.as_of}, of the members "
            "as assigned on the snapshot (target vs holdout). Reached: the share of the target "
            "in the snapshot's export files (– no export recorded); the others count as "
            "targeted too, so a low share waters the difference down. Conv.: the share who "
            "ordered; uplift: how much more often targets ordered than the holdout; p conv., "
            "p rev.: how likely a difference this large would be if the campaign did nothing "
            f"(below {READOUT_ALPHA} it is taken as real); p conv. is Fisher's exact test's "
            "when a group is too small or orders too rare for the usual approximation, and p "
            "rev. is then not used in the verdict",
        )
        + f"<ul>{verdicts}</ul>"
    )


# --- data quality ------------------------------------------------------------------------


# The load table's headers in words ("rows_read", "rows_duplicate" were the manifest's
# columns); its caption keeps the column names for analysts.
LOAD_COLUMNS = {
    "rows_read": "rows read",
    "rows_loaded": "loaded",
    "rows_duplicate": "duplicates dropped",
    "rows_quarantined": "quarantined",
    "failed_files": "files failed",
}


def block_loads(ctx: Context) -> str:
    r, t = ctx.reader, "ops.load_manifest"
    r.require(t, "source", "partition_date")
    first = ctx.as_of - timedelta(days=DQ_WINDOW_DAYS - 1)
    measures = [
        c
        for c in ("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined")
        if r.pick(t, c)
    ]
    if not measures:
        raise Missing(f"{t} has no row counts")
    status = r.pick(t, "status")
    frame = r.df(
        f"""
        select
            partition_date as day,
            source,
            count(*) as files,
            {", ".join(f"sum({c}) as {c}" for c in measures)}
            {", count(*) filter (where status = 'failed') as failed_files" if status else ""}
        from {t}
        where partition_date between ? and ?
        group by all
        order by day desc, source
        """,
        [first, ctx.as_of],
    )
    missing = _events_missing_today(ctx)
    missing = missing or _orders_missing_today(ctx)
    if frame.empty:
        raise Missing(f"{t} has no files for {first} .. {ctx.as_of}")
    days = pd.date_range(first, ctx.as_of, freq="D")
    colours = {
        "loaded": charts.BLUE,
        "duplicate": charts.GREY,
        "quarantined": charts.RED,
    }
    panels = {}
    for source, part in frame.groupby("source", sort=True):
        part = part.assign(day=pd.to_datetime(part["day"])).set_index("day").reindex(days)
        panels[source] = {
            label: part[col].fillna(0).to_numpy()
            for label, col in (
                ("loaded", "rows_loaded"),
                ("duplicate", "rows_duplicate"),
                ("quarantined", "rows_quarantined"),
            )
            if col in part
        }
    today = frame[pd.to_datetime(frame["day"]) == pd.Timestamp(ctx.as_of)]
    if "rows_read" in frame:
        ctx.facts["rows_read_today"] = int(today["rows_read"].sum())
    svg = charts.stacked_by_day(
        "loads", f"Rows per source and day, {first} .. {ctx.as_of}", panels, days, colours
    )
    failed = _failed_files(ctx, first)
    return (
        missing
        + figure("loads", svg, "Stacked: loaded + duplicate + quarantined = read.", wide=True)
        + details(
            "Table: rows per source and partition day",
            table(
                frame.rename(columns=LOAD_COLUMNS),
                formats={
                    LOAD_COLUMNS.get(c, c): fmt_int for c in [*measures, "files", "failed_files"]
                },
                max_rows=60,
                caption=f"Sums per source and day of {t}'s {', '.join(measures)}"
                + ("; files failed: files of status 'failed'" if status else ""),
            ),
        )
        + failed
    )


def _events_missing_today(ctx: Context) -> str:
    """A note when no events file of the as-of date was loaded (fact ``events_missing``).

    A late or missing delivery runs the night without its own day (unless
    ``[ingest] require_as_of_events``): every customer then looks a day less active. The
    validate task's log warned, and the report said "No quarantined rows" as on a good night.
    """
    r, t = ctx.reader, "ops.load_manifest"
    today = r.scalar(
        f"select count(*) from {t} where source = 'events' and partition_date = ?", [ctx.as_of]
    )
    if today:
        return ""
    newest = r.scalar(
        f"select max(partition_date) from {t} where source = 'events' and partition_date <= ?",
        [ctx.as_of],
    )
    ctx.facts["events_missing"] = str(newest) if newest is not None else None
    return note(_events_missing_sentence(ctx), "warning")


# Orders a day, on average over the days before, above which a day without any order is a
# fault rather than chance: at 5 a day, a quiet day with none has a chance of e^-5 (0.7%).
NO_ORDER_ALERT_RATE = 5.0
ORDER_DAYS = 14


def _orders_missing_today(ctx: Context) -> str:
    """A note when the as-of day's events were loaded but hold no order, where the days
    before had several a day (fact ``orders_missing``).

    A tracker that stopped sending purchase events (a tag removed from the checkout page,
    an export that left them out) gave a night of 0 orders that the page never mentioned:
    segments, scores and audiences all read the day as one nobody bought, as on a good
    night."""
    r, t = ctx.reader, "marts.orders"
    day = r.pick(t, "order_date")
    if not day:
        return ""
    first = ctx.as_of - timedelta(days=ORDER_DAYS)
    tonight, before, since = r.rows(
        f"""
        select
            count(*) filter (where {quote(day)} = ?),
            count(*) filter (where {quote(day)} < ?),
            min({quote(day)}) filter (where {quote(day)} < ?)
        from {t}
        where {quote(day)} between ? and ?
        """,
        [ctx.as_of, ctx.as_of, ctx.as_of, first, ctx.as_of],
    )[0]
    if tonight or not before:
        return ""
    days = (ctx.as_of - date.fromisoformat(_day(since)[:10])).days
    rate = before / days
    if rate < NO_ORDER_ALERT_RATE:
        return ""
    ctx.facts["orders_missing"] = (
        f"No order on {ctx.as_of}, where the {plural(days, 'day')} before had "
        f"{before:,} ({rate:,.1f} a day): a day without any purchase is more likely a "
        "tracking or export fault than a quiet day; check the day's purchase events before "
        "acting on tonight's figures (recency, propensity and audiences count it as a day "
        "nobody bought)."
    )
    return note(ctx.facts["orders_missing"], "warning")


def _events_missing_sentence(ctx: Context) -> str:
    newest = ctx.facts["events_missing"]
    since = (
        f"the newest events partition is dt={newest}, "
        f"{plural((ctx.as_of - date.fromisoformat(newest)).days, 'day')} before it"
        if newest
        else "no events partition on or before it"
    )
    return (
        f"No events file for {ctx.as_of} was loaded ({since}): tonight's features, segments, "
        "scores and audiences are computed without that day, a late or missing delivery "
        '(docs/operations.md, "Waiting for the day\'s files").'
    )


def _failed_files(ctx: Context, first: date) -> str:
    r, t = ctx.reader, "ops.load_manifest"
    if not r.pick(t, "status") or not r.pick(t, "path"):
        return ""
    error = r.pick(t, "error")
    frame = r.df(
        f"select path, source, partition_date, {quote(error) if error else 'null'} as error "
        f"from {t} where status = 'failed' and partition_date between ? and ? order by path",
        [first, ctx.as_of],
    )
    if frame.empty:
        return note("No landing file failed to load in this window.", "info")
    ctx.facts["failed_files"] = len(frame)
    frame["error"] = frame["error"].map(redact)
    return table(frame, caption="Files that failed to load")


# A load error may quote a file's content: a CRM export without its header row was refused
# with "(header is: 'C9999999,2026-06-30T10:00:00Z,anna.smith@example.com,555-1234,Anna,
# Smith,1980-01-01,...')", a customer's record in a page sent round by e-mail. The page
# names the fault, not the content (ops.load_manifest keeps it for the data engineer).
_HEADER_QUOTE = re.compile(r"""\s*\(header is: (?:'.*'|".*")\)""", re.S)
_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")


def redact(text: Any) -> Any:
    """``text`` without quoted file content or e-mail addresses (None stays None)."""
    if not isinstance(text, str):
        return text
    text = _HEADER_QUOTE.sub(
        " (its first line is not shown here: it may be a customer's record; "
        "ops.load_manifest.error has it)",
        text,
    )
    return _EMAIL.sub("[e-mail address]", text)


def block_quarantine(ctx: Context) -> str:
    r, t = ctx.reader, "ops.quarantine"
    r.require(t, "reasons")
    first = ctx.as_of - timedelta(days=DQ_WINDOW_DAYS - 1)
    has_day = bool(r.pick(t, "partition_date"))
    where = "where partition_date between ? and ?" if has_day else ""
    params = [first, ctx.as_of] if has_day else []
    raw = "unnest(reasons)" if r.is_list(t, "reasons") else "reasons"
    # "event_ts is not an ISO-8601 timestamp (got 31/12/2025 10:00)": rank the rule, not
    # each offending value.
    reason = f"trim(regexp_replace({raw}, '\\s*\\(got .*\\)\\s*$', ''))"
    frame = r.df(
        f"""
        select reason, count(*) as occurrences
        from (select {reason} as reason from {t} {where})
        group by 1
        order by 2 desc, 1
        """,
        params,
    )
    today_rows = (
        r.scalar(f"select count(*) from {t} where partition_date = ?", [ctx.as_of])
        if has_day
        else None
    )
    window_rows = r.scalar(f"select count(*) from {t} {where}", params)
    if today_rows is not None:
        top_today = r.rows(
            f"""
            select reason, count(*) from (
                select {reason} as reason from {t} where partition_date = ?
            ) group by 1 order by 2 desc, 1 limit 1
            """,
            [ctx.as_of],
        )
        ctx.facts["quarantine_today"] = (
            int(today_rows),
            top_today[0][0] if top_today else None,
            int(top_today[0][1]) if top_today else 0,
        )
    if frame.empty:
        return note(f"No quarantined rows in {first} .. {ctx.as_of}.", "info")
    top = frame.head(15)
    svg = charts.horizontal_bars(
        "quarantine-reasons",
        charts.dated("Quarantine reasons, ranked", f"{first} .. {ctx.as_of}"),
        [charts.wrapped(x) for x in top["reason"].astype(str)],
        top["occurrences"].astype(float).tolist(),
        xlabel="rows (a row can have several reasons)",
        colour=charts.RED,
    )
    ranked = frame.rename(columns={"occurrences": "rows"})
    ranked["share"] = ranked["rows"] / max(int(window_rows or 0), 1)
    return grid(
        figure(
            "quarantine-reasons",
            svg,
            f"{window_rows:,} rows quarantined in {first} .. {ctx.as_of}"
            + (
                f"; {today_rows:,} in the {ctx.as_of} partition." if today_rows is not None else "."
            ),
        ),
        table(
            ranked,
            formats={"share": fmt_pct, "rows": fmt_int},
            max_rows=15,
        ),
    )


def block_expectations(ctx: Context) -> str:
    r, t = ctx.reader, "ops.validation_runs"
    if not r.has(t):
        raise Missing(f"table {t} does not exist yet")
    success = r.pick(t, "success", "passed", "is_success", "succeeded", required=True)
    expectation = r.pick(
        t, "expectation_type", "expectation", "expectation_name", "expectation_id", required=True
    )
    column = r.pick(t, "column_name", "column")
    rule = r.pick(t, "rule", "rule_name")
    batch = r.pick(t, "source_file", "batch", "batch_id", "path", "file")
    source = r.pick(t, "source", "suite", "suite_name")
    unexpected = r.pick(t, "unexpected_count", "unexpected", "failed_rows")
    day = r.pick(t, "partition_date", "as_of_date")
    where, params, first = "", [], None
    if day:
        first = ctx.as_of - timedelta(days=DQ_WINDOW_DAYS - 1)
        where = f"where {quote(day)} between ? and ?"
        params = [first, ctx.as_of]
    today = f"not {quote(success)} and {quote(day)} = ?" if day else "false"
    totals = r.rows(
        f"select count(*), count(*) filter (where not {quote(success)}), "
        f"count(*) filter (where {today}) from {t} {where}",
        ([ctx.as_of] if day else []) + params,
    )[0]
    # The summary names the window: "9 failed" on a night with no file read as tonight's.
    ctx.facts["expectations"] = (
        int(totals[0]),
        int(totals[1]),
        int(totals[2]) if day else None,
        str(first) if first else None,
    )
    keys = [
        f"cast({quote(c)} as varchar) as {quote(alias)}"
        for c, alias in (
            (source, "source"),
            (rule, "rule"),
            (expectation, "expectation"),
            (column, "column"),
        )
        if c
    ]
    failed_where = (where + " and" if where else "where") + f" not {quote(success)}"
    frame = r.df(
        f"""
        select {", ".join(keys)},
            count(*) as "failed files",
            {f"sum({quote(unexpected)})" if unexpected else "null"} as "bad rows",
            {f"max({quote(day)})" if day else "null"} as "last failed",
            {f"arg_max(cast({quote(batch)} as varchar), {quote(day)})" if batch and day else "null"}
                as "last file"
        from {t} {failed_where}
        group by all
        order by "failed files" desc
        """,
        params,
    )
    window = f"in {first} .. {ctx.as_of}" if first else "in all runs"
    lead = f"{totals[0]:,} expectation results {window}, {totals[1]:,} failed"
    lead += f" ({totals[2]:,} in the {ctx.as_of} partition)." if first else "."
    docs = _data_docs_link(ctx)
    if frame.empty:
        return f"<p>{esc(lead)} No expectation failed.</p>{docs}"
    frame = frame.dropna(axis=1, how="all")
    return f"<p>{esc(lead)}</p>" + table(frame, caption="Failed expectations") + docs


def _data_docs_link(ctx: Context) -> str:
    folder = ctx.settings.run_output_dir(ctx.as_of) / "data_docs"
    if not folder.is_dir():
        keep = ctx.settings.outputs.keep_nights
        pruned = f", or removed since by [outputs] keep_nights = {keep}" if keep else ""
        return note(
            f"Great Expectations Data Docs: none in {folder} (not generated for this run{pruned}).",
            "info",
        )
    candidates = sorted(folder.rglob("index.html"), key=lambda p: len(p.parts))
    target = candidates[0] if candidates else folder
    try:
        href = os.path.relpath(target.resolve(), ctx.out.resolve().parent)
    except ValueError:  # different drives on Windows
        href = target.resolve().as_uri()
    return (
        f'<p>Full validation results: <a href="{esc(Path(href).as_posix())}">'
        f"Great Expectations Data Docs</a> ({esc(target)}).</p>"
    )


def block_data_docs(ctx: Context) -> str:
    return _data_docs_link(ctx)


# --- drift -------------------------------------------------------------------------------


def _runs_table(frame: pd.DataFrame, what: str) -> str:
    """A drift chart's figures: one row per ``what`` (feature, segment, model), one column
    per run, newest first."""
    data = frame.pivot_table(index="key", columns="as_of_date", values="value", aggfunc="mean")
    data = data[sorted(data.columns, reverse=True)]
    data.columns = [_day(c) for c in data.columns]
    data = data.rename_axis(what).reset_index()
    return table(data, formats={c: partial(fmt_num, digits=3) for c in data.columns[1:]})


def _series(frame: pd.DataFrame, key: str, value: str) -> dict[str, tuple[list, list]]:
    out = {}
    for name, part in frame.groupby(key, sort=True):
        part = part.sort_values("as_of_date")
        out[str(name)] = (
            pd.to_datetime(part["as_of_date"]).tolist(),
            part[value].astype(float).tolist(),
        )
    return out


def _segment_drift(ctx: Context) -> dict[str, pd.DataFrame]:
    """``{'psi': frame(as_of_date, key, value), 'centroid': ...}`` from ml.segment_drift."""
    r, t = ctx.reader, "ml.segment_drift"
    r.require(t, "as_of_date")
    dates = r.dates(t, up_to=ctx.as_of)[:DRIFT_RUNS]
    if not dates:
        # "ml.segment_drift has no rows" needed a data engineer to read
        try:
            first_run = segment_sizes(ctx).attrs.get("previous_date") is None
        except Missing:
            first_run = False
        if first_run:
            raise Missing("this is the first segmentation run: nothing to compare with yet")
        raise Missing(f"{t} has no rows on or before {ctx.as_of}")
    first = min(dates)
    metric = r.pick(t, "metric", "kind", "drift_type", "measure", "type")
    value = r.pick(t, "value")
    out: dict[str, pd.DataFrame] = {}
    names = segment_names(ctx)
    # The stage's own verdict: a PSI above the threshold is no warning when sampling alone
    # reaches it with the shop's customer counts (ml.segmentation.profiles.psi_noise_limit).
    flag = r.pick(t, "is_warning")
    warned = f", bool_or({quote(flag)}) as is_warning" if flag else ""
    if metric and value:
        key = r.pick(t, "feature", "feature_name", "name", "subject", "key")
        seg = r.pick(t, "segment_id", "segment")
        for kind, pattern in (("psi", "%psi%"), ("centroid", "%centroid%")):
            k = key if kind == "psi" else (seg or key)
            if not k:
                continue
            frame = r.df(
                f"""
                select as_of_date, cast({quote(k)} as varchar) as key, avg({quote(value)}) as value
                    {warned if kind == "psi" else ""}
                from {t}
                where as_of_date between ? and ? and lower(cast({quote(metric)} as varchar))
                    like ? and {quote(k)} is not null
                group by all
                """,
                [first, ctx.as_of, pattern],
            )
            if not frame.empty:
                out[kind] = frame
    else:
        psi = r.pick(t, "psi", "feature_psi", "population_stability_index")
        feat = r.pick(t, "feature", "feature_name", "name")
        shift = r.pick(t, "centroid_shift", "shift", "centroid_distance", "distance")
        seg = r.pick(t, "segment_id", "segment", "segment_name")
        for kind, col, k in (("psi", psi, feat), ("centroid", shift, seg)):
            if col and k:
                frame = r.df(
                    f"""
                    select as_of_date, cast({quote(k)} as varchar) as key,
                        avg({quote(col)}) as value
                    from {t}
                    where as_of_date between ? and ? and {quote(col)} is not null
                        and {quote(k)} is not null
                    group by all
                    """,
                    [first, ctx.as_of],
                )
                if not frame.empty:
                    out[kind] = frame
    if "centroid" in out:
        out["centroid"]["key"] = out["centroid"]["key"].map(lambda s: names.get(s, s))
    if not out:
        raise Missing(f"{t} has no PSI or centroid-shift values we recognise")
    return out


def block_feature_psi(ctx: Context) -> str:
    drift = ctx.cached("segment_drift", lambda: _segment_drift(ctx))
    if "psi" not in drift:
        raise Missing("ml.segment_drift has no feature PSI")
    frame = drift["psi"]
    threshold = ctx.settings.segmentation.drift_psi_warning
    # A feature redefinition night has no PSI row: the latest are an earlier night's, and
    # the summary read them as tonight's ("shifted no more than usual").
    not_measured = _drift_not_measured(ctx)
    if not_measured:
        ctx.facts["psi_not_measured"] = not_measured
    latest = frame[frame["as_of_date"] == frame["as_of_date"].max()]
    high = latest["value"] > threshold
    # Over the threshold but within a small shop's sampling noise is no warning (the stage
    # says none): 150 customers, "days_since_last_visit" at PSI 0.243, 21 of them visiting a
    # day apart.
    warned = latest["is_warning"].fillna(False).astype(bool) if "is_warning" in latest else high
    over = latest[high & warned].sort_values("value", ascending=False)
    if not not_measured:
        ctx.facts["psi_over"] = (over["key"].tolist(), threshold, latest["as_of_date"].max())
        ctx.facts["psi_noise"] = int((high & ~warned).sum())
    svg = charts.drift_lines(
        "drift-psi", "Feature PSI per run", _series(frame, "key", "value"), threshold, "PSI"
    )
    caption = (
        f"Population stability index of each segmentation feature against the previous run; "
        f"above {threshold:g} is a warning, unless a shop this size moves that much by chance "
        "(docs/segmentation.md, Drift). Grey: the other features."
    )
    if not_measured:
        caption += (
            f" Not measured on {ctx.as_of}: {not_measured}, so the features of the runs "
            "before measure something else."
        )
    return figure("drift-psi", svg, caption, data=_runs_table(frame, "feature"))


def block_centroid_shift(ctx: Context) -> str:
    drift = ctx.cached("segment_drift", lambda: _segment_drift(ctx))
    if "centroid" not in drift:
        raise Missing("ml.segment_drift has no centroid shift")
    threshold = ctx.settings.segmentation.match_max_distance
    svg = charts.drift_lines(
        "drift-centroid",
        "Centroid shift per segment",
        _series(drift["centroid"], "key", "value"),
        threshold,
        "distance (scaled units)",
    )
    return figure(
        "drift-centroid",
        svg,
        f"How far each segment's centre moved since the previous run; beyond {threshold:g} a "
        "cluster no longer matches its old identity, unless one segment holds most customers "
        "and it keeps mostly the same customers "
        "(one segment on both nights always does: it is the whole shop).",
        data=_runs_table(drift["centroid"], "segment"),
    )


def block_score_psi(ctx: Context) -> str:
    r, t = ctx.reader, "ml.score_drift"
    r.require(t, "as_of_date")
    psi = r.pick(t, "psi", "score_psi", "value", required=True)
    model = r.pick(t, "model_name", required=True)
    dates = r.dates(t, up_to=ctx.as_of)[:DRIFT_RUNS]
    ranked = [m for m in ctx.facts.get("models", []) if m.get("ranked_by")]
    if ranked and (not dates or max(dates) < ctx.as_of):
        # "no two nights of propensity scores" on a second night of a rule's ranking
        rules = ", ".join(
            f"{m['model']} by the {charts.scorer_label(m['ranked_by'][0])}" for m in ranked
        )
        raise Missing(
            f"tonight's scores are a rule's ranking ({rules}; no model published), and a "
            "rank has no score distribution to drift: the first night a model scores "
            "measures it against the previous night's customers scored with that model"
            + (f" (the chart's last night was {max(dates)})" if dates else "")
        )
    if not dates:
        raise Missing(
            "no two nights of propensity scores to compare yet (score drift compares a "
            f"night's scores with the previous night's; no rows in {t} up to {ctx.as_of})"
        )
    frame = r.df(
        f"""
        select as_of_date, cast({quote(model)} as varchar) as key, avg({quote(psi)}) as value
        from {t}
        where as_of_date between ? and ? and {quote(psi)} is not null
        group by all
        """,
        [min(dates), ctx.as_of],
    )
    if frame.empty:
        raise Missing(f"{t} has no PSI values yet (needs two scoring runs)")
    threshold = ctx.settings.propensity.drift_psi_warning
    latest = frame[frame["as_of_date"] == frame["as_of_date"].max()]
    ctx.facts["score_psi_over"] = latest[latest["value"] > threshold]["key"].tolist()
    ctx.facts["score_psi_threshold"] = threshold
    svg = charts.drift_lines(
        "drift-scores",
        "Score distribution PSI per model",
        _series(frame, "key", "value"),
        threshold,
        "PSI",
    )
    return figure(
        "drift-scores",
        svg,
        f"Shift of each model's score distribution against the previous run; above "
        f"{threshold:g} is a warning.",
        data=_runs_table(frame, "model"),
    )


# --- summary -----------------------------------------------------------------------------


def summary_sentences(ctx: Context) -> list[str]:
    f = ctx.facts
    out = [_events_missing_sentence(ctx)] if "events_missing" in f else []
    if "orders_missing" in f:
        out.append(f["orders_missing"])
    if "customers" in f:
        sentence = (
            f"{f['customers']:,} customers in {f['segments']} "
            f"segment{'s' if f['segments'] != 1 else ''}"
        )
        # Every change names the run it is measured from: after a gap of 20 nights "New
        # customers grew 189%" read as one night's growth.
        previous = f.get("previous_run")
        if "mover" in f:
            name, rel, before, after = f["mover"]
            if before == after:  # the biggest mover did not move: "X grew 0% (93 → 93)"
                sentence += f"; since {_gap(previous, ctx.as_of)}, no segment changed size"
            else:
                verb = "grew" if rel >= 0 else "shrank"
                # 1,000 → 1,002 is "grew 0.2%", not "grew 0%"
                share = f"{abs(rel):.0%}" if abs(rel) >= 0.01 else f"{abs(rel):.1%}"
                if share == "0.0%":
                    share = "less than 0.1%"
                sentence += f"; since {_gap(previous, ctx.as_of)}, {name} {verb} {share} "
                sentence += f"({before:,} → {after:,})"
        if "stayed_share" in f:
            since = f.get("stayed_since")
            sentence += f"; {f['stayed_share']:.0%} of customers kept their segment"
            if since and ("mover" not in f or since != previous):
                sentence += f" since {_gap(since, ctx.as_of)}"
        out.append(sentence + ".")
        if f.get("new_segments"):
            new = f["new_segments"]
            out.append(f"New {plural(len(new), 'segment')} this run: {', '.join(new)}.")
    elif "segments_stale" in f:
        out.append(
            f"No segments for {ctx.as_of}: the segment stage did not run for it; the newest "
            f"segmentation is of {f['segments_stale']}, in that night's report."
        )
    else:
        out.append("No segmentation for this date yet.")
    for m in f.get("models", []):
        s = f"{m['model'].capitalize()} model"
        if m.get("stale"):
            s += f": no scores for {ctx.as_of}, the newest run is of {m['stale']}"
        if m.get("auc") is not None:
            s += ("; its" if m.get("stale") else ":") + f" holdout AUC {m['auc']:.2f}"
            if m.get("baseline"):
                b, v = m["baseline"]
                p_value = m.get("p_value")
                threshold = m.get("gate_p_value", CHANCE_P_VALUE)
                if m["auc"] > v and p_value is not None and p_value >= threshold:
                    # above the rule, but within the holdout's noise: the gate refused it
                    s += (
                        f" (above the {charts.scorer_label(b)} at {v:.2f}, but not beyond "
                        f"chance, p = {p_value:.2f})"
                    )
                else:
                    s += (
                        f" ({'beats' if m['auc'] > v else 'does not beat'} the "
                        f"{charts.scorer_label(b)} at {v:.2f})"
                    )
            if m.get("crowd"):
                c = m["crowd"]
                s += (
                    f", lifted by {c['rows']:,} holdout customers who never visited nor "
                    f"ordered; {c['auc']:.2f} among the other {c['others']:,}"
                )
                if c.get("baseline"):
                    s += f" (the {charts.scorer_label(c['baseline'][0])} {c['baseline'][1]:.2f})"
        if m.get("status"):
            s += f"; {m['status'].replace('_', ' ')}"
            if m.get("message") and m["status"] != "published":
                # "not published (churn: ... 0.844; not published)": the run's message
                # repeats the model and the status the sentence already gave, and the
                # comparison with the best rule when the sentence gave it too
                message = run_reason(m["model"], m["status"], m["message"], bool(m.get("baseline")))
                if message and not message.startswith(("beats ", "does not beat ")):
                    s += aside(message)
        if m.get("scored_with"):
            version, n = m["scored_with"]
            s += f"; tonight's {n:,} scores come from the last published model {version}"
        if m.get("ranked_by"):
            rule, n = m["ranked_by"]
            s += (
                f"; tonight's {n:,} scores rank customers by the {charts.scorer_label(rule)}, "
                "not by a model (no probability)"
            )
        out.append(s + ".")
    if "audiences" in f:
        n, targets, memberships = f["audiences"]
        sentence = f"{plural(n, 'audience')} with {plural(targets, 'targeted customer')}"
        if memberships != targets:
            sentence += f" ({memberships:,} memberships: a customer can be in several audiences)"
        out.append(sentence + ".")
    elif "audiences_older" in f:
        out.append(
            f"No audience has members for {ctx.as_of} (the newest are of {f['audiences_older']})."
        )
    elif f.get("audiences_none"):
        # The summary said nothing of audiences: a reader could not tell none was built.
        out.append(f"No audience built up to {ctx.as_of}: no customer is targeted yet.")
    if f.get("audiences_failed"):
        failed = f["audiences_failed"]
        out.append(f"{plural(len(failed), 'audience')} failed to build: {', '.join(failed)}.")
    if f.get("audiences_waiting"):
        waiting = f["audiences_waiting"]
        out.append(
            f"{plural(len(waiting), 'audience')} waiting for a first propensity model: "
            f"{', '.join(waiting)}."
        )
    if f.get("audiences_empty"):
        why = f.get("audiences_empty_why", {})
        named = [a + (f" ({why[a]})" if a in why else "") for a in f["audiences_empty"]]
        out.append(f"Built with no members: {', '.join(named)}.")
        if f.get("audiences_empty_on_rule"):
            out.append(
                f"{', '.join(f['audiences_empty_on_rule'])}: empty because a baseline rule, "
                "not a model, ranks tonight's propensity deciles (no model published); "
                "Audiences says why."
            )
    if f.get("audiences_no_holdout"):
        out.append(
            "No holdout, so no readout possible: " + ", ".join(f["audiences_no_holdout"]) + "."
        )
    if "quarantine_today" in f:
        n, reason, top = f["quarantine_today"]
        if n:
            sentence = f"{plural(n, 'quarantined row')} in the {ctx.as_of} partition"
            if reason:
                # A reason is a sentence naming fields as the data has them (event_ts):
                # only a bare code (event_ts_in_future) is spelt out. "Mostly" only for a
                # reason holding most rows: five reasons of one row each have none.
                if " " not in reason:
                    reason = reason.replace("_", " ")
                if top * 2 > n:
                    sentence += f", mostly {reason}"
                else:
                    sentence += f", most often {reason} ({top:,})"
            out.append(sentence + ".")
        else:
            out.append(f"No quarantined rows in the {ctx.as_of} partition.")
    if "expectations" in f and f["expectations"][1]:
        _, n, today, first = f["expectations"]
        sentence = f"{plural(n, 'data-quality expectation result')} failed"
        if first:
            sentence += f" in {first} .. {ctx.as_of}"
            sentence += f", {today or 'none'} in the {ctx.as_of} partition"
        out.append(sentence + ".")
    if f.get("failed_files"):
        window = f"{ctx.as_of - timedelta(days=DQ_WINDOW_DAYS - 1)} .. {ctx.as_of}"
        out.append(f"{plural(f['failed_files'], 'landing file')} failed to load in {window}.")
    if f.get("psi_not_measured"):
        out.append(
            f"Segment drift is not measured tonight: {f['psi_not_measured']}, so tonight's "
            "features are not comparable with the previous run's; the next night measures "
            "it again."
        )
    if "psi_over" in f:
        over, threshold, _ = f["psi_over"]
        if over:
            shown = ", ".join(over[:4]) + (" …" if len(over) > 4 else "")
            # "2 features drifted above PSI 0.2: ..." said neither what moved nor what to do.
            out.append(
                f"The customers changed since the previous run: {plural(len(over), 'feature')} "
                f"of the segmentation shifted beyond the warning level (PSI above "
                f"{threshold:g}): {shown}; check that the segments still read as before."
            )
        elif f.get("psi_noise"):
            out.append(
                "The customers' features shifted no more than usual since the previous run "
                f"(PSI above {threshold:g} only where a shop this size moves that much by "
                "chance)."
            )
        else:
            out.append(
                "The customers' features shifted no more than usual since the previous run "
                f"(no PSI above {threshold:g})."
            )
    if f.get("score_psi_over"):
        models = ", ".join(f["score_psi_over"])
        out.append(
            f"The scores of the {models} {'model' if len(f['score_psi_over']) == 1 else 'models'}"
            " shifted since the previous run beyond the warning level (PSI above "
            f"{f.get('score_psi_threshold', 0.2):g}): check them before targeting on them."
        )
    return out


def _gap(previous: Any, as_of: date) -> str:
    """``'the run of 2026-06-10 (20 days before)'``; ``'the run of 2026-06-29'`` the night
    after."""
    day = date.fromisoformat(_day(previous))
    days = (as_of - day).days
    return f"the run of {day}" + (f" ({days} days before)" if days > 1 else "")


def summary_json(ctx: Context) -> str:
    """The facts as JSON-safe values (kept in StageResult.details)."""
    return json.dumps(ctx.facts, default=str)
