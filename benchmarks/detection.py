"""Detector report: recall and precision at IoU 0.5 and AP50, overall and by plate width.

    python -m benchmarks.detection --out benchmarks/results/detection     # real photos + synthetic clips

Real photos: the annotated openalpr sets in ``../shared/data`` (``us``: allowed for training,
``eu``: evaluation only); one annotated plate per photo, so a second true plate in a photo
counts as a false positive (precision there is a lower bound). Synthetic: held-out clips
rendered by ``train.synth`` with seeds the detector never trained on.

Detections are taken at a low threshold (0.01) so the precision-recall curve, and with it AP50
(ultralytics' ``ap_per_class``, the same code its validator uses), covers the whole range;
recall and precision are reported at the operating threshold (``--conf``, the CLI default).
Greedy matching by descending score, one ground truth per detection, as in COCO.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tracker.types import Detection

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


def detection_report(preds: Sequence[Sequence[Detection]], gts: Sequence[np.ndarray], conf: float = 0.25,
                     iou_thr: float = 0.5) -> dict:
    """Recall / precision at ``conf`` and AP50, overall and per plate-width bin.

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
            "precision": round(n_tp / n_pred, 4) if n_pred else None,
            "ap50": round(ap50, 4) if pool.n_gt else None,
        }
    return report


@contextmanager
def full_curve(detector, conf: float = 0.01) -> Iterator[None]:
    """Run ``detector`` at a low threshold inside the block, so the precision-recall curve (and
    AP50) covers the whole range; its own threshold is restored afterwards, also on errors."""
    saved = detector.config
    detector.config = replace(saved, conf=conf)
    try:
        yield
    finally:
        detector.config = saved


def evaluate_clip(detector, clip_dir: Path, conf: float = 0.25, min_visibility: float = 0.5) -> dict:
    """Run ``detector`` on every frame of a synthetic clip and report against its ground truth.

    Plates less than ``min_visibility`` visible are neither required nor counted as false
    positives (they are dropped with any detection that matches them), as in MOTChallenge.
    """
    from stream.source import read_frames
    from train.synth.scenes import load_clip_truth

    truth = load_clip_truth(clip_dir)
    frames = read_frames(Path(clip_dir) / "clip.mp4")
    with full_curve(detector):
        preds = detector.detect(frames)
    gts, kept_preds = [], []
    for dets, plates in zip(preds, truth.frames):
        visible = np.array([p.box for p in plates if p.visibility >= min_visibility], np.float32).reshape(-1, 4)
        hidden = np.array([p.box for p in plates if p.visibility < min_visibility], np.float32).reshape(-1, 4)
        if len(hidden) and dets:
            iou = box_iou(np.array([d.box for d in dets]), hidden)
            dets = [d for d, row in zip(dets, iou) if row.max() < 0.5]
        gts.append(visible)
        kept_preds.append(dets)
    return detection_report(kept_preds, gts, conf=conf)


def evaluate_photos(detector, folder: Path, conf: float = 0.25) -> dict:
    """Run ``detector`` on every annotated photo in ``folder`` (openalpr layout) and report."""
    import cv2

    from benchmarks.plate_sets import parse_annotation

    preds, gts = [], []
    with full_curve(detector):
        for txt in sorted(Path(folder).glob("*.txt")):
            boxes, _ = parse_annotation(txt.read_text(errors="replace"))
            photo = cv2.imread(str(txt.with_suffix(".jpg")))
            if photo is None or not boxes:
                continue
            gts.append(np.array([[b.x, b.y, b.x + b.width, b.y + b.height] for b in boxes], np.float32))
            preds.append(detector.detect([photo])[0])
    return detection_report(preds, gts, conf=conf)


def format_table(rows: dict[str, dict]) -> str:
    lines = ["| set | bin | plates | recall | precision | AP50 |", "|---|---|---|---|---|---|"]
    for set_name, report in rows.items():
        for bin_name, r in report.items():
            fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
            lines.append(f"| {set_name} | {bin_name} | {r['plates']} | {fmt(r['recall'])} | "
                         f"{fmt(r['precision'])} | {fmt(r['ap50'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--detector", type=Path, default=None)
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--clips", type=int, default=3, help="held-out synthetic clips (seeds 9001...)")
    p.add_argument("--quick", action="store_true", help="one short clip, no photos")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data",
                   help="shared data folder holding openalpr/{us,eu}")
    args = p.parse_args(argv)

    from tracker.detector import DetectorConfig, PlateDetector
    from train.synth.scenes import SceneConfig, write_scene_clip

    detector = PlateDetector(args.detector, DetectorConfig(imgsz=args.imgsz, conf=args.conf))
    rows = {}
    if not args.quick:
        for region in ("us", "eu"):
            folder = args.data / "openalpr" / region
            if folder.is_dir():
                rows[f"openalpr {region} (real photos)"] = evaluate_photos(detector, folder, conf=args.conf)
            else:
                print(f"note: {folder} not found; real-photo rows skipped")
    n = 1 if args.quick else args.clips
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            w, h = [(1280, 720), (1920, 1080), (640, 360)][k % 3]
            widths = (60 * w / 1280, 180 * w / 1280)  # the same plates-to-frame proportions at every size
            cfg = SceneConfig(width=w, height=h, seconds=1.0 if args.quick else 3.0, n_plates=3, plate_width_px=widths)
            clip = write_scene_clip(Path(tmp) / f"clip{k}", cfg, seed=9001 + k)
            rows[f"synthetic {w}x{h} seed {9001 + k}"] = evaluate_clip(detector, clip.out_dir, conf=args.conf)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detection.json").write_text(json.dumps({"imgsz": args.imgsz, "conf": args.conf, "sets": rows}, indent=2))
    table = format_table(rows)
    (args.out / "detection.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
