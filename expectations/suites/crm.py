"""GX suite for CRM customer records (``crm/dt=*/``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from expectations.suites import id_expectations
from segmint.config import IngestSettings
from segmint.ingest.contract import (
    COUNTRY_CODES,
    DATE_RANGE,
    MIN_TIMESTAMP,
    UNICODE_SPACE,
    looked_for,
    timestamp_words,
)

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

SUITE_NAME = "segmint_crm"
TS_LIMIT = "updated_at_limit"
# Deliberately simple: one @, no white space, a dot in the domain, a 2+ letter top-level
# domain. White space is spelled out (UNICODE_SPACE: a non-breaking space is white space to
# GX's Python regex and must be to DuckDB's RE2, the SQL pre-filter's), and the end is \Z
# (Python's $ also matches before a final newline); segmint.validation.re2_regex checks both.
EMAIL_REGEX = rf"\A[^@{UNICODE_SPACE}]+@[^@{UNICODE_SPACE}]+\.[a-z]{{2,}}\Z"


def build_suite(settings: IngestSettings) -> ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    def rec(rule: str, description: str) -> dict:
        return {"meta": {"rule": rule, "level": "record"}, "description": description}

    def warn(rule: str, field: str, description: str) -> dict:
        return {
            "meta": {"rule": rule, "level": "warning", "field": field},
            "description": description,
        }

    def plausible_date(field: str):
        low, high = DATE_RANGE[field]
        return gxe.ExpectColumnValuesToBeBetween(
            column=field,
            min_value=low,
            max_value=high,
            **warn(
                f"{field}_plausible",
                field,
                f"{field} is before {low:%Y-%m-%d} or after {high:%Y-%m-%d} "
                "(a placeholder such as 0001-01-01, not a date)",
            ),
        )

    def given(text_column: str) -> dict:
        return {"row_condition": f"{text_column}.notnull()", "condition_parser": "pandas"}

    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id",
            **rec(
                "customer_id_present",
                "missing required field customer_id"
                + looked_for("crm", settings.field_aliases, "customer_id"),
            ),
        ),
        *id_expectations(),
        gxe.ExpectColumnValuesToNotBeNull(
            column="updated_at_text",
            **rec(
                "updated_at_present",
                "missing required field updated_at"
                + looked_for("crm", settings.field_aliases, "updated_at"),
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="updated_at",
            **given("updated_at_text"),
            **rec(
                "updated_at_parseable",
                f"updated_at is not {timestamp_words(settings.epoch_timestamp_unit)}",
            ),
        ),
        # A placeholder date (1970-01-01, 0001-01-01, ...) is no real time: see MIN_TIMESTAMP.
        gxe.ExpectColumnValuesToBeBetween(
            column="updated_at",
            min_value=MIN_TIMESTAMP["updated_at"],
            **given("updated_at_text"),
            **rec(
                "updated_at_not_too_old",
                f"updated_at is before {MIN_TIMESTAMP['updated_at']:%Y-%m-%d}",
            ),
        ),
        # Conditioned on the text only so that the reason quotes the value as it arrived.
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="updated_at_limit",
            column_B="updated_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            **given("updated_at_text"),
            **rec(
                "updated_at_not_future",
                "updated_at is in the future (after the end of the partition day "
                f"+ {settings.future_tolerance_hours:g} h)",
            ),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="email", regex=EMAIL_REGEX, **warn("email_valid", "email", "email is not valid")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="country",
            value_set=sorted(COUNTRY_CODES),
            **warn("country_known", "country", "country is not an ISO 3166 alpha-2 code"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="birth_date",
            **given("birth_date_text"),
            **warn("birth_date_valid", "birth_date", "birth_date is not a date"),
        ),
        plausible_date("birth_date"),
        gxe.ExpectColumnValuesToNotBeNull(
            column="signup_date",
            **given("signup_date_text"),
            **warn("signup_date_valid", "signup_date", "signup_date is not a date"),
        ),
        plausible_date("signup_date"),
        gxe.ExpectColumnValuesToNotBeNull(
            column="email_opt_in",
            **given("email_opt_in_text"),
            **warn(
                "email_opt_in_valid",
                "email_opt_in",
                "email_opt_in is not true/false (read as false; other words: "
                "[ingest] true_values, false_values)",
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="ads_opt_in",
            **given("ads_opt_in_text"),
            **warn(
                "ads_opt_in_valid",
                "ads_opt_in",
                "ads_opt_in is not true/false (read as false; other words: "
                "[ingest] true_values, false_values)",
            ),
        ),
    ]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)
