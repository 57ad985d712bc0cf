{#- Money in the reporting currency. Events carry amounts in the currency they were paid in
    (`currency`; absent means the reporting currency). int_events_sessionised converts
    revenue and price of every other currency at the rate of its UTC event day, from the source
    currency_rates (the row with the latest valid_from on or before the day); the rate it
    used is kept in fx_rate, so int_event_dates_changed rebuilds the days whose rate changed
    since (a rate added, revised, or another reporting currency). -#}

{#- The reporting currency (ISO 4217, upper case): the var reporting_currency when given, else
    the environment variable SEGMINT_REPORTING_CURRENCY that segmint.transform sets from
    `[transform] reporting_currency`, else USD. Read at run time only (see vars.sql). -#}
{% macro reporting_currency() -%}
    {%- set value = var('reporting_currency', none)
        or (env_var('SEGMINT_REPORTING_CURRENCY', '') if execute else '')
        or 'USD' -%}
    {%- set value = value | string | trim | upper -%}
    {%- if not modules.re.fullmatch('[A-Z]{3}', value) -%}
        {{ exceptions.raise_compiler_error(
            "reporting currency " ~ value ~ " is not a three-letter ISO 4217 code"
        ) }}
    {%- endif -%}
    {{- value -}}
{%- endmacro %}

{#- One row per (currency, rate_date) of `pairs` (a select of those two columns; currencies
    other than the reporting one) with the rate into the reporting currency: the rate of the
    currency_rates row with the latest valid_from on or before the day, null when there is
    none. Models calling it declare `-- depends_on: source('segmint', 'currency_rates')`. -#}
{% macro currency_rates_on(pairs) -%}
    with

    pairs as (

        {{ pairs }}

    ),

    rates as (

        select
            currency_code as currency,
            valid_from,
            rate
        from {{ source('segmint', 'currency_rates') }}
        where to_currency = '{{ reporting_currency() }}'

    ),

    latest as (

        select
            pairs.currency,
            pairs.rate_date,
            max(rates.valid_from) as valid_from
        from pairs
        left join rates
            on
                pairs.currency = rates.currency
                and rates.valid_from <= pairs.rate_date
        group by pairs.currency, pairs.rate_date

    )

    select
        latest.currency,
        latest.rate_date,
        rates.rate
    from latest
    left join rates using (currency, valid_from)
{%- endmacro %}

{#- The currency to convert an event's amounts from: its currency when it carries an amount
    (revenue or price) in a currency other than the reporting one; null otherwise (no amount,
    no currency = the reporting currency, or the reporting currency). A join on this key
    matches nothing for amounts that need no converting. -#}
{% macro amount_currency_to_convert(revenue_column, price_column, currency_column) -%}
    case
        when
            ({{ revenue_column }} is not null or {{ price_column }} is not null)
            and {{ currency_column }} <> '{{ reporting_currency() }}'
            then {{ currency_column }}
    end
{%- endmacro %}
