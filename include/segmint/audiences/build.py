"""The audiences stage: definitions -> SQL -> one membership snapshot per as-of date.

Order of operations for each audience (all in DuckDB, never row by row in Python):

1. customers meeting the conditions (``matched``);
2. minus those without the required consent (or held: a quarantined CRM record of theirs may
   withdraw it, :mod:`segmint.audiences.consent`) and those on a named suppression list;
3. minus those already placed in a higher-priority audience of the same priority group;
4. capped at ``limit.size``, ordered by ``limit.order_by`` (ties: a stable hash);
5. split into ``target`` and ``holdout`` by a stable hash of (audience, customer_id, salt).

``audiences.members``, ``changes``, ``summary`` and ``overlap`` are written in one
transaction that first deletes the as-of date's rows, so a rerun replaces its snapshot.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from segmint.audiences.compile import (
    CUSTOMERS,
    NO_MODEL_YET,
    PROPENSITY,
    SCORED,
    Catalog,
    audience_sql,
    check_names,
    missing_inputs,
    suppression_file_sql,
    unseen_values,
)
from segmint.audiences.consent import consent_holds, held_customers_sql
from segmint.audiences.definitions import (
    Audience,
    Condition,
    Definitions,
    load_definitions,
    sql_literal,
)
from segmint.audiences.erasure import purge_tombstoned
from segmint.audiences.holdout import holdout_bucket_sql
from segmint.audiences.masking import publish_masked_views
from segmint.audiences.tables import ensure_audience_tables
from segmint.config import Settings
from segmint.stages import SegmintError, StageResult
from segmint.warehouse import connect, table_exists, transaction

log = logging.getLogger(__name__)


def build_audiences(settings: Settings, as_of: date) -> StageResult:
    """Build every audience defined under ``settings.audiences`` for ``as_of``."""
    if not settings.audiences.is_dir():
        defs = Definitions(folder=settings.audiences)
        # A relative default (./audiences) is relative to where the command runs: name the
        # folder looked for, and how to point at the real one.
        defs.problems.append(
            f"no audience definitions folder at {settings.audiences.absolute()}; no audience "
            "built (pass --audiences, or set SEGMINT_AUDIENCES or audiences in the settings "
            "file, to the folder of audience definitions: docs/audiences.md)"
        )
    else:
        defs = load_definitions(settings.audiences, strict=False)
    con = connect(settings.warehouse)
    try:
        result = build_with_connection(con, defs, as_of, defined_names(settings))
    finally:
        con.close()
    later_copy, unknown = _later_published_night(settings, as_of)
    if later_copy is not None and any(a.exports for a in defs.audiences.values()):
        copy, later = later_copy
        # A backfill of an old night (segmint run --as-of after later nights ran) wrote
        # output/<old>/audiences: clear-text contact files of an outdated membership (a diff
        # against an even older list) that marketing could upload over the later night's,
        # and logged them in audiences.exports. Publish refuses the night; so do the exports.
        message = (
            f"no export file written for {as_of}: {copy} holds the "
            f"later night {later}, and an old night's lists are not for upload (the "
            f"exports of {later} or a later night are)"
        )
        result.summary += ", exports skipped (a later night is published)"
        result.details["exports"] = []
        result.details["exports_skipped_for"] = str(later)
        result.warnings.append(message)
    elif unknown and any(a.exports for a in defs.audiences.values()):
        # Fail safe: a copy that is there but cannot be read may hold a later night, and
        # then these files would be an old night's lists (below). They were written.
        message = (
            f"no export file written for {as_of}: could not tell whether a later night is "
            f"published ({'; '.join(unknown)}), and an old night's lists are not for upload; "
            f"once the copies open (`segmint publish --as-of` the newest night writes them "
            f"again), run `segmint audience build --as-of {as_of}` to write them"
        )
        result.summary += ", exports skipped (the published night could not be read)"
        result.details["exports"] = []
        result.details["exports_skipped_for"] = "unknown"
        result.warnings.append(message)
    elif any(a.exports for a in defs.audiences.values()):
        from segmint.audiences.export import export_declared

        exports = export_declared(settings, defs, as_of, skip=set(result.details["failed"]))
        result.details["exports"] = [str(e.path) for e in exports]
        result.summary += f", {len(exports)} export file(s)"
        # The build's warnings already say why an audience is empty (its note).
        result.warnings.extend(
            e.warning_text(note=False) for e in exports if e.warning_text(note=False)
        )
        without_email = {e.path.name: e.without_email for e in exports if e.without_email}
        if without_email:  # ESP files: customers left out for want of a usable address
            result.details["exports_without_email"] = without_email
        no_match = {e.path.name: e.without_identifier for e in exports if e.without_identifier}
        if no_match:  # Google, Meta: nothing the platform can match (no e-mail nor phone...)
            result.details["exports_without_identifier"] = no_match
        # Target members the file left out: without the consent it needs now, held, or on a
        # suppression file since the snapshot (audiences.members counts them).
        no_consent = {e.path.name: e.without_consent for e in exports if e.without_consent}
        if no_consent:
            result.details["exports_without_consent"] = no_consent
        shared = {e.path.name: e.shared_address for e in exports if e.shared_address}
        if shared:  # an address also on a record without consent (the person unsubscribed)
            result.details["exports_shared_address"] = shared
    return result


def _later_published_night(
    settings: Settings, as_of: date
) -> tuple[tuple[Path, date] | None, list[str]]:
    """The copy readers have and its night, when that is later than ``as_of`` (a backfill),
    else None; and the copies whose night could not be read
    (:func:`segmint.publish.published_nights`)."""
    from segmint.publish import published_nights

    nights, unknown = published_nights(settings)
    later = max(nights.items(), key=lambda item: item[1], default=None)
    return (later if later is not None and later[1] > as_of else None), unknown


def _empty_decile_warnings(
    con: duckdb.DuckDBPyConnection, defs: Definitions, compiled: dict[str, str], as_of: date
) -> list[str]:
    """A warning for each propensity condition whose decile range holds nobody tonight.

    Customers with equal scores share a decile (docs/propensity.md), so a crowd with one
    score leaves the deciles its block spans empty: ``decile_min: 10`` can match nobody
    although the model scored everyone, and the audience is empty for that reason alone."""
    warnings = []
    sizes: dict[str, dict[int, int]] = {}
    for name in compiled:
        where = defs.audiences[name].where
        for leaf in where.leaves() if where is not None else []:
            bounds = dict(leaf.params)
            if leaf.kind != "propensity" or not {"decile_min", "decile_max"} & set(bounds):
                continue
            model = leaf.names[0]
            if model not in sizes:
                sizes[model] = dict(
                    con.execute(
                        f"select decile, count(*) from {PROPENSITY} where as_of_date = ? "
                        f"and model_name = ? and {SCORED} group by decile order by decile",
                        [as_of, model],
                    ).fetchall()
                )
            low, high = bounds.get("decile_min", 1), bounds.get("decile_max", 10)
            if not sizes[model] or any(low <= d <= high for d in sizes[model]):
                continue
            span = f"decile {low} holds" if low == high else f"deciles {low}-{high} hold"
            held = ", ".join(f"{d}: {n}" for d, n in sizes[model].items())
            warnings.append(
                f"audience {name!r}: {model} {span} nobody on {as_of} (customers per "
                f"decile: {held}): customers with equal scores share a decile, so a block of "
                "them leaves the deciles it spans empty; widen the range or use "
                "score_min/score_max (docs/propensity.md, Deciles and ties)"
            )
    return warnings


def _unmatched_suppression_files(
    con: duckdb.DuckDBPyConnection, defs: Definitions, built: list[str]
) -> list[str]:
    """A warning per suppression file (of a list an audience built tonight uses) none of
    whose ids is a customer of ``marts.customers``.

    A do-not-contact list kept with e-mail addresses, or another system's ids (Shopify's
    numbers for a CRM keyed ``C000123``), under a ``customer_id`` header, suppressed nobody
    in silence, and every customer on it was contacted."""
    used = {s for name in built for s in defs.audiences[name].suppress}
    warnings = []
    for name in sorted(used):
        sup = defs.suppressions[name]
        if sup.customer_ids_file is None:
            continue
        try:
            ids, matched, example = con.execute(
                f"""select count(*), count(*) filter (
                        customer_id in (select customer_id from {CUSTOMERS})
                    ), min(customer_id)
                from ({suppression_file_sql(sup.customer_ids_file)})"""
            ).fetchone()
        except duckdb.Error:  # read by the build just before; gone since: nothing to add
            continue
        if ids and not matched:
            users = ", ".join(sorted(a for a in built if name in defs.audiences[a].suppress))
            warnings.append(
                f"suppression list {name!r} ({sup.customer_ids_file}): none of its {ids} id(s) "
                f"is a customer id of {CUSTOMERS} (for example {example!r}), so it suppresses "
                f"nobody in {users}; its customer_id column must hold the CRM's customer ids"
            )
    return warnings


def _group_switch_warnings(
    con: duckdb.DuckDBPyConnection, built: list[str], as_of: date
) -> list[str]:
    """A warning per audience whose members changed group since its previous snapshot.

    The group depends only on the audience name, the id and the holdout's salt and percent,
    so a customer switches only when those changed: the holdout then holds customers who
    were sent the earlier campaigns, and the target customers who were held out. The
    ``changes`` table records entries and exits only, so this went unsaid."""
    if not built:
        return []
    names = ", ".join(sql_literal(b) for b in built)
    d = sql_literal(as_of)
    rows = con.execute(
        f"""with previous as (
            select audience, max(as_of_date) as as_of_date from audiences.summary
            where as_of_date < {d} and status = 'built' and audience in ({names})
            group by audience
        )
        select p.audience, p.as_of_date,
            count(*) filter (m."group" = 'target' and c."group" = 'holdout'),
            count(*) filter (m."group" = 'holdout' and c."group" = 'target'),
        from previous as p
        inner join audiences.members as m
            on m.audience = p.audience and m.as_of_date = p.as_of_date
        inner join audiences.members as c
            on c.audience = m.audience and c.customer_id = m.customer_id
            and c.as_of_date = {d}
        group by all
        having count(*) filter (m."group" <> c."group") > 0
        order by p.audience"""
    ).fetchall()
    return [
        f"audience {name!r}: {to_holdout} customer(s) moved from target to holdout and "
        f"{to_target} from holdout to target since {previous} (its holdout percent or salt "
        "changed): the holdout now holds customers who were sent earlier campaigns, so a "
        "readout of a campaign from here compares against it; keep percent and salt fixed "
        "while a campaign is measured"
        for name, previous, to_holdout, to_target in rows
    ]


def _unscored_warnings(
    con: duckdb.DuckDBPyConnection, defs: Definitions, compiled: dict[str, str], as_of: date
) -> tuple[dict[str, int], list[str]]:
    """Customers whose score of a model the audiences use is NaN (or infinite) tonight.

    Such a score is no score (:data:`SCORED`): the customer is in no decile, matches no
    propensity condition and comes last in a size cap ordered by it. Before, NaN sorted
    above every number in DuckDB and its stored decile was 10, so it headed every
    "top decile" audience. Counted per model and warned, naming the audiences concerned."""
    users: dict[str, list[str]] = {}
    for name in compiled:
        aud = defs.audiences[name]
        leaves = list(aud.where.leaves()) if aud.where is not None else []
        for s in aud.suppress:
            sup = defs.suppressions[s]
            leaves += list(sup.where.leaves()) if sup.where is not None else []
        models = {leaf.names[0] for leaf in leaves if leaf.kind == "propensity"}
        if aud.order_by and aud.order_by.kind == "propensity":
            models.add(aud.order_by.name)
        for model in models:
            users.setdefault(model, []).append(name)
    counts: dict[str, int] = {}
    warnings = []
    for model, names in sorted(users.items()):
        n = con.execute(
            f"select count(distinct customer_id) from {PROPENSITY} where as_of_date = ? "
            f"and model_name = ? and not {SCORED}",
            [as_of, model],
        ).fetchone()[0]
        if not n:
            continue
        counts[model] = n
        warnings.append(
            f"{n} customer(s) have no usable {model} score on {as_of} (NaN or infinite in "
            f"{PROPENSITY}): they are in no decile and in no audience selecting or ordering "
            f"by it ({', '.join(sorted(names))})"
        )
    return counts, warnings


def _rule_ranked_warnings(
    con: duckdb.DuckDBPyConnection, defs: Definitions, compiled: dict[str, str], as_of: date
) -> list[str]:
    """Audiences bounding a score (``score_min``/``score_max``) of a model whose scores
    tonight are a baseline rule's ranking (no model published yet: ml.propensity): a rank
    is no probability, so the bound matches none of them (``condition_sql``); said, with
    the way that works (deciles), rather than an audience empty in silence."""
    if (
        not table_exists(con, PROPENSITY)
        or not con.execute(
            "select count(*) from information_schema.columns where table_schema = 'ml' "
            "and table_name = 'propensity_scores' and column_name = 'ranked_by'"
        ).fetchone()[0]
    ):
        return []
    users: dict[str, list[str]] = {}
    for name in compiled:
        aud = defs.audiences[name]
        for leaf in aud.where.leaves() if aud.where is not None else []:
            if leaf.kind == "propensity" and any(k.startswith("score_") for k, _ in leaf.params):
                users.setdefault(leaf.names[0], []).append(name)
    warnings = []
    for model, names in sorted(users.items()):
        rule = con.execute(
            f"select any_value(ranked_by) from {PROPENSITY} where as_of_date = ? "
            "and model_name = ? and coalesce(ranked_by, 'model') <> 'model'",
            [as_of, model],
        ).fetchone()[0]
        if rule:
            warnings.append(
                f"no {model} model is published yet: its scores on {as_of} are the ranking "
                f"of the rule {rule}, not probabilities, so score_min/score_max match none "
                f"of them in {', '.join(sorted(set(names)))}; decile_min/decile_max select "
                "by the rule's deciles"
            )
    return warnings


# What each baseline rule ranks by, in words, for the notes of audiences it emptied.
RULE_ORDER = {
    ("baseline_recency", "purchase"): "days since the last order, the most recent buyers first",
    ("baseline_recency", "churn"): "days since the last order or visit, the longest ago first",
    ("baseline_bgnbd", "purchase"): "a BG/NBD model's expected purchases, the most first",
    ("baseline_bgnbd", "churn"): "a BG/NBD model's expected purchases, the fewest first",
}


def _selecting_leaves(cond: Condition) -> list[Condition]:
    """The leaves of a condition that select customers (none under a ``not``: a negated
    decile range excludes them, so it cannot be why the audience is empty)."""
    if cond.kind == "not":
        return []
    if cond.children:
        return [leaf for child in cond.children for leaf in _selecting_leaves(child)]
    return [cond]


def _rule_night_notes(
    con: duckdb.DuckDBPyConnection,
    defs: Definitions,
    compiled: dict[str, str],
    stats: dict[str, dict[str, int]],
    cat: Catalog,
    as_of: date,
) -> dict[str, str]:
    """Why an audience selecting by a model's scores matched nobody tonight, when tonight's
    scores of that model are a baseline rule's ranking (no model published yet).

    ``likely_buyers_lapsed`` (purchase decile 8 or more and no order for 60 days) is empty
    by construction on such a night: the recency rule's top deciles are the recent buyers.
    Marketing got an empty file and the report "built with no members", nothing saying why.
    The note is stored in ``audiences.summary.note``, warned, shown by the report and
    repeated by an export of the snapshot."""
    if not cat.ranked_by:
        return {}
    rules: dict[str, str | None] = {}
    notes = {}
    for name in compiled:
        aud = defs.audiences[name]
        if stats.get(name, {}).get("matched") or aud.where is None:
            continue
        reasons = []
        for leaf in _selecting_leaves(aud.where):
            if leaf.kind != "propensity":
                continue
            model = leaf.names[0]
            if model not in rules:
                rules[model] = con.execute(
                    f"select any_value(ranked_by) from {PROPENSITY} where as_of_date = ? "
                    "and model_name = ? and coalesce(ranked_by, 'model') <> 'model'",
                    [as_of, model],
                ).fetchone()[0]
            rule = rules[model]
            if not rule:
                continue
            bounds = dict(leaf.params)
            ranking = f"tonight's {model} scores are the ranking of the rule {rule}"
            by = RULE_ORDER.get((rule, model))
            if by:
                ranking += f" ({by})"
            if any(k.startswith("score_") for k in bounds):
                reasons.append(
                    f"no {model} model is published, so {ranking}, not probabilities, and "
                    f"its {leaf.path} score_min/score_max bound matches none of them"
                )
                continue
            low, high = bounds.get("decile_min", 1), bounds.get("decile_max", 10)
            # Features of the customers the rule put in the range, when the rule is the
            # recency one: the days since their last order say why "lapsed" excludes them.
            shown = ""
            if cat.features_sql is not None and (rule, model) == ("baseline_recency", "purchase"):
                shown = (
                    con.execute(
                        f"""select
                        ' (recency_days ' || min(f.recency_days) || ' to '
                        || max(f.recency_days) || ')'
                    from {PROPENSITY} as s
                    inner join {cat.features_sql} as f on f.customer_id = s.customer_id
                    where s.as_of_date = ? and s.model_name = ?
                        and s.decile between ? and ? and {SCORED}""",
                        [as_of, model, low, high],
                    ).fetchone()[0]
                    or ""
                )
            held = con.execute(
                f"select count(distinct customer_id) from {PROPENSITY} where as_of_date = ? "
                f"and model_name = ? and decile between ? and ? and {SCORED}",
                [as_of, model, low, high],
            ).fetchone()[0]
            if not held:  # an empty decile range: _empty_decile_warnings says so
                continue
            span = f"decile {low}" if low == high else f"deciles {low}-{high}"
            reasons.append(
                f"no {model} model is published, so {ranking}, and the {held} customer(s) "
                f"of its {span}{shown} meet none of the audience's other conditions"
            )
        if reasons:
            notes[name] = (
                f"audience {name!r} is empty on {as_of}: " + "; ".join(reasons) + ". On a "
                "rule's ranking such an audience can be empty by construction (a condition on "
                "the behaviour the rule ranks by excludes its top deciles); it fills again once "
                "a model is published; until then select on features, or pause the campaign "
                "(docs/audiences.md, Audiences on a rule's ranking)"
            )
    return notes


def defined_names(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Rule segments and propensity models that exist by definition (Catalog.read)."""
    from segmint.transform import PROPENSITY_MODELS, rule_segment_names

    return {"rule_segments": rule_segment_names(settings), "models": PROPENSITY_MODELS}


