{#- Fails on every row whose `column_name` is zero or negative (nulls pass: not_null checks
    them). -#}
{% test positive(model, column_name) %}

    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} <= 0

{% endtest %}
