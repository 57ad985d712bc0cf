-- The features of every known customer for the run's as-of date: the snapshot of
-- customer_feature_history for var('as_of_date').
select
    {{ feature_columns() | join(",\n    ") }}
from {{ ref('customer_feature_history') }}
where as_of_date = {{ as_of_date() }}
