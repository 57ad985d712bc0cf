{{ config(materialized='view') }}

{#-
Every event with the customer it is attributed to (point in time).

Attribution: an event's own customer_id wins. An anonymous event goes to the customer whose
link to its anonymous_id started most recently at or before the event; an anonymous event
before any link goes to the first linked customer only when that link happens on the same
UTC day (browse, then log in). So a day's attribution depends only on events up to the end
of that day, and later events never rewrite past features.

A view, read once per run by int_events_sessionised (the table every later model reads):
its filters on event_at reach the raw table's scan, so an incremental run never reads old
days' rows.
-#}

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

attributed as (

    select
        events.event_id,
        events.event_type,
        events.event_at,
        events.event_date,
        coalesce(events.customer_id, links.customer_id) as customer_id,
        events.customer_id is null and links.customer_id is not null as is_attributed,
        events.anonymous_id,
        events.session_id,
        events.page_type,
        events.product_id,
        events.product_category,
        events.device_type,
        {{ channel('events.utm_source', 'events.utm_medium', 'events.referrer') }} as channel,
        events.order_id,
        events.revenue,
        events.currency,
        events.quantity,
        events.price,
        events._loaded_at
    from {{ ref('stg_segmint__events') }} as events
    left join link_intervals as links
        on
            -- Only events without a customer_id look for a link: the others join on a null
            -- key, which matches nothing without testing the interval conditions.
            case when events.customer_id is null then events.anonymous_id end
            = links.anonymous_id
            and (
                (
                    events.event_at >= links.first_linked_at
                    and (
                        links.next_first_linked_at is null
                        or events.event_at < links.next_first_linked_at
                    )
                )
                or (
                    links.link_rank = 1
                    and events.event_at < links.first_linked_at
                    and links.first_linked_at < {{ end_of_day('events.event_date') }}
                )
            )

)

select * from attributed
