-- One row per anonymous_id ever seen together with a customer_id: the customer it maps to
-- now. When several customers used the same anonymous id, the most recently linked one wins
-- (latest last_linked_at, then the smallest customer_id); see identity_conflicts.
with

links as (

    select
        anonymous_id,
        customer_id,
        first_linked_at,
        last_linked_at,
        link_event_count,
        count(*) over (partition by anonymous_id) as candidate_count,
        row_number() over (
            partition by anonymous_id
            order by last_linked_at desc, customer_id asc
        ) as recency_rank
    from {{ ref('int_identity_links') }}

)

select
    anonymous_id,
    customer_id,
    first_linked_at as linked_at,
    last_linked_at,
    cast(link_event_count as {{ dbt.type_bigint() }}) as link_event_count,
    cast(candidate_count as {{ dbt.type_bigint() }}) as candidate_count
from links
where recency_rank = 1
