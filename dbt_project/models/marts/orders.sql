{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='fail',
        post_hook="{{ delete_orders_without_event() }}",
    )
}}

-- depends_on: {{ ref('int_event_dates_changed') }}

{%- set dates = event_dates_to_rebuild() %}

-- One row per distinct order_id: the first purchase event of the order wins (earliest
-- event_at, then smallest event_id) when an order is sent more than once. An order's events
-- may span days and files, so an incremental run recomputes, from all their purchase events,
-- the orders touched by the rebuilt days: those with a purchase event on one of them, and
-- those whose winning event was on one of them (it may have been deleted or moved). Orders
-- left without any purchase event are deleted by the post-hook. Revenue is in the reporting
-- currency (int_events_sessionised converts it); currency is the one the order was paid in.
-- The customer is the winning event's, else that of the order's first purchase event with
-- one: the browser's purchase of a visitor who never logged in may come first, and the shop's
-- back end sends the same order with its customer. The customer is the one of the order's
-- time (a guest order before the visitor's first login keeps none); anonymous_id is the
-- winning event's, for identity_map's mapping of today and int_anonymous_daily_activity.
-- Refunds (refund events with the order's order_id, whoever they name) add up to
-- refunded_amount, capped at the order's revenue; revenue stays the order's value when placed.
-- An incremental run also recomputes every order with a refund event, and every order that
-- had one (a refund reloaded away or re-keyed): refunds are few, and one may land on any
-- later day, or before its order.
{#- In an incremental run, the orders the rebuilt days touch. -#}
{%- set touched_orders -%}
    {%- if is_incremental() -%}
        order_id in (
            {{ purchase_orders_on(ref('int_events_sessionised'), dates) }}
            union
            select order_id
            from {{ this }}
            where {{ date_list_filter('order_date', dates) }}
            union
            select order_id
            from {{ ref('int_events_sessionised') }}
            where event_type = 'refund' and order_id is not null
            union
            select order_id
            from {{ this }}
            where refunded_at is not null
        )
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endset %}

{%- set refunded_amount -%}
    case
        when refunds.refunded_amount is null then 0
        when refunds.refunded_amount > coalesce(ranked.revenue, 0) then coalesce(ranked.revenue, 0)
        else refunds.refunded_amount
    end
{%- endset %}

with

purchases as (

    select
        order_id,
        customer_id,
        anonymous_id,
        event_id,
        event_at,
        event_date,
        coalesce(revenue, price * coalesce(quantity, 1)) as revenue,
        coalesce(currency, '{{ reporting_currency() }}') as currency,
        fx_rate,
        coalesce(quantity, 1) as item_count,
        _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        event_type = 'purchase'
        and order_id is not null
        and {{ touched_orders }}

),

ranked as (

    select
        *,
        row_number() over (partition by order_id order by event_at, event_id) as order_rank
    from purchases

),

-- The order's first purchase event with a customer (few orders have one without).
customers_ranked as (

    select
        order_id,
        customer_id,
        row_number() over (partition by order_id order by event_at, event_id) as customer_rank
    from purchases
    where customer_id is not null

),

-- Every refund of the orders (in the reporting currency, converted at the refund day's rate).
refunds as (

    select
        order_id,
        sum(coalesce(revenue, 0)) as refunded_amount,
        max(event_at) as refunded_at,
        max(_loaded_at) as _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        event_type = 'refund'
        and order_id is not null
        and {{ touched_orders }}
    group by order_id

)

select
    ranked.order_id,
    coalesce(ranked.customer_id, customers_ranked.customer_id) as customer_id,
    ranked.anonymous_id,
    ranked.event_at as ordered_at,
    ranked.event_date as order_date,
    cast(ranked.revenue as {{ type_money() }}) as revenue,
    ranked.currency,
    ranked.fx_rate,
    cast(ranked.item_count as {{ dbt.type_bigint() }}) as item_count,
    ranked.event_id,
    cast({{ refunded_amount }} as {{ type_money() }}) as refunded_amount,
    cast(coalesce(ranked.revenue, 0) - {{ refunded_amount }} as {{ type_money() }})
        as net_revenue,
    refunds.refunded_at,
    case
        when refunds._loaded_at > ranked._loaded_at then refunds._loaded_at
        else ranked._loaded_at
    end as _loaded_at
from ranked
left join customers_ranked
    on
        ranked.order_id = customers_ranked.order_id
        and customers_ranked.customer_rank = 1
left join refunds on ranked.order_id = refunds.order_id
where ranked.order_rank = 1
