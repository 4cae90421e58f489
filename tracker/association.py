"""Track-to-detection costs and Hungarian assignment; pure functions on arrays.

Plates are small and fast, so consecutive boxes often do not overlap at all: IoU alone cannot
associate them. The cost is therefore driven by the Mahalanobis distance of the detection
centre under each track's predicted position covariance (it knows how far the plate may have
moved since its last detection), blended with ``1 - IoU`` so that overlapping candidates win
ties. Gates (chi-square on the Mahalanobis distance, a cap on the centre distance in plate
widths, and a width-ratio limit) make impossible pairs infeasible.

Boxes are ``(N, 4)`` x1 y1 x2 y2 in pixels throughout.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.kalman import partial_view

#: Cost used for infeasible (gated) pairs; any cost >= this is never matched.
INFEASIBLE = 1e6


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) boxes -> (N, M) intersection over union in [0, 1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0.0, inter / np.maximum(union, 1e-9), 0.0)


def centres(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes -> (N, 2) centres cx cy, pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def normalized_centre_distance(track_boxes: np.ndarray, det_boxes: np.ndarray) -> np.ndarray:
    """(T, 4), (D, 4) -> (T, D) centre distance divided by the mean width of the two boxes.

    Width is the plate's most stable dimension (height is a handful of pixels on far plates).
    """
    t = np.asarray(track_boxes, dtype=np.float64).reshape(-1, 4)
    d = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    ct, cd = centres(t), centres(d)
    dist = np.hypot(cd[None, :, 0] - ct[:, None, 0], cd[None, :, 1] - ct[:, None, 1])
    width = ((t[:, 2] - t[:, 0])[:, None] + (d[:, 2] - d[:, 0])[None, :]) / 2.0
    return dist / np.maximum(width, 1.0)


def mahalanobis_sq(track_centres: np.ndarray, track_S: np.ndarray, det_centres: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of detection centres under each track's innovation covariance.

    Args:
        track_centres: (T, 2) predicted centres, pixels.
        track_S: (T, 2, 2) innovation covariance of the centre measurement, pixels^2.
        det_centres: (D, 2) detection centres, pixels.

    Returns:
        (T, D) squared distances (chi-square with 2 degrees of freedom under the model).
    """
    tc = np.asarray(track_centres, dtype=np.float64).reshape(-1, 2)
    dc = np.asarray(det_centres, dtype=np.float64).reshape(-1, 2)
    return _mahalanobis_sq_pairs(track_S, dc[None, :, 0] - tc[:, None, 0], dc[None, :, 1] - tc[:, None, 1])


