"""The CRM export: a full snapshot on the first day, then daily upsert files.

Each record is the full current state of one customer (an upsert replaces the customer's
record). Values are as messy as real CRM exports: phone numbers in national and international
spellings, a few capitalised e-mails, blank consent cells (= no consent), accents in names.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from segmint.generate import params as P
from segmint.generate.simulate import US_PER_DAY, US_PER_S
from segmint.generate.world import World
from segmint.outputs import written_atomically

CRM_COLUMNS = (
    "customer_id",
    "updated_at",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "country",
    "city",
    "postal_code",
    "signup_date",
    "loyalty_tier",
    "email_opt_in",
    "ads_opt_in",
)
EXTRA_COLUMN = "source_system"  # only in upsert files: an unknown column, kept but ignored


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalnum())


@dataclass
class Crm:
    tables: dict[int, pa.Table]  # history day index -> the records of that day's file
    duplicates: pa.Table  # customer_id, day, line, duplicate_line, email, duplicate_email
    final_tier: np.ndarray  # int8, per customer, -1 none
    email_consent: np.ndarray  # bool, per customer, latest state


def build_crm(
    world: World,
    rng: np.random.Generator,
    con,
    start: date,
    days: int,
    day0_us: int,
    customer_code: np.ndarray,
    signup_us: np.ndarray,
    dirt_rate: float,
) -> Crm:
    n = world.n_customers
    t = world.agent_type[:n]
    rel0 = -(days - 1)

    # Static person attributes.
    first = rng.integers(0, len(P.FIRST_NAMES), n)
    last = rng.integers(0, len(P.LAST_NAMES), n)
    domain = rng.integers(0, len(P.EMAIL_DOMAINS), n)
    pattern = rng.choice(3, n, p=[0.55, 0.25, 0.20])
    capital = rng.random(n) < 0.04
    phone_fmt = rng.choice(6, n, p=[0.35, 0.2, 0.15, 0.12, 0.1, 0.08])
    age = np.clip(rng.normal(np.where(t == P.NEW, 31, np.where(t == P.LOYAL, 44, 38)), 12), 18, 85)
    birth_days = (age * 365.25).astype(np.int64) + rng.integers(0, 365, n)
    no_birth = rng.random(n) < 0.1
    gender = rng.choice(len(P.GENDERS), n, p=P.GENDER_P / P.GENDER_P.sum())
    city = rng.integers(0, 1000, n)
    cum = np.cumsum(P.LOYALTY_P, axis=1)
    tier = (rng.random(n)[:, None] > cum[t]).sum(axis=1) - 1  # -1 = no tier
    email_opt_in = world.email_opt_in[:n].copy()
    blank_email_consent = ~email_opt_in & (rng.random(n) < 0.3)
    r1, r2, r3 = (rng.integers(0, 1 << 30, n) for _ in range(3))

    # Record versions: snapshot, sign-ups, unsubscribes, other changes.
    signup_rel = world.signup_rel[:n].astype(np.int64)
    in_snapshot = signup_rel <= rel0
    snap_signup_us = (
        day0_us + (signup_rel - rel0) * US_PER_DAY + (rng.random(n) * US_PER_DAY).astype(np.int64)
    )
    snap_us = snap_signup_us + (rng.random(n) * (day0_us - snap_signup_us)).astype(np.int64)
    new_day = signup_rel - rel0
    new_us = np.where(signup_us >= 0, signup_us + 90 * US_PER_S, day0_us + new_day * US_PER_DAY)

    unsub = np.isfinite(world.unsubscribe_rel[:n])
    unsub_day = np.where(unsub, world.unsubscribe_rel[:n] - rel0, -1).astype(np.int64)
    unsub = unsub & (unsub_day >= 1) & (unsub_day > np.maximum(new_day, 0))
    unsub_us = day0_us + unsub_day * US_PER_DAY + (rng.random(n) * US_PER_DAY).astype(np.int64)

    change = ~unsub & (rng.random(n) < P.P_CRM_CHANGE_PER_DAY * days)
    change_day = np.maximum(new_day, 0) + 1 + (rng.random(n) * days).astype(np.int64)
    change = change & (change_day <= days - 1)
    change_us = day0_us + change_day * US_PER_DAY + (rng.random(n) * US_PER_DAY).astype(np.int64)
    change_tier = np.minimum(tier + 1, len(P.LOYALTY_TIERS) - 1)

    first_rows = np.flatnonzero(in_snapshot | (new_day <= days - 1))
    first_day = np.where(in_snapshot, 0, new_day)[first_rows]
    first_us = np.where(in_snapshot, snap_us, new_us)[first_rows]
    cust = np.concatenate([first_rows, np.flatnonzero(unsub), np.flatnonzero(change)])
    day = np.concatenate([first_day, unsub_day[unsub], change_day[change]])
    upd = np.concatenate([first_us, unsub_us[unsub], change_us[change]])
    kind = np.concatenate(
        [np.zeros(len(first_rows)), np.ones(unsub.sum()), np.full(change.sum(), 2)]
    ).astype(np.int8)
    order = np.lexsort((upd, day))
    cust, day, upd, kind = cust[order], day[order], upd[order], kind[order]

    # Dirt: the same record twice in the same file, the e-mail in a different case/spacing.
    k = 0 if dirt_rate <= 0 else max(1, round(dirt_rate * len(cust)))
    dup_pos = np.sort(rng.choice(len(cust), size=min(k, len(cust)), replace=False))
    variant = rng.integers(0, 4, len(dup_pos))
    is_dup = np.concatenate([np.zeros(len(cust), dtype=bool), np.ones(len(dup_pos), dtype=bool)])
    row_variant = np.concatenate([np.full(len(cust), -1), variant])
    src = np.concatenate([np.arange(len(cust)), dup_pos])
    # A duplicate follows its original, or comes at the end of that day's file.
    at_end = rng.random(len(dup_pos)) < 0.5
    place = np.concatenate(
        [np.arange(len(cust)) * 2.0, np.where(at_end, 1e15 + dup_pos, dup_pos * 2.0 + 1)]
    )
    rows = np.lexsort((place, day[src]))
    src, is_dup, row_variant = src[rows], is_dup[rows], row_variant[rows]
    c = cust[src]
    frame = pa.table(
        {
            "day": day[src],
            "code": customer_code[c],
            "updated_us": upd[src],
            "kind": kind[src],
            "is_dup": is_dup,
            "variant": row_variant,
            "first": first[c],
            "last": last[c],
            "domain": domain[c],
            "pattern": pattern[c],
            "capital": capital[c],
            "phone_fmt": phone_fmt[c],
            "birth_days": np.where(no_birth[c], -1, birth_days[c]),
            "gender": gender[c],
            "country": world.country[c].astype(np.int64),
            "city": city[c],
            "signup_rel": signup_rel[c],
            "tier": np.where(kind[src] == 2, change_tier[c], tier[c]),
            "email_opt_in": np.where(
                kind[src] == 1, 0, np.where(blank_email_consent[c], -1, email_opt_in[c])
            ),
            "ads_opt_in": world.ads_opt_in[c].astype(np.int64),
            "r1": r1[c],
            "r2": r2[c],
            "r3": r3[c],
        }
    )
    first_ascii = [_ascii(x) for x in P.FIRST_NAMES]
    last_ascii = [_ascii(x) for x in P.LAST_NAMES]
    con.execute("create or replace temp macro letter(x) as chr((65 + x % 26)::integer)")
    con.register("crm_frame", frame)
    table = con.sql(
        _CRM_SQL,
        params={
            "first_names": list(P.FIRST_NAMES),
            "last_names": list(P.LAST_NAMES),
            "first_ascii": first_ascii,
            "last_ascii": last_ascii,
            "domains": list(P.EMAIL_DOMAINS),
            "countries": [c[0] for c in P.COUNTRIES],
            "phone_cc": [c[4] for c in P.COUNTRIES],
            "cities": [list(c[3]) for c in P.COUNTRIES],
            "genders": list(P.GENDERS),
            "tiers": list(P.LOYALTY_TIERS),
            "end_date": date.fromordinal(start.toordinal() + days - 1),
        },
    ).to_arrow_table()
    con.unregister("crm_frame")

    day_col = frame["day"].to_numpy()
    bounds = np.flatnonzero(np.diff(day_col)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(day_col)]])
    tables = {int(day_col[s]): table.slice(s, e - s) for s, e in zip(starts, ends, strict=True)}

    pos = np.arange(len(day_col))
    line = pos - starts[np.searchsorted(starts, pos, "right") - 1] + 1
    dup_rows = np.flatnonzero(is_dup)
    # the original of each duplicate: the non-duplicate row with the same source record
    orig_of_src = np.full(len(cust), -1)
    orig_rows = np.flatnonzero(~is_dup)
    orig_of_src[src[orig_rows]] = orig_rows
    orig = orig_of_src[src[dup_rows]]
    duplicates = pa.table(
        {
            "customer_id": table["customer_id"].take(pa.array(dup_rows)),
            "day": day_col[dup_rows],
            "line": line[orig],
            "duplicate_line": line[dup_rows],
            "email": table["email"].take(pa.array(orig)),
            "duplicate_email": table["email"].take(pa.array(dup_rows)),
        }
    )
    final_tier = np.where(change, change_tier, tier).astype(np.int8)
    return Crm(tables, duplicates, final_tier, email_opt_in & ~unsub)


_CRM_SQL = r"""
with base as (
    select
        *,
        'C' || code::varchar as customer_id,
        $countries[country + 1] as cc,
        $phone_cc[country + 1] as dial
    from crm_frame
),

