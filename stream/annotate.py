"""Draw tracks on a frame: box, track id, and the enhanced plate as an inset beside the plate."""
from __future__ import annotations

import cv2
import numpy as np

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
            (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0)]


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable BGR colour per track id."""
    return _PALETTE[track_id % len(_PALETTE)]


def place_inset(box: np.ndarray, inset_w: int, inset_h: int, width: int, height: int) -> tuple[int, int]:
    """Top-left corner for an inset beside ``box``: above it if there is room, else below, else
    inside the frame's nearest edge; always fully inside the frame."""
    x1, y1, x2, y2 = (int(v) for v in box)
    x = min(max(0, x1), max(0, width - inset_w))
    y = y1 - inset_h - 4
    if y < 0:
        y = y2 + 4
    y = min(max(0, y), max(0, height - inset_h))
    return x, y


def draw_track(frame: np.ndarray, box: np.ndarray, track_id: int, enhanced: np.ndarray | None,
               label: str = "", inset_height: int | None = None) -> None:
    """Annotate ``frame`` in place. ``inset_height``: px height of the inset (default: 3× the box
    height, kept between 40 px and a quarter of the frame)."""
    colour = track_colour(track_id)
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    thick = max(1, round(min(h, w) / 400))
    cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
    text = f"#{track_id}" + (f" {label}" if label else "")
    scale = max(0.4, min(h, w) / 1200)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    ty = y2 + th + 4 if y2 + th + 4 < h else max(th, y1 - 4)
    cv2.rectangle(frame, (x1, ty - th - 3), (x1 + tw + 4, ty + 3), colour, -1)
    cv2.putText(frame, text, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    if enhanced is None or enhanced.size == 0:
        return
    ih = inset_height or int(np.clip(3 * (y2 - y1), 40, h // 4))
    iw = max(1, round(enhanced.shape[1] * ih / enhanced.shape[0]))
    if iw > w // 2:  # very wide plates: cap the inset at half the frame width
        iw, ih = w // 2, max(1, round(enhanced.shape[0] * (w // 2) / enhanced.shape[1]))
    inset = cv2.resize(enhanced, (iw, ih), interpolation=cv2.INTER_AREA if ih < enhanced.shape[0] else cv2.INTER_CUBIC)
    ix, iy = place_inset(np.array([x1, y1, x2, y2]), iw, ih, w, h)
    frame[iy : iy + ih, ix : ix + iw] = inset[: h - iy, : w - ix]
    cv2.rectangle(frame, (ix, iy), (ix + iw - 1, iy + ih - 1), colour, thick)
