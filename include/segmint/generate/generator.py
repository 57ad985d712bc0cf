"""``segmint generate``: a realistic landing zone plus the ground truth beside it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from segmint.generate.crm import build_crm, write_crm
from segmint.generate.dirt import inject
from segmint.generate.events import concat, email_events, session_events, take
from segmint.generate.simulate import (
    PURCHASE,
    US_PER_DAY,
    Catalogue,
    Sessions,
    campaigns,
    click_sessions,
    draw_funnel,
    organic_sessions,
    page_table,
)
from segmint.generate.truth import write_truth
from segmint.generate.world import build_world, tz_offsets
from segmint.generate.writers import events_table, write_events
from segmint.stages import SegmintError

FORMATS = ("jsonl", "jsonl.gz", "parquet")
FUTURE_DAYS = 90
GENERATOR_VERSION = "1"
log = logging.getLogger(__name__)


@dataclass
class GenerateSummary:
    landing: Path
    truth_dir: Path
    customers: int
    days: int
    start_date: date
    end_date: date
    fmt: str
    event_files: int
    crm_files: int
    events_written: int
    events_simulated: int
    sessions: int
    orders: int
    dirt: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        dirt = ", ".join(f"{k} {v}" for k, v in self.dirt.items())
        return (
            f"generated {self.events_written:,} event rows ({self.sessions:,} sessions, "
            f"{self.orders:,} orders) in {self.event_files} {self.fmt} files and "
            f"{self.crm_files} CRM files for {self.customers:,} customers, "
            f"{self.start_date}..{self.end_date}, under {self.landing} "
            f"in {self.seconds:.1f}s\n"
            f"dirt injected: {dirt}\n"
            f"ground truth (latent types, future purchases, dirt): {self.truth_dir}"
        )


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def _check(landing: Path, truth: Path, customers: int, days: int, fmt: str, rate: float) -> None:
    if fmt not in FORMATS:
        raise SegmintError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if customers < 1 or days < 1:
        raise SegmintError("--customers and --days must be positive")
    if not 0 <= rate <= 0.2:
        raise SegmintError(f"--dirt-rate must be between 0 and 0.2, got {rate}")
    if _inside(truth, landing):
        raise SegmintError(f"ground truth {truth} must not be inside the landing zone {landing}")
    for sub in ("events", "crm"):
        if (landing / sub).exists() and any((landing / sub).iterdir()):
            raise SegmintError(
                f"{landing / sub} is not empty; generate into a new folder (the generator "
                "never overwrites a landing zone)"
            )


def uuid4_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 2)`` uint64 halves of random version-4 UUIDs (high, low)."""
    bits = rng.integers(0, 2**64 - 1, size=(n, 2), dtype=np.uint64, endpoint=True)
    bits[:, 0] = (bits[:, 0] & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)
    bits[:, 1] = (bits[:, 1] & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    return bits


def generate(
    landing: Path,
    *,
    customers: int = 20_000,
    days: int = 60,
    end_date: date = date(2026, 6, 30),
    seed: int = 7,
    fmt: str = "jsonl.gz",
    dirt_rate: float = 0.002,
    truth_dir: Path | None = None,
) -> GenerateSummary:
    """Simulate ``customers`` for ``days`` ending on ``end_date`` and write the landing zone.

    Same arguments, same bytes. The ground truth goes to ``truth_dir`` (default
    ``landing.parent / "ground_truth"``), never inside the landing zone.
    """
    import duckdb

    began = time.perf_counter()
    landing = Path(landing)
    truth = Path(truth_dir) if truth_dir is not None else landing.parent / "ground_truth"
    _check(landing, truth, customers, days, fmt, dirt_rate)

    streams = np.random.SeedSequence(seed).spawn(8)
    r_world, r_hist, r_mail, r_future, r_dirt, r_crm, r_ids, r_cat = (
        np.random.default_rng(s) for s in streams
    )
    start = end_date - timedelta(days=days - 1)
    n_all = days + FUTURE_DAYS
    day0_us = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
    rel = np.arange(n_all) - (days - 1)
    day_us = day0_us + np.arange(n_all, dtype=np.int64) * US_PER_DAY
    weekday = (start.weekday() + np.arange(n_all)) % 7
    hist, fut = slice(0, days), slice(days, n_all)

    world = build_world(r_world, customers, days)
    catalogue = Catalogue.build(r_cat)
    offsets = tz_offsets(world.tz_names, start, n_all)

    # History: organic visits, e-mail campaigns and the visits their clicks start.
    organic = organic_sessions(
        world, r_hist, rel[hist], day_us[hist], weekday[hist], offsets[:, hist]
    )
    camp_days, camp = campaigns(
        world, r_mail, rel[hist], day_us[hist], weekday[hist], offsets[:, hist]
    )
    clicks = click_sessions(world, camp, r_mail, int(rel[0]), day0_us)
    sessions = Sessions.concat([organic, clicks])
    funnel = draw_funnel(world, r_hist, sessions)
    sess_day = np.clip((sessions.start_us - day0_us) // US_PER_DAY, 0, n_all - 1)
    offsets_of = offsets[world.tz[sessions.agent], sess_day]
    _, _, page_index = page_table()
    web, _ = session_events(world, catalogue, sessions, funnel, r_hist, page_index, offsets_of)
    events = concat([web, email_events(camp, 0)])
    del web
    in_window = (events["ts_us"] >= day0_us) & (events["ts_us"] < day0_us + days * US_PER_DAY)
    if not in_window.all():
        events = take(events, np.flatnonzero(in_window))
    n_events = len(events["ts_us"])
    # Order numbers rise with time, like a shop's order sequence.
    purchases = np.flatnonzero(events["kind"] == PURCHASE)
    by_time = purchases[np.argsort(events["ts_us"][purchases], kind="stable")]
    events["order"][by_time] = 100_000 + np.arange(len(by_time))
    event_bits = uuid4_bits(r_ids, n_events)
    events["eid_hi"], events["eid_lo"] = event_bits[:, 0], event_bits[:, 1]

    customer_code = (r_ids.choice(9_000_000, size=customers, replace=False) + 1_000_000).astype(
        np.int64
    )
    agent_code = np.concatenate([customer_code, np.full(world.n_agents - customers, -1)])
    anon_uid = uuid4_bits(r_ids, world.n_devices)
    session_uid = uuid4_bits(r_ids, len(sessions))
    campaign_names = [f"newsletter_{(start + timedelta(days=int(d))):%Y%m%d}" for d in camp_days]

    log.info("simulated %d events in %.1fs", n_events, time.perf_counter() - began)
    placed = inject(events, r_dirt, dirt_rate, day0_us, days, json_lines=fmt != "parquet")
    table = events_table(
        placed,
        customer_code=agent_code,
        anon_uid=anon_uid,
        session_uid=session_uid,
        catalogue=catalogue,
        campaign_names=campaign_names,
        json_fragments=fmt != "parquet",
    )

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    landing.mkdir(parents=True, exist_ok=True)
    log.info("placed dirt, built the Arrow table: %.1fs", time.perf_counter() - began)
    event_paths = write_events(table, placed, landing, start, fmt, con)
    log.info("wrote %d event files: %.1fs", len(event_paths), time.perf_counter() - began)
    del table

    # The CRM: sign-up time is the new customer's sign-up session.
    signup_us = np.full(customers, -1, dtype=np.int64)
    signup_us[sessions.agent[sessions.signup]] = sessions.start_us[sessions.signup]
    crm = build_crm(world, r_crm, con, start, days, day0_us, customer_code, signup_us, dirt_rate)
    crm_paths = write_crm(crm, landing, start, con)
    log.info("wrote the CRM: %.1fs", time.perf_counter() - began)

    # The future the ground truth counts: the same process, customers only.
    cust = np.arange(customers)
    f_org = organic_sessions(
        world, r_future, rel[fut], day_us[fut], weekday[fut], offsets[:, fut], agents=cust
    )
    _, f_camp = campaigns(world, r_future, rel[fut], day_us[fut], weekday[fut], offsets[:, fut])
    f_clicks = click_sessions(world, f_camp, r_future, int(rel[days]), int(day_us[days]))
    f_sessions = Sessions.concat([f_org, f_clicks])
    f_funnel = draw_funnel(world, r_future, f_sessions)
    f_day = (f_sessions.start_us - day_us[days]) // US_PER_DAY

    dirt_counts = write_truth(
        truth,
        con=con,
        world=world,
        customer_code=customer_code,
        crm=crm,
        sessions=sessions,
        funnel=funnel,
        future=(f_sessions, f_funnel, f_day),
        placed=placed,
        event_paths=event_paths,
        crm_paths=crm_paths,
        landing=landing,
        start=start,
        anon_uid=anon_uid,
        params={
            "customers": customers,
            "days": days,
            "start_date": start.isoformat(),
            "end_date": end_date.isoformat(),
            "seed": seed,
            "format": fmt,
            "dirt_rate": dirt_rate,
            "future_days": FUTURE_DAYS,
            "generator_version": GENERATOR_VERSION,
        },
        fmt=fmt,
    )
    con.close()
    return GenerateSummary(
        landing=landing,
        truth_dir=truth,
        customers=customers,
        days=days,
        start_date=start,
        end_date=end_date,
        fmt=fmt,
        event_files=len(event_paths),
        crm_files=len(crm_paths),
        events_written=len(placed.cols["ts_us"]),
        events_simulated=n_events,
        sessions=len(sessions),
        orders=len(purchases),
        dirt=dirt_counts,
        seconds=time.perf_counter() - began,
    )
