"""Normalisation and hashing against published examples and independent hashlib values."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import duckdb
import pytest

from expectations.suites.crm import EMAIL_REGEX
from segmint.audiences.normalise import (
    e164_sql,
    esp_email_sql,
    google_email_sql,
    google_name_sql,
    hashed,
    is_address_sql,
    meta_country_sql,
    meta_email_sql,
    meta_name_sql,
    meta_phone_sql,
    meta_zip_sql,
    normalise_preview_sql,
    us_zip_sql,
)


def _eval(expr: str, **values: object) -> object:
    con = duckdb.connect()
    cols = ", ".join(f"?::varchar as {k}" for k in values)
    row = con.execute(f"select {expr} from (select {cols})", list(values.values())).fetchone()
    con.close()
    return row[0]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_duckdb_sha256_matches_the_nist_vector():
    # FIPS 180-2 example: SHA-256("abc").
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert _eval(hashed("v"), v="abc") == expected


def test_published_email_vector():
    # TikTok's customer-file guide: normalised "janedoe@gmail.com" and its SHA-256.
    published = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
    assert _eval(hashed(google_email_sql("e")), e="  JaneDoe@Gmail.com ") == published
    assert _eval(hashed(meta_email_sql("e")), e="JANEDOE@gmail.com") == published


def test_published_phone_vector_digits_with_country_code():
    # TikTok/Meta digits-only form: "374-93-828222" -> "37493828222" and its SHA-256.
    published = "65b7e6dcf6f4310f8d7cbfbd78289a753062fb054d6664fb9aaac5df66a422d4"
    assert _eval(meta_phone_sql("p", "c"), p="+374-93-828222", c="AM") == "37493828222"
    assert _eval(hashed(meta_phone_sql("p", "c")), p="093 828222", c="AM") == published


@pytest.mark.parametrize(
    ("email", "google", "meta"),
    [
        # Google's Data Manager API guide: for gmail.com and googlemail.com, remove the dots
        # before @ and a "+" with what follows; other domains keep both. Meta says nothing
        # of the kind: its e-mail is only trimmed and lower-cased.
        (
            "cloudy.sanfrancisco+shopping@gmail.com",
            "cloudysanfrancisco@gmail.com",
            "cloudy.sanfrancisco+shopping@gmail.com",
        ),
        (" Jane.Doe@GMail.com", "janedoe@gmail.com", "jane.doe@gmail.com"),
        ("a.b+c@googlemail.com", "ab@googlemail.com", "a.b+c@googlemail.com"),
        ("User.Name+NYC@Example.com", "user.name+nyc@example.com", "user.name+nyc@example.com"),
        ("a.b@gmail.com.example.org", "a.b@gmail.com.example.org", "a.b@gmail.com.example.org"),
        ("+tag@gmail.com", None, "+tag@gmail.com"),  # nothing left before @: not hashed
        ("not-an-email", None, None),
    ],
)
def test_google_canonical_gmail_address_meta_as_written(email, google, meta):
    assert _eval(google_email_sql("e"), e=email) == google
    assert _eval(meta_email_sql("e"), e=email) == meta


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("+1 (415) 555-2671", "US", "+14155552671"),
        ("415-555-2671", "us", "+14155552671"),
        ("1 415 555 2671", "US", "+14155552671"),
        ("1-800-888-8888", "US", "+18008888888"),  # Google's template example
        ("1(800)888-8888", "US", "+18008888888"),
        ("030 1234567", "DE", "+49301234567"),
        ("+49 (0)30 1234567", "DE", "+49301234567"),
        ("07700 900123", "GB", "+447700900123"),
        ("0044 20 7183 8750", "FR", "+442071838750"),
        ("06 12345678", "IT", "+390612345678"),  # Italy keeps its leading zero
        ("555-2671", None, None),  # national number, unknown country: not guessed
        ("555-2671", "US", None),  # 7-digit local number: not a NANP number
        ("011 44 20 7183 8750", "US", "+442071838750"),  # NANP international prefix
        ("12345", "US", None),  # too short for E.164
        ("", "US", None),
        (None, "US", None),
    ],
)
def test_e164(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Trunk 0 written: national, whatever the area code starts with. Emden is 04921,
        # Leer 0491; they were taken as "+49 211..." / "+49 112..." (other subscribers).
        ("04921 1234567", "DE", "+4949211234567"),
        ("0491 12345678", "DE", "+4949112345678"),
        ("04401 123456", "GB", "+444401123456"),
        ("0 4921 1234567", "DE", "+4949211234567"),
        # No +, 00 or trunk 0, and the digits start with the calling code: "49 30 1234567"
        # may be +49 30 ... or the national 04930 ...; left out rather than guessed.
        ("49 30 1234567", "DE", None),
        ("4921 1234567", "DE", None),
        ("447700900123", "GB", None),
        ("3931234567", "IT", None),  # Italian mobile 393... or +39 31...: ambiguous
        ("3331234567", "IT", "+393331234567"),
        ("30 1234567", "DE", "+49301234567"),  # national without the trunk zero
        ("+49 4921 1234567", "DE", "+4949211234567"),
        ("0049 4921 1234567", "DE", "+4949211234567"),
        # Australia's international prefix 0011 (it was read as 00: "+1144...").
        ("0011 44 20 7183 8750", "AU", "+442071838750"),
        ("+1 123 555 2671", "US", None),
    ],
)
def test_e164_trunk_zero_means_national(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("+1 555 123 4567 ext. 12", "US", "+15551234567"),
        ("(555) 123-4567 x89", "US", "+15551234567"),
        ("415-555-2671 Extension 7", "US", "+14155552671"),
        ("415-555-2671 EXT 7", "US", "+14155552671"),
        ("415.555.2671X7", "US", "+14155552671"),
        ("07700 900123 #12", "GB", "+447700900123"),
        ("+44 20 7183 8750 ext.345 ", "GB", "+442071838750"),
        ("030 1234567 Ext: 12", "DE", "+49301234567"),
        ("030 1234567 Durchwahl 12", "DE", None),  # other letters: left out, not glued on
        ("1-800-FLOWERS", "US", None),
    ],
)
def test_e164_extension_is_not_part_of_the_number(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected
    if expected:
        assert _eval(meta_phone_sql("p", "c"), p=phone, c=country) == expected[1:]


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # A trunk prefix written after the country code is not part of the number.
        ("+44 020 7183 8750", "GB", "+442071838750"),
        ("+44 07700 900123", "GB", "+447700900123"),
        ("0044 07700 900123", "DE", "+447700900123"),  # another country's number
        ("+49 (030) 1234567", "DE", "+49301234567"),
        ("011 44 020 7183 8750", "US", "+442071838750"),
        ("+39 06 1234 5678", "IT", "+390612345678"),  # Italy: the 0 is part of it
        # Hungary's trunk prefix is 06 ("06 1 234 5678" is Budapest, +36 1 234 5678).
        ("06 1 234 5678", "HU", "+3612345678"),
        ("06 30 123 4567", "HU", "+36301234567"),
        ("+36 06 30 123 4567", "HU", "+36301234567"),
        ("0036 1 234 5678", "HU", "+3612345678"),
        ("01 234 5678", "HU", None),  # a 0 that is not Hungary's prefix: not guessed
    ],
)
def test_e164_trunk_prefix_is_never_kept(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Mexican mobiles were dialled with a 1 after +52 until 2019, and many CRMs still
        # hold them so: Google and Meta match the 10-digit number after +52.
        ("+52 1 55 1234 5678", "MX", "+525512345678"),
        ("+521 33 1234 5678", "", "+523312345678"),  # whatever the country column says
        ("0052 1 55 1234 5678", "MX", "+525512345678"),
        ("1 55 1234 5678", "MX", "+525512345678"),
        # The national prefixes dialled before 2019: 01 long distance, 044/045 mobile.
        ("01 55 1234 5678", "MX", "+525512345678"),
        ("044 55 1234 5678", "MX", "+525512345678"),
        ("045 (33) 1234-5678", "MX", "+523312345678"),
        ("55 1234 5678", "MX", "+525512345678"),
        ("+52 55 1234 5678", "MX", "+525512345678"),
        ("0 55 1234 5678", "MX", None),  # no such prefix: not guessed
        # Only Mexico: +1 and 10 digits elsewhere are untouched (a Chinese mobile).
        ("+86 138 0013 8000", "CN", "+8613800138000"),
    ],
)
def test_e164_mexican_legacy_mobile_prefixes(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected
    if expected:
        assert _eval(meta_phone_sql("p", "c"), p=phone, c=country) == expected[1:]


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Argentina: a mobile dialled nationally is 0, the area code, 15 and the subscriber;
        # E.164 is +54 9, the area code without 0 and the number without 15 (libphonenumber's
        # AR rule). They were sent as "+54111541234567", a number that is nobody's.
        ("011 15 4123-4567", "AR", "+5491141234567"),  # Buenos Aires, area code 11
        ("(0351) 15 512-3456", "AR", "+5493515123456"),  # Córdoba, 351
        ("(02966) 15 12-3456", "AR", "+5492966123456"),  # Río Gallegos, 2966
        ("11 15 4123-4567", "AR", "+5491141234567"),  # without the trunk 0
        ("+54 11 15 4123 4567", "AR", "+5491141234567"),
        ("+54 9 11 15 4123 4567", "AR", "+5491141234567"),  # 9 and 15 both written
        ("0054 11 15 4123 4567", "DE", "+5491141234567"),
        ("+54 9 11 4123-4567", "AR", "+5491141234567"),  # already E.164
        ("011 4123-4567", "AR", "+541141234567"),  # a landline keeps its form
        ("15 4123-4567", "AR", None),  # a mobile without its area code: not guessed
        # Brazil: a long-distance number dialled with a carrier selection code (0, the
        # 2-digit code, the area code); the code is no part of the number.
        ("0 21 11 98765-4321", "BR", "+5511987654321"),
        ("021 (11) 98765-4321", "BR", "+5511987654321"),
        ("0 15 21 2345-6789", "BR", "+552123456789"),  # landline, 10 digits
        ("0 55 11 98765-4321", "BR", "+5511987654321"),  # carrier 55, not the calling code
        ("+55 0 21 11 98765-4321", "BR", "+5511987654321"),
        ("(011) 98765-4321", "BR", "+5511987654321"),  # trunk 0 only, as before
        ("(21) 98765-4321", "BR", "+5521987654321"),  # Rio's area code is 21: kept
        ("+55 21 2345-6789", "BR", "+552123456789"),
        # Brazil's international prefix is 00 and a carrier code: the code was read as a
        # calling code ("+215511987654321", "+2112125551234", numbers of nobody).
        ("00 21 55 11 98765-4321", "BR", "+5511987654321"),
        ("0014 55 21 2345-6789", "BR", "+552123456789"),
        ("00 21 1 212 555 1234", "BR", "+12125551234"),
        ("0041 351 912 345 678", "BR", "+351912345678"),
        ("0055 1 212 555 1234", "BR", "+12125551234"),  # carrier 55, a US number
        ("0055 11 98765-4321", "BR", "+5511987654321"),  # 00 and +55: as before
        ("0055 21 2345-6789", "BR", "+552123456789"),
        ("0049 30 1234567", "DE", "+49301234567"),  # 00 alone elsewhere, as before
        # Mexico: the prefixes dialled before 2019 written after +52.
        ("+52 044 55 1234 5678", "MX", "+525512345678"),
        ("+52 045 33 1234 5678", "MX", "+523312345678"),
        ("+52 01 55 1234 5678", "MX", "+525512345678"),
        ("0052 044 55 1234 5678", "US", "+525512345678"),
    ],
)
def test_e164_argentine_mobiles_brazilian_carrier_codes_mexican_prefixes(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected
    if expected:
        assert _eval(meta_phone_sql("p", "c"), p=phone, c=country) == expected[1:]


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # The US territories with ZIP codes and the Caribbean members of the NANP: their
        # national numbers were left out ("numbers of unknown country").
        ("(340) 774-1234", "VI", "+13407741234"),  # US Virgin Islands
        ("671-477-1234", "GU", "+16714771234"),  # Guam
        ("1 809 555 1234", "DO", "+18095551234"),  # Dominican Republic
        ("876 555 1234", "JM", "+18765551234"),  # Jamaica
        ("555-1234", "JM", None),  # 7 digits: no area code, not guessed
        # Russia and Kazakhstan: trunk prefix 8, international prefix 810, +7 and 10 digits.
        ("8 (916) 123-45-67", "RU", "+79161234567"),
        ("8 727 123 4567", "KZ", "+77271234567"),
        ("916 123-45-67", "RU", "+79161234567"),
        ("812 123 4567", "RU", "+78121234567"),  # St Petersburg without the trunk 8
        ("8 800 555-35-35", "RU", "+78005553535"),  # toll-free, trunk 8 written
        ("+7 800 555-35-35", "RU", "+78005553535"),  # the 8 after +7 is the number's here
        ("+7 8 916 123 45 67", "RU", "+79161234567"),  # and a trunk 8 here (11 digits)
        ("8 10 49 30 1234567", "RU", "+49301234567"),  # dialled abroad from Russia
        ("0 916 123 45 67", "RU", None),  # 0 is no Russian trunk prefix: not guessed
        # 7 and 10 digits: the calling code without its +, as national numbers have 10.
        ("7 (916) 123-45-67", "RU", "+79161234567"),
        ("701 123 4567", "KZ", "+77011234567"),  # a Kazakh mobile starting with 7
        ("7 701 123 4567", "KZ", "+77011234567"),
    ],
)
def test_e164_nanp_members_and_russia_kazakhstan(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Countries that were not in the calling-code table: every national number of a
        # customer there was left out as "unknown country".
        ("0300 1234567", "PK", "+923001234567"),  # Pakistan, trunk 0
        ("0912 345 678", "TW", "+886912345678"),  # Taiwan
        ("0412-1234567", "VE", "+584121234567"),  # Venezuela
        ("099 123 456", "UY", "+59899123456"),  # Uruguay
        ("03 123 456", "LB", "+9613123456"),  # Lebanon
        ("024 412 3456", "GH", "+233244123456"),  # Ghana
        ("+92 0300 1234567", "PK", "+923001234567"),  # trunk 0 written after +92
        ("5512 3456", "QA", "+97455123456"),  # Qatar: no trunk prefix
        ("8888 1234", "CR", "+50688881234"),  # Costa Rica: no trunk prefix
    ],
)
def test_e164_more_countries_national_numbers(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Côte d'Ivoire: 10-digit national numbers since 2021 (ARTCI's plan; libphonenumber
        # CI "[02]\\d{9}"), no trunk prefix, the leading 0 is part of the number.
        ("07 07 12 34 56", "CI", "+2250707123456"),  # Orange mobile
        ("27 22 12 34 56", "CI", "+2252722123456"),  # Abidjan landline
        ("+225 07 07 12 34 56", "FR", "+2250707123456"),
        ("07 12 34 56", "CI", None),  # 8 digits, as before 2021: not guessed
        ("+225 07 12 34 56", "CI", None),
        # San Marino: landlines 0549 and 6 digits (the 0 kept), mobiles 8 digits; a local
        # 6-digit number is 0549 and the number.
        ("0549 886377", "SM", "+3780549886377"),
        ("886377", "SM", "+3780549886377"),
        ("66 66 12 12", "SM", "+37866661212"),
        ("+378 0549 886377", "IT", "+3780549886377"),
        # Belarus: 9-digit numbers, trunk "8 0" (or 0), 810 to go abroad.
        ("8 029 491-19-11", "BY", "+375294911911"),
        ("8 017 123-45-67", "BY", "+375171234567"),  # Minsk
        ("029 491 19 11", "BY", "+375294911911"),
        ("29 491 19 11", "BY", "+375294911911"),
        ("+375 29 491 19 11", "BY", "+375294911911"),
        ("8 10 49 30 1234567", "BY", "+49301234567"),
        ("375 29 491 19 11", "BY", None),  # +375 or a national 375...: not guessed
        # Uzbekistan: 9-digit numbers, no trunk prefix since 2023; 8 and 9 digits before.
        ("90 123 45 67", "UZ", "+998901234567"),
        ("8 90 123 45 67", "UZ", "+998901234567"),
        ("88 123 45 67", "UZ", "+998881234567"),  # mobile code 88, no trunk 8
        ("8 88 123 45 67", "UZ", "+998881234567"),
        ("00 49 30 1234567", "UZ", "+49301234567"),
        ("8 10 49 30 1234567", "UZ", "+49301234567"),
    ],
)
def test_e164_cote_divoire_san_marino_belarus_uzbekistan(phone, country, expected):
    # They were left out as numbers of unknown country.
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Typed in full-width mode (a Japanese form): every digit was dropped as no digit.
        ("０９０－１２３４－５６７８", "JP", "+819012345678"),
        ("＋８１　９０　１２３４　５６７８", "JP", "+819012345678"),  # ideographic spaces
        ("０３（１２３４）５６７８", "JP", "+81312345678"),
        # Arabic-Indic digits (Egypt, the Gulf) and the Persian/Urdu forms.
        ("٠٥٠ ١٢٣ ٤٥٦٧", "AE", "+971501234567"),
        ("+٩٧١ ٥٠ ١٢٣ ٤٥٦٧", "SA", "+971501234567"),
        ("۰۵۰ ۱۲۳ ۴۵۶۷", "AE", "+971501234567"),
        ("０９０－１２３４－５６７８ 内線12", "JP", None),  # other letters: still left out
    ],
)
def test_e164_reads_full_width_and_arabic_indic_digits(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected
    if expected:
        assert _eval(meta_phone_sql("p", "c"), p=phone, c=country) == expected[1:]


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # The "+" in brackets is still the international mark: "(+44) 7700 900123" of a
        # customer in France became +33 447700900123, and in GB it was left out.
        ("(+44) 7700 900123", "FR", "+447700900123"),
        ("(+44) 7700 900123", "GB", "+447700900123"),
        ("(+49) 171 1234567", "DE", "+491711234567"),
        (" [+49] 171 1234567", "DE", "+491711234567"),
        ("(+44) (0)20 7183 8750", "GB", "+442071838750"),
        ("(0049) 171 1234567", "DE", "+491711234567"),  # as before
    ],
)
def test_e164_a_plus_in_brackets_is_international(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # Each country's international prefix (libphonenumber's internationalPrefix); "00"
        # alone was stripped and the carrier digit read as a calling code, or Japan's 010
        # as a trunk 0.
        ("010 1 212 555 1234", "JP", "+12125551234"),
        ("010-44-20-7183-8750", "JP", "+442071838750"),
        ("001 44 20 7183 8750", "KR", "+442071838750"),
        ("00700 1 212 555 1234", "KR", "+12125551234"),
        ("0011 44 20 7183 8750", "AU", "+442071838750"),
        ("0014 44 20 7183 8750", "AU", "+442071838750"),
        ("001 1 212 555 1234", "TH", "+12125551234"),
        ("008 44 20 7183 8750", "ID", "+442071838750"),
        ("002 44 20 7183 8750", "TW", "+442071838750"),
        ("019 44 20 7183 8750", "TW", "+442071838750"),
        ("000 44 20 7183 8750", "KE", "+442071838750"),
        ("009 44 20 7183 8750", "NG", "+442071838750"),
        ("005 44 20 7183 8750", "CO", "+442071838750"),
        ("013 44 20 7183 8750", "IL", "+442071838750"),
        ("0161 44 20 7183 8750", "NZ", "+442071838750"),
        ("09 1 212 555 1234", "MX", "+12125551234"),
        ("990 44 20 7183 8750", "FI", "+442071838750"),
        ("1100 44 20 7183 8750", "IS", "+442071838750"),
        ("1120 44 20 7183 8750", "CL", "+442071838750"),
        # "00" stays international where the country dials it too ...
        ("00 44 20 7183 8750", "AU", "+442071838750"),
        ("00 44 20 7183 8750", "IL", "+442071838750"),
        ("00 1 212 555 1234", "HK", "+12125551234"),
        # ... and national numbers are not taken for a prefix.
        ("03-1234-5678", "JP", "+81312345678"),
        ("0120-123-456", "JP", "+81120123456"),
        ("02 1234 5678", "AU", "+61212345678"),
        ("02-2345-6789", "TW", "+886223456789"),
        ("050-123-4567", "IL", "+972501234567"),
        ("010-1234-5678", "KR", "+821012345678"),
    ],
)
def test_e164_reads_each_countrys_international_prefix(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        # NANP numbers have exactly 10 digits after the 1: a digit too many or too few
        # passed the 8-15 digit check and was hashed, a number of nobody.
        ("+1 415 555 26711", "US", None),
        ("+1 415 555 267", "US", None),
        ("00 1 415 555 26712", "DE", None),
        ("+1 415 555 2671", "US", "+14155552671"),
        ("00 1 415 555 2671", "DE", "+14155552671"),
        # So do Russia's and Kazakhstan's (+7).
        ("+7 916 123 45 678", "RU", None),
        ("+7 916 123 45 6", "KZ", None),
        ("+7 916 123 45 67", "KZ", "+79161234567"),
    ],
)
def test_e164_nanp_and_plus_7_numbers_have_ten_digits(phone, country, expected):
    assert _eval(e164_sql("p", "c"), p=phone, c=country) == expected


def _e164_of(cases: list[tuple[str, str]]) -> list[object]:
    """E.164 of each (phone, country), in one query."""
    con = duckdb.connect()
    con.execute("create table t (i integer, p varchar, c varchar)")
    con.executemany("insert into t values (?, ?, ?)", [(i, *c) for i, c in enumerate(cases)])
    rows = con.execute(f"select {e164_sql('p', 'c')} from t order by i").fetchall()
    con.close()
    return [r[0] for r in rows]


# What libphonenumber (phonenumbers 9.0.43) makes of them, None where that is no possible
# number (is_possible_number false), except where its longest prefix leaves none and "00"
# does (SG "0044 ...", "001 212 ...", HK "00 1 212 ...": it stops at the impossible reading).
INTERNATIONAL_PREFIX_THEN_A_POSSIBLE_NUMBER = {
    # Singapore dials abroad with 0[0-3]x: "004" and +420 79460958 (a Czech number one digit
    # short) was hashed for a London number written the European way; "001" and +212 5551234
    # (Morocco, two short) for a New York one. "00" is read when theirs leaves no number.
    ("0044 20 7946 0958", "SG"): "+442079460958",
    ("001 212 555 1234", "SG"): "+12125551234",
    ("001 44 20 7946 0958", "SG"): "+442079460958",
    ("019 44 20 7946 0958", "SG"): "+442079460958",
    ("6123 4567", "SG"): "+6561234567",
    # Hong Kong's 00 and carrier code (001, 0030, ...): "001 44 ..." was read as +1 44 ...
    # and left out; "00 1 212 ..." still is +1.
    ("001 44 20 7946 0958", "HK"): "+442079460958",
    ("0030 44 20 7946 0958", "HK"): "+442079460958",
    ("00 1 212 555 1234", "HK"): "+12125551234",
    ("2345 6789", "HK"): "+85223456789",
    # Bolivia's 001x (carrier 10-19), Peru's 19xx00.
    ("0010 44 20 7946 0958", "BO"): "+442079460958",
    ("0044 20 7946 0958", "BO"): "+442079460958",
    ("199000 44 20 7946 0958", "PE"): "+442079460958",
    ("191100 1 212 555 1234", "PE"): "+12125551234",
    ("01 234 5678", "PE"): "+5112345678",  # Lima: not taken for a prefix
    ("912 345 678", "PE"): "+51912345678",
    # A number of a length its country never has is nobody's: left out, not hashed.
    ("020 7946 09588", "GB"): None,
    ("+44 20 7946 095888", "GB"): None,
    ("06 12 34 56 789", "FR"): None,
    ("612 345 67", "ES"): None,
    ("612 345 6789", "ES"): None,
    ("55 1234 567", "MX"): None,
    ("98765 43210 12345", "IN"): None,
    ("090-1234-567", "JP"): "+81901234567",  # 9 digits: a possible Japanese length
    ("06 12 34 56 78", "FR"): "+33612345678",
    ("612 345 678", "ES"): "+34612345678",
    ("98765 43210", "IN"): "+919876543210",
    ("030 1234567", "DE"): "+49301234567",
    ("0412 345 678", "AU"): "+61412345678",
    ("06 1234 5678", "IT"): "+390612345678",
    ("+999 1234 5678", "GB"): None,  # no country has +999
}


def test_e164_reads_a_countrys_own_prefix_only_before_a_possible_number():
    cases = list(INTERNATIONAL_PREFIX_THEN_A_POSSIBLE_NUMBER)
    got = dict(zip(cases, _e164_of(cases), strict=True))
    assert got == INTERNATIONAL_PREFIX_THEN_A_POSSIBLE_NUMBER


def test_e164_reads_the_phone_and_the_country_once(tmp_path):
    # Each helper pasted its argument in several times (the digits ~20 times, the
    # calling-code CASE of 170 branches ~8 times): e164_sql was 149 KB, DuckDB took a second
    # to bind a query using it and an export of 1M phones minutes. Each value is bound once.
    sql = e164_sql("phone_column", "country_column")
    assert sql.count("phone_column") == 1
    assert sql.count("country_column") == 1
    assert len(sql) < 20_000
    # The values are bound to lambda parameters: a caller's table with columns of the same
    # names as their fields, joined and referred to by alias, reads its own columns.
    cases = list(INTERNATIONAL_PREFIX_THEN_A_POSSIBLE_NUMBER)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(
        "create table c (i integer, number varchar, digits varchar, iso varchar, cc varchar)"
    )
    con.executemany(
        "insert into c values (?, ?, '0', 'US', '1')",
        [(i, phone) for i, (phone, _) in enumerate(cases)],
    )
    con.execute("create table l (i integer, country varchar)")
    con.executemany("insert into l values (?, ?)", [(i, c) for i, (_, c) in enumerate(cases)])
    rows = con.execute(
        f"select {e164_sql('c.number', 'l.country')}, {meta_phone_sql('c.number', 'l.country')} "
        "from c inner join l on l.i = c.i order by c.i"
    ).fetchall()
    con.close()
    expected = [INTERNATIONAL_PREFIX_THEN_A_POSSIBLE_NUMBER[case] for case in cases]
    assert [e164 for e164, _ in rows] == expected
    assert [meta for _, meta in rows] == [e and e[1:] for e in expected]


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("4155552671::bigint", "US", "+14155552671"),
        ("447700900123::hugeint", "GB", None),  # international without its +: not guessed
        ("7700900123::bigint", "GB", "+447700900123"),  # national without its trunk 0
        ("null::integer", "US", None),  # a column all null, typed INTEGER
        ("4155552671::decimal(12, 0)", "US", "+14155552671"),
        # A float may have lost digits (4.4207946e9 of a spreadsheet is 4420794600) and its
        # text ends in ".0" (+44 20794600 0 for a customer in Britain): left out.
        ("4.4207946e9::double", "GB", None),
        ("4155552671::double", "US", None),
        ("4155552671::decimal(14, 2)", "US", None),
        # A float's text, as pandas writes a phone column with a missing value to CSV and as
        # ingest loads a Parquet DOUBLE: "3015123456.0" (DE) was +49 30151234560.
        ("'3015123456.0'", "DE", None),
        ("'4155552671.0'", "US", None),
        ("'030 1234567'", "DE", "+49301234567"),  # text is read as before
        ("'06.12.34.56.00'", "FR", "+33612345600"),  # dots between digits are separators
    ],
)
def test_e164_of_a_phone_column_typed_as_a_number(value, country, expected):
    """e164_sql did not bind on a phone column that is not text (strlen(BIGINT))."""
    con = duckdb.connect()
    con.execute(f"create table t as select {value} as p, '{country}' as c")
    got = con.execute(f"select {e164_sql('p', 'c')}, {meta_phone_sql('p', 'c')} from t").fetchone()
    con.close()
    assert got == (expected, expected and expected[1:])


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("2118::bigint", "US", "02118"),
        ("2118::double", "US", "02118"),
        ("10115::integer", "DE", "10115"),
        ("null::integer", "US", None),
    ],
)
def test_zip_codes_typed_as_numbers(value, country, expected):
    con = duckdb.connect()
    con.execute(f"create table t as select {value} as z, '{country}' as c")
    got = con.execute(f"select {us_zip_sql('z', 'c')}, {meta_zip_sql('z', 'c')} from t").fetchone()
    con.close()
    assert got == (expected, expected)


def test_meta_name_zip_country_rules():
    assert _eval(meta_name_sql("n"), n="  de Vries ") == "devries"
    assert _eval(meta_name_sql("n"), n="O'Brien") == "obrien"
    assert _eval(meta_name_sql("n"), n="Zoë") == "zoë"  # UTF-8 letters kept
    assert _eval(meta_zip_sql("z", "c"), z="02118-1234", c="US") == "02118"
    assert _eval(meta_zip_sql("z", "c"), z="SW1A 1AA", c="GB") == "sw1a1aa"
    assert _eval(meta_country_sql("c"), c=" US ") == "us"
    assert _eval(meta_country_sql("c"), c="USA") is None


@pytest.mark.parametrize(
    ("zip_code", "country", "clear", "meta"),
    [
        # A spreadsheet drops a US ZIP code's leading zeros (Boston 02118 becomes 2118); Meta
        # then hashed "2118" and took "21181" of "2118-1234": someone else's ZIP code.
        ("2118", "US", "02118", "02118"),
        ("2118-1234", "US", "02118-1234", "02118"),
        ("501", "US", "00501", "00501"),  # Holtsville, NY
        ("901", "PR", "00901", "00901"),  # San Juan: Puerto Rico has US ZIP codes
        ("802-1234", "VI", "00802-1234", "00802"),  # St Thomas, Virgin Islands
        ("94303-5300", "US", "94303-5300", "94303"),
        ("1010", "AT", "1010", "1010"),  # four digits is a whole Austrian postal code
        ("SW1A 1AA", "GB", "SW1A 1AA", "sw1a1aa"),
        # A UK postcode is sent whole to Meta, as Meta's own normalisers send it (its table
        # says "Area/District/Sector format"): never cut to the sector ("m11").
        ("M1 1AE", "GB", "M1 1AE", "m11ae"),
        (" ec1a  1bb ", "GB", "ec1a  1bb", "ec1a1bb"),
    ],
)
def test_us_zip_codes_get_their_leading_zeros_back(zip_code, country, clear, meta):
    assert _eval(us_zip_sql("z", "c"), z=zip_code, c=country) == clear
    assert _eval(meta_zip_sql("z", "c"), z=zip_code, c=country) == meta


@pytest.mark.parametrize(
    ("zip_code", "country", "meta"),
    [
        # Meta's own normalisers (the Business SDK's custom-audience ZipNormalizer, the
        # Conversions API's "zp") keep what comes before the first dash, in every country.
        # The dash was dropped instead: "00950", "1000001", values Meta's side never makes.
        ("00-950", "PL", "00"),  # Warsaw
        ("1000-001", "PT", "1000"),  # Lisbon
        ("100-0001", "JP", "100"),  # Tokyo, Chiyoda
        ("01310-100", "BR", "01310"),  # São Paulo, Avenida Paulista
        (" 00 - 950 ", "PL", "00"),  # white space goes first, as Meta's
        ("-950", "PL", None),  # nothing before the dash: empty, never hashed
        ("1310-1000", "US", "01310"),  # a US ZIP+4: 5 digits, the leading 0 put back
    ],
)
def test_meta_zip_keeps_what_comes_before_the_first_dash(zip_code, country, meta):
    assert _eval(meta_zip_sql("z", "c"), z=zip_code, c=country) == meta


def test_meta_zip_reads_the_postal_code_and_the_country_once():
    """Each helper pasted its argument into every use: the Meta zip referred to the postal
    code 128 times (8.7 KB of SQL) and took 3.3 s of CPU a million customers, more than
    the phone; bound once (the column's type read by typeof, folded when bound), 0.6 s."""
    sql = meta_zip_sql("postal_code_column", "country_column")
    assert sql.count("postal_code_column") == 4  # typeof twice, then cast or try_cast
    assert sql.count("country_column") == 2
    assert len(sql) < 2_000
    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values ('LV-1050', 'LV'), ('2118-1234', 'us'), "
        "('KY1-1102', 'KY'), (null, 'GB'), ('SW1A 1AA', null)) as v(z, iso)"
    )
    # A caller's columns named as the bound values' fields are its own (referred to by alias).
    got = con.execute(f"select {meta_zip_sql('t.z', 't.iso')}, {us_zip_sql('t.z', 't.iso')} from t")
    got = got.fetchall()
    con.close()
    assert got == [
        ("1050", "LV-1050"),
        ("02118", "02118-1234"),
        ("ky1", "KY1-1102"),
        (None, None),
        ("sw1a1aa", "SW1A 1AA"),
    ]


