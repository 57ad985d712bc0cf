import numpy as np

from ml.segmentation.features import FEATURES
from ml.segmentation.personas import (
    ALL_CUSTOMERS,
    NEVER_VISITED,
    PERSONAS,
    describe,
    name_segments,
)

F = list(FEATURES)


def _z(**values: float) -> np.ndarray:
    row = np.zeros(len(F))
    for name, value in values.items():
        row[F.index(name)] = value
    return row


CENTROIDS = np.vstack(
    [
        _z(order_count=1.5, avg_order_value=1.2, recency_days=-1.2, tenure_days=0.5),
        _z(tenure_days=-2.0, recent_session_share=0.8),
        _z(pages_per_session_30d=1.5, avg_session_duration_s_30d=1.2, order_count=-1.0),
        _z(searches_90d=1.2, searches_per_session_90d=1.0, email_clicks_90d=0.9),
        _z(days_since_last_visit=1.5, recent_session_share=-1.2, recency_days=0.6),
    ]
)


def test_names_follow_the_centroid_profile() -> None:
    naming = name_segments(CENTROIDS, F, [1, 2, 3, 4, 5])
    assert naming.names == [
        "Champions",
        "New customers",
        "Window shoppers",
        "Bargain hunters",
        "Lapsing",
    ]
    assert len(set(naming.names)) == len(naming.names)


def test_names_and_descriptions_are_reproducible() -> None:
    a = name_segments(CENTROIDS, F, [1, 2, 3, 4, 5])
    b = name_segments(CENTROIDS.copy(), F, [1, 2, 3, 4, 5])
    assert a == b


def test_description_is_one_sentence_from_the_strongest_differences() -> None:
    text = describe("Bargain hunters", CENTROIDS[3], F)
    assert text == "Bargain hunters: search a lot, search on most visits and click through e-mails."
    assert describe("Regulars", np.zeros(len(F)), F).endswith("every feature.")


def test_pinned_names_override_rules_and_kept_names() -> None:
    naming = name_segments(
        CENTROIDS, F, [1, 2, 3, 4, 5], kept_names={1: "Loyal core"}, pinned={"3": "Browsers"}
    )
    assert naming.names[0] == "Loyal core"
    assert naming.names[2] == "Browsers"
    assert naming.is_pinned == [False, False, True, False, False]
    assert naming.descriptions[2].startswith("Browsers: ")


def test_new_segments_do_not_take_a_name_already_in_use() -> None:
    naming = name_segments(CENTROIDS, F, [1, 2, 3, 4, 5], kept_names={5: "Champions"})
    assert naming.names[4] == "Champions"
    assert naming.names.count("Champions") == 1


def test_more_segments_than_personas_get_numbered_names() -> None:
    many = np.vstack([CENTROIDS] * 3)
    ids = list(range(1, len(many) + 1))
    naming = name_segments(many, F, ids)
    assert len(set(naming.names)) == len(many)
    assert sum(n.startswith("Segment ") for n in naming.names) >= len(many) - len(PERSONAS)
    assert all(n.startswith("Segment ") or n in PERSONAS for n in naming.names)


def test_buyer_personas_need_a_segment_of_buyers() -> None:
    """The Champions-like centroid of customers who mostly never ordered (a few big buyers
    pull the mean) is not called Champions; a Prospects-like one of buyers not Prospects."""
    prospects = _z(order_count=-1.0, tenure_days=-1.0)
    free = name_segments(np.vstack([CENTROIDS[0], prospects]), F, [1, 2])
    assert free.names == ["Champions", "Prospects"]
    checked = name_segments(np.vstack([CENTROIDS[0], prospects]), F, [1, 2], buyer_share=[0.2, 0.9])
    assert "Champions" not in checked.names
    assert "Prospects" not in checked.names


def test_personas_need_a_feature_that_varies() -> None:
    """Without e-mail events the e-mail features are 0 for everyone: searching less than the
    others made "Email engaged" (its weight -1 on searches per session)."""
    quiet = _z(searches_per_session_90d=-1.5)
    assert name_segments(np.vstack([quiet, -quiet]), F, [1, 2]).names[0] == "Email engaged"
    varying = [f for f in F if not f.startswith("email_")]
    names = name_segments(np.vstack([quiet, -quiet]), F, [1, 2], varying=varying).names
    assert "Email engaged" not in names


def test_one_segment_is_all_customers() -> None:
    """k = 1 (a shop too small or too uniform to split) is everyone: not "Regulars", and not
    the name of the previous run's segment it matched."""
    one = name_segments(CENTROIDS[[0]], F, [3], kept_names={3: "Champions"})
    assert one.names == [ALL_CUSTOMERS]
    assert one.descriptions[0].startswith(f"{ALL_CUSTOMERS}: one segment holding every")
    assert name_segments(CENTROIDS[[0]], F, [3], pinned={"3": "VIP"}).names == ["VIP"]
    # The next night splits the shop: the segment that matched keeps its id, not the name.
    two = name_segments(CENTROIDS[:2], F, [3, 4], kept_names={3: ALL_CUSTOMERS})
    assert two.names == ["Champions", "New customers"]


