"""Great Expectations on the pandas engine: run a source's suite over one typed batch.

The suites live in ``expectations/suites/`` (one module per source). This module owns the GX
plumbing: an ephemeral data context, one pandas data asset and validation definition per
source, the row-level result format that routes each failing record, and the Data Docs
site written under the run's output folder. ``great_expectations`` is imported only when a
:class:`BatchValidator` is created (it takes seconds to import).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from expectations.suites import SUITE_MODULES
from segmint.config import IngestSettings

# Row-level results: each failing row is identified by these columns of the batch.
INDEX_COLUMNS = {
    "events": ["_file", "_line"],
    "crm": ["_file", "_line"],
    "partitions": ["source", "partition_date"],
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _failing_keys(index_list: Any, index: list[str]) -> Any:
    """The failing rows' ``index`` values (a pandas MultiIndex) from a GX result, or None.

    With ``exclude_unexpected_values`` GX lists them column-wise: ``[{"_file": [...],
    "_line": [...]}]``.
    """
    import pandas as pd

    if not index_list or not len(next(iter(index_list[0].values()))):
        return None
    return pd.MultiIndex.from_frame(pd.DataFrame(index_list[0])[index])


def _condition_text(condition: Any) -> str | None:
    """The pandas expression of a GX row condition (string, dict or condition object)."""
    if condition is None or condition == "":
        return None
    if isinstance(condition, dict):
        return condition.get("pass_through_filter")
    return getattr(condition, "pass_through_filter", None) or str(condition)


@dataclass
class RuleResult:
    """One expectation's outcome on one batch."""

    rule: str
    level: str  # record | warning | batch
    description: str
    expectation_type: str
    column: str | None
    field: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: str | None
    kwargs: str
    order: int
    # The landing-text column the rule is conditioned on (shown as the offending value).
    text_column: str | None = None
    row_condition: str | None = None
    mostly: float = 1.0
    # Failing rows: columns ``_line`` and ``value`` (the offending value as text, or NA).
    failing: Any = None


def quiet_gx_logging() -> None:
    """Keep GX's INFO records out of the logs (its warnings and errors still show).

    GX logs its own workings at INFO: some fifty "Skipping registering function ..." lines
    while it imports, "Loading 'datasources' ->" and "[]" for every context. In an Airflow
    task log and under ``segmint -v`` they buried the stage's own lines. A level someone set
    on the ``great_expectations`` logger is kept."""
    logger = logging.getLogger("great_expectations")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


