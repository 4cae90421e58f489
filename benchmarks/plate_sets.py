"""Plate crops with their true text for the legibility benchmark, and their seeded LR versions.

Sets
----
* ``openalpr_us`` / ``openalpr_eu``: real photos from ``shared/data/openalpr/{us,eu}/``; each
  annotated box is cut with a margin of :data:`MARGIN_H` × box height above and below and
  :data:`MARGIN_W` × box width left and right (clipped to the photo), like a detector crop.
* ``synthetic``: :func:`train.synth.plates.render_plate` plates from a fixed seed, both styles
  alternately, on a plain car-body-coloured margin of the same proportions.

Canonical size
--------------
Every HR crop is resized (area when shrinking, bicubic when enlarging, aspect kept) to
:data:`HR_HEIGHT` = 60 px tall and a width rounded to a multiple of 12, so the same HR crop
divides exactly by ×2, ×3 and ×4: LR crops are 30, 20 and 15 px tall (the plate itself, 1/1.2 of
the crop, ≈ 25, 17 and 12.5 px): the plate sizes of distant or small plates in 720p / 1080p video.
The real sets' native crops are often smaller than 60 px (EU median ≈ 31 px), so their "HR" is
itself an enlargement there: the ceiling is what the OCR reads on the best crop we have.

LR versions (:func:`make_lr`)
-----------------------------
* ``degrade``: :func:`train.synth.degrade.degrade` at strength 1 (blur, downscale, noise, JPEG),
  with a per-crop seed from (base seed, set, crop index, scale, frame), so every method sees the
  identical LR image and reruns are identical.
* ``plain``: :func:`train.synth.degrade.plain_downscale` (bicubic, nothing else).
"""
from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from train.synth.degrade import degrade, plain_downscale
from train.synth.plates import STYLES, render_plate

log = logging.getLogger(__name__)

HR_HEIGHT = 60  # px, canonical HR crop height: divisible by 2, 3 and 4
WIDTH_MULTIPLE = 12  # px, lcm(2, 3, 4): HR width divisible by every scale
MARGIN_H = 0.10  # fraction of the box height added above and below
MARGIN_W = 0.05  # fraction of the box width added left and right
DEGRADATIONS: tuple[str, ...] = ("degrade", "plain")
REAL_SETS: dict[str, str] = {"openalpr_us": "openalpr/us", "openalpr_eu": "openalpr/eu"}


@dataclass(frozen=True)
class PlateBox:
    """One annotated plate: box in photo pixels (top-left x, y and size) and its text."""

    image_file: str
    x: int
    y: int
    width: int
    height: int
    text: str


@dataclass
class PlateCrop:
    """A benchmark input. hr: (HR_HEIGHT, W, 3) uint8 BGR with W % WIDTH_MULTIPLE == 0.

    native_height: px, the crop height before the canonical resize (plate box × 1.2).
    """

    set_name: str
    name: str
    text: str
    hr: np.ndarray
    native_height: int


@dataclass
class LoadReport:
    """What a set loader kept and what it skipped (file name → reason)."""

    kept: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- annotations
