"""Check definitions against the warehouse and compile them to SQL.

The :class:`Catalog` says which features, rule segments, ML segments and propensity models
exist (an unknown name is an error, not an empty audience) and which inputs are missing for
the as-of date (the audiences needing them fail, named; the others still build). Compiled
SQL is self-contained (literals are rendered from validated values) so the exact query of
every snapshot can be stored in ``audiences.summary``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from segmint.audiences.definitions import (
    Audience,
    Condition,
    DefinitionError,
    Definitions,
    OrderBy,
    RejectedAudience,
    Suppression,
    ids_file_sql,
    sql_literal,
)
from segmint.ingest.contract import cast_sql, id_clean_sql
from segmint.warehouse import table_exists

FEATURES = "marts.customer_features"
FEATURE_HISTORY = "marts.customer_feature_history"
RULE_SEGMENTS = "marts.customer_rule_segments"
ML_SEGMENTS = "ml.customer_segments"
PROPENSITY = "ml.propensity_scores"
CUSTOMERS = "marts.customers"
MODEL_RUNS = "ml.model_runs"
# A row of ml.propensity_scores that scores its customer: a NaN (or infinite) score is none.
SCORED = "isfinite(score)"
# The reason given when a propensity model was never published and the score stage said why
# (a young or tiny shop): the expected state until it has the history, not a fault. The
# report lists such audiences as waiting, not as failed (docs/audiences.md).
NO_MODEL_YET = "no published propensity model yet"
WAITING = f"not built yet: {NO_MODEL_YET}"  # how such an audience's message reads

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_NOT_FEATURES = ("customer_id", "as_of_date")


@dataclass
class Catalog:
    """What the warehouse holds for one as-of date."""

    as_of: date
    feature_types: dict[str, str] = field(default_factory=dict)
    features_sql: str | None = None  # relation with the features of as_of, or None
    features_missing: str = ""
    rule_segments: set[str] | None = None
    rule_segments_today: bool = False
    ml_segments: set[str] | None = None
    ml_segments_today: bool = False
    models: set[str] | None = None
    models_today: set[str] = field(default_factory=set)
    # Whether the table holds any row at all (its writer ever published).
    rule_segments_written: bool = False
    models_written: bool = False
    # Models that have scores on some as-of date, and the score stage's message of the as-of
    # date for each model it ran (the newest run of the date).
    models_ever_scored: set[str] = field(default_factory=set)
    model_messages: dict[str, str] = field(default_factory=dict)
    # Whether ml.propensity_scores says which source ranked each row (a model or, while
    # none is published, a baseline rule whose score is a rank, not a probability).
    ranked_by: bool = False

    @classmethod
    def read(
        cls,
        con: duckdb.DuckDBPyConnection,
        as_of: date,
        rule_segments: tuple[str, ...] = (),
        models: tuple[str, ...] = (),
    ) -> Catalog:
        """``rule_segments`` and ``models``: the names defined (dbt_project.yml, the
        propensity stage), known even while no row carries them: a segment without members
        tonight, or a model whose scores were withheld, is no unknown name."""
        cat = cls(as_of=as_of)
        d = sql_literal(as_of)
        for table in (FEATURES, FEATURE_HISTORY):
            if not table_exists(con, table):
                continue
            schema, name = table.split(".")
            cols = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            if not cat.feature_types:
                cat.feature_types = {c: t for c, t in cols if c not in _NOT_FEATURES}
            rows = con.execute(f"select count(*) from {table} where as_of_date = {d}").fetchone()
            if rows[0]:
                cat.features_sql = f"(select * from {table} where as_of_date = {d})"
                break
        if cat.features_sql is None:
            cat.features_missing = (
                f"{FEATURES} has no rows for as_of_date {as_of} (nor {FEATURE_HISTORY})"
                if cat.feature_types
                else f"{FEATURES} does not exist (did the transform stage run?)"
            )
        if table_exists(con, RULE_SEGMENTS):
            cat.rule_segments = _distinct(con, RULE_SEGMENTS, "segment")
            cat.rule_segments_today = _has_rows(con, RULE_SEGMENTS, d)
            cat.rule_segments_written = cat.rule_segments is not None
        if rule_segments:
            cat.rule_segments = (cat.rule_segments or set()) | set(rule_segments)
        if table_exists(con, ML_SEGMENTS):
            cat.ml_segments = _distinct(con, ML_SEGMENTS, "segment_name")
            cat.ml_segments_today = _has_rows(con, ML_SEGMENTS, d)
        if table_exists(con, PROPENSITY):
            cat.ranked_by = bool(
                con.execute(
                    "select count(*) from information_schema.columns where table_schema = 'ml' "
                    "and table_name = 'propensity_scores' and column_name = 'ranked_by'"
                ).fetchone()[0]
            )
            cat.models = _distinct(con, PROPENSITY, "model_name")
            cat.models_written = cat.models is not None
            cat.models_ever_scored = set(cat.models or ())
        if table_exists(con, MODEL_RUNS):
            cat.model_messages = {
                name: message
                for name, message in con.execute(
                    f"select model_name, arg_max(message, created_at) from {MODEL_RUNS} "
                    f"where as_of_date = {d} and message is not null group by model_name"
                ).fetchall()
            }
        if models:
            cat.models = (cat.models or set()) | set(models)
        if table_exists(con, PROPENSITY):
            cat.models_today = {
                r[0]
                for r in con.execute(
                    f"select distinct model_name from {PROPENSITY} where as_of_date = {d}"
                ).fetchall()
            }
        return cat


def _distinct(con: duckdb.DuckDBPyConnection, table: str, column: str) -> set[str] | None:
    """Names ever present; None for an empty table (its writer never published: the
    audiences needing it fail as missing inputs, not as unknown names)."""
    rows = con.execute(f"select distinct {column} from {table} where {column} is not null")
    return {r[0] for r in rows.fetchall()} or None


def _has_rows(con: duckdb.DuckDBPyConnection, table: str, d: str) -> bool:
    return con.execute(f"select count(*) from {table} where as_of_date = {d}").fetchone()[0] > 0


def _unknown(kind: str, name: str, known: set[str] | dict) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(sorted(known)) or "none"
    if len(listed) > 400:
        listed = listed[:400] + "..."
    return f"unknown {kind} {name!r}{hint} (known: {listed})"


# --- checking names --------------------------------------------------------------------


def check_names(defs: Definitions, cat: Catalog, strict: bool = True) -> list[str]:
    """Find unknown names and values of the wrong type.

    Names are checked against every as-of date in the tables, so a segment that is empty
    tonight is not an error; a missing table is not checked here (see :func:`missing_inputs`).
    ``strict``: raise :class:`DefinitionError` listing them all. Lenient: mark the audiences
    concerned (directly or through a suppression list) in ``defs.failed`` and return them.
    """
    problems: list[str] = []
    # Invalid audience files too: their unknown names are listed with their other faults.
    owners: list[Audience | Suppression | RejectedAudience] = [
        *defs.audiences.values(),
        *defs.suppressions.values(),
        *defs.rejected.values(),
    ]
    for owner in owners:
        leaves = owner.where.leaves() if owner.where else []
        for leaf in leaves:
            msg = _check_leaf(leaf, cat)
            if msg:
                _owner_problem(defs, owner, f"{owner.where_line(leaf.path)}: {leaf.path}: {msg}")
                problems.append(f"{owner.where_line(leaf.path)}: {leaf.path}: {msg}")
        if isinstance(owner, Audience) and owner.order_by:
            ob = owner.order_by
            path = f"limit.order_by.{ob.kind}"
            msg = _check_order_by(ob, cat)
            if msg:
                _owner_problem(defs, owner, f"{owner.where_line(path)}: {path}: {msg}")
                problems.append(f"{owner.where_line(path)}: {path}: {msg}")
    if problems and strict:
        raise DefinitionError(problems)
    return problems


def _owner_problem(
    defs: Definitions, owner: Audience | Suppression | RejectedAudience, msg: str
) -> None:
    if isinstance(owner, Audience):
        defs.fail(owner.name, msg)
        return
    if isinstance(owner, RejectedAudience):  # failed already, by its file's faults
        return
    for aud in defs.audiences.values():
        if owner.name in aud.suppress:
            defs.fail(aud.name, f"suppression list {owner.name!r}: {msg}")


def _check_leaf(leaf: Condition, cat: Catalog) -> str:
    if leaf.kind == "feature":
        if not cat.feature_types:
            return ""
        name = leaf.names[0]
        if name not in cat.feature_types:
            return _unknown("feature", name, cat.feature_types)
        return _check_value(name, cat.feature_types[name], leaf.op, leaf.value)
    known = {
        "rule_segment": cat.rule_segments,
        "ml_segment": cat.ml_segments,
        "propensity": cat.models,
    }[leaf.kind]
    if known is None:
        return ""
    label = {"rule_segment": "rule segment", "ml_segment": "ML segment", "propensity": "model"}
    for name in leaf.names:
        if name not in known:
            return _unknown(label[leaf.kind], name, known)
    return ""


def _check_order_by(ob: OrderBy, cat: Catalog) -> str:
    if ob.kind == "feature" and cat.feature_types and ob.name not in cat.feature_types:
        return _unknown("feature", ob.name, cat.feature_types)
    if ob.kind == "feature" and cat.feature_types:
        dtype = cat.feature_types[ob.name]
        if dtype.split("(")[0].upper() not in _NUMERIC:
            return f"order_by needs a numeric feature; {ob.name!r} is {dtype}"
    if ob.kind == "propensity" and cat.models is not None and ob.name not in cat.models:
        return _unknown("model", ob.name, cat.models)
    return ""


def _check_value(name: str, dtype: str, op: str, value: object) -> str:
    if op == "is_null":
        return ""
    values = value if isinstance(value, tuple) else (value,)
    base = dtype.split("(")[0].upper()
    if base in _NUMERIC:
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)]
        if bad:
            return f"feature {name!r} is numeric ({dtype}); {op} needs numbers, got {bad[0]!r}"
    elif base == "BOOLEAN":
        if op not in ("eq", "ne"):
            return f"feature {name!r} is true/false; use eq, ne or is_null, not {op}"
        if not all(isinstance(v, bool) for v in values):
            return f"feature {name!r} is true/false; got {value!r}"
    elif base in ("VARCHAR", "TEXT"):
        if not all(isinstance(v, str) for v in values):
            return f"feature {name!r} is text; got {value!r} (quote it in YAML)"
    elif base in ("DATE", "TIMESTAMP") and not all(isinstance(v, date) for v in values):
        return f"feature {name!r} is a {dtype.lower()}; write the value as YYYY-MM-DD"
    return ""


def unseen_values(
    con: duckdb.DuckDBPyConnection, defs: Definitions, cat: Catalog
) -> list[tuple[str, str]]:
    """(audience or suppression name, warning) for each text value of an ``eq``, ``ne`` or
    ``in`` comparison that no customer has on any as-of date.

    ``rfm_segment: {eq: loyal}`` (the value is ``Loyal``) built an empty audience, and
    ``ne: loyal`` one of everybody, in silence. A value may be legitimately new (a loyalty
    tier launched next month), so this is a warning, not an error; it names the closest
    value the column holds (same letters in another case first)."""
    tables = [t for t in (FEATURES, FEATURE_HISTORY) if table_exists(con, t)]
    if not tables or not cat.feature_types:
        return []
    owners: list[Audience | Suppression] = [*defs.audiences.values(), *defs.suppressions.values()]
    found: list[tuple[str, str]] = []
    known: dict[str, list[str]] = {}
    for owner in owners:
        for leaf in owner.where.leaves() if owner.where else []:
            if leaf.kind != "feature" or leaf.op not in ("eq", "ne", "in"):
                continue
            column = leaf.names[0]
            dtype = cat.feature_types.get(column, "")
            if dtype.split("(")[0].upper() not in ("VARCHAR", "TEXT"):
                continue
            if column not in known:
                union = " union ".join(
                    f'select distinct "{column}" as v from {t} where "{column}" is not null'
                    for t in tables
                    if column in _columns(con, t)
                )
                known[column] = [r[0] for r in con.execute(union).fetchall()] if union else []
            values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
            for value in values:
                if not isinstance(value, str) or not known[column] or value in known[column]:
                    continue  # not text: check_names says so
                path = f"{leaf.path.removesuffix('.feature')}.{leaf.op}"
                folded = {k.casefold(): k for k in known[column]}
                close = [folded[k] for k in difflib.get_close_matches(value.casefold(), folded, 1)]
                hint = f"; did you mean {close[0]!r}?" if close else ""
                effect = "matches everybody" if leaf.op == "ne" else "matches nobody"
                found.append(
                    (
                        owner.name,
                        f"{owner.where_line(path)}: {path}: no customer has {column} {value!r} "
                        f"on any as-of date, so this comparison {effect}{hint} (values are "
                        "compared exactly, case included)",
                    )
                )
    return found


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".")
    return {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }


# --- what is missing for the as-of date -------------------------------------------------


def missing_inputs(aud: Audience, defs: Definitions, cat: Catalog) -> list[str]:
    """Reasons why ``aud`` cannot be built tonight (a missing table or as-of date)."""
    leaves = list(aud.where.leaves())
    for s in aud.suppress:
        sup = defs.suppressions[s]
        if sup.where:
            leaves.extend(sup.where.leaves())
    kinds = {leaf.kind for leaf in leaves}
    models = {leaf.names[0] for leaf in leaves if leaf.kind == "propensity"}
    if aud.order_by:
        kinds.add(aud.order_by.kind)
        if aud.order_by.kind == "propensity":
            models.add(aud.order_by.name)
    reasons = []
    if "feature" in kinds and cat.features_sql is None:
        reasons.append(cat.features_missing)
    if "rule_segment" in kinds:
        if not cat.rule_segments_written:
            reasons.append(
                f"{RULE_SEGMENTS} does not exist or is empty (did the transform stage run?)"
            )
        elif not cat.rule_segments_today:
            reasons.append(f"{RULE_SEGMENTS} has no rows for as_of_date {cat.as_of}")
    if "ml_segment" in kinds:
        if cat.ml_segments is None:
            reasons.append(
                f"{ML_SEGMENTS} does not exist or is empty (did the segment stage publish?)"
            )
        elif not cat.ml_segments_today:
            reasons.append(f"{ML_SEGMENTS} has no rows for as_of_date {cat.as_of}")
    for m in sorted(models - cat.models_today):
        said = cat.model_messages.get(m)
        if said and m not in cat.models_ever_scored:
            # The score stage ran tonight and has never published this model: its reason.
            said = said if said.startswith(f"{m}:") else f"{m}: {said}"
            reasons.append(f"{NO_MODEL_YET}: {said}")
        elif said:
            reasons.append(
                f"{PROPENSITY} has no scores of model {m!r} for as_of_date {cat.as_of}; "
                f"the score stage said: {said}"
            )
        elif not cat.models_written:
            reasons.append(
                f"{PROPENSITY} does not exist or is empty (did the score stage publish?)"
            )
        else:
            reasons.append(
                f"{PROPENSITY} has no scores of model {m!r} for as_of_date {cat.as_of} "
                "(did the score stage publish it?)"
            )
    return list(dict.fromkeys(reasons))


# --- SQL -------------------------------------------------------------------------------


def condition_sql(cond: Condition, cat: Catalog) -> str:
    """A boolean SQL expression over ``c`` (marts.customers) and ``f`` (features)."""
    if cond.kind == "all":
        return "(" + " and ".join(condition_sql(c, cat) for c in cond.children) + ")"
    if cond.kind == "any":
        return "(" + " or ".join(condition_sql(c, cat) for c in cond.children) + ")"
    if cond.kind == "not":
        return f"(not {condition_sql(cond.children[0], cat)})"
    d = sql_literal(cat.as_of)
    names = ", ".join(sql_literal(n) for n in cond.names)
    if cond.kind == "feature":
        col = f'f."{cond.names[0]}"'
        op, v = cond.op, cond.value
        if op == "is_null":
            return f"({col} is null)" if v else f"({col} is not null)"
        if op == "in":
            expr = f"{col} in ({', '.join(sql_literal(x) for x in v)})"
        elif op == "between":
            expr = f"{col} between {sql_literal(v[0])} and {sql_literal(v[1])}"
        else:
            sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "ne": "<>"}[op]
            expr = f"{col} {sym} {sql_literal(v)}"
        # A missing value never matches a comparison, so `not` of it does match.
        return f"coalesce({expr}, false)"
    if cond.kind == "rule_segment":
        return (
            f"c.customer_id in (select customer_id from {RULE_SEGMENTS} "
            f"where as_of_date = {d} and segment in ({names}) and customer_id is not null)"
        )
    if cond.kind == "ml_segment":
        return (
            f"c.customer_id in (select customer_id from {ML_SEGMENTS} "
            f"where as_of_date = {d} and segment_name in ({names}) and customer_id is not null)"
        )
    if cond.kind == "propensity":
        ops = {
            "decile_min": "decile >=",
            "decile_max": "decile <=",
            "score_min": "score >=",
            "score_max": "score <=",
        }
        bounds = "".join(f" and {ops[k]} {sql_literal(v)}" for k, v in cond.params)
        if cat.ranked_by and any(k.startswith("score_") for k, _ in cond.params):
            # A score bound is a probability: a rule's ranking (no model published yet)
            # holds none, its score is the share of customers ranked below.
            bounds += " and coalesce(ranked_by, 'model') = 'model'"
        # A NaN score is no score: DuckDB sorts NaN above every number (score_min matched
        # it) and the stored decile of one is 10; such a customer is in no decile.
        return (
            f"c.customer_id in (select customer_id from {PROPENSITY} "
            f"where as_of_date = {d} and model_name = {names}{bounds} "
            f"and {SCORED} and customer_id is not null)"
        )
    raise ValueError(f"unknown condition kind {cond.kind!r}")


def _uses_features(cond: Condition | None) -> bool:
    return cond is not None and any(leaf.kind == "feature" for leaf in cond.leaves())


def suppression_file_sql(path: Path) -> str:
    """A query returning the ``customer_id`` of every id in a suppression list's CSV file."""
    # Each id is read as the ingest reads a customer_id (id_clean_sql, cast_sql): a list typed
    # or pasted by customer service is often not trimmed ("C000123 ", a BOM before the first
    # id), and one kept from Shopify's customer export writes its numbers with Excel's leading
    # apostrophe ('7210448301122); an id that does not match the stored one suppresses nobody.
    id_ = cast_sql("id", id_clean_sql("ids.customer_id"))
    return (
        f"select distinct {id_} as customer_id "
        f"from {ids_file_sql(path)} as ids "
        f"where {id_} is not null"
    )


