{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='fail',
        pre_hook="{{ create_snapshot_dates_pending() }}",
        post_hook="{{ clear_snapshot_dates_pending() }}",
    )
}}

{%- do check_rule_segments(var('rule_segments')) -%}

{%- set snapshot_list -%}
    {%- for d in snapshot_dates() %}{{ date_literal(d) }}{{ ", " if not loop.last }}{% endfor -%}
{%- endset %}

-- Rule-based segments, long format: one row per customer, as-of date and segment the
-- customer is in. The segments are the entries of var('rule_segments'), compiled by the
-- macro rule_segment_condition: a new segment is a YAML entry, not new SQL. Built for the
-- snapshots customer_feature_history (re)built in this run (recorded by its pre-hook in
-- int_snapshot_dates_built), the ones it built in an earlier run killed or failed before
-- this model (int_snapshot_dates_pending), and any snapshot date of the run still missing
-- here (every snapshot in a full build).
with

features as (

    select
        {{ feature_columns() | join(",\n        ") }}
    from {{ ref('customer_feature_history') }}
    {% if is_incremental() -%}
        where
            as_of_date in (select built.as_of_date from {{ snapshot_dates_built_relation() }} as built)
            or as_of_date in (
                select pending.as_of_date from {{ snapshot_dates_pending_relation() }} as pending
            )
            or (
                as_of_date in ({{ snapshot_list }})
                and as_of_date not in (select segments.as_of_date from {{ this }} as segments)
            )
    {%- endif %}

),

segments as (

    {% for segment in var('rule_segments') -%}
        select
            customer_id,
            as_of_date,
            '{{ segment["name"] }}' as segment
        from features
        where {{ rule_segment_condition(segment) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select
    customer_id,
    as_of_date,
    segment
from segments
