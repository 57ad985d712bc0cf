with

source as (

    select * from {{ source('segmint', 'events') }}

),

renamed as (

    select
        -- ids
        trim(event_id) as event_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(session_id), '') as session_id,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(product_id), '') as product_id,

        -- what happened
        lower(trim(event_type)) as event_type,
        cast(event_ts as {{ dbt.type_timestamp() }}) as event_at,
        cast(event_ts as date) as event_date,

        -- page and product
        nullif(trim(page_url), '') as page_url,
        nullif(lower(trim(page_type)), '') as page_type,
        nullif(trim(referrer), '') as referrer,
        nullif(trim(product_category), '') as product_category,
        price,
        quantity,
        nullif(trim(search_query), '') as search_query,
        time_on_page_s as time_on_page_seconds,
        scroll_depth,

        -- context
        nullif(lower(trim(device_type)), '') as device_type,
        nullif(upper(trim(country)), '') as country_code,
        nullif(lower(trim(utm_source)), '') as utm_source,
        nullif(lower(trim(utm_medium)), '') as utm_medium,
        nullif(trim(utm_campaign), '') as utm_campaign,

        -- order
        revenue,
        nullif(upper(trim(currency)), '') as currency,

        -- load metadata
        _source_file,
        _source_line,
        _partition_date,
        _loaded_at

    from source

)

select * from renamed
