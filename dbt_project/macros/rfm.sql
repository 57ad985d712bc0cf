{#- RFM score 1-5 (5 best) of `value` among the rows of a partition: the share of rows
    strictly worse decides the quintile, so equal values always get equal scores
    (deterministic, whatever the row order). `higher_is_better` false for recency. -#}
{% macro rfm_quintile(value, partition_by, higher_is_better=true) -%}
    cast(
        1 + floor(
            5.0 * (
                rank() over (
                    partition by {{ partition_by }}
                    order by {{ value }} {{ 'asc' if higher_is_better else 'desc' }}
                ) - 1
            ) / count(*) over (partition by {{ partition_by }})
        )
        as integer
    )
{%- endmacro %}
