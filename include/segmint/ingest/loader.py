"""``segmint ingest``: load new or changed landing files into ``raw.*``, accounting for every row.

New files are handled in batches of one source (normally one batch per source and night):

1. **stage**: one statement reads every JSONL file of the batch (one multi-file scan), parses
   each line once, types it with the contract's explicit cast rules
   (:mod:`segmint.ingest.contract`) and evaluates every row-level expectation of the source's
   GX suite, translated to SQL, as flags, into one temporary table. Line numbers come from
   that table's row order (the scan keeps file and line order). The raw text is kept only for
   rows that may be quarantined, and the JSON document only for the rows GX will see. CSV and
   Parquet records are first made into JSON documents (:mod:`segmint.ingest.files`) and
   typed by the same SQL.
2. **validate**: one GX run per batch (:mod:`segmint.validation`) over the rows the SQL flags
   plus a deterministic sample of the others. GX's row-level results decide: a record failing
   a ``record`` expectation is quarantined with every reason that applied, a ``warning``
   nulls the offending optional field. A GX failure on a row the SQL did not flag for that
   expectation stops the run (the translation is out of step with the suite).
3. **write** (one transaction with the manifest rows): records of erased customers are
   dropped and counted (``rows_erased``), failing records quarantined, duplicates recorded,
   and the rest inserted into ``raw.*`` straight from the staged table.

Duplicates: the copy with the smallest ``(partition_date, file path, line)`` wins, whatever
order the files were loaded in. When a file loaded later holds an earlier copy, the copy
already in ``raw.*`` is moved to ``ops.duplicates`` and its file's counts are adjusted, so
loading partitions out of order converges to the in-order result.

A file whose checksum changed is reloaded: its earlier rows (raw, quarantine, duplicates,
validation results) are deleted and the new content loaded in one transaction, together with
any file that had a duplicate of one of its records (that copy may win now).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import duckdb

from expectations.suites import SUITE_MODULES
from segmint.config import Settings
from segmint.ingest.contract import (
    ALLOWED_EVENT_TYPES,
    EXCEL_ROUNDED_ID_RE,
    FALSE_WORDS,
    FIELDS,
    FLOAT_EXACT_MAX,
    FLOAT_WHOLE_ID_RE,
    ID_CONTROL_RE,
    ID_MAX_LENGTH,
    INTEGER_MAX,
    NULL_WORDS,
    OPS_DDL,
    RAW_TABLE,
    ValueRules,
    cast_sql,
    event_type_aliases,
    field_names,
    id_clean_sql,
    ignored_event_types,
    required_fields,
)
from segmint.ingest.files import (
    BARE_CR_MARK,
    EXCEL_TEXT_RE,
    TOO_LONG_MARK,
    TOO_LONG_REASON,
    LandingFile,
    _spelling,
    _toml_str,
    bare_cr_files,
    check_line_order,
    cr_looked_at,
    discover,
    gzip_named,
    json_documents,
    jsonl_scan_sql,
    read_records,
    scan_order,
    text_head,
    unreadable,
    with_compression_named,
)
from segmint.stages import InputError, StageResult, import_in_background
from segmint.validation import docs_pending, quiet_gx_logging
from segmint.warehouse import connect, ensure_raw_tables, limit_resources, transaction

log = logging.getLogger(__name__)

# Kinds whose landing text is kept beside the typed value so the suite can tell a missing
# value from an invalid one.
_TEXT_KINDS = ("ts", "date", "decimal", "int", "double", "bool")
# Kinds of number fields, whose NaN is no value (parse_sql).
_NUMBER_KINDS = ("decimal", "int", "double")
# Kinds of text fields, which a dotted name stopping at a JSON object or list reads no value
# of (parse_sql); the other kinds' rules name such a value (an id's, a number's, ...).
_TEXT_FIELD_KINDS = ("text", "lower", "upper", "number_text", "email", "country")
# New files are staged, validated and written in batches of about this many bytes of text
# (a gzip file counts six times its size): about 2.5 million events, whose staged rows
# (~370 bytes each) stay within the default memory limit ([ingest] duckdb_memory_limit, 2GB).
# A staged table that spills to disk makes every later read of it several times slower than
# the extra GX runs and statements of more batches.
BATCH_BYTES = 1 << 30
# ... and of at most this many files: each file of a multi-file scan costs memory of its own
# (a backfill of 15,840 one-minute files of 2 events, 3 MB in all, ran out of memory in one
# batch; 6,000 files took 2.2 GB), and so do the per-file lists the staging SQL indexes.
BATCH_FILES = 1000
# A batch up to this size (uncompressed) is typed while GX imports, flagged after.
TWO_PASS_BYTES = 256 << 20
# CSV and Parquet records are typed from a table, whose scan hands DuckDB's expressions
# vectors of 2,048 records; each JSON function of the typing (json_transform, json_keys,
# json_merge_patch) holds several times a vector's text while it runs (json_merge_patch
# about ten times), so a vector of 2,048 records of 50 KB page URLs (100 MB) needed more
# than the 2 GB default even at one thread. Records are typed in slices of at most about
# this much text (several statements) where a vector would hold more; records of a few
# hundred bytes (8 KB a vector of them) are typed in one statement as before.
SLICE_TEXT_BYTES = 16 << 20
# JSON lines files are typed straight from their scan, in the scan's vectors of 2,048 lines:
# a file whose first this many bytes hold lines of more than 4 KB on average (a tracker that
# sends a page's state in its URL, or large properties) is scanned into a table of lines
# first and typed in slices of it (_long_lines). Long lines later in a file (a normal head)
# run out of memory in the scan; the batch's files are then typed in slices too.
LONG_LINES_SAMPLE = 1 << 18
# Besides every row the SQL pre-filter flags, GX also sees one in this many of the others
# (chosen by a hash of the record's text, so reruns see the same rows), to prove the
# pre-filter and the suite agree.
CHECK_SAMPLE = 200
# Purchases named in the extreme-revenue warning (the largest first; the rest are counted).
_EXTREME_SHOWN = 5
# A batch whose median order is this many times the median of the purchases loaded before it
# in the same currency (or this many times smaller) is named (Ingest._check_revenue_scale):
# cents are 100x, and a shop's typical order does not move 20x from one day to the next.
REVENUE_SCALE_SHIFT = 20.0
# DuckDB checkpoints when a commit leaves more than ``checkpoint_threshold`` (16 MB) of WAL:
# with the default, the statement after every second batch's write paid a checkpoint and a
# vacuum (1.3-1.6 s each at 10M events, 2.9 s of a 63 s night). The run checkpoints once,
# at its end, instead; a crash before replays the WAL at the next open, as usual.
CHECKPOINT_THRESHOLD = "16GB"
# Columns of a staged row besides the contract's fields.
_STAGED = (
    "_file",
    "_line",
    "_error",
    "_extra",
    "_rec_bad",
    "_warn_bad",
    "_ignored",
    "_dom",
    "raw",
    "_gxdoc",
    "_arrays",
)
# Id columns checked against erasure tombstones, per source.
_ID_COLUMNS = {"events": ("customer_id", "anonymous_id"), "crm": ("customer_id",)}


def ensure_ops_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure_raw_tables(con)
    con.execute(OPS_DDL)


@dataclass
class FileOutcome:
    file: LandingFile
    tag: str = ""
    status: str = "loaded"
    error: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_erased: int = 0
    rows_ignored: int = 0
    rows_warned: int = 0
    # (field, description) of each warning rule -> the loaded rows it applied to
    warnings: dict[tuple[str, str], int] = field(default_factory=dict)


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _some(paths: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``paths``, and how many more, for a message."""
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _list(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _struct_specs(paths: list[str], whole: bool = False) -> tuple[list[str], dict[str, int]]:
    """The ``json_transform`` types of the (dotted) landing names, every leaf as text, and
    which of them reads each name. ``whole``: each is one key spelt with its dots (a
    flattened export's ``"context.device.type"``).

    Struct fields are case-insensitive in DuckDB, JSON keys are not: names differing only in
    case (``EVENT_ID`` for ``event_id``: Snowflake writes its column names upper-case in
    the JSON it unloads; ``properties.Revenue`` beside ``properties.revenue``) are read by a
    type of their own, a second parse of the records only when the settings name such a
    name. (They were refused, and such an export could not be loaded.)"""
    from segmint.config import ConfigError

    def twin(tree: dict, parts: list[str]) -> bool:
        """Whether ``tree`` holds a name on the path ``parts`` differing from it in case."""
        node = tree
        for part in parts:
            if any(key != part and key.lower() == part.lower() for key in node):
                return True
            node = node.get(part)
            if not isinstance(node, dict):
                return False
        return False

    trees: list[dict] = []
    layer: dict[str, int] = {}
    for path in paths:
        parts = [path] if whole else path.split(".")
        k = next((k for k, tree in enumerate(trees) if not twin(tree, parts)), len(trees))
        if k == len(trees):
            trees.append({})
        layer[path] = k
        node = trees[k]
        for j, part in enumerate(parts):
            leaf = j == len(parts) - 1
            child = node.get(part)
            if (leaf and isinstance(child, dict)) or (not leaf and child == "VARCHAR"):
                raise ConfigError(
                    f"[ingest] field_aliases: {path!r} and another name read {part!r} both as a "
                    "value and as an object"
                )
            node = node.setdefault(part, "VARCHAR" if leaf else {})

    def spec(node: dict) -> str:
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k)}: {json.dumps(v) if v == 'VARCHAR' else spec(v)}"
                for k, v in node.items()
            )
            + "}"
        )

    return [spec(tree) for tree in trees], layer


# At most this many parent paths of dotted names are checked for JSON arrays (one bit each
# of ``_arrays``); more than a few is no tracker's mapping.
MAX_ARRAY_PARENTS = 62


# Lines of a JSON file searched for keys differing from a field's names in case only
# (Ingest._case_variants).
CASE_SEARCHED_LINES = 10_000


# Marks a dotted landing name's spelling as one top-level key (Ingest._case_variants):
# flattened exports (pandas' json_normalize, Mixpanel's and Amplitude's flat properties, a
# warehouse's columns named so) write {"context.device.type": "mobile"} where Segment nests
# {"context": {"device": {"type": "mobile"}}}. No name given in the settings starts so.
FLAT = "\x1f"


def _pointer(path: str) -> str:
    """The JSON pointer (``/a/b``) of the dotted name ``path``."""
    return "".join(_key_pointer(p) for p in path.split("."))


def _key_pointer(key: str) -> str:
    """The JSON pointer of the document's key ``key`` as written, dots and all (a flattened
    export's ``"context.device.type"``), where :func:`_pointer` walks the dots."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def with_flat_names(names: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """``names`` (:func:`field_names`) with each dotted name followed by its ``FLAT`` twin,
    the top-level key spelt with the dots, which the name reads where the nested path holds
    no value (``parse_sql``)."""
    return {
        field: tuple(x for n in ns for x in ((n, FLAT + n) if "." in n else (n,)))
        for field, ns in names.items()
    }


def array_parents(names: list[str]) -> list[str]:
    """The parent paths of the dotted landing names, each once, in order: ``a`` and ``a.b``
    of ``a.b.c``. Bit ``k`` of a staged row's ``_arrays`` says the ``k``-th holds a JSON
    array in its record (``parse_sql``)."""
    out: list[str] = []
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts)):
            parent = ".".join(parts[:k])
            if parent not in out:
                out.append(parent)
    return out[:MAX_ARRAY_PARENTS]


def container_names(source: str, names: dict[str, tuple[str, ...]]) -> list[str]:
    """The dotted landing names of ``source``'s text fields (``names``: :func:`field_names`),
    in order. Bit ``len(array_parents(...)) + k`` of a staged row's ``_arrays`` says the
    ``k``-th holds a non-empty JSON object or list in its record, which a text field does
    not read (``parse_sql``); the bits after the parents' (62 in all) are not set."""
    kinds = {f.name: f.kind for f in FIELDS[source]}
    return [
        n
        for field, ns in names.items()
        if kinds[field] in _TEXT_FIELD_KINDS
        for n in ns
        if "." in n
    ]


