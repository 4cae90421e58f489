"""CCPD (Chinese City Parking Dataset) labels, parsed from file names, and a YOLO-pose writer.

A CCPD image's name carries its whole annotation, seven fields separated by ``-``::

    025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg
    area tilt   box (x1&y1_x2&y2) 4 vertices (br, bl, tl, tr)    plate indices  bright blur

* area: plate area / image area, in per mille-ish units as CCPD writes it (kept as an int);
* tilt: horizontal and vertical tilt degrees, ``H_V``;
* box: the plate's bounding box, top-left and bottom-right corner, pixels;
* vertices: the plate's four corners, pixels, starting at the bottom-right corner and going
  clockwise in the image (br, bl, tl, tr);
* plate: one index per character: the first into :data:`PROVINCES`, the second into
  :data:`ALPHABETS`, the rest into :data:`ADS` (7 characters; 8 for CCPD2020 green plates);
* brightness and blur of the plate region (ints).

    >>> lab = parse_ccpd_name("025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg")
    >>> lab.text, lab.corners[0].tolist()        # tl first
    ('皖AY339S', [154.0, 383.0])

``write_ccpd_pose_dataset`` turns a CCPD folder into a YOLO pose dataset (one class ``plate``,
4 keypoints tl, tr, br, bl, all visible) that ``python -m train.detector --ccpd DIR`` trains on.
"""
from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PROVINCES", "ALPHABETS", "ADS", "CcpdLabel", "parse_ccpd_name", "iter_ccpd",
           "write_ccpd_pose_dataset", "POSE_FLIP_IDX"]

# Index tables of the CCPD README (detectRecog/CCPD), in its order; "O" marks "no character".
PROVINCES = ("皖", "沪", "津", "渝", "冀", "晋", "蒙", "辽", "吉", "黑", "苏", "浙", "京", "闽", "赣", "鲁", "豫",
             "鄂", "湘", "粤", "桂", "琼", "川", "贵", "云", "藏", "陕", "甘", "青", "宁", "新", "警", "学", "O")
ALPHABETS = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "Q", "R", "S", "T", "U", "V",
             "W", "X", "Y", "Z", "O")
ADS = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "Q", "R", "S", "T", "U", "V", "W",
       "X", "Y", "Z", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "O")

#: keypoint order after a horizontal flip (tl<->tr, br<->bl), for the dataset yaml's ``flip_idx``.
POSE_FLIP_IDX = (1, 0, 3, 2)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class CcpdLabel:
    """The annotation of one CCPD image.

    box: (4,) float32 x1, y1, x2, y2 in image pixels.
    corners: (4, 2) float32 plate corners tl, tr, br, bl in image pixels (reordered from
        CCPD's br, bl, tl, tr).
    text: plate characters, e.g. ``"皖AY339S"`` (an ``O`` placeholder index is dropped).
    area: the name's area field (plate-to-image area ratio as CCPD encodes it).
    tilt: (horizontal, vertical) tilt in degrees.
    brightness, blur: the name's brightness and blurriness fields.
    """

    box: np.ndarray
    corners: np.ndarray
    text: str
    tilt: tuple[int, int]
    brightness: int
    blur: int
    area: int = 0

    @property
    def width(self) -> float:
        """Box width in px."""
        return float(self.box[2] - self.box[0])


def _ints(field: str, what: str, name: str) -> list[int]:
    try:
        return [int(v) for v in field.split("_")]
    except ValueError:
        raise ValueError(f"malformed CCPD name {name!r}: {what} field {field!r} is not '_'-separated integers") from None


def _point(field: str, what: str, name: str) -> tuple[float, float]:
    parts = field.split("&")
    if len(parts) != 2:
        raise ValueError(f"malformed CCPD name {name!r}: {what} {field!r} is not 'X&Y'")
    try:
        return float(int(parts[0])), float(int(parts[1]))
    except ValueError:
        raise ValueError(f"malformed CCPD name {name!r}: {what} {field!r} is not integer 'X&Y'") from None


def parse_ccpd_name(name: str | Path) -> CcpdLabel:
    """Parse a CCPD file name (a path or bare name, with or without extension) into a :class:`CcpdLabel`.

    Raises ValueError with a one-line message naming the bad field on a malformed name.
    """
    stem = Path(str(name)).name
    for suf in IMAGE_SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    fields = stem.split("-")
    if len(fields) != 7:
        raise ValueError(f"malformed CCPD name {stem!r}: expected 7 '-'-separated fields "
                         f"(area-tilt-box-vertices-plate-brightness-blur), got {len(fields)}")
    area_s, tilt_s, box_s, vert_s, plate_s, bright_s, blur_s = fields
    area = _ints(area_s, "area", stem)
    tilt = _ints(tilt_s, "tilt", stem)
    if len(tilt) != 2:
        raise ValueError(f"malformed CCPD name {stem!r}: tilt field {tilt_s!r} needs 2 values 'H_V'")
    box_pts = box_s.split("_")
    if len(box_pts) != 2:
        raise ValueError(f"malformed CCPD name {stem!r}: box field {box_s!r} needs 2 points 'X1&Y1_X2&Y2'")
    (x1, y1), (x2, y2) = (_point(p, "box point", stem) for p in box_pts)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"malformed CCPD name {stem!r}: box {box_s!r} is empty (x2 <= x1 or y2 <= y1)")
    verts = vert_s.split("_")
    if len(verts) != 4:
        raise ValueError(f"malformed CCPD name {stem!r}: vertices field {vert_s!r} needs 4 points")
    br, bl, tl, tr = (_point(p, "vertex", stem) for p in verts)
    idx = _ints(plate_s, "plate", stem)
    if not 7 <= len(idx) <= 8:
        raise ValueError(f"malformed CCPD name {stem!r}: plate field {plate_s!r} needs 7 or 8 indices, got {len(idx)}")
    tables = (PROVINCES, ALPHABETS) + (ADS,) * (len(idx) - 2)
    chars = []
    for pos, (i, table) in enumerate(zip(idx, tables)):
        if not 0 <= i < len(table):
            raise ValueError(f"malformed CCPD name {stem!r}: plate index {i} at position {pos} is outside 0..{len(table) - 1}")
        chars.append(table[i])
    text = "".join(c for c in chars if c != "O")
    try:
        bright, blur = int(bright_s), int(blur_s)
    except ValueError:
        raise ValueError(f"malformed CCPD name {stem!r}: brightness / blur {bright_s!r}, {blur_s!r} are not integers") from None
    return CcpdLabel(box=np.array([x1, y1, x2, y2], np.float32),
                     corners=np.array([tl, tr, br, bl], np.float32),
                     text=text, tilt=(tilt[0], tilt[1]), brightness=bright, blur=blur, area=area[0])