def _mahalanobis_sq_pairs(track_S: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """(T, D) d^T S^-1 d for per-pair offsets dx, dy (T, D) under each track's S (T, 2, 2)."""
    S = np.asarray(track_S, dtype=np.float64).reshape(-1, 2, 2)
    # Closed-form 2x2 inverse: d^T S^-1 d = (s11 dx^2 - 2 s01 dx dy + s00 dy^2) / det S.
    s00, s01, s11 = S[:, 0, 0, None], S[:, 0, 1, None], S[:, 1, 1, None]
    det = s00 * s11 - s01 * s01
    return (s11 * dx * dx - 2.0 * s01 * dx * dy + s00 * dy * dy) / det


def association_cost(
    track_boxes: np.ndarray,
    track_S: np.ndarray,
    det_boxes: np.ndarray,
    *,
    gate_chi2: float = 13.8,
    max_centre_dist: float = 3.0,
    max_width_ratio: float = 1.4,
    iou_weight: float = 0.3,
    partial: tuple[float, float] | None = None,
) -> np.ndarray:
    """Cost of assigning each detection to each track, lower is better, in [0, 1] when feasible.

    ``cost = (1 - iou_weight) * d2 / gate_chi2 + iou_weight * (1 - IoU)``, where ``d2`` is the
    squared Mahalanobis distance of the detection centre from the predicted centre. Pairs with
    ``d2 > gate_chi2``, a centre distance above ``max_centre_dist`` mean plate widths from the
    prediction, or a width ratio above ``max_width_ratio`` cost :data:`INFEASIBLE`.

    Args:
        track_boxes: (T, 4) predicted track boxes, pixels.
        track_S: (T, 2, 2) centre innovation covariances, pixels^2.
        det_boxes: (D, 4) detection boxes, pixels.
        gate_chi2: chi-square(2) gate; 13.8 keeps 99.9 % of true matches under the model.
        max_centre_dist: hard cap in plate widths, so a long-lost track's grown covariance
            cannot grab a plate far from its predicted position.
        max_width_ratio: max(w_t / w_d, w_d / w_t) allowed.
        iou_weight: weight of ``1 - IoU`` in the blend.
        partial: ``(partial_ratio, min_visible)``: for overlapping pairs where one box is
            markedly narrower, read the detection as a possible partial view of the track's
            plate, or the track's box as a partial view of the detection's plate, per axis
            (:func:`tracker.kalman.partial_view`; a plate half behind an occluder or across the
            image border). Where it is one, the Mahalanobis distance uses the centre implied by
            the aligned edge, and the width-ratio gate is waived if at least half the narrower
            box lies within the wider one along x. None: plain centres and widths.

    Returns:
        (T, D) float64 costs.
    """
    t = np.asarray(track_boxes, dtype=np.float64).reshape(-1, 4)
    d = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    if len(t) == 0 or len(d) == 0:
        return np.zeros((len(t), len(d)))
    tc, dc = centres(t), centres(d)
    iou = iou_matrix(t, d)
    dx = dc[None, :, 0] - tc[:, None, 0]
    dy = dc[None, :, 1] - tc[:, None, 1]
    waive = np.zeros((len(t), len(d)), bool)  # width gate waived: a partial view
    if partial is not None:
        # Partial views overlap the plate: only overlapping pairs are examined (cheap when the
        # plates are apart, which is the common case).
        ti, di = np.nonzero(iou > 0.0)
        if len(ti):
            # ... and only where one box is markedly narrower (the width gate is the one a
            # partial view fails; heights of thin plates are too noisy to trigger on).
            ws = (t[ti, 2] - t[ti, 0]) / np.maximum(d[di, 2] - d[di, 0], 1e-6)
            r = partial[0]
            keep = (ws < r) | (ws * r > 1.0)
            ti, di = ti[keep], di[keep]
        if len(ti):
            tp, dp = t[ti], d[di]
            Sa = np.asarray(track_S, dtype=np.float64).reshape(-1, 2, 2)[ti]
            sx, sy = np.sqrt(Sa[:, 0, 0]), np.sqrt(Sa[:, 1, 1])
            cx_t, cy_t = tc[ti, 0], tc[ti, 1]
            cx_d, cy_d = dc[di, 0], dc[di, 1]
            # Rows: the detection as the visible part of the track's plate (occluder, image
            # border) along x and y; then the other way round, the track having followed a
            # partial view (a plate entering the image or coming out from behind an occluder)
            # that the detection shows more of. One call: these arrays are small.
            c, part = partial_view(
                np.stack([tp[:, 0], tp[:, 1], dp[:, 0], dp[:, 1]]),
                np.stack([tp[:, 2], tp[:, 3], dp[:, 2], dp[:, 3]]),
                np.stack([dp[:, 0], dp[:, 1], tp[:, 0], tp[:, 1]]),
                np.stack([dp[:, 2], dp[:, 3], tp[:, 2], tp[:, 3]]),
                *partial,
                np.stack([sx, sy, sx, sy]),
            )
            dcx, dcy, tcx, tcy = c
            part_x, part_y, grow_x, grow_y = part
            dx[ti, di] = np.where(grow_x & ~part_x, cx_d - tcx, dcx - cx_t)
            dy[ti, di] = np.where(grow_y & ~part_y, cy_d - tcy, dcy - cy_t)
            # The width gate is waived when most of the narrower box lies within the wider one
            # along x (the pairs overlap, and the Mahalanobis gate judges y).
            ox = np.minimum(tp[:, 2], dp[:, 2]) - np.maximum(tp[:, 0], dp[:, 0])
            narrow = np.minimum(tp[:, 2] - tp[:, 0], dp[:, 2] - dp[:, 0])
            waive[ti, di] = (part_x | grow_x) & (ox >= 0.5 * narrow)
    d2 = _mahalanobis_sq_pairs(track_S, dx, dy)
    cost = (1.0 - iou_weight) * np.minimum(d2 / gate_chi2, 1.0) + iou_weight * (1.0 - iou)
    log_wt = np.log(np.maximum(t[:, 2] - t[:, 0], 1e-6))
    log_wd = np.log(np.maximum(d[:, 2] - d[:, 0], 1e-6))
    too_different = (np.abs(log_wt[:, None] - log_wd[None, :]) > np.log(max_width_ratio)) & ~waive
    too_far = normalized_centre_distance(t, d) > max_centre_dist
    gated = (d2 > gate_chi2) | too_far | too_different
    cost[gated] = INFEASIBLE
    return cost


def linear_assignment(cost: np.ndarray, max_cost: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment (Hungarian, scipy) keeping pairs with ``cost <= max_cost``.

    Args:
        cost: (T, D) cost matrix; entries >= :data:`INFEASIBLE` are never matched.
        max_cost: pairs costing more than this are returned as unmatched.

    Returns:
        matches (K, 2) int rows ``(track_index, detection_index)``, unmatched track indices (T-K,),
        unmatched detection indices (D-K,).
    """
    cost = np.asarray(cost, dtype=np.float64)
    n_t, n_d = cost.shape
    if n_t == 0 or n_d == 0:
        return np.empty((0, 2), dtype=int), np.arange(n_t), np.arange(n_d)
    rows, cols = linear_sum_assignment(cost)
    keep = (cost[rows, cols] <= max_cost) & (cost[rows, cols] < INFEASIBLE)
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(int)
    free_t = np.ones(n_t, bool)
    free_d = np.ones(n_d, bool)
    free_t[matches[:, 0]] = False
    free_d[matches[:, 1]] = False
    return matches, np.flatnonzero(free_t), np.flatnonzero(free_d)
