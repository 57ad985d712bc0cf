"""segmint.transform: snapshot dates, the dbt command, and clear failures (real dbt)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from segmint.config import PropensitySettings, Settings
from segmint.stages import SegmintError
from segmint.transform import (
    dbt_command,
    dbt_dirs,
    dbt_env,
    failures,
    run_transform,
    snapshot_dates,
)
from segmint.warehouse import connect, ensure_raw_tables


def test_snapshot_dates_cover_both_horizons_and_skip_dates_before_the_data(
    tmp_path: Path,
) -> None:
    settings = Settings(
        warehouse=tmp_path / "w.duckdb",
        propensity=PropensitySettings(horizon_days=30, churn_horizon_days=45, training_cutoffs=3),
    )
    as_of = date(2026, 6, 30)
    assert snapshot_dates(settings, as_of, None) == sorted(
        {as_of}
        | {date(2026, 5, 31), date(2026, 5, 1), date(2026, 4, 1)}
        | {date(2026, 5, 16), date(2026, 4, 1), date(2026, 2, 15)}
    )
    assert snapshot_dates(settings, as_of, date(2026, 4, 2)) == [
        date(2026, 5, 1),
        date(2026, 5, 16),
        date(2026, 5, 31),
        as_of,
    ]
    # The as-of date itself is always built, even before the first event.
    assert snapshot_dates(settings, as_of, date(2026, 7, 5)) == [as_of]


def test_dbt_command_points_at_the_project_and_keeps_target_out_of_the_repo(
    tmp_path: Path, repo_root: Path
) -> None:
    settings = Settings(warehouse=tmp_path / "wh" / "segmint.duckdb")
    command = dbt_command(settings)
    assert "build" in command
    assert command[command.index("--project-dir") + 1] == str(repo_root / "dbt_project")
    assert command[command.index("--profiles-dir") + 1] == str(repo_root / "dbt_project")
    target = Path(command[command.index("--target-path") + 1])
    assert target == dbt_dirs(settings)[0]
    assert target.is_relative_to(tmp_path)
    # The dates travel in the environment: a nightly --vars change would force dbt to
    # re-parse the whole project.
    assert "--vars" not in command
    env = dbt_env(settings.warehouse, date(2026, 6, 30), [date(2026, 5, 31), date(2026, 6, 30)])
    assert env["SEGMINT_WAREHOUSE"] == str(settings.warehouse)
    assert env["SEGMINT_AS_OF_DATE"] == "2026-06-30"
    assert env["SEGMINT_SNAPSHOT_DATES"] == "2026-05-31,2026-06-30"


def test_missing_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SegmintError, match="does not exist"):
        run_transform(Settings(warehouse=tmp_path / "nope.duckdb"), date(2026, 6, 30))


def test_warehouse_without_raw_tables_is_a_clear_error(tmp_path: Path) -> None:
    connect(tmp_path / "w.duckdb").close()
    with pytest.raises(SegmintError, match=r"no raw\.events"):
        run_transform(Settings(warehouse=tmp_path / "w.duckdb"), date(2026, 6, 30))


def test_failures_reads_run_results(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.segmint.orders", "status": "success", "message": "OK"},
                    {
                        "unique_id": "test.segmint.unique_orders_order_id.abc123",
                        "status": "fail",
                        "message": "Got 2 results, configured to fail if != 0",
                    },
                ]
            }
        )
    )
    assert failures(path) == [
        "test unique_orders_order_id.abc123 fail: Got 2 results, configured to fail if != 0"
    ]


def test_failing_dbt_test_raises_naming_the_test_and_run_results(tmp_path: Path) -> None:
    warehouse = tmp_path / "segmint.duckdb"
    con = connect(warehouse)
    ensure_raw_tables(con)
    row = (
        "'{id}', 'purchase', TIMESTAMP '2026-06-30 10:00:00', 'C1', 'A1', 'S1', NULL, NULL, "
        "NULL, 'P1', 'Books', 10, 1, NULL, 'mobile', 'DE', NULL, NULL, NULL, NULL, NULL, "
        "'{order}', 10, 'EUR', 'events/dt=2026-06-30/a.jsonl', {line}, DATE '2026-06-30', "
        "NULL, TIMESTAMP '2026-07-01 02:00:00'"
    )
    # The same event_id twice: raw.events promises unique ids, so dbt's test must fail.
    for line, order in ((1, "O1"), (2, "O2")):
        con.execute(
            f"INSERT INTO raw.events VALUES ({row.format(id='e1', order=order, line=line)})"
        )
    con.close()
    settings = Settings(warehouse=warehouse)
    with pytest.raises(SegmintError) as caught:
        run_transform(settings, date(2026, 6, 30))
    message = str(caught.value)
    assert "unique_int_events_sessionised_event_id" in message
    assert str(dbt_dirs(settings)[0] / "run_results.json") in message
    # The warehouse file is free again: a writer can open it at once.
    connect(warehouse).close()
