{{ config(materialized='table') }}

-- depends_on: {{ source('segmint', 'currency_rates') }}

{#-
The UTC event dates this run must rebuild in the date-partitioned models (int_events_sessionised
and everything built from it): one row per event date found in raw.events or in
int_events_sessionised, with both fingerprints (row count, newest _loaded_at).

A date is rebuilt when its fingerprint in raw.events differs from the one
int_events_sessionised holds: new or late events (count and newest load change), a reloaded
file (ingest deletes its old rows and loads the new ones with a later _loaded_at), rows
deleted (count drops). Comparing the whole fingerprint, not a load watermark, is what makes
deletes safe. A date is also rebuilt when an identity link that can change its attribution
changed: an anonymous id seen with a customer on a changed date re-opens the later dates on
which it browsed anonymously (late logins rewrite attribution from their day on). And a date
is rebuilt when it holds a purchase event of an order that has a purchase event on a changed
date (now or before this run): the order's first purchase event wins, so a late, earlier
event on a changed date moves the order there, and the day it leaves (unchanged in raw.events)
must stop counting it in the daily activity; a deleted or re-keyed winning event moves it to
another of its days. Orders touching changed days are few, and repeats of an order mostly
fall on the same day.

And a date is rebuilt when the rate its amounts in another currency were converted at is no
longer the rate currency_rates gives for that day (a rate added for a currency that had none,
a revised rate, another reporting currency): int_events_sessionised keeps the rate it used.

And a date is rebuilt when a refund counting on it may now count otherwise: the days of
the refunds of every order touched above (a purchase or refund event on a changed date or
on a day re-opened for links, orders or rates: a refund converted at a revised rate changes
what the order's later refunds count), and the later purchase days of such
an order (a refund dated before its order counts on the order's day; see marts.refunds).
Refunds are few, and a night's new refunds mostly have no earlier refund to re-open.

Full build (or the first run): every date. The table is small (one row per day).
-#}

{%- set built = none %}
{%- set pending = none %}
{%- if execute and not flags.FULL_REFRESH %}
    {%- set built = adapter.get_relation(
        database=this.database, schema=this.schema, identifier='int_events_sessionised'
    ) %}
    {#- Days an earlier run rebuilt in int_events_sessionised and did not finish building
        into the later models (killed, or failed after it): rebuilt again. -#}
    {%- set pending = adapter.get_relation(
        database=this.database, schema=this.schema, identifier='int_event_dates_pending'
    ) %}
{%- endif %}

{#- A table built before fx_rate existed has no rates to compare: int_events_sessionised then
    fails with a schema change and segmint.transform rebuilds it in full. -#}
{%- set built_has_rates = built and 'fx_rate' in (
    adapter.get_columns_in_relation(built) | map(attribute='name') | map('lower') | list
) %}

{%- set fingerprint_sql -%}
    raw_dates as (

        select
            event_date,
            count(*) as event_count,
            max(_loaded_at) as max_loaded_at
        from {{ ref('stg_segmint__events') }}
        group by event_date

    ),

    built_dates as (

        {% if built -%}
            select
                event_date,
                count(*) as event_count,
                max(_loaded_at) as max_loaded_at
            from {{ built }}
            group by event_date
        {%- else -%}
            select
                cast(null as date) as event_date,
                cast(null as {{ dbt.type_bigint() }}) as event_count,
                cast(null as {{ dbt.type_timestamp() }}) as max_loaded_at
            where 1 = 0
    {%- endif %}

    ),

    pending_dates as (

        {% if pending -%}
            select distinct event_date from {{ pending }}
        {%- else -%}
            select cast(null as date) as event_date
            where 1 = 0
    {%- endif %}

    ),

    fingerprints as (

        select
            coalesce(
                raw_dates.event_date, built_dates.event_date, pending_dates.event_date
            ) as event_date,
            raw_dates.event_count,
            raw_dates.max_loaded_at,
            built_dates.event_count as built_event_count,
            built_dates.max_loaded_at as built_max_loaded_at,
            (
                raw_dates.event_count is distinct from built_dates.event_count
                or raw_dates.max_loaded_at is distinct from built_dates.max_loaded_at
            ) as is_changed,
            pending_dates.event_date is not null as is_pending
        from raw_dates
        full outer join built_dates on raw_dates.event_date = built_dates.event_date
        full outer join pending_dates
            on coalesce(raw_dates.event_date, built_dates.event_date) = pending_dates.event_date

    )
{%- endset %}

{#- Dates whose events changed: known before the link check, so its scans of the changed
    days can name them as constants (row groups of other days are skipped). -#}
{%- set changed = [] %}
{%- if built %}
    {%- set result = run_query(
        'with ' ~ fingerprint_sql ~ ' select cast(event_date as ' ~ dbt.type_string()
        ~ ') from fingerprints where is_changed order by 1'
    ) %}
    {%- set changed = result.columns[0].values() | list %}
{%- endif %}

with

{{ fingerprint_sql }},

link_dates as (

    {% if changed -%}
        -- Anonymous ids seen with a customer on a changed date, now or before this run ...
        with touched_links as (

            select
                anonymous_id,
                min(event_date) as from_date
            from (
                select
                    anonymous_id,
                    event_date
                from {{ ref('stg_segmint__events') }}
                where
                    anonymous_id is not null
                    and customer_id is not null
                    and {{ date_list_filter('event_date', changed, 'event_at') }}
                union all
                select
                    anonymous_id,
                    event_date
                from {{ built }}
                where
                    anonymous_id is not null
                    and customer_id is not null
                    and not is_attributed
                    and {{ date_list_filter('event_date', changed, 'event_at') }}
            ) as linked
            group by anonymous_id

        )

        -- ... re-open the days from then on with their anonymous events.
        select distinct events.event_date
        from {{ built }} as events
        inner join touched_links
            on
                events.anonymous_id = touched_links.anonymous_id
                and events.event_date >= touched_links.from_date
        where events.customer_id is null or events.is_attributed
    {%- else -%}
        select cast(null as date) as event_date
        where 1 = 0
    {%- endif %}

),

order_dates as (

    {% if changed -%}
        -- Orders with a purchase event on a changed date, now or before this run ...
        with touched_orders as (

            {{ purchase_orders_on(ref('stg_segmint__events'), changed) }}
            union
            {{ purchase_orders_on(built, changed) }}

        )

        -- ... re-open the other days holding their purchase events (their winner may move).
        select distinct events.event_date
        from {{ built }} as events
        inner join touched_orders on events.order_id = touched_orders.order_id
        where events.event_type = 'purchase'
    {%- else -%}
        select cast(null as date) as event_date
        where 1 = 0
    {%- endif %}

),

rate_dates as (

    {% if built_has_rates -%}
        -- The rate each day's amounts were converted at (1: no conversion), by currency ...
        with built_rates as (

            select distinct
                event_date,
                {{ amount_currency_to_convert('revenue', 'price', 'currency') }} as currency,
                fx_rate
            from {{ built }}

        ),

        current_rates as (

            {{ currency_rates_on(
                'select distinct currency, event_date as rate_date from built_rates'
                ~ ' where currency is not null'
            ) }}

        )

        -- ... against the rate currency_rates gives now.
        select distinct built_rates.event_date
        from built_rates
        left join current_rates
            on
                built_rates.currency = current_rates.currency
                and built_rates.event_date = current_rates.rate_date
        where
            built_rates.fx_rate is distinct from (
                case
                    when built_rates.currency is null then cast(1 as {{ type_double() }})
                    else current_rates.rate
                end
            )
    {%- else -%}
        select cast(null as date) as event_date
        where 1 = 0
    {%- endif %}

),

refund_dates as (

    {% if built -%}
        -- Orders whose refunds may now count otherwise: a purchase or refund event on a
        -- changed date (now or before this run), or on a day re-opened above (a purchase's
        -- customer, amount or day may change; a refund's amount, at a revised rate, changes
        -- what the order's later refunds count) ...
        with touched_orders as (

            {% if changed -%}
                {{ purchase_orders_on(ref('stg_segmint__events'), changed, ['purchase', 'refund']) }}
                union
                {{ purchase_orders_on(built, changed, ['purchase', 'refund']) }}
                union
            {% endif -%}
            select order_id
            from {{ built }}
            where
                event_type in ('purchase', 'refund')
                and order_id is not null
                and event_date in (
                    select event_date from link_dates
                    union
                    select event_date from order_dates
                    union
                    select event_date from rate_dates
                )

        ),

        touched_refunds as (

            select
                events.order_id,
                events.event_date
            from {{ built }} as events
            inner join touched_orders on events.order_id = touched_orders.order_id
            where events.event_type = 'refund'
            {% if changed -%}
                union
                select
                    order_id,
                    event_date
                from {{ ref('stg_segmint__events') }}
                where
                    event_type = 'refund'
                    and order_id is not null
                    and {{ date_list_filter('event_date', changed, 'event_at') }}
            {%- endif %}

        )

        -- ... re-open the days their refunds count on: their own (the capped amount of each
        -- depends on the order's amount and earlier refunds, its customer on the order's),
        -- and the later days of the order's purchase events (a refund dated before its order
        -- counts on the order's day).
        select event_date from touched_refunds
        union
        select purchases.event_date
        from {{ built }} as purchases
        inner join touched_refunds
            on
                purchases.order_id = touched_refunds.order_id
                and purchases.event_date > touched_refunds.event_date
        where purchases.event_type = 'purchase'
    {%- else -%}
        select cast(null as date) as event_date
        where 1 = 0
    {%- endif %}

),

rebuilt_dates as (

    select event_date from link_dates
    union
    select event_date from order_dates
    union
    select event_date from rate_dates
    union
    select event_date from refund_dates

)

select
    fingerprints.event_date,
    fingerprints.event_count,
    fingerprints.max_loaded_at,
    fingerprints.built_event_count,
    fingerprints.built_max_loaded_at,
    fingerprints.is_changed
    or fingerprints.is_pending
    or rebuilt_dates.event_date is not null as is_rebuilt
from fingerprints
left join rebuilt_dates on fingerprints.event_date = rebuilt_dates.event_date
