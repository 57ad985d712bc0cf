{{ config(materialized='view') }}

{#-
Every event with the customer it is attributed to (point in time).

Attribution: an event's own customer_id wins. An anonymous event goes to the customer most
recently linked to its anonymous_id at or before the event (an event carrying both ids is a
link); an anonymous event before any link goes to the first linked customer only when that
link happens on the same UTC day (browse, then log in). So a day's attribution depends only
on events up to the end of that day, and later events never rewrite past features.

A device shared by several customers (a family computer, a shop's tablet) goes back and
forth between them: for such anonymous ids, each customer's first and last link of each day
(int_identity_links_daily) mark when the device changed hands, so A, then B, then A again
gives A's browsing after the third login to A. Exact unless a day holds more than two turns
of the same customer. An id used by one customer needs only the pair's first link, so only
the days of shared ids are read.

A view, read once per run by int_events_sessionised (the table every later model reads):
its filters on event_at reach the raw table's scan, so an incremental run never reads old
days' rows.
-#}

with

shared_ids as (

    select anonymous_id
    from {{ ref('int_identity_links') }}
    group by anonymous_id
    having count(*) > 1

),

shared_days as (

    select
        daily.anonymous_id,
        daily.customer_id,
        daily.first_linked_at,
        daily.last_linked_at
    from {{ ref('int_identity_links_daily') }} as daily
    inner join shared_ids on daily.anonymous_id = shared_ids.anonymous_id

),

-- When a customer was linked to the anonymous id: the pair's first link when the id is
-- the customer's alone, each day's first and last link when it is shared.
link_points as (

    select
        links.anonymous_id,
        links.customer_id,
        links.first_linked_at as linked_at
    from {{ ref('int_identity_links') }} as links
    left join shared_ids on links.anonymous_id = shared_ids.anonymous_id
    where shared_ids.anonymous_id is null

    union all

    select
        anonymous_id,
        customer_id,
        first_linked_at as linked_at
    from shared_days

    union all

    select
        anonymous_id,
        customer_id,
        last_linked_at as linked_at
    from shared_days
    where last_linked_at > first_linked_at

),

-- The points where the device changed hands (or was first linked).
link_changes as (

    select
        anonymous_id,
        customer_id,
        linked_at,
        lag(customer_id) over (
            partition by anonymous_id
            order by linked_at, customer_id
        ) as previous_customer_id
    from link_points

),

link_intervals as (

    select
        anonymous_id,
        customer_id,
        linked_at as first_linked_at,
        lead(linked_at) over (
            partition by anonymous_id
            order by linked_at, customer_id
        ) as next_first_linked_at,
        row_number() over (
            partition by anonymous_id
            order by linked_at, customer_id
        ) as link_rank
    from link_changes
    where
        previous_customer_id is null
        or previous_customer_id != customer_id

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
