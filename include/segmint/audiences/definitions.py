"""Audience definitions: YAML files read, checked and turned into typed objects.

One file holds one object; ``kind`` says which (``audience`` when left out):

``audience``
    ``name``, ``description``, ``consent`` (``email`` | ``ads``), ``where`` (a condition),
    optional ``suppress`` (names of suppression lists), ``limit`` (``size`` and
    ``order_by``), ``holdout`` (``percent`` and optional ``salt``) and ``exports`` (formats
    the nightly stage writes).
``suppression``
    ``name``, ``description`` and either ``where`` (a condition) or ``customer_ids_file``
    (a CSV with a ``customer_id`` column, relative to the definitions folder).
``priority_group``
    ``name``, ``description``, ``audiences``: an ordered list, highest priority first.

A condition is one of ``all: [...]``, ``any: [...]``, ``not: {...}``,
``feature: NAME`` with one comparison (``gt gte lt lte eq ne in between is_null``),
``rule_segment: NAME | [NAMES]``, ``ml_segment: NAME | [NAMES]`` and
``propensity: MODEL`` with ``decile_min decile_max score_min score_max``.

Structure is checked here without a warehouse (:func:`load_definitions`); names of features,
segments and models are checked against the warehouse by :mod:`segmint.audiences.catalog`.
Every error names the file, the line, the key path and what is wrong, and all errors of a
folder are reported together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import yaml

from segmint.audiences.formats import EXPORT_FORMATS
from segmint.stages import SegmintError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CONSENTS = ("email", "ads")
COMPARISONS = ("gt", "gte", "lt", "lte", "eq", "ne", "in", "between", "is_null")
LEAF_KINDS = ("feature", "rule_segment", "ml_segment", "propensity")
COMBINATORS = ("all", "any", "not")
PROPENSITY_BOUNDS = ("decile_min", "decile_max", "score_min", "score_max")


class DefinitionError(SegmintError):
    """One or more audience definitions are invalid; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in audience definitions:\n  " + "\n  ".join(problems)
        )


@dataclass(frozen=True)
class Condition:
    """A node of a condition tree.

    ``kind`` is a combinator (``all``/``any``/``not``, with ``children``) or a leaf kind
    (with ``name``/``names`` and ``params``). ``path`` is the key path in the file, kept
    for error messages.
    """

    kind: str
    path: str
    children: tuple[Condition, ...] = ()
    names: tuple[str, ...] = ()
    op: str = ""
    value: Any = None
    params: tuple[tuple[str, Any], ...] = ()

    def leaves(self) -> list[Condition]:
        if self.kind in COMBINATORS:
            return [leaf for child in self.children for leaf in child.leaves()]
        return [self]


@dataclass(frozen=True)
class OrderBy:
    kind: str  # 'feature' | 'propensity'
    name: str
    descending: bool = True


@dataclass(frozen=True)
class Audience:
    name: str
    description: str
    consent: str
    where: Condition
    file: Path
    source_sha256: str
    suppress: tuple[str, ...] = ()
    limit: int | None = None
    order_by: OrderBy | None = None
    holdout_percent: float = 0.0
    holdout_salt: str = ""
    exports: tuple[str, ...] = ()
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def where_line(self, path: str) -> str:
        return _where(self.file, self.lines, path)


@dataclass(frozen=True)
class RejectedAudience:
    """An audience file that failed the structure check, kept by its name so the nightly
    stage can record it as ``failed`` and validation can still check the names it uses."""

    name: str
    description: str
    consent: str | None
    file: Path
    source_sha256: str
    error: str
    where: Condition | None = None
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def where_line(self, path: str) -> str:
        return _where(self.file, self.lines, path)


@dataclass(frozen=True)
class Suppression:
    name: str
    description: str
    file: Path
    where: Condition | None = None
    customer_ids_file: Path | None = None
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def where_line(self, path: str) -> str:
        return _where(self.file, self.lines, path)


@dataclass(frozen=True)
class PriorityGroup:
    name: str
    description: str
    audiences: tuple[str, ...]
    file: Path
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def where_line(self, path: str) -> str:
        return _where(self.file, self.lines, path)


