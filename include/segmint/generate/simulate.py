"""Vectorised simulation of sessions, funnels, e-mail campaigns and future outcomes.

The same session process drives the history written to the landing zone and the future the
ground truth counts, so propensity models are measured against the process that made the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus

import numpy as np

from segmint.generate import params as P
from segmint.generate.world import World

US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S

# Event type codes follow segmint.warehouse.EVENT_TYPES.
PAGE_VIEW, PRODUCT_VIEW, SEARCH, ADD, REMOVE, CHECKOUT, PURCHASE, OPEN, CLICK, LOGIN = range(10)
# Identity of a session: anonymous, login on the landing page, login before checkout,
# remembered login (customer id on every event).
ANON, LOGIN_EARLY, LOGIN_AT_CHECKOUT, REMEMBERED = range(4)


@dataclass
class Catalogue:
    product_code: np.ndarray  # int64 printed as SKU-<code>
    category: np.ndarray  # int8
    price: np.ndarray  # float64, ascending within each category

    @classmethod
    def build(cls, rng: np.random.Generator) -> Catalogue:
        n_cat, per = len(P.CATEGORIES), P.PRODUCTS_PER_CATEGORY
        raw = P.CATEGORY_PRICE[:, None] * rng.lognormal(-0.18, 0.6, (n_cat, per))
        price = np.maximum(np.round(np.sort(raw, axis=1)) - 0.01, 0.99).ravel()
        code = rng.choice(90_000, n_cat * per, replace=False) + 10_000
        return cls(code, np.repeat(np.arange(n_cat), per).astype(np.int8), price)


def page_table() -> tuple[list[str], list[str], dict[str, int]]:
    """Non-product pages: (page_type, path) lists and a lookup of named entries."""
    types, paths, index = [], [], {}

    def add(kind: str, path: str, name: str | None = None) -> None:
        index[name or path] = len(paths)
        types.append(kind)
        paths.append(path)

    for kind, path in P.CONTENT_PAGES:
        add(kind, path)
    for cat in P.CATEGORIES:
        add("category", f"/c/{cat}", f"cat:{cat}")
    for i, term in enumerate(search_vocabulary()):
        add("search", f"/search?q={quote_plus(term)}", f"search:{i}")
    add("cart", "/cart")
    add("checkout", "/checkout")
    add("checkout", "/checkout/confirmation")
    add("account", "/account/login")
    return types, paths, index


def search_vocabulary() -> list[str]:
    return [t for terms in P.SEARCH_TERMS for t in terms] + list(P.BARGAIN_TERMS)


def pick_category(world: World, agent: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw a category per row from each agent's taste (inverse CDF on 8 columns)."""
    cum = world.taste_cum[agent]
    return (u[:, None].astype(np.float32) > cum).sum(axis=1).clip(0, len(P.CATEGORIES) - 1)


@dataclass
class Sessions:
    agent: np.ndarray  # int64
    start_us: np.ndarray  # int64 UTC microseconds since the epoch
    channel: np.ndarray  # int8 index into P.CHANNELS
    campaign: np.ndarray  # int16 campaign index or -1
    signup: np.ndarray  # bool: the session in which a new customer signs up
    pre_signup: np.ndarray  # bool: before the agent had an account

    def __len__(self) -> int:
        return len(self.agent)

    @staticmethod
    def concat(parts: list[Sessions]) -> Sessions:
        return Sessions(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in Sessions.__annotations__)
        )


@dataclass
class Funnel:
    page_views: np.ndarray  # extra page views after the landing page
    product_views: np.ndarray
    searches: np.ndarray
    adds: np.ndarray
    removed: np.ndarray  # bool
    checkout: np.ndarray  # bool
    purchase: np.ndarray  # bool


def draw_funnel(world: World, rng: np.random.Generator, s: Sessions) -> Funnel:
    """The in-session funnel, the same for history and future sessions."""
    t = world.agent_type[s.agent]
    n = len(s)
    eng = world.engagement[s.agent]
    page_views = rng.poisson(P.PAGE_VIEWS[t] * eng)
    product_views = rng.poisson(P.PRODUCT_VIEWS[t] * eng)
    searches = rng.poisson(P.SEARCHES[t])
    p_cart = np.minimum(P.P_CART[t] * world.conversion[s.agent], 0.97)
    p_cart = np.where(s.signup, P.SIGNUP_CART, p_cart)
    product_views = np.where(s.signup, np.maximum(product_views, 1), product_views)
    carted = (product_views > 0) & (rng.random(n) < p_cart)
    adds = np.where(carted, 1 + rng.poisson(P.ITEMS[t] - 1.0), 0)
    removed = carted & (rng.random(n) < P.P_REMOVE[t])
    can_buy = ~s.pre_signup & (s.agent < world.n_customers) & ~(removed & (adds == 1))
    p_checkout = np.where(s.signup, P.SIGNUP_CHECKOUT, P.P_CHECKOUT[t])
    checkout = carted & can_buy & (rng.random(n) < p_checkout)
    purchase = checkout & (rng.random(n) < P.P_PURCHASE[t])
    return Funnel(page_views, product_views, searches, adds, removed, checkout, purchase)


