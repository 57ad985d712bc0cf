"""Landing files: discovery, checksums, and reading every record as text with its line number.

JSONL files are scanned once and typed straight from the scan (:func:`jsonl_scan_sql`, used by
the loader). CSV and Parquet files fill a temporary DuckDB table ``(_file, _line, raw, doc,
_error)`` first (:func:`read_records`): ``raw`` is the record as it arrived (kept for
quarantine), ``doc`` the same record as a JSON object (what the typing step parses),
``_error`` why the record could not be made into one (then ``doc`` is NULL).
Line numbers are physical, 1-based lines of the decompressed file (for CSV the header is
line 1; a quoted field spanning lines keeps the number of its first line); for Parquet they
are 1-based row numbers. Blank lines are not
records and are skipped without changing the numbering.

Text is UTF-8. A text file with lines that are not is read from a UTF-8 copy, line by line
(:func:`decode_legacy_line`): a line without any UTF-8 character was written in a legacy
8-bit encoding (Excel's CSV on Windows, a Latin-1 database) and is decoded as
``[ingest] legacy_encoding`` (Windows-1252 by default, which loses nothing); in a line of
damaged UTF-8 (a truncated multi-byte character) each invalid sequence becomes U+FFFD, what
warehouses offer for this (Snowflake's ``REPLACE_INVALID_CHARACTERS``). Either way the
line's fields are good data, and one accent in a name must not hold back a whole file. The
lines concerned are logged, with their numbers.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import dataclasses
import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from segmint.config import landing_problem
from segmint.ingest.contract import (
    FIELDS,
    FORMATS,
    INVISIBLE_CHARS,
    READ_AS,
    SOURCES,
    field_names,
    required_fields,
)
from segmint.stages import InputError

PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
# CSV separators, in the order they are tried on a header: comma (the contract's), then
# semicolon (Excel where the decimal mark is a comma), tab and pipe. The first one whose
# split of the header holds every required column is the file's.
CSV_DELIMITERS = (",", ";", "\t", "|")


def csv_field_re(delim: str = ",") -> str:
    """One CSV field after a separator: a quoted field (with "" escapes) or anything up to
    the next separator.

    Text after a quoted field's closing quote (``"c"17``) belongs to the field (the record
    is then quarantined, :func:`_bad_quote`): matches are taken wherever they start, so a
    pattern stopping at the quote dropped the ``17`` without a trace.

    Spaces before a quoted field's opening quote (``"c1", "Paris, FR"``, as some exporters
    write every field after the first) are part of the match; :func:`_raw_fields` drops them.
    """
    d = re.escape(delim)
    return rf'{d}( *"(?:[^"]|"")*"[^{d}]*|[^{d}]*)'


def _plain_field_re(delim: str = ",") -> str:
    """An unquoted CSV field that is not empty: anything without the separator but spaces
    followed by a quote (which open a quoted field, :func:`csv_field_re`)."""
    d = re.escape(delim)
    return f'(?: *[^ {d}"][^{d}]*| +)'


CSV_FIELD_RE = csv_field_re(",")


def csv_open_quote_res(delim: str = ",") -> tuple[str, str]:
    """Regular expressions (full match) for a physical CSV line that ends inside a quoted
    field: when the line starts outside one (a new record), and when it starts inside one
    (the rest of a multi-line field).

    As in RFC 4180 readers (Python's csv, DuckDB's), a quote opens a quoted field only at the
    start of a field (after any spaces, as DuckDB and Python's ``skipinitialspace`` read
    ``"a", "b"``): ``TV 55" screen`` is a field holding a quote, not the start of a field
    running onto the next lines (which swallowed every line up to the next stray quote).
    Inside a quoted field ``""`` is a quote; text after the closing quote stays in its field.
    """
    d = re.escape(delim)
    content = '(?:[^"]|"")*'
    rest = f'(?:[^{d}"][^{d}]*)?'
    done = f'(?: *"{content}"{rest}|{_plain_field_re(delim)}|)'
    opens = f'(?:{done}{d})* *"{content}'
    return opens, f'{content}|{content}"{rest}{d}{opens}'


# A delimiter no line holds, so the reader gives one VARCHAR column holding the whole line.
# One control byte (0x1F) was not enough: it never occurs unescaped in JSON, but a CSV cell
# holding one was cut there ('Ann<US>Marie' loaded as 'Ann'). Four control bytes in a row
# (DuckDB's longest delimiter) occur in no real text; the scan costs the same.
_NO_DELIM = "\x1f\x1e\x1d\x1c"
# DuckDB's line reader refuses a longer line (and with it the whole file). A longer line is
# quarantined instead, from a repaired copy (readable_copy) where it is TOO_LONG_MARK, its
# length in bytes and its first TOO_LONG_HEAD bytes.
MAX_LINE_SIZE = 16 << 20
MAX_LINE = MAX_LINE_SIZE - 2  # the line end (CRLF) counts
TOO_LONG_MARK = "\u2400segmint: line too long\u2400"
TOO_LONG_HEAD = 1000
TOO_LONG_REASON = (
    f"the line is longer than {MAX_LINE_SIZE >> 20} MiB, the longest line segmint reads: its "
    f"length and first {TOO_LONG_HEAD} bytes are kept as its text"
)
# Chunks of this many bytes are checked whole; only a chunk that fails is split in lines.
_UTF8_CHUNK = 1 << 24

log = logging.getLogger(__name__)


class UnreadableFile(Exception):
    """The file as a whole cannot be read (corrupt compression, unusable header, ...)."""


@dataclass(frozen=True)
class LandingFile:
    path: str  # relative to the landing root, forward slashes
    abspath: Path
    source: str
    partition_date: date
    fmt: str  # jsonl | csv | parquet
    size_bytes: int
    sha256: str
    # Modification time (ns): with the size, tells an unchanged file without reading it.
    mtime_ns: int = 0
    # Why the file could not be read when it was found (permission denied, an I/O error of
    # the disk or share, gone): it fails without being read (sha256 ""), retried next run.
    error: str = ""
    # Its checksum's read saw a carriage return not followed by a line feed (a plain text
    # file only: :func:`_checksum`); the reader then looks at it for one inside a line.
    bare_cr: bool = False
    # Its checksum was read tonight; False when it was taken from the manifest (its size
    # and modification time unchanged), which then says nothing of bare_cr (cr_looked_at).
    checksummed: bool = True

    @property
    def order_key(self) -> tuple[date, str]:
        """Load order, and the order that decides which duplicate wins."""
        return (self.partition_date, self.path)


def file_format(name: str) -> str | None:
    lower = name.lower()
    for ext in FORMATS:
        if lower.endswith(ext):
            fmt = ext.lstrip(".").removesuffix(".gz")
            return READ_AS.get(fmt, fmt)
    return None


def _json_document(path: Path) -> str | None:
    """Why a ``.json`` file is skipped: its first line opens one JSON document (``[``, or a
    lone ``{`` of a pretty-printed object) rather than holding a JSON lines record. ``.json``
    names JSON lines (BigQuery's exports) as often as one document (a manifest, a schema, a
    tool's array export), which segmint reported and skipped before it read ``.json``; a
    ``.jsonl`` or ``.ndjson`` file is JSON lines by name and fails instead
    (:func:`json_documents`)."""
    if not path.name.lower().endswith((".json", ".json.gz")):
        return None
    try:
        gz = _head(path).startswith(_GZIP_MAGIC)
        with gzip.open(path, "rb") if gz else open(path, "rb") as src:
            first = src.readline(1 << 16).lstrip(b"\xef\xbb\xbf").strip()
    except (OSError, EOFError, zlib.error):
        return None  # unreadable: its read fails later, with its own error
    if first.startswith(b"[") or first == b"{":
        return (
            "one JSON document (an array or a pretty-printed object), not JSON lines: "
            "skipped (jq -c '.[]' FILE, or jq -c . FILE, writes it as JSON lines)"
        )
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cannot_read(exc: OSError) -> str:
    """A landing file's error for an ``OSError`` (``cannot be read: Permission denied``)."""
    return f"cannot be read: {exc.strerror or exc}"


def _checksum(path: Path) -> tuple[str, str, bool]:
    """``(sha256, "", bare_cr)``, or ``("", error, False)`` when the file cannot be read to its
    end. ``bare_cr``: an uncompressed file holds a carriage return not followed by a line
    feed. DuckDB's line reader ends a line there, and two whole JSON lines or CSV records
    parted by one (no piece malformed, so nothing else tells) were read as two lines: every
    later line of the file numbered one too far. The test is a byte search of the chunks the
    checksum reads anyway, and counts only in a chunk holding a CR."""
    digest = hashlib.sha256()
    first, plain, bare = True, False, False
    cr_before = False  # the chunk before ended in CR
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                if first:
                    # Text: not gzip, nor another format (a workbook under a text name fails
                    # saying so, unreadable), nor UTF-16 or UTF-32, whose CR is two bytes.
                    first = False
                    plain = not (
                        chunk.startswith(_GZIP_MAGIC)
                        or _other_compression(chunk)
                        or _utf16_or_32(chunk[:4])
                    )
                if plain and not bare:
                    if cr_before and not chunk.startswith(b"\n"):
                        bare = True
                    elif b"\r" in chunk:
                        # (A CR ending the chunk is judged with the next one's first byte.)
                        crs = chunk.count(b"\r") - chunk.count(b"\r\n") - chunk.endswith(b"\r")
                        bare = crs > 0
                    cr_before = chunk.endswith(b"\r")
        return digest.hexdigest(), "", bare
    except OSError as exc:
        return "", _cannot_read(exc), False


def cr_looked_at(f: LandingFile) -> LandingFile:
    """``f`` with ``bare_cr`` as its checksum's read would say: a file whose checksum came
    from the manifest (unchanged since it was loaded, read again by ``--reload-since`` or
    with a changed file it shares a record with) is read once for it. Without that such a
    file of whole records parted by a bare CR was read as if it held none: both records
    loaded, every later line numbered one too far (until 2026-12-07)."""
    if f.checksummed or f.error or f.fmt == "parquet":
        return f
    if _head(f.abspath).startswith(_GZIP_MAGIC):
        # Its scan looks for one (_scan_sql's strict mode): no read of it is needed here.
        return f
    _, error, bare = _checksum(f.abspath)
    # (A file that cannot be read now fails when it is read, with its error.)
    return f if error else dataclasses.replace(f, bare_cr=bare, checksummed=True)


def _hidden(path: Path, partition: Path) -> bool:
    """Whether a file of a partition folder is skipped: its name or a folder between it and
    the partition starts with ``.`` or ``_``. Writers keep work in progress there: Spark and
    Hadoop write ``_temporary/`` while a job runs (its attempt files are partial copies of
    the output), others a ``.staging/`` folder or a ``.part`` file."""
    return any(p.startswith((".", "_")) for p in path.relative_to(partition).parts)


def _listed(folder: Path, unlisted: list[tuple[Path, str]]) -> list[Path]:
    """The entries of ``folder``, sorted; none when it cannot be listed (its permissions, an
    I/O error), which is added to ``unlisted`` with the reason."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        unlisted.append((folder, _cannot_read(exc)))
        return []


def _partition_entries(
    part: Path, unlisted: list[tuple[Path, str]]
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The regular files under the partition folder ``part`` (sub-folders and links to
    folders followed, each real folder once), and the entries that cannot be read as files
    with the reason: a broken link (a share not mounted), a pipe, a socket. Path.rglob did
    not follow a linked sub-folder and skipped the others, all without a word. Folders that
    cannot be listed go to ``unlisted``."""
    files: list[Path] = []
    odd: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def walk(folder: Path) -> None:
        real = folder.resolve()
        if real in seen:  # a link back to a folder already read
            return
        seen.add(real)
        for entry in _listed(folder, unlisted):
            if entry.is_dir():
                walk(entry)
            elif entry.is_file():
                files.append(entry)
            elif entry.is_symlink():
                odd.append((entry, "a broken symbolic link (its target is missing)"))
            else:
                odd.append((entry, "not a regular file (a pipe, socket or device)"))

    walk(part)
    return files, odd


_READ_NAMES = ".jsonl, .ndjson, .json or .csv (each also .gz), .parquet"
_NOT_A_PARTITION = "not read: partition folders are named dt=YYYY-MM-DD (the delivery date)"
_NOT_IN_A_PARTITION = (
    "not read: a landing file goes into a partition folder, dt=YYYY-MM-DD (the delivery date)"
)


def unsupported_file(name: str) -> str:
    """Why a file of a partition named ``name`` is not read, and what would read it."""
    lower = name.lower()
    if lower.endswith(".gz"):
        # Segment's S3 destination names its gzipped JSON lines <time>.<id>.gz; Firehose and
        # other writers likewise name the compression only.
        return (
            "not read: a gzip file's name says its format before .gz (.jsonl.gz, .ndjson.gz, "
            ".json.gz or .csv.gz; Segment's S3 files, <time>.<id>.gz, are JSON lines: land "
            "them named .jsonl.gz)"
        )
    if lower.endswith((".xlsx", ".xls", ".xlsm", ".ods")):
        return "not read: a spreadsheet workbook (save each sheet as CSV, .csv)"
    if lower.endswith((".tsv", ".tab", ".txt")):
        return (
            "not read: segmint reads delimited text named .csv (comma, semicolon, tab or pipe: "
            "the separator is found from the header)"
        )
    return f"not a supported landing file (segmint reads {_READ_NAMES})"


def discover(
    landing: Path, known: dict[str, tuple[int, int, str]] | None = None
) -> tuple[list[LandingFile], list[str], list[str]]:
    """Every supported file under ``<landing>/<source>/dt=YYYY-MM-DD/``, in load order.

    Returns the files, the ignored entries, each ``"<path>: <why>"`` (unsupported
    extension, bad folder name, broken link, ...), and the folders that could not be listed,
    each ``"<path>: <why>"`` (their files, unknown, are not loaded: the run fails naming them).
    Hidden files and markers starting with ``_`` or ``.`` (``_SUCCESS``), and everything in a
    folder of the partition whose name starts so (``_temporary/``), are skipped silently.
    ``known``: ``{path: (size, mtime_ns, sha256)}`` of files checksummed before; a file with
    the same size and modification time keeps that checksum instead of being read again (the
    landing zone grows every night, the new files are few).
    """
    landing = Path(landing)
    problem = landing_problem(landing)
    if problem:
        raise InputError(problem)
    candidates: list[tuple[str, Path, str, date, str]] = []
    # Top-level entries other than the sources (Events/, event/, a stray file) are reported:
    # their files are never read, which must not pass silently.
    why = f"not a landing source folder (only {' and '.join(SOURCES)} are read)"
    ignored: list[str] = sorted(
        f"{p.name}{'/' if p.is_dir() else ''}: {why}"
        for p in landing.iterdir()
        if p.name not in SOURCES and not p.name.startswith((".", "_"))
    )
    unlisted: list[tuple[Path, str]] = []
    for source in SOURCES:
        root = landing / source
        if not root.is_dir():
            continue
        for part in _listed(root, unlisted):
            match = PARTITION_RE.match(part.name)
            if not part.is_dir() or not match:
                if not part.name.startswith((".", "_")):
                    why_not = _NOT_A_PARTITION if part.is_dir() else _NOT_IN_A_PARTITION
                    ignored.append(f"{part.relative_to(landing).as_posix()}: {why_not}")
                continue
            try:
                partition_date = date.fromisoformat(match.group(1))
            except ValueError:
                ignored.append(f"{part.relative_to(landing).as_posix()}: {_NOT_A_PARTITION}")
                continue
            files, odd = _partition_entries(part, unlisted)
            for path, reason in odd:
                if not _hidden(path, part):
                    ignored.append(f"{path.relative_to(landing).as_posix()}: {reason}")
            for path in files:
                rel = path.relative_to(landing).as_posix()
                if _hidden(path, part):
                    continue
                fmt = file_format(path.name)
                if fmt is None:
                    ignored.append(f"{rel}: {unsupported_file(path.name)}")
                    continue
                candidates.append((rel, path, source, partition_date, fmt))
    # A file that cannot be read (its permissions, an I/O error, gone since it was listed)
    # fails alone, with the reason; the others load (the manifest and the run name it).
    errors: dict[int, str] = {}
    stats: list[os.stat_result | None] = []
    for i, c in enumerate(candidates):
        try:
            stats.append(c[1].stat())
        except OSError as exc:
            stats.append(None)
            errors[i] = _cannot_read(exc)
    sums: list[str | None] = []
    for (rel, *_), st in zip(candidates, stats, strict=True):
        seen = (known or {}).get(rel)
        same = (
            st is not None
            and seen is not None
            and (seen[0], seen[1]) == (st.st_size, st.st_mtime_ns)
        )
        sums.append(seen[2] if same else None)
    # A new or changed .json file opening one JSON document is skipped (one the manifest
    # knows unchanged was read as JSON lines already: not opened again).
    skipped: set[int] = set()
    for i, sha in enumerate(sums):
        document = None if sha or i in errors else _json_document(candidates[i][1])
        if document:
            ignored.append(f"{candidates[i][0]}: {document}")
            skipped.add(i)
    todo = [i for i, sha in enumerate(sums) if sha is None and i not in errors and i not in skipped]
    todo_set = set(todo)
    # hashlib releases the GIL on large buffers: checksum two files at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        checksums = pool.map(_checksum, [candidates[i][1] for i in todo])
        crs: set[int] = set()
        for i, (sha, error, bare_cr) in zip(todo, checksums, strict=True):
            sums[i] = sha
            if error:
                errors[i] = error
            if bare_cr:
                crs.add(i)
    found = [
        LandingFile(
            path=rel,
            abspath=path,
            source=source,
            partition_date=partition_date,
            fmt=fmt,
            size_bytes=st.st_size if st else 0,
            # Unreadable: no checksum, and no modification time (checksummed again next run).
            sha256="" if i in errors else sha or "",
            mtime_ns=st.st_mtime_ns if st and i not in errors else 0,
            error=errors.get(i, ""),
            bare_cr=i in crs,
            checksummed=i in todo_set,
        )
        for i, ((rel, path, source, partition_date, fmt), st, sha) in enumerate(
            zip(candidates, stats, sums, strict=True)
        )
        if i not in skipped
    ]
    found.sort(key=lambda f: f.order_key)
    return found, ignored, [f"{p.relative_to(landing).as_posix()}: {why}" for p, why in unlisted]


@dataclass(frozen=True)
class Delivery:
    """Has the as-of date's events partition landed? (:func:`as_of_delivery`)"""

    status: str  # "landed" | "waiting" | "late"
    files: int  # data files in the partition
    deadline: datetime | None  # UTC; None when the pipeline does not wait
    message: str


def holds_data_file(folder: Path) -> bool:
    """Whether the partition folder ``folder`` holds a file :func:`discover` would load: a
    supported name, not hidden nor ``_``-named, nor in such a sub-folder (Spark's
    ``_temporary/`` while its job writes). A folder that cannot be listed may: True, and
    the ingest fails naming it."""
    unlisted: list[tuple[Path, str]] = []
    files = _partition_entries(folder, unlisted)[0]
    return bool(unlisted) or any(not _hidden(p, folder) and file_format(p.name) for p in files)


def as_of_delivery(
    landing: Path, as_of: date, now: datetime, wait_hours: float, marker: str = ""
) -> Delivery:
    """Whether the nightly run may start: the events partition ``dt=<as_of>`` has landed.

    Landed means the folder holds a data file that :func:`discover` would load and, when
    ``marker`` is set (``_SUCCESS``), the marker file too: writers that make a partition
    file by file put the marker last. Not landed yet: ``waiting`` until ``wait_hours`` after
    the end of the as-of day (UTC), ``late`` from then on (and at once when
    ``wait_hours`` is 0, e.g. a backfill of a day that never had data).
    """
    folder = Path(landing) / "events" / f"dt={as_of.isoformat()}"
    unlisted: list[tuple[Path, str]] = []
    files = (
        sum(
            1
            for p in _partition_entries(folder, unlisted)[0]
            if not _hidden(p, folder) and file_format(p.name)
        )
        if folder.is_dir()
        else 0
    )
    marked = not marker or (folder / marker).is_file()
    if files and marked:
        return Delivery("landed", files, None, f"{files} events file(s) in {folder}")
    missing = (
        f"no events file in {folder}" + "".join(f" ({p} {why})" for p, why in unlisted)
        if not files
        else f"{files} events file(s) in {folder} but no {marker} marker (still being written)"
    )
    deadline = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=wait_hours
    )
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    if wait_hours > 0 and now < deadline:
        return Delivery(
            "waiting",
            files,
            deadline,
            f"{missing}; waiting until {deadline:%Y-%m-%d %H:%M} UTC "
            "([ingest] wait_for_as_of_events_hours)",
        )
    return Delivery(
        "late",
        files,
        deadline if wait_hours > 0 else None,
        f"{missing}"
        + (f" by {deadline:%Y-%m-%d %H:%M} UTC" if wait_hours > 0 else "")
        + f": the delivery for {as_of} is late or missing",
    )


def first_delivery(landing: Path, sources: tuple[str, ...] = ("events", "crm")) -> Path | None:
    """The earliest ``<landing>/<source>/dt=YYYY-MM-DD/`` folder holding a data file that
    :func:`discover` would load (by date, events before crm on the same day), or None.
    Reads folder listings only, from the oldest partition until one has a file."""
    found: list[tuple[date, int, Path]] = []
    for rank, source in enumerate(sources):
        folder = Path(landing) / source
        if not folder.is_dir():
            continue
        unlisted: list[tuple[Path, str]] = []
        parts = []
        for part in _listed(folder, unlisted):
            name = part.name.removeprefix("dt=")
            if not part.name.startswith("dt=") or not part.is_dir():
                continue
            try:
                parts.append((date.fromisoformat(name), part))
            except ValueError:
                continue
        for day, part in sorted(parts):
            files = _partition_entries(part, unlisted)[0]
            if any(not _hidden(p, part) and file_format(p.name) for p in files):
                found.append((day, rank, part))
                break
    return min(found)[2] if found else None


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_records(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    ids: list[int],
    table: str,
    aliases: dict[str, dict[str, list[str]]] | None = None,
    legacy: str | None = None,
    unmatched: dict[str, list[str]] | None = None,
    optional: frozenset[str] = frozenset(),
    absent: dict[str, list[str]] | None = None,
) -> dict[int, str]:
    """Fill temp ``table`` with the records of the CSV and Parquet files among ``files[ids]``.

    The table has the columns ``(_file, _line, raw, doc, _error)``, ``_file`` being the
    file's position in ``files``; ``raw`` is NULL where it is ``doc`` (Parquet rows). The
    CSV files are read with one multi-file scan; when that fails, each file is read on its
    own so a bad file does not stop the others. Returns ``{position: error}`` for every file
    that cannot be read (it has no rows). JSONL files are typed straight from their scan
    (:func:`jsonl_scan_sql`), not through this table. A column named as a field's alias
    (``aliases``, case-insensitively) is keyed by the field's name in ``doc``. A CSV line
    that is not UTF-8 is read as ``legacy`` where it holds no UTF-8 (:func:`readable_copy`).
    ``unmatched`` collects, per optional field given aliases, the files that have no column
    for it (:func:`unmatched_aliases`). A file needs a column for every required field but
    the ``optional`` ones (:func:`required_fields`). ``absent`` collects, per optional field,
    the files that have no column for it at all.
    """
    unmatched = {} if unmatched is None else unmatched
    absent = {} if absent is None else absent
    con.execute(
        f"create or replace temp table {table} (_file INTEGER, _line BIGINT, raw VARCHAR,"
        " doc VARCHAR, _error VARCHAR)"
    )
    failed: dict[int, str] = {}
    csv = [i for i in ids if files[i].fmt == "csv"]
    phys = f"{table}_phys"
    if csv:
        # A file whose checksum saw a bare CR is read from the copy at once: two whole
        # records parted by one leave no odd quote nor a short record (LandingFile.bare_cr).
        seen = bare_cr_files(files, [i for i in csv if files[i].bare_cr], legacy)
        # A gzip file's checksum reads its compressed bytes: the scan looks for such a CR
        # (strict), and when it fails Python looks at each gzip file (only then).
        gz = [i for i in csv if i not in seen and gzip_named(files[i])]
        try:
            failed.update(_read_lines_batch(con, files, csv, phys, legacy, seen, bool(gz)))
        except StrictScanError:
            seen |= bare_cr_files(files, gz, legacy)
            failed.update(_read_lines_batch(con, files, csv, phys, legacy, seen))
        csv = [i for i in csv if i not in failed]
        # (The gzip files were looked at: by the strict scan, or by Python after it; not
        # one read from a UTF-8 copy made since, of UTF-16 text: unreadable.)
        looked = set(seen) | {i for i in gz if gzip_named(files[i])}
        bare_cr = _bare_cr_files(con, files, [i for i in csv if i not in looked], phys, legacy)
        if bare_cr:
            bare_cr |= seen
            failed.update(_read_lines_batch(con, files, csv, phys, legacy, bare_cr))
            csv = [i for i in csv if i not in failed]
        bare_cr |= seen
        if csv:
            failed.update(
                _read_csv(con, files, csv, phys, table, aliases, unmatched, optional, absent)
            )
        # A bare CR in an unquoted value leaves no odd quote: the record is cut into records
        # of too few fields. Only a file holding such a record is looked at again.
        short = _short_record_files(con, table, [i for i in csv if i not in bare_cr | looked])
        again = _bare_cr_files(con, files, short, phys, legacy, odd_quotes=False)
        if again:
            con.execute(f"delete from {table} where _file in {_in(sorted(again))}")
            ids_again = sorted(again)
            failed.update(_read_lines_batch(con, files, ids_again, phys, legacy, again))
            ids_again = [i for i in ids_again if i not in failed]
            if ids_again:
                # Their columns were looked at in the first read (the same header).
                failed.update(_read_csv(con, files, ids_again, phys, table, aliases, {}, optional))
        _drop_lines(con, phys)
    # Parquet: one multi-file scan per set of files with the same columns (a file is often a
    # single row group, which one thread reads: file by file, the load used one core). The
    # same names and types: a scan casts every file to its first file's types, so a double
    # 12.75 read after an integer column became 13, a text id "00123" after an integer one
    # 123, a timestamp after a date midnight.
    groups: dict[tuple[tuple[str, str, str], ...], list[int]] = {}
    for i in (i for i in ids if files[i].fmt == "parquet"):
        if files[i].size_bytes == 0:
            continue  # an empty file has no rows, as an empty JSONL or CSV file
        try:
            cols, in_structs = _parquet_columns(con, files[i], aliases, optional)
            keys = [k for _, k, _ in cols] + in_structs
            for field in unmatched_aliases(files[i].source, keys, aliases, optional):
                unmatched.setdefault(field, []).append(files[i].path)
            for field in absent_fields(files[i].source, keys, optional):
                absent.setdefault(field, []).append(files[i].path)
            groups.setdefault(cols, []).append(i)
        except UnreadableFile as exc:
            failed[i] = str(exc)
        except duckdb.Error as exc:
            failed[i] = str(exc).splitlines()[0]
    for cols, members in groups.items():
        id_keys = _id_keys(files[members[0]].source, aliases)
        if any(c.lower() in _PARQUET_VIRTUAL for c, _, _ in cols):
            for i in members:
                try:
                    _read_parquet_alone(con, files, i, cols, table, id_keys)
                except Exception as exc:  # pyarrow's errors are not DuckDB's
                    failed[i] = str(exc).splitlines()[0]
            continue
        try:
            _read_parquet(con, files, members, cols, table, id_keys)
        except duckdb.Error:
            # Read each file on its own so a bad file does not stop the others.
            for i in members:
                try:
                    _read_parquet(con, files, [i], cols, table, id_keys)
                except duckdb.Error as exc:
                    failed[i] = str(exc).splitlines()[0]
    return failed


def jsonl_scan_sql(paths: list[str], strict: bool = False) -> str:
    """SQL: ``(file_index, line)`` for every physical line of the files, in file and line order.

    ``file_index`` is the position in ``paths``. Read into a table with
    ``preserve_insertion_order`` the rows keep that order, so a line's number is its rowid
    less its file's first rowid (blank lines come through as NULL and keep their number).
    """
    return _scan_sql(paths, strict).replace("select filename, line", "select file_index, line", 1)


def unreadable(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    ids: list[int],
    legacy: str | None = None,
) -> dict:
    """``{position: error}`` for the text files among ``ids`` that cannot be read to the end.

    A file DuckDB cannot read but Python can is not unreadable: ``files[i]`` is replaced by
    its repaired copy (:func:`readable_copy`: not UTF-8, decoded as ``legacy`` where it holds
    no UTF-8; a line longer than ``MAX_LINE``; a gzip stream padded with zeros), which the
    caller reads instead. A file Python cannot read either (a truncated or corrupt gzip)
    fails with DuckDB's error.
    """
    failed: dict[int, str] = {}
    for i in ids:
        error = _scan_error(con, files[i])
        other = _other_compression(_head(files[i].abspath))
        if error and other and not files[i].abspath.name.lower().endswith(".gz"):
            # An archive or a workbook under a text name (a spreadsheet saved as .xlsx and
            # named .csv): its bytes are no legacy text, and decoded as such the file failed
            # with its binary header quoted as the CSV header, or became lines of garbage.
            workbook = other == "zip" or other.startswith("Excel")
            failed[i] = (
                f"not text: the file holds {other} data"
                + (" (an Excel workbook, .xlsx, is zip)" if other == "zip" else "")
                + "; segmint reads CSV and JSON lines, plain or gzip"
                + (" (save the workbook as CSV)" if workbook else "")
            )
            continue
        if error:
            try:
                copy = readable_copy(files[i], legacy)
            except (OSError, EOFError, zlib.error) as exc:
                log.info("%s: no readable copy either (%s)", files[i].path, exc)
            else:
                if not _scan_error(con, copy):
                    files[i], error = copy, None
        if error:
            failed[i] = error.splitlines()[0] + (
                f" (the file holds {other} data; segmint reads gzip or plain text)" if other else ""
            )
    return failed


def _scan_error(con: duckdb.DuckDBPyConnection, f: LandingFile) -> str | None:
    try:
        con.execute(f"select count(*) from ({_scan_sql([str(f.abspath)])})").fetchall()
    except duckdb.Error as exc:
        return str(exc)
    return None


_scratch: Path | None = None


def _scratch_dir() -> Path:
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="segmint-utf8-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


# Characters DuckDB's readers take as a glob pattern in a path (and the backslash, which its
# globbing treats specially even where ``[*]`` escapes the others).
_GLOB_CHARS = re.compile(r"[*?\[\]{}\\]")
_links: dict[str, str] = {}


def _safe_name(key: str, name: str) -> str:
    """A scratch file name for the landing file ``name``: plain characters only (so it is no
    glob pattern), unique per ``key`` (two landing files never share a scratch file), and
    short enough for any file system (the end of the name is kept: ``.gz`` decides how
    DuckDB reads it)."""
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{digest}-{re.sub(r'[^A-Za-z0-9._=-]', '_', name)[-100:]}"


_GZIP_MAGIC = b"\x1f\x8b"
# The first bytes of other compressions and archives: such a file named .gz is no text.
_OTHER_MAGIC = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "Excel 97-2003 workbook (.xls)",
    b"\x04\x22\x4d\x18": "lz4",
    b"\x89\x48\x44\x46": "HDF5",
    b"PAR1": "Parquet",
}


def _head(path: Path) -> bytes:
    """The first bytes of ``path`` (none when it cannot be opened: its read fails anyway)."""
    try:
        with open(path, "rb") as src:
            return src.read(8)
    except OSError:
        return b""


def text_head(path: Path, size: int, lines: int) -> tuple[bytes, bool]:
    """The first ``size`` bytes of the text of ``path`` (decompressed when it is gzip), or
    fewer when they hold ``lines`` line ends already, and whether that is the whole text.
    ``(b"", True)`` when it cannot be read: its read fails later, with its own error."""
    head = b""
    try:
        gz = _head(path).startswith(_GZIP_MAGIC)
        with gzip.open(path, "rb") if gz else open(path, "rb") as src:
            while len(head) < size and head.count(b"\n") < lines:
                block = src.read(min(1 << 14, size - len(head)))
                if not block:
                    return head, True
                head += block
            return head, not src.read(1)
    except (OSError, EOFError, zlib.error):
        return b"", True


def _other_compression(head: bytes) -> str:
    """The compression or format whose first bytes ``head`` are ("" for none known)."""
    return next((kind for magic, kind in _OTHER_MAGIC.items() if head.startswith(magic)), "")


def with_compression_named(f: LandingFile) -> LandingFile:
    """``f``, read through a link whose name says how it is stored, where its name does not.

    DuckDB decides on decompression by the name alone. A text file holding gzip under a
    plain name (Kinesis Firehose objects, an S3 object stored with Content-Encoding: gzip)
    was read as a few broken lines (JSONL: quarantined as malformed; CSV: no header, the file
    loaded with 0 rows): it is read through a name ending in ``.gz``. A plain text file
    named ``.gz`` (what ``curl --compressed`` or a browser leaves of a gzip download, or an
    export whose compression was turned off) made the whole file fail: it is read through
    its name without ``.gz``. A ``.gz`` file holding another compression still fails, its
    error naming that compression."""
    if f.fmt == "parquet" or f.error:
        return f
    head = _head(f.abspath)
    named_gz = f.abspath.name.lower().endswith(".gz")
    if named_gz == head.startswith(_GZIP_MAGIC) or (named_gz and not head):
        return f
    if named_gz:
        if _other_compression(head):
            return f  # it fails to read, its error naming what it holds (unreadable)
        log.warning("%s: not gzip-compressed although its name ends in .gz: read as text", f.path)
        name = f.abspath.name[: -len(".gz")]
    else:
        log.warning("%s: gzip-compressed although its name does not end in .gz", f.path)
        name = f"{f.abspath.name}.gz"
    target = _scratch_dir() / _safe_name(f"{f.path}\0{f.sha256}", name)
    _link_or_copy(f.abspath, target)
    return dataclasses.replace(f, abspath=target)


def _link_or_copy(source: Path | str, target: Path) -> bool:
    """Make ``target`` (in the scratch folder) read as ``source``: a symbolic link, or a
    copy where links are not allowed. True when it is a link."""
    try:
        if not target.is_symlink():
            target.symlink_to(source)
        return True
    except OSError:
        shutil.copyfile(source, target)
        return False


def _literal_path(path: str) -> str:
    """``path`` as it may be given to DuckDB's ``read_csv`` / ``read_parquet``.

    They take every path as a glob pattern: ``export[1].jsonl`` would read ``export1.jsonl``
    and ``a*.jsonl`` every file starting with ``a``. A path holding such a character (or one
    that is not valid Unicode) is read through a symbolic link with a plain name in the
    scratch folder (a copy where links are not allowed); everything recorded still names the
    landing path. DuckDB's own escape (``[*]``) does not cover the backslash, a link does.
    Plain paths, nearly all, are given as they are.
    """
    if not _GLOB_CHARS.search(path):
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    if path in _links:
        return _links[path]
    target = _scratch_dir() / _safe_name(path, Path(path).name)
    # Without links, a copy is made again at each call (the file may have changed).
    if _link_or_copy(path, target):
        _links[path] = str(target)
    return str(target)


def _utf16_or_32(head: bytes) -> str | None:
    """The encoding a text file's byte-order mark names, when it is UTF-16 or UTF-32 (the
    codec then reads the mark and drops it)."""
    if head in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return "utf-32"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    return None


# Windows-1252 as browsers read it (the WHATWG Encoding Standard): Latin-1 with 0x80-0x9F
# read as the characters Windows put there (the euro sign, curly quotes, dashes); the five
# bytes Windows left undefined keep their Latin-1 code points. Every byte decodes, and the
# text encodes back to the same bytes: nothing is replaced.
_WINDOWS_1252 = {
    b: ord(c) for b in range(0x80, 0xA0) if (c := bytes([b]).decode("cp1252", errors="ignore"))
}
# A character that only a valid UTF-8 sequence of two bytes or more can give.
_UTF8_NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")


def decode_legacy_line(line: bytes, legacy: str | None) -> tuple[str, bool]:
    """A line that is not valid UTF-8, as text, and whether ``legacy`` decoded it.

    A line holding no valid UTF-8 character beyond ASCII was written by a tool in a legacy
    8-bit encoding (Excel's CSV on Windows, a Latin-1 database): it is decoded as
    ``legacy`` (a Python codec name; Windows-1252 and Latin-1 lose nothing). A line that
    holds UTF-8 characters beside the invalid bytes is damaged UTF-8 (a multi-byte character
    cut by a truncating writer): read as Windows-1252 its good characters would be garbled
    (``é`` as ``Ã©``), so only the damage becomes U+FFFD. Without ``legacy``, always so.
    """
    text = line.decode("utf-8", "replace")
    if not legacy or _UTF8_NON_ASCII.search(text):
        return text, False
    codec = codecs.lookup(legacy).name
    if codec == "cp1252":
        return line.decode("latin-1").translate(_WINDOWS_1252), True
    return line.decode(codec, "replace"), True


# A carriage return alone (not before a line feed) in a file whose lines end in LF or CRLF is
# part of a value, not a line end: Excel for Mac and some CRMs write one inside a quoted cell
# ("k1\r"). DuckDB's line reader ends a line at every CR and, in a CRLF file, drops the byte
# after it: the record was cut in two, its closing quote lost, and quarantined as "unbalanced
# quotes" and "missing required field customer_id" on the wrong lines. Such a file is read
# from a copy holding this mark (a Unicode noncharacter, which no text exchanged holds) in
# place of each bare CR; its lines hold the CR again.
BARE_CR_MARK = "\uffff"
# In such a copy of a CSV file, the carriage return(s) before a line feed: a line end where
# the line ends a record (dropped), kept as CRLF where it ends inside a quoted cell (a file of
# LF rows whose cells hold CRLF line breaks, as pandas' to_csv writes text typed on Windows:
# "Saint\r\nDenis" was stored as "Saint\nDenis" until 2026-12-07).
CRLF_MARK = "\ufffe"
_BARE_CR = re.compile(rb"\r(?!\n|\Z)")
# The same in decoded text (a CR ending the text is judged with the next chunk's first).
_BARE_CR_TEXT = re.compile(r"\r(?!\n|\Z)")
# Carriage returns before a CRLF line end ("\r\r\n": a CRLF file converted to CRLF again, or
# Python's csv module writing on Windows to a file opened without newline=''): DuckDB's line
# reader began each next line with the line feed, so every record's first field (an id)
# held a control character, every JSON line was "not a JSON object". They are no text of
# the line: the copy drops them.
_CR_BEFORE_CRLF = re.compile(rb"\r+(?=\r\n)")
# DuckDB's reader takes a file's first line end for all of them: in a file whose first line
# ends in LF, a CRLF is two line ends (an empty line after it) and CR CR LF three, so every
# later line was numbered one or two too far. The copy ends every line in LF.
_CR_BEFORE_LF = re.compile(rb"\r+(?=\n)")
_BARE_CR_CHUNK = 1 << 23


def _bare_cr_kinds(path: Path) -> tuple[bool, bool, bool]:
    """Whether the file ``path`` (gzip when so named) holds line feeds and a carriage return
    not followed by one inside a line, whether it holds one before a CRLF line end
    (:data:`_CR_BEFORE_CRLF`), and whether its first line ends in LF and a later one in CRLF
    (:data:`_CR_BEFORE_LF`). A file of CR line ends (old Mac text; Excel for Mac's CSV,
    whose cells hold LF line breaks) has more bare CRs than line feeds: its CRs are its
    line ends, which DuckDB's reader takes them for (such a file was read as one line and
    failed for its header)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    inside = doubled = mixed = False
    lfs = bare_crs = 0
    first_lf: bool | None = None  # whether the first line ends in a bare LF
    with opener(path, "rb") as src:
        tail = b""
        first = True
        while chunk := src.read(_BARE_CR_CHUNK):
            if first and _utf16_or_32(chunk[:4]):
                # UTF-16 or UTF-32 (a gzip file's scan failed): its CR is two or four bytes,
                # a CR before a NUL no bare one. Read as its mark says (readable_copy), as
                # the checksum's look leaves such a file alone.
                return False, False, False
            first = False
            chunk = tail + chunk
            # A CR at a chunk's end is judged with the next chunk's first byte.
            tail = chunk[-1:] if chunk.endswith(b"\r") else b""
            body = chunk[: len(chunk) - len(tail)]
            if first_lf is None and (end := body.find(b"\n")) >= 0:
                # (A CR cut off the chunk before is this chunk's first byte.)
                first_lf = end == 0 or body[end - 1 : end] != b"\r"
            lfs += body.count(b"\n")
            if first_lf:
                mixed = mixed or b"\r\n" in body
            if b"\r" in body:
                # (CRs before a CRLF line end are no line ends of their own.)
                kept = _CR_BEFORE_CRLF.sub(b"", body)
                bare_crs += kept.count(b"\r") - kept.count(b"\r\n")
                if _BARE_CR.search(body):
                    doubled = doubled or _CR_BEFORE_CRLF.search(body) is not None
                    if not inside:
                        inside = _BARE_CR.search(_CR_BEFORE_CRLF.sub(b"", body)) is not None
    if bare_crs > lfs:
        return False, False, False
    return bool(lfs) and inside, doubled, mixed


_BARE_LF = re.compile(rb"(?<!\r)\n")


def _crlf_only_files(files: list[LandingFile], ids: list[int]) -> frozenset[int]:
    """The files among ``ids`` whose every line ends in CRLF: a line break inside one of
    their quoted cells is a CRLF too (DuckDB's line reader gives the lines without their
    ends, and a multi-line record was joined with LF: "Saint\r\nDenis" stored as
    "Saint\nDenis", where DuckDB's read_csv, Python's csv and pandas keep it). A file with
    a bare LF anywhere (Excel's CRLF rows with LF inside cells) is not one. Each file is
    read once more: callers pass only files with a multi-line record."""
    found = []
    for i in ids:
        path = files[i].abspath
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        try:
            with opener(path, "rb") as src:
                last, crlf = b"", False
                while chunk := src.read(_BARE_CR_CHUNK):
                    data = last + chunk
                    # (A line feed first in the chunk is judged with the byte before it.)
                    if _BARE_LF.search(data, len(last)):
                        break
                    crlf = crlf or b"\r\n" in data
                    last = chunk[-1:]
                else:
                    if crlf:
                        found.append(i)
        except (OSError, EOFError, zlib.error) as exc:
            log.info("%s: not looked at for its line ends (%s)", files[i].path, exc)
    return frozenset(found)


def _short_record_files(con: duckdb.DuckDBPyConnection, table: str, ids: list[int]) -> list[int]:
    """The CSV files among ``ids`` with a record of fewer fields than their header in
    ``table`` (:func:`read_records`): what a line cut at a bare carriage return leaves."""
    if not ids:
        return []
    return [
        r[0]
        for r in con.execute(
            f"select distinct _file from {table} where _file in {_in(ids)} "
            "and _error like 'malformed CSV: % fields but the header has %' "
            "and split_part(_error, ' ', 3)::BIGINT < split_part(_error, ' ', -1)::BIGINT"
        ).fetchall()
    ]


def _bare_cr_files(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    ids: list[int],
    phys: str,
    legacy: str | None,
    odd_quotes: bool = True,
) -> frozenset[int]:
    """The text files among ``ids`` (CSV read into ``phys``) that hold a bare carriage
    return in a file of LF or CRLF lines (:data:`BARE_CR_MARK`); ``files[i]`` becomes the
    copy they are read from again. With ``odd_quotes``, only the files with a line holding
    an odd number of quotes are looked at (a quoted value cut at a CR leaves one), else each
    of ``ids`` (files the caller found a cut record in): most files are not read twice."""
    if not ids:
        return frozenset()
    odd = ids
    if odd_quotes:
        # (And a UTF-8 copy of UTF-16 text holding a bare CR: readable_copy.)
        odd = sorted(
            {i for i in ids if files[i].bare_cr}.union(
                r[0]
                for r in con.execute(
                    f"select distinct _file from {phys} where _file in {_in(ids)} "
                    # A line holding a line feed began after a CR before a CRLF line end; an
                    # empty line may be the second end DuckDB's reader saw in a CRLF line end
                    # of a file whose first line ends in LF (_CR_BEFORE_LF).
                    "and (line = '' or contains(line, chr(10)) or case when contains(line, '\"') "
                    "then (length(line) - length(replace(line, '\"', ''))) % 2 = 1 else false end)"
                ).fetchall()
            )
        )
    return bare_cr_files(files, odd, legacy)


def bare_cr_files(files: list[LandingFile], ids: list[int], legacy: str | None) -> frozenset[int]:
    """The files among ``ids`` that hold a bare carriage return in a file of LF or CRLF
    lines; ``files[i]`` becomes the copy they are read from again, each such carriage return
    written as :data:`BARE_CR_MARK` (the reader puts it back), and a warning names the file.
    Each file is read once more: callers pass only files a cut line was seen in."""
    found = []
    for i in sorted(ids):
        try:
            inside, doubled, mixed = _bare_cr_kinds(files[i].abspath)
            if not (inside or doubled or mixed):
                continue
            files[i] = readable_copy(files[i], legacy, bare_cr=True)
        except (OSError, EOFError, zlib.error) as exc:
            log.info("%s: not looked at for carriage returns (%s)", files[i].path, exc)
            continue
        found.append(i)
        if inside:
            log.warning(
                "%s: carriage return(s) not followed by a line feed read as part of their "
                "value, not as line ends (the file's lines end in LF or CRLF)",
                files[i].path,
            )
        if doubled:
            log.warning(
                "%s: lines ending in CR CR LF read as CRLF line ends (a CRLF file converted to "
                "CRLF again: a Windows program writing \\r\\n in text mode, such as Python's "
                "csv module on a file opened without newline='')",
                files[i].path,
            )
        if mixed:
            log.warning(
                "%s: lines ending in CRLF in a file whose first line ends in LF (files of both "
                "kinds joined) read as one line end each",
                files[i].path,
            )
    return frozenset(found)


def readable_copy(f: LandingFile, legacy: str | None = None, bare_cr: bool = False) -> LandingFile:
    """``f`` read from an uncompressed UTF-8 copy that DuckDB's line reader accepts.

    The copy keeps every line (and so every line number); ``path`` and ``sha256`` still name
    the landing file. What it repairs, each with a warning naming the file and lines:

    - a line that is not valid UTF-8 is decoded as ``legacy`` when it holds no UTF-8
      character (:func:`decode_legacy_line`), else its invalid sequences are replaced by
      U+FFFD (a file with a UTF-16 or UTF-32 byte-order mark is decoded as such instead);
    - a line longer than ``MAX_LINE`` bytes becomes ``TOO_LONG_MARK``, its length and its
      first ``TOO_LONG_HEAD`` bytes: the staging quarantines it with that reason, where the
      whole file failed before;
    - a gzip stream followed by zero bytes (block-padded writers and tape copies) is read
      as Python's gzip reads it, the padding ignored. Any other damage (truncated, trailing
      garbage) raises, and the file fails with DuckDB's error.

    Chunks that decode cleanly and hold no over-long line are copied as they are, so a large
    file costs about one read and one write of it. With ``bare_cr``, each carriage return
    that is not followed by a line feed is written as ``BARE_CR_MARK`` (:func:`_bare_cr_files`)
    and every line ends in LF (:data:`_CR_BEFORE_LF`).
    """
    gz = f.abspath.name.lower().endswith(".gz")
    # The copy is decompressed: its name must not end in .gz, in any case (DuckDB takes
    # .GZ for gzip too, and failed the file with "Input is not a GZIP stream").
    name = f.abspath.name[:-3] if gz else f.abspath.name
    # A copy of a copy (a bare CR copy of a repaired file) is a file of its own.
    key = f"{f.path}\0{f.sha256}" + ("\0bare-cr" if bare_cr else "")
    target = _scratch_dir() / _safe_name(key, name)
    opener = gzip.open if gz else open
    with opener(f.abspath, "rb") as src:
        encoding = _utf16_or_32(src.read(4))
    if encoding:
        # Excel's "Unicode Text" (and other Windows tools) write UTF-16 with a byte-order
        # mark: every byte pair read as UTF-8 garbled the header past recognition.
        # A CR alone in it is looked for in the text: the checksum's byte search cannot see
        # one (two bytes, or four), and two whole records parted by one were read as two
        # lines, every later line numbered one too far, and in a file of CRLF lines the
        # character after the CR lost (an id 'g2' loaded as '2'). The copy says so
        # (``bare_cr``): the reader then looks at it as at a UTF-8 file whose checksum saw one.
        bare, cr_before = False, False
        with opener(f.abspath, "rb") as src, open(target, "wb") as dst:
            text = io.TextIOWrapper(src, encoding=encoding, errors="replace", newline="")
            while chunk := text.read(_UTF8_CHUNK // 4):
                if not bare and (cr_before or "\r" in chunk):
                    bare = (cr_before and chunk[0] != "\n") or _BARE_CR_TEXT.search(
                        chunk
                    ) is not None
                    cr_before = chunk[-1] == "\r"
                dst.write(chunk.encode("utf-8"))
        log.warning(
            "%s: read as %s (its byte-order mark says so); segmint reads UTF-8",
            f.path,
            encoding.upper(),
        )
        return dataclasses.replace(f, abspath=target, bare_cr=bare)
    with opener(f.abspath, "rb") as src, open(target, "wb") as dst:
        legacy_lines, bad, long = _copy_lines(
            src, dst, csv=f.fmt == "csv", legacy=legacy, bare_cr=bare_cr
        )
    for what, lines in (
        (f"are not UTF-8 but {legacy} text, read as such ([ingest] legacy_encoding)", legacy_lines),
        ("are not valid UTF-8 (damaged UTF-8: each invalid sequence read as U+FFFD)", bad),
        (f"are longer than {MAX_LINE_SIZE >> 20} MiB, the longest line segmint reads", long),
    ):
        if lines:
            shown = ", ".join(str(n) for n in lines[:20]) + (", ..." if len(lines) > 20 else "")
            log.warning("%s: %d line(s) %s (line %s)", f.path, len(lines), what, shown)
    return dataclasses.replace(f, abspath=target)


def _too_long(head: bytes, size: int, csv: bool) -> bytes:
    """The line that stands for an over-long line in a repaired copy (see TOO_LONG_MARK).

    In a CSV file its quotes become apostrophes: a cut quoted field would stay open and
    swallow the lines after it into one record."""
    text = head.decode("utf-8", "replace").replace("\r", " ")
    if csv:
        text = text.replace('"', "'")
    return f"{TOO_LONG_MARK}{size} bytes: {text}".encode()


def _copy_lines(
    src, dst, csv: bool, legacy: str | None = None, bare_cr: bool = False
) -> tuple[list[int], list[int], list[int]]:
    """Copy ``src`` to ``dst`` line for line: a line that is not UTF-8 decoded by
    :func:`decode_legacy_line`, a line longer than ``MAX_LINE`` replaced by :func:`_too_long`,
    with ``bare_cr`` a carriage return not followed by a line feed written as
    ``BARE_CR_MARK``. Returns the numbers of the lines read as ``legacy``, of the lines with
    invalid sequences replaced and of the over-long lines."""
    mark = BARE_CR_MARK.encode()
    # (A JSON line's CRs before its line feed are white space after the record: dropped.)
    crlf_mark = CRLF_MARK.encode() if csv else b""

    def write(data: bytes) -> None:
        # ``data`` ends with a line feed, or at the end of the file (where a last CR is the
        # line's end).
        dst.write(_BARE_CR.sub(mark, _CR_BEFORE_LF.sub(crlf_mark, data)) if bare_cr else data)

    legacy_lines: list[int] = []
    bad: list[int] = []
    long: list[int] = []
    lines_before = 0

    def copy(block: bytes) -> None:
        nonlocal lines_before
        lines = block.split(b"\n")
        try:
            block.decode("utf-8")
            if max(map(len, lines)) <= MAX_LINE:
                write(block)
                lines_before += len(lines) - 1
                return
        except UnicodeDecodeError:
            pass
        for k, line in enumerate(lines):
            if len(line) > MAX_LINE:
                long.append(lines_before + k + 1)
                line = _too_long(line[:TOO_LONG_HEAD], len(line), csv)
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                text, decoded = decode_legacy_line(line, legacy)
                (legacy_lines if decoded else bad).append(lines_before + k + 1)
                line = text.encode("utf-8")
            write(line if k == len(lines) - 1 else line + b"\n")
        lines_before += len(lines) - 1

    carry = b""
    # [first bytes, length] of an over-long line being skipped to its end.
    skipping: list | None = None
    while chunk := src.read(_UTF8_CHUNK):
        if skipping is not None:
            end = chunk.find(b"\n")
            if end < 0:
                skipping[1] += len(chunk)
                continue
            skipping[1] += end
            long.append(lines_before + 1)
            dst.write(_too_long(*skipping, csv))
            skipping, chunk = None, chunk[end:]
        chunk = carry + chunk
        cut = chunk.rfind(b"\n") + 1
        block, carry = chunk[:cut], chunk[cut:]
        if block:
            copy(block)
        if len(carry) > MAX_LINE:
            skipping, carry = [carry[:TOO_LONG_HEAD], len(carry)], b""
    if skipping is not None:
        long.append(lines_before + 1)
        dst.write(_too_long(*skipping, csv))
    elif carry:
        copy(carry)
    return legacy_lines, bad, long


def gzip_named(f: LandingFile) -> bool:
    """Whether DuckDB reads ``f`` as gzip (it goes by the name)."""
    return f.abspath.name.lower().endswith(".gz")


class StrictScanError(Exception):
    """A strict scan (:func:`_scan_sql`) of files holding gzip files failed."""


def _scan_sql(paths: list[str], strict: bool = False) -> str:
    """SQL: ``(filename, line)`` for every physical line of the files.

    ``strict``: read in DuckDB's strict mode, which fails on a line end other than the
    file's first one (a bare CR in a file of LF or CRLF lines, CR CR LF, a CRLF after LF
    lines, an LF inside a CRLF file) instead of taking it as a line end. Asked for the scans
    holding gzip files: the checksum reads their compressed bytes, so a bare CR in one is
    only seen so, at no cost (a scan that fails is read again, after Python looked at its
    gzip files: :func:`bare_cr_files`)."""
    listed = "[" + ", ".join(_lit(_literal_path(p)) for p in paths) + "]"
    return f"""
        select filename, line
        from read_csv(
            {listed},
            columns = {{'line': 'VARCHAR'}},
            header = false,
            delim = {_lit(_NO_DELIM)},
            quote = '',
            escape = '',
            auto_detect = false,
            hive_partitioning = false,
            filename = true,
            max_line_size = {MAX_LINE_SIZE},
            -- Lenient about line ends: a CRLF file with a bare LF inside a quoted cell (what
            -- Excel writes for multi-line cells) is split at both; records are rejoined later.
            strict_mode = {"true" if strict else "false"}
        )
    """


@contextlib.contextmanager
def scan_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Tables created inside keep the scan's row order (files in list order, lines in file
    order), which line numbers are read from; the setting is restored after.

    Without ``preserve_insertion_order`` DuckDB's parallel reader appends the ranges of a
    large file in the order its threads finish them: every line number of a 2-million-line
    CSV file was wrong, and multi-line records were rejoined from the wrong lines.
    """
    (before,) = con.execute("select current_setting('preserve_insertion_order')").fetchone()
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")


