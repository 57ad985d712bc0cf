"""A quarantined CRM record that may withdraw consent holds its customer out of the exports.

Through the real ingest of hand-made CRM files, the real ``dbt build`` and the real audience
build and exports: C1 consented on D1; the D2 delivery's record of C1 says ``false, false``
but its ``updated_at`` cannot be read, so it is quarantined and the D1 record stays C1's
latest loaded one. Nobody can tell which is newer, so C1 is in no export until the file is
re-delivered readable. C4's quarantined record (``updated_at`` in the future) came in the
partition of C4's loaded one: held too. C3's unreadable D1 record is superseded by the one
loaded from D2: not held.
"""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from segmint.audiences import build_audiences
from segmint.audiences.consent import consent_holds, held_customers_sql
from segmint.audiences.export import export_audience
from segmint.config import Settings
from segmint.ingest import run_ingest
from segmint.transform import run_transform
from segmint.warehouse import connect
from tests.include.ingest.conftest import event, write_jsonl, write_lines

D1, D2 = date(2026, 6, 1), date(2026, 6, 2)
HEADER = (
    "customer_id,updated_at,email,phone,first_name,last_name,birth_date,gender,country,city,"
    "postal_code,signup_date,loyalty_tier,email_opt_in,ads_opt_in,source_system"
)


def _crm(customer_id: str, updated_at: str, email_opt_in: str, ads_opt_in: str) -> str:
    n = customer_id[1:]
    return (
        f"{customer_id},{updated_at},c{n}@example.com,+14155550{n}00,Ann{n},Lee,1990-01-01,F,"
        f"US,Boston,02118,2026-01-01,gold,{email_opt_in},{ads_opt_in},web"
    )


def _ids(path: Path, column: str) -> set[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row[column] for row in csv.DictReader(fh)}


def _night(settings: Settings, as_of: date) -> tuple[dict[str, Path], list[str]]:
    run_ingest(settings, as_of)
    run_transform(settings, as_of)
    result = build_audiences(settings, as_of)
    assert not result.details["failed"], result.details["failed"]
    files = {Path(p).name: Path(p) for p in result.details["exports"]}
    return files, result.warnings


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("consent_holds")
    settings = Settings().with_overrides(
        warehouse=root / "wh" / "segmint.duckdb",
        landing=root / "landing",
        output=root / "output",
        audiences=root / "audiences",
    )
    settings.audiences.mkdir()
    for name, consent, exports in (
        ("mail", "email", "[csv, mailchimp, braze]"),
        ("ads", "ads", "[google_customer_match, meta_custom_audience]"),
    ):
        (settings.audiences / f"{name}.yml").write_text(
            textwrap.dedent(
                f"""\
                name: {name}
                consent: {consent}
                where: {{feature: order_count, gte: 0}}
                exports: {exports}
                """
            )
        )
    for day in (D1, D2):
        write_jsonl(
            settings.landing / f"events/dt={day}/events.jsonl",
            [event(f"e{c}{day.day}", day, customer_id=c) for c in ("C1", "C2", "C3", "C4")],
        )
    write_lines(
        settings.landing / f"crm/dt={D1}/customers.csv",
        [
            HEADER,
            _crm("C1", "2026-06-01T08:00:00Z", "true", "true"),
            _crm("C2", "2026-06-01T08:00:00Z", "true", "true"),
            _crm("C3", "2026-06-01T08:00:00Z", "true", "true"),
            # superseded by C3's record loaded from D2
            "C3,yesterday,,,,,,,,,,,,false,false,web",
        ],
    )
    write_lines(
        settings.landing / f"crm/dt={D2}/customers.csv",
        [
            HEADER,
            _crm("C2", "2026-06-02T08:00:00Z", "true", "true"),
            # C1 withdraws, with a date nobody can read
            "C1,not-a-date,,,,,,,,,,,,false,false,web",
            _crm("C3", "2026-06-02T08:00:00Z", "true", "true"),
            # in the partition of C4's loaded record: which is newer is unknown
            _crm("C4", "2026-06-02T08:00:00Z", "true", "true"),
            "C4,2999-01-01T00:00:00Z,,,,,,,,,,,,false,false,web",
        ],
    )
    yield settings


