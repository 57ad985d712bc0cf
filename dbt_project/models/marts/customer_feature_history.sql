{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='fail',
        pre_hook="{{ record_snapshot_dates_built() }}",
        post_hook=[
            "{{ create_snapshot_dates_pending() }}",
            "{{ record_snapshot_dates_pending() }}",
            "{{ create_snapshot_dates_stale() }}",
            "{{ clear_snapshot_dates_stale() }}",
            "{{ record_crm_snapshot_dates_stale() }}",
            "{{ record_crm_dates_built() }}",
        ],
    )
}}

{%- set dates = snapshot_dates_to_build(ref('customer_daily_activity')) %}
{%- if var('cart_abandonment_hours') > 24 %}
    {{ exceptions.raise_compiler_error("var cart_abandonment_hours must be at most 24") }}
{%- endif %}

{#- Daily activity joined to each snapshot date it counts in: a customer's own days up to
    the date, and an anonymous id's days before its first link once the link's day has come
    (attributed_daily_activity; attributed_from_date is activity_date for the own days).
    Written out where it is used (not a CTE) so the wide join is never materialised; each
    use reads its own columns. -#}
{%- set activity -%}
    select
        snapshot_dates.as_of_date,
        daily.*,
        {{ days_between('daily.activity_date', 'snapshot_dates.as_of_date') }} as days_ago
    from ({{ attributed_daily_activity() }}) as daily
    inner join snapshot_dates
        on daily.attributed_from_date <= snapshot_dates.as_of_date
{%- endset %}

-- One snapshot of customer_features per as-of date, computed from customer_daily_activity
-- rows at or before that date, and the anonymous days before a first link made by then
-- (int_anonymous_activity_attributed), only (point in time). Dates built:
-- var('snapshot_dates') (the run's as-of date when empty); in an incremental run only the
-- as-of date and snapshots whose inputs changed are rebuilt.
with

snapshot_dates as (

    {% for d in dates -%}
        select {{ date_literal(d) }} as as_of_date
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {%- if not dates %}
        select {{ as_of_date() }} as as_of_date
        where 1 = 0
    {%- endif %}

),

-- Lifetime figures read every day up to the as-of date, but only a few columns.
lifetime_totals as (

    select
        as_of_date,
        customer_id,
        min(first_seen_at) as first_event_at,
        min(first_order_at) as first_order_at,
        max(last_order_at) as last_order_at,
        sum(orders) as order_count,
        -- Net of refunds (Shopify's total_spent): what the customer kept. order_count and
        -- the order dates count every order placed.
        sum(revenue) - coalesce(sum(refunded_amount), 0) as revenue_total,
        coalesce(sum(refunded_amount), 0) as refund_total,
        max(case when sessions > 0 then activity_date end) as last_visit_date,
        max(case when sessions > 0 or orders > 0 then activity_date end) as last_active_date,
        max(_loaded_at) as _loaded_at
    from ({{ activity }}) as activity
    group by as_of_date, customer_id

),

-- Trailing windows read only the last 90 days.
windows as (

    select
        as_of_date,
        customer_id,
        {% for window in [30, 90] -%}
            sum(case when days_ago < {{ window }} then orders else 0 end) as orders_{{ window }}d,
            sum(case when days_ago < {{ window }} then revenue else 0 end) as revenue_{{ window }}d,
        {% endfor -%}
        {% for measure in ['sessions', 'page_views', 'product_views', 'searches', 'cart_adds'] -%}
            {% for window in [7, 30, 90] -%}
                sum(case when days_ago < {{ window }} then {{ measure }} else 0 end)
                    as {{ measure }}_{{ window }}d,
            {% endfor -%}
        {% endfor -%}
        {% for measure in ['email_opens', 'email_clicks'] -%}
            {% for window in [30, 90] -%}
                sum(case when days_ago < {{ window }} then {{ measure }} else 0 end)
                    as {{ measure }}_{{ window }}d,
            {% endfor -%}
        {% endfor -%}
        sum(case when days_ago < 30 then session_duration_s else 0 end) as session_duration_s_30d,
        sum(case when days_ago < 90 then mobile_sessions else 0 end) as mobile_sessions_90d,
        sum(case when days_ago < 90 then carted_sessions else 0 end) as carted_sessions_90d,
        sum(case when days_ago < 90 then abandoned_cart_sessions else 0 end)
            as abandoned_cart_sessions_90d,
        max(
            case
                when days_ago < {{ var('content_explorer_lookback_days') }}
                    then max_content_pages_unconverted_session
            end
        ) as max_content_pages_unconverted_session_30d,
        max(
            case
                when days_ago < {{ var('cart_abandonment_lookback_days') }} then last_cart_add_at
            end
        ) as last_cart_add_at
    from ({{ activity }}) as activity
    {%- set longest_window = [
        90, var('content_explorer_lookback_days'), var('cart_abandonment_lookback_days'),
    ] | max %}
    where days_ago < {{ longest_window }}
    group by as_of_date, customer_id

),

lifetime as (

    select
        lifetime_totals.*,
        {% for window in [30, 90] -%}
            windows.orders_{{ window }}d,
            windows.revenue_{{ window }}d,
        {% endfor -%}
        {% for measure in ['sessions', 'page_views', 'product_views', 'searches', 'cart_adds'] -%}
            {% for window in [7, 30, 90] -%}
                windows.{{ measure }}_{{ window }}d,
            {% endfor -%}
        {% endfor -%}
        {% for measure in ['email_opens', 'email_clicks'] -%}
            {% for window in [30, 90] -%}
                windows.{{ measure }}_{{ window }}d,
            {% endfor -%}
        {% endfor -%}
        windows.session_duration_s_30d,
        windows.mobile_sessions_90d,
        windows.carted_sessions_90d,
        windows.abandoned_cart_sessions_90d,
        windows.max_content_pages_unconverted_session_30d,
        windows.last_cart_add_at
    from lifetime_totals
    left join windows
        on
            lifetime_totals.as_of_date = windows.as_of_date
            and lifetime_totals.customer_id = windows.customer_id

),

{%- set wait_ends_at = dbt.dateadd(
    'hour', var('cart_abandonment_hours'), 'lifetime.last_cart_add_at'
) %}

-- The days with a purchase, each customer's own and their anonymous ids' before the first
-- link (counted from the link's day on, as above): read by cart_followup.
purchase_days as (

    select
        customer_id,
        activity_date,
        attributed_from_date,
        first_purchase_at,
        last_purchase_at
    from ({{ attributed_daily_activity() }}) as daily
    where first_purchase_at is not null or last_purchase_at is not null

),

-- Was the latest cart add followed by a purchase within var('cart_abandonment_hours')
-- (from the cart add's instant on, both ends included: a "buy now" sends both at once)?
-- Only a cart add whose whole waiting time has passed by the end of the as-of day counts:
-- its last instant is still in the wait, so it must fall before the next midnight, which
-- belongs to the next day (a cart add at 00:00 waits for a purchase at the next 00:00).
-- A purchase later the cart add's day, or in the wait the next day, follows it.
cart_followup as (

    select
        lifetime.as_of_date,
        lifetime.customer_id,
        (
            {{ wait_ends_at }} < {{ end_of_day('lifetime.as_of_date') }}
            and not exists (
                select 1
                from purchase_days
                where
                    purchase_days.customer_id = lifetime.customer_id
                    and purchase_days.attributed_from_date <= lifetime.as_of_date
                    and (
                        (
                            purchase_days.activity_date
                            = cast(lifetime.last_cart_add_at as date)
                            and purchase_days.last_purchase_at >= lifetime.last_cart_add_at
                        )
                        or (
                            purchase_days.activity_date
                            = {{ dbt.dateadd('day', 1, 'cast(lifetime.last_cart_add_at as date)') }}
                            and purchase_days.activity_date <= lifetime.as_of_date
                            and purchase_days.first_purchase_at <= {{ wait_ends_at }}
                        )
                    )
            )
        ) as has_abandoned_cart
    from lifetime
    where lifetime.last_cart_add_at is not null

),

-- Each customer's categories by day: their own, and their anonymous ids' before the first
-- link from the link's day on (as the daily activity above).
category_daily as (

    select
        customer_id,
        activity_date,
        activity_date as attributed_from_date,
        product_category,
        product_views,
        purchases
    from {{ ref('int_customer_category_daily') }}
    union all
    select
        first_links.customer_id,
        category.activity_date,
        first_links.attributed_from_date,
        category.product_category,
        category.product_views,
        category.purchases
    from {{ ref('int_anonymous_category_daily') }} as category
    inner join {{ ref('int_anonymous_first_links') }} as first_links
        on category.anonymous_id = first_links.anonymous_id
    where category.activity_date < first_links.attributed_from_date

),

category_scores as (

    select
        snapshot_dates.as_of_date,
        category.customer_id,
        category.product_category,
        sum(category.product_views + category.purchases) as interactions
    from category_daily as category
    inner join snapshot_dates
        on
            category.attributed_from_date <= snapshot_dates.as_of_date
            and category.activity_date > {{ dbt.dateadd(
                'day', -var('favourite_category_days'), 'snapshot_dates.as_of_date'
            ) }}
    group by snapshot_dates.as_of_date, category.customer_id, category.product_category

),

favourite_category as (

    select
        as_of_date,
        customer_id,
        product_category as favourite_category
    from (
        select
            as_of_date,
            customer_id,
            product_category,
            row_number() over (
                partition by as_of_date, customer_id
                order by interactions desc, product_category asc
            ) as category_rank
        from category_scores
    ) as ranked
    where category_rank = 1

),

-- When the CRM first knew each customer: their first version (never after the one valid on
-- a snapshot day, so no later knowledge leaks in).
first_versions as (

    select
        customer_id,
        min(valid_from) as first_known_at
    from {{ ref('stg_segmint__customer_versions') }}
    group by customer_id

),

-- The CRM version valid at the end of each snapshot day (SCD2): consent and signup date as
-- they were known then, never a later version's.
crm as (

    select
        snapshot_dates.as_of_date,
        versions.customer_id,
        versions.signup_date,
        versions.is_email_opt_in,
        versions.is_ads_opt_in,
        first_versions.first_known_at
    from {{ ref('stg_segmint__customer_versions') }} as versions
    inner join first_versions on versions.customer_id = first_versions.customer_id
    inner join snapshot_dates
        on
            versions.valid_from < {{ end_of_day('snapshot_dates.as_of_date') }}
            and (
                versions.valid_to is null
                or versions.valid_to >= {{ end_of_day('snapshot_dates.as_of_date') }}
            )

),

-- Newest load of any CRM version valid from before the end of each snapshot day: part of
-- the snapshot's load watermark, as it is part of what snapshot_dates_to_build compares later
-- loads with (without it, a CRM version loaded after the day's events would leave the
-- snapshot stale, and rebuilt, on every run that asks for it).
crm_loads as (

    select
        snapshot_dates.as_of_date,
        max(versions._loaded_at) as crm_loaded_at
    from {{ ref('stg_segmint__customer_versions') }} as versions
    inner join snapshot_dates
        on versions.valid_from < {{ end_of_day('snapshot_dates.as_of_date') }}
    group by snapshot_dates.as_of_date

),

-- Customers identified by each date (an identify call or a login linking an anonymous id):
-- when first, and the newest load behind it. A fresh sign-up known only from its identify
-- call has no daily activity (an identify call is no visit) and is still a known customer.
links as (

    select
        snapshot_dates.as_of_date,
        links.customer_id,
        min(links.first_linked_at) as first_linked_at,
        max(links._loaded_at) as _loaded_at
    from {{ ref('int_identity_links_daily') }} as links
    inner join snapshot_dates on links.event_date <= snapshot_dates.as_of_date
    group by snapshot_dates.as_of_date, links.customer_id

),

-- Known customers as of each date: seen in events by then (an identify call included), or
-- in the CRM by then (a version valid that day) unless its signup date is still to come. A
-- CRM record without a signup date counts: many CRMs leave it empty.
known as (

    select
        as_of_date,
        customer_id
    from lifetime
    union
    select
        as_of_date,
        customer_id
    from links
    union
    select
        as_of_date,
        customer_id
    from crm
    where signup_date is null or signup_date <= as_of_date

),

{%- set signup_at -%}
    case
        when crm.signup_date <= known.as_of_date
            then cast(crm.signup_date as {{ dbt.type_timestamp() }})
    end
{%- endset %}

base as (

    select
        known.as_of_date,
        known.customer_id,
        case
            -- No activity: the signup date (once come) or the first identify call, the
            -- earlier; with neither, when the CRM first knew the customer.
            when
                lifetime.first_event_at is null
                then coalesce(
                        least({{ signup_at }}, links.first_linked_at),
                        {{ signup_at }},
                        links.first_linked_at,
                        crm.first_known_at
                    )
            when crm.signup_date is null or crm.signup_date > known.as_of_date
                then lifetime.first_event_at
            when cast(crm.signup_date as {{ dbt.type_timestamp() }}) < lifetime.first_event_at
                then cast(crm.signup_date as {{ dbt.type_timestamp() }})
            else lifetime.first_event_at
        end as first_seen_at,
        lifetime.first_order_at,
        lifetime.last_order_at,
        coalesce(lifetime.order_count, 0) as order_count,
        coalesce(lifetime.revenue_total, 0) as revenue_total,
        coalesce(lifetime.refund_total, 0) as refund_total,
        lifetime.orders_30d,
        lifetime.orders_90d,
        lifetime.revenue_30d,
        lifetime.revenue_90d,
        {% for measure in ['sessions', 'page_views', 'product_views', 'searches', 'cart_adds'] -%}
            {% for window in [7, 30, 90] -%}
                lifetime.{{ measure }}_{{ window }}d,
            {% endfor -%}
        {% endfor -%}
        lifetime.email_opens_30d,
        lifetime.email_clicks_30d,
        lifetime.email_opens_90d,
        lifetime.email_clicks_90d,
        lifetime.session_duration_s_30d,
        lifetime.mobile_sessions_90d,
        lifetime.carted_sessions_90d,
        lifetime.abandoned_cart_sessions_90d,
        lifetime.max_content_pages_unconverted_session_30d,
        lifetime.last_visit_date,
        lifetime.last_active_date,
        lifetime.last_cart_add_at,
        coalesce(cart_followup.has_abandoned_cart, false) as has_abandoned_cart,
        favourite_category.favourite_category,
        coalesce(crm.is_email_opt_in, false) as email_opt_in,
        coalesce(crm.is_ads_opt_in, false) as ads_opt_in,
        -- the newest of the three loads present (each coalesce is one of them)
        greatest(
            coalesce(lifetime._loaded_at, crm_loads.crm_loaded_at, links._loaded_at),
            coalesce(crm_loads.crm_loaded_at, links._loaded_at, lifetime._loaded_at),
            coalesce(links._loaded_at, lifetime._loaded_at, crm_loads.crm_loaded_at)
        ) as _loaded_at
    from known
    left join lifetime
        on known.as_of_date = lifetime.as_of_date and known.customer_id = lifetime.customer_id
    left join crm
        on known.as_of_date = crm.as_of_date and known.customer_id = crm.customer_id
    left join links
        on known.as_of_date = links.as_of_date and known.customer_id = links.customer_id
    left join crm_loads on known.as_of_date = crm_loads.as_of_date
    left join cart_followup
        on
            known.as_of_date = cart_followup.as_of_date
            and known.customer_id = cart_followup.customer_id
    left join favourite_category
        on
            known.as_of_date = favourite_category.as_of_date
            and known.customer_id = favourite_category.customer_id

),

scored as (

    select
        base.*,
        case
            when base.last_order_at is not null
                then {{ days_between('cast(base.last_order_at as date)', 'base.as_of_date') }}
        end as recency_days,
        case when base.order_count > 0 then 1 else 0 end as has_orders
    from base

),

rfm as (

    select
        as_of_date,
        customer_id,
        {{ rfm_quintile('recency_days', 'as_of_date', higher_is_better=false) }} as r_score,
        {{ rfm_quintile('order_count', 'as_of_date') }} as f_score,
        {{ rfm_quintile('revenue_total', 'as_of_date') }} as m_score,
        count(*) over (partition by as_of_date) >= {{ var('rfm_min_customers') }}
            as is_ranked
    from scored
    where has_orders = 1

),

final as (

    select
        scored.customer_id,
        scored.as_of_date,
        scored.first_seen_at,
        scored.first_order_at,
        scored.last_order_at,
        cast(scored.order_count as {{ dbt.type_bigint() }}) as order_count,
        cast(scored.revenue_total as {{ type_money() }}) as revenue_total,
        cast(scored.refund_total as {{ type_money() }}) as refund_total,
        cast(
            case when scored.order_count > 0 then scored.revenue_total / scored.order_count end
            as {{ type_money() }}
        ) as avg_order_value,
        cast(scored.recency_days as integer) as recency_days,
        {{ days_between('cast(scored.first_seen_at as date)', 'scored.as_of_date') }}
            as tenure_days,
        case when rfm.is_ranked then rfm.r_score end as r_score,
        case when rfm.is_ranked then rfm.f_score end as f_score,
        case when rfm.is_ranked then rfm.m_score end as m_score,
        case
            when scored.order_count = 0 then 'No orders'
            when not rfm.is_ranked then 'Too few buyers'
            else segment_map.rfm_segment
        end as rfm_segment,
        cast(coalesce(scored.orders_30d, 0) as {{ dbt.type_bigint() }}) as orders_30d,
        cast(coalesce(scored.orders_90d, 0) as {{ dbt.type_bigint() }}) as orders_90d,
        cast(coalesce(scored.revenue_30d, 0) as {{ type_money() }}) as revenue_30d,
        cast(coalesce(scored.revenue_90d, 0) as {{ type_money() }}) as revenue_90d,
        {% for measure in ['sessions', 'page_views', 'product_views', 'searches', 'cart_adds'] -%}
            {% for window in [7, 30, 90] -%}
                cast(coalesce(scored.{{ measure }}_{{ window }}d, 0) as {{ dbt.type_bigint() }})
                    as {{ measure }}_{{ window }}d,
            {% endfor -%}
        {% endfor -%}
        cast(
            case
                when scored.carted_sessions_90d > 0
                    then 1.0 * scored.abandoned_cart_sessions_90d / scored.carted_sessions_90d
            end
            as {{ type_double() }}
        ) as cart_abandonment_rate_90d,
        cast(
            case
                when scored.sessions_30d > 0
                    then scored.session_duration_s_30d / scored.sessions_30d
            end
            as {{ type_double() }}
        ) as avg_session_duration_s_30d,
        cast(
            case
                when scored.sessions_30d > 0 then 1.0 * scored.page_views_30d / scored.sessions_30d
            end
            as {{ type_double() }}
        ) as pages_per_session_30d,
        cast(coalesce(scored.email_opens_30d, 0) as {{ dbt.type_bigint() }}) as email_opens_30d,
        cast(coalesce(scored.email_clicks_30d, 0) as {{ dbt.type_bigint() }}) as email_clicks_30d,
        cast(coalesce(scored.email_opens_90d, 0) as {{ dbt.type_bigint() }}) as email_opens_90d,
        cast(coalesce(scored.email_clicks_90d, 0) as {{ dbt.type_bigint() }}) as email_clicks_90d,
        case
            when scored.last_visit_date is not null
                then {{ days_between('scored.last_visit_date', 'scored.as_of_date') }}
        end as days_since_last_visit,
        scored.favourite_category,
        cast(
            case
                when scored.sessions_90d > 0
                    then 1.0 * scored.mobile_sessions_90d / scored.sessions_90d
            end
            as {{ type_double() }}
        ) as mobile_session_share_90d,
        scored.email_opt_in,
        scored.ads_opt_in,
        case
            when scored.last_active_date is not null
                then {{ days_between('scored.last_active_date', 'scored.as_of_date') }}
        end as days_since_last_activity,
        scored.has_abandoned_cart,
        cast(scored.max_content_pages_unconverted_session_30d as {{ dbt.type_bigint() }})
            as max_content_pages_unconverted_session_30d,
        scored._loaded_at
    from scored
    left join rfm
        on scored.as_of_date = rfm.as_of_date and scored.customer_id = rfm.customer_id
    left join {{ ref('rfm_segment_map') }} as segment_map
        on rfm.r_score = segment_map.r_score and rfm.f_score = segment_map.f_score

)

select * from final
