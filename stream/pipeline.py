"""The pipeline: source → detector → tracker → crops → generator → annotated video + reports.

One straight data flow. Frames are taken from the source in small chunks so the detector runs
batched; then each frame, in order, updates the tracker, has its tracks' crops cut and
super-resolved in one batch, is annotated and encoded. ``tracks.jsonl`` gets a line per track
per frame as it happens (line-buffered, so it survives a crash); a track's best crop is written
when it improves (at most every ``crop_every_s`` per track, atomically, so a kill never leaves
half a PNG); ``report.json`` is written when the run ends, also when it ends by an error or an
interrupt, and every ``report_every_s`` on live streams.

Multi-frame fusion (a :class:`sr_model.fusion.FusionEnhancer` and ``fuse_k >= 2``): each track
keeps its last ``fuse_k`` crops (a ring buffer, dropped when the track ends); once it has
``fuse_k``, its due enhancement fuses them (the current crop is the reference) instead of the
single-frame generator, and so do its inset and its best crop.

Reads (a :class:`stream.reads.PlateReader`): every plate the SR throttle lets through is read by
the OCR (``PipelineConfig.read_from``): files twice, its enhanced (or fused) image and its bicubic
×4 upscale; live streams, whose OCR shares the CPU with the frame loop and drops reads while busy,
once, the bicubic upscale; ``--no-sr``: the bicubic one, on the same throttle. On footage of real
plates the bicubic image reads better than the generator's one by one, and the two read
differently enough that voting over both reads the most plates (benchmarks/results/track_reads).
The track's reads are voted (:func:`stream.reads.vote_reads`) and the voted text is drawn beside the track
id, written into ``tracks.jsonl`` where a read arrived and into ``report.json`` per track, with
the image it was best read from (``crops/track_NNNN_read.png``). Files read inline (every due
read happens); live streams read on one background thread that drops reads while it is busy, so
the OCR never holds up the frame loop.

Live streams (:class:`stream.live.LiveSource`) also hand over :class:`stream.live.StreamEvent`s:
on a reconnection the tracker starts afresh (its boxes belong to the old connection; ids keep
counting up, so they stay unique in the outputs) and the event goes to ``events.jsonl``.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import av
import cv2
import numpy as np
from tqdm import tqdm

from sr_model.enhancer import PlateEnhancer, bicubic_upscale
from stream.annotate import InsetCache, draw_region, draw_track
from stream.crops import comparison_panel, crop_quality, cut, expand_box, rectified
from stream.detect_interval import AdaptiveDetectInterval
from stream.errors import InputError, OutputError
from stream.live import LiveSource, StreamEvent
from stream.outputs import (BEST_CROP_NAME, CROPS_DIR, ENHANCED_CROP_NAME, EVENTS_NAME, READ_CROP_NAME,
                            REPORT_NAME, TRACKS_NAME, VIDEO_NAME)
from stream.read_schedule import ReadSchedule
from stream.reads import PlateReader, ReadQueue, ReadRequest, TrackRead, TrackVotes, VotedRead, normalise_plate
from stream.signals import finalising
from stream.sink import VideoSink, video_size
from stream.still_gate import StillSceneGate
from stream.sr_schedule import SRScheduler
from stream.source import VideoSource
from stream.types import Frame, PlateCrop
from tracker.detector import PlateDetector
from tracker.sort import PlateTracker, TrackerConfig
from tracker.types import Track, TrackState, clip_roi

if TYPE_CHECKING:
    from sr_model.fusion import FusionEnhancer

log = logging.getLogger(__name__)

READ_FROM = ("auto", "both", "enhanced", "bicubic")  # PipelineConfig.read_from


@dataclass(frozen=True)
class PipelineConfig:
    """detect_every: run the detector on every N-th frame (the tracker predicts in between);
    detect_batch: frames per detector call; margin: crop margin as a fraction of the plate box;
    enhance: run super-resolution; crf / preset / x264_params: libx264 settings of the annotated
    video (x264_params None: the preset's tweaks in :data:`stream.outputs.PRESET_TWEAKS`);
    crop_every_s: a track's improved best crop is rewritten at most this often (s);
    report_every_s: report.json is rewritten this often (s) on live streams;
    sr_interval_s: each track's crop is super-resolved at most this often (s), its inset shows the
    latest result in between (see stream.sr_schedule); 0 = every frame;
    fuse_k: crops per track fused by multi-frame SR once a track has that many (only with a fusion
    enhancer; <= 1 = single-frame SR); max_reads_per_track: the vote runs over a track's last this
    many reads; forget_after_s: a track gone this long (s of input at the input's frame rate)
    drops its reads (its result stays in the report); background_reads: OCR on a background
    thread that drops reads while busy (None: for live streams only); background_encode: x264 runs
    on its own thread, overlapping the next frame's models; rectify: with a corner detector, each
    crop is the plate quadrilateral warped to a frontal rectangle, grown by ``rectify_margin`` of
    its size (benchmarks/results/rectify: +12.5 points of exact OCR reads on synthetic plates seen
    in perspective); the box crop is used when a track has no plausible corners; video: write the
    annotated video (False: tracks, reports and crops only, nothing drawn or encoded: at 1080p the
    encoder is the pipeline's largest CPU cost, and a many-camera box may want the reads alone);
    read_from: which images of a due plate the OCR reads, ``"both"`` (enhanced and bicubic ×4, one
    vote over all: twice the OCR work), ``"enhanced"``, ``"bicubic"`` or ``"auto"``: bicubic (on the
    footage of real plates of benchmarks/results/track_reads the vote over both images and the
    bicubic reads alone read as many plates exactly over four runs, the enhanced reads alone
    fewer; live, twice the OCR work means dropped reads on a small CPU); without SR always bicubic;
    skip_still_s: when > 0, frames where nothing moved since the detector's last frame skip the
    detector (a grey-thumbnail difference, :class:`stream.still_gate.StillSceneGate`), which still
    runs at least every this many seconds (parked cars keep their tracks): fixed cameras watching
    mostly still scenes; 0: off;
    video_height: the annotated video at most this many px tall: taller frames are scaled down
    (aspect kept) before the boxes and insets are drawn on them, so x264 encodes fewer pixels (a
    4K camera at 1080p: a quarter); tracks, reports, crops and insets keep the input's resolution.
    None: the input's size;
    reread_settled_s: once a track's vote has settled (8 reads, 75 % of them and the latest one
    reading its text), read it only every this many seconds, or when its crop is 20 % wider than
    in any read so far (:class:`stream.read_schedule.ReadSchedule`; 0: read every enhanced crop);
    detect_ahead: run the detector on the next chunk of frames (on its own thread) while this one's
    frames are tracked, enhanced, drawn and encoded: the same outputs, one chunk more of latency
    (1080p on 2 CPU cores: +11 % fps with ``detect_every`` 3, level with 1; enhance-video uses it
    for files); live_max_detect_every: on live streams, while frames wait longer than a quarter of
    the source's ``max_lag_s`` for the pipeline, the detector runs on fewer frames, one step at a
    time up to one in this many, and back towards ``detect_every`` once they wait under two frame
    intervals (:class:`stream.detect_interval.AdaptiveDetectInterval`): a pipeline slower than the
    camera then keeps its frames instead of dropping them; 1 or less than ``detect_every``: fixed."""

    detect_every: int = 1
    detect_batch: int = 4
    margin: float = 0.15
    enhance: bool = True
    crf: int = 23
    preset: str = "veryfast"
    x264_params: str | None = None
    crop_every_s: float = 2.0
    report_every_s: float = 10.0
    sr_interval_s: float = 0.2
    fuse_k: int = 5
    max_reads_per_track: int = 64
    forget_after_s: float = 30.0
    background_reads: bool | None = None
    background_encode: bool = True
    rectify: bool = True
    rectify_margin: float = 0.08
    video: bool = True
    read_from: str = "auto"
    reread_settled_s: float = 1.0
    video_height: int | None = None
    skip_still_s: float = 0.0
    detect_ahead: bool = True
    live_max_detect_every: int = 1


class _NoVideo:
    """The video sink of a run without the annotated video (``PipelineConfig.video`` False)."""

    def write(self, image: np.ndarray, pts_s: float) -> None:
        pass

    def mux_audio(self, packet: av.Packet) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TrackSummary:
    """Per-track line of report.json; times in seconds from the start of the input."""

    track_id: int
    first_frame: int
    last_frame: int
    first_s: float
    last_s: float
    frames: int = 0
    detected_frames: int = 0
    mean_score: float = 0.0
    best_frame: int = -1
    best_crop: str = ""
    enhanced: int = 0       # times the track's crop was super-resolved on its frame
    fused: int = 0          # of those, by multi-frame fusion
    read: str = ""          # voted plate text (normalised: upper case letters and digits), "" = none
    read_confidence: float = 0.0
    n_reads: int = 0        # non-empty reads in the vote
    read_support: int = 0   # reads equal to the voted text
    read_frame: int = -1    # frame of the evidence read, whose image is read_crop
    read_crop: str = ""


@dataclass
class RunResult:
    """Where a run's outputs are and what it measured."""

    out_dir: Path
    video: Path | None  # None: run without the annotated video
    tracks_jsonl: Path
    report: Path
    frames: int
    seconds: float
    tracks: list[TrackSummary] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _BestCrop:
    quality: float
    crop: PlateCrop
    written: bool = False
    written_at: float = float("-inf")  # time.monotonic() of the last write
    sequence: tuple[np.ndarray, ...] | None = None  # the track's last fuse_k crops up to this one


@dataclass
class _RunState:
    """What one run keeps per track between frames (all of it bounded by the live tracks, except
    the small per-track summaries and best crops)."""

    jsonl: TextIO
    summaries: dict[int, TrackSummary]
    best: dict[int, _BestCrop]
    scheduler: SRScheduler
    history: dict[int, deque]  # track id -> its last fuse_k crops, (h, w, 3) uint8 BGR, oldest first
    votes: TrackVotes
    reads: ReadQueue | None
    read_throttle: SRScheduler  # when reads run without SR
    read_schedule: ReadSchedule  # fewer reads of tracks whose vote has settled
    read_from: str  # PipelineConfig.read_from with "auto" resolved for this run
    read_written_at: dict[int, float] = field(default_factory=dict)
    insets: InsetCache = field(default_factory=InsetCache)  # resized insets of the live tracks
    clock: int = 0  # frames processed
    region: tuple[int, int, int, int] | None = None  # the detector's region to outline on the frames
    sr_s: float = 0.0  # wall time in single-frame super-resolution
    fusion_s: float = 0.0  # wall time in multi-frame fusion
    detect_interval: AdaptiveDetectInterval | None = None  # live streams: the detector's adapted interval
    still_gate: StillSceneGate | None = None  # skips the detector on still frames (skip_still_s)
    frames_detected: int = 0  # frames that went through the detector


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: readers (and a kill) see the old
    file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class EnhancePipeline:
    """Runs the stages on one source and writes the outputs into one folder.

    >>> pipe = EnhancePipeline(PlateDetector(), PlateEnhancer())
    >>> result = pipe.run(VideoSource("in.mp4"), Path("out/"))
    """

    def __init__(self, detector: PlateDetector, enhancer: PlateEnhancer | None,
                 config: PipelineConfig = PipelineConfig(), tracker_config: TrackerConfig | None = None,
                 reader: PlateReader | None = None, fusion: FusionEnhancer | None = None) -> None:
        """reader: reads plates (None: no reads); fusion: multi-frame SR used once a track has
        ``config.fuse_k`` crops (None, ``fuse_k <= 1`` or no enhancer: single-frame SR only)."""
        self.detector = detector
        self.enhancer = enhancer if config.enhance else None
        self.config = config
        self.tracker_config = tracker_config
        self.reader = reader
        self.fusion = fusion if (self.enhancer is not None and config.fuse_k >= 2) else None
        if config.read_from not in READ_FROM:
            raise ValueError(f"read_from must be one of {', '.join(READ_FROM)}, not {config.read_from!r}")

    def run(self, source: VideoSource | LiveSource, out_dir: str | Path, progress: bool = True,
            label: str = "", stop: threading.Event | None = None, progress_position: int | None = None) -> RunResult:
        """Enhance ``source`` into ``out_dir`` until it ends, ``stop`` is set (from another thread;
        the files are finished as at the end of the input) or an error or signal ends the run.
        progress_position: the tqdm bar's line when several runs share the terminal."""
        out_dir = Path(out_dir)
        live = isinstance(source, LiveSource)
        self._check_region(source.info.width, source.info.height)
        try:
            (out_dir / CROPS_DIR).mkdir(parents=True, exist_ok=True)
            jsonl = open(out_dir / TRACKS_NAME, "w", buffering=1)
            events = open(out_dir / EVENTS_NAME, "w", buffering=1) if live else None
        except OSError as exc:
            raise OutputError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None
        info = source.info
        # Live: no encoder lookahead, a keyframe every ~2 s and a fragment every second, so a kill
        # loses about a second of video.
        sink = _NoVideo()
        if self.config.video:
            video_w, video_h = video_size(info.width, info.height, self.config.video_height)
            sink = VideoSink(out_dir / VIDEO_NAME, video_w, video_h, info.fps, info.time_base,
                             crf=self.config.crf, preset=self.config.preset, x264_params=self.config.x264_params,
                             audio=info.audio,
                             fragment_s=1.0 if live else None, keyint=max(1, round(2 * info.fps)) if live else None,
                             low_latency=live,
                             background=self.config.background_encode)  # x264 overlaps the next frame's models
        tracker = self._new_tracker(info.width, info.height)
        id_offset = 0  # added to the tracker's ids, which restart at 1 after each reset
        summaries: dict[int, TrackSummary] = {}
        best: dict[int, _BestCrop] = {}
        background = live if self.config.background_reads is None else self.config.background_reads
        st = _RunState(jsonl=jsonl, summaries=summaries, best=best, scheduler=SRScheduler(self.config.sr_interval_s),
                       history={}, votes=TrackVotes(self.config.max_reads_per_track,
                                                    max(1, round(self.config.forget_after_s * (info.fps or 30)))),
                       reads=ReadQueue(self.reader, background=background) if self.reader is not None else None,
                       read_throttle=SRScheduler(self.config.sr_interval_s),
                       read_schedule=ReadSchedule(self.config.reread_settled_s),
                       read_from=self.config.read_from if self.config.read_from != "auto" else "bicubic",
                       region=self._outlined_region(info.width, info.height))
        every = max(1, self.config.detect_every)
        if live and self.config.live_max_detect_every > every and source.config.max_lag_s > 0:
            fps = min(max(info.fps or 30.0, 1.0), 120.0)  # a camera's advertised rate can be missing or odd
            high = source.config.max_lag_s / 4
            st.detect_interval = AdaptiveDetectInterval(every, self.config.live_max_detect_every, high_s=high,
                                                        low_s=min(2 / fps, high / 2))
        if self.config.skip_still_s > 0:
            st.still_gate = StillSceneGate(self.config.skip_still_s)
        frames_done = 0
        t_start = time.perf_counter()
        last_report = time.monotonic()
        bar = tqdm(total=info.n_frames or None, unit="frame", desc=label or "enhance", disable=not progress,
                   dynamic_ncols=True, position=progress_position)
        chunk: list[Frame] = []

        def result_now() -> RunResult:
            return RunResult(out_dir=out_dir, video=out_dir / VIDEO_NAME if self.config.video else None,
                             tracks_jsonl=out_dir / TRACKS_NAME,
                             report=out_dir / REPORT_NAME, frames=frames_done,
                             seconds=time.perf_counter() - t_start,
                             tracks=sorted(summaries.values(), key=lambda s: s.track_id))

        ahead = ThreadPoolExecutor(1, thread_name_prefix="detect-ahead") if self.config.detect_ahead else None
        pending: list[tuple[list[Frame], Future]] = []  # a chunk whose detections are being computed

        def detect_chunk(frames: list[Frame], unsettled: bool = False) -> dict[int, list]:
            """Detections of the chunk's detector frames. unsettled: the tracker holds tentative
            tracks, so the still-scene gate lets every frame through until they are confirmed
            (one detector frame a second would never confirm a weakly seen plate)."""
            if st.detect_interval is not None:
                source.stats.detect_every = st.detect_interval.update(source.stats.lag_s, time.monotonic())
                to_detect = [f for f in frames if st.detect_interval.due()]
            else:
                to_detect = [f for f in frames if f.index % every == 0]
            if st.still_gate is not None:
                to_detect = [f for f in to_detect if st.still_gate.due(f.image, f.pts_s, force=unsettled)]
            st.frames_detected += len(to_detect)
            return dict(zip((f.index for f in to_detect), self.detector.detect([f.image for f in to_detect])))

        def flush_chunk() -> None:
            """Detect ``chunk`` and finish its frames, or with ``detect_ahead`` start detecting it and
            finish the chunk before it."""
            frames = list(chunk)
            chunk.clear()
            unsettled = st.still_gate is not None and any(t.state is TrackState.TENTATIVE for t in tracker.tracks)
            if ahead is None:
                finish_chunk(frames, detect_chunk(frames, unsettled))
                return
            pending.append((frames, ahead.submit(detect_chunk, frames, unsettled)))
            finish_pending(keep=1)

        def finish_pending(keep: int = 0) -> None:
            """Finish the oldest chunks being detected ahead until ``keep`` are left."""
            while len(pending) > keep:
                frames, future = pending.pop(0)
                finish_chunk(frames, future.result())

        def finish_chunk(frames: list[Frame], found: dict[int, list]) -> None:
            nonlocal frames_done, last_report
            for frame in frames:
                tracks = tracker.update(found.get(frame.index), frame.pts_s)
                for tr in tracks:
                    tr.track_id += id_offset
                st.clock = frames_done
                image = self._process_frame(frame, tracks, st)
                sink.write(image, frame.pts_s)
                frames_done += 1
                bar.update(1)
            self._write_best_crops(out_dir, best, summaries)
            EnhancePipeline._forget_finished_crops(best, summaries, frames_done, st.votes.forget_after)
            self._write_read_crops(out_dir, st)
            if live and time.monotonic() - last_report >= self.config.report_every_s:
                self._write_report(result_now(), source, self._report_extra(st))
                last_report = time.monotonic()

        try:
            for item in source:
                if stop is not None and stop.is_set():  # another thread ends the run (several streams)
                    break
                if isinstance(item, av.Packet):
                    sink.mux_audio(item)
                    continue
                if isinstance(item, StreamEvent):
                    if chunk:  # frames of the old connection go through the old tracker
                        flush_chunk()
                    finish_pending()
                    self._log_event(events, item, frames_done)
                    if item.kind != "connected":
                        id_offset = max(summaries, default=id_offset)
                        tracker = self._new_tracker(*item.size)
                        if st.still_gate is not None:  # a new connection's first frame is detected
                            st.still_gate.reset()
                        st.region = self._outlined_region(*item.size)
                        if self._roi is not None and clip_roi(self._roi, *item.size) is None:
                            log.warning("the region of interest lies outside the new %dx%d frame: no detections",
                                        *item.size)
                    continue
                chunk.append(item)
                if len(chunk) >= self.config.detect_batch:
                    flush_chunk()
            if chunk:
                flush_chunk()
            finish_pending()
        finally:
            if ahead is not None:
                ahead.shutdown(wait=True, cancel_futures=True)
            # Whatever stopped the run, finish the files: the video so far stays playable and
            # every track seen so far gets its report line and best crop. A SIGTERM arriving now
            # waits until this is done (see stream.signals).
            with finalising():
                bar.close()
                try:
                    sink.close()
                finally:
                    jsonl.close()
                    if events is not None:
                        events.close()
                    if st.reads is not None:  # reads still on the OCR thread count in the vote
                        self._apply_reads(st.reads.close(), st)
                    try:
                        self._write_best_crops(out_dir, best, summaries, force=True)
                        self._write_read_crops(out_dir, st, force=True)
                    except OutputError as exc:  # never hide the error that ended the run
                        log.error("%s", exc)
                    result = result_now()
                    self._write_report(result, source, self._report_extra(st))
        return result

    @property
    def _roi(self) -> tuple[int, int, int, int] | None:
        """The detector's region of interest (x, y, w, h frame px), None: whole frames."""
        return getattr(getattr(self.detector, "config", None), "roi", None)

    def _outlined_region(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """The part of the region of interest to outline on a ``width`` x ``height`` frame: None
        when there is no region, it covers the whole frame, or it misses the frame."""
        region = None if self._roi is None else clip_roi(self._roi, width, height)
        return None if region == (0, 0, width, height) else region

    def _check_region(self, width: int, height: int) -> None:
        if self._roi is not None and clip_roi(self._roi, width, height) is None:
            x, y, w, h = self._roi
            raise InputError(f"region of interest {x},{y},{w},{h} (x,y,w,h) lies outside the {width}x{height} frame")

    def _new_tracker(self, width: int, height: int) -> PlateTracker:
        # The tracker drops plates that leave the frame at once instead of coasting them outside.
        return PlateTracker(replace(self.tracker_config or TrackerConfig(), frame_wh=(width, height)))

    @staticmethod
    def _log_event(events, event: StreamEvent, frames_done: int) -> None:
        if event.kind != "connected":
            log.info("%s after %.1f s (%s); size %dx%d", event.kind, event.down_s, event.reason, *event.size)
        if events is not None:
            events.write(json.dumps({"time": round(event.at, 3), "event": event.kind, "frame": frames_done,
                                     "size": list(event.size), "size_changed": event.size_changed,
                                     "down_s": round(event.down_s, 3), "reason": event.reason}) + "\n")

    def _process_frame(self, frame: Frame, tracks: list[Track], st: _RunState) -> np.ndarray:
        width, height = frame.size
        crops: list[PlateCrop] = []
        for tr in tracks:
            box = expand_box(tr.box, self.config.margin, width, height)
            pixels = None
            if self.config.rectify and tr.corners is not None:
                pixels = rectified(frame.image, tr.corners, box, self.config.rectify_margin)
            if pixels is None:
                pixels = cut(frame.image, box)
            if pixels is not None:
                crops.append(PlateCrop(track_id=tr.track_id, frame_index=frame.index, box=box, score=tr.score,
                                       image=pixels))
        for tr in tracks:
            self._summarise(frame, tr, st.summaries)
        if self.fusion is not None:
            for c in crops:
                ring = st.history.get(c.track_id)
                if ring is None:
                    ring = st.history[c.track_id] = deque(maxlen=self.config.fuse_k)
                ring.append(c.image)
            live_ids = {tr.track_id for tr in tracks}
            for tid in [t for t in st.history if t not in live_ids]:
                del st.history[tid]
        if self.enhancer is not None and crops:
            detected = {tr.track_id: tr.detected for tr in tracks}
            due = st.scheduler.due([c.track_id for c in crops], [detected[c.track_id] for c in crops], frame.pts_s)
            todo = [c for c, d in zip(crops, due) if d]
            if todo:  # one batch for every due track of this frame
                self._enhance(todo, st.history, st)
                for crop in todo:
                    st.scheduler.store(crop.track_id, crop.enhanced, frame.pts_s)
                    summary = st.summaries[crop.track_id]
                    summary.enhanced += 1
                    summary.fused += crop.fused > 0
            st.scheduler.keep_only(tr.track_id for tr in tracks)
        by_id = {c.track_id: c for c in crops}
        arrived: dict[int, list[TrackRead]] = {}
        if st.reads is not None:
            st.reads.submit(self._read_requests(frame, tracks, crops, st))
            arrived = self._apply_reads(st.reads.poll(), st)
            st.votes.seen((tr.track_id for tr in tracks), st.clock)
        # Drawn in place: nothing reads the decoded frame after this (crops above are copies).
        annotated, scale = frame.image, 1.0
        size = video_size(width, height, self.config.video_height) if self.config.video else (width, height)
        if size != (width, height):
            annotated = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
            scale = annotated.shape[0] / height
        if st.region is not None and self.config.video:
            draw_region(annotated, st.region if scale == 1.0 else tuple(round(v * scale) for v in st.region))
        for tr in tracks:
            voted = st.votes.voted(tr.track_id) if st.reads is not None else None
            self._write_line(frame, tr, st.jsonl, arrived.get(tr.track_id), voted)
            crop = by_id.get(tr.track_id)
            if crop is not None and tr.detected:
                q = crop_quality(crop.image, tr.score)
                old = st.best.get(tr.track_id)
                if old is None or q > old.quality:
                    ring = st.history.get(tr.track_id)
                    seq = tuple(ring) if crop.enhanced is None and ring is not None and len(ring) >= self.config.fuse_k else None
                    st.best[tr.track_id] = _BestCrop(q, crop, written_at=old.written_at if old else float("-inf"),
                                                     sequence=seq)
            if self.config.video:
                draw_track(annotated, tr.box * scale, tr.track_id, st.scheduler.latest(tr.track_id),
                           label=voted.text if voted is not None else "", inset_cache=st.insets)
        st.insets.keep_only({tr.track_id for tr in tracks})
        st.read_schedule.keep_only(tr.track_id for tr in tracks)
        return annotated

    def _enhance(self, crops: list[PlateCrop], history: dict[int, deque], st: _RunState) -> None:
        """Set ``enhanced`` (and ``fused``) on every crop: fused from the track's last ``fuse_k``
        crops where it has that many, else the single-frame generator; one batch each."""
        k = self.config.fuse_k
        fuse = [c for c in crops if self.fusion is not None and len(history.get(c.track_id, ())) >= k]
        single = [c for c in crops if not (self.fusion is not None and len(history.get(c.track_id, ())) >= k)]
        if fuse:
            t0 = time.perf_counter()
            for crop, plate in zip(fuse, self.fusion.enhance([list(history[c.track_id]) for c in fuse])):
                crop.enhanced, crop.fused = plate.image, plate.frames_used
            st.fusion_s += time.perf_counter() - t0
        if single:
            t0 = time.perf_counter()
            for crop, enhanced in zip(single, self.enhancer.enhance([c.image for c in single])):
                crop.enhanced = enhanced
            st.sr_s += time.perf_counter() - t0

    def _read_requests(self, frame: Frame, tracks: list[Track], crops: list[PlateCrop],
                       st: _RunState) -> list[ReadRequest]:
        """The plates to read on this frame: each one enhanced on it (the SR throttle chose it), as
        ``read_from`` says (its enhanced image, its bicubic ×4 upscale or both); without SR, the
        bicubic ×4 crops of the tracks the same throttle lets through."""
        if self.enhancer is not None:
            out = []
            for c in crops:
                if c.enhanced is None or not st.read_schedule.due(c.track_id, c.image.shape[1], frame.pts_s):
                    continue
                if st.read_from in ("both", "enhanced"):
                    out.append(ReadRequest(c.track_id, frame.index, frame.pts_s, c.enhanced, "enhanced"))
                if st.read_from in ("both", "bicubic"):
                    out.append(ReadRequest(c.track_id, frame.index, frame.pts_s, bicubic_upscale(c.image, 4),
                                           "bicubic"))
            return out
        if not crops:
            return []
        detected = {tr.track_id: tr.detected for tr in tracks}
        due = st.read_throttle.due([c.track_id for c in crops], [detected[c.track_id] for c in crops], frame.pts_s)
        out = []
        for c, d in zip(crops, due):
            if not d:
                continue
            # The throttle sets the pace of read chances, as the SR schedule does with SR; the read
            # schedule then skips those of settled tracks.
            st.read_throttle.store(c.track_id, c.image, frame.pts_s)
            if st.read_schedule.due(c.track_id, c.image.shape[1], frame.pts_s):
                out.append(ReadRequest(c.track_id, frame.index, frame.pts_s, bicubic_upscale(c.image, 4), "bicubic"))
        st.read_throttle.keep_only(tr.track_id for tr in tracks)
        return out

    @staticmethod
    def _apply_reads(results: list[TrackRead], st: _RunState) -> dict[int, list[TrackRead]]:
        """Count reads in their tracks' votes and summaries; returns the reads per track."""
        latest: dict[int, list[TrackRead]] = {}
        for r in results:
            voted = st.votes.add(r, st.clock)
            if voted is None:
                st.read_schedule.record(r.track_id, False, 0, 0)
            else:
                st.read_schedule.record(r.track_id, normalise_plate(r.read.text) == voted.text, voted.n_reads,
                                        voted.support)
            latest.setdefault(r.track_id, []).append(r)
            s = st.summaries.get(r.track_id)
            if s is not None and voted is not None:
                s.read, s.read_confidence = voted.text, voted.confidence
                s.n_reads, s.read_support = voted.n_reads, voted.support
        return latest

    @staticmethod
    def _summarise(frame: Frame, tr: Track, summaries: dict[int, TrackSummary]) -> None:
        s = summaries.get(tr.track_id)
        if s is None:
            s = summaries[tr.track_id] = TrackSummary(tr.track_id, frame.index, frame.index, frame.pts_s, frame.pts_s)
        s.last_frame, s.last_s = frame.index, frame.pts_s
        s.frames += 1
        if tr.detected:
            s.mean_score += (tr.score - s.mean_score) / (s.detected_frames + 1)
            s.detected_frames += 1

    @staticmethod
    def _write_line(frame: Frame, tr: Track, jsonl: TextIO, reads: list[TrackRead] | None,
                    voted: VotedRead | None) -> None:
        """One tracks.jsonl line; with the reads that arrived for the track on this frame, if any
        (``read_frame``: the frame they were read from; later than it on live streams)."""
        line = {"frame": frame.index, "time_s": round(frame.pts_s, 4), "track_id": tr.track_id,
                "box": [round(float(v), 1) for v in tr.box], "score": round(float(tr.score), 4),
                "detected": bool(tr.detected), "state": tr.state.value}
        if reads:
            line.update(reads=[{"text": normalise_plate(r.read.text), "confidence": round(float(r.read.score), 4),
                                "from": r.source} for r in reads],
                        read_frame=reads[-1].frame_index, voted=voted.text if voted is not None else "",
                        voted_confidence=round(voted.confidence, 4) if voted is not None else 0.0)
        jsonl.write(json.dumps(line) + "\n")

    @staticmethod
    def _forget_finished_crops(best: dict[int, _BestCrop], summaries: dict[int, TrackSummary],
                               frame_index: int, after_frames: int) -> None:
        """Drop the images of tracks gone for more than ``after_frames`` (``forget_after_s``) whose
        best crop is on disk: such a track never comes back (ids are not reused), and keeping every
        finished track's crops would make memory grow with the length of the video."""
        for tid in [t for t, e in best.items() if e.written and frame_index - summaries[t].last_frame > after_frames]:
            del best[tid]

    def _write_best_crops(self, out_dir: Path, best: dict[int, _BestCrop], summaries: dict[int, TrackSummary],
                          force: bool = False) -> None:
        """Write each track's best crop that improved since it was last written, unless it was
        written less than ``crop_every_s`` ago (``force``: regardless). Files are replaced
        atomically, so the crops on disk are always whole, also after a kill."""
        now = time.monotonic()
        for track_id, entry in best.items():
            if entry.written or (not force and now - entry.written_at < self.config.crop_every_s):
                continue
            crop = entry.crop
            if crop.enhanced is None and self.enhancer is not None:  # not due for SR on its own frame
                if entry.sequence is not None and self.fusion is not None:  # fused like its inset would be
                    plate = self.fusion.enhance([list(entry.sequence)])[0]
                    crop.enhanced, crop.fused = plate.image, plate.frames_used
                else:
                    crop.enhanced = self.enhancer.enhance([crop.image])[0]
            entry.sequence = None
            enhanced = crop.enhanced
            scale = self.enhancer.scale if self.enhancer is not None else 4
            if enhanced is None:
                enhanced = bicubic_upscale(crop.image, scale)
            # the enhanced crop may come from a shrunk input (tall crops): scale the bicubic to match
            bicubic = bicubic_upscale(crop.image, enhanced.shape[0] // max(1, crop.image.shape[0]) or scale)
            name = f"{CROPS_DIR}/{BEST_CROP_NAME.format(int(track_id))}"
            try:
                _atomic_write(out_dir / name, _png(comparison_panel(crop.image, bicubic, enhanced)))
                _atomic_write(out_dir / CROPS_DIR / ENHANCED_CROP_NAME.format(int(track_id)), _png(enhanced))
            except OSError as exc:
                raise OutputError(f"cannot write crops to {out_dir / CROPS_DIR}: {exc.strerror or exc}") from None
            entry.written, entry.written_at = True, now
            summaries[track_id].best_frame = crop.frame_index
            summaries[track_id].best_crop = name

    def _write_read_crops(self, out_dir: Path, st: _RunState, force: bool = False) -> None:
        """Write each track's evidence image (the plate its voted text was best read from) when it
        changed, at most every ``crop_every_s`` per track unless ``force``; atomically."""
        now = time.monotonic()
        for track_id in st.votes.track_ids():
            ev = st.votes.evidence(track_id)
            if ev is None or ev.written or (not force and now - st.read_written_at.get(track_id, float("-inf"))
                                            < self.config.crop_every_s):
                continue
            name = f"{CROPS_DIR}/{READ_CROP_NAME.format(int(track_id))}"
            try:
                _atomic_write(out_dir / name, _png(ev.image))
            except OSError as exc:
                raise OutputError(f"cannot write crops to {out_dir / CROPS_DIR}: {exc.strerror or exc}") from None
            ev.written, st.read_written_at[track_id] = True, now
            summary = st.summaries.get(track_id)
            if summary is not None:
                summary.read_frame, summary.read_crop = ev.frame_index, name
        live = set(st.votes.track_ids())
        for tid in [t for t in st.read_written_at if t not in live]:
            del st.read_written_at[tid]

    def _report_extra(self, st: _RunState) -> dict:
        """report.json's description of the reads and the fusion of this run."""
        q = st.reads
        reads = {"enabled": q is not None}
        if q is not None:
            reads.update(engine=_ocr_engine(), mode="background" if q.background else "inline",
                         source=self._read_source(st.read_from),
                         done=q.done, dropped=q.dropped, failed=q.failed, seconds=round(q.seconds, 2),
                         skipped_settled=st.read_schedule.skipped, reread_settled_s=self.config.reread_settled_s)
        fusion = {"k": self.config.fuse_k if self.fusion is not None else 0}
        # wall time of the per-frame stages (inline reads: reads.seconds), to see what a run spent where
        stages = {"super_resolution_s": round(st.sr_s, 2), "fusion_s": round(st.fusion_s, 2)}
        detection = {"frames_detected": st.frames_detected}
        if st.still_gate is not None:
            detection.update(skipped_still=st.still_gate.skipped, skip_still_s=self.config.skip_still_s)
        if st.detect_interval is not None:
            detection.update(adaptive_max_every=st.detect_interval.maximum, every_now=st.detect_interval.current,
                             times_raised=st.detect_interval.steps_up)
        return {"reads": reads, "fusion": fusion, "stage_seconds": stages, "detection": detection,
                "models": self._models_report()}

    def _read_source(self, read_from: str) -> str:
        """What the OCR reads, for report.json."""
        if self.enhancer is None or read_from == "bicubic":
            return "bicubic x4"
        return "enhanced + bicubic x4" if read_from == "both" else "enhanced"

    def _models_report(self) -> dict:
        """Which models ran, on which back end and precision: provenance of every enhanced crop."""
        def describe(model) -> dict | None:
            if model is None:
                return None
            info = getattr(model, "info", None) or {}
            config = getattr(getattr(model, "model", None), "config", None)
            out = {"backend": getattr(model, "backend", None), "precision": getattr(model, "precision", None),
                   "arch": getattr(config, "arch", None), "weights_sha256": info.get("sha256"),
                   "trained": info.get("phase") or info.get("model_yaml")}
            if model is self.detector:
                detector_config = getattr(model, "config", None)
                zoom = getattr(detector_config, "zoom", None)
                out["imgsz"] = f"zoom {zoom:g}" if zoom is not None else getattr(detector_config, "imgsz", None) or "auto"
                out["coarse_pass"] = getattr(detector_config, "coarse_pass", None)
                out["batch_size"] = getattr(detector_config, "batch_size", None)
                if self._roi is not None:
                    out["region_of_interest"] = list(self._roi)
                if info.get("corner_refiner"):
                    out["corner_refiner_sha256"] = info["corner_refiner"]["sha256"]
            return {k: v for k, v in out.items() if v is not None}

        return {"detector": describe(self.detector), "generator": describe(self.enhancer),
                "fusion": describe(self.fusion)}

    @staticmethod
    def _write_report(result: RunResult, source: VideoSource | LiveSource, extra: dict | None = None) -> None:
        info = source.info
        report = {
            "input": source.display_name,
            "width": info.width, "height": info.height, "fps": round(info.fps, 3),
            "frames_processed": result.frames, "seconds": round(result.seconds, 2),
            "processing_fps": round(result.fps, 2),
            "outputs": {"video": result.video.name if result.video is not None else None,
                        "tracks": TRACKS_NAME, "crops": CROPS_DIR},
            "tracks": [{**asdict(s), "first_s": round(s.first_s, 3), "last_s": round(s.last_s, 3),
                        "mean_score": round(s.mean_score, 4), "read_confidence": round(s.read_confidence, 4)}
                       for s in result.tracks],
            **(extra or {}),
        }
        if isinstance(source, LiveSource):
            st = source.stats
            report["live"] = {"reconnects": st.reconnects, "frames_dropped": st.dropped,
                              "max_lag_s": round(st.max_lag_s, 3), "transport": source.config.transport,
                              "size_now": list(st.size)}
        try:
            _atomic_write(result.report, json.dumps(report, indent=2).encode())
        except OSError as exc:
            log.error("cannot write %s: %s", result.report, exc.strerror or exc)


def _ocr_engine() -> str:
    try:
        from importlib.metadata import version

        return f"rapidocr {version('rapidocr')} recognition only"
    except Exception:  # metadata missing (e.g. a vendored copy): the name is enough
        return "rapidocr recognition only"


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode a {image.shape} crop as PNG")
    return buf.tobytes()
