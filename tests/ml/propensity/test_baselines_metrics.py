"""BG/NBD and recency baselines, deciles, lift/capture and PSI on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.propensity import baselines
from ml.propensity import metrics as m


def _simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, span: float, seed: int):
    """Customers following the BG/NBD story for ``span`` days: (x, t_x, T)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    # Event by event, vectorised over customers (a loop over purchases, not over rows).
    for _ in range(200):
        gap = rng.exponential(1.0 / lam)
        nxt = t + gap
        buys = alive & (nxt <= span)
        x = np.where(buys, x + 1, x)
        t_x = np.where(buys, nxt, t_x)
        t = np.where(buys, nxt, t)
        alive = buys & (rng.random(n) >= p)
        if not alive.any():
            break
    return x, t_x, np.full(n, span)


def test_bgnbd_recovers_its_parameters_roughly() -> None:
    x, t_x, big_t = _simulate_bgnbd(20_000, r=0.8, alpha=20.0, a=1.5, b=4.0, span=180, seed=1)
    fitted = baselines.BGNBD().fit(x, t_x, big_t)
    assert fitted.converged
    # The population purchase rate r/alpha is well identified; a, b less so.
    assert fitted.r / fitted.alpha == pytest.approx(0.8 / 20.0, rel=0.25)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(1.5 / 5.5, abs=0.12)


def test_bgnbd_expected_purchases_behave() -> None:
    model = baselines.BGNBD(r=0.8, alpha=20.0, a=1.5, b=4.0)
    x = np.array([0.0, 5.0, 5.0, 10.0])
    t_x = np.array([0.0, 170.0, 30.0, 175.0])
    big_t = np.full(4, 180.0)
    e = model.expected_purchases(30.0, x, t_x, big_t)
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    assert e[1] > e[0]  # more purchases, recently: more expected
    assert e[1] > e[2]  # same count but long silent: probably gone
    assert e[3] > e[1]
    assert model.expected_purchases(60.0, x, t_x, big_t)[1] > e[1]


def test_rfm_summary_uses_first_seen_as_birth() -> None:
    frame = pd.DataFrame(
        {
            "order_count": [0, 3],
            "tenure_days": [10, 100],
            "first_seen_at": pd.to_datetime(["2026-06-20", "2026-03-22"]),
            "last_order_at": pd.to_datetime([None, "2026-06-10"]),
        }
    )
    x, t_x, big_t = baselines.rfm_summary(frame)
    assert x.tolist() == [0, 3]
    assert t_x.tolist() == [0, 80]
    assert big_t.tolist() == [11, 101]


def test_recency_baseline_orders_customers_sensibly() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [1.0, 50.0, np.nan, 50.0],
            "order_count": [1.0, 1.0, 0.0, 5.0],
            "days_since_last_visit": [1.0, 2.0, 3.0, 80.0],
        }
    )
    purchase = baselines.recency_score(frame, "purchase")
    assert purchase[0] > purchase[3] > purchase[1] > purchase[2]
    churn = baselines.recency_score(frame, "churn")
    # Churn risk follows the latest of purchase and visit.
    assert churn[3] > churn[2] > churn[1] > churn[0]


def test_deciles_are_equal_sized_and_ten_is_the_top() -> None:
    scores = np.linspace(0, 1, 100)[np.random.default_rng(0).permutation(100)]
    d = m.deciles(scores)
    assert np.bincount(d)[1:].tolist() == [10] * 10
    assert d[np.argmax(scores)] == 10 and d[np.argmin(scores)] == 1


def test_equal_scores_share_a_decile_and_a_threshold_never_splits_them() -> None:
    # 95 distinct scores and 5 more of 0.5: the six customers scoring 0.5 (ranks 47-52) were
    # split between deciles 5 and 6 by their customer_id.
    scores = np.r_[np.linspace(0, 1, 95), np.full(5, 0.5)]
    d = m.deciles(scores)
    assert set(d[scores == 0.5]) == {5}
    assert np.bincount(d, minlength=11)[1:].tolist() == [10, 10, 10, 10, 13, 7, 10, 10, 10, 10]
    # A crowd of one score, 80% of the customers: all in decile 1, deciles 2-8 empty, and the
    # 20 others in the deciles their rank gives.
    crowd = np.r_[np.full(80, 0.002), np.linspace(0.1, 0.9, 20)]
    d = m.deciles(crowd)
    assert np.bincount(d, minlength=11)[1:].tolist() == [80, 0, 0, 0, 0, 0, 0, 0, 10, 10]
    # A top block of 15% cannot be "the top 10%": it goes to decile 9, decile 10 is empty.
    top = np.r_[np.linspace(0, 0.5, 85), np.full(15, 0.9)]
    assert set(m.deciles(top)[85:]) == {9} and 10 not in m.deciles(top)


