{#- The run's as-of date as a SQL DATE. -#}
{% macro as_of_date() -%}
    {{ date_literal(var('as_of_date')) }}
{%- endmacro %}

{#- The snapshot dates to (re)build in customer_feature_history, as a list of ISO strings:
    the var snapshot_dates (a list or a comma-separated string), else [as_of_date]. -#}
{% macro snapshot_dates() -%}
    {%- set raw = var('snapshot_dates', []) -%}
    {%- if raw is string -%}
        {%- set raw = raw.split(',') -%}
    {%- endif -%}
    {%- set dates = [] -%}
    {%- for item in raw -%}
        {%- if (item | string | trim) and (item | string | trim) not in dates -%}
            {%- do dates.append(item | string | trim) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not dates -%}
        {%- do dates.append(var('as_of_date') | string) -%}
    {%- endif -%}
    {%- for item in dates -%}
        {%- do modules.datetime.date.fromisoformat(item) -%}
    {%- endfor -%}
    {{ return(dates | sort) }}
{%- endmacro %}

{#- A SQL list of string literals from a var holding a list. -#}
{% macro sql_string_list(values) -%}
    {%- for value in values -%}
        '{{ value }}'{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
