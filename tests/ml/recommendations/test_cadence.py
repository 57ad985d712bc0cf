"""Train on a cadence, rank nightly: the night after a training night folds in the customers
with new interactions against the registered model's product factors, re-ranks them and the
cold ones, and carries every other customer's list over; a rerun decides the same way."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ml.recommendations import foldin, run_recommendations
from ml.recommendations.stage import registered_before, retrain_reason
from segmint.config import RecommendationSettings, Settings
from tests.ml.recommendations.conftest import AS_OF

NEXT = AS_OF + timedelta(days=1)


def _settings(warehouse: Path, **overrides) -> Settings:
    return Settings(
        warehouse=warehouse,
        recommendations=dataclasses.replace(RecommendationSettings(), **overrides),
    )


def _query(warehouse: Path, sql: str, params=()):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _next_day(warehouse: Path, active: list[str], new_customer: str) -> None:
    """Tonight's features (one customer more); ``active`` customers bought a product."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            "insert into marts.customer_features select customer_id, as_of_date + 1, "
            "favourite_category from marts.customer_features where as_of_date = ?",
            [AS_OF],
        )
        con.execute("insert into marts.customer_features values (?, ?, null)", [new_customer, NEXT])
        # Each active customer buys the product most viewed by others of their list's top.
        con.execute(
            """
            insert into marts.customer_product_daily
            select r.customer_id, r.product_id, d.product_category, cast(? as date),
                3, 1, 1, 10.0, current_timestamp::timestamp
            from ml.recommendations as r
            inner join (
                select product_id, any_value(product_category) as product_category
                from marts.customer_product_daily group by product_id
            ) as d using (product_id)
            where r.as_of_date = ? and r.rank = 1 and r.customer_id in (select unnest(?))
            """,
            [NEXT, AS_OF, active],
        )
    finally:
        con.close()


@pytest.fixture
def two_nights(small_warehouse: Path):
    settings = _settings(small_warehouse)
    first = run_recommendations(settings, AS_OF)
    assert first.details["published"] == "model"
    warm = [
        r[0]
        for r in _query(
            small_warehouse,
            "select customer_id from ml.recommendations where as_of_date = ? and rank = 1 "
            "and source = 'collaborative' order by customer_id limit 30",
            [AS_OF],
        )
    ]
    active, quiet = warm[:20], warm[20:]
    _next_day(small_warehouse, active, "c9999999")
    second = run_recommendations(settings, NEXT)
    return settings, first, second, active, quiet


def test_next_night_reuses_the_model_reranks_only_what_changed(two_nights) -> None:
    settings, first, second, active, quiet = two_nights
    wh = settings.warehouse
    assert second.details["retrained"] is False
    assert second.details["model_version"] == first.details["run_id"]
    assert second.details["previous_lists_as_of"] == AS_OF.isoformat()
    # Every known customer of tonight has N rows, including the new one.
    rows = _query(
        wh,
        "select count(*), count(distinct customer_id), count(distinct run_id), max(rank) "
        "from ml.recommendations where as_of_date = ?",
        [NEXT],
    )[0]
    assert rows == (3001 * 10, 3001, 1, 10)
    assert second.rows_out == 3001 * 10
    assert 20 < second.details["reranked_customers"] < 3001
    # A quiet warm customer keeps yesterday's list exactly.
    for customer in quiet:
        lists = [
            _query(
                wh,
                "select rank, product_id, score, source from ml.recommendations "
                "where customer_id = ? and as_of_date = ? order by rank",
                [customer, day],
            )
            for day in (AS_OF, NEXT)
        ]
        assert lists[0] == lists[1]
    # An active customer's new purchase is not recommended again; the list changed.
    bought = _query(
        wh,
        "select count(*) from ml.recommendations r join marts.customer_product_daily d "
        "using (customer_id, product_id) where d.purchases > 0 and r.as_of_date = ?",
        [NEXT],
    )[0][0]
    assert bought == 0
    for customer in active:
        yesterday_top = _query(
            wh,
            "select product_id from ml.recommendations where customer_id = ? "
            "and as_of_date = ? and rank = 1",
            [customer, AS_OF],
        )[0][0]
        tonight = _query(
            wh,
            "select product_id from ml.recommendations where customer_id = ? and as_of_date = ?",
            [customer, NEXT],
        )
        assert (yesterday_top,) not in tonight and len(tonight) == 10
    run = _query(
        wh,
        "select status, training_rows, params, message from ml.model_runs where as_of_date = ?",
        [NEXT],
    )
    assert len(run) == 1 and run[0][0] == "reused" and run[0][1] == 0
    params = json.loads(run[0][2])
    assert params["model_version"] == first.details["run_id"] and params["model_age_days"] == 1
    assert first.details["run_id"] in run[0][3]
    # The evidence next to tonight's lists is the model's training evaluation.
    metrics = [
        _query(
            wh,
            "select scorer, metric, value from ml.model_metrics where as_of_date = ? order by all",
            [day],
        )
        for day in (AS_OF, NEXT)
    ]
    assert metrics[0] == metrics[1] and metrics[0]


