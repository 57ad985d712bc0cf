"""The audiences stage on a hand-made warehouse: conditions, consent, priority, suppression,
limits, snapshots, changes, summary and overlap, missing ML inputs."""

from __future__ import annotations

import re
from datetime import date

import pytest

from segmint.audiences import build_audiences
from segmint.warehouse import connect, table_hash

AS_OF = date(2026, 6, 30)
NEXT = date(2026, 7, 1)


def _audience(where: str, consent: str = "email", extra: str = "") -> str:
    return f"name: aud\nconsent: {consent}\nwhere: {where}\n{extra}"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("{feature: recency_days, gte: 60}", ["C02", "C06", "C08", "C11"]),
        ("{feature: recency_days, between: [10, 30]}", ["C07", "C09", "C10"]),
        ("{feature: favourite_category, in: [books, toys]}", ["C02", "C06", "C10"]),
        ("{feature: recency_days, is_null: true}", ["C04", "C12"]),
        ("{feature: rfm_segment, eq: Loyal}", ["C07", "C11"]),
        (
            "{feature: favourite_category, ne: electronics}",
            ["C02", "C06", "C08", "C09", "C10", "C11"],
        ),
        ("{feature: sessions_30d, lt: 2}", ["C02", "C08", "C12"]),
        ("{feature: revenue_total, gt: 700}", ["C01", "C07"]),
        ("{feature: cart_abandonment_rate_90d, lte: 0.1}", ["C01", "C11"]),
        ("{feature: ads_opt_in, eq: false}", ["C02", "C09"]),
        ("{rule_segment: lapsing}", ["C08", "C11"]),
        ("{rule_segment: [vip, complainer]}", ["C01", "C06", "C07"]),
        ("{rule_segment: newcomer}", []),  # known segment, nobody in it tonight
        ("{ml_segment: Big spenders}", ["C01", "C07", "C11"]),
        ("{propensity: purchase, decile_min: 9}", ["C01", "C02"]),
        ("{propensity: purchase, score_max: 0.2}", ["C11", "C12"]),
        (
            "{all: [{rule_segment: lapsing}, {not: {feature: recency_days, gte: 100}}]}",
            ["C11"],
        ),
        (
            "{any: [{ml_segment: Big spenders}, {feature: order_count, eq: 0}]}",
            ["C01", "C04", "C07", "C11", "C12"],
        ),
        # A missing value never matches a comparison, so its negation matches.
        (
            "{not: {feature: recency_days, gte: 60}}",
            ["C01", "C04", "C07", "C09", "C10", "C12"],
        ),
    ],
)
def test_every_condition_type(settings, defs_folder, get_members, where, expected):
    defs_folder(a=_audience(where))
    result = build_audiences(settings, AS_OF)
    assert result.details["failed"] == {}
    assert get_members(settings, "aud") == expected


def test_consent_is_enforced_whatever_the_definition_says(settings, defs_folder, get_members):
    defs_folder(
        a=_audience("{feature: order_count, gte: 0}", consent="ads"),
        b=_audience("{feature: order_count, gte: 0}", consent="email").replace("aud", "mail"),
    )
    build_audiences(settings, AS_OF)
    ads = ["C01", "C03", "C04", "C06", "C07", "C08", "C10", "C11", "C12"]
    assert get_members(settings, "aud") == ads
    assert "C03" not in get_members(settings, "mail") and "C05" not in get_members(settings, "mail")
    con = connect(settings.warehouse, read_only=True)
    row = con.execute(
        "select matched, without_consent, members from audiences.summary where audience = 'aud'"
    ).fetchone()
    con.close()
    assert row == (12, 3, 9)


def test_priority_group_places_each_customer_once_and_suppression_removes(
    settings, defs_folder, get_members
):
    (settings.audiences).mkdir(parents=True, exist_ok=True)
    (settings.audiences / "do_not_contact.csv").write_text("customer_id,reason\nC10,complaint\n")
    defs_folder(
        vip="name: vip\nconsent: email\nwhere: {rule_segment: vip}\n",
        lapsed=(
            "name: lapsed\nconsent: email\nwhere: {feature: recency_days, gte: 60}\n"
            "suppress: [complainers]\n"
        ),
        everyone=(
            "name: everyone\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
            "suppress: [complainers, do_not_contact]\n"
        ),
        outside="name: outside\nconsent: email\nwhere: {ml_segment: Big spenders}\n",
        complainers="kind: suppression\nname: complainers\nwhere: {rule_segment: complainer}\n",
        dnc="kind: suppression\nname: do_not_contact\ncustomer_ids_file: do_not_contact.csv\n",
        wave="kind: priority_group\nname: wave\naudiences: [vip, lapsed, everyone]\n",
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "vip") == ["C01", "C07"]
    # C06 is a complainer: suppressed from lapsed (and everyone), not placed lower down.
    assert get_members(settings, "lapsed") == ["C02", "C08", "C11"]
    assert get_members(settings, "everyone") == ["C04", "C09", "C12"]
    # Audiences outside the group may overlap with it.
    assert get_members(settings, "outside") == ["C01", "C07", "C11"]
    con = connect(settings.warehouse, read_only=True)
    twice = con.execute(
        """select customer_id from audiences.members
        where audience in ('vip', 'lapsed', 'everyone') group by 1 having count(*) > 1"""
    ).fetchall()
    summary = dict(
        con.execute("select audience, claimed_by_higher_priority from audiences.summary").fetchall()
    )
    suppressed = con.execute(
        "select suppressed from audiences.summary where audience = 'everyone'"
    ).fetchone()[0]
    overlap = con.execute(
        "select other_audience, customers from audiences.overlap where audience = 'outside' "
        "order by 1"
    ).fetchall()
    con.close()
    assert twice == []
    assert summary == {"vip": 0, "lapsed": 0, "everyone": 5, "outside": 0}
    assert suppressed == 2  # C06 (complainer) and C10 (file)
    assert overlap == [("lapsed", 1), ("vip", 2)]
    assert result.rows_out == 11