@dataclass
class Definitions:
    folder: Path
    audiences: dict[str, Audience] = field(default_factory=dict)
    suppressions: dict[str, Suppression] = field(default_factory=dict)
    groups: dict[str, PriorityGroup] = field(default_factory=dict)
    # Lenient loading (the nightly stage): every problem found, and audiences that must not
    # be built tonight (name -> why), so one bad file does not stop the others.
    problems: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # Values that are valid but most likely not what was meant (file:line: key: why); the
    # audiences are built.
    warnings: list[str] = field(default_factory=list)
    # Audience files with structure faults, by the name they give (when it is a valid one).
    rejected: dict[str, RejectedAudience] = field(default_factory=dict)

    def fail(self, audience: str, message: str) -> None:
        if audience in self.audiences:
            previous = self.failed.get(audience)
            self.failed[audience] = f"{previous}; {message}" if previous else message

    def group_of(self, audience: str) -> tuple[PriorityGroup, int] | None:
        for group in self.groups.values():
            if audience in group.audiences:
                return group, group.audiences.index(audience) + 1
        return None


def _where(file: Path, lines: dict[str, int], path: str) -> str:
    line = lines.get(path)
    while line is None and path:
        path = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path) if re.search(r"[.\[]", path) else ""
        line = lines.get(path)
    return f"{file}:{line}" if line else str(file)


# --- YAML with line numbers ------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """The safe loader, with an impossible date (``2026-02-30``) a YAML error at its line:
    PyYAML's own raised a bare ValueError, which stopped the whole audiences stage."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a date ({exc})", node.start_mark
        ) from exc


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _load_yaml_with_lines(text: str) -> tuple[Any, dict[str, int], list[tuple[str, int, int]]]:
    """Parse YAML safely and map each key path (``where.all[0].feature``) to its line.

    Also returns the keys given twice in one mapping (path, line, line of the first one):
    YAML loaders keep the last silently, so a second ``consent:`` or ``suppress:`` further
    down a file would replace the first without a word.
    """
    node = yaml.compose(text, Loader=_Loader)
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []

    def walk(n: yaml.Node | None, path: str) -> None:
        if n is None:
            return
        if path not in lines:
            lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in n.value:
                sub = f"{path}.{key_node.value}" if path else str(key_node.value)
                line = key_node.start_mark.line + 1
                if sub in seen:
                    duplicates.append((sub, line, seen[sub]))
                seen[sub] = line
                lines[sub] = line
                walk(value_node, sub)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, f"{path}[{i}]")

    walk(node, "")
    return yaml.load(text, Loader=_Loader), lines, duplicates  # _Loader is a SafeLoader


# --- structure checks ------------------------------------------------------------------


