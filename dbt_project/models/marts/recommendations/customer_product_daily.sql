{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
        pre_hook="{{ delete_rebuilt_days('activity_date', cart_purchase_days_to_rebuild()) }}",
        post_hook="{{ delete_emptied_days('activity_date') }}",
    )
}}

{#- The days this run rebuilds: the changed days, the day after each, and the later days
    whose one-event orders may buy cart lines of a changed day (macros/cart_purchases.sql).
    Orders and cart lines are read from var('cart_lookback_days') before each of them as
    well. -#}
{%- set dates = cart_purchase_days_to_rebuild() %}
{%- set cart_dates = adjacent_days(dates, before=var('cart_lookback_days')) %}

{#-
One row per customer, product and UTC day with a product view, cart add or purchase: the
interactions the recommender learns from. Events are attributed to customers exactly as in
int_events_sessionised (point in time).

Purchases: a purchase event that names a product (one event per order line) counts for that
product. A purchase event without a product (one event per order) counts for the products
in the session's cart at that moment: cart adds minus removals since the session's previous
such order (which emptied the cart) up to the purchase, valued at list price times quantity,
on the purchase's day. A tracker session (session_id) is one cart however many days it
stays open (up to var('cart_lookback_days') before the order), and its cart lines of a
visitor not logged in yet count for the customer whose order it is (a cart filled before
midnight, then a login and the order after it); a session the model cut by inactivity (no
session_id) is the customer's and ends at midnight. An order without any session (a shop's
back end's) buys the cart of the customer's latest tracker session before it.

Incremental like customer_daily_activity: the days int_event_dates_changed marks, the day
after each, and the later days with an order of a session that has an event on a changed
day, are rebuilt whole. Readers keep activity_date <= their as-of date.
-#}

with

-- Each part reads int_events_sessionised itself, with its own filter: cheaper than holding
-- one shared set of millions of rows.
-- One-event orders and the customers' tracker events of the cart, read from
-- var('cart_lookback_days') before the rebuilt days too: an order without any session (a
-- shop's back end's) belongs to the customer's latest tracker session of a cart line or an
-- order before it (a tracker's copy of the same order included).
order_events as (

    select
        event_id,
        customer_id,
        event_date,
        session_id,
        session_number,
        event_at,
        case when event_type = 'purchase' then 1 else 0 end as is_order
    from {{ ref('int_events_sessionised') }}
    where
        customer_id is not null
        and (
            (event_type = 'purchase' and product_id is null)
            or (
                event_type in ('add_to_cart', 'remove_from_cart')
                and session_id is not null
                and product_id is not null
            )
        )
        and {{ incremental_date_filter('event_date', cart_dates, 'event_at') }}

),

order_sessions as (

    select
        event_id,
        customer_id,
        event_date,
        coalesce(
            session_id,
            case
                when session_number is null
                    then last_value(session_id ignore nulls) over (
                            partition by customer_id
                            order by event_at, event_id
                            rows between unbounded preceding and current row
                        )
            end
        ) as session_id,
        session_number,
        event_at,
        is_order
    from order_events

),

-- Each order with the time of its session's order before it (its cart was emptied then).
-- The cart: a tracker session by its session_id alone (its lines before a login are
-- anonymous), else the customer's inactivity session of the day.
order_level_purchases as (

    select
        event_id,
        customer_id,
        event_date,
        session_id,
        session_number,
        case when session_id is null then customer_id end as cart_customer_id,
        case when session_id is null then event_date end as cart_date,
        event_at as purchased_at,
        lag(event_at) over (
            partition by
                session_id,
                session_number,
                case when session_id is null then customer_id end,
                case when session_id is null then event_date end
            order by event_at, event_id
        ) as previous_purchased_at
    from order_sessions
    where
        is_order = 1
        and (session_id is not null or session_number is not null)

),

session_cart_lines as (

    select
        purchase.customer_id,
        purchase.event_date,
        cart.product_id,
        max(cart.product_category) as product_category,
        sum(
            case
                when cart.event_type = 'add_to_cart' then coalesce(cart.quantity, 1)
                else -coalesce(cart.quantity, 1)
            end
        ) as net_quantity,
        max(cart.price) as price,
        max(cart._loaded_at) as _loaded_at
    from {{ ref('int_events_sessionised') }} as cart
    inner join order_level_purchases as purchase
        on
            cart.session_id is not distinct from purchase.session_id
            and cart.session_number is not distinct from purchase.session_number
            and (case when cart.session_id is null then cart.customer_id end)
            is not distinct from purchase.cart_customer_id
            and (case when cart.session_id is null then cart.event_date end)
            is not distinct from purchase.cart_date
            and cart.event_at <= purchase.purchased_at
            and (
                purchase.previous_purchased_at is null
                or cart.event_at > purchase.previous_purchased_at
            )
            -- A tracker session's lines of another customer (a shared device) are not his.
            and (cart.customer_id is null or cart.customer_id = purchase.customer_id)
            and {{ days_between('cart.event_date', 'purchase.event_date') }}
            <= {{ var('cart_lookback_days') }}
    where
        cart.event_type in ('add_to_cart', 'remove_from_cart')
        and (cart.customer_id is not null or cart.session_id is not null)
        and cart.product_id is not null
        and {{ incremental_date_filter('cart.event_date', cart_dates, 'cart.event_at') }}
        and {{ incremental_date_filter('purchase.event_date', dates) }}
    group by
        purchase.customer_id,
        purchase.event_date,
        purchase.event_id,
        cart.product_id

),

interactions as (

    select
        customer_id,
        event_date as activity_date,
        product_id,
        product_category,
        case when event_type = 'product_view' then 1 else 0 end as product_views,
        case when event_type = 'add_to_cart' then 1 else 0 end as cart_adds,
        case when event_type = 'purchase' then 1 else 0 end as purchases,
        case
            when event_type = 'purchase' then coalesce(revenue, price * coalesce(quantity, 1))
        end as revenue,
        _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        customer_id is not null
        and product_id is not null
        and event_type in ('product_view', 'add_to_cart', 'purchase')
        and {{ incremental_date_filter('event_date', dates, 'event_at') }}

    union all

    select
        customer_id,
        event_date as activity_date,
        product_id,
        product_category,
        0 as product_views,
        0 as cart_adds,
        1 as purchases,
        price * net_quantity as revenue,
        _loaded_at
    from session_cart_lines
    where net_quantity > 0

)

select
    customer_id,
    product_id,
    max(product_category) as product_category,
    activity_date,
    cast(sum(product_views) as {{ dbt.type_bigint() }}) as product_views,
    cast(sum(cart_adds) as {{ dbt.type_bigint() }}) as cart_adds,
    cast(sum(purchases) as {{ dbt.type_bigint() }}) as purchases,
    cast(coalesce(sum(revenue), 0) as {{ type_money() }}) as revenue,
    max(_loaded_at) as _loaded_at
from interactions
group by customer_id, product_id, activity_date
