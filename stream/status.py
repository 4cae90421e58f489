"""A one-line live status on stderr every few seconds: fps, lag, drops, reconnects.

One line per interval (not a carriage-return progress bar) so it reads well in journald,
docker logs and files, and never mixes with other output mid-line.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from stream.redact import redact


@dataclass
class LiveStats:
    """Counters of a live run. lag_s: age of the newest frame handed to the pipeline when it was
    handed over (s); dropped: frames decoded but skipped to keep lag bounded; reconnects: stream
    (re)openings after the first; size: current camera frame size (w, h); detect_every: the frame
    interval of the consumer's detector now (set by the pipeline when it adapts it, see
    ``stream.detect_interval``; shown when above 1)."""

    frames: int = 0
    lag_s: float = 0.0
    max_lag_s: float = 0.0
    dropped: int = 0
    reconnects: int = 0
    size: tuple[int, int] = (0, 0)
    connected: bool = False
    detect_every: int = 1


class StatusLine:
    """Prints ``enhance-video: live: ...`` to ``stream`` at most every ``interval_s`` seconds
    (0 disables). Call :meth:`tick` as often as you like."""

    def __init__(self, label: str, interval_s: float = 10.0, stream: TextIO | None = None) -> None:
        self.label = redact(label)
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self._last_t = time.monotonic()
        self._last_frames = 0
        self._fps = 0.0

    def tick(self, stats: LiveStats, force: bool = False) -> str | None:
        """Print (and return) a line when the interval has passed, or when ``force``."""
        if self.interval_s <= 0 and not force:
            return None
        now = time.monotonic()
        dt = now - self._last_t
        if dt < self.interval_s and not force:
            return None
        if dt >= 0.5:  # a forced line right after a regular one keeps the last rate, not a spike
            self._fps = (stats.frames - self._last_frames) / dt
            self._last_t, self._last_frames = now, stats.frames
        fps = self._fps
        state = "" if stats.connected else " (reconnecting)"
        line = (f"enhance-video: live: {self.label}{state}: {fps:.1f} fps, lag {stats.lag_s:.2f} s "
                f"(max {stats.max_lag_s:.2f}), dropped {stats.dropped}, reconnects {stats.reconnects}, "
                f"frames {stats.frames}, {stats.size[0]}x{stats.size[1]}"
                + (f", detector on 1 frame in {stats.detect_every}" if stats.detect_every > 1 else ""))
        print(line, file=self.stream, flush=True)
        return line
