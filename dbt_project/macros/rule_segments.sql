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
