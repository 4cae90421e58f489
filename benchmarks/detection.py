"""Detector report: recall and precision at IoU 0.5 and AP50, overall and by plate width;
corner error; a small-plate input-size study and a region-of-interest study on 1080p frames;
ms per 720p frame by back end.

    python -m benchmarks.detection --out benchmarks/results/detection     # everything
    python -m benchmarks.detection --out /tmp/d --compare tracker/weights/plate_yolov8p.safetensors

Real photos: the annotated openalpr sets in ``../shared/data``. ``us`` is allowed for training:
only its fixed 20 % hold-out (``train.detector.openalpr_split``), never trained on, is scored.
``eu`` is evaluation only (never trained or tuned on). One annotated plate per photo, so a
second true plate in a photo counts as a false positive (precision there is a lower bound).
No photo has a plate under 40 px wide, so the same photos are also scored shrunk (area
averaging) until their plates are 16-64 px wide and packed into 1920x1080 frames
(:func:`train.detector.shrunk_photo_mosaics`), at the input size, at each of ``--shrunk-imgsz`` (default 960 and 1280)
and enlarged by each of ``--shrunk-zoom`` (default 2: ``enhance-video --zoom 2``).
Synthetic: held-out clips rendered by ``train.synth`` with seeds the detector never trained on;
their corners are exact, so they also give the corner error of a corner (pose) detector: the
mean distance of the 4 predicted corners to the true ones, in % of the true plate width, per
matched plate at the operating threshold.

Detections are taken at a low threshold (0.01) so the precision-recall curve, and with it AP50
(ultralytics' ``ap_per_class``, the same code its validator uses), covers the whole range;
recall and precision are reported at ``--conf`` (default 0.25; the CLI keeps detections from 0.1,
but only those scoring 0.5 or more start a track).
Greedy matching by descending score, one ground truth per detection, as in COCO.
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tracker.detector import BACKENDS
from tracker.types import Detection
from tracker.weights_file import OPENVINO_PRECISIONS

WIDTH_BINS: tuple[tuple[str, float, float], ...] = (("<40px", 0, 40), ("40-80px", 40, 80), (">80px", 80, 1e9))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of x1y1x2y2 boxes (torchvision's implementation)."""
    import torch
    from torchvision.ops import box_iou as tv_box_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    return tv_box_iou(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)).numpy()


