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
-- int_events_sessionised. E-mail events, identify calls, refunds and a back end's orders
-- outside any visit (purchases without a session_id alone within the gap) belong to no session.
with

session_events as (

    select
        customer_id,
        -- The person: the attributed customer, else the anonymous id.
        case when customer_id is null then anonymous_id end as anonymous_key,
        event_date,
        session_id,
        session_number,
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
        (customer_id is not null or anonymous_id is not null)
        and event_type not in ({{ non_visit_event_types() }})
        and (session_id is not null or session_number is not null)
        and {{ incremental_date_filter('event_date', dates) }}

),

aggregated as (

    select
        customer_id,
        -- The person and session parts of the key, built once per session, not per event.
        coalesce('c:' || customer_id, 'a:' || anonymous_key) as person_key,
        event_date as session_date,
        coalesce(
            's:' || session_id,
            'i:' || cast(session_number as {{ dbt.type_string() }})
        ) as session_part,
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
        -- Device and channel of the session's first event, found once for both.
        {{ first_by(struct_of(['device_type', 'channel']), ['event_at', 'event_id']) }}
            as first_event,
        max(_loaded_at) as _loaded_at
    from session_events
    group by customer_id, anonymous_key, event_date, session_id, session_number

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
    {{ struct_field('first_event', 'device_type') }} as device_type,
    {{ struct_field('first_event', 'channel') }} as channel,
    _loaded_at
from aggregated
