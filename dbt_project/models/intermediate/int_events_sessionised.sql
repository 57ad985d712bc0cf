{{ config(materialized='view') }}

{#-
int_events_attributed plus the inactivity session number of each site event without a
session_id: a new session after var('session_inactivity_minutes') without an event, per
person (the attributed customer, else the anonymous id) and UTC day, so sessions are always
cut at midnight. Events with a session_id keep it as their session; e-mail events and
events without any identity belong to no session (session_number null).

A view; its two halves read only their own rows of int_events_attributed, and date filters
of the consumers reach the raw scan.
-#}

{%- set columns = [
    'event_id', 'event_type', 'event_at', 'event_date', 'customer_id', 'anonymous_id',
    'person_key', 'session_id', 'page_type', 'product_id', 'product_category', 'device_type', 'channel',
    'order_id', 'revenue', 'currency', 'quantity', 'price', '_loaded_at',
] %}

{%- set untracked -%}
    session_id is null
    and person_key is not null
    and event_type not in ('email_open', 'email_click')
{%- endset %}

with

other_events as (

    select
        {{ columns | join(",\n        ") }},
        cast(null as {{ dbt.type_bigint() }}) as session_number
    from {{ ref('int_events_attributed') }}
    where not ({{ untracked }})

),

untracked_events as (

    select
        {{ columns | join(",\n        ") }},
        case
            when {{ seconds_between(
                    'lag(event_at) over (partition by person_key, event_date '
                    ~ 'order by event_at, event_id)',
                    'event_at',
                ) }} <= {{ var('session_inactivity_minutes') * 60 }}
                then 0
            else 1
        end as is_session_start
    from {{ ref('int_events_attributed') }}
    where {{ untracked }}

),

inactivity_sessions as (

    select
        {{ columns | join(",\n        ") }},
        cast(
            sum(is_session_start)
                over (
                    partition by person_key, event_date
                    order by event_at, event_id
                    rows between unbounded preceding and current row
                )
            as {{ dbt.type_bigint() }}
        ) as session_number
    from untracked_events

)

select * from other_events
union all
select * from inactivity_sessions
