{#-
The daily activity of one kind of person, one row per person and UTC day: the body of
customer_daily_activity (person 'customer_id': events, sessions and orders attributed to a
customer at the time, refunds counting for their order's customer) and of
int_anonymous_daily_activity (person 'anonymous_id': those of a visitor attributed to nobody
at the time, refunds through their guest order). `dates`: the days to build
(event_dates_to_rebuild), every day when none.
-#}
{% macro daily_activity(person, dates) -%}
{%- set anonymous = person == 'anonymous_id' -%}
{%- set whose = 'customer_id is null and anonymous_id is not null' if anonymous
    else 'customer_id is not null' -%}
with

events as (

    select
        {{ person }},
        event_date as activity_date,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'search' then 1 else 0 end) as searches,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_adds,
        sum(case when event_type = 'email_open' then 1 else 0 end) as email_opens,
        sum(case when event_type = 'email_click' then 1 else 0 end) as email_clicks,
        max(case when event_type = 'add_to_cart' then event_at end) as last_cart_add_at,
        min(case when event_type = 'purchase' then event_at end) as first_purchase_at,
        max(case when event_type = 'purchase' then event_at end) as last_purchase_at,
        max(_loaded_at) as _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        {{ whose }}
        -- an identify call is no sign of a visit (a back end may send one for every
        -- customer every night): it links ids, nothing more; a refund counts below, for
        -- its order's person
        and event_type not in ('identify', 'refund')
        and {{ incremental_date_filter('event_date', dates, 'event_at') }}
    group by {{ person }}, event_date

),

sessions as (

    select
        {{ person }},
        session_date as activity_date,
        count(*) as sessions,
        sum(duration_s) as session_duration_s,
        sum(
            case
                when device_type in ({{ sql_string_list(var('mobile_device_types')) }}) then 1
                else 0
            end
        ) as mobile_sessions,
        sum(case when cart_adds > 0 then 1 else 0 end) as carted_sessions,
        sum(case when cart_adds > 0 and not is_converted then 1 else 0 end)
            as abandoned_cart_sessions,
        max(case when not is_converted then content_page_views end)
            as max_content_pages_unconverted_session
    from {{ ref('sessions') }}
    where
        {{ whose }}
        and {{ incremental_date_filter('session_date', dates) }}
    group by {{ person }}, session_date

),

orders as (

    select
        {{ person }},
        order_date as activity_date,
        count(*) as orders,
        sum(revenue) as revenue,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        max(_loaded_at) as _loaded_at
    from {{ ref('orders') }}
    where
        {{ whose }}
        and {{ incremental_date_filter('order_date', dates) }}
    group by {{ person }}, order_date

),

{% if anonymous -%}
-- a refund row names a customer (its order's); a guest order's visitor is the order's
refunds as (

    select
        orders.anonymous_id,
        refunds.applied_date as activity_date,
        sum(refunds.applied_amount) as refunded_amount,
        max(refunds._loaded_at) as _loaded_at
    from {{ ref('refunds') }} as refunds
    inner join {{ ref('orders') }} as orders on refunds.order_id = orders.order_id
    where
        orders.customer_id is null
        and orders.anonymous_id is not null
        and refunds.applied_amount > 0
        and {{ incremental_date_filter('refunds.applied_date', dates) }}
    group by orders.anonymous_id, refunds.applied_date

),
{%- else -%}
refunds as (

    select
        customer_id,
        applied_date as activity_date,
        sum(applied_amount) as refunded_amount,
        max(_loaded_at) as _loaded_at
    from {{ ref('refunds') }}
    where
        customer_id is not null
        and applied_amount > 0
        and {{ incremental_date_filter('applied_date', dates) }}
    group by customer_id, applied_date

),
{%- endif %}

-- The days with events, and those with only a refund or an order of the person's (the
-- browser's anonymous purchase wins an order the back end sent after midnight with its
-- customer: the order counts on the winning event's day, when the customer may have no
-- event of their own). An order is seen when placed: it widens the day's seen times.
activity as (

    select
        coalesce(events.{{ person }}, refunds.{{ person }}, orders.{{ person }})
            as {{ person }},
        coalesce(events.activity_date, refunds.activity_date, orders.activity_date)
            as activity_date,
        case
            when orders.first_order_at < events.first_seen_at or events.first_seen_at is null
                then orders.first_order_at
            else events.first_seen_at
        end as first_seen_at,
        case
            when orders.last_order_at > events.last_seen_at or events.last_seen_at is null
                then orders.last_order_at
            else events.last_seen_at
        end as last_seen_at,
        coalesce(events.page_views, 0) as page_views,
        coalesce(events.product_views, 0) as product_views,
        coalesce(events.searches, 0) as searches,
        coalesce(events.cart_adds, 0) as cart_adds,
        coalesce(events.email_opens, 0) as email_opens,
        coalesce(events.email_clicks, 0) as email_clicks,
        events.last_cart_add_at,
        events.first_purchase_at,
        events.last_purchase_at,
        coalesce(refunds.refunded_amount, 0) as refunded_amount,
        coalesce(orders.orders, 0) as orders,
        coalesce(orders.revenue, 0) as revenue,
        orders.first_order_at,
        orders.last_order_at,
        -- an order's load counts on a day of no event or refund of the person's only
        coalesce(
            case
                when refunds._loaded_at > events._loaded_at or events._loaded_at is null
                    then refunds._loaded_at
                else events._loaded_at
            end,
            orders._loaded_at
        ) as _loaded_at
    from events
    full outer join refunds
        on
            events.{{ person }} = refunds.{{ person }}
            and events.activity_date = refunds.activity_date
    full outer join orders
        on
            coalesce(events.{{ person }}, refunds.{{ person }}) = orders.{{ person }}
            and coalesce(events.activity_date, refunds.activity_date) = orders.activity_date

)

select
    activity.{{ person }},
    activity.activity_date,
    cast(coalesce(sessions.sessions, 0) as {{ dbt.type_bigint() }}) as sessions,
    cast(activity.page_views as {{ dbt.type_bigint() }}) as page_views,
    cast(activity.product_views as {{ dbt.type_bigint() }}) as product_views,
    cast(activity.searches as {{ dbt.type_bigint() }}) as searches,
    cast(activity.cart_adds as {{ dbt.type_bigint() }}) as cart_adds,
    cast(activity.orders as {{ dbt.type_bigint() }}) as orders,
    cast(activity.revenue as {{ type_money() }}) as revenue,
    cast(activity.refunded_amount as {{ type_money() }}) as refunded_amount,
    cast(activity.email_opens as {{ dbt.type_bigint() }}) as email_opens,
    cast(activity.email_clicks as {{ dbt.type_bigint() }}) as email_clicks,
    cast(coalesce(sessions.session_duration_s, 0) as {{ type_double() }}) as session_duration_s,
    cast(coalesce(sessions.mobile_sessions, 0) as {{ dbt.type_bigint() }}) as mobile_sessions,
    cast(coalesce(sessions.carted_sessions, 0) as {{ dbt.type_bigint() }}) as carted_sessions,
    cast(coalesce(sessions.abandoned_cart_sessions, 0) as {{ dbt.type_bigint() }})
        as abandoned_cart_sessions,
    cast(sessions.max_content_pages_unconverted_session as {{ dbt.type_bigint() }})
        as max_content_pages_unconverted_session,
    activity.first_seen_at,
    activity.last_seen_at,
    activity.first_order_at,
    activity.last_order_at,
    activity.last_cart_add_at,
    activity.first_purchase_at,
    activity.last_purchase_at,
    activity._loaded_at
from activity
left join sessions
    on
        activity.{{ person }} = sessions.{{ person }}
        and activity.activity_date = sessions.activity_date
{%- endmacro %}


{#- Product views and purchases per person, day and product category: the body of
    int_customer_category_daily (person 'customer_id') and int_anonymous_category_daily
    (person 'anonymous_id': events attributed to nobody at the time). -#}
{% macro category_daily(person, dates) -%}
{%- set whose = 'customer_id is null and anonymous_id is not null' if person == 'anonymous_id'
    else 'customer_id is not null' -%}
select
    {{ person }},
    event_date as activity_date,
    product_category,
    cast(sum(case when event_type = 'product_view' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as product_views,
    cast(sum(case when event_type = 'purchase' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as purchases,
    max(_loaded_at) as _loaded_at
from {{ ref('int_events_sessionised') }}
where
    {{ whose }}
    and product_category is not null
    and event_type in ('product_view', 'purchase')
    and {{ incremental_date_filter('event_date', dates, 'event_at') }}
group by {{ person }}, event_date, product_category
{%- endmacro %}
