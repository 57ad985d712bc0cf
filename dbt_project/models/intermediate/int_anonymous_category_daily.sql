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
-- The query is macros/daily_activity.sql (int_customer_category_daily shares it).
{{ category_daily('anonymous_id', dates) }}
