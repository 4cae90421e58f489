"""Train the plate detector (ultralytics YOLO from a model yaml, offline) and ship it as safetensors.

The shipped (default) corner detector came from four runs, each starting from the last:

    # 1. box model on plain synthetic scenes (CPU)
    python -m train.detector --model tracker/models/plate_yolov8p.yaml --plain-synthetic --synthetic 2000 \
        --epochs 20 --imgsz 320 --out tracker/weights/plate_yolov8p.safetensors
    # 2. corner (pose) model: randomised synthetic scenes + the allowed US photos (CPU, ~1 h)
    python -m train.detector --synthetic 1000 --us ../shared/data/openalpr/us --us-repeat 3 \
        --init tracker/weights/plate_yolov8p.safetensors --imgsz 480 --epochs 8 --hours 0.9 --batch 16 \
        --threads 1 --seed 1 --out tracker/weights/plate_yolov8p_pose.safetensors
    # 3. the same on a lent GPU: 36 epochs in 5 minutes (scripts/gpu_session.sh; runs on a CPU too, slowly)
    python -m train.detector --synthetic 5000 --data-workers 13 --us ../shared/data/openalpr/us --us-repeat 3 \
        --init tracker/weights/plate_yolov8p_pose.safetensors --imgsz 640 --hours 0.08 --batch 64 \
        --workers 12 --device 0 --out tracker/weights/plate_yolov8p_pose.safetensors
    # 4. long plates (EU / UK shape) made from the US photos, and small ones (CPU, 8 epochs in 0.95 h;
    #    benchmarks/results/detection/long_plates.md)
    python -m train.detector --synthetic 1000 --us ../shared/data/openalpr/us --us-repeat 3 --us-shrunk 3 \
        --us-long 3 --us-long-shrunk 3 --init tracker/weights/plate_yolov8p_pose.safetensors --imgsz 640 \
        --hours 0.95 --batch 16 --threads 2 --seed 3 --data-workers 2 --out tracker/weights/plate_yolov8p_pose.safetensors
    # optional weights (not the default: they lose EU plates in video): at the 1080p input size (960)
    # with the train-split photos also shrunk into 1080p frames, 31 epochs in 6 minutes on a lent H200
    # (benchmarks/results/detection/gpu_imgsz960.md)
    python -m train.detector --synthetic 4000 --data-workers 14 --us ../shared/data/openalpr/us --us-repeat 3 \
        --us-shrunk 8 --init tracker/weights/plate_yolov8p_pose.safetensors --imgsz 960 --hours 0.1 --batch 64 \
        --workers 12 --device 0 --out tracker/weights/plate_yolov8p_pose_960.safetensors
    python -m train.detector --ccpd CCPD2019/ccpd_base --epochs 20           # a CCPD folder (labels in names)
    python -m train.detector --yolo my_dataset/data.yaml --epochs 50         # YOLO-format user data

Sources can be combined (``--synthetic`` + ``--us`` + ``--ccpd`` + ``--yolo``); each becomes a
4-keypoint YOLO-pose dataset (plate box + corners tl, tr, br, bl; sources without corners, the
US photos and box-only YOLO data, get keypoints marked not visible, so they train the box only).
A ``--model`` yaml without ``kpt_shape`` trains a box-only detector on one box-only ``--yolo``
dataset or ``--synthetic``. The written file is what ``enhance-video --detector PATH`` and
``tracker.PlateDetector`` load.

The openalpr ``eu`` photos are evaluation only: this module refuses a folder named ``eu``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import yaml as pyyaml

from tracker.detector import DEFAULT_WEIGHTS, configure_ultralytics_offline, save_detector
from train.synth.plates import ALL_STYLES

POSE_YAML = Path(__file__).resolve().parents[1] / "tracker" / "models" / "plate_yolov8p_pose.yaml"
US_HOLDOUT_FRACTION = 0.2


# ----------------------------------------------------------------------------- openalpr photos
def openalpr_split(folder: str | Path, holdout_fraction: float = US_HOLDOUT_FRACTION) -> tuple[list[Path], list[Path]]:
    """Fixed (train, held-out) split of an openalpr folder's annotation files (``*.txt``).

    The held-out part is the ``round(n * holdout_fraction)`` files whose names have the lowest
    CRC32: independent of the file order and of the machine, the same in training and in
    ``benchmarks.detection``. Returns two sorted lists of ``.txt`` paths.
    """
    txts = sorted(Path(folder).glob("*.txt"))
    by_hash = sorted(txts, key=lambda p: (zlib.crc32(p.name.encode()), p.name))
    n_hold = int(round(len(txts) * holdout_fraction))
    hold = set(by_hash[:n_hold])
    return [p for p in txts if p not in hold], [p for p in txts if p in hold]


def _train_photos(folder: str | Path, out_dir: str | Path) -> tuple[list[Path], Path]:
    """The TRAIN-split annotation files of an openalpr ``folder`` (see :func:`openalpr_split`; the
    EU set is refused: evaluation only) and ``out_dir``, its ``images/train`` and ``labels/train``
    made: the start of every writer of real photos as a training set."""
    folder, out = Path(folder), Path(out_dir)
    if folder.name.lower() == "eu":
        raise ValueError(f"{folder} is the openalpr EU set: evaluation only, never trained on")
    for sub in ("images", "labels"):
        (out / sub / "train").mkdir(parents=True, exist_ok=True)
    return openalpr_split(folder)[0], out


def _write_train_sample(out: Path, name: str, image: np.ndarray, rows: list[str]) -> None:
    """``image`` as ``out/images/train/NAME.jpg`` and its label ``rows`` as ``out/labels/train/NAME.txt``."""
    import cv2

    cv2.imwrite(str(out / "images" / "train" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    (out / "labels" / "train" / f"{name}.txt").write_text("\n".join(rows) + "\n")


def _annotated_photos(txts: Sequence[Path]) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
    """(annotation path, BGR photo, (n, 4) float64 x1 y1 x2 y2 plate boxes) of each openalpr
    annotation file in ``txts`` whose photo reads and has at least one plate."""
    import cv2

    from benchmarks.plate_sets import parse_annotation

    for txt in txts:
        boxes, _ = parse_annotation(txt.read_text(errors="replace"))
        im = cv2.imread(str(txt.with_suffix(".jpg")))
        if im is not None and boxes:
            yield txt, im, np.array([[b.x, b.y, b.x + b.width, b.y + b.height] for b in boxes], np.float64)


def write_openalpr_pose_dataset(folder: str | Path, out_dir: str | Path, repeat: int = 1) -> Path:
    """Write the TRAIN part of an openalpr folder (see :func:`openalpr_split`) as a YOLO pose set.

    Boxes only (no corners in openalpr): keypoints are written as not visible (``0 0 0``), so
    these photos train the box and class branches only. ``repeat`` > 1 lists each photo that
    many times (symlinks under different names) to weigh the few real photos up against the
    synthetic ones. Returns the folder holding ``images/train`` and ``labels/train``.
    """
    from benchmarks.plate_sets import parse_annotation
    import cv2

    from train.ccpd import pose_label_row

    train, out = _train_photos(folder, out_dir)
    folder = Path(folder)
    n = 0
    for txt in train:
        boxes, _ = parse_annotation(txt.read_text(errors="replace"))
        jpg = txt.with_suffix(".jpg")
        im = cv2.imread(str(jpg))
        if im is None or not boxes:
            continue
        h, w = im.shape[:2]
        rows = [pose_label_row([b.x, b.y, b.x + b.width, b.y + b.height], None, w, h) for b in boxes]
        rows = [r for r in rows if r]
        for k in range(repeat):
            stem = f"{folder.name}_{k}_{jpg.stem}"
            dst = out / "images" / "train" / f"{stem}.jpg"
            if not dst.exists():
                os.symlink(jpg.resolve(), dst)
            (out / "labels" / "train" / f"{stem}.txt").write_text("\n".join(rows) + "\n")
            n += 1
    if n == 0:
        raise ValueError(f"no annotated photos in {folder}")
    return out


LONG_PLATE_ASPECT = (3.5, 5.5)  # width / height of EU and UK plates (520 x 110 mm: 4.7) with room either side


def _squash_factor(boxes: np.ndarray, rng: np.random.Generator, aspect: tuple[float, float]) -> float:
    """Vertical scale that gives the widest of ``boxes`` ((n, 4) x1 y1 x2 y2) a width / height drawn
    uniformly from ``aspect``; 1.0 where the plate is already that long."""
    widest = boxes[int(np.argmax(boxes[:, 2] - boxes[:, 0]))]
    current = float(widest[2] - widest[0]) / max(float(widest[3] - widest[1]), 1.0)
    return min(1.0, current / float(rng.uniform(*aspect)))


def shrunk_photo_mosaics(folder: Path, files: Sequence[Path] | None = None, widths: tuple[float, float] = (16.0, 64.0),
                         copies: int = 3, size: tuple[int, int] = (1920, 1080), seed: int = 0,
                         aspect: tuple[float, float] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Real plates made small: each annotated photo of ``folder`` (openalpr layout; only ``files``
    when given) shrunk (area averaging, as a camera's sensor would) so its widest plate is
    ``widths[0]``..``widths[1]`` px wide (log-uniform, ``copies`` times at different sizes), and
    the shrunk photos packed row by row into ``size`` frames on ultralytics' pad grey: a busy
    1080p view of many far cars. The openalpr photos hold no plate under 40 px: benchmarks.detection
    measures small-plate recall on real plate pixels this way (hold-out and EU photos), and
    :func:`write_shrunk_pose_dataset` trains on it (train-split photos only). ``aspect``: each shrunk
    copy is also squashed vertically so its widest plate's width / height is drawn from this range
    (long plates made from the US ones, :func:`write_long_plate_pose_dataset`). Returns (frames, per
    frame (n, 4) x1 y1 x2 y2 plate boxes)."""
    import cv2

    from benchmarks.plate_sets import parse_annotation

    W, H = size
    shrunk: list[tuple[np.ndarray, np.ndarray]] = []
    for txt in sorted(files) if files is not None else sorted(Path(folder).glob("*.txt")):
        boxes, _ = parse_annotation(txt.read_text(errors="replace"))
        photo = cv2.imread(str(txt.with_suffix(".jpg")))
        if photo is None or not boxes:
            continue
        b = np.array([[p.x, p.y, p.x + p.width, p.y + p.height] for p in boxes], np.float32)
        rng = np.random.default_rng([seed, zlib.crc32(txt.name.encode())])
        for target in np.exp(rng.uniform(np.log(widths[0]), np.log(widths[1]), copies)):
            f = float(target / (b[:, 2] - b[:, 0]).max())
            fy = f * (_squash_factor(b, rng, aspect) if aspect else 1.0)
            w, h = max(1, round(photo.shape[1] * f)), max(1, round(photo.shape[0] * fy))
            if f >= 1 or w > W or h > H:
                continue
            shrunk.append((cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA),
                           b * np.float32([w / photo.shape[1], h / photo.shape[0]] * 2)))
    frames, gts = [], []
    canvas, gt, x, y, row_h = None, [], 0, 0, 0
    for img, b in shrunk:
        h, w = img.shape[:2]
        if canvas is not None and x + w > W:  # next row
            x, y, row_h = 0, y + row_h, 0
        if canvas is None or y + h > H:  # next frame
            if canvas is not None:
                frames.append(canvas)
                gts.append(np.concatenate(gt).reshape(-1, 4))
            canvas, gt, x, y, row_h = np.full((H, W, 3), 114, np.uint8), [], 0, 0, 0
        canvas[y: y + h, x: x + w] = img
        gt.append(b + np.float32([x, y, x, y]))
        x, row_h = x + w, max(row_h, h)
    if canvas is not None:
        frames.append(canvas)
        gts.append(np.concatenate(gt).reshape(-1, 4))
    return frames, gts


