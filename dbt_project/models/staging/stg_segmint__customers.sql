-- The current CRM record of each customer: raw.customers keeps every version, and the latest
-- updated_at wins (ties: later partition, then file, then line); see
-- stg_segmint__customer_versions, whose current versions these are.
with

versions as (

    select * from {{ ref('stg_segmint__customer_versions') }}

)

select
    customer_id,
    updated_at,
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
    _partition_date,
    _source_file,
    _source_line,
    _loaded_at
from versions
where valid_to is null
