"""Audience exports: files marketing uploads to an ESP or an ad platform.

Only the ``target`` group of a snapshot is exported (the holdout must not be reached), and
consent is checked again against ``marts.customers`` at export time, whatever the
definition said: a customer without the audience's consent is never in a file, even if
they withdrew consent after the snapshot was built. Ad-platform files (Google, Meta) also
require ads consent, even for an audience defined with e-mail consent, and e-mail platform
(ESP) files (Mailchimp, Klaviyo, Braze) e-mail consent, even for an audience defined with
ads consent. A customer held for a quarantined CRM record that may withdraw consent
(:mod:`segmint.audiences.consent`) is left out too, and so is a customer whose e-mail
address is also on another record without that consent (the same person twice in the CRM,
unsubscribed under one of them). The id files of the audience's
suppression lists (``customer_ids_file``:
complaints, manual opt-outs) are read again too, so an id added after the snapshot is left
out.

Formats:

``csv`` / ``parquet``
    ``customer_id`` and any profile columns of ``marts.customers`` asked for. In ``csv``, a
    free-text value (a text column other than ids, e-mail, phone and hashes) starting with
    ``=``, ``+``, ``-``, ``@``, tab or CR gets a ``'`` in front, so that a spreadsheet shows
    it instead of running it as a formula (OWASP "CSV Injection").
``google_customer_match``
    Google Ads Customer Match upload CSV with the English headers ``Email, Phone,
    First Name, Last Name, Country, Zip``; e-mail, phone and names normalised and SHA-256
    hashed, country (ISO-2, else empty) and zip in clear (see
    :mod:`segmint.audiences.normalise`); a zip starting with a formula character is left
    empty.
``meta_custom_audience``
    Meta customer-list CSV with headers ``email, phone, fn, ln, zip, country``, every value
    normalised and SHA-256 hashed.
``mailchimp`` / ``klaviyo`` / ``braze``
    The e-mail platforms' contact-import CSVs, in clear text: ``Email Address, First Name,
    Last Name`` (Mailchimp), ``Email, First Name, Last Name, Phone Number`` (Klaviyo),
    ``external_id, email, first_name, last_name, phone`` (Braze; ``external_id`` is the
    ``customer_id``). E-mail trimmed and lower-case, phone in E.164, names trimmed (of
    tabs and line breaks too) and neutralised like the ``csv`` free text. A customer
    without a usable address is left out (an ESP cannot send to them) and counted in the
    result. Mailchimp and Klaviyo key contacts by address: their files have one row per
    address (the record changed last), and the customers sharing it are counted and
    listed in ``export_members``. Mailchimp's text fields hold 255 bytes: a longer name is
    cut there at a character (``ESP_TEXT_LIMITS``) and the rows are counted.
``diff``
    ``customer_id, change`` (``entered`` / ``exited``) against the list of the audience's
    last ``diff`` export of an earlier as-of date (everyone is ``entered`` on the first
    one). Exports in other formats never serve as the baseline: their lists are other
    populations (Google and Meta files also need ads consent).

Every export is logged in ``audiences.exports`` with its row count, file checksum and
path; ``audiences.export_members`` keeps the customers on the platform's list after the
export, so an erasure can name the files that contained someone. The same file written
again to the same path (a rerun of the night) keeps its one row; a different file is a
new row, the history of what was handed over.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from segmint.audiences.compile import suppression_file_sql
from segmint.audiences.consent import held_customers_sql
from segmint.audiences.definitions import Definitions, load_definitions, sql_literal
from segmint.audiences.formats import AD_PLATFORM_FORMATS, ESP_FORMATS, EXPORT_FORMATS
from segmint.audiences.normalise import (
    ADDRESS,
    e164_sql,
    esp_email_sql,
    google_email_sql,
    google_name_sql,
    hashed,
    is_address_sql,
    mailbox_sql,
    meta_country_sql,
    meta_email_sql,
    meta_name_sql,
    meta_phone_sql,
    meta_zip_sql,
    trimmed_sql,
    us_zip_sql,
)
from segmint.audiences.tables import ensure_audience_tables
from segmint.config import Settings
from segmint.outputs import written_atomically
from segmint.stages import SegmintError
from segmint.warehouse import connect, exclusive, table_exists, transaction

FILE_SUFFIX = {
    "csv": ".csv",
    "parquet": ".parquet",
    **{fmt: f"_{fmt}.csv" for fmt in (*AD_PLATFORM_FORMATS, *ESP_FORMATS)},
    "diff": "_diff.csv",
}
# ESPs that key a contact by its e-mail address: their files have one row per address.
ADDRESS_KEYED_FORMATS = ("mailchimp", "klaviyo")
# Header -> contact field of each ESP's import CSV, as their import guides name them:
# Mailchimp "Format guidelines for your import file"; Klaviyo "How to create and add
# contacts to a new list" (first column Email, Klaviyo property names as headers); Braze
# "CSV import" and "Standard attributes" (lower-case reserved names, phone in E.164).
ESP_COLUMNS = {
    "mailchimp": (
        ("Email Address", "email"),
        ("First Name", "first_name"),
        ("Last Name", "last_name"),
    ),
    "klaviyo": (
        ("Email", "email"),
        ("First Name", "first_name"),
        ("Last Name", "last_name"),
        ("Phone Number", "phone"),
    ),
    "braze": (
        ("external_id", "customer_id"),
        ("email", "email"),
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("phone", "phone"),
    ),
}


@dataclass
class ExportResult:
    export_id: str
    audience: str
    format: str
    as_of: date
    rows: int
    sha256: str
    path: Path
    baseline_as_of: date | None = None
    # ESP files: customers of the list left out for want of a usable e-mail address.
    without_email: int = 0
    # Customers left out because their e-mail address is also on a CRM record without the
    # consent the file needs (the same person's other record, where they unsubscribed).
    shared_address: int = 0
    # The audience's newer nights that failed to build, when no as-of date was asked for.
    newer_failed: str | None = None
    # The snapshot's target group, and those of it left out at export time: without the
    # consent the file needs now (an ad platform needs ads consent, an ESP e-mail consent,
    # whatever the audience's), held for a quarantined CRM record, or on a suppression file
    # since. The members count marketing reads is ``target``; the file holds fewer.
    target: int = 0
    without_consent: int = 0
    # Google and Meta files: customers left out for want of anything the platform can match
    # (no e-mail, no phone, no name with the address fields it needs).
    without_identifier: int = 0
    # Mailchimp and Klaviyo files: customers whose address is already on another row (one
    # row per address: those platforms key contacts by it). They are on the list all the same.
    same_address: int = 0
    # Mailchimp files: rows whose first or last name was longer than the platform keeps
    # (ESP_TEXT_LIMITS) and was cut, at a character, to fit.
    names_cut: int = 0
    # Why the snapshot is empty, when the build knew (``audiences.summary.note``: an audience
    # on a model's deciles on a night a baseline rule ranked instead of a model).
    empty_note: str | None = None

    @property
    def warning(self) -> str | None:
        return self.warning_text()

    def warning_text(self, note: bool = True) -> str | None:
        """The export's warning; ``note=False`` leaves out the build's note on why the
        snapshot is empty (the nightly stage has warned it already)."""
        warnings = [self.newer_failed] if self.newer_failed else []
        if not self.rows and self.empty_note and note:
            warnings.append(f"{self.audience} {self.format} has no rows: {self.empty_note}")
        # The platforms refuse a file without rows, so an empty audience (everyone left or
        # withdrew consent) cannot replace the list: its old members would stay targeted.
        if not self.rows and self.format in AD_PLATFORM_FORMATS:
            warnings.append(
                f"{self.audience} {self.format} has no rows: an upload without rows is "
                "refused, so it cannot replace the platform's list; remove the list's members "
                "(or the list from its campaigns) on the platform, or its old members stay "
                "targeted"
            )
        return "; ".join(warnings) or None

    def line(self) -> str:
        base = f" (changes since {self.baseline_as_of})" if self.baseline_as_of else ""
        if self.format != "diff":  # a diff's rows are changes, not members
            base += f" of {self.target} target member(s)"
        if self.without_consent:
            base += (
                f" ({self.without_consent} left out: without the consent this file needs now, "
                "held, or suppressed since the snapshot)"
            )
        if self.without_email:
            base += f" ({self.without_email} without a usable e-mail address left out)"
        if self.without_identifier:
            base += (
                f" ({self.without_identifier} left out: no e-mail, phone or name and address "
                "the platform can match)"
            )
        if self.shared_address:
            base += (
                f" ({self.shared_address} left out: their e-mail address is also on a "
                "customer record without consent)"
            )
        if self.same_address:
            base += (
                f" ({self.same_address} sharing an e-mail address with another customer of "
                "the file: one row per address)"
            )
        if self.names_cut:
            base += (
                f" ({self.names_cut} with a name longer than {self.format} keeps: cut to "
                f"{ESP_TEXT_LIMITS.get(self.format)} bytes)"
            )
        warning = f"\n  warning: {self.warning}" if self.warning else ""
        return (
            f"exported {self.audience} {self.format} as of {self.as_of}: {self.rows} row(s)"
            f"{base} -> {self.path} sha256={self.sha256[:12]}{warning}"
        )


def export_audience(
    settings: Settings,
    audience: str,
    fmt: str,
    out: Path,
    as_of: date | None = None,
    columns: list[str] | None = None,
) -> ExportResult:
    defs = None
    if settings.audiences.is_dir():
        defs = load_definitions(settings.audiences, strict=False)
    with exclusive(settings.warehouse, f"export of audience {audience}"):
        con = connect(settings.warehouse)
        try:
            return export_with_connection(
                con, audience, fmt, Path(out), as_of, columns, suppression_files(defs, audience)
            )
        finally:
            con.close()


def suppression_files(defs: Definitions | None, audience: str) -> list[Path]:
    """The id files of the audience's suppression lists, read again at export time: an id
    customer service added after the snapshot (this morning's complaint) is left out."""
    aud = defs.audiences.get(audience) if defs else None
    if aud is None:
        return []
    broken = [s for s in aud.suppress if s not in defs.suppressions]
    if broken:
        raise SegmintError(
            f"not exported: suppression list(s) {', '.join(broken)} of audience {audience!r} "
            f"cannot be read, so whoever is on them could be exported "
            f"({defs.failed.get(audience, 'not defined')}); `segmint audience validate` "
            "lists every problem"
        )
    files = (defs.suppressions[s].customer_ids_file for s in aud.suppress)
    return [f for f in files if f is not None]


def export_declared(
    settings: Settings, defs: Definitions, as_of: date, skip: set[str]
) -> list[ExportResult]:
    """Write the exports each definition declares under ``output/<as_of>/audiences/``."""
    folder = settings.run_output_dir(as_of) / "audiences"
    results = []
    con = connect(settings.warehouse)
    try:
        for aud in defs.audiences.values():
            if aud.name in skip:
                continue
            for fmt in aud.exports:
                out = folder / f"{aud.name}{FILE_SUFFIX[fmt]}"
                files = suppression_files(defs, aud.name)
                results.append(export_with_connection(con, aud.name, fmt, out, as_of, None, files))
    finally:
        con.close()
    return results


def _snapshot(
    con: duckdb.DuckDBPyConnection, audience: str, as_of: date | None
) -> tuple[date, str]:
    where = "and as_of_date = ?" if as_of else ""
    params = [audience, as_of] if as_of else [audience]
    row = con.execute(
        "select as_of_date, consent from audiences.summary "
        f"where audience = ? and status = 'built' {where} order by as_of_date desc limit 1",
        params,
    ).fetchone()
    if row is None:
        known = [
            r[0]
            for r in con.execute(
                "select distinct audience from audiences.summary where status = 'built' order by 1"
            ).fetchall()
        ]
        built = f"built audiences: {', '.join(known) or 'none'}"
        if audience in known:  # built, not for that night
            raise SegmintError(
                f"audience {audience!r} has no built snapshot for as_of_date {as_of}; run "
                f"`segmint audience build --as-of {as_of}` first, or leave --as-of out for its "
                f"newest ({built})"
            )
        # A mistyped name was told to run `segmint audience build` first, which cannot help.
        when = f" for as_of_date {as_of}" if as_of else ""
        raise SegmintError(
            f"audience {audience!r} has no built snapshot{when}: "
            f"no audience of that name was ever built; check the name ({built}), or, for a "
            "definition added since the last night, run `segmint audience build` first"
        )
    return row[0], row[1]


def export_with_connection(
    con: duckdb.DuckDBPyConnection,
    audience: str,
    fmt: str,
    out: Path,
    as_of: date | None = None,
    columns: list[str] | None = None,
    suppress_files: list[Path] | None = None,
) -> ExportResult:
    if fmt not in EXPORT_FORMATS:
        raise SegmintError(f"unknown export format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}")
    ensure_audience_tables(con)
    if not table_exists(con, "marts.customers"):
        raise SegmintError("marts.customers does not exist: run the transform stage first")
    snapshot, consent = _snapshot(con, audience, as_of)
    newer_failed = _newer_failure(con, audience, snapshot) if as_of is None else None
    (empty_note,) = con.execute(
        "select any_value(note) from audiences.summary where audience = ? and as_of_date = ? "
        "and status = 'built'",
        [audience, snapshot],
    ).fetchone()
    profile_types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'customers' order by ordinal_position"
        ).fetchall()
    )
    profile_cols = list(profile_types)
    columns = columns or []
    unknown = [c for c in columns if c not in profile_cols]
    if unknown:
        raise SegmintError(
            f"unknown column(s) {', '.join(unknown)} of marts.customers; "
            f"columns: {', '.join(profile_cols)}"
        )
    if columns and fmt not in ("csv", "parquet"):
        raise SegmintError(f"--columns applies to csv and parquet, not {fmt}")

    # The list on the platform after this export: target group, consent checked now. An
    # ad platform also needs ads consent, an e-mail platform e-mail consent, whatever
    # consent the audience was defined with.
    needed = {consent}
    if fmt in AD_PLATFORM_FORMATS:
        needed.add("ads")
    if fmt in ESP_FORMATS:
        needed.add("email")
    consent_sql = " and ".join(f"coalesce(c.{n}_opt_in, false)" for n in sorted(needed))
    # Held: a quarantined CRM record of theirs may withdraw consent (segmint.audiences.consent).
    consent_sql += f"\n            and m.customer_id not in ({held_customers_sql(con)})"
    for path in suppress_files or []:
        consent_sql += f"\n            and m.customer_id not in ({suppression_file_sql(path)})"
    con.execute(
        f"""create or replace temp table _export_candidates as
        select m.customer_id, {_shared_address_sql(profile_cols, needed)} as is_shared_address
        from audiences.members as m
        inner join marts.customers as c on c.customer_id = m.customer_id
        where m.audience = {sql_literal(audience)}
            and m.as_of_date = {sql_literal(snapshot)}
            and m."group" = 'target'
            and {consent_sql}"""
    )
    con.execute(
        "create or replace temp table _export_list as "
        "select customer_id from _export_candidates where not is_shared_address"
    )
    target = con.execute(
        "select count(*) from audiences.members where audience = ? and as_of_date = ? "
        "and \"group\" = 'target'",
        [audience, snapshot],
    ).fetchone()[0]
    without_consent = target - con.execute("select count(*) from _export_candidates").fetchone()[0]
    shared_address = con.execute(
        "select count(*) from _export_candidates where is_shared_address"
    ).fetchone()[0]
    baseline = None
    if fmt == "diff":
        # The baseline is the list the previous diff gave the destination: the audience's
        # last *diff* export. Another format's list is another population (ad-platform files
        # also need ads consent), so comparing with it reports unchanged customers again.
        prev = con.execute(
            "select export_id, as_of_date from audiences.exports where audience = ? "
            "and format = 'diff' and as_of_date < ? "
            "order by as_of_date desc, exported_at desc limit 1",
            [audience, snapshot],
        ).fetchone()
        prev_id, baseline = prev if prev else (None, None)
        query = f"""select customer_id, 'entered' as change
        from _export_list
        where customer_id not in (
            select customer_id from audiences.export_members
            where export_id = {sql_literal(prev_id or "")}
        )
        union all
        select customer_id, 'exited'
        from audiences.export_members
        where export_id = {sql_literal(prev_id or "")}
            and customer_id not in (select customer_id from _export_list)
        order by change, customer_id"""
        select = "customer_id, change"
    else:
        query, select = _format_query(fmt, columns, _contact_columns(profile_cols), profile_types)
    con.execute(f"create or replace temp table _export_rows as {query}")
    # Mailchimp and Klaviyo take one row per address; the customers of the others are on
    # the list through it (export_members keeps them: an erasure names the file).
    file_rows = "where is_file_row" if fmt in ADDRESS_KEYED_FORMATS else ""
    listed_count = con.execute("select count(*) from _export_rows").fetchone()[0]
    rows = con.execute(f"select count(*) from _export_rows {file_rows}").fetchone()[0]
    same_address = listed_count - rows
    names_cut = 0
    if fmt in ESP_FORMATS:  # of the file's rows, the names cut to what the platform keeps
        cut_rows = f"{file_rows} and is_name_cut" if file_rows else "where is_name_cut"
        names_cut = con.execute(f"select count(*) from _export_rows {cut_rows}").fetchone()[0]
    listed, without_email, without_identifier = "_export_list", 0, 0
    if fmt in ESP_FORMATS or fmt in AD_PLATFORM_FORMATS:
        # Whoever has no usable address (an ESP) or nothing to match (an ad platform) is not
        # in the file, so not on the platform's list: export_members lists the file's rows.
        listed = "_export_rows"
        left_out = con.execute("select count(*) from _export_list").fetchone()[0] - listed_count
        if fmt in ESP_FORMATS:
            without_email = left_out
        else:
            without_identifier = left_out

    options = "format parquet" if fmt == "parquet" else "format csv, header true, delimiter ','"
    with written_atomically(out) as tmp:
        con.execute(
            f"copy (select {select} from _export_rows {file_rows}) "
            f"to {sql_literal(str(tmp))} ({options})"
        )
    digest = _file_sha256(out)
    now = datetime.now(UTC).replace(tzinfo=None)
    # The same file written again to the same place (a rerun of the night's audiences stage,
    # an Airflow retry, an export repeated by hand) is the same export: it added a second
    # row and a second copy of every member each time, so the log grew with every rerun.
    # It is logged once, written at its latest time; a file that differs is a new row.
    same = con.execute(
        "select export_id from audiences.exports where audience = ? and format = ? "
        "and as_of_date = ? and destination = ? and file_sha256 = ? "
        "order by exported_at desc limit 1",
        [audience, fmt, snapshot, str(out.resolve()), digest],
    ).fetchone()
    export_id = same[0] if same else uuid.uuid4().hex
    with transaction(con):
        if same:
            con.execute("delete from audiences.export_members where export_id = ?", [export_id])
            con.execute("delete from audiences.exports where export_id = ?", [export_id])
        con.execute(
            "insert into audiences.exports (export_id, audience, format, as_of_date, row_count, "
            "file_sha256, destination, baseline_as_of_date, exported_at, target_members, "
            "without_consent, shared_address, without_contact, hostname) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                export_id,
                audience,
                fmt,
                snapshot,
                rows,
                digest,
                str(out.resolve()),
                baseline,
                now,
                target,
                without_consent,
                shared_address,
                without_email + without_identifier,
                socket.gethostname(),
            ],
        )
        con.execute(
            f"insert into audiences.export_members select ?, customer_id from {listed}",
            [export_id],
        )
    return ExportResult(
        export_id,
        audience,
        fmt,
        snapshot,
        int(rows),
        digest,
        out,
        baseline,
        int(without_email),
        int(shared_address),
        newer_failed,
        int(target),
        int(without_consent),
        int(without_identifier),
        int(same_address),
        int(names_cut),
        empty_note,
    )


