{{ config(materialized='table') }}

-- One row per refund event: the order it names and that order's customer (whatever identity
-- the refund row carried), and how much of it counts. Refunds of one order add up, in the
-- order of refunded_at (then event_id), capped at the order's revenue: applied_amount is the
-- part of each refund that is still within the order's amount (0 for what goes beyond it).
-- A refund counts on its own day, or on its order's day when dated before the order (the
-- clocks of two systems): a customer's revenue net of refunds never counts a refund before
-- the order it refunds. A refund whose order is not loaded (yet) has no customer and counts
-- nowhere (has_order false); the transform stage warns about such refunds. Rebuilt whole each
-- night: refunds are few, and a late order, a moved order or an earlier refund changes the
-- counted amount of refunds loaded long before. customer_daily_activity reads the days it
-- rebuilds from here.
with

refund_events as (

    select
        event_id,
        order_id,
        event_at,
        event_date,
        coalesce(revenue, 0) as amount,
        coalesce(currency, '{{ reporting_currency() }}') as currency,
        fx_rate,
        _loaded_at
    from {{ ref('int_events_sessionised') }}
    where event_type = 'refund' and order_id is not null

),

cumulated as (

    select
        refund_events.*,
        sum(refund_events.amount) over (
            partition by refund_events.order_id
            order by refund_events.event_at, refund_events.event_id
            rows between unbounded preceding and current row
        ) as cumulative_amount
    from refund_events

),

applied as (

    select
        cumulated.event_id,
        cumulated.order_id,
        orders.customer_id,
        cumulated.event_at,
        cumulated.event_date,
        orders.order_id is not null as has_order,
        case
            when orders.order_id is null then null
            when cumulated.event_date < orders.order_date then orders.order_date
            else cumulated.event_date
        end as applied_date,
        cumulated.amount,
        cumulated.currency,
        cumulated.fx_rate,
        case
            when orders.order_id is null then 0
            when cumulated.cumulative_amount <= coalesce(orders.revenue, 0) then cumulated.amount
            when
                cumulated.cumulative_amount - cumulated.amount >= coalesce(orders.revenue, 0)
                then 0
            else coalesce(orders.revenue, 0) - (cumulated.cumulative_amount - cumulated.amount)
        end as applied_amount,
        -- The order's watermark covers its purchase and all its refunds.
        coalesce(orders._loaded_at, cumulated._loaded_at) as _loaded_at
    from cumulated
    left join {{ ref('orders') }} as orders on cumulated.order_id = orders.order_id

)

select
    event_id,
    order_id,
    customer_id,
    event_at as refunded_at,
    event_date as refund_date,
    applied_date,
    cast(amount as {{ type_money() }}) as amount,
    currency,
    fx_rate,
    cast(applied_amount as {{ type_money() }}) as applied_amount,
    has_order,
    _loaded_at
from applied