@dataclass
class BatchValidator:
    """GX context for one ingest run; ``validate`` once per batch, ``build_docs`` at the end."""

    settings: IngestSettings
    docs_dir: Path | None = None
    # Where the validation results behind the Data Docs are kept (JSON files), so a run that
    # validates nothing (a rerun after the Data Docs could not be written: its batches were
    # loaded) renders them again. None: in memory, for this run's Data Docs only.
    results_dir: Path | None = None
    _context: Any = field(init=False, default=None)
    _definitions: dict[str, Any] = field(init=False, default_factory=dict)
    _rules: dict[str, list[dict]] = field(init=False, default_factory=dict)
    _suites: dict[str, Any] = field(init=False, default_factory=dict)
    _validated: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        quiet_gx_logging()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # GX pins this module's logger at INFO ("Created temporary directory ... for
        # ephemeral docs site" on every context, in every task log): let it follow the
        # levels the application set, like every other logger.
        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)

        context = gx.get_context(project_config=self._project_config(), mode="ephemeral")
        # No "Calculating Metrics" bars: in Airflow's task logs they are noise, not progress.
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        if self.docs_dir is not None:
            context.add_data_docs_site(
                site_name="segmint",
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(Path(self.docs_dir).resolve()),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        datasource = context.data_sources.add_pandas("landing")
        for source, module_name in SUITE_MODULES.items():
            module = importlib.import_module(module_name)
            suite = context.suites.add(module.build_suite(self.settings))
            batch_definition = datasource.add_dataframe_asset(
                source
            ).add_batch_definition_whole_dataframe(f"{source}_file")
            self._definitions[source] = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{source}_file", data=batch_definition, suite=suite)
            )
            self._suites[source] = module
            self._rules[source] = [
                {
                    "rule": e.meta["rule"],
                    "level": e.meta["level"],
                    "field": e.meta.get("field"),
                    "description": e.description or e.meta["rule"],
                    "order": i,
                }
                for i, e in enumerate(suite.expectations)
            ]
        self._context = context

    def _project_config(self) -> Any:
        """GX's in-memory stores, but for the validation results when ``results_dir`` is
        set; and no second docs site (GX's default adds one in /tmp, never built here)."""
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        )
        if self.results_dir is not None:
            config.stores[config.validation_results_store_name]["store_backend"] = {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(self.results_dir).resolve()),
            }
        return config

    @property
    def _docs_complete(self) -> Path | None:
        """The mark that the Data Docs render every kept validation result."""
        return None if self.docs_dir is None else Path(self.docs_dir) / DOCS_COMPLETE

    def docs_pending(self) -> bool:
        """Whether kept validation results are not all in the Data Docs (their writing failed
        or has not run); :meth:`build_docs` writes them."""
        return docs_pending(self.docs_dir, self.results_dir)

    def prefilter(self, source: str) -> list[tuple[str, str, str]]:
        """``(rule, domain_sql, unexpected_sql)`` for every row-level expectation of a suite.

        The loader evaluates these in DuckDB over the whole batch and sends GX only the rows
        that may fail (plus a sample of the others, to check that the SQL and the suite agree):
        GX's pandas engine costs about 0.1 s per expectation per million rows, too much to
        spend on rows that pass everything. GX's row-level results still decide.
        """
        return [
            (e.meta["rule"], *unexpected_sql(e))
            for e in self._definitions[source].suite.expectations
            if e.meta["level"] in ("record", "warning")
        ]

    def levels(self, source: str) -> dict[str, str]:
        """``{rule: level}`` for every expectation of a suite."""
        return {r["rule"]: r["level"] for r in self._rules[source]}

    def suite_name(self, source: str) -> str:
        return self._suites[source].SUITE_NAME

    def ts_limit_column(self, source: str) -> str:
        return self._suites[source].TS_LIMIT

    def columns(self, source: str, available: list[str]) -> list[str]:
        """The batch columns the suite reads (its columns and row conditions) plus ``_line``."""
        wanted = set(INDEX_COLUMNS[source])
        for e in self._definitions[source].suite.expectations:
            for attr in ("column", "column_A", "column_B"):
                column = getattr(e, attr, None)
                if column:
                    wanted.add(column)
            condition = _condition_text(getattr(e, "row_condition", None))
            if condition:
                wanted.update(_IDENT.findall(condition))
        return [c for c in available if c in wanted]

    def validate(self, source: str, frame: Any, run_name: str) -> list[RuleResult]:
        """Run the source's suite on ``frame``; one :class:`RuleResult` per expectation.

        ``run_name`` names the run in the Data Docs (:func:`docs_run_name`)."""
        import pandas as pd
        from great_expectations.core.run_identifier import RunIdentifier

        index = INDEX_COLUMNS[source]
        if self._docs_complete is not None:
            self._docs_complete.unlink(missing_ok=True)  # a result the Data Docs lack
        # The routing columns are the frame's (named) index and GX lists the failing rows
        # without their values: given them as plain columns, GX looks every failing row up
        # cell by cell in pandas and stores the values with it, seconds per batch.
        frame = frame.set_index(index)
        try:
            result = self._definitions[source].run(
                batch_parameters={"dataframe": frame},
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": index,
                    "exclude_unexpected_values": True,
                    "return_unexpected_index_query": False,
                },
                run_id=RunIdentifier(run_name=docs_run_name(run_name)),
            )
        except OSError as exc:  # keeping the result (results_dir)
            if self.results_dir is None:
                raise
            raise _naming(exc, "the validation results", self.results_dir) from exc
        self._validated = True
        by_rule = {r["rule"]: r for r in self._rules[source]}
        out = []
        for res in result.results:
            config = res.expectation_config
            raised = _raised(res.exception_info)
            if raised is not None:
                rule_name = config.meta.get("rule")
                raise RuntimeError(f"GX expectation {rule_name} raised: {raised}")
            rule = by_rule[config.meta["rule"]]
            column = config.kwargs.get("column") or config.kwargs.get("column_B")
            detail = res.result or {}
            failing = None
            keys = _failing_keys(detail.get("unexpected_index_list"), index)
            if keys is not None:
                failing = keys.to_frame(index=False)
                if column in frame:
                    values = frame[column].reindex(keys).astype("string").str.slice(0, 80)
                    failing["value"] = values.to_numpy()
                else:
                    failing["value"] = pd.Series(pd.NA, index=failing.index, dtype="string")
            condition = _condition_text(config.kwargs.get("row_condition")) or ""
            text_columns = [c for c in _IDENT.findall(condition) if c.endswith("_text")]
            observed = detail.get("observed_value")
            kwargs = {
                k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")
            }
            out.append(
                RuleResult(
                    rule=rule["rule"],
                    level=rule["level"],
                    description=rule["description"],
                    expectation_type=config.type,
                    column=column,
                    field=rule["field"],
                    success=bool(res.success),
                    element_count=detail.get("element_count"),
                    unexpected_count=detail.get("unexpected_count"),
                    unexpected_percent=detail.get("unexpected_percent"),
                    observed_value=None if observed is None else str(observed),
                    kwargs=json.dumps(kwargs, default=str, sort_keys=True),
                    order=rule["order"],
                    text_column=text_columns[0] if text_columns else None,
                    row_condition=condition or None,
                    mostly=float(config.kwargs.get("mostly") or 1.0),
                    failing=failing,
                )
            )
        return sorted(out, key=lambda r: r.order)

    def build_docs(self) -> Path | None:
        """Render the Data Docs site for every batch validated so far (and every result kept
        in ``results_dir``); returns its index."""
        if self.docs_dir is None or not (self._validated or self.docs_pending()):
            return None
        assert self._docs_complete is not None
        try:
            self._docs_complete.unlink(missing_ok=True)
            self._context.build_data_docs(site_names=["segmint"])
            self._docs_complete.touch()
        except OSError as exc:
            raise _naming(exc, "the validation Data Docs", self.docs_dir) from exc
        return Path(self.docs_dir) / "index.html"


