"""Models in this process, pipelines in worker processes: several inputs without one interpreter.

With every input on a thread of one process (:func:`stream.cli.run_many`), the per-frame Python
work of all streams (decoding, tracking, cropping, drawing, encoding) shares one interpreter lock;
on a GPU box that, not the models, caps the number of cameras (benchmarks/results/throughput_gpu:
16 1080p streams in one process ran at 59 fps in total, 176 over 8 separate CLI processes that
each loaded their own models). Here the inputs are split over worker processes that run the
pipelines, and this process keeps the only copy of the models: every worker's model calls come
back here, where :mod:`stream.batching` joins them into batched calls, so the GPU (or the CPU's
model threads) sees one stream of large batches and holds one copy of the weights.

Transport, per pipeline and model, is one :func:`multiprocessing.Pipe`: a request is pickled
(crops and fused sequences are small), except the detector's frames, which go through a file-backed
shared mapping (:class:`FrameBuffer`, in ``/dev/shm`` where there is one): the worker writes the
frames into it, the server reads them in place, so a 1080p frame is copied once, not pickled twice.
The worker side (:class:`RemoteDetector`, :class:`RemoteEnhancer`, :class:`RemoteReader`) has the
call signatures and attributes the pipeline uses, so the pipeline does not know where its models are.
"""
from __future__ import annotations

