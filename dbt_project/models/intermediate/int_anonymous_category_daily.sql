{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
        pre_hook="{{ delete_rebuilt_days('activity_date', event_dates_to_rebuild(false)) }}",
    )
}}

{%- set dates = event_dates_to_rebuild(false) %}

-- Product views and purchases per anonymous id, day and product category, of the events
-- attributed to no customer at the time: int_customer_category_daily for visitors. The
-- feature history counts an id's days before its first link for its first linked customer
-- from the link's day on (int_anonymous_first_links). The pre-hook empties the rebuilt days
-- first: a late login moves a day's rows to its customer, and may leave the day none here.
select
    anonymous_id,
    event_date as activity_date,
    product_category,
    cast(sum(case when event_type = 'product_view' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as product_views,
    cast(sum(case when event_type = 'purchase' then 1 else 0 end) as {{ dbt.type_bigint() }})
        as purchases,
    max(_loaded_at) as _loaded_at
from {{ ref('int_events_sessionised') }}
where
    customer_id is null
    and anonymous_id is not null
    and product_category is not null
    and event_type in ('product_view', 'purchase')
    and {{ incremental_date_filter('event_date', dates, 'event_at') }}
group by anonymous_id, event_date, product_category