def _naming(exc: OSError, what: str, folder: Path) -> OSError:
    """``exc``, or the same error naming ``folder`` when it names no file. GX writes its
    pages, assets and results with open().write(): a full disk or a file-size limit fails
    with no file named ("[Errno 28] No space left on device"). Still an OSError, so the
    task is retried as for any other fault of the disk."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, f"writing {what} in {folder}: {exc.strerror}", str(folder))


# In the Data Docs folder once they render every kept validation result.
DOCS_COMPLETE = ".segmint-complete"


def docs_pending(docs_dir: Path | None, results_dir: Path | None) -> bool:
    """Whether ``results_dir`` keeps validation results that the Data Docs in ``docs_dir``
    do not all render: their writing failed (a full disk) or was never reached."""
    if docs_dir is None or results_dir is None or (Path(docs_dir) / DOCS_COMPLETE).exists():
        return False
    return Path(results_dir).is_dir() and any(
        p.is_file() for p in Path(results_dir).rglob("*.json")
    )


# GX stores a validation in a folder named by its run: a name longer than a file name may be
# (255 bytes) lost the batch's page in the Data Docs, with an error only in GX's log.
_RUN_NAME_BYTES = 150


def docs_run_name(name: str) -> str:
    """``name`` with ``/`` as ``__``, shortened to at most ``_RUN_NAME_BYTES`` bytes of UTF-8
    (its start and end kept, a digest of the whole between them, so two names stay apart;
    a character cut at either end is dropped)."""
    name = name.replace("/", "__")
    data = name.encode("utf-8", "surrogateescape")
    if len(data) <= _RUN_NAME_BYTES:
        return name
    digest = hashlib.sha1(data).hexdigest()[:12]
    keep = (_RUN_NAME_BYTES - len(digest) - 4) // 2
    head = data[:keep].decode("utf-8", "ignore")
    tail = data[-keep:].decode("utf-8", "ignore")
    return f"{head}..{digest}..{tail}"


def _sql_condition(pandas_expr: str) -> str:
    """The row conditions the suites use, in SQL: ``x.notnull()``, ``x.isnull()`` and
    ``x == "v"``."""
    sql = re.sub(r"(\w+)\.notnull\(\)", r"(\1 is not null)", pandas_expr)
    sql = re.sub(r"(\w+)\.isnull\(\)", r"(\1 is null)", sql)
    sql = re.sub(r'"([^"]*)"', lambda m: "'" + m.group(1).replace("'", "''") + "'", sql)
    return sql.replace("==", "=")


def _raised(info: Any) -> str | None:
    """The message of an exception GX caught while validating one expectation, else None.

    ``exception_info`` is either one ``{"raised_exception": ..., "exception_message": ...}``
    or, when a metric failed, a dict of them keyed by metric: both are checked (a metric's
    TypeError came back as a passed expectation with no unexpected rows)."""
    if not isinstance(info, dict):
        return None
    for exc in [info, *info.values()]:
        if isinstance(exc, dict) and exc.get("raised_exception"):
            return str(exc.get("exception_message"))
    return None


def _sql_value(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return repr(value)


def re2_regex(regex: str) -> str:
    """A suite's (Python) regular expression as DuckDB's RE2 must spell it to match the same
    strings. GX's pandas engine uses ``str.contains`` (``re.search``).

    ``\\Z`` (the end of the string) becomes RE2's ``\\z``. Constructs the two engines read
    differently are refused, so a suite cannot bring the SQL pre-filter out of step again:
    ``\\s \\d \\w \\b`` and their negations (Unicode classes in Python, ASCII in RE2: spell
    the class out, white space as ``contract.UNICODE_SPACE``) and ``$`` (in Python it also
    matches before a final newline: use ``\\Z``).
    """
    out, in_class, i = [], False, 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            if nxt in "sSdDwWbB":
                raise ValueError(
                    f"regex {regex!r}: \\{nxt} is Unicode in Python, ASCII in DuckDB; spell the "
                    "class out (white space: segmint.ingest.contract.UNICODE_SPACE)"
                )
            out.append("\\z" if nxt == "Z" and not in_class else c + nxt)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            # A ] right after [ or [^ is a literal.
            j = i + 1 + (regex[i + 1 : i + 2] == "^")
            if regex[j : j + 1] == "]":
                out.append(regex[i : j + 1])
                i = j + 1
                continue
        elif c == "]" and in_class:
            in_class = False
        elif c == "$" and not in_class:
            raise ValueError(
                f"regex {regex!r}: $ also matches before a final newline in Python; use \\Z"
            )
        out.append(c)
        i += 1
    return "".join(out)


def unexpected_sql(expectation: Any) -> tuple[str, str]:
    """``(domain, unexpected)`` SQL predicates equivalent to a suite expectation.

    Used to choose which rows GX must see (see :meth:`BatchValidator.prefilter`); only the
    expectation types the suites use are supported, anything else raises.
    """
    kind = type(expectation).__name__
    condition = _condition_text(getattr(expectation, "row_condition", None))
    domain = _sql_condition(condition) if condition else "true"
    column = getattr(expectation, "column", None)
    if kind == "ExpectColumnValuesToNotBeNull":
        bad = f"{column} is null"
    elif kind == "ExpectColumnValuesToBeNull":
        bad = f"{column} is not null"
    elif kind == "ExpectColumnValuesToBeInSet":
        values = list(expectation.value_set)
        if values and all(isinstance(v, str) for v in values):
            # An alternation of escaped literals: exact, and a DFA is much faster than a long
            # IN list (which DuckDB also turns into a join, losing the scan's row order).
            pattern = "(?:" + "|".join(re.escape(v) for v in values) + ")"
            bad = f"{column} is not null and not regexp_full_match({column}, {_sql_value(pattern)})"
        else:
            listed = ", ".join(_sql_value(v) for v in values)
            bad = f"{column} is not null and not list_contains([{listed}], {column})"
    elif kind == "ExpectColumnValuesToBeBetween":
        parts = []
        if expectation.min_value is not None:
            parts.append(f"{column} < {_sql_value(expectation.min_value)}")
        if expectation.max_value is not None:
            parts.append(f"{column} > {_sql_value(expectation.max_value)}")
        bad = f"{column} is not null and ({' or '.join(parts)})"
    elif kind == "ExpectColumnPairValuesAToBeGreaterThanB":
        a, b = expectation.column_A, expectation.column_B
        op = ">=" if expectation.or_equal else ">"
        bad = f"{a} is not null and {b} is not null and not ({a} {op} {b})"
    elif kind == "ExpectColumnValuesToMatchRegex":
        regex = _sql_value(re2_regex(expectation.regex))
        bad = f"{column} is not null and not regexp_matches({column}, {regex})"
    elif kind == "ExpectColumnValuesToNotMatchRegex":
        regex = _sql_value(re2_regex(expectation.regex))
        bad = f"{column} is not null and regexp_matches({column}, {regex})"
    else:
        raise ValueError(f"no SQL pre-filter for {kind}")
    return domain, f"({domain}) and ({bad})"