def build_with_connection(
    con: duckdb.DuckDBPyConnection,
    defs: Definitions,
    as_of: date,
    defined: dict[str, tuple[str, ...]] | None = None,
) -> StageResult:
    ensure_audience_tables(con)
    purged = purge_tombstoned(con)
    if not table_exists(con, CUSTOMERS):
        raise SegmintError(f"{CUSTOMERS} does not exist: run the transform stage first")
    cat = Catalog.read(con, as_of, **(defined or {}))
    check_names(defs, cat, strict=False)
    # A text value no customer ever had (`eq: loyal` for 'Loyal'): an empty (or, with `ne`,
    # a full) audience, said rather than silent.
    unseen = [w for _, w in unseen_values(con, defs, cat)]

    failed: dict[str, str] = {}
    waiting: list[str] = []  # failed only for want of a first published propensity model
    compiled: dict[str, str] = {}
    # Customers whose current consent is unknown (a quarantined CRM record of theirs may be
    # newer than the loaded one): without consent, whatever the loaded record says.
    holds = consent_holds(con)
    con.execute(f"create or replace temp table _aud_held as {held_customers_sql(con)}")
    con.execute(
        "create or replace temp table _aud_candidates (audience varchar, customer_id varchar, "
        "sort_key double, has_consent boolean, is_suppressed boolean)"
    )
    for aud in defs.audiences.values():
        if aud.name in defs.failed:
            failed[aud.name] = f"audience {aud.name!r} is invalid: {defs.failed[aud.name]}"
            continue
        reasons = missing_inputs(aud, defs, cat)
        if reasons:
            if all(r.startswith(NO_MODEL_YET) for r in reasons):
                # A young shop: the score stage ran and said why it has no model yet.
                waiting.append(aud.name)
                failed[aud.name] = f"audience {aud.name!r} ({aud.file}) not built yet: "
            else:
                failed[aud.name] = f"audience {aud.name!r} ({aud.file}) not built: "
            failed[aud.name] += "; ".join(reasons)
            continue
        sql = audience_sql(aud, defs, cat)
        try:
            con.execute(
                f"insert into _aud_candidates select {sql_literal(aud.name)}, customer_id, "
                "try_cast(sort_key as double), has_consent and customer_id not in "
                f"(select customer_id from _aud_held), is_suppressed from ({sql})"
            )
        except duckdb.Error as exc:
            failed[aud.name] = f"audience {aud.name!r} ({aud.file}) not built: {exc}"
            continue
        compiled[aud.name] = sql

    stats = _select_members(con, defs, compiled)
    notes = _rule_night_notes(con, defs, compiled, stats, cat, as_of)
    _assign_holdout(con, defs, compiled)
    for name in compiled:
        stats[name].update(target=0, holdout=0)
    for name, group, n in con.execute(
        'select audience, "group", count(*) from _aud_members group by all'
    ).fetchall():
        stats[name][group] = n
    now = datetime.now(UTC).replace(tzinfo=None)
    d = sql_literal(as_of)
    with transaction(con):
        stale = _stale_later_nights(con, as_of, list(compiled))
        for table in ("members", "changes", "summary", "overlap"):
            con.execute(f"delete from audiences.{table} where as_of_date = {d}")
        con.execute(
            f'insert into audiences.members select audience, {d}, customer_id, "group" '
            "from _aud_members order by audience, customer_id"
        )
        _write_changes(con, as_of, list(compiled))
        changes = {
            (a, c): n
            for a, c, n in con.execute(
                f"select audience, change, count(*) from audiences.changes "
                f"where as_of_date = {d} group by all"
            ).fetchall()
        }
        previous = dict(
            con.execute(
                "select audience, max(as_of_date) from audiences.summary "
                f"where as_of_date < {d} and status = 'built' group by audience"
            ).fetchall()
        )
        rows = []
        for aud in defs.audiences.values():
            grp = defs.group_of(aud.name)
            s = stats.get(aud.name, {})
            built = aud.name in compiled
            rows.append(
                [
                    as_of,
                    aud.name,
                    "built" if built else "failed",
                    failed.get(aud.name),
                    aud.description,
                    aud.consent,
                    grp[0].name if grp else None,
                    grp[1] if grp else None,
                    s.get("matched"),
                    s.get("without_consent"),
                    s.get("suppressed"),
                    s.get("claimed"),
                    s.get("over_limit"),
                    s.get("members"),
                    s.get("target"),
                    s.get("holdout"),
                    aud.holdout_percent,
                    changes.get((aud.name, "entered"), 0) if built else None,
                    changes.get((aud.name, "exited"), 0) if built else None,
                    previous.get(aud.name),
                    str(aud.file),
                    aud.source_sha256,
                    compiled.get(aud.name),
                    now,
                    notes.get(aud.name),
                ]
            )
        for rejected in defs.rejected.values():
            failed[rejected.name] = (
                f"audience {rejected.name!r} ({rejected.file}) is invalid: {rejected.error}"
            )
            con.execute(
                "insert into audiences.summary (as_of_date, audience, status, error, "
                "description, consent, definition_file, definition_sha256, built_at) "
                "values (?, ?, 'failed', ?, ?, ?, ?, ?, ?)",
                [
                    as_of,
                    rejected.name,
                    failed[rejected.name],
                    rejected.description,
                    rejected.consent,
                    str(rejected.file),
                    rejected.source_sha256,
                    now,
                ],
            )
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            con.executemany(f"insert into audiences.summary values ({marks})", rows)
        # A rerun of an earlier night (a backfill) changed the list a later night's changes
        # were computed against: recompute them.
        refreshed = _refresh_later_changes(con, as_of, [a.name for a in defs.audiences.values()])
        con.execute(
            f"""insert into audiences.overlap
            select {d}, a.audience, b.audience, count(*)
            from _aud_members as a
            inner join _aud_members as b
                on a.customer_id = b.customer_id and a.audience <> b.audience
            group by all"""
        )
    views = publish_masked_views(con)
    members = con.execute("select count(*) from _aud_members").fetchone()[0]
    reported = " ".join(failed.values())
    warnings = [p for p in defs.problems if p not in reported] + list(failed.values())
    for group in defs.groups.values():
        missing = [a for a in group.audiences if a in failed and a not in waiting]
        young = [a for a in group.audiences if a in waiting]
        for names, state in (
            (missing, "failed"),
            (young, "not built yet (waiting for a first propensity model)"),
        ):
            if names:
                warnings.append(
                    f"priority group {group.name!r}: {', '.join(names)} {state}, so its "
                    "customers may have landed in a lower-priority audience of the group"
                )
    warnings += defs.warnings
    warnings += unseen
    warnings += _group_switch_warnings(con, list(compiled), as_of)
    warnings += _unmatched_suppression_files(con, defs, list(compiled))
    warnings += _empty_decile_warnings(con, defs, compiled, as_of)
    ties = {}
    for name in compiled:
        cut = stats[name].get("tie_cut")
        if cut is None:
            continue
        value, kept, tied = cut
        aud = defs.audiences[name]
        ob = aud.order_by
        by = f"{ob.name} score" if ob.kind == "propensity" else ob.name
        shown = f"{by} {value:g}" if value is not None else f"no {by}"
        ties[name] = {"value": value, "kept": kept, "tied": tied}
        warnings.append(
            f"audience {name!r}: limit.size {aud.limit} cut a tie: {kept} of the {tied} "
            f"customers with {shown} (the last place's) kept, chosen by a stable hash of "
            "the audience name and customer id, so a rerun keeps the same ones"
        )
    for name, (left, joined, nights) in stale.items():
        shown = ", ".join(str(n) for n in nights[:5])
        if len(nights) > 5:
            shown += f" and {len(nights) - 5} more"
        warnings.append(
            f"audience {name!r}: {as_of} was rebuilt with other members than before "
            f"({left} left, {joined} joined), but the {len(nights)} night(s) built after it "
            f"({shown}) keep the members they were built with (only their changes were "
            "recomputed); if the correction concerns them too (a consent corrected in the "
            f"CRM does), rerun them oldest first: segmint audience build --as-of {nights[0]}"
            + (f" ... --as-of {nights[-1]}" if len(nights) > 1 else "")
        )
    unscored, unscored_warnings = _unscored_warnings(con, defs, compiled, as_of)
    warnings += unscored_warnings
    warnings += _rule_ranked_warnings(con, defs, compiled, as_of)
    warnings += list(notes.values())
    if holds.warning:
        warnings.append(holds.warning)
    if purged:
        warnings.append(f"removed {purged} row(s) of erased customers that had come back")
    summary = f"{len(compiled)} audience(s) built, {members} membership row(s) for {as_of}"
    broken = [a for a in failed if a not in waiting]
    if broken:
        summary += f", {len(broken)} failed ({', '.join(broken)})"
    if waiting:
        summary += f", {len(waiting)} waiting for a first propensity model ({', '.join(waiting)})"
    return StageResult(
        stage="audiences",
        rows_in=int(
            con.execute("select count(distinct customer_id) from _aud_candidates").fetchone()[0]
        ),
        rows_out=int(members),
        summary=summary,
        details={
            "built": list(compiled),
            "failed": failed,
            "waiting_for_model": waiting,
            "sizes": {a: s.get("members") for a, s in stats.items()},
            "masked_views": views,
            "purged_rows": purged,
            "consent_held": holds.customers,
            "unscored": unscored,
            "empty_on_rule_ranking": notes,
            "size_cap_ties": ties,
            "changes_recomputed": refreshed,
            "later_nights_to_rerun": {a: [str(n) for n in v[2]] for a, v in stale.items()},
        },
        warnings=warnings,
    )