def suppression_sql(sup: Suppression, cat: Catalog) -> str:
    """A query returning the ``customer_id`` of everyone on the suppression list."""
    if sup.customer_ids_file is not None:
        return suppression_file_sql(sup.customer_ids_file)
    join = (
        f"\n    left join {cat.features_sql} as f on f.customer_id = c.customer_id"
        if _uses_features(sup.where)
        else ""
    )
    return (
        f"select c.customer_id\n    from {CUSTOMERS} as c{join}\n"
        f"    where {condition_sql(sup.where, cat)}"
    )


def audience_sql(aud: Audience, defs: Definitions, cat: Catalog) -> str:
    """Everyone matching the audience's condition, with consent and suppression flags.

    Columns: ``customer_id, sort_key, has_consent, is_suppressed``. Consent and suppression
    are applied by the builder so that their effect can be counted in the summary.
    """
    d = sql_literal(cat.as_of)
    joins = []
    if _uses_features(aud.where) or (aud.order_by and aud.order_by.kind == "feature"):
        joins.append(f"left join {cat.features_sql} as f on f.customer_id = c.customer_id")
    sort_key = "null"
    if aud.order_by and aud.order_by.kind == "feature":
        sort_key = f'f."{aud.order_by.name}"'
    elif aud.order_by:
        joins.append(
            f"left join (select customer_id, max(score) as score from {PROPENSITY} "
            f"where as_of_date = {d} and model_name = {sql_literal(aud.order_by.name)} "
            f"and {SCORED} group by customer_id) as o on o.customer_id = c.customer_id"
        )
        sort_key = "o.score"
    suppressed = "false"
    if aud.suppress:
        subqueries = "\n        union\n        ".join(
            f"({suppression_sql(defs.suppressions[s], cat)})" for s in aud.suppress
        )
        suppressed = f"c.customer_id in (\n        {subqueries}\n    )"
    join_sql = "".join(f"\n{j}" for j in joins)
    return f"""select
    c.customer_id,
    {sort_key} as sort_key,
    coalesce(c.{aud.consent}_opt_in, false) as has_consent,
    {suppressed} as is_suppressed,
from {CUSTOMERS} as c{join_sql}
where c.customer_id is not null
    and {condition_sql(aud.where, cat)}"""