def json_documents(
    con: duckdb.DuckDBPyConnection, files: list[LandingFile], lines: dict[int, int]
) -> dict[int, str]:
    """``{position: error}`` for the JSON lines files ``lines`` names (position: its lines
    that are not blank; none of them is a JSON object) that are JSON of another layout: one
    JSON array (what most tools mean by a ``.json`` export), or JSON values spread over
    several lines each (``jq .`` output, pretty-printed objects). Their lines are fragments,
    not records; each error says how to write the file as JSON lines. Files that are neither
    (one scalar or one array a line, broken JSON) are left to the line checks."""
    failed: dict[int, str] = {}
    for i, text_lines in lines.items():
        path = _lit(_literal_path(str(files[i].abspath)))
        for layout, error in (
            (
                "array",
                "not JSON lines: the file is one JSON array of {n} value(s); segmint reads one "
                "JSON object a line (jq -c '.[]' FILE writes them so)",
            ),
            (
                "unstructured",
                "not JSON lines: the file holds {n} JSON value(s) written over several lines "
                "each (pretty-printed); segmint reads one JSON object a line (jq -c . FILE "
                "writes them so)",
            ),
        ):
            try:
                ((n,),) = con.execute(
                    f"select count(*) from read_json({path}, format = '{layout}', "
                    "records = false, columns = {'value': 'JSON'})"
                ).fetchall()
            except duckdb.Error:
                continue
            if layout == "array" or n < text_lines:
                failed[i] = error.format(n=n)
            break
    return failed