def organic_sessions(
    world: World,
    rng: np.random.Generator,
    rel: np.ndarray,
    day_us: np.ndarray,
    weekday: np.ndarray,
    offsets: np.ndarray,
    agents: np.ndarray | None = None,
) -> Sessions:
    """Sessions started by the visitors themselves (not by an e-mail), per agent and day."""
    idx = np.arange(world.n_agents) if agents is None else agents
    lam = world.rate[idx][:, None] * world.trend(rel, idx) * P.WEEKDAY[weekday][None, :]
    counts = rng.poisson(lam)
    # Every new customer whose sign-up day is in this window has a session that day.
    signup_col = world.signup_rel[idx] - rel[0]
    is_new = (world.agent_type[idx] == P.NEW) & (signup_col >= 0) & (signup_col < len(rel))
    rows = np.flatnonzero(is_new)
    counts[rows, signup_col[rows]] = np.maximum(counts[rows, signup_col[rows]], 1)

    cell_agent, cell_day = np.nonzero(counts)
    reps = counts[cell_agent, cell_day]
    agent = idx[np.repeat(cell_agent, reps)]
    day = np.repeat(cell_day, reps)
    first_in_cell = np.zeros(len(agent), dtype=bool)
    first_in_cell[np.concatenate([[0], np.cumsum(reps)[:-1]]).astype(np.int64)] = True
    signup = (
        first_in_cell & (world.agent_type[agent] == P.NEW) & (world.signup_rel[agent] == rel[day])
    )
    n = len(agent)
    hour = rng.choice(24, size=n, p=P.HOUR)
    local_s = hour * 3600 + rng.random(n) * 3600
    utc_s = np.mod(local_s - offsets[world.tz[agent], day], 86_400)
    start_us = day_us[day] + (utc_s * US_PER_S).astype(np.int64)
    t = world.agent_type[agent]
    cum = np.cumsum(P.CHANNEL_WEIGHTS, axis=1)
    cum = cum / cum[:, -1:]
    channel = (rng.random(n)[:, None] > cum[t]).sum(axis=1).astype(np.int8)
    return Sessions(
        agent=agent,
        start_us=start_us,
        channel=channel,
        campaign=np.full(n, -1, dtype=np.int16),
        signup=signup,
        pre_signup=world.signup_rel[agent] > rel[day],
    )


@dataclass
class Campaigns:
    """E-mail opens and clicks of every campaign in a window."""

    customer: np.ndarray  # int64
    campaign: np.ndarray  # int16 index into the window's campaign days
    open_us: np.ndarray  # int64
    reopen_us: np.ndarray  # int64, -1 when opened once
    click_us: np.ndarray  # int64, -1 when not clicked


def campaigns(
    world: World,
    rng: np.random.Generator,
    rel: np.ndarray,
    day_us: np.ndarray,
    weekday: np.ndarray,
    offsets: np.ndarray,
) -> tuple[np.ndarray, Campaigns]:
    """Campaign e-mails on campaign weekdays at 09:00 local time; opens depend on type."""
    cols = np.flatnonzero(np.isin(weekday, P.CAMPAIGN_WEEKDAYS))
    cust = np.flatnonzero(world.email_opt_in[: world.n_customers])
    r = rel[cols]
    eligible = world.signed_up(r, cust) & (r[None, :] < world.unsubscribe_rel[cust][:, None])
    trend = np.minimum(world.trend(r, cust), 1.0)
    p = world.p_open[cust][:, None] * trend
    opened = eligible & (rng.random(p.shape) < p)
    ci, k = np.nonzero(opened)
    customer = cust[ci]
    n = len(customer)
    send_s = np.mod(9 * 3600 - offsets[world.tz[customer], cols[k]], 86_400)
    delay_s = np.minimum(rng.exponential(3 * 3600, n), 40 * 3600) + 30
    open_us = day_us[cols[k]] + ((send_s + delay_s) * US_PER_S).astype(np.int64)
    reopen = rng.random(n) < 0.15
    reopen_us = np.where(
        reopen, open_us + (rng.exponential(6 * 3600, n) * US_PER_S).astype(np.int64) + 1, -1
    )
    clicked = rng.random(n) < P.P_CLICK[world.agent_type[customer]]
    click_us = np.where(
        clicked, open_us + ((5 + rng.exponential(40, n)) * US_PER_S).astype(np.int64), -1
    )
    return cols, Campaigns(customer, k.astype(np.int16), open_us, reopen_us, click_us)


def click_sessions(
    world: World, c: Campaigns, rng: np.random.Generator, rel0: int, day0_us: int
) -> Sessions:
    """The visit an e-mail click starts (landing with utm_medium=email)."""
    m = c.click_us >= 0
    agent = c.customer[m]
    start = c.click_us[m] + (rng.uniform(1, 8, m.sum()) * US_PER_S).astype(np.int64)
    day = (start - day0_us) // US_PER_DAY
    n = len(agent)
    return Sessions(
        agent=agent,
        start_us=start,
        channel=np.full(n, P.EMAIL_CHANNEL, dtype=np.int8),
        campaign=c.campaign[m],
        signup=np.zeros(n, dtype=bool),
        pre_signup=world.signup_rel[agent] > rel0 + day,
    )
