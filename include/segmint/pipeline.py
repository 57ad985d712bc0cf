"""The nightly pipeline as an ordered list of stages.

``segmint run`` and the Airflow DAG both go through :data:`STAGES`: the DAG makes one task
per stage, the CLI runs them in order. Each stage imports its heavy libraries when it runs,
so importing this module is cheap (the DAG file imports it at parse time).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from segmint.config import Settings
from segmint.stages import SegmintError, StageResult

log = logging.getLogger(__name__)

# The latest as-of date a run accepts, in days after today (UTC): tomorrow, for a landing
# zone that names its partitions in a time zone ahead of UTC.
MAX_DAYS_AHEAD = 1

# name -> "module:function"; every function takes (settings, as_of) and returns StageResult.
STAGES: dict[str, str] = {
    "ingest": "segmint.ingest:run_ingest",
    "validate": "segmint.ingest:check_quality_gate",
    "transform": "segmint.transform:run_transform",
    "segment": "ml.segmentation:run_segmentation",
    "score": "ml.propensity:run_propensity",
    "recommend": "ml.recommendations:run_recommendations",
    "audiences": "segmint.audiences:build_audiences",
    "report": "segmint.report:write_report",
    "publish": "segmint.publish:publish",
}


def stage_function(name: str) -> Callable[[Settings, date], StageResult]:
    try:
        target = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)}") from None
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def check_as_of(as_of: date, *, origin: str = "", fix: str = "", today: date | None = None) -> None:
    """Refuse an as-of date later than tomorrow (UTC), before anything runs.

    A night from the future is a typo (2027 for 2026) or a misdated partition: it would run,
    export and publish, and then every real night would be refused publication because the
    published copy holds a later night (:func:`segmint.publish.publish`). This reads the
    clock only to refuse a date; it never decides which data a run processes. ``origin``
    says where the date came from, ``fix`` what to do (both part of the one-line error).
    """
    today = today or datetime.now(UTC).date()
    latest = today + timedelta(days=MAX_DAYS_AHEAD)
    if as_of > latest:
        raise SegmintError(
            f"as-of date {as_of}{f' ({origin})' if origin else ''} is in the future: today is "
            f"{today} (UTC) and no night after {latest} can be processed; "
            + (fix or "give the date of the night to process")
        )


def check_warehouse_path(warehouse: Path) -> None:
    """Refuse a warehouse setting that cannot be a DuckDB file, before anything runs.

    A folder given as the warehouse (``--warehouse warehouse/``) failed deep in the first
    stage with DuckDB's "unexpected IOException: ... Is a directory", a file where a folder
    of the path should be with a bare ``NotADirectoryError``; neither named the setting."""
    fix = "pass --warehouse, or set SEGMINT_WAREHOUSE or warehouse in the settings file, to"
    if warehouse.is_dir():
        raise SegmintError(
            f"the warehouse {warehouse} is a folder, not a DuckDB file: {fix} a file path "
            f"such as {warehouse / 'segmint.duckdb'}"
        )
    blocking = next((p for p in warehouse.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise SegmintError(
            f"the warehouse {warehouse} cannot be created: {blocking} is a file, not a folder; "
            f"{fix} a file in a folder"
        )


def run_stage(name: str, settings: Settings, as_of: date, **options: Any) -> StageResult:
    """Run one stage with the warehouse to itself; ``options`` go to the stage's function."""
    from segmint.warehouse import exclusive  # DuckDB: not at the DAG file's parse time

    check_as_of(as_of)
    check_warehouse_path(settings.warehouse)
    log.info("stage %s starting for as_of=%s", name, as_of)
    with exclusive(settings.warehouse, f"stage {name} of {as_of}"):
        result = stage_function(name)(settings, as_of, **options)
    log.info("stage %s done: %s", name, result.summary)
    for warning in result.warnings:
        log.warning("stage %s: %s", name, warning)
    _append_result(result, as_of)
    return result


def _append_result(result: StageResult, as_of: date) -> None:
    """Append the result as a JSON line to ``$SEGMINT_RESULTS_FILE`` (used by the benchmarks)."""
    path = os.environ.get("SEGMINT_RESULTS_FILE")
    if path:
        record = {"as_of": as_of.isoformat(), **dataclasses.asdict(result)}
        with open(path, "a") as out:
            out.write(json.dumps(record, default=str) + "\n")


def run_pipeline(
    settings: Settings,
    as_of: date,
    stages: Sequence[str] | None = None,
    on_result: Callable[[StageResult], None] | None = None,
) -> list[StageResult]:
    """Run the stages in order; the first failure raises and nothing later runs."""
    check_as_of(as_of)
    results = []
    for name in stages or list(STAGES):
        try:
            result = run_stage(name, settings, as_of)
        except BaseException:
            log.error("stage %s failed for as_of=%s; the stages after it did not run", name, as_of)
            raise
        results.append(result)
        if on_result:
            on_result(result)
    return results
