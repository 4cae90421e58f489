import numpy as np
import pytest

from stream.still_gate import StillSceneGate


def _scene(rng: np.random.Generator, car_x: int | None = None, noise: float = 3.0) -> np.ndarray:
    """A 1080p grey scene with sensor noise and, optionally, a 160x90 px dark car at ``car_x``."""
    frame = np.full((1080, 1920, 3), 120.0)
    frame[600:, :] = 80.0  # road
    if car_x is not None:
        frame[700:790, car_x: car_x + 160] = 30.0
    return np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)


def test_still_frames_skip_the_detector_except_every_max_skip_s():
    rng = np.random.default_rng(0)
    gate = StillSceneGate(max_skip_s=1.0)
    due = [gate.due(_scene(rng, car_x=500), i / 10) for i in range(25)]  # a parked car, noise only
    assert due == [i in (0, 10, 20) for i in range(25)]
    assert gate.skipped == 22


def test_forced_frames_go_through_and_become_the_reference():
    """force (the tracker waits to confirm a track): still frames reach the detector too, and the
    one-a-second clock restarts from the last of them."""
    rng = np.random.default_rng(2)
    gate = StillSceneGate(max_skip_s=1.0)
    due = [gate.due(_scene(rng, car_x=500), i / 10, force=i < 4) for i in range(20)]
    assert due == [i < 4 or i == 13 for i in range(20)]
    assert gate.skipped == 15


def test_a_moving_car_or_a_new_size_brings_the_detector_back():
    rng = np.random.default_rng(1)
    gate = StillSceneGate(max_skip_s=5.0)
    assert gate.due(_scene(rng), 0.0)
    assert not gate.due(_scene(rng), 0.1)
    assert gate.due(_scene(rng, car_x=0), 0.2)  # a car arrives
    assert gate.due(_scene(rng, car_x=8), 0.3)  # and moves 8 px (one thumbnail pixel)
    assert not gate.due(_scene(rng, car_x=8), 0.4)  # and stops
    assert gate.due(np.zeros((720, 1280, 3), np.uint8), 0.5)  # the stream changed size
    # a slow change (light: +3 grey levels a frame) is measured against the last detector frame,
    # so it adds up until the detector runs again
    base = np.full((720, 1280, 3), 100, np.uint8)
    assert gate.due(base, 0.55)
    assert [gate.due(base + 3 * k, 0.6 + k / 10) for k in range(1, 6)] == [False, False, False, True, False]
    skipped = gate.skipped
    gate.reset()  # a new connection: its first frame goes through the detector, the count stays
    assert gate.due(base + 15, 1.15) and gate.skipped == skipped
    with pytest.raises(ValueError):
        StillSceneGate(max_skip_s=0)
