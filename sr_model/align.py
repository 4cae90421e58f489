"""Sub-pixel alignment of a track's plate crops onto a reference crop (ECC, OpenCV).

A track gives successive crops of the same plate, displaced by detector jitter and motion by a
fraction of a pixel to a few pixels. :func:`estimate_alignment` finds the warp that maps the
reference crop's pixel grid onto another crop with :func:`cv2.findTransformECC` (enhanced
correlation coefficient maximisation, Evangelidis & Psarakis 2008), run on grey crops enlarged
``upsample`` times (sub-pixel precision on 12-20 px tall crops needs the finer grid), started
from a :func:`cv2.phaseCorrelate` translation so shifts of a few pixels converge too. Both steps
run on band-passed, Hanning-windowed crops; :func:`align_sequence` prepares the reference once
for all of a track's crops.
:func:`warp_to_reference` then resamples the crop onto the reference grid
(:func:`cv2.warpAffine`, ``WARP_INVERSE_MAP``).

Warps are 2×3 float32 affine matrices in crop pixels (OpenCV convention: pixel centres at
integer coordinates): a reference pixel at (x, y) shows the same point as the crop at
``W @ (x, y, 1)``; a pure translation is ``[[1, 0, dx], [0, 1, dy]]`` where (dx, dy) is how far
the content moved from the reference to the crop, in px.

Crops that do not align (ECC fails to converge, or its final correlation is under
``min_ecc``: another plate, an occlusion, a bad crop) are reported ``ok=False`` so callers drop
them instead of averaging them in.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MOTIONS = {"translation": cv2.MOTION_TRANSLATION, "affine": cv2.MOTION_AFFINE}
# Band-passed ECC correlation under which a crop is dropped. Measured on ×4 `degrade` crops (60 per
# set): same plate, other frame ≥ 0.6 in 95 % (openalpr_us) / 100 % (synthetic) of pairs; another
# plate ≥ 0.6 in 3 % / 0 %.
DEFAULT_MIN_ECC = 0.60
BAND_SIGMA = 2.5  # LR px, high-pass scale of the ECC input (measured: separates same / other plate best)
MAX_SHIFT_FRAC = 0.25  # a translation over this fraction of the crop height/width counts as a failure
ECC_ITERATIONS = 60
# ECC stops when its update is under this many px of the enlarged grid: 1e-3 (0.0005 crop px at ×2)
# gave the same shift errors, kept and rejected counts as 1e-4 on 200 ×4 `degrade` pairs, ~10 % faster.
ECC_EPS = 1e-3


@dataclass(frozen=True)
class Alignment:
    """Result of aligning one crop to the reference.

    warp: (2, 3) float32 affine, reference px → crop px (identity when ``ok`` is False).
    ecc: final ECC correlation coefficient in [-1, 1] (nan when ECC failed to converge).
    ok: True when the crop may be fused (converged, ``ecc >= min_ecc``, plausible warp).
    """

    warp: np.ndarray
    ecc: float
    ok: bool

    @property
    def shift(self) -> tuple[float, float]:
        """(dx, dy) px, the translation part of the warp."""
        return float(self.warp[0, 2]), float(self.warp[1, 2])


def _identity() -> np.ndarray:
    return np.eye(2, 3, dtype=np.float32)


def _grey(img: np.ndarray) -> np.ndarray:
    """(h, w) float32 in [0, 1] from (h, w, 3) BGR or (h, w) grey, uint8 or float in [0, 1]."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    g = g.astype(np.float32)
    return g / 255.0 if img.dtype == np.uint8 else g


def band_pass(grey: np.ndarray, sigma: float) -> np.ndarray:
    """``grey`` minus its Gaussian blur (sigma px): keeps strokes and edges, drops the plate-vs-car
    brightness layout that makes any two plate crops correlate (a real-photo plate pair of
    different plates scores ECC ≈ 0.97 on raw grey, far less on this)."""
    return grey - cv2.GaussianBlur(grey, (0, 0), sigma)


