"""Realistic dirt, injected at a small rate and recorded for the ground truth.

- duplicates: the same event (same ``event_id``) delivered again, later the same day (maybe in
  the other file of that day) or in the next day's partition;
- late arrivals: an event that lands one to three ``dt=`` partitions after its ``event_ts``;
- malformed lines (JSON formats only): a line cut short, so it is not valid JSON;
- invalid records: well-formed rows that break the contract (unknown event type, unparseable
  timestamp, no identity at all, negative revenue, missing event id).

Every event then gets its place: partition day, file (two exports a day, split at noon UTC
by arrival time) and 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmint.generate.simulate import PURCHASE, US_PER_DAY
from segmint.warehouse import EVENT_TYPES

INVALID_REASONS = (
    "unknown_event_type",
    "bad_timestamp",
    "missing_identity",
    "negative_revenue",
    "missing_event_id",
)
# Replacement values used for invalid records (indices past the contract's event types).
BAD_EVENT_TYPES = ("pageView", "add_to_wishlist", "scroll")
BAD_TIMESTAMPS = ("not a timestamp", "2026-02-30T10:00:00Z", "31/12/2025 10:00")


@dataclass
class Placed:
    """Final events in file order, with where each one lands."""

    cols: dict[str, np.ndarray]
    file: np.ndarray  # int64 index into ``files``
    line: np.ndarray  # int64, 1-based within the file
    files: list[tuple[int, int]]  # (history day index, export half 0/1)
    cut: np.ndarray  # float64 share of the line kept for malformed lines, NaN otherwise
    ts_bad: np.ndarray  # int8 index into BAD_TIMESTAMPS, -1 otherwise
    no_event_id: np.ndarray  # bool
    injected: dict[str, dict[str, np.ndarray]]  # kind -> arrays of row positions and extras


def _count(rate: float, n: int) -> int:
    if rate <= 0 or n == 0:
        return 0
    return max(1, round(rate * n))


def inject(
    cols: dict[str, np.ndarray],
    rng: np.random.Generator,
    rate: float,
    day0_us: int,
    days: int,
    json_lines: bool,
) -> Placed:
    n = len(cols["ts_us"])
    k = _count(rate, n)
    kinds = 4 if json_lines else 3
    picked = rng.choice(n, size=min(n, kinds * k), replace=False) if k else np.zeros(0, int)
    late, dup, invalid = picked[:k], picked[k : 2 * k], picked[2 * k : 3 * k]
    malformed = picked[3 * k : 4 * k] if json_lines else np.zeros(0, dtype=np.int64)

    ts = cols["ts_us"]
    part = (ts - day0_us) // US_PER_DAY
    arrival = ts.copy()
    lag = rng.integers(1, 4, len(late))
    ok = part[late] + lag <= days - 1
    late, lag = late[ok], lag[ok]
    arrival[late] = (
        day0_us
        + (part[late] + lag) * US_PER_DAY
        + (rng.random(len(late)) * US_PER_DAY).astype(np.int64)
    )

    # Duplicates arrive after their original: later that day, or the next day.
    next_day = (rng.random(len(dup)) < 0.4) & (part[dup] + 1 <= days - 1)
    day_end = day0_us + (part[dup] + 1) * US_PER_DAY
    same_day = arrival[dup] + (rng.random(len(dup)) * (day_end - arrival[dup])).astype(np.int64)
    copy_arrival = np.where(
        next_day, day_end + (rng.random(len(dup)) * US_PER_DAY).astype(np.int64), same_day
    )
    copy_arrival = np.minimum(copy_arrival, day0_us + days * US_PER_DAY - 1)

    # Invalid records: pick a reason each; negative revenue only on purchases. The columns
    # are changed in place: the caller hands them over.
    reasons = rng.integers(0, len(INVALID_REASONS), len(invalid))
    if not json_lines:  # a Parquet TIMESTAMP column cannot hold a bad timestamp
        reasons[reasons == 1] = 0
    is_purchase = cols["kind"][invalid] == PURCHASE
    reasons[(reasons == 3) & ~is_purchase] = 2
    reasons[is_purchase & (rng.random(len(invalid)) < 0.5)] = 3
    ts_bad = np.full(n, -1, dtype=np.int8)
    no_event_id = np.zeros(n, dtype=bool)
    r0 = invalid[reasons == 0]
    cols["kind"][r0] = len(EVENT_TYPES) + rng.integers(0, len(BAD_EVENT_TYPES), len(r0))
    r1 = invalid[reasons == 1]
    ts_bad[r1] = rng.integers(0, len(BAD_TIMESTAMPS), len(r1))
    r2 = invalid[reasons == 2]
    cols["customer"][r2] = -1
    cols["anon"][r2] = -1
    r3 = invalid[reasons == 3]
    cols["revenue"][r3] = -np.maximum(cols["revenue"][r3], 1.0)
    no_event_id[invalid[reasons == 4]] = True

    cut = np.full(n, np.nan)
    cut[malformed] = rng.uniform(0.1, 0.9, len(malformed))

    # Originals then duplicate copies, sorted by arrival time: one gather of every column.
    source = np.concatenate([np.arange(n), dup])
    all_arrival = np.concatenate([arrival, copy_arrival])
    cut = np.concatenate([cut, np.full(len(dup), np.nan)])
    ts_bad = np.concatenate([ts_bad, np.full(len(dup), -1, dtype=np.int8)])
    no_event_id = np.concatenate([no_event_id, np.zeros(len(dup), dtype=bool)])
    order = np.argsort(all_arrival, kind="stable")
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    gathered = source[order]
    for key in list(cols):
        cols[key] = cols[key][gathered]

    arrival_sorted = all_arrival[order]
    day = (arrival_sorted - day0_us) // US_PER_DAY
    half = ((arrival_sorted - day0_us) % US_PER_DAY) >= US_PER_DAY // 2
    key = day * 2 + half
    uniq, first, file = np.unique(key, return_index=True, return_inverse=True)
    line = np.arange(len(order)) - first[file] + 1
    files = [(int(u // 2), int(u % 2)) for u in uniq]  # a few hundred files, not rows

    injected = {
        "late": {"row": where[late], "lag_days": lag},
        "duplicates": {"row": where[dup], "copy_row": where[n + np.arange(len(dup))]},
        "malformed": {"row": where[malformed]},
        "invalid": {"row": where[invalid], "reason": reasons},
    }
    return Placed(
        cols=cols,
        file=file,
        line=line,
        files=files,
        cut=cut[order],
        ts_bad=ts_bad[order],
        no_event_id=no_event_id[order],
        injected=injected,
    )
