"""Corner refiner: a small CNN that finds a plate's 4 corners in a full-resolution crop around its box.

The detector predicts corners at its input scale (a 1080p frame is shrunk 3x to 640 px), so its
corners are coarse: 5.95 % of the plate width off at 1080p (benchmarks/results/detection). The
refiner looks at the frame itself: the detected box, grown by :data:`MARGIN_X` of its width on
each side and by :data:`MARGIN_Y_H` of its height plus :data:`MARGIN_Y_W` of its width above and
below (room for the detector's box error and for tilted plates), is resized to a
``CROP_H x CROP_W`` patch, and the network regresses the corners tl, tr, br, bl in that window's
coordinates (0..1 across it). A box is all it needs, so it also gives a box-only detector corners.

    >>> refiner = CornerRefiner()                          # shipped weights
    >>> [corners] = refiner.corners([frame_bgr], [boxes])  # (n, 4, 2) float32 frame px

Trained by ``python -m train.corners`` (synthetic scenes; CCPD and YOLO-pose data too).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from tracker.weights_file import (cpu_openvino, cpu_session, export_onnx_cached, onnx_available, openvino_available,
                                  read_weights_file)

CROP_H, CROP_W = 48, 128     # network input (px)
MARGIN_X = 0.25              # of the box width, each side
MARGIN_Y_H = 0.4             # of the box height, above and below
MARGIN_Y_W = 0.04            # plus this much of the box width, above and below
REFINER_WEIGHTS = Path(__file__).parent / "weights" / "corner_refiner.safetensors"


class RefinerWeightsError(ValueError):
    """A corner-refiner weights file is missing, unreadable or does not fit the network."""


def crop_window(box: np.ndarray) -> np.ndarray:
    """The frame region the refiner looks at for ``box`` ((4,) x1 y1 x2 y2 px): (4,) float32
    x0 y0 x1 y1 px (may reach outside the frame)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    mx, my = MARGIN_X * w, MARGIN_Y_H * h + MARGIN_Y_W * w
    return np.array([x1 - mx, y1 - my, x2 + mx, y2 + my], np.float32)


