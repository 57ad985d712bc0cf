"""The knobs of the simulated shop: latent customer types, catalogue, countries, channels.

Every table here is indexed by latent type in the order of :data:`TYPES`, with one more row at
the end for anonymous visitors who never log in (they are simulated like customers but never
appear in the CRM or the ground truth). Rates are per customer and day; the per-customer value
is the type's value times log-normal noise, so types overlap like real people do.
"""

from __future__ import annotations

import numpy as np

TYPES = (
    "loyal_high_spender",
    "bargain_hunter",
    "window_shopper",
    "new_customer",
    "lapsing_customer",
)
TYPE_DESCRIPTIONS = {
    "loyal_high_spender": "frequent visits, most carts end in large orders, desktop, long tenure",
    "bargain_hunter": "many searches, cheap discounted orders, opens and clicks campaign e-mails",
    "window_shopper": "long mobile browsing sessions, carts abandoned, almost never buys",
    "new_customer": "signed up in the last weeks (first order at sign-up), extra active since",
    "lapsing_customer": "used to buy, visits fading away since some weeks before the end date",
}
VISITOR = len(TYPES)  # index of the anonymous-visitor row in the tables below
LOYAL, BARGAIN, WINDOW, NEW, LAPSING = range(len(TYPES))

TYPE_SHARE = np.array([0.15, 0.25, 0.25, 0.15, 0.20])
# Anonymous visitors who never log in, as a share of the number of customers.
VISITOR_SHARE = 0.3

_t = np.array  # one value per type, then the anonymous visitor


# Sessions per day before weekday seasonality and temporal trend.
VISIT_RATE = _t([0.080, 0.055, 0.055, 0.042, 0.110, 0.012])
# Extra page views after the landing page, product views and searches per session (Poisson).
PAGE_VIEWS = _t([0.4, 0.5, 1.5, 0.8, 0.5, 0.5])
PRODUCT_VIEWS = _t([2.0, 2.0, 3.0, 2.0, 2.0, 1.2])
SEARCHES = _t([0.2, 0.8, 0.3, 0.3, 0.2, 0.3])
# Funnel: P(cart | viewed a product), P(checkout | cart), P(purchase | checkout).
P_CART = _t([0.75, 0.55, 0.50, 0.55, 0.65, 0.06])
P_CHECKOUT = _t([0.90, 0.70, 0.05, 0.75, 0.85, 0.0])
P_PURCHASE = _t([0.95, 0.85, 0.35, 0.90, 0.90, 0.0])
P_REMOVE = _t([0.08, 0.20, 0.25, 0.15, 0.12, 0.20])
# Items added per carted session: 1 + Poisson(ITEMS - 1).
ITEMS = _t([2.8, 1.3, 1.3, 1.6, 1.8, 1.2])
# Price taste: products in a category are ranked by price and picked at rank ~ U**gamma
# (gamma > 1 leans to cheap products, < 1 to expensive ones).
PRICE_GAMMA = _t([0.35, 3.0, 1.0, 1.0, 0.9, 1.0])
# Share of orders with a discount code, and the discount taken.
P_DISCOUNT = _t([0.05, 0.70, 0.10, 0.50, 0.10, 0.0])
DISCOUNT = (0.10, 0.30)
# P(a device of this customer is a phone); tablets take a fixed share of the rest.
P_MOBILE = _t([0.12, 0.60, 0.92, 0.65, 0.45, 0.65])
P_TABLET = 0.10
# E-mail: consent, P(open a campaign), P(click | open).
P_EMAIL_OPT_IN = _t([0.92, 0.95, 0.35, 0.80, 0.85, 0.0])
P_ADS_OPT_IN = _t([0.55, 0.60, 0.45, 0.50, 0.45, 0.0])
P_OPEN = _t([0.35, 0.70, 0.04, 0.35, 0.45, 0.0])
P_CLICK = _t([0.10, 0.45, 0.10, 0.20, 0.15, 0.0])
# Identity: P(the session is already logged in from a remembered cookie), P(logging in
# during a session that does not check out).
P_REMEMBERED = _t([0.70, 0.55, 0.50, 0.50, 0.55, 0.0])
P_LOGIN = _t([0.30, 0.30, 0.30, 0.30, 0.30, 0.0])
# Per-customer spread (sigma of log-normal multipliers).
SIGMA_RATE = 0.25
SIGMA_CONVERSION = 0.25
SIGMA_ENGAGEMENT = 0.20