def test_the_preview_shows_every_normalised_value():
    con = duckdb.connect()
    con.execute(
        "create table _contacts as select ' Anna.Smith+x@GMail.com ' as email, "
        "'(415) 555-2671' as phone, ' Anna ' as first_name, 'de Vries' as last_name, "
        "'US' as country, '2118-1234' as postal_code"
    )
    row = con.execute(normalise_preview_sql()).fetchone()
    con.close()
    assert row == (
        "annasmith@gmail.com",
        "+14155552671",
        "anna",
        "anna.smith+x@gmail.com",
        "14155552671",
        "anna",
        "devries",
        "02118",
        "us",
    )


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize(
    ("zip_code", "country", "meta"),
    [
        # Latvia's postal codes are written after "LV-": cut at the dash, every Latvian's
        # hashed as "lv". The customer's country's ISO code and its separator go first, so
        # "LV-1050" and "1050" are one zip, as are Lithuania's, Moldova's, Azerbaijan's.
        ("LV-1050", "LV", "1050"),
        ("lv 1050", "lv", "1050"),
        ("LV1050", "LV", "1050"),
        ("1050", "LV", "1050"),
        ("LT-01100", "LT", "01100"),
        ("MD-2001", "MD", "2001"),
        ("AZ 1000", "AZ", "1000"),
        # Only the customer's own country's code before a digit: other postcodes keep theirs.
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("LV-1050", "EE", "lv"),
        ("00-950", "PL", "00"),
    ],
)
def test_meta_zip_drops_the_country_code_written_before_it(zip_code, country, meta):
    assert _eval(meta_zip_sql("z", "c"), z=zip_code, c=country) == meta


