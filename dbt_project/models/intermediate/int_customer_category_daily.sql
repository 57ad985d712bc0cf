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

-- Product views and purchases per customer, day and product category: the input of the
-- favourite category feature.
select
    customer_id,
    event_date as activity_date,
    product_category,
    cast(sum(case when event_type = 'product_view' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as product_views,
    cast(sum(case when event_type = 'purchase' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as purchases,
    max(_loaded_at) as _loaded_at
from {{ ref('int_events_sessionised') }}
where
    customer_id is not null
    and product_category is not null
    and event_type in ('product_view', 'purchase')
    and {{ incremental_date_filter('event_date', dates, 'event_at') }}
group by customer_id, event_date, product_category
