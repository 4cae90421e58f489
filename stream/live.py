"""Live RTSP source: timeouts, reconnect with backoff, and a latest-frame policy that bounds lag.

A decode thread always reads the camera, so the camera's (and the kernel's) buffers never fill
and lag cannot build up there. Decoded frames wait in a small buffer; when the pipeline is
slower than the camera, the frames that have waited longer than ``max_lag_s`` are dropped
(counted) and never processed: frames are dropped, results are not.

When the stream fails (connection lost, read timeout, end of stream) the thread reopens it with
exponential backoff, forever by default. Each (re)connection is announced to the consumer with a
:class:`StreamEvent`, so the pipeline can reset its tracker and handle a new frame size.

Timestamps (``Frame.pts_s``) are seconds since the first frame: the stream's own timestamps
within one connection (smooth), anchored to the wall clock at each (re)connection (so outages
show as gaps, never as time running backwards). Audio is not read from live streams.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av

from stream.errors import InputError
from stream.redact import URL_SCHEMES, redact
from stream.source import MAX_SIDE, SourceInfo
from stream.status import LiveStats, StatusLine
from stream.types import Frame

log = logging.getLogger(__name__)

LIVE_TIME_BASE = Fraction(1, 90000)  # RTP's video clock; pts are re-based to it in any case


@dataclass(frozen=True)
class LiveConfig:
    """transport: "tcp" (default: no packet loss, firewall-friendly) or "udp".
    open_timeout_s: seconds to wait for the camera to answer when (re)connecting.
    read_timeout_s: seconds without data before a connection is declared dead.
    max_reconnects: give up after this many failed (re)connection attempts in a row;
        None = never give up. 0 = no retries: the first failure ends the run.
    backoff_s / backoff_max_s: first wait between attempts and its cap (doubles each failure).
    max_lag_s: frames older than this when the pipeline asks for one are dropped.
    duration_s: stop cleanly after this many seconds (wall clock); None = run until stopped."""

    transport: str = "tcp"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    max_reconnects: int | None = None
    backoff_s: float = 0.25
    backoff_max_s: float = 2.0  # a camera back up is found within ~2 s; a retry every 2 s costs nothing
    max_lag_s: float = 1.0
    duration_s: float | None = None


@dataclass(frozen=True)
class StreamEvent:
    """A (re)connection, handed to the consumer in stream order before the frames that follow it.

    kind: "connected" (the first), "reconnected", or "resized" (same connection, new frame size);
    size: (width, height) px of the frames that follow;
    size_changed: True when it differs from the previous connection's; down_s: seconds between
    losing the previous connection and the first frame of this one (0 for the first);
    reason: why the previous connection ended; at: wall-clock time of the (re)connection (Unix s)."""

    kind: str
    size: tuple[int, int]
    size_changed: bool = False
    down_s: float = 0.0
    reason: str = ""
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Decoded:
    """A decoded frame not yet converted to BGR: conversion happens in the consumer, only for the
    frames it takes, so dropped frames cost no colour conversion."""

    pts_s: float
    frame: av.VideoFrame


@dataclass(frozen=True)
class _End:
    reason: str
    error: bool


class _Permanent(Exception):
    """A failure that retrying cannot fix (bad path, bad credentials, not a video stream)."""


def _explain(exc: BaseException, elapsed_s: float, timeout_s: float, opening: bool = True) -> str:
    """One line, credentials and FFmpeg's echo of the URL removed."""
    if isinstance(exc, av.error.FFmpegError):
        text = exc.strerror or type(exc).__name__
    else:
        text = str(exc).strip() or type(exc).__name__
    if elapsed_s >= 0.9 * timeout_s and isinstance(exc, (av.error.InvalidDataError, av.error.ExitError,
                                                         TimeoutError)):
        text = f"no answer within {timeout_s:g} s (timeout)"
    elif opening and isinstance(exc, av.error.InvalidDataError):  # FFmpeg's word for "no usable RTSP reply"
        text = "no valid RTSP answer (host unreachable, not an RTSP server, or connection closed)"
    return redact(text)


