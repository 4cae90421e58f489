"""Video sink: PyAV H.264 encoder that keeps the input's timestamps and copies its audio.

Frames are encoded with the pts they had in the input, so variable-frame-rate inputs keep their
timing. The MP4 is written with ``+frag_keyframe+empty_moov``: a fragmented file whose moov
is at the front, so everything encoded up to a crash or kill stays playable.

With ``background=True`` the colour conversion, encoding and muxing run on a worker thread fed by
a small bounded queue: PyAV releases the GIL inside FFmpeg, so x264 works on frame N while the
pipeline detects and enhances frame N+1. Errors surface on the next ``write`` or on ``close``.
"""
from __future__ import annotations

import logging
import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from stream.errors import OutputError
from stream.outputs import PRESET_TWEAKS

log = logging.getLogger(__name__)


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` as a (height, width, 3) frame: unchanged when it fits exactly; edge-padded when it
    is at most one pixel smaller (odd sizes padded to even); otherwise scaled to fit, aspect kept,
    and centred on black (a camera that comes back at another resolution)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if 0 <= height - h <= 1 and 0 <= width - w <= 1:
        return np.pad(image, ((0, height - h), (0, width - w), (0, 0)), mode="edge")
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y:y + nh, x:x + nw] = resized
    return out


def video_size(width: int, height: int, max_height: int | None) -> tuple[int, int]:
    """(width, height) px of the annotated video for ``width`` x ``height`` frames: unchanged when
    ``max_height`` is None or not smaller; else ``max_height`` (rounded down to even, at least 2)
    tall, the width scaled alike and rounded to even (x264's yuv420p needs even sides)."""
    if not max_height or height <= max_height:
        return width, height
    h = max(2, max_height - max_height % 2)
    return max(2, 2 * round(width * h / height / 2)), h


class VideoSink:
    """Write BGR uint8 frames to an H.264 file of one size; frames of another size are fitted into
    it (:func:`fit_into`), so a stream that changes resolution never breaks the recording.

    time_base: the input stream's time base (pts are given in seconds and converted to it).
    fps: nominal rate written in the header. crf / preset: libx264 quality and speed;
    x264_params: ``key=value:...`` overrides of the preset (x264's own syntax); "": none; None:
    :data:`stream.outputs.PRESET_TWEAKS` for the preset, if any.
    audio: an input audio stream whose packets ``mux_audio`` copies into the file.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, time_base: Fraction,
                 crf: int = 23, preset: str = "veryfast", x264_params: str | None = None,
                 audio: av.audio.stream.AudioStream | None = None,
                 fragment_s: float | None = None, keyint: int | None = None, low_latency: bool = False,
                 background: bool = False, queue_size: int = 4) -> None:
        """fragment_s: also close an MP4 fragment after this many seconds of video (live streams:
        bounds what a kill can lose, whatever the keyframe interval); keyint: x264 keyframe
        interval in frames (None: x264's default, 250); low_latency: x264 ``tune=zerolatency``, so
        each frame is in the file at once instead of after x264's lookahead (live streams);
        background: encode on a worker thread (at most ``queue_size`` frames waiting; a caller
        must not modify an image after handing it to ``write``)."""
        self.path = Path(path)
        options = {"movflags": "+frag_keyframe+empty_moov+default_base_moof"}
        if fragment_s:
            options["frag_duration"] = str(int(fragment_s * 1e6))  # µs
            options["flush_packets"] = "1"  # each finished fragment goes to disk, not FFmpeg's 32 KiB buffer
        try:
            self.container = av.open(str(self.path), mode="w", options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from None
        # x264 needs even dimensions in yuv420p; an odd frame is padded by one pixel.
        self.width, self.height = width + (width % 2), height + (height % 2)
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001 * 1000))
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = time_base
        self.stream.codec_context.time_base = time_base
        params = PRESET_TWEAKS.get(preset, "") if x264_params is None else x264_params
        self.x264_params = params  # the overrides in force ("" for none)
        self.stream.options = {"crf": str(crf), "preset": preset, **({"g": str(keyint)} if keyint else {}),
                               **({"x264-params": params} if params else {}),
                               **({"tune": "zerolatency"} if low_latency else {})}
        self.time_base = time_base
        self._last_pts = -1
        self.audio_in = audio
        self.audio_out = None
        if audio is not None:
            try:
                self.audio_out = self.container.add_stream_from_template(audio)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("audio (%s) cannot be copied into %s (%s); writing video only",
                            audio.codec_context.name, self.path.name, exc)
        self.frames_written = 0
        self._error: Exception | None = None  # the worker's error, until raised to the caller
        self._failed = False  # the worker hit an error: later queued writes are skipped
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=max(1, queue_size))
            self._worker = threading.Thread(target=self._drain, name="encode", daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        """Worker thread: run the queued writes in order until the ``None`` sentinel; after an
        error keep draining (so producers never block) but do nothing more."""
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            if self._failed:
                continue
            fn, args = item
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error, self._failed = exc, True

    def _raise_pending(self) -> None:
        """Raise the worker's error in the caller's thread, once."""
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def write(self, image: np.ndarray, pts_s: float) -> None:
        """Encode one (H, W, 3) uint8 BGR frame shown at ``pts_s`` seconds (any size: see fit_into)."""
        if self._queue is not None:
            self._raise_pending()
            self._queue.put((self._write_now, (image, pts_s)))
        else:
            self._write_now(image, pts_s)

    def _write_now(self, image: np.ndarray, pts_s: float) -> None:
        image = fit_into(image, self.width, self.height)
        # OpenCV's BGR -> I420 (BT.601 limited range, the same matrix FFmpeg's swscale uses by
        # default) takes about 1 ms on a 1080p frame; handing x264 a bgr24 frame leaves that to
        # swscale's unaccelerated path, about 17 ms (benchmarks/results/throughput).
        yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        pts = max(round(pts_s / self.time_base), self._last_pts + 1)  # strictly increasing
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:  # disk full, folder removed, ...
            raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        self.frames_written += 1

    def mux_audio(self, packet: av.Packet) -> None:
        """Copy one input audio packet into the output (no re-encode)."""
        if self.audio_out is None:
            return
        if self._queue is not None:  # the muxer is not thread-safe: audio goes through the worker too
            self._queue.put((self._mux_audio_now, (packet,)))
        else:
            self._mux_audio_now(packet)

    def _mux_audio_now(self, packet: av.Packet) -> None:
        packet.stream = self.audio_out
        try:
            self.container.mux(packet)
        except av.error.FFmpegError as exc:  # a bad audio packet must not cost the video
            log.debug("dropped audio packet: %s", exc)

    def close(self) -> None:
        """Flush the encoder and finalise the file; safe to call twice. With ``background``,
        waits for the queued frames first and raises the worker's error, if any."""
        if self._worker is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        if self.container is None:
            return
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        except (av.error.FFmpegError, OSError):
            if not self._failed:
                raise
            # else: the worker's error is the one to report (raised below)
        finally:
            self.container.close()
            self.container = None
        self._raise_pending()