def iter_ccpd(folder: str | Path, strict: bool = True) -> Iterator[tuple[Path, CcpdLabel]]:
    """Yield (image path, label) for every image under ``folder`` (recursively, sorted by path).

    strict: raise ValueError on the first image whose name is not a CCPD name; with False such
    images are skipped (and counted in the warning printed at the end).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"CCPD folder not found: {folder}")
    skipped = 0
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        try:
            label = parse_ccpd_name(path.name)
        except ValueError:
            if strict:
                raise
            skipped += 1
            continue
        yield path, label
    if skipped:
        print(f"note: skipped {skipped} image(s) under {folder} whose names are not CCPD names")


def _in_val(name: str, val_fraction: float, seed: int) -> bool:
    """Deterministic split by a hash of the file name (stable when files are added or removed)."""
    h = zlib.crc32(f"{seed}:{name}".encode()) % 100000
    return h < val_fraction * 100000


def pose_label_row(box: np.ndarray, corners: np.ndarray | None, width: int, height: int,
                   visible: bool = True) -> str | None:
    """One YOLO-pose label line ``0 cx cy w h x y v x y v x y v x y v`` (all normalised to [0, 1]).

    box: (4,) x1 y1 x2 y2 px (clipped to the image here); corners: (4, 2) tl tr br bl px or None
    (then the keypoints are written as 0 0 0: not labelled, they train only the box).
    Returns None when the clipped box is under 2 px wide or high.
    """
    x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x2, y2 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    vals = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
    for k in range(4):
        if corners is None or not visible:
            vals += [0.0, 0.0, 0.0]
            continue
        x, y = float(corners[k, 0]), float(corners[k, 1])
        inside = 0 <= x <= width and 0 <= y <= height
        vals += [min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0), 2.0 if inside else 0.0]
    return "0 " + " ".join(f"{v:.6f}" for v in vals)


def pose_data_yaml(out: Path, train: str | list[str] = "images/train", val: str | list[str] = "images/val") -> Path:
    """Write ``out/data.yaml`` for a one-class 4-keypoint plate dataset and return its path."""
    def fmt(v):
        return v if isinstance(v, str) else "[" + ", ".join(str(x) for x in v) + "]"

    yaml = out / "data.yaml"
    yaml.write_text(f"path: {out.resolve()}\ntrain: {fmt(train)}\nval: {fmt(val)}\n"
                    f"kpt_shape: [4, 3]\nflip_idx: [{', '.join(str(i) for i in POSE_FLIP_IDX)}]\n"
                    "names:\n  0: plate\n")
    return yaml


def write_ccpd_pose_dataset(src: str | Path, out_dir: str | Path, val_fraction: float = 0.1, seed: int = 0,
                            limit: int | None = None, link: bool = True) -> Path:
    """Convert a CCPD folder into a YOLO pose dataset; returns its ``data.yaml``.

    Layout: ``images/{train,val}/NAME`` (symlinks to the CCPD images when ``link``, else copies)
    and ``labels/{train,val}/STEM.txt`` with one :func:`pose_label_row` per image (CCPD has one
    plate per image). The split is a stable hash of each name; ``limit`` caps the number of
    images (the first ones in path order). Image sizes are read from the files (OpenCV).
    """
    import shutil

    import cv2
    from tqdm import tqdm

    out = Path(out_dir)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    items = list(iter_ccpd(src, strict=False))
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ValueError(f"no CCPD-named images under {src}")
    counts = {"train": 0, "val": 0}
    for path, lab in tqdm(items, desc="ccpd->yolo", unit="img"):
        im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if im is None:
            print(f"note: cannot read {path}; skipped")
            continue
        h, w = im.shape[:2]
        row = pose_label_row(lab.box, lab.corners, w, h)
        if row is None:
            continue
        split = "val" if _in_val(path.name, val_fraction, seed) else "train"
        # Names of different CCPD sub-folders can collide; prefix the sub-folder when present.
        rel = path.relative_to(src)
        name = "__".join(rel.parts) if len(rel.parts) > 1 else path.name
        dst = out / "images" / split / name
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if link:
            try:
                os.symlink(path.resolve(), dst)
            except OSError:
                shutil.copy2(path, dst)
        else:
            shutil.copy2(path, dst)
        (out / "labels" / split / (Path(name).stem + ".txt")).write_text(row + "\n")
        counts[split] += 1
    if counts["val"] == 0 and counts["train"] > 1:  # tiny folders: move one image to val
        img = next((out / "images" / "train").iterdir())
        lbl = out / "labels" / "train" / (img.stem + ".txt")
        img.rename(out / "images" / "val" / img.name)
        lbl.rename(out / "labels" / "val" / lbl.name)
    return pose_data_yaml(out)