def test_decile_table_lift_and_capture() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(10_000)
    y = (rng.random(10_000) < p).astype(int)
    table = m.decile_table(y, p, p)
    assert table["decile"].tolist() == list(range(10, 0, -1))
    assert table["capture"].is_monotonic_increasing
    assert table["capture"].iloc[-1] == pytest.approx(1.0)
    assert table["lift"].iloc[0] == pytest.approx(0.95 / 0.5, rel=0.08)
    assert (table["mean_predicted"] - table["observed_rate"]).abs().max() < 0.05
    summary, rows = m.metric_rows(y, p, p, "model")
    assert summary["roc_auc"] > 0.7 and summary["brier"] < 0.2
    assert {r["metric"] for r in rows} >= {"roc_auc", "lift", "capture", "decile_mean_predicted"}
    # The customers the top decile's lift rests on, stored beside it.
    assert summary["top_decile_rows"] == 1000
    assert summary["top_decile_positives"] == table["positives"].iloc[0]
    assert summary["top_decile_lift"] == pytest.approx(
        summary["top_decile_positives"] / 1000 / y.mean()
    )


def test_the_top_decile_is_the_highest_holding_customers_when_ties_empty_decile_ten() -> None:
    """80-customer shop: the purchase model gave its 11 top holdout customers (16%; here 20
    of 100) one score, decile 10 was empty and ``top_decile_lift`` null beside
    ``top_decile_rows`` 0 and ``top_decile_positives`` 0, a top decile that found nobody.
    The top decile is now the highest one holding customers (decile 9 there), and
    ``top_decile`` says which."""
    scores = np.r_[np.linspace(0.0, 0.5, 80), np.full(20, 0.9)]
    y = np.r_[np.zeros(70), np.ones(10), np.ones(8), np.zeros(12)].astype(int)
    summary, rows = m.metric_rows(y, scores, scores, "model")
    assert summary["top_decile"] == 9
    assert summary["top_decile_rows"] == 20 and summary["top_decile_positives"] == 8
    assert summary["top_decile_lift"] == pytest.approx((8 / 20) / (18 / 100))
    by_decile = {r["decile"]: r["value"] for r in rows if r["metric"] == "lift"}
    assert summary["top_decile_lift"] == pytest.approx(by_decile[9])
    assert np.isnan(by_decile[10])  # the decile row itself stays empty
    # Without ties the top decile is decile 10, as before; one score for all: decile 1.
    assert (
        m.metric_rows(y, np.arange(100.0), np.arange(100.0) / 100, "model")[0]["top_decile"] == 10
    )
    flat, _ = m.metric_rows(y, np.full(100, 0.2), np.full(100, 0.2), "model")
    assert flat["top_decile"] == 1 and flat["top_decile_lift"] == pytest.approx(1.0)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.beta(2, 5, 50_000), rng.beta(2, 5, 50_000)
    assert m.psi(a, b)[0] < 0.01
    value, bins = m.psi(a, np.clip(a + 0.2, 0, 1))
    assert value > 0.25
    assert sum(x["previous_share"] for x in bins) == pytest.approx(1.0, abs=1e-3)


def test_delong_p_value_matches_a_paired_bootstrap_and_is_one_sided() -> None:
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    better = y + rng.normal(0, 1.0, 300)
    worse = y + rng.normal(0, 1.5, 300)
    p_value = m.delong_p_value(y, better, worse)
    gap = roc_auc_score(y, better) - roc_auc_score(y, worse)
    # The standard error DeLong implies equals a paired bootstrap's (same rows, both scorers).
    draws = rng.integers(0, 300, (1000, 300))
    boot = [roc_auc_score(y[i], better[i]) - roc_auc_score(y[i], worse[i]) for i in draws]
    assert gap / norm.isf(p_value) == pytest.approx(np.std(boot), rel=0.1)
    assert m.delong_p_value(y, worse, better) == pytest.approx(1 - p_value)
    # Ties (a rule's plateaus), the same ranking, one class only.
    assert 0 < m.delong_p_value(y, better, np.round(worse)) < 1
    assert m.delong_p_value(y, better, better * 2) == 1.0
    assert np.isnan(m.delong_p_value(np.ones(5), better[:5], worse[:5]))
