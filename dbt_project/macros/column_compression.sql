{#-
DuckDB picks every column's compression when it writes a table. For a few columns the
picking and the compressing cost more than the space they save: a model names them under
`meta.column_compression` ({column: method}, DuckDB's names: uncompressed, zstd, ...), and
its table is created with those methods; its other columns compress as DuckDB chooses.

The case in this project is the event id. Every tracker writes a random string there (a UUID:
Segment's and RudderStack's messageId, Snowplow's event_id). No dictionary shortens it, and
FSST takes 36 bytes to about 20. Writing int_events_sessionised at 10M events, event_id took
6.3 of the table's 23.5 CPU-s. Uncompressed, the table is written in 6.0-6.1 s instead of
7.5-7.8 s, and it takes about 180 MB more disk. The table's other string columns were
measured the same way (each written alone, 10M rows): uncompressed, none saved more than
0.6 CPU-s and each took 2-25 times the blocks, so DuckDB keeps choosing for them.

DuckDB-only (adapter.dispatch picks this over dbt-duckdb's macro); other adapters create
tables as usual. Only tables built from SQL, without an enforced contract (its DDL is dbt's),
partitioning or sorting; temporary tables are left alone (an incremental run's new rows keep
the methods of the table they are inserted into).
-#}
{% macro duckdb__create_table_as(
    temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none
) -%}
    {%- set methods = config.meta_get('column_compression') or {} -%}
    {%- if not methods or temporary or language != 'sql' or partitioned_by or sorted_by
        or config.get('contract').enforced -%}
        {{- return(dbt.duckdb__create_table_as(
            temporary, relation, compiled_code, language, partitioned_by, sorted_by
        )) -}}
    {%- endif -%}
    {%- set described = run_query(
        'describe select * from (\n' ~ compiled_code ~ '\n) as model_subq'
    ) -%}
    {%- set columns = [] -%}
    {%- for row in described.rows -%}
        {%- do columns.append((row[0], row[1])) -%}
    {%- endfor -%}
    {%- set unknown = methods.keys() | reject('in', columns | map(attribute=0) | list) | list -%}
    {%- if unknown -%}
        {{- exceptions.raise_compiler_error(
            'meta.column_compression of ' ~ relation ~ ' names columns it does not have: '
            ~ unknown | join(', ')
        ) -}}
    {%- endif -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {{ sql_header if sql_header is not none }}

    create table {{ relation }} (
        {%- for name, data_type in columns %}
        {{ adapter.quote(name) }} {{ data_type }}
        {%- if name in methods %} using compression {{ methods[name] }}{% endif -%}
        {{- ',' if not loop.last }}
        {%- endfor %}
    );
    insert into {{ relation }}
    select * from (
        {{ compiled_code }}
    ) as model_subq;
{%- endmacro %}
