"""PlateTracker: SORT-style multi-plate tracker with ByteTrack's two-stage association.

Per update (one video frame at ``timestamp_s``):

1. every track's Kalman filter predicts to ``timestamp_s``;
2. if the detector did not run (``detections is None``) nothing else happens;
3. stage 1: confident detections (``score >= high_score``) vs confirmed and lost tracks;
4. stage 2: weak detections (``low_score <= score < high_score``) vs the confirmed tracks left
   over, then vs the lost ones under a tighter gate (``weak_lost_gate_chi2``);
5. stage 3: the detections left over (confident and weak) vs tentative tracks;
6. confident detections still left over start tentative tracks (weak ones too when
   ``weak_birth_score`` is set; such tracks need ``weak_min_hits`` matches);
7. lifecycle, on detector frames only (see :class:`TrackerConfig`): tentative -> confirmed after
   ``min_hits`` matches (at once when born from a detection scoring ``confirm_score`` or more); a track unmatched for more than ``max_coast_s`` (or predicted across the
   image border) becomes lost (confirmed) or is deleted (tentative); lost tracks unmatched for
   more than ``max_lost_s`` are deleted; a lost track matched again is confirmed with its old id.

Matching uses :func:`tracker.association.association_cost` (Mahalanobis centre distance under
the filter's innovation covariance blended with IoU), so plates that move more than their own
width between frames, i.e. with zero IoU, are still followed. When detections carry an appearance
descriptor (:mod:`tracker.appearance`), it breaks near ties and vetoes re-associating a track
that missed a frame to a clearly different plate.

Rules learnt on the real detector (rendered clips, see ``benchmarks/tracking.py``):

* partial views: a plate sliding behind an occluder (or across the image border) is detected as
  its visible part only, one edge where the plate's edge is and the box much narrower. Such a
  detection is read as that edge of a plate of the predicted size
  (:func:`tracker.kalman.partial_view`): it passes the width-ratio gate, the Mahalanobis
  distance uses the implied centre, and the filter keeps the plate's size (``partial_*``);
* size rates decay (``KalmanNoise.size_vel_tau_s``) so a coasting track does not shrink or grow
  away from its plate;
* a confident detection lying on a box matched in the same update, or on a confirmed track's
  predicted box, does not start a track (``duplicate_overlap``);
* a weak detection re-finds a lost track only close to its prediction (``weak_lost_gate_chi2``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from tracker.appearance import appearance_distance_matrix
from tracker.association import INFEASIBLE, association_cost, linear_assignment
from tracker.kalman import KalmanNoise, PlateKalman, box_to_z, position_innovation_covs, predict_many, update_many
from tracker.types import Detection, Track, TrackState


@dataclass
class TrackerConfig:
    """Tracker parameters; every duration is in seconds so behaviour does not depend on fps.

    high_score: detections at or above this are "confident": matched first, may start tracks.
    low_score: detections below this are ignored; ``[low_score, high_score)`` are "weak": they
        can extend existing tracks (stages 2 and 3) but never start one.
    new_track_score: a confident detection left unmatched starts a track only at or above this.
    min_hits: matches (including the first detection) that confirm a tentative track.
    confirm_score: a track born from a detection at or above this score is confirmed (reported)
        at once instead of after ``min_hits``: a clear plate is not held back a frame, which
        matters for fast plates seen in few frames (10 fps). None: always wait for ``min_hits``.
    confirm_window_s: a tentative track not confirmed this long after its birth is deleted.
    weak_birth_score: a left-over detection scoring at least this (but under the confident
        threshold) starts a tentative track too, which needs ``weak_min_hits`` matches to be
        confirmed: a plate the detector sees only weakly (a style it knows less, far, blurred)
        is tracked once it has been seen in a few frames in a row, while a one-off false
        detection is not. None: weak detections never start tracks (ByteTrack's rule).
        Measured with 0.3 / 3 (benchmarks/results/tracking, benchmarks/results/track_reads):
        plates of the EU-photo clip with a track 99 -> 107 of 108 (the corner detector scores
        many EU plates 0.25-0.5); IDF1 on simulated detections unchanged (within 0.001); on the
        rendered clips 30 fps 0.969 -> 0.965.
    weak_min_hits: matches (including the first detection) that confirm a weakly born track.
    max_coast_s: a confirmed track unmatched for at most this long stays CONFIRMED and is
        reported with its predicted box (bridges missed detections: 3 frames at 30 fps, 1 at
        10 fps); after that it is LOST and not reported. A tentative track is deleted instead.
    max_lost_s: a track unmatched for longer than this is deleted (its id is never reused).
    partial_ratio, partial_min_visible: a detection narrower (or lower) than ``partial_ratio``
        times the prediction, but at least ``partial_min_visible`` of it, and aligned with one
        predicted edge is read as a partial view (:func:`tracker.kalman.partial_view`); also
        the other way round for the width gate (the track followed a partial view). None:
        off.
    partial_max_s: a run of partial views longer than this is taken at face value (a track
        with a wrong size must not read every correct box as a partial view of itself).
    duplicate_overlap: a left-over confident detection whose box lies this much (fraction of
        the smaller box's area) on a box matched in the same update, or on the predicted box of
        a confirmed track that this update left unmatched (a reported, coasting track), does not
        start a track: a second box on a tracked plate, or an odd box (a part of the plate) that
        the gates kept from its coasting track, which the next detections will match. None: off.
        Measured on rendered clips 0-7 (benchmarks/results/tracking/trials.md): counting the
        coasting tracks' boxes too took IDF1 at 10 fps from 0.980 to 0.987.
    weak_lost_gate_chi2: chi-square gate for a weak detection re-finding a LOST track (stage 2),
        tighter than ``gate_chi2``: a lost track's position covariance has grown, and a weak
        detection is more often a false one, so it must lie nearer the prediction (5.99: 95 %
        of true matches under the model). None: ``gate_chi2``. Measured on rendered clips 0-7: a
        parked plate lost behind a passing car took a weak false detection 1.3 plate widths away
        (d2 = 6.4) and came back under a new id; IDF1 at 10 fps 0.987 -> 0.994, detect-every-3
        0.985 -> 0.992; on simulated detections 10 fps 0.939 -> 0.930 (trials.md).
    gate_chi2, max_centre_dist, max_width_ratio, iou_weight: see
        :func:`tracker.association.association_cost`.
    use_appearance: use :attr:`Detection.appearance` descriptors when present (see
        :mod:`tracker.appearance`). A track keeps an exponential moving average of the
        descriptors of its confident detections (``score >= high_score``, rate
        ``appearance_rate`` per match). For a pair where both track and detection have one:
        the cost becomes ``(1 - appearance_weight) * cost + appearance_weight * distance``
        (settles near ties), and a track that missed its last detector frame (coasting or
        lost) may not take a detection whose distance exceeds ``appearance_veto`` (a lost
        track does not grab a different plate appearing where it is predicted). Detections
        without a descriptor (``appearance=None``) are associated exactly as before.
    noise: Kalman noise model (:class:`tracker.kalman.KalmanNoise`).
    frame_wh: (width, height) of the image in pixels, or None. When given, an unmatched track
        predicted across the image border stops coasting at once (the plate is leaving the
        view) and a lost track predicted entirely outside the image is deleted.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.5
    min_hits: int = 2
    confirm_score: float | None = 0.75
    confirm_window_s: float = 1.0
    weak_birth_score: float | None = 0.3
    weak_min_hits: int = 3
    max_coast_s: float = 0.12
    max_lost_s: float = 1.0
    use_appearance: bool = True
    appearance_veto: float = 0.45
    appearance_weight: float = 0.2
    appearance_rate: float = 0.2
    gate_chi2: float = 13.8
    max_centre_dist: float = 3.0
    max_width_ratio: float = 1.4
    iou_weight: float = 0.3
    partial_ratio: float | None = 0.8
    partial_min_visible: float = 0.3
    partial_max_s: float = 0.5
    duplicate_overlap: float | None = 0.7
    weak_lost_gate_chi2: float | None = 5.99
    noise: KalmanNoise = field(default_factory=KalmanNoise)
    frame_wh: tuple[int, int] | None = None


class _PlateTrack:
    """Internal mutable track: a Kalman filter plus lifecycle bookkeeping."""

    def __init__(self, track_id: int, det: Detection, t_s: float, noise: KalmanNoise, weak_born: bool = False) -> None:
        self.track_id = track_id
        self.kf = PlateKalman(det.box, noise)
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.born_s = t_s
        self.last_match_s = t_s
        self.score = float(det.score)
        self.detected = True
        self.corners = det.corners
        self.corners_z = box_to_z(det.box)  # box (cx, cy, w, h) the stored corners belong to
        self.missed = False  # unmatched on the last detector frame
        self.appearance = None if det.appearance is None else np.asarray(det.appearance, np.float32)
        self.weak_born = weak_born  # born from a weak detection: needs weak_min_hits to be confirmed

    def matched(self, det: Detection, t_s: float) -> None:
        """Lifecycle bookkeeping of a match whose filter update is done (batched by the tracker)."""
        self.hits += 1
        self.last_match_s = t_s
        self.score = float(det.score)
        self.detected = True
        if det.corners is not None:
            self.corners, self.corners_z = det.corners, box_to_z(det.box)
        if self.state is TrackState.LOST:
            self.state = TrackState.CONFIRMED  # re-found: same id

    def predicted_corners(self) -> np.ndarray | None:
        """Last detected corners moved and scaled with the box since that detection."""
        if self.corners is None:
            return None
        z, z0 = self.kf.kf.x[:4], self.corners_z
        scale = np.array([z[2] / max(z0[2], 1e-6), z[3] / max(z0[3], 1e-6)])
        return ((self.corners - z0[:2]) * scale + z[:2]).astype(np.float32)

    def to_track(self, t_s: float) -> Track:
        return Track(
            track_id=self.track_id,
            box=self.kf.box.copy(),
            score=self.score,
            state=self.state,
            detected=self.detected,
            hits=self.hits,
            age_s=t_s - self.born_s,
            since_update_s=t_s - self.last_match_s,
            corners=self.predicted_corners(),
        )


class PlateTracker:
    """Multi-plate tracker. Feed it every frame, in time order, with :meth:`update`."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1."""
        self._tracks: list[_PlateTrack] = []
        self._next_id = 1
        self._last_t: float | None = None

    @property
    def tracks(self) -> list[Track]:
        """Every live track (tentative, confirmed and lost) as of the last update."""
        t = self._last_t if self._last_t is not None else 0.0
        return [tr.to_track(t) for tr in self._tracks]

    def update(self, detections: Sequence[Detection] | None, timestamp_s: float) -> list[Track]:
        """Advance to ``timestamp_s`` (seconds, non-decreasing) and associate ``detections``.

        Args:
            detections: plates found in this frame; ``[]`` = the detector ran and found nothing;
                ``None`` = the detector did not run on this frame (detect-every-N): tracks only
                predict, and no track changes state, is created or is deleted.
            timestamp_s: frame time, seconds.

        Returns:
            The tracks in state CONFIRMED after this update, in id order. On a detector frame
            these are the confirmed tracks matched in this update (``detected=True``, box = the
            filter state after the update) and those coasting: unmatched, last matched at most
            ``max_coast_s`` ago and not predicted across the image border (``detected=False``,
            box = the prediction). On a ``None`` frame it is the same set as on the last detector
            frame, every box predicted to ``timestamp_s`` and ``detected=False``. Tentative and
            lost tracks are never returned (:attr:`tracks` lists every live track).
        """
        dt = 0.0 if self._last_t is None else timestamp_s - self._last_t
        self._last_t = timestamp_s
        predict_many([tr.kf for tr in self._tracks], dt)
        for tr in self._tracks:
            tr.detected = False
        if detections is not None:
            self._associate(list(detections), timestamp_s)
            self._lifecycle(timestamp_s)
        return [tr.to_track(timestamp_s) for tr in self._tracks if tr.state is TrackState.CONFIRMED]

    # -- internals -------------------------------------------------------------------------------
    def _match(
        self, tracks: list[_PlateTrack], dets: list[Detection], t_s: float, gate_chi2: float | None = None
    ) -> tuple[list[_PlateTrack], list[Detection]]:
        """Hungarian-match ``dets`` to ``tracks`` (chi-square gate ``gate_chi2``, default the
        config's), update the matched; return the leftovers."""
        if not tracks or not dets:
            return tracks, dets
        cfg = self.config
        cost = association_cost(
            np.stack([tr.kf.box for tr in tracks]),
            position_innovation_covs([tr.kf for tr in tracks]),
            np.stack([d.box for d in dets]),
            gate_chi2=cfg.gate_chi2 if gate_chi2 is None else gate_chi2,
            max_centre_dist=cfg.max_centre_dist,
            max_width_ratio=cfg.max_width_ratio,
            iou_weight=cfg.iou_weight,
            partial=self._partial(),
        )
        use_app = cfg.use_appearance and any(d.appearance is not None for d in dets)
        if use_app:
            self._appearance_cost(cost, tracks, dets)
        matches, u_tracks, u_dets = linear_assignment(cost)
        pairs = matches.tolist()
        update_many([tracks[ti].kf for ti, _ in pairs], [dets[di].box for _, di in pairs], self._partial(True))
        for ti, di in pairs:
            tracks[ti].matched(dets[di], t_s)
        if use_app:
            self._update_appearance([(tracks[ti], dets[di]) for ti, di in pairs])
        return [tracks[i] for i in u_tracks], [dets[i] for i in u_dets]

    def _partial(self, with_max_s: bool = False) -> tuple | None:
        cfg = self.config
        if cfg.partial_ratio is None:
            return None
        p = (cfg.partial_ratio, cfg.partial_min_visible)
        return p + (cfg.partial_max_s,) if with_max_s else p

    def _update_appearance(self, pairs: list[tuple[_PlateTrack, Detection]]) -> None:
        """Fold the descriptors of confident matched detections into their tracks' moving
        averages (one batched operation: this runs for every track on every frame)."""
        cfg = self.config
        pairs = [(tr, d) for tr, d in pairs if d.appearance is not None and d.score >= cfg.high_score]
        old = [(tr, d) for tr, d in pairs if tr.appearance is not None]
        for tr, d in pairs:
            if tr.appearance is None:
                tr.appearance = np.asarray(d.appearance, np.float32)
        if not old:
            return
        mean = np.stack([tr.appearance for tr, _ in old])
        mean += cfg.appearance_rate * (np.stack([d.appearance for _, d in old]) - mean)
        mean /= np.maximum(np.sqrt(np.einsum("ij,ij->i", mean, mean)), 1e-6)[:, None]
        for k, (tr, _) in enumerate(old):
            tr.appearance = mean[k]

    def _appearance_cost(self, cost: np.ndarray, tracks: list[_PlateTrack], dets: list[Detection]) -> None:
        """Blend appearance distance into the feasible entries of ``cost`` (in place) and veto
        pairs of a track that missed its last detector frame with a clearly different detection.
        Only pairs where both the track and the detection have a descriptor are touched."""
        cfg = self.config
        ti = [i for i, tr in enumerate(tracks) if tr.appearance is not None]
        di = [j for j, d in enumerate(dets) if d.appearance is not None]
        if not ti or not di:
            return
        dist = appearance_distance_matrix(
            np.stack([tracks[i].appearance for i in ti]), np.stack([dets[j].appearance for j in di])
        )
        idx = np.ix_(ti, di)
        sub = cost[idx]
        feasible = sub < INFEASIBLE
        w = cfg.appearance_weight
        sub = np.where(feasible, (1.0 - w) * sub + w * dist, sub)
        missed = np.array([tracks[i].missed for i in ti])
        sub[missed[:, None] & (dist > cfg.appearance_veto)] = INFEASIBLE
        cost[idx] = sub

    def _associate(self, dets: list[Detection], t_s: float) -> None:
        cfg = self.config
        high = [d for d in dets if d.score >= cfg.high_score]
        low = [d for d in dets if cfg.low_score <= d.score < cfg.high_score]
        tentative = [tr for tr in self._tracks if tr.state is TrackState.TENTATIVE]
        pool = [tr for tr in self._tracks if tr.state is not TrackState.TENTATIVE]

        left_tracks, left_high = self._match(pool, high, t_s)
        lost = [tr for tr in left_tracks if tr.state is TrackState.LOST]
        _, left_low = self._match([tr for tr in left_tracks if tr.state is not TrackState.LOST], low, t_s)
        _, left_low = self._match(lost, left_low, t_s, cfg.weak_lost_gate_chi2)
        _, left = self._match(tentative, left_high + left_low, t_s)
        # Weak detections start tracks only with weak_birth_score set, and must then be seen again.
        strong = max(cfg.high_score, cfg.new_track_score)
        birth = strong if cfg.weak_birth_score is None else min(strong, cfg.weak_birth_score)
        left = [d for d in left if d.score >= birth]
        if left and cfg.duplicate_overlap is not None:
            left = self._drop_duplicates(left)
        for d in left:
            track = _PlateTrack(self._next_id, d, t_s, cfg.noise, weak_born=d.score < strong)
            if cfg.confirm_score is not None and d.score >= cfg.confirm_score:
                track.state = TrackState.CONFIRMED
            self._tracks.append(track)
            self._next_id += 1

    def _drop_duplicates(self, dets: list[Detection]) -> list[Detection]:
        """Drop detections lying mostly (``duplicate_overlap`` of the smaller box's area) on a
        box matched in this update or on a confirmed (reported) track's predicted box: a second
        box on a tracked plate does not start a track."""
        matched = [tr.kf.box for tr in self._tracks if tr.detected or tr.state is TrackState.CONFIRMED]
        if not matched:
            return dets
        a = np.stack(matched).astype(np.float64)
        b = np.stack([d.box for d in dets]).astype(np.float64)
        iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
        ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
        inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        small = np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)
        dup = (inter >= self.config.duplicate_overlap * small).any(axis=0)
        return [d for d, k in zip(dets, dup) if not k]

    def _at_border(self, tr: _PlateTrack) -> tuple[bool, bool]:
        """(crosses the image border, entirely outside) for the track's current box."""
        if self.config.frame_wh is None:
            return False, False
        w, h = self.config.frame_wh
        x1, y1, x2, y2 = tr.kf.box
        crosses = x1 < 0 or y1 < 0 or x2 > w or y2 > h
        outside = x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h
        return crosses, outside

    def _lifecycle(self, t_s: float) -> None:
        cfg = self.config
        keep: list[_PlateTrack] = []
        for tr in self._tracks:
            tr.missed = not tr.detected
            since = t_s - tr.last_match_s
            crosses, outside = self._at_border(tr)
            # Undetected and predicted across the image border: the plate is leaving the view, so
            # stop reporting it now rather than coasting past the edge.
            leaving = crosses and not tr.detected
            if tr.state is TrackState.TENTATIVE:
                if tr.hits >= (cfg.weak_min_hits if tr.weak_born else cfg.min_hits):
                    tr.state = TrackState.CONFIRMED
                elif since > cfg.max_coast_s or leaving or t_s - tr.born_s > cfg.confirm_window_s:
                    continue  # delete
            elif tr.state is TrackState.CONFIRMED and (since > cfg.max_coast_s or leaving):
                tr.state = TrackState.LOST
            if tr.state is TrackState.LOST and (since > cfg.max_lost_s or outside):
                continue  # delete
            keep.append(tr)
        self._tracks = keep
