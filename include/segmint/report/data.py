"""Read-only access to the warehouse for the report, tolerant of tables still being built.

The report reads tables other stages write, and those stages evolve. Every query goes
through :class:`Reader`, which knows which tables and columns exist; a block of the report
that needs something absent raises :class:`Missing` with a short reason, and the page shows
"not available yet: <reason>" instead of failing. All aggregation happens in DuckDB: the
report never pulls customer-level rows into Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import duckdb
import pandas as pd


class Missing(Exception):
    """A block's input is absent; the message says what, for the page."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Reader:
    """A read-only connection plus the catalogue of tables and columns it can see."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        rows = con.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns order by table_schema, table_name, "
            "ordinal_position"
        ).fetchall()
        self._columns: dict[str, dict[str, str]] = {}
        for schema, table, column, dtype in rows:
            self._columns.setdefault(f"{schema}.{table}".lower(), {})[column.lower()] = dtype

    # --- catalogue -----------------------------------------------------------------------

    def has(self, table: str) -> bool:
        return table.lower() in self._columns

    def columns(self, table: str) -> dict[str, str]:
        return self._columns.get(table.lower(), {})

    def require(self, table: str, *columns: str) -> None:
        """Raise :class:`Missing` unless ``table`` exists with every column named."""
        if not self.has(table):
            raise Missing(f"table {table} does not exist yet")
        absent = [c for c in columns if c.lower() not in self.columns(table)]
        if absent:
            raise Missing(f"{table} has no column {', '.join(absent)}")

    def pick(self, table: str, *candidates: str, required: bool = False) -> str | None:
        """The first candidate column that ``table`` has (case-insensitive)."""
        cols = self.columns(table)
        for candidate in candidates:
            if candidate.lower() in cols:
                return candidate.lower()
        if required:
            raise Missing(f"{table} has none of the columns {', '.join(candidates)}")
        return None

    def is_list(self, table: str, column: str) -> bool:
        return self.columns(table).get(column.lower(), "").endswith("[]")

    # --- queries -------------------------------------------------------------------------

    def df(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self.con.execute(sql, list(params)).df()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.con.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    def dates(self, table: str, column: str = "as_of_date", up_to: date | None = None) -> list:
        """Distinct dates in ``table.column`` (at or before ``up_to``), newest first."""
        if not self.has(table) or column.lower() not in self.columns(table):
            return []
        where = f"where {quote(column)} <= ?" if up_to else ""
        params = [up_to] if up_to else []
        return [
            r[0]
            for r in self.rows(
                f"select distinct {quote(column)} from {table} {where} order by 1 desc", params
            )
            if r[0] is not None
        ]


# --- long-format metrics ---------------------------------------------------------------

# Index columns a curve metric may carry (a decile, a calibration bin, a ROC point).
INDEX_COLUMNS = ("decile", "bin", "bucket", "point", "idx", "position", "step", "rank")
# Or the index is the metric name's numeric tail: lift_decile_3, capture@3, roc_fpr_012.
_NAME_INDEX = re.compile(
    r"^(?P<base>.+?)[_@:#./\-\[](?:decile|bin|bucket|point|d|q|at)?[_\-]?(?P<idx>\d+)\]?$"
)


def split_metric_name(name: str) -> tuple[str, int | None]:
    """``'lift_decile_3'`` -> ``('lift', 3)``; ``'roc_auc'`` -> ``('roc_auc', None)``."""
    match = _NAME_INDEX.match(name.strip().lower())
    if not match:
        return name.strip().lower(), None
    return match.group("base"), int(match.group("idx"))


def parse_metrics(
    frame: pd.DataFrame, index_column: str | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, pd.Series]]]:
    """Split long-format metric rows into scalars and curves, per scorer.

    ``frame`` has ``scorer, metric, value`` (and optionally an index column). Returns
    ``(scalars[scorer][metric] = value, curves[scorer][base] = Series(index -> value))``.
    """
    scalars: dict[str, dict[str, float]] = {}
    curves: dict[str, dict[str, dict[int, float]]] = {}
    if frame.empty:
        return {}, {}
    index_values = (
        frame[index_column].tolist() if index_column else [None] * len(frame)
    )  # tolist over a small frame: metrics are a few hundred rows per run
    for scorer, metric, value, idx in zip(
        frame["scorer"].astype(str),
        frame["metric"].astype(str),
        frame["value"],
        index_values,
        strict=True,
    ):
        if value is None or pd.isna(value):
            continue
        if idx is not None and not pd.isna(idx):
            base, pos = metric.strip().lower(), int(idx)
        else:
            base, pos = split_metric_name(metric)
        if pos is None:
            scalars.setdefault(scorer, {})[base] = float(value)
        else:
            curves.setdefault(scorer, {}).setdefault(base, {})[pos] = float(value)
    return scalars, {
        scorer: {base: pd.Series(points).sort_index() for base, points in bases.items()}
        for scorer, bases in curves.items()
    }


def find_curve(
    curves: dict[str, pd.Series], include: Iterable[str], exclude: Iterable[str] = ()
) -> pd.Series | None:
    """The first curve whose base name contains every word of ``include`` and none of
    ``exclude`` (words may be alternatives separated by ``|``)."""
    for base in sorted(curves, key=len):
        name = base.lower()
        if all(any(w in name for w in word.split("|")) for word in include) and not any(
            w in name for w in exclude
        ):
            return curves[base]
    return None


SCALAR_ALIASES = {
    "auc": ("roc_auc", "auc", "auc_roc", "rocauc"),
    "ap": ("average_precision", "pr_auc", "ap", "auprc"),
    "brier": ("brier", "brier_score", "brier_score_loss"),
}


def scalar(metrics: dict[str, float], kind: str) -> float | None:
    for alias in SCALAR_ALIASES[kind]:
        if alias in metrics:
            return metrics[alias]
    return None
