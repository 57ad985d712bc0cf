"""Which snapshot dates a night asks dbt for: the propensity cut-offs only when a propensity
model may retrain (segmint.transform.snapshots_tonight reads ml.model_runs, no model loaded)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from pathlib import Path

from ml.io import MODEL_RUNS_DDL
from ml.propensity.cadence import training_settings
from ml.registry import ModelMetadata, save_model
from segmint.config import PropensitySettings, Settings, TransformSettings
from segmint.transform import snapshots_tonight
from segmint.warehouse import connect

AS_OF = date(2026, 6, 30)
START = date(2026, 3, 1)
CUTOFFS = [date(2026, 4, 1), date(2026, 5, 1), date(2026, 5, 31)]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        warehouse=tmp_path / "wh" / "segmint.duckdb",
        propensity=PropensitySettings(horizon_days=30, training_cutoffs=3, retrain_every_days=7),
    )


def _publish(settings: Settings, name: str, trained: date, *, horizon: int = 30) -> None:
    """A published model run and its files (a stand-in model, a real sidecar), as
    ml/propensity leaves them."""
    run_id = f"{name}-{trained}"
    params = training_settings(settings, horizon)
    con = connect(settings.warehouse)
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute(MODEL_RUNS_DDL)
    con.execute(
        "INSERT INTO ml.model_runs (run_id, model_name, as_of_date, params, status, created_at) "
        "VALUES (?, ?, ?, ?, 'published', ?)",
        [run_id, name, trained, json.dumps(params), datetime(2026, 7, 1)],
    )
    con.close()
    meta = ModelMetadata(run_id, name, trained.isoformat(), features=[], params=params)
    save_model(settings.artifacts_dir, {"model": name}, meta)


def test_first_night_without_models_builds_the_cutoff_snapshots(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    connect(settings.warehouse).close()
    dates, reason = snapshots_tonight(settings, AS_OF, START)
    assert dates == [*CUTOFFS, AS_OF]
    assert "no 30-day model published before" in reason


def test_nights_between_retrainings_build_only_their_own_snapshot(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for name in ("purchase", "churn"):
        _publish(settings, name, AS_OF - timedelta(days=3))
    dates, reason = snapshots_tonight(settings, AS_OF, START)
    assert dates == [AS_OF]
    assert "no propensity retrain due" in reason


def test_a_model_due_or_missing_brings_the_cutoffs_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _publish(settings, "purchase", AS_OF - timedelta(days=3))
    # churn has no model yet
    dates, reason = snapshots_tonight(settings, AS_OF, START)
    assert dates == [*CUTOFFS, AS_OF] and "churn" in reason
    # churn published 7 days ago: due by the cadence
    _publish(settings, "churn", AS_OF - timedelta(days=7))
    dates, reason = snapshots_tonight(settings, AS_OF, START)
    assert dates == [*CUTOFFS, AS_OF] and "7 days old" in reason
    # a model of another horizon does not count
    _publish(settings, "churn", AS_OF - timedelta(days=1), horizon=60)
    assert snapshots_tonight(settings, AS_OF, START)[0] == [*CUTOFFS, AS_OF]
    # tonight's own run (a rerun of the night) does not count either
    _publish(settings, "churn", AS_OF)
    assert snapshots_tonight(settings, AS_OF, START)[0] == [*CUTOFFS, AS_OF]
    # a recent churn model whose file is gone: the registry would refuse it
    _publish(settings, "churn", AS_OF - timedelta(days=2))
    assert snapshots_tonight(settings, AS_OF, START)[0] == [AS_OF]
    (settings.artifacts_dir / "churn" / f"churn-{AS_OF - timedelta(days=2)}.joblib").unlink()
    dates, reason = snapshots_tonight(settings, AS_OF, START)
    assert dates == [*CUTOFFS, AS_OF] and "refused" in reason and "not found" in reason


def test_a_retrain_the_score_stage_decides_brings_the_cutoffs_back(tmp_path: Path) -> None:
    """The score stage's reasons beyond age and files: changed training settings, a model file
    the registry refuses (another scikit-learn)."""
    settings = _settings(tmp_path)
    for name in ("purchase", "churn"):
        _publish(settings, name, AS_OF - timedelta(days=1))
    assert snapshots_tonight(settings, AS_OF, START)[0] == [AS_OF]
    changed = dataclasses.replace(
        settings, propensity=dataclasses.replace(settings.propensity, min_history_days=20)
    )
    dates, reason = snapshots_tonight(changed, AS_OF, START)
    assert dates == [*CUTOFFS, AS_OF] and "training settings changed" in reason
    sidecar = settings.artifacts_dir / "churn" / f"churn-{AS_OF - timedelta(days=1)}.json"
    meta = json.loads(sidecar.read_text())
    meta["library_versions"]["scikit-learn"] = "1.5.2"
    sidecar.write_text(json.dumps(meta))
    dates, reason = snapshots_tonight(settings, AS_OF, START)
    assert dates == [*CUTOFFS, AS_OF] and "churn" in reason and "1.5.2" in reason


def test_settings_force_the_cutoffs_every_night(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for name in ("purchase", "churn"):
        _publish(settings, name, AS_OF - timedelta(days=1))
    every_night = dataclasses.replace(
        settings, transform=TransformSettings(cutoff_snapshots_every_night=True)
    )
    assert snapshots_tonight(every_night, AS_OF, START)[0] == [*CUTOFFS, AS_OF]
    always = dataclasses.replace(
        settings,
        propensity=dataclasses.replace(settings.propensity, retrain_every_days=0),
    )
    assert snapshots_tonight(always, AS_OF, START)[0] == [*CUTOFFS, AS_OF]