def cut_patch(frame: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``window`` (x0 y0 x1 y1 frame px, edge convention) of ``frame`` ((H, W, 3) uint8) resampled
    to a (CROP_H, CROP_W, 3) uint8 patch; outside the frame the border is replicated. Shrinking
    averages areas (a plate 3x larger than the patch keeps its edges, not aliasing)."""
    x0, y0, x1, y1 = (float(v) for v in window)
    sx, sy = CROP_W / max(x1 - x0, 1e-3), CROP_H / max(y1 - y0, 1e-3)
    H, W = frame.shape[:2]
    # Pre-shrink by an integer factor with area averaging where the window is much larger than
    # the patch, then one sub-pixel affine warp (keeps the window's exact, fractional position).
    f = int(max(1.0, min(1.0 / sx, 1.0 / sy)))
    src = frame
    if f >= 2:
        ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        ix1, iy1 = min(W, int(np.ceil(x1))), min(H, int(np.ceil(y1)))
        ix1, iy1 = ix0 + (ix1 - ix0) // f * f, iy0 + (iy1 - iy0) // f * f  # whole f x f cells
        if ix1 > ix0 and iy1 > iy0:
            part = frame[iy0:iy1, ix0:ix1]
            src = cv2.resize(part, ((ix1 - ix0) // f, (iy1 - iy0) // f), interpolation=cv2.INTER_AREA)
            # src pixel edges: frame x = ix0 + u * f
            x0, x1 = (x0 - ix0) / f, (x1 - ix0) / f
            y0, y1 = (y0 - iy0) / f, (y1 - iy0) / f
            sx, sy = sx * f, sy * f
    # patch edge coordinate u = (x - x0) * sx; OpenCV maps pixel centres: u_c + 0.5 = (x_c + 0.5 - x0) * sx
    M = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]], np.float64)
    return cv2.warpAffine(src, M, (CROP_W, CROP_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def to_window(points: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Frame px (..., 2) -> window coordinates (0..1 across the window)."""
    w = np.asarray(window, np.float32)
    return (np.asarray(points, np.float32) - w[:2]) / (w[2:] - w[:2])


def from_window(points: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Window coordinates (..., 2) -> frame px."""
    w = np.asarray(window, np.float32)
    return np.asarray(points, np.float32) * (w[2:] - w[:2]) + w[:2]


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CornerNet(nn.Module):
    """(B, 3, CROP_H, CROP_W) float RGB in [0, 1] -> (B, 4, 2) corners tl, tr, br, bl in window
    coordinates (0..1 across the patch; a little outside is allowed)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        c = [width, width * 2, width * 3, width * 4, width * 6]
        self.features = nn.Sequential(
            _block(3, c[0], 1),
            _block(c[0], c[1], 2), _block(c[1], c[1], 1),      # 24 x 64
            _block(c[1], c[2], 2), _block(c[2], c[2], 1),      # 12 x 32
            _block(c[2], c[3], 2), _block(c[3], c[3], 1),      # 6 x 16
            _block(c[3], c[4], 2),                             # 3 x 8
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c[4] * (CROP_H // 16) * (CROP_W // 16), 128),
                                  nn.ReLU(inplace=True), nn.Linear(128, 8))
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x - 0.5)).view(-1, 4, 2) + 0.5


def patches_to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    """list of (CROP_H, CROP_W, 3) uint8 BGR -> (N, 3, CROP_H, CROP_W) float32 RGB in [0, 1]."""
    x = np.stack(patches)[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(x))


def save_refiner(model: CornerNet, path: str | Path, info: dict | None = None) -> Path:
    """Write the refiner as fp16 safetensors with its architecture, crop geometry and ``info``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half().contiguous() if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    meta = {"arch": "CornerNet", "width": str(model.width), "crop": json.dumps([CROP_H, CROP_W]),
            "margins": json.dumps([MARGIN_X, MARGIN_Y_H, MARGIN_Y_W]), "info": json.dumps(info or {})}
    save_file(state, str(path), metadata=meta)
    return path


def load_refiner(path: str | Path | None = None) -> tuple[CornerNet, dict]:
    """(eval CornerNet, metadata) from a weights file written by :func:`save_refiner`."""
    path = Path(path) if path is not None else REFINER_WEIGHTS
    meta, state = read_weights_file(path, "corner refiner", RefinerWeightsError)
    if meta.get("arch") != "CornerNet":
        raise RefinerWeightsError(f"{path} is not a corner refiner file")
    if json.loads(meta.get("crop", "[]")) != [CROP_H, CROP_W] or \
            json.loads(meta.get("margins", "[]")) != [MARGIN_X, MARGIN_Y_H, MARGIN_Y_W]:
        raise RefinerWeightsError(f"{path} was trained for another crop geometry")
    model = CornerNet(int(meta.get("width", 16)))
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise RefinerWeightsError(f"{path} does not fit the corner refiner: {str(exc).splitlines()[0]}") from None
    info = json.loads(meta.get("info", "{}"))
    info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return model.eval(), info


class CornerRefiner:
    """Plate corners from boxes, looking at the full-resolution frame (see the module doc).

    backend: "auto" (ONNX Runtime on the CPU when installed: 4.6-5.2 ms for 3 plates of a 1080p
    frame, patch cutting included, against 8.1-8.7 ms for eager torch; eager torch otherwise),
    "torch", "onnx" or "openvino" (:class:`tracker.weights_file.OpenVINOSession`, ``precision``
    "auto" / "f32" / "bf16": 1.6 ms in bf16, 2.7 ms in f32 for the same 3 plates; the detector
    runs its refiner on its own back end). The ONNX graph is exported once per weights file and
    cached (``cache_dir``, :func:`tracker.weights_file.export_onnx_cached`)."""

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", backend: str = "auto",
                 cache_dir: Path | None = None, precision: str = "auto") -> None:
        self.model, self.info = load_refiner(weights)
        self.device = device
        self.model.to(device)
        self._session = None
        self.precision = "f32"
        if backend not in ("auto", "torch", "onnx", "openvino"):
            raise ValueError(f"unknown corner refiner backend {backend!r}")
        if backend == "auto":
            backend = "torch" if str(device) != "cpu" or not onnx_available() else "onnx"
        self.backend = backend
        # One thread: a few small patches per detector frame; the pipeline's other stages need
        # the second core.
        if backend == "onnx":
            self._session = cpu_session(self._exporter(cache_dir), 1, "corner refiner", RefinerWeightsError)
        elif backend == "openvino":
            if not openvino_available():
                raise ValueError("corner refiner backend 'openvino' needs OpenVINO")
            self._session = cpu_openvino(self._exporter(cache_dir), 1, "corner refiner", RefinerWeightsError, precision)
            self.precision = self._session.precision

    def _exporter(self, cache_dir: Path | None):
        def export() -> Path:
            return export_onnx_cached(self.model.cpu().eval(), torch.zeros(1, 3, CROP_H, CROP_W), "corner-refiner",
                                      self.info["sha256"], cache_dir, input_names=["patches"],
                                      output_names=["corners"],
                                      dynamic_axes={"patches": {0: "batch"}, "corners": {0: "batch"}})

        return export

    @torch.inference_mode()
    def _predict(self, x: torch.Tensor) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, {"patches": x.numpy()})[0].reshape(-1, 4, 2)
        return self.model(x.to(self.device)).float().cpu().numpy()

    def corners(self, frames: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """Per frame ((H, W, 3) uint8 BGR), (n, 4, 2) float32 corners tl, tr, br, bl in frame px
        for its ``boxes`` ((n, 4) x1 y1 x2 y2 px); all frames' plates in one forward pass."""
        windows = [[crop_window(b) for b in np.asarray(bs, np.float32).reshape(-1, 4)] for bs in boxes]
        patches = [cut_patch(f, w) for f, ws in zip(frames, windows) for w in ws]
        if not patches:
            return [np.zeros((0, 4, 2), np.float32) for _ in frames]
        pred = iter(self._predict(patches_to_tensor(patches)))
        return [np.stack([from_window(next(pred), w) for w in ws]).astype(np.float32) if ws
                else np.zeros((0, 4, 2), np.float32) for ws in windows]