def write_shrunk_pose_dataset(folder: str | Path, out_dir: str | Path, copies: int = 3, seed: int = 0,
                              widths: tuple[float, float] = (12.0, 96.0),
                              aspect: tuple[float, float] | None = None) -> Path:
    """Write :func:`shrunk_photo_mosaics` of the TRAIN part of an openalpr folder (each photo
    ``copies`` times, plates ``widths`` px wide in 1920x1080 frames, squashed to a plate ``aspect``
    when given) as a YOLO pose set with not-visible keypoints (boxes only). Returns the folder
    holding ``images/train`` and ``labels/train``."""
    from train.ccpd import pose_label_row

    train, out = _train_photos(folder, out_dir)
    frames, gts = shrunk_photo_mosaics(Path(folder), train, widths=widths, copies=copies, aspect=aspect,
                                       seed=(3000 if aspect else 1000) + seed)  # not the benchmark's sizes (seed 0)
    for k, (img, boxes) in enumerate(zip(frames, gts)):
        h, w = img.shape[:2]
        rows = [r for r in (pose_label_row(list(map(float, b)), None, w, h) for b in boxes) if r]
        _write_train_sample(out, f"shrunk_{k:04d}", img, rows)
    if not frames:
        raise ValueError(f"no annotated photos in {folder}")
    return out


