"""Output files (exports, reports, pages, models) that readers see whole or not at all."""

from __future__ import annotations

import errno
import html
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
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
    the file in the way (``--out reports/``, ``--out report.html/x.html``).

    The folder is created and the temporary file opened before the block runs, so a place
    no file can be written to is refused before any work, naming ``out``: ``--out
    /proc/x.csv`` was "unexpected IOException: ... Cannot open file "/proc/.x.csv.tmp"",
    exit code 2, after the export's queries. An ``out`` that exists and is no regular file
    (``/dev/null``, ``/dev/stdout``, a named pipe) is refused: the rename replaced it with
    the file, and run as root, ``--out /dev/null`` left a 3 MB report in place of the
    device."""
    if out.is_dir():
        raise SegmintError(f"cannot write {out}: it is a folder; give the path of a file in it")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise SegmintError(f"cannot write {out}: {blocking} is a file, not a folder")
    if out.exists() and not out.is_file():
        raise SegmintError(
            f"cannot write {out}: it is not a regular file (a device, a pipe or a socket), "
            "and the file written would replace it; give the path of a file"
        )
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.open("wb").close()
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    try:
        yield tmp
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(out)) from exc
        raise
    os.replace(tmp, out)


# What the system says of a path where no file can ever be created (in /proc or /sys, a
# name too long): no retry can help, so a message for the person who gave the path. Other
# faults (a full disk, a share that went away, an I/O error) stay OSErrors, named as
# ``out``: segmint.ops explains the disk faults with their fix, and the DAG retries them.
_NO_FILE_THERE = {
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EPERM,
    errno.EINVAL,
    errno.ENAMETOOLONG,
    errno.ELOOP,
    errno.EISDIR,
}


def _unwritable(out: Path, exc: OSError) -> Exception:
    """The error for an ``out`` whose folder or temporary file could not be created."""
    if exc.errno not in _NO_FILE_THERE:
        return OSError(exc.errno, exc.strerror, str(out))
    where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != out else ""
    return SegmintError(
        f"cannot write {out}: {exc.strerror or exc}{where}: no file can be created there, "
        "and none was; give a path in a folder this user can create files in"
    )


# What the retention of run outputs deletes from an old night's folder: GX Data Docs (4.3
# MiB a night at 20,000 customers), GX validation results, and the audience export files
# (clear-text e-mails and phones). The report (report.html) and anything else stays.
PRUNED_FOLDERS = ("data_docs", "validation_results", "audiences")


@dataclass
class PrunedOutputs:
    nights: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    export_files: list[str] = field(default_factory=list)
    oldest_kept_night: date | None = None
    # Reports of pruned nights whose link to their Data Docs now says they were removed, and
    # those that could not be rewritten (path: the error).
    reports: list[str] = field(default_factory=list)
    report_faults: dict[str, str] = field(default_factory=dict)


# The report's link to its night's Data Docs (segmint.report.sections._data_docs_link).
_DATA_DOCS_LINK = re.compile(
    r'<p>Full validation results: <a href="[^"]*">Great Expectations Data Docs</a> '
    r"\([^<]*\)\.</p>"
)


def unlink_pruned_data_docs(report: Path, published: date, keep_nights: int) -> bool:
    """Replace, in a night's ``report.html``, the link to its Data Docs with a note saying
    they were removed (by the publish of ``published``, ``[outputs] keep_nights``): the report
    is kept, and its link led to a folder no longer there. Whether the report changed."""
    text = report.read_text(encoding="utf-8")
    removed = (
        "Full validation results: the Great Expectations Data Docs of this night were removed "
        f"when the night {published} was published ([outputs] keep_nights = {keep_nights}); "
        "the failed expectations above are what this report keeps of them."
    )
    new, n = _DATA_DOCS_LINK.subn(f'<p class="note info">{html.escape(removed)}</p>', text)
    if not n:
        return False
    with written_atomically(report) as tmp:
        tmp.write_text(new, encoding="utf-8")
    return True


def prune_run_outputs(output: Path, published: date, keep_nights: int) -> PrunedOutputs:
    """Delete :data:`PRUNED_FOLDERS` of the nights under ``output`` (folders named
    ``YYYY-MM-DD``) more than ``keep_nights`` days before the ``published`` night, which is
    always kept, as is every later one; ``keep_nights = 0`` deletes nothing. Rows of
    ``audiences.exports`` naming a deleted export file stay (the export happened);
    ``segmint erase`` says when a file it lists is no longer on disk. The night's report
    stays, its link to the deleted Data Docs replaced by a note saying they were removed
    (:func:`unlink_pruned_data_docs`; a report that cannot be rewritten is named in
    ``report_faults``, and the pruning goes on)."""
    done = PrunedOutputs()
    if keep_nights <= 0 or not output.is_dir():
        return done
    done.oldest_kept_night = published - timedelta(days=keep_nights - 1)
    for night in sorted(output.iterdir()):
        try:
            day = date.fromisoformat(night.name)
        except ValueError:
            continue
        if len(night.name) != 10 or day >= done.oldest_kept_night or not night.is_dir():
            continue
        removed = False
        for name in PRUNED_FOLDERS:
            folder = night / name
            if not folder.is_dir() or folder.is_symlink():
                continue
            for root, _dirs, files in os.walk(folder):
                for f in files:
                    path = Path(root) / f
                    done.files += 1
                    done.bytes += path.lstat().st_size
                    if name == "audiences":
                        done.export_files.append(str(path))
            shutil.rmtree(folder)
            removed = True
            report = night / "report.html"
            if name == "data_docs" and report.is_file() and not report.is_symlink():
                try:
                    if unlink_pruned_data_docs(report, published, keep_nights):
                        done.reports.append(str(report))
                except (OSError, SegmintError, UnicodeDecodeError) as exc:
                    done.report_faults[str(report)] = str(exc)
        if removed:
            done.nights.append(night.name)
    return done