def check_line_order(not_contiguous: list[int], files: list[LandingFile]) -> None:
    """Raise when some files (``_file`` positions) do not hold consecutive row ids."""
    if not_contiguous:
        raise RuntimeError(
            f"{files[not_contiguous[0]].path}: the scan did not keep line order; "
            "cannot number lines"
        )


def _read_lines_batch(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    ids: list[int],
    table: str,
    legacy: str | None = None,
    bare_cr: frozenset[int] = frozenset(),
    strict: bool = False,
) -> dict[int, str]:
    """``table(_file, ln, line)``: every physical line of the (decompressed) files, from 1.

    CREATE TABLE AS keeps the scan's order (preserve_insertion_order), files in list order
    and lines in file order, so a line's number is its rowid less its file's first rowid.
    Blank lines come through as NULL and keep their number. The files ``bare_cr`` are
    copies whose bare carriage returns are ``BARE_CR_MARK`` (:func:`_bare_cr_files`): their
    lines hold them again as carriage returns. ``strict``: the files are scanned in strict
    mode (:func:`_scan_sql`), and a scan that fails raises :class:`StrictScanError`.
    """
    failed: dict[int, str] = {}
    scan = f"{table}_scan"
    with scan_order(con):
        try:
            con.execute(
                f"create or replace temp table {scan} as "
                + _scan_sql([str(files[i].abspath) for i in ids], strict)
            )
        except duckdb.Error as exc:
            if strict:
                raise StrictScanError(str(exc)) from exc
            # Find the unreadable file(s): read each file on its own.
            con.execute(f"create or replace temp table {scan} (filename VARCHAR, line VARCHAR)")
            failed = unreadable(con, files, ids, legacy)
            for i in ids:
                if i not in failed:
                    con.execute(f"insert into {scan} " + _scan_sql([str(files[i].abspath)]))
    # The scan names each file as it was given (:func:`_literal_path`).
    names = ", ".join(
        f"({_lit(_literal_path(str(files[i].abspath)))}, {i})" for i in ids if i not in failed
    )
    if not names:
        names = "(null::VARCHAR, null::INTEGER)"
    con.execute(
        f"""
        create or replace temp table {scan}_first as
        select
            m._file::INTEGER as _file,
            filename,
            min(s.rowid) as first_rid,
            max(s.rowid) - min(s.rowid) + 1 = count(*) as contiguous,
        from {scan} s
        join (values {names}) m(filename, _file) using (filename)
        group by all
        """
    )
    check_line_order(
        [
            r[0]
            for r in con.execute(f"select _file from {scan}_first where not contiguous").fetchall()
        ],
        files,
    )
    line = "coalesce(s.line, '')"
    # cr: the line ended in CRLF (CRLF_MARK) in a file of LF lines, read from a copy.
    cr = "false"
    if bare_cr:
        inside = f"f._file in {_in(sorted(bare_cr))}"
        cr = f"case when {inside} then ends_with({line}, {_lit(CRLF_MARK)}) else false end"
        line = (
            f"case when {inside} then replace(replace({line}, {_lit(BARE_CR_MARK)}, chr(13)), "
            f"{_lit(CRLF_MARK)}, '') else {line} end"
        )
    line += f" as line, {cr} as cr"
    # A view: the readers scan the lines once, nothing is materialised twice.
    con.execute(
        f"""
        create or replace temp view {table} as
        select
            f._file,
            s.rowid - f.first_rid + 1 as ln,
            {line},
        from {scan} s
        join {scan}_first f using (filename)
        """
    )
    return failed


