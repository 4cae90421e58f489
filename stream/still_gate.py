"""Skipping the detector on frames where nothing moved: fixed cameras watching still scenes.

A car-park or gate camera shows the same scene for most of its frames, and the detector is most
of a frame's cost. :class:`StillSceneGate` compares a small grey thumbnail of each candidate
frame with the one of the last frame that went through the detector: when too few thumbnail
pixels changed, the frame skips the detector and the tracker carries its tracks (predicted,
not aged: see ``tracker.sort.PlateTracker.update``). A thumbnail pixel averages many frame
pixels, so sensor noise and compression flicker stay far below the change threshold, while a
car moving, or arriving, changes dozens of them. Parked cars still go through the detector at
least every ``max_skip_s`` seconds, so their tracks stay matched and their plates get new
crops and reads; while the tracker holds tracks not yet confirmed, every frame goes through
(``force``), so a plate first seen in a still scene is confirmed as quickly as in a moving one.
"""
from __future__ import annotations

import cv2
import numpy as np


class StillSceneGate:
    """Per-stream decision: does this frame need the detector, or is the scene still?

    max_skip_s: longest time (s of input) between detector frames; thumb_width: thumbnail width
    px (frames narrower keep their width); pixel_delta: grey levels (0-255) a thumbnail pixel must
    change by to count as moved; min_moved: moved thumbnail pixels that make a frame worth
    detecting (at the default 240 px wide thumbnail of a 1080p frame, one pixel covers 8x8 px:
    a car 100 px wide moving by a few pixels changes more than 12 of them)."""

    def __init__(self, max_skip_s: float = 1.0, thumb_width: int = 240, pixel_delta: int = 10,
                 min_moved: int = 12) -> None:
        if max_skip_s <= 0:
            raise ValueError("max_skip_s must be > 0")
        self.max_skip_s = max_skip_s
        self.thumb_width = thumb_width
        self.pixel_delta = pixel_delta
        self.min_moved = min_moved
        self._last: np.ndarray | None = None  # thumbnail of the last detector frame
        self._last_t = float("-inf")
        self.skipped = 0  # frames that skipped the detector as still

    def reset(self) -> None:
        """Forget the reference frame (a new connection): the next frame goes through the detector."""
        self._last, self._last_t = None, float("-inf")

    def thumbnail(self, image: np.ndarray) -> np.ndarray:
        """(h, w) uint8 grey thumbnail of an (H, W, 3) uint8 BGR frame, ``thumb_width`` px wide."""
        h, w = image.shape[:2]
        tw = min(self.thumb_width, w)
        th = max(1, round(h * tw / w))
        small = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)

    def due(self, image: np.ndarray, t_s: float, force: bool = False) -> bool:
        """Should this frame (``t_s`` s into the input) go through the detector? Frames are
        given in order; a yes makes the frame the new reference. force: yes whatever the scene
        (the caller's tracker waits for detections to confirm a new track)."""
        thumb = self.thumbnail(image)
        moved = (force or self._last is None or self._last.shape != thumb.shape or t_s - self._last_t >= self.max_skip_s
                 or int(np.count_nonzero(cv2.absdiff(thumb, self._last) > self.pixel_delta)) >= self.min_moved)
        if moved:
            self._last, self._last_t = thumb, t_s
        else:
            self.skipped += 1
        return moved
