"""Exchange rates: the CSV file of ``[transform] currency_rates`` into ``raw.currency_rates``.

Money is reported in one currency (``[transform] reporting_currency``, USD by default). An
event paid in another currency is converted by dbt (``int_events_sessionised``) at the rate
of its UTC day: the row of this table with the latest ``valid_from`` on or before that day.
The transform stage replaces the table from the file before every dbt run, so the table
always mirrors the configured file; no file means no rates, and an amount in a currency
without a rate fails the run (dbt test ``every_currency_has_a_rate_to_the_reporting_currency``)
instead of being summed with amounts in other currencies.

The file is small (a row per currency and day at most), so it is read with Python's ``csv``
module, which gives each row's physical line for the error messages. Every problem is
reported with its file and line, all of them at once, and nothing is written then.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from segmint.ingest.files import CSV_DELIMITERS
from segmint.stages import SegmintError
from segmint.warehouse import transaction

COLUMNS = ("currency_code", "valid_from", "to_currency", "rate")
_CODE = re.compile(r"[A-Z]{3}")
_MAX_REPORTED = 20


class CurrencyRatesError(SegmintError):
    """The rates file is missing or holds rows that cannot be used."""


def _delimiter(header_line: str) -> str:
    """The first separator of the landing zone's CSV files (``CSV_DELIMITERS``: Excel writes
    ; where the decimal separator is a comma) whose split of the header names every column."""
    for candidate in CSV_DELIMITERS:
        names = {name.strip().strip('"').lower() for name in header_line.split(candidate)}
        if set(COLUMNS) <= names:
            return candidate
    return ","


def _parse_row(values: dict[str, str], decimal_comma: bool) -> tuple[tuple, list[str]]:
    problems = []
    code = (values.get("currency_code") or "").strip().upper()
    to = (values.get("to_currency") or "").strip().upper()
    for name, value in (("currency_code", code), ("to_currency", to)):
        if not _CODE.fullmatch(value):
            problems.append(f"{name} {value!r} is not a three-letter ISO 4217 code")
    raw_day = (values.get("valid_from") or "").strip()
    try:
        day = date.fromisoformat(raw_day)
    except ValueError:
        day = None
        problems.append(f"valid_from {raw_day!r} is not a date (YYYY-MM-DD)")
    raw_rate = (values.get("rate") or "").strip()
    try:
        rate = float(raw_rate.replace(",", ".") if decimal_comma else raw_rate)
    except ValueError:
        rate = None
    if rate is None or not math.isfinite(rate) or rate <= 0:
        problems.append(f"rate {raw_rate!r} is not a positive number")
    return (code, day, to, rate), problems


def read_rates(path: Path) -> list[tuple[str, date, str, float, int]]:
    """The rows of a rates file as (currency_code, valid_from, to_currency, rate, line).

    Raises CurrencyRatesError naming the file and the line of every unusable row: a missing
    column, a code that is not three letters, a day that is not ISO, a rate that is not a
    positive number, the same (currency_code, to_currency, valid_from) twice."""
    if not path.is_file():
        raise CurrencyRatesError(f"[transform] currency_rates: file {path} does not exist")
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    if not lines:
        raise CurrencyRatesError(f"{path}: empty file; expected the header {','.join(COLUMNS)}")
    delimiter = _delimiter(lines[0])
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise CurrencyRatesError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}; "
            f"the header must name {', '.join(COLUMNS)}"
        )
    reader.fieldnames = header
    rows, problems, seen = [], [], {}
    for values in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in values.values() if isinstance(v, str)):
            continue  # a blank line
        row, row_problems = _parse_row(values, decimal_comma=delimiter != ",")
        problems += [f"{path}, line {line}: {p}" for p in row_problems]
        if row_problems:
            continue
        key = (row[0], row[2], row[1])
        if key in seen:
            problems.append(
                f"{path}, line {line}: a second rate from {row[0]} to {row[2]} valid from "
                f"{row[1]} (first on line {seen[key]})"
            )
            continue
        seen[key] = line
        rows.append((*row, line))
    if problems:
        shown = problems[:_MAX_REPORTED]
        more = len(problems) - len(shown)
        raise CurrencyRatesError(
            f"{len(problems)} unusable row(s) in the currency rates file; nothing was loaded:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return rows


def load_currency_rates(con, path: Path | None) -> int:
    """Replace ``raw.currency_rates`` with the rows of ``path`` (none: no rates) in one
    transaction; returns the rows loaded. The file is read and checked before anything is
    written, so a bad file leaves the table as it was."""
    rows = read_rates(path) if path is not None else []
    table = pa.table(
        {
            "currency_code": pa.array([r[0] for r in rows], pa.string()),
            "valid_from": pa.array([r[1] for r in rows], pa.date32()),
            "to_currency": pa.array([r[2] for r in rows], pa.string()),
            "rate": pa.array([r[3] for r in rows], pa.float64()),
            "_source_file": pa.array([str(path)] * len(rows), pa.string()),
            "_source_line": pa.array([r[4] for r in rows], pa.int64()),
        }
    )
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    con.register("_currency_rates", table)
    try:
        with transaction(con):
            con.execute("DELETE FROM raw.currency_rates")
            con.execute(
                "INSERT INTO raw.currency_rates SELECT currency_code, valid_from, to_currency, "
                "rate, _source_file, _source_line, ? FROM _currency_rates",
                [loaded_at],
            )
    finally:
        con.unregister("_currency_rates")
    return len(rows)
