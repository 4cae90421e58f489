"""Does warping each plate to a frontal rectangle with the detector's corners help reading it?

    python -m benchmarks.rectify --out benchmarks/results/rectify

Held-out synthetic 1280x720 clips (seeds 9101..., Latin plates 80-200 px wide seen in perspective,
never trained on) are run through the shipped corner detector; every plate matched at IoU 0.5 by a
detection scoring at least 0.5 (one that can start a track), every 6th frame, is cut four ways:
the pipeline's box crop (``--margin`` 0.15), the quadrilateral of the corner head's *predicted*
corners warped to a rectangle (``stream.crops.rectified``, margin 0.08, the pipeline's default),
that of the corner refiner's corners (:mod:`tracker.corners`) and that of the *true* corners (the
ceiling). Each crop is resized to 48 px tall and read by the independent OCR (rapidocr); figures
are exact reads and character accuracy against the true text. No super-resolution: this isolates
what rectification does. The same, without true corners, on the real openalpr photos in
``../shared/data`` (US hold-out and EU; the annotated plate, matched the same way).
Writes rectify.json and rectify.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _read_crops(reader, frame: np.ndarray, det, refined: np.ndarray, true_corners: np.ndarray | None, text: str,
                scores: dict, margin: float, rectify_margin: float) -> None:
    """Read one plate cut every way; append (exact, character accuracy) per way to ``scores``."""
    import cv2

    from benchmarks.ocr import char_accuracy, exact_match
    from stream.crops import cut, expand_box, rectified

    h, w = frame.shape[:2]
    box = expand_box(det.box, margin, w, h)
    crops = {"box crop": cut(frame, box),
             "rectified, corner head": rectified(frame, det.corners, box, rectify_margin),
             "rectified, corner refiner": rectified(frame, refined, box, rectify_margin)}
    if true_corners is not None:
        crops["rectified, true corners"] = rectified(frame, true_corners, box, rectify_margin)
    for name, crop in crops.items():
        crop = crop if crop is not None else crops["box crop"]  # what the pipeline falls back to
        crop = cv2.resize(crop, (max(8, round(crop.shape[1] * 48 / crop.shape[0])), 48), interpolation=cv2.INTER_CUBIC)
        read = reader.read_one(crop).text
        scores.setdefault(name, []).append((exact_match(read, text), char_accuracy(read, text)))


def _summarise(scores: dict[str, list[tuple[bool, float]]]) -> dict:
    rows = {}
    for name, vals in scores.items():
        a = np.array(vals, float).reshape(-1, 2)
        n = len(a)
        p = float(a[:, 0].mean()) if n else 0.0
        rows[name] = {"plates": n, "exact": round(p, 4), "exact_ci95": round(1.96 * (p * (1 - p) / max(n, 1)) ** 0.5, 4),
                      "char_accuracy": round(float(a[:, 1].mean()) if n else 0.0, 4)}
    return rows


def evaluate(work: Path, clips: int = 8, every: int = 6, margin: float = 0.15, rectify_margin: float = 0.08,
             data: Path | None = None) -> dict:
    import cv2

    from benchmarks.detection import BIRTH_SCORE, box_iou
    from benchmarks.ocr import PlateReader
    from benchmarks.plate_sets import parse_annotation
    from stream.source import read_frames
    from tracker.corners import CornerRefiner
    from tracker.detector import DetectorConfig, PlateDetector
    from train.detector import openalpr_split
    from train.synth.scenes import SceneConfig, write_scene_clip

    # imgsz 640 as in benchmarks.detection's photo rows (auto would grow with each photo's size)
    detector = PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False))
    # the refiner on the detector's back end and precision, as PlateDetector runs it
    refiner, reader = CornerRefiner(backend=detector.backend, precision=detector.precision), PlateReader()

    def matched(frame, boxes):
        """(detection, refined corners, truth index) per truth box matched at IoU 0.5 by a detection
        that can start a track."""
        dets = [d for d in detector.detect([frame])[0] if d.score >= BIRTH_SCORE and d.corners is not None]
        if not dets or not len(boxes):
            return []
        iou = box_iou(np.array([d.box for d in dets]), np.asarray(boxes, np.float32))
        [refined] = refiner.corners([frame], [np.array([d.box for d in dets], np.float32)])
        out = []
        for j in range(iou.shape[1]):
            i = int(iou[:, j].argmax())
            if iou[i, j] >= 0.5:
                out.append((dets[i], refined[i], j))
        return out

    scores: dict[str, list[tuple[bool, float]]] = {}
    for seed in range(9101, 9101 + clips):
        clip_dir = work / str(seed)
        if not (clip_dir / "gt.json").exists():
            write_scene_clip(clip_dir, SceneConfig(width=1280, height=720, seconds=2.0, n_plates=3,
                                                   plate_width_px=(80.0, 200.0), styles=("latin",)), seed=seed)
        gt = json.loads((clip_dir / "gt.json").read_text())
        texts = {int(k): v["text"] for k, v in gt["plates"].items()}
        frames = read_frames(clip_dir / "clip.mp4")
        for fi in range(0, len(frames), every):
            truths = [p for p in gt["frames"][fi] if p["visibility"] >= 0.99]
            for det, refined, j in matched(frames[fi], [p["box"] for p in truths]):
                _read_crops(reader, frames[fi], det, refined, np.array(truths[j]["corners"], np.float32),
                            texts[truths[j]["track_id"]], scores, margin, rectify_margin)
    result = {"clips": clips, "every": every, "margin": margin, "rectify_margin": rectify_margin,
              "rows": _summarise(scores), "photos": {}}
    for name in ("us", "eu"):
        folder = (data or Path()) / "openalpr" / name
        if data is None or not folder.is_dir():
            continue
        files = openalpr_split(folder)[1] if name == "us" else sorted(folder.glob("*.txt"))
        photo_scores: dict[str, list[tuple[bool, float]]] = {}
        for txt in files:
            boxes, _ = parse_annotation(txt.read_text(errors="replace"))
            photo = cv2.imread(str(txt.with_suffix(".jpg")))
            if photo is None or not boxes:
                continue
            gt_boxes = [[b.x, b.y, b.x + b.width, b.y + b.height] for b in boxes]
            for det, refined, j in matched(photo, gt_boxes):
                _read_crops(reader, photo, det, refined, None, boxes[j].text, photo_scores, margin, rectify_margin)
        label = "openalpr us held-out 20%" if name == "us" else "openalpr eu (evaluation only)"
        result["photos"][label] = _summarise(photo_scores)
    return result


def main(argv: list[str] | None = None) -> None:
    import tempfile

    p = argparse.ArgumentParser(prog="python -m benchmarks.rectify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--work", type=Path, default=None, help="folder for the clips (default: a temp dir)")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data",
                   help="shared data folder holding openalpr/{us,eu}")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = evaluate(args.work or Path(tmp), clips=args.clips, data=args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rectify.json").write_text(json.dumps(res, indent=2))
    lines = [f"# Rectified crops vs box crops (rapidocr, no SR)\n\n`python -m benchmarks.rectify --out {args.out}`"
             f" ({res['clips']} held-out synthetic 1280x720 clips, Latin plates 80-200 px in perspective)\n",
             "| crop | plates | exact reads | ±95 % | character accuracy |", "|---|---:|---:|---:|---:|"]
    for name, r in res["rows"].items():
        lines.append(f"| {name} | {r['plates']} | {r['exact']:.3f} | {r['exact_ci95']:.3f} | {r['char_accuracy']:.3f} |")
    for set_name, rows in res["photos"].items():
        lines += ["", f"Real photos, {set_name} (no true corners):", "",
                  "| crop | plates | exact reads | ±95 % | character accuracy |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {r['plates']} | {r['exact']:.3f} | {r['exact_ci95']:.3f} | {r['char_accuracy']:.3f} |"
                  for name, r in rows.items()]
    (args.out / "rectify.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