def _shared_address_sql(profile_cols: list[str], needed: set[str]) -> str:
    """SQL: true when the customer's e-mail address is also on another record of ``marts.customers``
    without one of the ``needed`` consents, changed as late as the customer's own or later;
    addresses compare by the mailbox they reach (trimmed, any case, Gmail's dots and ``+tags``
    ignored: :func:`mailbox_sql`). A shop's CRM often holds one person twice (a guest checkout
    and an account); who unsubscribed under one of them has withdrawn it for the address, and
    the address is how the platforms reach them. The latest word about the address wins, as the
    latest ``updated_at`` wins per customer: an older guest record without consent (never asked)
    does not undo the opt-in given on the account since. A record without a change time (or a
    profile without ``crm_updated_at``) counts as the latest: in doubt, no. A placeholder
    (``noemail@shop.com``, typed at the till for every walk-in customer) is nobody's address and
    links no records: one walk-in without consent left out all the others."""
    address = _contact_columns(profile_cols)["email"]
    if not address.startswith("c."):
        return "false"
    other = "o." + address.removeprefix("c.")
    withdrawn = " or ".join(f"not coalesce(o.{n}_opt_in, false)" for n in sorted(needed))
    as_late = (
        "coalesce(o.crm_updated_at >= c.crm_updated_at, true)"
        if "crm_updated_at" in profile_cols
        else "true"
    )
    return f"""{is_address_sql(address)} and exists (
            select 1 from marts.customers as o
            where o.customer_id <> c.customer_id
                and nullif(trim({address}), '') is not null
                and {mailbox_sql(other)} = {mailbox_sql(address)}
                and ({withdrawn})
                and {as_late}
        )"""


