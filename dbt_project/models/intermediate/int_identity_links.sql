-- One row per (anonymous_id, customer_id) pair seen together on an event: when the pair was
-- first and last seen. Rebuilt every run from int_identity_links_daily (one row per pair and
-- day, incremental), so it is exact whatever was reloaded.
select
    anonymous_id,
    customer_id,
    min(first_linked_at) as first_linked_at,
    max(last_linked_at) as last_linked_at,
    cast(sum(link_event_count) as {{ dbt.type_bigint() }}) as link_event_count,
    max(_loaded_at) as _loaded_at
from {{ ref('int_identity_links_daily') }}
group by anonymous_id, customer_id