@pytest.mark.parametrize(
    ("zip_code", "country", "google", "meta"),
    [
        # The table of docs/audiences.md: Google's clear Zip, and what Meta's zip hashes.
        ("94103-1234", "US", "94103-1234", "94103"),
        ("K1A 0B1", "CA", "K1A 0B1", "k1a0b1"),
        ("SW1A 1AA", "GB", "SW1A 1AA", "sw1a1aa"),
        ("1012 AB", "NL", "1012 AB", "1012ab"),
        ("00-950", "PL", "00-950", "00"),
        ("1000-001", "PT", "1000-001", "1000"),
        ("01310-100", "BR", "01310-100", "01310"),
        ("100-0001", "JP", "100-0001", "100"),
        ("LV-1050", "LV", "LV-1050", "1050"),
        # Postal codes that start with the country's ISO code: the letters are part of the
        # code, never a country prefix. "KY1-1102" was hashed as "1", every Caymanian's;
        # cut at its dash as Meta's normalisers cut it, it is "ky1" (Grand Cayman).
        ("KY1-1102", "KY", "KY1-1102", "ky1"),
        ("KY2-2001", "ky", "KY2-2001", "ky2"),  # Cayman Brac
        ("JE2 3AB", "JE", "JE2 3AB", "je23ab"),  # was "23ab"
        ("IM1 1AA", "IM", "IM1 1AA", "im11aa"),  # was "11aa"
        ("VG1110", "VG", "VG1110", "vg1110"),  # was "1110"
        ("AD500", "AD", "AD500", "ad500"),  # was "500"
        ("BB11000", "BB", "BB11000", "bb11000"),  # was "11000"
        ("LC05 201", "LC", "LC05 201", "lc05201"),  # was "05201"
    ],
)
def test_postal_codes_of_many_countries(zip_code, country, google, meta):
    assert _eval(us_zip_sql("z", "c"), z=zip_code, c=country) == google
    assert _eval(meta_zip_sql("z", "c"), z=zip_code, c=country) == meta


