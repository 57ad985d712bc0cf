"""The segment stage against a real DuckDB warehouse file."""

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.registry import ModelVersionError, load_model
from ml.segmentation import run_segmentation
from segmint.config import SegmentationSettings, Settings
from segmint.stages import SegmintError, StageResult
from segmint.warehouse import connect, ensure_raw_tables, table_hash
from tests.ml.segmentation.conftest import AS_OF, query

TABLES = (
    "ml.customer_segments",
    "ml.segment_profiles",
    "ml.segment_transitions",
    "ml.k_selection",
    "ml.segment_drift",
)


def _hashes(settings: Settings) -> dict[str, str]:
    con = connect(settings.warehouse, read_only=True)
    try:
        return {t: table_hash(con, t, exclude=("run_id",)) for t in TABLES}
    finally:
        con.close()


def _stayed_share(settings, day) -> float:
    """The share of the customers segmented the night before ``day`` who kept their segment."""
    moves = query(
        settings,
        "select sum(customers) filter (where from_segment_id = to_segment_id) / sum(customers) "
        "as stayed from ml.segment_transitions where as_of_date = ?",
        [day],
    )
    return float(moves["stayed"].iloc[0])


def test_rerun_of_the_same_date_replaces_its_rows_with_the_same_results(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    settings = warehouse_with(features_3k, segmentation=small_settings)
    first = run_segmentation(settings, as_of)
    counts = {t: len(query(settings, f"select * from {t}")) for t in TABLES}
    hashes = _hashes(settings)
    second = run_segmentation(settings, as_of)
    assert {t: len(query(settings, f"select * from {t}")) for t in TABLES} == counts
    assert _hashes(settings) == hashes
    assert counts["ml.customer_segments"] == len(features_3k) == first.rows_out
    assert second.details["run_id"] != first.details["run_id"]
    ids = query(settings, "select distinct run_id from ml.customer_segments")["run_id"]
    assert ids.tolist() == [second.details["run_id"]]
    runs = query(settings, "select * from ml.model_runs where model_name = 'segmentation'")
    assert len(runs) == 2 and set(runs["status"]) == {"published"}
    assert set(runs["training_rows"]) == {len(features_3k)}


def test_every_output_is_written_with_its_contract(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    settings = warehouse_with(features_3k, segmentation=small_settings)
    result = run_segmentation(settings, as_of)
    seg = query(settings, "select * from ml.customer_segments")
    assert list(seg.columns) == [
        "customer_id",
        "as_of_date",
        "segment_id",
        "segment_name",
        "distance",
        "is_outlier",
        "run_id",
    ]
    assert seg["customer_id"].is_unique and seg["segment_name"].notna().all()
    ks = query(settings, "select * from ml.k_selection order by k")
    assert ks["k"].tolist() == list(range(small_settings.k_min, small_settings.k_max + 1))
    assert ks["is_chosen"].sum() == 1 and ks["silhouette"].notna().all()
    profiles = query(settings, "select * from ml.segment_profiles order by segment_id")
    assert len(profiles) == result.details["k"]
    assert abs(profiles["share"].sum() - 1) < 1e-9
    assert {"mean_order_count", "median_recency_days", "top_categories"} <= set(profiles)
    assert all(json.loads(c) for c in profiles["centroid"])
    run = query(settings, "select * from ml.model_runs").iloc[0]
    metrics = json.loads(run["metrics"])
    assert metrics["k"] == result.details["k"]
    assert len(metrics["candidates"]) == len(ks)
    assert "scikit-learn" in json.loads(run["library_versions"])
    assert json.loads(run["params"])["features"]
    assert run["artifact_path"] == result.details["artifact"]


def test_next_day_keeps_customers_and_segment_ids(
    two_nights: tuple[Settings, date, StageResult], features_3k: pd.DataFrame, as_of: date
) -> None:
    settings, tomorrow, result = two_nights
    seg = query(
        settings,
        "select a.customer_id, a.segment_id as id1, b.segment_id as id2, "
        "a.segment_name as name1, b.segment_name as name2 "
        "from ml.customer_segments a join ml.customer_segments b using (customer_id) "
        "where a.as_of_date = ? and b.as_of_date = ?",
        [as_of, tomorrow],
    )
    assert len(seg) == len(features_3k)
    assert (seg["id1"] == seg["id2"]).mean() >= 0.95
    profiles = query(
        settings, "select as_of_date, segment_id, segment_name, status from ml.segment_profiles"
    )
    day1 = profiles[profiles.as_of_date == pd.Timestamp(as_of)]
    day2 = profiles[profiles.as_of_date == pd.Timestamp(tomorrow)]
    assert dict(zip(day1.segment_id, day1.segment_name, strict=True)) == dict(
        zip(day2.segment_id, day2.segment_name, strict=True)
    )
    assert set(day2["status"]) == {"kept"}
    moves = query(settings, "select * from ml.segment_transitions where as_of_date = ?", [tomorrow])
    assert moves["customers"].sum() == len(features_3k)
    assert (moves["previous_as_of_date"] == pd.Timestamp(as_of)).all()
    stay = moves[moves.from_segment_id == moves.to_segment_id]["customers"].sum()
    assert stay == (seg["id1"] == seg["id2"]).sum()
    drift = query(settings, "select * from ml.segment_drift where as_of_date = ?", [tomorrow])
    assert set(drift["kind"]) == {"centroid_shift", "feature_psi"}
    assert result.details["max_feature_psi"] == pytest.approx(
        drift.loc[drift.kind == "feature_psi", "value"].max()
    )


def test_drift_over_the_threshold_is_a_warning(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    # The next night, every first-seen date a month earlier (a CRM reloaded with other
    # sign-up dates): tenure is a day older by the calendar, 31 by the data.
    shifted = features_3k.assign(
        as_of_date=pd.Timestamp(as_of + timedelta(days=1)),
        tenure_days=features_3k["tenure_days"] + 31,
    )
    settings = warehouse_with(features_3k, shifted, segmentation=small_settings)
    run_segmentation(settings, as_of)
    result = run_segmentation(settings, as_of + timedelta(days=1))
    assert any("tenure_days drifted" in w for w in result.warnings)
    flagged = query(settings, "select feature from ml.segment_drift where is_warning")
    assert "tenure_days" in set(flagged["feature"])


def test_a_small_shops_nightly_sampling_noise_is_no_drift_warning(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """A shop of 150 customers: from one night to the next a few of them visit or order,
    and a decile bin of 15 customers moves by a handful. A generated shop of 150 through dbt
    warned "days_since_last_visit drifted: PSI 0.243" after its first night and hovered at
    0.10-0.18 the five nights after. Here the next night draws other customers' behaviour
    from the same population: several features above PSI 0.2, no warning; a real shift (a
    tracker outage: nobody visits for 30 days) still warns."""
    shop = features_3k.head(150)
    tomorrow = as_of + timedelta(days=1)
    redrawn = features_3k.iloc[150:300].assign(
        customer_id=shop["customer_id"].to_numpy(), as_of_date=pd.Timestamp(tomorrow)
    )
    outage = shop.assign(
        as_of_date=pd.Timestamp(as_of + timedelta(days=2)),
        days_since_last_visit=shop["days_since_last_visit"] + 30,
        sessions_30d=0,
        tenure_days=shop["tenure_days"] + 2,
    )
    settings = warehouse_with(shop, redrawn, outage, segmentation=small_settings)
    run_segmentation(settings, as_of)
    result = run_segmentation(settings, tomorrow)
    psi_values = query(
        settings,
        "select feature, value, is_warning from ml.segment_drift "
        "where kind = 'feature_psi' and as_of_date = ?",
        [tomorrow],
    )
    assert (psi_values["value"] > 0.2).sum() >= 2  # what warned before
    assert not psi_values["is_warning"].any()
    assert not [w for w in result.warnings if "drifted" in w]
    result = run_segmentation(settings, as_of + timedelta(days=2))
    assert [w for w in result.warnings if "days_since_last_visit drifted" in w]
    sampling = "what sampling alone reaches with 150 and 150 customers"
    assert any(sampling in w for w in result.warnings)


def test_customers_ageing_together_are_no_tenure_drift(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """Customers who share a first day (a CRM migrated with one sign-up date, everyone seen
    on the tracker's first day) are a day older every night: that crossed a bin edge
    together, PSI 18.4 and "tenure_days drifted" every night with nothing changed. Ageing
    by the days between the runs is not drift, whether nights are 1 or 7 days apart."""
    first = features_3k.assign(tenure_days=120)
    later = [
        first.assign(as_of_date=pd.Timestamp(as_of + timedelta(days=d)), tenure_days=120 + d)
        for d in (1, 8)
    ]
    settings = warehouse_with(first, *later, segmentation=small_settings)
    run_segmentation(settings, as_of)
    for d in (1, 8):
        result = run_segmentation(settings, as_of + timedelta(days=d))
        assert not [w for w in result.warnings if "tenure_days" in w]
    drift = query(
        settings,
        "select value from ml.segment_drift where kind = 'feature_psi' and feature = 'tenure_days'",
    )
    assert len(drift) == 2
    assert (drift["value"] == 0).all()


def test_saved_model_loads_and_scores_like_the_run(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    settings = warehouse_with(features_3k, segmentation=small_settings)
    result = run_segmentation(settings, as_of)
    model, meta = load_model(settings.artifacts_dir, "segmentation", result.details["run_id"])
    assert meta.features and meta.params["k_min"] == small_settings.k_min
    clusters = model.predict(features_3k)
    ids = pd.Series(meta.metrics["segment_ids"])[clusters].to_numpy()
    seg = query(settings, "select segment_id from ml.customer_segments order by customer_id")
    assert (ids == seg["segment_id"].to_numpy()).all()


def test_a_model_saved_by_another_scikit_learn_is_refused(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    settings = warehouse_with(features_3k, segmentation=small_settings)
    run_id = run_segmentation(settings, as_of).details["run_id"]
    sidecar = settings.artifacts_dir / "segmentation" / f"{run_id}.json"
    meta = json.loads(sidecar.read_text())
    meta["library_versions"]["scikit-learn"] = "1.0.2"
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(ModelVersionError, match=r"scikit-learn 1\.0\.2"):
        load_model(settings.artifacts_dir, "segmentation", run_id)


def test_clear_errors_for_missing_input(
    warehouse_with: Callable[..., Settings], features_3k: pd.DataFrame, as_of: date, tmp_path
) -> None:
    nowhere = Settings(warehouse=tmp_path / "none" / "w.duckdb")
    with pytest.raises(SegmintError, match="does not exist"):
        run_segmentation(nowhere, as_of)
    empty = Settings(warehouse=tmp_path / "empty.duckdb")
    connect(empty.warehouse).close()
    with pytest.raises(SegmintError, match=r"marts\.customer_features not found"):
        run_segmentation(empty, as_of)
    settings = warehouse_with(features_3k)
    with pytest.raises(SegmintError, match=r"no rows for as_of_date 2026-07-05.*2026-06-30"):
        run_segmentation(settings, date(2026, 7, 5))
    dup = warehouse_with(features_3k, features_3k.head(2))
    with pytest.raises(SegmintError, match="duplicate customer_id"):
        run_segmentation(dataclasses.replace(dup), as_of)
    # Transform ran, but no event named a customer and no CRM record landed.
    con = connect(settings.warehouse)
    con.execute("create table marts.customers (customer_id varchar)")
    con.close()
    with pytest.raises(SegmintError, match="no known customers as of 2026-07-05"):
        run_segmentation(settings, date(2026, 7, 5))
    # Nothing loaded at all: the as-of date is before every landing partition.
    con = connect(settings.warehouse)
    ensure_raw_tables(con)
    con.close()
    with pytest.raises(SegmintError, match="nothing is loaded up to the as-of date 2026-07-05"):
        run_segmentation(settings, date(2026, 7, 5))


def test_customers_who_all_look_alike_make_one_segment(
    warehouse_with: Callable[..., Settings], features_3k: pd.DataFrame, as_of: date
) -> None:
    """A first night with CRM records and no events: every customer has the same (empty)
    profile. One segment holding everyone, not clusters without a member."""
    alike = features_3k.head(40).copy()
    numeric = alike.select_dtypes("number").columns
    alike[numeric] = alike[numeric].iloc[[0] * len(alike)].to_numpy()
    settings = warehouse_with(alike)
    result = run_segmentation(settings, as_of)
    assert result.details["k"] == 1
    assert "1 distinct profile" in result.details["k_reason"]
    profiles = query(
        settings, "select segment_name, customers, outliers, share from ml.segment_profiles"
    )
    assert profiles.to_dict("records") == [
        {"segment_name": "All customers", "customers": 40, "outliers": 0, "share": 1.0}
    ]
    assert (
        query(settings, "select count(distinct segment_id) as n from ml.customer_segments")[
            "n"
        ].iloc[0]
        == 1
    )


def test_a_shop_of_thirty_customers_makes_one_segment(
    warehouse_with: Callable[..., Settings], features_3k: pd.DataFrame, as_of: date
) -> None:
    """Thirty customers with different profiles: fewer than twice min_segment_customers
    (20), so one segment, not eight of three or four customers; the setting decides."""
    settings = warehouse_with(features_3k.head(30))
    result = run_segmentation(settings, as_of)
    assert result.details["k"] == 1
    assert "fewer than 2 x min_segment_customers = 40" in result.details["k_reason"]
    # Everyone, not a persona ("Regulars") measured against itself; and no outlier: the
    # 0.99 quantile of 30 distances flagged the farthest customer whatever the distance.
    assert query(
        settings, "select segment_name, description, outliers from ml.segment_profiles"
    ).to_dict("records") == [
        {
            "segment_name": "All customers",
            "description": "All customers: one segment holding every customer, too few or "
            "too alike to split.",
            "outliers": 0,
        }
    ]
    assert not query(settings, "select bool_or(is_outlier) as o from ml.customer_segments")[
        "o"
    ].iloc[0]

    few = SegmentationSettings(min_segment_customers=5)
    result = run_segmentation(warehouse_with(features_3k.head(30), segmentation=few), as_of)
    assert 2 <= result.details["k"] <= 6


def test_a_shop_where_nobody_has_ordered_gets_no_buyer_personas(
    warehouse_with: Callable[..., Settings], features_3k: pd.DataFrame, as_of: date
) -> None:
    """Nobody has ordered yet (and no e-mail was sent): the order and e-mail features are
    the same for everyone, so their z-scores are 0 and the other weights chose the names:
    "Occasional buyers" and "Email engaged" for customers who had neither."""
    shop = features_3k.head(600).assign(
        order_count=0,
        orders_90d=0,
        revenue_total=0.0,
        avg_order_value=np.nan,
        recency_days=np.nan,
        email_opens_30d=0,
        email_opens_90d=0,
        email_clicks_90d=0,
    )
    settings = warehouse_with(shop)
    result = run_segmentation(settings, as_of)
    assert result.details["k"] >= 2
    names = set(query(settings, "select segment_name from ml.segment_profiles")["segment_name"])
    assert not names & {"Champions", "Bargain hunters", "Occasional buyers", "Email engaged"}


@pytest.mark.parametrize(
    ("modules", "not_imported"),
    [
        # The Airflow DAG imports the pipeline at parse time: nothing heavy.
        ("ml.segmentation, segmint.pipeline", ("sklearn", "scipy", "pandas")),
        # The stage reads the warehouse while a thread imports the model module (scikit-learn,
        # scipy: a second or more), so the stage module itself imports neither.
        ("ml.segmentation.stage", ("sklearn", "scipy")),
    ],
)
def test_importing_the_stage_modules_is_light(modules: str, not_imported: tuple) -> None:
    import subprocess
    import sys

    code = (
        f"import sys, {modules}; "
        f"heavy = [m for m in {not_imported!r} if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_one_segment_shop_keeps_its_segment_while_it_grows(
    warehouse_with: Callable[..., Settings], features_3k: pd.DataFrame, as_of: date
) -> None:
    """A young shop of thirty customers, one segment a night: its profile moves by several
    standard deviations from one night to the next (everyone a day older, a few more
    orders). "All customers" was retired every night for a new id, and the report said 0%
    of the customers kept their segment."""
    first = features_3k.head(30).copy()
    second = first.copy()
    second["as_of_date"] = pd.Timestamp(as_of + timedelta(days=1))
    for col in ("tenure_days", "recency_days", "days_since_last_visit"):
        second[col] = second[col] * 3 + 40
    second["order_count"] = second["order_count"] + 2
    settings = warehouse_with(first, second)
    run_segmentation(settings, as_of)
    result = run_segmentation(settings, as_of + timedelta(days=1))
    assert result.details["k"] == 1
    assert not [w for w in result.warnings if "retired" in w]
    profiles = query(
        settings, "select as_of_date, segment_id, status from ml.segment_profiles order by 1"
    )
    assert profiles[["segment_id", "status"]].values.tolist() == [[1, "new"], [1, "kept"]]
    moves = query(
        settings,
        "select from_segment_id, to_segment_id, customers from ml.segment_transitions "
        "where as_of_date = ?",
        [as_of + timedelta(days=1)],
    )
    assert moves.values.tolist() == [[1, 1, 30]]


def test_a_crowd_of_identical_customers_leaves_every_segment_its_profile(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """A newsletter-heavy shop: most CRM customers never visited and share one profile.
    Their distance sat at the 0.99 quantile of all distances, so every other customer was
    beyond it: each buyers' segment was all outliers, with empty medians, means and top
    categories (the report's persona cards showed no figure). The quantile is per segment."""
    buyers = features_3k.head(300)
    crowd = pd.concat([buyers.head(1)] * 40_000, ignore_index=True)
    crowd["customer_id"] = [f"N{i}" for i in range(len(crowd))]
    settings = warehouse_with(buyers, crowd, segmentation=small_settings)
    run_segmentation(settings, as_of)
    profiles = query(
        settings,
        "select segment_id, customers, outliers, median_order_count, top_categories "
        "from ml.segment_profiles",
    )
    assert len(profiles) >= 2
    for row in profiles.itertuples():
        assert not pd.isna(row.median_order_count), row
        assert row.outliers <= row.customers * (1 - small_settings.outlier_quantile) + 1


def _newsletter_crowd(like: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` CRM-only newsletter subscribers (ids N0, N1, ...) with ``like``'s columns: no
    visit, no order, the same tenure, all opted in to e-mail."""
    return pd.DataFrame(
        {
            "customer_id": [f"N{i}" for i in range(n)],
            "as_of_date": like["as_of_date"].iloc[0],
            **{c: 0 for c in like.columns if like[c].dtype == "int64"},
            **{c: np.nan for c in like.columns if like[c].dtype == "float64"},
            "revenue_total": 0.0,
            "tenure_days": 27,
            "favourite_category": None,
            "email_opt_in": True,
            "ads_opt_in": False,
        }
    )[like.columns.drop("latent_type")]


def test_a_crowd_that_never_visited_is_named_never_visited(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """A shop whose CRM is 99% newsletter subscribers who never visited nor ordered: K-Means
    puts them in one segment whose centroid is the population's, and the persona of the
    fixed score named it "Regulars" (marketing reads "comes back often"). It is "Never
    visited", no other segment is, and the name holds the next night."""
    from ml.segmentation.synthetic import next_day

    buyers = features_3k.head(300)
    n = 20_000
    crowd = _newsletter_crowd(buyers, n)
    settings = warehouse_with(
        buyers,
        crowd,
        next_day(buyers),
        next_day(crowd, active_share=0),
        segmentation=small_settings,
    )
    names = {}
    for night in (as_of, as_of + timedelta(days=1)):
        run_segmentation(settings, night)
        names[night] = query(
            settings,
            "select segment_id, segment_name, count(*) as customers, "
            "count(*) filter (where customer_id like 'N%') as crowd "
            "from ml.customer_segments where as_of_date = ? group by all order by 1",
            [night],
        )
    first = names[as_of]
    assert first.loc[first["crowd"] == n, "segment_name"].tolist() == ["Never visited"]
    assert (first.loc[first["crowd"] == 0, "segment_name"] != "Never visited").all()
    second = names[as_of + timedelta(days=1)]
    crowd_segment = ["segment_id", "segment_name", "crowd"]
    assert second.loc[second["crowd"] > 0, crowd_segment].values.tolist() == [
        [*first.loc[first["crowd"] == n, ["segment_id", "segment_name"]].values[0], n]
    ]
    assert sorted(second["segment_name"]) == sorted(first["segment_name"])


def _one_time_buyers(like: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` customers (ids O0, O1, ...) with ``like``'s columns who ordered once, 40 to 239
    days ago, on their one visit, and never came back: the long tail of a real shop."""
    days = 40 + (np.arange(n) * 7919) % 200
    visited_90d = (days <= 90).astype("int64")
    return pd.DataFrame(
        {
            "customer_id": [f"O{i}" for i in range(n)],
            "as_of_date": like["as_of_date"].iloc[0],
            **{c: 0 for c in like.columns if like[c].dtype == "int64"},
            **{c: np.nan for c in like.columns if like[c].dtype == "float64"},
            "order_count": 1,
            "orders_90d": visited_90d,
            "sessions_90d": visited_90d,
            "revenue_total": 40.0 + np.arange(n) % 50,
            "avg_order_value": 40.0 + np.arange(n) % 50,
            "recency_days": days.astype(float),
            "days_since_last_visit": days.astype(float),
            "tenure_days": days + 5 + np.arange(n) % 30,
            "mobile_session_share_90d": 0.5,
            "favourite_category": "home",
            "email_opt_in": True,
            "ads_opt_in": False,
        }
    )[like.columns.drop("latent_type")]


def test_a_crowd_of_one_time_buyers_is_not_named_regulars(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """4,000 customers who ordered once, 40-240 days ago, and never came back, beside 300
    active ones (the long tail of a real shop; the same on a generated shop of 400 through
    dbt): K-Means puts the crowd in one segment, its centroid the population's, and the
    fixed score of "Regulars" named it (marketing reads "comes back often"), 93% of the
    shop. None of them came back, so it is not Regulars; nor is a segment kept as
    Regulars from an earlier run."""
    buyers = features_3k.head(300)
    crowd = _one_time_buyers(buyers, 4_000)
    settings = warehouse_with(buyers, crowd, segmentation=small_settings)
    run_segmentation(settings, as_of)
    segments = query(
        settings,
        "select segment_id, segment_name, count(*) as customers, "
        "count(*) filter (where customer_id like 'O%') as crowd "
        "from ml.customer_segments group by all order by crowd desc",
    )
    crowd_segment = segments.iloc[0]
    assert crowd_segment["crowd"] >= 0.9 * len(crowd)
    assert crowd_segment["segment_name"] not in ("Regulars", "Champions")
    assert "Regulars" not in set(segments.loc[segments["crowd"] > 100, "segment_name"])


def test_a_crowd_of_one_time_buyers_leaves_the_other_customers_their_segments(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """1,000 customers of five behaviour types beside 10,000 who ordered once and never came
    back. The silhouette, a mean over customers, was best at k=3 (0.846), the crowd and two
    segments for the 1,000, whose types were lost (adjusted Rand index 0.49; 0.81 without
    the crowd). The crowd stays one segment and the others are segmented among themselves
    (ARI 0.80 at k=4 in everyone's space; 0.98 at k=5 scaled by their own spread).
    On a generated shop through dbt (1,500 customers, 15,000 one-time buyers added to the
    mart) k was 2, ARI 0.15 for the shop's customers; now 5, ARI 0.73."""
    from sklearn.metrics import adjusted_rand_score

    buyers = features_3k.head(1000)
    crowd = _one_time_buyers(buyers, 10_000)
    settings = warehouse_with(buyers, crowd, segmentation=small_settings)
    result = run_segmentation(settings, as_of)
    assert result.details["k_reason"].startswith(
        "a crowd: the best silhouette, 0.846 at k=3, put 93% of the customers in one segment"
    )
    segments = query(settings, "select customer_id, segment_id from ml.customer_segments")
    crowd_segments = set(segments.loc[segments["customer_id"].str.startswith("O"), "segment_id"])
    assert len(crowd_segments) == 1
    types = buyers[["customer_id", "latent_type"]].merge(segments)
    assert adjusted_rand_score(types["latent_type"], types["segment_id"]) > 0.75
    assert types["segment_id"].nunique() >= 4


def _types_ari(settings: Settings, buyers: pd.DataFrame, as_of: date) -> tuple[float, int]:
    """The adjusted Rand index of the buyers' segments against their types, and how many
    segments they are in, on ``as_of``."""
    from sklearn.metrics import adjusted_rand_score

    segments = query(
        settings,
        "select customer_id, segment_id from ml.customer_segments where as_of_date = ?",
        [as_of],
    )
    types = buyers[["customer_id", "latent_type"]].merge(segments)
    assert len(types) == len(buyers)
    return adjusted_rand_score(types["latent_type"], types["segment_id"]), types[
        "segment_id"
    ].nunique()


def test_a_crowd_thirty_times_larger_does_not_set_the_scale_of_the_other_customers(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """1,000 customers of five behaviour types beside 30,000 who ordered once and never
    came back (97%). Everyone's StandardScaler was fitted on the crowd too, so the 1,000
    were segmented in a space whose feature weights the crowd set (their standard
    deviations 2.2 to 5.5 times their own): k=3, adjusted Rand index 0.56 against their
    types, their "lapsing" customers joining the crowd (0.80 for the shop alone). Once the
    crowd is found, the others are scaled by their own spread: k=4, ARI 0.80. On the next
    night, which keeps k without a search, the crowd is found and the others scaled the
    same way: same segments, ids and names; the saved model assigns as the night did."""
    from ml.segmentation.synthetic import next_day

    buyers = features_3k.head(1000)
    crowd = _one_time_buyers(buyers, 30_000)
    later = crowd.assign(as_of_date=crowd["as_of_date"] + timedelta(days=1))
    settings = warehouse_with(
        buyers, crowd, next_day(buyers, active_share=0.05), later, segmentation=small_settings
    )
    first = run_segmentation(settings, as_of)
    assert first.details["k_reason"].startswith(
        "a crowd: the best silhouette, 0.892 at k=3, put 97% of the customers in one segment"
    )
    assert "the others were scaled by their own spread" in first.details["k_reason"]
    ari, segments = _types_ari(settings, buyers, as_of)
    assert ari >= 0.75 and segments >= 3 and first.details["k"] >= 4
    tomorrow = as_of + timedelta(days=1)
    second = run_segmentation(settings, tomorrow)
    assert second.details["k_reason"].startswith(f"previous run's k={first.details['k']} kept")
    crowd_id = query(settings, "select metrics->>'crowd_segment_id' as crowd from ml.model_runs")[
        "crowd"
    ].iloc[0]
    assert second.details["k_reason"].endswith(
        f"; segment {crowd_id} kept whole as a crowd, the others scaled by their own spread"
    )
    assert _types_ari(settings, buyers, tomorrow)[0] >= 0.75
    runs = query(
        settings,
        "select as_of_date, metrics->>'crowd_segment_id' as crowd from ml.model_runs "
        "order by as_of_date",
    )
    crowd_ids = query(
        settings,
        "select as_of_date, min(segment_id) as low, max(segment_id) as high "
        "from ml.customer_segments where customer_id like 'O%' group by all order by all",
    )
    assert crowd_ids["low"].tolist() == crowd_ids["high"].tolist()  # the crowd, one segment
    assert runs["crowd"].astype(int).tolist() == crowd_ids["low"].tolist()
    assert crowd_ids["low"].nunique() == 1
    assert second.details["segments"] == first.details["segments"]
    assert not [w for w in second.warnings if " retired: " in w]
    assert _stayed_share(settings, tomorrow) > 0.97
    # The saved model (the crowd, both scalers and the others' K-Means) assigns as the
    # night did.
    model, meta = load_model(settings.artifacts_dir, "segmentation", second.details["run_id"])
    night = query(
        settings,
        "select f.*, s.segment_id from marts.customer_features f join ml.customer_segments s "
        "using (customer_id, as_of_date) where as_of_date = ? order by customer_id",
        [tomorrow],
    )
    ids = np.asarray(meta.metrics["segment_ids"])
    assert (ids[model.predict(night)] == night["segment_id"].to_numpy()).all()


def _names_by_type(settings: Settings, types: pd.DataFrame) -> dict[str, str]:
    """The name of the segment holding most of each type's customers (``types``:
    customer_id, latent_type; customers not in it are the crowd, type "crowd")."""
    segments = query(settings, "select customer_id, segment_name from ml.customer_segments")
    typed = segments.merge(types, how="left").fillna({"latent_type": "crowd"})
    counts = typed.groupby(["latent_type", "segment_name"]).size().reset_index(name="n")
    top = counts.sort_values("n", ascending=False).drop_duplicates("latent_type")
    return dict(zip(top["latent_type"], top["segment_name"], strict=True))


def test_a_crowds_other_customers_are_named_among_themselves(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """300 customers of five types beside 20,000 newsletter subscribers who never visited:
    the crowd is kept whole and the others segmented in their own space, but their names
    were judged against everyone, where every segment of the others looks extreme beside
    the crowd's zeros: the lapsing customers were "Champions" (they have orders, the crowd
    none) and the champions "Bargain hunters". They are named among the others, as the
    shop alone names them; the crowd among everyone."""
    buyers = features_3k.head(300)
    types = buyers[["customer_id", "latent_type"]]
    alone = warehouse_with(buyers, segmentation=small_settings)
    run_segmentation(alone, as_of)
    shop = _names_by_type(alone, types)
    alone.warehouse.unlink()  # a fresh warehouse for the crowded shop: no earlier run
    crowded = warehouse_with(buyers, _newsletter_crowd(buyers, 20_000), segmentation=small_settings)
    result = run_segmentation(crowded, as_of)
    assert result.details["k_reason"].startswith("a crowd: ")
    names = _names_by_type(crowded, types)
    assert names.pop("crowd") == "Never visited"
    assert names == shop
    assert names["lapsing"] == "Occasional buyers" and names["champion"] == "Champions"
    assert len(set(result.details["segments"].values())) == result.details["k"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_generated_shop_beside_a_crowd_keeps_the_names_it_has_alone(tmp_path: Path) -> None:
    """A generated shop of 1,500 customers through dbt, and beside it 15,000 one-time
    buyers added to the mart (93%): the crowd is kept whole and the others are segmented
    in their own space, but the names were judged against everyone. The crowd took
    "Lapsing" and the shop's 243 lapsing customers (and 83 window shoppers) were "Email
    engaged", their figures extreme beside the crowd's (they open e-mails, the crowd
    never). The others are named among themselves, as the shop alone names them; the
    crowd, judged against everyone, is "Dormant"."""
    import shutil

    from segmint.generate import generate
    from segmint.ingest import run_ingest
    from segmint.transform import run_transform

    landing = tmp_path / "data" / "landing"
    generate(landing, customers=1500, days=90, end_date=AS_OF, seed=7, dirt_rate=0.0)
    shop = Settings(
        warehouse=tmp_path / "shop" / "segmint.duckdb", landing=landing, output=tmp_path / "out"
    )
    run_ingest(shop, AS_OF)
    run_transform(shop, AS_OF)
    crowded = dataclasses.replace(shop, warehouse=tmp_path / "crowded" / "segmint.duckdb")
    crowded.warehouse.parent.mkdir()
    shutil.copy(shop.warehouse, crowded.warehouse)
    con = connect(crowded.warehouse)
    try:  # the mart (a view) as a table, with the crowd added
        mart = con.execute("select * from marts.customer_features").df()
        numbers = [c for c in mart.columns if mart[c].dtype in ("int64", "float64")]
        others = ["customer_id", "as_of_date", "tenure_days", "favourite_category"]
        like = mart[list(dict.fromkeys([*numbers, *others, "email_opt_in", "ads_opt_in"]))]
        crowd = _one_time_buyers(like.assign(latent_type=None), 15_000)
        con.register("crowd", crowd)
        con.execute(
            "create table marts.with_crowd as select * from marts.customer_features "
            "union all by name select * from crowd"
        )
        con.execute("drop view marts.customer_features")
        con.execute("alter table marts.with_crowd rename to customer_features")
    finally:
        con.close()
    types = pd.read_parquet(landing.parent / "ground_truth" / "customers.parquet")
    run_segmentation(shop, AS_OF)
    alone = _names_by_type(shop, types)
    result = run_segmentation(crowded, AS_OF)
    assert result.details["k_reason"].startswith("a crowd: ")
    names = _names_by_type(crowded, types)
    assert names.pop("crowd") == "Dormant"
    assert (
        names
        == alone
        == {
            "lapsing_customer": "Lapsing",
            "window_shopper": "Window shoppers",
            "bargain_hunter": "Bargain hunters",
            "loyal_high_spender": "Champions",
            "new_customer": "New customers",
        }
    )
    assert len(set(result.details["segments"].values())) == result.details["k"]


def test_a_crowd_segmented_before_its_model_recorded_it_is_searched_again(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A warehouse whose last run kept a crowd as one segment before 2026-12-07 (everyone
    scaled together, no ``crowd_segment_id`` in its metrics): the next night cannot rebuild
    that space, so it searches k again, says why, and keeps the segment ids."""
    import logging

    buyers = features_3k.head(1000)
    crowd = _one_time_buyers(buyers, 10_000)
    later = [f.assign(as_of_date=f["as_of_date"] + timedelta(days=1)) for f in (buyers, crowd)]
    settings = warehouse_with(buyers, crowd, *later, segmentation=small_settings)
    first = run_segmentation(settings, as_of)
    con = connect(settings.warehouse)
    try:  # yesterday's run as the code before 2026-12-07 recorded it
        con.execute(
            "update ml.model_runs set metrics = json_merge_patch(metrics, "
            "'{\"crowd_segment_id\": null}') where run_id = ?",
            [first.details["run_id"]],
        )
    finally:
        con.close()
    with caplog.at_level(logging.INFO, logger="ml.segmentation.stage"):
        second = run_segmentation(settings, as_of + timedelta(days=1))
    run = query(
        settings,
        "select metrics->>'k_search_reason' as why from ml.model_runs where run_id = ?",
        [second.details["run_id"]],
    )
    assert run["why"].iloc[0] == (
        f"previous run {first.details['run_id']} segmented a crowd without recording it "
        "(before 2026-12-07, the others scaled by everyone's spread)"
    )
    assert "k is searched again tonight" in caplog.text
    assert second.details["k_reason"].startswith("a crowd: ")
    assert second.details["segments"] == first.details["segments"]


def test_a_night_whose_crowd_leaves_too_few_others_searches_k_again(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """The night after a crowd run would keep its k, but all but two of the other
    customers are gone (erased): too few for the others' four segments. Kept, the crowd
    model could not be fitted, and one K-Means of everyone with the previous k=5 put 11%
    of the one-time buyers in a segment named "Bargain hunters", for the six nights until
    the next search. The night searches k again and says why."""
    buyers = features_3k.head(1000)
    crowd = _one_time_buyers(buyers, 10_000)
    tomorrow = as_of + timedelta(days=1)
    settings = warehouse_with(
        buyers,
        crowd,
        buyers.head(2).assign(as_of_date=pd.Timestamp(tomorrow)),
        crowd.assign(as_of_date=crowd["as_of_date"] + timedelta(days=1)),
        segmentation=small_settings,
    )
    first = run_segmentation(settings, as_of)
    second = run_segmentation(settings, tomorrow)
    why = query(
        settings,
        "select metrics->>'k_search_reason' as why from ml.model_runs where run_id = ?",
        [second.details["run_id"]],
    )["why"].iloc[0]
    crowd_id = next(i for i, n in first.details["segments"].items() if n == "Dormant")
    assert why == (
        f"the previous run's crowd (segment {crowd_id}) holds 10000 of 10002 customers "
        f"tonight, too many to keep its k={first.details['k']}"
    )
    assert not [w for w in second.warnings if "not kept apart" in w]
    segments = query(
        settings,
        "select segment_name, count(*) as customers from ml.customer_segments "
        "where as_of_date = ? and customer_id like 'O%' group by all",
        [tomorrow],
    )
    assert not {"Bargain hunters", "Champions"} & set(segments["segment_name"])


def test_the_report_says_why_this_k_and_what_the_other_ks_scored(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
    tmp_path: Path,
) -> None:
    """The report's k-selection chart had the caption "Candidates k = 2..7 (run of ...); red
    marks the k the rule chose": a marketer given one segment of 93% could not tell why that
    k, nor what the others scored, without reading ml.model_runs. The caption now gives
    every candidate's silhouette and the stage's reason (``metrics.k_reason``)."""
    import html

    from segmint.report import write_report

    buyers = features_3k.head(1000)
    settings = warehouse_with(buyers, _one_time_buyers(buyers, 10_000), segmentation=small_settings)
    details = run_segmentation(settings, as_of).details
    reason, chosen = details["k_reason"], details["k"]
    scores = query(settings, "select k, silhouette from ml.k_selection order by k")
    out = dataclasses.replace(settings, output=tmp_path / "out")
    page = html.unescape(Path(write_report(out, as_of).details["path"]).read_text("utf-8"))
    (caption,) = re.findall(
        r'data-chart="k-selection".*?<figcaption>(.*?)</figcaption>', page, re.S
    )
    assert caption.endswith(f" Why k = {chosen}: {reason}.")
    assert (
        "Silhouette per k (how much nearer customers are to their own segment than to " in caption
    )
    assert (
        ", ".join(
            f"k = {k}: {s:.3f}" + (" (chosen)" if k == chosen else "")
            for k, s in zip(scores["k"], scores["silhouette"], strict=True)
        )
        in caption
    )


def test_segments_of_a_shop_dominated_by_a_crowd_keep_their_ids_and_names(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """A CRM of newsletter subscribers who never visited, a hundred times the visitors: the
    crowd shrinks every feature's standard deviation, so the visitors' segments moved by
    several "standard deviations" a night while keeping their customers, and every night
    said "0 kept, k new, k retired" (no cluster within 1.0), renaming marketing's segments.
    A segment that holds mostly the same customers keeps its id and name."""
    from ml.segmentation.synthetic import next_day

    buyers = features_3k.head(500)
    n = 50_000
    crowd = _newsletter_crowd(buyers, n)
    settings = warehouse_with(
        buyers,
        crowd,
        next_day(buyers, active_share=0.2),
        next_day(crowd, active_share=0),
        segmentation=small_settings,
    )
    tomorrow = as_of + timedelta(days=1)
    run_segmentation(settings, as_of)
    second = run_segmentation(settings, tomorrow)
    profiles = query(
        settings,
        "select as_of_date, segment_id, segment_name, status, centroid_shift "
        "from ml.segment_profiles order by segment_id, as_of_date",
    )
    first = profiles[profiles["as_of_date"] == pd.Timestamp(as_of)]
    kept = profiles[profiles["as_of_date"] == pd.Timestamp(tomorrow)]
    assert not [w for w in second.warnings if " retired: " in w]
    assert kept["status"].tolist() == ["kept"] * len(first)
    assert kept[["segment_id", "segment_name"]].values.tolist() == (
        first[["segment_id", "segment_name"]].values.tolist()
    )
    # The distance alone would not have kept them: the crowd's scaling made them move far.
    assert kept["centroid_shift"].max() > small_settings.match_max_distance
    assert _stayed_share(settings, tomorrow) > 0.99


def test_a_closing_checkpoint_without_room_fails_the_stage_and_the_rerun_completes(
    warehouse_with: Callable[..., Settings],
    features_3k: pd.DataFrame,
    small_settings: SegmentationSettings,
    as_of: date,
) -> None:
    """The stage wrote its tables, then the checkpoint of its closing connection could not
    grow the warehouse file (a full disk, ``ulimit -f``): DuckDB's close() does not report
    it, so `segmint segment` said done, exit code 0, and left its rows in the
    ``segmint.duckdb.wal`` every later stage replayed. Every stage now fails on it, with the
    one line naming the file and the fix; the rerun completes."""
    from tests.include.test_cli import cli_with_file_size_limit

    settings = warehouse_with(features_3k, segmentation=small_settings)
    config = settings.warehouse.parent / "segmint.toml"
    config.write_text(
        "[segmentation]\n"
        + "".join(
            f"{name} = {getattr(small_settings, name)}\n"
            for name in ("k_min", "k_max", "silhouette_sample", "n_init")
        )
    )
    args = ["--config", config, "segment", "--warehouse", settings.warehouse]
    args += ["--as-of", as_of.isoformat()]
    wal = settings.warehouse.with_name(settings.warehouse.name + ".wal")
    faulted = cli_with_file_size_limit(settings.warehouse.stat().st_size, *args)
    assert wal.exists(), "the checkpoint found room: the test no longer tests it"
    assert faulted.returncode == 1, faulted.stderr
    assert faulted.stderr.startswith(
        f"segmint segment: error: cannot write {settings.warehouse} (the warehouse"
    ), faulted.stderr
    assert "File too large" in faulted.stderr and "(ulimit -f)" in faulted.stderr

    result = run_segmentation(settings, as_of)
    assert not wal.exists()
    assert query(settings, "select count(*) n from ml.customer_segments")["n"][0] == 3000
    assert result.rows_out == 3000