def _select_members(
    con: duckdb.DuckDBPyConnection, defs: Definitions, compiled: dict[str, str]
) -> dict[str, dict[str, int]]:
    """Apply consent, suppression, priority groups and size limits; fill ``_aud_selected``."""
    con.execute(
        "create or replace temp table _aud_selected (audience varchar, customer_id varchar)"
    )
    stats: dict[str, dict[str, int]] = {}
    for a, matched, no_consent, suppressed in con.execute(
        "select audience, count(*), count(*) filter (not has_consent), "
        "count(*) filter (has_consent and is_suppressed) from _aud_candidates group by audience"
    ).fetchall():
        stats[a] = {"matched": matched, "without_consent": no_consent, "suppressed": suppressed}

    order: list[tuple[Audience, list[str]]] = []
    grouped = set()
    for group in defs.groups.values():
        higher: list[str] = []
        for name in group.audiences:
            grouped.add(name)
            if name in compiled:
                order.append((defs.audiences[name], list(higher)))
                higher.append(name)
    order.extend((a, []) for n, a in defs.audiences.items() if n not in grouped and n in compiled)

    for aud, higher in order:
        name = sql_literal(aud.name)
        claimed = "false"
        if higher:
            names = ", ".join(sql_literal(h) for h in higher)
            claimed = (
                "customer_id in (select customer_id from _aud_selected "
                f"where audience in ({names}))"
            )
        con.execute(
            f"""create or replace temp table _aud_available as
            select customer_id, sort_key, {claimed} as is_claimed
            from _aud_candidates
            where audience = {name} and has_consent and not is_suppressed"""
        )
        direction = "desc" if (aud.order_by is None or aud.order_by.descending) else "asc"
        limit = f"limit {int(aud.limit)}" if aud.limit else ""
        con.execute(
            f"""insert into _aud_selected
            select {name}, customer_id
            from _aud_available
            where not is_claimed
            order by sort_key {direction} nulls last, sha256({name} || ':' || customer_id)
            {limit}"""
        )
        available, claimed_n = con.execute(
            "select count(*), count(*) filter (is_claimed) from _aud_available"
        ).fetchone()
        selected = con.execute(
            f"select count(*) from _aud_selected where audience = {name}"
        ).fetchone()[0]
        s = stats.setdefault(aud.name, {"matched": 0, "without_consent": 0, "suppressed": 0})
        s["claimed"] = claimed_n
        s["over_limit"] = available - claimed_n - selected
        s["members"] = selected
        if aud.limit and s["over_limit"]:
            s["tie_cut"] = _tie_cut(con, name, "min" if direction == "desc" else "max")
    return stats


