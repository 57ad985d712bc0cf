"""The ground truth, written beside (never inside) the landing zone.

- ``customers.parquet``: one row per customer: latent type, true history counts and the
  outcomes of the same process continued after the end date;
- ``identities.parquet``: which anonymous ids belong to which customer (shared devices appear
  once per customer);
- ``dirt.json``: every injected defect with its file and line;
- ``metadata.json`` and ``README.md``: parameters and a description of the files.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segmint.generate import params as P
from segmint.generate.crm import Crm
from segmint.generate.dirt import INVALID_REASONS, Placed
from segmint.generate.simulate import US_PER_DAY, Funnel, Sessions
from segmint.generate.world import World
from segmint.generate.writers import DEVICE_TYPES, uuid_sql

README = """# segmint generator ground truth

Written by `segmint generate` beside the landing zone; never read by the pipeline. Use it to
measure segmentation (latent types) and propensity (future purchases) quality, identity
stitching and ingest's handling of dirt.

- `customers.parquet`: one row per customer.
  - `customer_id`, `latent_type` (see below), `signup_date`, `country`,
    `email_opt_in` (latest consent), `loyalty_tier`.
  - `sessions_history`, `orders_history`: true visits and orders in the landing window
    (before dirt was injected and including anonymous visits on the customer's devices).
  - `visits_next_30d`, `purchases_next_30d`, `visits_next_90d`, `purchases_next_90d`:
    visits and orders in the 30/90 days after the end date, simulated by the same process
    (these events are never written to the landing zone); `will_purchase_30d`,
    `will_purchase_90d` are `purchases_next_* > 0`.
- `identities.parquet`: `anonymous_id, customer_id` (null for visitors who never log in),
  `device_type`, `is_shared` (one anonymous id used by two customers), `events` (event rows
  in the landing zone carrying this anonymous id), `has_login` (some event carries both ids).
- `dirt.json`: counts and the location (`file` relative to the landing root, 1-based data
  `line`; for Parquet, the row) of every injected defect: `duplicate_events`, `late_events`,
  `malformed_lines`, `invalid_records` (with `reason`), `crm_duplicates`.
- `metadata.json`: the generator's parameters and totals.

Latent types (parameters in `include/segmint/generate/params.py`; each customer's rates are
the type's times log-normal noise, so types overlap like real people do):

{types}
"""


def _uuid(con, hi: np.ndarray, lo: np.ndarray) -> list[str]:
    con.register("_ids", pa.table({"x_hi": hi, "x_lo": lo}))
    out = con.sql(f"select {uuid_sql('x')} as id from _ids").to_arrow_table()["id"]
    con.unregister("_ids")
    return out.to_pylist()


def write_truth(
    truth: Path,
    *,
    con,
    world: World,
    customer_code: np.ndarray,
    crm: Crm,
    sessions: Sessions,
    funnel: Funnel,
    future: tuple[Sessions, Funnel, np.ndarray],
    placed: Placed,
    event_paths: list[Path],
    crm_paths: list[Path],
    landing: Path,
    start: date,
    anon_uid: np.ndarray,
    params: dict,
    fmt: str,
) -> dict[str, int]:
    truth.mkdir(parents=True, exist_ok=True)
    n = world.n_customers
    end = start + timedelta(days=params["days"] - 1)
    ids = np.char.add("C", customer_code.astype(str))
    f_sessions, f_funnel, f_day = future

    def per_customer(agent: np.ndarray, mask: np.ndarray) -> np.ndarray:
        a = agent[mask & (agent < n)]
        return np.bincount(a, minlength=n)[:n]

    all_s = np.ones(len(sessions), dtype=bool)
    in_30 = f_day < 30
    purchases_30 = per_customer(f_sessions.agent, in_30 & f_funnel.purchase)
    purchases_90 = per_customer(f_sessions.agent, f_funnel.purchase)
    customers = pa.table(
        {
            "customer_id": pa.array(ids.tolist()),
            "latent_type": pa.array(np.array(P.TYPES)[world.agent_type[:n]].tolist()),
            "signup_date": pa.array(
                np.datetime64(end) + world.signup_rel[:n].astype("timedelta64[D]")
            ),
            "country": pa.array([c[0] for c in P.COUNTRIES]).take(pa.array(world.country[:n])),
            "email_opt_in": pa.array(crm.email_consent),
            "loyalty_tier": pa.array(np.array((*P.LOYALTY_TIERS, ""))[crm.final_tier].tolist()),
            "sessions_history": per_customer(sessions.agent, all_s),
            "orders_history": per_customer(sessions.agent, funnel.purchase),
            "visits_next_30d": per_customer(f_sessions.agent, in_30),
            "purchases_next_30d": purchases_30,
            "visits_next_90d": per_customer(f_sessions.agent, np.ones(len(f_day), dtype=bool)),
            "purchases_next_90d": purchases_90,
            "will_purchase_30d": purchases_30 > 0,
            "will_purchase_90d": purchases_90 > 0,
        }
    )
    tier = customers["loyalty_tier"].to_numpy(zero_copy_only=False)
    customers = customers.set_column(
        customers.schema.get_field_index("loyalty_tier"),
        "loyalty_tier",
        pa.array(tier.tolist(), mask=tier == ""),
    )
    customers = customers.sort_by("customer_id")
    pq.write_table(customers, truth / "customers.parquet", compression="zstd")

    # Identities: every device, its owner, how it shows up in the landing zone.
    c = placed.cols
    has_anon = c["anon"] >= 0
    events_per_anon = np.bincount(c["anon"][has_anon], minlength=world.n_devices)
    linked = has_anon & (c["customer"] >= 0)
    login_per_anon = np.bincount(c["anon"][linked], minlength=world.n_devices)
    anon = world.dev_anon
    owner = world.dev_owner
    uses = np.bincount(anon, minlength=world.n_devices)
    anon_hex = pa.array(_uuid(con, anon_uid[anon, 0], anon_uid[anon, 1]))
    is_customer = owner < n
    identities = pa.table(
        {
            "anonymous_id": anon_hex,
            "customer_id": pa.array(
                np.where(
                    is_customer, "C" + customer_code[np.minimum(owner, n - 1)].astype(str), ""
                ).tolist(),
                mask=~is_customer,
            ),
            "device_type": pa.array(np.array(DEVICE_TYPES)[world.dev_type].tolist()),
            "is_shared": uses[anon] > 1,
            "events": events_per_anon[anon],
            "has_login": login_per_anon[anon] > 0,
        }
    ).sort_by([("anonymous_id", "ascending"), ("customer_id", "ascending")])
    pq.write_table(identities, truth / "identities.parquet", compression="zstd")

    # Dirt with its places.
    rel = [p.relative_to(landing).as_posix() for p in event_paths]

    def place(rows: np.ndarray) -> tuple[list[str], list[int]]:
        return [rel[i] for i in placed.file[rows].tolist()], placed.line[rows].tolist()

    def event_ids(rows: np.ndarray) -> list[str]:
        return _uuid(con, c["eid_hi"][rows], c["eid_lo"][rows])

    inj = placed.injected
    dirt: dict[str, object] = {"dirt_rate": params["dirt_rate"], "format": fmt}
    rows = inj["duplicates"]["row"]
    copies = inj["duplicates"]["copy_row"]
    f1, l1 = place(rows)
    f2, l2 = place(copies)
    dup = [
        {"event_id": e, "original": {"file": a, "line": b}, "duplicate": {"file": x, "line": y}}
        for e, a, b, x, y in zip(event_ids(rows), f1, l1, f2, l2, strict=True)
    ]
    rows = inj["late"]["row"]
    f1, l1 = place(rows)
    ev_dates = ((c["ts_us"][rows] // US_PER_DAY).astype("datetime64[D]")).astype(str).tolist()
    late = [
        {"event_id": e, "event_date": d, "file": a, "line": b, "lag_days": int(g)}
        for e, d, a, b, g in zip(
            event_ids(rows), ev_dates, f1, l1, inj["late"]["lag_days"].tolist(), strict=True
        )
    ]
    rows = inj["malformed"]["row"]
    f1, l1 = place(rows)
    malformed = [
        {"file": a, "line": b, "event_id": e}
        for a, b, e in zip(f1, l1, event_ids(rows), strict=True)
    ]
    rows = inj["invalid"]["row"]
    f1, l1 = place(rows)
    reasons = [INVALID_REASONS[r] for r in inj["invalid"]["reason"].tolist()]
    invalid = [
        {"file": a, "line": b, "event_id": e, "reason": r}
        for a, b, e, r in zip(f1, l1, event_ids(rows), reasons, strict=True)
    ]
    crm_rel = {
        int((date.fromisoformat(p.parent.name[3:]) - start).days): p.relative_to(landing).as_posix()
        for p in crm_paths
    }
    crm_dups = [
        {
            "customer_id": r["customer_id"],
            "file": crm_rel[r["day"]],
            "line": r["line"],
            "duplicate_line": r["duplicate_line"],
            "email": r["email"],
            "duplicate_email": r["duplicate_email"],
        }
        for r in crm.duplicates.to_pylist()
    ]

    def by_place(items: list[dict]) -> list[dict]:
        return sorted(items, key=lambda d: (d.get("file", ""), d.get("line", 0)))

    counts = {
        "duplicate_events": len(dup),
        "late_events": len(late),
        "malformed_lines": len(malformed),
        "invalid_records": len(invalid),
        "crm_duplicates": len(crm_dups),
    }
    dirt["counts"] = counts
    dirt["duplicate_events"] = sorted(
        dup, key=lambda d: (d["duplicate"]["file"], d["duplicate"]["line"])
    )
    dirt["late_events"] = by_place(late)
    dirt["malformed_lines"] = by_place(malformed)
    dirt["invalid_records"] = by_place(invalid)
    dirt["crm_duplicates"] = by_place(crm_dups)
    (truth / "dirt.json").write_text(json.dumps(dirt, ensure_ascii=False) + "\n")

    type_counts = np.bincount(world.agent_type[:n], minlength=len(P.TYPES))
    meta = {
        "parameters": params,
        "latent_types": {t: int(k) for t, k in zip(P.TYPES, type_counts.tolist(), strict=True)},
        "anonymous_visitors": int(world.n_agents - n),
        "devices": int(world.n_devices),
        "shared_anonymous_ids": int((uses > 1).sum()),
        "sessions_history": len(sessions),
        "event_rows_written": len(c["ts_us"]),
        "event_files": rel,
        "crm_files": sorted(crm_rel.values()),
        "dirt": counts,
        "purchase_rate_next_30d": float(customers["will_purchase_30d"].to_numpy().mean()),
    }
    (truth / "metadata.json").write_text(json.dumps(meta, indent=1) + "\n")
    types = "\n".join(f"- `{t}`: {d}" for t, d in P.TYPE_DESCRIPTIONS.items())
    (truth / "README.md").write_text(README.format(types=types))
    return counts