def parse_sql(
    source: str,
    rel: str,
    limit_col: str,
    limit_sql: str,
    aliases: dict[str, dict[str, list[str]]] | None = None,
    event_types: dict[str, str] | None = None,
    rules: ValueRules | None = None,
    csv_files: list[int] | None = None,
    defaults: dict[str, str] | None = None,
) -> str:
    """SQL typing the JSON ``doc`` of every row of ``rel`` where ``_ok`` (one JSON parse).

    ``rel`` has at least ``_file``, ``doc`` and ``_ok``; its other columns pass through. Adds
    the typed contract fields, ``<field>_text`` for the kinds in ``_TEXT_KINDS``, ``identity``
    (events), ``_extra`` (unknown keys with a value, as JSON) and ``limit_col`` (the latest
    acceptable timestamp, ``limit_sql`` over ``_file``). A field is read from the first of
    its landing names (``field_names``: its own, then ``aliases``) that holds a value;
    ``event_types`` maps other trackers' event names (lower-cased) to segmint's; ``rules``
    are the settings that change how values are typed (``ValueRules``). In the rows of the
    files ``csv_files`` (``_file`` positions) a value of ``NULL_WORDS`` is missing.
    ``defaults`` gives fields a landing text (SQL over the row: ``_file``, ``doc``, ``_ok``)
    for records holding none.
    """
    defaults = defaults or {}
    nulls = (rules or ValueRules()).nulls
    fields = FIELDS[source]
    kinds = {f.name: f.kind for f in fields}
    names = field_names(source, aliases)
    landing = [n for f in fields for n in names[f.name]]
    # One parse per record into a struct of the landing names as text (a number, true/false
    # or a nested value comes as its JSON text, JSON null and absent keys as NULL).
    structs, layer = _struct_specs(landing)
    # The names differing from an earlier one only in case are read by a parse of their own.
    twins = "".join(
        f"case when _ok then json_transform(doc, {_lit(spec)}) end as _v{k}, "
        for k, spec in enumerate(structs)
        if k
    )
    # A dotted name reads the nested path, then, where it holds no value, the top-level key
    # spelt with the dots (a flattened export's "context.device.type"). The nested path
    # first: what a dotted name always read, a record that loaded before loads the same (a
    # record holding both keeps the flat key in _extra). The flat keys are read by a parse
    # of their own, only of the records without the nested object (context: a flattened
    # export keeps none) whose text holds a key starting with its name and a dot
    # ("context.): Segment's nested records are neither searched nor parsed again (a search
    # of every record cost a tenth more typing, a test of every nested name 6%).
    # Each dotted name's value is a column of its own (_fl<k>), computed once per row.
    dotted = [n for n in landing if "." in n]
    flat_structs, flat_layer = _struct_specs(dotted, whole=True)
    flat_cols = {n: f"_fl{k}" for k, n in enumerate(dotted)}

    def path(name: str) -> str:
        """SQL: the value at the (nested) path ``name`` of the record."""
        # A parent of dotted names (properties) is read where the first of them is.
        k = layer.get(name, next((layer[n] for n in landing if n.startswith(name + ".")), 0))
        v = f"_v{k}" if k else "v"
        return v + "." + ".".join(_ident(part) for part in name.split("."))

    def read(name: str) -> str:
        return flat_cols.get(name) or path(name)

    # In CSV files a database dump's null word (\\N, NULL) is a missing value: each landing
    # name's value, so cleaned, is a column of its own (_nv<k>), computed once per row; the
    # casts refer to it many times. Not in a batch without CSV files (no extra projection).
    cleaned = {n: f"_nv{k}" for k, n in enumerate(landing)} if csv_files else {}

    def read_value(name: str) -> str:
        """SQL: the value of the landing name ``name`` (NULL for a null word in CSV)."""
        return cleaned.get(name) or read(name)

    words = ", ".join(_lit(w) for w in NULL_WORDS)
    clean_cols = "".join(
        f"case when _csv and length({read(n)}) <= 8 and lower(trim({read(n)})) in ({words}) "
        f"then null else {read(n)} end as {col}, "
        for n, col in cleaned.items()
    )
    dropped = "".join(f", {col}" for col in cleaned.values()) + (", _csv" if csv_files else "")
    dropped += "".join(f", _v{k}" for k in range(1, len(structs)))
    dropped += "".join(f", _vf{k}" for k in range(len(flat_structs)))
    dropped += "".join(f", {c}" for c in flat_cols.values())
    parsed = f"""(
                        select
                            *,
                            case when _ok then json_transform(doc, {_lit(structs[0])}) end as v,
                            {twins}
                            case when _ok then len(json_keys(doc)) end as _nkeys,
                        from {rel}
                    )"""
    if dotted:
        tops = dict.fromkeys(n.split(".")[0] for n in dotted)
        spelt_flat = " or ".join(
            f"({path(top)} is null and contains(doc, "
            f"{_lit(json.dumps(top, ensure_ascii=False)[:-1] + '.')}))"
            for top in tops
        )
        flat_docs = ", ".join(
            f"case when _ok and ({spelt_flat}) then json_transform(doc, {_lit(spec)}) end as _vf{k}"
            for k, spec in enumerate(flat_structs)
        )
        flat_reads = ", ".join(
            f"coalesce({path(n)}, _vf{flat_layer[n]}.{_ident(n)}) as {c}"
            for n, c in flat_cols.items()
        )
        parsed = f"""(
                        select *, {flat_reads}
                        from (select *, {flat_docs} from {parsed})
                    )"""
    # A dotted name of a text field that stops at a JSON object or list (a path stopping
    # short: product_category = ["properties.tags"] on ["sale", "shoes"], page_url =
    # ["context.page"] on Segment's page object) holds no value of it: its JSON text loaded
    # as the category, in silence. Its value is NULL (the next name is read) and _bx<k> says
    # why, once per row: 1 an empty object or list ([], {}: nothing to read), 2 another (the
    # night's warning). Only a value starting with '[' or '{' is looked up in the document,
    # in the nested object, else under the key spelt with the dots.
    containers = container_names(source, names)
    boxes = {n: f"_bx{k}" for k, n in enumerate(containers)}
    if boxes:

        def boxed(n: str) -> str:
            v = flat_cols[n]
            nested = f"json_type(doc, {_lit(_pointer(n))})"
            flat = f"json_type(doc, {_lit(_key_pointer(n))})"
            return (
                f"case when (starts_with({v}, '[') or starts_with({v}, '{{')) "
                f"and coalesce(nullif({nested}, 'NULL'), {flat}) in ('ARRAY', 'OBJECT') "
                f"then case when {v} in ('[]', '{{}}') then 1 else 2 end end as {boxes[n]}"
            )

        unboxed = ", ".join(
            f"case when {boxes[n]} is null then {flat_cols[n]} end as {flat_cols[n]}"
            for n in containers
        )
        parsed = f"""(
                        select * replace ({unboxed})
                        from (select *, {", ".join(map(boxed, containers))} from {parsed})
                    )"""
        dropped += "".join(f", {c}" for c in boxes.values())
    if csv_files:
        parsed = f"""(
                        select *, {clean_cols}
                        from (
                            select *, _file in ({", ".join(map(str, csv_files))}) as _csv
                            from {parsed}
                        )
                    )"""

    # An id's landing text as the id rule reads it (id_clean_sql: edges trimmed of invisible
    # characters, NFC), one column a landing name (_ic<k>), computed once per record: every
    # test of the cast refers to it.
    raw_value = read_value
    id_names = [n for f in fields if f.kind == "id" for n in names[f.name]]
    id_cols = {n: f"_ic{k}" for k, n in enumerate(id_names)}
    id_clean = ", ".join(f"{id_clean_sql(raw_value(n))} as {c}" for n, c in id_cols.items())
    parsed = f"""(
                        select *, {id_clean}
                        from {parsed}
                    )"""
    dropped += "".join(f", {c}" for c in id_cols.values())

    def read_value(name: str) -> str:
        """SQL: the value of the landing name ``name`` (NULL for a null word in CSV; an id's
        cleaned)."""
        return id_cols.get(name) or raw_value(name)

    def held(name: str) -> str:
        """SQL: the value of the landing name ``name`` when it holds one: an empty or blank
        string is null (as the field's cast makes it), so the next name is read."""
        r = read_value(name)
        return (
            f"case when {r} = '' then null "
            f"when starts_with({r}, ' ') then nullif(trim({r}), '') else {r} end"
        )

    def nan_free(name: str, v: str) -> str:
        """SQL: ``v``, the landing text of a name of the field ``name``, NULL where the field
        is a number and the text is NaN: the JSON token Python's ``json.dumps`` writes for a
        float NaN (pandas' missing number), Spark's and Python's ``str`` of one in CSV. It is
        no value, as null is (a page view's revenue NaN was "revenue is not a number" and
        quarantined every page view of such an export). Applied to each name of a field of
        several (the next is read) and to the field's text (``<field>_text``: the casts make
        NaN NULL already; tested once, not in each of them, it costs nothing measurable)."""
        if kinds[name] not in _NUMBER_KINDS:
            return v
        return f"case when {v} in ('NaN', 'nan') then null else {v} end"

    def value(name: str) -> str:
        """SQL: the landing text of the field ``name``, from the first name holding one; a
        text of its ``null_values`` is none; then its default, if it has one."""
        if name in defaults or len(names[name]) > 1:
            v = f"coalesce({', '.join(nan_free(name, held(n)) for n in names[name])})"
        else:
            v = read_value(name)
        if name in nulls:
            words = ", ".join(_lit(w) for w in nulls[name])
            # An id is compared as it is read (cast_sql): a guest's customer_id 0 that pandas
            # wrote as 0.0 (a column holding a missing value), or Excel's '0, is the id 0.
            seen = cast_sql("id", v) if kinds[name] == "id" else v
            v = f"case when lower(trim({seen})) in ({words}) then null else {v} end"
        if name in defaults:
            v = f"coalesce({v}, {defaults[name]})"
        return v

    def written(name: str) -> str:
        """SQL: the record's own text of the id field ``name`` where the parse printed a JSON
        number with a fraction anew (1.10 read as '1.1', 1234567890.1234567890 as
        '1234567890.1234567', another id than the record's text says), else NULL: the
        number written after the key of the landing name read, when it is that double and
        the value is no JSON string of the document. Evaluated only for an id holding a
        point (cast_sql), in nested cases (an and would parse every document again)."""
        whens = []
        for n in names[name]:
            r = read_value(n)
            # Where the number is: the nested path (its last key), then, for a dotted name
            # whose path holds none, the top-level key spelt with the dots (a flattened
            # export's "properties.order_id": 1.10 loaded as '1.1' until 2026-12-07).
            spots = [(n.rsplit(".", 1)[-1], _pointer(n))]
            if "." in n:
                spots.append((n, _key_pointer(n)))
            found = []
            for key, pointer in spots:
                key = re.escape(json.dumps(key, ensure_ascii=False))
                number = key + r"[ \t\r\n]*:[ \t\r\n]*(-?[0-9]+[.][0-9]+)[ \t\r\n]*[,}\]]"
                text = f"regexp_extract(doc, {_lit(number)}, 1)"
                found.append(
                    f"when json_type(doc, {_lit(pointer)}) = 'DOUBLE' "
                    f"and try_cast({text} AS DOUBLE) = try_cast({r} AS DOUBLE) then {text}"
                )
            whens.append(
                f"when {held(n)} is not null then case when "
                f"regexp_full_match({r}, '-?[0-9]+[.][0-9]*[1-9]') "
                f"and not contains(doc, '\"' || {r} || '\"') then case {' '.join(found)} end end"
            )
        return f"case {' '.join(whens)} end"

    def read_from(name: str) -> str:
        """SQL: the top-level key the field ``name`` is read from (NULL when it has no value
        or comes from a nested name, whose parent stays in ``_extra``; a flat key,
        ``"context.device.type"``, leaves the record)."""

        def key(n: str) -> str:
            if "." in n:
                return f"case when {path(n)} is null then {_lit(n)} end"
            return _lit(n)

        whens = " ".join(f"when {held(n)} is not null then {key(n)}" for n in names[name])
        return f"case {whens} end"

    # Keys that leave the record for _extra: a field's own name, and for a field with aliases
    # only the name it was read from (an alias whose value lost to an earlier name is kept).
    plain = [f.name for f in fields if len(names[f.name]) == 1]
    aliased = [f.name for f in fields if len(names[f.name]) > 1]
    present = " + ".join(
        [f"({read(n)} is not null)::INTEGER" for n in plain]
        + [f"({read_from(n)} is not null)::INTEGER" for n in aliased]
    )
    cols = []
    for f in fields:
        typed = cast_sql(f.kind, value(f.name), rules, written(f.name) if f.kind == "id" else None)
        if f.name == "event_type" and event_types:
            mapped = " ".join(
                f"when {_lit(k)} then {_lit(t)}" for k, t in sorted(event_types.items())
            )
            typed = f"case {typed} {mapped} else {typed} end"
        if f.name == "event_type":
            event_type_sql = typed
        if source == "events" and f.name == "revenue":
            # A refund's amount is what was refunded: WooCommerce and Stripe write it as a
            # negative number, read as its absolute value (a purchase's stays as it is, and a
            # negative one is quarantined). Only the typed amount: <field>_number keeps the
            # sign, its rules ("not a number", "out of range") do not depend on it.
            typed = f"case when {event_type_sql} = 'refund' then abs({typed}) else {typed} end"
        cols.append(f"{typed} as {f.name}")
        if f.kind in _TEXT_KINDS:
            # (A number's NaN is missing: its cast is NULL already, its text too, here.)
            text = nan_free(f.name, f"nullif(trim({value(f.name)}), '')")
            cols.append(f"{text} as {f.name}_text")
        if f.kind == "int":
            # A number beyond the INTEGER column (3000000000) is no "not a whole number": its
            # text, for the suite's in-range rule. Only a value the cast left NULL is tested.
            text = f"nullif(trim({value(f.name)}), '')"
            number = f"try_cast({text} AS DOUBLE)"
            cols.append(
                f"case when {value(f.name)} is not null then case when {typed} is null "
                f"and isfinite({number}) and abs({number}) > {INTEGER_MAX} then {text} end end "
                f"as {f.name}_out_of_range"
            )
        if f.kind == "decimal":
            # Money as a number, to tell "not a number" from "too large for DECIMAL(18, 2)".
            cols.append(f"{cast_sql('double', value(f.name))} as {f.name}_number")
    ids = [f for f in fields if f.kind == "id"]

    def flag_ids(column: str, whens: Callable[[str, str], list[str]], only_where: str = "") -> None:
        """Column ``column``: the id fields, by name, whose value meets one of the conditions
        ``whens(value_sql, field_name)``, comma-separated, NULL when none (for a suite's rule
        on ids); computed only for records meeting ``only_where`` when given."""
        listed = ", ".join(
            "case "
            + " ".join(f"when {w} then {_lit(f.name)}" for w in whens(value(f.name), f.name))
            + " end"
            for f in ids
        )
        fields_sql = f"nullif(concat_ws(', ', {listed}), '')"
        if only_where:
            fields_sql = f"case when {only_where} then {fields_sql} end"
        cols.append(f"{fields_sql} as {column}")

    # An id holding a JSON object or array ({"id": "c9"}) is no id: the fields where it
    # happens, for the suite's ids_are_scalars rule.
    flag_ids("_id_not_scalar", lambda v, _: [f"starts_with({v}, '{{') or starts_with({v}, '[')"])
    # A JSON true or false ({"customer_id": true}, a Parquet BOOLEAN column read as an id) is
    # no id: loaded as the text 'true', every such record was one customer. Only the rare
    # value that reads 'true' or 'false' is looked up in the document: the text "true" of a
    # JSON string or a CSV cell stays a value, as "NULL" does.
    flag_ids(
        "_id_boolean",
        lambda v, name: [
            f"{v} in ('true', 'false') and ("
            + " or ".join(
                f"json_type(doc, {_lit(p)}) = 'BOOLEAN'"
                for n in names[name]
                # (and the flat key of a dotted name)
                for p in dict.fromkeys([_pointer(n), _key_pointer(n)])
            )
            + ")"
        ],
    )
    # A long number Excel wrote in scientific notation (7.21045E+12: a Shopify customer or
    # order id in a column not formatted as text) has lost its last digits: loaded, every
    # customer whose id rounds alike would be one, the consent of one given to the others.
    # So has a float beyond 2**53 (a JSON 1.5e22 or 12345678901234567890123.0, read as a
    # double; pandas' float column of 18-digit ids), whether printed with an exponent or whole.
    flag_ids(
        "_id_rounded",
        lambda v, _: [
            f"(contains({v}, 'E+') or contains({v}, 'e+')) "
            f"and regexp_full_match({v}, {_lit(EXCEL_ROUNDED_ID_RE)})",
            f"contains({v}, '.0') and regexp_full_match({v}, {_lit(FLOAT_WHOLE_ID_RE)}) "
            f"and abs(try_cast(split_part(trim({v}), '.', 1) AS DOUBLE)) > {FLOAT_EXACT_MAX}",
        ],
    )
    # An id holding a control character ('c42\\r' from a quoted CSV cell, a tab, NUL, ESC)
    # is the same id to the eye and another one to every join: loaded, one customer became two
    # and an export line broke. So is one holding a C1 control (U+0080-U+009F, '\x96': a
    # Windows-1252 dash decoded twice). Only a document holding a backslash (JSON escapes
    # every C0 character), a DEL or a character beyond ASCII (its bytes outnumber its
    # characters) may hold one: its ids are looked at only then (a regular expression on
    # every id cost ten times more).
    beyond_ascii = "strlen(doc) <> length(doc)"
    flag_ids(
        "_id_control",
        lambda v, _: [f"regexp_matches({cast_sql('id', v)}, {_lit(ID_CONTROL_RE)})"],
        only_where=f"contains(doc, '\\') or contains(doc, chr(127)) or {beyond_ascii}",
    )
    # An id of more than ID_MAX_LENGTH characters (a 50 kB document pasted into the cell) is
    # no id. No id is longer than the document it is read from (in bytes): only documents
    # of more than that many bytes are looked at.
    flag_ids(
        "_id_too_long",
        lambda v, _: [f"length({cast_sql('id', v)}) > {ID_MAX_LENGTH}"],
        only_where=f"strlen(doc) > {ID_MAX_LENGTH}",
    )
    # A dotted name is a path into objects: where a parent on it holds a non-empty JSON array
    # (GA4's event_params and items are lists of objects), json_transform reads the array as
    # an object without the name, and the alias is null on every record, in silence. Bit k
    # is set where array_parents(...)[k] holds one, for the night's warning. Checked only
    # where the parent is there but none of the names read below it holds a value, and its
    # key is written before a '[' somewhere in the text (a substring search): a record whose
    # object holds the names, or whose text holds no such array, is not parsed again.
    bits = []
    parents = array_parents(landing)
    for k, parent in enumerate(parents):
        key = json.dumps(parent.rsplit(".", 1)[-1], ensure_ascii=False)
        below = [n[len(parent) + 1 :] for n in landing if n.startswith(parent + ".")]
        children = {n.split(".")[0] for n in below}
        unread = " and ".join(f"{read(parent + '.' + c)} is null" for c in sorted(children))
        bits.append(
            f"case when {read(parent)} is not null and {unread} "
            f"and (contains(doc, {_lit(key + ':[')}) or contains(doc, {_lit(key + ': [')})) "
            f"and json_array_length(doc, {_lit(_pointer(parent))}) > 0 then {1 << k} else 0 end"
        )
    # Bit len(parents) + k where containers[k] holds a non-empty JSON object or list.
    for k, name in enumerate(containers[: MAX_ARRAY_PARENTS - len(parents)]):
        bits.append(f"case when {boxes[name]} = 2 then {1 << (len(parents) + k)} else 0 end")
    cols.append(f"nullif({' + '.join(bits) or '0'}, 0)::BIGINT as _arrays")
    if source == "events":
        cols.append(
            "coalesce("
            + cast_sql("id", value("customer_id"))
            + ", "
            + cast_sql("id", value("anonymous_id"))
            + ") as identity"
        )
    select_list = ",\n            ".join(cols)
    # (A dotted name is a top-level key too, a flat one.)
    top_level = _list([_lit(n) for n in landing])
    # A JSON merge patch setting every contract key to null removes them (RFC 7396).
    drop_known = _lit("{" + ",".join(f"{json.dumps(n)}:null" for n in plain) + "}")
    if aliased:
        entries = ", ".join(f"{{'k': {read_from(n)}, 'v': NULL::JSON}}" for n in aliased)
        drop_known += (
            f", to_json(map_from_entries(list_filter([{entries}], lambda e: e.k is not null)))"
        )
    return f"""
        select
            * exclude (v, _nkeys, _xdoc, _xkeys, _xvals{dropped}),
            {select_list},
            case
                when _xdoc is null or _xdoc = '{{}}' then null
                when _xkeys is null then _xdoc
                when len(_xkeys) > 0 then to_json(map_from_entries(_xkeys))
            end as _extra,
            {limit_sql} as {limit_col},
        from (
            select
                * exclude (_xkeys),
                -- Member by member, only when a value may be JSON null: keys whose value is
                -- null are dropped (json_keys and '$.*' list the members in document order).
                list_filter(
                    list_transform(
                        range(1, len(_xkeys) + 1), lambda i: {{'k': _xkeys[i], 'v': _xvals[i]}}
                    ),
                    lambda e: e.v::VARCHAR <> 'null'
                ) as _xkeys,
            from (
                select
                    * exclude (_dockeys),
                    case
                        when len(list_distinct(_dockeys)) < len(_dockeys) then nullif(
                            array_to_string(
                                list_distinct(
                                    list_filter(
                                        _dockeys,
                                        lambda k, i: list_position(_dockeys, k) < i
                                            and list_contains({top_level}, k)
                                    )
                                ),
                                ', '
                            ),
                            ''
                        )
                    end as _keys_repeated,
                    case when contains(_xdoc, 'null') then json_keys(_xdoc) end as _xkeys,
                    case when contains(_xdoc, 'null') then json_extract(_xdoc, '$.*') end
                        as _xvals,
                from (
                    select
                        * exclude (_present),
                        -- A contract key given twice: DuckDB reads the first value, Python,
                        -- JavaScript and jq the last. Its keys are listed only where the
                        -- contract's keys occur more often than they hold values (a repeat,
                        -- or a key holding null): few records.
                        case
                            when _nkeys - len(json_keys(_xdoc)) > _present then json_keys(doc)
                        end as _dockeys,
                    from (
                        select
                            *,
                            ({present}) as _present,
                            -- The keys outside the contract, as a JSON object, for the
                            -- records with more keys than contract values (most have none).
                            case
                                when _nkeys > ({present})
                                    then json_merge_patch(doc, {drop_known})
                            end as _xdoc,
                        from {parsed}
                    )
                )
            )
        )
    """


