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


class DiskFaultError(SegmintError):
    """A file could not be written: a full disk, a quota, a file-size limit, a read-only or
    forbidden folder (the message names the file and the fix). A fault of the environment
    like the OSError it tells of, so the Airflow task is retried (``segmint.ops.is_retryable``)."""


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
