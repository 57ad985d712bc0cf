"""The search over k runs on a cadence: the nights in between keep the previous run's k (and
refit from its centroids), score that one k for the record, and keep every segment id."""

import dataclasses
from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd

from ml.segmentation import run_segmentation
from ml.segmentation.synthetic import next_day
from segmint.config import SegmentationSettings, Settings
from tests.ml.segmentation.conftest import query


def _nights(
    warehouse_with: Callable[..., Settings],
    features: pd.DataFrame,
    cfg: SegmentationSettings,
    days: int,
) -> tuple[Settings, list]:
    frames = [features]
    for _ in range(days - 1):
        frames.append(next_day(frames[-1]))
    settings = warehouse_with(*frames, segmentation=cfg)
    start = pd.Timestamp(features["as_of_date"].iloc[0]).date()
    results = [run_segmentation(settings, start + timedelta(days=i)) for i in range(days)]
    return settings, results


def test_next_nights_keep_k_without_a_search_until_the_cadence_is_due(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    cfg = dataclasses.replace(small_settings, k_search_every_days=2)
    settings, results = _nights(warehouse_with, features_3k, cfg, days=3)
    first, second, third = results
    assert "without a search" not in first.details["k_reason"]
    assert "kept without a search" in second.details["k_reason"]
    assert "without a search" not in third.details["k_reason"]  # two days after the search
    assert second.details["k"] == first.details["k"]
    rows = query(
        settings,
        "select as_of_date, count(*) n, bool_and(is_chosen) c from ml.k_selection "
        "group by 1 order by 1",
    )
    assert rows["n"].tolist() == [6, 1, 6] and rows["c"].tolist() == [False, True, False]
    kept = query(
        settings,
        "select k, inertia, silhouette, search_rows from ml.k_selection where as_of_date = ?",
        [as_of + timedelta(days=1)],
    ).iloc[0]
    assert kept["k"] == first.details["k"] and kept["inertia"] > 0
    assert 0 < kept["silhouette"] <= 1 and kept["search_rows"] == 3000
    # Every segment keeps its id and name on the night without a search.
    assert second.details["segments"] == first.details["segments"]
    assert second.details["retired"] == []
    metrics = query(
        settings,
        "select as_of_date, metrics->>'k_searched_as_of' s from ml.model_runs order by 1",
    )
    assert metrics["s"].tolist() == [str(as_of), str(as_of), str(as_of + timedelta(days=2))]


def test_zero_searches_every_night(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
) -> None:
    cfg = dataclasses.replace(small_settings, k_search_every_days=0)
    _, results = _nights(warehouse_with, features_3k, cfg, days=2)
    assert all("without a search" not in r.details["k_reason"] for r in results)


def test_a_changed_feature_definition_searches_k_again(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
    tmp_path,
) -> None:
    """A shop sets session_inactivity_minutes to 10 in dbt_project.yml: the transform
    rebuilds every feature from the new sessions, but the next night kept the previous
    run's k "without a search (k searched on ...; every 7 days)", a k chosen for features
    that meant something else. The run records the vars; a change searches k again."""
    import shutil

    import yaml

    from segmint.transform import REPO_ROOT

    project = tmp_path / "dbt_project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dbt_project" / "dbt_project.yml", project)
    settings = warehouse_with(features_3k, next_day(features_3k), segmentation=small_settings)
    settings = dataclasses.replace(
        settings, transform=dataclasses.replace(settings.transform, dbt_project_dir=project)
    )
    first = run_segmentation(settings, as_of)
    path = project / "dbt_project.yml"
    data = yaml.safe_load(path.read_text())
    data["vars"]["session_inactivity_minutes"] = 10
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    second = run_segmentation(settings, as_of + timedelta(days=1))
    assert "without a search" not in second.details["k_reason"]
    reason = query(
        settings,
        "select metrics->>'k_search_reason' r from ml.model_runs where as_of_date = ?",
        [as_of + timedelta(days=1)],
    )["r"].iloc[0]
    assert reason == (
        f"feature definition changed since {first.details['run_id']} "
        "(dbt vars: session_inactivity_minutes 30 -> 10)"
    ), reason
    # Unchanged the night after: k is kept again.
    third_frames = [features_3k, next_day(features_3k), next_day(next_day(features_3k))]
    settings = dataclasses.replace(
        warehouse_with(*third_frames, segmentation=small_settings), transform=settings.transform
    )
    third = run_segmentation(settings, as_of + timedelta(days=2))
    assert "kept without a search" in third.details["k_reason"]


