"""The pipeline: source → detector → tracker → crops → generator → annotated video + reports.

One straight data flow. Frames are taken from the source in small chunks so the detector runs
batched; then each frame, in order, updates the tracker, has its tracks' crops cut and
super-resolved in one batch, is annotated and encoded. ``tracks.jsonl`` gets a line per track
per frame as it happens (line-buffered, so it survives a crash); the per-track best crops and
``report.json`` are written when the run ends, also when it ends by an error or an interrupt.
"""
from __future__ import annotations

import json
import logging
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
from stream.sink import VideoSink
from stream.source import VideoSource
from stream.types import Frame, PlateCrop
from tracker.detector import PlateDetector
from tracker.sort import PlateTracker, TrackerConfig
from tracker.types import Detection, Track

log = logging.getLogger(__name__)

VIDEO_NAME = "annotated.mp4"
TRACKS_NAME = "tracks.jsonl"
REPORT_NAME = "report.json"
CROPS_DIR = "crops"


@dataclass(frozen=True)
class PipelineConfig:
    """detect_every: run the detector on every N-th frame (the tracker predicts in between);
    detect_batch: frames per detector call; margin: crop margin as a fraction of the plate box;
    enhance: run super-resolution; crf / preset: libx264 settings of the annotated video."""

    detect_every: int = 1
    detect_batch: int = 4
    margin: float = 0.15
    enhance: bool = True
    crf: int = 23
    preset: str = "veryfast"


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

    def run(self, source: VideoSource, out_dir: str | Path, progress: bool = True, label: str = "") -> RunResult:
        out_dir = Path(out_dir)
        try:
            (out_dir / CROPS_DIR).mkdir(parents=True, exist_ok=True)
            jsonl = open(out_dir / TRACKS_NAME, "w", buffering=1)
        except OSError as exc:
            raise OutputError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None
        info = source.info
        sink = VideoSink(out_dir / VIDEO_NAME, info.width, info.height, info.fps, info.time_base,
                         crf=self.config.crf, preset=self.config.preset, audio=info.audio)
        # The tracker drops plates that leave the frame at once instead of coasting them outside.
        tracker = PlateTracker(replace(self.tracker_config or TrackerConfig(), frame_wh=(info.width, info.height)))
        summaries: dict[int, TrackSummary] = {}
        best: dict[int, _BestCrop] = {}
        frames_done = 0
        t_start = time.perf_counter()
        bar = tqdm(total=info.n_frames or None, unit="frame", desc=label or "enhance", disable=not progress,
                   dynamic_ncols=True)
        chunk: list[Frame] = []

        def flush_chunk() -> None:
            nonlocal frames_done
            every = max(1, self.config.detect_every)
            to_detect = [f for f in chunk if f.index % every == 0]
            found = dict(zip((f.index for f in to_detect), self.detector.detect([f.image for f in to_detect])))
            for frame in chunk:
                tracks = tracker.update(found.get(frame.index), frame.pts_s)
                image = self._process_frame(frame, tracks, jsonl, summaries, best)
                sink.write(image, frame.pts_s)
                frames_done += 1
                bar.update(1)
            chunk.clear()

        try:
            for item in source:
                if isinstance(item, av.Packet):
                    sink.mux_audio(item)
                    continue
                chunk.append(item)
                if len(chunk) >= self.config.detect_batch:
                    flush_chunk()
            if chunk:
                flush_chunk()
        finally:
            # Whatever stopped the run, finish the files: the video so far stays playable and
            # every track seen so far gets its report line and best crop.
            bar.close()
            sink.close()
            jsonl.close()
            seconds = time.perf_counter() - t_start
            self._write_best_crops(out_dir, best, summaries)
            result = RunResult(out_dir=out_dir, video=out_dir / VIDEO_NAME, tracks_jsonl=out_dir / TRACKS_NAME,
                               report=out_dir / REPORT_NAME, frames=frames_done, seconds=seconds,
                               tracks=sorted(summaries.values(), key=lambda s: s.track_id))
            self._write_report(result, source)
        return result

    def _process_frame(self, frame: Frame, tracks: list[Track], jsonl, summaries: dict[int, TrackSummary],
                       best: dict[int, _BestCrop]) -> np.ndarray:
        width, height = frame.size
        crops: list[PlateCrop] = []
        for tr in tracks:
            box = expand_box(tr.box, self.config.margin, width, height)
            pixels = cut(frame.image, box)
            if pixels is not None:
                crops.append(PlateCrop(track_id=tr.track_id, frame_index=frame.index, box=box, score=tr.score,
                                       image=pixels))
        if self.enhancer is not None and crops:
            for crop, enhanced in zip(crops, self.enhancer.enhance([c.image for c in crops])):
                crop.enhanced = enhanced
        by_id = {c.track_id: c for c in crops}
        annotated = frame.image.copy()
        for tr in tracks:
            self._record(frame, tr, jsonl, summaries)
            crop = by_id.get(tr.track_id)
            if crop is not None and tr.detected:
                q = crop_quality(crop.image, tr.score)
                if tr.track_id not in best or q > best[tr.track_id].quality:
                    best[tr.track_id] = _BestCrop(q, crop)
            draw_track(annotated, tr.box, tr.track_id, crop.enhanced if crop is not None else None)
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

    def _write_best_crops(self, out_dir: Path, best: dict[int, _BestCrop], summaries: dict[int, TrackSummary]) -> None:
        for track_id, entry in best.items():
            crop = entry.crop
            enhanced = crop.enhanced
            scale = self.enhancer.scale if self.enhancer is not None else 4
            if enhanced is None:
                enhanced = bicubic_upscale(crop.image, scale)
            bicubic = bicubic_upscale(crop.image, enhanced.shape[0] // max(1, crop.image.shape[0]) or scale)
            name = f"{CROPS_DIR}/track_{track_id:04d}.png"
            cv2.imwrite(str(out_dir / name), comparison_panel(crop.image, bicubic, enhanced))
            cv2.imwrite(str(out_dir / f"{CROPS_DIR}/track_{track_id:04d}_enhanced.png"), enhanced)
            summaries[track_id].best_frame = crop.frame_index
            summaries[track_id].best_crop = name

    @staticmethod
    def _write_report(result: RunResult, source: VideoSource) -> None:
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
        result.report.write_text(json.dumps(report, indent=2))