def test_limit_orders_by_feature_or_score(settings, defs_folder, get_members):
    defs_folder(
        top=(
            "name: top\nconsent: email\nwhere: {feature: order_count, gte: 1}\n"
            "limit: {size: 3, order_by: {feature: revenue_total}}\n"
        ),
        low=(
            "name: low\nconsent: email\nwhere: {feature: order_count, gte: 1}\n"
            "limit: {size: 2, order_by: {propensity: purchase, direction: asc}}\n"
        ),
    )
    build_audiences(settings, AS_OF)
    assert get_members(settings, "top") == ["C01", "C07", "C11"]  # 950, 720, 500
    assert get_members(settings, "low") == ["C10", "C11"]  # lowest purchase scores
    con = connect(settings.warehouse, read_only=True)
    over = con.execute("select over_size_limit from audiences.summary where audience = 'top'")
    assert over.fetchone()[0] == 5
    con.close()


def _next_day(settings) -> None:
    """Copy the inputs to the next as-of date, with C02 now recent and C04 lapsed."""
    con = connect(settings.warehouse)
    con.execute(
        """insert into marts.customer_features
        select * replace (
            date '2026-07-01' as as_of_date,
            case customer_id when 'C02' then 1 when 'C04' then 70 else recency_days end
                as recency_days
        )
        from marts.customer_features where as_of_date = date '2026-06-30'"""
    )
    con.close()


def test_snapshots_changes_and_idempotent_rerun(settings, defs_folder, get_members):
    defs_folder(a=_audience("{feature: recency_days, gte: 60}"))
    build_audiences(settings, AS_OF)
    _next_day(settings)
    build_audiences(settings, NEXT)
    assert get_members(settings, "aud", AS_OF) == ["C02", "C06", "C08", "C11"]
    assert get_members(settings, "aud", NEXT) == ["C04", "C06", "C08", "C11"]
    con = connect(settings.warehouse)
    changes = con.execute(
        "select customer_id, change, previous_as_of_date from audiences.changes "
        "where as_of_date = date '2026-07-01' order by 1"
    ).fetchall()
    first = con.execute(
        "select count(*) from audiences.changes where as_of_date = date '2026-06-30' "
        "and change = 'entered' and previous_as_of_date is null"
    ).fetchone()[0]
    summary = con.execute(
        "select members, entered, exited, previous_as_of_date from audiences.summary "
        "where as_of_date = date '2026-07-01'"
    ).fetchone()
    hashes = {
        t: table_hash(con, f"audiences.{t}", exclude=("built_at",))
        for t in ("members", "changes", "summary", "overlap")
    }
    con.close()
    assert changes == [("C02", "exited", AS_OF), ("C04", "entered", AS_OF)]
    assert first == 4
    assert summary == (4, 1, 1, AS_OF)
    build_audiences(settings, NEXT)  # rerun replaces the snapshot: same rows
    con = connect(settings.warehouse, read_only=True)
    again = {
        t: table_hash(con, f"audiences.{t}", exclude=("built_at",))
        for t in ("members", "changes", "summary", "overlap")
    }
    con.close()
    assert again == hashes


def test_missing_ml_table_fails_only_the_definitions_needing_it(
    tmp_path, defs_folder, get_members, settings
):
    con = connect(settings.warehouse)
    con.execute("drop table ml.propensity_scores")
    con.close()
    defs_folder(
        a=_audience("{feature: recency_days, gte: 60}"),
        b=_audience("{propensity: purchase, decile_min: 8}").replace("aud", "scored"),
    )
    result = build_audiences(settings, AS_OF)
    assert result.details["built"] == ["aud"]
    assert "scored" in result.details["failed"]
    message = result.details["failed"]["scored"]
    assert "audience 'scored'" in message and "b.yml" in message
    assert "ml.propensity_scores does not exist or is empty" in message
    assert any("scored" in w for w in result.warnings)
    assert get_members(settings, "aud") == ["C02", "C06", "C08", "C11"]
    con = connect(settings.warehouse, read_only=True)
    status = con.execute(
        "select status, error is not null from audiences.summary where audience = 'scored'"
    ).fetchone()
    con.close()
    assert status == ("failed", True)


def test_empty_ml_table_is_a_missing_input_not_an_unknown_name(settings, defs_folder):
    con = connect(settings.warehouse)
    con.execute("delete from ml.propensity_scores")
    con.close()
    defs_folder(a=_audience("{propensity: purchase, decile_min: 8}"))
    result = build_audiences(settings, AS_OF)
    assert (
        "does not exist or is empty (did the score stage publish?)"
        in (result.details["failed"]["aud"])
    )


