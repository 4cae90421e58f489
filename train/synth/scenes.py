"""Procedural moving-traffic scenes with exact plate ground truth.

A scene is a static procedural background (street, parking garage or abstract) with
``n_plates`` vehicles, each carrying one plate along a smooth trajectory (crossing,
approaching, receding, diagonal or near-static), seen with mild 3D perspective. Optional
per-scene effects: scale change, motion blur, global lighting drift, sensor noise and
foreground occluders (pedestrian-like shapes) that briefly hide a plate.

Ground-truth convention (:class:`PlateTruth`):

* coordinates are frame pixels with pixel ``i`` covering ``[i, i+1)`` (MOT / YOLO edge
  convention); ``corners`` are the plate's outer corners tl, tr, br, bl; ``box`` is their
  axis-aligned bounds and is NOT clipped to the frame.
* a plate is listed in a frame when its box intersects the frame; plates entirely outside
  the frame are not listed. Listed plates carry ``visibility`` = fraction of the plate's
  pixels that are inside the frame and not hidden by a nearer vehicle or an occluder, so a
  plate fully hidden by an occluder is listed with visibility 0 (MOTChallenge style).
  Evaluations should only score plates with visibility > 0.5.

Each vehicle sprite (and its mip pyramid) is rendered once per scene; a frame warps each
sprite into its own small region of interest, so rendering cost scales with the plate
sizes, not with the frame size.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .plates import STYLES, PlateImage, _fill_poly, _fx, _rounded_rect_poly, _SHIFT, render_plate

__all__ = [
    "SceneConfig", "PlateTruth", "ClipTruth", "iter_scene_frames", "render_scene_frame",
    "write_scene_clip", "load_clip_truth", "write_detection_dataset",
]

BACKGROUNDS = ("street", "parking", "abstract")


@dataclass
class SceneConfig:
    """Scene parameters. Sizes in px, times in seconds; strengths are 0 (off) .. 1 (default).

    width, height: frame size (must be even to be written as H.264 yuv420p).
    n_plates: number of vehicles / plates (0 gives background-only frames).
    styles: plate styles drawn uniformly per plate.
    plate_width_px: (min, max) plate width at the frame, in px, over the whole clip.
    perspective: plate / vehicle tilt; 1 -> yaw up to +-35 deg, pitch +-12, roll +-6.
    scale_change: 1 -> approaching / receding vehicles change size up to ~2x.
    motion_blur: 1 -> blur length = displacement during an exposure of 0.3..1 frame.
    lighting: 1 -> smooth global gain drift up to about +-25 % plus a colour-tint drift.
    occlusion: > 0 -> pedestrian-like occluders cross in front of about half the plates
        (at least one), hiding each for ~0.15..0.6 s x occlusion.
    background: "street", "parking", "abstract" or "random".
    vehicles: draw a car / van body around each plate (False: bare plate in a holder).
    noise: sensor noise, Gaussian sigma = 2 * noise (0..255 units).
    speed: multiplies trajectory lengths.
    enter_leave: probability that a plate enters or leaves the frame during the clip.
    """

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    seconds: float = 3.0
    n_plates: int = 3
    styles: tuple[str, ...] = ("latin", "ccpd_blue")
    plate_width_px: tuple[float, float] = (60.0, 180.0)
    perspective: float = 1.0
    scale_change: float = 1.0
    motion_blur: float = 1.0
    lighting: float = 1.0
    occlusion: float = 1.0
    background: str = "random"
    vehicles: bool = True
    noise: float = 1.0
    speed: float = 1.0
    enter_leave: float = 0.2

    @property
    def n_frames(self) -> int:
        """Number of frames: round(fps * seconds), at least 1."""
        return max(1, int(round(self.fps * self.seconds)))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["styles"] = list(self.styles)
        d["plate_width_px"] = [float(v) for v in self.plate_width_px]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SceneConfig":
        d = dict(d)
        if "styles" in d:
            d["styles"] = tuple(d["styles"])
        if "plate_width_px" in d:
            d["plate_width_px"] = tuple(float(v) for v in d["plate_width_px"])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclass
class PlateTruth:
    """Ground truth of one plate in one frame (see the module doc for conventions).

    box: (4,) float32 x1, y1, x2, y2 px, bounds of ``corners``, not clipped to the frame.
    corners: (4, 2) float32 tl, tr, br, bl px.
    visibility: fraction in [0, 1] of the plate inside the frame and not occluded.
    """

    track_id: int
    text: str
    style: str
    box: np.ndarray
    corners: np.ndarray
    visibility: float


@dataclass
class ClipTruth:
    """A written clip and its ground truth. ``frames[i]`` lists the plates of frame i (0-based)."""

    out_dir: Path
    video_path: Path
    gt_txt_path: Path
    gt_json_path: Path
    n_frames: int
    fps: float
    size: tuple[int, int]  # (width, height) px
    seed: int
    plates: dict[int, tuple[str, str]]  # track_id -> (text, style)
    frames: list[list[PlateTruth]]
    config: SceneConfig | None = None

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def clip_path(self) -> Path:
        """Alias of ``video_path``."""
        return self.video_path


# =========================================================================== backgrounds
def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int, ch: int = 1) -> np.ndarray:
    """Smooth noise in about [-1, 1], (h, w) or (h, w, ch) float32."""
    gh = max(2, int(cells * h / max(h, w)) + 1)
    gw = max(2, int(cells * w / max(h, w)) + 1)
    small = rng.standard_normal((gh, gw, ch)).astype(np.float32)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out if ch > 1 else out.reshape(h, w)


def _vgrad(h: int, w: int, c0, c1, y0: int = 0, y1: int | None = None) -> np.ndarray:
    """(y1-y0, w, 3) float32 vertical gradient from colour c0 to c1."""
    y1 = h if y1 is None else y1
    t = np.linspace(0.0, 1.0, max(1, y1 - y0), dtype=np.float32)[:, None, None]
    col = (1 - t) * np.asarray(c0, np.float32) + t * np.asarray(c1, np.float32)
    return np.broadcast_to(col, (y1 - y0, w, 3)).copy()


def _rand_color(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple[float, float, float]:
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def _bg_street(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    hy = int(h * rng.uniform(0.12, 0.42))
    sky_top = [(200, 150, 90), (190, 180, 170), (150, 120, 110), (120, 160, 220)][int(rng.integers(4))]
    img[:hy] = _vgrad(h, w, sky_top, np.asarray(sky_top) * 0.3 + 170, 0, hy)
    # Buildings and trees along the horizon.
    x = -int(rng.integers(0, 60))
    while x < w:
        bw = int(rng.uniform(0.06, 0.22) * w)
        top = int(hy - rng.uniform(0.05, 1.0) * hy)
        col = np.asarray(_rand_color(rng, 60, 200), np.float32)
        img[max(0, top):hy, max(0, x):x + bw] = col
        if rng.random() < 0.7:  # window grid
            win = col * rng.uniform(0.4, 0.7)
            sx, sy = max(4, bw // int(rng.integers(3, 7))), max(4, int(rng.uniform(0.03, 0.07) * h))
            for yy in range(max(0, top) + sy // 3, hy - sy // 2, sy):
                for xx in range(max(0, x) + sx // 3, min(w, x + bw) - sx // 2, sx):
                    img[yy:yy + sy // 2, xx:xx + sx // 2] = win
        if rng.random() < 0.3:  # tree
            cv2.ellipse(img, (x + bw // 2, hy), (bw // 2, int(bw * 0.7)), 0, 180, 360,
                        (float(rng.uniform(20, 60)), float(rng.uniform(70, 130)), float(rng.uniform(20, 60))), -1)
        x += bw + int(rng.integers(0, 30))
    # Road with texture and lane markings converging to a vanishing point.
    asphalt = float(rng.uniform(55, 115))
    road = _vgrad(h, w, (asphalt * 0.8,) * 3, (asphalt,) * 3, hy, h)
    road += _lowfreq(rng, h - hy, w, 12)[..., None] * rng.uniform(4, 12)
    img[hy:] = road
    vx = w * rng.uniform(0.25, 0.75)
    for xb in np.linspace(-0.4 * w, 1.4 * w, int(rng.integers(3, 7))):
        col = (235.0, 235.0, 235.0) if rng.random() < 0.7 else (40.0, 200.0, 235.0)
        dashed = rng.random() < 0.6
        segs = [(0.0, 1.0)] if not dashed else [(a, a + 0.06 + 0.12 * a) for a in np.arange(0.02, 1.0, 0.08 + 0.25 * 0.5)]
        for a, b in segs:
            b = min(b, 1.0)
            # Width grows linearly from the vanishing point (perspective).
            pa = (vx + (xb - vx) * a, hy + (h - hy) * a)
            pb = (vx + (xb - vx) * b, hy + (h - hy) * b)
            wa, wb = 0.5 + 8 * a * h / 720, 0.5 + 8 * b * h / 720
            poly = np.array([(pa[0] - wa, pa[1]), (pa[0] + wa, pa[1]), (pb[0] + wb, pb[1]), (pb[0] - wb, pb[1])])
            cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], col, cv2.LINE_AA, 4)
    if rng.random() < 0.6:  # kerb / sidewalk on one side
        side = rng.random() < 0.5
        xb = -0.6 * w if side else 1.6 * w
        poly = np.array([(vx, hy), (xb, h), (0 if side else w, h), (0 if side else w, hy)])
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], (float(rng.uniform(120, 180)),) * 3)
    return img


def _bg_parking(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    hy = int(h * rng.uniform(0.3, 0.55))
    wall = _rand_color(rng, 120, 210)
    img = np.empty((h, w, 3), np.float32)
    img[:hy] = _vgrad(h, w, np.asarray(wall) * 0.7, wall, 0, hy)
    stripe = _rand_color(rng, 30, 220)
    sy = int(hy * rng.uniform(0.5, 0.8))
    img[sy:sy + max(2, h // 40)] = stripe
    floor = _rand_color(rng, 70, 140)
    img[hy:] = _vgrad(h, w, np.asarray(floor) * 0.8, floor, hy, h)
    img[hy:] += _lowfreq(rng, h - hy, w, 20)[..., None] * 6
    vx = w * rng.uniform(0.3, 0.7)
    for xb in np.linspace(-1.0 * w, 2.0 * w, int(rng.integers(6, 14))):
        poly = np.array([(vx + (xb - vx) * 0.02, hy + 2), (vx + (xb - vx) * 0.02 + 1, hy + 2), (xb + 3, h), (xb - 3, h)])
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], (225.0, 225.0, 225.0), cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 4))):  # pillars with warning stripes
        px, pw = int(rng.uniform(0, w)), int(rng.uniform(0.03, 0.08) * w)
        img[:, px:px + pw] = _rand_color(rng, 150, 220)
        for yy in range(h - h // 8, h, max(4, h // 40)):
            img[yy:yy + max(2, h // 80), px:px + pw] = (20.0, 180.0, 230.0)
    return img


def _bg_abstract(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    c0, c1 = np.asarray(_rand_color(rng), np.float32), np.asarray(_rand_color(rng), np.float32)
    img = (1 - t[..., None]) * c0 + t[..., None] * c1
    img += _lowfreq(rng, h, w, int(rng.integers(4, 30)), 3) * rng.uniform(10, 40)
    for _ in range(int(rng.integers(5, 25))):
        col = _rand_color(rng)
        kind = rng.integers(3)
        cx, cy, r = int(rng.uniform(0, w)), int(rng.uniform(0, h)), int(rng.uniform(0.02, 0.2) * max(h, w))
        if kind == 0:
            cv2.circle(img, (cx, cy), r, col, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (cx, cy), (cx + r, cy + int(r * rng.uniform(0.2, 1.5))), col, -1)
        else:
            cv2.line(img, (cx, cy), (int(rng.uniform(0, w)), int(rng.uniform(0, h))), col,
                     int(rng.integers(1, 8)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 2.0)))


def _render_background(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    if kind == "random":
        kind = BACKGROUNDS[int(rng.choice(3, p=[0.55, 0.25, 0.2]))]
    fn = {"street": _bg_street, "parking": _bg_parking, "abstract": _bg_abstract}.get(kind)
    if fn is None:
        raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS} or 'random'")
    img = fn(rng, h, w)
    # Static fine texture so flat areas are not perfectly flat.
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * float(rng.uniform(1.0, 4.0))
    return np.clip(img, 0, 255).astype(np.uint8)


# =========================================================================== vehicles
_CAR_COLORS = ((235, 235, 235), (30, 30, 32), (180, 180, 175), (110, 110, 112), (40, 40, 170),
               (140, 70, 30), (80, 40, 20), (50, 90, 40), (150, 190, 210), (30, 190, 230))


@dataclass
class _VehicleSpec:
    """Vehicle proportions relative to the plate width (drawn before sizes are known)."""

    kind: str           # "rear", "front", "van" or "none"
    car_ratio: float    # car width / plate width
    h_ratio: float      # car height / car width
    plate_y: float      # plate centre y / car height
    color: tuple[float, float, float]

    def box_around_plate(self, pw: float) -> tuple[float, float, float, float]:
        """Vehicle bounds relative to the plate centre: (left, top, right, bottom) px."""
        cw = pw * self.car_ratio
        ch = cw * self.h_ratio
        return -cw / 2, -self.plate_y * ch, cw / 2, (1 - self.plate_y) * ch


def _vehicle_spec(rng: np.random.Generator, vehicles: bool, kind: str | None = None) -> _VehicleSpec:
    color = tuple(float(np.clip(c + rng.uniform(-12, 12), 0, 255)) for c in _CAR_COLORS[int(rng.integers(len(_CAR_COLORS)))])
    if not vehicles:
        return _VehicleSpec("none", 1.12, 0.0, 0.5, (35.0, 35.0, 35.0))
    kind = kind or ("rear", "front", "van")[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
    if kind == "van":
        return _VehicleSpec(kind, float(rng.uniform(2.9, 3.5)), float(rng.uniform(0.85, 1.0)), float(rng.uniform(0.8, 0.85)), color)
    return _VehicleSpec(kind, float(rng.uniform(2.7, 3.4)), float(rng.uniform(0.6, 0.75)), float(rng.uniform(0.74, 0.8)), color)


def _poly(img: np.ndarray, pts, color) -> None:
    cv2.fillPoly(img, [np.round(np.asarray(pts, np.float64) * (1 << _SHIFT)).astype(np.int32)], color, cv2.LINE_AA, _SHIFT)


def _build_sprite(plate: PlateImage, spec: _VehicleSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render a vehicle carrying ``plate``.

    Returns color (h, w, 3) uint8, alpha (h, w) uint8, label (h, w) uint8 (1 body, 2 plate)
    and the plate corners (4, 2) float32 in sprite px (OpenCV pixel-centre convention).
    """
    ph, pw = plate.image.shape[:2]
    if spec.kind == "none":
        m = max(2, round(0.06 * ph))
        sh, sw = ph + 2 * m, pw + 2 * m
        color = np.empty((sh, sw, 3), np.uint8)
        color[:] = spec.color
        alpha = np.zeros((sh, sw), np.uint8)
        _fill_poly(alpha, _rounded_rect_poly(0, 0, sw - 1, sh - 1, 2 * m), 255)
        label = (alpha > 127).astype(np.uint8)
        px0, py0 = m, m
    else:
        cw = pw * spec.car_ratio
        ch = cw * spec.h_ratio
        mx, my = 0.03 * cw, 0.02 * cw
        sw, sh = int(math.ceil(cw + 2 * mx)), int(math.ceil(ch + my + 0.06 * ch))
        color = np.empty((sh, sw, 3), np.uint8)
        color[:] = spec.color  # body colour under transparent pixels: no dark fringe when resampled
        alpha = np.zeros((sh, sw), np.uint8)
        X = lambda f: mx + f * cw  # noqa: E731  car-relative -> sprite px
        Y = lambda f: my + f * ch  # noqa: E731
        body = spec.color
        dark = tuple(c * 0.45 for c in body)
        glass = (55.0, 48.0, 42.0)
        # Soft shadow under the car (semi-transparent black).
        cv2.ellipse(alpha, (_fx(X(0.5)), _fx(Y(0.99))), (_fx(0.52 * cw), _fx(0.05 * ch)), 0, 0, 360, 110, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(color, (_fx(X(0.5)), _fx(Y(0.99))), (_fx(0.52 * cw), _fx(0.05 * ch)), 0, 0, 360, (15, 15, 15), -1, cv2.LINE_AA, _SHIFT)
        shapes: list[tuple[np.ndarray, tuple]] = []
        for x0 in (0.05, 0.77):  # tyres
            shapes.append((_rounded_rect_poly(X(x0), Y(0.8), X(x0 + 0.18), Y(1.0), 0.02 * cw), (25, 25, 25)))
        if spec.kind == "van":
            shapes.append((_rounded_rect_poly(X(0.0), Y(0.02), X(1.0), Y(0.92), 0.06 * cw), body))
        else:
            top_in = 0.2 if spec.kind == "rear" else 0.17
            shapes.append((_rounded_rect_poly(X(0.0), Y(0.4), X(1.0), Y(0.92), 0.09 * cw), body))
            cab = np.array([(X(top_in), Y(0.02)), (X(1 - top_in), Y(0.02)), (X(0.93), Y(0.45)), (X(0.07), Y(0.45))])
            shapes.append((np.round(cab * (1 << _SHIFT)).astype(np.int32), body))
        for poly, col in shapes:
            _fill_poly(color, poly, col)
            _fill_poly(alpha, poly, 255)
        label = (alpha >= 250).astype(np.uint8)
        # Vertical shading: lighter roof, darker sill.
        shade = np.linspace(1.12, 0.8, sh, dtype=np.float32)[:, None, None]
        color = np.clip(color.astype(np.float32) * shade, 0, 255).astype(np.uint8)
        if spec.kind == "van":
            for x0, x1 in ((0.08, 0.48), (0.52, 0.92)):
                cv2.rectangle(color, (_fx(X(x0)), _fx(Y(0.08))), (_fx(X(x1)), _fx(Y(0.36))), glass, -1, cv2.LINE_AA, _SHIFT)
            cv2.line(color, (_fx(X(0.5)), _fx(Y(0.05))), (_fx(X(0.5)), _fx(Y(0.75))), dark, max(1, round(0.006 * cw)), cv2.LINE_AA, _SHIFT)
            for x0 in (0.02, 0.93):
                cv2.rectangle(color, (_fx(X(x0)), _fx(Y(0.45))), (_fx(X(x0 + 0.05)), _fx(Y(0.7))), (30, 30, 190), -1, cv2.LINE_AA, _SHIFT)
            bumper_y = 0.82
        elif spec.kind == "rear":
            _poly(color, [(X(0.25), Y(0.06)), (X(0.75), Y(0.06)), (X(0.86), Y(0.38)), (X(0.14), Y(0.38))], glass)
            _poly(color, [(X(0.3), Y(0.08)), (X(0.4), Y(0.08)), (X(0.3), Y(0.36)), (X(0.2), Y(0.36))], (90, 85, 80))
            for x0 in (0.03, 0.8):  # tail lights
                _fill_poly(color, _rounded_rect_poly(X(x0), Y(0.46), X(x0 + 0.17), Y(0.58), 0.02 * cw), (35, 30, 185))
            bumper_y = 0.84
        else:  # front
            _poly(color, [(X(0.22), Y(0.05)), (X(0.78), Y(0.05)), (X(0.9), Y(0.4)), (X(0.1), Y(0.4))], (120, 105, 95))
            _poly(color, [(X(0.6), Y(0.07)), (X(0.7), Y(0.07)), (X(0.5), Y(0.38)), (X(0.4), Y(0.38))], (165, 155, 150))
            for x0 in (0.04, 0.76):  # headlights
                _fill_poly(color, _rounded_rect_poly(X(x0), Y(0.47), X(x0 + 0.2), Y(0.58), 0.03 * cw), (225, 235, 240))
            _fill_poly(color, _rounded_rect_poly(X(0.3), Y(0.46), X(0.7), Y(0.6), 0.02 * cw), (35, 35, 35))
            for gy in np.linspace(0.48, 0.58, 4):
                cv2.line(color, (_fx(X(0.31)), _fx(Y(gy))), (_fx(X(0.69)), _fx(Y(gy))), (90, 90, 90), max(1, round(0.004 * cw)), cv2.LINE_AA, _SHIFT)
            bumper_y = 0.86
        _fill_poly(color, _rounded_rect_poly(X(0.01), Y(bumper_y), X(0.99), Y(0.92), 0.03 * cw), tuple(c * 0.6 for c in dark))
        px0 = int(round(X(0.5) - pw / 2))
        py0 = int(round(Y(spec.plate_y) - ph / 2))
        py0 = min(py0, sh - ph)
    # Paste the plate (its rounded outline via its mask).
    m = (plate.mask if plate.mask is not None else np.full((ph, pw), 255, np.uint8)).astype(np.float32)[..., None] / 255.0
    roi = color[py0:py0 + ph, px0:px0 + pw].astype(np.float32)
    color[py0:py0 + ph, px0:px0 + pw] = np.round(roi * (1 - m) + plate.image.astype(np.float32) * m).astype(np.uint8)
    alpha[py0:py0 + ph, px0:px0 + pw] = 255
    label[py0:py0 + ph, px0:px0 + pw] = 2
    corners = np.array([(px0, py0), (px0 + pw, py0), (px0 + pw, py0 + ph), (px0, py0 + ph)], np.float32) - 0.5
    return color, alpha, label, corners


def _pyramid(color: np.ndarray, alpha: np.ndarray, label: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Mip levels (each half the previous), so warps never minify by more than 2x."""
    levels = [(color, alpha, label)]
    while min(levels[-1][0].shape[:2]) >= 24 and len(levels) < 7:
        c, a, l = levels[-1]
        size = (max(1, c.shape[1] // 2), max(1, c.shape[0] // 2))
        levels.append((cv2.resize(c, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(a, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(l, size, interpolation=cv2.INTER_NEAREST)))
    return levels


# =========================================================================== trajectories
def _ease(u: float, m: float) -> float:
    return (1 - m) * u + m * (3 * u * u - 2 * u * u * u)


@dataclass
class _Path:
    """Smooth plate-centre trajectory in frame px (pixel-centre convention) and plate width."""

    p0: np.ndarray
    p1: np.ndarray
    w0: float
    w1: float
    bulge: float
    ease: float
    yaw: tuple[float, float]   # radians at start, end
    pitch: float
    roll: float

    def at(self, u: float) -> tuple[np.ndarray, float]:
        e = _ease(min(max(u, 0.0), 1.0), self.ease)
        d = self.p1 - self.p0
        n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
        c = self.p0 + d * e + n * self.bulge * math.sin(math.pi * e)
        w = 1.0 / ((1 - e) / self.w0 + e / self.w1)  # constant-speed approach is harmonic in size
        return c, w

    def angles(self, u: float) -> tuple[float, float, float]:
        return self.yaw[0] + (self.yaw[1] - self.yaw[0]) * u, self.pitch, self.roll


def _sample_path(rng: np.random.Generator, cfg: SceneConfig, aspect: float) -> tuple[_Path, str]:
    W, H = cfg.width, cfg.height
    lo, hi = (float(v) for v in cfg.plate_width_px)
    kind = ("cross", "approach", "recede", "diagonal", "static")[int(rng.choice(5, p=[0.4, 0.2, 0.12, 0.18, 0.1]))]
    w_end = float(rng.uniform(lo, hi))
    sc = max(0.0, cfg.scale_change)
    if kind in ("approach", "recede"):
        ratio = 1.0 + rng.uniform(0.3, 1.0) * sc
    else:
        ratio = math.exp(rng.uniform(-0.15, 0.15) * sc)
    w_start = float(np.clip(w_end / ratio, lo, hi))
    if kind == "recede":
        w_start, w_end = w_end, w_start
    wmax = max(w_start, w_end)
    mx, my = 0.6 * wmax + 2, 0.6 * wmax / aspect + 2
    def rx(a: float = 0.0, b: float = 1.0) -> float:
        return float(rng.uniform(mx + a * (W - 2 * mx), mx + b * (W - 2 * mx))) if W > 2 * mx else W / 2
    def ry(a: float = 0.0, b: float = 1.0) -> float:
        return float(rng.uniform(my + a * (H - 2 * my), my + b * (H - 2 * my))) if H > 2 * my else H / 2
    s = cfg.speed
    if kind == "cross":
        y0 = ry(0.3, 1.0)
        x0 = rx(0.0, 0.5)
        x1 = x0 + rng.uniform(0.15, 0.6) * W * s
        p0, p1 = np.array([x0, y0]), np.array([x1, y0 + rng.uniform(-0.05, 0.05) * H * s])
        if rng.random() < 0.5:
            p0, p1 = np.array([W - p0[0], p0[1]]), np.array([W - p1[0], p1[1]])
    elif kind in ("approach", "recede"):
        y0 = ry(0.15, 0.6)
        p0 = np.array([rx(0.1, 0.9), y0])
        p1 = p0 + np.array([rng.uniform(-0.1, 0.1) * W, rng.uniform(0.1, 0.35) * H]) * s
        if kind == "recede":
            p0, p1 = p1, p0
    elif kind == "diagonal":
        p0 = np.array([rx(), ry()])
        ang = rng.uniform(0, 2 * np.pi)
        p1 = p0 + np.array([math.cos(ang) * W, math.sin(ang) * H]) * rng.uniform(0.15, 0.45) * s
    else:
        p0 = np.array([rx(), ry(0.2, 1.0)])
        p1 = p0 + rng.uniform(-0.02, 0.02, 2) * np.array([W, H])
    # Keep the plate inside the frame at both ends ...
    p0 = np.array([np.clip(p0[0], mx, max(mx, W - mx)), np.clip(p0[1], my, max(my, H - my))])
    p1 = np.array([np.clip(p1[0], mx, max(mx, W - mx)), np.clip(p1[1], my, max(my, H - my))])
    if rng.random() < cfg.enter_leave and np.linalg.norm(p1 - p0) > 1:  # ... or let it enter / leave
        # Push the start (enter) or end (leave) point outside the frame along the motion.
        d = (p1 - p0) / np.linalg.norm(p1 - p0)
        enter = rng.random() < 0.5
        anchor = p1 if enter else p0
        step = -d if enter else d
        k = 0.0
        while k < 4 * (W + H):
            q = anchor + step * k
            if q[0] < -mx or q[0] > W + mx or q[1] < -my or q[1] > H + my:
                break
            k += 8.0
        if enter:
            p0 = anchor + step * k
        else:
            p1 = anchor + step * k
    per = cfg.perspective
    yaw0 = rng.uniform(-35, 35) * per
    path = _Path(p0.astype(np.float64), p1.astype(np.float64), w_start, w_end,
                 bulge=float(rng.uniform(-0.05, 0.05) * np.linalg.norm(p1 - p0)),
                 ease=float(rng.uniform(-0.5, 0.5)),
                 yaw=(math.radians(yaw0), math.radians(yaw0 + rng.uniform(-8, 8) * per)),
                 pitch=math.radians(rng.uniform(-12, 12) * per), roll=math.radians(rng.uniform(-6, 6) * per))
    return path, kind


def _boxes_over_time(path: _Path, aspect: float, spec: _VehicleSpec, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approximate plate and vehicle boxes (T, 4) at times ``us`` (fractions of the clip)."""
    plates, cars = [], []
    for u in us:
        c, w = path.at(float(u))
        h = w / aspect
        plates.append((c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2))
        l, t, r, b = spec.box_around_plate(w)
        cars.append((c[0] + l, c[1] + t, c[0] + r, c[1] + b))
    return np.asarray(plates), np.asarray(cars)


def _inter(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row intersection area of (T, 4) boxes."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    return w * h


# =========================================================================== scene
@dataclass
class _Track:
    track_id: int
    text: str
    style: str
    path: _Path
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    plate_corners: np.ndarray  # (4, 2) level-0 sprite px, pixel-centre convention
    plate_w0: float            # plate width in level-0 sprite px
    focal: float               # level-0 px
    exposure: float            # fraction of a frame interval the shutter is open


@dataclass
class _Occluder:
    x0: float        # centre x at time t_ref (frame px)
    y: float         # centre y (frame px)
    vx: float        # px / s
    t_ref: float
    w: float
    h: float
    color: tuple[float, float, float]
    head: tuple[float, float, float]


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def _line_kernel(length: float, angle: float) -> np.ndarray:
    k = int(math.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    c = (k - 1) / 2
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(ker, (_fx(c - dx), _fx(c - dy)), (_fx(c + dx), _fx(c + dy)), 1.0, 1, cv2.LINE_AA, _SHIFT)
    s = float(ker.sum())
    if s <= 0:
        ker[int(c), int(c)] = 1.0
        s = 1.0
    return ker / s


class Scene:
    """A fully specified scene: background, tracks, occluders and lighting, fixed by the seed.

    ``render(i)`` gives frame ``i`` (0-based) independent of render order, so single frames
    can be sampled without rendering a whole clip.
    """

    def __init__(self, cfg: SceneConfig, seed: int):
        if cfg.width < 16 or cfg.height < 16:
            raise ValueError("frame must be at least 16x16 px")
        if not 0 <= cfg.n_plates <= 120:  # two uint8 labels per plate in the occlusion map
            raise ValueError("n_plates must be in 0..120")
        if cfg.fps <= 0 or cfg.seconds <= 0:
            raise ValueError("fps and seconds must be > 0")
        if int(seed) < 0:
            raise ValueError("seed must be >= 0")
        self.cfg, self.seed = cfg, int(seed)
        rng = np.random.default_rng([self.seed, 0x5CE4E])
        W, H = cfg.width, cfg.height
        self.background = _render_background(rng, cfg.background, H, W)
        self.tracks: list[_Track] = []
        self._sample_tracks(rng)
        self._sample_occluders(rng)
        # Lighting: slow sinusoidal gain plus one smooth step (a cloud), and a tint drift.
        L = max(0.0, cfg.lighting)
        self._light = dict(a=rng.uniform(0.03, 0.12) * L, f=rng.uniform(0.1, 0.6), ph=rng.uniform(0, 2 * np.pi),
                           step=rng.uniform(-0.15, 0.15) * L, tc=rng.uniform(0.2, 0.8) * cfg.seconds,
                           tw=rng.uniform(0.2, 0.8), tint=rng.uniform(-0.06, 0.06, 3) * L,
                           gamma=math.exp(rng.uniform(-0.15, 0.15) * L))
        sigma = 2.0 * max(0.0, cfg.noise)
        self._noise = None
        if sigma > 0.25:
            self._noise = np.round(rng.standard_normal((H + 32, W + 32, 3), dtype=np.float32) * sigma).astype(np.int16)

    # ------------------------------------------------------------------ setup
    def _sample_tracks(self, rng: np.random.Generator) -> None:
        cfg = self.cfg
        us = np.linspace(0, 1, 13)
        placed: list[tuple[np.ndarray, np.ndarray]] = []
        for k in range(cfg.n_plates):
            style = cfg.styles[int(rng.integers(len(cfg.styles)))] if cfg.styles else STYLES[int(rng.integers(2))]
            plate_seed = int(rng.integers(2**62))
            # Probe the style's aspect (same seed => same plate at any size).
            probe = render_plate(np.random.default_rng(plate_seed), style, height=16)
            aspect = probe.image.shape[1] / probe.image.shape[0]
            best = None
            for attempt in range(40):
                spec = _vehicle_spec(rng, cfg.vehicles)
                path, kind = _sample_path(rng, cfg, aspect)
                if spec.kind in ("front", "rear"):  # approaching cars show their front
                    spec.kind = {"approach": "front", "recede": "rear"}.get(kind, spec.kind)
                pb, cb = _boxes_over_time(path, aspect, spec, us)
                pad = np.stack([-(pb[:, 2] - pb[:, 0]) * 0.25, -(pb[:, 3] - pb[:, 1]) * 0.5] * 2, 1)
                pad[:, 2:] *= -1
                # A plate must be fully in the frame for most of the clip (enter / leave paths
                # spend a little time outside); otherwise an off-screen path would look "best".
                W, H = cfg.width, cfg.height
                inside = (pb[:, 0] >= 0) & (pb[:, 1] >= 0) & (pb[:, 2] <= W) & (pb[:, 3] <= H)
                cost = 0.0 if inside.mean() >= 0.4 else 1000.0
                for opb, ocb in placed:
                    cost += 100.0 * float((_inter(pb + pad, opb) > 0).mean())  # plates must not overlap
                    areas = (pb[:, 2] - pb[:, 0]) * (pb[:, 3] - pb[:, 1])
                    oareas = (opb[:, 2] - opb[:, 0]) * (opb[:, 3] - opb[:, 1])
                    cost += float((_inter(cb, opb) / oareas).mean() + (_inter(ocb, pb) / areas).mean())
                    cost += 0.05 * float((_inter(cb, ocb) > 0).mean())  # prefer separate vehicles
                if best is None or cost < best[0]:
                    best = (cost, spec, path, pb, cb)
                if cost < 1e-3:
                    break
            _, spec, path, pb, cb = best
            placed.append((pb, cb))
            wmax = max(path.w0, path.w1)
            plate = render_plate(np.random.default_rng(plate_seed), style, width=max(8, int(math.ceil(wmax))))
            color, alpha, label, corners = _build_sprite(plate, spec)
            pw0 = float(plate.image.shape[1])
            self.tracks.append(_Track(
                track_id=k + 1, text=plate.text, style=style, path=path,
                levels=_pyramid(color, alpha, label), plate_corners=corners, plate_w0=pw0,
                focal=3.0 * max(color.shape[:2]), exposure=float(rng.uniform(0.3, 1.0)) * max(0.0, cfg.motion_blur)))

    def _sample_occluders(self, rng: np.random.Generator) -> None:
        cfg = self.cfg
        self.occluders: list[_Occluder] = []
        if cfg.occlusion <= 0 or not self.tracks:
            return
        n = len(self.tracks)
        chosen = [i for i in range(n) if rng.random() < 0.5]
        if not chosen:
            chosen = [int(rng.integers(n))]
        T = cfg.seconds
        for i in chosen:
            tr = self.tracks[i]
            aspect = tr.plate_w0 / (tr.plate_corners[2, 1] - tr.plate_corners[0, 1])
            for _ in range(10):  # occlude while the plate is well inside the frame
                t = float(rng.uniform(0.2, 0.8)) * T
                c, w = tr.path.at(t / T)
                if w < c[0] < cfg.width - w and w / aspect < c[1] < cfg.height - w / aspect:
                    break
            dur = float(rng.uniform(0.15, 0.6)) * min(1.0, cfg.occlusion)
            ow = w * float(rng.uniform(0.8, 1.6))
            oh = (w / aspect) * float(rng.uniform(5, 9))
            c_next, _ = tr.path.at(min(1.0, t / T + 1e-3))
            vplate = (c_next[0] - c[0]) / (1e-3 * T)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            vrel = (ow + w) / max(dur, 1e-3)
            self.occluders.append(_Occluder(
                x0=float(c[0]), y=float(c[1] + rng.uniform(-0.25, 0.25) * oh), vx=float(vplate + sign * vrel),
                t_ref=t, w=ow, h=oh, color=tuple(float(v) for v in rng.uniform(20, 200, 3)),
                head=tuple(float(v) for v in (rng.uniform(60, 120), rng.uniform(90, 150), rng.uniform(140, 210)))))

    # ------------------------------------------------------------------ per frame
    @property
    def n_frames(self) -> int:
        return self.cfg.n_frames

    def _homography(self, tr: _Track, u: float) -> np.ndarray:
        """3x3 map from level-0 sprite px to frame px (both OpenCV pixel-centre convention)."""
        c, w = tr.path.at(u)
        s = w / tr.plate_w0
        h0, w0 = tr.levels[0][0].shape[:2]
        src = np.array([(-0.5, -0.5), (w0 - 0.5, -0.5), (w0 - 0.5, h0 - 0.5), (-0.5, h0 - 0.5)], np.float64)
        pc = tr.plate_corners.mean(0)
        uv = src - pc
        P = np.c_[uv, np.zeros(4)] @ _rot(*tr.path.angles(u)).T
        proj = tr.focal * P[:, :2] / (tr.focal + P[:, 2:3])
        dst = c + s * proj
        return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)

    def _lut(self, t: float) -> np.ndarray | None:
        p = self._light
        if self.cfg.lighting <= 0:
            return None
        g = 1.0 + p["a"] * math.sin(2 * math.pi * p["f"] * t + p["ph"])
        g += p["step"] / (1.0 + math.exp(-(t - p["tc"]) / (p["tw"] / 4)))
        gains = g * (1.0 + p["tint"] * (t / max(self.cfg.seconds, 1e-6)))
        x = np.arange(256, dtype=np.float32) / 255.0
        lut = np.clip(255.0 * (x[:, None] ** p["gamma"]) * gains[None, :].astype(np.float32), 0, 255)
        return np.round(lut).astype(np.uint8).reshape(1, 256, 3)

    def render(self, i: int) -> tuple[np.ndarray, list[PlateTruth]]:
        """Frame ``i`` as (H, W, 3) uint8 BGR and its plate truths (sorted by track_id)."""
        cfg = self.cfg
        W, H = cfg.width, cfg.height
        t = i / cfg.fps
        u = t / cfg.seconds if cfg.seconds > 0 else 0.0
        frame = self.background.copy()
        labels = np.zeros((H, W), np.uint8)
        infos = []
        for k, tr in enumerate(self.tracks):
            H0 = self._homography(tr, u)
            c, w = tr.path.at(u)
            infos.append((w, k, tr, H0))
        totals: dict[int, tuple[int, np.ndarray, tuple[int, int, int, int]]] = {}
        for w, k, tr, H0 in sorted(infos, key=lambda x: (x[0], x[1])):  # far (small) first
            self._draw_track(frame, labels, k, tr, H0, u, totals)
        for oc in self.occluders:
            self._draw_occluder(frame, labels, oc, t)
        truths = []
        for k, tr in enumerate(self.tracks):
            if k not in totals:
                continue
            total, corners, (x0, y0, x1, y1) = totals[k]
            box = np.array([corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()], np.float32)
            if box[2] <= 0 or box[3] <= 0 or box[0] >= W or box[1] >= H:
                continue
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
            vis = 0
            if xb > xa and yb > ya and total > 0:
                vis = int(np.count_nonzero(labels[ya:yb, xa:xb] == 2 * k + 2))
            visibility = float(min(1.0, vis / total)) if total > 0 else 0.0
            truths.append(PlateTruth(tr.track_id, tr.text, tr.style, box, corners, round(visibility, 4)))
        lut = self._lut(t)
        if lut is not None:
            frame = cv2.LUT(frame, lut)
        if self._noise is not None:
            fr = np.random.default_rng([self.seed, 0xF4A3, i])
            ox, oy = (int(v) for v in fr.integers(0, 33, 2))
            frame = cv2.add(frame, self._noise[oy:oy + H, ox:ox + W], dtype=cv2.CV_8U)
        return frame, truths

    def _draw_track(self, frame: np.ndarray, labels: np.ndarray, k: int, tr: _Track, H0: np.ndarray,
                    u: float, totals: dict) -> None:
        W, H = frame.shape[1], frame.shape[0]
        cfg = self.cfg
        # Plate truth corners (edge convention) and the plate's unclipped pixel count.
        pc = cv2.perspectiveTransform(tr.plate_corners.reshape(1, 4, 2).astype(np.float64), H0).reshape(4, 2)
        corners = (pc + 0.5).astype(np.float32)
        _, w_now = tr.path.at(u)
        s = w_now / tr.plate_w0
        lvl = int(min(len(tr.levels) - 1, max(0, math.floor(math.log2(1.0 / max(s, 1e-6))))))
        color, alpha, label = tr.levels[lvl]
        h0, w0 = tr.levels[0][0].shape[:2]
        hl, wl = color.shape[:2]
        a, b = w0 / wl, h0 / hl  # level-l px -> level-0 px, pixel-centre aligned
        Tl = np.array([[a, 0, 0.5 * a - 0.5], [0, b, 0.5 * b - 0.5], [0, 0, 1]])
        Hl = H0 @ Tl
        # Plate pixels as the nearest-neighbour warp rasterises them (same grid as below).
        px0, py0 = (int(math.floor(v)) - 1 for v in pc.min(0))
        px1, py1 = (int(math.ceil(v)) + 2 for v in pc.max(0))
        if px1 - px0 > 0 and py1 - py0 > 0 and (px1 - px0) * (py1 - py0) < 4 * W * H:
            Tp = np.array([[1, 0, -px0], [0, 1, -py0], [0, 0, 1]], np.float64)
            lab_p = cv2.warpPerspective(label, Tp @ Hl, (px1 - px0, py1 - py0), flags=cv2.INTER_NEAREST)
            total = int(np.count_nonzero(lab_p == 2))
        else:
            total = 0
        totals[k] = (total, corners, (px0, py0, px1, py1))
        # Motion blur along the image-space velocity of the plate centre.
        c_prev, _ = tr.path.at(u - 0.5 / cfg.fps / max(cfg.seconds, 1e-6))
        c_next, _ = tr.path.at(u + 0.5 / cfg.fps / max(cfg.seconds, 1e-6))
        vel = c_next - c_prev  # px per frame
        blur_len = float(np.linalg.norm(vel)) * tr.exposure
        pad = int(math.ceil(blur_len)) + 2
        sc = np.array([(-0.5, -0.5), (wl - 0.5, -0.5), (wl - 0.5, hl - 0.5), (-0.5, hl - 0.5)], np.float64)
        dc = cv2.perspectiveTransform(sc.reshape(1, 4, 2), Hl).reshape(4, 2)
        x0 = max(0, int(math.floor(dc[:, 0].min())) - pad)
        y0 = max(0, int(math.floor(dc[:, 1].min())) - pad)
        x1 = min(W, int(math.ceil(dc[:, 0].max())) + pad + 1)
        y1 = min(H, int(math.ceil(dc[:, 1].max())) + pad + 1)
        if x1 <= x0 or y1 <= y0:
            return
        Tr = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ Hl
        size = (x1 - x0, y1 - y0)
        col = cv2.warpPerspective(color, Tr, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        al = cv2.warpPerspective(alpha, Tr, size, flags=cv2.INTER_LINEAR).astype(np.float32) * (1.0 / 255.0)
        lab = cv2.warpPerspective(label, Tr, size, flags=cv2.INTER_NEAREST)
        if blur_len >= 1.0:
            ker = _line_kernel(blur_len, math.atan2(vel[1], vel[0]))
            col = cv2.filter2D(col, -1, ker, borderType=cv2.BORDER_REPLICATE)
            al = cv2.filter2D(al, -1, ker, borderType=cv2.BORDER_CONSTANT)
        roi = frame[y0:y1, x0:x1]
        frame[y0:y1, x0:x1] = cv2.blendLinear(col, roi, al, 1.0 - al)
        lroi = labels[y0:y1, x0:x1]
        m = lab > 0
        lroi[m] = lab[m] + 2 * k

    def _draw_occluder(self, frame: np.ndarray, labels: np.ndarray, oc: _Occluder, t: float) -> None:
        cx = oc.x0 + oc.vx * (t - oc.t_ref)
        if cx + oc.w < 0 or cx - oc.w > frame.shape[1]:
            return
        body = _rounded_rect_poly(cx - oc.w / 2, oc.y - 0.3 * oc.h, cx + oc.w / 2, oc.y + 0.5 * oc.h, 0.3 * oc.w)
        hc = (_fx(cx), _fx(oc.y - 0.3 * oc.h - 0.28 * oc.w))
        hr = _fx(0.3 * oc.w)
        _fill_poly(frame, body, oc.color)
        cv2.circle(frame, hc, hr, oc.head, -1, cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(labels, [body], 255, cv2.LINE_8, _SHIFT)
        cv2.circle(labels, hc, hr, 255, -1, cv2.LINE_8, _SHIFT)


# =========================================================================== public API
def iter_scene_frames(cfg: SceneConfig, seed: int) -> Iterator[tuple[np.ndarray, list[PlateTruth]]]:
    """Yield ``cfg.n_frames`` (frame (H, W, 3) uint8 BGR, plate truths) pairs; deterministic by seed."""
    scene = Scene(cfg, seed)
    for i in range(scene.n_frames):
        yield scene.render(i)


def render_scene_frame(cfg: SceneConfig, seed: int, index: int) -> tuple[np.ndarray, list[PlateTruth]]:
    """Frame ``index`` of the scene (cfg, seed) alone, identical to the one iter_scene_frames yields."""
    return Scene(cfg, seed).render(index)


def _truth_to_json(p: PlateTruth) -> dict:
    return {"track_id": p.track_id, "box": [round(float(v), 3) for v in p.box],
            "corners": [[round(float(x), 3), round(float(y), 3)] for x, y in p.corners],
            "visibility": round(float(p.visibility), 4)}


def write_scene_clip(out_dir: str | Path, cfg: SceneConfig, seed: int, crf: int = 18) -> ClipTruth:
    """Render the scene and write ``clip.mp4`` (H.264 yuv420p), ``gt.txt`` (MOTChallenge) and ``gt.json``.

    gt.txt rows: ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility`` with
    1-based frame, conf=1, class=1, unclipped boxes. Frame width and height must be even.
    """
    import av  # local: only clip writing needs PyAV

    if cfg.width % 2 or cfg.height % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {cfg.width}x{cfg.height}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video, gt_txt, gt_json = out / "clip.mp4", out / "gt.txt", out / "gt.json"
    scene = Scene(cfg, seed)
    frames: list[list[PlateTruth]] = []
    rate = Fraction(cfg.fps).limit_denominator(1001)
    with av.open(str(video), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = cfg.width, cfg.height, "yuv420p"
        for i in range(scene.n_frames):
            img, truths = scene.render(i)
            frames.append(truths)
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    lines = []
    for fi, truths in enumerate(frames):
        for p in truths:
            x1, y1, x2, y2 = (float(v) for v in p.box)
            lines.append(f"{fi + 1},{p.track_id},{x1:.3f},{y1:.3f},{x2 - x1:.3f},{y2 - y1:.3f},1,1,{p.visibility:.4f}")
    gt_txt.write_text("\n".join(lines) + ("\n" if lines else ""))
    plates = {tr.track_id: (tr.text, tr.style) for tr in scene.tracks}
    doc = {"width": cfg.width, "height": cfg.height, "fps": cfg.fps, "n_frames": scene.n_frames, "seed": int(seed),
           "config": cfg.to_dict(),
           "plates": {str(k): {"text": v[0], "style": v[1]} for k, v in plates.items()},
           "frames": [[_truth_to_json(p) for p in truths] for truths in frames]}
    gt_json.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    return ClipTruth(out, video, gt_txt, gt_json, scene.n_frames, float(cfg.fps), (cfg.width, cfg.height),
                     int(seed), plates, frames, cfg)


def load_clip_truth(out_dir: str | Path) -> ClipTruth:
    """Read ``out_dir/gt.json`` back into a :class:`ClipTruth` (coordinates rounded to 1e-3 px)."""
    out = Path(out_dir)
    doc = json.loads((out / "gt.json").read_text())
    plates = {int(k): (v["text"], v["style"]) for k, v in doc["plates"].items()}
    frames = [[PlateTruth(d["track_id"], *plates[d["track_id"]], np.asarray(d["box"], np.float32),
                          np.asarray(d["corners"], np.float32).reshape(4, 2), float(d["visibility"]))
               for d in fr] for fr in doc["frames"]]
    cfg = SceneConfig.from_dict(doc["config"]) if "config" in doc else None
    return ClipTruth(out, out / "clip.mp4", out / "gt.txt", out / "gt.json", int(doc["n_frames"]), float(doc["fps"]),
                     (int(doc["width"]), int(doc["height"])), int(doc["seed"]), plates, frames, cfg)


def _random_detection_config(rng: np.random.Generator, imgsz: int) -> SceneConfig:
    aspect = [16 / 9, 4 / 3, 1.0, 3 / 2, 3 / 4][int(rng.choice(5, p=[0.45, 0.25, 0.12, 0.1, 0.08]))]
    if aspect >= 1:
        W, H = imgsz, max(16, int(round(imgsz / aspect)))
    else:
        W, H = max(16, int(round(imgsz * aspect))), imgsz
    lo_all, hi_all = 16.0, max(20.0, 0.4 * W)
    centre = math.exp(rng.uniform(math.log(lo_all), math.log(hi_all)))
    lo, hi = max(lo_all, centre / 1.3), min(hi_all, centre * 1.3)
    if rng.random() < 0.05:
        n = 0  # background-only negatives
    elif centre > 0.2 * W:
        n = int(rng.integers(1, 3))
    else:
        n = int(rng.integers(1, 6))
    return SceneConfig(width=W, height=H, fps=10.0, seconds=2.0, n_plates=n, plate_width_px=(lo, max(hi, lo + 1)),
                       perspective=float(rng.uniform(0.3, 1.2)), scale_change=float(rng.uniform(0, 1)),
                       motion_blur=float(rng.uniform(0, 1.5)), lighting=float(rng.uniform(0, 1.5)),
                       occlusion=float(rng.uniform(0, 1)) if rng.random() < 0.5 else 0.0,
                       vehicles=bool(rng.random() < 0.9), noise=float(rng.uniform(0, 2.5)),
                       speed=float(rng.uniform(0.5, 1.5)), enter_leave=0.3)


_DISTRACTOR_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def _draw_distractors(rng: np.random.Generator, img: np.ndarray, keep_out: list[np.ndarray], n: int) -> None:
    """Draw ``n`` plate-like non-plates (signs, stickers, text lines, bright bars) in place.

    Hard negatives: text panels with non-plate aspect ratios or several text lines, bare text
    lines and light rectangles without characters. ``keep_out``: (4,) x1 y1 x2 y2 plate boxes
    they must not overlap (so no plate is hidden). Sizes in px of ``img``.
    """
    H, W = img.shape[:2]
    for _ in range(n):
        kind = int(rng.integers(4))
        w = float(np.exp(rng.uniform(np.log(12), np.log(max(14.0, 0.35 * W)))))
        aspect = [rng.uniform(0.6, 1.6), rng.uniform(6.0, 12.0), rng.uniform(1.2, 3.0), rng.uniform(2.0, 5.0)][kind]
        h = max(4.0, w / aspect)
        x0, y0 = rng.uniform(-0.1 * w, W - 0.9 * w), rng.uniform(-0.1 * h, H - 0.9 * h)
        box = np.array([x0 - 3, y0 - 3, x0 + w + 3, y0 + h + 3])
        if any(not (box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]) for b in keep_out):
            continue
        bg = _rand_color(rng, 0, 255)
        fg = tuple(255.0 - c if rng.random() < 0.8 else float(rng.uniform(0, 255)) for c in bg)
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x0 + w)), int(round(y0 + h)))
        if kind == 3:  # bright or dark bar without text (bumper stickers, lights, windows)
            cv2.rectangle(img, p0, p1, bg, -1, cv2.LINE_AA)
            if rng.random() < 0.5:
                cv2.rectangle(img, p0, p1, fg, max(1, int(h / 10)), cv2.LINE_AA)
            continue
        if kind != 1 or rng.random() < 0.5:
            cv2.rectangle(img, p0, p1, bg, -1, cv2.LINE_AA)
        lines = 1 if kind == 1 else int(rng.integers(2, 5))
        lh = h / lines
        for li in range(lines):
            n_ch = max(1, int(round(w / max(2.0, lh * rng.uniform(0.5, 0.9)))))
            text = "".join(_DISTRACTOR_CHARS[int(rng.integers(len(_DISTRACTOR_CHARS)))] for _ in range(min(n_ch, 24)))
            scale = max(0.2, lh * 0.7 / 22.0)
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            scale *= min(1.0, 0.95 * w / max(tw, 1))
            org = (int(round(x0 + 0.03 * w)), int(round(y0 + (li + 0.8) * lh)))
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, fg, max(1, int(scale * 2)), cv2.LINE_AA)


def randomise_photometry(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Strong photometric domain randomisation of a (H, W, 3) uint8 BGR frame; returns a new frame.

    Random subsets of: gamma 0.5..2, contrast 0.5..1.3 and brightness +-50, per-channel colour
    cast up to +-20 %, grey-world desaturation, defocus blur (sigma up to 1.8 px), a down- then
    up-sampling (1/4..1 scale, lost resolution), sensor noise (sigma up to 8), vignetting.
    """
    out = img.astype(np.float32)
    H, W = img.shape[:2]
    if rng.random() < 0.5:
        g = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        out = 255.0 * (out / 255.0) ** g
    if rng.random() < 0.6:
        out = (out - 128.0) * rng.uniform(0.5, 1.3) + 128.0 + rng.uniform(-50, 50)
    if rng.random() < 0.5:
        out *= rng.uniform(0.8, 1.2, 3).astype(np.float32)
    if rng.random() < 0.2:
        grey = out.mean(2, keepdims=True)
        out = grey + (out - grey) * rng.uniform(0.0, 0.6)
    if rng.random() < 0.25:
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        out *= (1.0 - rng.uniform(0.1, 0.5) * r2 / 2.0)[..., None]
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.8)))
    if rng.random() < 0.3:
        s = float(rng.uniform(0.25, 1.0))
        small = cv2.resize(out, (max(8, int(W * s)), max(8, int(H * s))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        noise = rng.standard_normal(out.shape, dtype=np.float32) * float(rng.uniform(1, 8))
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return out


def _write_detection_image(out: Path, i: int, n_images: int, n_val: int, seed: int, imgsz: int,
                           keypoints: bool, randomise: bool, styles: tuple[str, ...] | None = None) -> None:
    """Render, label and write image ``i`` of :func:`write_detection_dataset` (all its randomness
    comes from ``(seed, i)``, so the set is the same however many processes write it)."""
    rng = np.random.default_rng([int(seed), 0xDE7, i])
    cfg = _random_detection_config(rng, imgsz)
    if styles:
        cfg = dataclasses.replace(cfg, styles=tuple(styles))
    scene = Scene(cfg, int(rng.integers(2**62)))
    img, truths = scene.render(int(rng.integers(scene.n_frames)))
    split = "val" if i >= n_images - n_val else "train"
    W, H = cfg.width, cfg.height
    if randomise:
        rr = np.random.default_rng([int(seed), 0xD157, i])
        _draw_distractors(rr, img, [p.box for p in truths], int(rr.integers(0, 7)))
        img = randomise_photometry(rr, img)
    rows = []
    for p in truths:
        if p.visibility < 0.5:
            continue
        x1, y1 = max(0.0, float(p.box[0])), max(0.0, float(p.box[1]))
        x2, y2 = min(float(W), float(p.box[2])), min(float(H), float(p.box[3]))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        row = f"0 {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}"
        if keypoints:
            for x, y in p.corners:
                v = 2 if (0 <= x <= W and 0 <= y <= H) else 0
                row += f" {min(max(x / W, 0.0), 1.0):.6f} {min(max(y / H, 0.0), 1.0):.6f} {v}"
        rows.append(row)
    stem = f"{i:06d}"
    quality = int(rng.integers(70, 96)) if not randomise else int(np.random.default_rng([int(seed), 0x9A, i]).integers(30, 96))
    cv2.imwrite(str(out / "images" / split / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    (out / "labels" / split / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))


def write_detection_dataset(out_dir: str | Path, n_images: int, seed: int, imgsz: int = 640,
                            val_fraction: float = 0.15, keypoints: bool = False, randomise: bool = False,
                            workers: int = 1, styles: tuple[str, ...] | None = None) -> Path:
    """Write a YOLO plate-detection dataset and return its ``data.yaml`` path.

    Layout: ``images/{train,val}/NNNNNN.jpg`` and ``labels/{train,val}/NNNNNN.txt`` with
    ``0 cx cy w h`` per plate of visibility >= 0.5 (box clipped to the frame, normalised to
    [0, 1]). Each image is one frame of a random scene: long side ``imgsz``, plate widths
    16 px .. 40 % of the frame width, random styles, ~5 % background-only images. The last
    ``round(n_images * val_fraction)`` images form the validation split.

    keypoints: write YOLO-pose rows instead (``0 cx cy w h`` + tl, tr, br, bl corners as
        ``x y v``, v = 2 inside the frame, 0 outside) and a data.yaml with ``kpt_shape: [4, 3]``.
    randomise: strong domain randomisation on top of the scene's own: plate-like distractors
        (signs, text lines, bars; see :func:`_draw_distractors`) and :func:`randomise_photometry`;
        JPEG quality 30..95 instead of 70..95.
    workers: processes rendering images (the output does not depend on it).
    styles: plate styles drawn uniformly per plate (repeat one to weigh it up; Latin variants
        such as ``"latin_eu"`` draw that variant only); None: the scene default (latin, ccpd_blue).
    """
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from tqdm import tqdm

    out = Path(out_dir)
    n_val = int(round(n_images * val_fraction)) if n_images > 1 else 0
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    write_one = partial(_write_detection_image, out, n_images=n_images, n_val=n_val, seed=seed, imgsz=imgsz,
                        keypoints=keypoints, randomise=randomise, styles=tuple(styles) if styles else None)
    if workers <= 1:
        for i in tqdm(range(n_images), desc="detset", unit="img"):
            write_one(i)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in tqdm(pool.map(write_one, range(n_images), chunksize=8), total=n_images, desc="detset", unit="img"):
                pass
    yaml = out / "data.yaml"
    kpt = "kpt_shape: [4, 3]\nflip_idx: [1, 0, 3, 2]\n" if keypoints else ""
    yaml.write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\n{kpt}names:\n  0: plate\n")
    return yaml
