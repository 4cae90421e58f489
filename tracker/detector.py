"""Plate detector: an ultralytics YOLO model rebuilt from its yaml, weights from safetensors.

The weights file carries the model yaml, class names, training image size and a description
of the training data in its metadata, so loading needs nothing but the file (no pickle, no
download). Two kinds load: box-only detectors (``Detect`` head) and corner detectors (``Pose``
head with ``kpt_shape: [4, 3]``: the plate's corners tl, tr, br, bl), whose detections carry
``Detection.corners`` so a crop can be rectified to a frontal rectangle.

Inference is batched: frames are letterboxed (long side = ``imgsz``, or the frame's times
``zoom``; padded bottom/right to the model stride, so 16:9 frames cost 640x384 rather than
640x640), run in one forward pass
and filtered with ultralytics' NMS. Back ends: ``torch`` (eager, fused conv+bn), ``onnx``
(ONNX Runtime on a graph exported once per weights file and cached on disk, keyed by a hash
of the weights and the versions) and ``openvino`` (OpenVINO on the same graph; a dependency,
but the others work without it); ``auto`` picks the one measured fastest for the device (on the CPU
OpenVINO when installed, then ONNX Runtime; see benchmarks/results/detection).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from tracker.types import Detection, clip_roi
from tracker.weights_file import (cpu_openvino, cpu_session, export_onnx_cached, onnx_available,
                                  openvino_available, read_weights_file, shape_batches)

MODEL_YAML = Path(__file__).parent / "models" / "plate_yolov8p.yaml"
POSE_MODEL_YAML = Path(__file__).parent / "models" / "plate_yolov8p_pose.yaml"
POSE_WEIGHTS = Path(__file__).parent / "weights" / "plate_yolov8p_pose.safetensors"  # corners (tl, tr, br, bl)
BOX_WEIGHTS = Path(__file__).parent / "weights" / "plate_yolov8p.safetensors"  # boxes only, synthetic-only training
# The corner model is the default: on the real US hold-out it finds 0.955 of the plates at AP50
# 0.939 against 0.591 / 0.362 for the box model (benchmarks/results/detection).
DEFAULT_WEIGHTS = POSE_WEIGHTS
COARSE_PASS = ("auto", "on", "off")
# Where two passes merge, each keeps candidates from this score (the result is cut at ``conf``
# after merging: two passes' 0.15 make a noisy-OR 0.28), and a main-pass candidate from this score
# can call the coarse pass (``coarse_trigger_px``; from 0.01 a 1080p frame's black-border strip did).
PASS_FLOOR = 0.02
TRIGGER_MAX_ASPECT = 8.0  # a trigger candidate is at most this many times wider than tall (plates: 2-5)
BACKENDS = ("auto", "torch", "onnx", "openvino")
PRECISIONS = ("auto", "f32", "bf16", "fp16")  # DetectorConfig.precision


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
    """Write a trained ultralytics DetectionModel / PoseModel as fp16 safetensors plus its yaml and
    metadata (names, training imgsz in px, ``info``: training data, epochs, figures...)."""
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
    from ultralytics.nn.tasks import DetectionModel, PoseModel

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    meta, state = read_weights_file(path, "detector", DetectorWeightsError)
    if "yaml" not in meta:
        raise DetectorWeightsError(f"{path} is not a plate detector file (no model yaml in its metadata)")
    yaml = json.loads(meta["yaml"])
    names = {int(k): v for k, v in json.loads(meta.get("names", '{"0": "plate"}')).items()}
    try:
        kpt = yaml.get("kpt_shape")
        if kpt is not None and list(kpt) != [4, 3]:
            raise DetectorWeightsError(f"{path}: kpt_shape {kpt} is not the 4 plate corners [4, 3]")
        model = (PoseModel(yaml, nc=len(names), verbose=False) if kpt is not None
                 else DetectionModel(yaml, nc=len(names), verbose=False))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise DetectorWeightsError(f"{path} does not fit its detector architecture: {first}") from None
    model.names = names
    model = model.float().fuse().eval()  # fuse conv+bn: same outputs, fewer ops
    info = {"names": names, "imgsz": int(meta.get("imgsz", 640)), **json.loads(meta.get("info", "{}"))}
    info["kpt_shape"] = list(yaml["kpt_shape"]) if yaml.get("kpt_shape") is not None else None
    info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return model, info


def update_detector_info(path: str | Path, **fields) -> dict:
    """Merge ``fields`` into the ``info`` metadata of a weights file (e.g. measured figures); the
    tensors are rewritten unchanged. Returns the new info."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    state = load_file(str(path))
    info = {**json.loads(meta.get("info", "{}")), **fields}
    meta["info"] = json.dumps(info)
    save_file(state, str(path), metadata=meta)
    return info


