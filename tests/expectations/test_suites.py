"""The GX suites as code: well-formed metadata, and the rules they state on small frames."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest

from expectations.suites import SUITE_MODULES
from segmint.config import IngestSettings
from segmint.validation import BatchValidator


@pytest.mark.parametrize("source", sorted(SUITE_MODULES))
def test_every_expectation_says_what_it_decides(source):
    suite = importlib.import_module(SUITE_MODULES[source]).build_suite(IngestSettings())
    rules = [e.meta["rule"] for e in suite.expectations]
    assert len(rules) == len(set(rules)), "rule names must be unique within a suite"
    for e in suite.expectations:
        assert e.meta["level"] in ("record", "warning", "batch")
        assert e.description, e.meta["rule"]
        if e.meta["level"] == "warning":
            assert e.meta["field"], e.meta["rule"]


def test_events_suite_routes_each_failing_row_to_its_rules():
    frame = pd.DataFrame(
        {
            "_file": [0, 0, 0, 1],
            "_line": [1, 2, 3, 1],
            "event_id": pd.array(["a", None, "c", "d"], dtype="string"),
            "event_type": pd.array(["purchase", "page_view", "warp", "page_view"], dtype="string"),
            "event_ts_text": pd.array(["t", "t", "t", "t"], dtype="string"),
            "event_ts": pd.to_datetime(["2026-06-01", "2026-06-01", "2026-06-09", "2026-06-01"]),
            "event_ts_limit": pd.to_datetime(["2026-06-02 06:00"] * 4),
            "revenue_text": pd.array(["-1", None, None, None], dtype="string"),
            "revenue": [-1.0, None, None, None],
            "revenue_number": [-1.0, None, None, None],
            "order_id": pd.array([None, None, None, None], dtype="string"),
            "identity": pd.array(["c", "c", None, "c"], dtype="string"),
            "_id_not_scalar": pd.array([None, None, None, "event_id"], dtype="string"),
            "_id_rounded": pd.array([None, "order_id", None, None], dtype="string"),
            "_id_boolean": pd.array([None, None, "customer_id", None], dtype="string"),
            "_id_control": pd.array([None, "session_id", None, None], dtype="string"),
            "_id_too_long": pd.array([None, None, None, "customer_id"], dtype="string"),
            "_keys_repeated": pd.array(["customer_id", None, None, None], dtype="string"),
            "country": pd.array(["US", "XX", None, None], dtype="string"),
        }
    )
    for name in ("price", "quantity", "time_on_page_s", "scroll_depth"):
        frame[name] = pd.array([None] * 4, dtype="Float64")
        frame[f"{name}_text"] = pd.array([None] * 4, dtype="string")
    frame["price_number"] = pd.array([None] * 4, dtype="Float64")
    frame["quantity_out_of_range"] = pd.array([None, None, None, "3000000000"], dtype="string")
    frame["currency"] = pd.array([None] * 4, dtype="string")
    validator = BatchValidator(IngestSettings())
    assert set(validator.columns("events", list(frame.columns))) == set(frame.columns)
    results = {r.rule: r for r in validator.validate("events", frame, run_name="t")}

    def lines(rule):
        failing = results[rule].failing
        return (
            [] if failing is None else sorted(zip(failing["_file"], failing["_line"], strict=True))
        )

    assert lines("event_id_present") == [(0, 2)]
    assert lines("event_type_known") == [(0, 3)]
    assert lines("event_ts_not_future") == [(0, 3)]
    assert lines("revenue_non_negative") == [(0, 1)]
    assert lines("purchase_has_order_id") == [(0, 1)]
    assert lines("has_identity") == [(0, 3)]
    assert lines("ids_are_scalars") == [(1, 1)]
    assert lines("ids_not_rounded") == [(0, 2)]
    assert lines("ids_not_boolean") == [(0, 3)]
    assert lines("ids_without_control_characters") == [(0, 2)]
    assert lines("ids_not_too_long") == [(1, 1)]
    assert lines("keys_unique") == [(0, 1)]
    assert lines("country_known") == [(0, 2)]
    assert results["country_known"].level == "warning"
    assert lines("price_numeric") == []
    assert lines("quantity_in_range") == [(1, 1)]
    assert lines("quantity_integer") == []
    assert lines("revenue_in_range") == []


def test_an_expectation_gx_cannot_evaluate_stops_the_validation():
    """GX catches an error inside a metric and reports the expectation as not successful with
    no unexpected rows, the error nested per metric in ``exception_info``: the validator read
    only the top level and took a date column GX could not compare for a clean one."""
    from datetime import date

    text = pd.array(["x", "x"], dtype="string")
    frame = pd.DataFrame(
        {
            "_file": [0, 0],
            "_line": [1, 2],
            "customer_id": pd.array(["k1", "k2"], dtype="string"),
            "_id_not_scalar": pd.array([None, None], dtype="string"),
            "_id_rounded": pd.array([None, None], dtype="string"),
            "_id_boolean": pd.array([None, None], dtype="string"),
            "_id_control": pd.array([None, None], dtype="string"),
            "_id_too_long": pd.array([None, None], dtype="string"),
            "updated_at_text": text,
            "updated_at": pd.to_datetime(["2026-05-01", "2026-05-01"]),
            "updated_at_limit": pd.to_datetime(["2026-06-02 06:00"] * 2),
            "email": pd.array([None, None], dtype="string"),
            "country": pd.array([None, None], dtype="string"),
            # Python dates, not timestamps: GX's between cannot compare them with its bounds.
            "birth_date": [date(1, 1, 1), date(1985, 3, 2)],
            "birth_date_text": text,
            "signup_date": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            "signup_date_text": text,
            "email_opt_in": [True, False],
            "email_opt_in_text": text,
            "ads_opt_in": [True, False],
            "ads_opt_in_text": text,
        }
    )
    validator = BatchValidator(IngestSettings())
    assert set(validator.columns("crm", list(frame.columns))) <= set(frame.columns)
    with pytest.raises(RuntimeError, match="GX expectation birth_date_plausible raised"):
        validator.validate("crm", frame, run_name="t")
    # With the dates as the ingest hands them over (timestamps), the placeholder fails.
    frame["birth_date"] = pd.to_datetime(["0001-01-01", "1985-03-02"], format="ISO8601")
    results = {r.rule: r for r in validator.validate("crm", frame, run_name="t")}
    failing = results["birth_date_plausible"].failing
    assert list(zip(failing["_file"], failing["_line"], strict=True)) == [(0, 1)]


def test_gx_info_records_stay_out_of_an_info_log(caplog):
    """A stage run at INFO (an Airflow task, ``segmint -v``) shows its own lines, not GX's
    ("Loading 'datasources' ->", "[]", "Skipping registering function ...")."""
    import logging

    logging.getLogger("great_expectations").setLevel(logging.NOTSET)
    with caplog.at_level(logging.INFO):
        BatchValidator(IngestSettings())  # a GX context, its datasource, suites, definitions
    gx_info = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("great_expectations") and r.levelno < logging.WARNING
    ]
    assert gx_info == []
    assert logging.getLogger("great_expectations").getEffectiveLevel() == logging.WARNING