def _tie_cut(con: duckdb.DuckDBPyConnection, name: str, last: str) -> tuple | None:
    """(value, kept, tied) when the size cap cut a block of equal ``order_by`` values: the
    last place's value, how many of that value it kept and how many had it. The stable hash
    of audience and id chose the kept ones, so reruns keep the same; None when no tie was
    cut."""
    row = con.execute(
        f"""with selected as (
            select a.sort_key
            from _aud_selected as s
            inner join _aud_available as a on a.customer_id = s.customer_id
            where s.audience = {name}
        ),
        boundary as (
            -- nulls come last: the last place is a null when any member has none
            select case when count(*) > count(sort_key) then null
                else {last}(sort_key) end as value
            from selected
        )
        select
            b.value,
            (select count(*) from selected where sort_key is not distinct from b.value),
            (select count(*) from _aud_available
                where not is_claimed and sort_key is not distinct from b.value)
        from boundary as b"""
    ).fetchone()
    value, kept, tied = row
    return (value, kept, tied) if tied > kept else None


def _assign_holdout(
    con: duckdb.DuckDBPyConnection, defs: Definitions, compiled: dict[str, str]
) -> None:
    settings = [
        f"({sql_literal(a.name)}, {a.holdout_percent!r}, {sql_literal(a.holdout_salt)})"
        for a in defs.audiences.values()
        if a.name in compiled
    ] or ["('', 0.0, '')"]
    bucket = holdout_bucket_sql("s.audience", "s.customer_id", "h.salt")
    con.execute(
        f"""create or replace temp table _aud_members as
        with holdout_settings (audience, percent, salt) as (
            values {", ".join(settings)}
        )
        select
            s.audience,
            s.customer_id,
            case when {bucket} < h.percent * 100 then 'holdout' else 'target' end as "group",
        from _aud_selected as s
        inner join holdout_settings as h on h.audience = s.audience"""
    )


