"""How often a live stream's frames go through the detector: adapted to the stream's lag.

A live source drops the frames that waited too long for the pipeline (``stream.live``), so a
pipeline slower than the camera keeps its latency bounded by leaving holes in the output video
and in every track. Most of a frame's cost is the detector, and the tracker bridges frames
without detections (``--detect-every``), so while frames wait, detecting on fewer of them lets
every frame through instead; once the wait clears, the detector comes back to every frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AdaptiveDetectInterval:
    """The detector's frame interval for a live stream (1: every frame).

    ``update(lag_s, now_s)`` with the latest frame's wait (s, from the source) and a monotonic
    clock (s) returns the interval to use: raised by one, up to ``maximum``, while frames wait
    more than ``high_s``; lowered by one, down to ``minimum``, once they wait less than ``low_s``;
    at most one step per ``hold_s`` so that each step's effect shows in the lag before the next.
    ``due()``, once per frame in order: whether that frame goes through the detector (the first
    does, then one every ``current`` frames). ``steps_up`` counts the raises."""

    minimum: int
    maximum: int
    high_s: float
    low_s: float
    hold_s: float = 1.0
    current: int = field(init=False)
    _changed_at: float | None = field(default=None, init=False, repr=False)
    _since_detected: int | None = field(default=None, init=False, repr=False)
    steps_up: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {self.minimum}, {self.maximum}")
        if not 0 <= self.low_s < self.high_s:
            raise ValueError(f"need 0 <= low_s < high_s, got {self.low_s}, {self.high_s}")
        self.current = self.minimum

    def update(self, lag_s: float, now_s: float) -> int:
        if self._changed_at is not None and now_s - self._changed_at < self.hold_s:
            return self.current
        if lag_s > self.high_s and self.current < self.maximum:
            self.current += 1
            self.steps_up += 1
            self._changed_at = now_s
        elif lag_s < self.low_s and self.current > self.minimum:
            self.current -= 1
            self._changed_at = now_s
        return self.current

    def due(self) -> bool:
        if self._since_detected is None or self._since_detected + 1 >= self.current:
            self._since_detected = 0
            return True
        self._since_detected += 1
        return False
