"""A shop's first nights: too few buyers to rank into RFM quintiles.

Quintiles are relative: with three buyers, the one who ordered two days ago scored R 1 and
was called 'Lost' (found on a hand-made landing zone of 30 customers and 3 orders). Below
var('rfm_min_customers') buyers on a date the scores are null and the segment says why.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from segmint.config import Settings, TransformSettings
from segmint.transform import run_transform
from segmint.warehouse import connect, ensure_raw_tables
from tests.db import fetch
from tests.dbt import synthetic

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("few_buyers") / "segmint.duckdb"
    con = connect(path)
    ensure_raw_tables(con)
    synthetic.insert_raw(con, 12, 60, date(2026, 6, 1), END, seed=4)
    con.close()
    settings = Settings(
        warehouse=path, transform=TransformSettings(reporting_currency=synthetic.CURRENCY)
    )
    run_transform(settings, END)
    return path


def test_buyers_of_a_small_shop_are_not_ranked(small_shop: Path) -> None:
    rows = fetch(
        small_shop,
        "select order_count > 0, rfm_segment, count(*), count(r_score), count(f_score), "
        "count(m_score) from marts.customer_features group by all order by all",
    )
    buyers = [r for r in rows if r[0]]
    assert buyers, rows  # the shop has buyers, fewer than rfm_min_customers (20)
    assert sum(r[2] for r in buyers) < 20
    assert buyers == [(True, "Too few buyers", buyers[0][2], 0, 0, 0)]
    assert [r[1] for r in rows if not r[0]] in ([], ["No orders"])
