-- One row per anonymous_id seen with more than one customer_id: the candidates and the one
-- chosen by identity_map (the most recently linked).
with

links as (

    select
        anonymous_id,
        customer_id,
        first_linked_at,
        last_linked_at
    from {{ ref('int_identity_links') }}

),

conflicted as (

    select
        anonymous_id,
        count(*) as candidate_count,
        min(first_linked_at) as first_linked_at,
        max(last_linked_at) as last_linked_at,
        {{ dbt.listagg('customer_id', "', '", 'order by customer_id') }} as candidate_customer_ids
    from links
    group by anonymous_id
    having count(*) > 1

)

select
    conflicted.anonymous_id,
    identity_map.customer_id as chosen_customer_id,
    cast(conflicted.candidate_count as {{ dbt.type_bigint() }}) as candidate_count,
    conflicted.candidate_customer_ids,
    conflicted.first_linked_at,
    conflicted.last_linked_at
from conflicted
inner join {{ ref('identity_map') }} as identity_map
    on conflicted.anonymous_id = identity_map.anonymous_id
