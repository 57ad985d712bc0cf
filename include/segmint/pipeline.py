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
from segmint.stages import SegmintError, StageResult, mark_failed_stage

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

# What each stage's Airflow task shows under "Task Docs" in the UI (doc_md): what it does,
# what a failure there means and what to do. Without them every task showed the one
# docstring of the DAG's task function.
_RERUN = (
    "\n\nRerun: clear this task with its downstream tasks (`airflow tasks clear "
    "segmint_nightly -t TASK -d -s DATE -e DATE`); every stage replaces its own as-of "
    "date's rows.OLDER Its line in `ops.pipeline_runs` and the `segmint:` lines of its log "
    "say what it did. See docs/operations.md."
)
# The stages after transform read the marts, which hold the last night it built.
_OLDER = (
    " This stage reads the marts `transform` built, which hold the last night it ran for: "
    "for a night older than that, clear from `transform` (`-t transform -d`)."
)
STAGE_DOCS: dict[str, str] = {
    "ingest": (
        "**ingest**: load every landing file not loaded before (`ops.load_manifest`, by "
        "checksum) into `raw.*`, typed and deduplicated; bad records go to `ops.quarantine` "
        "with their reasons; Great Expectations judges each partition.\n\n"
        "First task of the night: it waits (`up_for_reschedule`, not holding the pool) while "
        "an earlier night is unfinished, and for the day's events partition (a scheduled "
        "night until 06:00 UTC by default: `[ingest] wait_for_as_of_events_hours`). A "
        "file that cannot be read fails it, naming the file; the other files stay loaded "
        "(docs/ingestion.md)."
    ),
    "validate": (
        "**validate**: the quality gate. Each loaded partition's GX results against the "
        "thresholds; verdicts in `ops.quality_gate`.\n\n"
        "A gate that says no fails the night, not retried, naming the partition, its top "
        "quarantine reasons and the files behind them: fix or re-deliver those files, then "
        "rerun from ingest. A missing events partition for the as-of date is a warning "
        "(a failure with `[ingest] require_as_of_events`)."
    ),
    "transform": (
        "**transform**: one `dbt build` (staging, intermediate, marts; seeds, data and unit "
        "tests) for the as-of date.\n\n"
        "A failing model or test fails the night, not retried, naming the node, "
        "`run_results.json` and `dbt.log`; the XCom `dbt` key holds the node counts and the "
        "slowest nodes (docs/models.md)."
    ),
    "segment": (
        "**segment**: K-Means segments of `marts.customer_features` with stable names: "
        "`ml.customer_segments` and its profiles, transitions and drift, one transaction "
        "(docs/segmentation.md)."
    ),
    "score": (
        "**score**: purchase and churn propensity: train when due, gate against the "
        "baselines, score: `ml.propensity_scores` and its metrics, one transaction. A model "
        "that does not pass its gate is not published, with a warning; while none is, the "
        "baseline rule ranks the customers, labelled `ranked_by` (docs/propensity.md)."
    ),
    "recommend": (
        "**recommend**: next-best products per customer, `ml.recommendations`; the model is "
        "used only where it beats popularity (docs/recommendations.md)."
    ),
    "audiences": (
        "**audiences**: build every definition of the audiences folder into the as-of "
        "date's snapshot (`audiences.members`, `changes`, `summary`, one transaction) and "
        "write the exports the definitions declare; consent is always enforced "
        "(docs/audiences.md)."
    ),
    "report": (
        "**report**: the nightly HTML report, `<output>/<as-of>/report.html` (docs/report.md)."
    ),
    "publish": (
        "**publish**: write-audit-publish. Audits the night in the working warehouse, then "
        "swaps in `warehouse/published/segmint.duckdb` and the analysts' masked copy "
        "atomically. It runs only when every task before it succeeded; a refused audit "
        "fails the night, not retried, and yesterday's published files stay as they were."
    ),
}
_AFTER_TRANSFORM = list(STAGES)[list(STAGES).index("transform") + 1 :]
STAGE_DOCS = {
    name: doc
    + _RERUN.replace("TASK", name).replace("OLDER", _OLDER if name in _AFTER_TRANSFORM else "")
    for name, doc in STAGE_DOCS.items()
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


def run_stage(
    name: str, settings: Settings, as_of: date, *, log_progress: bool = True, **options: Any
) -> StageResult:
    """Run one stage with the warehouse to itself; ``options`` go to the stage's function.

    ``log_progress=False`` leaves the start, done and warning lines to the caller: the DAG's
    task glue (``segmint.ops.run_stage_task``) writes its own, and with these every one of
    them was in the task log twice; the command line prints the results and their warnings
    to stdout, and without ``-v`` each warning was on the terminal twice."""
    # DuckDB: not at the DAG file's parse time
    from segmint.warehouse import checkpoint_wal, exclusive

    check_as_of(as_of)
    check_warehouse_path(settings.warehouse)
    if log_progress:
        log.info("stage %s starting for as_of=%s", name, as_of)
    with exclusive(settings.warehouse, f"stage {name} of {as_of}"):
        result = stage_function(name)(settings, as_of, **options)
        checkpoint_wal(settings.warehouse)  # a closing checkpoint that failed unreported
    if log_progress:
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
    log_progress: bool = True,
) -> list[StageResult]:
    """Run the stages in order; the first failure raises, marked with its stage
    (:func:`segmint.stages.failed_stage`), and nothing later runs. ``log_progress`` as for
    :func:`run_stage`; without it the caller says which stage failed (the command line's
    one line did, after a logged line saying it again: two lines on stderr)."""
    check_as_of(as_of)
    results = []
    order = list(stages or STAGES)
    for name in order:
        try:
            result = run_stage(name, settings, as_of, log_progress=log_progress)
        except BaseException as exc:
            last = name == order[-1]
            mark_failed_stage(exc, name, last=last)
            if log_progress:
                log.error(
                    "stage %s failed for as_of=%s%s",
                    name,
                    as_of,
                    "" if last else "; the stages after it did not run",
                )
            raise
        results.append(result)
        if on_result:
            on_result(result)
    return results
