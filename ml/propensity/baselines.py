"""The two rules a marketer would use instead of a model.

* ``baseline_recency`` (RFM heuristic): rank by days since the last purchase (purchase model)
  or since the last purchase or visit (churn model); ties broken by lifetime order count.
* ``baseline_bgnbd``: a BG/NBD "buy till you die" model (Fader, Hardie & Lee 2005) fitted by
  maximum likelihood with scipy on the frequency/recency/age summary of each snapshot, scored
  as the expected number of purchases in the next H days.

Simplification (documented in docs/propensity.md): the customer's "birth" is
``first_seen_at`` (first event or signup) rather than the first purchase, and every purchase
counts (``x = order_count``, ``t_x`` = days from birth to the last purchase, ``T`` =
``tenure_days``). This keeps customers who never bought in the same model instead of
dropping them, which the purchase model has to score anyway. The summary uses nothing after
the snapshot date, so fitting on the scored snapshot itself leaks nothing.

Baseline raw scores are rankings, not probabilities: rank metrics (AUC, AP, lift, capture)
use them as they are; Brier and the calibration table use the score mapped to a probability
by isotonic regression fitted on the validation window, as the model's calibration is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SCORERS = ("baseline_recency", "baseline_bgnbd")
BGNBD_MAX_FIT_ROWS = 20_000


def recency_score(frame: pd.DataFrame, model: str) -> np.ndarray:
    """Higher = more likely to buy (purchase) or to leave (churn)."""
    recency = frame["recency_days"].to_numpy(dtype=float)
    orders = frame["order_count"].fillna(0).to_numpy(dtype=float)
    never = 1e6
    if model == "purchase":
        days = np.where(np.isnan(recency), never, recency)
        return -days + orders / (1.0 + orders) * 0.5
    visit = frame["days_since_last_visit"].to_numpy(dtype=float)
    days = np.fmin(
        np.where(np.isnan(recency), never, recency), np.where(np.isnan(visit), never, visit)
    )
    return days - orders / (1.0 + orders) * 0.5


def rfm_summary(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in days from a feature snapshot, with birth = first_seen_at."""
    x = frame["order_count"].fillna(0).to_numpy(dtype=float)
    age = frame["tenure_days"].fillna(0).to_numpy(dtype=float)
    first_seen = pd.to_datetime(frame["first_seen_at"])
    last_order = pd.to_datetime(frame["last_order_at"])
    t_x = ((last_order - first_seen).dt.total_seconds() / 86400.0).to_numpy(dtype=float)
    t_x = np.where(np.isnan(t_x) | (x == 0), 0.0, np.clip(t_x, 0.0, None))
    # Age counts the as-of day itself, so a customer born today has T = 1 (never 0).
    big_t = np.maximum(np.maximum(age, t_x), 0.0) + 1.0
    t_x = np.minimum(t_x, big_t)
    return x, t_x, big_t


@dataclass
class BGNBD:
    r: float = 1.0
    alpha: float = 1.0
    a: float = 1.0
    b: float = 1.0
    converged: bool = False

    @staticmethod
    def _loglik(
        log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        from scipy.special import betaln, gammaln

        r, alpha, a, b = np.exp(log_params)
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
        term1 = betaln(a, b + x) - (r + x) * np.log(alpha + big_t)
        with np.errstate(invalid="ignore", divide="ignore"):
            term2 = np.where(
                x > 0,
                betaln(a + 1.0, np.maximum(b + x - 1.0, 1e-12)) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return common + np.logaddexp(term1, term2)

    def fit(
        self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, random_state: int = 0
    ) -> BGNBD:
        from scipy.optimize import minimize

        if len(x) > BGNBD_MAX_FIT_ROWS:
            idx = np.random.default_rng(random_state).choice(
                len(x), BGNBD_MAX_FIT_ROWS, replace=False
            )
            x, t_x, big_t = x[idx], t_x[idx], big_t[idx]

        def objective(p: np.ndarray) -> float:
            value = -np.mean(self._loglik(p, x, t_x, big_t))
            return float(value) if np.isfinite(value) else 1e12

        start = np.log([1.0, max(float(np.mean(big_t)), 1.0), 2.0, 2.0])
        # a > 1 keeps the expected-purchases formula finite.
        bounds = [(-8.0, 8.0), (-8.0, 12.0), (np.log(1.001), 8.0), (-8.0, 8.0)]
        result = minimize(objective, start, method="L-BFGS-B", bounds=bounds)
        self.r, self.alpha, self.a, self.b = (float(v) for v in np.exp(result.x))
        self.converged = bool(result.success)
        return self

    def expected_purchases(
        self, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T]."""
        from scipy.special import hyp2f1

        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(all="ignore"):
            z = t / (alpha + big_t + t)
            hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z)
            numerator = (
                (a + b + x - 1.0)
                / (a - 1.0)
                * (1.0 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp)
            )
            denominator = 1.0 + np.where(
                x > 0,
                a / np.maximum(b + x - 1.0, 1e-12) * ((alpha + big_t) / (alpha + t_x)) ** (r + x),
                0.0,
            )
            expected = numerator / denominator
        # Numerical trouble (extreme parameters) falls back to the naive rate x / T * t.
        naive = x / big_t * t
        return np.where(np.isfinite(expected) & (expected >= 0), expected, naive)


def fit_bgnbd(frame: pd.DataFrame, random_state: int = 0) -> BGNBD:
    """Fit the BG/NBD parameters on one snapshot's (x, t_x, T) summary (no labels used)."""
    return BGNBD().fit(*rfm_summary(frame), random_state=random_state)


def bgnbd_score(frame: pd.DataFrame, model: str, horizon_days: int, fitted: BGNBD) -> np.ndarray:
    """Expected purchases in the next H days (purchase), or its negative (churn)."""
    expected = fitted.expected_purchases(float(horizon_days), *rfm_summary(frame))
    return expected if model == "purchase" else -expected


def baseline_scores(
    frame: pd.DataFrame, model: str, horizon_days: int, fitted: BGNBD
) -> dict[str, np.ndarray]:
    """Raw scores of both baselines; ``fitted`` BG/NBD parameters come from an earlier window
    (or the same snapshot: the summary holds nothing after the snapshot date)."""
    return {
        "baseline_recency": recency_score(frame, model),
        "baseline_bgnbd": bgnbd_score(frame, model, horizon_days, fitted),
    }
