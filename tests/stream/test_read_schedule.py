import pytest

from stream.read_schedule import ReadSchedule


def _settle(s: ReadSchedule, tid: int = 1) -> None:
    s.record(tid, agrees=True, n_reads=8, support=8)


def test_unsettled_tracks_are_read_every_time():
    s = ReadSchedule(settled_interval_s=1.0)
    assert all(s.due(1, 100, t / 10) for t in range(10))
    s.record(1, agrees=True, n_reads=7, support=7)  # one read short of settling
    assert s.due(1, 100, 1.05) and not s.is_settled(1)
    assert s.skipped == 0


def test_settled_track_is_read_once_per_interval():
    s = ReadSchedule(settled_interval_s=1.0)
    assert s.due(1, 100, 0.0)
    _settle(s)
    assert s.is_settled(1)
    assert [s.due(1, 100, t) for t in (0.2, 0.4, 0.8, 1.0, 1.2)] == [False, False, False, True, False]
    assert s.skipped == 4
    assert s.due(2, 100, 0.4)  # other tracks keep their own pace


def test_a_closer_view_is_read_at_once():
    s = ReadSchedule(settled_interval_s=1.0, closer_view=1.2)
    assert s.due(1, 100, 0.0)
    _settle(s)
    assert not s.due(1, 119, 0.2)
    assert s.due(1, 120, 0.4)  # 20 % wider than any crop read so far
    assert not s.due(1, 125, 0.6)  # the widest read is now 120 px


def test_disagreement_or_weak_support_unsettles():
    s = ReadSchedule(settled_interval_s=1.0)
    s.due(1, 100, 0.0)
    _settle(s)
    s.record(1, agrees=False, n_reads=9, support=8)  # the latest read disagrees
    assert not s.is_settled(1) and s.due(1, 100, 0.2)
    s.record(1, agrees=True, n_reads=12, support=8)  # 67 % < 75 % read the voted text
    assert not s.is_settled(1) and s.due(1, 100, 0.4)


def test_zero_interval_reads_everything_and_gone_tracks_are_forgotten():
    s = ReadSchedule(settled_interval_s=0.0)
    s.due(1, 100, 0.0)
    _settle(s)
    assert s.due(1, 100, 0.1)
    s.keep_only([2])
    assert not s.is_settled(1)
    with pytest.raises(ValueError):
        ReadSchedule(-1)
