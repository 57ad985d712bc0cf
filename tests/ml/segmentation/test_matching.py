import numpy as np

from ml.segmentation.matching import Reference, match_segments

OLD = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
OLD_IDS = [3, 7, 9]


def test_centroids_that_moved_a_little_keep_their_ids_whatever_the_order() -> None:
    new = OLD[[2, 0, 1]] + 0.1
    m = match_segments(new, OLD, OLD_IDS, max_distance=1.0, next_id=10)
    assert m.segment_ids == [9, 3, 7]
    assert m.new == [] and m.retired == []
    assert all(d is not None and d < 0.2 for d in m.distances)


def test_a_genuinely_new_cluster_gets_a_new_id() -> None:
    new = np.vstack([OLD + 0.05, [[9.0, 9.0]]])
    m = match_segments(new, OLD, OLD_IDS, max_distance=1.0, next_id=10)
    assert m.segment_ids == [3, 7, 9, 10]
    assert m.new == [10] and m.distances[3] is None


def test_a_vanished_cluster_is_retired() -> None:
    m = match_segments(OLD[:2], OLD, OLD_IDS, max_distance=1.0, next_id=10)
    assert m.segment_ids == [3, 7]
    assert m.retired == [9]


def test_a_cluster_that_moved_too_far_is_new_and_its_old_id_retired() -> None:
    new = OLD.copy()
    new[1] = [5.0, 3.0]
    m = match_segments(new, OLD, OLD_IDS, max_distance=1.0, next_id=10)
    assert m.segment_ids == [3, 10, 9]
    assert m.retired == [7] and m.new == [10]


def test_first_run_numbers_in_the_given_order() -> None:
    m = match_segments(OLD, None, [], max_distance=1.0, next_id=1, order=[2, 0, 1])
    assert m.segment_ids == [2, 3, 1]
    assert m.new == [1, 2, 3]


def test_a_rerun_prefers_its_own_earlier_ids_then_the_previous_run() -> None:
    own = Reference("same night", OLD[:2] + 0.02, [4, 5])
    m = match_segments(OLD + 0.05, OLD, OLD_IDS, max_distance=1.0, next_id=10, before=[own])
    assert m.segment_ids == [4, 5, 9]
    assert m.sources == ["same night", "same night", "previous"]
    # Distances are the drift from the previous run, whichever step gave the id.
    assert m.distances[:2] == [None, None] and m.distances[2] is not None
    assert m.retired == [3, 7] and m.new == []


def test_a_backfill_takes_the_ids_of_the_next_night() -> None:
    later = Reference("next night", OLD[[1, 2, 0]], [7, 9, 3])
    m = match_segments(
        np.vstack([OLD + 0.1, [[9.0, 9.0]]]), None, [], 1.0, next_id=10, after=[later]
    )
    assert m.segment_ids == [3, 7, 9, 10]
    assert m.sources == ["next night"] * 3 + [None]
    assert m.new == [10] and m.retired == [] and m.distances == [None] * 4


def test_an_id_is_given_once_across_references() -> None:
    own = Reference("same night", OLD[:1], [3])
    later = Reference("next night", OLD[1:2], [3])  # id 3 moved: taken already
    m = match_segments(OLD[:2], None, [], 1.0, next_id=10, before=[own], after=[later])
    assert m.segment_ids == [3, 10]


def test_one_segment_on_both_nights_keeps_its_id_however_far_it_moved() -> None:
    m = match_segments(np.array([[4.0, 4.0]]), OLD[:1], [3], max_distance=1.0, next_id=10)
    assert m.segment_ids == [3] and m.retired == [] and m.new == []
    # A split or a merge still goes by distance.
    m = match_segments(np.array([[4.0, 4.0]]), OLD, OLD_IDS, max_distance=1.0, next_id=10)
    assert m.segment_ids == [10] and m.retired == [3, 7, 9]


def test_a_fresh_id_is_never_one_a_reference_gave() -> None:
    # A rerun of a first night with another k: the earlier run's ids start at next_id too.
    own = Reference("same night", OLD[:1], [2])
    m = match_segments(OLD, None, [], 1.0, next_id=1, order=[1, 2, 0], before=[own])
    assert m.segment_ids == [2, 1, 3]
    assert m.new == [1, 3]


def test_a_far_moved_cluster_holding_the_same_customers_keeps_its_id() -> None:
    new = OLD.copy()
    new[1] = [5.0, 3.0]
    same = np.array([[90, 5, 0], [0, 80, 0], [0, 10, 70]])
    m = match_segments(new, OLD, OLD_IDS, max_distance=1.0, next_id=10, shared=same)
    assert m.segment_ids == [3, 7, 9] and m.retired == [] and m.new == []
    assert m.distances[1] == 3.0
    # Half of the previous segment's customers is not "mostly the same customers".
    split = np.array([[90, 40, 0], [0, 40, 0], [0, 0, 70]])
    m = match_segments(new, OLD, OLD_IDS, max_distance=1.0, next_id=10, shared=split)
    assert m.segment_ids == [3, 10, 9] and m.retired == [7]
