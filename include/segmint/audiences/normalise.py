"""Normalisation and SHA-256 hashing of contact data, as SQL expressions for DuckDB.

Rules, from the platforms' published guides (checked 2026-11):

Google Ads Customer Match (support.google.com/google-ads/answer/7659867, 7475964; Data
Manager API "Format user data", developers.google.com/data-manager/api/devguides/concepts/
formatting, checked 2026-12)
    e-mail: remove whitespace, lower-case; for gmail.com and googlemail.com only, remove the
    dots before the ``@`` and a ``+`` with everything after it
    (``cloudy.sanfrancisco+shopping@gmail.com`` is ``cloudysanfrancisco@gmail.com``); other
    domains keep them. Then SHA-256 (hex).
    phone: E.164 (``+`` country code and number, digits only), then SHA-256.
    first/last name: trim (white space of any kind: a tab, a line break), lower-case,
    SHA-256. Country (ISO-2) and Zip are sent unhashed.
Meta custom audiences (developers.facebook.com/docs/marketing-api/audiences/guides/
custom-audiences, "Hashing and normalizing data")
    email: trim, lower-case. phone: digits only with the country code, no ``+``, no
    leading zeros. fn/ln: lower-case, no punctuation or spaces (UTF-8 letters kept).
    zip: lower-case, no white space; US: first 5 digits; UK: "Area/District/Sector
    format", which Meta's own normalisers (Conversions API ``zp``, the Business SDK's
    custom-audience ``ZipNormalizer``) send as the whole postcode without spaces
    (``m11ae``), never cut to the sector (``m11``). Those normalisers keep what comes
    before the first dash, in every country: Poland's ``00-950`` is ``00``, Portugal's
    ``1000-001`` ``1000``, Japan's ``100-0001`` ``100``, Brazil's ``01310-100`` ``01310``
    (with the dash dropped instead, ``00950``, ``1000001``, the hash matched nobody). The
    customer's country's ISO code written before a postal code goes first (Latvia's
    ``LV-1050`` is ``1050``, not ``lv``), except where the postal code itself starts with
    it (ISO_CODE_POSTCODE_COUNTRIES: Cayman's ``KY1-1102`` is ``ky1``, as Meta's
    normalisers make it, Jersey's ``JE2 3AB`` ``je23ab``).
    country: ISO-2 lower-case.
    Every column is SHA-256 hashed.

A value that normalises to nothing is left empty, never hashed (``sha256('')`` would
match nobody and leak that the field was blank).

E.164 from a free-form phone and the customer's country. Full-width, Arabic-Indic and
Persian digits (and the full-width ``+``) are read as ASCII first. An extension at the end (``ext``,
``ext.``, ``extension``, ``x`` or ``#`` and digits) is removed first; a number with other
letters in it is left out (their digits would be glued on). A phone column typed as a number
is read as its digits when an integer; a float, or a float's text (``4155552671.0``), is left
out: it may have lost digits, and its ``.0`` is no digit of the number. Only ``+`` (perhaps in
brackets, ``(+44) ...``) or the international
prefix ``00`` (``011`` in the NANP countries; the country's own prefixes of
INTERNATIONAL_PREFIXES, Japan's ``010``, Korea's ``001``, Australia's ``0011``; read only
when a possible number follows it, else ``00`` is) mark a number as international; a trunk prefix
written after its country code (``+44 020 ...``, ``0044 07700 ...``) is dropped, as E.164
never has one. A number written with the trunk prefix (``0``; ``06`` in Hungary; ``8`` and
10 digits in Russia and Kazakhstan, whose international prefix is ``810``) is national: the
prefix is dropped (Italy has none: its leading 0 is kept) and the country's calling code is
prefixed, whatever the next digits are (German area code 04921 is ``+494921...``). NANP
numbers (US, CA, PR, the other US territories and the Caribbean members) are the 10-digit
number, with or without the trunk ``1``. Mexican numbers as dialled before 2019 get today's
form: ``+52 1`` and ten digits (a mobile) is ``+52`` and the ten digits, and a national
number written with ``01``, ``02``, ``044`` or ``045`` drops it, also when written after
``+52`` (``+52 044 55 ...``).
Côte d'Ivoire and San Marino keep a leading 0 as Italy (``07 07 12 34 56``, CI, is
``+2250707123456``; a CI number without 10 digits, as before 2021, is left out); Belarus
drops ``8 0`` or ``0`` (``8 029 491-19-11`` is ``+375294911911``), Uzbekistan the ``8``
before 9 digits dialled before 2023; both, like Russia, go abroad with ``810``.
Argentine mobiles dialled nationally (``011 15 4123-4567``: area code, ``15``, subscriber)
are ``+54 9``, the area code and the subscriber (``+5491141234567``); a Brazilian number
dialled with a carrier selection code (``0 21 11 98765-4321``, carrier 21) drops the code
(``+5511987654321``), and so does a Brazilian customer's number dialled abroad with one
(``00 21 1 212 555 1234`` is ``+12125551234``, ``00 21 55 11 ...`` ``+5511...``); a
Brazilian mobile of 8 digits, as before the ninth was added (6, 8 or 9 first), gets its 9
(``(11) 8765-4321`` is ``+5511987654321``); Bolivia's trunk 0 and carrier code (10-19) are
dropped (``0 10 2 2123456`` is ``+59122123456``); all as libphonenumber's metadata parses
them. Any other number without ``+``/``00``/``0`` is national with the calling code
prefixed, except when its digits already start with the calling code: it may be
international without the ``+`` or a national number beginning with those digits, so it is
left out rather than guessed. So are
numbers outside 8-15 digits, an Argentine mobile without its area code (``15 4123-4567``),
``+1`` numbers whose area code starts with 0 or 1 or that have other than 10 digits after
the 1 (not NANP), ``+7`` numbers without 10 digits, numbers of unknown country, and numbers
whose national part has a length its calling code never has (NATIONAL_LENGTHS, from
libphonenumber's metadata: France's and Spain's numbers have 9 digits, Britain's 7, 9 or 10).

E-mail platforms (Mailchimp, Klaviyo, Braze) take the address in clear: trimmed, lower-case,
and only when it looks like an address (one ``@``, a dotted domain, no spaces); phones in
E.164 as above.

Every file, hashed or clear, takes an e-mail only when it is an address (``is_address_sql``):
valid by the CRM suite's ``email_valid`` rule (``expectations.suites.crm.EMAIL_REGEX``: one
``@``, no white space, a dot in the domain, a top-level domain of 2+ letters) and not a
placeholder a shop types when it has none (``noemail@shop.com``, ``test@test.com``,
``none@none.com``, ``n/a@...``, a domain reserved for tests: ``.test``, ``.invalid``). Before,
anything holding an ``@`` was hashed for Google and Meta.

Names and e-mails are put in Unicode NFC before they are hashed, so that a composed ``é`` and
``e`` + combining acute (as some systems store it) give the same hash. Meta's names keep
combining marks (``\\pM``): Devanagari vowel signs and viramas, accents written as marks are
part of the letters, not punctuation ("प्रिया" stays "प्रिया", not "परय").
"""

