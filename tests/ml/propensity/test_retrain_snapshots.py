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