def _newer_failure(con: duckdb.DuckDBPyConnection, audience: str, snapshot: date) -> str | None:
    """What to say when a night after ``snapshot`` (the newest built) failed to build the
    audience: an export of the newest snapshot is then not tonight's list."""
    row = con.execute(
        "select as_of_date, error from audiences.summary where audience = ? "
        "and as_of_date > ? and status = 'failed' order by as_of_date desc limit 1",
        [audience, snapshot],
    ).fetchone()
    if row is None:
        return None
    return (
        f"this is the snapshot of {snapshot}, the newest built: {audience} failed to build "
        f"on {row[0]} ({row[1]})"
    )


# Contact fields of marts.customers, by the names the profile may use for them.
_CONTACT_NAMES = {
    "email": ("email", "email_address"),
    "phone": ("phone", "phone_number"),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "country": ("country_code", "country"),
    "postal_code": ("postal_code", "zip", "zip_code"),
}


def _contact_columns(profile_cols: list[str]) -> dict[str, str]:
    """SQL for each contact field: ``c."<column>"`` when the profile has one, else null."""
    out = {}
    for field_name, candidates in _CONTACT_NAMES.items():
        found = next((c for c in candidates if c in profile_cols), None)
        out[field_name] = f'c."{found}"' if found else "cast(null as varchar)"
    return out


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _formula_trigger_sql(expr: str) -> str:
    chars = ", ".join(f"chr({ord(c)})" for c in FORMULA_TRIGGERS)
    return f"left({expr}, 1) in ({chars})"


