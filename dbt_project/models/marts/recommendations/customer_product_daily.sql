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
in the customer's cart at that moment: cart adds minus removals since the customer's
previous purchase (which emptied the cart: a one-event order or an order line) up to the
purchase (nothing when the same order's lines were sent too), within
var('cart_lookback_days') before it, valued at list price times quantity, on the
purchase's day. The cart is the customer's, kept across visits (a server-side cart, a
persistent cookie): their own cart lines of any session, a visitor's lines (not logged in
yet) of the tracker session of the order, and a visitor's lines of an anonymous id identity
stitching linked to the customer alone, from the link on. An order without any session (a
shop's back end's) buys that cart too.

Incremental like customer_daily_activity: the days int_event_dates_changed marks, the day
after each, and the later days with an order whose cart may hold a line of a changed day
(macros/cart_purchases.sql), are rebuilt whole. Readers keep activity_date <= their as-of
date.
-#}

with

-- Each part reads int_events_sessionised itself, with its own filter: cheaper than holding
-- one shared set of millions of rows.
-- The customers' one-event orders, read from var('cart_lookback_days') before the rebuilt
-- days too, each with the time of the customer's purchase before it (which emptied the
-- cart): of a one-event order or of an order line (a shop sending both kinds). An order
-- whose lines were sent too (the same order id, on any day: a back end's copy of the order
-- may come days after its lines, or before them) buys nothing from the cart: its lines count.
orders as (

    select
        purchases.event_id,
        purchases.customer_id,
        purchases.event_date,
        purchases.session_id,
        purchases.purchased_at,
        purchases.previous_purchased_at
    from (
        select
            event_id,
            customer_id,
            event_date,
            session_id,
            product_id,
            order_id,
            event_at as purchased_at,
            lag(event_at) over (
                partition by customer_id
                order by event_at, event_id
            ) as previous_purchased_at
        from {{ ref('int_events_sessionised') }}
        where
            customer_id is not null
            and event_type = 'purchase'
            and {{ incremental_date_filter('event_date', cart_dates, 'event_at') }}
    ) as purchases
    where
        purchases.product_id is null
        and not exists (
            select 1
            from {{ ref('int_events_sessionised') }} as order_lines
            where
                order_lines.event_type = 'purchase'
                and order_lines.product_id is not null
                and order_lines.order_id = purchases.order_id
                and order_lines.customer_id = purchases.customer_id
        )

),

rebuilt_orders as (

    select
        event_id,
        customer_id,
        event_date,
        session_id,
        purchased_at,
        previous_purchased_at
    from orders
    where {{ incremental_date_filter('event_date', dates) }}

),

cart_events as (

    select
        event_id,
        customer_id,
        anonymous_id,
        session_id,
        event_date,
        event_at,
        product_id,
        product_category,
        case
            when event_type = 'add_to_cart' then coalesce(quantity, 1)
            else -coalesce(quantity, 1)
        end as quantity,
        price,
        _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        event_type in ('add_to_cart', 'remove_from_cart')
        and product_id is not null
        and (customer_id is not null or session_id is not null or anonymous_id is not null)
        and {{ incremental_date_filter('event_date', cart_dates, 'event_at') }}

),

