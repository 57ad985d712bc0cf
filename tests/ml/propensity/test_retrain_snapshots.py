"""A retrain the score stage decides finds its cut-off snapshots: the transform stage asks the
same decision (ml.propensity.cadence) before dbt runs. Through the real ingest, dbt and score
stages on a generated landing zone, two consecutive nights."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from ml.io import read_frame
from ml.propensity import run_propensity
from segmint.config import Settings
from segmint.generate import generate
from segmint.ingest import run_ingest
from segmint.transform import run_transform

pytestmark = pytest.mark.timeout(900)

NIGHT = date(2026, 6, 20)
NEXT = NIGHT + timedelta(days=1)


def _night(settings: Settings, as_of: date) -> tuple[list[str], object]:
    run_ingest(settings, as_of)
    transform = run_transform(settings, as_of)
    return transform.details["snapshot_dates"], run_propensity(settings, as_of)


def test_changed_training_settings_build_the_cutoffs_the_retrain_reads(tmp_path: Path) -> None:
    landing = tmp_path / "data" / "landing"
    generate(landing, customers=2000, days=140, end_date=NEXT, seed=11)
    settings = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=landing,
        output=tmp_path / "output",
    )
    _, first = _night(settings, NIGHT)
    assert {first.details[m]["status"] for m in ("purchase", "churn")} == {"published"}

    # The next night, the models are a day old (retrain every 7) but a training setting
    # changed: the score stage retrains, so transform must build tonight's cut-offs.
    changed = dataclasses.replace(
        settings, propensity=dataclasses.replace(settings.propensity, min_history_days=20)
    )
    dates, second = _night(changed, NEXT)
    cutoffs = [c.isoformat() for c in changed.propensity.cutoff_dates(NEXT, 30)]
    assert set(cutoffs) <= set(dates), dates
    runs = read_frame(
        settings.warehouse,
        "select model_name, status, message, training_rows, params from ml.model_runs "
        "where as_of_date = ? and model_name in ('purchase', 'churn')",
        [NEXT],
    )
    for run in runs.itertuples():
        params = json.loads(run.params)
        assert "training settings changed" in params["retrain_reason"], run.message
        assert params["usable_cutoffs"] == cutoffs, run.message
        assert run.training_rows > 0 and run.status in {"published", "not_published"}
    assert not any("cannot train" in w or "not enough" in w for w in second.warnings)


def test_a_changed_feature_window_retrains_on_the_rebuilt_feature_history(tmp_path: Path) -> None:
    """A shop sets favourite_category_days to 60 in dbt_project.yml: the next night rebuilds
    the feature history with the new window, so a model trained on the old window's features
    must not score them (until 2026-12-07 a day-old model scored them). Both models retrain,
    saying which var changed, on the cut-offs tonight's rebuild built; the night after
    scores with the new models."""
    import shutil

    import yaml

    from segmint.transform import REPO_ROOT

    project = tmp_path / "dbt_project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    landing = tmp_path / "data" / "landing"
    generate(landing, customers=2000, days=140, end_date=NEXT + timedelta(days=1), seed=11)
    base = Settings(
        warehouse=tmp_path / "warehouse" / "segmint.duckdb",
        landing=landing,
        output=tmp_path / "output",
    )
    settings = dataclasses.replace(
        base, transform=dataclasses.replace(base.transform, dbt_project_dir=project)
    )
    _, first = _night(settings, NIGHT)
    assert {first.details[m]["status"] for m in ("purchase", "churn")} == {"published"}
    trained = json.loads(
        read_frame(
            settings.warehouse,
            "select params from ml.model_runs where as_of_date = ? and model_name = 'purchase'",
            [NIGHT],
        )["params"].iloc[0]
    )
    assert trained["feature_vars"]["favourite_category_days"] == "90"

    path = project / "dbt_project.yml"
    data = yaml.safe_load(path.read_text())
    data["vars"]["favourite_category_days"] = 60
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    dates, second = _night(settings, NEXT)
    cutoffs = [c.isoformat() for c in settings.propensity.cutoff_dates(NEXT, 30)]
    assert set(cutoffs) <= set(dates), dates
    for name in ("purchase", "churn"):
        night = second.details[name]
        assert night["retrained"] is True, night
        assert (
            "feature definition changed" in night["retrain_reason"]
            and "favourite_category_days 90 -> 60" in night["retrain_reason"]
        ), night["retrain_reason"]
    # Neither that night nor the next does the old window's model score: a retrain the gate
    # did not publish ranks by the rule instead of falling back to it.
    _, third = _night(settings, NEXT + timedelta(days=1))
    old = {first.details[m]["run_id"] for m in ("purchase", "churn")}
    versions = read_frame(
        settings.warehouse,
        "select distinct model_version from ml.propensity_scores where as_of_date > ?",
        [NIGHT],
    )["model_version"].tolist()
    assert versions and not old & set(versions), versions
    for name in ("purchase", "churn"):
        if third.details[name]["status"] == "reused":  # the new window's model, published
            assert third.details[name]["model_version"] == second.details[name]["run_id"]
