{{ config(materialized='view') }}

-- One row per anonymous id ever seen with a customer: its first linked customer (earliest
-- first link, then the smallest customer_id, as int_events_attributed orders the links)
-- and the UTC day of that link. The visitor's days before it count for that customer from
-- that day on (int_anonymous_activity_attributed); a shared device's later customers get
-- none of them. A view over int_identity_links (one row per pair).
select
    anonymous_id,
    customer_id,
    first_linked_at,
    attributed_from_date
from (
    select
        anonymous_id,
        customer_id,
        first_linked_at,
        cast(first_linked_at as date) as attributed_from_date,
        row_number() over (
            partition by anonymous_id
            order by first_linked_at, customer_id
        ) as link_rank
    from {{ ref('int_identity_links') }}
) as ranked
where link_rank = 1
