{#- Wrappers for functions without a dbt cross-database macro. Add an implementation
    named <adapter>__<macro> to run the project on another warehouse. -#}

{#- True when any value of a boolean expression in the group is true. -#}
{% macro bool_or(expression) -%}
    {{ return(adapter.dispatch('bool_or', 'segmint')(expression)) }}
{%- endmacro %}

{% macro default__bool_or(expression) -%}
    max(case when {{ expression }} then 1 else 0 end) = 1
{%- endmacro %}

{% macro duckdb__bool_or(expression) -%}
    bool_or({{ expression }})
{%- endmacro %}

{% macro snowflake__bool_or(expression) -%}
    boolor_agg({{ expression }})
{%- endmacro %}

{% macro bigquery__bool_or(expression) -%}
    logical_or({{ expression }})
{%- endmacro %}

{#- A DATE literal from an ISO string. -#}
{% macro date_literal(iso_date) -%}
    cast('{{ iso_date }}' as date)
{%- endmacro %}

{#- The first instant after the end of a UTC day: events with event_at < this are "at or
    before the end of the day". -#}
{% macro end_of_day(date_expression) -%}
    {{ dbt.dateadd('day', 1, 'cast(' ~ date_expression ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
{%- endmacro %}

{#- Whole days from date `earlier` to date `later`. -#}
{% macro days_between(earlier, later) -%}
    cast({{ dbt.datediff(earlier, later, 'day') }} as integer)
{%- endmacro %}

{#- Microseconds between two timestamps: a datediff in seconds counts the second
    boundaries crossed, so 10:00:00.0 to 10:30:00.5 made 1800, not 1800.5 (a gap of more than
    30 minutes did not start a new session). -#}
{% macro microseconds_between(earlier, later) -%}
    {{ dbt.datediff(earlier, later, 'microsecond') }}
{%- endmacro %}

{#- Whole seconds elapsed between two timestamps (10:00:00.9 to 10:10:00.1 is 599), as a
    double. Whole, so that sums and averages of them are exact whatever order a parallel
    aggregate adds them in: with fractions a rerun's averages differed in the last bit. -#}
{% macro seconds_between(earlier, later) -%}
    cast(floor({{ microseconds_between(earlier, later) }} / 1000000.0) as {{ type_double() }})
{%- endmacro %}

{#- The value of `value_expression` on the row with the smallest tuple `order_expressions`
    (a list, compared left to right: deterministic tie-breaking). -#}
{% macro first_by(value_expression, order_expressions) -%}
    {{ return(adapter.dispatch('first_by', 'segmint')(value_expression, order_expressions)) }}
{%- endmacro %}

{% macro default__first_by(value_expression, order_expressions) -%}
    min_by({{ value_expression }}, {{ order_expressions | first }})
{%- endmacro %}

{% macro duckdb__first_by(value_expression, order_expressions) -%}
    arg_min({{ value_expression }}, ({{ order_expressions | join(', ') }}))
{%- endmacro %}

{#- A struct (record) of the named columns, each field named as its column (read one with
    struct_field). first_by over a struct of several columns takes one arg_min where one per
    column would compare the order expressions again for each. -#}
{% macro struct_of(columns) -%}
    {{ return(adapter.dispatch('struct_of', 'segmint')(columns)) }}
{%- endmacro %}

{% macro default__struct_of(columns) -%}
    named_struct({% for c in columns %}'{{ c }}', {{ c }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro duckdb__struct_of(columns) -%}
    struct_pack({% for c in columns %}{{ c }} := {{ c }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro bigquery__struct_of(columns) -%}
    struct({% for c in columns %}{{ c }} as {{ c }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{#- The field `field` of the struct expression `struct_expression`. -#}
{% macro struct_field(struct_expression, field) -%}
    {{ return(adapter.dispatch('struct_field', 'segmint')(struct_expression, field)) }}
{%- endmacro %}

{% macro default__struct_field(struct_expression, field) -%}
    ({{ struct_expression }}).{{ field }}
{%- endmacro %}

{% macro duckdb__struct_field(struct_expression, field) -%}
    struct_extract({{ struct_expression }}, '{{ field }}')
{%- endmacro %}

{#- A 64-bit floating point type (dbt.type_float() is 32-bit on some adapters). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'segmint')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}

{#- The money type of the marts. -#}
{% macro type_money() -%}
    decimal(18, 2)
{%- endmacro %}
