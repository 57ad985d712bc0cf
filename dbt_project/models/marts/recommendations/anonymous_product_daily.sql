{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
        pre_hook="{{ delete_rebuilt_days('activity_date') }}",
        post_hook="{{ delete_emptied_days('activity_date') }}",
    )
}}

{%- set dates = event_dates_to_rebuild() %}

{#-
One row per product and UTC day that visitors attributed to no customer (who never logged in,
or not yet that day) viewed, carted or bought: the product interest customer_product_daily
cannot hold. The recommend stage reads it to tell a product on sale (still browsed, if only
by visitors) from one taken off sale ([recommendations] active_product_days).

Incremental like customer_product_daily: the days int_event_dates_changed marks are rebuilt
whole. Readers keep activity_date <= their as-of date.
-#}

select
    product_id,
    event_date as activity_date,
    cast(
        sum(case when event_type = 'product_view' then 1 else 0 end) as {{ dbt.type_bigint() }}
    ) as product_views,
    cast(
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as {{ dbt.type_bigint() }}
    ) as cart_adds,
    cast(
        sum(case when event_type = 'purchase' then 1 else 0 end) as {{ dbt.type_bigint() }}
    ) as purchases,
    max(_loaded_at) as _loaded_at
from {{ ref('int_events_sessionised') }}
where
    customer_id is null
    and product_id is not null
    and event_type in ('product_view', 'add_to_cart', 'purchase')
    and {{ incremental_date_filter('event_date', dates, 'event_at') }}
group by product_id, event_date