def test_model_absent_for_the_date_fails_with_a_clear_error(settings, defs_folder):
    defs_folder(a=_audience("{propensity: purchase, decile_min: 8}"))
    _next_day(settings)
    result = build_audiences(settings, NEXT)
    assert (
        "no scores of model 'purchase' for as_of_date 2026-07-01" in result.details["failed"]["aud"]
    )


def test_compiled_sql_is_stored_and_set_based(settings, defs_folder):
    defs_folder(a=_audience("{all: [{rule_segment: lapsing}, {feature: recency_days, gte: 1}]}"))
    build_audiences(settings, AS_OF)
    con = connect(settings.warehouse, read_only=True)
    sql = con.execute("select compiled_sql from audiences.summary").fetchone()[0]
    rows = con.execute(f"select customer_id from ({sql}) order by 1").fetchall()
    con.close()
    assert "marts.customer_rule_segments" in sql and "as_of_date = date '2026-06-30'" in sql
    assert [r[0] for r in rows] == ["C03", "C05", "C08", "C11"]  # before consent


def test_defined_names_without_rows_tonight_are_not_unknown(settings, defs_folder, get_members):
    """A rule segment of dbt_project.yml with no member tonight builds an empty audience (a
    new shop has no high_value customer yet), and a model whose scores were withheld is a
    missing input, not an unknown name: `audience validate` and the nightly stage agree."""
    from segmint.audiences.build import defined_names
    from segmint.audiences.compile import Catalog, check_names
    from segmint.audiences.definitions import load_definitions

    folder = defs_folder(
        a=_audience("{rule_segment: high_value}"),
        b=_audience("{propensity: churn, decile_min: 8}").replace("aud", "churners"),
    )
    con = connect(settings.warehouse, read_only=True)
    cat = Catalog.read(con, AS_OF, **defined_names(settings))
    con.close()
    check_names(load_definitions(folder), cat)  # strict: raises on an unknown name

    result = build_audiences(settings, AS_OF)
    assert result.details["built"] == ["aud"]
    assert get_members(settings, "aud") == []
    assert (
        "has no scores of model 'churn' for as_of_date 2026-06-30"
        in (result.details["failed"]["churners"])
    )


def test_suppression_file_ids_are_matched_trimmed_whatever_the_spreadsheet_wrote(
    settings, defs_folder, get_members, scalar
):
    # Customer service keeps the list in Excel: byte-order mark, CRLF, ids with spaces
    # around them, a semicolon as separator. " C07" and "C01 " suppressed nobody.
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "dnc.csv").write_bytes(
        b"\xef\xbb\xbfcustomer_id;reason\r\nC01 ;complaint\r\n C07;manual opt-out\r\n;\r\n"
    )
    defs_folder(
        dnc="kind: suppression\nname: dnc\ncustomer_ids_file: dnc.csv\n",
        vip="name: vip\nconsent: email\nwhere: {rule_segment: vip}\nsuppress: [dnc]\n",
    )
    build_audiences(settings, AS_OF)
    assert get_members(settings, "vip") == []
    assert scalar(settings, "select suppressed from audiences.summary where audience = 'vip'") == 2


def test_a_suppression_file_of_ids_with_a_pipe_suppresses_them(
    settings, defs_folder, get_members, scalar
):
    """Auth0 keys its users "auth0|5f7c..." (Google logins "google-oauth2|..."). A list of
    them, one column under its customer_id header, was sniffed as "|"-separated: the header
    was lost and the definition refused as having no customer_id column (columns read:
    auth0, C01), so the audience failed every night. The separator is the header's own."""
    con = connect(settings.warehouse)
    for table in ("marts.customers", "marts.customer_rule_segments"):
        con.execute(
            f"update {table} set customer_id = 'auth0|' || customer_id "
            "where customer_id in ('C01', 'C07')"
        )
    con.close()
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "dnc.csv").write_text("customer_id\nauth0|C01\n")
    defs_folder(
        dnc="kind: suppression\nname: dnc\ncustomer_ids_file: dnc.csv\n",
        vip="name: vip\nconsent: email\nwhere: {rule_segment: vip}\nsuppress: [dnc]\n",
    )
    result = build_audiences(settings, AS_OF)
    assert result.details["failed"] == {}
    assert get_members(settings, "vip") == ["auth0|C07"]
    assert scalar(settings, "select suppressed from audiences.summary where audience = 'vip'") == 1


def test_a_decile_range_left_empty_by_equal_scores_is_named(settings, defs_folder, get_members):
    """Ten of the twelve customers share the lowest purchase score (CRM records that never
    visited nor ordered) and C01, C02 share the top one: equal scores share a decile, so
    the ten are decile 1 and the two, 17% of the customers, decile 9 (never more than 10%
    in decile 10). An audience on decile 10 is then empty for that reason alone, and the
    night said nothing: it names the deciles tonight."""
    con = connect(settings.warehouse)
    con.execute(
        "update ml.propensity_scores set score = case when customer_id in ('C01', 'C02') "
        "then 0.6 else 0.002 end, decile = case when customer_id in ('C01', 'C02') "
        "then 9 else 1 end"
    )
    con.close()
    defs_folder(
        top=_audience("{propensity: purchase, decile_min: 10}").replace("aud", "top"),
        high=_audience("{propensity: purchase, decile_min: 8}").replace("aud", "high"),
        middle=_audience(
            "{all: [{propensity: purchase, decile_min: 4, decile_max: 6}, "
            "{feature: order_count, gte: 0}]}"
        ).replace("aud", "middle"),
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "top") == [] and get_members(settings, "high") == ["C01", "C02"]
    named = sorted(w for w in result.warnings if "holds nobody" in w or "hold nobody" in w)
    assert named == [
        "audience 'middle': purchase deciles 4-6 hold nobody on 2026-06-30 (customers per "
        "decile: 1: 10, 9: 2): customers with equal scores share a decile, so a block of them "
        "leaves the deciles it spans empty; widen the range or use score_min/score_max "
        "(docs/propensity.md, Deciles and ties)",
        "audience 'top': purchase decile 10 holds nobody on 2026-06-30 (customers per "
        "decile: 1: 10, 9: 2): customers with equal scores share a decile, so a block of them "
        "leaves the deciles it spans empty; widen the range or use score_min/score_max "
        "(docs/propensity.md, Deciles and ties)",
    ]


