import numpy as np

from ml.segmentation.matching import match_segments

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