def _stale_later_nights(
    con: duckdb.DuckDBPyConnection, as_of: date, audiences: list[str]
) -> dict[str, tuple[int, int, list[date]]]:
    """Audiences whose snapshot of ``as_of``, built before, gets other members now, while
    nights after it were built against the old state: {audience: (left, joined, [later
    nights])}. Those nights' changes are recomputed (``_refresh_later_changes``) but not their
    members, so the operator must be told which nights to rerun. Reads the old rows: call it
    before they are deleted. Nothing to read on a night without later ones (every night of
    the usual schedule)."""
    if not audiences:
        return {}
    d = sql_literal(as_of)
    names = ", ".join(sql_literal(a) for a in audiences)
    later = dict(
        con.execute(
            "select audience, list(distinct as_of_date order by as_of_date) "
            f"from audiences.summary where as_of_date > {d} and status = 'built' "
            f"and audience in ({names}) group by all"
        ).fetchall()
    )
    rebuilt = [
        a
        for (a,) in con.execute(
            f"select audience from audiences.summary where as_of_date = {d} "
            f"and status = 'built' and audience in ({names})"
        ).fetchall()
        if a in later
    ]
    if not rebuilt:
        return {}
    these = ", ".join(sql_literal(a) for a in rebuilt)
    rows = con.execute(
        f"""with old as (
            select audience, customer_id from audiences.members
            where as_of_date = {d} and audience in ({these})
        ),
        new as (select audience, customer_id from _aud_members where audience in ({these}))
        select coalesce(o.audience, n.audience),
            count(*) filter (where n.customer_id is null),
            count(*) filter (where o.customer_id is null)
        from old as o
        full outer join new as n on o.audience = n.audience and o.customer_id = n.customer_id
        group by all
        having count(*) filter (where n.customer_id is null or o.customer_id is null) > 0"""
    ).fetchall()
    return {a: (int(left), int(joined), later[a]) for a, left, joined in sorted(rows)}


