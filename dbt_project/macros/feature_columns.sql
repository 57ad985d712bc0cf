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
