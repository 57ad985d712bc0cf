"""Names of the export formats, in a module without heavy imports: the definitions check
``exports:`` against them, the exporter writes them and the CLI offers them in ``--help``.
See :mod:`segmint.audiences.export` for what each file holds."""

from __future__ import annotations

# Hashed customer lists for ad platforms: they also need ads consent.
AD_PLATFORM_FORMATS = ("google_customer_match", "meta_custom_audience")
# Contact-import CSVs of e-mail platforms (ESPs): clear-text addresses, need e-mail consent.
ESP_FORMATS = ("mailchimp", "klaviyo", "braze")
EXPORT_FORMATS = ("csv", "parquet", *AD_PLATFORM_FORMATS, *ESP_FORMATS, "diff")