def test_a_young_shops_propensity_audience_gives_the_score_stages_reason(tmp_path, defs_folder):
    """The score stage ran on a shop of 40 customers and published no model, saying why in
    ml.model_runs (it now ranks by the recency rule; the scores are deleted below to show a
    night without any). The audience needing it failed with "(did the score stage publish?)" and
    the report listed it in red as failed: the expected state of a young shop, with the
    reason one table away."""
    from pathlib import Path

    from ml.propensity import run_propensity
    from segmint.config import Settings
    from segmint.report import write_report
    from tests.include.audiences.conftest import make_warehouse
    from tests.ml.propensity.simshop import AS_OF as SHOP_AS_OF
    from tests.ml.propensity.simshop import build_warehouse

    assert SHOP_AS_OF == AS_OF
    warehouse = make_warehouse(tmp_path / "young" / "segmint.duckdb", with_ml=False)
    build_warehouse(warehouse, n_customers=40)
    settings = Settings(
        warehouse=warehouse, audiences=tmp_path / "audiences", output=tmp_path / "out"
    )
    scored = run_propensity(settings, AS_OF)
    reason = scored.details["purchase"]["message"]
    assert reason.startswith("purchase: not enough labelled examples to train")
    defs_folder(
        a=_audience("{feature: recency_days, gte: 60}"),
        b=_audience("{propensity: purchase, decile_min: 8}").replace("aud", "scored"),
        wave="kind: priority_group\nname: wave\naudiences: [scored, aud]\n",
    )
    # Tonight the recency rule ranks the customers (no model published): the audience on
    # a purchase decile builds from the rule's deciles rather than waiting.
    ranked = build_audiences(settings, AS_OF)
    assert "scored" not in ranked.details["failed"], ranked.details["failed"]
    assert not ranked.details.get("waiting_for_model")
    # A night whose score stage wrote no scores (a release before the rule's ranking):
    # the audience waits, with the stage's reason.
    con = connect(warehouse)
    con.execute("delete from ml.propensity_scores")
    con.close()
    result = build_audiences(settings, AS_OF)
    # The priority group's warning said "scored failed" beside a summary saying it waits.
    assert (
        "priority group 'wave': scored not built yet (waiting for a first propensity model), "
        "so its customers may have landed in a lower-priority audience of the group"
    ) in result.warnings
    assert not [w for w in result.warnings if "failed" in w]
    message = result.details["failed"]["scored"]
    assert message == (
        f"audience 'scored' ({settings.audiences / 'b.yml'}) not built yet: "
        f"no published propensity model yet: {reason}"
    )
    assert "did the score stage" not in message
    assert result.details["waiting_for_model"] == ["scored"]
    assert result.summary.endswith(", 1 waiting for a first propensity model (scored)")
    assert "failed" not in result.summary
    con = connect(warehouse, read_only=True)
    row = con.execute(
        "select status, error from audiences.summary where audience = 'scored'"
    ).fetchone()
    con.close()
    assert row == ("failed", message)  # documented status; the message says why

    report = write_report(settings, AS_OF)
    html = Path(report.details["path"]).read_text(encoding="utf-8")
    assert "1 audience waiting for a first propensity model: scored." in report.details["summary"]
    assert not any("failed to build" in line for line in report.details["summary"])
    waiting = re.search(r'<ul class="note info"><li><b>scored</b> waits for a first [^<]*', html)
    assert waiting and "not enough labelled examples" in waiting.group(0)
    # In words: not the server's path to b.yml, nor the wait and the model's name twice.
    assert (
        "waits for a first propensity model: no purchase model published yet (not enough "
        "labelled examples to train"
    ) in waiting.group(0)
    assert "b.yml" not in waiting.group(0) and "not built yet" not in waiting.group(0)
    assert "<b>scored</b> failed to build" not in html


def test_a_model_published_before_but_not_tonight_still_fails(settings, defs_folder):
    # ml.propensity_scores has purchase scores of 2026-06-30, none of 07-01, and the score
    # stage's run of 07-01 says why: the audience fails (red), with that reason.
    defs_folder(a=_audience("{propensity: purchase, decile_min: 8}"))
    _next_day(settings)
    con = connect(settings.warehouse)
    con.execute(
        "create table ml.model_runs (run_id varchar, model_name varchar, as_of_date date, "
        "status varchar, message varchar, created_at timestamp)"
    )
    con.execute(
        "insert into ml.model_runs values ('r1', 'purchase', ?, 'not_published', "
        "'purchase: previous published model refused (checksum)', now())",
        [NEXT],
    )
    con.close()
    result = build_audiences(settings, NEXT)
    message = result.details["failed"]["aud"]
    assert (
        "not built: ml.propensity_scores has no scores of model 'purchase' for as_of_date "
        "2026-07-01; the score stage said: purchase: previous published model refused" in message
    )
    assert result.details["waiting_for_model"] == []
    assert "1 failed (aud)" in result.summary


