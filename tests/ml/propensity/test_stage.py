"""The score stage on a simulated shop in a real DuckDB: gate, calibration, outputs, reruns,
the registry fallback and refusal, and too little history."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.io import read_frame
from ml.propensity import run_propensity
from ml.propensity.stage import gate
from segmint.config import PropensitySettings, Settings
from segmint.stages import StageResult
from segmint.warehouse import connect
from tests.ml.propensity.simshop import AS_OF, build_snapshots, snapshot_dates, write_activity

# Calibration tolerance: on the holdout, every decile's mean predicted probability is within
# 0.06 (absolute) of its observed rate. With ~550 customers a decile the binomial standard
# error of an observed rate is at most 0.021, so 0.06 is about three standard errors.
CALIBRATION_TOLERANCE = 0.06


def _settings(warehouse: Path, **propensity: object) -> Settings:
    return Settings(
        warehouse=warehouse, propensity=dataclasses.replace(PropensitySettings(), **propensity)
    )


def _run_in_copy(src: Path, tmp: Path, as_of) -> tuple[Settings, StageResult]:
    wh = tmp / "warehouse" / "segmint.duckdb"
    wh.parent.mkdir(parents=True)
    shutil.copy(src, wh)
    settings = _settings(wh)
    return settings, run_propensity(settings, as_of)


def _clone(settings: Settings, tmp: Path) -> Settings:
    """A private copy of a scored warehouse folder (the DuckDB file and its artifacts)."""
    target = tmp / "clone" / "warehouse"
    shutil.copytree(settings.warehouse.parent, target)
    return dataclasses.replace(settings, warehouse=target / settings.warehouse.name)


@pytest.fixture(scope="module")
def scored(sim_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """One stage run for AS_OF, shared (read-only) by the tests below."""
    return _run_in_copy(sim_warehouse, tmp_path_factory.mktemp("scored"), AS_OF)


@pytest.fixture(scope="module")
def scored_earlier(sim_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """One stage run for AS_OF - 30 (published models to fall back on); tests clone it."""
    return _run_in_copy(
        sim_warehouse, tmp_path_factory.mktemp("earlier"), AS_OF - timedelta(days=30)
    )


def _metrics(wh: Path, model: str, scorer: str) -> dict[str, float]:
    frame = read_frame(
        wh,
        "select metric, value from ml.model_metrics where model_name = ? and scorer = ? "
        "and decile is null",
        [model, scorer],
    )
    return dict(zip(frame.metric, frame.value, strict=True))


@pytest.mark.parametrize("model", ["purchase", "churn"])
def test_model_beats_both_baselines_on_the_holdout_and_is_published(scored, model) -> None:
    settings, result = scored
    model_auc = _metrics(settings.warehouse, model, "model")["roc_auc"]
    for scorer in ("baseline_recency", "baseline_bgnbd"):
        baseline = _metrics(settings.warehouse, model, scorer)
        assert model_auc > baseline["roc_auc"], (model, scorer, model_auc, baseline)
        assert baseline["rows"] == _metrics(settings.warehouse, model, "model")["rows"]
    runs = read_frame(
        settings.warehouse,
        "select status, message, artifact_path, params from ml.model_runs where model_name = ?",
        [model],
    )
    assert runs["status"].tolist() == ["published"]
    assert "beats" in runs["message"].iloc[0]
    assert Path(runs["artifact_path"].iloc[0]).exists()
    params = json.loads(runs["params"].iloc[0])
    assert params["calibration"] in ("isotonic", "sigmoid")
    assert len(params["search"]) >= 3
    assert params["cutoffs"]["holdout"] == (AS_OF - timedelta(days=30)).isoformat()
    assert result.details[model]["status"] == "published"


@pytest.mark.parametrize("model", ["purchase", "churn"])
def test_holdout_deciles_are_calibrated_within_tolerance(scored, model) -> None:
    settings, _ = scored
    table = read_frame(
        settings.warehouse,
        "select decile, metric, value from ml.model_metrics where model_name = ? "
        "and scorer = 'model' and decile is not null",
        [model],
    ).pivot(index="decile", columns="metric", values="value")
    assert list(table.index) == list(range(1, 11))
    gap = (table["decile_mean_predicted"] - table["decile_observed_rate"]).abs()
    assert (gap <= CALIBRATION_TOLERANCE).all(), table
    # Deciles rank: the top decile's observed rate is well above the bottom's, lift > 1.
    assert table.loc[10, "decile_observed_rate"] > 2 * table.loc[1, "decile_observed_rate"]
    assert table.loc[10, "lift"] > 1.5
    assert table.loc[1, "capture"] == pytest.approx(1.0)


def test_scores_importance_and_runs_are_written(scored) -> None:
    settings, result = scored
    wh = settings.warehouse
    scores = read_frame(
        wh,
        "select model_name, count(*) n, count(distinct customer_id) k, min(score) lo, "
        "max(score) hi, min(decile) dmin, max(decile) dmax, count(distinct model_version) v "
        "from ml.propensity_scores where as_of_date = ? group by model_name order by 1",
        [AS_OF],
    ).set_index("model_name")
    snapshot = read_frame(
        wh,
        "select count(*) n from marts.customer_feature_history where as_of_date = ?",
        [AS_OF],
    )["n"].iloc[0]
    assert scores.loc["purchase", "n"] == snapshot  # every known customer gets a purchase score
    assert 0 < scores.loc["churn", "n"] < snapshot  # only active customers get a churn score
    assert (scores["n"] == scores["k"]).all()
    assert (scores["lo"] >= 0).all() and (scores["hi"] <= 1).all()
    assert (scores["dmin"] == 1).all() and (scores["dmax"] == 10).all()
    assert (scores["v"] == 1).all()
    by_decile = read_frame(
        wh,
        "select decile, avg(score) s from ml.propensity_scores where model_name = 'purchase' "
        "group by decile order by decile",
    )["s"]
    assert by_decile.is_monotonic_increasing
    importance = read_frame(
        wh,
        "select feature, importance_mean from ml.feature_importance "
        "where model_name = 'purchase' order by rank",
    )
    assert len(importance) > 20
    # The simulation's purchases follow recent browsing and cart adds.
    top = set(importance["feature"].head(5))
    assert top & {
        "cart_adds_7d",
        "cart_adds_30d",
        "sessions_7d",
        "page_views_7d",
        "product_views_7d",
    }, importance.head(10)
    assert result.rows_out == scores["n"].sum()
    assert result.stage == "score" and result.warnings == []


def test_rerun_replaces_rows_and_drift_is_measured_against_the_previous_run(
    scored, tmp_path: Path
) -> None:
    settings, first = _clone(scored[0], tmp_path), scored[1]
    warehouse = settings.warehouse
    before = read_frame(
        warehouse,
        "select model_name, customer_id, score, decile from ml.propensity_scores order by all",
    )
    counts = {
        t: read_frame(warehouse, f"select count(*) n from {t}")["n"].iloc[0]
        for t in ("ml.model_metrics", "ml.feature_importance")
    }
    # A previous night whose purchase scores all sat near 0.9: the distribution moved.
    yesterday = AS_OF - timedelta(days=1)
    con = connect(warehouse)
    con.execute(
        "insert into ml.propensity_scores select customer_id, ?, model_name, 0.9, decile, "
        "'old', 'old-run', 'model' from ml.propensity_scores where model_name = 'purchase'",
        [yesterday],
    )
    con.close()

    second = run_propensity(
        dataclasses.replace(settings, propensity=PropensitySettings(drift_psi_warning=0.2)), AS_OF
    )
    after = read_frame(
        warehouse,
        "select model_name, customer_id, score, decile from ml.propensity_scores "
        "where as_of_date = ? order by all",
        [AS_OF],
    )
    assert after.equals(before)  # same data, fixed random_state: the same scores
    for table, n in counts.items():
        assert read_frame(warehouse, f"select count(*) n from {table}")["n"].iloc[0] == n
    versions = read_frame(
        warehouse,
        "select distinct run_id from ml.propensity_scores where as_of_date = ?",
        [AS_OF],
    )["run_id"]
    assert set(versions) == {second.details[m]["run_id"] for m in ("purchase", "churn")}
    assert first.details["purchase"]["run_id"] not in set(versions)
    # ml.model_runs is the log of every run: the rerun adds its rows beside the first run's
    # (docs/tables.md); the night's newest row per model is the run its scores carry.
    runs = read_frame(
        warehouse,
        "select model_name, run_id, row_number() over (partition by model_name "
        "order by created_at desc) as newest from ml.model_runs where as_of_date = ?",
        [AS_OF],
    )
    assert runs.groupby("model_name").size().to_dict() == {"churn": 2, "purchase": 2}
    assert set(runs.loc[runs["newest"] == 1, "run_id"]) == set(versions)
    drift = read_frame(warehouse, "select * from ml.score_drift")
    assert drift["model_name"].tolist() == ["purchase"]
    assert drift["previous_as_of_date"].iloc[0].date() == yesterday
    assert drift["psi"].iloc[0] > 0.2 and bool(drift["is_over_threshold"].iloc[0])
    assert any("PSI" in w for w in second.warnings)


def _cut_history(warehouse: Path, keep_days: int) -> None:
    con = connect(warehouse)
    con.execute(
        "delete from marts.customer_daily_activity where activity_date < ?",
        [AS_OF - timedelta(days=keep_days - 1)],
    )
    con.close()


def test_too_little_history_reports_it_and_publishes_nothing(warehouse: Path) -> None:
    _cut_history(warehouse, keep_days=60)
    result = run_propensity(_settings(warehouse), AS_OF)
    assert isinstance(result, StageResult)
    assert any("not enough history to train (need 74 days" in w for w in result.warnings)
    assert any("no previously published 30-day model" in w for w in result.warnings)
    # No model evaluated, none published: the recency rule ranks tonight's customers.
    ranked = read_frame(
        warehouse,
        "select model_name, count(*) n, any_value(ranked_by) r, count(distinct ranked_by) k "
        "from ml.propensity_scores group by 1 order by 1",
    )
    assert ranked["model_name"].tolist() == ["churn", "purchase"]
    assert (ranked["r"] == "baseline_recency").all() and (ranked["k"] == 1).all()
    assert result.rows_out == ranked["n"].sum() > 0
    assert any(
        "purchase scores rank customers by the recency rule (baseline_recency; no model was "
        "evaluated tonight), not by a model" in w
        for w in result.warnings
    )
    runs = read_frame(warehouse, "select status, message from ml.model_runs")
    assert runs["status"].tolist() == ["not_published", "not_published"]
    assert runs["message"].str.contains("have 60").all()


def test_label_windows_past_the_newest_activity_are_not_trained_on(warehouse: Path) -> None:
    # The activity stops 10 days before the as-of date (an as-of date past the loaded files,
    # or files that have not landed yet): the newest cut-off's label window (AS_OF - 30,
    # AS_OF] is a third empty. Before, it was the holdout all the same, its missing days
    # counted as days without a purchase or a visit (generated shop, as of 12 days past its
    # data: purchase holdout base rate 0.24 instead of 0.32, churn 0.38 instead of 0.31).
    con = connect(warehouse)
    con.execute(
        "delete from marts.customer_daily_activity where activity_date > ?",
        [AS_OF - timedelta(days=10)],
    )
    con.close()
    result = run_propensity(_settings(warehouse), AS_OF)
    newest = (AS_OF - timedelta(days=30)).isoformat()
    for model in ("purchase", "churn"):
        params = json.loads(
            read_frame(warehouse, "select params from ml.model_runs where model_name = ?", [model])[
                "params"
            ].iloc[0]
        )
        assert params["cutoffs"]["holdout"] == (AS_OF - timedelta(days=60)).isoformat()
        assert newest not in params["usable_cutoffs"]
        assert params["censored_cutoffs"] == [newest]
        assert any(
            w.startswith(
                f"{model}: cut-off(s) {newest} left out: their 30-day label windows "
                "end after the newest activity in marts.customer_daily_activity "
                f"({AS_OF - timedelta(days=10)})"
            )
            for w in result.warnings
        ), result.warnings


def test_previous_model_keeps_scoring_and_a_foreign_one_is_refused(
    scored_earlier, tmp_path: Path
) -> None:
    # At AS_OF - 30 only two cut-offs have snapshots: the degraded (customer split) mode.
    settings, first = _clone(scored_earlier[0], tmp_path), scored_earlier[1]
    warehouse = settings.warehouse
    assert any("only two usable cut-offs" in w for w in first.warnings)
    purchase_run = first.details["purchase"]["run_id"]
    churn_run = first.details["churn"]["run_id"]
    assert first.details["purchase"]["status"] == "published"
    sidecar = settings.artifacts_dir / "purchase" / f"{purchase_run}.json"
    meta = json.loads(sidecar.read_text())
    meta["library_versions"]["scikit-learn"] = "1.5.2"
    sidecar.write_text(json.dumps(meta))
    _cut_history(warehouse, keep_days=70)

    result = run_propensity(settings, AS_OF)
    assert any("not enough history" in w for w in result.warnings)
    assert any(
        "purchase: previous published model refused" in w and "1.5.2" in w for w in result.warnings
    )
    assert any(
        f"scoring with the previous published model {churn_run}" in w for w in result.warnings
    )
    scores = read_frame(
        warehouse,
        "select model_name, count(*) n, any_value(model_version) v from ml.propensity_scores "
        "where as_of_date = ? group by 1",
        [AS_OF],
    ).set_index("model_name")
    # The model refused and none other published: the recency rule ranks (labelled so).
    assert scores.loc["purchase", "v"] == "baseline_recency"
    assert scores.loc["churn", "v"] == churn_run


def test_gate_needs_a_strictly_better_auc() -> None:
    summary = {
        "model": {"roc_auc": 0.70},
        "baseline_recency": {"roc_auc": 0.70},
        "baseline_bgnbd": {"roc_auc": 0.65},
    }
    ok, message = gate("purchase", summary)
    assert not ok and "does not beat baseline_recency 0.700" in message
    summary["model"]["roc_auc"] = 0.71
    assert gate("purchase", summary)[0]
    assert not gate("churn", {**summary, "model": {"roc_auc": float("nan")}})[0]
    # A higher AUC within the holdout's noise is not published; gate_p_value 1 publishes it.
    summary["model"].update(rows=68.0, positives=15.0)
    summary["baseline_recency"]["model_better_p_value"] = 0.38
    ok, message = gate("purchase", summary)
    assert not ok
    assert message == (
        "purchase: holdout AUC 0.710 does not beat baseline_recency 0.700 beyond chance "
        "(p = 0.38, needs below 0.05, on 68 holdout customers, 15 positive): a gap this small "
        "is within the holdout's noise; not published"
    )
    assert gate("purchase", summary, alpha=1.0)[0]
    summary["baseline_recency"]["model_better_p_value"] = 0.01
    assert gate("purchase", summary)[0]


def _perfect_recency_shop(days: int = 200, n: int = 600) -> pd.DataFrame:
    """Buyers order every 20 days forever, browsers never order: 'ordered in the last 30
    days' is then a perfect predictor of 'orders in the next 30', which no model can beat."""
    start = AS_OF - timedelta(days=days - 1)
    day = np.arange(days)
    cid = np.arange(n)
    grid_c, grid_d = np.repeat(cid, days), np.tile(day, n)
    buyer = grid_c < n // 2
    orders = buyer & ((grid_d + grid_c) % 20 == 0)
    visits = orders | (~buyer & ((grid_d + grid_c) % 10 == 0))
    keep = visits
    frame = pd.DataFrame(
        {
            "customer_id": np.char.add("p", grid_c[keep].astype(str)),
            "activity_date": [start + timedelta(days=int(d)) for d in grid_d[keep]],
            "sessions": 1,
            "page_views": 2,
            "product_views": 1,
            "searches": 0,
            "cart_adds": orders[keep].astype(int),
            "orders": orders[keep].astype(int),
            "revenue": orders[keep] * 25.0,
            "email_opens": 0,
            "email_clicks": 0,
            "session_duration_s": 60.0,
            "mobile_sessions": 0,
        }
    )
    return frame


