{{ config(materialized='view') }}

-- The anonymous days before each anonymous id's first link, given to its first linked
-- customer (int_anonymous_first_links): one row per anonymous id and day of
-- int_anonymous_daily_activity before the link's UTC day, with the customer and that day as
-- attributed_from_date. The feature history counts a row in snapshots as of
-- attributed_from_date or later only (the login is an event of that day: point in time);
-- customers counts every row. The link's own day needs none: its anonymous events before
-- the login are the customer's in customer_daily_activity already (int_events_attributed).
select
    first_links.customer_id,
    activity.anonymous_id,
    activity.activity_date,
    first_links.attributed_from_date,
    activity.sessions,
    activity.page_views,
    activity.product_views,
    activity.searches,
    activity.cart_adds,
    activity.orders,
    activity.revenue,
    activity.refunded_amount,
    activity.email_opens,
    activity.email_clicks,
    activity.session_duration_s,
    activity.mobile_sessions,
    activity.carted_sessions,
    activity.abandoned_cart_sessions,
    activity.max_content_pages_unconverted_session,
    activity.first_seen_at,
    activity.last_seen_at,
    activity.first_order_at,
    activity.last_order_at,
    activity.last_cart_add_at,
    activity.first_purchase_at,
    activity.last_purchase_at,
    activity._loaded_at
from {{ ref('int_anonymous_daily_activity') }} as activity
inner join {{ ref('int_anonymous_first_links') }} as first_links
    on activity.anonymous_id = first_links.anonymous_id
where activity.activity_date < first_links.attributed_from_date
