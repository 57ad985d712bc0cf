"""PII-masked analyst views, and the CLI glue (audience build|validate|export|readout, erase)."""

from __future__ import annotations

import hashlib
from datetime import date

from segmint.audiences import build_audiences
from segmint.cli import main
from segmint.warehouse import connect
from tests.db import columns_holding, text_columns

AS_OF = date(2026, 6, 30)


def test_analyst_views_mask_personal_columns(settings, defs_folder):
    defs_folder(a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\n")
    result = build_audiences(settings, AS_OF)
    assert "analyst.customers" in result.details["masked_views"]
    assert "analyst.customer_features" in result.details["masked_views"]
    con = connect(settings.warehouse, read_only=True)
    row = con.execute(
        "select email, phone, first_name, last_name, birth_date, postal_code, country, "
        "loyalty_tier from analyst.customers where customer_id = 'C01'"
    ).fetchone()
    masked_cols = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'analyst' "
            "and table_name = 'customers' order by ordinal_position"
        ).fetchall()
    ]
    raw_cols = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = 'customers' order by ordinal_position"
        ).fetchall()
    ]
    leaks = con.execute(
        "select count(*) from analyst.customers where contains(email, '@') "
        "or regexp_matches(phone, '[0-9]{5}') or length(first_name) > 4"
    ).fetchone()[0]
    con.close()
    assert row == (
        hashlib.sha256(b"anna.smith@example.com").hexdigest(),
        "***71",
        "A***",
        "S***",
        date(1990, 1, 1),
        "02***",
        "US",
        "gold",
    )
    assert masked_cols == raw_cols
    assert leaks == 0


def test_cli_audience_commands_and_erase(settings, defs_folder, tmp_path, capsys):
    defs_folder(
        a="name: a\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n"
        "holdout: {percent: 20, salt: x}\n"
    )
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    assert main(["audience", "validate", *wh, "--as-of", "2026-06-30"]) == 0
    assert "1 audience(s), 0 suppression list(s), 0 priority group(s) valid" in (
        capsys.readouterr().out
    )
    assert main(["audience", "build", *wh, "--as-of", "2026-06-30"]) == 0
    assert "1 audience(s) built" in capsys.readouterr().out
    out = tmp_path / "a.csv"
    code = main(["audience", "export", "a", *wh, "--format", "csv", "--out", str(out)])
    assert code == 0 and out.is_file()
    assert "exported a csv as of 2026-06-30" in capsys.readouterr().out
    con = connect(settings.warehouse)
    con.execute(
        "create table marts.orders as select 'O1' as order_id, 'C01' as customer_id, "
        "date '2026-07-02' as order_date, 10.0::decimal(18, 2) as revenue"
    )
    con.close()
    code = main(["audience", "readout", "a", *wh, "--from", "2026-07-01", "--to", "2026-07-31"])
    text = capsys.readouterr().out
    assert code == 0 and "verdict:" in text and "holdout is too small" in text
    assert main(["erase", "--warehouse", str(settings.warehouse), "--customer-id", "C04"]) == 0
    assert "1 id(s) (1 not erased before)" in capsys.readouterr().out
    code = main(["audience", "export", "nope", *wh, "--format", "csv", "--out", str(out)])
    assert code == 1
    assert "'nope' has no built snapshot" in capsys.readouterr().err


def test_a_mart_dropped_later_takes_its_analyst_view_along(settings, defs_folder, scalar):
    """A view of a mart that is gone no longer answers; the publish audit queries every view,
    so such a leftover refused every night's publication."""
    from segmint.publish import publish

    defs_folder(a="name: a\nconsent: ads\nwhere: {feature: order_count, gte: 1}\n")
    build_audiences(settings, AS_OF)
    con = connect(settings.warehouse)
    con.execute("create view analyst.vip_count as select count(*) as n from analyst.customers")
    con.execute("drop table marts.customer_rule_segments")  # retired by an upgrade, dropped
    con.close()

    result = build_audiences(settings, AS_OF)
    published = publish(settings, AS_OF)

    assert "analyst.customer_rule_segments" not in result.details["masked_views"]
    views = "select count(*) from information_schema.tables where table_schema = 'analyst' "
    assert scalar(settings, views + "and table_name = 'customer_rule_segments'") == 0
    assert scalar(settings, views + "and table_name = 'vip_count'") == 1  # answers: kept
    assert published.summary.startswith("published ")


