{{ config(materialized='view') }}

-- One row per order_id whose purchase events disagree on the customer or the amount.
-- marts.orders keeps one row per order_id, from its first purchase event: another
-- customer's purchase under the same number (order numbers that restart per store or
-- till) or a resent order with another amount is not counted anywhere else. A view: it costs
-- the nightly build nothing; the transform stage counts its rows and warns.
with

purchases as (

    select
        order_id,
        customer_id,
        coalesce(revenue, price * coalesce(quantity, 1)) as revenue,
        event_at
    from {{ ref('int_events_sessionised') }}
    where event_type = 'purchase' and order_id is not null

),

conflicted as (

    select
        order_id,
        count(*) as event_count,
        count(distinct customer_id) as customer_count,
        count(distinct revenue) as amount_count,
        {{ dbt.listagg('distinct customer_id', "', '", 'order by customer_id') }}
            as customer_ids,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from purchases
    group by order_id
    having count(distinct customer_id) > 1 or count(distinct revenue) > 1

)

select
    conflicted.order_id,
    orders.customer_id as kept_customer_id,
    orders.revenue as kept_revenue,
    cast(conflicted.customer_count as {{ dbt.type_bigint() }}) as customer_count,
    cast(conflicted.amount_count as {{ dbt.type_bigint() }}) as amount_count,
    cast(conflicted.event_count as {{ dbt.type_bigint() }}) as event_count,
    conflicted.customer_ids,
    conflicted.first_event_at,
    conflicted.last_event_at
from conflicted
inner join {{ ref('orders') }} as orders
    on conflicted.order_id = orders.order_id
