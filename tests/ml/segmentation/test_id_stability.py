"""Segment ids survive reruns and backfills: a rerun of a night keeps the ids it had, a
backfill of a night before the oldest one takes the ids the later nights use, and the later
nights' transitions keep naming segments that exist on the night they count from."""

import dataclasses
import json
from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd

from ml.segmentation import run_segmentation
from ml.segmentation.synthetic import next_day
from segmint.config import SegmentationSettings, Settings
from segmint.stages import StageResult
from tests.ml.segmentation.conftest import query


def _day_before(frame: pd.DataFrame) -> pd.DataFrame:
    """The same customers one day earlier: ages one day younger."""
    out = frame.copy()
    out["as_of_date"] = out["as_of_date"] - timedelta(days=1)
    for col in ("tenure_days", "recency_days", "days_since_last_visit"):
        out[col] = (out[col] - 1).clip(lower=0)
    return out


def _segments(settings: Settings, night: date) -> pd.Series:
    """customer_id -> segment_id of one night."""
    rows = query(
        settings,
        "select customer_id, segment_id from ml.customer_segments where as_of_date = ?",
        [night],
    )
    return rows.set_index("customer_id")["segment_id"].sort_index()


def _names(settings: Settings, night: date) -> dict[int, str]:
    rows = query(
        settings,
        "select segment_id, segment_name from ml.segment_profiles "
        "where as_of_date = ? and status <> 'retired'",
        [night],
    )
    return dict(zip(rows["segment_id"], rows["segment_name"], strict=True))


def _transitions_name_existing_ids(settings: Settings, night: date, previous: date) -> None:
    moves = query(settings, "select * from ml.segment_transitions where as_of_date = ?", [night])
    assert set(moves["previous_as_of_date"]) == {pd.Timestamp(previous)}
    assert set(moves["from_segment_id"].dropna()) <= set(_segments(settings, previous))
    assert set(moves["to_segment_id"].dropna()) <= set(_segments(settings, night))
    # The counts are those of the two nights' stored segments.
    pairs = pd.concat(
        [_segments(settings, previous).rename("f"), _segments(settings, night).rename("t")],
        axis=1,
    )
    stay = moves.loc[moves.from_segment_id == moves.to_segment_id, "customers"].sum()
    assert stay == (pairs["f"] == pairs["t"]).sum()


