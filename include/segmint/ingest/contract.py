"""The landing-zone contract as data: fields, their types and cleaning rules, the ops DDL.

Every landing field is read as text and cast here with one explicit rule per kind, so the
same record gives the same typed row whatever the file format (JSONL, CSV or Parquet).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from segmint.warehouse import EVENT_TYPES

SOURCES = ("events", "crm")
# The landing files' extensions. JSON lines also come as .ndjson, and as .json from
# BigQuery's and GA4's JSON exports and RudderStack's S3 files (one object a line). A .json
# file opening one JSON document is skipped (files._json_document); a .jsonl or .ndjson one
# fails, saying how to convert it (files.json_documents).
FORMATS = (
    ".jsonl",
    ".jsonl.gz",
    ".ndjson",
    ".ndjson.gz",
    ".json",
    ".json.gz",
    ".csv",
    ".csv.gz",
    ".parquet",
)
# Formats read as another: everything JSON is read as JSON lines.
READ_AS = {"ndjson": "jsonl", "json": "jsonl"}


@dataclass(frozen=True)
class Field:
    name: str
    # id | text | number_text | lower | upper | country | email | ts | date | decimal | int |
    # double | bool
    kind: str
    required: bool = False


EVENT_FIELDS: tuple[Field, ...] = (
    Field("event_id", "id", required=True),
    Field("event_type", "lower", required=True),
    Field("event_ts", "ts", required=True),
    Field("customer_id", "id"),
    Field("anonymous_id", "id"),
    Field("session_id", "id"),
    Field("page_url", "text"),
    Field("page_type", "lower"),
    Field("referrer", "text"),
    Field("product_id", "id"),
    Field("product_category", "text"),
    Field("price", "decimal"),
    Field("quantity", "int"),
    Field("search_query", "text"),
    Field("device_type", "lower"),
    Field("country", "country"),
    Field("utm_source", "text"),
    Field("utm_medium", "text"),
    Field("utm_campaign", "text"),
    Field("time_on_page_s", "double"),
    Field("scroll_depth", "double"),
    Field("order_id", "id"),
    Field("revenue", "decimal"),
    Field("currency", "upper"),
)

CRM_FIELDS: tuple[Field, ...] = (
    Field("customer_id", "id", required=True),
    Field("updated_at", "ts", required=True),
    Field("email", "email"),
    Field("phone", "number_text"),
    Field("first_name", "text"),
    Field("last_name", "text"),
    Field("birth_date", "date"),
    Field("gender", "lower"),
    Field("country", "country"),
    Field("city", "text"),
    Field("postal_code", "number_text"),
    Field("signup_date", "date"),
    Field("loyalty_tier", "lower"),
    Field("email_opt_in", "bool"),
    Field("ads_opt_in", "bool"),
)

FIELDS = {"events": EVENT_FIELDS, "crm": CRM_FIELDS}


def required_fields(source: str, optional: frozenset[str] = frozenset()) -> list[str]:
    """The fields a file of ``source`` must have a column for, less those the settings give
    a value of their own (``optional``: ``updated_at`` with
    ``[ingest] crm_updated_at_from_partition``)."""
    return [f.name for f in FIELDS[source] if f.required and f.name not in optional]


RAW_TABLE = {"events": "raw.events", "crm": "raw.customers"}
# Deduplication key: events by id; CRM records only when the whole record is repeated.
DEDUP_KEY = {"events": "event_id", "crm": None}


def field_names(
    source: str, aliases: dict[str, dict[str, list[str]]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Every contract field of ``source`` with the landing names it is read from, its own
    name first, then its aliases (``[ingest] field_aliases``) in the order given. A list that
    names the field itself puts its own name in that place instead: Amplitude's export has
    an ``event_id`` of its own (a counter per device, not unique), read after ``uuid`` with
    ``event_id = ["uuid", "event_id"]``.

    Raises ``ConfigError`` for an alias of an unknown source or field, an empty name, a name
    given twice, or a name that is another contract field's own name (it would be read twice).
    """
    from segmint.config import ConfigError

    where = "[ingest] field_aliases"
    aliases = {} if aliases is None else aliases
    if not isinstance(aliases, dict) or not all(isinstance(v, dict) for v in aliases.values()):
        raise ConfigError(f"{where}: expected a table per source, got {aliases!r}")
    given = aliases.get(source, {})
    unknown = sorted(set(aliases) - set(SOURCES))
    if unknown:
        raise ConfigError(f"{where}: unknown source(s) {', '.join(unknown)}; known: events, crm")
    own = [f.name for f in FIELDS[source]]
    bad = sorted(set(given) - set(own))
    if bad:
        raise ConfigError(
            f"{where}.{source}: unknown field(s) {', '.join(bad)}; known: {', '.join(own)}"
        )
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {name: name for name in own}
    for name in own:
        names = given.get(name, [])
        if isinstance(names, str) or not all(isinstance(n, str) and n.strip(". ") for n in names):
            raise ConfigError(f"{where}.{source}.{name}: expected a list of names, got {names!r}")
        for k, alias in enumerate(names):
            top = alias.split(".")[0]
            if alias == name and name not in names[:k]:
                continue
            clash = seen.get(alias) or (seen.get(top) if top in own else None)
            if clash:
                raise ConfigError(f"{where}.{source}.{name}: {alias!r} is already read as {clash}")
            seen[alias] = name
        out[name] = tuple(names) if name in names else (name, *names)
    return out