from __future__ import annotations

from expectations.suites.crm import EMAIL_REGEX, PLACEHOLDER_EMAIL_REGEX
from segmint.ingest.contract import UNICODE_SPACE_CHARS
from segmint.validation import re2_regex

# ISO 3166-1 alpha-2 -> ITU calling code, for national-format numbers.
CALLING_CODES = {
    "US": "1", "CA": "1", "PR": "1", "GB": "44", "IE": "353", "DE": "49", "AT": "43",
    "CH": "41", "FR": "33", "BE": "32", "NL": "31", "LU": "352", "ES": "34", "PT": "351",
    "IT": "39", "DK": "45", "SE": "46", "NO": "47", "FI": "358", "IS": "354", "PL": "48",
    "CZ": "420", "SK": "421", "HU": "36", "RO": "40", "BG": "359", "GR": "30", "HR": "385",
    "SI": "386", "EE": "372", "LV": "371", "LT": "370", "TR": "90", "IL": "972",
    "AE": "971", "SA": "966", "IN": "91", "CN": "86", "HK": "852", "JP": "81", "KR": "82",
    "SG": "65", "MY": "60", "TH": "66", "PH": "63", "ID": "62", "VN": "84", "AU": "61",
    "NZ": "64", "ZA": "27", "NG": "234", "KE": "254", "EG": "20", "MA": "212", "BR": "55",
    "AR": "54", "MX": "52", "CL": "56", "CO": "57", "PE": "51", "UA": "380", "AM": "374",
    "RU": "7", "KZ": "7",
    # Trunk prefix 0, as most of the table: South and South-East Asia, the Middle East, the
    # Balkans and the Caucasus, Africa, South America.
    "PK": "92", "BD": "880", "LK": "94", "NP": "977", "TW": "886", "KH": "855", "MM": "95",
    "LA": "856", "IR": "98", "IQ": "964", "JO": "962", "LB": "961", "GE": "995", "AZ": "994",
    "KG": "996", "RS": "381", "BA": "387", "MK": "389", "AL": "355", "ME": "382", "MD": "373",
    "GH": "233", "DZ": "213", "LY": "218", "SD": "249", "TZ": "255", "UG": "256", "RW": "250",
    "ET": "251", "ZM": "260", "ZW": "263", "EC": "593", "UY": "598", "VE": "58", "BO": "591",
    "PY": "595",
    # No trunk prefix, and no national number starting with 0 (a 0 written is dropped).
    "QA": "974", "KW": "965", "OM": "968", "BH": "973", "CY": "357", "MT": "356", "CR": "506",
    "PA": "507", "GT": "502", "SV": "503", "HN": "504", "NI": "505", "TN": "216", "SN": "221",
    "CM": "237",
    # No trunk prefix, and national numbers that start with 0 keep it, as Italy's: Côte
    # d'Ivoire (10 digits since 2021, "07 07 12 34 56" is +225 0707123456) and San Marino
    # ("0549 886377" is +378 0549886377; a 6-digit local number gets its 0549 back).
    "CI": "225", "SM": "378",
    # Trunk prefix 8: Belarus ("8 029 123-45-67", 8 and 0; or 0 alone) and Uzbekistan (8
    # and 9 digits as dialled before 2023; none since), both with the old 810 to go abroad.
    "BY": "375", "UZ": "998",
    # The rest of the NANP: the US territories with ZIP codes (ZIP_CODE_COUNTRIES) and the
    # Caribbean members; their numbers are 10 digits, an area code and 7 digits, like the US.
    "VI": "1", "GU": "1", "AS": "1", "MP": "1", "DO": "1", "JM": "1", "TT": "1", "BS": "1",
    "BB": "1", "BM": "1", "KY": "1", "AG": "1", "AI": "1", "DM": "1", "GD": "1", "KN": "1",
    "LC": "1", "VC": "1", "VG": "1", "TC": "1", "MS": "1", "SX": "1",
}  # fmt: skip
# Trunk prefix dialled before a national number, never part of E.164: "0" in the other
# countries of the table, "06" in Hungary, "8" in Russia and Kazakhstan ("8 (916) 123-45-67"
# is +7 916 1234567); Italy, Côte d'Ivoire and San Marino have none (their numbers keep
# their 0). Belarus's "8 0" is in _national_number_sql.
TRUNK_PREFIXES = {"IT": "", "CI": "", "SM": "", "HU": "06", "RU": "8", "KZ": "8"}
# Russia and Kazakhstan (+7): 10-digit national numbers, so "8" and 10 digits is the trunk
# prefix and a number, a 10-digit number starting with 8 (800 toll-free, St Petersburg's
# 812) is one without it, and "7" and 10 digits ("7 (916) 123-45-67") the calling code and
# a number, never ambiguous.
_TRUNK_8_COUNTRIES = ("RU", "KZ")  # and their international prefix is 810 (no area code 10x)
# International prefix 810 ("8 10 49 30 1234567" is +49 30 1234567): the +7 countries,
# Belarus, and Uzbekistan before 2023 (libphonenumber's metadata; no national number of
# theirs starts with 10).
_INTERNATIONAL_810_COUNTRIES = ("RU", "KZ", "BY", "UZ")
# Belarus: its national numbers have 9 digits; "8 0" and 9 digits is the trunk prefix (8,
# then 0 for a long-distance call) and a number. Uzbekistan: 9 digits, so 8 and 9 digits
# is the trunk 8 dialled before 2023 and a number (88 is also a mobile code, in 9 digits).
_TRUNK_8_NUMBERS = {"BY": "^80[0-9]{9}$", "UZ": "^8[0-9]{9}$"}
# San Marino: a 6-digit local number (8 or 9 first) is 0549 and the 6 digits
# (libphonenumber's SM national_prefix_for_parsing "([89]\d{5})$", transform "0549$1").
_SAN_MARINO_LOCAL = "^[89][0-9]{5}$"
# Bolivia: "0" and a carrier code (10-19) before the 8 digits, or "0" alone, both dropped.
_BOLIVIA_TRUNK = "^0(?:1[0-9]([0-9]{8})$)?"
# Mexico: a national number written with a prefix dialled before 2019 ("044 55 1234 5678").
_MEXICO_LEGACY_PREFIX = "^0(?:1|2|44|45)([0-9]{10})$"

