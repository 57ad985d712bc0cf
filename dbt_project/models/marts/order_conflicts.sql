{{ config(materialized='table') }}

-- One row per order_id whose purchase events disagree on the customer or the amount.
-- marts.orders keeps one row per order_id, from its first purchase event: another
-- customer's purchase under the same number (order numbers that restart per store or
-- till) or a resent order with another amount is not counted anywhere else. A table, not a
-- view: its two tests and the transform stage's count read it every night, and as a view each
-- of them scanned every purchase again (0.16 s each at 10M events, the tests on the build's
-- critical path); the table is one scan and almost always empty. The stage warns on rows.
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

-- Two different non-null values have a different min and max: one cheap pass over every
-- purchase finds the conflicted ids (almost always none), and only their events are
-- described below.
conflicted_ids as (

    select order_id
    from purchases
    group by order_id
    having min(customer_id) <> max(customer_id) or min(revenue) <> max(revenue)

),

conflicted as (

    select
        purchases.order_id,
        count(*) as event_count,
        count(distinct purchases.customer_id) as customer_count,
        count(distinct purchases.revenue) as amount_count,
        {{ dbt.listagg(
            'distinct purchases.customer_id', "', '", 'order by purchases.customer_id'
        ) }} as customer_ids,
        min(purchases.event_at) as first_event_at,
        max(purchases.event_at) as last_event_at
    from purchases
    inner join conflicted_ids on purchases.order_id = conflicted_ids.order_id
    group by purchases.order_id

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