def _refresh_later_changes(
    con: duckdb.DuckDBPyConnection, as_of: date, audiences: list[str]
) -> dict[str, str]:
    """Recompute the changes (and the summary's entered, exited and previous date) of each
    audience's next built snapshot after ``as_of``, against the snapshots as they are now.

    A night rebuilt after later ones (a backfill, a rerun after a consent correction) may
    hold other members than before; the next night's changes still compared with the old
    list, so ``changes`` said a customer never entered an audience they are in, and a
    ``diff`` reader could not reconcile the nights. Returns {audience: date recomputed}."""
    if not audiences:
        return {}
    d = sql_literal(as_of)
    names = ", ".join(sql_literal(a) for a in audiences)
    later: dict[date, list[str]] = {}
    for audience, next_date in con.execute(
        "select audience, min(as_of_date) from audiences.summary "
        f"where as_of_date > {d} and status = 'built' and audience in ({names}) group by all"
    ).fetchall():
        later.setdefault(next_date, []).append(audience)
    for next_date, auds in sorted(later.items()):
        n = sql_literal(next_date)
        these = ", ".join(sql_literal(a) for a in auds)
        con.execute(
            f"delete from audiences.changes where as_of_date = {n} and audience in ({these})"
        )
        _write_changes(con, next_date, auds)
        con.execute(
            f"""update audiences.summary as s set
                entered = (select count(*) from audiences.changes as c where c.as_of_date = {n}
                    and c.audience = s.audience and c.change = 'entered'),
                exited = (select count(*) from audiences.changes as c where c.as_of_date = {n}
                    and c.audience = s.audience and c.change = 'exited'),
                previous_as_of_date = (select max(p.as_of_date) from audiences.summary as p
                    where p.audience = s.audience and p.as_of_date < {n}
                    and p.status = 'built')
            where s.as_of_date = {n} and s.audience in ({these}) and s.status = 'built'"""
        )
    return {a: str(n) for n, auds in later.items() for a in auds}