def _drop_lines(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f"drop view if exists {table}")
    con.execute(f"drop table if exists {table}_scan_first")
    con.execute(f"drop table if exists {table}_scan")


def _in(ids: list[int]) -> str:
    return "(" + ", ".join(str(i) for i in ids) + ")"


def _raw_fields(expr: str, delim: str = ",") -> str:
    """SQL: the fields of CSV record ``expr`` as they appear (quotes kept).

    A record without any double quote is split on its separators (the same fields, several
    times cheaper than the regular expression, which only records with quotes need).

    A quoted field written after spaces (``"c1", "Paris, FR"``: some exporters put a space
    after every separator) is the quoted field, as DuckDB's reader and Python's csv with
    ``skipinitialspace`` read it: the spaces are dropped, so its quotes come off and a
    separator inside it splits nothing (a header so written was read as ``'"updated_at"'``
    and its file failed). Only records holding a space before a quote pay for the check.
    """
    fields = f"regexp_extract_all({_lit(delim)} || {expr}, {_lit(csv_field_re(delim))}, 1)"
    return (
        f"case when not contains({expr}, '\"') then string_split({expr}, {_lit(delim)}) "
        f"when not contains({expr}, ' \"') then {fields} "
        f"else list_transform({fields}, lambda x: case when starts_with(x, ' ') "
        "and starts_with(ltrim(x, ' '), '\"') then ltrim(x, ' ') else x end) end"
    )