def null_values(
    values: dict[str, dict[str, list[str]]] | None, source: str
) -> dict[str, tuple[str, ...]]:
    """``[ingest] null_values`` of ``source``: per field, the texts (trimmed, lower-cased)
    that mean "no value" in an export, as Amplitude's ``session_id`` -1 or WooCommerce's
    guest ``customer_id`` 0. Raises ``ConfigError`` for an unknown source or field or a
    value that is no list of words."""
    from segmint.config import ConfigError

    where = "[ingest] null_values"
    values = {} if values is None else values
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise ConfigError(f"{where}: expected a table per source, got {values!r}")
    unknown = sorted(set(values) - set(SOURCES))
    if unknown:
        raise ConfigError(f"{where}: unknown source(s) {', '.join(unknown)}; known: events, crm")
    own = [f.name for f in FIELDS[source]]
    given = values.get(source, {})
    bad = sorted(set(given) - set(own))
    if bad:
        raise ConfigError(
            f"{where}.{source}: unknown field(s) {', '.join(bad)}; known: {', '.join(own)}"
        )
    out = {}
    for name, words in given.items():
        if (
            isinstance(words, str)
            or not isinstance(words, list | tuple)
            or not all(isinstance(w, str) and w.strip() for w in words)
        ):
            raise ConfigError(
                f"{where}.{source}.{name}: expected a list of non-empty texts, got {words!r}"
            )
        out[name] = tuple(dict.fromkeys(w.strip().lower() for w in words))
    return out


def looked_for(source: str, aliases: dict[str, dict[str, list[str]]] | None, *fields: str) -> str:
    """`` (looked for 'event_id', 'properties.$insert_id')``: the landing names a missing
    ``fields`` were looked for, for a quarantine reason; empty when none has an alias (its
    name says it). A misspelt alias then shows in the reason, as a CSV header's error shows
    it (``files._missing``)."""
    names = field_names(source, aliases)
    if all(len(names[f]) == 1 for f in fields):
        return ""
    return f" (looked for {', '.join(repr(n) for f in fields for n in names[f])})"


def event_type_aliases(aliases: dict[str, str] | None) -> dict[str, str]:
    """``[ingest] event_type_aliases`` with trimmed, lower-cased keys; targets checked."""
    from segmint.config import ConfigError

    aliases = {} if aliases is None else aliases
    if not isinstance(aliases, dict):
        raise ConfigError(f"[ingest] event_type_aliases: expected a table, got {aliases!r}")
    out = {}
    for name, target in aliases.items():
        if not isinstance(target, str) or target not in ALLOWED_EVENT_TYPES:
            raise ConfigError(
                f"[ingest] event_type_aliases: {name!r} maps to {target!r}, not an event type "
                f"({', '.join(ALLOWED_EVENT_TYPES)})"
            )
        out[name.strip().lower()] = target
    return out


def ignored_event_types(
    names: list[str] | None, aliases: dict[str, str] | None = None
) -> tuple[tuple[str, ...], bool]:
    """``[ingest] ignored_event_types``: the trimmed, lower-cased names and whether ``"*"``
    (every event type that is not segmint's) is among them. A name that is one of segmint's
    event types, or an alias of one, is a ConfigError (its records are data the models need),
    except ``identify`` and ``refund`` (IGNORABLE_EVENT_TYPES)."""
    from segmint.config import ConfigError

    names = [] if names is None else names
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"[ingest] ignored_event_types: expected a list of names, got {names!r}")
    mapped = event_type_aliases(aliases)
    out: list[str] = []
    star = False
    for name in names:
        key = name.strip().lower()
        if not key:
            raise ConfigError("[ingest] ignored_event_types: an empty name")
        if key == "*":
            star = True
            continue
        target = key if key in ALLOWED_EVENT_TYPES else mapped.get(key)
        if target is not None and target not in IGNORABLE_EVENT_TYPES:
            raise ConfigError(
                f"[ingest] ignored_event_types: {name!r} is segmint's event type {target!r}; "
                "its records are what the models read and cannot be ignored"
            )
        if key not in out:
            out.append(key)
    return tuple(out), star


