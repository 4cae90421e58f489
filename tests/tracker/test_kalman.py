"""PlateKalman: constant-velocity estimates, time steps in seconds, innovation covariance."""
from __future__ import annotations

import numpy as np

from tracker.kalman import PlateKalman, box_to_z, position_innovation_covs, z_to_box


def _box(cx: float, cy: float, w: float = 60.0, h: float = 15.0) -> np.ndarray:
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)


def _track_line(fps: float, seconds: float, vx: float, vy: float) -> PlateKalman:
    kf = PlateKalman(_box(100.0, 300.0))
    for i in range(1, int(round(seconds * fps)) + 1):
        t = i / fps
        kf.predict(1.0 / fps)
        kf.update(_box(100.0 + vx * t, 300.0 + vy * t))
    return kf


def test_box_conversions_round_trip() -> None:
    box = np.array([10.0, 20.0, 70.0, 35.0], dtype=np.float32)
    np.testing.assert_allclose(box_to_z(box), [40.0, 27.5, 60.0, 15.0])
    np.testing.assert_allclose(z_to_box(box_to_z(box)), box)


def test_velocity_estimate_in_pixels_per_second() -> None:
    kf = _track_line(fps=30, seconds=1.0, vx=600.0, vy=-150.0)
    np.testing.assert_allclose(kf.velocity, [600.0, -150.0], atol=15.0)
    np.testing.assert_allclose(kf.centre, [700.0, 150.0], atol=2.0)


def test_same_velocity_estimate_at_10_and_30_fps() -> None:
    v10 = _track_line(fps=10, seconds=1.5, vx=400.0, vy=80.0).velocity
    v30 = _track_line(fps=30, seconds=1.5, vx=400.0, vy=80.0).velocity
    np.testing.assert_allclose(v10, v30, atol=10.0)


def test_predict_composes_over_time() -> None:
    # Continuous white-noise model: three 0.1 s steps equal one 0.3 s step (state and covariance).
    a = _track_line(fps=10, seconds=0.5, vx=300.0, vy=0.0)
    b = _track_line(fps=10, seconds=0.5, vx=300.0, vy=0.0)
    for _ in range(3):
        a.predict(0.1)
    b.predict(0.3)
    np.testing.assert_allclose(a.kf.x, b.kf.x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.kf.P, b.kf.P, rtol=1e-9, atol=1e-9)


def test_predict_zero_or_negative_is_noop() -> None:
    kf = _track_line(fps=30, seconds=0.3, vx=300.0, vy=0.0)
    x, P = kf.kf.x.copy(), kf.kf.P.copy()
    kf.predict(0.0)
    kf.predict(-0.1)
    np.testing.assert_array_equal(kf.kf.x, x)
    np.testing.assert_array_equal(kf.kf.P, P)


def test_innovation_covariance_grows_while_predicting() -> None:
    kf = _track_line(fps=30, seconds=0.5, vx=300.0, vy=0.0)
    S0 = kf.position_innovation_cov()
    assert S0.shape == (2, 2)
    np.testing.assert_allclose(S0, S0.T)
    assert np.all(np.linalg.eigvalsh(S0) > 0)
    kf.predict(0.3)
    S1 = kf.position_innovation_cov()
    assert S1[0, 0] > 4 * S0[0, 0] and S1[1, 1] > 4 * S0[1, 1]
    np.testing.assert_allclose(position_innovation_covs([kf, kf]), np.stack([S1, S1]))


def test_box_size_stays_positive_when_shrinking() -> None:
    kf = PlateKalman(_box(100.0, 100.0, 40.0, 10.0))
    kf.predict(0.1)
    kf.update(_box(100.0, 100.0, 20.0, 5.0))  # shrinking fast
    for _ in range(50):
        kf.predict(0.1)
    w, h = kf.box[2] - kf.box[0], kf.box[3] - kf.box[1]
    assert w >= 1.0 - 1e-4 and h >= 1.0 - 1e-4