# International prefixes other than a plain "00", from libphonenumber's metadata
# (``internationalPrefix``, checked 2026-12), for the countries of the table: Japan dials
# abroad with 010, Korea, Thailand, Indonesia, Cambodia, Tanzania, Uganda and Colombia with
# 00 and a carrier code, Australia with 0011 (or 0014 ... 0019), Singapore with 0[0-3] and a
# digit, Taiwan with 002, 005 ... 009 or 019, Kenya 000, Nigeria 009; Israel (01x), New
# Zealand (0161), Uruguay (01xx), Mexico (09), Finland (99x), Iceland (1xxx) and Chile (1xx0)
# also have carrier prefixes besides their 00. "00" alone was stripped: "010 1 212 555
# 1234" (JP) became +81 10 1212..., "001 44 20 ..." (KR) +1 44 20 ..., numbers of nobody. As
# libphonenumber does, a prefix is only stripped when a calling code (never 0) follows it.
# Hong Kong (00 and a carrier code: 001, 002, 006 ... 009, 0030, 0050, 0059), Bolivia (00
# and 1x) and Peru (19xx00) dial "00" alone too, which is the reading kept when theirs
# gives no possible number. A prefix is read only when what follows it is a possible
# number (NATIONAL_LENGTHS), else "00" alone, else the number is national: Singapore's
# "0[0-3]x" read "0044 20 7946 0958" as 004 and +420 79460958, a Czech number one digit
# short, and "001 212 555 1234" as +212 5551234; they are +44 20 7946 0958 and +1 212 555
# 1234. Lima's national numbers (a 1 and 7 digits) are too short to follow Peru's 19xx00.
INTERNATIONAL_PREFIXES = {
    "HK": "00(?:30|5[09]|[126-9])",
    "BO": "001[0-9]",
    "PE": "19(?:1[124]|77|90)00",
    "JP": "010",
    "KR": "00(?:[125689]|3(?:[46]5|91)|7(?:00|27|3|55|6[126]))",
    "AU": "001[14-689]|14(?:1[14]|34|4[17]|[56]6|7[47]|88)0011",
    "SG": "0[0-3][0-9]",
    "TH": "00[1-9]",
    "ID": "00[89]",
    "KH": "00[14-9]",
    "TW": "0(?:0[25-79]|19)",
    "KE": "000",
    "NG": "009",
    "TZ": "00[056]",
    "UG": "00[057]",
    "CO": "00(?:4(?:[14]4|56)|[579])",
    "IL": "01[2-9]",
    "NZ": "0161",
    "UY": "01[3-9][0-9]",
    "MX": "09",
    "FI": "99(?:[01469]|5(?:[14]1|3[23]|5[59]|77|88|9[09]))",
    "IS": "1(?:0(?:01|[12]0)|100)",
    "CL": "1(?:1[0-69]|2[02-5]|5[13-58]|69|7[0167]|8[018])0",
}

# The lengths a national number can have after each calling code: libphonenumber's metadata
# (every region of the code, generalDesc possibleLengths without the local-only ones, which
# lack their area code; phonenumbers 9.0.43), "a-b" a range. A number of another length is
# nobody's: "020 7946 09588" (GB, one digit too many), "06 12 34 56 789" (FR, 10 digits, all
# French numbers have 9) and "612 345 67" (ES, 8, Spain's have 9) were hashed and matched
# nobody, or a stranger; and an unassigned calling code is nobody's either.
NATIONAL_LENGTHS = {
    "1": "7 10", "7": "10 14", "20": "8-10", "27": "5-10", "30": "10-12", "31": "5-11",
    "32": "8-9", "33": "9", "34": "9", "36": "8-9", "39": "6-12", "40": "6 9", "41": "9 12",
    "43": "4-13", "44": "7 9-10", "45": "8", "46": "6-10 12", "47": "5 8", "48": "6-10",
    "49": "4-15", "51": "8-9", "52": "10", "53": "6-8 10", "54": "10-11", "55": "8-11",
    "56": "9-11", "57": "8 10-11", "58": "10", "60": "8-10", "61": "5-10 12", "62": "7-17",
    "63": "6 8-13", "64": "5-10", "65": "8 10-11", "66": "8-10 13", "81": "8-17",
    "82": "5-6 8-14", "84": "7-10", "86": "7-12", "90": "7 10 12-13", "91": "8-13", "92": "8-12",
    "93": "9", "94": "9", "95": "6-10", "98": "4-7 10", "211": "9", "212": "9", "213": "8-9",
    "216": "8", "218": "9", "220": "7 9", "221": "9", "222": "8", "223": "8", "224": "8-9",
    "225": "10", "226": "8", "227": "8", "228": "8", "229": "10", "230": "7-8 10", "231": "7-9",
    "232": "8", "233": "8-9", "234": "10-14", "235": "8", "236": "8", "237": "8-9", "238": "7",
    "239": "7", "240": "9", "241": "7-8", "242": "9", "243": "7-10", "244": "9", "245": "7 9",
    "246": "7", "247": "5-6", "248": "7", "249": "9", "250": "8-9", "251": "9", "252": "6-9",
    "253": "8", "254": "7-10", "255": "9", "256": "9", "257": "8", "258": "8-9", "260": "9",
    "261": "9", "262": "9", "263": "7 9-10", "264": "8-9", "265": "7 9", "266": "8",
    "267": "7-8 10", "268": "8-9", "269": "7", "290": "4-5", "291": "7", "297": "7", "298": "6",
    "299": "6", "350": "8", "351": "9", "352": "4-11", "353": "7-10", "354": "7 9", "355": "6-9",
    "356": "8", "357": "8", "358": "5-12", "359": "6-9 12", "370": "8", "371": "8",
    "372": "7-8 10", "373": "8", "374": "8", "375": "6-11", "376": "6 8-9", "377": "8-9",
    "378": "8 10", "380": "9-10", "381": "6-12", "382": "8-9", "383": "8-12", "385": "7-9",
    "386": "5-8", "387": "8-9", "389": "8", "420": "9-12", "421": "6-7 9", "423": "7 9",
    "500": "5", "501": "7 11", "502": "8 11", "503": "7-8 11", "504": "8 11", "505": "8",
    "506": "8 10", "507": "7-8 10-11", "508": "6 9", "509": "8", "590": "9", "591": "8-9",
    "592": "7", "593": "8-11", "594": "9", "595": "6-11", "596": "9", "597": "6-7", "598": "4-13",
    "599": "7-8", "670": "7-8", "672": "6", "673": "7", "674": "7", "675": "7-8", "676": "5 7",
    "677": "5 7", "678": "5 7", "679": "7 11", "680": "7", "681": "6 9", "682": "5", "683": "4 7",
    "685": "5-7 10", "686": "5 8", "687": "6", "688": "5-7", "689": "6 8-9", "690": "4-7",
    "691": "7", "692": "7", "800": "8", "808": "8", "850": "8 10", "852": "5-9 11", "853": "7-8",
    "855": "8-10", "856": "8-10", "870": "9 12", "878": "12", "880": "6-10", "881": "9-10",
    "882": "7-12", "883": "8-12", "886": "7-11", "888": "11", "960": "7 10", "961": "7-8",
    "962": "8-9", "963": "8-9", "964": "8-10", "965": "7-8", "966": "9-10", "967": "7-9",
    "968": "7-9", "970": "8-10", "971": "5-12", "972": "7-12", "973": "8", "974": "7-9 11",
    "975": "7-8", "976": "8-10", "977": "8 10-11", "979": "9", "992": "9", "993": "8", "994": "9",
    "995": "9", "996": "9-10", "998": "9",
}  # fmt: skip