def test_a_model_that_does_not_beat_the_baseline_is_not_published_previous_one_scores(
    scored_earlier, tmp_path: Path
) -> None:
    settings, first = _clone(scored_earlier[0], tmp_path), scored_earlier[1]
    warehouse = settings.warehouse
    previous = first.details["purchase"]["run_id"]
    assert first.details["purchase"]["status"] == "published"

    write_activity(warehouse, _perfect_recency_shop())
    build_snapshots(warehouse, snapshot_dates(AS_OF))
    result = run_propensity(settings, AS_OF)

    purchase = result.details["purchase"]
    assert purchase["status"] == "not_published"
    assert "does not beat" in purchase["message"]
    assert purchase["holdout"]["baseline_recency"]["roc_auc"] == pytest.approx(1.0)
    assert any(
        f"scoring with the previous published model {previous}" in w for w in result.warnings
    )
    scores = read_frame(
        warehouse,
        "select distinct model_version from ml.propensity_scores "
        "where model_name = 'purchase' and as_of_date = ?",
        [AS_OF],
    )
    assert scores["model_version"].tolist() == [previous]
    runs = read_frame(
        warehouse,
        "select status, artifact_path from ml.model_runs "
        "where model_name = 'purchase' and as_of_date = ?",
        [AS_OF],
    )
    # The losing model is kept as an artifact for inspection, but not published.
    assert runs["status"].tolist() == ["not_published"]
    assert Path(runs["artifact_path"].iloc[0]).exists()