def test_rerun_and_backfill_of_the_oldest_night_keep_segment_ids(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    d0, d1, d2, d3 = (as_of + timedelta(days=i) for i in (-1, 0, 1, 2))
    day1 = features_3k
    day2 = next_day(day1)
    day3 = next_day(day2, seed=2)
    settings = warehouse_with(_day_before(day1), day1, day2, day3, segmentation=small_settings)
    for night in (d1, d2, d3):
        run_segmentation(settings, night)
    ids1, names1 = _segments(settings, d1), _names(settings, d1)
    assert sorted(names1) == list(range(1, len(names1) + 1))
    assert _names(settings, d3) == names1

    # Rerun the oldest night after the later ones: same ids (were fresh ones, 6-10).
    rerun = run_segmentation(settings, d1)
    assert _segments(settings, d1).equals(ids1)
    assert _names(settings, d1) == names1
    assert rerun.details["segments"] == names1
    _transitions_name_existing_ids(settings, d2, d1)

    # Backfill the night before: it takes night 1's ids and names, none is new.
    backfill = run_segmentation(settings, d0)
    assert _names(settings, d0) == names1
    assert (_segments(settings, d0) == ids1).mean() >= 0.95
    metrics = json.loads(
        query(
            settings,
            "select cast(metrics as varchar) as m from ml.model_runs where run_id = ?",
            [backfill.details["run_id"]],
        )["m"].iloc[0]
    )
    assert metrics["segments_new"] == sorted(names1)  # the first night: every segment is new
    assert set(metrics["segment_id_sources"]) == {"next night"}  # but no id is

    # Night 1 again, now with a night before it: still the same ids; so is night 2.
    run_segmentation(settings, d1)
    assert _segments(settings, d1).equals(ids1)
    ids2 = _segments(settings, d2)
    run_segmentation(settings, d2)
    assert _segments(settings, d2).equals(ids2)
    _transitions_name_existing_ids(settings, d2, d1)
    _transitions_name_existing_ids(settings, d3, d2)
    assert query(settings, "select max(segment_id) m from ml.segment_profiles")["m"].iloc[0] == len(
        names1
    )


def test_a_rerun_recounts_the_next_nights_transitions(
    two_nights: tuple[Settings, date, StageResult],
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    settings, tomorrow, second = two_nights
    before = query(
        settings, "select * from ml.segment_transitions where as_of_date = ?", [tomorrow]
    )
    # Rerun the first night with segment 1 renamed: the next night's transitions follow.
    pinned = dataclasses.replace(small_settings, pinned_names={"1": "VIP"})
    run_segmentation(dataclasses.replace(settings, segmentation=pinned), as_of)
    after = query(settings, "select * from ml.segment_transitions where as_of_date = ?", [tomorrow])
    assert set(after.loc[after.from_segment_id == 1, "from_segment_name"]) == {"VIP"}
    assert set(after["run_id"]) == {second.details["run_id"]}
    key = ["from_segment_id", "to_segment_id", "customers"]
    assert (
        (
            after[key].sort_values(key).reset_index(drop=True).astype("int64")
            == before[key].sort_values(key).reset_index(drop=True).astype("int64")
        )
        .all()
        .all()
    )
    _transitions_name_existing_ids(settings, tomorrow, as_of)


def test_a_night_backfilled_between_two_others_leaves_the_later_ids_and_says_why_it_retires(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """Nights 1 and 3 built, then night 2 (a late backfill), then night 3 again. Night 2
    takes its previous ids from night 1 (the newest night before it, not the last one run),
    night 3's rerun keeps the ids it published, and the segments of night 2 it does not
    continue are said to be retired for that reason, not for lack of a cluster near them
    (which the warning claimed). A tight match distance makes the ids churn."""
    d1, d2, d3 = (as_of + timedelta(days=i) for i in (0, 1, 2))
    day2 = next_day(features_3k)
    day3 = next_day(day2, seed=2)
    tight = dataclasses.replace(small_settings, match_max_distance=0.15)
    settings = warehouse_with(features_3k, day2, day3, segmentation=tight)
    run_segmentation(settings, d1)
    run_segmentation(settings, d3)
    ids3 = _segments(settings, d3)
    run_segmentation(settings, d2)
    _transitions_name_existing_ids(settings, d2, d1)
    assert _segments(settings, d3).equals(ids3)

    rerun = run_segmentation(settings, d3)
    assert _segments(settings, d3).equals(ids3)
    retired = [w for w in rerun.warnings if " retired: " in w]
    assert retired, "the tight distance should retire some of night 2's segments"
    assert any("(the id this night's earlier run gave it)" in w for w in retired), retired
    _transitions_name_existing_ids(settings, d3, d2)


def test_a_rerun_with_another_k_gives_every_segment_its_own_id(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """An analyst sets [segmentation] fixed_k and reruns the night: the segments matched to
    the night's earlier run keep their ids, and the others get ids none of them has (fresh
    ids were counted from the other nights only, so a new segment took the id of one kept
    from the earlier run: two clusters merged under one id and name)."""
    settings = warehouse_with(features_3k, segmentation=small_settings)
    first = run_segmentation(settings, as_of)
    for k in (first.details["k"] + 1, 2, first.details["k"] + 2):
        rerun = run_segmentation(
            dataclasses.replace(
                settings, segmentation=dataclasses.replace(small_settings, fixed_k=k)
            ),
            as_of,
        )
        assert rerun.details["k"] == k
        profiles = query(
            settings, "select segment_id from ml.segment_profiles where as_of_date = ?", [as_of]
        )
        assert profiles["segment_id"].is_unique, (k, profiles["segment_id"].tolist())
        assert _segments(settings, as_of).nunique() == k
        assert len(rerun.details["segments"]) == k
