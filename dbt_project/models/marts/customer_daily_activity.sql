{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
        pre_hook=[
            "{{ create_snapshot_dates_stale() }}",
            "{{ record_snapshot_dates_stale() }}",
            "{{ delete_rebuilt_days('activity_date') }}",
        ],
    )
}}

{%- set dates = event_dates_to_rebuild() %}

-- One row per customer and UTC day with any attributed event, an order of theirs
-- (marts.orders) placed that day, or a refund counting on that day for an order of theirs
-- (marts.refunds: the order's customer, whoever the refund row names; such a row alone is no
-- sign of a visit, its seen times are null). The nightly
-- run rebuilds only the days int_event_dates_changed marks; features read this table, not
-- events.
-- The query is macros/daily_activity.sql (int_anonymous_daily_activity shares it).
{{ daily_activity('customer_id', dates) }}