def test_suppression_file_ids_with_excels_text_mark_are_matched(tmp_path):
    """A do-not-contact list kept from Shopify's customer export writes its ids as text for
    Excel ('7210448301122). The ingest reads such an id as the number; the list kept the
    apostrophe and suppressed nobody."""
    import duckdb

    from segmint.audiences.compile import suppression_file_sql

    path = tmp_path / "dnc.csv"
    path.write_text("customer_id,reason\n'7210448301122,complaint\n 'C07 ,opt-out\n'42 ,x\n")
    ids = duckdb.connect().execute(suppression_file_sql(path) + " order by 1").fetchall()
    assert ids == [("'C07",), ("42",), ("7210448301122",)]


def test_suppression_file_ids_are_cleaned_as_the_ingest_cleans_them(tmp_path):
    """A do-not-contact list whose id carries a zero-width space or a word joiner at an end
    (pasted from a web page), or is written in Unicode NFD, while the ingest stores it clean
    and in NFC (docs/data-contract.md): the list suppressed nobody. Its ids are read by the
    ingest's rule (id_clean_sql, then cast_sql)."""
    import duckdb

    from segmint.audiences.compile import suppression_file_sql

    path = tmp_path / "dnc.csv"
    path.write_text(
        "customer_id,reason\nC07\u200b,complaint\n\u2060C08,x\nJose\u0301-1,y\n",
        encoding="utf-8",
    )
    ids = duckdb.connect().execute(suppression_file_sql(path) + " order by 1").fetchall()
    assert ids == [("C07",), ("C08",), ("Jos\u00e9-1",)]


def test_a_missing_definitions_folder_is_named_with_the_setting(settings, tmp_path, monkeypatch):
    """Run from another folder, the default ./audiences was not there, and the warning said
    "audiences: no audience definitions folder", naming neither the folder looked for nor
    how to point at the real one."""
    import dataclasses
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    elsewhere = dataclasses.replace(settings, audiences=Path("audiences-not-here"))
    result = build_audiences(elsewhere, date(2026, 6, 30))
    assert (
        f"no audience definitions folder at {tmp_path / 'audiences-not-here'}; no audience "
        "built (pass --audiences, or set SEGMINT_AUDIENCES" in " ".join(result.warnings)
    )


def test_a_nan_score_is_in_no_decile_and_no_score_based_audience(
    settings, defs_folder, get_members
):
    """A model that returns NaN for a customer (or a writer that stored one): DuckDB sorts
    NaN above every number, so ``score_min: 0.95`` matched it, a size cap ordered by the
    score took it first, and the decile the scorer stored for it (10: NaN sorts last) put
    it in every "top decile" audience. A NaN score is no score: counted and warned."""
    con = connect(settings.warehouse)
    con.execute(
        "update ml.propensity_scores set score = 'NaN'::double, decile = 10 "
        "where customer_id = 'C12'"
    )
    con.close()
    defs_folder(
        top=_audience("{propensity: purchase, decile_min: 9}").replace("aud", "top"),
        sure=_audience("{propensity: purchase, score_min: 0.95}").replace("aud", "sure"),
        capped=_audience(
            "{feature: order_count, gte: 0}",
            extra="limit: {size: 2, order_by: {propensity: purchase}}\n",
        ).replace("aud", "capped"),
        rules=_audience("{rule_segment: vip}").replace("aud", "rules"),
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "top") == ["C01", "C02"]
    assert get_members(settings, "sure") == ["C01"]
    assert get_members(settings, "capped") == ["C01", "C02"]
    assert result.details["unscored"] == {"purchase": 1}
    assert (
        "1 customer(s) have no usable purchase score on 2026-06-30 (NaN or infinite in "
        "ml.propensity_scores): they are in no decile and in no audience selecting or "
        "ordering by it (capped, sure, top)"
    ) in result.warnings


def test_a_rules_ranking_selects_by_decile_and_never_by_a_probability_bound(
    settings, defs_folder, get_members
):
    """No purchase model published yet: the score stage ranked tonight's customers by the
    recency rule (``ranked_by``), whose score is the share of customers ranked below, not a
    probability. Deciles and an order select by it; ``score_min: 0.9`` would have taken the
    top 10% as "a 90% chance": it matches none of them, and the night says so."""
    con = connect(settings.warehouse)
    con.execute("alter table ml.propensity_scores add column ranked_by varchar default 'model'")
    con.execute("update ml.propensity_scores set ranked_by = 'baseline_recency'")
    con.close()
    defs_folder(
        top=_audience("{propensity: purchase, decile_min: 9}").replace("aud", "top"),
        sure=_audience("{propensity: purchase, score_min: 0.9}").replace("aud", "sure"),
        capped=_audience(
            "{feature: order_count, gte: 0}",
            extra="limit: {size: 2, order_by: {propensity: purchase}}\n",
        ).replace("aud", "capped"),
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "top") == ["C01", "C02"]
    assert get_members(settings, "sure") == []
    assert get_members(settings, "capped") == ["C01", "C02"]
    assert (
        "no purchase model is published yet: its scores on 2026-06-30 are the ranking of the "
        "rule baseline_recency, not probabilities, so score_min/score_max match none of them "
        "in sure; decile_min/decile_max select by the rule's deciles"
    ) in result.warnings
    # A model's scores (ranked_by 'model') are bounded as before.
    con = connect(settings.warehouse)
    con.execute("update ml.propensity_scores set ranked_by = 'model'")
    con.close()
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "sure") == ["C01", "C02"]
    assert not [w for w in result.warnings if "is published yet" in w]