def test_window_shoppers_need_a_segment_of_non_buyers() -> None:
    """Window shoppers browse and never buy. A seasonal shop out of season (no order in its
    last 60 days) had a segment of repeat buyers who browse longer than the rest: its
    weights on pages and time per visit named it "Window shoppers", every customer of it
    having ordered (median 2 orders)."""
    browsing_buyers = _z(pages_per_session_30d=1.2, avg_session_duration_s_30d=1.0)
    dormant = _z(sessions_90d=-1.0, days_since_last_visit=1.2, order_count=-1.0)
    centroids = np.vstack([browsing_buyers, dormant])
    assert name_segments(centroids, F, [1, 2]).names[0] == "Window shoppers"
    checked = name_segments(centroids, F, [1, 2], buyer_share=[1.0, 0.1])
    assert checked.names[0] != "Window shoppers"
    browsers = name_segments(centroids, F, [1, 2], buyer_share=[0.1, 0.1])
    assert browsers.names[0] == "Window shoppers"


def test_regulars_only_names_a_segment_whose_customers_came_back() -> None:
    """A crowd of one-time buyers who never came back sits at the population's centroid, and
    the fixed score of "Regulars" (comes back often) named it. Without half of its customers
    ordering again or visiting in the last 30 days, it takes a persona whose weights fit, and
    a kept "Regulars" is given up; a segment that does come back stays Regulars."""
    crowd = np.zeros(len(F))
    centroids = np.vstack([crowd, CENTROIDS[0], CENTROIDS[2]])
    assert name_segments(centroids, F, [1, 2, 3]).names[0] == "Regulars"
    gone = name_segments(centroids, F, [1, 2, 3], returning_share=[0.0, 1.0, 0.6])
    assert gone.names[0] != "Regulars"
    assert gone.names[1:] == ["Champions", "Window shoppers"]
    old = {1: "Regulars", 2: "Champions", 3: "Window shoppers"}
    assert (
        name_segments(
            centroids, F, [1, 2, 3], kept_names=old, returning_share=[0.0, 1.0, 0.6]
        ).names[0]
        != "Regulars"
    )
    back = name_segments(centroids, F, [1, 2, 3], kept_names=old, returning_share=[0.7, 1, 1])
    assert back.names == ["Regulars", "Champions", "Window shoppers"]


def test_a_segment_that_never_visited_is_named_so() -> None:
    """A CRM of newsletter subscribers who never visited, 99% of the shop: its centroid is the
    population's (every z-score about 0) and the fixed score of "Regulars" named it, which
    marketing reads as "comes back often". A segment whose customers mostly have neither an
    order nor a visit is "Never visited", and no other segment is."""
    crowd = np.zeros(len(F))
    centroids = np.vstack([crowd, CENTROIDS[0], CENTROIDS[2]])
    assert name_segments(centroids, F, [1, 2, 3]).names[0] == "Regulars"
    never = [0.99, 0.0, 0.3]
    naming = name_segments(
        centroids, F, [1, 2, 3], buyer_share=[0.0, 1.0, 0.0], never_visited_share=never
    )
    assert naming.names == [NEVER_VISITED, "Champions", "Window shoppers"]
    assert naming.descriptions[0] == (
        "Never visited: most of them have neither visited the site nor ordered."
    )
    # Only one segment takes the name; a second such segment takes what it may truly be.
    two = name_segments(
        np.vstack([crowd, _z(email_opens_90d=1.0, email_clicks_90d=1.0)]),
        F,
        [1, 2],
        never_visited_share=[0.99, 0.9],
    )
    assert two.names == [NEVER_VISITED, "Email engaged"]
    # Stable: a kept name stays while it is true; one that is not is given up ("Regulars"
    # kept from the nights before the rule, "Never visited" once the crowd has visited).
    kept = {1: NEVER_VISITED, 2: "Champions", 3: "Window shoppers"}
    assert (
        name_segments(centroids, F, [1, 2, 3], kept_names=kept, never_visited_share=never).names
        == naming.names
    )
    old = {1: "Regulars", 2: "Champions", 3: "Window shoppers"}
    assert (
        name_segments(centroids, F, [1, 2, 3], kept_names=old, never_visited_share=never).names
        == naming.names
    )
    visited = name_segments(
        centroids, F, [1, 2, 3], kept_names=kept, never_visited_share=[0.1, 0.0, 0.3]
    )
    assert visited.names == ["Regulars", "Champions", "Window shoppers"]
    # A pinned name wins.
    pinned = name_segments(
        centroids, F, [1, 2, 3], pinned={"1": "Newsletter"}, never_visited_share=never
    )
    assert pinned.names[0] == "Newsletter"


def test_a_crowds_others_are_scored_with_the_features_that_vary_among_them() -> None:
    """With a crowd (``features.CrowdKMeans``) the other segments' rows are z-scores among
    the others alone, and a persona needs one of its features to vary among them: e-mails
    that only the crowd opens tell the others nothing, so none of them is "Email engaged"
    for searching less; the crowd, judged against everyone, may be."""
    crowd = _z(email_opens_90d=0.6, email_clicks_90d=0.6, sessions_90d=-0.3)
    other = _z(
        searches_per_session_90d=-1.5,
        email_opens_90d=0.3,
        pages_per_session_30d=0.5,
        order_count=-0.5,
    )
    centroids = np.vstack([crowd, other])
    assert name_segments(centroids, F, [1, 2]).names == ["Regulars", "Email engaged"]
    no_email = [f for f in F if not f.startswith("email_")]
    naming = name_segments(centroids, F, [1, 2], crowd=0, others_varying=no_email)
    assert naming.names == ["Email engaged", "Prospects"]
    # Without others_varying, the others are scored with everyone's varying features.
    assert name_segments(centroids, F, [1, 2], crowd=0).names == ["Regulars", "Email engaged"]
