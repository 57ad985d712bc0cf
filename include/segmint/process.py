"""How segmint's own processes end: the exit hooks run, the interpreter's teardown does not.

When a Python program ends, CPython first runs the exit hooks (threading's, then ``atexit``'s)
and then tears the interpreter down: it clears every module and frees every object one by
one. After a stage that imported pandas, scikit-learn or Great Expectations that teardown
takes 0.2-0.3 s, and 0.5 s after dbt; the nightly flow pays it in each of its stage
processes and in the dbt child (about 1 s of a 10M-event increment on the bench machine),
for nothing: the operating system reclaims the memory at once.

:func:`exit_now` ends the process as the interpreter would, less the teardown.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

# The status a shell reports for a program killed by SIGPIPE (128 + 13): `yes | head -1`.
BROKEN_PIPE = 141


def exit_code(code: object) -> int:
    """The process exit status for ``code`` as :func:`sys.exit` takes it: ``None`` is 0, an
    integer is itself, anything else (a message) is printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_then_exit(main: Callable[[], object]) -> NoReturn:
    """Run a program's ``main`` (which may return its exit code or raise SystemExit, as
    click's commands do) and end the process with :func:`exit_now`."""
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    exit_now(code)


def exit_now(code: object = 0) -> NoReturn:
    """End the process with ``code`` (as :func:`sys.exit` takes it) without the teardown.

    What an ordinary exit does that matters still runs, in the same order:

    1. threading's exit hooks (executors stop their workers), then every non-daemon thread
       is joined;
    2. the ``atexit`` handlers: logging flushes and closes its handlers, temporary
       directories are removed, dbt-duckdb closes its DuckDB database (which checkpoints
       it: no write-ahead log is left behind for the next stage to replay);
    3. stdout and stderr are flushed.

    What is skipped is ``__del__`` of objects still referenced at the end. segmint closes
    its DuckDB connections itself; one left open would leave its write-ahead log, which the
    next process to open the file replays (the committed data is in it: nothing is lost).
    Only for a program's own end: never call it in a process that hosts others' code, such
    as an Airflow worker or pytest. Under a profiler, a coverage tracer or a debugger
    (``python -m cProfile``, ``coverage run``, ``pdb``), which write their results at the
    interpreter's exit, it is an ordinary :func:`sys.exit`.
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    status = exit_code(code)
    shutdown = getattr(threading, "_shutdown", None)  # CPython: what Py_Finalize runs first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with it closed (`>&-`): Python printed nothing to it
            continue
        try:
            stream.flush()
        except BrokenPipeError:  # the reader is gone (`| head -1`): as a Unix tool ends
            status = status or BROKEN_PIPE
        except (OSError, ValueError):  # a closed stream: nothing more can be said
            status = status or 1
    os._exit(status)
