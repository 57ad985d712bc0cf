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

# Placeholders a shop types when a customer has no address (a till that requires one, a
# CRM import filling a blank): valid as text, but nobody's mailbox. Kept, test@test.com was
# hashed for the ad platforms (someone's account: a stranger matched) and noemail@shop.com
# linked every walk-in's record. The local part is compared by its letters and digits,
# trailing digits dropped ("no-email", "no.reply2"); these four as a prefix too
# ("noemail.c000123@shop.com"); "n/a" as written ("na" alone may be someone's: Na is a
# surname).
PLACEHOLDER_LOCAL_PARTS = (
    "noemail", "nomail", "noaddress", "noemailaddress", "noreply", "donotreply", "none",
    "null", "unknown", "invalid", "test", "nobody", "dummy", "fake", "notprovided",
)  # fmt: skip
PLACEHOLDER_PREFIXES = ("noemail", "nomail", "noreply", "donotreply")
# Domains typed as a placeholder (test.de is a real publisher's, so only these .com names),
# and the top-level domains reserved for tests and invalid names (RFC 2606, RFC 6761),
# which no mail reaches.
PLACEHOLDER_DOMAINS = ("none", "noemail", "nomail", "null", "invalid", "unknown", "test")
RESERVED_TOP_LEVEL_DOMAINS = ("test", "invalid", "localhost", "example")


def _placeholder_email_regex() -> str:
    """One regular expression, read alike by Python (GX) and RE2 (DuckDB), matching a
    trimmed, lower-case address valid by EMAIL_REGEX that is a placeholder. Characters other
    than letters and digits may stand anywhere in a placeholder's local part ("no-e.mail")."""
    ws = UNICODE_SPACE
    sep = f"[^a-z0-9@{ws}]*"
    domain = rf"[^@{ws}]+\.[a-z]{{2,}}"

    def spelt(word: str) -> str:
        return sep.join(word)

    words = "|".join(spelt(w) for w in PLACEHOLDER_LOCAL_PARTS)
    prefixes = "|".join(spelt(w) for w in PLACEHOLDER_PREFIXES)
    names = "|".join(PLACEHOLDER_DOMAINS)
    tlds = "|".join(RESERVED_TOP_LEVEL_DOMAINS)
    return "|".join(
        (
            rf"\A{sep}(?:{words}){sep}(?:[0-9]{sep})*@{domain}\Z",
            rf"\A{sep}(?:{prefixes})[^@{ws}]*@{domain}\Z",
            rf"\An[/._-]a@{domain}\Z",
            rf"\A[^@{ws}]+@(?:{names})\.com\Z",
            rf"\A[^@{ws}]+@[^@{ws}]+\.(?:{tlds})\Z",
        )
    )


PLACEHOLDER_EMAIL_REGEX = _placeholder_email_regex()


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
        # A placeholder matches only valid addresses: one warning per bad e-mail, not two.
        gxe.ExpectColumnValuesToNotMatchRegex(
            column="email",
            regex=PLACEHOLDER_EMAIL_REGEX,
            **warn(
                "email_not_placeholder",
                "email",
                "email is a placeholder (noemail@shop.com, test@test.com, n/a@...), nobody's "
                "address",
            ),
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