def test_analysts_read_no_e_mail_outside_the_restricted_tables(settings, defs_folder, scalar):
    """Every table and view of the published copy that analysts may read (all but
    masking.RESTRICTED) is free of the customers' e-mail addresses. A CRM record the ingest
    quarantines keeps its line as delivered in ops.quarantine.raw_record, e-mail included:
    that table is restricted like raw.customers (docs/tables.md), not an analysts' table."""
    import dataclasses

    import duckdb

    from segmint.audiences.masking import RESTRICTED
    from segmint.config import IngestSettings
    from segmint.ingest import check_quality_gate, run_ingest
    from segmint.publish import publish

    # One of the two CRM records is quarantined: a share the night accepts here.
    settings = dataclasses.replace(settings, ingest=IngestSettings(max_quarantine_share=0.9))
    crm = settings.landing / "crm" / f"dt={AS_OF}" / "customers.csv"
    crm.parent.mkdir(parents=True)
    crm.write_text(
        "customer_id,updated_at,email,phone\n"
        "C01,2026-06-30T08:00:00Z,anna.smith@example.com,+14155552671\n"
        "C13,yesterday,quarantined.one@example.com,+14155550000\n"
    )
    run_ingest(settings, AS_OF)
    assert "quarantined.one@example.com" in scalar(
        settings, "select string_agg(raw_record, '') from ops.quarantine"
    )
    check_quality_gate(settings, AS_OF)
    defs_folder(a="name: a\nconsent: ads\nwhere: {feature: order_count, gte: 1}\n")
    build_audiences(settings, AS_OF)
    publish(settings, AS_OF)

    con = duckdb.connect(str(settings.published_warehouse), read_only=True)
    try:
        emails = [
            r[0].strip().lower()
            for r in con.execute(
                "select email from raw.customers union select email from marts.customers"
            ).fetchall()
            if r[0]
        ] + ["quarantined.one@example.com"]
        readable = [
            c
            for c in text_columns(con)
            if c[0] not in RESTRICTED and f"{c[0]}.{c[1]}" not in RESTRICTED
        ]
        leaks = columns_holding(con, readable, emails)
    finally:
        con.close()
    assert len(emails) > 10
    assert {"analyst", "ml", "audiences", "ops"} <= {c[0] for c in readable}
    assert leaks == []

    # The analysts' copy: no exception at all, e-mails nor phones, in any table or view.
    con = duckdb.connect(str(settings.analyst_warehouse), read_only=True)
    try:
        columns = text_columns(con)
        leaks = columns_holding(con, columns, [*emails, "4155552671", "4155550000"])
        hashed = con.execute(
            "select email from marts.customers where customer_id = 'C01'"
        ).fetchone()[0]
    finally:
        con.close()
    assert {"marts", "analyst", "ml", "audiences", "ops"} <= {c[0] for c in columns}
    assert leaks == []
    assert hashed == hashlib.sha256(b"anna.smith@example.com").hexdigest()


def test_run_takes_the_audiences_folder_like_the_audience_commands(
    settings, defs_folder, tmp_path, capsys, monkeypatch
):
    """`segmint run` had no --audiences flag: run from another folder, it looked for
    ./audiences, built nothing and only warned."""
    defs_folder(a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code = main(
        [
            "run",
            "--stages",
            "audiences",
            "--warehouse",
            str(settings.warehouse),
            "--landing",
            str(settings.landing),
            "--as-of",
            "2026-06-30",
            "--audiences",
            str(settings.audiences),
        ]
    )
    assert code == 0
    assert "1 audience(s) built" in capsys.readouterr().out
    con = connect(settings.warehouse, read_only=True)
    built = con.execute("select audience, status from audiences.summary").fetchall()
    con.close()
    assert built == [("a", "built")]


def test_the_conflict_marts_lists_of_address_ids_are_hashed_for_analysts(
    settings, defs_folder, scalar
):
    """A shop keying customers by address: marts.order_conflicts.customer_ids and
    marts.identity_conflicts.candidate_customer_ids list the ids in one text
    ("a@x, b@x", dbt.listagg), which the id mask (customer_id, *_customer_id) did not match:
    both addresses went to the analysts' views and copy as delivered."""
    import duckdb

    from segmint.publish import publish

    con = connect(settings.warehouse)
    # ids that differ in case are two people (two visitors of one address, written twice)
    con.execute(
        "create or replace table marts.identity_map as select * from (values "
        "('Ann@Example.com', 'C1'), ('ann@example.com', 'C2')) as t(anonymous_id, customer_id)"
    )
    con.execute(
        "create table marts.order_conflicts as select 'O1' as order_id, "
        "'ann@example.com' as kept_customer_id, "
        "'ann@example.com, C42, bob@example.com' as customer_ids"
    )
    con.execute(
        "create table marts.identity_conflicts as select 'device-1' as anonymous_id, "
        "'bob@example.com' as chosen_customer_id, "
        "'ann@example.com, bob@example.com' as candidate_customer_ids"
    )
    con.close()
    defs_folder(a="name: a\nconsent: ads\nwhere: {feature: order_count, gte: 1}\n")
    build_audiences(settings, AS_OF)
    publish(settings, AS_OF)

    ann, bob = (
        hashlib.sha256(e.encode()).hexdigest() for e in ("ann@example.com", "bob@example.com")
    )
    view = "select customer_ids from analyst.order_conflicts"
    assert scalar(settings, view) == f"{ann}, C42, {bob}"
    view = "select candidate_customer_ids, chosen_customer_id from analyst.identity_conflicts"
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute(view).fetchone() == (f"{ann}, {bob}", bob)
    with duckdb.connect(str(settings.analyst_warehouse), read_only=True) as con:
        leaks = columns_holding(con, text_columns(con), ["ann@example.com", "bob@example.com"])
        ids = con.execute(
            "select count(*), count(distinct anonymous_id) from marts.identity_map"
        ).fetchone()
    assert leaks == []
    assert ids == (2, 2)  # still a key: one hash each
