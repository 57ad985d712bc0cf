"""Definitions: structure errors name the file, line, key and fault; unknown names fail."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from segmint.audiences import build_audiences
from segmint.audiences.definitions import DefinitionError, load_definitions
from segmint.warehouse import connect
from tests.db import fetch


def _problems(folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_definitions(folder)
    return info.value.problems


def test_valid_definitions_load_with_every_part(defs_folder):
    folder = defs_folder(
        a="""
        name: winback
        description: Lapsed buyers
        consent: email
        where:
          all:
            - feature: recency_days
              gte: 60
            - any:
                - rule_segment: [lapsing, vip]
                - ml_segment: Browsers
            - not:
                propensity: purchase
                decile_max: 2
        suppress: [complainers]
        limit:
          size: 100
          order_by: {propensity: purchase, direction: desc}
        holdout: {percent: 10, salt: q3}
        exports: [csv, diff]
        """,
        b="""
        kind: suppression
        name: complainers
        where: {rule_segment: complainer}
        """,
    )
    defs = load_definitions(folder)
    aud = defs.audiences["winback"]
    assert aud.consent == "email" and aud.limit == 100 and aud.holdout_percent == 10.0
    assert [leaf.kind for leaf in aud.where.leaves()] == [
        "feature",
        "rule_segment",
        "ml_segment",
        "propensity",
    ]
    assert aud.where.leaves()[1].names == ("lapsing", "vip")
    assert defs.suppressions["complainers"].where is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nwhere: {feature: recency_days, gte: 1}\n",
            "<file>: missing required key 'consent'",
        ),
        (
            "name: x\nconsent: sms\nwhere: {feature: recency_days, gte: 1}\n",
            ":2: consent: must be one of email, ads",
        ),
        ("name: Bad-Name\nconsent: ads\nwhere: {rule_segment: vip}\n", ":1: name: 'Bad-Name'"),
        (
            "name: x\nconsent: ads\nwhere:\n  all:\n    - feature: recency_days\n"
            "      gte: 1\n    - feature: order_count\n",
            ":7: where.all[1]: feature 'order_count' needs exactly one comparison",
        ),
        (
            "name: x\nconsent: ads\nwhere:\n  propensity: purchase\n  decile_min: 11\n",
            ":5: where.decile_min: a decile is a whole number 1-10",
        ),
        (
            "name: x\nconsent: ads\nwhere: {feature: recency_days, between: [90, 30]}\n",
            "where.between: low 90 is greater than high 30",
        ),
        (
            "name: x\nconsent: ads\nwhere: {segment: vip}\n",
            "where: a condition needs exactly one of all, any, not, feature",
        ),
        (
            "name: x\nconsent: ads\nwhere: {rule_segment: vip}\nholdout: {percent: 100}\n",
            ":4: holdout.percent: must be at least 0 and below 100",
        ),
        (
            "name: x\nconsent: ads\nwhere: {rule_segment: vip}\nlimit: {size: 10}\n",
            "limit: missing required key 'order_by'",
        ),
        (
            "name: x\nconsent: ads\nwhere: {rule_segment: vip}\nsuppress: [nobody]\n",
            ":4: suppress[0]: unknown suppression list 'nobody'",
        ),
        (
            "name: x\nconsent: ads\nwhere: {rule_segment: vip}\ncolour: red\n",
            ":4: colour: unknown key 'colour'",
        ),
        ("name: x\nconsent: ads\nwhere: [oops\n", "invalid YAML"),
        (
            "name: x\nconsent: ads\nwhere: {rule_segment: vip}\nexports: [xlsx]\n",
            "exports[0]: unknown format 'xlsx'; formats: csv, parquet, google_customer_match, "
            "meta_custom_audience, mailchimp, klaviyo, braze, diff",
        ),
    ],
)
def test_invalid_definition_messages_name_file_line_key(tmp_path, text, expected):
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "broken.yml").write_text(text)
    problems = _problems(folder)
    assert any(expected in p for p in problems), problems
    assert all(str(folder / "broken.yml") in p for p in problems)


def test_duplicate_names_and_group_errors_are_reported_together(defs_folder):
    folder = defs_folder(
        a="name: same\nconsent: ads\nwhere: {rule_segment: vip}\n",
        b="name: same\nconsent: ads\nwhere: {rule_segment: vip}\n",
        g="kind: priority_group\nname: wave\naudiences: [same, ghost]\n",
    )
    problems = _problems(folder)
    assert any("'same' is already defined in" in p for p in problems)
    assert any("audiences[1]: unknown audience 'ghost'" in p for p in problems)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (
            "{feature: recency_dayz, gte: 60}",
            "unknown feature 'recency_dayz'; did you mean 'recency_days'?",
        ),
        ("{rule_segment: vipp}", "unknown rule segment 'vipp'; did you mean 'vip'?"),
        ("{ml_segment: Big spender}", "unknown ML segment 'Big spender'"),
        ("{propensity: purchse, decile_min: 8}", "unknown model 'purchse'"),
        ("{feature: recency_days, gte: 'sixty'}", "feature 'recency_days' is numeric"),
        ("{feature: favourite_category, eq: 3}", "feature 'favourite_category' is text"),
        ("{feature: email_opt_in, gt: true}", "use eq, ne or is_null"),
        (
            "{feature: order_count, gte: 0}\nlimit: {size: 2, order_by: {feature: rfm_segment}}",
            "order_by needs a numeric feature",
        ),
    ],
)
def test_unknown_names_and_wrong_types_are_errors_not_empty_audiences(
    settings, defs_folder, get_members, where, expected
):
    folder = defs_folder(
        a=f"name: x\nconsent: ads\nwhere: {where}\n",
        ok="name: ok\nconsent: ads\nwhere: {rule_segment: vip}\n",
    )
    # `segmint audience validate` (strict) rejects the folder, naming file, line and key.
    from segmint.audiences.compile import Catalog, check_names
    from segmint.warehouse import connect

    con = connect(settings.warehouse, read_only=True)
    cat = Catalog.read(con, date(2026, 6, 30))
    con.close()
    with pytest.raises(DefinitionError) as info:
        check_names(load_definitions(folder), cat)
    assert expected in str(info.value) and "a.yml:" in str(info.value)
    # The nightly stage fails that audience, with the same message, and builds the others.
    result = build_audiences(settings, date(2026, 6, 30))
    assert expected in result.details["failed"]["x"]
    assert any(expected in w for w in result.warnings)
    assert get_members(settings, "ok") == ["C01", "C07"]
    assert get_members(settings, "x") == []


def test_nightly_stage_skips_broken_files_and_invalid_groups(settings, defs_folder, get_members):
    defs_folder(
        broken="name: broken\nconsent: sms\nwhere: {rule_segment: vip}\n",
        a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\n",
        b="name: b\nconsent: ads\nwhere: {rule_segment: lapsing}\n",
        c="name: c\nconsent: ads\nwhere: {rule_segment: lapsing}\n",
        g="kind: priority_group\nname: wave\naudiences: [b, c, ghost]\n",
    )
    result = build_audiences(settings, date(2026, 6, 30))
    assert result.details["built"] == ["a"]
    assert "priority group 'wave' is invalid" in result.details["failed"]["b"]
    assert any("broken.yml:2: consent" in w for w in result.warnings)
    assert get_members(settings, "a") == ["C01", "C07"]
    # The invalid file has its failed row like any audience not built tonight, so the
    # summary (and the report reading it) shows it rather than leaving it out unseen.
    rows = fetch(
        settings.warehouse,
        "select audience, status, consent, error, definition_file from audiences.summary "
        "order by audience",
    )
    assert [r[:3] for r in rows] == [
        ("a", "built", "ads"),
        ("b", "failed", "ads"),
        ("broken", "failed", None),
        ("c", "failed", "ads"),
    ]
    assert "broken.yml:2: consent" in rows[2][3] and rows[2][4].endswith("broken.yml")
    assert "failed (b, c, broken)" in result.summary


def test_validate_lists_every_fault_of_every_file(settings, defs_folder, capsys):
    """One file's structure fault must not hide the unknown names of the others, nor those
    of the same file: a marketer fixes the folder in one go."""
    from segmint.cli import main

    defs_folder(
        a="name: a\nconsent: email\nwhere: {rule_segment: vipp}\nholdout: {pecent: 10}\n",
        b="name: b\nconsent: ads\nwhere: {propensity: purchse, decile_min: 8}\n",
        # a fault inside the where: the names of its other conditions are still checked
        c="name: c\nconsent: ads\nwhere:\n  all:\n    - rule_segment: vipz\n"
        "    - {propensity: purchase, score_min: 1.5}\n",
        g="kind: priority_group\nname: wave\naudiences: [a, b]\n",
    )
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    assert main(["audience", "validate", *wh, "--as-of", "2026-06-30"]) == 1
    err = capsys.readouterr().err
    assert "holdout.pecent" in err and "a.yml" in err
    assert "unknown rule segment 'vipp'" in err
    assert "b.yml" in err and "unknown model 'purchse'" in err
    assert "c.yml:6: where.all[1].score_min: a score is a probability 0-1, got 1.5" in err
    assert "c.yml:5: where.all[0].rule_segment: unknown rule segment 'vipz'" in err
    # The group names a's file as invalid, not as an audience nobody defined.
    assert "audience 'a' is invalid" in err and "unknown audience 'a'" not in err


@pytest.mark.parametrize(
    "content",
    [
        b"Customer ID\nC10\n",  # a spreadsheet's header
        b"C10\nC11\n",  # ids without a header: the first id is read as the column name
        b"",
    ],
)
def test_suppression_file_without_customer_id_column_is_named_not_a_sql_error(
    settings, defs_folder, get_members, content
):
    # Without a customer_id column the builder's query failed with "Binder Error: Ambiguous
    # reference to column name customer_id" (or, with no features joined, one about the
    # SELECT clause) and `segmint audience validate` said the folder was fine.
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "dnc.csv").write_bytes(content)
    folder = defs_folder(
        dnc="kind: suppression\nname: dnc\ncustomer_ids_file: dnc.csv\n",
        a="name: a\nconsent: email\nwhere: {rule_segment: vip}\nsuppress: [dnc]\n",
        ok="name: ok\nconsent: ads\nwhere: {rule_segment: vip}\n",
    )
    problems = _problems(folder)
    assert any(
        p.startswith(f"{folder / 'dnc.yml'}:3: customer_ids_file: ")
        and "has no customer_id column" in p
        for p in problems
    ), problems
    result = build_audiences(settings, date(2026, 6, 30))
    assert "a" in result.details["failed"]
    assert not any("Binder Error" in w for w in result.warnings)
    assert get_members(settings, "ok") == ["C01", "C07"]


def test_a_key_given_twice_is_an_error_not_the_last_one_silently(settings, defs_folder):
    # A second `suppress:` added at the bottom of the file replaced the first (the audience
    # lost its do-not-contact list) and a second `consent:` switched e-mail to ads: YAML
    # keeps the last value of a repeated key, and `segmint audience validate` said "valid".
    folder = defs_folder(
        dnc="kind: suppression\nname: dnc\nwhere: {rule_segment: complainer}\n",
        recent="kind: suppression\nname: recent\nwhere: {feature: recency_days, lte: 3}\n",
        a=(
            "name: a\nconsent: email\nwhere:\n  feature: order_count\n  gte: 0\n"
            "suppress: [dnc]\nholdout: {percent: 10}\nsuppress: [recent]\nconsent: ads\n"
        ),
        ok="name: ok\nconsent: ads\nwhere: {rule_segment: vip}\n",
    )
    problems = _problems(folder)
    a = folder / "a.yml"
    assert f"{a}:8: suppress: key given twice (first on line 6)" in " ".join(problems)
    assert f"{a}:9: consent: key given twice (first on line 2)" in " ".join(problems)
    result = build_audiences(settings, date(2026, 6, 30))
    assert result.details["built"] == ["ok"]
    assert any(f"{a}:8: suppress: key given twice" in w for w in result.warnings)


def test_a_file_not_in_utf8_is_named_and_does_not_stop_the_night(
    settings, defs_folder, get_members
):
    # Saved as Windows-1252 by a Windows editor: "Café" is the byte 0xe9. Loading raised a
    # bare UnicodeDecodeError naming no file, strict or not, so the nightly stage failed
    # and no audience was built.
    folder = defs_folder(ok="name: ok\nconsent: ads\nwhere: {rule_segment: vip}\n")
    text = "name: cafe\nconsent: email\ndescription: Café regulars\nwhere: {rule_segment: vip}\n"
    (folder / "cafe.yml").write_bytes(text.encode("cp1252"))
    assert _problems(folder) == [
        f"{folder / 'cafe.yml'}:3: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]
    result = build_audiences(settings, date(2026, 6, 30))
    assert result.details["built"] == ["ok"]
    assert any("cafe.yml:3: not UTF-8 text" in w for w in result.warnings)
    assert get_members(settings, "ok") == ["C01", "C07"]


def test_an_impossible_date_is_named_and_does_not_stop_the_night(
    settings, defs_folder, get_members
):
    """`signup_date: {gte: 2026-02-30}` (a date that does not exist) raised a bare
    ValueError from the YAML loader, naming no file: the nightly stage failed and no
    audience was built. It is an error of its file and line, and the others build."""
    folder = defs_folder(
        ok="name: ok\nconsent: ads\nwhere: {rule_segment: vip}\n",
        late=("name: late\nconsent: email\nwhere:\n  feature: signup_date\n  gte: 2026-02-30\n"),
    )
    assert _problems(folder) == [
        f"{folder / 'late.yml'}:5: invalid YAML: '2026-02-30' is not a date "
        "(day is out of range for month)"
    ]
    result = build_audiences(settings, date(2026, 6, 30))
    assert result.details["built"] == ["ok"]
    assert any("late.yml:5: invalid YAML: '2026-02-30' is not a date" in w for w in result.warnings)
    assert get_members(settings, "ok") == ["C01", "C07"]


def test_suppression_file_in_the_windows_code_page_is_named(settings, defs_folder):
    # Excel's plain "CSV" is saved in the Windows code page ("über" is the byte 0xfc); the
    # builder's read_csv then fails. The definition says so, with the line.
    settings.audiences.mkdir(parents=True, exist_ok=True)
    (settings.audiences / "dnc.csv").write_bytes(
        "customer_id,reason\nC10,Beschwerde über Werbung\n".encode("cp1252")
    )
    folder = defs_folder(dnc="kind: suppression\nname: dnc\ncustomer_ids_file: dnc.csv\n")
    assert _problems(folder) == [
        f"{folder / 'dnc.yml'}:3: customer_ids_file: {folder / 'dnc.csv'} cannot be read: "
        "line 2 is not UTF-8 (byte 0xfc); save it as CSV UTF-8"
    ]


def test_a_warehouse_made_when_consent_was_required_takes_the_failed_row(settings, defs_folder):
    from segmint.audiences.tables import AUDIENCES_DDL

    old_ddl = AUDIENCES_DDL.replace("consent varchar,", "consent varchar not null,", 1)
    assert old_ddl != AUDIENCES_DDL
    con = connect(settings.warehouse)
    con.execute(old_ddl)
    con.close()
    defs_folder(broken="name: broken\nwhere: {rule_segment: vip}\n")
    result = build_audiences(settings, date(2026, 6, 30))
    assert "consent" in result.details["failed"]["broken"]
    assert fetch(settings.warehouse, "select audience, consent from audiences.summary") == [
        ("broken", None)
    ]
