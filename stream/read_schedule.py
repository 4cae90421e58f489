"""Which plates the OCR reads on a frame: every enhanced crop until a track's reads agree, then
only now and then.

The OCR is the pipeline's largest CPU cost per plate (about 25 ms a read on one core for the
PP-OCR recognizer, against 2-3 ms for the int8 generator): at 5 super-resolved crops per second
and track, a plate seen for a minute in a car park would be read 300 times, though its vote
settled after the first few. So once a track's vote is *settled* (at least ``settle_reads``
reads, ``settle_agreement`` of them reading the voted text exactly, and the latest read too),
the track is read again only every ``settled_interval_s`` seconds, or at once when its crop is
``closer_view`` times wider than any crop of it read so far (the plate came closer: a better
view). A read that disagrees with the vote unsettles it, so a track whose plate changed (an id
switch) or whose first reads were poor is read at the full rate again.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class _TrackState:
    last_read_s: float = float("-inf")  # input time of the last read requested
    widest_px: int = 0  # widest crop read so far, px
    settled: bool = False


class ReadSchedule:
    """Per-track throttle for plate reads, on top of the super-resolution schedule; times in
    seconds of the input, widths in crop pixels."""

    def __init__(self, settled_interval_s: float = 1.0, settle_reads: int = 8, settle_agreement: float = 0.75,
                 closer_view: float = 1.2) -> None:
        """settled_interval_s: seconds between reads of a settled track (0: no back-off, every
        crop offered is read)."""
        if settled_interval_s < 0:
            raise ValueError("settled_interval_s must be >= 0")
        self.settled_interval_s = settled_interval_s
        self.settle_reads = settle_reads
        self.settle_agreement = settle_agreement
        self.closer_view = closer_view
        self._tracks: dict[int, _TrackState] = {}
        self.skipped = 0  # crops not read because their track was settled

    def due(self, track_id: int, width_px: int, t_s: float) -> bool:
        """Should this track's crop (``width_px`` wide, at ``t_s``) be read? Counts a read as
        requested when it says yes."""
        st = self._tracks.setdefault(track_id, _TrackState())
        read = (not st.settled or self.settled_interval_s <= 0
                or t_s - st.last_read_s >= self.settled_interval_s
                or width_px >= self.closer_view * st.widest_px)
        if read:
            st.last_read_s, st.widest_px = t_s, max(st.widest_px, width_px)
        else:
            self.skipped += 1
        return read

    def record(self, track_id: int, agrees: bool, n_reads: int, support: int) -> None:
        """After a read of the track arrived: ``agrees``, whether it read the track's voted text;
        ``n_reads`` / ``support``: the vote's reads and those reading its text (VotedRead)."""
        st = self._tracks.setdefault(track_id, _TrackState())
        st.settled = agrees and n_reads >= self.settle_reads and support >= self.settle_agreement * n_reads

    def is_settled(self, track_id: int) -> bool:
        st = self._tracks.get(track_id)
        return st is not None and st.settled

    def keep_only(self, track_ids: Iterable[int]) -> None:
        """Forget tracks that are gone, so memory stays flat on long inputs."""
        live = set(track_ids)
        for tid in [t for t in self._tracks if t not in live]:
            del self._tracks[tid]