def test_size_rate_decays_so_a_coasting_track_keeps_most_of_its_size() -> None:
    kf = PlateKalman(_box(300.0, 300.0, 100.0, 30.0))
    for i in range(1, 10):  # shrinking 100 px/s for 0.3 s (a turn)
        kf.predict(1 / 30)
        kf.update(_box(300.0, 300.0, 100.0 - 100.0 * i / 30, 30.0))
    w0 = kf.box[2] - kf.box[0]
    kf.predict(0.5)  # half a second without detections
    w1 = kf.box[2] - kf.box[0]
    assert w1 < w0  # still shrinking a little ...
    assert w1 > w0 - 0.5 * 100.0 * 0.5  # ... but far less than a constant rate would (-50 px)


def test_partial_view_reads_an_edge_aligned_smaller_box_as_the_visible_part() -> None:
    from tracker.kalman import partial_view

    # Predicted 100..200. Visible part 150..200 (right edge): centre 150 of a 100 px plate.
    c, part = partial_view(100.0, 200.0, 150.0, 200.0, 0.8, 0.3)
    assert part and c == 150.0
    c, part = partial_view(100.0, 200.0, 100.0, 160.0, 0.8, 0.3)  # left edge
    assert part and c == 150.0
    # Centred shrink (zoom, rotation): a size change, not a partial view.
    c, part = partial_view(100.0, 200.0, 125.0, 175.0, 0.8, 0.3)
    assert not part and c == 150.0
    # Too small, nearly the full size, or sticking out of the plate: not partial views.
    assert not partial_view(100.0, 200.0, 180.0, 200.0, 0.8, 0.3)[1]
    assert not partial_view(100.0, 200.0, 115.0, 200.0, 0.8, 0.3)[1]
    assert not partial_view(100.0, 200.0, 170.0, 230.0, 0.8, 0.3)[1]
    # ... unless the prediction is that uncertain (position standard deviation 30 px).
    assert partial_view(100.0, 200.0, 170.0, 230.0, 0.8, 0.3, 30.0)[1]


def test_update_with_a_partial_view_keeps_size_and_centre() -> None:
    kf = PlateKalman(_box(150.0, 300.0, 100.0, 30.0))
    for _ in range(5):
        kf.predict(1 / 30)
        kf.update(_box(150.0, 300.0, 100.0, 30.0))
    kf.predict(1 / 30)
    kf.update(np.array([150.0, 285.0, 200.0, 315.0], np.float32), partial=(0.8, 0.3, 0.5))
    np.testing.assert_allclose(kf.box, [100.0, 285.0, 200.0, 315.0], atol=1.0)
    assert abs(kf.kf.x[6]) < 1e-9  # width rate held at zero while the width is unobserved


def test_batched_predict_and_update_match_filterpy_one_filter_at_a_time() -> None:
    """predict_many / update_many over several filters give what filterpy's own KalmanFilter
    gives, filter by filter, with the same F, Q, H and R."""
    from filterpy.kalman import KalmanFilter

    from tracker.kalman import KalmanNoise, _process_covs, _transition, predict_many, update_many

    rng = np.random.default_rng(5)
    boxes = [np.array([x, y, x + w, y + w / 4]) for x, y, w in rng.uniform([0, 0, 20], [900, 500, 150], (6, 3))]
    ours = [PlateKalman(b) for b in boxes]
    refs = []
    for f in ours:
        ref = KalmanFilter(dim_x=8, dim_z=4)
        ref.x, ref.P, ref.H = f.kf.x.copy(), f.kf.P.copy(), np.eye(4, 8)
        refs.append(ref)
    for step in range(5):
        dt = 1 / 30 if step % 2 else 0.1
        Qs = _process_covs(np.stack([f.kf.x for f in ours]), KalmanNoise(), round(dt, 6))
        predict_many(ours, dt)
        for ref, Q in zip(refs, Qs):
            ref.predict(F=_transition(round(dt, 6), KalmanNoise().size_vel_tau_s), Q=Q)
        meas = [b + rng.normal(0, 2, 4) + 5 * step for b in boxes]
        Rs = [f._meas_cov(f.kf.x) for f in ours]
        update_many(ours, meas)
        for ref, m, R in zip(refs, meas, Rs):
            ref.update(box_to_z(m), R=R)
        for f, ref in zip(ours, refs):
            np.testing.assert_allclose(f.kf.x, ref.x, rtol=1e-9, atol=1e-7)
            np.testing.assert_allclose(f.kf.P, ref.P, rtol=1e-9, atol=1e-7)
