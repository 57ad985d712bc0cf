"""What every pipeline stage returns, and the errors that stop a run.

A stage is a plain function ``(settings, as_of) -> StageResult``. The CLI, the Airflow DAG
and the benchmark call the same functions, so there is one code path to test.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from dataclasses import dataclass, field
from typing import Any


class SegmintError(Exception):
    """A failure with a message meant for a person: what failed, where, what to do."""


class InputError(SegmintError):
    """A landing file could not be read (named in the message); other files still loaded."""


class QualityGateError(SegmintError):
    """Validation found too much bad data; nothing downstream may be published."""


class PublishRefusedError(SegmintError):
    """A gate refused publication (for example a model that does not beat its baseline)."""


class StageTimeoutError(SegmintError):
    """A stage ran past its Airflow task's ``execution_timeout`` and was stopped. Not retried
    (``segmint.ops.run_stage_task``): a try that slow would hold the warehouse pool as long
    again, and each retry added the whole timeout to the night."""


class WarehouseBusyError(SegmintError):
    """Another segmint process kept the working warehouse past the wait: a transient fault,
    so the Airflow task is retried (``segmint.ops.is_retryable``), unlike other errors."""


class BeforeFirstDeliveryError(SegmintError):
    """Nothing is loaded up to the as-of date: the night is before the landing zone's first
    delivery (a backfill that starts too early) or the landing zone holds no data file.
    The message says what to do on the command line; :meth:`in_airflow` says it for a DAG
    run, where the as-of date is the run's logical date, not a ``--as-of`` flag."""

    def __init__(self, what: str, first: Any = None, landing: Any = None) -> None:
        self.what, self.first, self.landing = what, first, landing
        super().__init__(f"{what}; {self._fix('command line')}")

    def _fix(self, where: str, dag_id: str = "segmint_nightly") -> str:
        if self.first is None:
            return (
                f"deliver the files to {self.landing}/events/dt=YYYY-MM-DD/ and "
                f"{self.landing}/crm/dt=YYYY-MM-DD/ (docs/data-contract.md), then run the night "
                + ("again" if where == "command line" else "again: clear this task")
            )
        if where == "command line":
            return (
                f"run the nights from {self.first} on (segmint run --as-of {self.first}, or a "
                f"later date); a night before {self.first} has nothing to build"
            )
        return (
            f"a DAG run before {self.first} has nothing to build: start the backfill there "
            f"(airflow backfill create --dag-id {dag_id} --from-date {self.first} --to-date "
            "...; make backfill FROM=" + f"{self.first} TO=...), and leave this night failed or "
            "mark it success"
        )

    def in_airflow(self, dag_id: str) -> str:
        return f"{self.what}; {self._fix('airflow', dag_id)}"


class DiskFaultError(SegmintError):
    """A file could not be written: a full disk, a quota, a file-size limit, a read-only or
    forbidden folder (the message names the file and the fix). A fault of the environment
    like the OSError it tells of, so the Airflow task is retried (``segmint.ops.is_retryable``)."""


class DbtKilledError(SegmintError):
    """The transform's dbt child was killed by a signal before it finished: on Linux most
    often the out-of-memory killer, which picks the largest process, dbt's DuckDB. A fault
    of the environment, so the Airflow task is retried (``segmint.ops.is_retryable``)."""


def mark_failed_stage(exc: BaseException, stage: str, last: bool = False) -> None:
    """Record on ``exc`` the stage of a run it failed (:func:`failed_stage`), once: the
    stage that raised it first; ``last`` when it was the run's last stage (no stage after
    it was left out)."""
    if failed_stage(exc) is None:
        exc.segmint_stage = stage  # type: ignore[attr-defined]
        exc.segmint_last_stage = last  # type: ignore[attr-defined]


def failed_last_stage(exc: BaseException) -> bool:
    """Whether the stage ``exc`` failed (:func:`failed_stage`) was its run's last one."""
    return bool(getattr(exc, "segmint_last_stage", False))


def failed_stage(exc: BaseException) -> str | None:
    """The stage of a run that ``exc`` failed, or None (raised outside a run's stages)."""
    return getattr(exc, "segmint_stage", None)


@dataclass
class StageResult:
    stage: str
    rows_in: int = 0
    rows_out: int = 0
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.stage:<10} {self.summary}"


def import_in_background(module: str) -> threading.Thread:
    """Start importing ``module`` (a library that costs seconds of CPU to import: Great
    Expectations, scikit-learn) in a thread, so the stage reads the warehouse meanwhile
    (DuckDB releases the GIL). The stage imports it again where it needs it, which waits for
    this import to finish; a failed import is reported there."""

    def work() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    thread = threading.Thread(target=work, name=f"segmint-import-{module}", daemon=True)
    thread.start()
    return thread


def plural(n: int, word: str) -> str:
    """``plural(1, 'day')`` -> ``'1 day'``; ``plural(3, 'day')`` -> ``'3 days'``.

    Stage messages (shown in the report and the CLI) said "trained 1 days ago" and "retrain
    every 1 days"."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")
