-- raw.customers keeps every CRM record version; the latest updated_at wins per customer
-- (ties: later partition, then file, then line).
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
        _loaded_at,
        row_number() over (
            partition by trim(customer_id)
            order by
                updated_at desc,
                _partition_date desc,
                _source_file desc,
                _source_line desc
        ) as version_rank

    from source

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
from renamed
where version_rank = 1
