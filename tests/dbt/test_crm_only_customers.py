"""A CRM customer with no signup date and no event yet is still a customer of the features.

Many CRMs leave the signup date empty. Such a customer is known from their first CRM version
(``updated_at``), point in time: in every snapshot from that day on, in no snapshot before,
with a lifecycle stage like everyone else.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from segmint.config import Settings, TransformSettings
from segmint.transform import run_transform
from segmint.warehouse import connect, ensure_raw_tables
from tests.db import fetch
from tests.dbt import synthetic

MID, END = date(2026, 6, 15), date(2026, 6, 30)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("crm_only") / "segmint.duckdb"
    con = connect(path)
    ensure_raw_tables(con)
    synthetic.insert_raw(con, 30, 120, date(2026, 6, 1), END, seed=3)
    con.execute(
        """
        insert into raw.customers (customer_id, updated_at, email, email_opt_in, ads_opt_in,
            _source_file, _source_line, _partition_date, _loaded_at)
        values
            ('X1', timestamp '2026-06-10 08:00:00', 'x1@example.com', true, false,
             'crm/dt=2026-06-10/c.csv', 2, date '2026-06-10', timestamp '2026-06-11 01:00:00'),
            ('X2', timestamp '2026-06-20 08:00:00', 'x2@example.com', false, false,
             'crm/dt=2026-06-20/c.csv', 2, date '2026-06-20', timestamp '2026-06-21 01:00:00')
        """
    )
    con.close()
    settings = Settings(
        warehouse=path, transform=TransformSettings(reporting_currency=synthetic.CURRENCY)
    )
    run_transform(settings, MID)
    run_transform(settings, END)
    yield path


def test_known_from_their_first_crm_version_on(warehouse: Path) -> None:
    rows = fetch(
        warehouse,
        "select as_of_date::varchar, customer_id, first_seen_at::varchar, tenure_days, "
        "order_count from marts.customer_feature_history where customer_id in ('X1', 'X2') "
        "order by 1, 2",
    )
    assert rows == [
        ("2026-06-15", "X1", "2026-06-10 08:00:00", 5, 0),
        ("2026-06-30", "X1", "2026-06-10 08:00:00", 20, 0),
        ("2026-06-30", "X2", "2026-06-20 08:00:00", 10, 0),
    ]


def test_every_customer_has_features_and_one_lifecycle_stage(warehouse: Path) -> None:
    customers = fetch(warehouse, "select count(*) from marts.customers")[0][0]
    features = fetch(warehouse, "select count(*) from marts.customer_features")[0][0]
    assert features == customers
    stages = fetch(
        warehouse,
        "select customer_id, count(*) from marts.customer_rule_segments "
        f"where as_of_date = '{END}' and segment like 'lifecycle_%' "
        "group by 1 having count(*) <> 1",
    )
    assert stages == []
    assert fetch(
        warehouse,
        "select segment from marts.customer_rule_segments where customer_id = 'X2' "
        f"and as_of_date = '{END}' and segment like 'lifecycle_%'",
    ) == [("lifecycle_new",)]


def test_the_profile_knows_them_from_the_same_moment(warehouse: Path) -> None:
    """marts.customers said first_seen_at NULL for X1 and X2 while their features said the
    first CRM version's updated_at: the profile and the features now agree."""
    profile = fetch(
        warehouse,
        "select customer_id, first_seen_at::varchar from marts.customers "
        "where customer_id in ('X1', 'X2') order by 1",
    )
    assert profile == [("X1", "2026-06-10 08:00:00"), ("X2", "2026-06-20 08:00:00")]
    differing = fetch(
        warehouse,
        "select count(*) from marts.customers join marts.customer_features "
        "using (customer_id) where customers.first_seen_at "
        "is distinct from customer_features.first_seen_at",
    )
    assert differing == [(0,)]