def export_onnx(model: nn.Module, weights_sha: str, cache_dir: Path | None = None) -> Path:
    """Export a fused detector to ONNX (dynamic batch, height, width) once; returns the path.

    The graph takes (B, 3, H, W) float32 RGB in [0, 1] (H, W multiples of 32) and returns the
    raw head output (B, 4 + nc [+ 12 corner values], anchors), boxes in input px, as the
    torch model does. Cached as ``detector-<key>.onnx`` (:func:`tracker.weights_file.export_onnx_cached`).
    """
    import copy

    net = copy.deepcopy(model).float().eval()
    head = net.model[-1]
    head.dynamic, head.export, head.format = True, True, "onnx"
    return export_onnx_cached(net, torch.zeros(1, 3, 384, 640), "detector", weights_sha, cache_dir,
                              input_names=["images"], output_names=["output0"],
                              dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                            "output0": {0: "batch", 2: "anchors"}})


def _ceil_to(value: float, step: int) -> int:
    """The smallest multiple of ``step`` no smaller than ``value``."""
    return int(math.ceil(value / step)) * step


def auto_imgsz(width: int, height: int) -> int:
    """The network input size (long side, px) for a ``width`` x ``height`` frame or region: half
    its long side, rounded up to the stride, within 640..1280. The detector finds real plates
    from about 25 px wide at its input: real plates 40-64 px wide in 1080p frames were found at
    0.36 (US) / 0.16 (EU) with imgsz 640, 0.79 / 0.31 with 960, 0.94 / 0.53 with 1280, at 16-21,
    23-36 and 42-66 ms per frame (OpenVINO bf16, 2 cores; benchmarks/results/detection/imgsz.md)."""
    half = _ceil_to(max(width, height) / 2, 32)
    return int(min(1280, max(640, half)))