def _lengths(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split():
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


def _possible_e164() -> str:
    """RE2: an E.164 number whose national part has a length its calling code allows, and 8
    to 15 digits in all. NANP numbers (+1) are an area code (2-9 first) and 7 digits, +7 ones
    (Russia, Kazakhstan) 10 digits, as before."""
    alternatives = ["1[2-9][0-9]{9}", "7[0-9]{10}"]
    for code, spec in NATIONAL_LENGTHS.items():
        lengths = [n for n in _lengths(spec) if 8 <= len(code) + n <= 15]
        if code in ("1", "7") or not lengths:
            continue
        runs = [[lengths[0], lengths[0]]]
        for n in lengths[1:]:
            if n == runs[-1][1] + 1:
                runs[-1][1] = n
            else:
                runs.append([n, n])
        quantifiers = "|".join(f"[0-9]{{{a},{b}}}" for a, b in runs)
        alternatives.append(f"{code}(?:{quantifiers})")
    return "^\\+(?:" + "|".join(alternatives) + ")$"


POSSIBLE_E164 = _possible_e164()


def _calling_code_sql(iso: str) -> str:
    """SQL: the calling code of the upper-case ISO code ``iso``, or null: one lookup in a
    constant MAP (a CASE of its 170 branches compared the code with each in turn)."""
    entries = ", ".join(f"'{country}': '{code}'" for country, code in CALLING_CODES.items())
    return f"MAP {{{entries}}}[{iso}]"


def _international_prefix_sql(digits: str, iso: str) -> str:
    """SQL: ``digits`` without the international prefix (INTERNATIONAL_PREFIXES) of the
    country ``iso`` (upper-case), or null when they do not start with it and a calling
    code."""
    cases = " ".join(
        f"when '{iso}' then (case when regexp_matches({digits}, '^(?:{prefix})[1-9]') "
        f"then regexp_replace({digits}, '^(?:{prefix})', '') end)"
        for iso, prefix in INTERNATIONAL_PREFIXES.items()
    )
    return f"(case {iso} {cases} end)"


def _national_number_sql(digits: str, iso: str) -> str:
    """SQL: a national-format number (digits starting with 0) without the trunk prefix of
    the country ``iso`` (upper-case), or null when it does not start with it."""
    cases = " ".join(
        f"when '{iso}' then (case when starts_with({digits}, '{prefix}') "
        f"then substr({digits}, {len(prefix) + 1}) end)"
        for iso, prefix in TRUNK_PREFIXES.items()
    )
    # Mexico's national numbers are 10 digits with no trunk prefix since 2019; the prefixes
    # dialled before (01 long distance, 044/045 mobile, 02) are still written.
    mexico = f"when 'MX' then nullif(regexp_extract({digits}, '{_MEXICO_LEGACY_PREFIX}', 1), '')"
    # Belarus: "8 0" or "0" ("8 029 ...", "029 ..."): both dropped.
    belarus = f"when 'BY' then regexp_replace({digits}, '^80?', '')"
    # Bolivia: the trunk 0 and a carrier code 10-19 before an 8-digit number ("0 10 2
    # 2123456", libphonenumber's BO national_prefix_for_parsing "0(1\\d)?"), or 0 alone.
    bolivia = f"when 'BO' then regexp_replace({digits}, '{_BOLIVIA_TRUNK}', '\\1')"
    return f"(case {iso} {cases} {mexico} {belarus} {bolivia} else substr({digits}, 2) end)"


def _written_trunk_rules() -> list[tuple[str, str]]:
    """RE2 patterns and replacements of _without_written_trunk_sql, in their order."""
    prefix_of = {code: TRUNK_PREFIXES.get(iso, "0") for iso, code in CALLING_CODES.items()}
    rules = []
    for prefix in sorted({p for c, p in prefix_of.items() if p and c not in ("1", "7")}):
        codes = "|".join(
            sorted(c for c, p in prefix_of.items() if p == prefix and c not in ("1", "7"))
        )
        rules.append((f"^\\+({codes}){prefix}", "+\\1"))
    # +7: the 8 only when 10 digits follow it (+7 800 is a toll-free number, not a trunk 8).
    rules.append(("^\\+78([0-9]{10})$", "+7\\1"))
    return rules


def _without_written_trunk_sql(number: str) -> str:
    """SQL: ``+CC...`` without a trunk prefix written after a known calling code ("+44 020
    7183 8750", "0044 07700 ..."): E.164 has none, and no number of those countries starts
    with it. Italy's 0 is kept; NANP numbers are checked separately."""
    out = number
    for pattern, replacement in _written_trunk_rules():
        out = f"regexp_replace({out}, '{pattern}', '{replacement}')"
    return out


# Mexico's mobile "1" and national prefixes written after +52 (libphonenumber's
# national_prefix_for_parsing for MX, "0(?:[12]|4[45])|1", followed by the 10 digits).
_MEXICO_LEGACY_AFTER_CODE = "^\\+52(?:0(?:1|2|44|45)|1)([0-9]{10})$"
# Argentina's mobiles as dialled nationally: area code (11, or 3-4 digits starting with 2 or
# 3), "15", then the subscriber, 10 digits together ("011 15 4123-4567", "(0351) 15
# 512-3456"). E.164 is +54 9, the area code and the subscriber, without the 15
# (libphonenumber's AR rule: national_prefix_for_parsing "0?(<area>)15", transform "9$1").
# "15" can be at one place only in the 12 digits, so the area code's length is never a guess.
# The 9 may be written too ("+54 9 11 15 4123-4567"): 13 digits, no number has as many.
_ARGENTINA_NATIONAL_MOBILE = (
    "^\\+549?(?:(11)15([0-9]{8})|([23][0-9]{2})15([0-9]{7})|([23][0-9]{3})15([0-9]{6}))$"
)
# Brazil's carrier selection code, two digits dialled after the trunk 0 (or the 90 of a
# collect call) before a long-distance number: "0 21 11 98765-4321" is +55 11 98765-4321
# (libphonenumber's BR rule "(?:0|90)(?:(1[245]|2[1-35]|31|4[13]|[56]5|99)(\\d{10,11}))?",
# transform "$2"). A Brazilian number has 10 or 11 digits, so 12 or 13 after +55 are a code
# and a number.
_BRAZIL_CARRIER_CODE = "^\\+55(?:90)?(?:1[245]|2[1-35]|31|4[13]|[56]5|99)([0-9]{10,11})$"
# Brazil's international prefix is 00 and a carrier selection code too ("00 21 1 212 555
# 1234" is +1 212 555 1234; libphonenumber's BR international_prefix "00(?:1[245]|2[1-35]|
# 31|4[13]|[56]5|99)"): it was read as "00" alone, and the carrier code as a calling code
# (+21 55 11 ..., a number of nobody). 55 is a carrier code and Brazil's calling code: "0055"
# and a Brazilian number (area code, then 9 and 8 digits, or 8 digits: a landline, or an old
# mobile of before the ninth digit) is +55 as before; 10 digits after 0055 are no +1 number.
_BRAZIL_INTERNATIONAL_PREFIX = "^00(?:1[245]|2[1-35]|31|4[13]|[56]5|99)[1-9]"
_BRAZIL_CALLING_ITSELF = "^0055[1-9]{2}(?:9[0-9]{8}|[2-9][0-9]{7})$"


# Brazil's mobiles had 8 digits until the 9 was put before them all (2012 in São Paulo, every
# area code by November 2016, Anatel): "(11) 8765-4321", still in many CRMs, is today's
# +55 11 98765-4321, the number Google and Meta know. Landlines start with 2-5, so an old
# mobile is an area code (two digits 1-9) and 8 digits starting with 6, 8 or 9. Those starting
# with 7 are kept: libphonenumber still has 7 and 7 digits as a mobile (radio) number.
_BRAZIL_OLD_MOBILE = "^\\+55([1-9]{2})([689][0-9]{7})$"


def _brazil_old_mobile_sql(number: str) -> str:
    """SQL: ``+55`` and an 8-digit mobile of before the ninth digit, with its 9."""
    return f"regexp_replace({number}, '{_BRAZIL_OLD_MOBILE}', '+55\\19\\2')"


def _argentina_mobile_sql(number: str) -> str:
    """SQL: ``+54`` and an Argentine mobile written with its national 15 ("+54 11 15 4123
    4567", or a national number given its calling code) as E.164: ``+54 9 11 4123 4567``."""
    return f"regexp_replace({number}, '{_ARGENTINA_NATIONAL_MOBILE}', '+549\\1\\3\\5\\2\\4\\6')"


def _brazil_without_carrier_sql(number: str) -> str:
    """SQL: ``+55`` and a number written with a carrier selection code, without the code."""
    return f"regexp_replace({number}, '{_BRAZIL_CARRIER_CODE}', '+55\\1')"


# Extension at the end of a phone: "ext. 12", "extension 12", "x89", "#7".
_EXTENSION = "\\s*(extension|ext|x|#)[\\s.:]*[0-9]+\\s*$"


# Digits and plus signs as other scripts write them, to ASCII: full-width forms (a Japanese,
# Chinese or Korean form typed in full-width mode: "０９０－１２３４－５６７８"), Arabic-Indic
# (Egypt, the Gulf) and Eastern Arabic-Indic (Persian, Urdu) digits; the ideographic space.
# "[^0-9]" dropped them all, and the number with them.
_OTHER_DIGITS = "０１２３４５６７８９٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹＋\u3000"
_ASCII_DIGITS = "0123456789" * 3 + "+ "


# A phone with letters in it (other than an extension, removed first), or a float's text:
# digits and ".0" ("4155552671.0"), as pandas writes a phone column holding a missing value
# (float64) to CSV, and as ingest loads a Parquet DOUBLE phone. Its digits with the 0 were
# someone else's number (+49 30151234560 for 3015123456.0, DE), and a float may have lost
# digits already (a spreadsheet's 4.4207946E+09): left out, never guessed.
_NOT_A_NUMBER = "\\pL|^\\s*[0-9]+\\.0+\\s*$"


def _phone_text_sql(phone: str) -> str:
    """SQL: ``phone`` as text whatever the column's type, for a CRM export that typed the
    phone as a number (``BIGINT``; a column all null typed ``INTEGER``): an integer is its
    digits (a national number without its trunk 0, or international without its ``+``, read
    as such written). A float or a decimal with a fraction is null: it may have lost digits
    (``4.4207946e9`` of a spreadsheet is 4420794600), and its text ends in ``.0``. The type
    is known when the query is bound: text costs nothing more."""
    kind = f"typeof({phone})"
    return (
        f"(case when {kind} in ('FLOAT', 'DOUBLE') or (starts_with({kind}, 'DECIMAL(') "
        f"and not ends_with({kind}, ',0)')) then null else cast({phone} as varchar) end)"
    )


def _let_sql(value: str, name: str, body: str) -> str:
    """SQL: ``body`` with ``name`` bound to ``value``, which is computed once per row (a
    DuckDB lambda over a one-element list). Pasting ``value`` into ``body`` at every use
    made e164_sql a 149 KB expression that DuckDB took a second to bind and evaluated many
    times over (``digits`` ~20 times, the calling-code CASE ~8 times)."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


def e164_sql(phone: str, country: str) -> str:
    """SQL: the phone in E.164 (``+4915112345678``) or null.

    Each intermediate value (the number without its extension, its digits, the country's
    code and calling code) is computed once per row and bound to a lambda parameter
    (``_let_sql``); the names start with ``_e164_`` so that they never hide a caller's
    column."""
    # Other scripts' digits to ASCII; translate() costs more than the rest of the number
    # (1.7 s a million phones), so only a phone with a byte outside ASCII goes through it.
    phone_read = _phone_text_sql("_e164_in.phone")
    ascii_phone = f"""(case when strlen({phone_read}) = length({phone_read}) then {phone_read}
        else translate({phone_read}, '{_OTHER_DIGITS}', '{_ASCII_DIGITS}') end)"""
    without_extension = f"regexp_replace({ascii_phone}, '{_EXTENSION}', '', 'i')"
    # "+" first, perhaps in brackets ("(+44) 7700 900123"): international. The bracket hid
    # the "+", and "(+44) ..." of a customer in France became +33 44..., someone else's.
    # "+49 (0)30 ..." writes the trunk zero in brackets: it is not part of the number.
    # The number is null exactly when the phone is.
    inputs = f"{{'phone': {phone}, 'iso': upper(trim({country}))}}"
    values = (
        "{'number': _e164_n"
        ", 'digits': regexp_replace(replace(_e164_n, '(0)', ''), '[^0-9]', '', 'g')"
        f", 'iso': _e164_in.iso, 'cc': {_calling_code_sql('_e164_in.iso')}}}"
    )
    number, digits, iso, cc = "_e164_v.number", "_e164_v.digits", "_e164_v.iso", "_e164_v.cc"
    trunk_8 = " or ".join(
        f"({iso} = '{code}' and regexp_matches({digits}, '{pattern}'))"
        for code, pattern in _TRUNK_8_NUMBERS.items()
    )
    written = f"""(case
        when {number} is null or {digits} = '' then null
        when regexp_matches({number}, '{_NOT_A_NUMBER}') then null
        when regexp_matches({number}, '^[\\s(\\[]*\\+') then '+' || {digits}
        when {iso} = 'BR'
            and regexp_matches({digits}, '{_BRAZIL_INTERNATIONAL_PREFIX}')
            and not regexp_matches({digits}, '{_BRAZIL_CALLING_ITSELF}')
            then '+' || substr({digits}, 5)
        when starts_with({digits}, '00') then '+' || substr({digits}, 3)
        when {cc} is null then null
        when {cc} = '1' then (case
            when starts_with({digits}, '011') then '+' || substr({digits}, 4)
            when regexp_matches({digits}, '^1?[2-9][0-9]{{9}}$') then '+1' || right({digits}, 10)
        end)
        when {iso} in {_INTERNATIONAL_810_COUNTRIES}
            and starts_with({digits}, '810') then '+' || substr({digits}, 4)
        when starts_with({digits}, '0') or ({iso} in {_TRUNK_8_COUNTRIES}
            and regexp_matches({digits}, '^8[0-9]{{10}}$')) or {trunk_8}
            then '+' || {cc} || {_national_number_sql(digits, iso)}
        when {iso} = 'SM' and regexp_matches({digits}, '{_SAN_MARINO_LOCAL}')
            then '+3780549' || {digits}
        when {cc} = '7' and regexp_matches({digits}, '^7[0-9]{{10}}$') then '+' || {digits}
        when {cc} = '7' and regexp_matches({digits}, '^[0-9]{{10}}$') then '+7' || {digits}
        when starts_with({digits}, {cc}) then null
        else '+' || {cc} || {digits}
    end)"""
    # The country's own international prefix, when what follows it is a possible number
    # (checked below); else "00" or a national number, as written above.
    # Only the countries of INTERNATIONAL_PREFIXES have one: the others skip the checks.
    own_prefix = f"""(case
        when {iso} is null or {iso} not in {tuple(INTERNATIONAL_PREFIXES)} then null
        when {number} is null or {digits} = '' then null
        when regexp_matches({number}, '{_NOT_A_NUMBER}') then null
        when regexp_matches({number}, '^[\\s(\\[]*\\+') then null
        else '+' || {_international_prefix_sql(digits, iso)}
    end)"""
    first_possible = _possible_sql(f"[{own_prefix}, {written}]")
    return _let_sql(
        inputs,
        "_e164_in",
        _let_sql(without_extension, "_e164_n", _let_sql(values, "_e164_v", first_possible)),
    )


def _possible_sql(readings: str) -> str:
    """SQL: the first of the numbers ``readings`` (a list of ``+`` and digits, as read) that
    is a possible number in E.164, or null when none is: a length its calling code allows
    (POSSIBLE_E164: 8-15 digits, +1 numbers an area code 2-9 and 10 digits, "+1 415 555
    26711" passed the 8-15 digit check, +7 numbers 10 digits, Côte d'Ivoire's 10 since
    2021), not an Argentine "15" mobile without its area code."""
    # Mexico's prefixes dialled before 2019 written after +52 ("+52 1 55 1234 5678", "+52
    # 044 55 ..."): the number is the 10 digits after them. Before the trunk 0 is dropped,
    # which would leave "+52 44 55 ...".
    mexico = f"regexp_replace(_e164_w, '{_MEXICO_LEGACY_AFTER_CODE}', '+52\\1')"
    candidate = _brazil_old_mobile_sql(
        _brazil_without_carrier_sql(_argentina_mobile_sql(_without_written_trunk_sql(mexico)))
    )
    # Each rewrite above changes a reading only when its pattern matches; a reading that
    # matches none of them (most: no trunk prefix, not +52/+54/+55) is left as it is, and
    # skips the seven regexp_replace calls.
    any_rewrite = "|".join(
        f"(?:{pattern})"
        for pattern in (
            _MEXICO_LEGACY_AFTER_CODE,
            *(pattern for pattern, _ in _written_trunk_rules()),
            _ARGENTINA_NATIONAL_MOBILE,
            _BRAZIL_CARRIER_CODE,
            _BRAZIL_OLD_MOBILE,
        )
    )
    read = f"(case when regexp_matches(_e164_w, '{any_rewrite}') then {candidate} else _e164_w end)"
    # No Argentine number starts with 15: "15 4123-4567" is a mobile dialled locally,
    # without its area code. A null reading is no number (list_filter drops it).
    return (
        f"list_filter(list_transform({readings}, lambda _e164_w: {read}), "
        f"lambda _e164_k: regexp_matches(_e164_k, '{POSSIBLE_E164}') "
        f"and not starts_with(_e164_k, '+5415'))[1]"
    )


def hashed(expr: str) -> str:
    """SQL: lower-case hex SHA-256 of ``expr``, or null when it is null or empty."""
    return f"(case when nullif({expr}, '') is null then null else sha256({expr}) end)"


# The CRM suite's email_valid rule, as DuckDB's RE2 spells it: what ingest keeps as an e-mail.
VALID_EMAIL = re2_regex(EMAIL_REGEX)
# Placeholders a shop types when a customer has no address (noemail@shop.com, test@test.com:
# expectations.suites.crm lists them), as DuckDB's RE2 spells the CRM suite's rule. Ingest
# nulls them (email_not_placeholder); an address loaded before that rule is checked here.
PLACEHOLDER_EMAIL = re2_regex(PLACEHOLDER_EMAIL_REGEX)


def is_address_sql(email: str) -> str:
    """SQL: true when ``email`` (trimmed and lower-cased here) is an e-mail address: valid by
    the CRM suite's rule and not a placeholder. False (never null) otherwise."""
    cleaned = f"lower(trim({email}))"
    return f"""coalesce(regexp_matches({cleaned}, '{VALID_EMAIL}')
        and not regexp_matches({cleaned}, '{PLACEHOLDER_EMAIL}'), false)"""


# Gmail ignores dots and a "+tag" in the local part: j.doe+shop@gmail.com, jdoe@gmail.com and
# jdoe@googlemail.com are one mailbox.
_GMAIL = "'^[^@]+@(gmail|googlemail)\\.com$'"


def _gmail_local_sql(cleaned: str) -> str:
    """SQL: the local part of the lower-case address ``cleaned`` without its dots and its
    ``+tag``, as Gmail delivers it (null when nothing is left)."""
    untagged = f"regexp_replace(split_part({cleaned}, '@', 1), '\\+.*$', '')"
    return f"nullif(regexp_replace({untagged}, '\\.', '', 'g'), '')"


def google_email_sql(email: str) -> str:
    cleaned = f"nfc_normalize(lower(regexp_replace({email}, '\\s', '', 'g')))"
    # Google matches Gmail addresses in their canonical form.
    canonical = f"""(case
        when regexp_matches({cleaned}, {_GMAIL})
        then {_gmail_local_sql(cleaned)} || '@' || split_part({cleaned}, '@', 2)
        else {cleaned} end)"""
    return f"(case when {is_address_sql(email)} then {canonical} end)"


def mailbox_sql(email: str) -> str:
    """SQL: the mailbox ``email`` reaches, to tell whether two records hold one person's
    address: trimmed and lower-cased, and for Gmail (``gmail.com``, ``googlemail.com``)
    without the dots and ``+tag`` of the local part, at ``gmail.com``. Other providers'
    dots are part of the address, and their ``+tags`` are not universal: kept."""
    cleaned = f"lower(trim({email}))"
    return f"""(case
        when regexp_matches({cleaned}, {_GMAIL})
        then {_gmail_local_sql(cleaned)} || '@gmail.com'
        else {cleaned} end)"""


def trimmed_sql(text: str) -> str:
    """SQL: ``text`` without white space at its ends: every character Python's ``\\s``
    matches (``UNICODE_SPACE_CHARS``), a tab and a line break too, which DuckDB's
    ``trim()`` keeps; ingest keeps a name as written: "Grace" and a tab was hashed for
    Google as "grace\\t", which matches nobody."""
    return f"trim({text}, '{UNICODE_SPACE_CHARS}')"


def google_name_sql(name: str) -> str:
    return f"nullif(nfc_normalize(lower({trimmed_sql(name)})), '')"


def meta_email_sql(email: str) -> str:
    return f"(case when {is_address_sql(email)} then nfc_normalize(lower(trim({email}))) end)"


# One "@" between a local part and a domain with a dot, no whitespace: what an ESP can send
# to. Anything else ("n/a", "anna@", "anna smith@example.com") is no address. Nor is text a
# spreadsheet would run as a formula: a leading "=", or ( ) " | ! (calls, DDE), which no
# mailbox in use holds (RFC 5322 allows some of them; ESPs and CRMs do not).
ADDRESS = '^[^=@\\s()"|!][^@\\s()"|!]*@[^@\\s()"|!]+\\.[^@\\s()"|!]+$'


def esp_email_sql(email: str) -> str:
    """SQL: the address in clear for an e-mail platform (trimmed, lower-case, NFC), or null
    when it is not an address an ESP could send to."""
    cleaned = f"nfc_normalize(lower(trim({email})))"
    return (
        f"(case when regexp_matches({cleaned}, '{ADDRESS}') and {is_address_sql(email)} "
        f"then {cleaned} end)"
    )


def meta_phone_sql(phone: str, country: str) -> str:
    return f"substr({e164_sql(phone, country)}, 2)"


def meta_name_sql(name: str) -> str:
    # Letters and their combining marks; NFC last, so composed and decomposed input agree.
    kept = f"regexp_replace(lower(trim({name})), '[^\\pL\\pM]', '', 'g')"
    return f"nullif(nfc_normalize({kept}), '')"


# Countries whose postal codes are USPS ZIP codes: the US and its territories (Puerto Rico's
# and the Virgin Islands' all start with 00, the first zeros a spreadsheet drops).
ZIP_CODE_COUNTRIES = ("US", "PR", "VI", "GU", "AS", "MP")
_ZIP_COUNTRIES_SQL = ", ".join(f"'{c}'" for c in ZIP_CODE_COUNTRIES)


def us_zip_sql(zip_code: str, country: str) -> str:
    """SQL: the trimmed postal code, with the leading zeros a spreadsheet dropped from a US
    ZIP code put back ("2118" is 02118, "2118-1234" 02118-1234, San Juan's "901" 00901: every
    ZIP code has 5 digits; New England's, Puerto Rico's and the Virgin Islands' start with 0).
    Other values are unchanged. A column typed as a number (a CRM export's ZIP codes as
    ``BIGINT``; ``DOUBLE``, its whole part) is read as its digits: it did not bind."""
    kind = f"typeof({zip_code})"
    text = (
        f"(case when {kind} in ('FLOAT', 'DOUBLE') or starts_with({kind}, 'DECIMAL(') "
        f"then cast(try_cast({zip_code} as hugeint) as varchar) "
        f"else cast({zip_code} as varchar) end)"
    )
    # The postal code and the country are bound once (_let_sql): pasted into each use, the
    # Meta zip, built on this, referred to the postal code 128 times and took 3.3 s of CPU a
    # million customers, five times the 0.6 s it takes now.
    z, iso = "_zip_us.z", "_zip_us.iso"
    body = (
        f"(case when {iso} in ({_ZIP_COUNTRIES_SQL}) "
        f"and regexp_matches({z}, '^[0-9]{{3,4}}(-[0-9]{{4}})?$') "
        f"then regexp_replace({z}, '^([0-9]+)', lpad(split_part({z}, '-', 1), 5, '0')) "
        f"else {z} end)"
    )
    return _let_sql(f"{{'z': trim({text}), 'iso': upper(trim({country}))}}", "_zip_us", body)


# A postal code written after its country's ISO code, as Latvia's ("LV-1050"), Lithuania's
# ("LT-01100"), Moldova's ("MD-2001") and Azerbaijan's ("AZ 1000") are: the code and a
# separator, if any, before the first digit.
_COUNTRY_PREFIXED_ZIP = "^[A-Za-z]{2}[-\\s]?[0-9]"
# Countries whose postal codes themselves start with the country's ISO code (UPU's address
# formats): the Cayman Islands ("KY1-1102", KY1 is Grand Cayman), Jersey ("JE2 3AB") and the
# Isle of Man ("IM1 1AA"), the British Virgin Islands ("VG1110"), Andorra ("AD500"),
# Barbados ("BB11000"), Saint Lucia ("LC05 201"). The letters are part of the code, never
# written without it: taken for a country prefix, "KY1-1102" was hashed as "1" (every
# Caymanian's) and "JE2 3AB" as "23ab".
ISO_CODE_POSTCODE_COUNTRIES = ("KY", "JE", "IM", "VG", "AD", "BB", "LC")
_ISO_CODE_POSTCODE_SQL = ", ".join(f"'{c}'" for c in ISO_CODE_POSTCODE_COUNTRIES)


def _without_country_prefix_sql(zip_code: str, country: str) -> str:
    """SQL: ``zip_code`` without the customer's country's ISO code written before it (not
    in the countries whose postal codes start with it, ISO_CODE_POSTCODE_COUNTRIES)."""
    return (
        f"(case when upper(left({zip_code}, 2)) = upper(trim({country})) "
        f"and upper(trim({country})) not in ({_ISO_CODE_POSTCODE_SQL}) "
        f"and regexp_matches({zip_code}, '{_COUNTRY_PREFIXED_ZIP}') "
        f"then regexp_replace({zip_code}, '^[A-Za-z]{{2}}[-\\s]?', '') else {zip_code} end)"
    )


def meta_zip_sql(zip_code: str, country: str) -> str:
    """SQL: the postal code as Meta's normalisers make it: lower-case, without white space,
    what comes before the first dash (``00-950``, PL, is ``00``); US: the first 5 digits. The
    customer's country's ISO code written before it goes first: Latvia's ``LV-1050`` is
    ``1050`` (cut at the dash, it was ``lv``, every Latvian's), as ``1050`` written alone;
    not where the postal code starts with that code (``KY1-1102``, Cayman, is ``ky1``)."""
    # Each value is bound once (_let_sql), as in us_zip_sql.
    inputs = f"{{'z': {us_zip_sql(zip_code, country)}, 'iso': upper(trim({country}))}}"
    without_country = _without_country_prefix_sql("_zip_in.z", "_zip_in.iso")
    cleaned = f"split_part(regexp_replace(lower({without_country}), '\\s', '', 'g'), '-', 1)"
    body = (
        f"nullif(case when _zip_in.iso in ({_ZIP_COUNTRIES_SQL}) "
        "then left(_zip_cut, 5) else _zip_cut end, '')"
    )
    return _let_sql(inputs, "_zip_in", _let_sql(cleaned, "_zip_cut", body))


def meta_country_sql(country: str) -> str:
    return (
        f"(case when regexp_matches(lower(trim({country})), '^[a-z]{{2}}$') "
        f"then lower(trim({country})) end)"
    )


def normalise_preview_sql() -> str:
    """A query over ``_contacts(email, phone, first_name, last_name, country, postal_code)``
    showing every normalised value, to check how a contact will be sent (a test pins it).
    ``meta_phone`` repeats ``e164_sql``, which DuckDB's common subexpression elimination
    evaluates once in a projection (300k phones: 0.94 s of CPU with or without it)."""
    return f"""select
    {google_email_sql("email")} as google_email,
    {e164_sql("phone", "country")} as e164_phone,
    {google_name_sql("first_name")} as google_first_name,
    {meta_email_sql("email")} as meta_email,
    {meta_phone_sql("phone", "country")} as meta_phone,
    {meta_name_sql("first_name")} as meta_fn,
    {meta_name_sql("last_name")} as meta_ln,
    {meta_zip_sql("postal_code", "country")} as meta_zip,
    {meta_country_sql("country")} as meta_country,
from _contacts"""
