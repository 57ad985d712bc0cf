{#- Event types that are no visit to the site, as a SQL list: e-mail events happen in the
    mailbox, a tracker's identify call only says which customer an anonymous id belongs to
    (int_identity_links reads it), and a refund is money a shop's back end paid back (orders
    and refunds read it). They belong to no session. -#}
{% macro non_visit_event_types() -%}
    'email_open', 'email_click', 'identify', 'refund'
{%- endmacro %}