shaped as (
    select
        *,
        lower(case pattern
            when 0 then $first_ascii[first + 1] || '.' || $last_ascii[last + 1]
            when 1 then $first_ascii[first + 1] || '_' || $last_ascii[last + 1]
            else left($first_ascii[first + 1], 1) || $last_ascii[last + 1]
        end) || (code % 100000)::varchar || '@' || $domains[domain + 1] as email_raw,
        case when cc = 'US' or cc = 'CA'
            then (201 + r1 % 788)::varchar || lpad((200 + r2 % 800)::varchar, 3, '0')
                || lpad((r3 % 10000)::varchar, 4, '0')
            else (100000000 + r1 % 900000000)::varchar
        end as national
    from base
)

select
    customer_id,
    strftime(make_timestamp(updated_us), '%Y-%m-%dT%H:%M:%SZ') as updated_at,
    case
        when variant = 0 then upper(email_cased) || ' '
        when variant = 1 then '  ' || email_cased
        when variant = 2 then upper(left(email_cased, 1)) || substr(email_cased, 2) || '  '
        when variant = 3 then split_part(email_cased, '@', 1) || '@'
            || upper(split_part(email_cased, '@', 2))
        else email_cased
    end as email,
    case
        when phone_fmt = 5 then null
        when dial = '1' then case phone_fmt
            when 0 then '+1' || national
            when 1 then '(' || left(national, 3) || ') ' || substr(national, 4, 3) || '-'
                || right(national, 4)
            when 2 then left(national, 3) || '.' || substr(national, 4, 3) || '.'
                || right(national, 4)
            when 3 then '+1 ' || left(national, 3) || ' ' || substr(national, 4, 3) || ' '
                || right(national, 4)
            else '1-' || left(national, 3) || '-' || substr(national, 4, 3) || '-'
                || right(national, 4)
        end
        else case phone_fmt
            when 0 then '+' || dial || national
            when 1 then '+' || dial || ' ' || left(national, 3) || ' ' || substr(national, 4)
            when 2 then '0' || national
            when 3 then '00' || dial || national
            else '+' || dial || ' (0) ' || national
        end
    end as phone,
    $first_names[first + 1] as first_name,
    $last_names[last + 1] as last_name,
    case when birth_days >= 0
        then strftime($end_date::date - birth_days::integer, '%Y-%m-%d')
    end as birth_date,
    nullif($genders[gender + 1], '') as gender,
    cc as country,
    $cities[country + 1][city % len($cities[country + 1]) + 1] as city,
    case cc
        when 'US' then lpad((r2 % 99950 + 10)::varchar, 5, '0')
        when 'GB' then
            letter(r2) || letter(r3) || (1 + r2 % 20)::varchar || ' '
            || (r3 % 10)::varchar || letter(r1) || letter(r2 // 7)
        when 'NL' then (1000 + r2 % 9000)::varchar || ' ' || letter(r3) || letter(r1)
        when 'CA' then
            letter(r2) || (r3 % 10)::varchar || letter(r1) || ' '
            || (r2 % 10)::varchar || letter(r3 // 7) || (r1 % 10)::varchar
        when 'AU' then (1000 + r2 % 9000)::varchar
        when 'SE' then (100 + r2 % 900)::varchar || ' ' || lpad((r3 % 100)::varchar, 2, '0')
        else lpad((1000 + r2 % 98000)::varchar, 5, '0')
    end as postal_code,
    strftime($end_date::date + signup_rel::integer, '%Y-%m-%d') as signup_date,
    case when tier >= 0 then $tiers[tier + 1] end as loyalty_tier,
    case email_opt_in when 1 then 'true' when 0 then 'false' end as email_opt_in,
    case ads_opt_in when 1 then 'true' when 0 then 'false' end as ads_opt_in,
    case when kind = 0 and day = 0 then null
        when r3 % 5 = 0 then 'pos' else 'web' end as source_system
from (
    select
        *,
        case when capital
            then upper(left(email_raw, 1)) || substr(email_raw, 2)
            else email_raw
        end as email_cased
    from shaped
)
"""


def write_crm(crm: Crm, landing: Path, start: date, con) -> list[Path]:
    """Write one customers.csv per day that has records (snapshot on day 0)."""
    paths = []
    for day, table in sorted(crm.tables.items()):
        folder = landing / "crm" / f"dt={date.fromordinal(start.toordinal() + day)}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "customers.csv"
        columns = list(CRM_COLUMNS) if day == 0 else [*CRM_COLUMNS, EXTRA_COLUMN]
        con.register("crm_out", table.select(columns))
        with written_atomically(path) as tmp:  # a dot file: ingest ignores it
            con.execute(f"copy crm_out to '{tmp}' (format csv, header true)")
        con.unregister("crm_out")
        paths.append(path)
    return paths