def _split_csv(expr: str, raw_fields: str | None = None, delim: str = ",") -> str:
    """SQL: the unquoted fields of CSV record ``expr`` (RFC 4180 quoting, ``delim`` separated).

    ``raw_fields``: the record's :func:`_raw_fields`, when already computed.
    """
    fields = raw_fields or _raw_fields(expr, delim)
    unquoted = (
        f"list_transform({fields}, lambda x: case when x like '\"%\"' and length(x) >= 2 "
        "then replace(x[2:-2], '\"\"', '\"') else x end)"
    )
    # A field written as Excel's text formula (="02118", or quoted "=""02118"""), which
    # "Excel-friendly" exports write to keep a ZIP code's or an id's leading zeros and a long
    # number's digits: Excel shows the text, which the field is. It loaded as written, an
    # id '="c8"' another customer than 'c8'.
    return (
        f"list_transform({unquoted}, lambda y: case when contains(y, '=\"') "
        f"and regexp_full_match(y, {_lit(EXCEL_TEXT_RE)}) "
        """then replace(regexp_extract(y, '="(.*)"', 1), '""', '"') else y end)"""
    )


EXCEL_TEXT_RE = ' *="(?:[^"]|"")*" *'


def csv_record_re(delim: str = ",") -> str:
    """Regular expression (full match) for a CSV record whose every field starting with a
    quote is a well-formed quoted field (closed, then the separator or the end)."""
    d = re.escape(delim)
    field = f'(?: *"(?:[^"]|"")*"|{_plain_field_re(delim)}|)'
    return f"{field}(?:{d}{field})*"


def _bad_quote(raw_fields: str) -> str:
    """SQL: the position of the first field of a record (its :func:`_raw_fields`) that starts
    with a quote but is no well-formed quoted field (0 when there is none): the quote is
    never closed, or text follows the closing quote. Well-formed: ``"..."`` whose inside is
    other characters and ``""`` pairs (removing the pairs leaves no quote).

    Only for a record that :func:`csv_record_re` does not match: one regular expression per
    record costs a third of these list functions per field, which a file quoting every field
    would pay on every field.
    """
    return (
        f"coalesce(list_position(list_transform({raw_fields}, lambda x: x[1] = '\"' and not "
        "(length(x) >= 2 and x[-1] = '\"' and not contains(replace(x[2:-2], '\"\"', ''), '\"'))"
        "), true), 0)"
    )


# A field holding a closed quoted field and more text (the rest of a :func:`_bad_quote`
# field that is not an unclosed quote).
_TEXT_AFTER_QUOTE = '(?s)"(?:[^"]|"")*"[^"].*'


def doc_keys(
    source: str, columns: list[str], aliases: dict[str, dict[str, list[str]]] | None = None
) -> list[str]:
    """The document keys of a CSV header's or Parquet file's ``columns``: trimmed and
    lower-cased; for each contract field, the first column named as the field or one of its
    aliases (in that order) is keyed by the field's name, a later alias's column by the alias
    as written (the name the record's next value is read from when the first has none).

    Trimmed of what is invisible at a name's ends too (:func:`_column_key`): a byte-order
    mark before a name (files joined after their first), a zero-width space, a no-break
    space, a NUL. Such a header failed its file, the error suggesting the alias
    ``'\\ufeffupdated_at'`` (no TOML reads that name: single quotes take no escapes)."""
    keys = [_column_key(c) for c in columns]
    if not aliases:
        return keys
    for name, landing in field_names(source, aliases).items():
        # An alias differing from the field's name in case only (EVENT_ID, for the JSON
        # Snowflake unloads) is the field's own column here.
        for alias in [n for n in landing if _column_key(n) != _column_key(name)]:
            if _column_key(alias) in keys:
                keys[keys.index(_column_key(alias))] = alias if name in keys else name
    return keys


_NAME_EDGE_CHARS = INVISIBLE_CHARS + "\x00"


def _column_key(name: str) -> str:
    """A column name as a document key: lower-cased, trimmed of spaces, control and
    zero-width characters (:data:`~segmint.ingest.contract.INVISIBLE_CHARS`, NUL)."""
    return name.strip().strip(_NAME_EDGE_CHARS).lower()


def _toml_str(name: str) -> str:
    """``name`` as a TOML string that reads back as ``name``, for a setting an error suggests:
    a literal string (``'Record ID'``) when it can be one, else a basic string whose
    invisible characters are escapes (``"updated\\u00a0at"``): Python's repr,
    ``'updated\\xa0at'``, read in TOML as a backslash and three letters."""
    if name.isprintable() and "'" not in name:
        return f"'{name}'"
    escaped = "".join(
        c
        if c.isprintable() and c not in '"\\'
        else (
            f"\\{c}"
            if c in '"\\'
            else f"\\u{ord(c):04x}"
            if ord(c) < 0x10000
            else f"\\U{ord(c):08x}"
        )
        for c in name
    )
    return f'"{escaped}"'


