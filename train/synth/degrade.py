"""Seeded degradation model for super-resolution training pairs (a Real-ESRGAN-lite).

``degrade`` applies, in order, to an HR image (first cropped to a multiple of ``scale``):

1. blur with a random kernel, in HR pixels: isotropic Gaussian (sigma 0.2..3 * strength),
   anisotropic rotated Gaussian, or linear motion blur (length up to 2*scale+1), or none;
2. downscale by ``scale`` with a random interpolation (area / bilinear / bicubic);
3. additive Gaussian noise, sigma 0..8 * strength (0..255 units), colour or grey;
4. optionally (p = 0.3 * strength) a second, milder blur + noise pass at LR (the
   "second-order" degradation of Real-ESRGAN);
5. JPEG re-compression at quality 95 - 65 * strength * U(0, 1) (not below 10).

``strength`` = 0 reduces this to a plain resize with a random interpolation. The output is
exactly (H // scale, W // scale, 3) uint8.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .plates import render_plate

_INTERPS = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom / right edge so height and width are multiples of ``scale`` (no copy)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def plain_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic downscale of the ``scale``-cropped HR image, no other degradation: (H//s, W//s, 3) uint8."""
    hr = crop_to_multiple(hr, scale)
    h, w = hr.shape[:2]
    return cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)


def gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, size: int) -> np.ndarray:
    """(size, size) float32 normalised anisotropic Gaussian, rotated by ``theta`` radians."""
    r = (size - 1) / 2
    y, x = np.mgrid[-r: r + 1, -r: r + 1]
    c, s = math.cos(theta), math.sin(theta)
    xr, yr = c * x + s * y, -s * x + c * y
    k = np.exp(-0.5 * ((xr / max(sigma_x, 1e-3)) ** 2 + (yr / max(sigma_y, 1e-3)) ** 2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: float, theta: float) -> np.ndarray:
    """Normalised anti-aliased line kernel of ``length`` px at angle ``theta`` radians."""
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), np.float32)
    c = (size - 1) / 2
    dx, dy = math.cos(theta) * length / 2, math.sin(theta) * length / 2
    f = 16  # fixed-point sub-pixel endpoints
    cv2.line(k, (round((c - dx) * f), round((c - dy) * f)), (round((c + dx) * f), round((c + dy) * f)),
             1.0, 1, cv2.LINE_AA, 4)
    if k.sum() <= 0:
        k[int(c), int(c)] = 1.0
    return k / k.sum()


def random_kernel(rng: np.random.Generator, scale: int, strength: float = 1.0) -> np.ndarray | None:
    """A random blur kernel in HR px (None = no blur), sized for ``scale``."""
    if strength <= 0:
        return None
    kind = rng.choice(4, p=[0.4, 0.3, 0.2, 0.1])
    smax = max(0.2, 3.0 * strength * scale / 4)
    theta = float(rng.uniform(0, math.pi))
    if kind == 0:
        s = float(rng.uniform(0.2, smax))
        return gaussian_kernel(s, s, 0.0, 2 * math.ceil(3 * s) + 1)
    if kind == 1:
        sx, sy = float(rng.uniform(0.2, smax)), float(rng.uniform(0.2, smax))
        return gaussian_kernel(sx, sy, theta, 2 * math.ceil(3 * max(sx, sy)) + 1)
    if kind == 2:
        return motion_kernel(float(rng.uniform(1.0, 1.0 + 2 * scale * strength)), theta)
    return None