def _neutralised_sql(expr: str, data: str | None = None) -> str:
    """SQL: ``expr`` with a ``'`` in front when a spreadsheet would read it as a formula;
    values matching the regular expression ``data`` are kept as they are."""
    trigger = _formula_trigger_sql(expr)
    if data is not None:
        trigger += f" and not regexp_matches({expr}, '{data}')"
    return f"(case when {trigger} then '''' || {expr} else {expr} end)"


# A phone as people write one: digits and separators, perhaps a leading + (E.164) or -.
# Without letters, quotes or "=" no spreadsheet formula can call anything.
_PHONE_TEXT = "^[-+]?[0-9 ()./-]+$"


def _csv_column_sql(column: str, types: dict[str, str]) -> str:
    """SQL for one asked-for column of a CSV export. Free text that a spreadsheet would run
    as a formula gets a ``'`` in front. Values platforms read as data are kept: ids, hashes,
    non-text columns, an e-mail address (``-hugo@example.com``) and a phone written with
    digits (``+1 (415) 555-2671``); an e-mail or phone column holding anything else
    (``=HYPERLINK(...)``) is neutralised like free text."""
    expr = f'c."{column}"'
    if types.get(column) != "VARCHAR" or column == "id":
        return expr
    if column.endswith(("_id", "_sha256", "_hash")):
        return expr
    if column in _CONTACT_NAMES["email"]:
        return _neutralised_sql(expr, data=ADDRESS)
    if column in _CONTACT_NAMES["phone"]:
        return _neutralised_sql(expr, data=_PHONE_TEXT)
    return _neutralised_sql(expr)


