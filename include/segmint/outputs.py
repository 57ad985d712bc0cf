"""Output files (exports, reports, pages, models) that readers see whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from segmint.stages import SegmintError


@contextmanager
def written_atomically(out: Path) -> Iterator[Path]:
    """Yield a path beside ``out`` to write the file to (``.NAME.tmp``, hidden, so a
    platform's upload folder or a reader's glob skips it); when the block ends, it replaces
    ``out`` in one rename. When the block fails, the temporary file is removed and ``out``
    is left as it was: neither a half-written file nor a stale temporary one stays behind.

    A write that fails with an ``OSError`` naming no file (``write()`` on a full disk says
    only "[Errno 28] No space left on device") is raised again naming ``out``. An ``out``
    that is a folder, or beneath a file, is refused naming both: they ended in "unexpected
    IsADirectoryError" / "FileExistsError", exit code 2, naming a temporary file or only
    the file in the way (``--out reports/``, ``--out report.html/x.html``)."""
    if out.is_dir():
        raise SegmintError(f"cannot write {out}: it is a folder; give the path of a file in it")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise SegmintError(f"cannot write {out}: {blocking} is a file, not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        yield tmp
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(out)) from exc
        raise
    os.replace(tmp, out)
