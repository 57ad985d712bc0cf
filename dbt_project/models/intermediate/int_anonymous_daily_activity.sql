{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
        pre_hook="{{ delete_rebuilt_days('activity_date', event_dates_to_rebuild(false)) }}",
    )
}}

-- depends_on: {{ ref('customer_daily_activity') }}

{%- set dates = event_dates_to_rebuild(false) %}

-- One row per anonymous id and UTC day of activity attributed to no customer at the time
-- (browsing, and guest orders and their refunds, of a visitor not identified by the end of
-- the day): the columns of customer_daily_activity, by anonymous_id. The days
-- int_event_dates_changed marks are rebuilt (a late login re-opens the days it attributes,
-- which leave this table), emptied first by the pre-hook; not those after the model's own
-- watermark (event_dates_to_rebuild(false): a shop whose visitors stop coming anonymously
-- would rebuild every day since every night);
-- int_anonymous_activity_attributed gives the days before an id's first link to its first
-- linked customer. Built after customer_daily_activity (depends_on above) only so a full
-- rebuild of that model and the models after it (a changed var mobile_device_types)
-- rebuilds this one too.
-- The query is macros/daily_activity.sql (customer_daily_activity shares it).
{{ daily_activity('anonymous_id', dates) }}