def test_an_audience_a_rules_ranking_empties_says_why_in_the_log_summary_and_export(
    settings, defs_folder, get_members, tmp_path, capsys
):
    """``likely_buyers_lapsed`` on a night the recency rule ranks (no purchase model
    published): its top deciles are the recent buyers, so "decile 10 and no order for 60
    days" matches nobody by construction. Marketing got an empty Google file, the report
    "built with no members", and nothing said why (generated shop of 80 customers). The
    night, the summary and an export of the snapshot now say so; a model's night does not."""
    from segmint.cli import main

    con = connect(settings.warehouse)
    con.execute("alter table ml.propensity_scores add column ranked_by varchar default 'model'")
    # The rule's deciles: the most recent buyers (C01 5 days, C07 10 days) on top.
    con.execute(
        "update ml.propensity_scores set ranked_by = 'baseline_recency', decile = "
        "case when customer_id in ('C01', 'C07') then 10 else 1 end"
    )
    con.close()
    defs_folder(
        lapsed=(
            "name: lapsed\nconsent: email\nwhere:\n  all:\n"
            "    - {propensity: purchase, decile_min: 10}\n"
            "    - {feature: recency_days, gte: 60}\nexports: [google_customer_match]\n"
        ),
        top=_audience("{propensity: purchase, decile_min: 10}").replace("aud", "top"),
        sure=_audience("{propensity: purchase, score_min: 0.9}").replace("aud", "sure"),
        # Empty too (everyone is scored), but a negated range is not why: no note.
        unscored=_audience("{not: {propensity: purchase, decile_min: 1}}").replace(
            "aud", "unscored"
        ),
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "unscored") == []
    assert "unscored" not in result.details["empty_on_rule_ranking"]
    assert get_members(settings, "lapsed") == []
    assert get_members(settings, "top") == ["C01", "C07"]
    note = (
        "audience 'lapsed' is empty on 2026-06-30: no purchase model is published, so "
        "tonight's purchase scores are the ranking of the rule baseline_recency (days since "
        "the last order, the most recent buyers first), and the 2 customer(s) of its decile "
        "10 (recency_days 5 to 10) meet none of the audience's other conditions. On a rule's "
        "ranking such an audience can be empty by construction"
    )
    assert [w for w in result.warnings if w.startswith(note)]
    assert result.details["empty_on_rule_ranking"]["lapsed"].startswith(note)
    assert result.details["empty_on_rule_ranking"]["sure"].startswith(
        "audience 'sure' is empty on 2026-06-30: no purchase model is published, so "
        "tonight's purchase scores are the ranking of the rule baseline_recency (days since "
        "the last order, the most recent buyers first), not probabilities, and its "
        "where.propensity score_min/score_max bound matches none of them"
    )
    assert "top" not in result.details["empty_on_rule_ranking"]
    # The nightly export's warning does not repeat it; the summary keeps it.
    assert [w for w in result.warnings if "has no rows" in w] == [
        w for w in result.warnings if w.startswith("lapsed google_customer_match has no rows: an")
    ]
    con = connect(settings.warehouse)
    notes = dict(
        con.execute(
            "select audience, note from audiences.summary where as_of_date = ?", [AS_OF]
        ).fetchall()
    )
    con.close()
    assert notes["lapsed"].startswith(note) and notes["top"] is None
    # An export of the snapshot (marketing, the morning after) says why it has no rows.
    out = tmp_path / "g.csv"
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    args = ["audience", "export", "lapsed", *wh, "--format", "google_customer_match"]
    assert main([*args, "--out", str(out)]) == 0
    assert f"  warning: lapsed google_customer_match has no rows: {note}" in capsys.readouterr().out
    # A model's scores: the same empty audience is no rule's doing, and nothing says so.
    con = connect(settings.warehouse)
    con.execute("update ml.propensity_scores set ranked_by = 'model'")
    con.close()
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "lapsed") == []
    assert result.details["empty_on_rule_ranking"] == {}
    assert not [w for w in result.warnings if "is empty on" in w]


