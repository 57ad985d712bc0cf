{#- Events of the dates to build that satisfy `condition`, with the customer they are
    attributed to (see int_events_sessionised) and their person key. Expects a CTE named
    link_intervals (int_identity_links with next_first_linked_at and link_rank). -#}
{% macro attributed_events(condition, dates) -%}
    select
        events.event_id,
        events.event_type,
        events.event_at,
        events.event_date,
        coalesce(events.customer_id, links.customer_id) as customer_id,
        events.anonymous_id,
        case
            when events.customer_id is not null then 'c:' || events.customer_id
            when links.customer_id is not null then 'c:' || links.customer_id
            when events.anonymous_id is not null then 'a:' || events.anonymous_id
        end as person_key,
        events.session_id,
        events.page_type,
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
            events.customer_id is null
            and events.anonymous_id = links.anonymous_id
            and (
                (
                    links.first_linked_at <= events.event_at
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
    where
        {{ incremental_date_filter('events.event_date', dates, 'events.event_at') }}
        and {{ condition }}
{%- endmacro %}
