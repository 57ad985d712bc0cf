"""Benchmark of the phone normalisation of audience exports (``e164_sql``, ``meta_phone_sql``).

    .venv/bin/python bench/bench_phones.py [--rows N] [--threads T] [--normalise FILE]

Figures for one SQL expression of ``segmint.audiences.normalise``, on an in-memory DuckDB:

- ``sql_chars``: the size of ``e164_sql("phone", "country")``;
- ``bind_one_row_s``: a query of one row using it (binding and planning dominate), best of 3;
- ``rows_100k_s``, ``rows_s``: E.164 of 100k and of N (1M by default) phones of four national
  and international formats (GB, DE, US, FR), best of 3 and of 1;
- ``meta_rows_s``: Meta's form (``meta_phone_sql``) of the same N phones.

``--normalise`` measures another copy of ``normalise.py`` (an older version, for a
before/after comparison on one machine). No pass/fail: the test suite never times anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT))

PHONES = """create table src as select
    (case i % 4
        when 0 then '+44 20 7946 ' || lpad((i % 10000)::varchar, 4, '0')
        when 1 then '030 ' || (1000000 + i)::varchar
        when 2 then '(415) 555-' || lpad((i % 10000)::varchar, 4, '0')
        else '06 12 34 ' || lpad((i % 10000)::varchar, 4, '0')
    end) as phone,
    (['GB', 'DE', 'US', 'FR'])[i % 4 + 1] as country,
    i < 100000 as is_first_100k
from range({rows}) t(i)"""


def _module(path: str | None):
    if path is None:
        from segmint.audiences import normalise

        return normalise
    spec = importlib.util.spec_from_file_location("normalise_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best(con: duckdb.DuckDBPyConnection, query: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        con.execute(query).fetchall()
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def _cpu(con: duckdb.DuckDBPyConnection, query: str) -> float:
    start = time.process_time()
    con.execute(query).fetchall()
    return round(time.process_time() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--normalise", help="another normalise.py to measure")
    args = parser.parse_args()
    normalise = _module(args.normalise)
    e164 = normalise.e164_sql("phone", "country")
    con = duckdb.connect()
    con.execute(f"set threads = {args.threads}")
    con.execute(PHONES.format(rows=args.rows))
    one_row = f"select {e164} from (select '+44 20 7946 0958' as phone, 'GB' as country)"
    result = {
        "benchmark": "phones",
        "normalise": args.normalise or "segmint.audiences.normalise",
        "rows": args.rows,
        "threads": args.threads,
        "sql_chars": len(e164),
        "bind_one_row_s": _best(con, one_row, 3),
        "rows_100k_s": _best(con, f"select count({e164}) from src where is_first_100k", 3),
        "rows_s": _best(con, f"select count({e164}) from src", 1),
        "rows_cpu_s": _cpu(con, f"select count({e164}) from src"),
        "meta_rows_s": _best(
            con, f"select count({normalise.meta_phone_sql('phone', 'country')}) from src", 1
        ),
        "duckdb": duckdb.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