# Bytes an ESP keeps of a text field: Mailchimp's text merge fields (First Name, Last Name)
# hold 255 ("Format guidelines for your import file", "Merge fields"); its import cuts a
# longer value at the 255th byte, which can split a character of a name in another script.
# Klaviyo's and Braze's import guides give no limit for these fields: their values are kept.
ESP_TEXT_LIMITS = {"mailchimp": 255}


def _cut_to_bytes_sql(expr: str, limit: int) -> str:
    """SQL: ``expr`` cut to at most ``limit`` bytes of UTF-8 at a character boundary (the
    most characters whose bytes fit), white space at its new end removed."""
    chars = (
        f"len(list_filter(list_transform(range(1, least(length({expr}), {limit}) + 1), "
        f"lambda i: strlen(left({expr}, i))), lambda b: b <= {limit}))"
    )
    return f"(case when strlen({expr}) > {limit} then rtrim(left({expr}, {chars})) else {expr} end)"


# What an ESP's import refuses beyond the common rule. Mailchimp ("Format guidelines for
# your import file"): "we can only support international characters like ñ or é if they
# come after the @ symbol": josé@example.com is refused, so it is left out and counted.
_ESP_ADDRESS_RULES = {"mailchimp": "and regexp_matches(email, '^[!-~]+@')"}


