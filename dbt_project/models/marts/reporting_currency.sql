{{ config(materialized='table') }}

-- The currency every amount of the marts is in (one row): what `[transform]
-- reporting_currency` was when the marts were last built. Readers (the report, analysts)
-- take it from here rather than from a setting that may have changed since.
select cast('{{ reporting_currency() }}' as {{ dbt.type_string() }}) as currency_code
