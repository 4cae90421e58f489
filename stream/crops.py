"""Cut plate crops out of frames, and choose and lay out each track's best crop."""
from __future__ import annotations

import cv2
import numpy as np


def expand_box(box: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """Grow an x1y1x2y2 box by ``margin`` × its size on every side and clip it to the frame.

    The margin keeps plate edges inside the crop when the detector or the tracker's prediction
    is a few pixels off. Returns integer pixel coordinates (float32 array).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    out = np.array([np.floor(x1 - mx), np.floor(y1 - my), np.ceil(x2 + mx), np.ceil(y2 + my)], np.float32)
    out[[0, 2]] = out[[0, 2]].clip(0, width)
    out[[1, 3]] = out[[1, 3]].clip(0, height)
    return out


def cut(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The pixels of an integer box (copy), or None when the box is empty."""
    x1, y1, x2, y2 = (int(v) for v in box)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return image[y1:y2, x1:x2].copy()


def rectified(image: np.ndarray, corners: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray | None:
    """The plate quadrilateral ``corners`` ((4, 2) tl, tr, br, bl frame px) warped to a frontal
    rectangle, grown by ``margin`` × its size on every side; None when the corners are not
    plausible for the (margin-grown) crop ``box`` (x1y1x2y2): not finite, collapsed, wider than
    16:1 or taller than wide, or reaching far outside the box. Callers then cut the box instead.
    """
    from tracker.detector import rectify_plate

    c = np.asarray(corners, np.float32).reshape(4, 2)
    if not np.isfinite(c).all():
        return None
    w = 0.5 * (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3]))
    h = 0.5 * (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1]))
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    if h < 2 or w < h or w > 16 * h or bw < 2 or bh < 2:
        return None
    slack = 0.5 * max(bw, bh)
    if (c[:, 0].min() < box[0] - slack or c[:, 0].max() > box[2] + slack
            or c[:, 1].min() < box[1] - slack or c[:, 1].max() > box[3] + slack):
        return None
    return rectify_plate(image, c, margin=margin)


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian: higher for crisper, less blurred crops."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def crop_quality(crop: np.ndarray, score: float) -> float:
    """How good a crop is as a track's evidence: more pixels, crisper, more confident is better."""
    return float(score) * crop.shape[0] * np.log1p(sharpness(crop))


def comparison_panel(lr: np.ndarray, bicubic: np.ndarray, enhanced: np.ndarray, labels: bool = True) -> np.ndarray:
    """LR (nearest-upscaled to the output size) | bicubic | enhanced, side by side, labelled."""
    h, w = enhanced.shape[:2]
    nearest = cv2.resize(lr, (w, h), interpolation=cv2.INTER_NEAREST)
    bicubic = cv2.resize(bicubic, (w, h), interpolation=cv2.INTER_CUBIC) if bicubic.shape[:2] != (h, w) else bicubic
    gap = np.full((h, 4, 3), 255, np.uint8)
    panel = np.hstack([nearest, gap, bicubic, gap, enhanced])
    if not labels:
        return panel
    bar = np.full((22, panel.shape[1], 3), 32, np.uint8)
    for i, name in enumerate(("input", "bicubic", "enhanced")):
        cv2.putText(bar, name, (i * (w + 4) + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])
