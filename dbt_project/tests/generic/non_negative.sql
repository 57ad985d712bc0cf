{#- Fails on every row whose `column_name` is negative (nulls pass: not_null checks them). -#}
{% test non_negative(model, column_name) %}

    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < 0

{% endtest %}