def test_meta_names_keep_combining_marks():
    # Devanagari vowel signs and virama are combining marks (\pM), not punctuation: keeping
    # only \pL turned "प्रिया" into "परय" and "शर्मा" into "शरम".
    assert _eval(meta_name_sql("n"), n="प्रिया") == "प्रिया"
    assert _eval(meta_name_sql("n"), n=" शर्मा ") == "शर्मा"
    assert _eval(hashed(meta_name_sql("n")), n="प्रिया") == _sha("प्रिया")
    assert _eval(meta_name_sql("n"), n="Jean-Luc") == "jeanluc"  # punctuation still removed


def test_names_and_emails_are_nfc_before_hashing():
    nfc = "josé"  # U+00E9
    assert _nfd("José") != "José" and len(_nfd("José")) == 5
    assert _eval(meta_name_sql("n"), n=_nfd("José")) == nfc  # was "jose"
    assert _eval(meta_name_sql("n"), n="José") == nfc
    assert _eval(google_name_sql("n"), n=_nfd(" José ")) == nfc
    assert _eval(hashed(google_name_sql("n")), n=_nfd("José")) == _sha(nfc)
    email = "josé@example.com"
    assert _eval(google_email_sql("e"), e=_nfd(" José@Example.com")) == email
    assert _eval(meta_email_sql("e"), e=_nfd("José@Example.com ")) == email
    assert _eval(hashed(meta_email_sql("e")), e=_nfd("JOSÉ@example.com")) == _sha(email)


