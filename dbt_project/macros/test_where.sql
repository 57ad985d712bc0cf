{#- The `where` config of data tests (dbt's get_where_subquery, overridden): besides plain
    SQL it understands the placeholder __snapshot_dates__, replaced when the test runs by
    the snapshot dates of this run (a SQL list of dates). Tests on the snapshot tables
    (customer_feature_history, customer_rule_segments) check the snapshots the run asked
    for, not every past one; tests on the date-partitioned tables name the days the run
    rebuilt (intermediate.int_event_dates_changed). A full build checks everything it built,
    the nightly increment its new rows. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__snapshot_dates__' in where -%}
            {%- set dates -%}
                ({% for d in snapshot_dates() %}{{ date_literal(d) }}{{ ", " if not loop.last }}{% endfor %})
            {%- endset -%}
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
