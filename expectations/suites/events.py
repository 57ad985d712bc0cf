"""GX suite for landing events (``events/dt=*/``): what quarantines a record, what only warns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from expectations.suites import id_expectations
from segmint.config import IngestSettings
from segmint.ingest.contract import (
    ALLOWED_EVENT_TYPES,
    COUNTRY_CODES,
    INTEGER_MAX,
    MIN_TIMESTAMP,
    MONEY_MAX,
    looked_for,
    timestamp_words,
)

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

SUITE_NAME = "segmint_events"
# Column holding the latest acceptable event_ts of each row: the end of its partition day plus
# the configured tolerance (filled in by the loader).
TS_LIMIT = "event_ts_limit"


def build_suite(settings: IngestSettings) -> ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    def rec(rule: str, description: str, **meta: str) -> dict:
        return {"meta": {"rule": rule, "level": "record", **meta}, "description": description}

    def warn(rule: str, field: str, description: str) -> dict:
        return {
            "meta": {"rule": rule, "level": "warning", "field": field},
            "description": description,
        }

    def missing(*fields: str) -> str:
        """`` (looked for ...)``: the names of ``fields`` with ``field_aliases``."""
        return looked_for("events", settings.field_aliases, *fields)

    purchase = {"row_condition": 'event_type == "purchase"', "condition_parser": "pandas"}
    refund = {"row_condition": 'event_type == "refund"', "condition_parser": "pandas"}

    def given(text_column: str) -> dict:
        return {"row_condition": f"{text_column}.notnull()", "condition_parser": "pandas"}

    def number(field: str) -> dict:
        """Rows where ``field`` is a finite number (``<field>_number``); the text comes first
        so that the reason quotes it."""
        return {
            "row_condition": f"{field}_text.notnull() and {field}_number.notnull()",
            "condition_parser": "pandas",
        }

    expectations = [
        # Required fields.
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_id",
            **rec("event_id_present", "missing required field event_id" + missing("event_id")),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_type",
            **rec(
                "event_type_present", "missing required field event_type" + missing("event_type")
            ),
        ),
        *id_expectations(),
        # {"customer_id": "anon", "customer_id": "c7"}: which one is meant is anybody's guess
        # (DuckDB reads the first, Python and JavaScript the last); the loader lists such keys.
        gxe.ExpectColumnValuesToBeNull(
            column="_keys_repeated",
            **rec(
                "keys_unique",
                "a field is given twice in the record (JSON readers disagree on which value "
                "counts)",
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_ts_text",
            **rec("event_ts_present", "missing required field event_ts" + missing("event_ts")),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="event_type",
            value_set=list(ALLOWED_EVENT_TYPES),
            **rec("event_type_known", "unknown event_type"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_ts",
            **given("event_ts_text"),
            **rec(
                "event_ts_parseable",
                f"event_ts is not {timestamp_words(settings.epoch_timestamp_unit)}",
            ),
        ),
        # A placeholder date (1970-01-01, 0001-01-01, ...) is no real time: see MIN_TIMESTAMP.
        gxe.ExpectColumnValuesToBeBetween(
            column="event_ts",
            min_value=MIN_TIMESTAMP["event_ts"],
            **given("event_ts_text"),
            **rec(
                "event_ts_not_too_old",
                f"event_ts is before {MIN_TIMESTAMP['event_ts']:%Y-%m-%d}",
            ),
        ),
        # Conditioned on the text only so that the reason quotes the value as it arrived.
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="event_ts_limit",
            column_B="event_ts",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            **given("event_ts_text"),
            **rec(
                "event_ts_not_future",
                "event_ts is in the future (after the end of the partition day "
                f"+ {settings.future_tolerance_hours:g} h)",
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="revenue_number",
            **given("revenue_text"),
            **rec("revenue_numeric", "revenue is not a number"),
        ),
        # A number DECIMAL(18, 2) cannot hold (1e20) is no "not a number".
        gxe.ExpectColumnValuesToNotBeNull(
            column="revenue",
            **number("revenue"),
            **rec("revenue_in_range", f"revenue is out of range (beyond ±{MONEY_MAX})"),
        ),
        # A refund's negative amount was read as its absolute value (the loader's parse_sql).
        gxe.ExpectColumnValuesToBeBetween(
            column="revenue", min_value=0, **rec("revenue_non_negative", "revenue is negative")
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="order_id",
            **purchase,
            **rec("purchase_has_order_id", "purchase without order_id" + missing("order_id")),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="revenue_text",
            **purchase,
            **rec("purchase_has_revenue", "purchase without revenue" + missing("revenue")),
        ),
        # A refund applies to its order: without the order or the amount it says nothing.
        gxe.ExpectColumnValuesToNotBeNull(
            column="order_id",
            **refund,
            **rec("refund_has_order_id", "refund without order_id" + missing("order_id")),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="revenue_text",
            **refund,
            **rec("refund_has_revenue", "refund without revenue" + missing("revenue")),
        ),
        # Each row without identity is quarantined; the share per partition is judged by the
        # partition suite (expectations/suites/partitions.py) at the quality gate.
        gxe.ExpectColumnValuesToNotBeNull(
            column="identity",
            **rec(
                "has_identity",
                "no identity: customer_id and anonymous_id are both missing"
                + missing("customer_id", "anonymous_id"),
            ),
        ),
        # Optional fields: a bad value is nulled, the record kept.
        gxe.ExpectColumnValuesToNotBeNull(
            column="price_number",
            **given("price_text"),
            **warn("price_numeric", "price", "price is not a number"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="price",
            **number("price"),
            **warn("price_in_range", "price", f"price is out of range (beyond ±{MONEY_MAX})"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="price", min_value=0, **warn("price_non_negative", "price", "price is negative")
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="quantity",
            row_condition="quantity_text.notnull() and quantity_out_of_range.isnull()",
            condition_parser="pandas",
            **warn("quantity_integer", "quantity", "quantity is not a whole number"),
        ),
        # 3000000000 is whole, but beyond the INTEGER column (the loader gives such a value's
        # text in quantity_out_of_range).
        gxe.ExpectColumnValuesToBeNull(
            column="quantity_out_of_range",
            **warn(
                "quantity_in_range",
                "quantity",
                f"quantity is out of range (beyond ±{INTEGER_MAX:,})",
            ),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="quantity",
            min_value=0,
            **warn("quantity_non_negative", "quantity", "quantity is negative"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="time_on_page_s",
            **given("time_on_page_s_text"),
            **warn("time_on_page_numeric", "time_on_page_s", "time_on_page_s is not a number"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="time_on_page_s",
            min_value=0,
            **warn("time_on_page_non_negative", "time_on_page_s", "time_on_page_s is negative"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="scroll_depth",
            **given("scroll_depth_text"),
            **warn("scroll_depth_numeric", "scroll_depth", "scroll_depth is not a number"),
        ),
        # A share (0-1) or a percentage (0-100): both conventions are common.
        gxe.ExpectColumnValuesToBeBetween(
            column="scroll_depth",
            min_value=0,
            max_value=100,
            **warn("scroll_depth_in_range", "scroll_depth", "scroll_depth is outside 0-100"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="country",
            value_set=sorted(COUNTRY_CODES),
            **warn("country_known", "country", "country is not an ISO 3166 alpha-2 code"),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="currency",
            regex=r"\A[A-Z]{3}\Z",
            **warn("currency_code", "currency", "currency is not an ISO 4217 code"),
        ),
    ]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)
