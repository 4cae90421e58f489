"""Training sequences for multi-frame fusion that look like the pipeline's crops of real video.

What ``enhance-video --fuse`` actually hands :class:`sr_model.fusion.FusionEnhancer` differs from
independently degraded, purely translated copies of one LR image (``train.fusion``'s original
recipe) in ways this module reproduces, all in one pass per sequence:

* **one camera, one codec**: the plate and a margin of its surroundings are blurred (one blur
  per sequence, somewhat more on non-reference frames), area-reduced ×``scale``, given fresh
  sensor noise per frame, then the frames are
  encoded *as a video* (libx264 through PyAV, ``yuv420p``, CRF drawn in ``crf``, a few warm-up
  frames first so that the kept frames are P-frames predicted from earlier decoded ones) and
  decoded back: block artefacts that move with the block grid and are correlated frame to
  frame, as in a crop cut from an H.264 stream. The content drifts over the fixed block grid by
  whole pixels (camera pan) plus a sub-pixel shake.
* **a growing plate**: the camera zooms in, so every earlier frame shows the plate smaller by a
  per-sequence growth rate (``zoom_per_frame``); its crop is smaller, and the fusion enhancer
  resizes it to the reference's size as at inference.
* **crops cut from tracked corners**: each frame's crop is the plate rectangle warped to a
  frontal rectangle (:func:`tracker.detector.rectify_plate`'s convention: INTER_LINEAR,
  pixel-edge corners, border replicated) from corners that jitter frame to frame (a shared
  framing offset plus independent per-corner noise: small affine / perspective differences);
  now and then a frame's corners jitter several times more (a coasting track's predicted box).
* the reference (last frame) is cut from its jittered corners too, at exactly ``(W / scale,
  H / scale)`` px, and the HR target is the clean HR warped from the *same* corners (×
  ``scale``), so the target is exactly what the reference crop frames.

:func:`video_sequence` returns the K crops (reference last) as uint8 BGR and the HR target; the
caller aligns them (``sr_model.align.align_sequence``) exactly as inference does. Pure numpy /
OpenCV / PyAV, a few ms per sequence on one core.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import cv2
import numpy as np


@dataclass(frozen=True)
class VideoDegradation:
    """Ranges the per-sequence parameters are drawn from (uniform unless said otherwise).

    crf: libx264 constant rate factor (integers, both ends included); warmup: frames encoded
    before the K kept ones (integers, inclusive); blur: Gaussian sigma in LR px (optics +
    motion), one per sequence; noise: per-frame Gaussian noise std (0-255 scale), the sequence's
    level drawn here; zoom_per_frame: the plate's growth per frame (earlier frames are smaller by
    (1 + g) per frame); shake: std of the per-frame sub-pixel camera shake, LR px; drift: whole
    LR px per frame the content pans over the block grid (max, per axis); framing: std of the
    per-frame shared offset of the 4 corners, LR px; corner: std of each corner's own jitter,
    LR px (one std per sequence, drawn in this range); p_coast: chance a non-reference frame's
    corners are a coasting prediction (jitter × coast_factor); pad: LR px of surroundings kept
    around the crop on every side (reflected HR beyond the source crop).
    """

    crf: tuple[int, int] = (23, 35)
    warmup: tuple[int, int] = (1, 4)
    blur: tuple[float, float] = (0.3, 1.0)
    blur_jitter: tuple[float, float] = (1.0, 1.4)
    noise: tuple[float, float] = (0.0, 5.0)
    zoom_per_frame: tuple[float, float] = (0.0, 0.04)
    shake: float = 0.35
    drift: int = 3
    framing: float = 0.25
    corner: tuple[float, float] = (0.0, 0.35)
    p_coast: float = 0.1
    coast_factor: float = 3.0
    pad: int = 6

    def to_dict(self) -> dict:
        return asdict(self)


def encode_decode(frames: list[np.ndarray], crf: int, preset: str = "veryfast") -> list[np.ndarray]:
    """``frames`` ((h, w, 3) uint8 BGR, h and w even) through libx264 (yuv420p, CRF ``crf``, one
    keyframe then P-frames, no B-frames) and back; same count, size and dtype."""
    import av

    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even sizes, got {w}x{h}")
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, "yuv420p"
    codec.time_base = Fraction(1, 15)
    codec.framerate = Fraction(15, 1)
    codec.options = {"crf": str(int(crf)), "preset": preset, "bf": "0", "threads": "1", "g": "250"}
    dec = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    packets = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="bgr24")
        vf.pts = i
        packets += codec.encode(vf)
    packets += codec.encode(None)
    out = []
    for p in packets:
        out += [fr.to_ndarray(format="bgr24") for fr in dec.decode(p)]
    out += [fr.to_ndarray(format="bgr24") for fr in dec.decode(None)]
    if len(out) != len(frames):
        raise RuntimeError(f"decoded {len(out)} frames of {len(frames)}")
    return out


def _rectify(image: np.ndarray, corners: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """The quadrilateral ``corners`` ((4, 2) tl tr br bl, pixel-edge convention) of ``image``
    warped to a (w, h) = ``size`` rectangle (as tracker.detector.rectify_plate, margin 0)."""
    w, h = size
    dst = np.array([(0, 0), (w, 0), (w, h), (0, h)], np.float32) - 0.5
    M = cv2.getPerspectiveTransform(np.asarray(corners, np.float32) - 0.5, dst)
    return cv2.warpPerspective(image, M, (w, h), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


def _edge_size(c: np.ndarray) -> tuple[int, int]:
    """rectify_plate's output size for corners ``c``: rounded mean edge lengths."""
    w = 0.5 * (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3]))
    h = 0.5 * (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1]))
    return max(2, int(round(w))), max(2, int(round(h)))


