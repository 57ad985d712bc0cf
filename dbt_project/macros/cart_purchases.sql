{#- The days customer_product_daily rebuilds in an incremental run: the days
    event_dates_to_rebuild() returns, the day after each (a one-event order after midnight
    buys the cart lines of the day before), and the later days, up to
    var('cart_lookback_days') after a changed day, holding a one-event order whose cart may
    hold a line of a changed day or whose previous order may lie on one: an order of a
    customer with an event on a changed day (a cart line, an order, a link), or with rows
    of a changed day in the mart before this run (a reload that deleted all of their events
    of that day: the lines are gone, the rows built from them are not yet), an order of a
    tracker session with a visitor's event on a changed day, and an order of a customer
    linked to an anonymous id with an event on a changed day. Only the people of the
    changed days are looked up, so the cost follows the new data, not the history. A
    changed day that lost events (fewer of its events loaded by the time int_events_sessionised
    was last built than it held then: a reload deleted some, even one bringing as many new
    ones) cannot name the people of the deleted ones (a visitor's lines, a lone removal):
    every later day up to var('cart_lookback_days') on with a one-event order is rebuilt
    then (reloads are rare). Returns ISO date strings, sorted. -#}
{% macro cart_purchase_days_to_rebuild() -%}
    {%- set changed = event_dates_to_rebuild() -%}
    {%- set dates = adjacent_days(changed, after=1) -%}
    {%- if not changed or not execute or var('cart_lookback_days') < 2 -%}
        {{ return(dates) }}
    {%- endif -%}
    {%- set events = api.Relation.create(
        database=this.database, schema='intermediate', identifier='int_events_sessionised'
    ) -%}
    {%- set links = api.Relation.create(
        database=this.database, schema='intermediate', identifier='int_identity_links'
    ) -%}
    {%- set changed_dates = api.Relation.create(
        database=this.database, schema='intermediate', identifier='int_event_dates_changed'
    ) -%}
    {#- A day lost events when fewer of its events than int_events_sessionised held before
        this run were loaded by then (a reload deletes a file's rows and loads its new
        content later): a reload of as many events as before, or more, deletes some too. -#}
    {%- set shrunk_query -%}
        with

        kept as (

            select
                events.event_date,
                count(*) as event_count
            from {{ events }} as events
            inner join {{ changed_dates }} as changed_dates
                on events.event_date = changed_dates.event_date
            where
                {{ date_list_filter('events.event_date', changed, 'events.event_at') }}
                and events._loaded_at <= changed_dates.built_max_loaded_at
            group by events.event_date

        )

        select cast(changed_dates.event_date as {{ dbt.type_string() }}) as event_date
        from {{ changed_dates }} as changed_dates
        left join kept on changed_dates.event_date = kept.event_date
        where
            changed_dates.is_rebuilt
            and coalesce(kept.event_count, 0) < changed_dates.built_event_count
        order by 1
    {%- endset -%}
    {%- set shrunk = run_query(shrunk_query).columns[0].values() | list -%}
    {%- set day = modules.datetime.date.fromisoformat -%}
    {%- set first_day = (day(changed | first | string) + modules.datetime.timedelta(days=2)) -%}
    {%- set last_day = (day(changed | last | string)
        + modules.datetime.timedelta(days=var('cart_lookback_days'))) -%}
    {%- set changed_events -%}
        select
            changed_events.customer_id,
            changed_events.anonymous_id,
            changed_events.session_id
        from {{ events }} as changed_events
        where {{ date_list_filter('changed_events.event_date', changed, 'changed_events.event_at') }}
    {%- endset -%}
    {%- set query -%}
        with

        changed_events as (

            {{ changed_events }}

        )

        select distinct cast(orders.event_date as {{ dbt.type_string() }}) as event_date
        from {{ events }} as orders
        where
            orders.event_type = 'purchase'
            and orders.product_id is null
            and orders.customer_id is not null
            and orders.event_at >= cast({{ date_literal(first_day.isoformat()) }} as {{ dbt.type_timestamp() }})
            and orders.event_at < {{ end_of_day(date_literal(last_day.isoformat())) }}
            and (
                orders.customer_id in (
                    select changed_events.customer_id
                    from changed_events
                    where changed_events.customer_id is not null
                )
                or orders.customer_id in (
                    select built.customer_id
                    from {{ this }} as built
                    where {{ date_list_filter('built.activity_date', changed) }}
                )
                or orders.session_id in (
                    select changed_events.session_id
                    from changed_events
                    where
                        changed_events.session_id is not null
                        and changed_events.customer_id is null
                )
                or orders.customer_id in (
                    select links.customer_id
                    from {{ links }} as links
                    where
                        links.anonymous_id in (
                            select changed_events.anonymous_id
                            from changed_events
                            where changed_events.anonymous_id is not null
                        )
                )
                {%- if shrunk %}
                    or {{ date_list_filter(
                        'orders.event_date',
                        adjacent_days(shrunk, after=var('cart_lookback_days')),
                    ) }}
                {%- endif %}
            )
    {%- endset -%}
    {%- set later = run_query(query).columns[0].values() | list -%}
    {{ return((dates + later) | unique | sort) }}
{%- endmacro %}

{#- Whose cart a one-event order buys, var('cart_scope'): 'customer' (default: the
    customer's cart, kept across visits) or 'session' (the cart of the order's own visit);
    anything else stops the build. -#}
{% macro cart_scope() -%}
    {%- set scope = var('cart_scope', 'customer') | string | trim -%}
    {%- if scope not in ('customer', 'session') -%}
        {{ exceptions.raise_compiler_error(
            "var cart_scope is '" ~ scope ~ "': it must be 'customer' (a cart kept across "
            ~ "visits) or 'session' (a cart per visit)"
        ) }}
    {%- endif -%}
    {{ return(scope) }}
{%- endmacro %}

{#- The columns of a cart line `cart` bought by the one-event order `purchase`
    (customer_product_daily's bought_lines, in each cart scope). -#}
{% macro bought_line_columns() -%}
    purchase.event_id as order_event_id,
    purchase.customer_id,
    purchase.event_date,
    cart.event_id,
    cart.product_id,
    cart.product_category,
    cart.quantity,
    cart.price,
    cart._loaded_at
{%- endmacro %}

{#- Whether the cart line `cart` is still open when the order `purchase` is placed: added
    up to the order, after the customer's previous purchase (which emptied the cart), and
    within var('cart_lookback_days') before it. -#}
{% macro open_cart_line() -%}
    cart.event_at <= purchase.purchased_at
    and (
        purchase.previous_purchased_at is null
        or cart.event_at > purchase.previous_purchased_at
    )
    and {{ days_between('cart.event_date', 'purchase.event_date') }}
    <= {{ var('cart_lookback_days') }}
{%- endmacro %}
