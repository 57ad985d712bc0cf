{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        post_hook="{{ delete_emptied_days('event_date') }}",
    )
}}

-- depends_on: {{ ref('int_event_dates_changed') }}

{%- set dates = event_dates_to_rebuild() %}

-- One row per (anonymous_id, customer_id, UTC day) seen together on an event: the input of
-- int_identity_links. Incremental by whole days (the dates int_event_dates_changed marks),
-- so reloaded and deleted events are handled exactly.
select
    anonymous_id,
    customer_id,
    event_date,
    min(event_at) as first_linked_at,
    max(event_at) as last_linked_at,
    cast(count(*) as {{ dbt.type_bigint() }}) as link_event_count,
    max(_loaded_at) as _loaded_at
from {{ ref('stg_segmint__events') }}
where
    anonymous_id is not null
    and customer_id is not null
    and {{ incremental_date_filter('event_date', dates, 'event_at') }}
group by anonymous_id, customer_id, event_date
