"""Share one detector and one generator between several streams in one process.

Each input runs its own pipeline on its own thread; their model calls meet here. A
:class:`BatchingCaller` owns the model and runs it on one worker thread: calls that arrive while
the model is busy (or within ``max_wait_s`` of the first) are joined into one batch, so N streams
cost about one batched call per frame time instead of N small ones, and no model is ever entered
by two threads at once (ultralytics predictors and ONNX sessions are not meant for that).

:class:`SharedDetector` and :class:`SharedEnhancer` (the single-frame generator or the multi-frame
fusion) wrap the product's models with the call signatures the pipeline already uses
(``detect``, ``enhance``), so the pipeline does not know whether it is alone.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


class BatchingCaller(Generic[T, R]):
    """Thread-safe front of ``fn(list[T]) -> list[R]`` that merges concurrent calls into batches.

    max_batch: items per call of ``fn`` at most (a request is never split; a single request
        larger than this runs alone).
    max_wait_s: how long the worker waits for more requests after the first one of a batch,
        seconds; 0 takes only what is already queued (no added latency for a single stream).
    """

    def __init__(self, fn: Callable[[list[T]], list[R]], max_batch: int = 32, max_wait_s: float = 0.0,
                 name: str = "batching") -> None:
        self._fn = fn
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self._pending: queue.Queue = queue.Queue()
        self._closed = False
        self.calls = 0  # batched calls of fn so far (for benchmarks and tests)
        self.items = 0  # items passed to fn so far
        self._worker = threading.Thread(target=self._serve, name=name, daemon=True)
        self._worker.start()

    def __call__(self, items: Sequence[T]) -> list[R]:
        """``fn(items)``, possibly run together with other threads' items; blocks until done and
        re-raises ``fn``'s exception in every caller of the failed batch."""
        items = list(items)
        if not items:
            return []
        if self._closed:
            raise RuntimeError("BatchingCaller is closed")
        fut: Future = Future()
        self._pending.put((items, fut))
        return fut.result()

    def close(self) -> None:
        """Stop the worker after the queued requests; later calls raise."""
        if not self._closed:
            self._closed = True
            self._pending.put(_STOP)
            self._worker.join(timeout=30)

    def _gather(self, first) -> tuple[list, bool]:
        batch, n, stop = [first], len(first[0]), False
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_batch:
            try:
                timeout = deadline - time.monotonic()
                req = self._pending.get(timeout=timeout) if timeout > 0 else self._pending.get_nowait()
            except queue.Empty:
                break
            if req is _STOP:
                stop = True
                break
            if n + len(req[0]) > self.max_batch:
                self._pending.put(req)  # next batch; order across callers does not matter
                break
            batch.append(req)
            n += len(req[0])
        return batch, stop

    def _serve(self) -> None:
        while True:
            first = self._pending.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            items = [x for its, _ in batch for x in its]
            try:
                out = self._fn(items)
                if len(out) != len(items):
                    raise RuntimeError(f"batched call returned {len(out)} results for {len(items)} items")
            except BaseException as exc:  # noqa: BLE001 - handed to the callers, who re-raise it
                for _, fut in batch:
                    fut.set_exception(exc)
            else:
                self.calls += 1
                self.items += len(items)
                k = 0
                for its, fut in batch:
                    fut.set_result(out[k: k + len(its)])
                    k += len(its)
            if stop:
                return


class _Shared:
    """Common part: forwards unknown attributes (``scale``, ``config`` ...) to the wrapped model."""

    def __init__(self, model: Any, caller: BatchingCaller) -> None:
        self._model = model
        self._caller = caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    @property
    def calls(self) -> int:
        """Batched model calls so far."""
        return self._caller.calls

    def close(self) -> None:
        self._caller.close()


class SharedDetector(_Shared):
    """A ``tracker.detector.PlateDetector`` shared by several pipelines: ``detect(images)``
    with (H, W, 3) uint8 BGR frames of any sizes returns one ``list[Detection]`` per frame."""

    def __init__(self, detector: Any, max_batch: int = 16, max_wait_s: float = 0.0) -> None:
        super().__init__(detector, BatchingCaller(detector.detect, max_batch, max_wait_s, "shared-detector"))

    def detect(self, images: Sequence[Any]) -> list:
        return self._caller(images)


class SharedEnhancer(_Shared):
    """A ``sr_model.enhancer.PlateEnhancer`` (or ``sr_model.fusion.FusionEnhancer``: its inputs are
    sequences of crops) shared by several pipelines: ``enhance(items)`` returns one output per
    item, exactly what the wrapped model's ``enhance`` returns for it."""

    def __init__(self, enhancer: Any, max_batch: int = 64, max_wait_s: float = 0.0) -> None:
        super().__init__(enhancer, BatchingCaller(enhancer.enhance, max_batch, max_wait_s, "shared-enhancer"))

    def enhance(self, items: Sequence[Any]) -> list:
        return self._caller(items)


class SharedReader(_Shared):
    """A ``stream.reads.PlateReader`` shared by several pipelines: ``read(images)`` returns one
    ``Read`` per plate image, as the reader does alone."""

    def __init__(self, reader: Any, max_batch: int = 64, max_wait_s: float = 0.0) -> None:
        super().__init__(reader, BatchingCaller(reader.read, max_batch, max_wait_s, "shared-reader"))

    def read(self, images: Sequence[Any]) -> list:
        return self._caller(images)
