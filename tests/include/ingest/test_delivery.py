"""Has the as-of date's events partition landed? The check behind the nightly DAG's wait
(`[ingest] wait_for_as_of_events_hours`, `partition_ready_marker`), and its Airflow glue:
reschedule while waiting, fail or go on when the time is up."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from segmint.config import ConfigError, IngestSettings, Settings
from segmint.ingest.files import as_of_delivery
from segmint.ops import LANDING_POLL, wait_for_delivery

AS_OF = date(2026, 6, 30)
END_OF_DAY = datetime(2026, 7, 1, tzinfo=UTC)


def partition(landing: Path, *names: str) -> Path:
    folder = landing / "events" / f"dt={AS_OF}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text('{"event_id": "e1"}\n')
    return folder


def test_a_data_file_in_the_partition_is_a_delivery(tmp_path: Path) -> None:
    partition(tmp_path, "part-0.jsonl.gz", "part-1.CSV")
    got = as_of_delivery(tmp_path, AS_OF, END_OF_DAY, wait_hours=6)
    assert (got.status, got.files, got.deadline) == ("landed", 2, None)


@pytest.mark.parametrize("names", [(), (".DS_Store", "_SUCCESS", "_temporary"), ("notes.txt",)])
def test_hidden_files_markers_and_other_files_are_no_delivery(tmp_path: Path, names) -> None:
    partition(tmp_path, *names)
    got = as_of_delivery(tmp_path, AS_OF, END_OF_DAY + timedelta(hours=1), wait_hours=6)
    assert (got.status, got.files) == ("waiting", 0)
    assert got.deadline == END_OF_DAY + timedelta(hours=6)
    assert f"no events file in {tmp_path / 'events' / 'dt=2026-06-30'}" in got.message
    assert "waiting until 2026-07-01 06:00 UTC" in got.message


def test_no_partition_folder_waits_then_is_late(tmp_path: Path) -> None:
    before = as_of_delivery(tmp_path, AS_OF, END_OF_DAY + timedelta(hours=5, minutes=59), 6)
    after = as_of_delivery(tmp_path, AS_OF, END_OF_DAY + timedelta(hours=6), 6)
    assert before.status == "waiting"
    assert after.status == "late"
    assert after.message.endswith(
        "by 2026-07-01 06:00 UTC: the delivery for 2026-06-30 is late or missing"
    )


def test_without_a_wait_a_missing_partition_is_late_at_once(tmp_path: Path) -> None:
    # a backfill of a day that never had data, or a deployment that does not wait
    got = as_of_delivery(tmp_path, AS_OF, datetime(2026, 6, 30, 12, tzinfo=UTC), wait_hours=0)
    assert (got.status, got.deadline) == ("late", None)


def test_a_marker_holds_the_partition_back_until_it_is_written(tmp_path: Path) -> None:
    folder = partition(tmp_path, "part-0.jsonl")
    now = END_OF_DAY + timedelta(hours=1)
    got = as_of_delivery(tmp_path, AS_OF, now, 6, marker="_SUCCESS")
    assert (got.status, got.files) == ("waiting", 1)
    assert "but no _SUCCESS marker (still being written)" in got.message
    (folder / "_SUCCESS").touch()
    assert as_of_delivery(tmp_path, AS_OF, now, 6, marker="_SUCCESS").status == "landed"


def test_a_naive_now_is_read_as_utc(tmp_path: Path) -> None:
    got = as_of_delivery(tmp_path, AS_OF, datetime(2026, 7, 1, 5), wait_hours=6)
    assert got.status == "waiting"


def settings_for(landing: Path, **ingest) -> Settings:
    # Its own output folder: the default (./output) put the Data Docs into the checkout.
    return Settings(
        landing=landing,
        warehouse=landing / "w.duckdb",
        output=landing / "output",
        ingest=IngestSettings(**ingest),
    )


def test_the_task_reschedules_itself_while_waiting_never_past_the_deadline(tmp_path) -> None:
    settings = settings_for(tmp_path, wait_for_as_of_events_hours=6)
    now = END_OF_DAY + timedelta(hours=1)
    with pytest.raises(AirflowRescheduleException) as poll:
        wait_for_delivery(settings, AS_OF, now)
    assert poll.value.reschedule_date == now + LANDING_POLL
    almost = END_OF_DAY + timedelta(hours=5, minutes=58)
    with pytest.raises(AirflowRescheduleException) as last:
        wait_for_delivery(settings, AS_OF, almost)
    assert last.value.reschedule_date == END_OF_DAY + timedelta(hours=6)


def test_time_up_fails_the_night_when_the_day_is_required(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, wait_for_as_of_events_hours=2, require_as_of_events=True)
    with pytest.raises(AirflowFailException) as failed:
        wait_for_delivery(settings, AS_OF, END_OF_DAY + timedelta(hours=3))
    assert "no events file in" in str(failed.value)
    assert "by 2026-07-01 02:00 UTC" in str(failed.value)
    assert "Clear this task to rerun the night once the files have landed" in str(failed.value)


def test_time_up_runs_the_night_without_the_day_when_not_required(tmp_path, caplog) -> None:
    settings = settings_for(tmp_path, wait_for_as_of_events_hours=2)
    with caplog.at_level(logging.WARNING, logger="segmint.ops"):
        wait_for_delivery(settings, AS_OF, END_OF_DAY + timedelta(hours=3))
    assert "the night runs without them" in caplog.text


def test_a_landed_partition_lets_the_night_start(tmp_path: Path) -> None:
    partition(tmp_path, "events.parquet")
    settings = settings_for(tmp_path, wait_for_as_of_events_hours=6, require_as_of_events=True)
    assert wait_for_delivery(settings, AS_OF, END_OF_DAY + timedelta(hours=1)) is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"wait_for_as_of_events_hours": -1}, "between 0 and 168"),
        ({"wait_for_as_of_events_hours": 200}, "between 0 and 168"),
        ({"partition_ready_marker": "done/_SUCCESS"}, "a file name inside the partition"),
    ],
)
def test_bad_wait_settings_are_config_errors(setting: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        IngestSettings(**setting)


def _dag_run(run_type: str):
    """The DAG run a task's context holds (Airflow's own model), of ``run_type``."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType

    start = datetime(2026, 6, 30, tzinfo=UTC)
    return DagRun(
        dag_id="segmint_nightly",
        run_id=f"{run_type}__2026-07-01T00:00:00+00:00",
        logical_date=start,
        data_interval_start=start,
        data_interval_end=END_OF_DAY,
        run_after=END_OF_DAY,
        start_date=END_OF_DAY,
        end_date=None,
        run_type=DagRunType(run_type),
        state=DagRunState.RUNNING,
        consumed_asset_events=[],
        partition_key=None,
    )