def _spelling(name: str) -> str:
    """A column name without case, spaces or punctuation: ``Email Opt-In`` is ``emailoptin``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def lookalikes(
    source: str, keys: list[str], aliases: dict[str, dict[str, list[str]]] | None = None
) -> dict[str, list[str]]:
    """Per contract field that a CSV header's or Parquet file's document ``keys``
    (:func:`doc_keys`) have no column for: the columns spelt as the field or one of its
    aliases but for case, spaces and punctuation (``Customer ID``, ``Email Opt-In``). Such
    a column is an unknown one, kept in ``_extra``: a vendor that renames a header
    (``email_opt_in`` to ``Email Opt In``) would otherwise load every record without it, a
    consent column every customer without consent, in silence."""
    found: dict[str, list[str]] = {}
    for name, landing in field_names(source, aliases).items():
        if name in keys:
            continue
        spelt = {_spelling(n) for n in landing}
        like = [k for k in keys if _spelling(k) in spelt and k not in landing]
        if like:
            found[name] = like
    return found


def _lookalike_note(like: list[str]) -> str:
    return "; spelt alike: " + ", ".join(map(repr, like))


def unmatched_aliases(
    source: str,
    keys: list[str],
    aliases: dict[str, dict[str, list[str]]] | None,
    optional: frozenset[str] = frozenset(),
) -> list[str]:
    """The optional fields for which a CSV header's or Parquet file's document ``keys``
    (:func:`doc_keys`) have no column, neither the field's own name nor an alias, each with
    the names looked for: every record of the file loads without the field. Those given
    aliases in ``[ingest] field_aliases``: a mapping written for another version of an export
    (``Accepts Marketing`` where it now says ``Accepts Email Marketing``) would otherwise load
    every customer without consent, in silence. Any other field only when a column is spelt
    like it (:func:`lookalikes`). (A missing required field fails the file.)"""
    required = set(required_fields(source, optional))
    like = lookalikes(source, keys, aliases)
    return [
        f"{name} (looked for {', '.join(map(repr, landing))}"
        + (_lookalike_note(like[name]) if name in like else "")
        + ")"
        for name, landing in field_names(source, aliases).items()
        if (len(landing) > 1 or name in like) and name not in required and name not in keys
    ]


def absent_fields(
    source: str, keys: list[str], optional: frozenset[str] = frozenset()
) -> list[str]:
    """The optional fields of ``source`` a CSV header's or Parquet file's document ``keys``
    (:func:`doc_keys`) have no column for: every record of the file loads without them."""
    required = set(required_fields(source, optional))
    return [f.name for f in FIELDS[source] if f.name not in required and f.name not in keys]


# Column names (lower-cased, as doc_keys gives them) that look like a CRM record's id (the
# last word "id": HubSpot's "Record ID", Salesforce's Id and ContactId) and like its
# modification time (HubSpot's "Last Modified Date", Salesforce's LastModifiedDate and
# SystemModstamp, WooCommerce's date_modified, Mailchimp's LAST_CHANGED), for the hint of a
# file lacking customer_id or updated_at. "paid" or "valid" is no id.
_ID_LIKE = re.compile(
    r"(.*[^0-9a-z])?(u?u?id|guid)|.*(record|contact|customer|user|client|member|account|person"
    r"|lead|subscriber|external|profile)id"
)
_MODIFIED_LIKE = re.compile(r"modif|updat|changed|modstamp")


def _guesses(source: str, keys: list[str]) -> dict[str, tuple[list[str], str, str]]:
    """Per required CRM field a file has no column for: the columns that look like it (by
    name, :data:`_ID_LIKE`, :data:`_MODIFIED_LIKE`) and what they look like (one, several)."""
    if source != "crm":
        return {}
    ids = [k for k in keys if _ID_LIKE.fullmatch(k)]
    modified = [k for k in keys if _MODIFIED_LIKE.search(_spelling(k))]
    return {
        "customer_id": (ids, "an id", "ids"),
        "updated_at": (modified, "a modification time", "modification times"),
    }


def _missing(
    source: str,
    missing: list[str],
    aliases: dict[str, dict[str, list[str]]] | None,
    keys: list[str] | None = None,
) -> str:
    """The required fields a file has no column for, each with the aliases looked for:
    ``customer_id (or 'Contact ID')``, so that a misspelt alias shows; a column of the
    file's document ``keys`` spelt like one (:func:`lookalikes`), or else looking like a CRM
    record's id or modification time (:func:`_guesses`: HubSpot's ``Record ID`` and ``Last
    Modified Date``), is named with the setting that reads it."""
    names = field_names(source, aliases)
    like = lookalikes(source, keys or [], aliases)
    guessed = {
        n: found
        for n, found in _guesses(source, keys or []).items()
        if n in missing and n not in like and found[0]
    }
    return ", ".join(
        n + (f" (or {', '.join(repr(a) for a in names[n] if a != n)})" if len(names[n]) > 1 else "")
        for n in missing
    ) + "".join(
        f" ({hint})"
        for field, hint in [
            # A vendor's renamed header (customer_id written "Customer ID"): what reads it.
            *(
                (
                    n,
                    f"column {c[0]!r} is spelt alike: if it is {n}, name it in "
                    f"[ingest.field_aliases.{source}]: {n} = [{_toml_str(c[0])}]",
                )
                for n, c in like.items()
            ),
            *(
                (
                    n,
                    (
                        f"column {found[0]!r} looks like {one}: if it is {n}"
                        if len(found) == 1
                        else f"columns {', '.join(map(repr, found))} look like {several}: if "
                        f"one is {n}"
                    )
                    + f", name it in [ingest.field_aliases.{source}]: "
                    + f"{n} = [{_toml_str(found[0])}]",
                )
                for n, (found, one, several) in guessed.items()
            ),
            # Public datasets and many dumps have none (docs/data-contract.md, "Public
            # datasets"); Shopify's and most shops' customer exports have no modification time.
            ("event_id", "an export without event ids loads with [ingest] event_id_from_record"),
            *(
                []
                if "updated_at" in guessed or "updated_at" in like
                else [
                    (
                        "updated_at",
                        "an export without modification times loads with "
                        "[ingest] crm_updated_at_from_partition",
                    )
                ]
            ),
        ]
        if field in missing
    )


def _names_together(source: str, keys: list[str]) -> str | None:
    """The first of a CSV header's document ``keys`` that holds two or more of the
    contract's field names as words (``customer_id,city,updated_at`` when the whole header
    line is quoted, ``customer_id city updated_at`` parted by spaces): no column but a
    header read as one. Its error suggested the alias updated_at = ['customer_id,city,...']
    (the column "looks like a modification time")."""
    contract = {f.name for f in FIELDS[source]}
    for key in keys:
        if len(contract.intersection(re.split(r"[^0-9a-z_]+", key))) >= 2:
            return key
    return None


def _numbered_repeats(names: list[str]) -> list[str]:
    """``names`` with each repeat of a name numbered (``notes``, ``notes_2``, ...), skipping
    numbers another column already has."""
    out: list[str] = []
    taken = set(names)
    for name in names:
        if name in out:
            k = 2
            while f"{name}_{k}" in taken:
                k += 1
            name = f"{name}_{k}"
            taken.add(name)
        out.append(name)
    return out


_SEP_DIRECTIVE = re.compile(r'"?sep=.?"?', re.IGNORECASE)


def _read_csv(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    ids: list[int],
    phys: str,
    table: str,
    aliases: dict[str, dict[str, list[str]]] | None = None,
    unmatched: dict[str, list[str]] | None = None,
    optional: frozenset[str] = frozenset(),
    absent: dict[str, list[str]] | None = None,
) -> dict[int, str]:
    """Append the CSV files' records; one statement per distinct header (``unmatched``,
    ``optional``, ``absent``: :func:`read_records`)."""
    failed: dict[int, str] = {}
    splits = ", ".join(_split_csv("h", delim=d) for d in CSV_DELIMITERS)
    blank = "trim(line, ' ' || chr(9) || chr(13) || chr(65279)) = ''"

    def header_lines(where: str) -> dict[int, tuple[int, str, tuple]]:
        return {
            row[0]: (row[1], row[2], row[3:])
            for row in con.execute(
                f"select _file, ln, h, {splits} "
                f"from (select _file, ln, ltrim(line, chr(65279)) as h from {phys} where {where})"
            ).fetchall()
        }

    # The header is the first line that is not blank: some exporters write an empty line (or
    # spaces, or a lone CR) before it. Nearly always line 1; only a file whose line 1 is
    # blank is searched further (an empty file has no header and no records).
    headers = header_lines(f"ln = 1 and _file in {_in(ids)} and not ({blank})")
    later = [i for i in ids if i not in headers]
    if later:
        headers |= header_lines(
            f"(_file, ln) in (select (_file, min(ln)) from {phys} "
            f"where _file in {_in(later)} and not ({blank}) group by _file)"
        )
    # Excel's separator directive ("sep=;" on the line before the header, written by
    # exports meant to open in Excel in any locale) is no header: the header is the next
    # line that is not blank, and the separator is found from it as in any file.
    directive = {i: ln for i, (ln, h, _) in headers.items() if _SEP_DIRECTIVE.fullmatch(h.strip())}
    if directive:
        for i in directive:
            del headers[i]
        whens = " ".join(f"when {i} then {ln}" for i, ln in directive.items())
        headers |= header_lines(
            f"(_file, ln) in (select (_file, min(ln)) from {phys} "
            f"where _file in {_in(list(directive))} and ln > case _file {whens} end "
            f"and not ({blank}) group by _file)"
        )
    header_at = {i: ln for i, (ln, _, _) in headers.items()}

    def after_header(group: list[int]) -> str:
        """SQL: the line is after its file's header (line numbers stay physical)."""
        whens = " ".join(f"when {i} then {header_at[i]}" for i in group if header_at[i] > 1)
        return f"ln > case _file {whens} else 1 end" if whens else "ln > 1"

    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for i in ids:
        if i not in headers:
            continue
        _, header_line, by_delim = headers[i]
        # A header ending in a bare CR in a file of LF or CRLF lines (its other lines end so:
        # a CR alone is then text) runs into the first record: its names are no columns,
        # and the alias the error suggested for the last one was 'updated_at\rg1'.
        if "\r" in header_line.rstrip("\r"):
            before, after = header_line.split("\r", 1)
            failed[i] = (
                "CSV header holds a carriage return not followed by a line feed (after "
                f"{before[-60:]!r}, before {after[:60]!r}): in a file whose other lines end in "
                "LF or CRLF a bare CR is no line end, so it is read as part of the header. "
                "If it ends the header (an old Mac line end), export the file again with one "
                "kind of line end, or put a line feed after it (sed '1s/\\r/\\r\\n/'); "
                "else remove it from the header"
            )
            continue
        required = required_fields(files[i].source, optional)
        # The first separator whose header names every required column (else the comma).
        splits = {
            d: [
                n or f"column_{k + 1}"
                for k, n in enumerate(doc_keys(files[i].source, fields, aliases))
            ]
            for d, fields in zip(CSV_DELIMITERS, by_delim, strict=True)
        }
        # None does: the one naming the most (the comma if none names any), so that the error
        # lists only the columns really missing (a semicolon header mapped with a misspelt
        # alias for customer_id was said to lack updated_at too). Ties go to the split naming
        # more contract fields: a semicolon CRM header whose only required column, the id
        # (updated_at optional: crm_updated_at_from_partition), has no alias was read as one
        # comma column, "several field names ... a separator segmint does not read".
        contract = {fl.name for fl in FIELDS[files[i].source]}
        delim = max(
            CSV_DELIMITERS,
            key=lambda d: (
                sum(n in splits[d] for n in required),
                sum(n in contract for n in splits[d]),
            ),
        )
        names = splits[delim]
        # A repeated contract field is ambiguous (which customer_id?): the file fails. A
        # repeated unknown column (Notes, notes) is kept, numbered, in _extra.
        dupes = sorted({n for n in names if names.count(n) > 1 and n in contract})
        if dupes:
            failed[i] = f"CSV header repeats column(s) {', '.join(dupes)}"
            continue
        names = _numbered_repeats(names)
        missing = [n for n in required if n not in names]
        together = _names_together(files[i].source, names) if missing else None
        if together:
            failed[i] = (
                f"CSV header has a column holding several field names ({together!r}): "
                "they are quoted together as one field, or parted by a "
                "separator segmint does not read (it reads a comma, semicolon, tab or "
                "pipe). Export the file again as CSV with one of those separators and "
                f"quotes around single fields only (header is: {header_line[:200]!r})"
            )
            continue
        if missing:
            failed[i] = (
                "CSV header lacks required column(s) "
                f"{_missing(files[i].source, missing, aliases, names)} "
                f"(header is: {header_line[:200]!r})"
            )
            continue
        if unmatched is not None:
            for field in unmatched_aliases(files[i].source, names, aliases, optional):
                unmatched.setdefault(field, []).append(files[i].path)
        if absent is not None:
            for field in absent_fields(files[i].source, names, optional):
                absent.setdefault(field, []).append(files[i].path)
        groups.setdefault((delim, tuple(names)), []).append(i)
    # A record continues onto the next physical line while a quoted field is open. Files
    # without a line that can open one (most) have one record per line: no window over them.
    if not groups:
        return failed
    for (delim, names), group in groups.items():
        opens_out = csv_open_quote_res(delim)[0]
        spanning = {
            r[0]
            for r in con.execute(
                f"select distinct _file from {phys} "
                f"where {after_header(group)} and _file in {_in(group)} "
                # A case, not an and: only the lines holding a quote pay the expression.
                f"and case when contains(line, '\"') "
                f"then regexp_full_match(line, {_lit(opens_out)}) else false end"
            ).fetchall()
        }
        simple = [i for i in group if i not in spanning]
        multi = [i for i in group if i in spanning]
        parts = []
        if simple:
            parts.append(
                f"select _file, ln as _line, line as raw from {phys} "
                f"where {after_header(simple)} and _file in {_in(simple)}"
            )
        if multi:
            crlf = _crlf_only_files(files, multi)
            parts.append(_multi_line_records(con, phys, multi, after_header(multi), delim, crlf))
        _insert_csv_records(con, table, names, " union all ".join(parts), delim)
        if multi:
            _split_malformed_records(con, table, phys, multi, names, delim)
    return failed


