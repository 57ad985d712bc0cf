"""Train on a cadence, score nightly: the night after a training night scores with the
registered model (and says which), retrains on drift, on age, on changed settings or
features, and never scores with a model that did not pass its gate."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.io import read_frame
from ml.propensity import dataset, run_propensity
from ml.propensity.stage import registered_before, retrain_reason
from segmint.config import PropensitySettings, Settings
from segmint.warehouse import connect
from tests.ml.propensity.simshop import AS_OF, build_snapshots, snapshot_dates

YESTERDAY = AS_OF - timedelta(days=1)


def _settings(warehouse: Path, **propensity: object) -> Settings:
    return Settings(
        warehouse=warehouse, propensity=dataclasses.replace(PropensitySettings(), **propensity)
    )


@pytest.fixture(scope="module")
def trained_yesterday(sim_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """A warehouse scored (and trained) for AS_OF - 1, with AS_OF's snapshots ready."""
    wh = tmp_path_factory.mktemp("cadence") / "warehouse" / "segmint.duckdb"
    wh.parent.mkdir(parents=True)
    shutil.copy(sim_warehouse, wh)
    build_snapshots(wh, snapshot_dates(YESTERDAY))
    settings = _settings(wh)
    return settings, run_propensity(settings, YESTERDAY)


def _clone(settings: Settings, tmp: Path) -> Settings:
    target = tmp / "clone" / "warehouse"
    shutil.copytree(settings.warehouse.parent, target)
    return dataclasses.replace(settings, warehouse=target / settings.warehouse.name)


def _rows(wh: Path, table: str, as_of, columns: str) -> list[tuple]:
    frame = read_frame(
        wh, f"select {columns} from {table} where as_of_date = ? order by all", [as_of]
    )
    # NaN (a decile left empty by ties has no rate) as None, which compares equal.
    frame = frame.astype(object).where(frame.notna(), None)
    return [tuple(r) for r in frame.itertuples(index=False)]


def test_next_night_scores_with_the_registered_model_and_says_which(
    trained_yesterday, tmp_path: Path
) -> None:
    settings, first = _clone(trained_yesterday[0], tmp_path), trained_yesterday[1]
    wh = settings.warehouse
    assert {first.details[m]["status"] for m in ("purchase", "churn")} == {"published"}

    result = run_propensity(settings, AS_OF)
    for model in ("purchase", "churn"):
        trained_run = first.details[model]["run_id"]
        detail = result.details[model]
        assert detail["status"] == "reused" and detail["retrained"] is False
        assert detail["model_version"] == trained_run
        run = read_frame(
            wh,
            "select status, message, params, metrics, training_rows from ml.model_runs "
            "where model_name = ? and as_of_date = ?",
            [model, AS_OF],
        ).iloc[0]
        assert run["status"] == "reused" and run["training_rows"] == 0
        assert trained_run in run["message"] and "1 day ago; retrain every 7 days" in run["message"]
        params = json.loads(run["params"])
        assert params["model_version"] == trained_run and params["model_age_days"] == 1
        assert json.loads(run["metrics"])["scored_with"] == trained_run
        versions = read_frame(
            wh,
            "select distinct model_version from ml.propensity_scores "
            "where model_name = ? and as_of_date = ?",
            [model, AS_OF],
        )["model_version"].tolist()
        assert versions == [trained_run]
        # The evidence next to tonight's scores is the scoring model's training evaluation.
        cols = "scorer, metric, value, decile"
        tonight = _rows(wh, "ml.model_metrics", AS_OF, cols + ", model_name")
        assert tonight == _rows(wh, "ml.model_metrics", YESTERDAY, cols + ", model_name")
        cols = "model_name, feature, importance_mean, rank"
        assert _rows(wh, "ml.feature_importance", AS_OF, cols) == _rows(
            wh, "ml.feature_importance", YESTERDAY, cols
        )
    # Every known customer of tonight's snapshot is scored (purchase), drift is measured.
    n = read_frame(
        wh, "select count(*) n from marts.customer_feature_history where as_of_date = ?", [AS_OF]
    )["n"].iloc[0]
    assert _rows(wh, "ml.propensity_scores", AS_OF, "count(*)")[0][0] > n
    drift = read_frame(
        wh, "select model_name, psi from ml.score_drift where as_of_date = ?", [AS_OF]
    )
    assert sorted(drift["model_name"]) == ["churn", "purchase"]
    assert (drift["psi"] < 0.2).all()

    # A rerun of the night decides the same way and writes the same scores.
    cols = "model_name, customer_id, score, decile, model_version"
    before = _rows(wh, "ml.propensity_scores", AS_OF, cols)
    again = run_propensity(settings, AS_OF)
    assert again.details["purchase"]["status"] == "reused"
    assert _rows(wh, "ml.propensity_scores", AS_OF, cols) == before