def test_models_trained_at_once_equal_models_trained_one_after_the_other(
    sim_warehouse: Path, tmp_path: Path
) -> None:
    """predict_threads = 2 runs both models at once (a thread each); 1 runs them in turn.
    The fits, scores, importances and metrics must not depend on it."""
    tables = {
        "ml.propensity_scores": "model_name, customer_id, score, decile",
        "ml.feature_importance": "model_name, feature, importance_mean, importance_std, rank",
        "ml.model_metrics": "model_name, scorer, metric, decile, value",
    }
    results = []
    for threads in (2, 1):
        wh = tmp_path / str(threads) / "segmint.duckdb"
        wh.parent.mkdir()
        shutil.copy(sim_warehouse, wh)
        result = run_propensity(_settings(wh, predict_threads=threads), AS_OF)
        assert all(result.details[m]["status"] == "published" for m in ("purchase", "churn"))
        frames = {
            table: read_frame(wh, f"select {cols} from {table} order by all")
            for table, cols in tables.items()
        }
        results.append((result.details, frames))
    (together, frames_together), (in_turn, frames_in_turn) = results
    for model in ("purchase", "churn"):
        assert together[model]["holdout"] == in_turn[model]["holdout"]
    for table, frame in frames_together.items():
        assert len(frame) > 0, table
        pd.testing.assert_frame_equal(frame, frames_in_turn[table], check_exact=True)