def write_zoomed_pose_dataset(folder: str | Path, out_dir: str | Path, copies: int = 3, seed: int = 0,
                              fill: tuple[float, float] = (0.25, 0.5)) -> Path:
    """Write close-ups of the TRAIN part of an openalpr folder as a YOLO pose set (boxes only):
    each photo ``copies`` times, cut around one of its plates so that the plate spans ``fill``
    of the cut's width (a random position, 4:3 to 16:9, kept inside the photo), as a close camera
    or a parking gate sees it. At the network input such plates are 160-320 px wide: the sizes
    the detector scored low on real photos (benchmarks/results/detection/coarse_pass.md).
    Returns the folder holding ``images/train`` and ``labels/train``."""
    from train.ccpd import pose_label_row

    train, out = _train_photos(folder, out_dir)
    rng = np.random.default_rng(2000 + seed)
    n = 0
    for txt, im, allb in _annotated_photos(train):
        H, W = im.shape[:2]
        for k in range(copies):
            b = allb[int(rng.integers(len(allb)))]
            cw = min(float(W), (b[2] - b[0]) / rng.uniform(*fill))
            ch = min(float(H), cw / rng.uniform(4 / 3, 16 / 9))
            x0 = float(np.clip(rng.uniform(b[2] - cw, b[0]), 0.0, W - cw))
            y0 = float(np.clip(rng.uniform(b[3] - ch, b[1]), 0.0, H - ch))
            x0i, y0i, x1i, y1i = int(x0), int(y0), int(round(x0 + cw)), int(round(y0 + ch))
            cut = im[y0i:y1i, x0i:x1i]
            shifted = allb - [x0i, y0i, x0i, y0i]
            # Plates cut by the window are labelled with their visible part only if most of it shows.
            rows = []
            for sb, ob in zip(shifted, allb):
                vis = (max(0.0, min(sb[2], cut.shape[1]) - max(sb[0], 0.0))
                       * max(0.0, min(sb[3], cut.shape[0]) - max(sb[1], 0.0)))
                if vis >= 0.6 * (ob[2] - ob[0]) * (ob[3] - ob[1]):
                    row = pose_label_row(sb, None, cut.shape[1], cut.shape[0])
                    if row:
                        rows.append(row)
            if not rows:
                continue
            _write_train_sample(out, f"zoom_{txt.stem}_{k}", cut, rows)
            n += 1
    if n == 0:
        raise ValueError(f"no annotated photos in {folder}")
    return out


