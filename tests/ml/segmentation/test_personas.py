import numpy as np

from ml.segmentation.features import FEATURES
from ml.segmentation.personas import PERSONAS, describe, name_segments

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
