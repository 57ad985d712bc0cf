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
            "country": pd.array(["US", "XX", None, None], dtype="string"),
        }
    )
    for name in ("price", "quantity", "time_on_page_s", "scroll_depth"):
        frame[name] = pd.array([None] * 4, dtype="Float64")
        frame[f"{name}_text"] = pd.array([None] * 4, dtype="string")
    frame["price_number"] = pd.array([None] * 4, dtype="Float64")
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
    assert lines("country_known") == [(0, 2)]
    assert results["country_known"].level == "warning"
    assert lines("price_numeric") == []
    assert lines("revenue_in_range") == []
