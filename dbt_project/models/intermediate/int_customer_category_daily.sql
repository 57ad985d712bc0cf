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
-- The query is macros/daily_activity.sql (int_anonymous_category_daily shares it).
{{ category_daily('customer_id', dates) }}