# Tenure before the history starts (days, uniform), loyal customers longer.
TENURE_RANGE = (120, 1100)
LOYAL_TENURE_RANGE = (700, 2500)

# Temporal dynamics (days). New customers sign up within the last NEW_WINDOW days (at most the
# history), browse anonymously a little before, and are extra active just after signing up.
NEW_WINDOW = 30
NEW_PRE_SIGNUP_DAYS = 10
NEW_PRE_SIGNUP_FACTOR = 0.3
NEW_HONEYMOON_BOOST = 1.5
NEW_HONEYMOON_DAYS = 10.0
# A sign-up session usually ends in a first order (welcome offer): P(cart), P(checkout).
SIGNUP_CART = 0.8
SIGNUP_CHECKOUT = 0.85
# Lapsing customers start to fade between these shares of the history before the end date and
# then decay exponentially (also in the future).
LAPSE_START_RANGE = (0.55, 0.9)
LAPSE_TAU_DAYS = 6.0

# Weekday factors, Monday first, and the local hour-of-day profile.
WEEKDAY = np.array([1.05, 0.98, 0.96, 0.97, 0.92, 0.95, 1.17])
HOUR = np.array(
    [
        0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.6, 2.4, 2.8, 3.0, 3.2,
        3.6, 3.4, 3.2, 3.2, 3.4, 3.8, 4.3, 5.0, 5.6, 5.4, 3.8, 1.8,
    ]
)  # fmt: skip
HOUR = HOUR / HOUR.sum()
# Mean seconds between events in a session.
EVENT_GAP_S = _t([35.0, 30.0, 45.0, 40.0, 35.0, 30.0])

# Marketing e-mails go out on these weekdays (Monday = 0) at 09:00 local time.
CAMPAIGN_WEEKDAYS = (1, 4)
P_UNSUBSCRIBE_PER_DAY = 0.0008
P_CRM_CHANGE_PER_DAY = 0.0015

CATEGORIES = ("electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery")
PRODUCTS_PER_CATEGORY = 250
CATEGORY_PRICE = np.array([180.0, 45.0, 60.0, 25.0, 55.0, 15.0, 30.0, 12.0])
# Category taste: Dirichlet concentration per type (each customer draws their own taste).
CATEGORY_ALPHA = np.array(
    [
        [3.0, 2.0, 3.0, 1.0, 1.5, 0.8, 0.5, 0.5],
        [0.6, 2.0, 1.0, 2.5, 0.8, 0.8, 2.0, 3.0],
        [2.5, 3.5, 1.5, 2.0, 1.0, 0.5, 0.5, 0.3],
        [1.5, 2.0, 1.5, 1.5, 1.5, 1.0, 1.0, 1.0],
        [1.5, 1.5, 2.0, 1.0, 1.5, 1.5, 1.0, 1.0],
        [1.5, 2.0, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0],
    ]
)

# Acquisition channel of a session: (utm_source, utm_medium, referrer); None = absent.
CHANNELS = (
    ("direct", None, None, None),
    ("organic", None, None, "https://www.google.com/"),
    ("paid_search", "google", "cpc", "https://www.google.com/"),
    ("social", "instagram", "social", "https://l.instagram.com/"),
    ("affiliate", "couponfinder", "affiliate", "https://www.couponfinder.example/"),
    ("email", "newsletter", "email", None),
)
CHANNEL_WEIGHTS = np.array(
    [
        [0.50, 0.20, 0.10, 0.08, 0.02],
        [0.20, 0.20, 0.15, 0.10, 0.35],
        [0.25, 0.25, 0.15, 0.33, 0.02],
        [0.25, 0.25, 0.25, 0.22, 0.03],
        [0.40, 0.25, 0.15, 0.15, 0.05],
        [0.15, 0.40, 0.25, 0.18, 0.02],
    ]
)
EMAIL_CHANNEL = 5

# Content pages a session may wander through, besides products, search, cart and checkout.
CONTENT_PAGES = (
    ("home", "/"),
    ("content", "/help/shipping"),
    ("content", "/help/returns"),
    ("content", "/blog/summer-guide"),
    ("content", "/stores"),
    ("account", "/account/orders"),
)

