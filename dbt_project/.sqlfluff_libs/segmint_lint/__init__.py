"""Stand-ins for dbt's Jinja context so sqlfluff's jinja templater renders the models as
dbt-duckdb would: project vars from dbt_project.yml, the dbt.* cross-database macros and
adapter.dispatch with their DuckDB output. Used only by `sqlfluff lint` (see .sqlfluff)."""

import datetime as _datetime
import re as _re
from pathlib import Path as _Path
from types import SimpleNamespace as _NS

import yaml as _yaml

_PROJECT = _yaml.safe_load((_Path(__file__).resolve().parents[2] / "dbt_project.yml").read_text())
_VARS = _PROJECT.get("vars", {})


def var(name, default=None):
    return _VARS.get(name, default)


# The environment segmint.transform sets for a run (macros/vars.sql reads it).
_ENV = {"SEGMINT_AS_OF_DATE": "2026-06-30", "SEGMINT_SNAPSHOT_DATES": "2026-05-31,2026-06-30"}


def env_var(name, default=None):
    return _ENV.get(name, default)


def is_incremental():
    return False


execute = False
modules = _NS(re=_re, datetime=_datetime)


def _raise(message):
    raise ValueError(message)


exceptions = _NS(raise_compiler_error=_raise)

dbt = _NS(
    type_timestamp=lambda: "timestamp",
    type_string=lambda: "varchar",
    type_bigint=lambda: "bigint",
    type_float=lambda: "float",
    type_numeric=lambda: "numeric(28, 6)",
    hash=lambda field: f"md5(cast({field} as varchar))",
    concat=lambda fields: "(" + " || ".join(fields) + ")",
    dateadd=lambda datepart, interval, from_date: (
        f"date_add({from_date}, interval ({interval}) {datepart})"
    ),
    datediff=lambda first, second, datepart: (
        f"date_diff('{datepart}', {first}::timestamp, {second}::timestamp)"
    ),
    listagg=lambda measure, delimiter, order_by=None, limit=None: (
        f"string_agg({measure}, {delimiter} {order_by or ''})"
    ),
)

_DUCKDB = {
    "bool_or": lambda expression: f"bool_or({expression})",
    "first_by": lambda value, order: f"arg_min({value}, ({', '.join(order)}))",
    "type_double": lambda: "double",
    "struct_of": lambda columns: "struct_pack(" + ", ".join(f"{c} := {c}" for c in columns) + ")",
    "struct_field": lambda struct, field: f"struct_extract({struct}, '{field}')",
}


def _dispatch(name, macro_namespace=None):
    return _DUCKDB[name]


adapter = _NS(dispatch=_dispatch)