def test_a_size_cap_that_cuts_a_tie_says_so_and_keeps_the_same_on_rerun(
    settings, defs_folder, get_members
):
    """Three places, fewest orders first: C04 and C12 have none, C02 and C10 one order each,
    so the cap keeps one of the two. The stable hash of audience and id chose it in
    silence; the night now says a tie was cut, how many of it were kept, and a rerun keeps
    the same customer."""
    import hashlib

    defs_folder(
        low=(
            "name: low\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
            "limit: {size: 3, order_by: {feature: order_count, direction: asc}}\n"
        ),
        top=(
            "name: top\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
            "limit: {size: 2, order_by: {feature: order_count}}\n"
        ),
    )
    first = build_audiences(settings, AS_OF)
    kept = min(["C02", "C10"], key=lambda c: hashlib.sha256(f"low:{c}".encode()).hexdigest())
    assert get_members(settings, "low") == sorted(["C04", "C12", kept])
    assert first.details["size_cap_ties"] == {"low": {"value": 1.0, "kept": 1, "tied": 2}}
    assert (
        "audience 'low': limit.size 3 cut a tie: 1 of the 2 customers with order_count 1 "
        "(the last place's) kept, chosen by a stable hash of the audience name and customer "
        "id, so a rerun keeps the same ones"
    ) in first.warnings
    assert get_members(settings, "top") == ["C01", "C07"]  # 12 and 9 orders: no tie cut
    again = build_audiences(settings, AS_OF)
    assert get_members(settings, "low") == sorted(["C04", "C12", kept])
    assert again.details["size_cap_ties"] == first.details["size_cap_ties"]


def test_a_text_value_no_customer_has_is_named_not_a_silent_empty_audience(
    settings, defs_folder, get_members, capsys
):
    """`rfm_segment: {eq: loyal}`: the value is 'Loyal', so the audience was empty, and
    with `ne` it held everybody, in silence. The night and `segmint audience validate` name
    the value and the closest one the column holds; a value no customer has yet (a tier
    launched next month) still builds."""
    from segmint.cli import main

    defs_folder(
        loyal=_audience("{feature: rfm_segment, eq: loyal}").replace("aud", "loyal"),
        others=_audience("{feature: rfm_segment, ne: loyal}").replace("aud", "others"),
        books=_audience("{feature: favourite_category, in: [books, Toyz]}").replace("aud", "books"),
        right=_audience("{feature: rfm_segment, eq: Loyal}").replace("aud", "right"),
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "loyal") == [] and get_members(settings, "right") == [
        "C07",
        "C11",
    ]
    named = sorted(w.split("/")[-1] for w in result.warnings if "no customer has" in w)
    assert named == [
        "books.yml:3: where.in: no customer has favourite_category 'Toyz' on any as-of date, "
        "so this comparison matches nobody; did you mean 'toys'? (values are compared "
        "exactly, case included)",
        "loyal.yml:3: where.eq: no customer has rfm_segment 'loyal' on any as-of date, so "
        "this comparison matches nobody; did you mean 'Loyal'? (values are compared exactly, "
        "case included)",
        "others.yml:3: where.ne: no customer has rfm_segment 'loyal' on any as-of date, so "
        "this comparison matches everybody; did you mean 'Loyal'? (values are compared "
        "exactly, case included)",
    ]
    args = ["audience", "validate", "--warehouse", str(settings.warehouse)]
    assert main([*args, "--audiences", str(settings.audiences), "--as-of", "2026-06-30"]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: ") == 3 and "did you mean 'Loyal'?" in out


def test_a_holdout_change_that_moves_members_between_groups_is_said(
    settings, defs_folder, get_members
):
    """A marketer changes the holdout's salt (or percent) between two nights: customers
    sent yesterday's campaign are in tonight's holdout, and some held out are targeted.
    The changes table holds entries and exits only, so nothing said so; the night now
    counts the moves. A night with the same settings moves nobody and says nothing."""
    aud = "name: a\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
    defs_folder(a=aud + "holdout: {percent: 50, salt: s}\n")
    build_audiences(settings, AS_OF)
    _next_day(settings)
    same = build_audiences(settings, NEXT)
    assert same.details["built"] == ["a"]
    assert not any("moved from target to holdout" in w for w in same.warnings)
    before = set(get_members(settings, "a", AS_OF, group="holdout"))
    defs_folder(a=aud + "holdout: {percent: 50, salt: t}\n")
    result = build_audiences(settings, NEXT)  # the night rerun with the new salt
    after = set(get_members(settings, "a", NEXT, group="holdout"))
    to_holdout, to_target = len(after - before), len(before - after)
    assert (to_holdout, to_target) == (3, 1)  # C01 C02 C08 held out now, C06 targeted
    assert (
        "audience 'a': 3 customer(s) moved from target to holdout and 1 from holdout to "
        "target since 2026-06-30 (its holdout percent or salt changed)"
    ) in " ".join(result.warnings)


def test_a_suppression_file_matching_no_customer_is_named(settings, defs_folder, get_members):
    """Customer service keeps the do-not-contact list by e-mail address, under a
    customer_id header: it suppressed nobody, in silence, and Anna was e-mailed. The night
    names the list, its ids and an example; a list that matches someone says nothing."""
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "dnc.csv").write_text(
        "customer_id\nanna.smith@example.com\ngrace@example.com\n"
    )
    (settings.audiences / "ok.csv").write_text("customer_id\nC06\nX999\n")
    defs_folder(
        dnc="kind: suppression\nname: dnc\ncustomer_ids_file: dnc.csv\n",
        ok="kind: suppression\nname: ok\ncustomer_ids_file: ok.csv\n",
        vip="name: vip\nconsent: email\nwhere: {rule_segment: vip}\nsuppress: [dnc, ok]\n",
    )
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "vip") == ["C01", "C07"]
    named = [w for w in result.warnings if w.startswith("suppression list")]
    assert named == [
        f"suppression list 'dnc' ({settings.audiences / 'dnc.csv'}): none of its 2 id(s) is "
        "a customer id of marts.customers (for example 'anna.smith@example.com'), so it "
        "suppresses nobody in vip; its customer_id column must hold the CRM's customer ids"
    ]