def _drift_purchase_scores(settings: Settings) -> None:
    """Last night's purchase scores all 0.97: tonight's scores drift far over the threshold."""
    con = connect(settings.warehouse)
    con.execute(
        "update ml.propensity_scores set score = 0.97 where as_of_date = ? "
        "and model_name = 'purchase'",
        [YESTERDAY],
    )
    con.close()


def test_drift_over_the_threshold_retrains_tonight(trained_yesterday, tmp_path: Path) -> None:
    settings = _clone(trained_yesterday[0], tmp_path)
    _drift_purchase_scores(settings)
    result = run_propensity(settings, AS_OF)
    assert result.details["churn"]["status"] == "reused"
    purchase = result.details["purchase"]
    assert purchase["retrained"] is True and purchase["status"] == "published"
    assert "score distribution shifted" in purchase["retrain_reason"]
    assert any(
        "purchase: retrained tonight: score distribution shifted" in w for w in result.warnings
    )
    versions = read_frame(
        settings.warehouse,
        "select distinct model_version from ml.propensity_scores "
        "where model_name = 'purchase' and as_of_date = ?",
        [AS_OF],
    )["model_version"].tolist()
    assert versions == [purchase["run_id"]]


def test_retrain_reasons(trained_yesterday, tmp_path: Path) -> None:
    settings = _clone(trained_yesterday[0], tmp_path)
    wh = settings.warehouse
    spec = dataset.feature_spec(wh)
    registered = registered_before(settings, "purchase", AS_OF, 30)
    assert registered is not None and registered.as_of_date == YESTERDAY

    def reason(s: Settings = settings, when=AS_OF, found=registered, sp=spec) -> str | None:
        return retrain_reason(s, when, "purchase", 30, sp, found)

    assert reason() is None
    assert "1 day old (retrain every 1 day)" in reason(_settings(wh, retrain_every_days=1))
    assert "train every night" in reason(_settings(wh, retrain_every_days=0))
    assert "8 days old" in reason(when=YESTERDAY + timedelta(days=8))
    assert "training settings changed" in reason(_settings(wh, active_lookback_days=60))
    narrower = dataclasses.replace(spec, numeric=spec.numeric[:-1])
    assert "feature schema changed" in reason(sp=narrower)
    assert "no 30-day model published before" in reason(found=None)
    # Only models of earlier nights count: a rerun of the training night trains again.
    assert registered_before(settings, "purchase", YESTERDAY, 30) is None
    # A model that did not pass its gate is never used to score.
    con = connect(wh)
    con.execute("update ml.model_runs set status = 'not_published' where model_name = 'purchase'")
    con.close()
    assert registered_before(settings, "purchase", AS_OF, 30) is None
    # A file the registry refuses (another scikit-learn) means retraining, with the reason.
    sidecar = (
        settings.artifacts_dir / "churn" / f"{trained_yesterday[1].details['churn']['run_id']}.json"
    )
    meta = json.loads(sidecar.read_text())
    meta["library_versions"]["scikit-learn"] = "1.5.2"
    sidecar.write_text(json.dumps(meta))
    found = registered_before(settings, "churn", AS_OF, 30)
    assert found is not None and found.refused and "1.5.2" in found.refused
    assert "refused" in retrain_reason(settings, AS_OF, "churn", 30, spec, found)


def test_a_drift_retrain_without_its_cutoff_snapshots_says_which_are_missing(
    trained_yesterday, tmp_path: Path
) -> None:
    """Drift is known only after scoring, when transform has built the as-of snapshot only:
    the retrain cannot run, and the night says which snapshots it lacks, not that the shop
    has too little history."""
    settings = _clone(trained_yesterday[0], tmp_path)
    cutoffs = settings.propensity.cutoff_dates(AS_OF, 30)
    con = connect(settings.warehouse)
    con.execute("delete from marts.customer_feature_history where as_of_date in (?, ?, ?)", cutoffs)
    con.close()
    _drift_purchase_scores(settings)
    result = run_propensity(settings, AS_OF)
    missing = ", ".join(c.isoformat() for c in cutoffs)
    assert any(
        w.startswith(
            "purchase: cannot train: marts.customer_feature_history lacks the cut-off "
            f"snapshot(s) {missing}"
        )
        and "cutoff_snapshots_every_night" in w
        for w in result.warnings
    ), result.warnings
    assert not any("not enough history" in w for w in result.warnings)
    purchase = result.details["purchase"]
    assert purchase["model_version"] == trained_yesterday[1].details["purchase"]["run_id"]


