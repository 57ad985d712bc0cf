{#- The columns of customer_features, in order (customer_feature_history has these plus
    its load watermark). -#}
{% macro feature_columns() -%}
    {{ return([
        'customer_id', 'as_of_date', 'first_seen_at', 'first_order_at', 'last_order_at',
        'order_count', 'revenue_total', 'refund_total', 'avg_order_value', 'recency_days', 'tenure_days',
        'r_score', 'f_score', 'm_score', 'rfm_segment',
        'orders_30d', 'orders_90d', 'revenue_30d', 'revenue_90d',
        'sessions_7d', 'sessions_30d', 'sessions_90d',
        'page_views_7d', 'page_views_30d', 'page_views_90d',
        'product_views_7d', 'product_views_30d', 'product_views_90d',
        'searches_7d', 'searches_30d', 'searches_90d',
        'cart_adds_7d', 'cart_adds_30d', 'cart_adds_90d',
        'cart_abandonment_rate_90d', 'avg_session_duration_s_30d', 'pages_per_session_30d',
        'email_opens_30d', 'email_clicks_30d', 'email_opens_90d', 'email_clicks_90d',
        'days_since_last_visit', 'favourite_category', 'mobile_session_share_90d',
        'email_opt_in', 'ads_opt_in',
        'days_since_last_activity', 'has_abandoned_cart',
        'max_content_pages_unconverted_session_30d',
    ]) }}
{%- endmacro %}

{#- Every customer's daily activity: customer_daily_activity (attributed when it happened,
    attributed_from_date = activity_date) and the anonymous days before each anonymous id's
    first link, counted for its first linked customer from the link's UTC day on
    (int_anonymous_activity_attributed), with the columns of customer_daily_activity. A
    customer may have several rows a day (one of their own, one per anonymous id): readers
    sum, or take the min or max. Point-in-time readers keep attributed_from_date <= their
    as-of date (activity_date is earlier or equal). The list is written here, not in a
    macro of its own: sqlfluff's templater cannot render a macro calling one that returns. -#}
{% macro attributed_daily_activity() -%}
    {%- set columns = [
        'sessions', 'page_views', 'product_views', 'searches', 'cart_adds', 'orders', 'revenue',
        'refunded_amount', 'email_opens', 'email_clicks', 'session_duration_s', 'mobile_sessions',
        'carted_sessions', 'abandoned_cart_sessions', 'max_content_pages_unconverted_session',
        'first_seen_at', 'last_seen_at', 'first_order_at', 'last_order_at', 'last_cart_add_at',
        'first_purchase_at', 'last_purchase_at', '_loaded_at',
    ] -%}
    select
        customer_id,
        activity_date,
        activity_date as attributed_from_date,
        {{ columns | join(",\n        ") }}
    from {{ ref('customer_daily_activity') }}
    union all
    select
        customer_id,
        activity_date,
        attributed_from_date,
        {{ columns | join(",\n        ") }}
    from {{ ref('int_anonymous_activity_attributed') }}
{%- endmacro %}