def test_unreadable_withdrawal_holds_the_customer_until_re_delivered(landing: Settings) -> None:
    settings = landing
    files, warnings = _night(settings, D2)
    for name, column in (("mail.csv", "customer_id"), ("mail_braze.csv", "external_id")):
        assert _ids(files[name], column) == {"C2", "C3"}, name
    for name, column in (
        ("mail_mailchimp.csv", "Email Address"),
        ("ads_google_customer_match.csv", "Email"),
        ("ads_meta_custom_audience.csv", "email"),
    ):
        assert len(_ids(files[name], column)) == 2, name
    con = connect(settings.warehouse, read_only=True)
    try:
        # The loaded records still say yes: only the hold keeps C1 and C4 out.
        assert con.execute(
            "select customer_id, email_opt_in, ads_opt_in from marts.customers order by 1"
        ).fetchall() == [(f"C{n}", True, True) for n in range(1, 5)]
        assert con.execute(
            "select source_file, line_number, customer_id from ops.quarantine "
            "where source = 'crm' order by all"
        ).fetchall() == [
            (f"crm/dt={D1}/customers.csv", 5, "C3"),
            (f"crm/dt={D2}/customers.csv", 3, "C1"),
            (f"crm/dt={D2}/customers.csv", 6, "C4"),
        ]
    finally:
        con.close()
    held = [w for w in warnings if "held out of every audience and export" in w]
    assert len(held) == 1 and held[0].startswith("2 customer(s)"), warnings
    assert f"crm/dt={D2}/customers.csv line 3; crm/dt={D2}/customers.csv line 6" in held[0]
    assert "line 5" not in held[0]
    # An export made now of a snapshot holding C1 leaves C1 out too.
    con = connect(settings.warehouse)
    try:
        con.execute(f"insert into audiences.members values ('mail', date '{D2}', 'C1', 'target')")
    finally:
        con.close()
    again = export_audience(settings, "mail", "csv", settings.output / "mail.csv", as_of=D2)
    assert _ids(again.path, "customer_id") == {"C2", "C3"}

    # Re-delivered readable under the same name: C1 said yes to e-mail, no to ads.
    crm_d2 = settings.landing / f"crm/dt={D2}/customers.csv"
    text = crm_d2.read_text().replace(
        "C1,not-a-date,,,,,,,,,,,,false,false,web",
        _crm("C1", "2026-06-02T09:00:00Z", "true", "false"),
    )
    write_lines(crm_d2, text.splitlines())
    files, warnings = _night(settings, D2)
    held = [w for w in warnings if "held out of every audience and export" in w]
    assert len(held) == 1 and held[0].startswith("1 customer(s)"), warnings
    assert f"crm/dt={D2}/customers.csv line 6" in held[0]
    assert _ids(files["mail.csv"], "customer_id") == {"C1", "C2", "C3"}
    assert "c1@example.com" in _ids(files["mail_mailchimp.csv"], "Email Address")
    assert len(_ids(files["ads_google_customer_match.csv"], "Email")) == 2


def test_a_customer_with_no_loaded_record_is_not_said_to_have_one(tmp_path: Path) -> None:
    """The warning counted C9, whose only CRM record was quarantined, among the customers
    whose quarantined record "may be newer than their loaded one": C9 has none loaded. It
    is named apart, still held, with the records behind both."""
    settings = Settings().with_overrides(
        warehouse=tmp_path / "wh" / "segmint.duckdb",
        landing=tmp_path / "landing",
        output=tmp_path / "output",
    )
    write_lines(
        settings.landing / f"crm/dt={D1}/customers.csv",
        [
            HEADER,
            _crm("C1", "2026-06-01T08:00:00Z", "true", "true"),
            "C1,not-a-date,,,,,,,,,,,,false,false,web",
            "C9,not-a-date,,,,,,,,,,,,true,true,web",
        ],
    )
    run_ingest(settings, D1)
    con = connect(settings.warehouse)
    try:
        holds = consent_holds(con)
        held = set(con.execute(held_customers_sql(con)).fetchall())
    finally:
        con.close()
    assert (holds.customers, holds.unloaded, holds.records) == (2, 1, 2)
    assert held == {("C1",), ("C9",)}
    assert holds.warning == (
        "1 customer(s) held out of every audience and export: a CRM record of theirs was "
        "quarantined and may be newer than their loaded one, so their current consent is "
        "unknown; 1 more whose only CRM record was quarantined: none of theirs is loaded, so "
        "no consent of theirs is known (2 quarantined record(s): "
        f"crm/dt={D1}/customers.csv line 3; crm/dt={D1}/customers.csv line 4); re-deliver the "
        "file corrected under the same name (or their record in a later partition) to release "
        "them (ops.quarantine has the reasons)"
    )
