"""Plate-like calibration crops for int8 quantisation of the generator.

Static int8 quantisation needs the ranges of the network's activations on inputs like the ones
it will see. The real plates in ``../shared/data`` are not available where a user builds the
int8 graph, and ``sr_model`` must not depend on ``train/`` (where the synthetic plate renderer
lives), so this module draws its own small, deterministic set with OpenCV alone: dark characters
on a light plate (and the reverse), a border, a bit of car around it, blur, sensor noise and JPEG
compression, 12 to 32 px tall (the generator's input range; see ``EnhancerConfig``).
"""
from __future__ import annotations

import string

import cv2
import numpy as np

#: Bumped whenever the crops below change (part of the int8 graph's cache key).
CALIBRATION_VERSION = "1"


def calibration_crops(n: int = 48, seed: int = 0) -> list[np.ndarray]:
    """``n`` plate-like crops, (h, w, 3) uint8 BGR, h in [12, 32] px; plates of aspect 2-5 (US to EU)
    with a margin of car around them (crop aspect ~1.7-4.2)."""
    rng = np.random.default_rng(seed)
    chars = string.ascii_uppercase + string.digits
    out = []
    for i in range(n):
        hr_h = 64
        aspect = float(rng.uniform(2.0, 5.0))
        hr_w = int(hr_h * aspect)
        light = rng.uniform(170, 250, 3)
        dark = rng.uniform(0, 80, 3)
        fg, bg = (dark, light) if rng.random() < 0.8 else (light, dark)
        plate = np.empty((hr_h, hr_w, 3), np.uint8)
        plate[:] = bg.astype(np.uint8)
        cv2.rectangle(plate, (1, 1), (hr_w - 2, hr_h - 2), fg.astype(int).tolist(), 2)
        n_chars = max(3, min(8, int(aspect * 1.6)))
        text = "".join(rng.choice(list(chars), n_chars))
        font = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX][i % 3]
        scale = cv2.getFontScaleFromHeight(font, int(hr_h * 0.55), 3)
        (tw, th), _ = cv2.getTextSize(text, font, scale, 3)
        scale *= min(1.0, 0.9 * hr_w / max(tw, 1))
        (tw, th), _ = cv2.getTextSize(text, font, scale, 3)
        cv2.putText(plate, text, ((hr_w - tw) // 2, (hr_h + th) // 2), font, scale, fg.astype(int).tolist(), 3, cv2.LINE_AA)
        # Some car around the plate, as the pipeline's crops carry a margin.
        m_y, m_x = int(hr_h * 0.15), int(hr_w * 0.05)
        car = np.empty((hr_h + 2 * m_y, hr_w + 2 * m_x, 3), np.float32)
        car[:] = rng.uniform(20, 230, 3)
        car[m_y:m_y + hr_h, m_x:m_x + hr_w] = plate
        h = int(rng.integers(12, 33))
        w = max(8, round(car.shape[1] * h / car.shape[0]))
        img = cv2.GaussianBlur(car, (0, 0), float(rng.uniform(0.5, 2.0)))
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        img = np.clip(img + rng.normal(0, rng.uniform(0, 6), img.shape), 0, 255).astype(np.uint8)
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        out.append(cv2.imdecode(jpg, cv2.IMREAD_COLOR) if ok else img)
    return out