import logging
import mmap
import os
import pickle
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Attributes of a model that the pipeline (and its report's provenance) reads, copied to the workers.
_FACTS = ("config", "info", "backend", "precision", "scale")


def model_facts(model: Any) -> dict[str, Any]:
    """The picklable attributes of ``model`` that a remote stand-in must answer (``config``,
    ``info``, ``backend``, ``precision``, ``scale`` and ``model.config.arch``); missing or
    unpicklable ones are left out."""
    facts: dict[str, Any] = {}
    for name in _FACTS:
        value = getattr(model, name, None)
        if value is None:
            continue
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - an attribute that cannot travel is simply not offered
            continue
        facts[name] = value
    arch = getattr(getattr(getattr(model, "model", None), "config", None), "arch", None)
    if arch is not None:
        facts["model"] = SimpleNamespace(config=SimpleNamespace(arch=arch))
    return facts


def _shared_dir() -> str:
    """Where the frame mappings live: RAM-backed ``/dev/shm`` on Linux, else the temp folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


@dataclass(frozen=True)
class _Slot:
    """Where one frame lies in a mapping: byte offset, array shape and dtype string."""

    offset: int
    shape: tuple[int, ...]
    dtype: str


class FrameBuffer:
    """The worker's side of the frame transport: a file-backed mapping that grows when a batch of
    frames does not fit (a new file; the old mapping is dropped by both sides).

    The file is unlinked as soon as the server has mapped it (:meth:`mapped`), so a worker that
    dies never leaves it behind; the memory lives until both mappings are closed.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._dir = directory or _shared_dir()
        self._map: mmap.mmap | None = None
        self._path: str | None = None  # set until the server has mapped it
        self.size = 0

    def put(self, images: Sequence[np.ndarray]) -> tuple[str | None, list[_Slot]]:
        """Copy ``images`` into the mapping. Returns the path of a new mapping the server must
        open (None: the one it has), and each image's slot."""
        arrays = [np.ascontiguousarray(im) for im in images]
        offsets, total = [], 0
        for a in arrays:
            offsets.append(total)
            total += (a.nbytes + 63) // 64 * 64
        new_path = None
        if self._map is None or total > self.size:
            new_path = self._grow(max(total, 1) * 5 // 4)
        for a, off in zip(arrays, offsets):
            np.frombuffer(self._map, dtype=a.dtype, count=a.size, offset=off).reshape(a.shape)[...] = a
        return new_path, [_Slot(off, a.shape, a.dtype.str) for a, off in zip(arrays, offsets)]

    def mapped(self) -> None:
        """The server has opened the current file: unlink it (the mapping stays)."""
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None

    def close(self) -> None:
        self.mapped()
        if self._map is not None:
            self._map.close()
            self._map = None

    def _grow(self, size: int) -> str:
        self.close()
        fd, path = tempfile.mkstemp(prefix="license-enhancer-frames-", dir=self._dir)
        try:
            os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._path, self.size = path, size
        return path


def _views(mapping: mmap.mmap, slots: Sequence[_Slot]) -> list[np.ndarray]:
    """Read-only arrays over the slots of ``mapping`` (no copy)."""
    out = []
    for s in slots:
        count = int(np.prod(s.shape)) if s.shape else 1
        a = np.frombuffer(mapping, dtype=np.dtype(s.dtype), count=count, offset=s.offset).reshape(s.shape)
        a.flags.writeable = False
        out.append(a)
    return out


class RemoteError(RuntimeError):
    """A model call failed in the model server; the message is the server's one-line error."""


def error_payload(exc: BaseException) -> Any:
    """The exception itself where it pickles (so the worker re-raises the same type: a weights or
    input error keeps its exit status), else a :class:`RemoteError` with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RemoteError(f"{type(exc).__name__}: {exc}")


def serve(conn: Connection, method: Any) -> None:
    """Answer one worker pipeline's calls of one model until it closes the connection.

    Requests: ``("call", items)`` → ``method(items)``; ``("frames", path | None, slots)`` →
    ``method(views of the frames)``, mapping ``path`` first when given. Replies: ``("ok", result)``
    or ``("error", exception)``; the worker raises the exception in the calling thread."""
    mapping: mmap.mmap | None = None
    try:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return  # the worker is done (or gone)
            try:
                if request[0] == "frames":
                    _, path, slots = request
                    if path is not None:
                        with open(path, "r+b") as f:  # noqa: PTH123 - a plain fd for mmap
                            mapping = mmap.mmap(f.fileno(), 0)
                    if mapping is None:
                        raise RuntimeError("frames sent before their mapping")
                    result = method(_views(mapping, slots))
                else:
                    result = method(request[1])
                reply = ("ok", result)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
                reply = ("error", error_payload(exc))
            try:
                conn.send(reply)
            except (BrokenPipeError, EOFError, OSError):
                return
    finally:
        conn.close()
        # `mapping` is dropped, not closed: arrays a model kept would otherwise point at freed memory.


class _Remote:
    """Worker-side stand-in for a model in the server: the model's facts as attributes, calls
    sent over ``conn`` one at a time (a pipeline's background reads and its frame loop may call
    from different threads)."""

    def __init__(self, conn: Connection, facts: dict[str, Any]) -> None:
        self._conn = conn
        self._facts = dict(facts)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        facts = self.__dict__.get("_facts", {})
        if name in facts:
            return facts[name]
        raise AttributeError(name)

    def _call(self, request: tuple) -> Any:
        try:
            self._conn.send(request)
            status, payload = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise RemoteError("the model server has stopped") from None
        if status == "error":
            raise payload
        return payload

    def close(self) -> None:
        self._conn.close()


class RemoteDetector(_Remote):
    """``detect(images)`` of the server's detector: (H, W, 3) uint8 BGR frames in, one
    ``list[Detection]`` per frame out. Frames travel through a :class:`FrameBuffer`."""

    def __init__(self, conn: Connection, facts: dict[str, Any]) -> None:
        super().__init__(conn, facts)
        self._frames = FrameBuffer()

    def detect(self, images: Sequence[np.ndarray]) -> list:
        if not images:
            return []
        with self._lock:
            path, slots = self._frames.put(images)
            out = self._call(("frames", path, slots))
            if path is not None:
                self._frames.mapped()
            return out

    def close(self) -> None:
        super().close()
        self._frames.close()


class RemoteEnhancer(_Remote):
    """``enhance(items)`` of the server's generator or fusion model: one output per item."""

    def enhance(self, items: Sequence[Any]) -> list:
        if not items:
            return []
        with self._lock:
            return self._call(("call", list(items)))


class RemoteReader(_Remote):
    """``read(images)`` of the server's plate reader: one ``Read`` per plate image."""

    def read(self, images: Sequence[np.ndarray]) -> list:
        if not images:
            return []
        with self._lock:
            return self._call(("call", list(images)))


_REMOTE = {"detector": RemoteDetector, "enhancer": RemoteEnhancer, "fusion": RemoteEnhancer,
           "reader": RemoteReader}
_METHOD = {"detector": "detect", "enhancer": "enhance", "fusion": "enhance", "reader": "read"}


@dataclass
class StreamLink:
    """One pipeline's worker-side ends: a connection and the facts per model it uses
    (``detector``, and ``enhancer`` / ``fusion`` / ``reader`` where the run has them)."""

    conns: dict[str, Connection]
    facts: dict[str, dict[str, Any]]

    def remotes(self) -> dict[str, _Remote]:
        return {kind: _REMOTE[kind](conn, self.facts[kind]) for kind, conn in self.conns.items()}


class ModelServer:
    """This process's side: for every pipeline and model, a connection and a thread serving it
    with the (shared, batching) model."""

    def __init__(self, models: dict[str, Any]) -> None:
        """models: kind (``detector``, ``enhancer``, ``fusion``, ``reader``) → model or None."""
        self._models = {k: m for k, m in models.items() if m is not None}
        self._facts = {k: model_facts(m) for k, m in self._models.items()}
        self._threads: list[threading.Thread] = []

    def link(self, ctx: Any, name: str) -> StreamLink:
        """New connections for one pipeline, served from now on; returns the worker's ends."""
        from multiprocessing import Pipe

        ends = {}
        for kind, model in self._models.items():
            here, there = (ctx.Pipe if ctx is not None else Pipe)(duplex=True)
            t = threading.Thread(target=serve, args=(here, getattr(model, _METHOD[kind])),
                                 name=f"serve-{kind}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
            ends[kind] = there
        return StreamLink(ends, {k: self._facts[k] for k in ends})

    def join(self, timeout: float | None = None) -> None:
        """Wait for the serving threads (they end when their workers close their connections), at
        most ``timeout`` seconds in all (they are daemons: one left waiting does not hold the exit)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
