{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_date',
        on_schema_change='fail',
        post_hook=[
            "{{ delete_emptied_days('event_date') }}",
            "{{ create_event_dates_pending() }}",
            "{{ record_event_dates_pending() }}",
        ],
        meta={'column_compression': {'event_id': 'uncompressed'}},
    )
}}

-- depends_on: {{ ref('int_event_dates_changed') }}
-- depends_on: {{ source('segmint', 'currency_rates') }}

{%- set dates = event_dates_to_rebuild() %}

{#-
int_events_attributed plus the inactivity session number of each site event without a
session_id: a new session after var('session_inactivity_minutes') without an event, per
person (the attributed customer, else the anonymous id) and UTC day, so sessions are always
cut at midnight. Events with a session_id keep it as their session; e-mail events, identify
calls, refunds and events without any identity belong to no session (session_number null), nor do
purchases without a session_id that no other such event of the person accompanies within the
gap: a shop's back end sends its orders so, beside a tracker whose events carry a session_id,
and each order alone would be a visit of no page.

The one table of typed, attributed events that every later model reads (staging and
attribution are computed once, not once per consumer). Incremental by whole UTC days: a run
rebuilds the dates int_event_dates_changed marks, so late, reloaded and deleted events are
handled exactly.

Money (revenue, price) is in the reporting currency: amounts in another currency are
converted at the rate of their event day (macros/currency.sql), and fx_rate keeps the rate
used (1 for amounts already in the reporting currency, null when the currency has no rate:
a test fails the run then).
-#}

{#- The person of an event is its (attributed) customer, else its anonymous id: readers
    group by customer_id and, for events without one, anonymous_id. No per-event person key
    string is stored (it would be the widest column after event_id). -#}
{%- set columns = [
    'event_id', 'event_type', 'event_at', 'event_date', 'customer_id', 'is_attributed',
    'anonymous_id', 'session_id', 'page_type', 'product_id', 'product_category',
    'device_type', 'channel', 'order_id', 'currency', 'quantity', '_loaded_at',
] %}

{%- set untracked -%}
    session_id is null
    and (customer_id is not null or anonymous_id is not null)
    and event_type not in ({{ non_visit_event_types() }})
{%- endset %}

{#- Two reads of the int_events_attributed view, each with the day filter: a narrow one (five
    columns) for the windows, whose session numbers join the wide one by event_id (unique, as
    this model's tests check). One read shared by both (a CTE used three times) made DuckDB
    hold the 10M wide rows (~2.5 GB, spilling under its 3 GB limit): ~10% more CPU for the
    model than reading the view again for five columns. #}

with

-- The windows sort only the columns they need (sorting the wide rows cost twice as much).
-- The person is the attributed customer, else the anonymous id.
untracked_events as (

    select
        event_id,
        coalesce('c:' || customer_id, 'a:' || anonymous_id) as person_key,
        event_date,
        event_at,
        event_type
    from {{ ref('int_events_attributed') }}
    where
        {{ untracked }}
        and {{ incremental_date_filter('event_date', dates, 'event_at') }}

),

session_starts as (

    select
        event_id,
        person_key,
        event_date,
        event_at,
        event_type,
        case
            when {{ microseconds_between(
                    'lag(event_at) over (partition by person_key, event_date '
                    ~ 'order by event_at, event_id)',
                    'event_at',
                ) }} <= {{ var('session_inactivity_minutes') * 60 * 1000000 }}
                then 0
            else 1
        end as is_session_start
    from untracked_events

),

session_runs as (

    select
        event_id,
        person_key,
        event_date,
        event_type,
        cast(
            sum(is_session_start)
                over (
                    partition by person_key, event_date
                    order by event_at, event_id
                    rows between unbounded preceding and current row
                )
            as {{ dbt.type_bigint() }}
        ) as session_number
    from session_starts

),

-- A run of purchases alone is no visit (a back end's orders): no session.
session_numbers as (

    select
        event_id,
        case
            when
                max(case when event_type != 'purchase' then 1 else 0 end) over (
                    partition by person_key, event_date, session_number
                ) = 1
                then session_number
        end as session_number
    from session_runs

),

-- The (currency, day) pairs to convert, read from staging (the attributed view would join
-- the identity links again for two columns), with their rates.
currency_rates as (

    {{ currency_rates_on(
        'select distinct currency, event_date as rate_date from '
        ~ ref('stg_segmint__events')
        ~ ' where ' ~ amount_currency_to_convert('revenue', 'price', 'currency')
        ~ ' is not null and '
        ~ incremental_date_filter('event_date', dates, 'event_at')
    ) }}

)

select
    {% for column in columns -%}
        events.{{ column }},
    {% endfor -%}
    case
        when currency_rates.currency is null then events.revenue
        else cast(events.revenue * currency_rates.rate as {{ type_money() }})
    end as revenue,
    case
        when currency_rates.currency is null then events.price
        else cast(events.price * currency_rates.rate as {{ type_money() }})
    end as price,
    case
        when currency_rates.currency is null then cast(1 as {{ type_double() }})
        else currency_rates.rate
    end as fx_rate,
    session_numbers.session_number
from {{ ref('int_events_attributed') }} as events
left join session_numbers on events.event_id = session_numbers.event_id
left join currency_rates
    on
        {{ amount_currency_to_convert('events.revenue', 'events.price', 'events.currency') }}
        = currency_rates.currency
        and events.event_date = currency_rates.rate_date
where {{ incremental_date_filter('events.event_date', dates, 'events.event_at') }}
