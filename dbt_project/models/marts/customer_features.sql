{{ config(materialized='view') }}

-- The features of every known customer for the run's as-of date: the snapshot of
-- customer_feature_history for var('as_of_date'). A view: the snapshot is written once, in
-- the history, whose enforced contract holds the not-null columns; the as-of date is fixed
-- when the view is built, so readers see the night's snapshot until the next night.
select
    {{ feature_columns() | join(",\n    ") }}
from {{ ref('customer_feature_history') }}
where as_of_date = {{ as_of_date() }}