class _Checker:
    """Collects problems for one file; every message names file:line, key and the fault."""

    def __init__(self, file: Path, lines: dict[str, int], partial: bool = False):
        self.file = file
        self.lines = lines
        self.problems: list[str] = []
        self.warnings: list[str] = []
        # Keep the valid conditions of an all/any beside a faulty one, so that the names of
        # a file rejected for its structure are still checked (:func:`_reject`). Never for a
        # definition to build: an audience missing one of its conditions would be wider.
        self.partial = partial

    def fail(self, path: str, message: str) -> None:
        self.problems.append(
            f"{_where(self.file, self.lines, path)}: {path or '<file>'}: {message}"
        )

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(
            f"{_where(self.file, self.lines, path)}: {path or '<file>'}: {message}"
        )

    def keys(self, data: dict, path: str, allowed: tuple[str, ...], required: tuple[str, ...]):
        for key in data:
            if key not in allowed:
                self.fail(_join(path, key), f"unknown key {key!r}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in data:
                where = path or "<file>"
                self.problems.append(
                    f"{_where(self.file, self.lines, path)}: {where}: missing required key {key!r}"
                )

    def name(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.fail(
                path,
                f"{value!r} is not a valid name (lower-case letters, digits and _, "
                "starting with a letter, at most 63 characters)",
            )
            return None
        return value

    def text(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(path, f"expected text, got {type(value).__name__} {value!r}")
            return ""
        return value

    def number(self, value: Any, path: str) -> float | int | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"expected a number, got {value!r}")
            return None
        return value

    def names(self, value: Any, path: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            self.fail(path, "expected a name or a non-empty list of names")
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                where = f"{path}[{i}]" if isinstance(value, list) else path
                self.fail(where, f"expected a name, got {item!r}")
            else:
                out.append(item)
        return tuple(out)

    # conditions

    def condition(self, data: Any, path: str) -> Condition | None:
        if not isinstance(data, dict) or not data:
            self.fail(path, f"a condition must be a mapping, got {data!r}")
            return None
        kinds = [k for k in (*COMBINATORS, *LEAF_KINDS) if k in data]
        if len(kinds) != 1:
            found = (
                f"found {', '.join(kinds)}" if kinds else f"found keys {', '.join(map(str, data))}"
            )
            self.fail(
                path,
                "a condition needs exactly one of "
                f"{', '.join((*COMBINATORS, *LEAF_KINDS))}; {found}",
            )
            return None
        kind = kinds[0]
        if kind in ("all", "any"):
            self.keys(data, path, (kind,), ())
            items = data[kind]
            if not isinstance(items, list) or not items:
                self.fail(_join(path, kind), "expected a non-empty list of conditions")
                return None
            children = [self.condition(c, f"{_join(path, kind)}[{i}]") for i, c in enumerate(items)]
            if any(c is None for c in children):
                children = [c for c in children if c is not None] if self.partial else []
                if not children:
                    return None
            return Condition(kind=kind, path=path, children=tuple(children))
        if kind == "not":
            self.keys(data, path, ("not",), ())
            child = self.condition(data["not"], _join(path, "not"))
            return Condition(kind="not", path=path, children=(child,)) if child else None
        if kind == "feature":
            return self._feature(data, path)
        if kind in ("rule_segment", "ml_segment"):
            self.keys(data, path, (kind,), ())
            names = self.names(data[kind], _join(path, kind))
            return Condition(kind=kind, path=_join(path, kind), names=names) if names else None
        return self._propensity(data, path)

    def _feature(self, data: dict, path: str) -> Condition | None:
        self.keys(data, path, ("feature", *COMPARISONS), ())
        names = self.names(data["feature"], _join(path, "feature"))
        ops = [k for k in COMPARISONS if k in data]
        if len(ops) != 1:
            self.fail(
                path,
                f"feature {data['feature']!r} needs exactly one comparison of "
                f"{', '.join(COMPARISONS)}; found {len(ops)}",
            )
            return None
        if len(names) != 1:
            self.fail(_join(path, "feature"), "expected one feature name")
            return None
        op = ops[0]
        value = data[op]
        vpath = _join(path, op)
        if op == "in":
            if not isinstance(value, list) or not value:
                self.fail(vpath, f"expected a non-empty list of values, got {value!r}")
                return None
            value = tuple(value)
        elif op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(vpath, f"expected [low, high], got {value!r}")
                return None
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value) and (
                value[0] > value[1]
            ):
                self.fail(vpath, f"low {value[0]} is greater than high {value[1]}")
                return None
            value = tuple(value)
        elif op == "is_null":
            if not isinstance(value, bool):
                self.fail(vpath, f"expected true or false, got {value!r}")
                return None
        elif value is None or isinstance(value, list | dict):
            self.fail(
                vpath, f"expected a single value (number, text, true/false, date), got {value!r}"
            )
            return None
        return Condition(
            kind="feature", path=_join(path, "feature"), names=names, op=op, value=value
        )

    def _propensity(self, data: dict, path: str) -> Condition | None:
        self.keys(data, path, ("propensity", *PROPENSITY_BOUNDS), ())
        names = self.names(data["propensity"], _join(path, "propensity"))
        if len(names) != 1:
            return None
        bounds = {k: data[k] for k in PROPENSITY_BOUNDS if k in data}
        if not bounds:
            self.fail(
                path,
                f"propensity {names[0]!r} needs at least one of {', '.join(PROPENSITY_BOUNDS)}",
            )
            return None
        ok = True
        for key, value in bounds.items():
            if self.number(value, _join(path, key)) is None:
                ok = False
            elif key.startswith("decile") and not (isinstance(value, int) and 1 <= value <= 10):
                self.fail(_join(path, key), f"a decile is a whole number 1-10, got {value!r}")
                ok = False
            elif key.startswith("score") and not 0 <= value <= 1:
                self.fail(_join(path, key), f"a score is a probability 0-1, got {value!r}")
                ok = False
        for low, high in (("decile_min", "decile_max"), ("score_min", "score_max")):
            if ok and low in bounds and high in bounds and bounds[low] > bounds[high]:
                self.fail(
                    _join(path, low), f"{low} {bounds[low]} is greater than {high} {bounds[high]}"
                )
                ok = False
        if not ok:
            return None
        return Condition(
            kind="propensity",
            path=_join(path, "propensity"),
            names=names,
            params=tuple(sorted(bounds.items())),
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- per kind --------------------------------------------------------------------------

_AUDIENCE_KEYS = (
    "kind",
    "name",
    "description",
    "consent",
    "where",
    "suppress",
    "limit",
    "holdout",
    "exports",
)


def _audience(c: _Checker, data: dict, sha: str) -> Audience | None:
    c.keys(data, "", _AUDIENCE_KEYS, ("name", "consent", "where"))
    name = c.name(data.get("name"), "name") if "name" in data else None
    description = c.text(data.get("description"), "description")
    consent = data.get("consent")
    if "consent" in data and consent not in CONSENTS:
        c.fail(
            "consent",
            f"must be one of {', '.join(CONSENTS)} (consent is required), got {consent!r}",
        )
    where = c.condition(data["where"], "where") if "where" in data else None

    suppress: tuple[str, ...] = ()
    if "suppress" in data:
        suppress = c.names(data["suppress"], "suppress")

    limit = None
    order_by = None
    if "limit" in data:
        lim = data["limit"]
        if not isinstance(lim, dict):
            c.fail("limit", f"expected a mapping with size and order_by, got {lim!r}")
        else:
            c.keys(lim, "limit", ("size", "order_by"), ("size", "order_by"))
            size = lim.get("size")
            if "size" in lim and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
                c.fail("limit.size", f"expected a positive whole number, got {size!r}")
            else:
                limit = size
            if "order_by" in lim:
                order_by = _order_by(c, lim["order_by"], "limit.order_by")

    percent = 0.0
    salt = ""
    if "holdout" in data:
        hold = data["holdout"]
        if not isinstance(hold, dict):
            c.fail("holdout", f"expected a mapping with percent (and optional salt), got {hold!r}")
        else:
            c.keys(hold, "holdout", ("percent", "salt"), ("percent",))
            p = hold.get("percent")
            if "percent" in hold and (c.number(p, "holdout.percent") is not None):
                if not 0 <= p < 100:
                    c.fail("holdout.percent", f"must be at least 0 and below 100, got {p!r}")
                else:
                    percent = float(p)
                    # percent: 0.1 meant as a fraction (10%) holds out 1 customer in 1000.
                    if 0 < p < 1:
                        c.warn(
                            "holdout.percent",
                            f"{p!r} holds out {p!r}% of the audience (1 customer in "
                            f"{round(100 / p):,}); percent is in percent (10 for 10%): write "
                            f"{p * 100:g} if {p!r} was meant as a fraction",
                        )
            salt = c.text(hold.get("salt"), "holdout.salt")

    exports: tuple[str, ...] = ()
    if "exports" in data:
        exports = c.names(data["exports"], "exports")
        for i, fmt in enumerate(exports):
            if fmt not in EXPORT_FORMATS:
                c.fail(
                    f"exports[{i}]", f"unknown format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}"
                )

    if c.problems or not (name and where and consent):
        return None
    return Audience(
        name=name,
        description=description,
        consent=consent,
        where=where,
        file=c.file,
        source_sha256=sha,
        suppress=suppress,
        limit=limit,
        order_by=order_by,
        holdout_percent=percent,
        holdout_salt=salt,
        exports=exports,
        lines=c.lines,
    )


def _order_by(c: _Checker, data: Any, path: str) -> OrderBy | None:
    if not isinstance(data, dict):
        c.fail(
            path, f"expected {{feature: NAME}} or {{propensity: MODEL}} and direction, got {data!r}"
        )
        return None
    c.keys(data, path, ("feature", "propensity", "direction"), ())
    kinds = [k for k in ("feature", "propensity") if k in data]
    if len(kinds) != 1:
        c.fail(path, "order_by needs exactly one of feature, propensity")
        return None
    direction = data.get("direction", "desc")
    if direction not in ("asc", "desc"):
        c.fail(_join(path, "direction"), f"must be asc or desc, got {direction!r}")
        return None
    name = data[kinds[0]]
    if not isinstance(name, str):
        c.fail(_join(path, kinds[0]), f"expected a name, got {name!r}")
        return None
    return OrderBy(kind=kinds[0], name=name, descending=direction == "desc")


def _suppression(c: _Checker, data: dict, folder: Path) -> Suppression | None:
    c.keys(data, "", ("kind", "name", "description", "where", "customer_ids_file"), ("name",))
    name = c.name(data.get("name"), "name") if "name" in data else None
    description = c.text(data.get("description"), "description")
    has = [k for k in ("where", "customer_ids_file") if k in data]
    if len(has) != 1:
        c.fail("", "a suppression list needs exactly one of where, customer_ids_file")
        return None
    where = None
    ids_file = None
    if "where" in data:
        where = c.condition(data["where"], "where")
    else:
        raw = data["customer_ids_file"]
        if not isinstance(raw, str):
            c.fail("customer_ids_file", f"expected a path, got {raw!r}")
        else:
            ids_file = (folder / raw) if not Path(raw).is_absolute() else Path(raw)
            if not ids_file.is_file():
                c.fail("customer_ids_file", f"file {ids_file} does not exist")
            else:
                columns, unreadable = _csv_columns(ids_file)
                if unreadable:
                    c.fail("customer_ids_file", f"{ids_file} cannot be read: {unreadable}")
                elif "customer_id" not in columns:
                    c.fail(
                        "customer_ids_file",
                        f"{ids_file} has no customer_id column; its first line must be a "
                        f"header naming it (columns read: {', '.join(columns) or 'none'})",
                    )
    if c.problems or not name:
        return None
    return Suppression(
        name=name,
        description=description,
        file=c.file,
        where=where,
        customer_ids_file=ids_file,
        lines=c.lines,
    )


def _utf8(raw: bytes) -> tuple[str | None, int, str]:
    """The text of ``raw``, or None with the line and the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8"), 0, ""
    except UnicodeDecodeError as exc:
        return None, raw[: exc.start].count(b"\n") + 1, f"0x{raw[exc.start]:02x}"


def ids_file_sql(path: Path) -> str:
    """SQL: ``read_csv`` of a suppression list's id file, every column text. The separator is
    the one its header line uses (``,``, ``;``, a tab or ``|``), ``,`` when the header is one
    column: sniffed, a column of Auth0 ids (``auth0|5f7c...``) was split at the ``|`` and the
    file refused as having no ``customer_id`` column."""
    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace").removeprefix("\ufeff")
    found = [(first.find(d), d) for d in (",", ";", "\t", "|") if d in first]
    delimiter = min(found)[1] if found else ","
    return (
        f"read_csv({sql_literal(str(path))}, header = true, all_varchar = true, "
        f"delim = {sql_literal(delimiter)})"
    )


def _csv_columns(path: Path) -> tuple[list[str], str]:
    """The header of a CSV file as the builder's ``read_csv`` sees it (``ids_file_sql``,
    byte-order mark dropped), or why it cannot be read: a list without ``customer_id``
    would not suppress anyone."""
    # Excel's plain "CSV" is the Windows code page ("über" is the byte 0xfc).
    text, line, byte = _utf8(path.read_bytes())
    if text is None:
        return [], f"line {line} is not UTF-8 (byte {byte}); save it as CSV UTF-8"
    try:
        rows = duckdb.sql(f"describe select * from {ids_file_sql(path)}").fetchall()
    except duckdb.Error as exc:
        return [], str(exc).splitlines()[0]
    return [r[0] for r in rows], ""


def _group(c: _Checker, data: dict) -> PriorityGroup | None:
    c.keys(data, "", ("kind", "name", "description", "audiences"), ("name", "audiences"))
    name = c.name(data.get("name"), "name") if "name" in data else None
    description = c.text(data.get("description"), "description")
    members: tuple[str, ...] = ()
    if "audiences" in data:
        raw = data["audiences"]
        if not isinstance(raw, list) or len(raw) < 2:
            c.fail(
                "audiences",
                "expected a list of at least two audience names, highest priority first",
            )
        else:
            members = c.names(raw, "audiences")
            dupes = sorted({m for m in members if members.count(m) > 1})
            if dupes:
                c.fail("audiences", f"listed more than once: {', '.join(dupes)}")
    if c.problems or not name:
        return None
    return PriorityGroup(
        name=name, description=description, audiences=members, file=c.file, lines=c.lines
    )


def load_definitions(folder: Path, strict: bool = True) -> Definitions:
    """Read every ``*.yml``/``*.yaml`` file of ``folder``.

    ``strict`` (validation, CI): raise one :class:`DefinitionError` listing every fault.
    Lenient (the nightly stage): keep what is valid, list the faults in ``problems`` and
    mark the audiences they touch in ``failed`` (an audience naming a broken suppression
    list, every audience of a broken priority group).
    """
    folder = Path(folder)
    defs = Definitions(folder=folder)
    if not folder.is_dir():
        raise DefinitionError([f"{folder}: audience definitions folder does not exist"])
    problems: list[str] = []
    seen: dict[str, Path] = {}
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    for file in files:
        # A file saved as Windows-1252 ("Café" in a description) stopped the whole stage
        # with a bare UnicodeDecodeError naming no file.
        text, line, byte = _utf8(file.read_bytes())
        if text is None:
            problems.append(f"{file}:{line}: not UTF-8 text (byte {byte}); save the file as UTF-8")
            continue
        sha = hashlib.sha256(text.encode()).hexdigest()
        try:
            data, lines, duplicates = _load_yaml_with_lines(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{file}:{mark.line + 1}" if mark else str(file)
            problems.append(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}")
            continue
        c = _Checker(file, lines)
        for path, line, first in duplicates:
            c.problems.append(
                f"{file}:{line}: {path}: key given twice (first on line {first}); only one "
                "is kept, so say it once"
            )
        if not isinstance(data, dict):
            c.fail(
                "",
                f"expected a mapping of keys (name, description, ...), got {type(data).__name__}",
            )
            problems.extend(c.problems)
            continue
        kind = data.get("kind", "audience")
        obj: Audience | Suppression | PriorityGroup | None
        if kind == "audience":
            obj = _audience(c, data, sha)
        elif kind == "suppression":
            obj = _suppression(c, data, folder)
        elif kind == "priority_group":
            obj = _group(c, data)
        else:
            c.fail("kind", f"unknown kind {kind!r}; kinds: audience, suppression, priority_group")
            obj = None
        problems.extend(c.problems)
        defs.warnings.extend(c.warnings)
        if obj is None:
            if kind == "audience":
                _reject(defs, seen, file, data, sha, lines, c.problems)
            continue
        if obj.name in seen:
            problems.append(f"{file}: name: {obj.name!r} is already defined in {seen[obj.name]}")
            continue
        seen[obj.name] = file
        target = {
            Audience: defs.audiences,
            Suppression: defs.suppressions,
            PriorityGroup: defs.groups,
        }[type(obj)]
        target[obj.name] = obj

    # cross references
    for aud in defs.audiences.values():
        for i, s in enumerate(aud.suppress):
            if s not in defs.suppressions:
                known = ", ".join(sorted(defs.suppressions)) or "none defined"
                msg = (
                    f"{aud.where_line(f'suppress[{i}]')}: suppress[{i}]: unknown suppression "
                    f"list {s!r} (known: {known})"
                )
                problems.append(msg)
                defs.fail(aud.name, msg)
    member_of: dict[str, str] = {}
    for group in defs.groups.values():
        group_problems = []
        for i, a in enumerate(group.audiences):
            path = f"audiences[{i}]"
            if a in defs.rejected:
                group_problems.append(
                    f"{group.where_line(path)}: {path}: audience {a!r} is invalid "
                    f"({defs.rejected[a].file})"
                )
            elif a not in defs.audiences:
                known = ", ".join(sorted(defs.audiences)) or "none defined"
                group_problems.append(
                    f"{group.where_line(path)}: {path}: unknown audience {a!r} (known: {known})"
                )
            elif a in member_of:
                group_problems.append(
                    f"{group.where_line(path)}: {path}: audience {a!r} is already in priority "
                    f"group {member_of[a]!r}; an audience belongs to at most one group"
                )
            else:
                member_of[a] = group.name
        problems.extend(group_problems)
        for a in group.audiences if group_problems else ():
            defs.fail(a, f"priority group {group.name!r} is invalid: {group_problems[0]}")
    if problems and strict:
        raise DefinitionError(problems)
    defs.problems = problems
    return defs


def _reject(
    defs: Definitions,
    seen: dict[str, Path],
    file: Path,
    data: dict,
    sha: str,
    lines: dict[str, int],
    problems: list[str],
) -> None:
    """Keep an invalid audience file by its name (when it gives a valid, unused one): the
    nightly stage records a ``failed`` row for it instead of leaving it out unseen."""
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or name in seen:
        return
    seen[name] = file
    description = data.get("description")
    # Parsed again with a checker of its own: its faults are already in ``problems``.
    checker = _Checker(file, lines, partial=True)
    where = checker.condition(data["where"], "where") if "where" in data else None
    defs.rejected[name] = RejectedAudience(
        name=name,
        description=description if isinstance(description, str) else "",
        consent=data.get("consent") if data.get("consent") in CONSENTS else None,
        file=file,
        source_sha256=sha,
        error="; ".join(problems) or f"{file}: incomplete definition",
        where=where,
        lines=lines,
    )


def sql_literal(value: Any) -> str:
    """A SQL literal for a validated YAML scalar (text, number, boolean or date)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot use {value!r} in SQL")
