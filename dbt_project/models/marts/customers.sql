-- The unified customer profile: one row per known customer (a CRM record, events, an
-- identity link, or several), joining the latest CRM record, the identity links and lifetime
-- activity. Lifetime figures cover every event loaded so far (not an as-of date; see
-- customer_features for that), the anonymous days before each of the customer's first
-- links included (int_anonymous_activity_attributed).

-- Built after customer_feature_history, which reads nothing of it: the night's critical path
-- runs through the history's snapshot and then customer_rule_segments, and built side by
-- side the two queries each took about twice as long (both use both cores).
-- depends_on: {{ ref('customer_feature_history') }}

with

crm as (

    select
        customer_id,
        email,
        phone,
        first_name,
        last_name,
        birth_date,
        postal_code,
        gender,
        country_code,
        city,
        signup_date,
        loyalty_tier,
        is_email_opt_in,
        is_ads_opt_in,
        updated_at
    from {{ ref('stg_segmint__customers') }}

),

activity as (

    select
        customer_id,
        min(first_seen_at) as first_event_at,
        max(last_seen_at) as last_seen_at,
        min(first_order_at) as first_order_at,
        max(last_order_at) as last_order_at,
        sum(orders) as order_count,
        -- net of refunds, as in customer_features
        sum(revenue) - coalesce(sum(refunded_amount), 0) as revenue_total,
        coalesce(sum(refunded_amount), 0) as refund_total,
        sum(sessions) as session_count
    from ({{ attributed_daily_activity() }}) as daily
    group by customer_id

),

-- When the CRM first knew each customer (their first version): the first_seen_at of a
-- customer with no event, no identify call and no signup date, as in
-- customer_feature_history.
first_versions as (

    select
        customer_id,
        min(valid_from) as first_known_at
    from {{ ref('stg_segmint__customer_versions') }}
    group by customer_id

),

identities as (

    select
        customer_id,
        count(*) as anonymous_id_count
    from {{ ref('identity_map') }}
    group by customer_id

),

-- Every customer ever identified (an identify call or a login with an anonymous id), even
-- when a later customer took the anonymous id over in identity_map: when first.
links as (

    select
        customer_id,
        min(first_linked_at) as first_linked_at
    from {{ ref('int_identity_links') }}
    group by customer_id

),

customer_ids as (

    select customer_id from crm
    union
    select customer_id from activity
    union
    -- a customer known only from an identify call (no CRM record, no visit yet)
    select customer_id from links

)

select
    customer_ids.customer_id,
    crm.email,
    crm.phone,
    crm.first_name,
    crm.last_name,
    crm.birth_date,
    crm.postal_code,
    crm.gender,
    crm.country_code,
    crm.city,
    crm.signup_date,
    crm.loyalty_tier,
    coalesce(crm.is_email_opt_in, false) as email_opt_in,
    coalesce(crm.is_ads_opt_in, false) as ads_opt_in,
    crm.customer_id is not null as has_crm_record,
    crm.updated_at as crm_updated_at,
    cast(coalesce(identities.anonymous_id_count, 0) as {{ dbt.type_bigint() }})
        as anonymous_id_count,
    case
        when
            activity.first_event_at is null
            then coalesce(
                    least(
                        cast(crm.signup_date as {{ dbt.type_timestamp() }}),
                        links.first_linked_at
                    ),
                    cast(crm.signup_date as {{ dbt.type_timestamp() }}),
                    links.first_linked_at,
                    first_versions.first_known_at
                )
        when crm.signup_date is null then activity.first_event_at
        when cast(crm.signup_date as {{ dbt.type_timestamp() }}) < activity.first_event_at
            then cast(crm.signup_date as {{ dbt.type_timestamp() }})
        else activity.first_event_at
    end as first_seen_at,
    activity.last_seen_at,
    activity.first_order_at,
    activity.last_order_at,
    cast(coalesce(activity.order_count, 0) as {{ dbt.type_bigint() }}) as order_count,
    cast(coalesce(activity.revenue_total, 0) as {{ type_money() }}) as revenue_total,
    cast(coalesce(activity.refund_total, 0) as {{ type_money() }}) as refund_total,
    cast(coalesce(activity.session_count, 0) as {{ dbt.type_bigint() }}) as session_count
from customer_ids
left join crm on customer_ids.customer_id = crm.customer_id
left join activity on customer_ids.customer_id = activity.customer_id
left join first_versions on customer_ids.customer_id = first_versions.customer_id
left join identities on customer_ids.customer_id = identities.customer_id
left join links on customer_ids.customer_id = links.customer_id
