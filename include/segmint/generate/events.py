"""Turn sessions and e-mail campaigns into event rows (numpy columns, one entry per event)."""

from __future__ import annotations

import numpy as np

from segmint.generate import params as P
from segmint.generate.simulate import (
    ADD,
    ANON,
    CHECKOUT,
    CLICK,
    LOGIN,
    LOGIN_AT_CHECKOUT,
    LOGIN_EARLY,
    OPEN,
    PAGE_VIEW,
    PRODUCT_VIEW,
    PURCHASE,
    REMEMBERED,
    REMOVE,
    SEARCH,
    US_PER_S,
    Campaigns,
    Catalogue,
    Funnel,
    Sessions,
    pick_category,
)
from segmint.generate.world import World

# Columns of the event frame; -1 / NaN mean absent.
INT_COLUMNS = {
    "kind": np.int8,
    "agent": np.int64,  # owner of the event (for the ground truth), always set
    "customer": np.int64,  # customer_id written on the event, -1 absent
    "anon": np.int64,  # anonymous-id index, -1 absent
    "session": np.int64,  # session index (session_id), -1 absent
    "page": np.int32,  # index into the URL table, -1 absent
    "product": np.int32,
    "category": np.int8,
    "quantity": np.int16,
    "search": np.int16,
    "device": np.int8,
    "country": np.int8,
    "channel": np.int8,  # utm_source / utm_medium / referrer
    "campaign": np.int16,
    "order": np.int64,
    "currency": np.int8,
    "app": np.int8,  # app_version index (an extra, unknown column)
}
FLOAT_COLUMNS = ("price", "time_on_page", "scroll", "revenue")


def empty(n: int, **given: np.ndarray) -> dict[str, np.ndarray]:
    """The event columns: ``given`` ones as passed, the others absent (-1 / NaN / 0)."""
    cols = {k: given.get(k) for k in (*INT_COLUMNS, *FLOAT_COLUMNS, "ts_us", "offset_s")}
    for k, t in INT_COLUMNS.items():
        if cols[k] is None:
            cols[k] = np.full(n, -1, dtype=t)
    for k in FLOAT_COLUMNS:
        if cols[k] is None:
            cols[k] = np.full(n, np.nan)
    if cols["ts_us"] is None:
        cols["ts_us"] = np.zeros(n, dtype=np.int64)
    if cols["offset_s"] is None:  # local offset written on app events
        cols["offset_s"] = np.zeros(n, dtype=np.int32)
    return cols


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def take(cols: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in cols.items()}