# How database dumps write a missing value in CSV (PostgreSQL COPY and MySQL: \N; NULL): in a
# CSV file, a field holding exactly one of these (case-insensitive, trimmed) is missing.
NULL_WORDS = ("\\n", "null")

# Values that count as true / false in consent flags (case-insensitive, trimmed). 1.0 and 0.0:
# pandas writes a 0/1 column holding a missing value as floats (in CSV and Parquet alike).
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")


def boolean_words(
    true_values: list[str] | None = None, false_values: list[str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words read as true and as false: :data:`TRUE_WORDS` / :data:`FALSE_WORDS` and
    ``[ingest] true_values`` / ``false_values`` (a marketing platform's statuses, such as
    Mailchimp's ``subscribed`` / ``unsubscribed``), trimmed and lower-cased. A word on both
    sides is a ConfigError: consent must never depend on which list is read first."""
    from segmint.config import ConfigError

    sides = {}
    for key, given, builtin in (
        ("true_values", true_values, TRUE_WORDS),
        ("false_values", false_values, FALSE_WORDS),
    ):
        given = [] if given is None else given
        if not isinstance(given, list | tuple) or not all(isinstance(w, str) for w in given):
            raise ConfigError(f"[ingest] {key}: expected a list of words, got {given!r}")
        words = list(builtin)
        for word in given:
            if not word.strip():
                raise ConfigError(f"[ingest] {key}: an empty word")
            if word.strip().lower() not in words:
                words.append(word.strip().lower())
        sides[key] = tuple(words)
    both = sorted(set(sides["true_values"]) & set(sides["false_values"]))
    if both:
        raise ConfigError(
            f"[ingest] true_values and false_values: {', '.join(map(repr, both))} read as both "
            f"true and false (built in as true: {', '.join(TRUE_WORDS)}; "
            f"as false: {', '.join(FALSE_WORDS)})"
        )
    return sides["true_values"], sides["false_values"]


ALLOWED_EVENT_TYPES = EVENT_TYPES
# segmint's event types that a shop may still ignore: identify calls only link ids (a back end
# that sends one per customer every night may be better without them); refunds only lower
# revenue, and a tracker that sent its own `refund` events (GA4's) before segmint knew the type
# was told to ignore them: that setting keeps working.
IGNORABLE_EVENT_TYPES = ("identify", "refund")

# ISO 3166-1 alpha-2 (officially assigned codes) plus the reserved "UK" (read as GB, cast_sql)
# and "EU" that shops use.
COUNTRY_CODES = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
        "UK",
        "EU",
    ]
)


def _text(expr: str) -> str:
    return f"nullif(trim({expr}), '')"


# Every character Python's ``\s`` matches (``str.isspace``; a test checks the list): the
# suites' regular expressions spell white space out as the class UNICODE_SPACE, since DuckDB's
# RE2 reads ``\s`` as ASCII white space only and the SQL pre-filter must agree with GX's
# pandas (Python) regex. Code points below 0x100 as ``\xhh`` escapes, the others as
# themselves: both engines read both alike.
UNICODE_SPACE_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# What an id made of nothing else is not (cast_sql): white space, the other ASCII control
# characters but NUL, DEL, and the zero-width characters (a byte-order mark too) that
# editors and web pages leave.
INVISIBLE_CHARS = (
    UNICODE_SPACE_CHARS + "".join(map(chr, range(1, 32))) + "\x7f\u200b\u200c\u200d\u2060\ufeff"
)

# What is trimmed from both ends of an id (cast_sql), besides the spaces trim() takes: the
# Unicode spaces (a no-break space pasted from a web page) and the zero-width characters
# (U+200B-U+200D, a word joiner, a byte-order mark: the BOM of a file pasted or concatenated
# into a cell, the zero-width space a CMS puts in a long id). Invisible at an end, they meant
# nothing there: kept, 'c7' and 'c7' + a BOM were two customers, neither of them told. Not
# the control characters (a tab, a line break, NEL): an id holding one is quarantined
# (ID_CONTROL_RE). A zero-width character inside an id is kept (a zero-width non-joiner
# belongs in a Persian word).
ID_EDGE_CHARS = " \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" + (
    "\u2028\u2029\u202f\u205f\u3000\u200b\u200c\u200d\u2060\ufeff"
)


def _char_class(chars: str) -> str:
    """The body of a regex character class matching exactly ``chars``, runs as ranges."""
    codes, out, i = sorted(map(ord, chars)), [], 0

    def char(c: int) -> str:
        return f"\\x{c:02x}" if c < 0x100 else chr(c)

    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        out.append(char(codes[i]) + (f"-{char(codes[j])}" if j > i else ""))
        i = j + 1
    return "".join(out)


UNICODE_SPACE = _char_class(UNICODE_SPACE_CHARS)

# What a timestamp must look like (DuckDB's cast alone also takes 'epoch', 'infinity',
# '-infinity', zone names such as 'EST' and offsets such as +25:00): ISO-8601 / RFC 3339 date
# and time, 'T' or a space between them, seconds and fractions optional, then 'Z', an offset
# of at most 14 hours, ' UTC' (BigQuery's text export) or nothing (UTC). A date alone is
# midnight UTC. 'T' and 'Z' may be lower case, as RFC 3339 allows (DuckDB's cast wants them
# upper case: such a value is cast upper-cased). DuckDB then checks the calendar
# (2026-02-30 is no timestamp).
ISO_TIMESTAMP_RE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:[Zz]| UTC| ?[+-](?:0[0-9]|1[0-3])(?::?[0-5][0-9])?| ?[+-]14(?::?00)?)?)?"
)
# The shapes most trackers write, tested first with LIKE (cheaper than the regular expression
# on millions of rows); every position of them is a digit DuckDB's cast insists on.
_COMMON_TIMESTAMP_SHAPES = ("____-__-__T__:__:__.___Z", "____-__-__ __:__:__")

# The earliest timestamps loaded (older ones are quarantined): before them a value is a
# placeholder or a default (1970-01-01 from 'epoch' or a zero Unix time, 1900-01-01,
# 0001-01-01 from .NET/Java minimum dates, 1753 from SQL Server), not a real event or change.
# Events: 2000-01-01, the bound Unix times already have ([ingest] epoch_timestamp_unit); no
# tracker of this contract's kind logged shop events before it. CRM updated_at: 1990-01-01, as
# a shop's oldest customer records, migrated with their dates, may predate 2000, and a
# quarantined record loses the customer; a placeholder is still caught.
MIN_TIMESTAMP = {"event_ts": datetime(2000, 1, 1), "updated_at": datetime(1990, 1, 1)}

# The range of a CRM date kept as such: outside it a date is a placeholder, not a birthday or a
# sign-up (0001-01-01 and 1900-01-01 from .NET, Java and Excel minimum dates, 9999-12-31 for
# "unknown"), and the field is nulled with a warning; the record loads. A placeholder sign-up
# date made the customer's tenure two thousand years. Birth dates: nobody alive was born
# before 1901. Sign-ups: from 1990, as updated_at (MIN_TIMESTAMP).
# (Bounds as datetimes: GX's pandas frame holds dates as timestamps, which do not compare
# with a date.)
DATE_RANGE = {
    "birth_date": (datetime(1901, 1, 1), datetime(2099, 12, 31)),
    "signup_date": (datetime(1990, 1, 1), datetime(2099, 12, 31)),
}


# An id Excel wrote in scientific notation, its last digits lost: a mantissa with a point, an
# upper-case E and a plus sign (Excel's "General" format for a number of 12 digits or more).
# Or a float printed so: a JSON number with a fraction or an exponent is read as a double,
# printed with a lower-case e from 1e16 on (1.5e22 is '1.5e+22', 12345678901234567890123.0
# '1.2345678901234568e+22'), as pandas writes a float column of such ids.
EXCEL_ROUNDED_ID_RE = r" *-?[0-9](\.[0-9]+)?[Ee]\+[0-9]+ *"
# A whole number written as a float (123.0) is read as its integer, but a float holds every
# integer only up to 2**53: beyond 9007199254740991 (JavaScript's MAX_SAFE_INTEGER) it may be
# a neighbour of the id written (9007199254740993.0 is read as 9007199254740992).
FLOAT_WHOLE_ID_RE = r" *-?[0-9]{16,}\.0+ *"
FLOAT_EXACT_MAX = 9007199254740991
# An id holding a control character (a tab, a line break, a carriage return from a quoted CSV
# cell, NUL, ESC, DEL) looks like the same id without it in every tool, yet is another one:
# the same customer twice, and a line of an export file broken in two. In the JSON document
# every record is typed from (a JSON line as written, a CSV or Parquet record made into one)
# such a character is escaped (JSON forbids it raw) but DEL and the C1 controls (U+0080-U+009F:
# NEL, or a Windows-1252 dash or quote decoded twice, U+0096): only a document holding a
# backslash or a DEL, or a character beyond ASCII, may hold one (the loader's parse_sql).
ID_CONTROL_RE = "[\\x00-\\x1f\\x7f-\\x9f]"
# The longest id loaded, in characters: longer, a field holds a text pasted into it (a
# document, a whole record), not an id. Trackers cap theirs well below (Google Analytics'
# user_id at 256, Mixpanel's distinct_id at 255); an e-mail address read as an id is at most
# 254; a long URL or token still fits.
ID_MAX_LENGTH = 1024

# The largest whole number an INTEGER column (quantity) holds.
INTEGER_MAX = 2_147_483_647

# The largest amount a money column (DECIMAL(18, 2)) holds.
MONEY_MAX = "9999999999999999.99"

# [ingest] epoch_timestamp_unit: microseconds in one unit of a Unix time.
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}
# A Unix time read in the configured unit must fall in [2000, 2100): a wrong unit (seconds
# read as milliseconds, or the reverse) gives January 1970 or a year past 50000, and is
# quarantined instead of loaded as an event of another age.
_EPOCH_MIN_US = 946_684_800_000_000
_EPOCH_MAX_US = 4_102_444_800_000_000


def epoch_unit(unit: str | None) -> str | None:
    """``[ingest] epoch_timestamp_unit`` checked: None or "" (Unix times are not timestamps),
    else one of ``EPOCH_UNITS``."""
    from segmint.config import ConfigError

    if unit in (None, ""):
        return None
    if unit not in EPOCH_UNITS:
        raise ConfigError(
            f"[ingest] epoch_timestamp_unit: {unit!r} is not one of "
            f"{', '.join(EPOCH_UNITS)} (or empty: Unix times are quarantined)"
        )
    return unit


# [ingest] date_order: the strptime formats of a locale's dates, with the times a spreadsheet
# or a CRM's report writes after them (Salesforce: "6/30/2026, 2:05 PM"). The year has four
# digits (DATE_ORDER_RE): "30.06.26" would be read as the year 26.
_CLOCKS = (
    "",
    " %H:%M",
    " %H:%M:%S",
    " %I:%M %p",
    " %I:%M:%S %p",
    ", %H:%M",
    ", %H:%M:%S",
    ", %I:%M %p",
    ", %I:%M:%S %p",
)
DATE_ORDERS = {
    "dmy": tuple(f"{day}{clock}" for day in ("%d.%m.%Y", "%d/%m/%Y") for clock in _CLOCKS),
    "mdy": tuple(f"%m/%d/%Y{clock}" for clock in _CLOCKS),
}
# The values tried with those formats: a day, a month and a four-digit year, then a time.
DATE_ORDER_RE = {
    "dmy": r" *[0-9]{1,2}[./][0-9]{1,2}[./][0-9]{4}(,? .*)?",
    "mdy": r" *[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}(,? .*)?",
}


def date_order(order: str | None) -> str | None:
    """``[ingest] date_order`` checked: None or "" (such dates are quarantined), else one of
    ``DATE_ORDERS``."""
    from segmint.config import ConfigError

    if order in (None, ""):
        return None
    if order not in DATE_ORDERS:
        raise ConfigError(
            f"[ingest] date_order: {order!r} is not one of {', '.join(DATE_ORDERS)} "
            "(or empty: dates such as 30.06.2026 or 6/30/2026 are quarantined)"
        )
    return order


def timestamp_words(unit: str | None) -> str:
    """How the suites name a valid timestamp, for the reasons people read."""
    return "an ISO-8601 timestamp" + (f" or a Unix time in {unit}" if unit else "")


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _iso_sql(expr: str, cast: Callable[[str], str], order: str | None = None) -> str:
    """SQL: ``cast(text)`` of the trimmed text when the landing text ``expr`` is shaped like
    an ISO-8601 timestamp, else NULL. The tests read ``expr`` as it is (spaces allowed
    around): trimming it for each test would copy every value several times. Only the rare
    values that need the regular expression are upper-cased (a lower-case 't' or 'z')."""
    t = _text(expr)
    shapes = " ".join(
        f"when {expr} like '{shape}' then {cast(t)}" for shape in _COMMON_TIMESTAMP_SHAPES
    )
    iso = f"' *{ISO_TIMESTAMP_RE} *'"
    # A space before the offset (Ruby's and Rails' "2026-06-01 10:00:00 +0200") is dropped:
    # DuckDB's cast reads " +0200" as a zone name.
    rare = f"regexp_replace(upper({t}), ' ([+-][0-9])', '\\1')"
    local = ""
    if order:
        # A locale's date ([ingest] date_order), rewritten as ISO text for the same cast
        # (and time zone). Only values that are not ISO-8601 reach this test.
        formats = "[" + ", ".join(_sql_str(f) for f in DATE_ORDERS[order]) + "]"
        as_iso = f"strftime(try_strptime({t}, {formats}), '%Y-%m-%d %H:%M:%S')"
        local = (
            f" when regexp_full_match({expr}, {_sql_str(DATE_ORDER_RE[order])}) then {cast(as_iso)}"
        )
    return f"case {shapes} when regexp_full_match({expr}, {iso}) then {cast(rare)}{local} end"


def source_time_zone(name: str | None, source: str = "events") -> str:
    """``[ingest] <source>_time_zone`` checked: "" (or "UTC") reads a timestamp without an
    offset as UTC; else an IANA zone name (``Europe/Berlin``) it is read in."""
    from segmint.config import ConfigError

    name = (name or "").strip()
    if name.upper() in ("", "UTC", "ETC/UTC"):
        return ""
    try:
        ZoneInfo(name)
        # The loader converts in DuckDB (ICU), which knows fewer names than the system's
        # zoneinfo files: "localtime" or "posix/Europe/Berlin" passed here and stopped the
        # ingest with "Unknown TimeZone".
        known = name in _duckdb_time_zones()
    except (ZoneInfoNotFoundError, ValueError):
        known = False
    if not known:
        raise ConfigError(
            f"[ingest] {source}_time_zone: {name!r} is no IANA time zone name "
            "(Europe/Berlin, America/New_York, ...; empty for UTC)"
        ) from None
    return name


@functools.cache
def _duckdb_time_zones() -> frozenset[str]:
    """The time zone names DuckDB's ``timezone()`` knows."""
    with duckdb.connect() as con:
        return frozenset(
            n for (n,) in con.execute("select name from pg_timezone_names()").fetchall()
        )


@dataclass(frozen=True)
class ValueRules:
    """The ``[ingest]`` settings that change how a landing value is typed (checked when
    built by :meth:`of`): Unix times in timestamps (``epoch``, a unit of ``EPOCH_UNITS``),
    the words read as true and as false, the time zone of timestamps without an offset,
    the texts that mean "no value" per field (``nulls``, :func:`null_values`)."""

    epoch: str | None = None
    true_words: tuple[str, ...] = TRUE_WORDS
    false_words: tuple[str, ...] = FALSE_WORDS
    time_zone: str = ""
    nulls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_order: str | None = None

    @classmethod
    def of(cls, ingest, source: str) -> ValueRules:
        """The rules for the files of ``source`` (the time zone is per source)."""
        true_words, false_words = boolean_words(ingest.true_values, ingest.false_values)
        return cls(
            epoch=epoch_unit(ingest.epoch_timestamp_unit),
            true_words=true_words,
            false_words=false_words,
            time_zone=source_time_zone(getattr(ingest, f"{source}_time_zone"), source),
            nulls=null_values(ingest.null_values, source),
            date_order=date_order(ingest.date_order),
        )


# A timestamp text that ends in an offset (or Z, or UTC) after its time: only those without
# one are read in [ingest] <source>_time_zone. The time must come first: a date alone
# (2026-06-01) ends in "-01" too.
_OFFSET_AT_END = "':[0-9]{2}(\\.[0-9]+)?( ?UTC|Z|[+-][0-9]{2}(:?[0-9]{2})?)$'"


def id_clean_sql(expr: str) -> str:
    """SQL: the landing text ``expr`` of an id as :func:`cast_sql` reads it: an id holding a
    character beyond ASCII with ``ID_EDGE_CHARS`` trimmed from its ends and in Unicode NFC
    (NFD's 'e' + combining accent is NFC's 'é'); any other as it is. The test (bytes against
    characters) costs nothing on the ASCII ids nearly every export holds. Computed once per
    record (the loader's parse_sql projects it): inlined in every test of the cast, it made
    the typing SQL four times longer and its planning ten times slower."""
    return (
        f"case when strlen({expr}) <> length({expr}) "
        f"then nfc_normalize(trim({expr}, {_sql_str(ID_EDGE_CHARS)})) else {expr} end"
    )


def _id_sql(expr: str, written: str | None = None) -> str:
    """SQL: the id read from the landing text ``expr`` (:func:`cast_sql`'s ``"id"``), cleaned
    by :func:`id_clean_sql` first."""
    t = _text(expr)
    # A whole number written as a float (123.0: pandas writes an integer column with a
    # missing value so, in Parquet, CSV and JSON) is the id 123, as the CRM spells it;
    # -1.0 is -1 (Amplitude's session_id outside a session, a null word of null_values),
    # and -0.0 (a float's negative zero) is 0.
    # A number with Excel's leading apostrophe ('7210448301122: Shopify's customer
    # export writes its Customer ID so) is that number: kept, the CRM record was another
    # customer than the events' one, and consent withdrawn on the real one stayed given
    # on the copy.
    # An id of white space and invisible characters only (a tab, a line break, a
    # zero-width space; trim() takes only spaces) is no id: kept, every such record was
    # one customer. Looked at only when the first character is no printable ASCII one
    # (compared as strings, the trim in a case of its own: ascii(), or an and DuckDB may
    # reorder, cost a sixth of the typing).
    # Tested on the text as it is (trimming it per test would copy every id thrice).
    return (
        f"case when (case when {expr} < '!' or {expr} >= chr(127) "
        f"then trim({expr}, {_sql_str(INVISIBLE_CHARS)}) = '' end) then NULL "
        f"when contains({expr}, '.0') and regexp_full_match({expr}, ' *-?[0-9]+\\.0+ *') "
        f"then regexp_replace(trim(split_part({expr}, '.', 1)), '^-(0+)$', '\\1') "
        f"when contains({expr}, '''') and regexp_full_match({expr}, ' *''[0-9]+ *') "
        f"then trim(replace({expr}, '''', '')) "
        # An id holding a point: ``written`` (SQL, NULL or the record's own text of a
        # JSON number the parse printed anew) when given.
        + (f"when contains({expr}, '.') then coalesce({written}, {t}) " if written else "")
        + f"else {t} end"
    )


def cast_sql(
    kind: str, expr: str, rules: ValueRules | None = None, written: str | None = None
) -> str:
    """SQL turning the landing text ``expr`` into the typed value of a field of ``kind``.

    Unparseable values become NULL here; the GX suite compares the typed value with the
    text (``<field>_text``) to tell "missing" from "invalid" and decides what that means.
    The session time zone is UTC, so a naive timestamp is read as UTC and an offset or ``Z``
    is converted to UTC; with ``rules.time_zone`` a timestamp without an offset is read in
    that zone instead. With ``rules.epoch`` a timestamp may also be a Unix time in that unit
    (a plain non-negative number, fractions allowed) from 2000 to 2100. Booleans are the
    words of ``rules`` (:func:`boolean_words`). ``written`` (an id): SQL giving the record's
    own text where the JSON parse printed a number anew (1.10 as '1.1'), else NULL.
    """
    rules = rules or ValueRules()
    t = _text(expr)
    if kind == "id":
        # ``expr`` is the text id_clean_sql gives (ID_EDGE_CHARS trimmed, Unicode NFC).
        return _id_sql(expr, written)
    if kind == "text":
        return t
    if kind == "number_text":
        # A phone or postal code a spreadsheet was told to keep as text: Excel's leading
        # apostrophe ('+4915112345678, '02118), which Shopify's and Matrixify's exports write
        # too. It is no part of the value: kept, the phone was left out of every platform
        # file (not E.164) and the ZIP code was sent as "'02118".
        # A whole float's text ("4155552671.0", "2118.0"): pandas writes a phone or postal
        # code column holding a missing value as float64, to CSV, JSON and Parquet alike.
        # Its ".0" is no digit: kept, an export read "+4930151234560" for the German
        # 3015123456.0, and Google was sent the ZIP code "2118.0". Up to 15 digits (every
        # phone, E.164's longest) a float holds the number exactly; a longer one is left as
        # written (it may have lost digits). NaN is no value: the JSON token Python's
        # json.dumps writes for such a column's missing value, and Spark's text of one.
        return (
            f"case when starts_with({t}, '''') and regexp_matches({t}, '^''[+(0-9]') "
            f"then ltrim(substr({t}, 2)) "
            f"when {t} in ('NaN', 'nan') then NULL "
            f"when contains({t}, '.0') and regexp_full_match({t}, '[0-9]{{1,15}}\\.0+') "
            f"then split_part({t}, '.', 1) else {t} end"
        )
    if kind == "email":
        # Addresses pasted from web pages or spreadsheets end in a non-breaking space.
        return f"lower(nullif(trim({expr}, {_sql_str(UNICODE_SPACE_CHARS)}), ''))"
    if kind == "lower":
        return f"lower({t})"
    if kind == "upper":
        return f"upper({t})"
    if kind == "country":
        # "UK", the code many shops write, is reserved, not assigned: kept, the calling code of
        # a national phone was unknown (left out of every platform file) and the ad platforms
        # were sent a country code they do not know.
        return f"case upper({t}) when 'UK' then 'GB' else upper({t}) end"
    if kind == "ts":

        def cast(v: str) -> str:
            as_utc = f"try_cast({v} AS TIMESTAMPTZ)::TIMESTAMP"
            if not rules.time_zone:
                return as_utc
            # Local wall time to UTC (a time in a DST gap moves forward, as the zone's clocks).
            zone = _sql_str(rules.time_zone)
            local = f"timezone('UTC', timezone({zone}, try_cast({v} AS TIMESTAMP)))"
            return f"case when regexp_matches({v}, {_OFFSET_AT_END}) then {as_utc} else {local} end"

        iso = _iso_sql(expr, cast, rules.date_order)
        if not rules.epoch:
            return iso
        micros = f"try_cast({t} AS DOUBLE) * {EPOCH_UNITS[rules.epoch]}"
        return (
            f"coalesce({iso}, case "
            f"when regexp_full_match({t}, '[0-9]+(\\.[0-9]+)?([eE][+]?[0-9]+)?') "
            f"and {micros} >= {_EPOCH_MIN_US} and {micros} < {_EPOCH_MAX_US} "
            f"then make_timestamp(cast(round({micros}) AS BIGINT)) end)"
        )
    if kind == "date":
        return _iso_sql(
            expr,
            lambda v: f"coalesce(try_cast({v} AS DATE), try_cast({v} AS TIMESTAMPTZ)::DATE)",
            rules.date_order,
        )
    if kind == "decimal":
        return f"try_cast({t} AS DECIMAL(18, 2))"
    if kind == "int":
        # The integer cast rounds (2.7 is 3): a value that is not whole is NULL instead, so
        # the suite's "not a whole number" rule sees it. 1e3 and 2.0 are whole.
        # Only a text with a point or an exponent can be a fraction.
        whole = f"try_cast({t} AS INTEGER)"
        return (
            f"case when not regexp_matches({expr}, '[.eE]') then {whole} "
            f"when {whole} = try_cast({t} AS DOUBLE) then {whole} end"
        )
    if kind == "double":
        return f"case when isfinite(try_cast({t} AS DOUBLE)) then try_cast({t} AS DOUBLE) end"
    if kind == "bool":
        trues = ", ".join(_sql_str(w) for w in rules.true_words)
        falses = ", ".join(_sql_str(w) for w in rules.false_words)
        return (
            f"case when lower({t}) in ({trues}) then true "
            f"when lower({t}) in ({falses}) then false end"
        )
    raise ValueError(f"unknown field kind {kind!r}")


OPS_DDL = """
CREATE TABLE IF NOT EXISTS ops.load_manifest (
    path VARCHAR NOT NULL,            -- relative to the landing root
    size_bytes BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    source VARCHAR NOT NULL,          -- 'events' | 'crm'
    partition_date DATE NOT NULL,
    rows_read BIGINT NOT NULL,        -- records read (blank lines are not records)
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_duplicate BIGINT NOT NULL,
    rows_warned BIGINT NOT NULL,      -- loaded rows with at least one field nulled by a warning
    status VARCHAR NOT NULL,          -- 'loaded' | 'failed'
    error VARCHAR,
    first_loaded_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    rows_erased BIGINT DEFAULT 0      -- records of erased customers, dropped (nothing kept)
);
-- Warehouses created before rows_erased existed.
ALTER TABLE ops.load_manifest ADD COLUMN IF NOT EXISTS rows_erased BIGINT DEFAULT 0;
-- The file's modification time (ns) when checksummed: with size_bytes, an unchanged file is
-- not read again on later runs (NULL: checksum it again).
ALTER TABLE ops.load_manifest ADD COLUMN IF NOT EXISTS mtime_ns BIGINT;
-- Records of an event type in [ingest] ignored_event_types (not segmint's), dropped.
ALTER TABLE ops.load_manifest ADD COLUMN IF NOT EXISTS rows_ignored BIGINT DEFAULT 0;
CREATE TABLE IF NOT EXISTS ops.quarantine (
    source_file VARCHAR NOT NULL,
    line_number BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    partition_date DATE NOT NULL,
    raw_record VARCHAR,
    reasons VARCHAR[] NOT NULL,
    quarantined_at TIMESTAMP NOT NULL
);
-- The customer_id read from a quarantined CRM record (NULL: none could be read, an events
-- record, or a record quarantined before this column existed): a record that may be newer
-- than the customer's loaded one holds them out of the audiences (segmint.audiences.consent).
ALTER TABLE ops.quarantine ADD COLUMN IF NOT EXISTS customer_id VARCHAR;
CREATE TABLE IF NOT EXISTS ops.duplicates (
    source VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    line_number BIGINT NOT NULL,
    partition_date DATE NOT NULL,
    record_key VARCHAR NOT NULL       -- event_id, or the CRM record's content hash
);
CREATE TABLE IF NOT EXISTS ops.validation_runs (
    source_file VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    partition_date DATE NOT NULL,
    sha256 VARCHAR NOT NULL,
    suite VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,            -- stable name of the expectation in the suite
    expectation_type VARCHAR NOT NULL,
    column_name VARCHAR,
    level VARCHAR NOT NULL,           -- 'record' | 'warning' | 'batch'
    description VARCHAR NOT NULL,
    success BOOLEAN NOT NULL,
    element_count BIGINT,
    unexpected_count BIGINT,
    unexpected_percent DOUBLE,
    observed_value VARCHAR,
    kwargs JSON,
    validated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.quality_gate (
    source VARCHAR NOT NULL,
    partition_date DATE NOT NULL,
    fingerprint VARCHAR NOT NULL,     -- md5 of the partition's files and checksums
    status VARCHAR NOT NULL,          -- 'passed' | 'failed'
    rows_read BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    quarantined_share DOUBLE NOT NULL,
    message VARCHAR,
    checked_at TIMESTAMP NOT NULL
);
"""