def parse_annotation(content: str) -> tuple[list[PlateBox], list[str]]:
    """Parse an openalpr ``NAME.txt``: lines ``image_file x y width height plate_text``.

    Fields are tab or space separated; text split by spaces is joined back. Returns the boxes
    of every usable line and a reason for every non-empty line that is not usable (too few
    fields, non-numeric or non-positive box, empty text).
    """
    boxes: list[PlateBox] = []
    problems: list[str] = []
    for n, line in enumerate(content.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 6:
            problems.append(f"line {n}: {len(fields)} fields, need 6")
            continue
        try:
            x, y, w, h = (int(round(float(v))) for v in fields[1:5])
        except ValueError:
            problems.append(f"line {n}: non-numeric box {fields[1:5]}")
            continue
        text = "".join(fields[5:]).upper()
        if w <= 0 or h <= 0 or not text:
            problems.append(f"line {n}: empty box or text")
            continue
        boxes.append(PlateBox(fields[0], x, y, w, h, text))
    return boxes, problems


def cut_plate(photo: np.ndarray, box: PlateBox, margin_h: float = MARGIN_H,
              margin_w: float = MARGIN_W) -> np.ndarray | None:
    """The box plus margins, clipped to the photo: (h, w, 3) uint8 view, or None if empty."""
    mx, my = round(margin_w * box.width), round(margin_h * box.height)
    H, W = photo.shape[:2]
    x0, y0 = max(0, box.x - mx), max(0, box.y - my)
    x1, y1 = min(W, box.x + box.width + mx), min(H, box.y + box.height + my)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return photo[y0:y1, x0:x1]


def to_canonical(crop: np.ndarray, height: int = HR_HEIGHT, multiple: int = WIDTH_MULTIPLE) -> np.ndarray:
    """Resize to ``height`` px, width ∝ aspect rounded to a multiple of ``multiple`` (≥ one)."""
    h, w = crop.shape[:2]
    new_w = max(multiple, int(round(w * height / h / multiple)) * multiple)
    interp = cv2.INTER_AREA if h > height else cv2.INTER_CUBIC
    return cv2.resize(crop, (new_w, height), interpolation=interp)


def load_openalpr(folder: Path, set_name: str, limit: int | None = None) -> tuple[list[PlateCrop], LoadReport]:
    """Every annotated plate of one openalpr folder (sorted by file name), at canonical size."""
    crops: list[PlateCrop] = []
    report = LoadReport()
    for txt in sorted(folder.glob("*.txt")):
        if limit is not None and len(crops) >= limit:
            break
        boxes, problems = parse_annotation(txt.read_text(encoding="utf-8", errors="replace"))
        if problems:
            report.skipped[txt.name] = "; ".join(problems)
        if not boxes:
            report.skipped.setdefault(txt.name, "no usable line")
            continue
        for i, box in enumerate(boxes):
            photo = cv2.imread(str(folder / box.image_file), cv2.IMREAD_COLOR)
            key = txt.name if len(boxes) == 1 else f"{txt.name}#{i + 1}"
            if photo is None:
                report.skipped[key] = f"cannot read {box.image_file}"
                continue
            crop = cut_plate(photo, box)
            if crop is None:
                report.skipped[key] = "box outside the photo"
                continue
            name = txt.stem if len(boxes) == 1 else f"{txt.stem}#{i + 1}"
            crops.append(PlateCrop(set_name, name, box.text, to_canonical(crop), crop.shape[0]))
    report.kept = len(crops)
    return crops, report


def synthetic_set(n: int, seed: int = 20240601) -> list[PlateCrop]:
    """``n`` rendered plates alternating :data:`STYLES`, on a car-body margin, at canonical size."""
    rng = np.random.default_rng(seed)
    plate_h = 2 * round(HR_HEIGHT / (1 + 2 * MARGIN_H))  # rendered at 2x, then area-reduced
    crops = []
    for i in range(n):
        plate = render_plate(rng, STYLES[i % len(STYLES)], height=plate_h)
        ph, pw = plate.image.shape[:2]
        body = [float(v) for v in rng.uniform(20, 235, 3)]
        framed = cv2.copyMakeBorder(plate.image, round(MARGIN_H * ph), round(MARGIN_H * ph),
                                    round(MARGIN_W * pw), round(MARGIN_W * pw), cv2.BORDER_CONSTANT, value=body)
        crops.append(PlateCrop("synthetic", f"synth{i:04d}", plate.text, to_canonical(framed), HR_HEIGHT))
    return crops


def load_sets(data_dir: Path | None, n_synthetic: int, limit: int | None = None
              ) -> tuple[dict[str, list[PlateCrop]], dict[str, LoadReport]]:
    """All benchmark sets: real ones found under ``data_dir`` (missing ones are reported), then synthetic."""
    sets: dict[str, list[PlateCrop]] = {}
    reports: dict[str, LoadReport] = {}
    for set_name, rel in REAL_SETS.items():
        folder = data_dir / rel if data_dir is not None else None
        if folder is None or not folder.is_dir():
            log.warning("plate set %s not found at %s: skipped", set_name, folder)
            reports[set_name] = LoadReport(0, {str(folder): "folder not found"})
            continue
        sets[set_name], reports[set_name] = load_openalpr(folder, set_name, limit)
    if n_synthetic > 0:
        sets["synthetic"] = synthetic_set(n_synthetic)
        reports["synthetic"] = LoadReport(len(sets["synthetic"]))
    return sets, reports


# --------------------------------------------------------------------------- LR versions
def crop_seed(base_seed: int, set_name: str, index: int, scale: int, frame: int = 0) -> np.random.Generator:
    """The generator for one crop's degradation: independent of run order and method list."""
    return np.random.default_rng([base_seed, zlib.crc32(set_name.encode()), index, scale, frame])


def _shift(hr: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Sub-pixel translation (HR px), edges replicated: the camera/plate motion between frames."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(hr, m, (hr.shape[1], hr.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def make_lr(crop: PlateCrop, index: int, scale: int, degradation: str, base_seed: int = 0,
            frames: int = 1) -> list[np.ndarray]:
    """LR frames of one HR crop, each (HR_HEIGHT // scale, W // scale, 3) uint8.

    Frame 0 is what every single-image method sees. Frames 1.. (for multi-frame methods) are
    the same crop shifted by a seeded sub-pixel offset of up to ±scale/2 HR px, degraded with
    their own seed: independent noise, blur and JPEG, like successive video frames.
    """
    out = []
    for f in range(frames):
        rng = crop_seed(base_seed, crop.set_name, index, scale, f)
        hr = crop.hr
        if f > 0:
            dx, dy = rng.uniform(-scale / 2, scale / 2, 2)
            hr = _shift(hr, float(dx), float(dy))
        if degradation == "degrade":
            out.append(degrade(hr, scale, rng, strength=1.0))
        elif degradation == "plain":
            out.append(plain_downscale(hr, scale))
        else:
            raise ValueError(f"unknown degradation {degradation!r}; expected one of {DEGRADATIONS}")
    return out


def lr_height(scale: int) -> int:
    """px, height of every LR crop at ``scale``."""
    return math.floor(HR_HEIGHT / scale)