def video_sequence(hr: np.ndarray, k: int, scale: int, rng: np.random.Generator,
                   cfg: VideoDegradation = VideoDegradation(), wrong: dict[int, np.ndarray] | None = None
                   ) -> tuple[list[np.ndarray], np.ndarray]:
    """K LR crops of ``hr`` ((H, W, 3) uint8 BGR, H and W multiples of ``scale``) as the pipeline
    would cut them from H.264 video (see the module doc), and the HR target.

    wrong: {frame index: another HR crop (same size)} shown instead of ``hr`` in those frames
    (a tracker mix-up); never the reference (index k - 1).
    Returns (crops: K (h_i, w_i, 3) uint8 BGR, oldest first, the reference last at exactly
    (H / scale, W / scale); target: (H, W, 3) uint8 BGR, the clean HR the reference crop frames).
    """
    H, W = hr.shape[:2]
    if H % scale or W % scale:
        raise ValueError(f"HR size {W}x{H} must be a multiple of {scale}")
    s = scale
    ph = cfg.pad * s
    canvas = {}

    def padded(img: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(img, ph, ph, ph, ph, cv2.BORDER_REFLECT_101)

    canvas[-1] = padded(hr)
    for i, o in (wrong or {}).items():
        if i == k - 1:
            raise ValueError("the reference cannot be a wrong plate")
        canvas[i] = padded(cv2.resize(o, (W, H), interpolation=cv2.INTER_AREA) if o.shape[:2] != (H, W) else o)
    Hc, Wc = canvas[-1].shape[:2]
    hl, wl = Hc // s, Wc // s  # LR canvas
    n_warm = int(rng.integers(cfg.warmup[0], cfg.warmup[1] + 1))
    n = n_warm + k
    g = float(rng.uniform(*cfg.zoom_per_frame))
    blur = float(rng.uniform(*cfg.blur)) * s  # HR px
    noise = float(rng.uniform(*cfg.noise))
    crf = int(rng.integers(cfg.crf[0], cfg.crf[1] + 1))
    corner_sd = float(rng.uniform(*cfg.corner))
    vel = rng.integers(-cfg.drift, cfg.drift + 1, 2)  # whole LR px per frame over the block grid
    margin = cfg.drift * (n - 1) + 2
    # encoded frame: the LR canvas at a moving integer offset inside a larger, even-sized frame
    fw, fh = wl + 2 * margin, hl + 2 * margin
    fw, fh = fw + fw % 2, fh + fh % 2
    centre = np.array([Wc / 2.0, Hc / 2.0])  # HR canvas, pixel-edge convention
    quad_hr = np.array([(ph, ph), (ph + W, ph), (ph + W, ph + H), (ph, ph + H)], np.float64)  # crop rectangle
    frames, quads = [], []
    for t in range(n):
        back = n - 1 - t  # frames before the reference
        z = (1.0 + g) ** (-back)
        shift = np.zeros(2) if back == 0 else rng.normal(0.0, cfg.shake * s, 2)
        A = np.array([[z, 0, (1 - z) * centre[0] + shift[0]], [0, z, (1 - z) * centre[1] + shift[1]]])
        src = canvas.get(t - n_warm, canvas[-1])
        # render: out(p) = src(A^-1 p), in pixel-centre coordinates (edge = centre + 0.5)
        A_c = A.copy()
        A_c[:, 2] += A[:, :2] @ np.array([0.5, 0.5]) - 0.5
        img = cv2.warpAffine(src, A_c, (Wc, Hc), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        img = cv2.GaussianBlur(img, (0, 0), blur * (1.0 if back == 0 else float(rng.uniform(*cfg.blur_jitter))))
        lr = cv2.resize(img, (wl, hl), interpolation=cv2.INTER_AREA).astype(np.float32)
        lr += rng.normal(0.0, noise * float(rng.uniform(0.8, 1.2)), lr.shape).astype(np.float32)
        lr = np.clip(lr + 0.5, 0, 255).astype(np.uint8)
        off = margin + vel * (t - (n - 1) // 2)
        ox, oy = int(np.clip(off[0], 0, fw - wl)), int(np.clip(off[1], 0, fh - hl))
        frames.append(cv2.copyMakeBorder(lr, oy, fh - hl - oy, ox, fw - wl - ox, cv2.BORDER_REPLICATE))
        quad = (quad_hr @ A[:, :2].T + A[:, 2]) / s + np.array([ox, oy])  # LR frame px, edge convention
        quads.append(quad)
    decoded = encode_decode(frames, crf)[n_warm:]
    quads = quads[n_warm:]
    crops = []
    ref_corners = None
    for i, (img, quad) in enumerate(zip(decoded, quads)):
        sd = corner_sd * (cfg.coast_factor if (i < k - 1 and rng.random() < cfg.p_coast) else 1.0)
        jit = quad + rng.normal(0.0, cfg.framing, (1, 2)) + rng.normal(0.0, sd, (4, 2))
        if i == k - 1:
            crops.append(_rectify(img, jit, (W // s, H // s), cv2.INTER_LINEAR))
            ref_corners = jit
        else:
            crops.append(_rectify(img, jit, _edge_size(jit), cv2.INTER_LINEAR))
    # target: the clean HR from the reference's corners (the reference frame has A = identity)
    ox, oy = quads[-1][0] - quad_hr[0] / s
    ref_hr = (ref_corners - np.array([ox, oy])) * s
    target = _rectify(canvas[-1], ref_hr, (W, H), cv2.INTER_CUBIC)
    return crops, target