def test_rerun_of_the_next_night_writes_the_same_lists(two_nights) -> None:
    settings, *_ = two_nights
    sql = (
        "select customer_id, rank, product_id, score, source from ml.recommendations "
        "where as_of_date = ? order by all"
    )
    before = _query(settings.warehouse, sql, [NEXT])
    again = run_recommendations(settings, NEXT)
    assert again.details["retrained"] is False
    assert _query(settings.warehouse, sql, [NEXT]) == before


def test_retrain_reasons(small_warehouse: Path) -> None:
    settings = _settings(small_warehouse)
    cfg = settings.recommendations
    assert "no model published before" in retrain_reason(cfg, AS_OF, None)
    run_recommendations(settings, AS_OF)
    assert registered_before(settings, AS_OF) is None  # only earlier nights count
    found = registered_before(settings, NEXT)
    assert found is not None and found.model is not None
    assert retrain_reason(cfg, NEXT, found) is None
    assert "7 days old" in retrain_reason(cfg, AS_OF + timedelta(days=7), found)
    # It read "1 days old (retrain every 1 days)".
    daily = dataclasses.replace(cfg, retrain_every_days=1)
    assert "is 1 day old (retrain every 1 day)" in retrain_reason(daily, NEXT, found)
    every_night = dataclasses.replace(cfg, retrain_every_days=0)
    assert "every night" in retrain_reason(every_night, NEXT, found)
    assert "settings changed" in retrain_reason(dataclasses.replace(cfg, alpha=5.0), NEXT, found)


