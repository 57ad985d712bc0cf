"""Holdout metrics, deciles and score drift, as long-format rows for ``ml.model_metrics``."""

from __future__ import annotations

import numpy as np
import pandas as pd

N_DECILES = 10


def deciles(scores: np.ndarray) -> np.ndarray:
    """Deciles 1..10, 10 = highest scores: ``1 + floor(10 * share of customers scoring lower)``.

    Equal scores share a decile, so ``decile >= k`` never splits customers with the same score
    and never holds more than ``(11 - k) * 10%`` of them. Without ties the deciles are equal
    sized; a score shared by many customers (a crowd of CRM records that never visited nor
    ordered, an isotonic calibration plateau) lands in the decile where its lowest rank falls,
    and the deciles its block spans beyond that stay empty.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lower = np.searchsorted(np.sort(scores), scores, side="left")
    return lower * N_DECILES // n + 1


def summary_metrics(y: np.ndarray, rank_score: np.ndarray, probability: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, rank_score)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, rank_score))
        if both
        else float("nan"),
        "brier": float(brier_score_loss(y, np.clip(probability, 0.0, 1.0))),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "rows": float(len(y)),
        "positives": float(y.sum()),
    }


def decile_table(y: np.ndarray, rank_score: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    """Per decile (10 = top): rows, observed rate, mean predicted, lift, cumulative capture.

    The deciles are those of :func:`deciles` (tied scores together), so each row is what an
    audience on that decile would have held; a decile left empty by ties has 0 rows and no
    rate or lift.
    """
    y = np.asarray(y, dtype=float)
    frame = pd.DataFrame(
        {"decile": deciles(rank_score), "y": y, "p": np.asarray(probability, dtype=float)}
    )
    table = frame.groupby("decile").agg(
        rows=("y", "size"), positives=("y", "sum"), mean_predicted=("p", "mean")
    )
    table = table.reindex(range(1, N_DECILES + 1), fill_value=0).sort_index(ascending=False)
    base = y.mean() if len(y) else float("nan")
    total = y.sum()
    table["observed_rate"] = table["positives"] / table["rows"].where(table["rows"] > 0)
    table["lift"] = table["observed_rate"] / base if base > 0 else np.nan
    table["capture"] = table["positives"].cumsum() / total if total > 0 else np.nan
    return table.reset_index()


def metric_rows(
    y: np.ndarray,
    rank_score: np.ndarray,
    probability: np.ndarray,
    scorer: str,
) -> tuple[dict, list[dict]]:
    """Summary metrics and the long-format rows (summary + per-decile) for one scorer."""
    summary = summary_metrics(y, rank_score, probability)
    table = decile_table(y, rank_score, probability)
    observed = table["observed_rate"].to_numpy(dtype=float)
    predicted = table["mean_predicted"].to_numpy(dtype=float)
    weights = table["rows"].to_numpy(dtype=float)
    mask = weights > 0
    summary["calibration_max_abs_error"] = (
        float(np.max(np.abs(observed[mask] - predicted[mask]))) if mask.any() else float("nan")
    )
    summary["calibration_ece"] = (
        float(np.sum(weights[mask] * np.abs(observed[mask] - predicted[mask])) / weights.sum())
        if mask.any()
        else float("nan")
    )
    # The top decile is the highest one holding customers: a block of equal top scores over
    # 10% of the holdout leaves decile 10 empty (ties share a decile), and its lift was null
    # beside "0 rows, 0 positives" (the 80-customer shop's purchase model: its 11 top-scored
    # holdout customers, 8 of them buyers, lift 3.3, sat in decile 9), read as a top decile
    # that found nobody; the report named decile 9 the top already. ``top_decile``: which.
    held = table[table["rows"] > 0]
    top = held.iloc[0] if len(held) else table.iloc[0]
    summary["top_decile"] = float(top["decile"])
    summary["top_decile_lift"] = float(top["lift"])
    # The customers behind it: on a small shop a handful (6 of 68 for the recency rule on
    # an 80-customer shop, one buyer more or less moves its lift by 0.8), unsaid before.
    summary["top_decile_rows"] = float(top["rows"])
    summary["top_decile_positives"] = float(top["positives"])
    rows = [{"scorer": scorer, "metric": k, "value": v, "decile": None} for k, v in summary.items()]
    for record in table.to_dict("records"):
        for metric, column in (
            ("decile_rows", "rows"),
            ("decile_observed_rate", "observed_rate"),
            ("decile_mean_predicted", "mean_predicted"),
            ("lift", "lift"),
            ("capture", "capture"),
        ):
            rows.append(
                {
                    "scorer": scorer,
                    "metric": metric,
                    "value": float(record[column]),
                    "decile": int(record["decile"]),
                }
            )
    return summary, rows


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = N_DECILES) -> tuple[float, list]:
    """Population stability index of ``actual`` against ``expected`` (bins from its quantiles)."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e_counts = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1)
    a_counts = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1)
    eps = 1e-6
    e_share = np.maximum(e_counts / max(len(expected), 1), eps)
    a_share = np.maximum(a_counts / max(len(actual), 1), eps)
    value = float(np.sum((a_share - e_share) * np.log(a_share / e_share)))
    detail = [
        {
            "upper_edge": float(edges[i]) if i < len(edges) else None,
            "previous_share": float(e_share[i]),
            "current_share": float(a_share[i]),
        }
        for i in range(len(e_share))
    ]
    return value, detail


def delong_p_value(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> float:
    """One-sided p-value that ``score_a`` ranks better than ``score_b`` on the same rows
    (DeLong, DeLong & Clarke-Pearson 1988, in Sun & Xu's 2014 midrank form): how often two
    equally good scorers would show an ROC-AUC gap at least this large in ``a``'s favour.

    The two AUCs share their rows, so their errors are correlated: the test uses the
    covariance of each positive's and each negative's contribution to both. NaN when ``y``
    holds one class only.
    """
    from scipy.stats import norm, rankdata

    y = np.asarray(y, dtype=int)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m == 0 or n == 0:
        return float("nan")
    placements_pos, placements_neg, aucs = [], [], []
    for score in (np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)):
        x, z = score[pos], score[neg]
        both = rankdata(np.concatenate([x, z]))
        # Share of negatives below each positive, of positives above each negative (ties 1/2).
        v_pos = (both[:m] - rankdata(x)) / n
        v_neg = 1.0 - (both[m:] - rankdata(z)) / m
        placements_pos.append(v_pos)
        placements_neg.append(v_neg)
        aucs.append(float(v_pos.mean()))
    s_pos = np.cov(np.vstack(placements_pos)) if m > 1 else np.zeros((2, 2))
    s_neg = np.cov(np.vstack(placements_neg)) if n > 1 else np.zeros((2, 2))
    cov = s_pos / m + s_neg / n
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    difference = aucs[0] - aucs[1]
    if variance <= 1e-15:  # the same ranking (or one class ordering both perfectly)
        return 0.0 if difference > 1e-12 else 1.0
    return float(norm.sf(difference / np.sqrt(variance)))
