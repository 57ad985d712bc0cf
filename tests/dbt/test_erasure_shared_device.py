"""Erasing a customer who used a shared device (a shop's tablet) erases them, not the others.

Real ingest, real ``dbt build``, real erasure: the tablet's other customers keep every row,
the tablet's anonymous id is not tombstoned (their next visits on it load), while the erased
customer's own device, their events and the anonymous browsing attributed to them go.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pytest

from segmint.audiences.erasure import erase_customers
from segmint.config import Settings, TransformSettings
from segmint.ingest import run_ingest
from segmint.transform import run_transform
from tests.include.ingest.conftest import write_jsonl

D1, D2 = date(2026, 6, 1), date(2026, 6, 2)


def _event(eid: str, hhmm: str, kind: str, customer: str | None, anon: str, day=D1, **more):
    record = {"event_id": eid, "event_type": kind, "event_ts": f"{day}T{hhmm}:00Z",
              "customer_id": customer, "anonymous_id": anon, **more}  # fmt: skip
    return {k: v for k, v in record.items() if v is not None}


def _query(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _night(root: Path, events: list[dict]) -> Settings:
    """A warehouse that loaded and built night D1 of ``events``."""
    settings = Settings(
        warehouse=root / "segmint.duckdb",
        landing=root / "landing",
        output=root / "output",
        transform=TransformSettings(reporting_currency="USD"),
    )
    write_jsonl(settings.landing / f"events/dt={D1}/part-0.jsonl", events)
    run_ingest(settings, D1)
    run_transform(settings, D1)
    return settings


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = _night(
        tmp_path_factory.mktemp("shared_device"),
        [
            _event("t1", "10:00", "page_view", None, "TABLET"),  # C01's, before their login
            _event("t2", "10:01", "login", "C01", "TABLET"),
            _event("t3", "10:05", "purchase", "C01", "TABLET", order_id="o1", revenue=10),
            _event("t4", "14:01", "login", "C02", "TABLET"),
            _event("t5", "14:05", "purchase", "C02", "TABLET", order_id="o2", revenue=20),
            _event("p0", "19:00", "page_view", None, "PHONE-C01"),  # C01's own phone
            _event("p1", "19:01", "login", "C01", "PHONE-C01"),
        ],
    )
    erase_customers(settings, ["C01"])
    return settings


def test_the_other_customers_of_the_device_keep_their_rows(erased: Settings) -> None:
    assert _query(erased, "select event_id from raw.events order by 1") == [("t4",), ("t5",)]
    assert _query(erased, "select customer_id from intermediate.int_events_sessionised") == [
        ("C02",),
        ("C02",),
    ]
    assert _query(erased, "select order_id, customer_id from marts.orders") == [("o2", "C02")]
    assert _query(erased, "select anonymous_id, customer_id from marts.identity_map") == [
        ("TABLET", "C02")
    ]


def test_only_the_customers_own_ids_are_tombstoned(erased: Settings) -> None:
    tombs = {r[0] for r in _query(erased, "select id_sha256 from ops.erasure_tombstones")}

    def digest(value: str) -> str:
        return hashlib.sha256(f"segmint-erasure:{value}".encode()).hexdigest()

    assert tombs == {digest("C01"), digest("PHONE-C01")}


def test_the_others_next_visits_on_the_device_load(erased: Settings) -> None:
    write_jsonl(
        erased.landing / f"events/dt={D2}/part-0.jsonl",
        [
            _event("n1", "09:00", "page_view", None, "TABLET", D2),
            _event("n2", "09:01", "login", "C02", "TABLET", D2),
            _event("n3", "09:05", "purchase", "C02", "TABLET", D2, order_id="o3", revenue=5),
            # the erased customer's own device: kept out, even without a customer id
            _event("n4", "12:00", "page_view", None, "PHONE-C01", D2),
            # a device sold on: its next owner's rows are theirs
            _event("n5", "18:00", "login", "C09", "PHONE-C01", D2),
        ],
    )
    result = run_ingest(erased, D2)
    assert result.details["sources"]["events"]["erased"] == 1
    assert _query(
        erased, f"select event_id from raw.events where _partition_date = '{D2}' order by 1"
    ) == [
        ("n1",),
        ("n2",),
        ("n3",),
        ("n5",),
    ]
    run_transform(erased, D2)
    assert _query(erased, "select order_id from marts.orders order by 1") == [("o2",), ("o3",)]


@pytest.fixture(scope="module")
def conflicts(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A shared tablet and an order number used by two customers: both conflict tables name
    C01 in columns other than ``customer_id``."""
    settings = _night(
        tmp_path_factory.mktemp("conflicts"),
        [
            _event("t2", "10:01", "login", "C01", "TABLET"),
            _event("t3", "10:05", "purchase", "C01", "TABLET", order_id="o1", revenue=10),
            _event("t4", "14:01", "login", "C02", "TABLET"),
            _event("t5", "14:05", "purchase", "C02", "TABLET", order_id="o1", revenue=20),
        ],
    )
    assert _query(settings, "select candidate_customer_ids from marts.identity_conflicts") == [
        ("C01, C02",)
    ]
    assert _query(settings, "select kept_customer_id, customer_ids from marts.order_conflicts") == [
        ("C01", "C01, C02")
    ]
    result = erase_customers(settings, ["C01"])
    assert result.not_found == {}
    assert result.tables["marts.identity_conflicts"] == 1
    assert result.tables["marts.order_conflicts"] == 1
    return settings


def test_no_table_names_them_afterwards(conflicts: Settings) -> None:
    """Not even the conflict tables (the order kept for them, a shared device's candidates),
    which the publish copies to the analysts before the next transform rebuilds them."""
    naming = []
    for (table,) in _query(
        conflicts,
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_schema not in ('information_schema')",
    ):
        sql = f"select count(*) from {table} as t where contains(t::varchar, 'C01')"
        if _query(conflicts, sql)[0][0]:
            naming.append(table)
    assert naming == []
    assert _query(conflicts, "select event_id from raw.events order by 1") == [("t4",), ("t5",)]


def test_the_safety_net_purge_covers_the_conflict_tables(conflicts: Settings) -> None:
    """Rows naming an erased customer that came back into a conflict table are purged."""
    from segmint.audiences.erasure import purge_tombstoned

    con = duckdb.connect(str(conflicts.warehouse))
    try:
        con.execute(
            "insert into marts.identity_conflicts (anonymous_id, chosen_customer_id, "
            "candidate_count, candidate_customer_ids) values ('TABLET', 'C02', 2, 'C01, C02')"
        )
        con.execute("delete from ops.erasure_purges")  # a first purge scans every table
        assert purge_tombstoned(con) == 1
        assert con.execute("select count(*) from marts.identity_conflicts").fetchone()[0] == 0
    finally:
        con.close()