@dataclass(frozen=True)
class DetectorConfig:
    """imgsz: long side of the network input in px, or None (the default) for
    :func:`auto_imgsz` of each frame (640 up to 1280x720, 960 for 1920x1080, 1280 from 2560);
    conf: minimum score kept; iou: NMS IoU;
    batch_size: frames per forward pass; max_det: detections kept per frame; backend: "auto"
    (on the CPU OpenVINO when installed, else ONNX Runtime when installed, else torch: the
    order measured fastest), "torch", "onnx" or "openvino"; precision: on OpenVINO "auto"
    (bf16 where the CPU has native bf16 units, else f32), "f32" or "bf16"; on torch "auto" / "f32"
    (f32), "bf16", or "fp16" (CUDA only): the network's weights and input in that format, NMS on
    f32 scores (for GPUs serving many streams, where the detector is the model process's largest
    cost: benchmarks/results/throughput_streams_gpu); ONNX Runtime runs f32;
    cache_dir: where exported ONNX graphs go (None: :func:`default_cache_dir`);
    refine_corners: re-estimate each detection's corners from the full-resolution frame with the
    corner refiner (:mod:`tracker.corners`; also gives a box-only detector corners). On by
    default: the corner head's corners are 2.9-6.0 % of the plate width off on held-out synthetic
    clips, the refiner's 0.9-1.3 %, and on real photos the head's corners do not follow the plate
    (benchmarks/results/detection, benchmarks/results/rectify);
    refiner_weights: its weights file (None: the shipped one);
    roi: region of interest ``(x, y, width, height)`` in frame px, or None for the whole frame.
    Only that part of each frame is searched (its intersection with the frame), letterboxed to
    ``imgsz`` like a whole frame: on a fixed camera a smaller region makes small plates larger at
    the network input for the same cost (benchmarks/results/detection, region-of-interest study).
    Detections come back in frame px;
    coarse_pass: "auto" (the default), "on" or "off": also search a frame (or region) at
    ``coarse_scale`` of the input size and merge the two passes. A plate that fills much of the
    network input (a close camera, a parking gate, a small photo enlarged to ``imgsz``) reaches it
    larger than most training plates and scores low; at half size it looks like them. "auto" runs
    it on whole frames the main pass enlarges (input scale >= 1: frames no larger than ``imgsz``),
    where it is cheap beside the main pass and where close plates are likely, and on larger frames
    where the main pass saw a wide candidate (``coarse_trigger_px``); not with a ``roi``, which is
    there to enlarge far plates. "on": on every frame or region (720p on this
    CPU: 12-13 -> 19-21 ms per frame, the half-size pass alone 5 ms).
    Merging: boxes of both passes overlapping by IoU > ``iou`` are one plate, kept with the box of
    the higher score and the score 1 - (1 - s_main)(1 - s_coarse) (noisy-OR): a box both passes
    see is likelier a plate than one only one pass sees. On the real photos, with the weights of
    2026-11-27 (benchmarks/results/detection/coarse_pass.md), the coarse pass on every photo took EU recall /
    AP50 from 0.824 / 0.806 to 0.963 / 0.920 (auto: 0.963 / 0.914) and the US hold-out's from
    0.955 / 0.938 to 1.0 / 0.979 (merged by the higher score alone: 0.944 / 0.860, 1.0 / 0.966);
    coarse_scale: the coarse pass's fraction of the input size, in (0, 1): 0.5 (of 0.4-0.7, merged
    by NMS: US hold-out AP50 0.961-0.970, 0.966 at 0.5; EU best at 0.5. 0.75 found fewer US plates,
    a third pass at 0.35 cost US AP50);
    coarse_trigger_px: with "auto", also run the coarse pass on a larger frame whose main pass has
    a candidate (score >= :data:`PASS_FLOOR`) at least this wide at the network input (None: never):
    a plate that large scores low there, so a wide weak candidate hints one. 128 px (a fifth of a
    640 input): on the US hold-out photos (larger than the input: "auto" never ran the pass there)
    recall / AP50 0.955 / 0.938 -> 1.000 / 0.968, the pass running on 4 of 44 photos (0.979 with
    it on all); on the EU photos 0.954 / 0.907 -> 0.963 / 0.914; 96-256 px gave the same US figures;
    synthetic 720p frames with plates 60-180 px wide never call it
    (benchmarks/results/detection/coarse_pass.md);
    zoom: None (the default: ``imgsz`` decides), or the factor by which each frame (or region) is
    enlarged at the network input: its long side times ``zoom``, rounded up to the stride, instead
    of ``imgsz``. The detector finds real plates reliably from about 30-40 px wide at its input, so
    plates under 40 px in the frame are found only enlarged: real plates shrunk to 16-40 px wide in
    1080p frames were found at 0.31 (US) / 0.11 (EU) by default (imgsz 960) and 0.941 / 0.910 at
    ``zoom=2`` (with the coarse pass, which "auto" runs there and which then searches the frame at
    its own size for the larger plates; weights of 2026-11-28, detection.md), for 2.6x the
    detector time at 360p (21 -> 55 ms per frame on 2 cores) and 16x at 1080p (25 -> 406 ms;
    benchmarks/results/detection/zoom.md)."""

    imgsz: int | None = None
    conf: float = 0.25
    iou: float = 0.5
    batch_size: int = 4
    max_det: int = 100
    device: str = "cpu"
    backend: str = "auto"
    precision: str = "auto"
    cache_dir: Path | None = None
    roi: tuple[int, int, int, int] | None = None
    refine_corners: bool = True
    refiner_weights: Path | None = None
    coarse_pass: str = "auto"
    coarse_scale: float = 0.5
    coarse_trigger_px: int | None = 128
    zoom: float | None = None


MAX_BATCH_PIXELS = 4 * 1280 * 736  # network-input pixels per forward pass: four 720p frames at imgsz 1280


