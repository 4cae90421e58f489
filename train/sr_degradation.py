"""Real-ESRGAN-style degradation pipeline for super-resolution training pairs.

:func:`realesrgan_degrade` turns an HR crop (H, W, 3) uint8 BGR into an LR crop
(H // scale, W // scale, 3) uint8 BGR through two rounds ("second-order", Wang et al. 2021,
Real-ESRGAN) of

1. blur with a random kernel in the current image's pixels: isotropic / anisotropic Gaussian,
   generalised Gaussian (plateau or heavy tail), linear motion blur, or none;
2. a random resize (up, down or keep; area / bilinear / bicubic);
3. noise: Gaussian (colour or grey) or Poisson (shot noise);
4. JPEG re-compression at a random quality (round 1 always, round 2 sometimes);

then a final resize to exactly (H // scale, W // scale) and one of: JPEG, H.264 re-encoding
(PyAV libx264 at a random CRF, a few frames of the crop encoded and the last one decoded, as a
video codec's inter frames look), or nothing.

:func:`mixed_degrade` draws per call between this pipeline, the simpler one-round
``train.synth.degrade.degrade`` (at a random strength in [0, 1.5]) and a plain bicubic
downscale, so the training family covers clean inputs as well as heavily damaged ones.
Every function is deterministic given its ``numpy.random.Generator``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from train.synth.degrade import crop_to_multiple, degrade, gaussian_kernel, motion_kernel, plain_downscale

_INTERPS = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges of the pipeline. Sigmas and lengths in pixels of the image the step acts on;
    noise sigmas in 0..255 units; probabilities in [0, 1]."""

    blur_prob: float = 0.9
    blur_sigma: tuple[float, float] = (0.2, 2.5)
    motion_prob: float = 0.2  # share of blurs that are motion blur
    motion_length: tuple[float, float] = (2.0, 9.0)
    resize_range: tuple[float, float] = (0.7, 4.0)  # round-1 size, multiples of the LR size (log-uniform, ≤ HR)
    noise_prob: float = 0.8
    gauss_sigma: tuple[float, float] = (1.0, 15.0)
    poisson_scale: tuple[float, float] = (0.05, 2.0)
    poisson_prob: float = 0.35  # share of noise that is Poisson
    jpeg_quality: tuple[int, int] = (30, 95)
    second_order_prob: float = 0.5
    blur2_sigma: tuple[float, float] = (0.2, 1.2)
    gauss2_sigma: tuple[float, float] = (1.0, 10.0)
    h264_prob: float = 0.15  # final re-encoding: H.264, else JPEG (p = final_jpeg_prob) or none
    final_jpeg_prob: float = 0.7
    h264_crf: tuple[int, int] = (20, 38)
    # mixed_degrade: probabilities of the three families (normalised)
    mix_realesrgan: float = 0.5
    mix_simple: float = 0.4
    mix_plain: float = 0.1


def random_blur_kernel(rng: np.random.Generator, sigma: tuple[float, float], motion_prob: float,
                       motion_length: tuple[float, float]) -> np.ndarray:
    """A random normalised (k, k) float32 kernel: iso / aniso Gaussian, generalised Gaussian or motion."""
    theta = float(rng.uniform(0, math.pi))
    if rng.random() < motion_prob:
        return motion_kernel(float(rng.uniform(*motion_length)), theta)
    kind = rng.choice(3, p=[0.45, 0.35, 0.2])
    sx = float(rng.uniform(*sigma))
    sy = sx if kind == 0 else float(rng.uniform(*sigma))
    size = 2 * math.ceil(3 * max(sx, sy)) + 1
    if kind < 2:
        return gaussian_kernel(sx, sy, theta, size)
    # generalised Gaussian exp(-(r²)^(β/2)), β in [0.5, 4]: heavy tails (β<2) or a plateau (β>2)
    beta = float(rng.uniform(0.5, 4.0))
    r = (size - 1) / 2
    y, x = np.mgrid[-r: r + 1, -r: r + 1]
    c, s = math.cos(theta), math.sin(theta)
    xr, yr = c * x + s * y, -s * x + c * y
    q = (xr / max(sx, 1e-3)) ** 2 + (yr / max(sy, 1e-3)) ** 2
    k = np.exp(-0.5 * q ** (beta / 2))
    return (k / k.sum()).astype(np.float32)


