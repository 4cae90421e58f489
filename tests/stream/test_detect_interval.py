import pytest

from stream.detect_interval import AdaptiveDetectInterval


def test_raises_while_frames_wait_and_comes_back_once_they_do_not():
    iv = AdaptiveDetectInterval(1, 4, high_s=0.25, low_s=0.06, hold_s=1.0)
    assert iv.update(0.5, 0.0) == 2  # behind: one step
    assert iv.update(0.9, 0.5) == 2  # held: the step has not had time to act
    assert [iv.update(0.9, t) for t in (1.0, 2.0, 3.0, 4.0)] == [3, 4, 4, 4]  # up to the maximum
    assert iv.update(0.1, 5.0) == 4  # between the thresholds: stays
    assert [iv.update(0.01, t) for t in (6.0, 6.5, 7.0, 8.0, 9.0)] == [3, 3, 2, 1, 1]  # down to the minimum
    assert iv.steps_up == 3


def test_due_detects_the_first_frame_then_one_in_current():
    iv = AdaptiveDetectInterval(1, 4, high_s=0.25, low_s=0.06)
    assert [iv.due() for _ in range(3)] == [True, True, True]
    iv.current = 3
    assert [iv.due() for _ in range(7)] == [False, False, True, False, False, True, False]
    iv.current = 1  # lowered: the next frame is due at once
    assert iv.due()


@pytest.mark.parametrize("args", [(0, 2, 0.25, 0.06), (3, 2, 0.25, 0.06), (1, 4, 0.1, 0.2)])
def test_rejects_inconsistent_bounds(args):
    with pytest.raises(ValueError):
        AdaptiveDetectInterval(*args)


def test_the_live_status_line_says_when_the_detector_skips_frames():
    import io

    from stream.status import LiveStats, StatusLine

    out = io.StringIO()
    status = StatusLine("rtsp://cam/1", 10.0, out)
    stats = LiveStats(frames=30, size=(1920, 1080), connected=True)
    assert "detector" not in status.tick(stats, force=True)
    stats.detect_every = 3
    assert status.tick(stats, force=True).endswith("1920x1080, detector on 1 frame in 3")