def session_events(
    world: World,
    cat: Catalogue,
    s: Sessions,
    f: Funnel,
    rng: np.random.Generator,
    page_index: dict[str, int],
    offsets_of: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Events of every session, in session order then time order.

    ``offsets_of`` gives each session's local UTC offset in seconds (used by app devices).
    Returns the event columns and, per session, the device index used.
    """
    n_s = len(s)
    a = s.agent
    t = world.agent_type[a]
    first_dev = rng.random(n_s) < 0.6
    k = np.where(first_dev, 0, (rng.random(n_s) * world.dev_count[a]).astype(np.int64))
    device = world.dev_start[a] + np.minimum(k, world.dev_count[a] - 1)

    is_cust = (a < world.n_customers) & ~s.pre_signup
    p_remember = np.where(s.channel == P.EMAIL_CHANNEL, 0.6, P.P_REMEMBERED[t])
    auth = np.where(
        is_cust & (rng.random(n_s) < p_remember),
        REMEMBERED,
        np.where(
            is_cust & f.checkout,
            LOGIN_AT_CHECKOUT,
            np.where(is_cust & (rng.random(n_s) < P.P_LOGIN[t]), LOGIN_EARLY, ANON),
        ),
    )
    auth[s.signup] = LOGIN_EARLY
    login = (auth == LOGIN_EARLY) | (auth == LOGIN_AT_CHECKOUT)

    kinds = np.array([PAGE_VIEW, PRODUCT_VIEW, SEARCH, ADD, REMOVE, CHECKOUT, PURCHASE, LOGIN])
    counts = np.stack(
        [
            1 + f.page_views,
            f.product_views,
            f.searches,
            f.adds,
            f.removed.astype(np.int64),
            f.checkout.astype(np.int64),
            f.purchase.astype(np.int64),
            login.astype(np.int64),
        ],
        axis=1,
    )
    flat = counts.ravel()
    per_session = counts.sum(axis=1)
    n = int(flat.sum())
    kind = np.repeat(np.tile(kinds, n_s), flat).astype(np.int8)
    sess = np.repeat(np.arange(n_s), per_session)
    block_start = np.cumsum(flat) - flat
    rank = np.arange(n) - np.repeat(block_start, flat)
    ev_type = t[sess]

    # Products: mostly from the session's focus category, priced by the customer's taste.
    focus = pick_category(world, a, rng.random(n_s))
    has_product = (kind == PRODUCT_VIEW) | (kind == ADD)
    pi = np.flatnonzero(has_product)
    own = pick_category(world, a[sess[pi]], rng.random(len(pi)))
    category = np.full(n, -1, dtype=np.int8)
    category[pi] = np.where(rng.random(len(pi)) < 0.75, focus[sess[pi]], own)
    per = P.PRODUCTS_PER_CATEGORY
    product = np.full(n, -1, dtype=np.int32)
    rank_in_cat = (per * rng.random(len(pi)) ** P.PRICE_GAMMA[ev_type[pi]]).astype(np.int32)
    product[pi] = category[pi].astype(np.int32) * per + np.minimum(rank_in_cat, per - 1)
    quantity = np.full(n, -1, dtype=np.int16)
    adds = kind == ADD
    u = rng.random(adds.sum())
    quantity[adds] = 1 + (u > 0.82) + (u > 0.96)
    # A removal takes out the session's first cart item.
    first_add = block_start.reshape(n_s, 8)[:, 3]
    rem = np.flatnonzero(kind == REMOVE)
    product[rem] = product[first_add[sess[rem]]]
    quantity[rem] = quantity[first_add[sess[rem]]]
    category[rem] = category[first_add[sess[rem]]]
    price = np.full(n, np.nan)
    priced = product >= 0
    price[priced] = cat.price[product[priced]]

    # Order value: items left in the cart, minus a discount code for some.
    line_value = np.where(adds, price * quantity, 0.0)
    basket = np.bincount(sess, weights=line_value, minlength=n_s)
    items = np.bincount(sess, weights=np.where(adds, quantity, 0), minlength=n_s)
    first_value = np.where(f.adds > 0, line_value[np.minimum(first_add, n - 1)], 0.0)
    basket = basket - np.where(f.removed, first_value, 0.0)
    items = items - np.where(f.removed, quantity[np.minimum(first_add, n - 1)], 0)
    lo, hi = P.DISCOUNT
    discount = np.where(rng.random(n_s) < P.P_DISCOUNT[t], rng.uniform(lo, hi, n_s), 0.0)
    order_value = np.round(basket * (1 - discount), 2)

    # Pages.
    page = np.full(n, -1, dtype=np.int32)
    views = np.flatnonzero(kind == PAGE_VIEW)
    landing = views[rank[views] == 0]
    other = views[rank[views] > 0]
    cat_page = page_index["cat:electronics"]
    n_content = len(P.CONTENT_PAGES)
    campaign_like = np.isin(s.channel[sess[landing]], (2, 3, 4))
    to_category = rng.random(len(landing)) < np.where(campaign_like, 0.7, 0.4)
    page[landing] = np.where(to_category, cat_page + focus[sess[landing]], 0)
    to_category = rng.random(len(other)) < 0.55
    wander = pick_category(world, a[sess[other]], rng.random(len(other)))
    page[other] = np.where(to_category, cat_page + wander, rng.integers(0, n_content, len(other)))
    searches = np.flatnonzero(kind == SEARCH)
    term = focus[sess[searches]] * 5 + rng.integers(0, 5, len(searches))
    bargain = (ev_type[searches] == P.BARGAIN) & (rng.random(len(searches)) < 0.4)
    n_terms = sum(len(x) for x in P.SEARCH_TERMS)
    term = np.where(bargain, n_terms + rng.integers(0, len(P.BARGAIN_TERMS), len(searches)), term)
    search = np.full(n, -1, dtype=np.int16)
    search[searches] = term
    page[searches] = page_index["search:0"] + term
    page[kind == REMOVE] = page_index["/cart"]
    page[kind == CHECKOUT] = page_index["/checkout"]
    page[kind == PURCHASE] = page_index["/checkout/confirmation"]
    page[kind == LOGIN] = page_index["/account/login"]
    n_pages = len(page_index)
    page[has_product] = n_pages + product[has_product]

    # Order within the session: landing page, browsing, cart, login, checkout, purchase.
    key = rng.uniform(0.02, 1.0, n)
    key[landing] = 0.0
    key[adds] = rng.uniform(0.3, 1.1, adds.sum())
    key[kind == REMOVE] = 1.15
    logins = kind == LOGIN
    key[logins] = np.where(auth[sess[logins]] == LOGIN_EARLY, 0.01, 1.25)
    key[kind == CHECKOUT] = 1.3
    key[kind == PURCHASE] = 1.4
    order = np.argsort(sess * 2.0 + key, kind="stable")
    kind, sess, key = kind[order], sess[order], key[order]
    product, category, quantity, price = (
        product[order],
        category[order],
        quantity[order],
        price[order],
    )
    search, page = search[order], page[order]
    ev_type = ev_type[order]

    # Time: gaps between events, the first at the session start.
    first = np.cumsum(per_session) - per_session
    pos = np.arange(n) - np.repeat(first, per_session)
    gap = rng.exponential(P.EVENT_GAP_S[ev_type]) + 2.0
    gap[pos == 0] = 0.0
    cum = np.cumsum(gap)
    elapsed = cum - np.repeat(cum[first], per_session)
    ts_us = s.start_us[sess] + (elapsed * US_PER_S).astype(np.int64)
    ts_us -= ts_us % 1000  # millisecond precision
    next_gap = np.empty(n)
    next_gap[:-1] = gap[1:]
    last = np.cumsum(per_session) - 1
    next_gap[last] = rng.exponential(40.0, n_s)
    is_view = (kind == PAGE_VIEW) | (kind == PRODUCT_VIEW)
    time_on_page = np.where(is_view, np.round(next_gap, 1), np.nan)
    scroll = np.where(is_view, np.round(rng.beta(2.0, 1.6, n), 2), np.nan)

    known = (auth[sess] == REMEMBERED) | (
        ((auth[sess] == LOGIN_EARLY) & (key >= 0.01))
        | ((auth[sess] == LOGIN_AT_CHECKOUT) & (key >= 1.25))
    )
    ev_agent = a[sess]
    dev = device[sess]
    buy = kind == PURCHASE
    cols = empty(
        n,
        kind=kind,
        agent=ev_agent,
        customer=np.where(known, ev_agent, -1),
        anon=world.dev_anon[dev],
        session=np.where(world.dev_no_session[dev], -1, sess),
        page=page,
        product=product,
        category=category,
        search=search,
        device=world.dev_type[dev],
        country=np.where(rng.random(n) < 0.02, -1, world.country[ev_agent]).astype(np.int8),
        channel=np.where(pos == 0, s.channel[sess], -1).astype(np.int8),
        campaign=np.where(pos == 0, s.campaign[sess], -1).astype(np.int16),
        app=np.where(world.dev_app[dev], (dev % 3), -1).astype(np.int8),
        price=price,
        time_on_page=time_on_page,
        scroll=scroll,
        ts_us=ts_us,
        offset_s=np.where(world.dev_app[dev], offsets_of[sess], 0).astype(np.int32),
        revenue=np.where(buy, order_value[sess], np.nan),
        quantity=np.where(buy, items[sess], quantity).astype(np.int16),
        currency=np.where(buy & (rng.random(n) < 0.9), 0, -1).astype(np.int8),
        order=np.where(buy, 0, -1),  # numbered later, in time order
    )
    return cols, device


def email_events(c: Campaigns, campaign_offset: int) -> dict[str, np.ndarray]:
    """email_open (and re-open) and email_click events: customer id only, no session."""
    reopen = c.reopen_us >= 0
    click = c.click_us >= 0
    cust = np.concatenate([c.customer, c.customer[reopen], c.customer[click]])
    n = len(cust)
    cols = empty(n)
    cols["kind"] = np.concatenate(
        [np.full(len(c.customer) + reopen.sum(), OPEN), np.full(click.sum(), CLICK)]
    ).astype(np.int8)
    cols["agent"] = cust
    cols["customer"] = cust
    cols["ts_us"] = np.concatenate([c.open_us, c.reopen_us[reopen], c.click_us[click]])
    cols["channel"] = np.full(n, P.EMAIL_CHANNEL, dtype=np.int8)
    camp = np.concatenate([c.campaign, c.campaign[reopen], c.campaign[click]])
    cols["campaign"] = (camp + campaign_offset).astype(np.int16)
    return cols