def _noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    h, w = img.shape[:2]
    if rng.random() < 0.4:  # grey (luma) noise
        n = rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
    else:
        n = rng.standard_normal((h, w, 3), dtype=np.float32) * sigma
    return np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return img
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def degrade(hr: np.ndarray, scale: int, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Degrade an HR (H, W, 3) uint8 BGR image to LR (H//scale, W//scale, 3) uint8.

    The HR image is first cropped (bottom / right) to a multiple of ``scale``, so pair
    it with ``crop_to_multiple(hr, scale)``. See the module doc for the pipeline;
    ``strength`` in [0, ~1.5] scales blur, noise and compression.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    hr = crop_to_multiple(hr, scale)
    h, w = hr.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"image {w}x{h} smaller than scale {scale}")
    img = hr
    k = random_kernel(rng, scale, strength)
    if k is not None:
        img = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT101)
    img = cv2.resize(img, (w // scale, h // scale), interpolation=_INTERPS[int(rng.integers(3))])
    img = _noise(img, rng, float(rng.uniform(0, 8.0)) * strength)
    if rng.random() < 0.3 * strength:
        s = float(rng.uniform(0.2, 0.8))
        img = cv2.GaussianBlur(img, (0, 0), s)
        img = _noise(img, rng, float(rng.uniform(0, 4.0)) * strength)
    if strength > 0:
        img = _jpeg(img, max(10, int(round(95 - 65 * strength * rng.uniform(0, 1)))))
    return np.ascontiguousarray(img)


def make_sr_pair(rng: np.random.Generator, scale: int = 4, hr_height: int = 64, style: str | None = None,
                 hr_width: int | None = None, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray, str]:
    """One SR training pair from a freshly rendered plate: (lr, hr, text).

    hr: (Hh, Wh, 3) uint8 BGR detector-like crop: the plate (about 70..90 % of the crop
        height) with a small random perspective / brightness jitter on a car-body-like
        background margin. Hh = ``hr_height`` rounded up to a multiple of ``scale``; Wh
        = ``hr_width`` (rounded up likewise) or follows the plate's aspect.
    lr: (Hh // scale, Wh // scale, 3) uint8 = ``degrade(hr, scale, rng, strength)``.
    """
    Hh = int(math.ceil(hr_height / scale) * scale)
    fill = float(rng.uniform(0.7, 0.9))
    # Drawn at 2x the final plate size, warped at 2x, then area-reduced: crisp edges.
    plate = render_plate(rng, style, height=max(8, round(2 * Hh * fill)))
    ph, pw = plate.image.shape[:2]
    if hr_width is not None:
        Wh = int(math.ceil(hr_width / scale) * scale)
        fill = min(fill, 0.92 * Wh / (Hh * pw / ph))  # the plate must fit the width
    else:
        Wh = int(math.ceil((Hh * fill * pw / ph + Hh * (1 - fill) * rng.uniform(0.8, 1.4)) / scale) * scale)
    # Plate corners in the 2x canvas: scaled, centred with a small offset, then jittered.
    S = 2.0
    cw, chh = Wh * S, Hh * S
    k = fill * chh / ph
    w2, h2 = pw * k, ph * k
    cx = cw / 2 + rng.uniform(-0.5, 0.5) * max(0.0, cw - w2) * 0.5
    cy = chh / 2 + rng.uniform(-0.5, 0.5) * max(0.0, chh - h2) * 0.5
    dst = np.array([(cx - w2 / 2, cy - h2 / 2), (cx + w2 / 2, cy - h2 / 2),
                    (cx + w2 / 2, cy + h2 / 2), (cx - w2 / 2, cy + h2 / 2)], np.float32)
    dst += rng.uniform(-0.04, 0.04, (4, 2)).astype(np.float32) * np.float32(h2)
    src = np.array([(0, 0), (pw, 0), (pw, ph), (0, ph)], np.float32) - 0.5
    M = cv2.getPerspectiveTransform(src, dst)
    size = (int(cw), int(chh))
    body = rng.uniform(20, 235, 3)
    bg = np.empty((size[1], size[0], 3), np.float32)
    bg[:] = body
    bg *= np.linspace(1.1, 0.85, size[1], dtype=np.float32)[:, None, None]  # body shading
    bg += rng.standard_normal((size[1], size[0], 1), dtype=np.float32) * float(rng.uniform(0, 3))
    warped = cv2.warpPerspective(plate.image, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = plate.mask if plate.mask is not None else np.full((ph, pw), 255, np.uint8)
    a = cv2.warpPerspective(mask, M, size, flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    img = bg * (1 - a) + warped.astype(np.float32) * a
    img = img * float(rng.uniform(0.75, 1.2)) + float(rng.uniform(-15, 15))  # brightness / contrast jitter
    hr = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (Wh, Hh), interpolation=cv2.INTER_AREA)
    lr = degrade(hr, scale, rng, strength)
    return lr, hr, plate.text