def _format_query(
    fmt: str, columns: list[str], contact: dict[str, str], types: dict[str, str]
) -> tuple[str, str]:
    src = "from _export_list as l inner join marts.customers as c on c.customer_id = l.customer_id"
    email, phone, first, last = (
        contact["email"],
        contact["phone"],
        contact["first_name"],
        contact["last_name"],
    )
    country, postal = contact["country"], contact["postal_code"]
    if fmt in ("csv", "parquet"):
        exprs = [_csv_column_sql(c, types) if fmt == "csv" else f'c."{c}"' for c in columns]
        cols = "".join(f', {e} as "{c}"' for e, c in zip(exprs, columns, strict=True))
        query = f"select l.customer_id{cols} {src} order by l.customer_id"
        select = "customer_id" + "".join(f', "{col}"' for col in columns)
        return query, select
    # Normalise once into a materialised CTE, then hash column references: nesting the
    # hash around the normalisation would repeat the expressions for every use.
    if fmt == "google_customer_match":
        # Country and Zip are sent in clear: an ISO-2 code, and no zip a spreadsheet would
        # take for a formula (no real postal code starts with one of those characters).
        zip_clear = f"nullif({us_zip_sql(postal, country)}, '')"
        query = f"""with normalised as materialized (
            select
                l.customer_id,
                {google_email_sql(email)} as email,
                {e164_sql(phone, country)} as phone,
                {google_name_sql(first)} as first_name,
                {google_name_sql(last)} as last_name,
                upper({meta_country_sql(country)}) as country,
                (case when not {_formula_trigger_sql(zip_clear)} then {zip_clear} end) as zip,
            {src}
        )
        select
            customer_id,
            {hashed("email")} as "Email",
            {hashed("phone")} as "Phone",
            {hashed("first_name")} as "First Name",
            {hashed("last_name")} as "Last Name",
            country as "Country",
            zip as "Zip",
        from normalised
        where email is not null or phone is not null
            or (first_name is not null and last_name is not null
                and country is not null and zip is not null)
        order by customer_id"""
        return query, '"Email", "Phone", "First Name", "Last Name", "Country", "Zip"'
    if fmt == "meta_custom_audience":
        query = f"""with normalised as materialized (
            select
                l.customer_id,
                {meta_email_sql(email)} as email,
                {meta_phone_sql(phone, country)} as phone,
                {meta_name_sql(first)} as fn,
                {meta_name_sql(last)} as ln,
                {meta_zip_sql(postal, country)} as zip,
                {meta_country_sql(country)} as country,
            {src}
        )
        select
            customer_id,
            {hashed("email")} as email,
            {hashed("phone")} as phone,
            {hashed("fn")} as fn,
            {hashed("ln")} as ln,
            {hashed("zip")} as zip,
            {hashed("country")} as country,
        from normalised
        where nullif(email, '') is not null or nullif(phone, '') is not null
            or (nullif(fn, '') is not null and nullif(ln, '') is not null)
        order by customer_id"""
        return query, "email, phone, fn, ln, zip, country"
    if fmt in ESP_FORMATS:
        # Clear text: the ESP needs the address. Names are free text a marketer may open
        # in a spreadsheet; e-mail and E.164 phone are data, as in the csv format. Mailchimp
        # and Klaviyo key a contact by its address: of customers sharing one (a couple's
        # family@, a guest checkout and an account), the file has one row, the record changed
        # last (as for consent), else the first id. Braze keys users by external_id.
        latest = "c.crm_updated_at" if "crm_updated_at" in types else "null"
        # A name longer than the ESP keeps is cut, at a character, and counted.
        limit = ESP_TEXT_LIMITS.get(fmt)
        values = {field: field for _, field in ESP_COLUMNS[fmt]}
        is_name_cut = "false"
        if limit:
            values.update({n: _cut_to_bytes_sql(n, limit) for n in ("first_name", "last_name")})
            longer = " or ".join(f"strlen({n}) > {limit}" for n in ("first_name", "last_name"))
            is_name_cut = f"coalesce({longer}, false)"
        query = f"""with normalised as materialized (
            select
                l.customer_id,
                {esp_email_sql(email)} as email,
                {_neutralised_sql(f"nullif({trimmed_sql(first)}, '')")} as first_name,
                {_neutralised_sql(f"nullif({trimmed_sql(last)}, '')")} as last_name,
                {e164_sql(phone, country)} as phone,
                {latest} as updated_at,
            {src}
        )
        select
            customer_id,
            {", ".join(f'{values[field]} as "{header}"' for header, field in ESP_COLUMNS[fmt])},
            {is_name_cut} as is_name_cut,
            row_number() over (
                partition by email order by updated_at desc nulls last, customer_id
            ) = 1 as is_file_row,
        from normalised
        where email is not null {_ESP_ADDRESS_RULES.get(fmt, "")}
        order by customer_id"""
        return query, ", ".join(f'"{header}"' for header, _ in ESP_COLUMNS[fmt])
    raise SegmintError(f"unknown export format {fmt!r}")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