def test_a_retrain_night_measures_drift_with_the_previous_nights_model(
    trained_yesterday, tmp_path: Path
) -> None:
    """PSI compares populations, not models: a night that retrains (here: a changed setting)
    records the PSI the night would have recorded scoring with yesterday's model."""
    reused = _clone(trained_yesterday[0], tmp_path / "reused")
    run_propensity(reused, AS_OF)
    retrained = _clone(trained_yesterday[0], tmp_path / "retrained")
    retrained = dataclasses.replace(
        retrained, propensity=dataclasses.replace(retrained.propensity, random_state=7)
    )
    result = run_propensity(retrained, AS_OF)
    yesterdays = {m: trained_yesterday[1].details[m]["run_id"] for m in ("purchase", "churn")}
    for model in ("purchase", "churn"):
        assert result.details[model]["retrained"] is True
        assert result.details[model]["model_version"] != yesterdays[model]
    cols = "model_name, previous_as_of_date, psi, is_over_threshold, bins"
    assert _rows(retrained.warehouse, "ml.score_drift", AS_OF, cols) == _rows(
        reused.warehouse, "ml.score_drift", AS_OF, cols
    )
    assert not any("score distribution shifted" in w for w in result.warnings), result.warnings


def test_the_first_model_night_after_a_rule_night_measures_drift(
    trained_yesterday, tmp_path: Path
) -> None:
    """No model was published yesterday: the recency rule ranked the list (a rank, no
    drift row). Tonight a model is published; its first night compared nothing, so the
    report said "no two nights of propensity scores to compare yet" and a shifted
    population went unseen until the night after. Yesterday's customers are now scored
    with tonight's model, and the drift row says so."""
    settings = _clone(trained_yesterday[0], tmp_path)
    con = connect(settings.warehouse)
    con.execute(
        "update ml.model_runs set status = 'not_published' where as_of_date = ?", [YESTERDAY]
    )
    con.execute(
        "update ml.propensity_scores set model_version = 'baseline_recency', "
        "ranked_by = 'baseline_recency' where as_of_date = ?",
        [YESTERDAY],
    )
    con.execute("delete from ml.score_drift")
    con.close()
    result = run_propensity(settings, AS_OF)
    drift = read_frame(
        settings.warehouse,
        "select model_name, previous_as_of_date, psi from ml.score_drift where as_of_date = ?",
        [AS_OF],
    )
    published = [m for m in ("purchase", "churn") if result.details[m]["status"] == "published"]
    assert published, result.details
    assert sorted(drift["model_name"]) == sorted(published), drift
    assert (drift["previous_as_of_date"].dt.date == YESTERDAY).all(), drift
    assert (drift["psi"] < 0.2).all(), drift
    for model in published:
        assert result.details[model]["psi"] is not None


def test_a_feature_redefinition_night_compares_no_scores_of_the_old_definition(
    trained_yesterday, tmp_path: Path
) -> None:
    """A dbt var the features are built with changed since yesterday (mobile_device_types
    here): yesterday's stored scores are of the old definition, and a PSI against them
    measures the redefinition (generated shop of 400: purchase 0.104, 0.014 the same night
    without the change). With yesterday's snapshot still in the feature history (rebuilt
    with the new definition) tonight's model scores it and that is compared; without it,
    no drift row, and the night says why."""
    import yaml

    from segmint.transform import REPO_ROOT

    project = tmp_path / "dbt_project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dbt_project" / "dbt_project.yml", project)
    data = yaml.safe_load((project / "dbt_project.yml").read_text())
    data["vars"]["mobile_device_types"] = ["tablet"]
    (project / "dbt_project.yml").write_text(yaml.safe_dump(data, sort_keys=False))

    def redefined(tmp: Path) -> Settings:
        settings = _clone(trained_yesterday[0], tmp)
        return dataclasses.replace(
            settings,
            transform=dataclasses.replace(settings.transform, dbt_project_dir=project),
        )

    kept = redefined(tmp_path / "kept")
    result = run_propensity(kept, AS_OF)
    drift = _rows(kept.warehouse, "ml.score_drift", AS_OF, "model_name, previous_as_of_date")
    published = [m for m in ("purchase", "churn") if result.details[m]["status"] == "published"]
    assert published and drift == [(m, pd.Timestamp(YESTERDAY)) for m in sorted(published)]
    assert not any("not measured" in w for w in result.warnings), result.warnings
    # The run records the definition its scores were built with.
    for model in published:
        params = json.loads(
            read_frame(
                kept.warehouse,
                "select params from ml.model_runs where model_name = ? and as_of_date = ?",
                [model, AS_OF],
            )["params"].iloc[0]
        )
        assert params["feature_vars"]["mobile_device_types"] == '["tablet"]'

    gone = redefined(tmp_path / "gone")
    con = connect(gone.warehouse)
    con.execute(f"delete from {dataset.FEATURE_HISTORY} where as_of_date = ?", [YESTERDAY])
    con.close()
    result = run_propensity(gone, AS_OF)
    assert _rows(gone.warehouse, "ml.score_drift", AS_OF, "model_name") == []
    for model in published:
        assert (
            f"{model}: score drift not measured on {AS_OF}: the feature definition changed "
            f"since the scores of {YESTERDAY} (dbt vars: mobile_device_types "
            '["mobile", "tablet"] -> ["tablet"]), so they are not comparable with tonight\'s'
        ) in " ".join(result.warnings), result.warnings
