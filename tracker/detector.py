"""Plate detector: an ultralytics YOLO model rebuilt from its yaml, weights from safetensors.

The weights file carries the model yaml, class names, training image size and a description
of the training data in its metadata, so loading needs nothing but the file (no pickle, no
download). Inference is batched: frames are letterboxed (long side = ``imgsz``, padded
bottom/right to the model stride, so 16:9 frames cost 640x384 rather than 640x640), run in one
forward pass, and filtered with ultralytics' NMS.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from tracker.types import Detection

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "plate_yolov8p.safetensors"
MODEL_YAML = Path(__file__).parent / "models" / "plate_yolov8p.yaml"


class DetectorWeightsError(ValueError):
    """A detector weights file is missing, unreadable or does not fit its architecture."""


def configure_ultralytics_offline() -> None:
    """Point ultralytics at a config dir of ours with a bundled font, and forbid downloads.

    ultralytics otherwise writes settings under the user's home and fetches Arial.ttf on first
    plot; neither is possible (or wanted) offline.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if "YOLO_CONFIG_DIR" not in os.environ:
        cfg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "license-enhancer" / "ultralytics"
        os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    font_dir = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    font = font_dir / "Arial.ttf"
    if not font.exists():
        font_dir.mkdir(parents=True, exist_ok=True)
        import matplotlib  # ships DejaVuSans: any TTF satisfies ultralytics' plotting

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        font.write_bytes(src.read_bytes())


def save_detector(model: nn.Module, path: str | Path, yaml: dict, imgsz: int, info: dict | None = None) -> Path:
    """Write a trained ultralytics DetectionModel as fp16 safetensors plus its yaml and metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").half().contiguous() if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    names = getattr(model, "names", {0: "plate"})
    meta = {
        "yaml": json.dumps(yaml),
        "names": json.dumps({str(k): v for k, v in dict(names).items()}),
        "imgsz": str(imgsz),
        "info": json.dumps(info or {}),
    }
    save_file(state, str(path), metadata=meta)
    return path


def load_detector_model(path: str | Path | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the DetectionModel a weights file describes; returns (fused eval model, metadata)."""
    configure_ultralytics_offline()
    from ultralytics.nn.tasks import DetectionModel

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise DetectorWeightsError(f"detector weights not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise DetectorWeightsError(f"cannot read detector weights {path}: {exc}") from None
    if "yaml" not in meta:
        raise DetectorWeightsError(f"{path} is not a plate detector file (no model yaml in its metadata)")
    yaml = json.loads(meta["yaml"])
    names = {int(k): v for k, v in json.loads(meta.get("names", '{"0": "plate"}')).items()}
    try:
        model = DetectionModel(yaml, nc=len(names), verbose=False)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise DetectorWeightsError(f"{path} does not fit its detector architecture: {first}") from None
    model.names = names
    model = model.float().fuse().eval()  # fuse conv+bn: same outputs, fewer ops
    info = {"names": names, "imgsz": int(meta.get("imgsz", 640)), **json.loads(meta.get("info", "{}"))}
    return model, info


@dataclass(frozen=True)
class DetectorConfig:
    """imgsz: long side of the network input in px; conf: minimum score kept; iou: NMS IoU;
    batch_size: frames per forward pass; max_det: detections kept per frame."""

    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.5
    batch_size: int = 4
    max_det: int = 100
    device: str = "cpu"


class PlateDetector:
    """Finds plates in BGR uint8 frames.

    >>> det = PlateDetector()                  # shipped weights
    >>> per_frame = det.detect([frame_bgr])     # list (per frame) of list[Detection]
    """

    stride = 32

    def __init__(self, weights: str | Path | None = None, config: DetectorConfig = DetectorConfig()) -> None:
        self.config = config
        self.model, self.info = load_detector_model(weights)
        self.model.to(config.device)

    def _letterbox(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[float]]:
        sizes = []
        for im in images:
            h, w = im.shape[:2]
            r = self.config.imgsz / max(h, w)
            sizes.append((r, max(1, round(w * r)), max(1, round(h * r))))
        hp = max(s[2] for s in sizes)
        wp = max(s[1] for s in sizes)
        hp, wp = -(-hp // self.stride) * self.stride, -(-wp // self.stride) * self.stride
        batch = np.full((len(images), hp, wp, 3), 114, np.uint8)  # ultralytics' pad grey
        for i, (im, (r, w, h)) in enumerate(zip(images, sizes)):
            interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
            batch[i, :h, :w] = cv2.resize(im, (w, h), interpolation=interp) if r != 1 else im
        x = torch.from_numpy(batch).to(self.config.device).permute(0, 3, 1, 2).flip(1)  # BGR->RGB
        return x.float().div_(255.0), [s[0] for s in sizes]

    @torch.inference_mode()
    def _detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        from ultralytics.utils.nms import non_max_suppression

        x, ratios = self._letterbox(images)
        preds = self.model(x)
        preds = preds[0] if isinstance(preds, (list, tuple)) else preds
        out = non_max_suppression(preds, self.config.conf, self.config.iou, max_det=self.config.max_det)
        results = []
        for im, r, det in zip(images, ratios, out):
            h, w = im.shape[:2]
            det = det.cpu().numpy()
            boxes = det[:, :4] / r
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
            results.append(
                [Detection(box=b.astype(np.float32), score=float(s)) for b, s in zip(boxes, det[:, 4])
                 if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
            )
        return results

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect plates in each (H, W, 3) uint8 BGR image; returns one list per image."""
        results: list[list[Detection]] = []
        bs = self.config.batch_size
        for start in range(0, len(images), bs):
            results.extend(self._detect_batch(images[start : start + bs]))
        return results