def _write_changes(con: duckdb.DuckDBPyConnection, as_of: date, built: list[str]) -> None:
    if not built:
        return
    d = sql_literal(as_of)
    names = ", ".join(sql_literal(b) for b in built)
    con.execute(
        f"""insert into audiences.changes
        with previous_dates as (
            select audience, max(as_of_date) as previous_as_of_date
            from audiences.summary
            where as_of_date < {d} and status = 'built' and audience in ({names})
            group by audience
        ),
        current_members as (
            select audience, customer_id, "group"
            from audiences.members
            where as_of_date = {d} and audience in ({names})
        ),
        previous_members as (
            select m.audience, m.customer_id, m."group", m.as_of_date
            from audiences.members as m
            inner join previous_dates as p
                on m.audience = p.audience and m.as_of_date = p.previous_as_of_date
        )
        select c.audience, {d}, c.customer_id, 'entered', c."group", p.previous_as_of_date
        from current_members as c
        left join previous_dates as p on p.audience = c.audience
        where not exists (
            select 1 from previous_members as pm
            where pm.audience = c.audience and pm.customer_id = c.customer_id
        )
        union all
        select pm.audience, {d}, pm.customer_id, 'exited', pm."group", pm.as_of_date
        from previous_members as pm
        where not exists (
            select 1 from current_members as c
            where c.audience = pm.audience and c.customer_id = pm.customer_id
        )"""
    )
