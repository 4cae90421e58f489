"""Constant-velocity Kalman filter for one plate box, with time steps in seconds.

State ``x`` (8,): ``[cx, cy, w, h, vx, vy, vw, vh]`` — box centre and size in pixels, their rates
in pixels per second. Measurement ``z`` (4,): ``[cx, cy, w, h]`` in pixels.

Why centre/width/height and not SORT's centre/area/aspect: every component is then in pixels,
so detector jitter (which grows linearly with plate size) is a plain per-component standard
deviation, and the size rates stay linear under perspective zoom (area grows quadratically).

Noise is specified per second and per plate size, so the filter behaves the same at any frame
rate and any distance: the process noise is the continuous white-noise-acceleration model
integrated over the actual ``dt`` (three 0.1 s steps give the same covariance as one 0.3 s
step), and standard deviations scale with the plate size, because a near, big plate moves,
accelerates and jitters more pixels than a far, small one (see :class:`KalmanNoise`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from filterpy.common import Q_continuous_white_noise
from filterpy.kalman import KalmanFilter

_IDX = np.arange(4)


@dataclass(frozen=True)
class KalmanNoise:
    """Noise model of :class:`PlateKalman`. Values are per plate size: motion (centre) noise scales
    with the plate width in both axes; measurement noise and size noise scale with the matching
    box dimension (width for x and w, height for y and h). Pixel floors keep tiny plates from
    being trusted to sub-pixel accuracy.

    meas_std: detector box jitter, standard deviation as a fraction of the plate size. 0.1: the
        real detector's height error on fully visible rendered plates is about 10 % of the
        height (centre errors 2-3 %), and 0.05 made the gate too tight for it.
    meas_std_min_px: floor of that standard deviation, pixels.
    accel_std: white-noise acceleration spectral density, sqrt, in plate sizes per s^1.5
        (position/velocity random walk strength).
    size_accel_std: same for the width/height components (perspective zoom changes).
    init_vel_std: initial velocity uncertainty, plate sizes per second.
    init_vel_std_min_px: floor of the initial velocity uncertainty, pixels per second (a new
        plate's velocity is unknown; this must cover the fastest plates between two detections).
    init_size_vel_std: initial uncertainty of the width/height rates, plate sizes per second.
    size_vel_tau_s: time constant of the width/height rates, seconds: they decay as
        ``exp(-dt / tau)`` (a first-order Gauss-Markov rate instead of a constant one; None:
        constant). Zoom and turning change a plate's size for a few tenths of a second at a
        time; a constant rate extrapolated through a half-second gap (or learnt from one jittery
        box) shrank coasting tracks to a fraction of the plate, and they no longer matched it.
    """

    meas_std: float = 0.1
    meas_std_min_px: float = 1.0
    accel_std: float = 3.0
    size_accel_std: float = 1.0
    init_vel_std: float = 5.0
    init_vel_std_min_px: float = 300.0
    init_size_vel_std: float = 1.0
    size_vel_tau_s: float | None = 0.3


# Box conversions go through Python floats: for 4 numbers that is several times faster than
# numpy slicing, and they run a few times per track per frame.
def box_to_z(box: np.ndarray) -> np.ndarray:
    """(4,) x1 y1 x2 y2 pixels -> (4,) cx cy w h pixels (float64)."""
    x1, y1, x2, y2 = np.asarray(box)[:4].tolist()
    return np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1])


def z_to_box(z: np.ndarray) -> np.ndarray:
    """(>=4,) cx cy w h pixels -> (4,) float32 x1 y1 x2 y2 pixels."""
    cx, cy, w, h = z[:4].tolist()
    return np.array([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], dtype=np.float32)


def partial_view(
    pred_lo: np.ndarray, pred_hi: np.ndarray, det_lo: np.ndarray, det_hi: np.ndarray,
    partial_ratio: float, min_visible: float, pos_std: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a detection box along one axis as a possibly *partial* view of a predicted plate.

    A plate sliding behind an occluder (or across the image border) is detected as the visible
    part only: the box shrinks from one side while the other edge stays where the plate's edge
    is. Its centre and size are then not measurements of the plate's centre and size (a 110 px
    plate half hidden gives a 55 px box whose centre is 27 px off), which used to fail every
    gate and start a new track. A real size change (zoom, rotation) shrinks the box about its
    centre instead. So, per axis: when the detection is narrower than ``partial_ratio`` times the
    prediction but at least ``min_visible`` of it, and one of its edges is closer to the
    predicted edge than its centre is to the predicted centre and within a quarter of the
    hidden part plus ``pos_std`` (the prediction's position standard deviation) of it (the
    visible part lies inside the predicted plate), it is read as that edge of a plate of the
    predicted size: centre = that edge -/+ half the predicted size.

    All arguments broadcast (pixels). Returns (centre, partial): the centre to use for the
    detection along this axis and a bool mask of the entries read as partial views.
    """
    size_t = pred_hi - pred_lo
    size_d = det_hi - det_lo
    c_t = (pred_lo + pred_hi) / 2.0
    c_d = (det_lo + det_hi) / 2.0
    err_c = np.abs(c_d - c_t)
    err_lo = np.abs(det_lo - pred_lo)
    err_hi = np.abs(det_hi - pred_hi)
    possible = (size_d < partial_ratio * size_t) & (size_d >= min_visible * size_t)
    # The visible part must lie (nearly) inside the predicted plate: its aligned edge may be off
    # by at most a quarter of the hidden part plus the prediction's position uncertainty.
    tol = 0.25 * (size_t - size_d) + pos_std
    use_lo = possible & (err_lo < err_c) & (err_lo <= err_hi) & (err_lo <= tol)
    use_hi = possible & (err_hi < err_c) & (err_hi <= tol) & ~use_lo
    centre = np.where(use_lo, det_lo + size_t / 2.0, np.where(use_hi, det_hi - size_t / 2.0, c_d))
    return centre, use_lo | use_hi


def _partial_view_1(
    pred_lo: float, pred_hi: float, det_lo: float, det_hi: float,
    partial_ratio: float, min_visible: float, pos_std: float,
) -> tuple[float, bool]:
    """:func:`partial_view` for one pair, on Python floats (it runs for every matched track on
    every frame, where numpy's per-call overhead would dominate)."""
    size_t, size_d = pred_hi - pred_lo, det_hi - det_lo
    c_d = (det_lo + det_hi) / 2.0
    if not (min_visible * size_t <= size_d < partial_ratio * size_t):
        return c_d, False
    err_c = abs(c_d - (pred_lo + pred_hi) / 2.0)
    err_lo, err_hi = abs(det_lo - pred_lo), abs(det_hi - pred_hi)
    tol = 0.25 * (size_t - size_d) + pos_std
    if err_lo < err_c and err_lo <= err_hi and err_lo <= tol:
        return det_lo + size_t / 2.0, True
    if err_hi < err_c and err_hi <= tol:
        return det_hi - size_t / 2.0, True
    return c_d, False


@lru_cache(maxsize=64)
def _q_base(dt_s: float) -> np.ndarray:
    """(2, 2) [[dt^3/3, dt^2/2], [dt^2/2, dt]]: white-noise acceleration of unit spectral density
    integrated over dt_s (cached: the frame interval repeats)."""
    return np.asarray(Q_continuous_white_noise(dim=2, dt=dt_s, spectral_density=1.0))


@lru_cache(maxsize=64)
def _transition(dt_s: float, size_tau_s: float | None = None) -> np.ndarray:
    """(8, 8) transition for a step of dt_s seconds (read-only, shared): constant velocity for
    the centre; for the size, rates decaying with time constant ``size_tau_s`` (None: constant)."""
    F = np.eye(8)
    F[_IDX, _IDX + 4] = dt_s
    if size_tau_s:
        decay = math.exp(-dt_s / size_tau_s)
        F[[2, 3], [6, 7]] = size_tau_s * (1.0 - decay)
        F[[6, 7], [6, 7]] = decay
    F.flags.writeable = False
    return F


@lru_cache(maxsize=64)
def _q_unit(dt_s: float, size_tau_s: float | None = None) -> np.ndarray:
    """(8, 8) process covariance for unit spectral density on every component: kron(base, I4)
    for constant velocity; with ``size_tau_s``, the size components get the exact discretisation
    of a white-noise-driven rate decaying with that time constant (so steps still compose:
    three 0.1 s predictions equal one 0.3 s prediction)."""
    Q = np.kron(_q_base(dt_s), np.eye(4))
    if size_tau_s:
        b = 1.0 / size_tau_s
        e = math.exp(-b * dt_s)
        qpp = (dt_s - 2.0 * (1.0 - e) / b + (1.0 - e * e) / (2.0 * b)) / (b * b)
        qpv = (1.0 - e) ** 2 / (2.0 * b * b)
        qvv = (1.0 - e * e) / (2.0 * b)
        for i in (2, 3):
            Q[i, i], Q[i, i + 4], Q[i + 4, i], Q[i + 4, i + 4] = qpp, qpv, qpv, qvv
    Q.flags.writeable = False
    return Q


class PlateKalman:
    """filterpy ``KalmanFilter`` over ``[cx, cy, w, h, vx, vy, vw, vh]`` (px, px/s).

    Args:
        box: (4,) first measured box x1 y1 x2 y2, pixels.
        noise: noise model; defaults to :class:`KalmanNoise()`.
    """

    def __init__(self, box: np.ndarray, noise: KalmanNoise | None = None) -> None:
        self.noise = noise or KalmanNoise()
        z = box_to_z(box)
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.x = np.concatenate([z, np.zeros(4)])
        kf.H = np.eye(4, 8)
        kf.R = self._meas_cov(z)
        w, h = max(z[2], 1.0), max(z[3], 1.0)
        v = max(self.noise.init_vel_std * w, self.noise.init_vel_std_min_px)
        sv = self.noise.init_size_vel_std
        vel_std = np.array([v, v, sv * w, sv * h])  # zoom is slow: no pixel floor on size rates
        kf.P = np.diag(np.concatenate([np.diag(kf.R), vel_std**2]))
        self.kf = kf
        self._box = z_to_box(kf.x)  # cached: read several times per frame
        # Seconds since the first of the current run of partial-view updates along x, None when
        # the last update was a full view (see :meth:`update`).
        self._partial_run_s: float | None = None

    # -- noise --------------------------------------------------------------------------------
    def _meas_cov(self, z: np.ndarray) -> np.ndarray:
        """(4, 4) R for a box of size z[2:4]; the tracker passes the predicted size, so one
        oversized detection does not also loosen its own noise."""
        vx, vy = _meas_vars(z[2:4], self.noise)
        return np.diag([vx, vy, vx, vy])

    # -- filter steps --------------------------------------------------------------------------
    def predict(self, dt_s: float) -> None:
        """Advance the state by ``dt_s`` seconds (> 0); a no-op for ``dt_s <= 0``
        (:func:`predict_many` for one filter)."""
        predict_many([self], dt_s)

    def update(self, box: np.ndarray, partial: tuple[float, float, float] | None = None) -> None:
        """Correct with a measured box (4,) x1 y1 x2 y2, pixels (:func:`update_many` for one filter).

        ``partial``: ``(partial_ratio, min_visible, max_s)`` to read the box as a possible
        partial view of the plate along x (:func:`partial_view`; occluders and the image's side
        borders cut plates horizontally, and the few-pixel heights of thin plates are too noisy
        to tell a cut from jitter): when it is one, the x-centre measurement is the visible edge
        offset by half the predicted width, the width is not updated (its measurement variance
        is made huge) and its rate is set to zero, so an occluded plate keeps its size and
        position instead of shrinking and drifting with the visible part. A run of partial views
        lasting more than ``max_s`` seconds is taken at face value (a track whose size went
        wrong must not keep reading every correct detection as a partial view of itself).
        """
        update_many([self], [box], partial)

    def _partial_x(self, z: np.ndarray, r: np.ndarray, partial: tuple[float, float, float]) -> bool:
        """Read the measurement ``z`` (cx cy w h, px; ``r`` its variances) as a possible partial
        view along x (see :meth:`update`), in place; True when it is one (the width rate is then
        to be zeroed)."""
        ratio, min_visible, max_s = partial
        cx, w = float(self.kf.x[0]), float(self.kf.x[2])
        lo, hi = float(z[0] - z[2] / 2.0), float(z[0] + z[2] / 2.0)
        c, part = _partial_view_1(cx - w / 2.0, cx + w / 2.0, lo, hi, ratio, min_visible,
                                  math.sqrt(self.kf.P[0, 0] + r[0]))
        run = self._partial_run_s
        if part and (run is None or run <= max_s):
            self._partial_run_s = 0.0 if run is None else run
            z[0], z[2] = c, w
            r[2] = 1e6 * max(w, 1.0) ** 2
            return True
        self._partial_run_s = None
        return False

    # -- read-out -------------------------------------------------------------------------------
    @property
    def box(self) -> np.ndarray:
        """(4,) float32 x1 y1 x2 y2 of the current state, pixels (shared: do not modify)."""
        return self._box

    @property
    def centre(self) -> np.ndarray:
        """(2,) cx cy of the current state, pixels."""
        return self.kf.x[:2].copy()

    @property
    def velocity(self) -> np.ndarray:
        """(2,) vx vy of the current state, pixels per second."""
        return self.kf.x[4:6].copy()

    def position_innovation_cov(self) -> np.ndarray:
        """(2, 2) innovation covariance S of the centre measurement (cx, cy), pixels^2.

        ``S = H P H^T + R`` restricted to the centre; a detection centre ``c`` is within the gate
        when ``(c - centre)^T S^-1 (c - centre)`` is below a chi-square(2) quantile.
        """
        return self.kf.P[:2, :2] + np.diag(_meas_vars(self.kf.x[2:4], self.noise))


def _meas_vars(wh: np.ndarray, noise: KalmanNoise) -> np.ndarray:
    """Measurement variances (x and w, y and h), pixels^2, for box sizes ``wh`` (..., 2) px:
    the detector's jitter grows with the plate, down to a pixel floor."""
    return np.maximum(noise.meas_std * np.asarray(wh, np.float64), noise.meas_std_min_px) ** 2


def _process_covs(X: np.ndarray, noise: KalmanNoise, dt_s: float) -> np.ndarray:
    """(N, 8, 8) process covariances for states X (N, 8) over ``dt_s`` seconds, pixels^2.

    Motion is isotropic (a plate may move any way): both centre components get the same noise,
    scaled by the width (the plate's size), not by its few-pixel height; the size components by
    their own dimension. Row i of kron(base, I4) only couples components with the same i % 4, so
    scaling rows by that component's spectral density gives kron(base, diag(q)).
    """
    w, h = X[:, 2], X[:, 3]
    qm = (noise.accel_std * w) ** 2
    qw, qh = (noise.size_accel_std * w) ** 2, (noise.size_accel_std * h) ** 2
    q = np.stack([qm, qm, qw, qh, qm, qm, qw, qh], axis=1)  # (N, 8)
    return _q_unit(dt_s, noise.size_vel_tau_s)[None] * q[:, :, None]


def _boxes(X: np.ndarray) -> np.ndarray:
    """(N, >=4) states cx cy w h ... -> (N, 4) float32 x1 y1 x2 y2 (:func:`z_to_box` for many)."""
    half = X[:, 2:4] / 2.0
    return np.concatenate([X[:, :2] - half, X[:, :2] + half], axis=1).astype(np.float32)


def predict_many(filters: Sequence[PlateKalman], dt_s: float) -> None:
    """Advance every filter by ``dt_s`` seconds (> 0; a no-op for ``dt_s <= 0``), in one batch.

    The same step as ``filterpy.kalman.KalmanFilter.predict`` (x = F x, P = F P F^T + Q, with
    each filter's size-scaled Q) for all tracks at once: per-filter numpy calls on 8x8 matrices
    were most of the tracker's time (tests compare with filterpy). The filters must share one
    noise model.
    """
    if dt_s <= 0.0 or not filters:
        return
    dt_s = round(float(dt_s), 6)  # stable cache key for the frame interval
    noise = filters[0].noise
    F = _transition(dt_s, noise.size_vel_tau_s)
    X = np.stack([f.kf.x for f in filters])  # (N, 8)
    P = np.stack([f.kf.P for f in filters])  # (N, 8, 8)
    Q = _process_covs(X, noise, dt_s)
    X = X @ F.T
    np.maximum(X[:, 2:4], 1.0, out=X[:, 2:4])  # a shrinking plate must not reach zero size while coasting
    P = F @ P @ F.T + Q
    for f, x, p, box in zip(filters, X, P, _boxes(X)):
        if f._partial_run_s is not None:
            f._partial_run_s += dt_s
        kf = f.kf
        kf.x, kf.P = x, p
        kf.x_prior, kf.P_prior = x, p  # filterpy's bookkeeping after a predict (shared, not copied)
        f._box = box


def update_many(filters: Sequence[PlateKalman], boxes: Sequence[np.ndarray],
                partial: tuple[float, float, float] | None = None) -> None:
    """Correct each filter with its measured box (x1 y1 x2 y2, pixels), in one batch.

    The Joseph-form update of ``filterpy.kalman.KalmanFilter.update`` (results agree to
    rounding; tests compare), written out for ``H = [I4 0]`` and batched over the filters; the
    partial-view reading of each box (:meth:`PlateKalman.update`) is per filter.
    """
    if not filters:
        return
    B = np.array(boxes, dtype=np.float64)[:, :4]  # (N, 4) x1 y1 x2 y2
    Z = np.concatenate([(B[:, :2] + B[:, 2:]) / 2.0, B[:, 2:] - B[:, :2]], axis=1)  # (N, 4) cx cy w h
    X = np.stack([f.kf.x for f in filters])  # (N, 8)
    P = np.stack([f.kf.P for f in filters])  # (N, 8, 8)
    noise = filters[0].noise
    var = _meas_vars(X[:, 2:4], noise)  # (N, 2): x and w, y and h
    R = np.concatenate([var, var], axis=1)  # (N, 4)
    frozen = np.zeros(len(filters), bool)
    if partial is not None:
        # Only a box narrower than its prediction, or a filter inside a run of partial views,
        # can be one (the common full view skips the per-filter reading).
        ratio, min_visible, _ = partial
        w = X[:, 2]
        maybe = (Z[:, 2] >= min_visible * w) & (Z[:, 2] < ratio * w)
        for i, f in enumerate(filters):
            if maybe[i] or f._partial_run_s is not None:
                frozen[i] = f._partial_x(Z[i], R[i], partial)
    S = P[:, :4, :4] + R[:, :, None] * np.eye(4)
    K = np.linalg.solve(S, P[:, :4, :]).transpose(0, 2, 1)  # P H^T S^-1 (S and P symmetric): (N, 8, 4)
    X = X + (K @ (Z - X[:, :4])[:, :, None])[:, :, 0]
    I_KH = np.broadcast_to(np.eye(8), P.shape).copy()
    I_KH[:, :, :4] -= K
    P = I_KH @ P @ I_KH.transpose(0, 2, 1) + (K * R[:, None, :]) @ K.transpose(0, 2, 1)
    X[frozen, 6] = 0.0  # width unobserved: hold it rather than extrapolate its rate (a rate: not in the box)
    for f, x, p, box in zip(filters, X, P, _boxes(X)):
        f.kf.x, f.kf.P = x, p
        f._box = box


def position_innovation_covs(filters: Sequence[PlateKalman]) -> np.ndarray:
    """(T, 2, 2) :meth:`PlateKalman.position_innovation_cov` of many filters at once, pixels^2.

    Same result, vectorised (it runs for every track on every frame); the filters must share
    one noise model.
    """
    if not filters:
        return np.zeros((0, 2, 2))
    noise = filters[0].noise
    S = np.stack([f.kf.P[:2, :2] for f in filters])
    var = _meas_vars(np.stack([f.kf.x[2:4] for f in filters]), noise)  # (T, 2): x, y
    S[:, 0, 0] += var[:, 0]
    S[:, 1, 1] += var[:, 1]
    return S
