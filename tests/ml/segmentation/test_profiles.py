import json

import numpy as np
import pandas as pd
import pytest

from ml.segmentation.profiles import (
    bin_shares,
    psi,
    psi_noise_limit,
    reference_distribution,
    segment_profiles,
    segment_transitions,
)


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_count": [1.0, 3.0, 100.0, 0.0, 0.0],
            "recency_days": [5.0, 7.0, 1.0, None, None],
            "favourite_category": ["books", "books", "toys", "toys", None],
            "email_opt_in": [True, False, True, True, False],
            "ads_opt_in": [False, False, False, True, True],
        }
    )


def test_profiles_leave_outliers_out_of_means_but_count_them() -> None:
    frame = _customers()
    seg = np.array([1, 1, 1, 2, 2])
    out = segment_profiles(
        frame, seg, np.array([False, False, True, False, False]), ["order_count", "recency_days"]
    ).set_index("segment_id")
    assert out.loc[1, "customers"] == 3 and out.loc[1, "outliers"] == 1
    assert out.loc[1, "mean_order_count"] == 2.0
    assert out.loc[1, "median_recency_days"] == 6.0
    assert np.isnan(out.loc[2, "mean_recency_days"])
    assert out["share"].tolist() == [0.6, 0.4]
    assert out.loc[1, "email_opt_in_share"] == 2 / 3
    assert json.loads(out.loc[1, "top_categories"]) == [{"category": "books", "share": 1.0}]
    assert json.loads(out.loc[2, "top_categories"])[0]["category"] == "toys"


def test_transitions_count_moves_arrivals_and_departures() -> None:
    prev = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "segment_id": [1, 1, 2], "segment_name": ["X", "X", "Y"]}
    )
    cur = pd.DataFrame(
        {"customer_id": ["a", "b", "d"], "segment_id": [1, 2, 2], "segment_name": ["X", "Y", "Y"]}
    )
    out = segment_transitions(prev, cur)
    pairs = {
        (None if pd.isna(f) else int(f), None if pd.isna(t) else int(t)): n
        for f, t, n in zip(out.from_segment_id, out.to_segment_id, out.customers, strict=True)
    }
    assert pairs == {(1, 1): 1, (1, 2): 1, (2, None): 1, (None, 2): 1}


def test_first_run_transitions_are_all_arrivals() -> None:
    cur = pd.DataFrame({"customer_id": ["a", "b"], "segment_id": [1, 1], "segment_name": "X"})
    out = segment_transitions(None, cur)
    assert out["customers"].tolist() == [2] and out["from_segment_id"].isna().all()


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000)
    ref = reference_distribution(pd.DataFrame({"x": x}))["x"]
    assert len(ref["edges"]) == 9 and abs(sum(ref["shares"]) - 1) < 1e-9
    assert psi(ref, x) == 0.0
    assert psi(ref, rng.normal(size=20_000)) < 0.01
    assert psi(ref, rng.normal(loc=1.0, size=20_000)) > 0.2


def test_the_psi_noise_limit_is_what_sampling_alone_reaches() -> None:
    """Two samples of 150 customers from one distribution: PSI above 0.2 on a good share of
    nights (a warning for nothing); the limit is above that but below a real shift's PSI,
    and at 20,000 customers it is far below the 0.2 threshold."""
    rng = np.random.default_rng(1)
    values = []
    for _ in range(1000):
        ref = reference_distribution(pd.DataFrame({"x": rng.exponential(10, size=150)}))["x"]
        values.append(psi(ref, rng.exponential(10, size=150)))
    ref = reference_distribution(pd.DataFrame({"x": rng.exponential(10, size=150)}))["x"]
    limit = psi_noise_limit(ref, rng.exponential(10, size=150), 150)
    assert np.mean(np.asarray(values) > 0.2) > 0.05
    assert np.mean(np.asarray(values) > limit) < 0.005
    assert 0.3 < limit < 0.45
    assert psi(ref, rng.exponential(10, size=150) + 15) > limit
    big = reference_distribution(pd.DataFrame({"x": rng.exponential(10, size=20_000)}))["x"]
    assert psi_noise_limit(big, rng.exponential(10, size=20_000), 20_000) < 0.01


def test_bins_collapse_on_heavy_ties() -> None:
    x = np.array([0.0] * 90 + [1.0] * 10)
    ref = reference_distribution(pd.DataFrame({"x": x}))["x"]
    assert ref["edges"] == [0.0]
    assert bin_shares(x, np.array(ref["edges"])).tolist() == [0.9, 0.1, 0.0]


def test_missing_values_have_a_bin_of_their_own() -> None:
    rng = np.random.default_rng(1)
    x = np.where(rng.random(10_000) < 0.6, np.nan, rng.exponential(20, 10_000))
    ref = reference_distribution(pd.DataFrame({"x": x}))["x"]
    assert ref["shares"][-1] == pytest.approx(np.isnan(x).mean())
    assert psi(ref, x) == 0.0
    fewer_missing = np.where(np.isnan(x) & (rng.random(10_000) < 0.5), 5.0, x)
    assert psi(ref, fewer_missing) > 0.2
