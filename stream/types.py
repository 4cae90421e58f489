"""Typed records of the stream stage: decoded frames and the plate crops cut from them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded video frame.

    index: 0-based position in the decoded stream; pts_s: presentation time in seconds
    (from the stream's own timestamps, so variable frame rates stay right).
    image: (H, W, 3) uint8, BGR.
    """

    index: int
    pts_s: float
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass
class PlateCrop:
    """A track's plate cut from one frame, and its super-resolved version.

    box: (4,) float32 crop box in frame pixels (the track box plus margin, clipped to the frame).
    image: (h, w, 3) uint8 BGR low-resolution crop; enhanced: (h*s, w*s, 3) uint8 BGR or None.
    fused: crops fused into ``enhanced`` by multi-frame SR (this one included; 0 = single-frame
    SR or not enhanced).
    """

    track_id: int
    frame_index: int
    box: np.ndarray
    score: float
    image: np.ndarray
    enhanced: np.ndarray | None = None
    fused: int = 0
