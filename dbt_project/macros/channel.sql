{#- Marketing channel of an event from its UTM tags and referrer. -#}
{% macro channel(utm_source, utm_medium, referrer) -%}
    case
        when {{ utm_medium }} in ('cpc', 'ppc', 'paid', 'paid_search', 'paidsearch', 'sem') then 'paid_search'
        when {{ utm_medium }} in ('email', 'e-mail', 'newsletter', 'crm') then 'email'
        when {{ utm_medium }} in ('social', 'paid_social', 'social_paid', 'paidsocial') then 'social'
        when {{ utm_medium }} in ('display', 'banner', 'cpm') then 'display'
        when {{ utm_medium }} in ('affiliate', 'partner') then 'affiliate'
        when {{ utm_medium }} = 'organic' then 'organic_search'
        when {{ utm_medium }} is not null then 'other'
        when {{ referrer }} is null then 'direct'
        else 'referral'
    end
{%- endmacro %}
