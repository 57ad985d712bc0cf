-- One row per distinct order_id: the first purchase event of the order wins (earliest
-- event_at, then smallest event_id) when an order is sent more than once. A table rebuilt
-- every run from the purchase events (a few hundred thousand rows): an order's events may
-- span days and files, and a full rebuild stays exact when any of them is reloaded.
with

purchases as (

    select
        order_id,
        customer_id,
        event_id,
        event_at,
        event_date,
        coalesce(revenue, price * coalesce(quantity, 1)) as revenue,
        currency,
        coalesce(quantity, 1) as item_count,
        _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        event_type = 'purchase'
        and order_id is not null

),

ranked as (

    select
        *,
        row_number() over (partition by order_id order by event_at, event_id) as order_rank
    from purchases

)

select
    order_id,
    customer_id,
    event_at as ordered_at,
    event_date as order_date,
    cast(revenue as {{ type_money() }}) as revenue,
    currency,
    cast(item_count as {{ dbt.type_bigint() }}) as item_count,
    event_id,
    _loaded_at
from ranked
where order_rank = 1