def _classify(exc: BaseException) -> bool:
    """True when ``exc`` is permanent: the server answered, and the answer is no."""
    return isinstance(exc, (av.error.HTTPNotFoundError, av.error.HTTPUnauthorizedError,
                            av.error.HTTPForbiddenError, _Permanent))


class LiveSource:
    """Iterate a live RTSP stream: yields :class:`StreamEvent` and :class:`Frame`, forever or until
    the stream is gone for good (``max_reconnects``), ``duration_s`` passes or :meth:`close`.

    The first connection is made in the constructor, so a wrong URL fails at once with an
    ``InputError``; ``info`` describes that first connection (the sink's size and rate).
    ``stats`` holds live counters; ``status`` (optional) prints them as a line every few seconds.
    """

    def __init__(self, url: str, config: LiveConfig = LiveConfig(), status: StatusLine | None = None) -> None:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in URL_SCHEMES:
            raise InputError(f"unsupported URL scheme {scheme!r} in {redact(url)} (use rtsp:// or a file path)")
        if config.transport not in ("tcp", "udp"):
            raise InputError(f"unknown RTSP transport {config.transport!r} (use tcp or udp)")
        self.url = url
        self.display_name = redact(url)
        self.config = config
        self.stats = LiveStats()
        self.status = status
        self._t0 = time.monotonic()
        self._lock = threading.Condition()
        self._items: deque[tuple[float, object]] = deque()  # (arrival monotonic s, Frame | event | _End)
        self._n_frames_buffered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_pts = -1.0
        self._origin: float | None = None  # monotonic time of the first frame: pts 0
        self._yielded = 0
        container = self._connect_first()
        self.info = self._describe(container)
        self._container: av.container.InputContainer | None = container

    # -- connecting -----------------------------------------------------------------------------
    def _open(self) -> av.container.InputContainer:
        cfg = self.config
        options = {
            "rtsp_transport": cfg.transport,
            "timeout": str(int(cfg.read_timeout_s * 1e6)),  # socket I/O timeout, µs
            # µs / bytes: a camera stream needs no long probing; faster reconnects. (No
            # fflags=nobuffer: it discards the probed packets, the first keyframe among them.)
            "analyzeduration": "1000000",
            "probesize": "500000",
        }
        t = time.monotonic()
        try:
            container = av.open(self.url, options=options, timeout=(cfg.open_timeout_s, cfg.read_timeout_s))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
            reason = _explain(exc, time.monotonic() - t, cfg.open_timeout_s)
            raise (_Permanent(reason) if _classify(exc) else ConnectionError(reason)) from None
        if not container.streams.video:
            container.close()
            raise _Permanent("the stream has no video track")
        cc = container.streams.video[0].codec_context
        if cc is None:
            container.close()
            raise _Permanent("unsupported video codec (no decoder)")
        if not cc.width or not cc.height:
            container.close()
            raise ConnectionError("video track has no frame size yet")
        if max(cc.width, cc.height) > MAX_SIDE:
            container.close()
            raise _Permanent(f"frame size {cc.width}x{cc.height} is over the supported maximum of {MAX_SIDE} px")
        container.streams.video[0].thread_type = "SLICE"  # frame threads would add frames of latency
        return container

    def _connect_first(self) -> av.container.InputContainer:
        failures, wait = 0, self.config.backoff_s
        while True:
            try:
                return self._open()
            except _Permanent as exc:
                raise InputError(f"cannot open {self.display_name}: {exc}") from None
            except ConnectionError as exc:
                failures += 1
                limit = self.config.max_reconnects
                if limit is not None and failures > limit:
                    raise InputError(f"cannot connect to {self.display_name}: {exc}") from None
                if failures & (failures - 1) == 0:  # attempts 1, 2, 4, 8, ...: a dead camera is not a log flood
                    log.warning("cannot connect to %s (attempt %d): %s; retrying every %.1f s or less",
                                self.display_name, failures, exc, self.config.backoff_max_s)
                self._sleep(wait)
                wait = min(wait * 2, self.config.backoff_max_s)

    def _sleep(self, seconds: float) -> None:
        """Wait, waking at once when closed (and letting signals through in the main thread)."""
        self._stop.wait(seconds)

    def _describe(self, container: av.container.InputContainer) -> SourceInfo:
        video = container.streams.video[0]
        cc = video.codec_context
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        fps = float(rate) if 1 <= float(rate) <= 240 else 25.0  # RTSP rates are often absent or odd
        self.stats.size, self.stats.connected = (cc.width, cc.height), True
        return SourceInfo(width=cc.width, height=cc.height, fps=fps, n_frames=0, time_base=LIVE_TIME_BASE,
                          codec=cc.name, audio=None)

    # -- the decode thread ----------------------------------------------------------------------
    def _push(self, item: object) -> None:
        now = time.monotonic()
        with self._lock:
            if isinstance(item, _Decoded):
                if self._n_frames_buffered >= self._capacity():
                    self._drop_oldest_frame()
                self._n_frames_buffered += 1
            self._items.append((now, item))
            self._lock.notify()

    def _capacity(self) -> int:
        # Enough frames for max_lag at the stream's rate (plus slack), the rest would be dropped
        # anyway; and at most ~256 MiB of them (a 4K camera's frames are 25 MB each as BGR).
        w, h = self.stats.size
        by_memory = (256 << 20) // max(1, w * h * 3)
        return max(2, min(512, by_memory, math.ceil(self.info.fps * self.config.max_lag_s) + 2))

    def _drop_oldest_frame(self) -> None:
        for i, (_, item) in enumerate(self._items):
            if isinstance(item, _Decoded):
                del self._items[i]
                self._n_frames_buffered -= 1
                self.stats.dropped += 1
                return

    def _session(self, container: av.container.InputContainer, event: StreamEvent) -> tuple[str, bool]:
        """Read one connection until it ends; returns (why it ended, whether it delivered frames)."""
        video = container.streams.video[0]
        self._push(event)
        size = event.size
        anchor: tuple[float, float] | None = None  # (stream time, source time) of the first frame
        delivered = False
        t_read = time.monotonic()
        try:
            for packet in container.demux(video):
                if self._stop.is_set() or self._expired():
                    return "stopped", delivered
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:  # one damaged packet (UDP loss): skip it, keep the connection
                    continue
                for frame in decoded:
                    if (frame.width, frame.height) != size:  # some cameras switch resolution mid-stream
                        self._push(StreamEvent("resized", (frame.width, frame.height), size_changed=True,
                                               reason=f"was {size[0]}x{size[1]}"))
                        size = self.stats.size = (frame.width, frame.height)
                    if self._origin is None:
                        self._origin = time.monotonic()
                    now = time.monotonic() - self._origin
                    t = float(frame.time) if frame.time is not None else now
                    if anchor is None or abs(anchor[1] + (t - anchor[0]) - now) > 2.0:
                        anchor = (t, now)  # first frame, or stream clock jumped / drifted: re-anchor
                    pts = max(anchor[1] + (t - anchor[0]), self._last_pts + 1e-3)
                    self._last_pts = pts
                    self._push(_Decoded(pts, frame))
                    delivered = True
                t_read = time.monotonic()
            return "end of stream", delivered
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            return _explain(exc, time.monotonic() - t_read, self.config.read_timeout_s, opening=False), delivered
        finally:
            container.close()

    def _expired(self) -> bool:
        d = self.config.duration_s
        return d is not None and time.monotonic() - self._t0 >= d

    def _run(self) -> None:
        container, event = self._container, StreamEvent("connected", (self.info.width, self.info.height))
        self._container = None
        failures = 0
        try:
            while True:
                reason, delivered = self._session(container, event)
                if self._stop.is_set() or self._expired():
                    self._push(_End("duration reached" if self._expired() else "stopped", error=False))
                    return
                lost_at = time.monotonic()
                self.stats.connected = False
                if delivered:
                    failures = 0
                log.warning("%s: stream lost (%s); reconnecting", self.display_name, reason)
                wait = self.config.backoff_s
                while True:
                    limit = self.config.max_reconnects
                    if limit == 0:
                        self._push(_End(f"stream ended ({reason}); reconnecting is off", error=True))
                        return
                    if limit is not None and failures >= limit:
                        self._push(_End(f"stream lost ({reason}); {failures} reconnection attempts failed",
                                        error=True))
                        return
                    self._sleep(wait if failures else 0.0)  # first retry at once: most drops are blips
                    if self._stop.is_set() or self._expired():
                        self._push(_End("stopped", error=False))
                        return
                    try:
                        container = self._open()
                        break
                    except (ConnectionError, _Permanent) as exc:
                        failures += 1
                        reason = str(exc)
                        if failures > 1:
                            wait = min(wait * 2, self.config.backoff_max_s)
                        log.info("%s: reconnect attempt %d failed: %s", self.display_name, failures, exc)
                cc = container.streams.video[0].codec_context
                new_size = (cc.width, cc.height)
                event = StreamEvent("reconnected", new_size, size_changed=new_size != self.stats.size,
                                    down_s=time.monotonic() - lost_at, reason=reason)
                self.stats.reconnects += 1
                self.stats.connected, self.stats.size = True, new_size
        except Exception as exc:  # never die silently: the consumer reports it
            self._push(_End(f"decode thread failed: {redact(exc)}", error=True))

    # -- the consumer ---------------------------------------------------------------------------
    def _take(self) -> list[object]:
        """What the consumer should see now: events, and the oldest frame younger than max_lag;
        older frames are dropped. Blocks briefly when nothing is there."""
        with self._lock:
            if not self._items:
                self._lock.wait(0.2)
            now = time.monotonic()
            out: list[object] = []
            while self._items:
                arrived, item = self._items.popleft()
                if isinstance(item, _Decoded):
                    self._n_frames_buffered -= 1
                    # Stale, even when it is the newest (the camera stalled or reconnected): a
                    # fresh frame is at most a frame interval away, unless the stream is down.
                    if now - arrived > self.config.max_lag_s:
                        self.stats.dropped += 1
                        continue
                    self.stats.lag_s = now - arrived
                    self.stats.max_lag_s = max(self.stats.max_lag_s, self.stats.lag_s)
                    out.append(item)
                    break  # one frame at a time: the next ones are judged when they are asked for
                out.append(item)
                if isinstance(item, _End):
                    break
            return out

    def __iter__(self) -> Iterator[Frame | StreamEvent]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rtsp-decode", daemon=True)
            self._thread.start()
        while True:
            for item in self._take():
                if isinstance(item, _End):
                    if self.status is not None:
                        self.status.tick(self.stats, force=True)
                    if item.error and self._yielded == 0:
                        raise InputError(f"{self.display_name}: no frames received: {item.reason}")
                    if item.error:
                        log.warning("%s: %s; stopping", self.display_name, item.reason)
                    return
                if isinstance(item, _Decoded):
                    image = item.frame.to_ndarray(format="bgr24")
                    item = Frame(index=self._yielded, pts_s=item.pts_s, image=image)
                    self._yielded += 1
                    self.stats.frames = self._yielded
                yield item
            if self.status is not None:
                self.status.tick(self.stats)

    def close(self) -> None:
        """Stop the decode thread (within the read timeout) and release the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.read_timeout_s + 2)
        elif self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "LiveSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