def add_noise(img: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig, gauss: tuple[float, float]) -> np.ndarray:
    """Gaussian (colour or grey) or Poisson noise on a uint8 image; returns uint8."""
    f = img.astype(np.float32)
    h, w = img.shape[:2]
    grey = rng.random() < 0.4
    shape = (h, w, 1) if grey else (h, w, 3)
    if rng.random() < cfg.poisson_prob:
        scale = float(rng.uniform(*cfg.poisson_scale))  # noise ~ sqrt(intensity) * scale
        lam = np.clip(f if not grey else f.mean(axis=2, keepdims=True), 0, 255) * 10.0 / 255.0
        n = (rng.poisson(lam).astype(np.float32) - lam) / 10.0 * 255.0 * scale
        f = f + n
    else:
        f = f + rng.standard_normal(shape, dtype=np.float32) * float(rng.uniform(*gauss))
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG encode + decode at ``quality`` (OpenCV)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def h264(img: np.ndarray, crf: int, frames: int = 3, rng: np.random.Generator | None = None) -> np.ndarray:
    """Encode ``frames`` copies of ``img`` (each shifted by up to 1 px when ``rng`` is given) with
    libx264 (yuv420p, CRF ``crf``) through PyAV, decode and return the last frame, (h, w, 3) uint8.
    Odd sizes are edge-padded to even for 4:2:0 and cut back."""
    import av

    h, w = img.shape[:2]
    pad = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    H, W = pad.shape[:2]
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = W, H, "yuv420p"
    codec.options = {"crf": str(int(crf)), "preset": "ultrafast", "tune": "zerolatency"}
    codec.framerate = 25
    packets = []
    for i in range(frames):
        frame_img = pad
        if rng is not None and i < frames - 1:
            dx, dy = (int(v) for v in rng.integers(-1, 2, 2))
            frame_img = np.roll(pad, (dy, dx), axis=(0, 1))
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_img), format="bgr24")
        vf.pts = i
        packets += codec.encode(vf)
    packets += codec.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    out = None
    for p in packets:
        for f in decoder.decode(p):
            out = f.to_ndarray(format="bgr24")
    for f in decoder.decode(None):
        out = f.to_ndarray(format="bgr24")
    if out is None:
        return img
    return np.ascontiguousarray(out[:h, :w])


def _blur(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT101)


def realesrgan_degrade(hr: np.ndarray, scale: int, rng: np.random.Generator,
                       cfg: DegradationConfig = DegradationConfig()) -> np.ndarray:
    """HR (H, W, 3) uint8 BGR → LR (H // scale, W // scale, 3) uint8 BGR; see the module doc.
    The HR image is first cropped (bottom / right) to a multiple of ``scale``."""
    hr = crop_to_multiple(hr, scale)
    H, W = hr.shape[:2]
    oh, ow = H // scale, W // scale
    img = hr
    # ---- round 1, at HR resolution
    if rng.random() < cfg.blur_prob:
        img = _blur(img, random_blur_kernel(rng, cfg.blur_sigma, cfg.motion_prob, cfg.motion_length))
    lo, hi = cfg.resize_range[0], min(cfg.resize_range[1], float(scale))
    f = math.exp(rng.uniform(math.log(lo), math.log(hi))) / scale  # log-uniform, in LR-size multiples
    nh, nw = max(2, round(H * f)), max(2, round(W * f))
    img = cv2.resize(img, (nw, nh), interpolation=_INTERPS[int(rng.integers(3))])
    if rng.random() < cfg.noise_prob:
        img = add_noise(img, rng, cfg, cfg.gauss_sigma)
    img = jpeg(img, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    # ---- round 2 (second order), at the intermediate resolution
    if rng.random() < cfg.second_order_prob:
        if rng.random() < cfg.blur_prob:
            img = _blur(img, random_blur_kernel(rng, cfg.blur2_sigma, cfg.motion_prob / 2, (1.5, 4.0)))
        if rng.random() < cfg.noise_prob:
            img = add_noise(img, rng, cfg, cfg.gauss2_sigma)
    # ---- final resize to the exact LR size, then codec
    img = cv2.resize(img, (ow, oh), interpolation=_INTERPS[int(rng.integers(3))])
    u = rng.random()
    if u < cfg.h264_prob:
        img = h264(img, int(rng.integers(cfg.h264_crf[0], cfg.h264_crf[1] + 1)), rng=rng)
    elif u < cfg.h264_prob + (1 - cfg.h264_prob) * cfg.final_jpeg_prob:
        img = jpeg(img, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return np.ascontiguousarray(img)


def mixed_degrade(hr: np.ndarray, scale: int, rng: np.random.Generator,
                  cfg: DegradationConfig = DegradationConfig()) -> np.ndarray:
    """One LR version of ``hr`` from a randomly drawn family: :func:`realesrgan_degrade`,
    ``train.synth.degrade.degrade`` at strength U(0, 1.5), or a plain bicubic downscale.
    Returns (H // scale, W // scale, 3) uint8."""
    p = np.array([cfg.mix_realesrgan, cfg.mix_simple, cfg.mix_plain], float)
    kind = rng.choice(3, p=p / p.sum())
    if kind == 0:
        return realesrgan_degrade(hr, scale, rng, cfg)
    if kind == 1:
        return degrade(hr, scale, rng, strength=float(rng.uniform(0.0, 1.5)))
    return plain_downscale(hr, scale)
