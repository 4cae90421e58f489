"""Pack openalpr/us small enough to travel to a lent GPU machine for generator training.

    python scripts/pack_sr_data.py ../shared/data .dev/sr_data

The device tool carries at most 64 MiB with the repository, and the US photos are 30 MB. For
each photo this keeps only the region the generator's data can use (the plate and the band of
car body around it that ``train.sr_data.OpenalprContext`` cuts windows from), shrunk so the plate
crop is at most ``MAX_CROP_H`` px tall (the HR crop is 60 px: the canonical resize is then nearly
the same), as JPEG quality 92, with the label file's box moved into the region. Crops natively
≥ 40 px stay ≥ 40 px, so ``--min-native-height 40`` keeps the same plates and the fixed train /
validation split is the usual one. openalpr/eu is never packed (evaluation only).
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.plate_sets import MARGIN_H, parse_annotation  # noqa: E402

MAX_CROP_H = 64  # px, plate crop (box + margins) height after the shrink
REGION_W, REGION_H = 4.0, 2.2  # region half-size in plate heights (context windows sit within it)


def pack(data: Path, out: Path) -> tuple[int, int]:
    """Write out/openalpr/us/*.jpg|txt; returns (photos, bytes)."""
    src, dst = data / "openalpr" / "us", out / "openalpr" / "us"
    dst.mkdir(parents=True, exist_ok=True)
    n, size = 0, 0
    for txt in sorted(src.glob("*.txt")):
        boxes, _ = parse_annotation(txt.read_text(encoding="utf-8", errors="replace"))
        if len(boxes) != 1:
            continue
        b = boxes[0]
        photo = cv2.imread(str(src / b.image_file), cv2.IMREAD_COLOR)
        if photo is None:
            continue
        H, W = photo.shape[:2]
        cx, cy = b.x + b.width / 2, b.y + b.height / 2
        x0 = int(max(0, cx - b.width / 2 - REGION_W * b.height))
        x1 = int(min(W, cx + b.width / 2 + REGION_W * b.height))
        y0, y1 = int(max(0, cy - REGION_H * b.height)), int(min(H, cy + REGION_H * b.height))
        region = photo[y0:y1, x0:x1]
        crop_h = b.height * (1 + 2 * MARGIN_H)
        f = min(1.0, MAX_CROP_H / crop_h)
        if f < 1.0:
            region = cv2.resize(region, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        bx, by = (b.x - x0) * f, (b.y - y0) * f
        name = Path(b.image_file).with_suffix(".jpg").name
        ok, buf = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            continue
        (dst / name).write_bytes(buf.tobytes())
        (dst / txt.name).write_text(f"{name}\t{bx:.1f}\t{by:.1f}\t{b.width * f:.1f}\t{b.height * f:.1f}\t{b.text}\n")
        n += 1
        size += len(buf)
    return n, size


if __name__ == "__main__":
    n, size = pack(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{n} photos, {size / 1e6:.1f} MB")