def write_long_plate_pose_dataset(folder: str | Path, out_dir: str | Path, copies: int = 3, seed: int = 0,
                                  aspect: tuple[float, float] = LONG_PLATE_ASPECT) -> Path:
    """Write long plates made from the TRAIN part of an openalpr folder as a YOLO pose set (boxes
    only): each photo ``copies`` times, squashed vertically (area averaging) so that its widest
    plate's width / height is drawn from ``aspect``. US plates are about 2:1; EU and UK ones about
    4.7:1, and a detector that has seen real plates only at 2:1 scores long ones low (a frame
    stretched 2x vertically lifted the EU photos' small-plate recall from 0.68 to 0.87,
    benchmarks/results/detection/long_plates.md). Returns the folder holding ``images/train`` and
    ``labels/train``."""
    import cv2

    from train.ccpd import pose_label_row

    train, out = _train_photos(folder, out_dir)
    rng = np.random.default_rng(4000 + seed)
    n = 0
    for txt, im, b in _annotated_photos(train):
        for k in range(copies):
            fy = _squash_factor(b, rng, aspect)
            h = max(1, round(im.shape[0] * fy))
            squashed = cv2.resize(im, (im.shape[1], h), interpolation=cv2.INTER_AREA)
            sb = b * [1.0, h / im.shape[0], 1.0, h / im.shape[0]]
            rows = [r for r in (pose_label_row(list(map(float, x)), None, im.shape[1], h) for x in sb) if r]
            if rows:
                _write_train_sample(out, f"long_{txt.stem}_{k}", squashed, rows)
                n += 1
    if n == 0:
        raise ValueError(f"no annotated photos in {folder}")
    return out


