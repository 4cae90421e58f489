import numpy as np
import pytest

from stream.sr_schedule import SRScheduler


def test_each_track_is_enhanced_at_most_once_per_interval():
    s = SRScheduler(interval_s=0.2)
    img = np.zeros((4, 4, 3), np.uint8)
    assert s.due([1, 2], [True, True], 0.0) == [True, True]
    s.store(1, img, 0.0)
    s.store(2, img, 0.0)
    assert s.due([1, 2], [True, True], 0.1) == [False, False]
    assert s.due([1, 2], [True, False], 0.25) == [True, False]  # predicted crops wait for a detection


def test_new_track_gets_an_inset_even_from_a_predicted_crop():
    assert SRScheduler(0.5).due([7], [False], 3.0) == [True]


def test_zero_interval_enhances_every_detected_crop():
    s = SRScheduler(0.0)
    s.store(1, np.zeros((2, 2, 3), np.uint8), 1.0)
    assert s.due([1], [True], 1.0) == [True]


def test_latest_and_forgetting():
    s = SRScheduler()
    a = np.ones((2, 2, 3), np.uint8)
    s.store(3, a, 0.0)
    assert s.latest(3) is a and s.latest(4) is None
    s.keep_only([4])
    assert s.latest(3) is None
    with pytest.raises(ValueError):
        SRScheduler(-1)
