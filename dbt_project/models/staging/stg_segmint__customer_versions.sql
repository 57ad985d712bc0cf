-- Every CRM record version of raw.customers (an SCD2 history): renamed, cast and normalised,
-- each version valid from its updated_at until the next version's updated_at (valid_to null
-- for the current one). Versions with equal updated_at are ordered by partition, file and
-- line, so the earlier of them is valid for no time at all and the latest one wins, as in
-- stg_segmint__customers. A second staging model of the same source: point-in-time
-- features need the versions, the profile only the latest (which it reads from here).
with

source as (

    select * from {{ source('segmint', 'customers') }}

),

renamed as (

    select
        trim(customer_id) as customer_id,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,

        -- contact (PII)
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        birth_date,
        nullif(trim(postal_code), '') as postal_code,

        -- profile
        nullif(lower(trim(gender)), '') as gender,
        nullif(upper(trim(country)), '') as country_code,
        nullif(trim(city), '') as city,
        signup_date,
        nullif(lower(trim(loyalty_tier)), '') as loyalty_tier,

        -- consent: absent means no consent
        coalesce(email_opt_in, false) as is_email_opt_in,
        coalesce(ads_opt_in, false) as is_ads_opt_in,

        -- load metadata
        _partition_date,
        _source_file,
        _source_line,
        _loaded_at

    from source

)

select
    customer_id,
    updated_at as valid_from,
    lead(updated_at) over (
        partition by customer_id
        order by updated_at, _partition_date, _source_file, _source_line
    ) as valid_to,
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
from renamed
