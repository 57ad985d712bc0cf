{#- Incremental models are rebuilt by whole event dates. In an incremental run the dates to
    rebuild are those int_event_dates_changed marks (events added, reloaded or deleted since
    int_events_sessionised was built, or attribution changed by a late login), plus the
    dates of int_events_sessionised rows loaded after the newest load the model itself holds
    (its `_loaded_at` watermark: a model that missed a run, say because a test upstream
    failed, catches up). With watermark=false, the marked dates only: for a model whose rows
    may stop coming (int_anonymous_daily_activity: a shop whose visitors all log in), whose
    stale watermark would otherwise rebuild every day since its last row every night (the
    days a failed run left are marked again anyway: int_event_dates_pending). Returns a list
    of ISO date strings; empty when nothing changed. -#}
{% macro event_dates_to_rebuild(watermark=true) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return([]) }}
    {%- endif -%}
    {#- Named here rather than with ref: the graph and the unit tests' inputs stay as they
        are, and int_events_sessionised can read the list before it is rebuilt. -#}
    {%- set changed = api.Relation.create(
        database=this.database, schema='intermediate', identifier='int_event_dates_changed'
    ) -%}
    {#- int_events_sessionised is missing when the first build stopped (a full disk, a kill)
        after this model and before it: int_event_dates_changed then marks every date, and
        this model is not upstream of it, so it may run first. -#}
    {%- set events = adapter.get_relation(
        database=this.database, schema='intermediate', identifier='int_events_sessionised'
    ) -%}
    {%- set query -%}
        select cast(event_date as {{ dbt.type_string() }}) as event_date
        from {{ changed }}
        where is_rebuilt
        {% if watermark and events and this.identifier != 'int_events_sessionised' -%}
            union
            select distinct cast(event_date as {{ dbt.type_string() }}) as event_date
            from {{ events }}
            where _loaded_at > (
                select coalesce(max(_loaded_at), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
                from {{ this }}
            )
        {%- endif %}
        order by 1
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {{ return(result.columns[0].values() | list) }}
{%- endmacro %}

{#- A where-clause fragment keeping the rows of the given dates. With `timestamp_column` the
    range is also stated on that column, so the scan can skip row groups by their min/max
    statistics. An empty list keeps nothing. -#}
{% macro date_list_filter(date_column, dates, timestamp_column=none) -%}
    {%- if dates -%}
        {%- if timestamp_column -%}
            {{ timestamp_column }} >= cast({{ date_literal(dates | first) }} as {{ dbt.type_timestamp() }})
            and {{ timestamp_column }} < {{ end_of_day(date_literal(dates | last)) }}
            and
        {% endif -%}
        {{ date_column }} in ({% for d in dates %}{{ date_literal(d) }}{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        1 = 0
    {%- endif -%}
{%- endmacro %}

{#- The order ids with a purchase event in `relation` on one of `dates` (events relations:
    event_type, order_id, event_date, event_at); with `event_types`, an event of one of those
    types (['purchase', 'refund']). -#}
{% macro purchase_orders_on(relation, dates, event_types=['purchase']) -%}
    select order_id
    from {{ relation }}
    where
        event_type in ({{ sql_string_list(event_types) }})
        and order_id is not null
        and {{ date_list_filter('event_date', dates, 'event_at') }}
{%- endmacro %}

{#- The ISO dates `dates` with the `before` days before and the `after` days after each,
    sorted, without repeats. -#}
{% macro adjacent_days(dates, before=0, after=0) -%}
    {%- set out = [] -%}
    {%- for iso in dates -%}
        {%- set day = modules.datetime.date.fromisoformat(iso | string) -%}
        {%- for offset in range(-before, after + 1) -%}
            {%- set near = (day + modules.datetime.timedelta(days=offset)).isoformat() -%}
            {%- if near not in out -%}
                {%- do out.append(near) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(out | sort) }}
{%- endmacro %}

{#- A where-clause fragment keeping the rows of the dates to rebuild: every row in a full
    build, the rows of `dates` in an incremental run. -#}
{% macro incremental_date_filter(date_column, dates, timestamp_column=none) -%}
    {%- if is_incremental() -%}
        {{ date_list_filter(date_column, dates, timestamp_column) }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- The snapshot dates customer_feature_history must (re)build in this run: in a full build
    every date of snapshot_dates(); in an incremental run the as-of date always, plus each
    other date that is missing or whose inputs (daily activity up to that date, CRM versions
    valid by its end) received rows loaded after the snapshot was built, or whose daily
    activity was rebuilt after it (int_snapshot_dates_stale: a day emptied or re-opened). So a night builds at
    most its own snapshot and the cut-off snapshots no earlier night left behind. Returns ISO strings, sorted. -#}
{% macro snapshot_dates_to_build(activity_relation) -%}
    {%- set wanted = snapshot_dates() -%}
    {%- if not is_incremental() or not execute -%}
        {{ return(wanted) }}
    {%- endif -%}
    {%- set stale_relation = adapter.get_relation(
        database=this.database, schema='intermediate', identifier='int_snapshot_dates_stale'
    ) -%}
    {%- set crm_relation = adapter.get_relation(
        database=this.database, schema='intermediate', identifier='int_crm_dates_built'
    ) -%}
    {%- set query -%}
        with wanted as (
            {% for d in wanted -%}
                select {{ date_literal(d) }} as as_of_date
                {% if not loop.last %}union all{% endif %}
            {% endfor %}
        ),

        built as (
            select as_of_date, max(_loaded_at) as built_loaded_at
            from {{ this }}
            where as_of_date in (select as_of_date from wanted)
            group by as_of_date
        ),

        -- Newest load behind each day of activity and each day's CRM versions (a few hundred
        -- rows), compared with each snapshot's own watermark below.
        activity_loads as (
            select activity_date as load_date, max(_loaded_at) as max_loaded_at
            from {{ activity_relation }}
            group by activity_date
            union all
            select cast(valid_from as date) as load_date, max(_loaded_at) as max_loaded_at
            from {{ ref('stg_segmint__customer_versions') }}
            group by cast(valid_from as date)
        ),

        stale as (
            select distinct built.as_of_date
            from built
            inner join activity_loads
                on
                    activity_loads.load_date <= built.as_of_date
                    and activity_loads.max_loaded_at > built.built_loaded_at
            {% if stale_relation -%}
                -- Days rebuilt after the snapshot with no later load (emptied, re-opened).
                union
                select as_of_date from {{ stale_relation }}
            {%- endif %}
            {% if crm_relation -%}
                -- CRM versions withdrawn since the snapshots were built (nothing loaded).
                union
                select built.as_of_date
                from built
                inner join ({{ crm_dates_changed(crm_relation) }}) as crm_changed
                    on crm_changed.crm_date <= built.as_of_date
            {%- endif %}
        )

        select cast(wanted.as_of_date as {{ dbt.type_string() }})
        from wanted
        left join built on wanted.as_of_date = built.as_of_date
        where
            built.as_of_date is null
            or wanted.as_of_date = {{ as_of_date() }}
            or wanted.as_of_date in (select stale.as_of_date from stale)
        order by 1
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {{ return(result.columns[0].values() | list) }}
{%- endmacro %}

{#- In an incremental run: rows loaded after the newest load the model already holds. -#}
{% macro loaded_after_watermark(loaded_at_column) -%}
    {%- if is_incremental() -%}
        {{ loaded_at_column }} > (
            select coalesce(max(_loaded_at), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
            from {{ this }}
        )
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of the date-partitioned models: delete the rows of days that have no raw event
    left (every row of the day deleted or moved by a reload). delete+insert only replaces the
    days present in the new rows, so such a day would otherwise keep its old rows. -#}
{% macro delete_emptied_days(date_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_column }} in (
            select event_date
            from {{ this.database }}.intermediate.int_event_dates_changed
            where is_rebuilt and event_count is null
        )
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of customer_daily_activity: delete the rows of the days this run rebuilds. A
    day keeps events while a customer's row of it may vanish (a refund that no longer counts
    on it: an earlier refund used up its order, its order moved), and delete+insert only
    replaces the days present in the new rows. In the same transaction as the insert.
    Also of customer_product_daily, with its own `dates` (a day's purchases may vanish when
    the cart lines of the day before change). -#}
{% macro delete_rebuilt_days(date_column, dates=none) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_list_filter(date_column, event_dates_to_rebuild() if dates is none else dates) }}
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of orders: delete the orders of rebuilt days whose winning purchase event is
    gone (deleted by a reload, or now carrying another order_id). delete+insert replaces
    the orders it recomputed; an order left without any purchase event is not among them,
    so its old row would otherwise stay. -#}
{% macro delete_orders_without_event() -%}
    {%- if is_incremental() -%}
        {%- set rebuilt -%}
            select event_date
            from {{ this.database }}.intermediate.int_event_dates_changed
            where is_rebuilt
        {%- endset -%}
        delete from {{ this }}
        where order_id in (
            select orders.order_id
            from {{ this }} as orders
            where
                orders.order_date in ({{ rebuilt }})
                and not exists (
                    select 1
                    from {{ this.database }}.intermediate.int_events_sessionised as events
                    where
                        events.event_id = orders.event_id
                        and events.order_id = orders.order_id
                        and events.event_type = 'purchase'
                        and events.event_date in ({{ rebuilt }})
                )
        )
    {%- else -%}
        select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}

{#- Dates int_events_sessionised rebuilt in a dbt run that has not finished yet: a post-hook
    of int_events_sessionised records them here, in the transaction that rebuilds them, and
    the run's end clears them once every model after it was built (clear_event_dates_pending).
    A run killed or failed in between leaves them, and the next run's int_event_dates_changed
    marks them rebuilt again: int_events_sessionised no longer differs from raw.events on those
    days (a re-opened day's fingerprint never did), so without this record the models after it
    kept their old rows of every day re-opened by a late login, an order or a refund, and of
    every day emptied by a reload. -#}
{% macro event_dates_pending_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='int_event_dates_pending'
    )) }}
{%- endmacro %}

{#- Post-hooks of int_events_sessionised: the table, then the days it rebuilt. -#}
{% macro create_event_dates_pending() -%}
    create table if not exists {{ event_dates_pending_relation() }} (event_date date not null)
{%- endmacro %}

{% macro record_event_dates_pending() -%}
    insert into {{ event_dates_pending_relation() }}
    select event_date
    from {{ this.database }}.intermediate.int_event_dates_changed
    where
        is_rebuilt
        and event_date not in (select event_date from {{ event_dates_pending_relation() }})
{%- endmacro %}

{#- on-run-end: forget the pending days once a whole `dbt run` or `dbt build` (no --select or
    --exclude: every model after int_events_sessionised was in it), or one whose selection
    held int_events_sessionised and every model after it (the transform stage's full refresh of
    changed models, `--select int_events_sessionised+`, left every day pending, and the next
    night rebuilt the whole history again), built every node. -#}
{% macro clear_event_dates_pending(results) -%}
    {%- set args = invocation_args_dict -%}
    {%- set failed = [] -%}
    {%- set ran = [] -%}
    {%- for result in results -%}
        {%- if result.status in ('error', 'fail', 'skipped', 'runtime error') -%}
            {%- do failed.append(result) -%}
        {%- endif -%}
        {%- do ran.append(result.node.unique_id) -%}
    {%- endfor -%}
    {%- set whole = args.get('which') in ('build', 'run')
        and not args.get('select') and not args.get('exclude') and not args.get('selector') -%}
    {%- if args.get('which') in ('build', 'run') and not whole and execute -%}
        {#- The models built from int_events_sessionised, directly or not. -#}
        {%- set after = ['model.' ~ project_name ~ '.int_events_sessionised'] -%}
        {%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
            | list -%}
        {%- for _ in range(models | length) -%}
            {%- for node in models if node.unique_id not in after -%}
                {%- for parent in node.depends_on.nodes if parent in after
                    and node.unique_id not in after -%}
                    {%- do after.append(node.unique_id) -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- endfor -%}
        {#- int_events_sessionised among them: it created the table, in a warehouse built
            before it existed too. -#}
        {%- set whole = after | reject('in', ran) | list | length == 0 -%}
    {%- endif -%}
    {#- The table exists then: int_events_sessionised, built in such a run, created it (the
        relation cache, read at the run's start, would not know it on a first build). -#}
    {%- if whole and not failed -%}
        delete from {{ event_dates_pending_relation() }}
    {%- else -%}
        select 1 as nothing_to_clear
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of customer_feature_history: record the snapshot dates this run (re)builds in
    intermediate.int_snapshot_dates_built (computed as the model body computes them, from the
    same state), so customer_rule_segments rebuilds exactly those and the tests on both
    tables check them (see get_where_subquery). -#}
{% macro record_snapshot_dates_built() -%}
    {%- set dates = snapshot_dates_to_build(ref('customer_daily_activity')) -%}
    create or replace table {{ snapshot_dates_built_relation() }} as
    {% for d in dates -%}
        select {{ date_literal(d) }} as as_of_date
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {%- if not dates %}
        select cast(null as date) as as_of_date
        where 1 = 0
    {%- endif %}
{%- endmacro %}

{#- Where the pre-hook above records the snapshot dates of the run. -#}
{% macro snapshot_dates_built_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='int_snapshot_dates_built'
    )) }}
{%- endmacro %}

{#- Snapshot dates customer_feature_history (re)built whose rule segments are not rebuilt yet:
    a post-hook of customer_feature_history records them, in the transaction that builds
    them, and a post-hook of customer_rule_segments forgets them in the transaction that
    rebuilds their segments. A run killed or failed in between (a failed test on the feature
    history skips the segments) leaves them, and the next run's customer_rule_segments
    rebuilds them: a stale cut-off snapshot the killed run rebuilt is fresh by then, so it is
    no longer in int_snapshot_dates_built, and its segments kept the old membership. -#}
{% macro snapshot_dates_pending_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='int_snapshot_dates_pending'
    )) }}
{%- endmacro %}

{% macro create_snapshot_dates_pending() -%}
    create table if not exists {{ snapshot_dates_pending_relation() }} (as_of_date date not null)
{%- endmacro %}

{#- Post-hook of customer_feature_history: the snapshot dates it built in this run. -#}
{% macro record_snapshot_dates_pending() -%}
    insert into {{ snapshot_dates_pending_relation() }}
    select built.as_of_date
    from {{ snapshot_dates_built_relation() }} as built
    where built.as_of_date not in (select as_of_date from {{ snapshot_dates_pending_relation() }})
{%- endmacro %}

{#- Snapshots of customer_feature_history whose daily activity was rebuilt after them: a
    pre-hook of customer_daily_activity records every stored snapshot dated on or after a day
    it rebuilds (all of them in a full refresh of it), in the transaction that rebuilds the
    days; a post-hook of customer_feature_history forgets the ones it (re)built. A day can
    change without any row loaded after the snapshot: a reload that emptied it, a day
    re-opened by a late login, an order or a refund, a revised rate. Without this record,
    snapshot_dates_to_build found such a cut-off snapshot fresh (no later `_loaded_at`), and
    a retraining night kept it, and its rule segments, as they were before the change. -#}
{% macro snapshot_dates_stale_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='int_snapshot_dates_stale'
    )) }}
{%- endmacro %}

{% macro create_snapshot_dates_stale() -%}
    create table if not exists {{ snapshot_dates_stale_relation() }} (as_of_date date not null)
{%- endmacro %}

{#- Pre-hook of customer_daily_activity, before its delete of the rebuilt days (which may
    lower the `_loaded_at` watermark event_dates_to_rebuild reads). -#}
{% macro record_snapshot_dates_stale() -%}
    {%- set history = none -%}
    {%- if execute -%}
        {%- set history = adapter.get_relation(
            database=this.database, schema='marts', identifier='customer_feature_history'
        ) -%}
    {%- endif -%}
    {%- set dates = event_dates_to_rebuild() if is_incremental() else [] -%}
    {%- if history and (dates or not is_incremental()) -%}
        insert into {{ snapshot_dates_stale_relation() }}
        select distinct history.as_of_date
        from {{ history }} as history
        where
            {% if is_incremental() -%}
                history.as_of_date >= {{ date_literal(dates | first) }} and
            {% endif -%}
            history.as_of_date not in (
                select stale.as_of_date from {{ snapshot_dates_stale_relation() }} as stale
            )
    {%- else -%}
        select 1 as nothing_to_record
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of customer_feature_history: the snapshots it built are fresh (every one after
    a full refresh, which keeps only those). -#}
{% macro clear_snapshot_dates_stale() -%}
    delete from {{ snapshot_dates_stale_relation() }}
    {% if is_incremental() -%}
        where as_of_date in (select built.as_of_date from {{ snapshot_dates_built_relation() }} as built)
    {%- endif %}
{%- endmacro %}

{#- The CRM versions the stored snapshots were built from, by the day they became valid
    (how many, newest load): customer_feature_history's post-hook rewrites it after every
    build. A version withdrawn since (its export delivered again without it, or empty) loads
    nothing, so no later `_loaded_at` makes the snapshots it was valid on stale; a day whose
    count or newest load differs from the CRM's now does (crm_dates_changed). -#}
{% macro crm_dates_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='int_crm_dates_built'
    )) }}
{%- endmacro %}

{% macro crm_dates_now() -%}
    select
        cast(valid_from as date) as crm_date,
        count(*) as version_count,
        max(_loaded_at) as max_loaded_at
    from {{ ref('stg_segmint__customer_versions') }}
    group by cast(valid_from as date)
{%- endmacro %}

{#- The days whose CRM versions differ from those `relation` recorded. -#}
{% macro crm_dates_changed(relation) -%}
    select coalesce(crm_now.crm_date, crm_built.crm_date) as crm_date
    from ({{ crm_dates_now() }}) as crm_now
    full outer join {{ relation }} as crm_built on crm_now.crm_date = crm_built.crm_date
    where
        crm_now.version_count is distinct from crm_built.version_count
        or crm_now.max_loaded_at is distinct from crm_built.max_loaded_at
{%- endmacro %}

{#- Post-hook of customer_feature_history (after clear_snapshot_dates_stale): the stored
    snapshots it did not rebuild, dated on or after a day whose CRM versions changed, are
    stale. -#}
{% macro record_crm_snapshot_dates_stale() -%}
    {%- set recorded = none -%}
    {%- if execute and is_incremental() -%}
        {%- set recorded = adapter.get_relation(
            database=this.database, schema='intermediate', identifier='int_crm_dates_built'
        ) -%}
    {%- endif -%}
    {%- if recorded -%}
        insert into {{ snapshot_dates_stale_relation() }}
        select distinct history.as_of_date
        from {{ this }} as history
        where
            history.as_of_date >= (
                select min(crm_changed.crm_date)
                from ({{ crm_dates_changed(recorded) }}) as crm_changed
            )
            and history.as_of_date not in (
                select built.as_of_date from {{ snapshot_dates_built_relation() }} as built
            )
            and history.as_of_date not in (
                select stale.as_of_date from {{ snapshot_dates_stale_relation() }} as stale
            )
    {%- else -%}
        select 1 as nothing_to_record
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of customer_feature_history (last): the CRM versions the snapshots are built
    from now. -#}
{% macro record_crm_dates_built() -%}
    create or replace table {{ crm_dates_relation() }} as {{ crm_dates_now() }}
{%- endmacro %}

{#- Post-hook of customer_rule_segments: their segments are rebuilt now. -#}
{% macro clear_snapshot_dates_pending() -%}
    delete from {{ snapshot_dates_pending_relation() }}
{%- endmacro %}
