{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_date',
        on_schema_change='fail',
        post_hook="{{ delete_emptied_days('session_date') }}",
    )
}}

{%- set dates = event_dates_to_rebuild() %}

-- One row per session (session_id, else inactivity; cut at midnight UTC): see
-- int_events_sessionised. E-mail events belong to no session.
with

session_events as (

    select
        person_key,
        event_date,
        session_id,
        session_number,
        customer_id,
        anonymous_id,
        event_id,
        event_type,
        event_at,
        page_type,
        device_type,
        channel,
        _loaded_at
    from {{ ref('int_events_sessionised') }}
    where
        person_key is not null
        and event_type not in ('email_open', 'email_click')
        and {{ incremental_date_filter('event_date', dates) }}

),

aggregated as (

    select
        person_key,
        event_date as session_date,
        -- The session's part of its key, built once per session rather than per event.
        coalesce(
            's:' || session_id,
            'i:' || cast(session_number as {{ dbt.type_string() }})
        ) as session_part,
        max(customer_id) as customer_id,
        min(anonymous_id) as anonymous_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'search' then 1 else 0 end) as searches,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_adds,
        sum(
            case
                when
                    event_type = 'page_view'
                    and page_type in ({{ sql_string_list(var('content_page_types')) }})
                    then 1
                else 0
            end
        ) as content_page_views,
        {{ bool_or("event_type = 'purchase'") }} as is_converted,
        {{ first_by('device_type', ['event_at', 'event_id']) }} as device_type,
        {{ first_by('channel', ['event_at', 'event_id']) }} as channel,
        max(_loaded_at) as _loaded_at
    from session_events
    group by person_key, event_date, session_id, session_number

)

select
    {{ dbt.hash(dbt.concat([
        "person_key", "'|'", "cast(session_date as " ~ dbt.type_string() ~ ")", "'|'",
        "session_part",
    ])) }} as session_key,
    customer_id,
    anonymous_id,
    session_date,
    started_at,
    ended_at,
    {{ seconds_between('started_at', 'ended_at') }} as duration_s,
    cast(page_views as {{ dbt.type_bigint() }}) as page_views,
    cast(product_views as {{ dbt.type_bigint() }}) as product_views,
    cast(searches as {{ dbt.type_bigint() }}) as searches,
    cast(cart_adds as {{ dbt.type_bigint() }}) as cart_adds,
    cast(content_page_views as {{ dbt.type_bigint() }}) as content_page_views,
    is_converted,
    device_type,
    channel,
    _loaded_at
from aggregated