{%- if cart_scope() == 'customer' %}

    -- The anonymous ids of these cart lines that identity stitching linked to one customer
    -- alone, and when first (a shared device's lines are no one's by this way).
    sole_links as (

        select
            anonymous_id,
            min(customer_id) as customer_id,
            min(first_linked_at) as first_linked_at
        from {{ ref('int_identity_links') }}
        where
            anonymous_id in (
                select cart_events.anonymous_id
                from cart_events
                where cart_events.customer_id is null
            )
        group by anonymous_id
        having count(*) = 1

    ),

    -- Each cart line with the customer whose cart holds it (owned_from: from when; null:
    -- always): the customer's own lines, whatever the visit, and a visitor's lines (not logged
    -- in yet) of an anonymous id linked to the customer alone, once linked.
    cart_lines as (

        select
            customer_id as cart_customer_id,
            cast(null as {{ dbt.type_timestamp() }}) as owned_from,
            event_id,
            event_date,
            event_at,
            product_id,
            product_category,
            quantity,
            price,
            _loaded_at
        from cart_events
        where customer_id is not null

        union all

        select
            sole_links.customer_id as cart_customer_id,
            sole_links.first_linked_at as owned_from,
            cart.event_id,
            cart.event_date,
            cart.event_at,
            cart.product_id,
            cart.product_category,
            cart.quantity,
            cart.price,
            cart._loaded_at
        from cart_events as cart
        inner join sole_links on cart.anonymous_id = sole_links.anonymous_id
        where cart.customer_id is null

    ),

    -- The open lines each order buys: the customer's cart lines since their previous order
    -- (across visits and sessions) up to the order, within var('cart_lookback_days'), and a
    -- visitor's lines of the order's own tracker session (a cart filled before the login); a
    -- line reached both ways counts once.
    bought_lines as (

        select distinct
            order_event_id,
            customer_id,
            event_date,
            event_id,
            product_id,
            product_category,
            quantity,
            price,
            _loaded_at
        from (
            select
                {{ bought_line_columns() }}
            from cart_lines as cart
            inner join rebuilt_orders as purchase
                on
                    cart.cart_customer_id = purchase.customer_id
                    and (cart.owned_from is null or cart.owned_from <= purchase.purchased_at)
                    and {{ open_cart_line() }}

            union all

            select
                {{ bought_line_columns() }}
            from cart_events as cart
            inner join rebuilt_orders as purchase
                on
                    cart.session_id = purchase.session_id
                    and {{ open_cart_line() }}
            where cart.customer_id is null
        ) as reached

    ),
{%- else %}

    -- Carts kept per visit (var('cart_scope') 'session'): a back end's order (no session) buys
    -- the cart of the session of the customer's latest own cart line before it.
    back_end_order_sessions as (

        select
            order_event_id,
            session_id
        from (
            select
                purchase.event_id as order_event_id,
                cart.session_id,
                row_number() over (
                    partition by purchase.event_id
                    order by cart.event_at desc, cart.event_id desc
                ) as recency
            from rebuilt_orders as purchase
            inner join cart_events as cart
                on
                    purchase.customer_id = cart.customer_id
                    and cart.session_id is not null
                    and {{ open_cart_line() }}
            where purchase.session_id is null
        ) as latest
        where recency = 1

    ),

    -- Each order with the session whose cart it buys: its own, else the back end's pick.
    session_orders as (

        select
            rebuilt_orders.event_id,
            rebuilt_orders.customer_id,
            rebuilt_orders.event_date,
            rebuilt_orders.purchased_at,
            rebuilt_orders.previous_purchased_at,
            coalesce(
                rebuilt_orders.session_id, back_end_order_sessions.session_id
            ) as cart_session_id
        from rebuilt_orders
        left join back_end_order_sessions
            on rebuilt_orders.event_id = back_end_order_sessions.order_event_id

    ),

    -- The open lines each order buys: its session's cart lines (the customer's, and a
    -- visitor's before the login) since the customer's previous order up to the order, within
    -- var('cart_lookback_days'); another visit's cart is not this order's.
    bought_lines as (

        select
            {{ bought_line_columns() }}
        from cart_events as cart
        inner join session_orders as purchase
            on
                cart.session_id = purchase.cart_session_id
                and (cart.customer_id is null or cart.customer_id = purchase.customer_id)
                and {{ open_cart_line() }}

    ),
{%- endif %}

order_cart_lines as (

    select
        customer_id,
        event_date,
        product_id,
        max(product_category) as product_category,
        sum(quantity) as net_quantity,
        max(price) as price,
        max(_loaded_at) as _loaded_at
    from bought_lines
    group by customer_id, event_date, order_event_id, product_id

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
    from order_cart_lines
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
