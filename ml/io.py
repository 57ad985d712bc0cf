"""The only place ML code touches the warehouse.

Readers return DataFrames; :func:`write_outputs` writes every output of one run in one
transaction, replacing earlier rows for the same keys, so readers never see half a run and
a rerun of an as-of date leaves the same results.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from segmint.warehouse import connect, table_exists, transaction

MODEL_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS ml.model_runs (
    run_id VARCHAR PRIMARY KEY,
    model_name VARCHAR NOT NULL,
    as_of_date DATE NOT NULL,
    training_rows BIGINT,
    params JSON,
    metrics JSON,
    library_versions JSON,
    git_revision VARCHAR,
    artifact_path VARCHAR,
    status VARCHAR NOT NULL,          -- 'published' | 'not_published' | 'failed'
    message VARCHAR,
    created_at TIMESTAMP NOT NULL
)
"""


# Written by every model stage that evaluates (propensity, recommendations): long format,
# one row per (run, model, scorer, metric[, decile]).
MODEL_METRICS_DDL = """
create table if not exists ml.model_metrics (
    run_id varchar not null,
    model_name varchar not null,
    as_of_date date not null,
    scorer varchar not null,
    metric varchar not null,
    value double,
    decile integer
)
"""


def json_safe(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars plain numbers, dates ISO strings."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


def new_run_id(model_name: str, as_of: date) -> str:
    return f"{model_name}-{as_of.isoformat()}-{uuid.uuid4().hex[:8]}"


def read_frame(warehouse: Path, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    con = connect(warehouse, read_only=True)
    try:
        return con.execute(sql, list(params)).df()
    finally:
        con.close()


@dataclass
class TableWrite:
    """Replace the rows matching ``delete_where`` in ``table`` by ``frame`` (a DataFrame or
    an Arrow table)."""

    table: str
    frame: Any
    delete_where: str = ""
    delete_params: Sequence[Any] = ()
    # Optional ``CREATE TABLE IF NOT EXISTS`` statement giving the table explicit types;
    # without it a new table takes the frame's dtypes (which an empty frame cannot give).
    ddl: str = ""
    # Optional statement run after the frame's insert, in the same transaction (e.g. rows
    # carried over from an earlier date inside the warehouse, never through Python); it may
    # read ``then_frame`` as ``{then}``.
    then_sql: str = ""
    then_params: Sequence[Any] = ()
    then_frame: pd.DataFrame | None = None


def write_outputs(
    warehouse: Path,
    writes: Sequence[TableWrite],
    model_run: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Write all tables of one run in one transaction.

    A table that does not exist yet is created by the write's ``ddl`` if given, else from the
    frame's dtypes. ``model_run`` is a row for ``ml.model_runs`` (keys as its columns; dicts
    are stored as JSON), or a list of such rows (one per model of a multi-model stage).
    """
    con = connect(warehouse)
    try:
        con.execute(MODEL_RUNS_DDL)
        with transaction(con):
            for i, write in enumerate(writes):
                view = f"_segmint_write_{i}"
                con.register(view, write.frame)
                if write.ddl:
                    con.execute(write.ddl)
                if not table_exists(con, write.table):
                    con.execute(f"CREATE TABLE {write.table} AS SELECT * FROM {view} LIMIT 0")
                if write.delete_where:
                    con.execute(
                        f"DELETE FROM {write.table} WHERE {write.delete_where}",
                        list(write.delete_params),
                    )
                names = getattr(write.frame, "column_names", None)  # an Arrow table
                cols = ", ".join(f'"{c}"' for c in (names or write.frame.columns))
                con.execute(f"INSERT INTO {write.table} ({cols}) SELECT {cols} FROM {view}")
                if write.then_sql:
                    then = f"_segmint_then_{i}"
                    if write.then_frame is not None:
                        con.register(then, write.then_frame)
                    con.execute(write.then_sql.replace("{then}", then), list(write.then_params))
                    if write.then_frame is not None:
                        con.unregister(then)
                con.unregister(view)
            runs = [model_run] if isinstance(model_run, Mapping) else list(model_run or [])
            for run in runs:
                row = {
                    k: json.dumps(v, default=str) if isinstance(v, dict | list) else v
                    for k, v in run.items()
                }
                row.setdefault("created_at", datetime.utcnow())
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                con.execute(
                    f"INSERT OR REPLACE INTO ml.model_runs ({cols}) VALUES ({marks})",
                    list(row.values()),
                )
    finally:
        con.close()
