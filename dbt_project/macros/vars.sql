{#- The run's as-of date and snapshot dates come from the var of the same name when one is
    given (`--vars`, a unit test's overrides), else from the environment variables
    SEGMINT_AS_OF_DATE and SEGMINT_SNAPSHOT_DATES that segmint.transform sets. The nightly run
    uses the environment: a `--vars` value that changes every night makes dbt re-parse the
    whole project (~6 s). The environment is read only when dbt executes (`execute`), never
    while it parses: dbt records the environment variables a file reads at parse time and
    re-parses that file when one changes (three models, ~1 s every night), so read at run time
    a new date re-parses nothing. Nothing at parse time depends on the dates. -#}

{#- The run's as-of date as an ISO string. -#}
{% macro as_of_date_iso() -%}
    {%- set value = var('as_of_date', none) or (env_var('SEGMINT_AS_OF_DATE', '') if execute else '') -%}
    {%- if not value -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "no as-of date: set the var as_of_date or the environment variable SEGMINT_AS_OF_DATE"
            ) }}
        {%- endif -%}
        {%- set value = '1970-01-01' -%}
    {%- endif -%}
    {%- do modules.datetime.date.fromisoformat(value | string | trim) -%}
    {{ return(value | string | trim) }}
{%- endmacro %}

{#- The run's as-of date as a SQL DATE. -#}
{% macro as_of_date() -%}
    {{ date_literal(as_of_date_iso()) }}
{%- endmacro %}

{#- The snapshot dates to (re)build in customer_feature_history, as a list of ISO strings:
    the var snapshot_dates (a list or a comma-separated string), else the environment
    variable SEGMINT_SNAPSHOT_DATES (comma-separated), else [as_of_date]. -#}
{% macro snapshot_dates() -%}
    {%- set raw = var('snapshot_dates', none) or [] -%}
    {%- if not raw and execute -%}
        {%- set raw = env_var('SEGMINT_SNAPSHOT_DATES', '') -%}
    {%- endif -%}
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
        {%- do dates.append(as_of_date_iso()) -%}
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
