{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['anonymous_id', 'customer_id'],
        on_schema_change='fail',
    )
}}

-- One row per (anonymous_id, customer_id) pair seen together on an event: when the pair was
-- first and last seen. Incremental: only events loaded since the last run are read, and
-- touched pairs are merged with what the table already holds.
with

new_links as (

    select
        anonymous_id,
        customer_id,
        min(event_at) as first_linked_at,
        max(event_at) as last_linked_at,
        count(*) as link_event_count,
        max(_loaded_at) as _loaded_at
    from {{ ref('stg_segmint__events') }}
    where
        anonymous_id is not null
        and customer_id is not null
        and {{ loaded_after_watermark('_loaded_at') }}
    group by anonymous_id, customer_id

),

{% if is_incremental() %}

    known_links as (

        select
            previous.anonymous_id,
            previous.customer_id,
            previous.first_linked_at,
            previous.last_linked_at,
            previous.link_event_count,
            previous._loaded_at
        from {{ this }} as previous
        inner join new_links
            on
                previous.anonymous_id = new_links.anonymous_id
                and previous.customer_id = new_links.customer_id

    ),

    all_links as (

        select * from new_links
        union all
        select * from known_links

    ),

{% else %}

    all_links as (

        select * from new_links

    ),

{% endif %}

merged as (

    select
        anonymous_id,
        customer_id,
        min(first_linked_at) as first_linked_at,
        max(last_linked_at) as last_linked_at,
        sum(link_event_count) as link_event_count,
        max(_loaded_at) as _loaded_at
    from all_links
    group by anonymous_id, customer_id

)

select
    anonymous_id,
    customer_id,
    first_linked_at,
    last_linked_at,
    cast(link_event_count as {{ dbt.type_bigint() }}) as link_event_count,
    _loaded_at
from merged