def test_empty_values_are_never_hashed():
    assert _eval(hashed(meta_name_sql("n")), n="   ") is None
    assert _eval(hashed("n"), n="") is None
    assert _eval(hashed(meta_name_sql("n")), n="Ben") == _sha("ben")
    # Google's names: a tab or a line break is white space too (trim() keeps them): a name
    # of only a tab was hashed, "Grace" and a tab hashed with it.
    assert _eval(hashed(google_name_sql("n")), n="\t") is None
    assert _eval(hashed(google_name_sql("n")), n="\u00a0\r\n") is None
    assert _eval(google_name_sql("n"), n="\tGrace\r\n") == "grace"


@pytest.mark.parametrize(
    ("email", "is_address"),
    [
        ("anna.smith@example.com", True),
        (" Anna.Smith@Example.COM ", True),
        ("tina@test.de", True),  # test.de is a real publisher's domain
        ("na@web.de", True),  # Na is a surname
        ("contest@web.de", True),
        ("nadia.noemail@web.de", True),  # the placeholder words only as the whole local part
        # Placeholders a shop types for "no address".
        ("test@test.com", False),
        ("test1@gmail.com", False),
        ("noemail@shop.com", False),
        ("no-email@shop.com", False),
        ("NoEmail.C000123@shop.com", False),
        ("no.reply@shop.de", False),
        ("donotreply@shop.de", False),
        ("none@none.com", False),
        ("anna@none.com", False),
        ("N/A@shop.com", False),
        ("unknown@gmail.com", False),
        ("anna@shop.test", False),  # reserved top-level domains (RFC 2606, 6761)
        ("anna@shop.invalid", False),
        # Not an address by the CRM suite's email_valid rule.
        ("n/a@", False),
        ("none@none", False),
        ("anna@localhost", False),
        ("anna smith@example.com", False),
        ("anna@@example.com", False),
        ("anna@example.c0m", False),
        ("", False),
        (None, False),
    ],
)
def test_what_counts_as_an_address(email, is_address):
    assert _eval(is_address_sql("e"), e=email) is is_address
    # Never hashed for Google or Meta, never sent to an ESP, when it is none.
    assert (_eval(google_email_sql("e"), e=email) is not None) is is_address
    assert (_eval(meta_email_sql("e"), e=email) is not None) is is_address
    assert (_eval(esp_email_sql("e"), e=email) is not None) is is_address
    # Consistent with ingest: whatever the CRM suite's rule rejects is no address.
    if email is not None and re.search(EMAIL_REGEX, email.strip().lower()) is None:
        assert not is_address


