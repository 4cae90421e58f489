"""The pipeline: source → detector → tracker → crops → generator → annotated video + reports.

One straight data flow. Frames are taken from the source in small chunks so the detector runs
batched; then each frame, in order, updates the tracker, has its tracks' crops cut and
super-resolved in one batch, is annotated and encoded. ``tracks.jsonl`` gets a line per track
per frame as it happens (line-buffered, so it survives a crash); a track's best crop is written
when it improves (at most every ``crop_every_s`` per track, atomically, so a kill never leaves
half a PNG); ``report.json`` is written when the run ends, also when it ends by an error or an
interrupt, and every ``report_every_s`` on live streams.

Live streams (:class:`stream.live.LiveSource`) also hand over :class:`stream.live.StreamEvent`s:
on a reconnection the tracker starts afresh (its boxes belong to the old connection; ids keep
counting up, so they stay unique in the outputs) and the event goes to ``events.jsonl``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from sr_model.enhancer import PlateEnhancer, bicubic_upscale
from stream.annotate import draw_track
from stream.crops import comparison_panel, crop_quality, cut, expand_box
from stream.errors import OutputError
from stream.live import LiveSource, StreamEvent
from stream.outputs import CROPS_DIR, EVENTS_NAME, REPORT_NAME, TRACKS_NAME, VIDEO_NAME
from stream.signals import finalising
from stream.sink import VideoSink
from stream.sr_schedule import SRScheduler
from stream.source import VideoSource
from stream.types import Frame, PlateCrop
from tracker.detector import PlateDetector
from tracker.sort import PlateTracker, TrackerConfig
from tracker.types import Detection, Track

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class PipelineConfig:
    """detect_every: run the detector on every N-th frame (the tracker predicts in between);
    detect_batch: frames per detector call; margin: crop margin as a fraction of the plate box;
    enhance: run super-resolution; crf / preset: libx264 settings of the annotated video;
    crop_every_s: a track's improved best crop is rewritten at most this often (s);
    report_every_s: report.json is rewritten this often (s) on live streams;
    sr_interval_s: each track's crop is super-resolved at most this often (s), its inset shows the
    latest result in between (see stream.sr_schedule); 0 = every frame."""

    detect_every: int = 1
    detect_batch: int = 4
    margin: float = 0.15
    enhance: bool = True
    crf: int = 23
    preset: str = "veryfast"
    crop_every_s: float = 2.0
    report_every_s: float = 10.0
    sr_interval_s: float = 0.2


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


@dataclass
class RunResult:
    """Where a run's outputs are and what it measured."""

    out_dir: Path
    video: Path
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
                 config: PipelineConfig = PipelineConfig(), tracker_config: TrackerConfig | None = None) -> None:
        self.detector = detector
        self.enhancer = enhancer if config.enhance else None
        self.config = config
        self.tracker_config = tracker_config

    def run(self, source: VideoSource | LiveSource, out_dir: str | Path, progress: bool = True,
            label: str = "") -> RunResult:
        out_dir = Path(out_dir)
        live = isinstance(source, LiveSource)
        try:
            (out_dir / CROPS_DIR).mkdir(parents=True, exist_ok=True)
            jsonl = open(out_dir / TRACKS_NAME, "w", buffering=1)
            events = open(out_dir / EVENTS_NAME, "w", buffering=1) if live else None
        except OSError as exc:
            raise OutputError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None
        info = source.info
        # Live: no encoder lookahead, a keyframe every ~2 s and a fragment every second, so a kill
        # loses about a second of video.
        sink = VideoSink(out_dir / VIDEO_NAME, info.width, info.height, info.fps, info.time_base,
                         crf=self.config.crf, preset=self.config.preset, audio=info.audio,
                         fragment_s=1.0 if live else None, keyint=max(1, round(2 * info.fps)) if live else None,
                         low_latency=live)
        tracker = self._new_tracker(info.width, info.height)
        id_offset = 0  # added to the tracker's ids, which restart at 1 after each reset
        summaries: dict[int, TrackSummary] = {}
        best: dict[int, _BestCrop] = {}
        scheduler = SRScheduler(self.config.sr_interval_s)
        frames_done = 0
        t_start = time.perf_counter()
        last_report = time.monotonic()
        bar = tqdm(total=info.n_frames or None, unit="frame", desc=label or "enhance", disable=not progress,
                   dynamic_ncols=True)
        chunk: list[Frame] = []

        def result_now() -> RunResult:
            return RunResult(out_dir=out_dir, video=out_dir / VIDEO_NAME, tracks_jsonl=out_dir / TRACKS_NAME,
                             report=out_dir / REPORT_NAME, frames=frames_done,
                             seconds=time.perf_counter() - t_start,
                             tracks=sorted(summaries.values(), key=lambda s: s.track_id))

        def flush_chunk() -> None:
            nonlocal frames_done, last_report
            every = max(1, self.config.detect_every)
            to_detect = [f for f in chunk if f.index % every == 0]
            found = dict(zip((f.index for f in to_detect), self.detector.detect([f.image for f in to_detect])))
            for frame in chunk:
                tracks = tracker.update(found.get(frame.index), frame.pts_s)
                for tr in tracks:
                    tr.track_id += id_offset
                image = self._process_frame(frame, tracks, jsonl, summaries, best, scheduler)
                sink.write(image, frame.pts_s)
                frames_done += 1
                bar.update(1)
            chunk.clear()
            self._write_best_crops(out_dir, best, summaries)
            if live and time.monotonic() - last_report >= self.config.report_every_s:
                self._write_report(result_now(), source)
                last_report = time.monotonic()

        try:
            for item in source:
                if isinstance(item, av.Packet):
                    sink.mux_audio(item)
                    continue
                if isinstance(item, StreamEvent):
                    if chunk:  # frames of the old connection go through the old tracker
                        flush_chunk()
                    self._log_event(events, item, frames_done)
                    if item.kind != "connected":
                        id_offset = max(summaries, default=id_offset)
                        tracker = self._new_tracker(*item.size)
                    continue
                chunk.append(item)
                if len(chunk) >= self.config.detect_batch:
                    flush_chunk()
            if chunk:
                flush_chunk()
        finally:
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
                    try:
                        self._write_best_crops(out_dir, best, summaries, force=True)
                    except OutputError as exc:  # never hide the error that ended the run
                        log.error("%s", exc)
                    result = result_now()
                    self._write_report(result, source)
        return result

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

    def _process_frame(self, frame: Frame, tracks: list[Track], jsonl, summaries: dict[int, TrackSummary],
                       best: dict[int, _BestCrop], scheduler: SRScheduler) -> np.ndarray:
        width, height = frame.size
        crops: list[PlateCrop] = []
        for tr in tracks:
            box = expand_box(tr.box, self.config.margin, width, height)
            pixels = cut(frame.image, box)
            if pixels is not None:
                crops.append(PlateCrop(track_id=tr.track_id, frame_index=frame.index, box=box, score=tr.score,
                                       image=pixels))
        if self.enhancer is not None and crops:
            detected = {tr.track_id: tr.detected for tr in tracks}
            due = scheduler.due([c.track_id for c in crops], [detected[c.track_id] for c in crops], frame.pts_s)
            todo = [c for c, d in zip(crops, due) if d]
            if todo:  # one batch for every due track of this frame
                for crop, enhanced in zip(todo, self.enhancer.enhance([c.image for c in todo])):
                    crop.enhanced = enhanced
                    scheduler.store(crop.track_id, enhanced, frame.pts_s)
            scheduler.keep_only(tr.track_id for tr in tracks)
        by_id = {c.track_id: c for c in crops}
        # Drawn in place: nothing reads the decoded frame after this (crops above are copies).
        annotated = frame.image
        for tr in tracks:
            self._record(frame, tr, jsonl, summaries)
            crop = by_id.get(tr.track_id)
            if crop is not None and tr.detected:
                q = crop_quality(crop.image, tr.score)
                old = best.get(tr.track_id)
                if old is None or q > old.quality:
                    best[tr.track_id] = _BestCrop(q, crop, written_at=old.written_at if old else float("-inf"))
            draw_track(annotated, tr.box, tr.track_id, scheduler.latest(tr.track_id))
        return annotated

    @staticmethod
    def _record(frame: Frame, tr: Track, jsonl, summaries: dict[int, TrackSummary]) -> None:
        line = {"frame": frame.index, "time_s": round(frame.pts_s, 4), "track_id": tr.track_id,
                "box": [round(float(v), 1) for v in tr.box], "score": round(float(tr.score), 4),
                "detected": bool(tr.detected), "state": tr.state.value}
        jsonl.write(json.dumps(line) + "\n")
        s = summaries.get(tr.track_id)
        if s is None:
            s = summaries[tr.track_id] = TrackSummary(tr.track_id, frame.index, frame.index, frame.pts_s, frame.pts_s)
        s.last_frame, s.last_s = frame.index, frame.pts_s
        s.frames += 1
        if tr.detected:
            s.mean_score += (tr.score - s.mean_score) / (s.detected_frames + 1)
            s.detected_frames += 1

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
                crop.enhanced = self.enhancer.enhance([crop.image])[0]
            enhanced = crop.enhanced
            scale = self.enhancer.scale if self.enhancer is not None else 4
            if enhanced is None:
                enhanced = bicubic_upscale(crop.image, scale)
            bicubic = bicubic_upscale(crop.image, enhanced.shape[0] // max(1, crop.image.shape[0]) or scale)
            name = f"{CROPS_DIR}/track_{int(track_id):04d}.png"
            try:
                _atomic_write(out_dir / name, _png(comparison_panel(crop.image, bicubic, enhanced)))
                _atomic_write(out_dir / f"{CROPS_DIR}/track_{int(track_id):04d}_enhanced.png", _png(enhanced))
            except OSError as exc:
                raise OutputError(f"cannot write crops to {out_dir / CROPS_DIR}: {exc.strerror or exc}") from None
            entry.written, entry.written_at = True, now
            summaries[track_id].best_frame = crop.frame_index
            summaries[track_id].best_crop = name

    @staticmethod
    def _write_report(result: RunResult, source: VideoSource | LiveSource) -> None:
        info = source.info
        report = {
            "input": source.display_name,
            "width": info.width, "height": info.height, "fps": round(info.fps, 3),
            "frames_processed": result.frames, "seconds": round(result.seconds, 2),
            "processing_fps": round(result.fps, 2),
            "outputs": {"video": VIDEO_NAME, "tracks": TRACKS_NAME, "crops": CROPS_DIR},
            "tracks": [{**asdict(s), "first_s": round(s.first_s, 3), "last_s": round(s.last_s, 3),
                        "mean_score": round(s.mean_score, 4)} for s in result.tracks],
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


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode a {image.shape} crop as PNG")
    return buf.tobytes()
