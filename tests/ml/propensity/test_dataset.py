"""Point-in-time training rows: label windows, eligibility, and no leakage after a cut-off."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.propensity import dataset
from segmint.warehouse import connect
from tests.ml.propensity.simshop import AS_OF, build_snapshots, snapshot_dates, write_activity

CUTOFF = date(2026, 5, 1)
H = 30


def _activity(rows: list[tuple[str, date, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "activity_date", "sessions", "orders"])
    for column in (
        "page_views",
        "product_views",
        "searches",
        "cart_adds",
        "email_opens",
        "email_clicks",
        "mobile_sessions",
    ):
        frame[column] = 0
    frame["revenue"] = frame["orders"] * 10.0
    frame["session_duration_s"] = frame["sessions"] * 60.0
    return frame[
        [
            "customer_id",
            "activity_date",
            "sessions",
            "page_views",
            "product_views",
            "searches",
            "cart_adds",
            "orders",
            "revenue",
            "email_opens",
            "email_clicks",
            "session_duration_s",
            "mobile_sessions",
        ]
    ]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """Hand-made customers around one cut-off, each probing one boundary."""
    d = CUTOFF
    rows = [
        ("a_orders_on_cutoff_day", d - timedelta(days=10), 1, 0),
        ("a_orders_on_cutoff_day", d, 1, 1),  # feature, not label
        ("b_orders_day_after", d - timedelta(days=5), 1, 1),
        ("b_orders_day_after", d + timedelta(days=1), 1, 1),  # label
        ("c_orders_last_day", d - timedelta(days=5), 1, 0),
        ("c_orders_last_day", d + timedelta(days=H), 0, 1),  # label (window end inclusive)
        ("d_orders_too_late", d - timedelta(days=5), 1, 0),
        ("d_orders_too_late", d + timedelta(days=H + 1), 1, 1),  # outside the window
        ("e_visits_only", d - timedelta(days=89), 1, 0),  # active: visit 89 days ago
        ("e_visits_only", d + timedelta(days=3), 1, 0),  # visit, no order: not churned
        ("f_lapsed", d - timedelta(days=90), 1, 1),  # 90 days ago: outside lookback
        ("g_new_after_cutoff", d + timedelta(days=2), 1, 1),  # unknown at the cut-off
    ]
    wh = tmp_path / "w.duckdb"
    write_activity(wh, _activity(rows))
    build_snapshots(wh, [CUTOFF])
    return wh


def test_label_window_is_after_cutoff_through_horizon_inclusive(tiny: Path) -> None:
    spec = dataset.feature_spec(tiny)
    frame = dataset.training_frame(tiny, "purchase", CUTOFF, H, spec).set_index("customer_id")
    assert frame["label"].to_dict() == {
        "a_orders_on_cutoff_day": 0,
        "b_orders_day_after": 1,
        "c_orders_last_day": 1,
        "d_orders_too_late": 0,
        "e_visits_only": 0,
        "f_lapsed": 0,
    }
    # The cut-off day's order is a feature: counted in the snapshot, not in the label.
    assert frame.loc["a_orders_on_cutoff_day", "order_count"] == 1
    assert frame.loc["a_orders_on_cutoff_day", "recency_days"] == 0


def test_churn_rows_are_active_customers_only(tiny: Path) -> None:
    spec = dataset.feature_spec(tiny)
    frame = dataset.training_frame(tiny, "churn", CUTOFF, H, spec, lookback_days=90)
    labels = frame.set_index("customer_id")["label"].to_dict()
    # f_lapsed last came 90 days before the cut-off: outside (cutoff - 90, cutoff].
    assert "f_lapsed" not in labels
    assert "g_new_after_cutoff" not in labels
    assert labels["e_visits_only"] == 0  # visited in the window: not churned
    assert labels["a_orders_on_cutoff_day"] == 1  # nothing after the cut-off: churned
    assert labels["d_orders_too_late"] == 1  # came back only after the horizon
    assert labels["b_orders_day_after"] == 0


def test_scoring_frame_has_no_label_and_same_eligibility(tiny: Path) -> None:
    spec = dataset.feature_spec(tiny)
    frame = dataset.scoring_frame(tiny, "churn", CUTOFF, spec, lookback_days=90)
    assert "label" not in frame.columns
    assert set(frame["customer_id"]) == {
        "a_orders_on_cutoff_day",
        "b_orders_day_after",
        "c_orders_last_day",
        "d_orders_too_late",
        "e_visits_only",
    }


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


def _rebuild_after(warehouse: Path, sql: str) -> None:
    """Change the activity, then recompute every snapshot from it (as dbt would)."""
    con = connect(warehouse)
    try:
        con.execute(sql)
    finally:
        con.close()
    build_snapshots(warehouse, snapshot_dates(AS_OF))


@pytest.mark.parametrize("model", ["purchase", "churn"])
def test_changing_events_after_a_cutoff_leaves_its_training_rows_alone(
    sim_warehouse: Path, tmp_path: Path, model: str
) -> None:
    cutoff = AS_OF - timedelta(days=2 * H)
    label_end = cutoff + timedelta(days=H)
    spec = dataset.feature_spec(sim_warehouse)
    before = dataset.training_frame(sim_warehouse, model, cutoff, H, spec)
    features = [c for c in before.columns if c != "label"]
    assert len(before) > 1000 and before["label"].nunique() == 2

    # 1. Delete everything after the label window: the rows are identical, labels included.
    deleted = _copy(sim_warehouse, tmp_path / "deleted.duckdb")
    _rebuild_after(
        deleted,
        f"delete from marts.customer_daily_activity where activity_date > '{label_end}'",
    )
    after = dataset.training_frame(deleted, model, cutoff, H, spec)
    pd.testing.assert_frame_equal(before, after)

    # 2. Shift every event after the cut-off by 11 days (some leave the label window, some
    #    days become empty): the features are identical; only labels may move.
    shifted = _copy(sim_warehouse, tmp_path / "shifted.duckdb")
    _rebuild_after(
        shifted,
        "update marts.customer_daily_activity set activity_date = activity_date + 11 "
        f"where activity_date > '{cutoff}'",
    )
    after = dataset.training_frame(shifted, model, cutoff, H, spec)
    pd.testing.assert_frame_equal(before[features], after[features])
    assert not before["label"].equals(after["label"])  # the change did reach the labels

    # 3. Delete everything after the cut-off: same features, and no positive purchase label.
    emptied = _copy(sim_warehouse, tmp_path / "emptied.duckdb")
    _rebuild_after(
        emptied,
        f"delete from marts.customer_daily_activity where activity_date > '{cutoff}'",
    )
    after = dataset.training_frame(emptied, model, cutoff, H, spec)
    pd.testing.assert_frame_equal(before[features], after[features])
    expected = 0 if model == "purchase" else 1
    assert (after["label"] == expected).all()


def test_usable_cutoffs_need_a_snapshot_and_enough_history() -> None:
    c1, c2, c3 = date(2026, 6, 1), date(2026, 5, 2), date(2026, 4, 2)
    hist = dataset.History(
        first_activity=date(2026, 4, 1),
        last_activity=date(2026, 7, 1),
        snapshots={c1: 10, c2: 10, c3: 10},
    )
    assert dataset.usable_cutoffs(hist, [c1, c2, c3], min_history_days=14) == [c1, c2]
    hist = dataset.History(date(2026, 1, 1), date(2026, 7, 1), {c1: 10, c3: 10})
    assert dataset.usable_cutoffs(hist, [c1, c2, c3], min_history_days=14) == [c1, c3]
