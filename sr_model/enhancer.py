"""Batched super-resolution of plate crops: BGR uint8 arrays in, BGR uint8 arrays out.

Each crop is padded (edge-replicated, so the network sees no artificial border) to its height
and width rounded up to ``pad_multiple``, and crops of the same padded size share a forward pass;
the output is cut back to ``scale`` times the crop's own size. A crop's output therefore does not
depend on which other crops it was batched with (padding it to a larger neighbour's size changed
its border pixels by up to 41 levels), so the same video gives the same enhanced plates however
the crops of its tracks, or of other streams, were grouped. Crops taller than
``max_input_height`` (32 px, the 32x96 design point) are first shrunk to it: such plates are
already legible, the generator was trained on far smaller ones, and SR cost grows with area (a
near plate in 1080p made SR the slowest stage at the old 48 px cap).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from sr_model.backends import create_runner, resolve
from sr_model.weights import load_generator
from tracker.weights_file import shape_batches


@dataclass(frozen=True)
class EnhancerConfig:
    """max_input_height: px; batch_size: crops per forward pass; device: torch device string;
    backend / precision / channels_last: see :mod:`sr_model.backends` (``auto`` picks the
    fastest correct one for the device); pad_multiple: each crop is padded (edge pixels) to a
    height and width that are multiples of this, so the network sees few distinct shapes: the
    back ends cache kernels per input shape, and with every crop size distinct the process grew
    by ~600 MiB over 1500 calls (flat at +130 MiB with 16; benchmarks/results/memory)."""

    max_input_height: int = 32
    batch_size: int = 32
    pad_multiple: int = 16
    device: str = "cpu"
    backend: str = "auto"
    precision: str = "auto"
    channels_last: bool = False


class PlateEnhancer:
    """Runs a trained generator on plate crops.

    >>> enhancer = PlateEnhancer()            # the shipped ×4 weights
    >>> big = enhancer.enhance([crop_bgr])   # list of (h*4, w*4, 3) uint8
    """

    def __init__(self, weights: str | Path | None = None, config: EnhancerConfig = EnhancerConfig()) -> None:
        self.config = config
        self.model, self.info = load_generator(weights, device=config.device)
        self.scale: int = self.model.scale
        self.precision: str = resolve(config.backend, config.precision, config.device)[1]
        self.backend, self._run = create_runner(self.model, config.backend, config.device, config.precision,
                                                config.channels_last)

    def _prepare(self, crop: np.ndarray) -> np.ndarray:
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"crops must be (h, w, 3) uint8 BGR, got {crop.shape} {crop.dtype}")
        h, w = crop.shape[:2]
        if h > self.config.max_input_height:
            f = self.config.max_input_height / h
            crop = cv2.resize(crop, (max(1, round(w * f)), self.config.max_input_height), interpolation=cv2.INTER_AREA)
        return crop

    def _padded_shape(self, crop: np.ndarray) -> tuple[int, int]:
        m = max(1, self.config.pad_multiple)
        return -(-crop.shape[0] // m) * m, -(-crop.shape[1] // m) * m

    @torch.inference_mode()
    def _run_batch(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Crops of one padded shape (:meth:`_padded_shape`) in, ×scale crops out."""
        hmax, wmax = self._padded_shape(crops[0])
        batch = np.stack(
            [np.pad(c, ((0, hmax - c.shape[0]), (0, wmax - c.shape[1]), (0, 0)), mode="edge") for c in crops]
        )
        s = self.scale
        if torch.device(self.config.device).type != "cpu":  # pre- and post-processing on the device
            x = torch.from_numpy(batch[..., ::-1].copy()).to(self.config.device)  # BGR -> RGB
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            y = self._run(x).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
            y = y.permute(0, 2, 3, 1).cpu().numpy()[..., ::-1]  # RGB -> BGR
            return [np.ascontiguousarray(y[i, : c.shape[0] * s, : c.shape[1] * s]) for i, c in enumerate(crops)]
        # CPU: OpenCV / numpy. Small torch ops with 2 intra-op threads stall for milliseconds
        # when the other core is busy (the pipeline's encoder, detector, reads).
        x = cv2.dnn.blobFromImages(list(batch), 1.0 / 255.0, swapRB=True)  # (N, 3, H, W) float32 RGB
        y = self._run(torch.from_numpy(x)).numpy()
        np.clip(y, 0.0, 1.0, out=y)
        y8 = np.rint(np.multiply(y, 255.0, out=y), out=y).astype(np.uint8)
        return [np.ascontiguousarray(y8[i, ::-1, : c.shape[0] * s, : c.shape[1] * s].transpose(1, 2, 0))  # RGB -> BGR
                for i, c in enumerate(crops)]

    def enhance(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Super-resolve each crop; output i is ``scale`` × the (possibly shrunk) size of crop i."""
        prepared = [self._prepare(c) for c in crops]
        out: list[np.ndarray | None] = [None] * len(prepared)
        for idx in shape_batches([self._padded_shape(c) for c in prepared], self.config.batch_size):
            for i, y in zip(idx, self._run_batch([prepared[i] for i in idx])):
                out[i] = y
        return out  # type: ignore[return-value]


def bicubic_upscale(crop: np.ndarray, scale: int) -> np.ndarray:
    """The baseline every SR result is compared against: OpenCV bicubic ×scale."""
    h, w = crop.shape[:2]
    return cv2.resize(crop, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