# Brazil's mobiles got a ninth digit (all by 2016): an 8-digit one of before, as many CRMs
# still hold it, was hashed without it and matched nobody. Bolivia's trunk 0 is followed by
# a carrier code (10-19) before a long-distance number: it was hashed as part of the number.
OLD_BRAZILIAN_MOBILES_AND_BOLIVIAN_CARRIER_CODES = {
    ("(11) 8765-4321", "BR"): "+5511987654321",
    ("011 8765-4321", "BR"): "+5511987654321",
    ("+55 11 8765 4321", "BR"): "+5511987654321",
    ("0055 11 6123 4567", "BR"): "+5511961234567",
    ("0 21 11 8765-4321", "BR"): "+5511987654321",  # and a carrier code
    # Landlines (2-5) and today's 9-digit mobiles are as they were; 7 and 7 digits is still
    # a mobile (radio) number in libphonenumber's metadata: kept.
    ("(11) 3456-7890", "BR"): "+551134567890",
    ("(11) 98765-4321", "BR"): "+5511987654321",
    ("(21) 7123-4567", "BR"): "+552171234567",
    ("0055 1 212 555 1234", "BR"): "+12125551234",  # 55 the carrier code
    ("0 10 2 2123456", "BO"): "+59122123456",
    ("012 71234567", "BO"): "+59171234567",
    ("0 71234567", "BO"): "+59171234567",
    ("2 2123456", "BO"): "+59122123456",
}


def test_e164_old_brazilian_mobiles_get_their_ninth_digit_bolivian_carrier_codes_go():
    cases = list(OLD_BRAZILIAN_MOBILES_AND_BOLIVIAN_CARRIER_CODES)
    got = dict(zip(cases, _e164_of(cases), strict=True))
    assert got == OLD_BRAZILIAN_MOBILES_AND_BOLIVIAN_CARRIER_CODES
