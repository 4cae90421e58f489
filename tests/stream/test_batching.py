"""stream.batching: concurrent callers share one model call and each gets its own results."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from stream.batching import BatchingCaller, SharedDetector


def _run_threads(n: int, target) -> list:
    out: list = [None] * n
    errors: list = []

    def work(i: int) -> None:
        try:
            out[i] = target(i)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out if not errors else errors


def test_concurrent_calls_are_merged_and_each_caller_gets_its_own_results() -> None:
    sizes: list[int] = []

    def slow_square(xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        time.sleep(0.05)  # the model is busy: requests queue up behind it
        return [x * x for x in xs]

    caller = BatchingCaller(slow_square, max_batch=64)
    results = _run_threads(8, lambda i: caller([10 * i, 10 * i + 1, 10 * i + 2]))
    caller.close()
    assert results == [[(10 * i) ** 2, (10 * i + 1) ** 2, (10 * i + 2) ** 2] for i in range(8)]
    assert sum(sizes) == 24 and len(sizes) < 8  # at least some calls were batched together
    assert caller.calls == len(sizes) and caller.items == 24


def test_batches_never_exceed_max_batch() -> None:
    sizes: list[int] = []

    def ident(xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        time.sleep(0.02)
        return xs

    caller = BatchingCaller(ident, max_batch=4, max_wait_s=0.05)
    results = _run_threads(6, lambda i: caller([i, i]))
    caller.close()
    assert results == [[i, i] for i in range(6)]
    assert max(sizes) <= 4


def test_an_error_reaches_every_caller_of_the_failed_batch_and_the_worker_survives() -> None:
    def fails_on_negative(xs: list[int]) -> list[int]:
        if any(x < 0 for x in xs):
            raise ValueError("negative input")
        return xs

    caller = BatchingCaller(fails_on_negative)
    with pytest.raises(ValueError, match="negative input"):
        caller([-1])
    assert caller([3]) == [3]
    caller.close()
    with pytest.raises(RuntimeError, match="closed"):
        caller([1])


def test_shared_detector_gives_the_same_detections_as_the_detector(clip_3s) -> None:
    import av

    from tracker.detector import PlateDetector

    with av.open(str(clip_3s.video_path)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(4), c.decode(video=0))]
    detector = PlateDetector()
    direct = detector.detect(frames)
    shared = SharedDetector(detector)
    per_thread = _run_threads(4, lambda i: shared.detect([frames[i]])[0])
    shared.close()
    assert sum(len(d) for d in direct) >= 4  # the clip's plates are found
    for d_direct, d_shared in zip(direct, per_thread):
        assert len(d_direct) == len(d_shared)
        for a, b in zip(d_direct, d_shared):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
    assert shared.config is detector.config  # other attributes pass through