# At most this many quoted fields that never close are cut off per batch (see
# _multi_line_records); a file with more keeps its last one running to its end.
_MAX_UNCLOSED = 50


def _multi_line_records(
    con: duckdb.DuckDBPyConnection,
    phys: str,
    multi: list[int],
    after: str,
    delim: str,
    crlf: frozenset[int] = frozenset(),
) -> str:
    """SQL: ``(_file, _line, raw)`` records of the CSV files ``multi``, whose quoted fields
    may span lines; a record holds its lines joined by LF (by CRLF in the files ``crlf``,
    :func:`_crlf_only_files`) and is numbered by its first.

    Each line maps the state at its start (inside a quoted field or not) to the state at its
    end: a line without quotes keeps it, others may reset it (to outside or inside) or flip
    it. The state after a line is the last reset's value flipped by the flips since: a
    running count per segment between resets, no per-line loop.

    A quoted field still open at the end of its file is no multi-line cell but a stray or
    differently escaped quote (``"27\""`` as Spark and MySQL write it): one such line
    swallowed every later line of the file into one quarantined record, which counted as
    one row. The line that opened it becomes a record of its own (quarantined for its
    unbalanced quotes) and the next line starts a record again, until no file ends inside a
    quoted field (at most ``_MAX_UNCLOSED`` times).
    """
    opens_out, opens_in = csv_open_quote_res(delim)
    state = f"{phys}_state"
    forced = f"{phys}_forced"
    con.execute(f"create or replace temp table {forced} (_file INTEGER, ln BIGINT)")
    for attempt in range(_MAX_UNCLOSED + 1):
        con.execute(
            f"""
            create or replace temp table {state} as
            select
                _file,
                ln,
                line,
                cr,
                ends_inside,
                max(case when not continues then ln end) over (
                    partition by _file
                    order by ln rows between unbounded preceding and current row
                ) as start,
            from (
                select
                    *,
                    case
                        when forced then false
                        else coalesce(lag(ends_inside) over (partition by _file order by ln), false)
                    end as continues,
                from (
                    select
                        *,
                        (
                            coalesce(
                                max(case when o = i then o::INTEGER end) over (
                                    partition by _file, segment
                                ),
                                0
                            )
                            + sum((o and not i)::INTEGER) over (
                                partition by _file, segment
                                order by ln
                                rows between unbounded preceding and current row
                            )
                        ) % 2 = 1 as ends_inside,
                    from (
                        select
                            *,
                            sum((o = i)::INTEGER) over (
                                partition by _file
                                order by ln
                                rows between unbounded preceding and current row
                            ) as segment,
                        from (
                            select
                                p._file,
                                p.ln,
                                p.line,
                                p.cr,
                                f.ln is not null as forced,
                                -- o: ends inside a quoted field when it starts outside one;
                                -- i: when it starts inside one (a forced line starts
                                -- outside whatever came before: i = o resets the state).
                                case
                                    when contains(p.line, '"')
                                        then regexp_full_match(p.line, {_lit(opens_out)})
                                    else false
                                end as o,
                                case
                                    when f.ln is not null then o
                                    when contains(p.line, '"')
                                        then regexp_full_match(p.line, {_lit(opens_in)})
                                    else true
                                end as i,
                            from (
                                select * from {phys} where {after} and _file in {_in(multi)}
                            ) p
                            left join {forced} f on f._file = p._file and f.ln = p.ln
                        )
                    )
                )
            )
            """
        )
        # Files whose last line ends inside a quoted field that opened on an earlier line.
        unclosed = con.execute(
            f"""
            select _file, start + 1
            from {state}
            where ends_inside and start < ln
                and (_file, ln) in (select (_file, max(ln)) from {state} group by _file)
            """
        ).fetchall()
        if not unclosed or attempt == _MAX_UNCLOSED:
            break
        con.executemany(f"insert into {forced} values (?, ?)", unclosed)
    # A line that ended in CRLF inside a quoted cell (cr: files of LF lines read from a copy,
    # never one of ``crlf``) keeps its CR.
    raw = "string_agg(case when cr and ends_inside then line || chr(13) else line end, "
    raw += "chr(10) order by ln)"
    if crlf:
        # The lines of such a file hold no LF: each one in the record is a line end.
        raw = (
            f"case when _file in {_in(sorted(crlf))} "
            f"then replace({raw}, chr(10), chr(13) || chr(10)) else {raw} end"
        )
    return f"""
        select _file, start as _line, {raw} as raw,
        from {state}
        group by _file, start
    """


def _split_malformed_records(
    con: duckdb.DuckDBPyConnection,
    table: str,
    phys: str,
    multi: list[int],
    names: tuple[str, ...],
    delim: str,
) -> None:
    """Read again, line by line, the malformed records of ``multi`` that span lines.

    A quote that opens a field by mistake (``"27\\""`` escaped as Spark and MySQL do) runs
    the field on until some later quote closes it: the lines between became one malformed
    record, quarantined and counted as one row. Each of those lines is now a record of its
    own: the good ones load, the others are quarantined each with its own reason."""
    spans = con.execute(
        f"""
        select _file, _line, _line + length(raw) - length(replace(raw, chr(10), ''))
        from {table}
        where _file in {_in(multi)} and _error like 'malformed CSV%' and contains(raw, chr(10))
        """
    ).fetchall()
    if not spans:
        return
    con.execute(f"create or replace temp table {table}_split (_file INTEGER, lo BIGINT, hi BIGINT)")
    con.executemany(f"insert into {table}_split values (?, ?, ?)", spans)
    con.execute(
        f"delete from {table} where (_file, _line) in (select (_file, lo) from {table}_split)"
    )
    _insert_csv_records(
        con,
        table,
        names,
        f"""
        select p._file, p.ln as _line, p.line as raw
        from {phys} p
        join {table}_split s on s._file = p._file and p.ln between s.lo and s.hi
        """,
        delim,
    )
    con.execute(f"drop table {table}_split")


# Contract kinds read as numbers: "19,99" is 19.99, "1,234.50", "1.234,50" and "1 234,50"
# are 1234.50 (_insert_csv_records).
_NUMBER_KINDS = ("decimal", "int", "double")
# Thousands marks that are never a decimal mark: a space, a no-break space (U+00A0) and a
# narrow one (U+202F), as French, Scandinavian and Polish spreadsheets write them, and an
# apostrophe (straight or typographic), as Swiss ones do.
_GROUP_MARKS = (" ", "\u00a0", "\u202f", "'", "\u2019")
_GROUP_MARK = "[ \\x{00A0}\\x{202F}'\\x{2019}]"
_SPACE_GROUPS = rf"\s*-?\d{{1,3}}({_GROUP_MARK}\d{{3}})+([.,]\d+)?\s*"


def _insert_csv_records(
    con: duckdb.DuckDBPyConnection,
    table: str,
    names: tuple[str, ...],
    records: str,
    delim: str = ",",
) -> None:
    """Append the CSV ``records`` (``_file, _line, raw``) of one header to ``table``."""
    numbers = {fl.name for src in FIELDS.values() for fl in src if fl.kind in _NUMBER_KINDS}

    def value(k: int, name: str) -> str:
        v = f"nullif(fields[{k}], '')"
        if name not in numbers:
            return v
        # A number with a thousands mark where its decimal mark or a second group shows
        # which mark is which ("1,234.50", "1,234,567"; "1.234,50", "1.234.567"): what a
        # spreadsheet writes for every amount over 999 in a cell formatted as currency, in
        # any separator's file. Only a lone group stays ambiguous: "1,234" is 1.234 in a
        # semicolon file (a decimal comma) and said to be ambiguous in another; "1.000" is
        # 1.000 in a comma file and said to be ambiguous in a semicolon one. A plain decimal
        # comma ("19,99", "-0,5") is a number in any file.
        point_groups = r"\s*-?\d{1,3}(,\d{3})+\.\d+\s*|\s*-?\d{1,3}(,\d{3}){2,}\s*"
        comma_groups = r"\s*-?\d{1,3}(\.\d{3})+,\d+\s*|\s*-?\d{1,3}(\.\d{3}){2,}\s*"
        # The mark a lone group is ambiguous with: a point in a semicolon file, a comma
        # elsewhere; the other reads as the file's decimal mark.
        mark, word = (".", "point") if delim == ";" else (",", "comma")
        lone = rf"\s*-?\d{{1,3}}[{mark}]\d{{3}}\s*"
        # Only values holding a comma, or two points (or, in a semicolon file, one) need
        # a look: "19.99" in a comma file is read as it is; so do those holding a space or
        # an apostrophe, a group mark below.
        look = f"contains({v}, ',') or {v} like " + ("'%.%'" if delim == ";" else "'%.%.%'")
        look += "".join(f" or contains({v}, {_lit(c)})" for c in _GROUP_MARKS)
        return (
            f"case when not ({look}) then {v} "
            # A space, a no-break space or an apostrophe is never a decimal mark: groups of
            # three digits so ("1 234,50", French and Scandinavian spreadsheets, with a
            # no-break space; "1'234.50", Swiss) are one number, in any separator's file.
            f"when regexp_full_match({v}, {_lit(_SPACE_GROUPS)}) "
            f"then replace(regexp_replace(trim({v}), {_lit(_GROUP_MARK)}, '', 'g'), ',', '.') "
            rf"when regexp_full_match({v}, '{point_groups}') "
            rf"then replace(trim({v}), ',', '') "
            rf"when regexp_full_match({v}, '{comma_groups}') "
            rf"then replace(replace(trim({v}), '.', ''), ',', '.') "
            rf"when regexp_full_match({v}, '{lone}') "
            rf"then trim({v}) || ' (a thousands mark or a decimal {word}?)' "
            rf"else regexp_replace({v}, '^\s*(-?\d+),(\d+)\s*$', '\1.\2') end"
        )

    # json_object with the header's names as literals: ten times faster than to_json(map(...)).
    pairs = ", ".join(f"{_lit(n)}, {value(k, n)}" for k, n in enumerate(names, start=1))
    header = "[" + ", ".join(_lit(n) for n in names) + "]"
    con.execute(
        f"""
        insert into {table}
        with split as (
            select
                _file,
                _line,
                raw,
                -- Only a record with a quote needs unquoting and the quote check.
                case
                    when _quoted then {_split_csv("raw", "_parts", delim)} else _parts
                end as fields,
                case
                    when not _quoted then 0
                    when regexp_full_match(raw, {_lit(csv_record_re(delim))}) then 0
                    else {_bad_quote("_parts")}
                end as bad_quote,
                _parts,
            from (
                select *, {_raw_fields("raw", delim)} as _parts, contains(raw, '"') as _quoted
                from ({records})
                where
                    trim(raw) <> ''
                    -- A line of separators only (";;;;": the empty rows spreadsheets export
                    -- below the data) is blank too; only lines starting with one (or a
                    -- space) pay the test.
                    and case
                        when starts_with(raw, {_lit(delim)}) or starts_with(raw, ' ')
                            then trim(raw, {_lit(delim + " ")} || chr(9) || chr(13)) <> ''
                        else true
                    end
            )
        )
        select
            _file,
            _line,
            raw,
            case
                when bad_quote = 0 and len(fields) = {len(names)}
                    then json_object({pairs})
                -- Empty fields after the header's last (a trailing separator on each record,
                -- "c2;b@x.com;2026-05-01;;", as some exporters and hand edits leave) hold
                -- nothing: the record is read without them. Not in a line holding a
                -- carriage return: two records parted by a bare one ("g1,,<CR>g2,,") are
                -- one line of too many fields, quarantined whole.
                when bad_quote = 0 and len(fields) > {len(names)} and len(list_filter(
                    fields[{len(names) + 1}:], lambda x: trim(coalesce(x, '')) <> ''
                )) = 0 and not contains(raw, chr(13))
                    then json_object({pairs})
            end as doc,
            case
                when starts_with(raw, {_lit(TOO_LONG_MARK)}) then {_lit(TOO_LONG_REASON)}
                when bad_quote > 0
                    and regexp_full_match(_parts[bad_quote], {_lit(_TEXT_AFTER_QUOTE)})
                    then 'malformed CSV: text after the closing quote of field ' || bad_quote
                        || coalesce(' (' || {header}[bad_quote] || ')', '')
                when bad_quote > 0 and contains(raw, '\\"')
                    then 'malformed CSV: unbalanced quotes (\\" is no escape in CSV: a quote '
                        || 'inside a quoted field is doubled, "")'
                when bad_quote > 0 then 'malformed CSV: unbalanced quotes'
                when len(fields) = {len(names)} then null
                when len(fields) < {len(names)} or contains(raw, chr(13)) or len(list_filter(
                    fields[{len(names) + 1}:], lambda x: trim(coalesce(x, '')) <> ''
                )) > 0
                    then 'malformed CSV: ' || len(fields) || ' fields but the header has '
                        || {len(names)}
            end as _error,
        from split
        """
    )


