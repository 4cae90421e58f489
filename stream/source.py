"""Video source: PyAV demux + decode in a background thread, frames handed over a bounded queue.

The bounded queue is what keeps memory flat on long inputs: decoding runs at most
``queue_size`` frames ahead of the pipeline. Audio packets are passed along untouched so the
sink can copy them into the output without re-encoding.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stream.errors import InputError
from stream.types import Frame

log = logging.getLogger(__name__)

_END = object()
MAX_SIDE = 8192  # px: H.264 level 6.2's limit; larger frames would be refused by the encoder anyway
STILL_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tiff_pipe")


@dataclass(frozen=True)
class SourceInfo:
    """What the pipeline needs to know about an opened input before the first frame.

    width, height: px; fps: nominal frames per second (average rate if known);
    n_frames: frame count from the container header, 0 when unknown;
    time_base: the video stream's time base; audio: the input audio stream or None.
    """

    width: int
    height: int
    fps: float
    n_frames: int
    time_base: Fraction
    codec: str
    audio: av.audio.stream.AudioStream | None


def _describe_open_error(path: str, exc: Exception) -> str:
    # FFmpeg's message ends with the file name again; its strerror is the reason alone.
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return f"cannot open {path!r} as a video: {text}"


class VideoSource:
    """Iterate the frames of a video file: ``for item in source`` yields ``Frame`` and ``av.Packet``
    (audio, only when ``with_audio``), in decode order.

    hwaccel: an FFmpeg device type (e.g. "cuda", "vaapi") to try for decoding; when it is not
    available the source falls back to software decoding and logs one warning.
    """

    def __init__(self, path: str | Path, queue_size: int = 8, with_audio: bool = True, hwaccel: str | None = None) -> None:
        self.path = str(path)
        p = Path(self.path)
        self.display_name = str(p)
        if not p.exists():
            raise InputError(f"input not found: {self.path}")
        if p.is_dir():
            raise InputError(f"input is a directory, not a video file: {self.path}")
        self.container = self._open(hwaccel)
        try:
            self.video = self._check_video()
        except InputError:
            self.container.close()
            raise
        self.video.thread_type = "AUTO"  # frame + slice threads in FFmpeg's decoder
        cc = self.video.codec_context
        # Phones store portrait video as landscape frames plus a display matrix; we respect it and
        # hand out upright frames (the output video is written upright, without a matrix).
        self.rotation, decodable = self._probe_first_frame()
        if not decodable:
            self.container.close()
            raise InputError(f"{self.path}: the video stream holds no decodable frames")
        width, height = (cc.height, cc.width) if self.rotation in (90, 270) else (cc.width, cc.height)
        audio = self.container.streams.audio[0] if (with_audio and self.container.streams.audio) else None
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(30)
        self.info = SourceInfo(
            width=width, height=height, fps=float(rate), n_frames=int(self.video.frames or 0),
            time_base=self.video.time_base or Fraction(1, 90000), codec=cc.name, audio=audio,
        )
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _check_video(self) -> av.video.stream.VideoStream:
        """The first video stream, or an InputError saying in one line why it cannot be used."""
        fmt = self.container.format.name
        if any(name in STILL_IMAGE_FORMATS for name in fmt.split(",")):
            raise InputError(f"{self.path} is a still image ({fmt}), not a video")
        if not self.container.streams.video:
            raise InputError(f"{self.path} has no video stream")
        video = self.container.streams.video[0]
        cc = video.codec_context
        if cc is None:  # FFmpeg knows no decoder for it
            tag = getattr(video, "codec_tag", "") or "unknown"
            raise InputError(f"{self.path}: unsupported video codec ({tag!r}); re-encode it to H.264")
        if not cc.width or not cc.height:
            raise InputError(f"{self.path}: video stream has no frame size (unsupported or corrupt)")
        if max(cc.width, cc.height) > MAX_SIDE:
            raise InputError(f"{self.path}: frame size {cc.width}x{cc.height} is over the supported "
                             f"maximum of {MAX_SIDE} px per side")
        return video

    def _probe_first_frame(self) -> tuple[int, bool]:
        """(display rotation in degrees counter-clockwise: 0, 90, 180 or 270; whether any frame
        decodes), from the first frame, read with a second, short-lived open so the main container
        stays at the start and an empty or undecodable file fails before any output is created."""
        try:
            with av.open(self.path, metadata_errors="ignore") as probe:
                for frame in probe.decode(probe.streams.video[0]):
                    return round(getattr(frame, "rotation", 0) or 0) % 360, True
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError):
            pass
        return 0, False

    def _open(self, hwaccel: str | None) -> av.container.InputContainer:
        if hwaccel:
            try:
                from av.codec.hwaccel import HWAccel

                return av.open(self.path, hwaccel=HWAccel(device_type=hwaccel, allow_software_fallback=True))
            except Exception as exc:  # no such device here: any failure means "use software"
                log.warning("hardware decoding (%s) unavailable (%s); decoding in software", hwaccel, exc)
        try:
            return av.open(self.path, metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(_describe_open_error(self.path, exc)) from None

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode_loop(self) -> None:
        streams = [self.video] + ([self.info.audio] if self.info.audio is not None else [])
        index = 0
        t0: float | None = None
        try:
            for packet in self.container.demux(*streams):
                if self._stop.is_set():
                    return
                if packet.stream.type == "audio":
                    if packet.dts is not None and not self._put(packet):
                        return
                    continue
                for frame in packet.decode():
                    t = float(frame.time) if frame.time is not None else index / self.info.fps
                    t0 = t if t0 is None else t0
                    image = frame.to_ndarray(format="bgr24")
                    if self.rotation:  # np.rot90 turns counter-clockwise, as the display matrix does
                        image = np.ascontiguousarray(np.rot90(image, k=self.rotation // 90))
                    if not self._put(Frame(index=index, pts_s=t - t0, image=image)):
                        return
                    index += 1
            self._put(_END)
        except Exception as exc:  # handed to the consumer, which raises it where it reads
            self._put(exc)

    def __iter__(self) -> Iterator[Frame | av.Packet]:
        self._thread = threading.Thread(target=self._decode_loop, name="decode", daemon=True)
        self._thread.start()
        decoded = 0
        while True:
            item = self._queue.get()
            if item is _END:
                break
            if isinstance(item, Exception):
                if decoded == 0:
                    raise InputError(f"{self.path}: cannot decode video ({str(item).strip() or type(item).__name__})")
                # A damaged tail (truncated file): keep what was decoded, say so once.
                log.warning("%s: decoding stopped after %d frames: %s", self.path, decoded, item)
                break
            if isinstance(item, Frame):
                decoded += 1
            yield item
        if decoded == 0:
            raise InputError(f"{self.path}: the video stream holds no decodable frames")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.container.close()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def frames_only(source: VideoSource) -> Iterator[Frame]:
    """The frames of a source, audio packets skipped."""
    for item in source:
        if isinstance(item, Frame):
            yield item


def read_frames(path: str | Path) -> list[np.ndarray]:
    """All frames of a (short) video as BGR uint8 arrays; for tests and small tools."""
    with VideoSource(path, with_audio=False) as src:
        return [f.image for f in frames_only(src)]