def yolo_boxes_to_pose(data_yaml: str | Path, out_dir: str | Path) -> Path:
    """Re-write a box-only YOLO dataset (``cls cx cy w h`` rows, any class mapped to plate) as a
    pose dataset with not-visible keypoints; images are symlinked. Returns ``out_dir``.
    Rows of a dataset whose yaml has ``kpt_shape: [4, 3]`` keep their corners (class set to 0)."""
    data_yaml = Path(data_yaml)
    d = pyyaml.safe_load(data_yaml.read_text())
    root = Path(d.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    out = Path(out_dir)
    pose = list(d.get("kpt_shape") or []) == [4, 3]
    for split in ("train", "val"):
        srcs = d.get(split) or []
        for k, src in enumerate([srcs] if isinstance(srcs, str) else srcs):
            img_dir = root / src
            if not img_dir.is_dir():
                raise ValueError(f"{data_yaml}: {split} folder {img_dir} not found (list files are not supported)")
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            (out / "labels" / split).mkdir(parents=True, exist_ok=True)
            lbl_dir = Path(str(img_dir).replace(f"{os.sep}images", f"{os.sep}labels", 1))
            for img in sorted(img_dir.iterdir()):
                if img.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
                    continue
                rows = []
                lbl = lbl_dir / (img.stem + ".txt")
                for line in (lbl.read_text().splitlines() if lbl.is_file() else []):
                    v = line.split()
                    if pose and len(v) == 17:  # corners already labelled: kept
                        rows.append("0 " + " ".join(v[1:]))
                    elif len(v) >= 5:
                        rows.append("0 " + " ".join(v[1:5]) + " 0 0 0" * 4)
                dst = out / "images" / split / f"{k}_{img.name}"
                if not dst.exists():
                    os.symlink(img.resolve(), dst)
                (out / "labels" / split / f"{k}_{img.stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    return out


# ----------------------------------------------------------------------------- training
def _init_from(model, init: Path) -> int:
    """Copy every tensor of safetensors ``init`` whose name and shape fit ``model`` (a YOLO);
    returns how many were copied. Box weights initialise a pose model's backbone, neck and box head."""
    from safetensors.torch import load_file

    state = load_file(str(init))
    own = model.model.state_dict()
    fit = {k: v.float() for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.model.load_state_dict(fit, strict=False)
    model.ckpt = {"init": str(init)}  # makes ultralytics' trainer start from these weights
    return len(fit)


def train_detector(
    data_yaml: Path,
    out: Path,
    model_yaml: Path = POSE_YAML,
    epochs: int = 30,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "cpu",
    workers: int = 0,
    seed: int = 0,
    runs_dir: Path | None = None,
    data_note: str = "",
    init: Path | None = None,
    hours: float | None = None,
    threads: int | None = None,
    **overrides,
) -> dict:
    """Train on ``data_yaml`` (from scratch, or from ``init`` weights) and write the best weights
    to ``out``; returns the metadata written (val metrics included).

    hours: wall-clock budget; ultralytics then fits the epochs (and the LR schedule) into it.
    threads: torch CPU threads (None: torch's default).
    overrides: further ultralytics train arguments. Starting from ``init``, the defaults are a
    fine-tuning schedule (AdamW, lr0 0.001, one warm-up epoch without the bias warm-up, whose
    lr 0.1 wrecks a trained head in the first iterations: measured box mAP50 0.86 -> 0.02).
    """
    configure_ultralytics_offline()
    import torch
    from ultralytics import YOLO

    if threads:
        torch.set_num_threads(threads)
    model_cfg = pyyaml.safe_load(Path(model_yaml).read_text())
    pose = "kpt_shape" in model_cfg
    data_cfg = pyyaml.safe_load(Path(data_yaml).read_text())
    if pose and "kpt_shape" not in data_cfg:
        raise ValueError(f"{data_yaml} has no kpt_shape but {model_yaml} is a pose model: pass a box model "
                         "yaml, or train through --yolo which converts box labels")
    if not pose and "kpt_shape" in data_cfg:
        raise ValueError(f"{data_yaml} is a pose dataset but {model_yaml} has no kpt_shape")
    # Absolute: ultralytics puts a relative project under its own runs folder, not the working one.
    runs_dir = Path(runs_dir or tempfile.mkdtemp(prefix="le-detector-runs-")).resolve()
    model = YOLO(str(model_yaml), task="pose" if pose else "detect")
    n_init = _init_from(model, Path(init)) if init else 0
    t0 = time.time()
    kwargs = dict(time=hours) if hours else {}
    if init:
        kwargs.update(optimizer="AdamW", lr0=0.001, warmup_epochs=1.0, warmup_bias_lr=0.0)
    kwargs.update(overrides)
    model.train(
        data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers,
        seed=seed, deterministic=True, pretrained=bool(init), amp=False, plots=False,
        project=str(runs_dir), name="train", exist_ok=True, verbose=False,
        close_mosaic=max(1, epochs // 5), patience=max(10, epochs), **kwargs,
    )
    metrics = {k: round(float(v), 4) for k, v in (model.trainer.metrics or {}).items()}
    net = model.model  # ultralytics reloads the best (EMA) checkpoint after training
    info = {
        "trained_on": data_note or str(data_yaml),
        "epochs": int(getattr(model.trainer, "epoch", epochs - 1)) + 1,
        "imgsz": imgsz,
        "seed": seed,
        "train_seconds": round(time.time() - t0, 1),
        "val_metrics": metrics,
        "model_yaml": Path(model_yaml).name,
        "init": Path(init).name if init else None,
        "init_tensors": n_init,
        "device": device if device == "cpu" else f"cuda: {torch.cuda.get_device_name(0)}",
        "schedule": {k: v for k, v in kwargs.items()},
    }
    if pose:
        info["keypoints"] = "plate corners tl, tr, br, bl (frame px)"
    save_detector(net, out, yaml=dict(net.yaml), imgsz=imgsz, info=info)
    return info


def build_dataset(workdir: Path, synthetic: int = 0, us: Path | None = None, us_repeat: int = 1, us_shrunk: int = 0,
                  us_zoom: int = 0, us_long: int = 0, us_long_shrunk: int = 0,
                  ccpd: Path | None = None, ccpd_limit: int | None = None, yolo: Path | None = None,
                  seed: int = 0, imgsz: int = 640, pose: bool = True, randomise: bool = True,
                  data_workers: int = 1, styles: tuple[str, ...] | None = None) -> tuple[Path, str]:
    """Write the chosen sources under ``workdir`` and one data.yaml over all; returns (yaml, note).
    randomise: the synthetic images get the strong domain randomisation (distractors, photometry);
    data_workers: processes rendering the synthetic images; styles: the synthetic plates' styles,
    drawn uniformly (None: latin and ccpd_blue; see train.synth.scenes.write_detection_dataset)."""
    from train.ccpd import pose_data_yaml, write_ccpd_pose_dataset
    from train.synth.scenes import write_detection_dataset

    synthetic_kind = f"{', randomised' if randomise else ''}{', styles ' + ' '.join(styles) if styles else ''}"

    if not pose:  # box-only model: a single box-only source, used as it is
        if yolo and not (synthetic or us or ccpd):
            return yolo, str(yolo)
        if synthetic and not (us or ccpd or yolo):
            y = write_detection_dataset(workdir / "synthetic", n_images=synthetic, seed=seed, imgsz=imgsz,
                                        randomise=randomise, workers=data_workers, styles=styles)
            return y, f"synthetic scenes: {synthetic} images, seed {seed}{synthetic_kind} (train.synth)"
        raise ValueError("a box-only model trains on one source (--synthetic or a box-only --yolo); "
                         "combined sources need the pose model")
    roots, notes = [], []
    if synthetic:
        write_detection_dataset(workdir / "synthetic", n_images=synthetic, seed=seed, imgsz=imgsz,
                                keypoints=True, randomise=randomise, workers=data_workers, styles=styles)
        roots.append(workdir / "synthetic")
        notes.append(f"synthetic scenes: {synthetic} images (15 % val), seed {seed}{synthetic_kind} (train.synth)")
    if us:
        write_openalpr_pose_dataset(us, workdir / "us", repeat=us_repeat)
        n = len(openalpr_split(us)[0])
        notes.append(f"openalpr {Path(us).name} photos: the {n} train-split photos (boxes only, x{us_repeat}); "
                     f"the fixed {US_HOLDOUT_FRACTION:.0%} hold-out never seen")
        roots.append(workdir / "us")
        if us_shrunk:
            write_shrunk_pose_dataset(us, workdir / "us_shrunk", copies=us_shrunk, seed=seed)
            notes.append(f"the same train-split photos shrunk x{us_shrunk} (plates 12-96 px) into 1920x1080 frames")
            roots.append(workdir / "us_shrunk")
        if us_zoom:
            write_zoomed_pose_dataset(us, workdir / "us_zoom", copies=us_zoom, seed=seed)
            notes.append(f"close-ups of the same train-split photos x{us_zoom} (plate 25-50 % of the width)")
            roots.append(workdir / "us_zoom")
        lo, hi = LONG_PLATE_ASPECT
        if us_long:
            write_long_plate_pose_dataset(us, workdir / "us_long", copies=us_long, seed=seed)
            notes.append(f"the same train-split photos squashed x{us_long} into long plates ({lo}-{hi}:1)")
            roots.append(workdir / "us_long")
        if us_long_shrunk:
            write_shrunk_pose_dataset(us, workdir / "us_long_shrunk", copies=us_long_shrunk, seed=seed,
                                      aspect=LONG_PLATE_ASPECT)
            notes.append(f"the same train-split photos squashed into long plates ({lo}-{hi}:1) and shrunk "
                         f"x{us_long_shrunk} (plates 12-96 px) into 1920x1080 frames")
            roots.append(workdir / "us_long_shrunk")
    if ccpd:
        write_ccpd_pose_dataset(ccpd, workdir / "ccpd", seed=seed, limit=ccpd_limit)
        roots.append(workdir / "ccpd")
        notes.append(f"CCPD folder {Path(ccpd).name}" + (f" (first {ccpd_limit})" if ccpd_limit else ""))
    if yolo:
        yolo_boxes_to_pose(yolo, workdir / "yolo")
        roots.append(workdir / "yolo")
        notes.append(f"YOLO dataset {yolo}")
    if not roots:
        raise ValueError("no training data: pass --synthetic N, --us DIR, --ccpd DIR and/or --yolo DATA.yaml")
    train = [str((r / "images" / "train").resolve()) for r in roots if (r / "images" / "train").is_dir()]
    val = [str((r / "images" / "val").resolve()) for r in roots
           if (r / "images" / "val").is_dir() and any((r / "images" / "val").iterdir())]
    if not val:
        raise ValueError("no validation images (a source with a val split is needed: --synthetic, --ccpd or --yolo)")
    return pose_data_yaml(workdir, train=train, val=val), "; ".join(notes)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.detector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synthetic", type=int, default=0, metavar="N", help="generate N synthetic scene images")
    p.add_argument("--plain-synthetic", action="store_true",
                   help="no extra domain randomisation (how the box-only default weights were made)")
    p.add_argument("--us", type=Path, default=None, metavar="DIR",
                   help="openalpr-layout photo folder (NAME.jpg + NAME.txt); its fixed 80 %% train split is used")
    p.add_argument("--us-repeat", type=int, default=1, help="list each real photo this many times")
    p.add_argument("--us-shrunk", type=int, default=0, metavar="K",
                   help="also each --us train photo K times shrunk (plates 12-96 px) into 1920x1080 frames: small real plates")
    p.add_argument("--us-zoom", type=int, default=0, metavar="K",
                   help="also K close-ups of each --us train photo (the plate 25-50 %% of the width)")
    p.add_argument("--us-long", type=int, default=0, metavar="K",
                   help="also each --us train photo K times squashed vertically into long plates (3.5-5.5:1, as EU "
                        "and UK plates are)")
    p.add_argument("--us-long-shrunk", type=int, default=0, metavar="K",
                   help="also each --us train photo K times squashed into long plates and shrunk (plates 12-96 px) "
                        "into 1920x1080 frames")
    p.add_argument("--ccpd", type=Path, default=None, metavar="DIR", help="CCPD folder (labels parsed from file names)")
    p.add_argument("--ccpd-limit", type=int, default=None, help="use at most this many CCPD images")
    p.add_argument("--yolo", "--data", dest="yolo", type=Path, default=None, metavar="DATA.yaml",
                   help="YOLO-format dataset yaml (box-only or 4-keypoint pose labels)")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS.with_name("plate_yolov8p_pose.safetensors"),
                   help="weights file to write (.safetensors)")
    p.add_argument("--model", type=Path, default=POSE_YAML, help="ultralytics model yaml (pose: with kpt_shape)")
    p.add_argument("--init", type=Path, default=None, help="safetensors weights to start from (matching tensors)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hours", type=float, default=None, help="wall-clock budget (overrides --epochs)")
    p.add_argument("--imgsz", type=int, default=640, help="training image size (px, long side)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu", help="'cpu', '0' for the first GPU")
    p.add_argument("--workers", type=int, default=0, help="data-loader processes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--data-workers", type=int, default=1, help="processes rendering the synthetic images")
    p.add_argument("--styles", nargs="+", choices=ALL_STYLES, default=None, metavar="STYLE",
                   help="plate styles of the synthetic scenes, drawn uniformly per plate; repeat one to weigh "
                        f"it up ({', '.join(ALL_STYLES)}; default: latin ccpd_blue, latin being "
                        "30 %% EU, 15 %% UK, 30 %% US, 25 %% generic)")
    p.add_argument("--freeze", type=int, default=None, help="freeze the first N layers (10: the backbone)")
    p.add_argument("--lr0", type=float, default=None, help="initial learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="where datasets and ultralytics runs go (default: temp)")
    args = p.parse_args(argv)

    for folder in (args.us, args.ccpd):
        if folder is not None and not Path(folder).is_dir():
            p.error(f"folder not found: {folder}")
    if args.yolo is not None and not Path(args.yolo).is_file():
        p.error(f"dataset yaml not found: {args.yolo}")
    if args.init is not None and not Path(args.init).is_file():
        p.error(f"init weights not found: {args.init}")
    pose = "kpt_shape" in pyyaml.safe_load(Path(args.model).read_text())
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="le-detector-"))
    if (workdir / "runs").exists():
        shutil.rmtree(workdir / "runs")
    try:
        data_yaml, note = build_dataset(workdir, synthetic=args.synthetic, us=args.us, us_repeat=args.us_repeat,
                                        us_shrunk=args.us_shrunk, us_zoom=args.us_zoom, us_long=args.us_long,
                                        us_long_shrunk=args.us_long_shrunk,
                                        ccpd=args.ccpd, ccpd_limit=args.ccpd_limit, yolo=args.yolo, seed=args.seed,
                                        imgsz=args.imgsz, pose=pose, randomise=not args.plain_synthetic,
                                        data_workers=args.data_workers, styles=tuple(args.styles) if args.styles else None)
    except ValueError as exc:
        p.error(str(exc))
    info = train_detector(data_yaml, args.out, model_yaml=args.model, epochs=args.epochs, imgsz=args.imgsz,
                          batch=args.batch, device=args.device, workers=args.workers, seed=args.seed,
                          runs_dir=workdir / "runs", data_note=note, init=args.init, hours=args.hours,
                          threads=args.threads,
                          **{k: v for k, v in (("freeze", args.freeze), ("lr0", args.lr0)) if v is not None})
    print(json.dumps(info, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
