"""Association costs and Hungarian assignment."""
from __future__ import annotations

import numpy as np

from tracker.association import (
    INFEASIBLE,
    association_cost,
    iou_matrix,
    linear_assignment,
    mahalanobis_sq,
    normalized_centre_distance,
)


def _box(cx: float, cy: float, w: float = 40.0, h: float = 10.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], dtype=np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [50 / 150, 1.0, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])


def test_mahalanobis_matches_explicit_formula() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 2, 2))
    S = A @ A.transpose(0, 2, 1) + np.eye(2)
    tc, dc = rng.normal(size=(3, 2)) * 10, rng.normal(size=(4, 2)) * 10
    expected = np.array([[(d - t) @ np.linalg.inv(s) @ (d - t) for d in dc] for t, s in zip(tc, S)])
    np.testing.assert_allclose(mahalanobis_sq(tc, S, dc), expected)


def test_normalized_centre_distance_in_plate_widths() -> None:
    d = normalized_centre_distance(np.array([_box(0, 0, 40)]), np.array([_box(80, 0, 40)]))
    np.testing.assert_allclose(d, [[2.0]])


def test_zero_overlap_match_is_feasible_and_far_one_is_gated() -> None:
    track = np.array([_box(100, 100)])
    S = np.array([np.diag([30.0**2, 10.0**2])])  # fast plate: wide uncertainty along x
    dets = np.array([_box(150, 100), _box(400, 100)])  # 50 px away (no overlap), 300 px away
    cost = association_cost(track, S, dets)
    assert iou_matrix(track, dets)[0, 0] == 0.0
    assert cost[0, 0] < 1.0
    assert cost[0, 1] >= INFEASIBLE


def test_width_ratio_gate() -> None:
    track = np.array([_box(100, 100, 40)])
    S = np.array([np.eye(2) * 100.0])
    cost = association_cost(track, S, np.array([_box(100, 100, 80), _box(100, 100, 44)]))
    assert cost[0, 0] >= INFEASIBLE and cost[0, 1] < 1.0


def test_overlap_breaks_ties() -> None:
    track = np.array([_box(100, 100, 40)])
    S = np.array([np.eye(2) * 400.0])
    same_dist = np.array([_box(110, 100, 40), _box(100, 110, 40)])  # 10 px each way
    cost = association_cost(track, S, same_dist)
    iou = iou_matrix(track, same_dist)[0]
    assert (cost[0, 0] < cost[0, 1]) == (iou[0] > iou[1])


def test_linear_assignment_optimal_and_gated() -> None:
    cost = np.array([[0.1, 0.5, INFEASIBLE], [0.2, 0.9, INFEASIBLE], [INFEASIBLE, INFEASIBLE, INFEASIBLE]])
    matches, ut, ud = linear_assignment(cost)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]  # 0.5 + 0.2 < 0.1 + 0.9
    assert ut.tolist() == [2] and ud.tolist() == [2]


def test_linear_assignment_max_cost_and_empty() -> None:
    matches, ut, ud = linear_assignment(np.array([[0.8]]), max_cost=0.5)
    assert len(matches) == 0 and ut.tolist() == [0] and ud.tolist() == [0]
    matches, ut, ud = linear_assignment(np.zeros((0, 3)))
    assert matches.shape == (0, 2) and len(ut) == 0 and ud.tolist() == [0, 1, 2]


def test_partial_view_passes_the_width_gate_and_centred_shrink_does_not() -> None:
    track = np.array([_box(150, 100, 100)])  # 100..200
    S = np.array([np.eye(2) * 25.0])
    half_hidden = np.array([[150.0, 95.0, 200.0, 105.0]])  # right half visible
    centred_half = np.array([[125.0, 95.0, 175.0, 105.0]])  # half the width about the centre
    p = (0.8, 0.3)
    assert association_cost(track, S, half_hidden)[0, 0] >= INFEASIBLE  # without the rule
    assert association_cost(track, S, half_hidden, partial=p)[0, 0] < 1.0
    assert association_cost(track, S, centred_half, partial=p)[0, 0] >= INFEASIBLE
    # A box beside the plate, sharing only an edge position, is not a partial view of it.
    beside = np.array([[200.0, 95.0, 250.0, 105.0]])
    assert association_cost(track, S, beside, partial=p)[0, 0] >= INFEASIBLE


def test_detection_showing_more_of_a_partially_seen_plate_is_feasible() -> None:
    track = np.array([[150.0, 95.0, 200.0, 105.0]])  # the track followed the visible half
    S = np.array([np.eye(2) * 25.0])
    whole = np.array([_box(150, 100, 100)])
    assert association_cost(track, S, whole)[0, 0] >= INFEASIBLE
    assert association_cost(track, S, whole, partial=(0.8, 0.3))[0, 0] < 1.0