# Search vocabulary by category (some with quotes and accents, as people type them).
SEARCH_TERMS = (
    ("headphones", "usb c charger", "4k tv", "laptop 14 inch", '"noise cancelling"'),
    ("summer dress", "sneakers white", "linen shirt", "jeans slim", "kids' jacket"),
    ("crème brûlée dish", "duvet cover", "desk lamp", "coffee maker", "plant pot"),
    ("sunscreen spf 50", "shampoo", "lipstick red", "face serum", "perfume"),
    ("yoga mat", "running shoes", "dumbbells 10kg", "bike helmet", "tent 2 person"),
    ("thriller paperback", "cookbook", "children's books", "kalender 2027", "atlas"),
    ("lego", "puzzle 1000", "board game", "plüschtier", "rc car"),
    ("coffee beans", "olive oil", "protein bar", "green tea", "pasta"),
)
BARGAIN_TERMS = ("sale", "discount", "clearance", "deals", "coupon")

# Countries: ISO-2 code, weight, time zones with weights, cities, phone country code.
COUNTRIES = (
    ("US", 0.40, (("America/New_York", 0.45), ("America/Chicago", 0.25),
                  ("America/Denver", 0.08), ("America/Los_Angeles", 0.22)),
     ("New York", "Chicago", "Houston", "Phoenix", "Seattle", "Boston"), "1"),
    ("GB", 0.12, (("Europe/London", 1.0),), ("London", "Manchester", "Leeds", "Bristol"), "44"),
    ("DE", 0.12, (("Europe/Berlin", 1.0),), ("Berlin", "Hamburg", "München", "Köln"), "49"),
    ("FR", 0.08, (("Europe/Paris", 1.0),), ("Paris", "Lyon", "Marseille", "Lille"), "33"),
    ("NL", 0.05, (("Europe/Amsterdam", 1.0),), ("Amsterdam", "Rotterdam", "Utrecht"), "31"),
    ("ES", 0.05, (("Europe/Madrid", 1.0),), ("Madrid", "Barcelona", "Valencia"), "34"),
    ("IT", 0.05, (("Europe/Rome", 1.0),), ("Roma", "Milano", "Torino"), "39"),
    ("CA", 0.06, (("America/Toronto", 0.7), ("America/Vancouver", 0.3)),
     ("Toronto", "Montréal", "Vancouver"), "1"),
    ("AU", 0.04, (("Australia/Sydney", 1.0),), ("Sydney", "Melbourne", "Brisbane"), "61"),
    ("SE", 0.03, (("Europe/Stockholm", 1.0),), ("Stockholm", "Göteborg", "Malmö"), "46"),
)  # fmt: skip

FIRST_NAMES = (
    "Anna", "Ben", "Chloé", "David", "Emma", "Felix", "Grace", "Hugo", "Isabel", "Jonas",
    "Karin", "Liam", "María", "Noah", "Olivia", "Pierre", "Quinn", "Rosa", "Sofia", "Tom",
    "Ulrike", "Viktor", "Wei", "Yara", "Zoë", "Ahmed", "Björn", "Giulia", "Jack", "Lena",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Müller", "García", "Rossi", "Martin", "Jansen", "Johansson", "Brown", "Dubois",
    "Schmidt", "Lopez", "Bianchi", "Wilson", "de Vries", "Nguyen", "O'Brien", "Kowalski",
    "Taylor", "Fischer", "Lefèvre", "Andersson", "Moreau", "Chen", "Patel", "Weber",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "web.de", "icloud.com")
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
# P(tier) per type, with P(no tier) as the first column.
LOYALTY_P = np.array(
    [
        [0.05, 0.05, 0.15, 0.45, 0.30],
        [0.30, 0.40, 0.25, 0.05, 0.00],
        [0.55, 0.35, 0.10, 0.00, 0.00],
        [0.70, 0.30, 0.00, 0.00, 0.00],
        [0.25, 0.25, 0.35, 0.15, 0.00],
    ]
)
GENDERS = ("F", "M", "female", "male", "X", "")
GENDER_P = np.array([0.40, 0.38, 0.07, 0.06, 0.02, 0.07])

SHOP_URL = "https://shop.example.com"
