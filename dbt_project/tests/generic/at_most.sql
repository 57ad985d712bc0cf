{#- Fails on every row whose `column_name` is greater than its column `other` (rows with a
    null in either pass). -#}
{% test at_most(model, column_name, other) %}

    select {{ column_name }}, {{ other }}
    from {{ model }}
    where {{ column_name }} > {{ other }}

{% endtest %}
