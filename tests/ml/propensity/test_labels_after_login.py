"""The labels count a visitor's anonymous days in the window for the first customer linked to
the anonymous id by the window's end (docs/propensity.md, "Point-in-time training sets").

Seven customers are known from day 1 (a logged-in visit each); the cut-off is day 2 and the
label window ``(day 2, day 5]``. On day 3 guest orders and anonymous visits happen on phones
their owners link later: Ann logs in on day 4 (inside the window), Cleo on day 7 (after it);
Dan logs in on day 4 on a phone Eve identifies on day 5 (a shared device: the first link is
Dan's); Fay's phone is identified on day 5 (the window's last day), Gus's on day 6. Through
the real ingest and ``dbt build``: once as of day 5 (the window just ended) and again as of
day 8 (every login loaded), which must give the same labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.propensity import dataset
from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.dbt.warehouse_data import settings_in
from tests.include.ingest.conftest import write_jsonl

DAY_1 = date(2026, 6, 1)
NIGHTS = [DAY_1 + timedelta(days=n) for n in range(8)]
CUTOFF, H = NIGHTS[1], 3
WINDOW_END = NIGHTS[4]
CUSTOMERS = ("ann", "bob", "cleo", "dan", "eve", "fay", "gus")
PURCHASE = {
    "ann": 1,  # guest order on day 3, logged in on day 4
    "bob": 1,
    "cleo": 0,  # logged in on day 7, after the window
    "dan": 1,  # the phone's first linked customer
    "eve": 0,  # the phone's second: its history before Dan's login is not hers
    "fay": 0,
    "gus": 0,
}
CHURN = {
    "ann": 0,
    "bob": 0,
    "cleo": 1,
    "dan": 0,
    "eve": 1,  # identify calls are no visits
    "fay": 0,  # browsed on day 3, identified on day 5 (the window's last day)
    "gus": 1,  # identified on day 6, the day after the window
}


def _event(eid: str, day: int, kind: str, **fields: object) -> dict:
    at = f"{DAY_1 + timedelta(days=day - 1)}T{fields.pop('hhmm', '12:00')}:00Z"
    return {"event_id": eid, "event_type": kind, "event_ts": at, **fields}


def _guest_order(eid: str, phone: str) -> dict:
    return _event(eid, 3, "purchase", hhmm="09:00", anonymous_id=phone, order_id=f"o-{phone}",
                  revenue=50.0, currency="USD")  # fmt: skip


def _events() -> dict[int, list[dict]]:
    days: dict[int, list[dict]] = {n: [] for n in range(1, len(NIGHTS) + 1)}
    days[1] = [
        _event(f"{c}-1", 1, "page_view", hhmm="08:00", customer_id=c, page_type="home")
        for c in CUSTOMERS
    ]
    days[3] = [
        _guest_order("a1", "phone-a"),
        _guest_order("c1", "phone-c"),
        _guest_order("d1", "phone-d"),
        _event("f1", 3, "page_view", anonymous_id="phone-f", page_type="home"),
        _event("g1", 3, "page_view", anonymous_id="phone-g", page_type="home"),
    ]
    days[4] = [
        _event("a2", 4, "login", hhmm="18:00", customer_id="ann", anonymous_id="phone-a"),
        _event("d2", 4, "login", hhmm="17:00", customer_id="dan", anonymous_id="phone-d"),
        # Bob buys logged in: a purchase attributed at the time
        _event("b1", 4, "purchase", customer_id="bob", order_id="o-bob", revenue=20.0,
               currency="USD"),
    ]  # fmt: skip
    # identify calls link without a visit (no session of their own)
    days[5] = [
        _event("e1", 5, "identify", hhmm="18:00", customer_id="eve", anonymous_id="phone-d"),
        _event("f2", 5, "identify", hhmm="18:00", customer_id="fay", anonymous_id="phone-f"),
    ]
    days[6] = [_event("g2", 6, "identify", customer_id="gus", anonymous_id="phone-g")]
    days[7] = [_event("c2", 7, "login", customer_id="cleo", anonymous_id="phone-c")]
    days[8] = [_event("b8", 8, "page_view", customer_id="bob", page_type="home")]
    return days


def _labels(warehouse: Path) -> pd.DataFrame:
    spec = dataset.feature_spec(warehouse)
    frame = dataset.labelled_frame(warehouse, CUTOFF, H, spec)
    return frame[["customer_id", "label_purchase", "label_churn", "is_active"]]


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    settings = settings_in(tmp_path_factory.mktemp("shop"), f"[propensity]\nhorizon_days = {H}\n")
    for night, events in zip(NIGHTS, _events().values(), strict=True):
        write_jsonl(settings.landing / "events" / f"dt={night}" / "events.jsonl", events)
    out = {}
    for night in NIGHTS:
        run_ingest(settings, night)
        if night in (WINDOW_END, NIGHTS[-1]):
            run_transform(settings, night)
            out[night] = _labels(settings.warehouse)
    out["warehouse"] = settings.warehouse
    yield out


def test_anonymous_days_count_when_the_first_login_is_by_the_window_end(labels: dict) -> None:
    frame = labels[WINDOW_END].set_index("customer_id")
    assert frame["is_active"].all()
    assert frame["label_purchase"].to_dict() == PURCHASE
    assert frame["label_churn"].to_dict() == CHURN


def test_a_training_set_built_after_later_logins_gives_the_same_labels(labels: dict) -> None:
    pd.testing.assert_frame_equal(labels[NIGHTS[-1]], labels[WINDOW_END])


def test_each_models_training_rows_take_the_labels(labels: dict) -> None:
    warehouse = labels["warehouse"]
    spec = dataset.feature_spec(warehouse)
    for model, expected in (("purchase", PURCHASE), ("churn", CHURN)):
        rows = dataset.training_frame(warehouse, model, CUTOFF, H, spec)
        assert rows.set_index("customer_id")["label"].to_dict() == expected