def match(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray, iou_thr: float = 0.5
          ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy score-ordered matching. Returns (tp flag per prediction, index of the matched gt or -1)."""
    order = np.argsort(-pred_scores, kind="stable")
    iou = box_iou(pred_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    tp = np.zeros(len(pred_boxes), bool)
    matched = np.full(len(pred_boxes), -1)
    for i in order:
        if len(gt_boxes) == 0:
            break
        cand = np.where(~taken & (iou[i] >= iou_thr))[0]
        if len(cand):
            j = cand[np.argmax(iou[i, cand])]
            taken[j], tp[i], matched[i] = True, True, j
    return tp, matched


@dataclass
class _Pool:
    tp: list
    conf: list
    n_gt: int = 0


BIRTH_SCORE = 0.5  # a track starts only from a detection scoring this much (tracker.sort.TrackerConfig)


def detection_report(preds: Sequence[Sequence[Detection]], gts: Sequence[np.ndarray], conf: float = 0.25,
                     iou_thr: float = 0.5) -> dict:
    """Recall / precision at ``conf`` and AP50, overall and per plate-width bin; also the recall
    at :data:`BIRTH_SCORE` (``recall_birth``): the plates that could start a track on their own.

    preds: per image, detections (at a low threshold). gts: per image, (n, 4) x1y1x2y2 boxes.
    A prediction falls in the width bin of the gt it matched, or of its own width if unmatched.
    """
    from ultralytics.utils.metrics import ap_per_class

    pools = {name: _Pool([], []) for name, *_ in (("all", 0, 0),) + WIDTH_BINS}

    def bin_of(width: float) -> str:
        return next(name for name, lo, hi in WIDTH_BINS if lo <= width < hi)

    for dets, gt in zip(preds, gts):
        gt = np.asarray(gt, np.float32).reshape(-1, 4)
        boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
        scores = np.array([d.score for d in dets], np.float32)
        tp, matched = match(boxes, scores, gt, iou_thr)
        gt_bins = [bin_of(w) for w in gt[:, 2] - gt[:, 0]]
        pools["all"].n_gt += len(gt)
        for b in gt_bins:
            pools[b].n_gt += 1
        for k in range(len(boxes)):
            b = gt_bins[matched[k]] if matched[k] >= 0 else bin_of(boxes[k, 2] - boxes[k, 0])
            for name in ("all", b):
                pools[name].tp.append(tp[k])
                pools[name].conf.append(scores[k])

    report = {}
    for name, pool in pools.items():
        tp = np.array(pool.tp, bool)
        cf = np.array(pool.conf, np.float32)
        keep = cf >= conf
        n_tp = int(tp[keep].sum())
        n_pred = int(keep.sum())
        ap50 = 0.0
        if pool.n_gt and len(tp):
            out = ap_per_class(tp[:, None], cf, np.zeros(len(tp)), np.zeros(pool.n_gt))
            ap50 = float(out[5][0, 0])
        report[name] = {
            "plates": pool.n_gt,
            "recall": round(n_tp / pool.n_gt, 4) if pool.n_gt else None,
            "recall_birth": round(int(tp[cf >= BIRTH_SCORE].sum()) / pool.n_gt, 4) if pool.n_gt else None,
            "precision": round(n_tp / n_pred, 4) if n_pred else None,
            "ap50": round(ap50, 4) if pool.n_gt else None,
        }
    return report


@contextmanager
def full_curve(detector, conf: float = 0.01) -> Iterator[object | None]:
    """Run ``detector`` at a low threshold inside the block, so the precision-recall curve (and
    AP50) covers the whole range, and without its corner refiner (corners play no part in the
    curve, and at this threshold it would refine up to ``max_det`` candidates per image): the
    detections carry the corner head's own corners (none for a box-only model). Yields the
    refiner (None without one), to apply to the detections that count; the detector's own
    settings are restored afterwards, also on errors."""
    saved, refiner = detector.config, getattr(detector, "refiner", None)
    detector.config, detector.refiner = replace(saved, conf=conf), None
    try:
        yield refiner
    finally:
        detector.config, detector.refiner = saved, refiner


def corner_errors(preds: Sequence[Sequence[Detection]], gts: Sequence[np.ndarray], gt_corners: Sequence[np.ndarray],
                  conf: float = 0.25, iou_thr: float = 0.5) -> np.ndarray:
    """Per matched plate (detections at >= ``conf`` with corners), the mean distance of the 4
    predicted corners to the true ones divided by the true box width (a fraction, not %).

    gts: per image (n, 4) boxes; gt_corners: per image (n, 4, 2) tl, tr, br, bl px.
    """
    errs = []
    for dets, gt, gc in zip(preds, gts, gt_corners):
        dets = [d for d in dets if d.score >= conf and d.corners is not None]
        if not dets or not len(gt):
            continue
        boxes = np.array([d.box for d in dets], np.float32)
        tp, matched = match(boxes, np.array([d.score for d in dets], np.float32), np.asarray(gt, np.float32))
        for d, ok, j in zip(dets, tp, matched):
            if ok:
                width = float(gt[j][2] - gt[j][0])
                errs.append(float(np.linalg.norm(d.corners - gc[j], axis=1).mean()) / max(width, 1e-6))
    return np.array(errs, np.float64)


def corner_summary(errs: np.ndarray) -> dict | None:
    """Median / p90 corner error in % of plate width, and the number of plates, or None."""
    if not len(errs):
        return None
    return {"plates": int(len(errs)), "median_pct": round(100 * float(np.median(errs)), 2),
            "p90_pct": round(100 * float(np.percentile(errs, 90)), 2)}


def evaluate_clip(detector, clip_dir: Path, conf: float = 0.25, min_visibility: float = 0.5,
                  with_corners: bool = False) -> dict:
    """Run ``detector`` on every frame of a synthetic clip and report against its ground truth.

    Plates less than ``min_visibility`` visible are neither required nor counted as false
    positives (they are dropped with any detection that matches them), as in MOTChallenge.
    with_corners: add ``"corners"`` (:func:`corner_summary` over plates fully inside the frame)
    when the detector predicts corners: those of its corner head (``median_pct``, ``p90_pct``),
    of its corner refiner when it has one (``refined_*``, the default path) and of its boxes.
    """
    from stream.source import read_frames
    from train.synth.scenes import load_clip_truth

    truth = load_clip_truth(clip_dir)
    frames = read_frames(Path(clip_dir) / "clip.mp4")
    with full_curve(detector) as refiner:
        preds = detector.detect(frames)
    gts, kept_preds, inside, inside_c = [], [], [], []
    W, H = truth.size
    for dets, plates in zip(preds, truth.frames):
        vis = [p for p in plates if p.visibility >= min_visibility]
        visible = np.array([p.box for p in vis], np.float32).reshape(-1, 4)
        hidden = np.array([p.box for p in plates if p.visibility < min_visibility], np.float32).reshape(-1, 4)
        if len(hidden) and dets:
            iou = box_iou(np.array([d.box for d in dets]), hidden)
            dets = [d for d, row in zip(dets, iou) if row.max() < 0.5]
        gts.append(visible)
        kept_preds.append(dets)
        full = [p for p in vis if p.box[0] >= 0 and p.box[1] >= 0 and p.box[2] <= W and p.box[3] <= H]
        inside.append(np.array([p.box for p in full], np.float32).reshape(-1, 4))
        inside_c.append(np.array([p.corners for p in full], np.float32).reshape(-1, 4, 2))
    report = detection_report(kept_preds, gts, conf=conf)
    if with_corners and getattr(detector, "has_corners", False):
        # Reference: the detected box's own corners as the plate corners (what a box-only
        # detector offers); corners are only useful where they beat this.
        as_box = [[replace(d, corners=np.array([[d.box[0], d.box[1]], [d.box[2], d.box[1]], [d.box[2], d.box[3]],
                                                [d.box[0], d.box[3]]], np.float32)) for d in dets] for dets in kept_preds]
        box = corner_summary(corner_errors(as_box, inside, inside_c, conf=conf))
        summary = {"box_corners_median_pct": box["median_pct"] if box else None}
        head = corner_summary(corner_errors(kept_preds, inside, inside_c, conf=conf))
        if head:
            summary.update(head)
        if refiner is not None:
            scored = [[d for d in ds if d.score >= conf] for ds in kept_preds]  # what corner_errors counts
            corners = refiner.corners(frames, [np.array([d.box for d in ds], np.float32) for ds in scored])
            refined = [[replace(d, corners=c) for d, c in zip(ds, cs)] for ds, cs in zip(scored, corners)]
            ref = corner_summary(corner_errors(refined, inside, inside_c, conf=conf))
            if ref:
                summary.update({"plates": ref["plates"], "refined_median_pct": ref["median_pct"],
                                "refined_p90_pct": ref["p90_pct"]})
        report["corners"] = summary if "plates" in summary else None
    return report


STUDY_BINS: tuple[tuple[str, float, float], ...] = (
    ("12-20px", 12, 20), ("20-30px", 20, 30), ("30-40px", 30, 40), ("40-60px", 40, 60), ("60-100px", 60, 100))


def _recall_by_width(det, frames: Sequence[np.ndarray], truths: Sequence[Sequence], scored=lambda p: True) -> dict:
    """Recall at IoU 0.5 by plate width (:data:`STUDY_BINS`, px at the frame) of ``det`` over
    ``frames`` (one per call), on the plates at least half visible for which ``scored(plate)``
    holds; with the median ms per frame."""
    import time

    det.detect(frames[:1])  # warm-up
    times, found = [], {name: [0, 0] for name, *_ in STUDY_BINS}
    for img, plates in zip(frames, truths):
        t0 = time.perf_counter()
        dets = det.detect([img])[0]
        times.append(time.perf_counter() - t0)
        gt = [p for p in plates if p.visibility >= 0.5 and scored(p)]
        gt_boxes = np.array([p.box for p in gt], np.float32).reshape(-1, 4)
        boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
        tp, matched = match(boxes, np.array([d.score for d in dets], np.float32), gt_boxes)
        hit = set(int(j) for j in matched[tp])
        for j, p in enumerate(gt):
            w = float(p.box[2] - p.box[0])
            for name, lo, hi in STUDY_BINS:
                if lo <= w < hi:
                    found[name][0] += j in hit
                    found[name][1] += 1
    return {"ms_per_frame": round(1000 * float(np.median(times)), 1),
            "recall": {name: (round(a / b, 3) if b else None) for name, (a, b) in found.items()},
            "plates": {name: b for name, (a, b) in found.items()}}


def _study_frames(size: tuple[int, int], n_scenes: int, frames_per_scene: int, seed0: int) -> tuple[list, list]:
    """``frames_per_scene`` frames from each of ``n_scenes`` synthetic scenes (seeds ``seed0``...,
    6 plates 12..100 px wide, no occluders), rendered directly; (frames, their plate truths)."""
    from train.synth.scenes import SceneConfig, iter_scene_frames

    frames, truths = [], []
    for k in range(n_scenes):
        cfg = SceneConfig(width=size[0], height=size[1], seconds=2.0, fps=10.0, n_plates=6,
                          plate_width_px=(12.0, 100.0), occlusion=0.0)
        for i, (img, plates) in enumerate(iter_scene_frames(cfg, seed=seed0 + k)):
            if i % max(1, cfg.n_frames // frames_per_scene) == 0:
                frames.append(img)
                truths.append(plates)
    return frames, truths


def small_plate_study(weights: Path | None, imgsz_list: Sequence[int], n_scenes: int = 4, frames_per_scene: int = 6,
                      conf: float = 0.25, size: tuple[int, int] = (1920, 1080), backend: str = "auto",
                      precision: str = "auto", zooms: Sequence[float] = ()) -> dict:
    """Recall by plate width (:data:`STUDY_BINS`, px at the frame) on synthetic ``size`` frames
    (plates 12..100 px wide, seeds 9101...) at each network input size in ``imgsz_list`` and each
    enlargement in ``zooms`` (``DetectorConfig.zoom``; keyed "zoom F"), with the median ms per
    frame. Frames are rendered directly (no video compression)."""
    from tracker.detector import DetectorConfig, PlateDetector

    frames, truths = _study_frames(size, n_scenes, frames_per_scene, 9101)
    out = {"frame_size": list(size), "frames": len(frames), "conf": conf, "by_imgsz": {}}
    inputs = [(str(v), {"imgsz": v}) for v in imgsz_list] + [(f"zoom {z:g}", {"zoom": z}) for z in zooms]
    for key, size_option in inputs:
        det = PlateDetector(weights, DetectorConfig(conf=conf, batch_size=1, backend=backend, precision=precision,
                                                    **size_option))
        out["by_imgsz"][key] = _recall_by_width(det, frames, truths)
    return out


ROI_STUDY_REGIONS: tuple[tuple[int, int], ...] = ((1280, 720), (960, 540))


def roi_study(weights: Path | None, n_scenes: int = 12, frames_per_scene: int = 6, conf: float = 0.25,
              size: tuple[int, int] = (1920, 1080), regions: Sequence[tuple[int, int]] = ROI_STUDY_REGIONS,
              backend: str = "auto", precision: str = "auto") -> dict:
    """Small plates on a fixed camera: the whole frame at imgsz 640 and 1280 against a centred
    region of interest (``DetectorConfig.roi``, each of ``regions`` w x h px) at imgsz 640.

    All rows are scored on the same plates, those lying entirely inside the smallest region (at
    least half visible), by plate width (:data:`STUDY_BINS`, px at the frame), on synthetic
    ``size`` frames (plates 12..100 px wide anywhere in the frame, seeds 9301..., rendered
    directly); with the median ms per frame (``PlateDetector.detect``, one frame per call)."""
    from tracker.detector import DetectorConfig, PlateDetector

    W, H = size
    boxes_of = {r: (int((W - r[0]) // 2), int((H - r[1]) // 2), int(r[0]), int(r[1])) for r in regions}
    ex, ey, ew, eh = boxes_of[min(regions, key=lambda r: r[0] * r[1])]
    frames, truths = _study_frames(size, n_scenes, frames_per_scene, 9301)
    configs = [(f"whole frame, imgsz {s}", None, s) for s in (640, 1280)]
    configs += [(f"region {r[0]}x{r[1]} (centred), imgsz 640", boxes_of[r], 640) for r in regions]
    out = {"frame_size": [W, H], "frames": len(frames), "conf": conf,
           "scored_region": [ex, ey, ew, eh], "rows": {}}
    for name, roi, imgsz in configs:
        det = PlateDetector(weights, DetectorConfig(imgsz=imgsz, conf=conf, batch_size=1, backend=backend,
                                                    precision=precision, roi=roi))
        inside = lambda p: p.box[0] >= ex and p.box[1] >= ey and p.box[2] <= ex + ew and p.box[3] <= ey + eh  # noqa: E731
        out["rows"][name] = {"roi": list(roi) if roi else None, "imgsz": imgsz,
                             **_recall_by_width(det, frames, truths, inside)}
    return out


def speed_variants() -> list[tuple[str, str]]:
    """(backend, precision) pairs this machine can time: torch, ONNX Runtime, and OpenVINO in f32
    and, where the CPU has native bf16 units, bf16 (when the packages are installed)."""
    from sr_model.backends import cpu_has_native_bf16
    from tracker.weights_file import onnx_available, openvino_available

    out = [("torch", "f32")]
    if onnx_available():
        out.append(("onnx", "f32"))
        if openvino_available():
            out += [("openvino", "f32")] + ([("openvino", "bf16")] if cpu_has_native_bf16() else [])
    return out


def time_backends(weights: Path | None, variants: Sequence[tuple[str, str]] | None = None, imgsz: int = 640,
                  size: tuple[int, int] = (1280, 720), repeats: int = 30, threads: int = 2) -> dict:
    """Median (and p90) ms per ``size`` frame through ``PlateDetector.detect`` (letterbox, network,
    NMS, boxes, the corner refiner) per (backend, precision) in ``variants`` (default
    :func:`speed_variants`), one frame per call, ``threads`` torch / ONNX Runtime / OpenVINO
    threads; with the default back end's name and the CPU's vector extensions."""
    import time

    import torch

    from benchmarks.throughput import machine
    from tracker.detector import DetectorConfig, PlateDetector
    from train.synth.scenes import SceneConfig, render_scene_frame

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        frame, _ = render_scene_frame(SceneConfig(width=size[0], height=size[1]), 9201, 5)
        auto = PlateDetector(weights, DetectorConfig(imgsz=imgsz, batch_size=1))
        out = {"frame_size": list(size), "imgsz": imgsz, "threads": threads, "ms": {},
               "default": f"{auto.backend} {auto.precision}", "machine": machine()}
        for be, precision in variants or speed_variants():
            det = PlateDetector(weights, DetectorConfig(imgsz=imgsz, batch_size=1, backend=be,
                                                        precision=precision if be == "openvino" else "auto"))
            for _ in range(3):
                det.detect([frame])
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                det.detect([frame])
                ts.append(1000 * (time.perf_counter() - t0))
            out["ms"][f"{be} {det.precision}"] = {"median": round(float(np.median(ts)), 2),
                                                  "p90": round(float(np.percentile(ts, 90)), 2)}
        return out
    finally:
        torch.set_num_threads(saved)


def evaluate_photos(detector, folder: Path, conf: float = 0.25, files: Sequence[Path] | None = None) -> dict:
    """Run ``detector`` on the annotated photos in ``folder`` (openalpr layout; only the
    annotation files ``files`` when given) and report."""
    import cv2

    from benchmarks.plate_sets import parse_annotation

    preds, gts = [], []
    with full_curve(detector):
        for txt in sorted(files) if files is not None else sorted(Path(folder).glob("*.txt")):
            boxes, _ = parse_annotation(txt.read_text(errors="replace"))
            photo = cv2.imread(str(txt.with_suffix(".jpg")))
            if photo is None or not boxes:
                continue
            gts.append(np.array([[b.x, b.y, b.x + b.width, b.y + b.height] for b in boxes], np.float32))
            preds.append(detector.detect([photo])[0])
    return detection_report(preds, gts, conf=conf)


def evaluate_shrunk(detector, folder: Path, conf: float = 0.25, files: Sequence[Path] | None = None) -> dict:
    """:func:`detection_report` of ``detector`` on :func:`train.detector.shrunk_photo_mosaics` of ``folder``."""
    from train.detector import shrunk_photo_mosaics

    frames, gts = shrunk_photo_mosaics(folder, files)
    with full_curve(detector):
        preds = detector.detect(frames)
    return detection_report(preds, gts, conf=conf)


FOOTAGE_SET = "openalpr eu footage (benchmarks.track_reads clip: 640x360 15 fps H.264, plates 30-60 px, evaluation only)"


def evaluate_footage(detector, data: Path, tmp: Path, conf: float = 0.25) -> dict:
    """:func:`detection_report` of ``detector`` on the frames of :mod:`benchmarks.track_reads`'
    clip (every eu photo as 3 s of a camera zooming in, H.264 CRF 30; the clip is rendered once
    into ``tmp``), plus ``plates_born``: the plates with enough frames where a detection at IoU >=
    0.5 scores enough to start a track by the tracker's defaults (``tracker.sort.TrackerConfig``:
    ``weak_min_hits`` frames at ``weak_birth_score``), of ``plates_total``.
    The photos score whole plates at rest; this is the same plates small, blurred and compressed
    in video, where a detector can lose plates the photo rows do not show
    (results/detection/gpu_imgsz960.md)."""
    import av

    from benchmarks.track_reads import write_clip
    from tracker.sort import TrackerConfig

    clip = tmp / "eu_footage.mp4"
    boxes_path = tmp / "eu_footage_boxes.npz"
    if not boxes_path.exists():
        plate_boxes: dict[int, np.ndarray] = {}
        segments = write_clip(data, clip, plate_boxes=plate_boxes)
        np.savez(boxes_path, index=np.array(sorted(plate_boxes)), boxes=np.stack([plate_boxes[i] for i in sorted(plate_boxes)]),
                 first=np.array([g["first_frame"] for g in segments]), last=np.array([g["last_frame"] for g in segments]))
    saved = np.load(boxes_path)
    gt_by_frame = dict(zip(saved["index"].tolist(), saved["boxes"]))
    preds, index, batch = [], [], []
    with full_curve(detector), av.open(str(clip)) as container:
        for k, frame in enumerate(container.decode(video=0)):  # 64 frames at a time: bounded memory
            if k in gt_by_frame:
                batch.append(frame.to_ndarray(format="bgr24"))
                index.append(k)
            if len(batch) == 64:
                preds.extend(detector.detect(batch))
                batch = []
        if batch:
            preds.extend(detector.detect(batch))
    gts = [gt_by_frame[k][None] for k in index]
    report = detection_report(preds, gts, conf=conf)
    cfg = TrackerConfig()  # its birth rule (tracker.sort): the weak one where set
    born_score, born_frames = max(cfg.high_score, cfg.new_track_score), cfg.min_hits
    if cfg.weak_birth_score is not None:
        born_score, born_frames = min(born_score, cfg.weak_birth_score), cfg.weak_min_hits
    hits = {}  # frame -> the plate is detected at the birth score
    for k, dets, gt in zip(index, preds, gts):
        boxes = np.array([d.box for d in dets if d.score >= born_score], np.float32).reshape(-1, 4)
        hits[k] = bool(len(boxes)) and bool((box_iou(gt, boxes) >= 0.5).any())
    born = sum(sum(hits.get(k, False) for k in range(a, b + 1)) >= born_frames
               for a, b in zip(saved["first"].tolist(), saved["last"].tolist()))
    report["plates_born"] = {"plates_born": int(born), "plates_total": int(len(saved["first"])),
                             "score": born_score, "frames": born_frames}
    return report


def format_table(rows: dict[str, dict]) -> str:
    lines = ["| set | bin | plates | recall | precision | AP50 | recall at score 0.5 (track birth) |",
             "|---|---|---|---|---|---|---|"]
    for set_name, report in rows.items():
        for bin_name, r in report.items():
            if bin_name in ("corners", "plates_born"):
                continue
            fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
            lines.append(f"| {set_name} | {bin_name} | {r['plates']} | {fmt(r['recall'])} | "
                         f"{fmt(r['precision'])} | {fmt(r['ap50'])} | {fmt(r.get('recall_birth'))} |")
    for set_name, report in rows.items():
        if "plates_born" in report:  # the plates of a clip that would get a track
            b = report["plates_born"]
            lines += ["", f"{set_name}: {b['plates_born']} of {b['plates_total']} plates are detected (IoU >= 0.5) at "
                      f"score >= {b['score']} in at least {b['frames']} frames, the tracker's rule for a weakly born track."]
    return "\n".join(lines)


def _width_table(first: str, rows: dict[str, dict]) -> list[str]:
    """Markdown lines of a recall-by-width table (:func:`_recall_by_width` rows by name)."""
    names = [n for n, *_ in STUDY_BINS]
    lines = [f"| {first} | ms/frame | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for name, r in rows.items():
        cells = ["-" if r["recall"][n] is None else f"{r['recall'][n]:.3f} ({r['plates'][n]})" for n in names]
        lines.append(f"| {name} | {r['ms_per_frame']:.0f} | " + " | ".join(cells) + " |")
    return lines


def format_extras(corners: dict, study: dict | None, speed: dict | None, roi: dict | None = None) -> str:
    lines = []
    if corners and any(corners.values()):
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines += ["", "Corner error (mean of the 4 corners, % of plate width; matched plates at the threshold):", "",
                  "| set | plates | corner head median % | p90 % | refined (default) median % | p90 % "
                  "| box corners instead, median % |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {k} | {v['plates']} | {fmt(v.get('median_pct'))} | {fmt(v.get('p90_pct'))} | "
                  f"{fmt(v.get('refined_median_pct'))} | {fmt(v.get('refined_p90_pct'))} | "
                  f"{fmt(v.get('box_corners_median_pct'))} |" for k, v in corners.items() if v]
    if study:
        lines += ["", f"Small plates: recall by plate width on {study['frames']} synthetic "
                  f"{study['frame_size'][0]}x{study['frame_size'][1]} frames, by network input size "
                  f"(conf {study['conf']}):", "",
                  *_width_table("imgsz", study["by_imgsz"])]
    if roi:
        ex, ey, ew, eh = roi["scored_region"]
        lines += ["", f"Region of interest (`--roi`): recall by plate width on {roi['frames']} synthetic "
                  f"{roi['frame_size'][0]}x{roi['frame_size'][1]} frames, every row scored on the same plates (those "
                  f"inside the centred {ew}x{eh} region; count in brackets), conf {roi['conf']}, one frame per call:", "",
                  *_width_table("search", roi["rows"])]
    if speed:
        m = speed.get("machine", {})
        lines += ["", f"Speed: ms per {speed['frame_size'][0]}x{speed['frame_size'][1]} frame at imgsz {speed['imgsz']} "
                  f"(`PlateDetector.detect`: letterbox, network, NMS, corner refiner), {speed['threads']} threads, "
                  f"{m.get('cpu', '?')} with {', '.join(m.get('isa', [])) or 'no listed vector extensions'}"
                  + (f" ({speed['conditions']})" if speed.get("conditions") else "")
                  + f"; default back end here: {speed.get('default', '?')}:", "",
                  "| backend | median ms | p90 ms |", "|---|---|---|"]
        lines += [f"| {be} | {v['median']:.1f} | {v['p90']:.1f} |" for be, v in speed["ms"].items()]
    return "\n".join(lines)


def plot_study(study: dict, path: Path, roi: dict | None = None) -> None:
    """Recall by plate width per input size (left) and, with ``roi``, per search region (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, *_ in STUDY_BINS]
    fig, axes = plt.subplots(1, 2 if roi else 1, figsize=(12 if roi else 6, 3.5), squeeze=False)
    ax = axes[0, 0]
    if roi:
        ax2 = axes[0, 1]
        for name, r in roi["rows"].items():
            ax2.plot(names, [np.nan if r["recall"][n] is None else r["recall"][n] for n in names], marker="o",
                     label=f"{name} ({r['ms_per_frame']:.0f} ms)")
        ax2.set(xlabel="plate width at the frame", ylabel="recall @ IoU 0.5", ylim=(0, 1.02),
                title=f"same plates, inside the centred {roi['scored_region'][2]}x{roi['scored_region'][3]} region")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
    for imgsz, r in study["by_imgsz"].items():
        ax.plot(names, [np.nan if r["recall"][n] is None else r["recall"][n] for n in names], marker="o",
                label=f"{'imgsz ' if imgsz.isdigit() else ''}{imgsz} ({r['ms_per_frame']:.0f} ms)")
    ax.set_xlabel("plate width at the frame")
    ax.set_ylabel("recall @ IoU 0.5")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{study['frame_size'][0]}x{study['frame_size'][1]} synthetic frames")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SHRUNK_MARK = "real plates shrunk to 16-64 px in 1080p frames, "