class Ingest:
    """One ingest run over the landing zone for ``as_of``."""

    def __init__(
        self,
        settings: Settings,
        as_of: date,
        gx_import: threading.Thread | None = None,
        reload_since: date | None = None,
    ) -> None:
        self.settings = settings
        # Loaded files of partitions from this date on are read again as if changed (after a
        # change of the [ingest] settings that decide what loads: epoch_timestamp_unit, ...).
        self.reload_since = reload_since
        # The background import of GX (import_in_background), if one was started.
        self.gx_import = gx_import
        self.as_of = as_of
        self.now = datetime.now(UTC).replace(tzinfo=None)
        self._validator = None
        self.replacing = False
        # Loaded files read again this run (changed, their dependents, --reload-since): their
        # earlier rows are replaced, which the night's summary must say.
        self.reloaded: set[str] = set()
        # Per source, the newest partition loaded before this run: a new file on or before
        # it is a late delivery (a first run or a catch-up of missed nights is not).
        self.loaded_through: dict[str, date] = {}
        # Loaded files that could not be read tonight (discover): their rows stay as they
        # were loaded; the run fails naming them, and the next run looks again.
        self.unreadable_loaded: list[LandingFile] = []
        self._warned_fields: dict[str, list[str]] = {}
        # GX failures on rows the SQL pre-filter passed.
        self.prefilter_misses: list[str] = []
        # Batch-level warnings (extreme revenue), for the stage's warnings.
        self.batch_warnings: list[str] = []
        # The files of the batches committed so far (a run that fails later logs their
        # warnings: run_ingest).
        self.committed: list[FileOutcome] = []
        # Raw rows an earlier segmint typed otherwise (_ids_read_otherwise), likewise.
        self.stale_ids: list[str] = []
        # Per source, the files whose records hold a JSON array where an alias looks into
        # an object: path -> the staged rows' _arrays bits (warn_names).
        self.arrays: dict[str, dict[str, int]] = {}
        # Per source, per field given aliases, the CSV/Parquet files with no column for it
        # (warn_names).
        self.unmatched: dict[str, dict[str, list[str]]] = {}
        # Per (source, field), the JSON files holding no value of an optional field given
        # aliases, whose records hold a key differing from one of its names in case only:
        # path -> those keys (warn_names).
        self.variants: dict[tuple[str, str], dict[str, set[str]]] = {}
        # Per (source, field), the JSON files holding records without a required field (or
        # without an identity) whose keys are spelt like one of its names but for case and
        # punctuation (eventType, event-type): path -> those keys (warn_names).
        self.spelt_alike: dict[tuple[str, str], dict[str, set[str]]] = {}
        # Other trackers' names for contract fields and event types (checked here, before
        # any file is read: a mistake in them is a ConfigError).
        self.aliases = settings.ingest.field_aliases
        for source in FIELDS:
            field_names(source, self.aliases)
        self.event_types = event_type_aliases(settings.ingest.event_type_aliases)
        self.rules = {source: ValueRules.of(settings.ingest, source) for source in FIELDS}
        # Fields that may have no column: their records take a default (parse_sql).
        self.optional = frozenset(
            (["updated_at"] if settings.ingest.crm_updated_at_from_partition else [])
            + (["event_id"] if settings.ingest.event_id_from_record else [])
        )
        self.legacy = settings.ingest.legacy_encoding or None
        self.ignored_types = ignored_event_types(
            settings.ingest.ignored_event_types, settings.ingest.event_type_aliases
        )

    def parse_sql(self, source: str, rel: str, limit_col: str, files: list[LandingFile]) -> str:
        """:func:`parse_sql` with this run's aliases and the latest timestamps of ``files``."""
        return parse_sql(
            source,
            rel,
            limit_col,
            self._limit(source, files),
            self.aliases,
            self.event_types,
            self.rules[source],
            [i for i, f in enumerate(files) if f.fmt == "csv"],
            {
                field: default
                for field, default in [
                    ("updated_at", self._partition_day(files)),
                    # The record's text: a JSON line as written, a CSV or Parquet record
                    # as the JSON object of its columns (a malformed line has none).
                    ("event_id", "case when _ok then md5(doc) end"),
                ]
                if field in self.optional
            },
        )

    @property
    def docs_dirs(self) -> tuple[Path, Path]:
        """The night's GX Data Docs folder, and the folder of the results they render."""
        night = self.settings.run_output_dir(self.as_of)
        return night / "data_docs", night / "validation_results"

    @property
    def validator(self):
        if self._validator is None:
            from segmint.validation import BatchValidator

            docs, results = self.docs_dirs
            docs.mkdir(parents=True, exist_ok=True)
            self._validator = BatchValidator(
                self.settings.ingest, docs_dir=docs, results_dir=results
            )
        return self._validator

    # --- planning ---------------------------------------------------------------------

    def plan(
        self, con: duckdb.DuckDBPyConnection, files: list[LandingFile]
    ) -> tuple[list[list[LandingFile]], int]:
        """Units of work (files loaded in one transaction each) and the count left as is."""
        rows = con.execute(
            "select path, sha256, status, source, partition_date from ops.load_manifest"
        ).fetchall()
        manifest = {path: (sha, status) for path, sha, status, _, _ in rows}
        for _, _, status, source, partition in rows:
            if status == "loaded" and partition > self.loaded_through.get(source, date.min):
                self.loaded_through[source] = partition
        by_path = {f.path: f for f in files}
        due = [f for f in files if f.partition_date <= self.as_of]
        new, changed = [], []
        for f in due:
            known = manifest.get(f.path)
            if f.error and known is not None and known[1] == "loaded":
                # Changed since it was loaded (or it would not have been opened), but its
                # new content cannot be read: replacing would only delete its good rows.
                self.unreadable_loaded.append(f)
            elif known is None or known[1] == "failed":
                new.append(f)
            elif known[0] != f.sha256 or (
                self.reload_since is not None and f.partition_date >= self.reload_since
            ):
                changed.append(f)
        skipped = len(due) - len(new) - len(changed)
        gone = [r for r in rows if r[2] == "loaded" and r[0] not in by_path]
        self._warn_redelivered(new, gone)
        if self.reload_since is not None and self.reload_since > self.as_of:
            # Files are read up to the as-of date: such a reload reads nothing again, which
            # the night's summary only said as "(N already loaded)".
            self.batch_warnings.append(
                f"--reload-since {self.reload_since} is after the as-of date {self.as_of}: "
                "no file loaded before was read again (give --as-of the last day to reload)"
            )
        if self.reload_since is not None:
            self._warn_not_reloaded(
                sorted(p for p, _, _, _, d in gone if self.reload_since <= d <= self.as_of)
            )
        # Files whose checksum came from the manifest are looked at for a bare CR now.
        new = [cr_looked_at(f) for f in new]
        changed = [cr_looked_at(f) for f in changed]
        units = [[f] for f in new]
        if changed:
            # Files holding a duplicate of a record of a changed file are reloaded with it.
            group = {f.path: f for f in changed}
            for f in changed:
                for (path,) in self._dependents(con, f).fetchall():
                    if (
                        path in by_path
                        and path not in group
                        and manifest.get(path, ("", ""))[1] == "loaded"
                    ):
                        group[path] = cr_looked_at(by_path[path])
            units.insert(0, sorted(group.values(), key=lambda x: x.order_key))
            self.replacing = True
            self.reloaded = set(group)
        return units, skipped

    def forget_gone_failures(
        self, con: duckdb.DuckDBPyConnection, files: list[LandingFile], unlisted: Sequence[str]
    ) -> None:
        """Drop the manifest rows of files that failed to load and are gone from the landing
        zone (a truncated upload deleted, the day re-delivered under another name). A failed
        file loaded nothing, so there is nothing of it to keep, and its row would fail the
        quality gate ("unreadable file(s)") on every night to come, naming a file nobody can
        fix. Not while a folder could not be listed: its files may only look gone."""
        if unlisted:
            return
        listed = {f.path for f in files}
        gone = [
            path
            for (path,) in con.execute(
                "select path from ops.load_manifest where status = 'failed' order by path"
            ).fetchall()
            if path not in listed
        ]
        if not gone:
            return
        with transaction(con):
            con.executemany("delete from ops.load_manifest where path = ?", [[p] for p in gone])
        shown = ", ".join(gone[:5]) + (" ..." if len(gone) > 5 else "")
        self.batch_warnings.append(
            f"{len(gone)} file(s) that failed to load on an earlier run are gone from the "
            f"landing zone ({shown}): they loaded no rows, so they are dropped from "
            "ops.load_manifest and the quality gate no longer waits for them"
        )

    def _warn_unmatched(self, source: str, unmatched: dict[str, list[str]]) -> None:
        """Say which files have no column for a field given aliases (their records load
        without it, or with its default), one warning per field, naming a few files."""
        for named, paths in sorted(unmatched.items()):
            # A field the settings give a default (updated_at, crm_updated_at_from_partition)
            # is not missing from such a record: it takes the default.
            loads = {
                "updated_at": "is as of the start of its partition day "
                "([ingest] crm_updated_at_from_partition)",
                "event_id": "takes the MD5 of its text as its id ([ingest] event_id_from_record)",
            }.get(named.split(" ", 1)[0], "loads without it")
            self.batch_warnings.append(
                f"{len(paths)} {source} file(s) have no column for {named}: each of their "
                f"records {loads} ({_some(paths)}); does the export name it "
                "otherwise now? ([ingest] field_aliases)"
            )

    def dotted_ids(self) -> dict[str, frozenset[str]]:
        """Per source, the id fields read through a dotted alias (``context.traits.user_id``)."""
        out = {}
        for source, fields in FIELDS.items():
            names = field_names(source, self.aliases)
            out[source] = frozenset(
                f.name for f in fields if f.kind == "id" and any("." in n for n in names[f.name])
            )
        return out

    def warn_names(self) -> None:
        """Say which CSV/Parquet files have no column for a field given aliases
        (``unmatched``), which aliases cross a JSON array in which files (``arrays``: such an
        alias reads nothing from those records; GA4's event_params.ga_session_id left every
        session id null, and nothing said so), and which files hold a key differing from an
        optional field's names in case only (``variants``). Once a run, not once a batch: a
        backfill reads many batches, and each repeated the no-column warning."""
        for source, unmatched in sorted(self.unmatched.items()):
            self._warn_unmatched(source, unmatched)
        for source, arrays in sorted(self.arrays.items()):
            self._warn_arrays(source, arrays)
        for (source, name), files in sorted(self.variants.items()):
            looked = ", ".join(map(repr, field_names(source, self.aliases)[name]))
            held = ", ".join(repr(k) for k in sorted(set().union(*files.values())))
            self.batch_warnings.append(
                f"{len(files)} {source} file(s) hold no value of {name} under any of its names "
                f"(looked for {looked}), and their records hold {held}, which differs from one "
                f"of them in case only ({_some(sorted(files))}): each of their records loads "
                "without it; JSON keys are read case-sensitively: does the export name it "
                "otherwise now? ([ingest] field_aliases)"
            )
        for (source, name), files in sorted(self.spelt_alike.items()):
            keys = sorted(set().union(*files.values()))
            given = [n for n in field_names(source, self.aliases)[name] if n != name]
            setting = ", ".join(_toml_str(n) for n in [*given, *keys])
            outcome = (
                "quarantined for no identity"
                if name in ("customer_id", "anonymous_id")
                else f"quarantined as a purchase or refund without {name}"
                if name in ("order_id", "revenue")
                else f"quarantined as missing {name}"
            )
            self.batch_warnings.append(
                f"{len(files)} {source} file(s) hold records without {name} whose keys are "
                f"spelt like it but for case or punctuation: "
                f"{', '.join(map(repr, keys))} ({_some(sorted(files))}); JSON keys are read "
                f"as written, so those records are {outcome}. If the key is {name}, name it "
                f"in [ingest.field_aliases.{source}]: {name} = [{setting}]"
            )

    def _warn_arrays(self, source: str, arrays: dict[str, int]) -> None:
        names = field_names(source, self.aliases)
        parents = array_parents([n for f in FIELDS[source] for n in names[f.name]])
        # A text field's dotted name holding an object or a list (parse_sql): one warning an
        # alias, naming its files.
        for k, alias in enumerate(container_names(source, names)):
            bit = len(parents) + k
            paths = sorted(p for p, mask in arrays.items() if bit < 63 and mask & (1 << bit))
            if not paths:
                continue
            field = next(f for f, ns in names.items() if alias in ns)
            self.batch_warnings.append(
                f"{len(paths)} {source} file(s) hold a JSON object or list at the alias "
                f"{alias!r} of {field}, a text field: it reads no value from those records "
                f"({_some(paths)}); name the path of the value inside the object, or flatten "
                "the list before landing ([ingest] field_aliases)"
            )
        for f in FIELDS[source]:
            for alias in names[f.name]:
                crossed = [
                    (parent, sorted(p for p, mask in arrays.items() if mask & (1 << k)))
                    for k, parent in enumerate(parents)
                    if alias.startswith(parent + ".")
                ]
                crossed = [(parent, paths) for parent, paths in crossed if paths]
                if not crossed:
                    continue
                # The outermost array is the one to flatten.
                parent, paths = crossed[0]
                self.batch_warnings.append(
                    f"{len(paths)} {source} file(s) hold a JSON array at {parent!r}, which the "
                    f"alias {alias!r} of {f.name} reads as an object: it reads no value from "
                    f"those records ({_some(paths)}); a dotted name is a path into JSON objects, "
                    "never into an array. Flatten the array before landing (a jq recipe: "
                    'docs/data-contract.md, "Public datasets"), or drop the alias '
                    "([ingest] field_aliases)"
                )

    def _warn_dropped(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        absent: dict[str, list[str]],
        unmatched: dict[str, list[str]],
        batch: tuple[str, list[LandingFile]] | None = None,
    ) -> None:
        """Say which CRM files have no column for a field the customers' records loaded
        before hold values of. A CRM record is the customer's whole state, so such a file
        empties the field of every customer in it: an export that stopped sending
        ``country``, or ``email_opt_in`` (every customer of the file then without consent).
        Fields already named (:meth:`_warn_unmatched`) are not named twice. ``batch`` (the
        records table of this batch, :func:`read_records`, and its files) counts the files
        loaded before in the same batch too: a first night or a catch-up reads a full
        snapshot and a later delta without the column together, and warned of nothing."""
        if source != "crm":
            return
        named = {key.split(" ", 1)[0] for key in unmatched}
        # A consent absent is stored as false (no consent): it was sent when one is true.
        kind = {f.name: f.kind for f in FIELDS[source]}
        held = [
            name
            for name in sorted(absent)
            # A field the settings give a default (updated_at, crm_updated_at_from_partition)
            # is not emptied: it takes the default.
            if name not in named
            and name not in self.optional
            and (
                con.execute(
                    f"select 1 from {RAW_TABLE[source]} where {_ident(name)}"
                    + ("" if kind[name] == "bool" else " is not null")
                    + " limit 1"
                ).fetchone()
                or _held_earlier_in_batch(con, batch, name, absent[name], kind[name] == "bool")
            )
        ]
        for name in held:
            paths = absent[name]
            consent = " (without consent)" if name in ("email_opt_in", "ads_opt_in") else ""
            self.batch_warnings.append(
                f"{len(paths)} {source} file(s) have no column for {name}, which the customer "
                f"records loaded before hold: each of their records loads without it, its "
                f"customer's {name} now empty{consent} ({_some(paths)}); did the export drop "
                "or rename it? ([ingest] field_aliases)"
            )

    def _warn_not_reloaded(self, paths: list[str]) -> None:
        """Say which files ``--reload-since`` could not read again: loaded from its partitions
        and gone from the landing zone since. Their rows stay as the earlier settings typed
        them (a vanished file keeps its rows): after true_values was corrected, a pruned
        file's "pending" subscribers kept the consent the old words gave them, in silence."""
        if not paths:
            return
        self.batch_warnings.append(
            f"--reload-since: {len(paths)} file(s) loaded from these partitions are gone from "
            f"the landing zone and were not read again ({_some(paths)}): their rows stay as "
            "the settings of their load typed them (consent words, time zone, aliases); "
            "deliver them again under the same names to reload them"
        )

    def _warn_redelivered(self, new: list[LandingFile], gone: list[tuple]) -> None:
        """Warn about partitions that get new files while files loaded from them are gone
        from the landing zone: a re-delivery under new names. The gone files' rows stay
        (landing zones prune old files, and a vanished file is no reason to delete data), so
        whether a corrected record replaces its old copy depends on how the file names
        sort; the operator should know."""
        arrived = Counter((f.source, f.partition_date) for f in new)
        missing: dict[tuple[str, date], list[str]] = {}
        for path, _, _, source, partition in gone:
            if (source, partition) in arrived:
                missing.setdefault((source, partition), []).append(path)
        for (source, partition), paths in sorted(missing.items()):
            shown = ", ".join(sorted(paths)[:5]) + (" ..." if len(paths) > 5 else "")
            self.batch_warnings.append(
                f"{source}/dt={partition}: {arrived[(source, partition)]} new file(s) arrived "
                f"while {len(paths)} file(s) loaded from this partition are gone from the "
                f"landing zone ({shown}): their rows stay loaded, and of a record in both an "
                "old and a new file the copy of the file first in path order is kept, the "
                "other counted as a duplicate. A re-delivery that corrects records should "
                "keep the old file names (a changed file replaces its rows)"
            )

    def _dependents(self, con: duckdb.DuckDBPyConnection, f: LandingFile):
        keys = self._key_sql(f.source)
        return con.execute(
            f"""
            select distinct d.source_file
            from ops.duplicates d
            where d.source = ? and d.source_file <> ? and d.record_key in (
                select {keys} from {RAW_TABLE[f.source]} where _source_file = ?
            )
            order by 1
            """,
            [f.source, f.path, f.path],
        )

    @staticmethod
    def _key_sql(source: str, alias: str = "") -> str:
        """SQL for a row's deduplication key: the event id, or the CRM record's content hash."""
        p = f"{alias}." if alias else ""
        if source == "events":
            return f"{p}event_id"
        cols = ", ".join(f"{_lit(f.name)}: {p}{f.name}" for f in FIELDS["crm"])
        return f"md5(to_json({{{cols}}}))"

    # --- one batch of one source: stage and validate (outside any transaction) ----------

    @staticmethod
    def _partition_date(files: list[LandingFile], file_col: str = "_file") -> str:
        """SQL: the partition date (DATE) of a row of ``files[file_col]``."""
        return _list([f"DATE '{f.partition_date}'" for f in files]) + f"[{file_col} + 1]"

    def _partition_day(self, files: list[LandingFile]) -> str:
        """SQL: the partition date of a row of ``files[_file]``, as landing text."""
        return f"cast({self._partition_date(files)} AS VARCHAR)"

    def _limit(self, source: str, files: list[LandingFile], file_col: str = "_file") -> str:
        """SQL: the latest acceptable timestamp of a row of ``files[file_col]``: the end of
        its partition day plus the tolerance. With ``[ingest] <source>_time_zone`` the day is
        the shop's local day (a west-coast shop's partition of June 1 runs to 07:00 UTC on
        June 2: its last evening hours were quarantined as "in the future")."""
        micros = int(self.settings.ingest.future_tolerance_hours * 3600 * 1e6)
        end = f"({self._partition_date(files, file_col)} + 1)::TIMESTAMP"
        zone = self.rules[source].time_zone
        if zone:
            end = f"timezone('UTC', timezone({_lit(zone)}, {end}))"
        return f"{end} + to_microseconds({micros})"

    def _create_staged(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        source: str,
        files: list[LandingFile],
        rel: str | list[str],
        line: bool,
    ) -> None:
        """Create the temp ``table``: ``rel`` typed, its row-level expectations as flags.

        ``rel`` may be a list of relations (slices of one table, :func:`_text_slices`),
        typed one statement each into the same table.

        Typing needs no GX; the flags are the suite's SQL, which needs the GX suite objects.
        While GX is still importing (seconds; a nightly increment's batch is staged sooner)
        a small batch is typed first and flagged after, so the import overlaps the parse
        instead of delaying it. Not a large one: its typed table would hold every record's
        text (the flags decide which texts to keep), and its parse outlasts the import anyway.
        Both passes keep the scan's order (line numbers).
        """
        limit_col = import_module(SUITE_MODULES[source]).TS_LIMIT
        rels = [rel] if isinstance(rel, str) else rel
        parsed = [self.parse_sql(source, r, limit_col, files) for r in rels]
        importing = self.gx_import is not None and self.gx_import.is_alive()
        small = sum(_batch_size(f) for f in files) <= TWO_PASS_BYTES
        if self._validator is None and importing and small:
            for k, sql in enumerate(parsed):
                con.execute(_fill(f"{table}_parsed", sql, first=k == 0))
            sql = self._flagged_sql(source, f"{table}_parsed", line)
            con.execute(f"create or replace temp table {table} as {sql}")
            con.execute(f"drop table {table}_parsed")
        else:
            for k, one in enumerate(parsed):
                sql = self._flagged_sql(source, f"({one})", line)
                con.execute(_fill(table, sql, first=k == 0))

    def _flagged_sql(self, source: str, parsed: str, line: bool) -> str:
        """SQL: the typed relation ``parsed`` (``parse_sql``) with the suite's row-level
        expectations evaluated as flags, the columns ``stage`` keeps."""
        validator = self.validator
        checks = validator.prefilter(source)
        levels = validator.levels(source)
        rec = " or ".join(
            f"coalesce({bad}, false)" for r, _, bad in checks if levels[r] == "record"
        )
        warn = " or ".join(
            f"coalesce({bad}, false)" for r, _, bad in checks if levels[r] == "warning"
        )
        dom = " + ".join(
            f"(case when coalesce({d}, false) then {1 << k} else 0 end)"
            for k, d in enumerate(self._domains(source))
        )
        contract = ", ".join(f.name for f in FIELDS[source])
        ignored = self._ignored_sql(source)
        return f"""
            select
                _file,
                {"_line," if line else "_blank,"}
                _error,
                {contract},
                _extra,
                _arrays,
                _rec_bad,
                _warn_bad,
                _ignored,
                case when _ignored then 0 else {dom or "0"} end::INTEGER as _dom,
                case when _error is not null or _rec_bad then raw end as raw,
                case
                    when _checked and (_rec_bad or _warn_bad or hash(doc) % {CHECK_SAMPLE} = 0)
                        then doc
                end as _gxdoc,
            from (
                select
                    *,
                    _checked and ({rec or "false"}) as _rec_bad,
                    _checked and ({warn or "false"}) as _warn_bad,
                from (
                    -- An ignored record (an event type of [ingest] ignored_event_types) is
                    -- neither validated nor kept: it is only counted.
                    select *, _ok and ({ignored}) as _ignored, _ok and not ({ignored}) as _checked
                    from {parsed}
                )
            )
        """

    def _ignored_sql(self, source: str) -> str:
        """SQL over the typed fields: true for a record of an ignored event type."""
        names, star = self.ignored_types
        if source != "events" or not (names or star):
            return "false"
        conditions = [f"event_type in ({', '.join(_lit(n) for n in names)})"] if names else []
        if star:
            allowed = ", ".join(_lit(t) for t in ALLOWED_EVENT_TYPES)
            conditions.append(f"event_type not in ({allowed})")
        return f"coalesce({' or '.join(conditions)}, false)"

    def _domains(self, source: str) -> list[str]:
        """The distinct domains (row conditions) of the suite's row-level expectations."""
        out: list[str] = []
        for _, domain, _ in self.validator.prefilter(source):
            if domain != "true" and domain not in out:
                out.append(domain)
        return out

    def stage(self, con: duckdb.DuckDBPyConnection, files: list[LandingFile]) -> list[FileOutcome]:
        """Read, type and flag the files of one source into the view ``_typed_<source>``.

        ``files`` are in load order; a row's ``_file`` is its file's position in the list,
        so ordering by ``(_file, _line)`` is ordering by ``(partition date, path, line)``.
        """
        source = files[0].source
        tag = source
        outs = [FileOutcome(file=f, tag=tag) for f in files]
        files = [with_compression_named(f) for f in files]
        # A file that could not be read when it was found fails unread (discover).
        failed: dict[int, str] = {i: f.error for i, f in enumerate(files) if f.error}
        parts = []
        jsonl = [i for i, f in enumerate(files) if f.fmt == "jsonl" and i not in failed]
        other = [i for i, f in enumerate(files) if f.fmt != "jsonl" and i not in failed]
        if jsonl or not other:
            # (With no file to read, an empty staging of the same columns.)
            failed.update(self._stage_jsonl(con, files, jsonl, tag))
            parts.append(f"_tjv_{tag}")
        if other:
            unmatched: dict[str, list[str]] = {}
            absent: dict[str, list[str]] = {}
            failed.update(
                read_records(
                    con,
                    files,
                    other,
                    f"_rec_{tag}",
                    self.aliases,
                    self.legacy,
                    unmatched,
                    self.optional,
                    absent,
                )
            )
            for named, paths in unmatched.items():
                self.unmatched.setdefault(source, {}).setdefault(named, []).extend(paths)
            self._warn_dropped(con, source, absent, unmatched, (f"_rec_{tag}", files))
            # A Parquet record's landing text is its document (stored once, raw is NULL).
            rels = [
                f"(select * replace (coalesce(raw, doc) as raw), _error is null as _ok "
                f"from _rec_{tag}{where})"
                for where in _text_slices(con, f"_rec_{tag}")
            ]
            self._create_staged(con, f"_tc_{tag}", source, files, rels, line=True)
            con.execute(f"drop table _rec_{tag}")
            parts.append(f"_tc_{tag}")
        columns = ", ".join([*_STAGED[:3], *(f.name for f in FIELDS[source]), *_STAGED[3:]])
        con.execute(
            f"create or replace temp view _typed_{tag} as "
            + " union all ".join(f"select {columns} from {p}" for p in parts)
        )
        values = ", ".join(
            f"({i}, {_lit(f.path)}, DATE '{f.partition_date}')" for i, f in enumerate(files)
        )
        con.execute(
            f"create or replace temp table _files_{tag} as select * from (values {values}) "
            "t(_file, _f_path, _f_date)"
        )
        for i, error in failed.items():
            outs[i].status, outs[i].error = "failed", error
        # Optional fields given aliases: a JSON file none of whose records holds one of
        # them may name it otherwise (case_variants).
        names = field_names(source, self.aliases)
        optional = [f.name for f in FIELDS[source] if not f.required and len(names[f.name]) > 1]
        counts = "".join(f", count({name})" for name in optional)
        unheld: dict[str, list[int]] = {}
        for i, n, mask, *held in con.execute(
            f"select _file, count(*), bit_or(_arrays){counts} from _typed_{tag} group by 1"
        ).fetchall():
            outs[i].rows_read = n
            if mask:
                self.arrays.setdefault(source, {})[outs[i].file.path] = mask
            for name, k in zip(optional, held, strict=True):
                if not k and files[i].fmt == "jsonl":
                    unheld.setdefault(name, []).append(i)
        if unheld:
            flat = with_flat_names(names)
            found = self._case_variants(con, tag, {n: flat[n] for n in unheld}, unheld)
            for (name, i), keys in found.items():
                self.variants.setdefault((source, name), {}).setdefault(
                    outs[i].file.path, set()
                ).update(keys)
        jsonl_ids = [i for i, f in enumerate(files) if f.fmt == "jsonl" and i not in failed]
        if jsonl_ids:
            for (name, i), keys in self._spelt_alike(con, tag, source, jsonl_ids).items():
                self.spelt_alike.setdefault((source, name), {}).setdefault(
                    outs[i].file.path, set()
                ).update(keys)
        return outs

    def _spelt_alike(
        self, con: duckdb.DuckDBPyConnection, tag: str, source: str, ids: list[int]
    ) -> dict[tuple[str, int], list[str]]:
        """``{(field, file): keys}``: the top-level keys of the records of the JSON files
        ``ids`` that lack a required field (``event_type``), or both identities, or a
        purchase's or refund's ``order_id`` or ``revenue``, spelt like
        one of the field's names but for case and punctuation (``eventType``, ``EventType``,
        ``event-type``, ``customerId``). JSON keys are read as written: every such record
        was quarantined ("missing required field event_type") and nothing named the key,
        where a CSV or Parquet file with such a column fails naming the setting that reads
        it. Only records without the field are looked at (none, in a file that names its
        keys as the contract does), in the first ``CASE_SEARCHED_LINES`` lines of a file."""
        names = field_names(source, self.aliases)
        watched = {
            name: f"{_ident(name)} is null" for name in required_fields(source, self.optional)
        }
        if source == "events":
            both = "customer_id is null and anonymous_id is null"
            watched |= {"customer_id": both, "anonymous_id": both}
            # A purchase or a refund needs both (an orderId key quarantined every order).
            money = "event_type in ('purchase', 'refund')"
            watched |= {
                "order_id": f"order_id is null and {money}",
                "revenue": f"revenue is null and {money}",
            }
        cols = []
        for k, (name, missing) in enumerate(watched.items()):
            # A dotted name too: a flattened export's key is spelt with its dots
            # ("properties.orderId" for properties.order_id), read where it is spelt alike.
            own = list(names[name])
            spelt = _list([_lit(_spelling(n)) for n in own])
            cols.append(
                f"list_sort(list_distinct(flatten(list(list_filter(json_keys(_extra), "
                f"lambda x: list_contains({spelt}, regexp_replace(lower(x), '[^0-9a-z]', '', "
                f"'g')) and not list_contains({_list([_lit(n) for n in own])}, x))) "
                f"filter (where {missing})))) as f{k}"
            )
        rows = con.execute(
            f"""
            select _file, {", ".join(cols)}
            from _typed_{tag}
            where _file in {_list([str(i) for i in ids])} and _line <= {CASE_SEARCHED_LINES}
                and _extra is not null and ({" or ".join(watched.values())})
            group by 1
            """
        ).fetchall()
        return {
            (name, row[0]): row[k + 1]
            for row in rows
            for k, name in enumerate(watched)
            if row[k + 1]
        }

    @staticmethod
    def _case_variants(
        con: duckdb.DuckDBPyConnection,
        tag: str,
        names: dict[str, list[str]],
        unheld: dict[str, list[int]],
    ) -> dict[tuple[str, int], list[str]]:
        """``{(field, file): keys}``: the keys the records of the files ``unheld[field]``
        hold where one of the field's ``names`` would be, differing from it in case only
        (``properties.Revenue`` for ``properties.revenue``). JSON keys are read
        case-sensitively: such a key is never read. The kept keys (``_extra``: a dotted
        name's parent is kept whole) are searched once for all the names, in any case; only
        a record holding one in another case than its own is parsed again. Only the first
        ``CASE_SEARCHED_LINES`` lines of a file: an export names its keys alike throughout,
        and the search of a whole file cost 5% of its ingest (1.6 of 30.7 CPU-s on 1M GA4
        records with the example's aliases, six of whose fields a day without purchases or
        signed-in users never holds)."""
        special = set("\\.^$|?*+()[]{}")

        def split(name: str) -> tuple[str, str]:
            """The parent path and the key of a landing name (a ``FLAT`` one's is its whole
            spelling, at the top: ``context.Device.Type`` for ``context.device.type``)."""
            if name.startswith(FLAT):
                return "", name[1:]
            parent, _, leaf = name.rpartition(".")
            return parent, leaf

        leaves = sorted({split(n)[1] for ns in names.values() for n in ns})
        quoted = [json.dumps(leaf, ensure_ascii=False)[1:-1] for leaf in leaves]
        pattern = (
            '"((?i:'
            + "|".join("".join("\\" + c if c in special else c for c in q) for q in quoted)
            + '))"\\s*:'
        )
        hint = (
            f"len(list_filter(regexp_extract_all(_extra, {_lit(pattern)}, 1), "
            f"lambda x: not list_contains({_list([_lit(q) for q in quoted])}, x))) > 0"
        )
        cols = []
        for k, field_ in enumerate(names):
            found = []
            for name in names[field_]:
                parent, leaf = split(name)
                keys = (
                    f"json_keys(_extra, {_lit(_pointer(parent))})"
                    if parent
                    else "json_keys(_extra)"
                )
                prefix = _lit(parent + ".") if parent else "''"
                found.append(
                    f"coalesce(list_transform(list_filter({keys}, lambda x: lower(x) = "
                    f"{_lit(leaf.lower())} and x <> {_lit(leaf)}), lambda x: {prefix} || x), [])"
                )
            cols.append(
                f"list_sort(list_distinct(flatten(list(flatten([{', '.join(found)}]))))) as f{k}"
            )
        ids = sorted({i for files in unheld.values() for i in files})
        rows = con.execute(
            f"""
            select _file, {", ".join(cols)}
            from _typed_{tag}
            where _file in {_list([str(i) for i in ids])} and _line <= {CASE_SEARCHED_LINES}
                and _extra is not null and {hint}
            group by 1
            """
        ).fetchall()
        return {
            (field_, i): row[k + 1]
            for row in rows
            for k, field_ in enumerate(names)
            if (i := row[0]) in unheld[field_] and row[k + 1]
        }

    def _stage_jsonl(
        self, con: duckdb.DuckDBPyConnection, files: list[LandingFile], ids: list[int], tag: str
    ) -> dict[int, str]:
        """Stage the JSONL files ``files[i]``, ``i`` in ``ids``, with one scan of them all."""
        source = files[0].source
        failed: dict[int, str] = {}
        # Files read from a copy whose bare carriage returns are BARE_CR_MARK: those whose
        # checksum saw one (two whole records parted by a CR leave no malformed line), and
        # those a cut line is seen in below.
        bare_cr = bare_cr_files(files, sorted(i for i in ids if files[i].bare_cr), self.legacy)
        # A gzip file's checksum reads its compressed bytes: the scan looks for such a CR in
        # it (DuckDB's strict mode fails on a line end other than the file's first one), and
        # when it fails Python looks at each gzip file of the batch, then the batch is read
        # again, leniently. Either way a gzip file needs no look for a cut line below.
        gz = {i for i in ids if i not in bare_cr and gzip_named(files[i])}
        strict = bool(gz)
        cut_checked = False
        # A vector of 2,048 lines of tens of KB holds more text than the typing's JSON
        # functions can copy within the memory limit: such files are scanned into a table of
        # lines first and typed in slices of it (_text_slices), as CSV and Parquet records.
        sliced = {i for i in ids if _long_lines(files[i])}
        # Line numbers are row positions: the table must keep the scan's order.
        with scan_order(con):
            while True:
                readable = [i for i in ids if i not in failed]
                straight = [i for i in readable if i not in sliced]
                long = [i for i in readable if i in sliced]
                try:
                    rels = []
                    if straight or not long:
                        # (With no file to read, an empty staging of the same columns.)
                        scan = (
                            jsonl_scan_sql(
                                [str(files[i].abspath) for i in straight],
                                strict and any(i in gz for i in straight),
                            )
                            if straight
                            else "select 0 as file_index, null::VARCHAR as line where false"
                        )
                        rels.append(
                            _jsonl_sql(f"({scan})", _list([str(i) for i in straight]), bare_cr)
                        )
                    if long:
                        scan = jsonl_scan_sql(
                            [str(files[i].abspath) for i in long],
                            strict and any(i in gz for i in long),
                        )
                        con.execute(
                            f"create or replace temp table _jl_{tag} as "
                            f"select file_index, line as doc from ({scan})"
                        )
                        rels.extend(
                            _jsonl_sql(
                                f"(select file_index, doc as line from _jl_{tag}{where})",
                                _list([str(i) for i in long]),
                                bare_cr,
                            )
                            for where in _text_slices(con, f"_jl_{tag}")
                        )
                    self._create_staged(con, f"_tj_{tag}", source, files, rels, line=False)
                    if not cut_checked:
                        cut_checked = True
                        # A line cut at a bare CR: its second piece is no JSON object.
                        # (Each file is read once more: bare_cr_files.)
                        cut = con.execute(
                            f"select distinct _file from _tj_{tag} where _error = "
                            f"{_lit(_NOT_JSON)} and left(ltrim(raw, ' ' || chr(9)), 1) <> '{{'"
                            # A line holding a line feed began after a CR before CRLF;
                            # an empty line may be a CRLF line end read as two (files.
                            # _CR_BEFORE_LF).
                            " or _error is not null and contains(raw, chr(10))"
                            " or _blank"
                        ).fetchall()
                        # (Not a gzip file read from a UTF-8 copy of UTF-16 text.)
                        looked = {i for i in gz if gzip_named(files[i])}
                        # (And a UTF-8 copy of UTF-16 text holding a bare CR, whose
                        # checksum could not see it: files.readable_copy.)
                        cut_files = sorted(
                            {r[0] for r in cut}.union(i for i in readable if files[i].bare_cr)
                            - bare_cr
                            - looked
                        )
                        more = bare_cr_files(files, cut_files, self.legacy)
                        if more:
                            bare_cr = bare_cr | more
                            continue
                    break
                except duckdb.OutOfMemoryException:
                    # Long lines the sample of a file's head did not show: all in slices.
                    if not straight:
                        raise
                    log.info(
                        "ingest: out of memory typing %d JSON lines file(s): typing them in slices",
                        len(straight),
                    )
                    sliced.update(straight)
                except duckdb.Error:
                    if strict:
                        # A gzip file with a line end other than its first one (or an
                        # unreadable file, found below when the lenient read fails too).
                        strict = False
                        more = bare_cr_files(files, sorted(gz & set(readable)), self.legacy)
                        bare_cr = bare_cr | more
                        continue
                    # Find the unreadable file(s), then stage the others. A file that is only
                    # not UTF-8 comes back readable, as a copy (files[i] replaced): try again.
                    paths = [files[i].abspath for i in readable]
                    bad = unreadable(con, files, readable, self.legacy)
                    if not bad and paths == [files[i].abspath for i in readable]:
                        raise
                    failed.update(bad)
                    sliced.update(i for i in readable if _long_lines(files[i]))
                finally:
                    con.execute(f"drop table if exists _jl_{tag}")
        spans = con.execute(
            f"""
            select
                _file,
                min(rowid),
                max(rowid),
                count(*),
                count(*) filter (where not _blank and _error is null),
                count(*) filter (where not _blank),
            from _tj_{tag}
            group by 1
            """
        ).fetchall()
        check_line_order([i for i, lo, hi, n, *_ in spans if hi - lo + 1 != n], files)
        # A file none of whose lines is a JSON object may be one JSON document over its lines
        # (an array, or pretty-printed objects): it fails, saying how to convert it, rather
        # than quarantining its fragments.
        documents = json_documents(con, files, {i: n for i, *_, ok, n in spans if n and not ok})
        if documents:
            con.execute(f"delete from _tj_{tag} where _file in {_list(list(map(str, documents)))}")
            failed.update(documents)
        first = [0] * len(files)
        for i, lo, *_ in spans:
            first[i] = lo
        con.execute(
            f"""
            create or replace temp view _tjv_{tag} as
            select
                * exclude (_blank),
                rowid - {_list([str(x) for x in first])}[_file + 1] + 1 as _line,
            from _tj_{tag}
            where not _blank
            """
        )
        return failed

    def validate(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        """One GX validation over the flagged and sampled rows of every file of ``outs``.

        GX's cost is mostly a fixed overhead per validation plus a cost per row, so it runs
        once per batch, on the rows the SQL flags and a sample of the others; ``_file``
        (position in ``outs``) and ``_line`` route each failing row.
        """
        source, tag = outs[0].file.source, outs[0].tag
        # Rows GX quarantined although the SQL passed them (see below): their text for the
        # quarantine, which the staged row keeps only for the rows the SQL flagged.
        con.execute(
            f"create or replace temp table _gxraw_{tag} (_file INTEGER, _line BIGINT, raw VARCHAR)"
        )
        if not any(o.status == "loaded" for o in outs):
            self._store_results(con, outs, [], None)
            return
        validator = self.validator
        files = [o.file for o in outs]
        checks = validator.prefilter(source)
        domains = self._domains(source)
        counts = [
            "count(*) filter (where _error is null and not _ignored) as _all",
            *(f"count(*) filter (where _dom & {1 << k} <> 0) as d{k}" for k in range(len(domains))),
        ]
        per_file = con.execute(f"select _file, {', '.join(counts)} from _typed_{tag} group by 1")
        domain = per_file.df().set_index("_file")
        for rule, dom, _ in checks:
            domain[rule] = domain["_all"] if dom == "true" else domain[f"d{domains.index(dom)}"]
        limit_col = validator.ts_limit_column(source)
        # The GX rows (about 1%) are gathered first: parsed straight from the filtered scan
        # they would come in vectors of a dozen rows, and the parse's fixed cost per vector
        # made this step 30 times slower.
        con.execute(
            "create or replace temp table _gxrows as select _file, _line, _gxdoc as doc, "
            f"true as _ok from _typed_{tag} where _gxdoc is not null"
        )
        flags = ", ".join(f'coalesce({bad}, false) as "_sql_{rule}"' for rule, _, bad in checks)
        # In slices where the records are long (every one of a file of 50 KB records may be
        # flagged for a warning): SLICE_TEXT_BYTES.
        for k, where in enumerate(_text_slices(con, "_gxrows")):
            parsed = self.parse_sql(source, f"(select * from _gxrows{where})", limit_col, files)
            con.execute(_fill("_batch", f"select *, {flags} from ({parsed})", first=k == 0))
        con.execute("drop table _gxrows")
        available = [r[0] for r in con.execute("describe _batch").fetchall()]
        cols = [c for c in validator.columns(source, available) if c != "_file"]
        select = ", ".join(f"{c}::DOUBLE as {c}" if c in ("revenue", "price") else c for c in cols)
        frame = con.execute(
            f"select _file::INTEGER as _file, {select} from _batch order by _file, _line"
        ).df()
        loaded = [o for o in outs if o.status == "loaded"]
        first, last = loaded[0].file.path, loaded[-1].file.path
        name = f"{first}..{last}" if len(loaded) > 1 else first
        results = validator.validate(source, frame, run_name=name)
        # GX decides, but only the rows the SQL flagged were sure to reach it: a failure on a
        # row the SQL passed for that expectation means the translation is out of step. GX's
        # verdict still applies to the rows it saw (a record-level failure is quarantined
        # with the document GX read as its raw text, which the staged row did not keep); the
        # rows outside GX's sample with the same problem went unchecked, hence the warning.
        missed = []
        levels = validator.levels(source)
        # Rows the SQL flagged for a record-level rule kept their raw text.
        flagged = " or ".join(
            [f'"_sql_{rule}"' for rule, _, _ in checks if levels[rule] == "record"] or ["false"]
        )
        for r in results:
            if r.failing is None or not len(r.failing):
                continue
            con.register("_gx_failing", r.failing[["_file", "_line"]])
            missing = f"""
                select b.* from _gx_failing f
                join _batch b on b._file = f._file and b._line = f._line
                where not b."_sql_{r.rule}"
            """
            ((n, first),) = con.execute(
                f"select count(*), min((_file, _line)) from ({missing})"
            ).fetchall()
            if n and r.level == "record":
                con.execute(
                    f"insert into _gxraw_{tag} select _file, _line, doc from ({missing}) "
                    f"anti join _gxraw_{tag} using (_file, _line) where not ({flagged})"
                )
            con.unregister("_gx_failing")
            if n:
                i, line = first
                missed.append(
                    f"GX rule {r.rule} failed {n} row(s) the SQL pre-filter passed (e.g. "
                    f"{files[i].path} line {line}); GX's verdict applies "
                    "to them, but rows outside GX's sample with the same problem were not "
                    "checked: the pre-filter of segmint.validation.unexpected_sql is out of "
                    "step with the suite"
                )
        self.prefilter_misses.extend(missed)
        for r in results:
            if r.text_column and r.failing is not None and len(r.failing):
                import pandas as pd

                text = frame.set_index(["_file", "_line"])[r.text_column]
                keys = pd.MultiIndex.from_frame(r.failing[["_file", "_line"]])
                r.failing["value"] = text.reindex(keys).astype("string").to_numpy()
        del frame
        con.execute("drop table _batch")
        self._store_results(con, outs, results, domain)
        self._check_extreme_revenue(con, outs)
        self._check_revenue_scale(con, outs)

    def _check_extreme_revenue(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]):
        """Batch-level warning: purchases whose revenue is far above the batch's typical order.

        Set-based over every staged purchase (GX sees only a sample of the rows): the bar is
        ``extreme_revenue_multiple`` x the ``extreme_revenue_quantile`` of the batch's order
        values **in the same currency** (a shop selling in JPY and USD has orders 100x apart
        that are both ordinary). A currency with fewer than ``extreme_revenue_min_orders``
        orders in the batch is not judged. Adds a ``revenue_not_extreme`` row per file with
        judged purchases to the batch's validation results and names the first offenders in
        the stage's warnings; nothing is quarantined or nulled, and the gate does not look at
        it.
        """
        cfg = self.settings.ingest
        source, tag = outs[0].file.source, outs[0].tag
        if source != "events" or cfg.extreme_revenue_multiple <= 0:
            return
        purchases = (
            f"(select _file, _line, revenue::DOUBLE as revenue, coalesce(currency, '') as cur "
            f"from _typed_{tag} "
            "where _error is null and not _ignored and not _rec_bad "
            "and event_type = 'purchase' and revenue is not null)"
        )
        stats = con.execute(
            f"select cur, count(*), quantile_disc(revenue, ?), median(revenue) from {purchases} "
            "group by cur order by cur",
            [cfg.extreme_revenue_quantile],
        ).fetchall()
        judged = {
            cur: {
                "orders": n,
                "quantile_value": typical,
                "median": median,
                "limit": typical * cfg.extreme_revenue_multiple,
            }
            for cur, n, typical, median in stats
            if n >= cfg.extreme_revenue_min_orders and typical
        }
        if not judged:
            return
        bars = ", ".join(
            f"({_lit(c)}, {v['limit']!r}::DOUBLE, {v['median']!r}::DOUBLE)"
            for c, v in judged.items()
        )
        over = (
            f"(select p.*, b.bar, b.med from {purchases} p "
            f"join (values {bars}) b(cur, bar, med) using (cur))"
        )
        description = (
            f"purchase revenue at most {cfg.extreme_revenue_multiple:g} x the "
            f"{cfg.extreme_revenue_quantile:g} quantile of the batch's order values in its currency"
        )
        kwargs = json.dumps(
            {
                "multiple": cfg.extreme_revenue_multiple,
                "quantile": cfg.extreme_revenue_quantile,
                "min_orders": cfg.extreme_revenue_min_orders,
            }
        )
        con.execute(
            f"""
            insert into _runs_{tag}
            select _file, 'revenue_not_extreme', 'segmint_batch_revenue_not_extreme',
                'revenue', 'warning', ?, count(*) filter (where revenue > bar) = 0, count(*),
                count(*) filter (where revenue > bar),
                100.0 * count(*) filter (where revenue > bar) / count(*), ?, ?
            from {over}
            group by _file
            """,
            [description, json.dumps({"currencies": judged}), kwargs],
        )
        flagged = con.execute(
            f"select _file, _line, revenue, cur, med, count(*) over () from {over} "
            "where revenue > bar order by revenue / bar desc, _file, _line limit ?",
            [_EXTREME_SHOWN],
        ).fetchall()
        if not flagged:
            return
        named = "; ".join(
            f"{outs[i].file.path} line {line}: {value:,.2f}{f' {cur}' if cur else ''}"
            + (f" ({value / med:,.0f}x the median order)" if med else "")
            for i, line, value, cur, med, _ in flagged
        )
        n = flagged[0][5]
        limits = "; ".join(
            f"{c or 'no currency'}: above {v['limit']:,.2f} = {cfg.extreme_revenue_multiple:g} x "
            f"the {cfg.extreme_revenue_quantile:g} quantile {v['quantile_value']:,.2f} of "
            f"{v['orders']} orders, median {v['median']:,.2f}"
            for c, v in judged.items()
        )
        self.batch_warnings.append(
            f"revenue far above the batch's typical order on {n} purchase(s), loaded as they "
            f"are ({limits}; [ingest] extreme_revenue_multiple): {named}"
            + (f"; and {n - len(flagged)} more" if n > len(flagged) else "")
        )

    def _check_revenue_scale(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]):
        """Batch-level warning: the batch's typical order is ``REVENUE_SCALE_SHIFT`` times
        the typical order loaded before it in the same currency, or that many times smaller.

        A tracker that switched to cents (or to thousands, or to another currency without
        saying so) inflated every order of its days 100x in silence: the extreme-revenue
        check compares a purchase with its own batch only, where every order is in cents.
        Medians of at least ``extreme_revenue_min_orders`` purchases on both sides; loaded as
        they are (the earlier rows may be the wrong ones); ``extreme_revenue_multiple = 0``
        turns it off with the other revenue check. The rows the batch's files loaded before
        are not compared with: the batch replaces them (a reload of the corrected files of
        the days in cents was named as 1/100 of the very rows it replaced).

        "Before" is the latest days before the batch's first partition day that hold
        ``extreme_revenue_min_orders`` purchases, not the whole history: compared with the
        whole history (in the old unit), every night in cents after the switch was named
        again, for as many nights as the history had days. Now a switch is named once, on
        its night, and so is a switch back.
        """
        cfg = self.settings.ingest
        source, tag = outs[0].file.source, outs[0].tag
        if source != "events" or cfg.extreme_revenue_multiple <= 0:
            return
        compared = con.execute(
            f"""
            with batch as (
                select coalesce(currency, '') as cur, count(*) as n,
                    median(revenue::DOUBLE) as med, list(distinct _file) as files
                from _typed_{tag}
                where _error is null and not _ignored and not _rec_bad
                    and event_type = 'purchase' and revenue is not null
                group by 1
                having count(*) >= $min
            ),
            loaded as (
                select coalesce(currency, '') as cur, _partition_date as day,
                    revenue::DOUBLE as revenue
                from {RAW_TABLE[source]}
                where event_type = 'purchase' and revenue is not null
                    and coalesce(currency, '') in (select cur from batch)
                    and not list_contains($paths, _source_file)
                    and _partition_date < $first_day
            ),
            days as (
                select cur, day,
                    sum(count(*)) over (
                        partition by cur order by day desc
                        rows between unbounded preceding and 1 preceding
                    ) as later
                from loaded
                group by cur, day
            ),
            before as (
                select cur, count(*) as n, median(revenue) as med
                from loaded join days using (cur, day)
                where coalesce(later, 0) < $min
                group by 1
                having count(*) >= $min
            )
            select batch.cur, batch.n, batch.med, before.n, before.med, batch.files,
                batch.med >= before.med * $shift or batch.med * $shift <= before.med
            from batch join before using (cur)
            order by batch.cur
            """,
            {
                "min": cfg.extreme_revenue_min_orders,
                "shift": REVENUE_SCALE_SHIFT,
                "paths": [o.file.path for o in outs],
                "first_day": min(o.file.partition_date for o in outs),
            },
        ).fetchall()
        if compared:
            # The record, in ops.validation_runs: one row per file of the batch with
            # purchases in a compared currency; the warning below names a shift once, on the
            # night it happens.
            medians = {
                cur: {"batch_median": med, "orders_before": n_before, "median_before": before}
                for cur, _, med, n_before, before, _, _ in compared
            }
            con.execute(
                f"""
                insert into _runs_{tag}
                select _file, 'revenue_scale_steady', 'segmint_batch_revenue_scale_steady',
                    'revenue', 'warning', ?, count(*) filter (where shifted) = 0, count(*),
                    count(*) filter (where shifted),
                    100.0 * count(*) filter (where shifted) / count(*), ?, ?
                from _typed_{tag}
                join (select unnest(?::VARCHAR[]) as cur, unnest(?::BOOLEAN[]) as shifted)
                    on cur = coalesce(currency, '')
                where _error is null and not _ignored and not _rec_bad
                    and event_type = 'purchase' and revenue is not null
                group by _file
                """,
                [
                    f"the batch's median order within {REVENUE_SCALE_SHIFT:g}x of the median "
                    "of the latest orders loaded before its days, in its currency",
                    json.dumps({"currencies": medians}),
                    json.dumps({"shift": REVENUE_SCALE_SHIFT}),
                    [row[0] for row in compared],
                    [row[6] for row in compared],
                ],
            )
        shifted = [row[:6] for row in compared if row[6]]
        for cur, n, med, n_before, med_before, files in shifted:
            ratio = med / med_before
            times = f"{ratio:,.0f}x" if ratio >= 1 else f"1/{1 / ratio:,.0f}"
            in_cur = f" in {cur}" if cur else " (no currency)"
            paths = sorted(outs[i].file.path for i in files)
            self.batch_warnings.append(
                f"the median order{in_cur} of {len(paths)} file(s) is {med:,.2f} over {n} "
                f"purchase(s), {times} the median of the {n_before} loaded before "
                f"({med_before:,.2f}): did the export switch to cents, to another unit or to "
                f"another currency? Loaded as they are ({_some(paths)}); fix the export or "
                "the settings, then segmint ingest --reload-since the first wrong day"
            )

    def _store_results(self, con, outs: list[FileOutcome], results, domain) -> None:
        """Temp tables ``_runs_<tag>`` (validation rows per file), ``_fails_<tag>`` (failing
        rows and reasons) and ``_warn_<tag>`` (which fields a warning nulls, per row)."""
        import pandas as pd

        tag = outs[0].tag
        parsed = {
            i: (total, errors)
            for i, total, errors in con.execute(
                f"select _file, count(*), count(_error) from _typed_{tag} group by 1"
            ).fetchall()
        }
        per_rule = {}
        for r in results:
            if r.failing is not None and len(r.failing):
                per_rule[r.rule] = r.failing["_file"].value_counts().to_dict()
            else:
                per_rule[r.rule] = {}
        rows = []
        for i, out in enumerate(outs):
            if out.status != "loaded":
                continue
            f = out.file
            total, parse_errors = parsed.get(i, (0, 0))
            rows.append(
                {
                    "_file": i,
                    "rule": "well_formed",
                    "expectation_type": "segmint_record_parser",
                    "column_name": None,
                    "level": "record",
                    "description": "the record is well-formed "
                    + ("JSON" if f.fmt == "jsonl" else f.fmt.upper()),
                    "success": parse_errors == 0,
                    "element_count": total,
                    "unexpected_count": parse_errors,
                    "unexpected_percent": 100.0 * parse_errors / total if total else 0.0,
                    "observed_value": None,
                    "kwargs": "{}",
                }
            )
            for r in results:
                elements = int(domain.at[i, r.rule]) if i in domain.index else 0
                unexpected = int(per_rule[r.rule].get(i, 0))
                share = unexpected / elements if elements else 0.0
                rows.append(
                    {
                        "_file": i,
                        "rule": r.rule,
                        "expectation_type": r.expectation_type,
                        "column_name": r.column,
                        "level": r.level,
                        "description": r.description,
                        "success": share <= 1.0 - r.mostly + 1e-12,
                        "element_count": elements,
                        "unexpected_count": unexpected,
                        "unexpected_percent": 100.0 * share,
                        "observed_value": r.observed_value,
                        "kwargs": r.kwargs,
                    }
                )
        failing = []
        for r in results:
            if r.failing is not None and len(r.failing) and r.level in ("record", "warning"):
                part = r.failing.copy()
                part["rule_order"] = r.order
                part["level"] = r.level
                part["field"] = r.field
                detail = (" (got " + part["value"].str.replace("\n", " ") + ")").fillna("")
                part["reason"] = r.description + detail
                part["description"] = r.description
                failing.append(
                    part[
                        ["_file", "_line", "rule_order", "level", "field", "reason", "description"]
                    ]
                )
        runs = pd.DataFrame(
            rows,
            columns=[
                "_file",
                "rule",
                "expectation_type",
                "column_name",
                "level",
                "description",
                "success",
                "element_count",
                "unexpected_count",
                "unexpected_percent",
                "observed_value",
                "kwargs",
            ],
        )
        con.register("_runs_df", runs)
        con.execute(
            f"create or replace temp table _runs_{tag} as select _file::INTEGER as _file, "
            "rule::VARCHAR as rule, expectation_type::VARCHAR as expectation_type, "
            "column_name::VARCHAR as column_name, level::VARCHAR as level, "
            "description::VARCHAR as description, success::BOOLEAN as success, "
            "element_count::BIGINT as element_count, unexpected_count::BIGINT as "
            "unexpected_count, unexpected_percent::DOUBLE as unexpected_percent, "
            "observed_value::VARCHAR as observed_value, kwargs::VARCHAR as kwargs from _runs_df"
        )
        con.unregister("_runs_df")
        fails = (
            pd.concat(failing, ignore_index=True)
            if failing
            else pd.DataFrame(
                {
                    "_file": pd.Series([], dtype="int64"),
                    "_line": pd.Series([], dtype="int64"),
                    "rule_order": pd.Series([], dtype="int64"),
                    "level": pd.Series([], dtype="string"),
                    "field": pd.Series([], dtype="string"),
                    "reason": pd.Series([], dtype="string"),
                    "description": pd.Series([], dtype="string"),
                }
            )
        )
        fails["field"] = fails["field"].astype("string")
        con.register("_fails_df", fails)
        con.execute(
            f"create or replace temp table _fails_{tag} as "
            "select _file::INTEGER as _file, _line::BIGINT as _line,"
            " rule_order::BIGINT as rule_order, level::VARCHAR as level,"
            " field::VARCHAR as field, reason::VARCHAR as reason,"
            " description::VARCHAR as description from _fails_df"
        )
        con.unregister("_fails_df")
        # Warnings: the offending optional fields are nulled when the rows are written.
        warned = [
            r[0]
            for r in con.execute(
                f"select distinct field from _fails_{tag} where level = 'warning' order by 1"
            ).fetchall()
        ]
        nulls = "".join(f', bool_or(field = {_lit(f)}) as "_null_{f}"' for f in warned)
        con.execute(
            f"create or replace temp table _warn_{tag} as select _file, _line{nulls} "
            f"from _fails_{tag} where level = 'warning' group by all"
        )
        self._warned_fields[tag] = warned

    # --- one batch of one source: write (inside the unit's transaction) -----------------

    def delete_files(self, con: duckdb.DuckDBPyConnection, source: str, paths: list[str]) -> None:
        con.execute(
            f"delete from {RAW_TABLE[source]} where list_contains(?, _source_file)", [paths]
        )
        for table in ("ops.quarantine", "ops.duplicates", "ops.validation_runs"):
            con.execute(f"delete from {table} where list_contains(?, source_file)", [paths])

    def write(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        paths = [o.file.path for o in outs]
        source = outs[0].file.source
        known = {
            path: (first, status)
            for path, first, status in con.execute(
                "select path, first_loaded_at, status from ops.load_manifest "
                "where list_contains(?, path)",
                [paths],
            ).fetchall()
        }
        con.execute("delete from ops.load_manifest where list_contains(?, path)", [paths])
        replaced = [p for p in paths if known.get(p, (None, None))[1] == "loaded"]
        if replaced:
            # Only a file loaded before has rows to replace (scanning raw.* costs).
            self.delete_files(con, source, replaced)
        if any(o.status == "loaded" for o in outs):
            self._write_rows(con, outs)
        rows = []
        for o in outs:
            f = o.file
            first = known.get(f.path, (None, None))[0]
            rows.append(
                [
                    f.path,
                    f.size_bytes,
                    f.sha256,
                    f.source,
                    f.partition_date,
                    o.rows_read,
                    o.rows_loaded,
                    o.rows_quarantined,
                    o.rows_duplicate,
                    o.rows_warned,
                    o.rows_erased,
                    o.rows_ignored,
                    o.status,
                    o.error,
                    first if o.status == "failed" else (first or self.now),
                    self.now,
                    f.mtime_ns or None,
                ]
            )
        con.executemany(
            """
            insert into ops.load_manifest (
                path, size_bytes, sha256, source, partition_date, rows_read, rows_loaded,
                rows_quarantined, rows_duplicate, rows_warned, rows_erased, rows_ignored,
                status, error, first_loaded_at, updated_at, mtime_ns
            ) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            rows,
        )

    def _write_rows(self, con: duckdb.DuckDBPyConnection, outs: list[FileOutcome]) -> None:
        source, tag = outs[0].file.source, outs[0].tag
        files = f"_files_{tag}"
        con.execute(
            f"""
            insert into ops.validation_runs
            select f._f_path, ?, f._f_date, s.sha256, ?, rule, expectation_type, column_name,
                level, description, success, element_count, unexpected_count,
                unexpected_percent, observed_value, kwargs::JSON, ?
            from _runs_{tag} r
            join {files} f using (_file)
            join (select unnest(?) as _file, unnest(?) as sha256) s using (_file)
            """,
            [
                source,
                self.validator.suite_name(source),
                self.now,
                list(range(len(outs))),
                [o.file.sha256 for o in outs],
            ],
        )
        # Erased customers: nothing of theirs is kept, not even in the quarantine.
        erased = self._erased(con, source, tag)
        # Quarantine: unparseable records and records failing a record-level expectation.
        con.execute(
            f"""
            create or replace temp table _bad_{tag} as
            select * from (
                select _file, _line, list(reason order by rule_order, reason) as reasons
                from _fails_{tag}
                where level = 'record'
                group by _file, _line
                union all
                select _file, _line, [_error] from _typed_{tag} where _error is not null
            )
            anti join {erased} using (_file, _line)
            """
        )
        # The raw text: kept by the staged row when the SQL flagged it, else the document GX
        # read (a row GX quarantined although the SQL passed it: see validate).
        # A CRM record keeps the customer_id read from it: unsure of the customer's consent
        # while it is quarantined, the audiences hold them out (segmint.audiences.consent).
        if source == "crm":
            raws = (
                f"(select _file, _line, raw, customer_id from _typed_{tag} "
                f"where raw is not null union all select g._file, g._line, g.raw, t.customer_id "
                f"from _gxraw_{tag} g left join _typed_{tag} t using (_file, _line))"
            )
        else:
            raws = (
                f"(select _file, _line, raw, null::VARCHAR as customer_id from _typed_{tag} "
                f"where raw is not null union all select _file, _line, raw, null "
                f"from _gxraw_{tag})"
            )
        con.execute(
            f"""
            insert into ops.quarantine (source_file, line_number, source, partition_date,
                raw_record, reasons, quarantined_at, customer_id)
            select f._f_path, b._line, ?, f._f_date, t.raw, b.reasons, ?, t.customer_id
            from _bad_{tag} b
            join {raws} t using (_file, _line)
            join {files} f using (_file)
            """,
            [source, self.now],
        )
        lost = con.execute(
            f"select count(*) from _bad_{tag} b anti join {raws} using (_file, _line)"
        ).fetchone()[0]
        if lost:
            raise RuntimeError(
                f"{lost} quarantined record(s) have no raw text (a GX record-level failure the "
                "SQL pre-filter did not flag); the pre-filter is out of step with the suite"
            )
        # Good records, with the fields a warning nulled.
        nulled = set(self._warned_fields.get(tag, []))
        clean = ", ".join(
            f'case when w."_null_{c}" then null else t.{c} end as {c}' if c in nulled else f"t.{c}"
            for c in (fl.name for fl in FIELDS[source])
        )
        con.execute(
            f"""
            create or replace temp view _clean_{tag} as
            select t._file, t._line, {clean}, t._extra
            from _typed_{tag} t
            anti join _bad_{tag} using (_file, _line)
            anti join {erased} using (_file, _line)
            left join _warn_{tag} w using (_file, _line)
            where t._error is null and not t._ignored
            """
        )
        # Deduplication on a narrow (file, line, key) table. Only keys seen more than once in
        # the batch or loaded already need the first-copy-wins ordering.
        key = self._key_sql(source)
        table = RAW_TABLE[source]
        existing_key = self._key_sql(source, "e")
        # The loaded rows that may share a key with this batch's rows: every row for events
        # (the key is a column), only the customers of this batch for CRM (the key is a hash
        # of the whole record, so the same record has the same customer_id).
        existing = (
            table
            if source == "events"
            else f"(select * from {table} where customer_id in "
            f"(select customer_id from _clean_{tag}))"
        )
        con.execute(
            f"create or replace temp table _good_{tag} as "
            f"select _file, _line, {key} as _key from _clean_{tag}"
        )
        con.execute(
            f"""
            create or replace temp table _dup_{tag} as
            select * from _good_{tag}
            semi join (
                select _key from _good_{tag} group by _key having count(*) > 1
                union
                select _key from _good_{tag} where _key in (select {existing_key} from {existing} e)
            ) using (_key)
            """
        )
        con.execute(
            f"""
            create or replace temp table _cand_{tag} as
            select * from _dup_{tag}
            qualify row_number() over (partition by _key order by _file, _line) = 1
            """
        )
        # Copies already loaded from other files with the same key; does the new copy win?
        con.execute(
            f"""
            create or replace temp table _clash_{tag} as
            select
                c._key,
                e._source_file as old_file,
                e._source_line as old_line,
                e._partition_date as old_partition,
                (
                    f._f_date < e._partition_date
                    or (f._f_date = e._partition_date and f._f_path < e._source_file)
                ) as new_wins,
            from _cand_{tag} c
            join {files} f using (_file)
            join {existing} e on {existing_key} = c._key
            """
        )
        displaced = con.execute(f"select count(*) from _clash_{tag} where new_wins").fetchone()[0]
        if displaced:
            con.execute(
                f"""
                insert into ops.duplicates
                select ?, old_file, old_line, old_partition, _key from _clash_{tag} where new_wins
                """,
                [source],
            )
            con.execute(
                f"""
                delete from {table} e using _clash_{tag} c
                where c.new_wins and e._source_file = c.old_file and e._source_line = c.old_line
                """
            )
            con.execute(
                f"""
                update ops.load_manifest m
                set rows_loaded = rows_loaded - d.n, rows_duplicate = rows_duplicate + d.n,
                    updated_at = ?
                from (
                    select old_file, count(*) as n from _clash_{tag} where new_wins group by 1
                ) d
                where m.path = d.old_file
                """,
                [self.now],
            )
        # Duplicates of this batch: later copies within it, and copies that lose to a loaded one.
        con.execute(
            f"""
            create or replace temp table _lose_{tag} as
            select * from _dup_{tag}
            anti join (
                select _file, _line from _cand_{tag}
                anti join (select _key from _clash_{tag} where not new_wins) using (_key)
            ) using (_file, _line)
            """
        )
        con.execute(
            f"""
            insert into ops.duplicates
            select ?, f._f_path, l._line, f._f_date, l._key
            from _lose_{tag} l
            join {files} f using (_file)
            """,
            [source],
        )
        contract = [fl.name for fl in FIELDS[source]]
        select = ", ".join(
            f"coalesce({c}, false)" if c in ("email_opt_in", "ads_opt_in") else c for c in contract
        )
        con.execute(
            f"""
            insert into {table} ({", ".join(contract)},
                _source_file, _source_line, _partition_date, _extra, _loaded_at)
            select {select}, f._f_path, c._line, f._f_date, c._extra::JSON, ?
            from _clean_{tag} c
            anti join _lose_{tag} using (_file, _line)
            join {files} f using (_file)
            """,
            [self.now],
        )
        counts = {
            i: (quarantined, erased_n, ignored_n, duplicate, loaded, warned)
            for i, quarantined, erased_n, ignored_n, duplicate, loaded, warned in con.execute(
                f"""
                with ids as (select _file from {files}),
                bad as (select _file, count(*) as n from _bad_{tag} group by 1),
                gone as (select _file, count(*) as n from {erased} group by 1),
                ignored as (
                    select _file, count(*) as n
                    from _typed_{tag}
                    anti join {erased} using (_file, _line)
                    where _ignored
                    group by 1
                ),
                good as (select _file, count(*) as n from _good_{tag} group by 1),
                lose as (select _file, count(*) as n from _lose_{tag} group by 1),
                warned as (
                    select _file, count(*) as n
                    from _warn_{tag}
                    semi join _good_{tag} using (_file, _line)
                    anti join _lose_{tag} using (_file, _line)
                    group by 1
                )
                select
                    ids._file,
                    coalesce(bad.n, 0),
                    coalesce(gone.n, 0),
                    coalesce(ignored.n, 0),
                    coalesce(lose.n, 0),
                    coalesce(good.n, 0) - coalesce(lose.n, 0),
                    coalesce(warned.n, 0),
                from ids
                left join bad using (_file)
                left join gone using (_file)
                left join ignored using (_file)
                left join good using (_file)
                left join lose using (_file)
                left join warned using (_file)
                """
            ).fetchall()
        }
        # Per rule, the rows loaded with the field nulled: a quarantined record or a
        # duplicate is not loaded, so none of its fields is nulled (as rows_warned above).
        warned = con.execute(
            f"select _file, field, description, count(*) from _fails_{tag} "
            f"semi join _good_{tag} using (_file, _line) "
            f"anti join _lose_{tag} using (_file, _line) "
            "where level = 'warning' group by 1, 2, 3"
        ).fetchall()
        for i, o in enumerate(outs):
            if o.status != "loaded":
                continue
            q, e, g, d, n, w = counts[i]
            if q + e + g + d + n != o.rows_read:
                raise RuntimeError(
                    f"{o.file.path}: row accounting does not hold ({o.rows_read} read, {n} "
                    f"loaded, {q} quarantined, {d} duplicate, {e} erased, {g} ignored)"
                )
            o.rows_quarantined, o.rows_erased, o.rows_duplicate, o.rows_loaded = q, e, d, n
            o.rows_ignored = g
            o.rows_warned = w
        for i, name, description, n in warned:
            outs[i].warnings[(name, description)] = n

    def _erased(self, con: duckdb.DuckDBPyConnection, source: str, tag: str) -> str:
        """A temp table ``(_file, _line)`` of the staged rows of erased customers.

        A row is theirs when its id columns hold a tombstoned id, or, for a record whose ids
        could not be read (malformed JSON, an id that is an object, ...) and whose raw text
        may be quarantined, when any word of that text is one: nothing of an erased customer
        may be kept, not even an unreadable record. A record whose ids were read belongs to
        those ids only: shops with numeric ids (Shopify, WooCommerce) would otherwise lose
        every quarantinable record holding a quantity or a page number equal to an erased id.
        """
        from segmint.audiences.erasure import (
            erased_row_sql,
            raw_id_tokens_sql,
            tombstone_filter_sql,
        )

        name = f"_erased_{tag}"
        keep_id = tombstone_filter_sql(con, ("id",))
        if keep_id == "true":
            con.execute(f"create or replace temp table {name} (_file INTEGER, _line BIGINT)")
            return name
        id_cols = _ID_COLUMNS[source]
        ids = " union ".join(f"select distinct {c} as id from _typed_{tag}" for c in id_cols)
        con.execute(
            f"create or replace temp table _eids_{tag} as select id from ({ids}) "
            f"where id is not null and not ({keep_id})"
        )
        # A row with another customer's id is never theirs (erased_row_sql).
        match = erased_row_sql(id_cols, lambda c: f"{c} in (select id from _eids_{tag})")
        keep_token = tombstone_filter_sql(con, ("token",))
        con.execute(
            f"""
            create or replace temp table {name} as
            select _file, _line from _typed_{tag} where {match}
            union
            select _file, _line
            from (
                select
                    _file,
                    _line,
                    unnest({raw_id_tokens_sql("raw")}) as token,
                from _typed_{tag}
                where raw is not null and {" and ".join(f"{c} is null" for c in id_cols)}
            )
            where token <> '' and not ({keep_token})
            """
        )
        return name

    def drop_temp(self, con: duckdb.DuckDBPyConnection, tag: str) -> None:
        for view in ("typed", "tjv", "clean"):
            con.execute(f"drop view if exists _{view}_{tag}")
        for name in (
            "tj",
            "tc",
            "rec",
            "files",
            "runs",
            "fails",
            "warn",
            "bad",
            "erased",
            "eids",
            "good",
            "dup",
            "cand",
            "clash",
            "lose",
            "gxraw",
        ):
            con.execute(f"drop table if exists _{name}_{tag}")


_NOT_JSON = "malformed JSON: the line is not a valid JSON document"
# A line holding a carriage return that is valid JSON with a space in its place: the CR is
# inside a string, where JSON requires it escaped.
_RAW_CR_REASON = (
    "malformed JSON: a carriage return inside a string, not escaped as \\r "
    "(JSON allows no raw control character there)"
)

# A line holding JSON documents parted by a carriage return alone: DuckDB's line reader ended
# a line there, and every later line of the file was numbered one too far.
_CR_PARTED_REASON = (
    "malformed JSON: JSON documents parted by a carriage return alone, not a line feed (in a "
    "file of LF or CRLF lines a CR is no line end)"
)


def _jsonl_sql(scan: str, positions: str, bare_cr: frozenset[int] = frozenset()) -> str:
    """SQL: the records of the JSON lines ``scan`` (``file_index, line``: every physical line,
    in file and line order), untyped, with ``_error`` for a line that is no JSON object.
    ``positions`` (a list literal) maps ``file_index`` to the file's position in the batch.
    The files ``bare_cr`` (positions) are copies whose bare carriage returns are
    ``BARE_CR_MARK``: their lines hold them again as carriage returns."""
    ws = "' ' || chr(9) || chr(13)"
    line = "line"
    cr_reason = ""
    if bare_cr:
        line = (
            f"case when {positions}[file_index::BIGINT + 1] in {_list(sorted(map(str, bare_cr)))}"
            f" then replace(line, {_lit(BARE_CR_MARK)}, chr(13)) else line end"
        )
        # JSON allows a raw CR between tokens, not inside a string (it is written \r).
        cr_reason = f"""
                    when not _json and contains(doc, chr(13))
                        and json_valid(replace(doc, chr(13), ' '))
                        then {_lit(_RAW_CR_REASON)}
                    when not _json and contains(doc, chr(13))
                        and json_valid('[' || replace(doc, chr(13), ',') || ']')
                        then {_lit(_CR_PARTED_REASON)}"""
    # Every physical line, numbered later by its row position. A byte-order mark
    # inside the file (files concatenated with cat) is no part of the record. The
    # blank test is a case, not an and: DuckDB evaluates both sides of an and/or
    # over the whole vector, and trim would copy every line.
    lines = f"""
        select
            {positions}[file_index::BIGINT + 1]::INTEGER as _file,
            case
                when starts_with(line, chr(65279)) then line[2:] else line
            end as doc,
            line as raw,
            case
                when line is null or line = '' then true
                when starts_with(line, ' ') or starts_with(line, chr(9))
                    then trim(line, {ws}) = ''
                else false
            end as _blank,
        from (select * replace ({line} as line) from {scan})
    """
    # JSON allows a lone surrogate escape ("\ud83d", what JavaScript writes
    # for a string cut mid-emoji); DuckDB's parser refuses the line. Such a line,
    # and only such, is read with its surrogate escapes as U+FFFD (raw keeps it).
    mend = "regexp_replace(doc, '\\\\u[dD][89a-fA-F][0-9a-fA-F]{2}', '\\\\ufffd', 'g')"
    parsed = f"""
        select
            * exclude (doc, _json, _mended),
            coalesce(_mended, doc) as doc,
            _json or _mended is not null as _json,
        from (
            select
                *,
                case
                    when not _json and not _blank and contains(doc, '\\u')
                        and json_valid({mend})
                        then {mend}
                end as _mended,
            from (
                select
                    *,
                    case when _blank then false else json_valid(doc) end as _json,
                from ({lines})
            )
        )
    """
    # The line is copied only when it starts with white space (ltrim copies it).
    return f"""(
        select * exclude (_json), not _blank and _error is null as _ok,
        from (
            select
                *,
                case
                    when _blank then null
                    when not _json and starts_with(doc, {_lit(TOO_LONG_MARK)})
                        then {_lit(TOO_LONG_REASON)}
{cr_reason}
                    when not _json
                        then {_lit(_NOT_JSON)}
                    when starts_with(doc, '{{') then null
                    when left(ltrim(doc, {ws}), 1) = '['
                        then 'malformed JSON: the line is a JSON array, not an '
                            || 'object (a JSON lines file holds one object a line)'
                    when left(ltrim(doc, {ws}), 1) <> '{{'
                        then 'malformed JSON: the line is not a JSON object'
                end as _error,
            from ({parsed})
        )
    )"""


def _long_lines(f: LandingFile) -> bool:
    """Whether the JSON lines file ``f`` is typed in slices: the lines of the first
    ``LONG_LINES_SAMPLE`` bytes of its text are longer than a vector's share of
    ``SLICE_TEXT_BYTES`` on average (with a margin of two). A file no longer than that does not
    need them, however long its lines. Reading stops as soon as the sample is known to hold
    enough lines (a few KB of a normal file)."""
    line_bytes = max(1, SLICE_TEXT_BYTES // 2048 // 2)
    enough = -(-LONG_LINES_SAMPLE // line_bytes)
    head, whole = text_head(f.abspath, LONG_LINES_SAMPLE, enough)
    if whole and len(head) <= SLICE_TEXT_BYTES:
        return False
    return head.count(b"\n") < enough


def _fill(table: str, sql: str, first: bool) -> str:
    """SQL: create the temp ``table`` as ``sql`` (``first``), or add the rows of ``sql``."""
    if first:
        return f"create or replace temp table {table} as {sql}"
    return f"insert into {table} {sql}"


def _text_slices(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Where-clauses dividing the records of ``table`` (a ``doc`` column) into slices of
    about ``SLICE_TEXT_BYTES`` of text each, in row order; ``[""]`` (one slice: the whole
    table) unless a vector of 2,048 of its rows holds more than that."""
    text = "coalesce(strlen(doc), 0)"
    ((most,),) = con.execute(
        f"select max(n) from (select sum({text}) as n from {table} group by rowid // 2048)"
    ).fetchall()
    if most is None or most <= SLICE_TEXT_BYTES:
        return [""]
    import numpy as np

    rows = con.execute(f"select rowid, {text} as n from {table} order by rowid").fetchnumpy()
    # A slice ends where its text reaches the budget (a longer record is a slice of its own).
    before = np.cumsum(rows["n"]) - rows["n"]
    starts = np.flatnonzero(np.diff(before // SLICE_TEXT_BYTES, prepend=-1))
    ids = rows["rowid"]
    bounds = [(ids[s], ids[e - 1]) for s, e in zip(starts, [*starts[1:], len(ids)], strict=True)]
    log.info(
        "ingest: typing %s in %d slices (records of %d bytes a vector)", table, len(bounds), most
    )
    return [f" where rowid between {lo} and {hi}" for lo, hi in bounds]


def _checksummed(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """``{path: (size, mtime_ns, sha256)}`` from the manifest, for :func:`discover`."""
    if settings.ingest.rehash_unchanged_files:
        return {}
    rows = con.execute(
        "select path, size_bytes, mtime_ns, sha256 from ops.load_manifest "
        "where mtime_ns is not null"
    ).fetchall()
    return {path: (size, mtime, sha) for path, size, mtime, sha in rows}


def _record_mtimes(con: duckdb.DuckDBPyConnection, files: list[LandingFile]) -> None:
    """Store the modification time of files whose checksum has not changed but whose mtime
    has (touched, copied, or recorded before ``mtime_ns`` existed), so later runs skip them."""
    if files:
        con.execute(
            """
            update ops.load_manifest m set mtime_ns = s.mtime_ns
            from (select unnest(?) as path, unnest(?) as sha256, unnest(?) as mtime_ns) s
            where m.path = s.path and m.sha256 = s.sha256 and m.status = 'loaded'
                and m.mtime_ns is distinct from s.mtime_ns
            """,
            [[f.path for f in files], [f.sha256 for f in files], [f.mtime_ns for f in files]],
        )


# A Parquet row counts as at least this many bytes of text when batching: a staged row takes
# ~370 bytes whatever its text (a JSON event line of the generator is ~470 bytes), so a
# narrow row does not make a batch of more rows than a JSONL batch of the same size.
_PARQUET_ROW_BYTES = 512
# ... or as the JSON document its first this many rows become on average, when that is more:
# a row of 200 columns is a document of ~7 KB, and 512 bytes a row put 14 times the intended
# text in a batch (a 300,000-row file counted 150 MB for 2 GB of staged documents).
_PARQUET_SAMPLE_ROWS = 256


@functools.lru_cache(maxsize=4096)
def _parquet_text(path: Path, sha256: str) -> int:
    """About how many bytes of text (JSON documents) the rows of the Parquet file ``path``
    become: its rows (from the footer) times the larger of ``_PARQUET_ROW_BYTES`` and the
    size of the documents of its first ``_PARQUET_SAMPLE_ROWS`` rows (their values in
    memory, and each column's name quoted once a row). ``sha256``: the cache's key."""
    import pyarrow.parquet as pq

    # (pre_buffer off: the first row group of a large file is not read whole for the sample.)
    with pq.ParquetFile(path, pre_buffer=False) as pf:
        rows = pf.metadata.num_rows
        if not rows or not pf.metadata.num_row_groups:
            return 0
        sample = next(
            pf.iter_batches(batch_size=_PARQUET_SAMPLE_ROWS, row_groups=[0], use_threads=False)
        )
    names = sum(len(name) + 6 for name in sample.schema.names)  # "name":"",
    width = sample.nbytes / max(1, sample.num_rows) + names
    return rows * max(_PARQUET_ROW_BYTES, round(width))


def _batch_size(f: LandingFile) -> int:
    """About how many bytes of text ``f`` holds (compressed files count several times).

    Parquet is columnar and compressed about ten times: its rows are measured instead
    (:func:`_parquet_text`), or its size times ten when it cannot be read (the load reports
    it).
    """
    if f.fmt == "parquet":
        try:
            return _parquet_text(f.abspath, f.sha256)
        except Exception:  # an unreadable file fails later, with its own error
            return f.size_bytes * 10
    return f.size_bytes * (6 if f.abspath.name.lower().endswith(".gz") else 1)


def _out_of_memory(
    exc: BaseException, files: list[LandingFile], threads: str, memory_limit: str
) -> str:
    """The message of a batch that did not fit in DuckDB's memory: which files, and the
    settings that decide it (DuckDB's own advice names SQL statements no user can run)."""
    shown = ", ".join(f.path for f in files[:3]) + (
        f" and {len(files) - 3} more" if len(files) > 3 else ""
    )
    return (
        f"{str(exc).splitlines()[0]} while reading {len(files)} {files[0].source} file(s) "
        f"({shown}) with {threads} DuckDB thread(s) and a memory limit of {memory_limit}. "
        "Each thread parses 2,048 records at a time and holds several copies of their "
        "text, so records of tens of KB (a 50 KB page_url) need hundreds of MB a thread "
        "even in a file of a few MB: set [ingest] duckdb_threads = 1 or raise [ingest] "
        'duckdb_memory_limit (docs/operations.md, "Sizing"); a retry with the same '
        "settings fails the same way"
    )


def run_ingest(settings: Settings, as_of: date, reload_since: date | None = None) -> StageResult:
    """Load every landing file with partition date <= ``as_of`` not loaded yet (or changed).

    ``reload_since``: also read again the files already loaded whose partition date is on or
    after it, replacing what they loaded as for a changed file (``segmint ingest
    --reload-since``: after fixing a setting that quarantined their rows).

    The warnings are the result's, said once by whoever runs the stage (the command line
    prints them under its line, the DAG's task logs them): each was also logged here as it
    arose, so `segmint ingest` without -v showed it twice, on stdout and on stderr. A run
    that fails has no result: the warnings it had are logged then, before the error; when
    it fails because a file could not be read, those are every warning of the files it
    loaded, as a result would have held them (they were lost, and the next run, taking
    those files as loaded, never said them)."""
    # GX takes seconds to import: overlap it with the checksums and the planning.
    quiet_gx_logging()
    ingest = Ingest(
        settings,
        as_of,
        gx_import=import_in_background("great_expectations"),
        reload_since=reload_since,
    )
    try:
        return _ingest(ingest, settings, as_of)
    except BaseException as exc:
        warnings = getattr(exc, "stage_warnings", None)
        if warnings is None:
            # The batches committed before the error are not read again: their fields
            # nulled are said now or never.
            warnings = (
                _field_warnings(ingest.committed)
                + ingest.prefilter_misses
                + ingest.batch_warnings
                + ingest.stale_ids
            )
        for warning in warnings:
            log.warning("ingest: %s", warning)
        raise


def _ingest(ingest: Ingest, settings: Settings, as_of: date) -> StageResult:
    outcomes: list[FileOutcome] = []
    con = connect(settings.warehouse)

    def flush(batch: list[LandingFile]) -> None:
        parts = {
            source: sorted((f for f in batch if f.source == source), key=lambda x: x.order_key)
            for source in sorted({f.source for f in batch})
        }
        # The largest source is read first: while GX is still importing, a small batch is
        # parsed before its flags wait for GX (Ingest._create_staged), so a nightly
        # increment's events parse during the import rather than after it.
        staged = {}
        for source in sorted(parts, key=lambda s: -sum(map(_batch_size, parts[s]))):
            log.info("ingest: reading %d %s file(s)", len(parts[source]), source)
            try:
                staged[source] = ingest.stage(con, parts[source])
            except duckdb.OutOfMemoryException as exc:
                raise type(exc)(_out_of_memory(exc, parts[source], threads, memory_limit)) from exc
        groups = [staged[source] for source in parts]
        for outs in groups:
            ingest.validate(con, outs)
        with transaction(con):
            for outs in groups:
                ingest.write(con, outs)
        for outs in groups:
            ingest.drop_temp(con, outs[0].tag)
            outcomes.extend(outs)
            ingest.committed.extend(outs)

    try:
        # Bounded memory: DuckDB spills the batch's temp tables to disk beyond the limit.
        limit_resources(
            con, settings.ingest.duckdb_thread_count, settings.ingest.duckdb_memory_limit
        )
        threads, memory_limit = con.execute(
            "select current_setting('threads'), current_setting('memory_limit')"
        ).fetchone()
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        # Only staging needs the scan's order (it sets it for that statement).
        con.execute("SET preserve_insertion_order = false")
        ensure_ops_tables(con)
        ids_checked = _ids_checked(con, ingest.now)
        files, ignored, unlisted = discover(settings.landing, known=_checksummed(con, settings))
        _record_mtimes(con, files)
        ingest.forget_gone_failures(con, files, unlisted)
        units, skipped = ingest.plan(con, files)
        # New files are batched per source: a batch costs a GX run and a dozen statements
        # whatever its size, and the CRM files of a night are small next to its events.
        pending: dict[str, list[LandingFile]] = {}
        size: dict[str, int] = {}
        for unit in units:
            if len(unit) > 1 or (unit is units[0] and ingest.replacing):
                # A changed file and the files that depend on it: one transaction.
                flush(unit)
                continue
            source = unit[0].source
            pending.setdefault(source, []).append(unit[0])
            size[source] = size.get(source, 0) + _batch_size(unit[0])
            if size[source] >= BATCH_BYTES or len(pending[source]) >= BATCH_FILES:
                flush(pending.pop(source))
                size[source] = 0
        if pending:
            flush([f for source in sorted(pending) for f in pending[source]])
        # A run that validated nothing renders the Data Docs still when an earlier run's
        # could not be written (a full disk): its batches are loaded, their results kept.
        if (outcomes and ingest._validator is not None) or docs_pending(*ingest.docs_dirs):
            ingest.validator.build_docs()
        ingest.stale_ids = [] if ids_checked else _ids_read_otherwise(con, ingest.dotted_ids())
        con.execute("CHECKPOINT")
    finally:
        con.close()
    outcomes.sort(key=lambda o: o.file.order_key)
    result, error = _result(
        outcomes, skipped, ignored, settings, as_of, ingest.unreadable_loaded, unlisted
    )
    _note_past_days(result, outcomes, as_of, ingest.loaded_through, ingest.reloaded)
    result.warnings.extend(_mostly_duplicates(outcomes))
    result.warnings.extend(_zero_byte_files(outcomes))
    # What DuckDB applied ([ingest] duckdb_threads, duckdb_memory_limit), for the run's record.
    result.details["duckdb"] = {"threads": int(threads), "memory_limit": memory_limit}
    result.warnings.extend(ingest.prefilter_misses)
    ingest.warn_names()
    result.warnings.extend(ingest.batch_warnings)
    result.warnings.extend(ingest.stale_ids)
    if error is not None:
        # The files that loaded are not read again: their warnings are said now or never.
        error.stage_warnings = result.warnings
        raise error
    return result


# The version of how ingest reads ids (contract.cast_sql's "id": 123.0 is 123 and a CSV's
# NULL is missing since 2026-12-04, '7210448301122 is 7210448301122 since 2026-12-06; an id
# Excel or a float rounded (7.21045E+12, 1.5e+22), a JSON true or false, an id holding a
# control character or of more than ID_MAX_LENGTH characters quarantined, an id of invisible
# characters only and NaN in a Parquet float column missing since 2026-12-07; an id's
# Unicode spaces and zero-width characters at its ends trimmed, NFC, and one holding a C1
# control quarantined since 2026-12-07.2; a CSV field written as Excel's text formula,
# ="c1", read as its text since 2026-12-07.3; a CSV field quoted after a space, , "c1", read
# without its quotes since 2026-12-07.4; a flattened export's dotted key holding a JSON number
# with a fraction, "properties.order_id": 1.10, read as written, not '1.1', and NaN in a
# float of a Parquet struct column missing, since 2026-12-07.5).
# Bump it (a date; ".2" after it for a second bump that day) when a release reads some ids
# otherwise: raw rows an earlier release loaded are then checked once.
ID_RULE_VERSION = "2026-12-07.5"
# A whole quoted CSV field.
QUOTED_FIELD_RE = '"(?:[^"]|"")*"'


def _ids_checked(con: duckdb.DuckDBPyConnection, now: datetime) -> bool:
    """Whether the raw rows need no check of :func:`_ids_read_otherwise`: ``ops.id_rule``
    holds :data:`ID_RULE_VERSION`, or no raw row was loaded before this run (a new
    warehouse, whose version is recorded now: scanning the 10M rows a first night loads
    would find none). Otherwise the first run of this version (``now``, the ``_loaded_at``
    of the rows it loads) is kept in ``ops.id_rule_upgrade``: the rows loaded from then on
    are this version's, and the check looks only at the older ones (a JSON string "true"
    loads as an id, a JSON true did not, and the raw row cannot tell which it was)."""
    con.execute(
        "create table if not exists ops.id_rule (version varchar not null, "
        "checked_at timestamp not null)"
    )
    if con.execute("select 1 from ops.id_rule where version = ?", [ID_RULE_VERSION]).fetchone():
        return True
    if any(
        con.execute(f"select 1 from {table} limit 1").fetchone() for table in RAW_TABLE.values()
    ):
        con.execute(
            "create table if not exists ops.id_rule_upgrade (version varchar not null, "
            "began_at timestamp not null)"
        )
        con.execute(
            "insert into ops.id_rule_upgrade select ?, ? where not exists "
            "(select 1 from ops.id_rule_upgrade where version = ?)",
            [ID_RULE_VERSION, now, ID_RULE_VERSION],
        )
        return False
    con.execute(
        "insert into ops.id_rule values (?, current_timestamp::timestamp)", [ID_RULE_VERSION]
    )
    return True


def _stale_id_sql(c: str, fractions_before: datetime | None = None) -> tuple[str, str]:
    """SQL over a raw row: ``(matched, example)``, whether its id column ``c`` holds an id an
    earlier segmint stored and this one reads otherwise, and what it reads now.
    ``fractions_before``: rows loaded before it may hold a JSON number with a fraction as
    its double prints it (:func:`_fractions_read_since`)."""
    words = ", ".join(_lit(w) for w in NULL_WORDS)
    read = cast_sql("id", id_clean_sql(c))
    shown = f"case when length({c}) > 40 then left({c}, 40) || '...' else {c} end"
    # The cheap tests first: the regular expressions run on the rare ids they let through.
    cases = [
        # A CSV dump's NULL: every guest one customer.
        (f"contains(_source_file, '.csv') and lower({c}) in ({words})", "'is now missing'"),
        # Rounded by Excel or a float: customers merged.
        (
            f"(contains({c}, 'E+') or contains({c}, 'e+')) "
            f"and regexp_full_match({c}, {_lit(EXCEL_ROUNDED_ID_RE)})",
            "'is now quarantined'",
        ),
        (
            f"contains({c}, '.0') and regexp_full_match({c}, {_lit(FLOAT_WHOLE_ID_RE)}) "
            f"and abs(try_cast(split_part(trim({c}), '.', 1) AS DOUBLE)) > {FLOAT_EXACT_MAX}",
            "'is now quarantined'",
        ),
        # Excel's text formula in a CSV field (="c1" is c1 since 2026-12-07.3).
        (
            f"contains({c}, '=\"') and contains(_source_file, '.csv') "
            f"and regexp_full_match({c}, {_lit(EXCEL_TEXT_RE)})",
            "'is now ''' || replace(regexp_extract("
            + c
            + """, '="(.*)"', 1), '""', '"') || ''''""",
        ),
        # A CSV field quoted after a space (, "c1"), kept with its quotes before 2026-12-07.4.
        (
            f"starts_with({c}, '\"') and contains(_source_file, '.csv') "
            f"and regexp_full_match({c}, {_lit(QUOTED_FIELD_RE)})",
            f"""'is now ''' || replace({c}[2:-2], '""', '"') || ''''""",
        ),
        # A JSON true or false (a CSV's 'true' was text, and still is).
        (
            f"{c} in ('true', 'false') and not contains(_source_file, '.csv')",
            "'is now quarantined if it was a JSON true or false'",
        ),
        # NaN in a Parquet float column.
        (
            f"{c} in ('NaN', 'Infinity', '-Infinity') and contains(_source_file, '.parquet')",
            "'is now missing'",
        ),
        (
            f"(strlen({c}) > {ID_MAX_LENGTH} and length({c}) > {ID_MAX_LENGTH}) "
            f"or regexp_matches({c}, {_lit(ID_CONTROL_RE)})",
            "'is now quarantined'",
        ),
        # A JSON number with a fraction stored as its double prints it (1.10 as '1.1'): the
        # raw row cannot tell it from a JSON string "1.1", which still loads as it is.
        *(
            [
                (
                    f"contains({c}, '.') and _loaded_at < {_lit(str(fractions_before))} "
                    f"and not contains(_source_file, '.csv') "
                    f"and not contains(_source_file, '.parquet') "
                    f"and regexp_full_match({c}, '-?[0-9]+[.][0-9]*[1-9]')",
                    "'is now read as its file writes it, if that was a JSON number with more "
                    "digits than a float keeps (1.10 was stored as ''1.1'')'",
                )
            ]
            if fractions_before
            else []
        ),
        # Read otherwise: 123.0 as 123, '555 as 555, an id of invisible characters only as
        # missing (only an id whose first character is no printable ASCII one may be), a
        # no-break space or BOM at an end trimmed and NFD read as NFC (only one beyond ASCII).
        (
            f"(contains({c}, '.0') or contains({c}, '''') or {c} < '!' or {c} >= chr(127) "
            f"or strlen({c}) <> length({c})) "
            f"and {read} is distinct from {c}",
            f"coalesce('is now ''' || {read} || '''', 'is now missing')",
        ),
    ]
    matched = " or ".join(f"({when})" for when, _ in cases)
    example = (
        "case "
        + " ".join(f"when {when} then '{c} ''' || {shown} || ''' ' || {now}" for when, now in cases)
        + " end"
    )
    return f"({matched})", example


# The first id rule reading a JSON number with a fraction as the record writes it (1.10, not
# the double's '1.1'); a dotted alias's key spelt with the dots ("properties.order_id":
# 1.10) only since 2026-12-07.5.
FRACTIONS_AS_WRITTEN = "2026-12-07"


def _fractions_read_since(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When this warehouse's rows began to be loaded by a release reading a JSON number with
    a fraction as written (:data:`FRACTIONS_AS_WRITTEN`): the first night of such a release
    on it (``ops.id_rule_upgrade``); None when the warehouse began under one (its first id
    rule recorded, in ``ops.id_rule``, is one, with no upgrade before it)."""
    rules = con.execute(
        "select version, since, upgrade from ("
        "select version, began_at as since, true as upgrade from ops.id_rule_upgrade union all "
        "select version, checked_at, false from ops.id_rule) order by since, upgrade desc"
    ).fetchall()
    if rules and not rules[0][2] and rules[0][0] >= FRACTIONS_AS_WRITTEN:
        return None
    return min((at for version, at, _ in rules if version >= FRACTIONS_AS_WRITTEN), default=None)


def _ids_read_otherwise(
    con: duckdb.DuckDBPyConnection, dotted: dict[str, frozenset[str]] | None = None
) -> list[str]:
    """Warnings for raw rows whose ids an earlier segmint stored as written and this one
    reads otherwise (:data:`ID_RULE_VERSION`), or, from a CSV file, as a database dump's
    missing value (``NULL``, ``\\N``: one customer holding every guest's orders), or now
    quarantines (an id Excel rounded, one holding a control character). After an upgrade
    the same customer, order or event is then under two ids: the customer's old records
    (their consent, their orders) beside the new ones, a consent withdrawn on one still given
    on the other; or several customers stay one. Only rows loaded before this version's
    first run are looked at (``ops.id_rule_upgrade``), so once none matches, ``ops.id_rule``
    records the version and later nights skip the scan; until then the warning stands each
    night, until ``segmint ingest --reload-since`` reads their files again. ``dotted``: per
    source, the id fields the settings read through a dotted alias (whose key spelt with the
    dots, a flattened export's, kept a number's fraction only since 2026-12-07.5)."""
    warnings = []
    (began,) = con.execute(
        "select began_at from ops.id_rule_upgrade where version = ?", [ID_RULE_VERSION]
    ).fetchone()
    fractions = _fractions_read_since(con)
    for source, table in RAW_TABLE.items():
        ids = [f.name for f in FIELDS[source] if f.kind == "id"]
        flat = (dotted or {}).get(source, frozenset())
        sql = [_stale_id_sql(c, began if c in flat else fractions) for c in ids]
        matched = " or ".join(m for m, _ in sql)
        example = ", ".join(e for _, e in sql)
        n, first, shown = con.execute(
            f"select count(*), min(_partition_date), any_value(coalesce({example})) "
            f"from {table} where _loaded_at < ? and ({matched})",
            [began],
        ).fetchone()
        if n:
            # A control character shown as its escape: the log line stays one line.
            shown = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m[0]):02x}", shown)
            warnings.append(
                f"{table} holds {n} row(s) loaded by an earlier segmint whose ids it reads "
                f"otherwise now ({shown}; the first in partition {first}): a customer, order "
                "or event under two ids (a consent withdrawn on one stays given on the other), "
                "or several under one (guests under 'NULL', ids rounded alike); "
                f"`segmint ingest --reload-since {first}` reads their files again"
            )
    if not warnings:
        con.execute(
            "insert into ops.id_rule values (?, current_timestamp::timestamp)", [ID_RULE_VERSION]
        )
    return warnings


# A file with at least this share of its records (and MOSTLY_DUPLICATES_MIN of them) counted
# as duplicates is named in a warning: a re-delivered file, or an id that is not unique.
MOSTLY_DUPLICATES_SHARE = 0.5
MOSTLY_DUPLICATES_MIN = 10


def _mostly_duplicates(outcomes: list[FileOutcome]) -> list[str]:
    """A warning per events file whose records were mostly duplicates. Amplitude's export has
    an ``event_id`` of its own, a counter per device: read as the id, a night of 548 events
    loaded 7 and counted the rest as duplicates, and nothing said so. Not CRM files: a CRM
    duplicate is the whole record repeated, so nothing is lost, and a CRM that delivers its
    full snapshot every night repeats every unchanged customer (warned about every night)."""
    out = []
    for o in outcomes:
        if o.status != "loaded" or o.file.source != "events":
            continue
        if o.rows_duplicate < max(MOSTLY_DUPLICATES_MIN, MOSTLY_DUPLICATES_SHARE * o.rows_read):
            continue
        out.append(
            f"{o.file.path}: {o.rows_duplicate} of its {o.rows_read} records are duplicates "
            "(event_id seen before, in this file or an earlier one): a file delivered twice, "
            "or an id that is not unique in this export (read another field as event_id: "
            "[ingest] field_aliases)"
        )
    return out


def _zero_byte_files(outcomes: list[FileOutcome]) -> list[str]:
    """A warning per file named ``.gz`` loaded tonight that is 0 bytes long: gzip writes at
    least 20 bytes, even of nothing, so such a file is an upload cut off or a writer that
    died, not an export without records. It loads as a file without records (an empty file
    withdraws what it loaded before, docs/data-contract.md), and nothing said so: a zero-byte
    ``.gz`` beside the day's other files left the day short, the night published, without a
    word. A 0-byte ``.jsonl``, ``.csv`` or ``.parquet`` is an export of nothing (some writers
    leave empty Parquet files for empty buckets), and is not named."""
    out = []
    for o in outcomes:
        if o.status != "loaded" or o.file.size_bytes or not o.file.path.lower().endswith(".gz"):
            continue
        out.append(
            f"{o.file.path} is 0 bytes: loaded as a file without records, but a gzip file is "
            "never empty, even of nothing: an upload cut off, or a writer that died? Deliver "
            "it again under the same name (the next run loads it and rebuilds the days it "
            "holds)"
        )
    return out


def _note_past_days(
    result: StageResult,
    outcomes: list[FileOutcome],
    as_of: date,
    loaded_through: dict[str, date],
    reloaded: set[str],
) -> None:
    """Say in the summary when the night loaded late files (of a day before the as-of date,
    on or before the newest one loaded before) or replaced the rows of files loaded before (a
    corrected file): the marts rebuild those past days, and the operator should see it
    without reading the manifest. A file of the as-of day itself is tonight's, never late: the
    rerun of a night whose ingest failed on one of its files (a truncated upload, delivered
    again) called that file late, the partition having been loaded by the failed run."""
    done = [o for o in outcomes if o.status == "loaded"]
    replaced = sorted(o.file.path for o in done if o.file.path in reloaded)
    late: dict[str, int] = {}
    for o in done:
        newest = loaded_through.get(o.file.source)
        day = o.file.partition_date
        if o.file.path not in reloaded and newest and day <= newest and day < as_of:
            key = f"{o.file.source} dt={o.file.partition_date}"
            late[key] = late.get(key, 0) + 1
    notes = []
    if late:
        shown = _some([f"{k} ({n})" for k, n in sorted(late.items())], shown=5)
        notes.append(f"{sum(late.values())} late file(s): {shown}")
    if replaced:
        shown = ", ".join(replaced[:5]) + (" ..." if len(replaced) > 5 else "")
        notes.append(f"replaced the rows of {len(replaced)} file(s) loaded before: {shown}")
    if notes:
        result.summary += "; " + "; ".join(notes)
    result.details["late_partitions"] = sorted(late)
    result.details["replaced_files"] = replaced


def _field_warnings(outcomes: list[FileOutcome]) -> list[str]:
    """The fields nulled (or stored as false) by a warning expectation in the files
    ``outcomes``, one warning per field and reason."""
    counts: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for o in outcomes:
        for reason, n in o.warnings.items():
            counts[reason] = counts.get(reason, 0) + n
            where.setdefault(reason, []).append(o.file.path)
    # Named with the files holding them, so the export can be looked at or fixed. A consent
    # flag is not nulled but stored as false, no consent (an absent consent is false): it
    # said "field nulled" of a consent word no list holds, and analysts looked for nulls.
    booleans = {f.name for fields in FIELDS.values() for f in fields if f.kind == "bool"}
    return [
        f"field {'stored as false' if name in booleans else 'nulled'} on {n} row(s): "
        f"{r} (in {_some(sorted(where[(name, r)]))})"
        for (name, r), n in sorted(counts.items(), key=lambda item: item[0][1])
    ]


def _result(
    outcomes: list[FileOutcome],
    skipped: int,
    ignored: list[str],
    settings: Settings,
    as_of: date,
    unreadable_loaded: Sequence[LandingFile] = (),
    unlisted: Sequence[str] = (),
) -> tuple[StageResult, InputError | None]:
    """The stage's result and, when a file or folder could not be read, the error the run
    fails with (every other file was loaded)."""
    per_source: dict[str, dict[str, int]] = {}
    for o in outcomes:
        s = per_source.setdefault(
            o.file.source,
            {
                "files": 0,
                "failed": 0,
                "read": 0,
                "loaded": 0,
                "quarantined": 0,
                "duplicates": 0,
                "erased": 0,
                "ignored": 0,
                "warned": 0,
            },
        )
        s["files"] += 1
        s["failed"] += o.status == "failed"
        s["read"] += o.rows_read
        s["loaded"] += o.rows_loaded
        s["quarantined"] += o.rows_quarantined
        s["duplicates"] += o.rows_duplicate
        s["erased"] += o.rows_erased
        s["ignored"] += o.rows_ignored
        s["warned"] += o.rows_warned
    total = {
        k: sum(s[k] for s in per_source.values())
        for k in (
            "files",
            "failed",
            "read",
            "loaded",
            "quarantined",
            "duplicates",
            "erased",
            "ignored",
            "warned",
        )
    }
    failed = [o for o in outcomes if o.status == "failed"]
    warnings = [f"ignored {entry}" for entry in ignored] + _field_warnings(outcomes)
    summary = (
        f"loaded {total['loaded']} rows, quarantined {total['quarantined']}, "
        f"duplicates {total['duplicates']}"
        + (f", erased {total['erased']}" if total["erased"] else "")
        + (f", ignored {total['ignored']} (ignored_event_types)" if total["ignored"] else "")
        + f" from {total['files'] - total['failed']} file(s)"
        f" ({skipped} already loaded)" + (f"; {total['failed']} file(s) failed" if failed else "")
    )
    result = StageResult(
        stage="ingest",
        rows_in=total["read"],
        rows_out=total["loaded"],
        summary=summary,
        details={
            "sources": per_source,
            "skipped_files": skipped,
            "data_docs": str(settings.run_output_dir(as_of) / "data_docs"),
        },
        warnings=warnings,
    )
    problems = []
    if failed or unreadable_loaded:
        names = "; ".join(
            [f"{o.file.path}: {o.error}" for o in failed]
            + [
                f"{f.path}: {f.error} (changed since it was loaded; the rows loaded from it "
                "are kept as they were)"
                for f in unreadable_loaded
            ]
        )
        marked = "Those not loaded before are" if unreadable_loaded else "They are"
        problems.append(
            f"could not read {len(failed) + len(unreadable_loaded)} landing file(s): {names}. "
            f"{marked} marked 'failed' in ops.load_manifest; all are retried on the next run."
        )
    if unlisted:
        problems.append(
            f"Could not list {len(unlisted)} landing folder(s): {'; '.join(unlisted)}; the "
            "files in them were not loaded (the next run looks again)."
        )
    if problems:
        return result, InputError(f"{' '.join(problems)} Every other file was loaded ({summary}).")
    return result, None


def _held_earlier_in_batch(
    con: duckdb.DuckDBPyConnection,
    batch: tuple[str, list[LandingFile]] | None,
    name: str,
    paths: list[str],
    boolean: bool = False,
) -> bool:
    """Whether a file of this batch from a partition before the last of ``paths`` (files
    with no column for ``name``) holds a value of ``name`` (its records' ``doc``, keyed by
    field name); of a ``boolean`` (consent) one that is not a false word, as a consent
    absent is stored as false. Files of one partition are one delivery, none before
    another."""
    if batch is None:
        return False
    table, files = batch
    days = [f.partition_date for f in files if f.path in set(paths)]
    earlier = [i for i, f in enumerate(files) if days and f.partition_date < max(days)]
    if not earlier:
        return False
    value = f"nullif(trim(json_extract_string(doc, {_lit('$.' + name)})), '')"
    held = f"{value} is not null"
    if boolean:
        held += f" and lower({value}) not in ({', '.join(map(_lit, FALSE_WORDS))})"
    return bool(
        con.execute(
            f"select 1 from {table} where _file in ({', '.join(map(str, earlier))}) "
            f"and {held} limit 1"
        ).fetchone()
    )
