{#- Incremental models are rebuilt by whole event dates. In an incremental run, the dates to
    rebuild are the event dates of raw events loaded after the newest load the model has
    already folded in (its `_loaded_at` watermark). Returns a list of ISO date strings;
    empty when nothing new arrived. Late events re-open exactly the days they belong to.
    Reads the staging view, whose filter on _loaded_at reaches the raw scan (row groups are
    skipped by their min/max), never a downstream view with windows. -#}
{% macro new_event_dates() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {#- Every caller depends on the staging view through its parents; naming the relation
        here (not ref) keeps the graph and the unit tests' inputs unchanged. -#}
    {%- set events = api.Relation.create(
        database=this.database, schema='staging', identifier='stg_segmint__events'
    ) -%}
    {%- set query -%}
        select distinct cast(event_date as {{ dbt.type_string() }}) as event_date
        from {{ events }}
        where _loaded_at > (
            select coalesce(max(_loaded_at), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
            from {{ this }}
        )
        order by 1
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {{ return(result.columns[0].values() | list) }}
{%- endmacro %}

{#- A where-clause fragment keeping the rows of the dates to rebuild (all rows in a full
    build). With `timestamp_column` the range is also stated on that column, so the scan can
    skip row groups by their min/max statistics. -#}
{% macro incremental_date_filter(date_column, dates, timestamp_column=none) -%}
    {%- if is_incremental() -%}
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
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- The snapshot dates customer_feature_history must (re)build in this run: in a full build
    every date of snapshot_dates(); in an incremental run the as-of date always, plus each
    other date that is missing or whose inputs (daily activity up to that date) received
    rows loaded after the snapshot was built. Returns ISO strings, sorted. -#}
{% macro snapshot_dates_to_build(activity_relation) -%}
    {%- set wanted = snapshot_dates() -%}
    {%- if not is_incremental() or not execute -%}
        {{ return(wanted) }}
    {%- endif -%}
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
        )

        select cast(wanted.as_of_date as {{ dbt.type_string() }})
        from wanted
        left join built on wanted.as_of_date = built.as_of_date
        where
            built.as_of_date is null
            or wanted.as_of_date = {{ as_of_date() }}
            or exists (
                select 1
                from {{ activity_relation }} as activity
                where
                    activity.activity_date <= wanted.as_of_date
                    and activity._loaded_at > built.built_loaded_at
            )
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
