{#- The `where` config of data tests (dbt's get_where_subquery, overridden): besides plain
    SQL it understands the placeholder __snapshot_dates__, replaced when the test runs by
    the snapshot dates customer_feature_history (re)built in this run (recorded in
    intermediate.int_snapshot_dates_built by its pre-hook; the run's snapshot dates when that
    table does not exist yet). Tests on the snapshot tables (customer_feature_history,
    customer_rule_segments) check the snapshots the run built, not every past one; tests on
    the date-partitioned tables name the days the run rebuilt
    (intermediate.int_event_dates_changed). A full build checks everything it built,
    the nightly increment its new rows. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__snapshot_dates__' in where -%}
            {%- set built = adapter.get_relation(
                database=target.database, schema='intermediate',
                identifier='int_snapshot_dates_built',
            ) if execute else none -%}
            {%- if built -%}
                {%- set dates -%}
                    (select built.as_of_date from {{ built }} as built)
                {%- endset -%}
            {%- else -%}
                {%- set dates -%}
                    ({% for d in snapshot_dates() %}{{ date_literal(d) }}{{ ", " if not loop.last }}{% endfor %})
                {%- endset -%}
            {%- endif -%}
            {%- set where = where | replace('__snapshot_dates__', dates) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) as dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