def _grouped_bars(path: Path, panels: Sequence[tuple[str, dict[str, dict[str, float]]]], series: Sequence[str],
                  target: float, ylim: tuple[float, float], ylabel: str | None = None) -> None:
    """Two side-by-side bar charts saved to ``path``: each panel (title, {group: {series: value}})
    one cluster of bars per group, one bar per name in ``series`` (a missing value: 0), a dashed
    line at ``target``, a shared legend below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.6), sharey=True, squeeze=False)
    width = 0.8 / len(series)
    for ax, (title, groups) in zip(axes[0], panels):
        x = np.arange(len(groups))
        for k, name in enumerate(series):
            vals = [g.get(name) or 0.0 for g in groups.values()]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=name)
        ax.axhline(target, color="k", lw=0.8, ls="--")
        ax.set_xticks(x, list(groups), fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(*ylim)
        ax.grid(axis="y", alpha=0.3)
    if ylabel:
        axes[0, 0].set_ylabel(ylabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(series), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_shrunk(rows: dict, path: Path) -> None:
    """Recall of the real plates shrunk into 1080p frames by plate width (< 40 px, 40-80 px), one
    group per input setting (imgsz N, zoom F), one bar per photo set; no plot without such rows."""
    by_set: dict[str, dict[str, dict]] = {}  # photo set -> input setting -> report
    for name, report in rows.items():
        if SHRUNK_MARK in name:
            setting = name.split(SHRUNK_MARK)[1].split(",")[0].rstrip(")")
            by_set.setdefault(name.split(" (")[0], {})[setting] = report
    if not by_set:
        return
    settings = list(dict.fromkeys(k for v in by_set.values() for k in v))
    panels = [(f"real plates {b.replace('px', ' px')} wide in 1080p frames (dashed: 0.9)",
               {st: {set_name: reports.get(st, {}).get(b, {}).get("recall") for set_name, reports in by_set.items()}
                for st in settings})
              for b in ("<40px", "40-80px")]
    _grouped_bars(path, panels, list(by_set), 0.9, (0.0, 1.0), "recall at score 0.25")


COARSE_VARIANTS = ("with --no-coarse-pass", "with --coarse-pass")  # row-name suffixes of --coarse-pass runs


def plot_coarse_pass(rows: dict, path: Path) -> None:
    """Recall and AP50 of each set scored without, by default with, and always with the coarse
    pass (the rows ``--coarse-pass`` adds), side by side."""
    groups = {}  # base set name -> {variant: report}
    for name, report in rows.items():
        for label in COARSE_VARIANTS:
            if f", {label}" in name:
                groups.setdefault(name.replace(f", {label}", ""), {})[label] = report["all"]
    groups = {base: {"default": rows[base]["all"], **v} for base, v in groups.items() if base in rows}
    if not groups:
        return
    variants = [COARSE_VARIANTS[0], "default", COARSE_VARIANTS[1]]
    labels = {v: v.replace("with ", "") for v in variants}
    panels = [(f"{'recall at score 0.25' if metric == 'recall' else 'AP50'} (dashed: the 0.95 target)",
               {b.split(" (")[0] + ("\nphotos" if "real photos" in b else ""): {labels[v]: g[v][metric] for v in variants}
                for b, g in groups.items()})
              for metric in ("recall", "ap50")]
    _grouped_bars(path, panels, list(labels.values()), 0.95, (0.5, 1.0))


def evaluate_model(weights: Path | None, args, tmp: Path) -> tuple[dict, dict, str]:
    """All photo and clip sets for one weights file; returns (rows, corner summaries, the back end
    and precision that scored them)."""
    from tracker.detector import DetectorConfig, PlateDetector
    from train.detector import openalpr_split
    from train.synth.scenes import SceneConfig, write_scene_clip

    config = DetectorConfig(imgsz=args.imgsz, conf=args.conf, backend=args.backend, precision=args.precision)
    detector = PlateDetector(weights, config)
    rows, corners = {}, {}
    if not args.quick:
        us = args.data / "openalpr" / "us"
        eu = args.data / "openalpr" / "eu"
        # the default rows: the coarse pass on small frames only; --coarse-pass here adds never and always
        variants = {label: PlateDetector(weights, replace(config, coarse_pass=mode))
                    for label, mode in (zip(COARSE_VARIANTS, ("off", "on")) if args.coarse_pass else ())}
        sets = [("openalpr us held-out 20% ({})", us, openalpr_split(us)[1] if us.is_dir() else None),
                ("openalpr eu ({}, evaluation only)", eu, None)]
        for name, folder, files in sets:
            if not folder.is_dir():
                print(f"note: {folder} not found; its rows skipped")
                continue
            rows[name.format("real photos")] = evaluate_photos(detector, folder, conf=args.conf, files=files)
            for label, variant in variants.items():
                rows[name.format(f"real photos, {label}")] = evaluate_photos(variant, folder, conf=args.conf,
                                                                             files=files)
        # The photos hold no plate under 40 px: the same plates shrunk into 1080p frames, at this
        # input size, at each of --shrunk-imgsz (960: what imgsz auto gives 1080p) and enlarged by
        # each of --shrunk-zoom (DetectorConfig.zoom: the detector finds real plates from about
        # 30-40 px at its input).
        sized = ((f"imgsz {v}", detector if v == args.imgsz else PlateDetector(weights, replace(config, imgsz=v)))
                 for v in dict.fromkeys([args.imgsz] + [int(v) for v in args.shrunk_imgsz.split(",") if v]))
        zoomed = [(f"zoom {z:g}", PlateDetector(weights, replace(config, imgsz=None, zoom=z))) for z in args.shrunk_zoom]
        for label, det in itertools.chain(sized, zoomed):  # sized ones built one at a time
            for name, folder, files in sets:
                if folder.is_dir():
                    rows[name.format(f"{SHRUNK_MARK}{label}")] = evaluate_shrunk(det, folder, conf=args.conf,
                                                                                 files=files)
        if eu.is_dir():
            rows[FOOTAGE_SET] = evaluate_footage(detector, args.data, tmp, conf=args.conf)
            for label, variant in variants.items():
                rows[f"{FOOTAGE_SET}, {label}"] = evaluate_footage(variant, args.data, tmp, conf=args.conf)
            for label, det in zoomed:
                rows[f"{FOOTAGE_SET}, {label}"] = evaluate_footage(det, args.data, tmp, conf=args.conf)
    n = 1 if args.quick else args.clips
    for k in range(n):
        w, h = [(1280, 720), (1920, 1080), (640, 360)][k % 3]
        clip_dir = tmp / f"clip{k}"
        if not (clip_dir / "gt.json").exists():
            widths = (60 * w / 1280, 180 * w / 1280)  # the same plates-to-frame proportions at every size
            cfg = SceneConfig(width=w, height=h, seconds=1.0 if args.quick else 3.0, n_plates=3, plate_width_px=widths)
            write_scene_clip(clip_dir, cfg, seed=9001 + k)
        name = f"synthetic {w}x{h} seed {9001 + k}"
        rep = evaluate_clip(detector, clip_dir, conf=args.conf, with_corners=True)
        corners[name] = rep.pop("corners", None)
        rows[name] = rep
    return rows, corners, f"{detector.backend} {detector.precision}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--detector", type=Path, default=None, help="weights (default: the shipped detector)")
    p.add_argument("--compare", type=Path, default=None, help="second weights file scored on the same sets")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--clips", type=int, default=3, help="held-out synthetic clips (seeds 9001...)")
    p.add_argument("--study-imgsz", default="640,960,1280,1920",
                   help="input sizes for the small-plate study on 1080p frames ('' to skip)")
    p.add_argument("--shrunk-imgsz", default="960,1280",
                   help="input sizes, besides --imgsz, for the real plates shrunk into 1080p frames ('' for none)")
    p.add_argument("--shrunk-zoom", default="2", type=lambda text: [float(v) for v in text.split(",") if v],
                   help="enlargements (--zoom) for the real plates shrunk into 1080p frames, the footage and the "
                        "small-plate study ('' for none)")
    p.add_argument("--no-roi-study", dest="roi_study", action="store_false",
                   help="skip the region-of-interest study on 1080p frames")
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="detector back end for the scored sets")
    p.add_argument("--precision", default="auto", choices=OPENVINO_PRECISIONS,
                   help="OpenVINO's precision for the scored sets (auto: bf16 where the CPU has native bf16)")
    p.add_argument("--coarse-pass", action="store_true",
                   help="also score the real photos and footage without and with the coarse pass on every frame "
                        "(enhance-video --no-coarse-pass / --coarse-pass; the default rows: on small frames only)")
    p.add_argument("--no-speed", action="store_true", help="skip the per-backend timing")
    p.add_argument("--conditions", default="", help="free text on the machine's state, stored with the timings")
    p.add_argument("--quick", action="store_true", help="one short clip, no photos, no study, no timing")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data",
                   help="shared data folder holding openalpr/{us,eu}")
    args = p.parse_args(argv)

    from tracker.detector import load_detector_model

    with tempfile.TemporaryDirectory() as tmp:
        rows, corners, backend = evaluate_model(args.detector, args, Path(tmp))
        doc = {"imgsz": args.imgsz, "conf": args.conf, "detector": str(args.detector or "shipped default"),
               "backend": backend,
               "detector_info": {k: v for k, v in load_detector_model(args.detector)[1].items() if k != "names"},
               "sets": rows, "corners": corners}
        if args.compare:
            c_rows, c_corners, _ = evaluate_model(args.compare, args, Path(tmp))
            doc["compare"] = {"detector": str(args.compare), "sets": c_rows, "corners": c_corners}
    study = speed = roi = None
    if not args.quick and args.study_imgsz:
        study = small_plate_study(args.detector, [int(v) for v in args.study_imgsz.split(",")], conf=args.conf,
                                  backend=args.backend, precision=args.precision,
                                  zooms=args.shrunk_zoom)
        doc["small_plate_study"] = study
    if not args.quick and args.roi_study:
        roi = roi_study(args.detector, conf=args.conf, backend=args.backend, precision=args.precision)
        doc["roi_study"] = roi
    if not args.quick and not args.no_speed:
        speed = time_backends(args.detector)
        speed["conditions"] = args.conditions
        doc["speed"] = speed
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detection.json").write_text(json.dumps(doc, indent=2))
    table = (f"Scored with the detector on {doc['backend']}.\n\n" + format_table(rows)
             + format_extras(corners, study, speed, roi))
    if args.compare:
        table += (f"\n\nCompared with `{args.compare.name}` on the same sets:\n\n" + format_table(doc["compare"]["sets"])
                  + format_extras(doc["compare"]["corners"], None, None))
    (args.out / "detection.md").write_text(table + "\n")
    if study:
        plot_study(study, args.out / "small_plates.png", roi)
    if args.coarse_pass:
        plot_coarse_pass(rows, args.out / "coarse_pass.png")
    plot_shrunk(rows, args.out / "shrunk_plates.png")
    print(table)


if __name__ == "__main__":
    main()
