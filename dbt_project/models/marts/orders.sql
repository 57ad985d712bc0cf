{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='fail',
    )
}}

{%- set dates = new_event_dates() if is_incremental() else [] %}

-- One row per distinct order_id: the first purchase event of the order wins (earliest
-- event_at, then smallest event_id) when an order is sent more than once.
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
    from {{ ref('int_events_attributed') }}
    where
        event_type = 'purchase'
        and order_id is not null
        and {{ incremental_date_filter('event_date', dates, 'event_at') }}

),

{% if is_incremental() %}

    candidates as (

        select * from purchases
        union all
        select
            previous.order_id,
            previous.customer_id,
            previous.event_id,
            previous.ordered_at as event_at,
            previous.order_date as event_date,
            previous.revenue,
            previous.currency,
            previous.item_count,
            previous._loaded_at
        from {{ this }} as previous
        where previous.order_id in (select purchases.order_id from purchases)

    ),

{% else %}

    candidates as (

        select * from purchases

    ),

{% endif %}

ranked as (

    select
        *,
        row_number() over (partition by order_id order by event_at, event_id) as order_rank
    from candidates

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