def test_fold_in_recovers_a_customers_factors() -> None:
    """Folding a customer in against fixed product factors gives what the ALS user step
    gives: the exact solution of their normal equations."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    item = rng.standard_normal((40, 4)).astype(np.float32)
    weights = sp.random(5, 40, density=0.2, random_state=1, format="csr", dtype=np.float32)
    known = np.ones(40, dtype=bool)
    rows = np.arange(5)
    got = foldin.fold_in(weights, rows, item, known, np.zeros((5, 4)), 2.0, 1.0)
    for u in rows:
        c = 1.0 + 2.0 * weights[u].toarray().ravel()
        p = (weights[u].toarray().ravel() > 0).astype(float)
        a = item.T @ (c[:, None] * item) + np.eye(4)
        want = np.linalg.solve(a, item.T @ (c * p))
        np.testing.assert_allclose(got[u], want, rtol=1e-3, atol=1e-4)
    # Products the model does not know are left out of the customer's equations.
    known[:20] = False
    partial = foldin.fold_in(weights, rows, item, known, np.zeros((5, 4)), 2.0, 1.0)
    masked = weights @ sp.diags(known.astype(np.float32))
    again = foldin.fold_in(
        sp.csr_matrix(masked), rows, item, np.ones(40, bool), np.zeros((5, 4)), 2.0, 1.0
    )
    np.testing.assert_allclose(partial, again, rtol=1e-5)


def test_a_late_purchase_of_an_earlier_day_leaves_the_carried_list(small_warehouse) -> None:
    """A purchase delivered late (an event of three days ago in tonight's files) is no
    interaction "after the previous lists' date", but it was loaded since they were built:
    the customer is re-ranked and the product bought is not recommended again."""
    settings = _settings(small_warehouse)
    assert run_recommendations(settings, AS_OF).details["published"] == "model"
    customer, product = _query(
        small_warehouse,
        "select customer_id, product_id from ml.recommendations where as_of_date = ? "
        "and rank = 1 and source = 'collaborative' order by customer_id limit 1",
        [AS_OF],
    )[0]
    _next_day(small_warehouse, [], "c9999999")  # tonight: nobody active on the day itself
    con = duckdb.connect(str(small_warehouse))
    con.execute(
        """insert into marts.customer_product_daily
        select ?, ?, any_value(product_category), cast(? as date), 1, 1, 1, 10.0,
            current_timestamp::timestamp
        from marts.customer_product_daily where product_id = ?""",
        [customer, product, AS_OF - timedelta(days=3), product],
    )
    con.close()
    second = run_recommendations(settings, NEXT)
    assert second.details["retrained"] is False
    tonight = _query(
        small_warehouse,
        "select product_id from ml.recommendations where customer_id = ? and as_of_date = ?",
        [customer, NEXT],
    )
    assert len(tonight) == 10 and (product,) not in tonight


def test_erasure_rewrites_the_saved_model_without_the_customers_rows(small_warehouse) -> None:
    """The model keeps a factor row per customer and is reused for days: an erased
    customer's id and factors must leave it too, and the next night still reuses it."""
    from ml.registry import load_model
    from segmint.audiences.erasure import erase_customers

    settings = _settings(small_warehouse)
    first = run_recommendations(settings, AS_OF)
    run_id = first.details["run_id"]
    before, _ = load_model(settings.artifacts_dir, "recommendations", run_id)
    erased = [str(before["customer_ids"][0]), str(before["customer_ids"][5])]
    result = erase_customers(settings, erased)
    assert result.model_files and result.model_files[0].endswith(f"{run_id}.joblib")
    assert any("saved models rewritten" in line for line in result.lines())
    after, _ = load_model(settings.artifacts_dir, "recommendations", run_id)
    assert not set(erased) & set(after["customer_ids"].tolist())
    assert len(after["customer_ids"]) == len(before["customer_ids"]) - 2
    kept = before["customer_ids"] == after["customer_ids"][2]
    assert np.array_equal(before["user_factors"][kept][0], after["user_factors"][2])
    _next_day(small_warehouse, [], "c9999999")
    second = run_recommendations(settings, NEXT)
    assert second.details["retrained"] is False and second.details["model_version"] == run_id


def test_products_fitted_without_factors_are_unknown_to_the_model() -> None:
    """Products one customer had touched get zero factors when the model is fitted; on the
    nights it is reused they are not collaborative picks (a zero score ranked above every
    negative one), as products the model never saw."""
    model = {
        "product_ids": np.array(["a", "b", "c"]),
        "item_factors": np.array([[1.0, 0.5], [0.0, 0.0], [0.2, -1.0]], dtype=np.float32),
    }
    item, known = foldin.align(model, np.array(["a", "b", "c", "d"], dtype=object))
    assert known.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(item[2], model["item_factors"][2])


def test_a_carried_list_loses_a_product_no_longer_active(small_warehouse) -> None:
    """A product last seen 29 days ago is recommended tonight; tomorrow it has had no
    interaction for [recommendations] active_product_days (30): the customers whose list
    holds it are re-ranked without it, not carried over with it."""
    con = duckdb.connect(str(small_warehouse))
    product = con.execute(
        "select product_id from marts.customer_product_daily where purchases > 0 "
        "group by product_id order by count(distinct customer_id) desc, product_id limit 1"
    ).fetchone()[0]
    newest = con.execute(
        "select max(activity_date) from marts.customer_product_daily where product_id = ?",
        [product],
    ).fetchone()[0]
    shift = 29 - (AS_OF - newest).days  # its newest row: 29 days before AS_OF
    con.execute(
        "update marts.customer_product_daily set activity_date = activity_date - ? "
        "where product_id = ?",
        [shift, product],
    )
    con.close()
    settings = _settings(small_warehouse, active_product_days=30)
    assert run_recommendations(settings, AS_OF).details["published"] == "model"
    listed = "select count(*) from ml.recommendations where as_of_date = ? and product_id = ?"
    assert _query(small_warehouse, listed, [AS_OF, product])[0][0] > 10
    _next_day(small_warehouse, [], "c9999999")
    second = run_recommendations(settings, NEXT)
    assert second.details["retrained"] is False
    assert _query(small_warehouse, listed, [NEXT, product])[0][0] == 0
    rows = _query(
        small_warehouse,
        "select count(*), count(distinct customer_id) from ml.recommendations where as_of_date = ?",
        [NEXT],
    )[0]
    assert rows == (30010, 3001)


def test_a_one_day_window_of_active_products_is_said_in_the_singular() -> None:
    """ "only 2 of 3 products had an interaction in the 1 days up to ..." with
    ``active_product_days = 1``."""
    from types import SimpleNamespace

    from ml.recommendations.stage import inactive_warning

    prep = SimpleNamespace(active=np.array([True, True, False]))
    cfg = dataclasses.replace(RecommendationSettings(), active_product_days=1)
    assert inactive_warning(prep, cfg, AS_OF).startswith(
        f"only 2 of 3 products had an interaction in the 1 day up to {AS_OF} "
    )
