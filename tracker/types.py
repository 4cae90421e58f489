"""Typed records that travel between the detector, the tracker and the pipeline.

Coordinates are pixels of the full frame, boxes are ``(x1, y1, x2, y2)`` float32 with
``x2 > x1`` and ``y2 > y1``; times are seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One plate found by the detector in one frame.

    box: (4,) float32, x1 y1 x2 y2 in frame pixels.
    score: detector confidence in [0, 1].
    corners: optional (4, 2) float32 plate corners (tl, tr, br, bl) in frame pixels.
    appearance: optional (K,) float32 unit-norm descriptor of the plate crop, from
        :func:`tracker.appearance.crop_appearance` (the tracker ignores it when None).
    """

    box: np.ndarray
    score: float
    corners: np.ndarray | None = None
    appearance: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


class TrackState(str, Enum):
    """Lifecycle of a track: born tentative, confirmed after enough hits, lost after misses."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass
class Track:
    """A plate followed across frames, as reported by the tracker after one update.

    box: (4,) float32 current estimate (the filter's state after the update, or its prediction
        when no detection matched this frame), x1 y1 x2 y2 in frame pixels.
    score: confidence of the last matched detection.
    detected: True when a detection was matched to this track in this update.
    age_s: seconds since the track was born; since_update_s: seconds since its last match.
    """

    track_id: int
    box: np.ndarray
    score: float
    state: TrackState
    detected: bool
    hits: int = 0
    age_s: float = 0.0
    since_update_s: float = 0.0
    corners: np.ndarray | None = field(default=None, repr=False)


def clip_roi(roi: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int] | None:
    """The part ``(x, y, w, h)`` of region ``roi`` (x, y, w, h frame px) inside a ``width`` x ``height``
    frame, or None when they do not overlap."""
    x, y, w, h = (int(v) for v in roi)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0