class PlateDetector:
    """Finds plates in BGR uint8 frames.

    >>> det = PlateDetector()                  # shipped weights
    >>> per_frame = det.detect([frame_bgr])     # list (per frame) of list[Detection]

    ``backend`` (the resolved one: "torch", "onnx" or "openvino") says what runs the network,
    ``precision`` its number format ("f32", or "bf16" on OpenVINO); ``has_corners`` whether
    detections carry ``corners``.
    """

    stride = 32

    def __init__(self, weights: str | Path | None = None, config: DetectorConfig = DetectorConfig()) -> None:
        if config.backend not in BACKENDS:
            raise ValueError(f"unknown detector backend {config.backend!r}; expected one of {BACKENDS}")
        if config.precision not in PRECISIONS:
            raise ValueError(f"unknown detector precision {config.precision!r}; expected one of {PRECISIONS}")
        if config.coarse_pass not in COARSE_PASS:
            raise ValueError(f"unknown coarse_pass {config.coarse_pass!r}; expected one of {COARSE_PASS}")
        if not 0.0 < config.coarse_scale < 1.0:
            raise ValueError(f"coarse_scale must lie between 0 and 1, got {config.coarse_scale}")
        if config.coarse_trigger_px is not None and config.coarse_trigger_px <= 0:
            raise ValueError(f"coarse_trigger_px must be positive or None, got {config.coarse_trigger_px}")
        if config.zoom is not None and not (0.0 < config.zoom <= 8.0 and config.imgsz is None):
            raise ValueError(f"zoom must lie in (0, 8] and exclude imgsz, got zoom={config.zoom} imgsz={config.imgsz}")
        self.config = config
        self.model, self.info = load_detector_model(weights)
        self.model.to(config.device)
        self.backend = self._resolve_backend(config.backend)
        self._session = None
        self.precision = "f32"
        device_type = torch.device(config.device).type
        self._dtype = torch.float32  # the torch back end's weights and input
        # Network-input pixels per forward pass. A GPU may take 4x the CPU's: 16 1080p frames per
        # pass ran 3.2-3.6 ms a frame against 4.9-5.4 at 4 (throughput_streams_gpu/batch_nms_ab.txt).
        self._batch_pixels = MAX_BATCH_PIXELS * (1 if device_type == "cpu" else 4)
        if config.precision == "fp16" and (self.backend != "torch" or device_type != "cuda"):
            raise ValueError("detector precision fp16 runs on the torch back end on a CUDA device")
        if self.backend == "torch" and config.precision in ("fp16", "bf16"):
            self._dtype = torch.float16 if config.precision == "fp16" else torch.bfloat16
            self.model.to(self._dtype)
            self.precision = config.precision
        if self.backend == "onnx":
            self._session = cpu_session(self._export, torch.get_num_threads(), "detector", DetectorWeightsError)
        elif self.backend == "openvino":
            # A stream's inputs come in a few shapes: static compiles run them faster.
            self._session = cpu_openvino(self._export, torch.get_num_threads(), "detector", DetectorWeightsError,
                                         config.precision, static_shapes=True)
            self.precision = self._session.precision
        # On a GPU the frames go up as uint8 and are letterboxed there (:meth:`_letterbox_on_device`).
        self._input_on_device = self._session is None and device_type != "cpu"
        self.refiner = None
        if config.refine_corners:
            from tracker.corners import CornerRefiner, RefinerWeightsError

            try:  # on the detector's back end and precision
                self.refiner = CornerRefiner(config.refiner_weights, device=config.device, backend=self.backend,
                                             cache_dir=config.cache_dir, precision=self.precision)
            except RefinerWeightsError as exc:
                raise DetectorWeightsError(str(exc)) from None
            self.info["corner_refiner"] = {"sha256": self.refiner.info["sha256"],
                                           "validation": self.refiner.info.get("validation")}
        self.has_corners = self.info.get("kpt_shape") is not None or self.refiner is not None

    def _resolve_backend(self, name: str) -> str:
        on_cpu = str(self.config.device) == "cpu"
        if name == "auto":
            if on_cpu and openvino_available() and onnx_available():  # the graph is exported with onnx
                return "openvino"
            return "onnx" if on_cpu and onnx_available() else "torch"
        if name in ("onnx", "openvino"):
            if not onnx_available():
                raise ValueError(f"detector backend {name!r} needs onnxruntime (pip install onnxruntime)")
            if name == "openvino" and not openvino_available():
                raise ValueError("detector backend 'openvino' needs OpenVINO (pip install openvino)")
            if not on_cpu:
                raise ValueError(f"detector backend {name!r} runs on the CPU here; use backend 'torch' on a GPU")
        return name

    def _export(self) -> Path:
        return export_onnx(self.model, self.info["sha256"], self.config.cache_dir)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw head output (B, 4 + nc [+ 12], anchors) for a letterboxed batch (B, 3, H, W) in [0, 1]."""
        if self._session is not None:
            out = self._session.run(None, {"images": x.cpu().numpy()})[0]
            return torch.from_numpy(out)
        preds = self.model(x.to(self._dtype))
        preds = preds[0] if isinstance(preds, (list, tuple)) else preds
        return preds.float()

    def _input_size(self, image: np.ndarray, factor: float = 1.0) -> tuple[float, int, int]:
        """(scale, width, height) of ``image`` at the network input, before padding; ``factor``
        times the configured input size (the coarse pass)."""
        h, w = image.shape[:2]
        if self.config.zoom is not None:
            size = _ceil_to(round(max(w, h) * self.config.zoom), self.stride)
        else:
            size = self.config.imgsz or auto_imgsz(w, h)
        if factor != 1.0:
            size = max(self.stride, round(size * factor / self.stride) * self.stride)
        r = size / max(h, w)
        return r, max(1, round(w * r)), max(1, round(h * r))

    def _padded_input(self, image: np.ndarray, factor: float = 1.0) -> tuple[int, int]:
        """(height, width) of ``image``'s letterboxed network input (padded to the stride)."""
        _, w, h = self._input_size(image, factor)
        return _ceil_to(h, self.stride), _ceil_to(w, self.stride)

    def _letterbox(self, images: Sequence[np.ndarray], factor: float = 1.0) -> tuple[torch.Tensor, list[float]]:
        """Images of one padded input shape (:meth:`_padded_input`) as a (B, 3, H, W) batch."""
        sizes = [self._input_size(im, factor) for im in images]
        hp, wp = self._padded_input(images[0], factor)
        if self._input_on_device:
            return self._letterbox_on_device(images, sizes, hp, wp), [s[0] for s in sizes]
        # (B, 3, H, W) float32 RGB in [0, 1], filled plane by plane with OpenCV / numpy: torch's
        # permute + flip + float on a 1080p batch took 8-22 ms with 2 intra-op threads when the
        # other core was busy (the pipeline's encoder and reads threads), 0.8 ms this way.
        x = np.empty((len(images), 3, hp, wp), np.float32)
        frame = np.empty((hp, wp, 3), np.uint8)
        for i, (im, (r, w, h)) in enumerate(zip(images, sizes)):
            frame.fill(114)  # ultralytics' pad grey
            # Area averaging, not ultralytics' bilinear: bilinear saves ~5 ms per 1080p frame but
            # lost recall (US photos at score 0.5: 0.955 -> 0.932; 20-30 px plates at 1080p:
            # 0.107 -> 0.071) and corner accuracy (1080p median 5.95 -> 6.30 % of plate width;
            # benchmarks/results/detection/int8_trial.md).
            interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
            frame[:h, :w] = cv2.resize(im, (w, h), interpolation=interp) if r != 1 else im
            for c, plane in enumerate(cv2.split(frame)):
                np.multiply(plane, np.float32(1.0 / 255.0), out=x[i, 2 - c])  # BGR -> RGB
        return torch.from_numpy(x).to(self.config.device), [s[0] for s in sizes]

    def _letterbox_on_device(self, images: Sequence[np.ndarray], sizes: Sequence[tuple[float, int, int]],
                             hp: int, wp: int) -> torch.Tensor:
        """:meth:`_letterbox` on the model's device (a GPU): the uint8 frames go up (a quarter of the
        float bytes) and are resized there, which the one process serving many streams' detector
        calls needs: 1.3 instead of 3.4 ms per 1080p frame on an H200 host
        (benchmarks/results/throughput_streams_gpu). Area averaging as on the CPU: equal for the
        whole-number factors of 1080p at 960 and 720p at 640, within 2 grey levels on average
        otherwise (tests/tracker/test_detector.py)."""
        import torch.nn.functional as F

        # Built in the network's number format: no second full-batch cast in :meth:`_forward`.
        x = torch.full((len(images), 3, hp, wp), 114 / 255, dtype=self._dtype, device=self.config.device)
        for i, (im, (r, w, h)) in enumerate(zip(images, sizes)):
            t = torch.from_numpy(np.ascontiguousarray(im)).to(self.config.device)
            t = t.permute(2, 0, 1).flip(0).unsqueeze(0).float()  # (1, 3, H, W) RGB, 0-255
            if r < 1:
                t = F.interpolate(t, size=(h, w), mode="area")
            elif r > 1:
                t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
            x[i, :, :h, :w] = t[0].mul_(1.0 / 255.0)
        return x

    @torch.inference_mode()
    def _detect_batch(self, images: Sequence[np.ndarray], factor: float = 1.0, conf: float | None = None
                      ) -> list[list[Detection]]:
        """One forward pass; detections from score ``conf`` (None: the configured one)."""
        from ultralytics.utils.nms import non_max_suppression

        x, ratios = self._letterbox(images, factor)
        preds = self._forward(x)
        nc = len(self.info["names"])
        conf = self.config.conf if conf is None else conf
        out = non_max_suppression(preds, conf, self.config.iou, max_det=self.config.max_det, nc=nc)
        results = []
        for im, r, det in zip(images, ratios, out):
            h, w = im.shape[:2]
            det = det.cpu().numpy()
            boxes = det[:, :4] / r
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
            corners = [None] * len(det)
            if self.has_corners and det.shape[1] >= 6 + 12:
                corners = list((det[:, 6:18].reshape(-1, 4, 3)[:, :, :2] / r).astype(np.float32))
            results.append(
                [Detection(box=b.astype(np.float32), score=float(s), corners=c)
                 for b, s, c in zip(boxes, det[:, 4], corners) if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
            )
        return results

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect plates in each (H, W, 3) uint8 BGR image (within ``config.roi`` when set: a
        frame the region misses gets no detections); returns one list per image, frame px."""
        if self.config.roi is None:
            found = self._detect_batched(images, self.config.coarse_pass)
        else:
            found = self._detect_in_roi(images)
        if self.refiner is None:
            return found
        # On the whole frame, also with a region: the refiner's window may reach past its edge.
        corners = self.refiner.corners(list(images), [np.array([d.box for d in ds], np.float32) for ds in found])
        return [[replace(d, corners=c) for d, c in zip(ds, cs)] for ds, cs in zip(found, corners)]

    def _detect_in_roi(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        regions = [clip_roi(self.config.roi, im.shape[1], im.shape[0]) for im in images]
        parts = [im[r[1]: r[1] + r[3], r[0]: r[0] + r[2]] for im, r in zip(images, regions) if r is not None]  # views
        # A region is chosen to enlarge small, far plates: "auto" searches it once.
        coarse = "off" if self.config.coarse_pass == "auto" else self.config.coarse_pass
        found = iter(self._detect_batched(parts, coarse))
        results: list[list[Detection]] = []
        for r in regions:
            if r is None:
                results.append([])
                continue
            shift = np.array([r[0], r[1], r[0], r[1]], np.float32)
            results.append([replace(d, box=d.box + shift, corners=None if d.corners is None else d.corners + shift[:2])
                            for d in next(found)])
        return results

    def _detect_batched(self, images: Sequence[np.ndarray], mode: str) -> list[list[Detection]]:
        """The main pass on every image and the coarse pass (``mode``: see ``coarse_pass``) where due."""
        if mode == "off":
            return self._detect_pass(images)
        # Greedy NMS keeps a box by the higher-scoring boxes alone, so cutting at ``conf`` after it
        # gives what NMS at ``conf`` gives; the weaker candidates serve the merge and the trigger.
        floor = min(self.config.conf, PASS_FLOOR)
        found = self._detect_pass(images, conf=floor)
        wanted = [i for i, (im, dets) in enumerate(zip(images, found)) if mode == "on" or self._coarse_due(im, dets)]
        if wanted:
            coarse = self._detect_pass([images[i] for i in wanted], self.config.coarse_scale, conf=floor)
            for i, extra in zip(wanted, coarse):
                found[i] = self._merge(found[i], extra)
        return [[d for d in dets if d.score >= self.config.conf] for dets in found]

    def _coarse_due(self, image: np.ndarray, main: list[Detection]) -> bool:
        """Whether "auto" runs the coarse pass on ``image``, given its main pass's candidates: when
        the main pass enlarges it, or when a candidate is ``coarse_trigger_px`` wide at the input."""
        scale = self._input_size(image)[0]
        if scale >= 1.0:
            return True
        if self.config.coarse_trigger_px is None:
            return False
        for d in main:
            width, height = d.box[2] - d.box[0], d.box[3] - d.box[1]
            if (d.score >= PASS_FLOOR and width * scale >= self.config.coarse_trigger_px
                    and width <= TRIGGER_MAX_ASPECT * height):
                return True
        return False

    def _detect_pass(self, images: Sequence[np.ndarray], factor: float = 1.0, conf: float | None = None
                     ) -> list[list[Detection]]:
        # Frames batched by input shape: a frame's detections do not depend on the frames (of
        # other streams) beside it (padding to another's shape moved boxes by up to 1.5 px).
        results: list[list[Detection] | None] = [None] * len(images)
        shapes = [self._padded_input(im, factor) for im in images]
        # Large inputs (zoom) one or two at a time: a batch of four 4K frames at zoom 2 peaked at
        # 6.5 GB against 2.2 GB for one, and batching does not speed up inputs this large.
        largest = max((h * w for h, w in shapes), default=1)
        batch_size = min(self.config.batch_size, max(1, self._batch_pixels // largest))
        for idx in shape_batches(shapes, batch_size):
            for i, found in zip(idx, self._detect_batch([images[i] for i in idx], factor, conf)):
                results[i] = found
        return results  # type: ignore[return-value]

    def _merge(self, main: list[Detection], coarse: list[Detection]) -> list[Detection]:
        """One frame's detections of both passes: overlapping ones (IoU > ``iou``) are one plate,
        kept with the higher-scoring box and the noisy-OR of the two passes' best scores for it;
        best first, at most ``max_det``."""
        if not main or not coarse:
            return (main or coarse)[: self.config.max_det]
        from torchvision.ops import box_iou, nms

        dets = main + coarse
        boxes = torch.from_numpy(np.stack([d.box for d in dets]).astype(np.float32))
        scores = torch.tensor([d.score for d in dets], dtype=torch.float32)
        overlap = (box_iou(boxes, boxes) > self.config.iou).numpy()
        n_main = len(main)
        merged = []
        for k in nms(boxes, scores, self.config.iou).tolist():
            other = slice(n_main, None) if k < n_main else slice(0, n_main)
            partner = scores[other][torch.from_numpy(overlap[k, other])]
            best = float(partner.max()) if len(partner) else 0.0
            merged.append(replace(dets[k], score=1.0 - (1.0 - dets[k].score) * (1.0 - best)))
        merged.sort(key=lambda d: -d.score)
        return merged[: self.config.max_det]


def rectify_plate(frame: np.ndarray, corners: np.ndarray, height: int | None = None, margin: float = 0.0) -> np.ndarray:
    """Warp the plate quadrilateral ``corners`` ((4, 2) tl, tr, br, bl frame px) of ``frame``
    ((H, W, 3) uint8) to a frontal (h, w, 3) rectangle.

    Output size: width = mean of the top and bottom edge lengths, height = mean of the left and
    right edge lengths (px, at least 2), or ``height`` px with the same aspect ratio; ``margin``
    extends the quadrilateral by that fraction of its size on every side. Corners outside the
    frame are fine (border pixels are replicated).
    """
    c = np.asarray(corners, np.float32).reshape(4, 2)
    if not np.isfinite(c).all():
        raise ValueError("plate corners must be finite (4, 2) pixel coordinates")
    w = 0.5 * (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3]))
    h = 0.5 * (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1]))
    if height is not None:
        w, h = w * height / max(h, 1e-6), float(height)
    w, h = max(2, int(round(w))), max(2, int(round(h)))
    m = float(margin)
    dst = np.array([(-m * w, -m * h), ((1 + m) * w, -m * h), ((1 + m) * w, (1 + m) * h), (-m * w, (1 + m) * h)],
                   np.float32)
    # Pixel-edge convention for corners: the rectangle's edges are at 0 and w (h).
    dst -= 0.5
    c = c - 0.5
    M = cv2.getPerspectiveTransform(c, dst + np.float32([m * w, m * h]))
    out_w, out_h = int(round((1 + 2 * m) * w)), int(round((1 + 2 * m) * h))
    return cv2.warpPerspective(frame, M, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
