{#- Compiles one declarative rule segment (an entry of the var rule_segments) into a SQL
    boolean expression over the columns of customer_features. -#}
{% macro rule_segment_condition(segment) -%}
    {%- set operators = ['=', '!=', '>', '>=', '<', '<='] -%}
    {%- set parts = [] -%}
    {%- for group, joiner in [('all', ' and '), ('any', ' or ')] -%}
        {%- set conditions = segment.get(group, []) -%}
        {%- set compiled = [] -%}
        {%- for condition in conditions -%}
            {%- set column = condition['column'] -%}
            {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', column) -%}
                {{ exceptions.raise_compiler_error("rule segment " ~ segment['name'] ~ ": bad column " ~ column) }}
            {%- endif -%}
            {%- set op = condition['op'] -%}
            {%- if op == 'is_null' -%}
                {%- do compiled.append(column ~ ' is null') -%}
            {%- elif op == 'not_null' -%}
                {%- do compiled.append(column ~ ' is not null') -%}
            {%- elif op in operators -%}
                {%- set value = condition['value'] -%}
                {%- if value is sameas true or value is sameas false -%}
                    {%- set literal = (value | string | lower) -%}
                {%- elif value is number -%}
                    {%- set literal = value | string -%}
                {%- else -%}
                    {%- set literal = "'" ~ (value | string | replace("'", "''")) ~ "'" -%}
                {%- endif -%}
                {%- do compiled.append('coalesce(' ~ column ~ ' ' ~ op ~ ' ' ~ literal ~ ', false)') -%}
            {%- else -%}
                {{ exceptions.raise_compiler_error("rule segment " ~ segment['name'] ~ ": unknown op " ~ op) }}
            {%- endif -%}
        {%- endfor -%}
        {%- if compiled -%}
            {%- do parts.append('(' ~ compiled | join(joiner) ~ ')') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not parts -%}
        {{ exceptions.raise_compiler_error("rule segment " ~ segment['name'] ~ " has no conditions") }}
    {%- endif -%}
    {{ return(parts | join(' and ')) }}
{%- endmacro %}

{#- Checks every entry of the var rule_segments before any is compiled, so that a mistake
    stops dbt with an error naming the entry, never a segment that silently means something
    else: a name missing or given twice (two entries of one name were one segment holding
    the customers of both), a key the macro does not read (a misspelt `any:` or a `none:`
    group was ignored: the segment held everyone its `all` matched), a condition without a
    column of customer_features (the database's error pointed at the SQL of another entry),
    without an op, or without the value its op compares with. -#}
{% macro check_rule_segments(segments) -%}
    {%- set columns = feature_columns() -%}
    {%- set operators = ['=', '!=', '>', '>=', '<', '<=', 'is_null', 'not_null'] -%}
    {%- set names = [] -%}
    {%- for segment in segments -%}
        {%- if segment is not mapping -%}
            {{ exceptions.raise_compiler_error(
                "vars.rule_segments[" ~ loop.index0 ~ "] in dbt_project.yml: an entry is a mapping "
                ~ "(name, description, all, any), got " ~ segment
            ) }}
        {%- endif -%}
        {%- set name = segment.get('name') -%}
        {%- set entry = "rule segment " ~ (name or '?') ~ " (vars.rule_segments[" ~ loop.index0
            ~ "] in dbt_project.yml)" -%}
        {%- if not (name is string and name | trim) -%}
            {{ exceptions.raise_compiler_error(entry ~ ": no name") }}
        {%- endif -%}
        {%- if name in names -%}
            {{ exceptions.raise_compiler_error(
                entry ~ ": the name is given twice (also vars.rule_segments["
                ~ names.index(name) ~ "]); a segment is one entry"
            ) }}
        {%- endif -%}
        {%- do names.append(name) -%}
        {%- for key in segment if key not in ['name', 'description', 'all', 'any'] -%}
            {{ exceptions.raise_compiler_error(
                entry ~ ": unknown key " ~ key ~ " (keys: name, description, all, any)"
            ) }}
        {%- endfor -%}
        {%- for group in ['all', 'any'] if group in segment -%}
            {%- set conditions = segment[group] -%}
            {%- if conditions is string or conditions is mapping or conditions is not iterable -%}
                {{ exceptions.raise_compiler_error(
                    entry ~ ": " ~ group ~ " is a list of conditions {column, op, value}"
                ) }}
            {%- endif -%}
            {%- for condition in conditions -%}
                {%- set at = entry ~ ": " ~ group ~ "[" ~ loop.index0 ~ "]" -%}
                {%- if condition is not mapping -%}
                    {{ exceptions.raise_compiler_error(
                        at ~ ": a condition is {column, op, value}, got " ~ condition
                    ) }}
                {%- endif -%}
                {%- for key in condition if key not in ['column', 'op', 'value'] -%}
                    {{ exceptions.raise_compiler_error(
                        at ~ ": unknown key " ~ key ~ " (keys: column, op, value)"
                    ) }}
                {%- endfor -%}
                {%- if condition.get('column') not in columns -%}
                    {{ exceptions.raise_compiler_error(
                        at ~ ": column " ~ condition.get('column') ~ " is not a column of "
                        ~ "customer_features (columns: " ~ columns | join(', ') ~ ")"
                    ) }}
                {%- endif -%}
                {%- if condition.get('op') not in operators -%}
                    {{ exceptions.raise_compiler_error(
                        at ~ ": unknown op " ~ condition.get('op') ~ " (ops: "
                        ~ operators | join(' ') ~ ")"
                    ) }}
                {%- endif -%}
                {%- if condition['op'] not in ['is_null', 'not_null'] and condition.get('value') is none -%}
                    {{ exceptions.raise_compiler_error(
                        at ~ ": op " ~ condition['op'] ~ " needs a value (is_null or not_null "
                        ~ "test for a missing one)"
                    ) }}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endmacro %}