def _parquet_src(paths: list[str], row_numbers: bool = True) -> str:
    listed = "[" + ", ".join(_lit(_literal_path(p)) for p in paths) + "]"
    option = "file_row_number = true, " if row_numbers else ""
    return f"read_parquet({listed}, {option}hive_partitioning = false)"


# Columns a multi-file read_parquet adds (the file's position, the row's number): a file
# with a column so named (an exporter's shard number in "file_index") hides them, and its
# rows were numbered, or attributed to files, by its own values.
_PARQUET_VIRTUAL = ("file_index", "file_row_number")


def _parquet_tree(
    con: duckdb.DuckDBPyConnection, f: LandingFile
) -> tuple[list[str], set[str], set[str]]:
    """A Parquet file's top-level column names as written (DuckDB's ``describe`` numbers a
    repeated name, ``customer_id_1``, and one repeated in another case, ``Event_Type_1``),
    the dotted paths of the fields nested in its struct columns, the column keyed as
    :func:`doc_keys` keys it and the nested names as written (``context.device.type``), as a
    dotted alias reads them from the row's document, and the paths of its lists and maps
    (outside any other). A list or map is not walked: its keys are the rows' (a map is a
    JSON object in the document, which an alias reads into; a list an array, which it
    never reads into, and the night warns per record)."""
    path = _lit(_literal_path(str(f.abspath)))
    rows = con.execute(
        f"select name, num_children, converted_type, repetition_type from parquet_schema({path})"
    ).fetchall()
    top: list[str] = []
    paths: set[str] = set()
    opaque: set[str] = set()
    pos = 1

    def walk(prefix: str | None, count: int, inside: bool) -> None:
        nonlocal pos
        for _ in range(count):
            name, children, converted, repetition = rows[pos]
            pos += 1
            if prefix is None:
                top.append(name)
                here = _column_key(name)
            else:
                here = f"{prefix}.{name}"
                if inside:
                    paths.add(here)
            # A LIST or MAP group (or a bare repeated one) holds a list: what is under it
            # is no path an alias reads.
            listed = converted in ("LIST", "MAP", "MAP_KEY_VALUE") or repetition == "REPEATED"
            if listed and inside:
                opaque.add(here)
            walk(here, children or 0, inside and not listed)

    walk(None, rows[0][1] or 0, True)
    return top, paths, opaque


def _parquet_columns(
    con: duckdb.DuckDBPyConnection,
    f: LandingFile,
    aliases: dict[str, dict[str, list[str]]] | None = None,
    optional: frozenset[str] = frozenset(),
) -> tuple[tuple[tuple[str, str, str], ...], list[str]]:
    """``(column, document key, type)`` of a Parquet file's columns, and the fields of
    ``f.source`` a dotted alias reads from one of its struct columns (a Segment or RudderStack
    export's ``context.device.type``: they have a column too, for the warnings of fields
    without one); :class:`UnreadableFile` when a required field (:func:`required_fields`) has
    no column or a field has several (``customer_id`` twice, ``event_type`` and
    ``Event_Type``: which one?), as a CSV header repeating one fails its file."""
    # Without the row-number option: it fails on a file with a "file_row_number" column.
    src = _parquet_src([str(f.abspath)], row_numbers=False)
    described = con.execute(f"describe select * from {src}").fetchall()
    cols = [(r[0], r[1]) for r in described]
    written, nested, opaque = _parquet_tree(con, f)
    contract = {fl.name for fl in FIELDS[f.source]}
    as_written = doc_keys(f.source, written, aliases)
    dupes = sorted({n for n in as_written if as_written.count(n) > 1 and n in contract})
    if dupes:
        raise UnreadableFile(
            f"Parquet file repeats column(s) {', '.join(dupes)} ("
            + "; ".join(
                ", ".join(repr(c) for c, k in zip(written, as_written, strict=True) if k == n)
                for n in dupes
            )
            + "): which one holds the field? Export it once"
        )
    names = doc_keys(f.source, [c for c, _ in cols], aliases)
    required = required_fields(f.source, optional)
    missing = [n for n in required if n not in names]
    if missing:
        raise UnreadableFile(
            f"Parquet file lacks required column(s) {_missing(f.source, missing, aliases, names)}"
        )
    # A dotted alias into a map column (Spark's and Hive's map<string,string> properties)
    # reads the rows' keys, and one crossing a list is warned of per record (GA4's
    # items.item_id: "hold a JSON array"): neither is "no column" (the first loaded its
    # values, and both were said to load without them).
    in_structs = [
        name
        for name, landing in field_names(f.source, aliases).items()
        if name not in names
        and any(
            "." in n and (n in nested or any(n.startswith(p + ".") for p in opaque))
            for n in landing
        )
    ]
    return tuple((c, key, kind) for (c, kind), key in zip(cols, names, strict=True)), in_structs


# A 4-byte float (Parquet FLOAT) holds every whole number only up to 2**24: 16777217 is
# stored as 16777216, a 13-digit id as 7210448500000.
FLOAT32_EXACT_MAX = 16_777_215


def _parquet_struct(cols: tuple[tuple[str, str, str], ...], id_keys: frozenset[str]) -> str:
    """SQL: the fields of a Parquet row's document, ``{key: column, ...}``.

    A BLOB column is text stored as bytes without the UTF-8 annotation (old Impala and Hive,
    some Go writers): it was loaded escaped, 'Jörg' as 'J\\xC3\\xB6rg', and the same id in
    the CRM CSV became another customer. Valid UTF-8 is read as text; other bytes stay
    escaped (DuckDB's binary_as_string would fail the whole file on them).

    An id (a key of ``id_keys``) in a float column: NaN or infinity is no value (Spark
    writes a missing value so; loaded, every such record was the customer 'nan'). A FLOAT
    (4 bytes) is written as its shortest text (1.1, not 1.100000023841858), and beyond
    ``FLOAT32_EXACT_MAX`` in exponent form (1.6777216e+07), which the suite's rule on
    rounded ids quarantines: read as a double, 16777217 stored as 16777216 loaded as the id
    '16777216', a neighbour's, in silence. A DOUBLE's whole numbers beyond 2**53 are
    caught by that rule as they are.

    Another float column's NaN (pandas' missing number) is null, an infinity the text
    ``"Infinity"``: JSON has neither. So is a float's in a struct, list or map column
    (:func:`_finite_floats`)."""

    def value(c: str, key: str, kind: str) -> str:
        if kind.upper() == "BLOB":
            return f"coalesce(try(decode({_ident(c)})), {_ident(c)}::VARCHAR)"
        if key in id_keys and kind.upper() == "FLOAT":
            return (
                f"case when not isfinite({_ident(c)}) then NULL "
                f"when abs({_ident(c)}) > {FLOAT32_EXACT_MAX} "
                f"then printf('%.7e', {_ident(c)}::DOUBLE) else {_ident(c)}::VARCHAR end"
            )
        if key in id_keys and kind.upper() == "DOUBLE":
            return f"case when isfinite({_ident(c)}) then {_ident(c)} end"
        return _finite_floats(_ident(c), kind)

    return ", ".join(f"{_lit(key)}: {value(c, key, kind)}" for c, key, kind in cols)


def _parse_type(kind: str, i: int = 0) -> tuple[tuple, int]:
    """The DuckDB type ``kind`` (``describe``'s text) from position ``i``, as a tree:
    ``("struct", [(name, tree), ...])``, ``("list", tree)``, ``("map", key, value)``,
    ``("float",)`` (FLOAT, DOUBLE) or ``("other",)``; and the position after it."""
    node: tuple
    if kind.startswith("STRUCT(", i):
        i += len("STRUCT(")
        fields = []
        while kind[i] != ")":
            if kind[i] == '"':
                # A quoted name, its quotes doubled: "q""x"
                m = re.compile(r'"((?:[^"]|"")*)"').match(kind, i)
                name, i = m[1].replace('""', '"'), m.end()
            else:
                end = kind.index(" ", i)
                name, i = kind[i:end], end
            sub, i = _parse_type(kind, i + 1)
            fields.append((name, sub))
            if kind.startswith(", ", i):
                i += 2
        node, i = ("struct", fields), i + 1
    elif kind.startswith("MAP(", i):
        key, i = _parse_type(kind, i + len("MAP("))
        value, i = _parse_type(kind, i + len(", "))
        node, i = ("map", key, value), i + 1
    else:
        # A type of its own: up to the next comma, closing parenthesis or list mark outside
        # its own parentheses (DECIMAL(18,3), UNION(...), TIMESTAMP WITH TIME ZONE).
        end, depth = i, 0
        while end < len(kind) and (depth or kind[end] not in ",)["):
            depth += {"(": 1, ")": -1}.get(kind[end], 0)
            end += 1
        node, i = (("float",) if kind[i:end] in ("FLOAT", "DOUBLE") else ("other",)), end
    while kind.startswith("[", i):
        node, i = ("list", node), kind.index("]", i) + 1
    return node, i


def _finite_floats(expr: str, kind: str) -> str:
    """SQL: the Parquet column ``expr`` of the DuckDB type ``kind``, a float column and each
    float nested in one (a struct's field, a list's or a map's value, at any depth) as JSON:
    JSON has no NaN or infinity, and written as DuckDB prints them the quarantined
    raw_record was no JSON to a strict reader. NaN (pandas' missing number) is null, an
    infinity stays visible, as the text ``"Infinity"``.

    pandas' missing number is a float NaN, inside the ``context`` and ``properties``
    structs of a Segment or RudderStack export written as Parquet too (``{"revenue":
    NaN}``). ``to_json`` wrote it as DuckDB prints it, the bare token ``NaN`` (or
    ``Infinity``), which no strict JSON reader takes (JavaScript's ``JSON.parse``,
    PostgreSQL's ``jsonb``): in ``raw_record`` and ``raw.events._extra``. The column as it
    is when it holds no nested float (the plain columns of most files: no cost)."""
    if not re.search(r"\b(FLOAT|DOUBLE)\b", kind):
        return expr
    try:
        tree, end = _parse_type(kind)
    except (ValueError, IndexError, TypeError):
        return expr  # a type this reader does not know: written as before
    if end != len(kind):
        return expr

    def finite(e: str, node: tuple, depth: int) -> str | None:
        if node[0] == "float":
            return (
                f"case when isnan({e}) then NULL::JSON when isinf({e}) then (case when {e} > 0 "
                f"""then '"Infinity"' else '"-Infinity"' end)::JSON else to_json({e}) end"""
            )
        x = f"_x{depth}"
        if node[0] == "list":
            inner = finite(x, node[1], depth + 1)
            return inner and f"list_transform({e}, lambda {x}: {inner})"
        if node[0] == "map":
            inner = finite(f"{x}.value", node[2], depth + 1)
            return inner and (
                f"map_from_entries(list_transform(map_entries({e}), "
                f"lambda {x}: {{'key': {x}.key, 'value': {inner}}}))"
            )
        if node[0] == "struct":
            parts = [(name, f"struct_extract({e}, {_lit(name)})", sub) for name, sub in node[1]]
            fixed = [(name, get, finite(get, sub, depth)) for name, get, sub in parts]
            if all(f is None for _, _, f in fixed):
                return None
            fields = ", ".join(f"{_lit(name)}: {f or get}" for name, get, f in fixed)
            return f"case when {e} is not null then {{{fields}}} end"
        return None

    return finite(expr, tree, 0) or expr


def _id_keys(source: str, aliases: dict[str, dict[str, list[str]]] | None) -> frozenset[str]:
    """The document keys an id field of ``source`` may be read from (:func:`doc_keys`)."""
    names = field_names(source, aliases)
    return frozenset(n for f in FIELDS[source] if f.kind == "id" for n in names[f.name])


def _read_parquet(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    ids: list[int],
    cols: tuple[tuple[str, str, str], ...],
    table: str,
    id_keys: frozenset[str],
) -> None:
    """Insert the rows of the Parquet files ``files[ids]`` (all with the ``(column, document
    key, type)`` triples ``cols``)."""
    src = _parquet_src([str(files[i].abspath) for i in ids])
    positions = "[" + ", ".join(str(i) for i in ids) + "]"
    struct = _parquet_struct(cols, id_keys)
    con.execute(
        f"""
        insert into {table}
        select _file, _line, null::VARCHAR as raw, doc, null::VARCHAR as _error,
        from (
            select
                {positions}[file_index::BIGINT + 1]::INTEGER as _file,
                file_row_number + 1 as _line,
                to_json({{{struct}}}) as doc,
            from {src}
        )
        """
    )


def _read_parquet_alone(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    i: int,
    cols: tuple[tuple[str, str, str], ...],
    table: str,
    id_keys: frozenset[str],
) -> None:
    """Insert the rows of ``files[i]``, a Parquet file with a column named as one of
    DuckDB's scan columns (``_PARQUET_VIRTUAL``), which then hides it.

    Read with pyarrow (columnar, no per-row Python), numbered by position: its columns all
    go to the document as they are (an unknown one to ``_extra``), none decides which file
    or line a row is.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pq.read_table(files[i].abspath)
    line = "_segmint_line"
    while line.lower() in {c.lower() for c in data.column_names}:
        line = "_" + line
    data = data.append_column(line, pa.array(np.arange(1, data.num_rows + 1, dtype=np.int64)))
    struct = _parquet_struct(cols, id_keys)
    view = "_segmint_parquet_alone"
    con.register(view, data)
    try:
        con.execute(
            f"insert into {table} select {i}::INTEGER, {_ident(line)}, null::VARCHAR, "
            f"to_json({{{struct}}}), null::VARCHAR from {view}"
        )
    finally:
        con.unregister(view)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
