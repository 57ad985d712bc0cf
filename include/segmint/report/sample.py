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
            'active' as status,
            false as is_pinned,
            count(*) as customers,
            count(*) filter (where is_outlier) as outliers,
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
            'segmentation-' || cast(r.as_of_date as varchar) as run_id,
            r.as_of_date, r.previous_date as previous_as_of_date,
            p.segment_id as from_segment_id, any_value(p.segment_name) as from_segment_name,
            c.segment_id as to_segment_id, any_value(c.segment_name) as to_segment_name,
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
            k = 6 as is_chosen,
            {n} as search_rows,
            {min(n, 10_000)} as silhouette_rows
        from (select distinct as_of_date from ml.customer_segments) as d, range(2, 11) as t(k)
        """
    )
    con.execute(
        f"""
        create or replace table ml.segment_drift as
        select 'segmentation-' || cast(d.as_of_date as varchar) as run_id, d.as_of_date,
            d.as_of_date - 1 as previous_as_of_date, 'feature_psi' as kind,
            null::integer as segment_id, f.feature,
            0.02 + 0.03 * f.j + 0.02 * d.n * cast(f.j = 2 as integer) as value,
            0.02 + 0.03 * f.j + 0.02 * d.n * cast(f.j = 2 as integer) > 0.2 as is_warning
        from (select as_of_date, row_number() over (order by as_of_date) as n
              from (select distinct as_of_date from ml.customer_segments)) as d,
            (select unnest([{", ".join(f"'{x}'" for x in FEATURES)}]) as feature,
                    generate_subscripts([{", ".join(f"'{x}'" for x in FEATURES)}], 1) as j) as f
        where d.n > 1
        union all
        select 'segmentation-' || cast(d.as_of_date as varchar), d.as_of_date,
            d.as_of_date - 1, 'centroid_shift', s.segment_id, null,
            0.05 + 0.07 * s.segment_id + 0.04 * d.n, false
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
            metric varchar, value double, decile integer
        )"""
    )
    rows = []
    for model in MODELS:
        run = f"{model}-{as_of}"
        for scorer, auc, steep in (
            ("model", 0.81, 2.2),
            ("baseline_recency", 0.71, 1.5),
            ("baseline_bgnbd", 0.74, 1.7),
        ):
            base_rate = 0.12
            for metric, value in (
                ("roc_auc", auc),
                ("average_precision", auc - 0.45),
                ("brier", 0.12 + (0.81 - auc) / 3),
                ("base_rate", base_rate),
                ("rows", 10_000.0),
            ):
                rows.append((run, model, as_of, scorer, metric, value, None))
            # The decile table as ml.propensity writes it: 10 = top, capture cumulative from
            # the top decile down.
            lifts = [max(0.05, steep ** ((d - 5.5) / 2.5)) for d in range(1, 11)]
            scale = 10 / sum(lifts)
            captured = 0.0
            for d in range(10, 0, -1):
                lift = lifts[d - 1] * scale
                rate = lift * base_rate
                captured += lift / 10
                wobble = 1 + 0.06 * ((d % 3) - 1) if scorer == "model" else 1.25
                for metric, value in (
                    ("decile_rows", 1000.0),
                    ("decile_observed_rate", rate),
                    ("decile_mean_predicted", rate * wobble),
                    ("lift", lift),
                    ("capture", min(captured, 1.0)),
                ):
                    rows.append((run, model, as_of, scorer, metric, value, d))
    con.executemany(
        "insert into ml.model_metrics (run_id, model_name, as_of_date, scorer, metric, value, "
        "decile) values (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
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
            importance_mean double, importance_std double, rank integer
        )"""
    )
    con.executemany(
        "insert into ml.feature_importance values (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                f"{m}-{as_of}",
                m,
                as_of,
                f,
                0.08 / (j + 1) ** (1.1 + mi * 0.2),
                0.004 / (j + 1),
                j + 1,
            )
            for mi, m in enumerate(MODELS)
            for j, f in enumerate(feats)
        ],
    )
    con.execute(
        """
        create or replace table ml.score_drift (
            run_id varchar, model_name varchar, as_of_date date, previous_as_of_date date,
            previous_run_id varchar, psi double, threshold double,
            is_over_threshold boolean, bins json
        )"""
    )
    con.executemany(
        "insert into ml.score_drift values (?, ?, ?, ?, ?, ?, 0.2, ? > 0.2, null)",
        [
            (f"{m}-{d}", m, d, dates[i - 1], f"{m}-{dates[i - 1]}", psi, psi)
            for mi, m in enumerate(MODELS)
            for i, d in enumerate(dates)
            if i > 0
            for psi in [0.03 + 0.02 * i + 0.1 * mi * (i == len(dates) - 1)]
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
        select c.audience, r.as_of_date, c.customer_id, 'entered' as change, c."group",
            r.previous_date as previous_as_of_date
        from runs as r
        inner join audiences.members as c on c.as_of_date = r.as_of_date
        anti join audiences.members as p
            on p.as_of_date = r.previous_date and p.audience = c.audience
            and p.customer_id = c.customer_id
        where r.previous_date is not null
        union all
        select p.audience, r.as_of_date, p.customer_id, 'exited', p."group", r.previous_date
        from runs as r
        inner join audiences.members as p on p.as_of_date = r.previous_date
        anti join audiences.members as c
            on c.as_of_date = r.as_of_date and p.audience = c.audience
            and p.customer_id = c.customer_id
        """
    )
    con.execute(
        """
        create or replace table audiences.summary as
        select
            m.as_of_date, m.audience, 'built' as status, null::varchar as error,
            'sample audience' as description, 'email' as consent,
            null::varchar as priority_group, null::integer as priority,
            count(*) as matched, 0::bigint as without_consent, 0::bigint as suppressed,
            0::bigint as claimed_by_higher_priority, 0::bigint as over_size_limit,
            count(*) as members,
            count(*) filter (where "group" = 'target') as target,
            count(*) filter (where "group" = 'holdout') as holdout,
            100.0 * count(*) filter (where "group" = 'holdout') / count(*) as holdout_percent,
            null::bigint as entered, null::bigint as exited,
            null::date as previous_as_of_date, null::varchar as definition_file,
            null::varchar as definition_sha256, null::varchar as compiled_sql,
            cast(m.as_of_date as timestamp) + interval 3 hour as built_at
        from audiences.members as m
        group by m.as_of_date, m.audience
        """
    )
    con.execute(
        """
        create or replace table audiences.exports as
        select
            md5(audience || fmt || cast(as_of_date as varchar)) as export_id,
            audience, fmt as format, as_of_date, count(*) as row_count,
            md5(audience || fmt) as file_sha256,
            'output/' || cast(as_of_date as varchar) || '/exports/' || audience || '.' || fmt
                as destination,
            null::date as baseline_as_of_date,
            cast(as_of_date as timestamp) + interval 3 hour as exported_at
        from audiences.members, (select unnest(['csv', 'google_customer_match']) as fmt)
        where "group" = 'target'
        group by all
        """
    )
    # Orders after the first snapshot, so readouts have outcomes: targets buy a bit more.
    first = dates[0]
    con.execute(
        f"""
        create or replace table marts.orders as
        select
            'O' || cast(i as varchar) || '-' || cast(k as varchar) as order_id,
            b.customer_id,
            cast(o.order_date as timestamp) + interval 12 hour as ordered_at,
            o.order_date,
            cast(20 + 180 * {_u("i * 31 + k", 60)} as decimal(18, 2)) as revenue,
            'EUR' as currency,
            1 + cast(3 * {_u("i * 31 + k", 61)} as integer) as item_count
        from base as b, range(2) as t(k),
            lateral (
                select date '{first}' + cast(1 + floor({_u("i * 31 + k", 62)} * {len(dates) - 1})
                    as integer) as order_date
            ) as o
        where {_u("i * 31 + k", 63)} < case when {_u("i", 77)} < 0.1 then 0.05 else 0.08 end
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
            0 as rows_warned,
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
            m.path as source_file, m.source, m.partition_date, m.sha256,
            m.source as suite, e.rule, e.expectation_type, e.column as column_name,
            'record' as level, e.rule as description,
            not (e.expectation_type = 'expect_column_values_to_be_between'
                 and m.rows_quarantined > 0 and m.source = 'events') as success,
            m.rows_read as element_count,
            case when e.expectation_type = 'expect_column_values_to_be_between'
                 and m.source = 'events' then m.rows_quarantined else 0 end as unexpected_count,
            null::double as unexpected_percent, null::varchar as observed_value,
            null::json as kwargs,
            m.updated_at as validated_at
        from ops.load_manifest as m, (
            select * from (values
                ('event_id_present', 'expect_column_values_to_not_be_null', 'event_id'),
                ('event_ts_not_future', 'expect_column_values_to_be_between', 'event_ts'),
                ('event_type_known', 'expect_column_values_to_be_in_set', 'event_type')
            ) as v(rule, expectation_type, "column")
        ) as e
        """
    )
