"""Video sink: PyAV H.264 encoder that keeps the input's timestamps and copies its audio.

Frames are encoded with the pts they had in the input, so variable-frame-rate inputs keep their
timing. The MP4 is written with ``+frag_keyframe+empty_moov``: a fragmented file whose moov
is at the front, so everything encoded up to a crash or kill stays playable.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stream.errors import OutputError

log = logging.getLogger(__name__)


class VideoSink:
    """Write BGR uint8 frames of one size to an H.264 file.

    time_base: the input stream's time base (pts are given in seconds and converted to it).
    fps: nominal rate written in the header. crf / preset: libx264 quality and speed.
    audio: an input audio stream whose packets ``mux_audio`` copies into the file.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, time_base: Fraction,
                 crf: int = 23, preset: str = "veryfast", audio: av.audio.stream.AudioStream | None = None) -> None:
        self.path = Path(path)
        try:
            self.container = av.open(str(self.path), mode="w",
                                     options={"movflags": "+frag_keyframe+empty_moov+default_base_moof"})
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from None
        # x264 needs even dimensions in yuv420p; an odd frame is padded by one pixel.
        self.width, self.height = width + (width % 2), height + (height % 2)
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001 * 1000))
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = time_base
        self.stream.codec_context.time_base = time_base
        self.stream.options = {"crf": str(crf), "preset": preset}
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

    def write(self, image: np.ndarray, pts_s: float) -> None:
        """Encode one (H, W, 3) uint8 BGR frame shown at ``pts_s`` seconds."""
        if image.shape[0] != self.height or image.shape[1] != self.width:
            pad_h, pad_w = self.height - image.shape[0], self.width - image.shape[1]
            image = np.pad(image, ((0, max(0, pad_h)), (0, max(0, pad_w)), (0, 0)), mode="edge")[: self.height, : self.width]
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        pts = max(round(pts_s / self.time_base), self._last_pts + 1)  # strictly increasing
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1

    def mux_audio(self, packet: av.Packet) -> None:
        """Copy one input audio packet into the output (no re-encode)."""
        if self.audio_out is None:
            return
        packet.stream = self.audio_out
        try:
            self.container.mux(packet)
        except av.error.FFmpegError as exc:  # a bad audio packet must not cost the video
            log.debug("dropped audio packet: %s", exc)

    def close(self) -> None:
        """Flush the encoder and finalise the file; safe to call twice."""
        if self.container is None:
            return
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()
            self.container = None