def test_a_feature_redefinition_night_measures_no_drift_and_keeps_segments_by_customers(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
    tmp_path,
) -> None:
    """mobile_device_types ["mobile", "tablet"] -> ["tablet"] in dbt_project.yml: the
    transform rebuilds mobile_session_share_90d as a far smaller share for the same
    sessions. Generated shop of 400 customers: the segment stage warned
    "mobile_session_share_90d drifted: PSI 2.177", wrote the centroid shifts of the old
    definition against the new as drift, and retired 4 of 5 segments for new ids, their
    customers counted as moving. Tonight measures no drift (and says why); segments that kept
    their customers keep their ids; the next night measures drift again."""
    import shutil

    import yaml

    from segmint.transform import REPO_ROOT

    project = tmp_path / "dbt_project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dbt_project" / "dbt_project.yml", project)
    redefined = next_day(features_3k)
    redefined["mobile_session_share_90d"] = redefined["mobile_session_share_90d"] * 0.1
    frames = [features_3k, redefined, next_day(redefined)]
    settings = warehouse_with(*frames, segmentation=small_settings)
    settings = dataclasses.replace(
        settings, transform=dataclasses.replace(settings.transform, dbt_project_dir=project)
    )
    first = run_segmentation(settings, as_of)
    path = project / "dbt_project.yml"
    data = yaml.safe_load(path.read_text())
    data["vars"]["mobile_device_types"] = ["tablet"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    second = run_segmentation(settings, as_of + timedelta(days=1))
    assert not [w for w in second.warnings if "drifted" in w], second.warnings
    assert [
        w
        for w in second.warnings
        if w.startswith(
            f"segment drift not measured on {as_of + timedelta(days=1)}: the feature "
            f"definition changed since {first.details['run_id']} (dbt vars: "
            'mobile_device_types ["mobile", "tablet"] -> ["tablet"]), so tonight\'s features'
        )
    ]
    drift = query(
        settings, "select as_of_date, count(*) n from ml.segment_drift group by 1 order by 1"
    )
    assert as_of + timedelta(days=1) not in set(pd.to_datetime(drift["as_of_date"]).dt.date)
    # The segments kept their customers: the same ids, nobody counted as moving.
    assert second.details["retired"] == []
    assert sorted(second.details["segments"]) == sorted(first.details["segments"])
    moved = query(
        settings,
        "select coalesce(sum(customers), 0) n from ml.segment_transitions where as_of_date = ? "
        "and from_segment_id is distinct from to_segment_id",
        [as_of + timedelta(days=1)],
    )["n"].iloc[0]
    assert moved < 0.05 * len(features_3k), moved
    metrics = query(
        settings,
        "select metrics->>'drift_not_measured' d from ml.model_runs where as_of_date = ?",
        [as_of + timedelta(days=1)],
    )["d"].iloc[0]
    assert metrics.startswith("the feature definition changed since")
    # The night after, with the same definition: drift is measured again.
    third = run_segmentation(settings, as_of + timedelta(days=2))
    assert third.details["max_feature_psi"] is not None
    drift = query(
        settings,
        "select count(*) n from ml.segment_drift where as_of_date = ?",
        [as_of + timedelta(days=2)],
    )
    assert drift["n"].iloc[0] > 0
