{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
    )
}}

{%- set dates = new_event_dates(ref('stg_segmint__events')) if is_incremental() else [] %}

{#-
Every event with the customer it is attributed to and the session it belongs to.

Attribution (point in time): an event's own customer_id wins. An anonymous event goes to
the customer whose link to its anonymous_id started most recently at or before the event;
an anonymous event before any link goes to the first linked customer only when that link
happens on the same UTC day (browse, then log in). So a day's attribution depends only on
events up to the end of that day, and later events never rewrite past features.

Sessions: session_id when present, else a new session after
var('session_inactivity_minutes') without an event, per person (the attributed customer,
else the anonymous id), and always cut at midnight UTC. E-mail events are not site
activity and belong to no session. The session itself is keyed in the sessions mart; here
each event carries its person, session_id and, without a session_id, its session number.

The attribution query below is written out twice (once for events that need the
inactivity window, once for all others) so that each half reads only its own rows and no
wide intermediate result is materialised.
-#}

{%- set event_columns = [
    'event_id', 'event_type', 'event_at', 'event_date', 'customer_id', 'anonymous_id',
    'person_key', 'session_id', 'page_type', 'product_category', 'device_type', 'channel',
    'order_id', 'revenue', 'currency', 'quantity', 'price', '_loaded_at',
] %}

{%- set needs_inactivity_window -%}
    events.session_id is null
    and events.event_type not in ('email_open', 'email_click')
    and (events.customer_id is not null or events.anonymous_id is not null)
{%- endset %}



with

link_intervals as (

    select
        anonymous_id,
        customer_id,
        first_linked_at,
        lead(first_linked_at) over (
            partition by anonymous_id
            order by first_linked_at, customer_id
        ) as next_first_linked_at,
        row_number() over (
            partition by anonymous_id
            order by first_linked_at, customer_id
        ) as link_rank
    from {{ ref('int_identity_links') }}

),

inactivity_events as (

    {{ attributed_events(needs_inactivity_window, dates) }}

),

inactivity_gaps as (

    select
        *,
        case
            when {{ seconds_between(
                    'lag(event_at) over (partition by person_key, event_date '
                    ~ 'order by event_at, event_id)',
                    'event_at',
                ) }} <= {{ var('session_inactivity_minutes') * 60 }}
                then 0
            else 1
        end as is_session_start
    from inactivity_events

),

inactivity_sessions as (

    select
        {% for column in event_columns -%}
            {{ column }},
        {% endfor -%}
        cast(
            sum(is_session_start) over (
                partition by person_key, event_date
                order by event_at, event_id
                rows between unbounded preceding and current row
            )
            as {{ dbt.type_bigint() }}
        ) as session_number
    from inactivity_gaps

),

other_events as (

    select
        *,
        cast(null as {{ dbt.type_bigint() }}) as session_number
    from (
        {{ attributed_events('not (' ~ needs_inactivity_window ~ ')', dates) }}
    ) as attributed

)

select * from other_events
union all
select * from inactivity_sessions