def test_a_rebuilt_earlier_night_recomputes_the_next_nights_changes(
    settings, defs_folder, get_members
):
    """Nights 06-30 and 07-01 built; then C06's e-mail consent is found withdrawn and
    06-30 is rebuilt (a backfill): C06 leaves 06-30. 07-01, built before, still holds C06,
    but its changes were computed against the old 06-30: C06 was in both, so no 'entered'
    row, and the changes no longer added up to the lists. They are recomputed."""
    defs_folder(a=_audience("{feature: recency_days, gte: 60}"))
    build_audiences(settings, AS_OF)
    _next_day(settings)
    build_audiences(settings, NEXT)
    con = connect(settings.warehouse)
    con.execute("update marts.customers set email_opt_in = false where customer_id = 'C06'")
    con.close()
    result = build_audiences(settings, AS_OF)
    assert get_members(settings, "aud", AS_OF) == ["C02", "C08", "C11"]
    assert get_members(settings, "aud", NEXT) == ["C04", "C06", "C08", "C11"]  # built before
    con = connect(settings.warehouse, read_only=True)
    changes = con.execute(
        "select customer_id, change, previous_as_of_date from audiences.changes "
        "where as_of_date = date '2026-07-01' order by 1"
    ).fetchall()
    summary = con.execute(
        "select entered, exited, previous_as_of_date from audiences.summary "
        "where as_of_date = date '2026-07-01'"
    ).fetchone()
    con.close()
    assert changes == [
        ("C02", "exited", AS_OF),
        ("C04", "entered", AS_OF),
        ("C06", "entered", AS_OF),
    ]
    assert summary == (2, 1, AS_OF)
    assert result.details["changes_recomputed"] == {"aud": "2026-07-01"}


def test_a_rebuilt_earlier_night_names_the_later_nights_to_rerun(settings, defs_folder):
    """The rebuilt 06-30 lost C06 (consent withdrawn), but 07-01 and 07-02, built before,
    still hold C06 and nothing said so: only their changes were recomputed, and the docs'
    "rerun it too" named no night. The rebuild now warns, naming the audience and the
    nights to rerun; a rerun that changes nobody (a retried night) says nothing."""
    defs_folder(a=_audience("{feature: recency_days, gte: 60}"))
    build_audiences(settings, AS_OF)
    _next_day(settings)
    build_audiences(settings, NEXT)
    con = connect(settings.warehouse)
    con.execute(
        "insert into marts.customer_features select * replace (date '2026-07-02' as as_of_date)"
        " from marts.customer_features where as_of_date = date '2026-07-01'"
    )
    con.close()
    build_audiences(settings, date(2026, 7, 2))
    rerun = build_audiences(settings, AS_OF)
    assert not [w for w in rerun.warnings if "rebuilt" in w]
    assert rerun.details["later_nights_to_rerun"] == {}
    con = connect(settings.warehouse)
    con.execute("update marts.customers set email_opt_in = false where customer_id = 'C06'")
    con.close()
    result = build_audiences(settings, AS_OF)
    assert result.details["later_nights_to_rerun"] == {"aud": ["2026-07-01", "2026-07-02"]}
    assert (
        "audience 'aud': 2026-06-30 was rebuilt with other members than before (1 left, "
        "0 joined), but the 2 night(s) built after it (2026-07-01, 2026-07-02) keep the "
        "members they were built with (only their changes were recomputed); if the correction "
        "concerns them too (a consent corrected in the CRM does), rerun them oldest first: "
        "segmint audience build --as-of 2026-07-01 ... --as-of 2026-07-02"
    ) in result.warnings
    # Rerun as told, the later nights lose C06 too, and nothing is left to say.
    build_audiences(settings, NEXT)
    build_audiences(settings, date(2026, 7, 2))
    again = build_audiences(settings, AS_OF)
    assert again.details["later_nights_to_rerun"] == {}


def test_a_holdout_percent_written_as_a_fraction_is_said(settings, defs_folder, capsys):
    """``holdout: {percent: 0.1}`` meant 10% and held out 1 customer in 1000, in silence:
    the campaign could not be measured. The night and ``audience validate`` warn, naming
    the file, the line and the unit; the audience is still built as written (a 0.5%
    holdout of a large audience may be meant). A percent of 1 or more says nothing."""
    from segmint.cli import main

    aud = "name: {n}\nconsent: email\nwhere: {{feature: order_count, gte: 0}}\n"
    defs_folder(
        a=aud.format(n="a") + "holdout:\n  percent: 0.1\n",
        b=aud.format(n="b") + "holdout: {percent: 10}\n",
    )
    result = build_audiences(settings, AS_OF)
    assert result.details["built"] == ["a", "b"]
    said = [w for w in result.warnings if "percent" in w]
    assert said == [
        f"{settings.audiences / 'a.yml'}:5: holdout.percent: 0.1 holds out 0.1% of the "
        "audience (1 customer in 1,000); percent is in percent (10 for 10%): write 10 if 0.1 "
        "was meant as a fraction"
    ]
    args = ["audience", "validate", "--warehouse", str(settings.warehouse)]
    assert main([*args, "--audiences", str(settings.audiences), "--as-of", "2026-06-30"]) == 0
    assert f"warning: {said[0]}" in capsys.readouterr().out.splitlines()
