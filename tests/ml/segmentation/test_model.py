import dataclasses
from datetime import date

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ml.segmentation.model import PreviousRun, SegmentationOutput, fit_segments
from ml.segmentation.synthetic import customer_features, next_day
from segmint.config import SegmentationSettings


def previous_from(out: SegmentationOutput, as_of: date) -> PreviousRun:
    active = out.profiles[out.profiles["status"] != "retired"]
    return PreviousRun(
        as_of_date=as_of,
        run_id="prev",
        segments=active[["segment_id", "segment_name", "description", "centroid"]],
        assignments=out.assignments[["customer_id", "segment_id", "segment_name"]],
        reference=out.metrics["feature_reference"],
    )


def test_recovers_the_latent_types_of_synthetic_customers(
    features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date
) -> None:
    out = fit_segments(features_3k, small_settings, as_of)
    ari = adjusted_rand_score(features_3k["latent_type"], out.assignments["segment_id"])
    assert ari >= 0.6
    assert out.metrics["k"] == len(out.profiles)
    assert sorted(out.profiles["segment_id"]) == list(range(1, out.metrics["k"] + 1))
    # Ids are handed out largest segment first.
    assert out.profiles.sort_values("segment_id")["customers"].is_monotonic_decreasing


def test_outliers_are_the_farthest_quantile(
    features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date
) -> None:
    out = fit_segments(features_3k, small_settings, as_of)
    a = out.assignments
    assert abs(a["is_outlier"].mean() - (1 - small_settings.outlier_quantile)) < 0.002
    for _, seg in a.groupby("segment_id"):  # the farthest of each segment
        if seg["is_outlier"].any():
            far, near = seg.loc[seg["is_outlier"], "distance"], seg.loc[~seg["is_outlier"]]
            assert far.min() > near["distance"].max()
    assert out.profiles["outliers"].sum() == a["is_outlier"].sum()


def test_same_input_same_output(
    features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date
) -> None:
    a = fit_segments(features_3k, small_settings, as_of)
    b = fit_segments(features_3k.copy(), small_settings, as_of)
    pd.testing.assert_frame_equal(a.assignments, b.assignments)
    pd.testing.assert_frame_equal(a.profiles, b.profiles)


def test_next_day_keeps_ids_names_and_customers(
    features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date
) -> None:
    day1 = fit_segments(features_3k, small_settings, as_of)
    day2 = fit_segments(
        next_day(features_3k), small_settings, date(2026, 7, 1), previous_from(day1, as_of), 99
    )
    assert set(day2.profiles["segment_id"]) == set(day1.profiles["segment_id"])
    assert (day2.profiles["status"] == "kept").all()
    names = lambda out: dict(zip(out.profiles.segment_id, out.profiles.segment_name, strict=True))  # noqa: E731
    assert names(day2) == names(day1)
    same = (day1.assignments["segment_id"] == day2.assignments["segment_id"]).mean()
    assert same >= 0.95
    shifts = day2.drift[day2.drift["kind"] == "centroid_shift"]
    assert len(shifts) == len(day2.profiles)
    assert (shifts["value"] < small_settings.match_max_distance).all()
    psi = day2.drift[day2.drift["kind"] == "feature_psi"]
    assert len(psi) == len(day1.metrics["feature_reference"])


def test_a_new_type_of_customer_gets_a_new_segment_and_a_vanished_one_is_retired(
    small_settings: SegmentationSettings, as_of: date
) -> None:
    cfg = dataclasses.replace(small_settings, fixed_k=4)
    # Day 1 without new customers; day 2 without lapsing customers but with new ones.
    day1_frame = customer_features(3000, as_of, seed=5, shares=(0.25, 0.25, 0.25, 0.0, 0.25))
    day2_frame = customer_features(3000, as_of, seed=5, shares=(0.25, 0.25, 0.25, 0.25, 0.0))
    day1 = fit_segments(day1_frame, cfg, as_of)
    day2 = fit_segments(day2_frame, cfg, date(2026, 7, 1), previous_from(day1, as_of), 5)
    status = day2.profiles.set_index("segment_id")["status"]
    assert (status == "new").sum() >= 1 and (status == "retired").sum() >= 1
    assert 5 in status.index and status.loc[5] == "new"
    retired = status[status == "retired"].index
    assert all(any(f"segment {sid} " in w for w in day2.warnings) for sid in retired)
    assert day2.metrics["segments_retired"] == sorted(retired)
    assert not set(retired) & set(day2.assignments["segment_id"])


def test_pinned_names_from_settings(
    features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date
) -> None:
    cfg = dataclasses.replace(small_settings, pinned_names={"1": "Our best"})
    out = fit_segments(features_3k, cfg, as_of)
    first = out.profiles.set_index("segment_id").loc[1]
    assert first["segment_name"] == "Our best" and first["is_pinned"]
    assert set(out.assignments.loc[out.assignments.segment_id == 1, "segment_name"]) == {"Our best"}


def test_fixed_k(features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date):
    out = fit_segments(features_3k, dataclasses.replace(small_settings, fixed_k=3), as_of)
    assert out.metrics["k"] == 3 and len(np.unique(out.assignments["segment_id"])) == 3
    assert len(out.k_selection) == small_settings.k_max - small_settings.k_min + 1


def test_fixed_k_beyond_the_distinct_profiles_is_capped_with_a_warning(
    features_3k: pd.DataFrame, small_settings: SegmentationSettings, as_of: date
):
    """A shop's first nights: 40 customers with 3 distinct profiles and `fixed_k = 6` failed
    the night (and with it scores, audiences, publishing). Now: 3 segments, and a warning."""
    few = features_3k.head(40).copy()
    numeric = few.select_dtypes("number").columns
    few[numeric] = few[numeric].iloc[[0, 1, 2] * 13 + [0]].to_numpy()
    out = fit_segments(few, dataclasses.replace(small_settings, fixed_k=6), as_of)
    assert out.metrics["k"] == 3
    assert out.assignments["segment_id"].nunique() == 3
    assert "fixed_k=6 capped at 3: 40 customer(s) with 3 distinct profile(s)" in out.warnings[0]
    alike = few.assign(**{c: few[c].iloc[0] for c in numeric})
    one = fit_segments(alike, dataclasses.replace(small_settings, fixed_k=6), as_of)
    assert one.metrics["k"] == 1
    assert "one segment: fixed_k=6 capped at 1" in one.warnings[0]