def test_a_scheduled_night_waits_for_its_day_by_default(tmp_path: Path, caplog) -> None:
    """A scheduled run starts at 00:00 UTC, when the day has just ended: with the default
    (no wait) it ran before the exporter had delivered the day and published the night
    without the day's events, a warning in the validate task's log the only sign. Unset,
    the wait is 6 h for a scheduled run; a backfill or a manual run does not wait."""
    from segmint.ops import _run_type

    settings = settings_for(tmp_path)  # nothing set
    scheduled = _run_type({"dag_run": _dag_run("scheduled")})
    assert scheduled == "scheduled"
    now = END_OF_DAY + timedelta(minutes=5)
    with pytest.raises(AirflowRescheduleException) as poll:
        wait_for_delivery(settings, AS_OF, now, run_type=scheduled)
    assert poll.value.reschedule_date == now + LANDING_POLL
    with caplog.at_level(logging.WARNING, logger="segmint.ops"):
        wait_for_delivery(settings, AS_OF, END_OF_DAY + timedelta(hours=6), run_type=scheduled)
    assert "by 2026-07-01 06:00 UTC" in caplog.text and "the night runs without them" in caplog.text

    for other in ("backfill", "manual"):
        run_type = _run_type({"dag_run": _dag_run(other)})
        assert settings.ingest.as_of_events_wait_hours(run_type) == 0
        assert wait_for_delivery(settings, AS_OF, now, run_type=run_type) is None
    no_wait = settings_for(tmp_path, wait_for_as_of_events_hours=0)
    assert no_wait.ingest.as_of_events_wait_hours(scheduled) == 0
    assert (
        settings_for(tmp_path, wait_for_as_of_events_hours=2).ingest.as_of_events_wait_hours(
            "manual"
        )
        == 2
    )
