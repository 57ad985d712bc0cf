"""The simulated population: customers, anonymous visitors, their devices and time zones.

Everything is a numpy array indexed by agent (customers first, then anonymous visitors) or by
device. Times are measured in whole days relative to the end date (day 0 = the end date,
negative = the past, positive = the future the ground truth looks into).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from segmint.generate import params as P


@dataclass
class World:
    n_customers: int
    agent_type: np.ndarray  # int8, TYPES index or VISITOR
    country: np.ndarray  # int8 index into P.COUNTRIES
    tz: np.ndarray  # int16 index into tz_names
    tz_names: list[str]
    signup_rel: np.ndarray  # int32 day of sign-up relative to the end date
    lapse_rel: np.ndarray  # float64 day a lapsing customer starts to fade (inf otherwise)
    rate: np.ndarray  # float64 sessions/day before trend and weekday
    conversion: np.ndarray  # float64 multiplier on P(cart)
    engagement: np.ndarray  # float64 multiplier on page and product views
    taste_cum: np.ndarray  # float32 (agents, categories) cumulative category taste
    p_open: np.ndarray  # float64 P(open a campaign e-mail)
    email_opt_in: np.ndarray  # bool consent as of the snapshot
    ads_opt_in: np.ndarray  # int8: 1 yes, 0 no, -1 absent (= no consent)
    unsubscribe_rel: np.ndarray  # float64 day the customer withdraws e-mail consent (inf)
    dev_start: np.ndarray  # int64 first device of each agent
    dev_count: np.ndarray  # int64 devices per agent
    dev_owner: np.ndarray  # int64 agent owning each device
    dev_type: np.ndarray  # int8: 0 desktop, 1 mobile, 2 tablet
    dev_app: np.ndarray  # bool: the shop's app (sends local offsets and app_version)
    dev_no_session: np.ndarray  # bool: tracker without session ids
    dev_anon: np.ndarray  # int64 index into the anonymous-id table (shared devices repeat)
    shared_pairs: np.ndarray  # (k, 2) customers sharing one anonymous id

    @property
    def n_agents(self) -> int:
        return len(self.agent_type)

    @property
    def n_devices(self) -> int:
        return len(self.dev_owner)

    def type_param(self, table: np.ndarray) -> np.ndarray:
        return table[self.agent_type]

    def trend(self, rel: np.ndarray, agents: np.ndarray | None = None) -> np.ndarray:
        """Activity multiplier per (agent, day) for days ``rel`` relative to the end date."""
        idx = np.arange(self.n_agents) if agents is None else agents
        types = self.agent_type[idx]
        out = np.ones((len(idx), len(rel)), dtype=np.float64)
        r = rel[None, :].astype(np.float64)
        new = np.flatnonzero(types == P.NEW)
        if len(new):
            s = self.signup_rel[idx[new]][:, None].astype(np.float64)
            after = 1.0 + P.NEW_HONEYMOON_BOOST * np.exp(
                -np.maximum(r - s, 0) / P.NEW_HONEYMOON_DAYS
            )
            pre = np.where(r >= s - P.NEW_PRE_SIGNUP_DAYS, P.NEW_PRE_SIGNUP_FACTOR, 0.0)
            out[new] = np.where(r >= s, after, pre)
        lapsing = np.flatnonzero(types == P.LAPSING)
        if len(lapsing):
            lapse = self.lapse_rel[idx[lapsing]][:, None]
            out[lapsing] = np.where(r > lapse, np.exp(-(r - lapse) / P.LAPSE_TAU_DAYS), 1.0)
        return out

    def signed_up(self, rel: np.ndarray, agents: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(self.n_agents) if agents is None else agents
        return self.signup_rel[idx][:, None] <= rel[None, :]


def tz_offsets(tz_names: list[str], first: date, n_days: int) -> np.ndarray:
    """UTC offset in seconds per (time zone, day), taken at local noon (DST-aware)."""
    out = np.zeros((len(tz_names), n_days), dtype=np.int64)
    for i, name in enumerate(tz_names):  # a few zones x a few hundred days: not data rows
        zone = ZoneInfo(name)
        for d in range(n_days):
            noon = datetime.combine(first + timedelta(days=d), datetime.min.time()).replace(
                hour=12, tzinfo=zone
            )
            out[i, d] = int(noon.utcoffset().total_seconds())
    return out


def build_world(rng: np.random.Generator, n_customers: int, history_days: int) -> World:
    n_visitors = round(n_customers * P.VISITOR_SHARE)
    n = n_customers + n_visitors
    agent_type = np.concatenate(
        [
            rng.choice(len(P.TYPES), size=n_customers, p=P.TYPE_SHARE / P.TYPE_SHARE.sum()),
            np.full(n_visitors, P.VISITOR),
        ]
    ).astype(np.int8)

    weights = np.array([c[1] for c in P.COUNTRIES])
    country = rng.choice(len(P.COUNTRIES), size=n, p=weights / weights.sum()).astype(np.int8)
    tz_names: list[str] = []
    tz_of_country: list[tuple[np.ndarray, np.ndarray]] = []
    for c in P.COUNTRIES:
        ids = []
        for name, _ in c[2]:
            tz_names.append(name)
            ids.append(len(tz_names) - 1)
        w = np.array([z[1] for z in c[2]])
        tz_of_country.append((np.array(ids), w / w.sum()))
    u = rng.random(n)
    tz = np.zeros(n, dtype=np.int16)
    for ci, (ids, w) in enumerate(tz_of_country):  # ten countries, vectorised inside
        mask = country == ci
        tz[mask] = ids[np.searchsorted(np.cumsum(w), u[mask], side="right").clip(0, len(ids) - 1)]

    # Sign-up: new customers within the recent window, others well before the history.
    new_window = max(1, min(P.NEW_WINDOW, history_days))
    tenure = history_days + rng.integers(*P.TENURE_RANGE, n)
    loyal = agent_type == P.LOYAL
    tenure[loyal] = history_days + rng.integers(*P.LOYAL_TENURE_RANGE, loyal.sum())
    signup_rel = -tenure
    is_new = agent_type == P.NEW
    signup_rel[is_new] = -rng.integers(0, new_window, is_new.sum())
    signup_rel[agent_type == P.VISITOR] = np.iinfo(np.int32).min // 2
    signup_rel = signup_rel.astype(np.int32)

    lapse_rel = np.full(n, np.inf)
    is_lapsing = agent_type == P.LAPSING
    lo, hi = P.LAPSE_START_RANGE
    lapse_rel[is_lapsing] = -rng.uniform(lo, hi, is_lapsing.sum()) * history_days

    def spread(sigma: float) -> np.ndarray:
        return rng.lognormal(-sigma * sigma / 2, sigma, n)

    rate = P.VISIT_RATE[agent_type] * spread(P.SIGMA_RATE)
    conversion = spread(P.SIGMA_CONVERSION)
    engagement = spread(P.SIGMA_ENGAGEMENT)
    taste = rng.gamma(P.CATEGORY_ALPHA[agent_type] * 2.0)
    taste /= taste.sum(axis=1, keepdims=True)
    taste_cum = np.cumsum(taste, axis=1).astype(np.float32)
    taste_cum[:, -1] = 1.0

    open_mean = P.P_OPEN[agent_type]
    p_open = rng.beta(4.0 * open_mean + 1e-3, 4.0 * (1 - open_mean) + 1e-3)
    email_opt_in = rng.random(n) < P.P_EMAIL_OPT_IN[agent_type]
    ads = rng.random(n) < P.P_ADS_OPT_IN[agent_type]
    ads_opt_in = np.where(ads, 1, np.where(rng.random(n) < 0.5, 0, -1)).astype(np.int8)
    unsubscribe_rel = np.where(
        email_opt_in & (rng.random(n) < P.P_UNSUBSCRIBE_PER_DAY * history_days),
        -rng.integers(0, max(1, history_days), n),
        np.inf,
    ).astype(np.float64)
    unsubscribe_rel[agent_type == P.VISITOR] = np.inf
    unsubscribe_rel[unsubscribe_rel <= signup_rel] = np.inf  # not before signing up

    # Devices: 1-3 per customer (visitors have one), the first one typed by the customer type.
    dev_count = np.where(agent_type == P.VISITOR, 1, 1 + rng.binomial(2, 0.3, n)).astype(np.int64)
    dev_start = np.concatenate([[0], np.cumsum(dev_count)[:-1]])
    n_dev = int(dev_count.sum())
    dev_owner = np.repeat(np.arange(n), dev_count)
    u = rng.random(n_dev)
    p_mobile = P.P_MOBILE[agent_type[dev_owner]]
    dev_type = np.where(u < p_mobile, 1, np.where(rng.random(n_dev) < P.P_TABLET, 2, 0))
    dev_type = dev_type.astype(np.int8)
    dev_app = (dev_type == 1) & (rng.random(n_dev) < 0.3)
    dev_no_session = rng.random(n_dev) < 0.03
    dev_anon = np.arange(n_dev, dtype=np.int64)

    # Rare shared devices: a customer's second device is another customer's first one.
    candidates = np.flatnonzero(dev_count[:n_customers] >= 2)
    n_shared = min(len(candidates), max(1, round(n_customers * 0.004))) if n_customers > 10 else 0
    shared_pairs = np.zeros((0, 2), dtype=np.int64)
    if n_shared:
        takers = rng.choice(candidates, n_shared, replace=False)
        owners = rng.choice(n_customers, n_shared, replace=False)
        keep = takers != owners
        takers, owners = takers[keep], owners[keep]
        slot = dev_start[takers] + dev_count[takers] - 1
        dev_anon[slot] = dev_anon[dev_start[owners]]
        dev_type[slot] = dev_type[dev_start[owners]]
        dev_app[slot] = dev_app[dev_start[owners]]
        dev_no_session[slot] = dev_no_session[dev_start[owners]]
        shared_pairs = np.stack([owners, takers], axis=1)

    return World(
        n_customers=n_customers,
        agent_type=agent_type,
        country=country,
        tz=tz,
        tz_names=tz_names,
        signup_rel=signup_rel,
        lapse_rel=lapse_rel,
        rate=rate,
        conversion=conversion,
        engagement=engagement,
        taste_cum=taste_cum,
        p_open=p_open,
        email_opt_in=email_opt_in & (agent_type != P.VISITOR),
        ads_opt_in=ads_opt_in,
        unsubscribe_rel=unsubscribe_rel,
        dev_start=dev_start,
        dev_count=dev_count,
        dev_owner=dev_owner,
        dev_type=dev_type,
        dev_app=dev_app,
        dev_no_session=dev_no_session,
        dev_anon=dev_anon,
        shared_pairs=shared_pairs,
    )
