"""Cheap appearance descriptor of a plate crop, for re-associating a track after a miss.

Motion alone cannot tell a plate that reappears after a miss from a different plate that
shows up where the lost one is predicted. A plate's look is very stable over a second, so a
tiny descriptor of the crop settles it:

* a 16x6 grayscale thumbnail, zero-mean and unit-norm: its dot product is the normalised
  cross-correlation of the two crops (insensitive to brightness and contrast changes), which
  tells the character pattern and plate layout apart;
* a hue/saturation histogram (8x4 bins), square-rooted so that its dot product is the
  Bhattacharyya coefficient of the two colour distributions (plate style, background colour).

Both parts are concatenated with weights and L2-normalised, so the cosine similarity of two
descriptors is ``THUMB_WEIGHT * NCC + (1 - THUMB_WEIGHT) * Bhattacharyya coefficient`` and
:func:`appearance_distance` ``= 1 - similarity`` clipped to ``[0, 1]``. Measured on rendered
synthetic clips (plate boxes with 4-6 % jitter, frames up to 0.5 s apart): same plate median
0.14, 99th percentile 0.40, none above 0.45; different plates: 76 % above 0.45 (the tracker's
default veto threshold), 10th percentile 0.31.

The pipeline fills :attr:`tracker.types.Detection.appearance` with :func:`crop_appearance` (one
box) or :func:`with_appearance` (all detections of a frame); the tracker uses it only when it is
present (see :class:`tracker.sort.TrackerConfig`), and behaves exactly as without it otherwise.
Cost: about 30-50 microseconds per crop on one CPU core (one area resize dominates).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import cv2
import numpy as np

from tracker.types import Detection

THUMB_WH = (16, 6)
HIST_BINS = (8, 4)  # hue, saturation
THUMB_WEIGHT = 0.4
#: Length of a descriptor.
APPEARANCE_DIM = THUMB_WH[0] * THUMB_WH[1] + HIST_BINS[0] * HIST_BINS[1]

_W_THUMB = float(np.sqrt(THUMB_WEIGHT))
_W_HIST = float(np.sqrt(1.0 - THUMB_WEIGHT))


def plate_appearance(crop: np.ndarray) -> np.ndarray:
    """Descriptor of one plate crop.

    Args:
        crop: (h, w, 3) uint8 BGR image of the plate (its detection box), or (h, w) uint8 gray
            (then the colour part is a constant, i.e. carries no information).

    Returns:
        (APPEARANCE_DIM,) float32, unit L2 norm.
    """
    tw, th = THUMB_WH
    # One area resize to twice the thumbnail size (the slow step, ~15 us), everything else on
    # that small image: the colour histogram, and the thumbnail by 2x2 averaging.
    small = cv2.resize(crop, (2 * tw, 2 * th), interpolation=cv2.INTER_AREA)
    if small.ndim == 2 or small.shape[2] == 1:
        gray = small.reshape(2 * th, 2 * tw)
        hist = np.full(HIST_BINS[0] * HIST_BINS[1], 1.0 / np.sqrt(HIST_BINS[0] * HIST_BINS[1]), np.float32)
    else:
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hsv[..., 0][hsv[..., 1] < 48] = 0  # hue of near-gray pixels is noise: one bin for them
        hist = cv2.calcHist([hsv], [0, 1], None, list(HIST_BINS), [0, 180, 0, 256]).ravel()
        hist = np.sqrt(hist * (1.0 / (4 * tw * th)))  # unit norm: the squared bins sum to 1
    # Linear resize by exactly 1/2 samples between pixels: the 2x2 mean.
    thumb = cv2.resize(gray, (tw, th), interpolation=cv2.INTER_LINEAR).ravel().astype(np.float32)
    thumb -= thumb.mean()
    norm = float(np.sqrt(np.dot(thumb, thumb)))
    desc = np.empty(APPEARANCE_DIM, np.float32)
    if norm > 1e-3:
        np.multiply(thumb, _W_THUMB / norm, out=desc[: tw * th])
    else:  # flat crop: no pattern
        desc[: tw * th] = 0.0
    np.multiply(hist, _W_HIST, out=desc[tw * th :])
    norm = float(np.sqrt(np.dot(desc, desc)))
    return desc * (1.0 / norm) if norm > 1e-6 else desc


def crop_appearance(frame: np.ndarray, box: np.ndarray, min_size_px: int = 4) -> np.ndarray | None:
    """:func:`plate_appearance` of ``box`` (x1 y1 x2 y2 px) cut from ``frame`` (H, W, 3) BGR.

    The box is clipped to the frame; returns None when less than ``min_size_px`` remains in
    either direction (the tracker then ignores appearance for that detection).
    """
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = np.asarray(box)[:4].tolist()
    x1, y1 = max(math.floor(x1), 0), max(math.floor(y1), 0)
    x2, y2 = min(math.ceil(x2), w), min(math.ceil(y2), h)
    if x2 - x1 < min_size_px or y2 - y1 < min_size_px:
        return None
    return plate_appearance(frame[y1:y2, x1:x2])


def with_appearance(frame: np.ndarray, detections: Sequence[Detection]) -> list[Detection]:
    """Copies of ``detections`` with ``appearance`` filled from ``frame`` (H, W, 3) BGR."""
    return [replace(d, appearance=crop_appearance(frame, d.box)) for d in detections]


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 - cosine similarity`` of two descriptors, clipped to [0, 1]."""
    return float(min(max(1.0 - float(np.dot(a, b)), 0.0), 1.0))


def appearance_distance_matrix(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """(T, K), (D, K) unit descriptors -> (T, D) ``1 - cosine similarity`` clipped to [0, 1]."""
    return np.clip(1.0 - np.asarray(tracks, np.float32) @ np.asarray(dets, np.float32).T, 0.0, 1.0)


def blend_appearance(mean: np.ndarray, new: np.ndarray, rate: float) -> np.ndarray:
    """Exponential moving average of unit descriptors, renormalised to unit length."""
    out = (1.0 - rate) * mean + rate * new
    return out / max(float(np.linalg.norm(out)), 1e-6)
