"""A synthetic warehouse with every table the report reads, built in DuckDB SQL.

For the report's tests, the benchmark (1 million customers) and demos before the real
stages have run. Columns follow docs/tables.md and the issues' contracts; the values are
plausible, not realistic: nothing here is used to judge a model.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from segmint.warehouse import connect

SEGMENTS = (
    (0, "Champions", "Recent, frequent, high-spending customers.", 0.12),
    (1, "Loyal regulars", "Steady repeat buyers with average baskets.", 0.20),
    (2, "Bargain hunters", "Frequent small orders, high cart abandonment.", 0.18),
    (3, "New customers", "First order in the last month.", 0.15),
    (4, "At risk", "Used to buy often, quiet for two months.", 0.15),
    (5, "Dormant", "No order for a long time, rarely visits.", 0.20),
)
FEATURES = (
    "recency_days",
    "order_count",
    "revenue_total",
    "avg_order_value",
    "sessions_30d",
    "cart_abandonment_rate_90d",
    "email_opens_30d",
    "tenure_days",
)
CATEGORIES = ("electronics", "fashion", "home", "beauty", "sports", "books", "toys")
MODELS = ("purchase", "churn")
SOURCES = ("events", "crm")


def _u(expr: str, salt: int) -> str:
    """A deterministic uniform [0, 1) from an integer expression (no random() state)."""
    return f"((hash({expr} * 1000003 + {salt}) % 1000000) / 1000000.0)"


def build_sample_warehouse(
    path: Path, customers: int = 2_000, as_of: date = date(2026, 6, 30), runs: int = 4
) -> Path:
    """Create (or replace) every report input in ``path`` for ``runs`` nightly runs."""
    path = Path(path)
    dates = [as_of - timedelta(days=runs - 1 - i) for i in range(runs)]
    con = connect(path)
    try:
        con.execute("set enable_progress_bar = false")
        _build(con, customers, dates)
    finally:
        con.close()
    return path


def _build(con, n: int, dates: list[date]) -> None:
    as_of = dates[-1]
    seg_case = (
        "case "
        + " ".join(
            f"when u0 < {sum(s[3] for s in SEGMENTS[: i + 1]):.4f} then {s[0]}"
            for i, s in enumerate(SEGMENTS[:-1])
        )
        + f" else {SEGMENTS[-1][0]} end"
    )
    names = "case segment_id " + " ".join(f"when {s[0]} then '{s[1]}'" for s in SEGMENTS) + " end"
    con.execute(
        f"""
        create or replace temp table base as
        select
            i,
            'C' || lpad(cast(i as varchar), 8, '0') as customer_id,
            {seg_case} as segment_id,
            {_u("i", 2)} as u1, {_u("i", 3)} as u2, {_u("i", 4)} as u3, {_u("i", 5)} as u4
        from (select i, {_u("i", 1)} as u0 from range({n}) as t(i))
        """
    )
    # Features: each segment has its own scale, so personas and the RFM heatmap differ.
    cats = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    con.execute(
        f"""
        create or replace table marts.customer_features as
        select
            customer_id,
            date '{as_of}' as as_of_date,
            case when segment_id = 5 and u1 < 0.3 then null
                else cast(([5, 20, 25, 12, 70, 200])[segment_id + 1] * (0.3 + 1.4 * u1) as integer)
                end as recency_days,
            cast(([12, 6, 9, 1, 5, 1])[segment_id + 1] * (0.4 + 1.2 * u2) + 1 as bigint)
                as order_count,
            cast(([2400, 900, 500, 80, 600, 60])[segment_id + 1] * (0.3 + 1.4 * u3)
                as decimal(18, 2)) as revenue_total,
            cast(([200, 150, 55, 80, 120, 60])[segment_id + 1] * (0.5 + u2) as decimal(18, 2))
                as avg_order_value,
            cast(([9, 5, 11, 4, 1, 0.3])[segment_id + 1] * (0.2 + 1.6 * u4) as bigint)
                as sessions_30d,
            ([0.2, 0.3, 0.7, 0.4, 0.5, 0.6])[segment_id + 1] * (0.5 + u1 * 0.9)
                as cart_abandonment_rate_90d,
            cast(([6, 4, 3, 2, 1, 0.2])[segment_id + 1] * (0.2 + 1.6 * u3) as bigint)
                as email_opens_30d,
            cast(([700, 500, 300, 20, 400, 800])[segment_id + 1] * (0.5 + u4) as integer)
                as tenure_days,
            case when segment_id = 5 and u1 < 0.3 then null
                else least(5, greatest(1, ([5, 4, 3, 4, 2, 1])[segment_id + 1]
                    + cast(floor(u2 * 3) as integer) - 1)) end as r_score,
            case when segment_id = 5 and u1 < 0.3 then null
                else least(5, greatest(1, ([5, 4, 4, 1, 3, 1])[segment_id + 1]
                    + cast(floor(u3 * 3) as integer) - 1)) end as f_score,
            case when segment_id = 5 and u1 < 0.3 then null
                else least(5, greatest(1, ([5, 3, 2, 2, 3, 1])[segment_id + 1]
                    + cast(floor(u4 * 3) as integer) - 1)) end as m_score,
            case when segment_id = 5 and u1 < 0.3 then 'No orders' else 'Scored' end
                as rfm_segment,
            case when u3 < 0.05 then null
                else ({cats})[1 + cast(floor(pow(u4, 1 + segment_id * 0.3) * 7) as integer)]
                end as favourite_category,
            u1 < ([0.8, 0.7, 0.6, 0.5, 0.4, 0.3])[segment_id + 1] as email_opt_in,
            u2 < ([0.6, 0.5, 0.5, 0.4, 0.3, 0.2])[segment_id + 1] as ads_opt_in
        from base
        """
    )
    # Segments per run: a few customers move each night (deterministically by date).
    con.execute(
        """
        create or replace table ml.customer_segments (
            customer_id varchar, as_of_date date, segment_id integer, segment_name varchar,
            distance double, is_outlier boolean, run_id varchar
        )"""
    )
    for k, day in enumerate(dates):
        back = len(dates) - 1 - k  # runs before the last one
        con.execute(
            f"""
            insert into ml.customer_segments
            select
                customer_id, date '{day}', segment_id, {names}, distance,
                distance > 2.6 as is_outlier, 'segmentation-{day}'
            from (
                select customer_id,
                    case when {_u("i", 10 + back)} < {0.04 * back}
                        then (segment_id + 1 + cast({_u("i", 20 + back)} * 2 as integer)) % 6
                        else segment_id end as segment_id,
                    0.2 + 2.5 * u1 * u2 as distance
                from base
            )
            """
        )
    con.execute(
        f"""
        create or replace table ml.segment_profiles as
        select
            'segmentation-' || cast(as_of_date as varchar) as run_id, as_of_date, segment_id,
            any_value(segment_name) as segment_name,
            case segment_id {" ".join(f"when {s[0]} then '{s[2]}'" for s in SEGMENTS)} end
                as description,
            count(*) as customers,
            count(*) / sum(count(*)) over (partition by as_of_date) as share
        from ml.customer_segments
        group by as_of_date, segment_id
        """
    )
    con.execute(
        """
        create or replace table ml.segment_transitions as
        with runs as (
            select as_of_date, lag(as_of_date) over (order by as_of_date) as previous_date
            from (select distinct as_of_date from ml.customer_segments)
        )
        select
            r.as_of_date, r.previous_date as previous_as_of_date,
            p.segment_id as from_segment_id, c.segment_id as to_segment_id,
            count(*) as customers
        from runs as r
        inner join ml.customer_segments as c on c.as_of_date = r.as_of_date
        left join ml.customer_segments as p
            on p.as_of_date = r.previous_date and p.customer_id = c.customer_id
        where r.previous_date is not null
        group by all
        """
    )
    con.execute(
        f"""
        create or replace table ml.k_selection as
        select
            'segmentation-' || cast(d.as_of_date as varchar) as run_id, d.as_of_date, k,
            {n} * 8.0 / pow(k, 0.9) as inertia,
            0.18 + 0.22 * exp(-pow(k - 6, 2) / 6.0) + 0.01 * ((k * 7) % 3) as silhouette,
            k = 6 as is_chosen
        from (select distinct as_of_date from ml.customer_segments) as d, range(2, 11) as t(k)
        """
    )
    con.execute(
        f"""
        create or replace table ml.segment_drift as
        select d.as_of_date, 'segmentation-' || cast(d.as_of_date as varchar) as run_id,
            'feature_psi' as metric, f.feature, null::integer as segment_id,
            0.02 + 0.03 * f.j + 0.02 * d.n * cast(f.j = 2 as integer) as value
        from (select as_of_date, row_number() over (order by as_of_date) as n
              from (select distinct as_of_date from ml.customer_segments)) as d,
            (select unnest([{", ".join(f"'{x}'" for x in FEATURES)}]) as feature,
                    generate_subscripts([{", ".join(f"'{x}'" for x in FEATURES)}], 1) as j) as f
        where d.n > 1
        union all
        select d.as_of_date, 'segmentation-' || cast(d.as_of_date as varchar), 'centroid_shift',
            null, s.segment_id, 0.05 + 0.07 * s.segment_id + 0.04 * d.n
        from (select as_of_date, row_number() over (order by as_of_date) as n
              from (select distinct as_of_date from ml.customer_segments)) as d,
            (select distinct segment_id from ml.customer_segments) as s
        where d.n > 1
        """
    )
    _propensity(con, dates)
    _model_runs(con, dates, n)
    _audiences(con, dates)
    _ops(con, dates, n)


def _propensity(con, dates: list[date]) -> None:
    as_of = dates[-1]
    con.execute(
        """
        create or replace table ml.propensity_scores (
            customer_id varchar, as_of_date date, model_name varchar, score double,
            decile integer, model_version varchar, run_id varchar
        )"""
    )
    for model_i, model in enumerate(MODELS):
        for day in dates[-2:]:
            con.execute(
                f"""
                insert into ml.propensity_scores
                select customer_id, date '{day}', '{model}', score,
                    cast(ntile(10) over (order by score) as integer),
                    '{model}-v1', '{model}-{day}'
                from (
                    select customer_id,
                        least(0.99, pow({_u("i", 40 + model_i)}, {3 + model_i})
                            * ([0.9, 0.6, 0.5, 0.4, 0.3, 0.1])[segment_id + 1]
                            * {1.0 if model == "purchase" else 0.7} + 0.005) as score
                    from base
                )
                """
            )
    con.execute(
        """
        create or replace table ml.model_metrics (
            run_id varchar, model_name varchar, as_of_date date, scorer varchar,
            metric varchar, decile integer, value double
        )"""
    )
    rows = []
    for model in MODELS:
        run = f"{model}-{as_of}"
        for scorer, auc, steep in (
            ("model", 0.81, 2.2),
            ("rfm_recency", 0.71, 1.5),
            ("bgnbd", 0.74, 1.7),
        ):
            rows += [
                (run, model, as_of, scorer, "roc_auc", None, auc),
                (run, model, as_of, scorer, "average_precision", None, auc - 0.45),
                (run, model, as_of, scorer, "brier", None, 0.12 + (0.81 - auc) / 3),
            ]
            lifts = [round(max(0.05, steep ** ((d - 5.5) / 2.5)), 4) for d in range(1, 11)]
            scale = 10 / sum(lifts)
            lifts = [x * scale for x in lifts]
            cum = 0.0
            for d in range(10, 0, -1):
                cum += lifts[d - 1] / 10
                rows.append((run, model, as_of, scorer, "lift", d, lifts[d - 1]))
                rows.append((run, model, as_of, scorer, "capture", 11 - d, min(cum, 1.0)))
            for p in range(21):
                fpr = p / 20
                tpr = 1 - (1 - fpr) ** (auc / (1 - auc))
                rows.append((run, model, as_of, scorer, f"roc_fpr_{p:02d}", None, fpr))
                rows.append((run, model, as_of, scorer, f"roc_tpr_{p:02d}", None, tpr))
        for d in range(1, 11):
            pred = 0.02 * d**1.4
            rows.append((run, model, as_of, "model", "calibration_mean_predicted", d, pred))
            rows.append(
                (
                    run,
                    model,
                    as_of,
                    "model",
                    "calibration_observed_rate",
                    d,
                    pred * (1 + 0.06 * ((d % 3) - 1)),
                )
            )
    con.executemany("insert into ml.model_metrics values (?, ?, ?, ?, ?, ?, ?)", rows)
    feats = [
        "recency_days",
        "order_count",
        "sessions_30d",
        "email_opens_30d",
        "revenue_90d",
        "cart_adds_30d",
        "days_since_last_visit",
        "tenure_days",
        "avg_order_value",
        "pages_per_session_30d",
        "searches_30d",
        "mobile_session_share_90d",
    ]
    con.execute(
        """
        create or replace table ml.feature_importance (
            run_id varchar, model_name varchar, as_of_date date, feature varchar,
            importance_mean double, importance_std double
        )"""
    )
    con.executemany(
        "insert into ml.feature_importance values (?, ?, ?, ?, ?, ?)",
        [
            (f"{m}-{as_of}", m, as_of, f, 0.08 / (j + 1) ** (1.1 + mi * 0.2), 0.004 / (j + 1))
            for mi, m in enumerate(MODELS)
            for j, f in enumerate(feats)
        ],
    )
    con.execute(
        """
        create or replace table ml.score_drift (
            model_name varchar, as_of_date date, previous_as_of_date date, psi double,
            run_id varchar
        )"""
    )
    con.executemany(
        "insert into ml.score_drift values (?, ?, ?, ?, ?)",
        [
            (m, d, dates[i - 1], 0.03 + 0.02 * i + 0.1 * mi * (i == len(dates) - 1), f"{m}-{d}")
            for mi, m in enumerate(MODELS)
            for i, d in enumerate(dates)
            if i > 0
        ],
    )


def _model_runs(con, dates: list[date], n: int) -> None:
    con.execute(
        """
        create or replace table ml.model_runs (
            run_id varchar primary key, model_name varchar not null, as_of_date date not null,
            training_rows bigint, params json, metrics json, library_versions json,
            git_revision varchar, artifact_path varchar, status varchar not null,
            message varchar, created_at timestamp not null
        )"""
    )
    rows = []
    for d in dates:
        rows.append(
            (
                f"segmentation-{d}",
                "segmentation",
                d,
                n,
                '{"k": 6}',
                "{}",
                "{}",
                None,
                None,
                "published",
                None,
                f"{d} 02:00:00",
            )
        )
        for m in MODELS:
            status = "published" if m == "purchase" else "not_published"
            message = None if m == "purchase" else "AUC 0.69 below baseline bgnbd 0.71"
            if d == dates[-1]:
                status, message = "published", None
            rows.append(
                (
                    f"{m}-{d}",
                    m,
                    d,
                    n,
                    "{}",
                    "{}",
                    "{}",
                    None,
                    None,
                    status,
                    message,
                    f"{d} 02:30:00",
                )
            )
    con.executemany("insert into ml.model_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _audiences(con, dates: list[date]) -> None:
    con.execute(
        """
        create or replace table audiences.members (
            audience varchar, as_of_date date, customer_id varchar, "group" varchar
        )"""
    )
    definitions = (
        ("winback_at_risk", "segment_id = 4 and u2 < 0.6", 0.1),
        ("likely_buyers_email", "segment_id in (0, 1, 3) and u1 < 0.7", 0.1),
        ("vip_ads", "segment_id = 0 and u2 < 0.5", 0.05),
    )
    for d_i, day in enumerate(dates):
        for name, cond, holdout in definitions:
            con.execute(
                f"""
                insert into audiences.members
                select '{name}', date '{day}', customer_id,
                    case when {_u("i", 77)} < {holdout} then 'holdout' else 'target' end
                from base where {cond} and {_u("i", 90 + d_i)} > 0.03
                """
            )
    con.execute(
        """
        create or replace table audiences.changes as
        with runs as (
            select as_of_date, lag(as_of_date) over (order by as_of_date) as previous_date
            from (select distinct as_of_date from audiences.members)
        )
        select c.audience, r.as_of_date, c.customer_id, 'entered' as change
        from runs as r
        inner join audiences.members as c on c.as_of_date = r.as_of_date
        anti join audiences.members as p
            on p.as_of_date = r.previous_date and p.audience = c.audience
            and p.customer_id = c.customer_id
        where r.previous_date is not null
        union all
        select p.audience, r.as_of_date, p.customer_id, 'exited'
        from runs as r
        inner join audiences.members as p on p.as_of_date = r.previous_date
        anti join audiences.members as c
            on c.as_of_date = r.as_of_date and p.audience = c.audience
            and p.customer_id = c.customer_id
        """
    )
    con.execute(
        """
        create or replace table audiences.exports as
        select audience, fmt as format, as_of_date, count(*) as row_count,
            md5(audience || fmt) as checksum,
            'output/' || cast(as_of_date as varchar) || '/exports/' || audience || '.' || fmt
                as destination_path,
            cast(as_of_date as timestamp) + interval 3 hour as exported_at
        from audiences.members, (select unnest(['csv', 'google_customer_match']) as fmt)
        where "group" = 'target'
        group by all
        """
    )


def _ops(con, dates: list[date], n: int) -> None:
    first = dates[-1] - timedelta(days=13)
    con.execute(
        f"""
        create or replace table ops.load_manifest as
        select
            source || '/dt=' || cast(cast(d as date) as varchar) || '/part-000.jsonl.gz' as path,
            1000 as size_bytes, md5(cast(d as varchar) || source) as sha256, source,
            cast(d as date) as partition_date,
            rows_read,
            rows_read - dup - quar as rows_loaded,
            quar as rows_quarantined,
            dup as rows_duplicate,
            'loaded' as status, null::varchar as error,
            cast(d as timestamp) + interval 1 day as first_loaded_at,
            cast(d as timestamp) + interval 1 day as updated_at
        from (
            select d, source,
                cast(case source when 'events' then {n} * 3 else {n} / 50 end
                    * (0.8 + 0.4 * {_u("epoch(d)::bigint", 5)}) as bigint) as rows_read,
                cast(case source when 'events' then {n} * 3 else {n} / 50 end * 0.004
                    * {_u("epoch(d)::bigint", 6)} as bigint) as dup,
                cast(case source when 'events' then {n} * 3 else {n} / 50 end * 0.002
                    * {_u("epoch(d)::bigint", 7)} as bigint) as quar
            from range(date '{first}', date '{dates[-1]}' + interval 1 day, interval 1 day)
                as t(d),
                (select unnest(['events', 'crm']) as source)
        )
        """
    )
    con.execute(
        f"""
        create or replace table ops.quarantine as
        select
            source || '/dt=' || cast(partition_date as varchar) || '/part-000.jsonl.gz'
                as source_file,
            cast(q as bigint) + 1 as line_number, source, partition_date,
            '{{"event_id": "e' || cast(q as varchar) || '"}}' as raw_record,
            case when {_u("q", 8)} < 0.55 then ['event_ts_in_future']
                when {_u("q", 8)} < 0.8 then ['missing_identity']
                when {_u("q", 8)} < 0.92 then ['invalid_json']
                else ['negative_price', 'unknown_event_type'] end as reasons,
            cast(partition_date as timestamp) + interval 1 day as quarantined_at
        from ops.load_manifest, range(rows_quarantined) as t(q)
        """
    )
    con.execute(
        """
        create or replace table ops.validation_runs as
        select
            'validate-' || cast(m.partition_date as varchar) as run_id,
            m.source, m.path as source_file, m.partition_date, e.expectation_type, e.column,
            not (e.expectation_type = 'expect_column_values_to_be_between'
                 and m.rows_quarantined > 0 and m.source = 'events') as success,
            case when e.expectation_type = 'expect_column_values_to_be_between'
                 and m.source = 'events' then m.rows_quarantined else 0 end as unexpected_count,
            m.updated_at as validated_at
        from ops.load_manifest as m, (
            select * from (values
                ('expect_column_values_to_not_be_null', 'event_id'),
                ('expect_column_values_to_be_between', 'event_ts'),
                ('expect_column_values_to_be_in_set', 'event_type')
            ) as v(expectation_type, "column")
        ) as e
        """
    )
