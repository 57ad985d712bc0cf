{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
        post_hook="{{ delete_emptied_days('activity_date') }}",
    )
}}

{%- set dates = event_dates_to_rebuild() %}

{#-
One row per customer, product and UTC day with a product view, cart add or purchase: the
interactions the recommender learns from. Events are attributed to customers exactly as in
int_events_sessionised (point in time).

Purchases: a purchase event that names a product (one event per order line) counts for that
product. A purchase event without a product (one event per order) counts for the products
left in the session's cart at that moment: cart adds minus removals up to the purchase,
valued at list price times quantity.

Incremental like customer_daily_activity: the days int_event_dates_changed marks are
rebuilt whole. Readers keep activity_date <= their as-of date.
-#}

with

-- Each part reads int_events_sessionised itself, with its own filter: cheaper than holding
-- one shared set of millions of rows.
order_level_purchases as (

    select
        customer_id,
        event_date,
        session_id,
        session_number,
        min(event_at) as purchased_at
    from {{ ref('int_events_sessionised') }}
    where
        event_type = 'purchase'
        and product_id is null
        and customer_id is not null
        and {{ incremental_date_filter('event_date', dates, 'event_at') }}
    group by customer_id, event_date, session_id, session_number

),

session_cart_lines as (

    select
        cart.customer_id,
        cart.event_date,
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
            cart.customer_id = purchase.customer_id
            and cart.event_date = purchase.event_date
            and cart.session_id is not distinct from purchase.session_id
            and cart.session_number is not distinct from purchase.session_number
            and cart.event_at <= purchase.purchased_at
    where
        cart.event_type in ('add_to_cart', 'remove_from_cart')
        and cart.customer_id is not null
        and cart.product_id is not null
        and {{ incremental_date_filter('cart.event_date', dates, 'cart.event_at') }}
    group by
        cart.customer_id,
        cart.event_date,
        cart.session_id,
        cart.session_number,
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
