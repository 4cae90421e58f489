"""Legibility benchmark: can an OCR we did not train read our enhanced plates?

    python -m benchmarks.legibility --out benchmarks/results/legibility [--quick]
        [--generator PATH ...] [--no-shipped] [--data DIR]
    python -m benchmarks.legibility --out benchmarks/results/fusion --fusion [PATH] --frames 5 \
        --scales 4 --degradations degrade --interpolations bicubic

As in TextZoom, LPSRGAN and UFPR-SR-Plates, super-resolution is judged by a fixed, independent
recogniser (RapidOCR, :mod:`benchmarks.ocr`) reading each method's output, next to PSNR / SSIM.

Inputs (:mod:`benchmarks.plate_sets`): real plate crops from openalpr ``us`` and ``eu``
(reported separately; ``eu`` is evaluation-only data) and seeded synthetic plates, all at a
canonical 60 px HR height; LR versions at ×2, ×3, ×4 (LR 30, 20, 15 px tall) by the seeded
``degrade`` model and by a plain bicubic downscale. Every method gets the same LR image and
returns an image at the HR size, which is what the OCR and the image metrics see.

Methods: ``HR`` (the clean crop: the ceiling), ``nearest``, ``bicubic``, ``lanczos`` (OpenCV)
and one per generator weights file. A ×4 generator on a ×2 / ×3 input super-resolves ×4 and
area-resizes the result down to the HR size (noted in the outputs). Further methods plug in by
implementing :class:`Method` (``frames > 1`` asks for that many LR frames per crop, e.g. for
multi-frame fusion) and passing them to :func:`run`.

Multi-frame methods (``--fusion [PATH]``, default the shipped ``sr_model/weights/fusion_x4``;
``--frames K``, default 5): each crop gets K LR frames (``plate_sets.make_lr``: frame 0 is the
single-image methods' input, frames 1.. are the same HR crop moved by a seeded sub-pixel offset and
degraded with their own seed), and the run adds

* ``fused``: :class:`sr_model.fusion.FusionEnhancer` on the K frames, frame 0 the reference;
* ``voted_<single>``: the OCR reads of a single-image method's outputs on each of the K frames,
  combined by :func:`stream.reads.vote_reads` (score-weighted per-character vote), for bicubic and
  every generator in the run;
* ``voted_fused``: the same vote over K fused outputs, each with another frame as the reference.

Voted methods are read-level: they have no image metrics (their image in the gallery is the
frame-0 output). A cost table (ms per output, single-frame generator vs fusion at 32 × 96 LR,
K frames, a batch of tracks, alignment included) is measured and written with the results.

Outputs in ``--out``: ``legibility.json`` (config, sets, per-condition figures with 95 % CIs,
timings), ``legibility.md`` (the table), ``reads.csv.gz`` (every OCR read), ``gallery.png`` and
``accuracy_vs_height.png``.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from tqdm import tqdm

from benchmarks.ocr import PlateReader, Read, char_accuracy, exact_match, normalise_plate
from benchmarks.plate_sets import (DEGRADATIONS, HR_HEIGHT, MARGIN_H, MARGIN_W, LoadReport, PlateCrop, load_sets,
                                   lr_height, make_lr)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; capped so means and JSON stay finite
HR = "HR"


# --------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class LRInput:
    """What a method gets for one crop.

    frames: LR frames, each (h, w, 3) uint8 BGR; frames[0] is the reference every
        single-image method uses, the others exist only if some method asked for them.
    scale: HR size / LR size.
    hr_size: (width, height) px of the image the method must return.
    """

    frames: tuple[np.ndarray, ...]
    scale: int
    hr_size: tuple[int, int]


class Method(Protocol):
    """An upscaler under test: LR inputs in, (hr_size[1], hr_size[0], 3) uint8 BGR images out."""

    name: str
    frames: int  # LR frames per crop it needs (1 = single image)

    def upscale(self, inputs: Sequence[LRInput]) -> list[np.ndarray]: ...

    def describe(self) -> dict: ...


@dataclass
class Interpolation:
    """Classical OpenCV resize of frame 0 straight to the HR size."""

    name: str
    interpolation: int
    frames: int = 1

    def upscale(self, inputs: Sequence[LRInput]) -> list[np.ndarray]:
        return [cv2.resize(x.frames[0], x.hr_size, interpolation=self.interpolation) for x in inputs]

    def describe(self) -> dict:
        return {"name": self.name, "kind": "interpolation", "opencv_flag": self.interpolation}


@dataclass
class Generator:
    """A super-resolution generator (``sr_model.enhancer.PlateEnhancer``) on frame 0.

    Its output (generator scale × LR size) is resized to the HR size when the benchmark scale
    differs: area when shrinking (×4 model on a ×2 / ×3 input), bicubic when enlarging.
    """

    name: str
    weights: Path
    frames: int = 1
    precision: str = "fp32"  # "int8": the int8 ONNX Runtime back end (``auto`` resolves it, sr_model.backends)
    backend: str = "auto"
    _enhancer: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from sr_model.enhancer import EnhancerConfig, PlateEnhancer

        # No shrinking of tall crops: benchmark LR crops are at most HR_HEIGHT / 2 px tall.
        self._enhancer = PlateEnhancer(self.weights, EnhancerConfig(max_input_height=HR_HEIGHT, precision=self.precision,
                                                                    backend=self.backend))

    @property
    def scale(self) -> int:
        return int(self._enhancer.scale)  # type: ignore[attr-defined]

    def upscale(self, inputs: Sequence[LRInput]) -> list[np.ndarray]:
        sr = self._enhancer.enhance([x.frames[0] for x in inputs])  # type: ignore[attr-defined]
        out = []
        for x, y in zip(inputs, sr):
            if (y.shape[1], y.shape[0]) != x.hr_size:
                shrink = y.shape[0] > x.hr_size[1]
                y = cv2.resize(y, x.hr_size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
            out.append(y)
        return out

    def describe(self) -> dict:
        return {"name": self.name, "kind": "generator", "weights": str(self.weights), "scale": self.scale,
                "precision": self.precision, "backend": self._enhancer.backend,  # type: ignore[attr-defined]
                "info": self._enhancer.info,  # type: ignore[attr-defined]
                "note": f"×{self.scale} model; at other scales its output is resized to the HR size "
                        "(area down, bicubic up)"}


INTERPOLATIONS: dict[str, int] = {"nearest": cv2.INTER_NEAREST, "bicubic": cv2.INTER_CUBIC,
                                  "lanczos": cv2.INTER_LANCZOS4}


def interpolation_methods(names: Sequence[str] = tuple(INTERPOLATIONS)) -> list[Method]:
    """The classical baselines (all three by default)."""
    return [Interpolation(n, INTERPOLATIONS[n]) for n in names]


def _to_hr_size(y: np.ndarray, hr_size: tuple[int, int]) -> np.ndarray:
    """An SR output resized to (width, height) ``hr_size`` if needed: area down, bicubic up."""
    if (y.shape[1], y.shape[0]) == hr_size:
        return y
    shrink = y.shape[0] > hr_size[1]
    return cv2.resize(y, hr_size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


@dataclass
class Fused:
    """Multi-frame fusion (:class:`sr_model.fusion.FusionEnhancer`) of all ``frames`` LR frames,
    ``reference`` (default frame 0, the single-image methods' input) as the reference; output
    resized to the HR size like :class:`Generator`."""

    name: str
    weights: Path | None
    frames: int = 5
    reference: int = 0
    frames_used: int = 0
    frames_dropped: int = 0
    _enhancer: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from sr_model.fusion import FusionConfig, FusionEnhancer

        self._enhancer = FusionEnhancer(self.weights, FusionConfig(k=self.frames, max_input_height=HR_HEIGHT))

    def sequence(self, x: LRInput, reference: int | None = None) -> list[np.ndarray]:
        """The frames oldest first with frame ``reference`` last (FusionEnhancer's convention)."""
        r = self.reference if reference is None else reference
        return [f for i, f in enumerate(x.frames) if i != r] + [x.frames[r]]

    def fuse(self, inputs: Sequence[LRInput], reference: int | None = None) -> list:
        """FusedPlate per input (image at the generator's scale, frames used / dropped)."""
        out = self._enhancer.enhance([self.sequence(x, reference) for x in inputs])  # type: ignore[attr-defined]
        if reference is None:  # the ``fused`` method's own calls: count what alignment kept
            self.frames_used += sum(p.frames_used for p in out)
            self.frames_dropped += sum(p.frames_dropped for p in out)
        return out

    def upscale(self, inputs: Sequence[LRInput]) -> list[np.ndarray]:
        return [_to_hr_size(f.image, x.hr_size) for x, f in zip(inputs, self.fuse(inputs))]

    def describe(self) -> dict:
        enh = self._enhancer
        return {"name": self.name, "kind": "fusion", "weights": str(self.weights or "shipped"), "frames": self.frames,
                "scale": enh.scale, "min_ecc": enh.config.min_ecc, "info": enh.info,  # type: ignore[attr-defined]
                "frames_used_total": self.frames_used, "frames_dropped_total": self.frames_dropped,
                "note": f"K = {self.frames} frames, frame {self.reference} the reference; output resized to the HR "
                        "size at other scales"}


@dataclass
class Voted:
    """A read-level method: ``votes`` images per crop are read by the OCR and the reads combined by
    :func:`stream.reads.vote_reads`. ``images(inputs)`` gives, per crop, the ``votes`` images
    (each at the HR size); its first image stands for the method in the gallery."""

    name: str
    base: object  # the single-image Method (voting over frames) or a Fused (voting over references)
    frames: int = 5
    over: str = "frames"  # "frames": base on each frame alone; "references": fusion with each frame as reference

    @property
    def votes(self) -> int:
        return self.frames

    def images(self, inputs: Sequence[LRInput]) -> list[list[np.ndarray]]:
        per_vote: list[list[np.ndarray]] = []
        for f in range(self.frames):
            if self.over == "frames":
                per_vote.append(self.base.upscale(  # type: ignore[attr-defined]
                    [LRInput((x.frames[f],), x.scale, x.hr_size) for x in inputs]))
            else:
                fused = self.base.fuse(inputs, reference=f)  # type: ignore[attr-defined]
                per_vote.append([_to_hr_size(p.image, x.hr_size) for x, p in zip(inputs, fused)])
        return [[per_vote[f][i] for f in range(self.frames)] for i in range(len(inputs))]

    def upscale(self, inputs: Sequence[LRInput]) -> list[np.ndarray]:
        return [ims[0] for ims in self.images(inputs)]

    def describe(self) -> dict:
        what = (f"{self.base.name} on each of the {self.frames} frames" if self.over == "frames"  # type: ignore[attr-defined]
                else f"{self.frames} fused outputs, each frame in turn the reference")
        return {"name": self.name, "kind": "vote", "base": self.base.name, "votes": self.frames,  # type: ignore[attr-defined]
                "note": f"stream.reads.vote_reads over the OCR reads of {what}; no image metrics"}


def fusion_methods(weights: Path | None, frames: int, singles: Sequence[Method]) -> list[Method]:
    """``fused``, ``voted_<m>`` for each single-image method ``m`` (not nearest / lanczos) and ``voted_fused``."""
    fused = Fused("fused", weights, frames)
    voted: list[Method] = [Voted(f"voted_{m.name}", m, frames) for m in singles if m.name not in ("nearest", "lanczos")]
    return [fused, *voted, Voted("voted_fused", fused, frames, over="references")]


def generator_methods(paths: Sequence[Path]) -> list[Method]:
    """One :class:`Generator` per weights file, named by file stem (made unique)."""
    methods: list[Method] = []
    names: set[str] = set()
    for p in paths:
        name, k = p.stem, 2
        while name in names:
            name, k = f"{p.stem}_{k}", k + 1
        names.add(name)
        methods.append(Generator(name, p))
    return methods


# --------------------------------------------------------------------------- metrics
def image_quality(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-pair (PSNR dB capped at :data:`PSNR_CAP_DB`, SSIM) of ``preds[i]`` against ``targets[i]``.

    preds[i], targets[i]: (H, W, 3) uint8 BGR of one shape (shapes may differ between pairs;
    pairs of equal shape share one batched call). Computed by torchmetrics on RGB in [0, 1]
    (data_range 1; SSIM Gaussian window 11, sigma 1.5), averaged over all three channels.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    def to_t(imgs: list[np.ndarray]) -> torch.Tensor:
        a = np.stack([im[..., ::-1] for im in imgs]).astype(np.float32) / 255.0
        return torch.from_numpy(a).permute(0, 3, 1, 2)

    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        if p.shape != t.shape:
            raise ValueError(f"pair {i}: prediction {p.shape} vs target {t.shape}")
        groups[p.shape].append(i)
    psnr_out, ssim_out = [0.0] * len(preds), [0.0] * len(preds)
    for idx in groups.values():
        p, t = to_t([preds[i] for i in idx]), to_t([targets[i] for i in idx])
        psnr = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
        ssim = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none")
        psnr = torch.nan_to_num(psnr, posinf=PSNR_CAP_DB).clamp(max=PSNR_CAP_DB)
        for k, i in enumerate(idx):
            psnr_out[i], ssim_out[i] = float(psnr[k]), float(ssim[k])
    return psnr_out, ssim_out


def wilson_ci(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion k / n, in percent."""
    from scipy.stats import binomtest

    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return (100 * ci.low, 100 * ci.high)


# --------------------------------------------------------------------------- run
@dataclass
class RunConfig:
    """What one benchmark run covers."""

    scales: tuple[int, ...] = (2, 3, 4)
    degradations: tuple[str, ...] = DEGRADATIONS
    n_synthetic: int = 300
    limit: int | None = None  # plates per real set (None = all)
    seed: int = 0
    gallery_rows: int = 4  # plates per set in the gallery
    threads: int = 1  # torch and onnxruntime threads: small tensors, often a busy machine


@dataclass
class Results:
    """Every read (one dict per set × plate × condition × method) plus gallery material."""

    reads: list[dict] = field(default_factory=list)
    gallery: list[dict] = field(default_factory=list)
    timing_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def _record(res: Results, crop: PlateCrop, scale: int, degradation: str, method: str, text: str, score: float,
            psnr: float | None, ssim: float | None) -> None:
    res.reads.append({
        "set": crop.set_name, "plate": crop.name, "truth": crop.text, "scale": scale, "degradation": degradation,
        "lr_height": lr_height(scale) if scale else HR_HEIGHT, "method": method, "read": text,
        "read_norm": normalise_plate(text), "score": round(score, 4), "exact": exact_match(text, crop.text),
        "char_acc": char_accuracy(text, crop.text), "psnr_db": psnr, "ssim": ssim,
    })


def _timed(res: Results, key: str, fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    res.timing_s[key] += time.perf_counter() - t
    return out


def lr_inputs(crops: list[PlateCrop], scale: int, degradation: str, seed: int, frames: int) -> list[LRInput]:
    """The LR version of every crop (crop i seeded by its index, see ``plate_sets.make_lr``)."""
    return [LRInput(tuple(make_lr(c, i, scale, degradation, seed, frames)), scale, (c.hr.shape[1], c.hr.shape[0]))
            for i, c in enumerate(crops)]


def evaluate_condition(crops: list[PlateCrop], inputs: list[LRInput], methods: Sequence[Method],
                       reader: PlateReader, res: Results,
                       degradation: str) -> tuple[dict[str, list[np.ndarray]], list[list[str]]]:
    """Upscale, read and score one (scale, ``degradation``) through every method.

    Image methods: one output per crop, read once, PSNR / SSIM against HR. Voted methods
    (``votes`` attribute): several images per crop, all read, reads combined by
    :func:`stream.reads.vote_reads` (the voted text and its confidence are recorded; no image
    metrics). Returns the outputs per method (a voted method's first image) and the reads
    [crop][method] (for the gallery).
    """
    from stream.reads import vote_reads

    outs: dict[str, list[np.ndarray]] = {}
    many: dict[str, list[list[np.ndarray]]] = {}
    for m in methods:
        if getattr(m, "votes", 0):
            many[m.name] = _timed(res, f"upscale:{m.name}", m.images, inputs)  # type: ignore[attr-defined]
            outs[m.name] = [ims[0] for ims in many[m.name]]
        else:
            outs[m.name] = _timed(res, f"upscale:{m.name}", m.upscale, inputs)
    names = [n for n in outs if n not in many]
    flat = [outs[n][i] for i in range(len(crops)) for n in names]  # crop-major
    reads = _timed(res, "ocr", reader.read, flat)
    psnr, ssim = _timed(res, "image_metrics", image_quality, flat, [c.hr for c in crops for _ in names])
    texts: list[dict[str, str]] = [{} for _ in crops]
    for k, r in enumerate(reads):
        i, j = divmod(k, len(names))
        _record(res, crops[i], inputs[i].scale, degradation, names[j], r.text, r.score, psnr[k], ssim[k])
        texts[i][names[j]] = r.text
    for name, per_crop in many.items():
        flat_v = [im for ims in per_crop for im in ims]
        rv: list[Read] = _timed(res, "ocr", reader.read, flat_v)
        start = 0
        for i, ims in enumerate(per_crop):
            v = vote_reads(rv[start:start + len(ims)])
            start += len(ims)
            text, score = (v.text, v.confidence) if v is not None else ("", 0.0)
            _record(res, crops[i], inputs[i].scale, degradation, name, text, score, None, None)
            texts[i][name] = text
    return outs, [[t[n] for n in outs] for t in texts]


def evaluate_set(crops: list[PlateCrop], methods: Sequence[Method], reader: PlateReader, cfg: RunConfig,
                 res: Results, bar: tqdm) -> None:
    """Read HR once, then every (scale, degradation) LR version through every method."""
    hr_reads = _timed(res, "ocr", reader.read, [c.hr for c in crops])
    for c, r in zip(crops, hr_reads):
        _record(res, c, 0, "-", HR, r.text, r.score, None, None)
    bar.update(1)
    n_frames = max([m.frames for m in methods], default=1)
    g_cond = (max(cfg.scales), "degrade" if "degrade" in cfg.degradations else cfg.degradations[0])
    g_idx = np.linspace(0, len(crops) - 1, min(cfg.gallery_rows, len(crops))).round().astype(int)
    for scale in cfg.scales:
        for deg in cfg.degradations:
            bar.set_description(f"{crops[0].set_name} ×{scale} {deg}")
            inputs = _timed(res, "degrade", lr_inputs, crops, scale, deg, cfg.seed, n_frames)
            outs, reads = evaluate_condition(crops, inputs, methods, reader, res, deg)
            if (scale, deg) == g_cond:
                for i in sorted(set(g_idx.tolist())):
                    c = crops[i]
                    res.gallery.append({
                        "set": c.set_name, "truth": c.text, "lr": inputs[i].frames[0], "hr": c.hr,
                        "outputs": {n: outs[n][i] for n in outs}, "scale": scale, "degradation": deg,
                        "reads": dict(zip(outs, reads[i])) | {HR: hr_reads[i].text}})
            bar.update(1)


def run(sets: dict[str, list[PlateCrop]], methods: Sequence[Method], cfg: RunConfig,
        reader: PlateReader | None = None) -> Results:
    """Evaluate every method on every set; see the module doc."""
    reader = reader or PlateReader(threads=cfg.threads)
    res = Results()
    steps = sum(1 + len(cfg.scales) * len(cfg.degradations) for crops in sets.values() if crops)
    with tqdm(total=steps, unit="step", file=sys.stderr) as bar:
        for crops in sets.values():
            if crops:
                evaluate_set(crops, methods, reader, cfg, res, bar)
    return res


# --------------------------------------------------------------------------- cost
def cost_sequences(n_tracks: int, frames: int, lr_size: tuple[int, int], seed: int = 0) -> list[list[np.ndarray]]:
    """``n_tracks`` synthetic tracks of ``frames`` LR crops of ``lr_size`` = (width, height) px: a
    rendered plate at 4× that size, moved by up to ±2 HR px per frame, each frame ``degrade``d ×4."""
    from benchmarks.plate_sets import _shift, synthetic_set
    from train.synth.degrade import degrade

    rng = np.random.default_rng(seed)
    w, h = lr_size
    seqs = []
    for c in synthetic_set(n_tracks, seed=seed + 1):
        hr = cv2.resize(c.hr, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC)
        seq = []
        for f in range(frames):
            dx, dy = rng.uniform(-2, 2, 2) if f < frames - 1 else (0.0, 0.0)
            seq.append(degrade(_shift(hr, float(dx), float(dy)), 4, rng, strength=1.0))
        seqs.append(seq)
    return seqs


def measure_cost(fusion_weights: Path | None, generator_weights: Path | None, frames: int = 5,
                 lr_size: tuple[int, int] = (96, 32), n_tracks: int = 16, repeats: int = 3) -> dict:
    """ms per output of the single-frame generator (``PlateEnhancer``, one crop per track) and of
    fusion (``FusionEnhancer``, ``frames`` crops per track, alignment included), one batch of
    ``n_tracks`` tracks per call, median of ``repeats`` timed calls after a warm-up call, on the
    torch threads in force. lr_size: (width, height) px of every LR crop."""
    from sr_model.enhancer import EnhancerConfig, PlateEnhancer
    from sr_model.fusion import FusionConfig, FusionEnhancer

    seqs = cost_sequences(n_tracks, frames, lr_size)
    single = PlateEnhancer(generator_weights, EnhancerConfig(batch_size=n_tracks))
    fusion = FusionEnhancer(fusion_weights, FusionConfig(k=frames, batch_size=n_tracks))
    refs = [s[-1] for s in seqs]

    calls = {"single": lambda: single.enhance(refs), "fused": lambda: fusion.enhance(seqs),
             "align": lambda: [fusion.align(s) for s in seqs]}
    wall: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for fn in calls.values():
        fn()  # warm-up
    for _ in range(repeats):  # interleaved, so that load from other processes hits every path alike
        for k, fn in calls.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)

    def ms(d: dict[str, list[float]], k: str) -> float:
        return 1000 * statistics.median(d[k]) / n_tracks

    out = {"lr_size_wh": list(lr_size), "frames": frames, "tracks_per_batch": n_tracks, "repeats": repeats,
           "threads": torch.get_num_threads(), "opencv_threads": cv2.getNumThreads(), "single_backend": single.backend,
           "single_precision": single.precision, "fusion_precision": fusion.precision,
           "alignment": f"{fusion.motion} ECC on ×{fusion.upsample} crops",
           "note": "per output = per track; medians of interleaved calls; cpu = process CPU time (robust to "
                   "other jobs on the machine), wall = elapsed"}
    for clock, d in (("cpu", cpu), ("wall", wall)):
        single_ms, fused_ms, align_ms = ms(d, "single"), ms(d, "fused"), ms(d, "align")
        out[clock] = {"single_ms_per_output": round(single_ms, 3), "fused_ms_per_output": round(fused_ms, 3),
                      "fused_align_ms_per_output": round(align_ms, 3),
                      "fused_model_ms_per_output": round(fused_ms - align_ms, 3),
                      "single_outputs_per_s": round(1000 / single_ms, 1),
                      "fused_outputs_per_s": round(1000 / fused_ms, 1),
                      "fused_over_single": round(fused_ms / single_ms, 3)}
    return out


def cost_markdown(cost: dict) -> str:
    """The cost table: one row per path, CPU-time and wall-clock ms per output."""
    w, h = cost["lr_size_wh"]
    c, wl = cost["cpu"], cost["wall"]
    s_c, s_w = c["single_ms_per_output"], wl["single_ms_per_output"]
    rows = [("single-frame generator", "single_ms_per_output"), ("fusion, total (ECC alignment + model)",
            "fused_ms_per_output"), ("· of which ECC alignment", "fused_align_ms_per_output"),
            ("· of which fusion model", "fused_model_ms_per_output")]
    lines = [f"LR crops {w} × {h} px, K = {cost['frames']}, batches of {cost['tracks_per_batch']} tracks, "
             f"{cost['threads']} torch thread(s), {cost.get('opencv_threads', '?')} OpenCV thread(s), median of "
             f"{cost['repeats']} interleaved calls; single-frame generator: {cost['single_backend']} "
             f"{cost.get('single_precision', '')}; fusion: {cost.get('alignment', 'ECC')}, decoder "
             f"{cost.get('fusion_precision', 'fp32')}. CPU = process CPU time, wall = elapsed.", "",
             "| path | CPU ms / output | × single (CPU) | wall ms / output | × single (wall) |",
             "|---|---|---|---|---|"]
    for label, key in rows:
        lines.append(f"| {label} | {c[key]:.2f} | {c[key] / s_c:.2f} | {wl[key]:.2f} | {wl[key] / s_w:.2f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- summaries
def summarise(reads: list[dict]) -> list[dict]:
    """Mean figures per (set, scale, degradation, method); HR rows have scale 0."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in reads:
        groups[(r["set"], r["scale"], r["degradation"], r["method"])].append(r)
    rows = []
    for (set_name, scale, deg, method), rs in groups.items():
        k, n = sum(r["exact"] for r in rs), len(rs)
        lo, hi = wilson_ci(k, n)
        row = {"set": set_name, "scale": scale, "degradation": deg, "lr_height": rs[0]["lr_height"],
               "method": method, "n": n, "exact_pct": 100 * k / n, "exact_ci95": [lo, hi],
               "char_acc": statistics.fmean(r["char_acc"] for r in rs)}
        if all(r["psnr_db"] is not None for r in rs):
            row["psnr_db"] = statistics.fmean(r["psnr_db"] for r in rs)
            row["ssim"] = statistics.fmean(r["ssim"] for r in rs)
        rows.append(row)
    return rows


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


# column label and format of each summary figure
METRICS: dict[str, tuple[str, str]] = {"exact_pct": ("read %", ".1f"), "char_acc": ("char", ".3f"),
                                       "psnr_db": ("PSNR", ".2f"), "ssim": ("SSIM", ".3f")}


def markdown_table(rows: list[dict], method_names: Sequence[str], metrics: Sequence[str] = tuple(METRICS)) -> str:
    """One row per set × scale × degradation; per method one column per metric (HR: text metrics only)."""
    by_key = {(r["set"], r["scale"], r["degradation"], r["method"]): r for r in rows}
    hr = {r["set"]: r for r in rows if r["method"] == HR}
    text_metrics = [k for k in metrics if k in ("exact_pct", "char_acc")]
    head = ["set", "×", "LR h", "LR", "n"] + [f"HR {METRICS[k][0]}" for k in text_metrics]
    head += [f"{m} {METRICS[k][0]}" for m in method_names for k in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    set_order = list(dict.fromkeys(r["set"] for r in rows))
    conds = sorted({(r["set"], r["scale"], r["degradation"]) for r in rows if r["method"] != HR},
                   key=lambda k: (set_order.index(k[0]), k[1], k[2]))
    for s, sc, d in conds:
        first = next(by_key[(s, sc, d, m)] for m in method_names if (s, sc, d, m) in by_key)
        cells = [s, str(sc), str(first["lr_height"]), d, str(first["n"])]
        cells += [_fmt(hr.get(s, {}).get(k), METRICS[k][1]) for k in text_metrics]
        cells += [_fmt(by_key.get((s, sc, d, m), {}).get(k), METRICS[k][1]) for m in method_names for k in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_reads_csv(reads: list[dict], path: Path) -> None:
    """Every OCR read, one row each, gzip-compressed (≈ 13 k rows in a full run)."""
    with gzip.open(path, "wt", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(reads[0]))
        w.writeheader()
        w.writerows(reads)


# --------------------------------------------------------------------------- figures
def _pyplot():
    """matplotlib.pyplot on the Agg backend, with the CJK font (if installed) as glyph fallback."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    try:
        from train.synth.plates import find_cjk_font

        font_manager.fontManager.addfont(find_cjk_font())
        cjk = font_manager.FontProperties(fname=find_cjk_font()).get_name()
        plt.rcParams["font.family"] = ["DejaVu Sans", cjk]
    except (FileNotFoundError, OSError, RuntimeError):
        pass  # Chinese plate reads then show as boxes
    return plt


def plot_accuracy_vs_height(rows: list[dict], method_names: Sequence[str], path: Path) -> None:
    """Exact-read % against LR crop height (px), one panel per set; solid = degrade, dashed = plain."""
    plt = _pyplot()
    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets) + 2.2, 3.8), squeeze=False, sharey=True)
    colours = dict(zip(method_names, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    heights = sorted({r["lr_height"] for r in rows if r["method"] != HR})
    for ax, s in zip(axes[0], sets):
        for r in rows:
            if r["set"] == s and r["method"] == HR:
                ax.axhline(r["exact_pct"], color="k", ls=":", label="HR (ceiling)")
        for m in method_names:
            for deg, ls, mk in (("degrade", "-", "o"), ("plain", "--", "s")):
                pts = sorted((r["lr_height"], r["exact_pct"]) for r in rows
                             if r["set"] == s and r["method"] == m and r["degradation"] == deg)
                if pts:
                    ax.plot(*zip(*pts), ls=ls, marker=mk, mfc="none" if deg == "plain" else None,
                            color=colours[m], label=f"{m} ({deg})")
        ax.set_title(s)
        ax.set_xticks(heights)
        ax.set_xlabel("LR crop height, px (plate ≈ 0.83 ×)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("exact plate reads, %")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7)
    fig.suptitle("RapidOCR exact reads vs plate LR height")
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gallery(gallery: list[dict], method_names: Sequence[str], path: Path) -> None:
    """Rows of plates: LR (nearest-enlarged) | bicubic | generators… | HR, OCR read under each."""
    plt = _pyplot()
    cols = ["LR"] + [m for m in method_names if m not in ("nearest", "lanczos")] + [HR]
    fig, axes = plt.subplots(len(gallery), len(cols), figsize=(2.6 * len(cols), 1.25 * len(gallery) + 0.6),
                             squeeze=False)
    for row, g in zip(axes, gallery):
        size = (g["hr"].shape[1], g["hr"].shape[0])
        for ax, col in zip(row, cols):
            if col == "LR":
                img, read = cv2.resize(g["lr"], size, interpolation=cv2.INTER_NEAREST), None
            elif col == HR:
                img, read = g["hr"], g["reads"][HR]
            else:
                img, read = g["outputs"][col], g["reads"][col]
            ax.imshow(img[..., ::-1])
            ax.set_xticks([])
            ax.set_yticks([])
            if read is None:
                ax.set_xlabel(f"{g['set']} · truth {g['truth']}", fontsize=7)
            else:
                ok = exact_match(read, g["truth"])
                ax.set_xlabel(read or "∅", fontsize=8, color="green" if ok else "red")
    for ax, col in zip(axes[0], cols):
        label = f"LR ×{gallery[0]['scale']} {gallery[0]['degradation']}" if col == "LR" else col
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI
def _sets_json(sets: dict[str, list[PlateCrop]], reports: dict[str, LoadReport]) -> dict:
    out = {}
    for name, rep in reports.items():
        crops = sets.get(name, [])
        out[name] = {"n": len(crops), "skipped": rep.skipped,
                     "native_crop_height_median_px":
                         statistics.median(c.native_height for c in crops) if crops else None}
    return out


def render_markdown(summary: dict) -> str:
    """legibility.md from the ``legibility.json`` content alone (so a report can be re-rendered)."""
    cfg, rows = summary["config"], summary["results"]
    names = [m["name"] for m in summary["methods"] if m["name"] != HR]
    ceiling = ", ".join(f"{r['set']} {r['exact_pct']:.1f} % (n = {r['n']})" for r in rows if r["method"] == HR)
    md = [f"# Legibility benchmark{' (quick)' if summary['quick'] else ''}", "",
          f"`{summary['command']}`: {summary['timing_s']['wall']:.0f} s, {summary['machine']['threads']} thread(s) "
          f"on {summary['machine']['cores']} cores.", "",
          f"Judge: {cfg['judge']}; exact read % (normalised: {cfg['normalisation']}), char accuracy = "
          f"{cfg['char_acc']}; PSNR (dB) / SSIM: {cfg['psnr_ssim']}.",
          f"HR crops {cfg['hr_height_px']} px tall (plate box + {cfg['margin']['height_frac']:.0%} height / "
          f"{cfg['margin']['width_frac']:.0%} width margins); LR crop heights "
          + ", ".join(f"×{s}: {h} px" for s, h in cfg["lr_height_px"].items())
          + "; `degrade` = train.synth.degrade strength 1 with per-crop seeds; `plain` = bicubic downscale.",
          "Generators at scales other than their own: SR output resized to the HR size (area down).", "",
          f"HR ceiling (the OCR on the clean crops): {ceiling}.", "",
          "## Exact plate reads, %", "", markdown_table(rows, names, ["exact_pct"]), "",
          "## All figures", "", markdown_table(rows, names), "",
          "n = plates per row; with n ≈ 100-300 a read-rate difference under ~10 points is within the 95 % "
          "interval (Wilson intervals per cell in legibility.json).", "",
          "Sets: " + ", ".join(f"{k}: {v['n']} plates ({len(v['skipped'])} annotation files skipped)"
                               for k, v in summary["sets"].items()), ""]
    fusion = summary.get("fusion")
    if fusion:
        fm = next((m for m in summary["methods"] if m.get("kind") == "fusion"), {})
        used, dropped = fm.get("frames_used_total", 0), fm.get("frames_dropped_total", 0)
        md += ["## Multi-frame fusion", "",
               f"K = {fusion['frames']} LR frames per plate (`plate_sets.make_lr`: frame 0 = the single-image input; "
               "frames 1.. shifted by up to ±scale/2 HR px, each degraded with its own seed). `fused` = "
               "sr_model.fusion.FusionEnhancer, frame 0 the reference; `voted_X` = stream.reads.vote_reads over the "
               "OCR reads of X on each frame; `voted_fused` = the vote over K fused outputs, each frame in turn the "
               f"reference. Alignment kept {used} and dropped {dropped} of {used + dropped} frames "
               f"(min ECC {fm.get('min_ecc')}).", ""]
        if fusion.get("cost"):
            md += ["### Cost", "", cost_markdown(fusion["cost"]), ""]
    return "\n".join(md)


def write_outputs(out: Path, res: Results, methods: Sequence[Method], cfg: RunConfig, sets: dict,
                  reports: dict, wall_s: float, quick: bool, command: str, fusion: dict | None = None) -> dict:
    """legibility.json, legibility.md, reads.csv.gz, gallery.png, accuracy_vs_height.png in ``out``."""
    from importlib.metadata import version

    out.mkdir(parents=True, exist_ok=True)
    names = [m.name for m in methods]
    rows = summarise(res.reads)
    summary = {
        "command": command, "quick": quick,
        "config": {"hr_height_px": HR_HEIGHT, "lr_height_px": {s: lr_height(s) for s in cfg.scales},
                   "margin": {"height_frac": MARGIN_H, "width_frac": MARGIN_W}, "scales": list(cfg.scales),
                   "degradations": list(cfg.degradations), "seed": cfg.seed, "n_synthetic": cfg.n_synthetic,
                   "limit_per_real_set": cfg.limit,
                   "judge": f"rapidocr {version('rapidocr')} recognition only (no det/cls)",
                   "normalisation": "upper case; keep Unicode letters and decimal digits only; no mapping",
                   "char_acc": "1 - Levenshtein distance / max(len) on normalised strings (rapidfuzz)",
                   "psnr_ssim": f"torchmetrics on RGB [0,1] at HR size vs HR; PSNR capped at {PSNR_CAP_DB} dB"},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": cfg.threads,
                    "cores": os.cpu_count(),
                    "cpu": platform.processor() or platform.machine()},
        "sets": _sets_json(sets, reports),
        "methods": [{"name": HR, "kind": "ceiling", "note": "the clean canonical HR crop"}]
                   + [m.describe() for m in methods],
        "results": rows,
        "timing_s": {"wall": wall_s, **{k: round(v, 2) for k, v in res.timing_s.items()}},
    }
    if fusion is not None:
        summary["fusion"] = fusion
    (out / "legibility.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str), "utf-8")
    write_reads_csv(res.reads, out / "reads.csv.gz")
    (out / "legibility.md").write_text(render_markdown(summary), "utf-8")
    if res.gallery:
        plot_gallery(res.gallery, names, out / "gallery.png")
    plot_accuracy_vs_height(rows, names, out / "accuracy_vs_height.png")
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.legibility", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quick", action="store_true", help="a few plates per set, ×4 only (the test's smoke run)")
    p.add_argument("--generator", type=Path, action="append", default=[], help="extra generator weights (repeatable)")
    p.add_argument("--no-shipped", action="store_true", help="leave out the shipped sr_model weights")
    p.add_argument("--int8", action="store_true",
                   help="also run the first generator through the int8 ONNX Runtime back end (named <stem>_int8)")
    p.add_argument("--also", action="append", default=[], metavar="BACKEND:PRECISION",
                   help="also run the first generator on this back end and precision, e.g. openvino:bf16 "
                        "(named <stem>_<backend>_<precision>; repeatable)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (holds openalpr/)")
    p.add_argument("--synthetic", type=int, default=None, help="synthetic plates (default 300, quick 5)")
    p.add_argument("--scales", type=int, nargs="+", default=None, help="default 2 3 4 (quick: 4)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the LR degradations")
    p.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads (default 1)")
    p.add_argument("--degradations", nargs="+", choices=DEGRADATIONS, default=None, help="default: all")
    p.add_argument("--interpolations", nargs="*", choices=tuple(INTERPOLATIONS), default=None,
                   help="classical baselines to run (default: all)")
    p.add_argument("--fusion", nargs="?", const="shipped", default=None, metavar="PATH",
                   help="add the multi-frame methods (fused, voted_*), with these fusion weights (default: shipped)")
    p.add_argument("--frames", type=int, default=5, help="LR frames per plate for the multi-frame methods (default 5)")
    p.add_argument("--cost-tracks", type=int, default=16, help="tracks per batch in the fusion cost table (0 = skip it)")
    p.add_argument("--cost-only", action="store_true",
                   help="with --fusion: only measure the cost table, write cost.json / cost.md to --out, and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    t0 = time.perf_counter()
    from sr_model.weights import DEFAULT_WEIGHTS

    cfg = RunConfig(scales=tuple(args.scales or ((4,) if args.quick else (2, 3, 4))),
                    degradations=tuple(args.degradations or DEGRADATIONS),
                    n_synthetic=args.synthetic if args.synthetic is not None else (5 if args.quick else 300),
                    limit=5 if args.quick else None, seed=args.seed, gallery_rows=2 if args.quick else 4,
                    threads=args.threads)
    torch.set_num_threads(cfg.threads)
    from stream.cli import configure_opencv_threads

    configure_opencv_threads()  # as enhance-video runs: the cost table's alignment CPU time is the product's
    paths = list(args.generator)
    if not args.no_shipped:
        if DEFAULT_WEIGHTS.is_file():
            paths.insert(0, DEFAULT_WEIGHTS)
        else:
            log.warning("shipped generator weights %s not found: benchmarking without them", DEFAULT_WEIGHTS)
    methods = interpolation_methods(INTERPOLATIONS if args.interpolations is None else args.interpolations)
    methods += generator_methods(paths)
    if args.int8 and paths:
        methods.append(Generator(f"{paths[0].stem}_int8", paths[0], precision="int8"))
    for variant in args.also if paths else []:
        backend, _, precision = variant.partition(":")
        methods.append(Generator(f"{paths[0].stem}_{backend}_{precision or 'auto'}", paths[0],
                                 precision=precision or "auto", backend=backend))
    fusion_info = None
    if args.fusion is not None:
        from sr_model.fusion import DEFAULT_FUSION_WEIGHTS

        fusion_path = DEFAULT_FUSION_WEIGHTS if args.fusion == "shipped" else Path(args.fusion)
        methods += fusion_methods(fusion_path, args.frames, methods)
        fusion_info = {"frames": args.frames, "weights": str(fusion_path)}
        if args.cost_only:
            gen = paths[0] if paths else None
            cost = measure_cost(fusion_path, gen, args.frames, n_tracks=max(1, args.cost_tracks), repeats=9)
            cost["single_weights"] = str(gen or DEFAULT_WEIGHTS)
            cost["command"] = "python -m benchmarks.legibility " + " ".join(sys.argv[1:] if argv is None else argv)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "cost.json").write_text(json.dumps(cost, indent=1), "utf-8")
            (args.out / "cost.md").write_text(f"# Fusion cost\n\n`{cost['command']}`\n\n{cost_markdown(cost)}\n", "utf-8")
            print(cost_markdown(cost))
            return {"fusion": {"cost": cost}}
        if args.cost_tracks > 0:
            gen = paths[0] if paths else None
            fusion_info["cost"] = measure_cost(fusion_path, gen, args.frames, n_tracks=args.cost_tracks)
            fusion_info["cost"]["single_weights"] = str(gen or DEFAULT_WEIGHTS)
    sets, reports = load_sets(args.data, cfg.n_synthetic, cfg.limit)
    for name, rep in reports.items():
        if rep.skipped:
            log.warning("%s: skipped %d: %s", name, len(rep.skipped), rep.skipped)
    res = run(sets, methods, cfg)
    command = "python -m benchmarks.legibility " + " ".join(sys.argv[1:] if argv is None else argv)
    summary = write_outputs(args.out, res, methods, cfg, sets, reports, time.perf_counter() - t0, args.quick, command,
                            fusion_info)
    print(markdown_table(summary["results"], [m.name for m in methods], ["exact_pct", "char_acc"]))
    if fusion_info and fusion_info.get("cost"):
        print(cost_markdown(fusion_info["cost"]))
    print(f"wrote {args.out} in {summary['timing_s']['wall']:.0f} s")
    return summary


if __name__ == "__main__":
    main()