def resize_to(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` resized to ``size`` = (width, height) px (area when shrinking, linear otherwise); as is if equal."""
    h, w = img.shape[:2]
    if (w, h) == tuple(size):
        return img
    shrink = size[0] * size[1] < w * h
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _prepare(img: np.ndarray, u: int) -> np.ndarray:
    """The ECC input: grey, enlarged ``u`` times (bicubic), band-passed."""
    h, w = img.shape[:2]
    return band_pass(cv2.resize(_grey(img), (w * u, h * u), interpolation=cv2.INTER_CUBIC), BAND_SIGMA * u)


@dataclass(frozen=True)
class _Reference:
    """A reference crop prepared once for aligning several crops to it."""

    image: np.ndarray  # band-passed, enlarged grey, multiplied by ``window``
    window: np.ndarray  # Hanning window (phase correlation and ECC both run on windowed crops)
    upsample: int
    flat: bool


def _prepare_reference(reference: np.ndarray, upsample: int) -> _Reference:
    h, w = reference.shape[:2]
    u = max(1, int(upsample))
    ref = _prepare(reference, u)
    window = cv2.createHanningWindow((w * u, h * u), cv2.CV_32F)
    return _Reference(ref * window, window, u, float(ref.std()) < 1e-4)


def _align_prepared(frame: np.ndarray, ref: _Reference, motion: str, min_ecc: float, iterations: int,
                    eps: float) -> Alignment:
    h, w = frame.shape[:2]
    u = ref.upsample
    img = _prepare(frame, u)
    if ref.flat or float(img.std()) < 1e-4:
        return Alignment(_identity(), float("nan"), False)  # flat crop: nothing to align on
    # Both crops Hanning-windowed (the edges, where replicated borders and crop jitter live, weigh
    # little) for phase correlation and ECC alike. Before, ECC saw windowed crops only when
    # cv2.phaseCorrelate had windowed them in place, which it does when their size is DFT-optimal
    # (most plate crops at upsample 2); DEFAULT_MIN_ECC was measured that way.
    img *= ref.window
    (dx0, dy0), _ = cv2.phaseCorrelate(ref.image, img)
    warp = _identity()
    if abs(dx0) < MAX_SHIFT_FRAC * w * u and abs(dy0) < MAX_SHIFT_FRAC * h * u:
        warp[:, 2] = (dx0, dy0)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    try:
        ecc, warp = cv2.findTransformECC(ref.image, img, warp, MOTIONS[motion], criteria, None, 3)
    except cv2.error:
        return Alignment(_identity(), float("nan"), False)
    # Upsampled px p' = u p + (u - 1) / 2 (pixel-centre convention of cv2.resize); map the warp back.
    c = (u - 1) / 2.0
    A = warp[:, :2].astype(np.float64)
    t = (A @ np.array([c, c]) + warp[:, 2] - c) / u
    out = np.concatenate([A, t[:, None]], axis=1).astype(np.float32)
    plausible = (abs(t[0]) < MAX_SHIFT_FRAC * w and abs(t[1]) < MAX_SHIFT_FRAC * h
                 and np.all(np.abs(A - np.eye(2)) < 0.2))
    ok = bool(np.isfinite(ecc) and ecc >= min_ecc and plausible)
    return Alignment(out if ok else _identity(), float(ecc), ok)


def estimate_alignment(frame: np.ndarray, reference: np.ndarray, motion: str = "translation",
                       upsample: int = 2, min_ecc: float = DEFAULT_MIN_ECC, iterations: int = ECC_ITERATIONS,
                       eps: float = ECC_EPS) -> Alignment:
    """Warp taking ``reference``'s pixel grid onto ``frame`` (both (h, w, 3) BGR or (h, w) grey, same size).

    motion: ``"translation"`` (2 parameters) or ``"affine"`` (6). upsample: both crops are
    enlarged this many times (bicubic) before ECC; the warp is mapped back to crop px.
    """
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {sorted(MOTIONS)}, got {motion!r}")
    if frame.shape[:2] != reference.shape[:2]:
        raise ValueError(f"frame {frame.shape[:2]} and reference {reference.shape[:2]} differ in size")
    return _align_prepared(frame, _prepare_reference(reference, upsample), motion, min_ecc, iterations, eps)


def warp_to_reference(frame: np.ndarray, warp: np.ndarray, size: tuple[int, int] | None = None,
                      interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``frame`` resampled onto the reference grid: out(x, y) = frame(warp @ (x, y, 1)).

    size: (width, height) px of the output (default: the frame's). Edges are replicated.
    Same dtype and channels as ``frame``.
    """
    h, w = frame.shape[:2]
    size = size or (w, h)
    return cv2.warpAffine(frame, np.asarray(warp, np.float32), size, flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


@dataclass
class AlignedSequence:
    """A track's crops on the reference's grid.

    frames: list of (h, w, 3) float32 BGR in [0, 1], the reference (last) included, at the
        reference's size; a dropped crop is replaced by the reference (and flagged in ``valid``).
    valid: (K,) bool, True for the reference and every crop that aligned.
    alignments: one :class:`Alignment` per crop (the reference's is the identity, ecc 1).
    """

    frames: list[np.ndarray]
    valid: np.ndarray
    alignments: list[Alignment]

    @property
    def n_used(self) -> int:
        return int(self.valid.sum())

    @property
    def n_dropped(self) -> int:
        return int((~self.valid).sum())


def align_sequence(crops: Sequence[np.ndarray], motion: str = "translation", upsample: int = 2,
                   min_ecc: float = DEFAULT_MIN_ECC) -> AlignedSequence:
    """Align every crop of a track onto the last one (the reference).

    crops: (h_i, w_i, 3) uint8 BGR, oldest first; each is first resized to the reference's size.
    """
    if not crops:
        raise ValueError("align_sequence needs at least one crop")
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {sorted(MOTIONS)}, got {motion!r}")
    reference = crops[-1]
    h, w = reference.shape[:2]
    ref_f = reference.astype(np.float32) / 255.0
    prepared = _prepare_reference(reference, upsample) if len(crops) > 1 else None  # once for all crops
    frames, valid, aligns = [], [], []
    for crop in crops[:-1]:
        crop = resize_to(crop, (w, h))
        a = _align_prepared(crop, prepared, motion, min_ecc, ECC_ITERATIONS, ECC_EPS)
        if a.ok:
            frames.append(warp_to_reference(crop.astype(np.float32) / 255.0, a.warp))
        else:
            frames.append(ref_f)
        valid.append(a.ok)
        aligns.append(a)
    frames.append(ref_f)
    valid.append(True)
    aligns.append(Alignment(_identity(), 1.0, True))
    return AlignedSequence(frames, np.array(valid, bool), aligns)
